/*
 * lb_int.h - what the balancer files (src/upstream/lb*.c) share; not for
 * callers, who use lb.h.
 */
#ifndef MOAT_UPSTREAM_LB_INT_H
#define MOAT_UPSTREAM_LB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "upstream/lb.h"

/* A bijective 64-bit mixer: every input bit reaches every output bit
 * (the splitmix64 finalizer, Stafford's "mix13" constants). Used to derive
 * more random bits from in->rand and to hash server indexes. */
static inline uint64_t moat_lb_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/*
 * Draws two distinct eligible servers (in->weight[i] > 0) from in->rand:
 * the first with probability weight[i] / sum(weight), the second likewise
 * among the others. Returns the first, or in->n when none is eligible;
 * stores the second in *second, or in->n when only one is eligible. Two
 * or three scans of the weights; no allocation.
 */
size_t moat_lb_draw_two(const struct moat_lb_input *in, size_t *second);

#endif
