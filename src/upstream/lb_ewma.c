/*
 * lb_ewma.c - peak-EWMA latency x load, power of two choices (see lb.h,
 * moat_lb_ewma).
 *
 * Two candidates are drawn as by random_two; the lower
 *	cost = latency * (1 + active * max_weight / weight)
 * wins (the first drawn on a tie), max_weight the largest configured
 * weight. The server of the largest weight counts each request in flight
 * once, as in the classic latency x (active + 1); a server of half its
 * weight counts each twice. The cost depends on the weights' ratios only
 * (weights 1,2 and 16,32 pick the same), and with no load it is the
 * latency alone: equal latencies tie, and the weighted draw keeps the
 * shares proportional to weight. The latency is the caller's peak-EWMA
 * estimate (moat_lb_ewma_update): it jumps up at once on a slow answer and
 * decays back slowly, so a server that turns slow loses traffic at once
 * and wins it back gradually. An unknown latency (0: a new server, or one
 * not yet answered) counts as the lowest known one among the eligible
 * servers (found only when a candidate needs it), or 1 when none is
 * known, so a new server is tried before it has a figure. The cost is a
 * double: latency x load can exceed 64 bits; a double is exact for the
 * values seen in practice (below 2^53) and monotonic beyond. No state
 * beyond the server count.
 */
#include <assert.h>
#include <stdlib.h>

#include "upstream/lb.h"
#include "upstream/lb_int.h"

struct ewma {
	size_t n;
	double max_weight;  /* largest configured weight */
};

static void *ewma_create(const unsigned *weight, const uint64_t *id, size_t n)
{
	(void)id;
	struct ewma *e;

	if (n > MOAT_LB_MAX_SERVERS)
		return NULL;
	e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	e->n = n;
	e->max_weight = 1;
	for (size_t i = 0; i < n; i++)
		if (weight[i] > e->max_weight)
			e->max_weight = weight[i];
	return e;
}

/* The lowest known latency among eligible servers, or 1. */
static uint64_t lowest_known(const struct moat_lb_input *in)
{
	uint64_t low = 0;

	for (size_t i = 0; i < in->n; i++)
		if (in->weight[i] && in->latency_us[i] && (!low || in->latency_us[i] < low))
			low = in->latency_us[i];
	return low ? low : 1;
}

static double cost(const struct ewma *e, const struct moat_lb_input *in, size_t i, uint64_t latency)
{
	return (double)latency * (1.0 + (double)in->active[i] * e->max_weight / (double)in->weight[i]);
}

static size_t ewma_pick(void *state, const struct moat_lb_input *in)
{
	const struct ewma *e = state;
	uint64_t lx, ly;
	size_t x, y;

	assert(in->n == e->n);
	if (in->n != e->n)
		return in->n;
	x = moat_lb_draw_two(in, &y);
	if (y == in->n)
		return x;
	lx = in->latency_us[x];
	ly = in->latency_us[y];
	if (!lx || !ly) {
		uint64_t low = lowest_known(in);

		lx = lx ? lx : low;
		ly = ly ? ly : low;
	}
	return cost(e, in, y, ly) < cost(e, in, x, lx) ? y : x;
}

static void ewma_destroy(void *state)
{
	free(state);
}

const struct moat_lb_ops moat_lb_ewma = {
	.name = "ewma",
	.create = ewma_create,
	.pick = ewma_pick,
	.destroy = ewma_destroy,
};
