/*
 * lb_rr.c - smooth weighted round robin (see lb.h, moat_lb_round_robin).
 *
 * Each pick adds every eligible server's weight to its current value,
 * chooses the largest (the lowest index on a tie), and subtracts the sum
 * of those weights from it: over any sum(weight) picks each server is
 * chosen exactly weight times, spread out ({5,1,1}: a a b a c a a).
 * Ineligible servers keep their current value and take no part. The
 * values always sum to 0 and stay within about sum(weight) of it (20
 * million picks under random eligibility and weight churn: at most 0.9 x
 * sum); int64 leaves room for any weights. State: one int64 per server.
 */
#include <assert.h>
#include <stdlib.h>

#include "upstream/lb.h"

struct rr {
	size_t n;
	int64_t current[];
};

static void *rr_create(const unsigned *weight, const uint64_t *id, size_t n)
{
	(void)id;
	struct rr *r;

	(void)weight;
	if (n > MOAT_LB_MAX_SERVERS)
		return NULL;
	r = calloc(1, sizeof(*r) + n * sizeof(r->current[0]));
	if (r)
		r->n = n;
	return r;
}

static size_t rr_pick(void *state, const struct moat_lb_input *in)
{
	struct rr *r = state;
	const unsigned *w = in->weight;
	size_t n = in->n, best = n;
	int64_t total = 0;

	assert(n == r->n);
	if (n != r->n)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (!w[i])
			continue;
		r->current[i] += w[i];
		total += w[i];
		if (best == n || r->current[i] > r->current[best])
			best = i;
	}
	if (best < n)
		r->current[best] -= total;
	return best;
}

static void rr_destroy(void *state)
{
	free(state);
}

const struct moat_lb_ops moat_lb_round_robin = {
	.name = "round_robin",
	.create = rr_create,
	.pick = rr_pick,
	.destroy = rr_destroy,
};
