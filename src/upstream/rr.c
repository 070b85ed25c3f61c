/*
 * rr.c - smooth weighted round robin (see rr.h).
 */
#include "upstream/rr.h"

size_t moat_rr_pick(int *current, const unsigned *weight, const unsigned char *eligible, size_t n)
{
	size_t best = n;
	int total = 0;

	for (size_t i = 0; i < n; i++) {
		if (eligible && !eligible[i])
			continue;
		current[i] += (int)weight[i];
		total += (int)weight[i];
		if (best == n || current[i] > current[best])
			best = i;
	}
	if (best < n)
		current[best] -= total;
	return best;
}
