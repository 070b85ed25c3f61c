/*
 * rr.h - smooth weighted round robin, pure.
 *
 * Each pick adds every eligible server's weight to its current value,
 * chooses the largest, and subtracts the total from it: over any window of
 * sum(weights) picks each server is chosen exactly weight times, spread
 * out rather than in bursts.
 */
#ifndef MOAT_UPSTREAM_RR_H
#define MOAT_UPSTREAM_RR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Picks a server among n. weight[i] > 0; current[i] is the caller's state
 * (zeroed at start). Servers with eligible[i] == 0 are skipped (NULL: all
 * eligible). Returns the index, or n when none is eligible.
 */
size_t moat_rr_pick(int *current, const unsigned *weight, const unsigned char *eligible, size_t n);

#endif
