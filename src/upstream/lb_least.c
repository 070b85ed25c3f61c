/*
 * lb_least.c - weighted least requests in flight (see lb.h,
 * moat_lb_least_conn).
 *
 * First scan: the lowest load active/weight among the eligible servers,
 * compared as active[i] * weight[j] < active[j] * weight[i] (64-bit
 * products of 32-bit values: exact, no division). Second scan: smooth
 * weighted round robin (as lb_rr.c) among the servers at that load, so
 * ties rotate in proportion to weight. When every server is idle that is
 * exactly weighted round robin; under load the tie set is small and the
 * rotation only decides between equals. State: one int64 per server, the
 * round robin's current values (they sum to 0 and stay within about
 * sum(weight), as in lb_rr.c).
 */
#include <assert.h>
#include <stdlib.h>

#include "upstream/lb.h"

struct least {
	size_t n;
	int64_t current[];
};

static void *least_create(const unsigned *weight, const uint64_t *id, size_t n)
{
	(void)id;
	struct least *l;

	(void)weight;
	if (n > MOAT_LB_MAX_SERVERS)
		return NULL;
	l = calloc(1, sizeof(*l) + n * sizeof(l->current[0]));
	if (l)
		l->n = n;
	return l;
}

static size_t least_pick(void *state, const struct moat_lb_input *in)
{
	struct least *l = state;
	const unsigned *w = in->weight, *a = in->active;
	size_t n = in->n, low = n, best = n;
	int64_t total = 0;

	assert(n == l->n);
	if (n != l->n)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (!w[i])
			continue;
		if (low == n || (uint64_t)a[i] * w[low] < (uint64_t)a[low] * w[i])
			low = i;
	}
	if (low == n)
		return n;
	for (size_t i = low; i < n; i++) {
		if (!w[i] || (uint64_t)a[i] * w[low] != (uint64_t)a[low] * w[i])
			continue;
		l->current[i] += w[i];
		total += w[i];
		if (best == n || l->current[i] > l->current[best])
			best = i;
	}
	l->current[best] -= total;
	return best;
}

static void least_destroy(void *state)
{
	free(state);
}

const struct moat_lb_ops moat_lb_least_conn = {
	.name = "least_connections",
	.create = least_create,
	.pick = least_pick,
	.destroy = least_destroy,
};
