/*
 * lb_p2c.c - power of two choices on requests in flight (see lb.h,
 * moat_lb_random_two).
 *
 * Two distinct eligible candidates are drawn from in->rand in proportion
 * to weight (moat_lb_draw_two), and the one with the lower active/weight
 * wins, compared by cross-multiplication; on a tie the first drawn wins,
 * which keeps the shares proportional to weight when the servers are
 * idle. Unlike least connections it needs no agreement on who is least
 * loaded: workers reading slightly stale counts do not all rush the same
 * server. No state beyond the server count.
 */
#include <assert.h>
#include <stdlib.h>

#include "upstream/lb.h"
#include "upstream/lb_int.h"

struct p2c {
	size_t n;
};

static void *p2c_create(const unsigned *weight, const uint64_t *id, size_t n)
{
	(void)id;
	struct p2c *p;

	(void)weight;
	if (n > MOAT_LB_MAX_SERVERS)
		return NULL;
	p = malloc(sizeof(*p));
	if (p)
		p->n = n;
	return p;
}

static size_t p2c_pick(void *state, const struct moat_lb_input *in)
{
	const struct p2c *p = state;
	const unsigned *w = in->weight, *a = in->active;
	size_t x, y;

	assert(in->n == p->n);
	if (in->n != p->n)
		return in->n;
	x = moat_lb_draw_two(in, &y);
	if (y == in->n)
		return x;
	return (uint64_t)a[y] * w[x] < (uint64_t)a[x] * w[y] ? y : x;
}

static void p2c_destroy(void *state)
{
	free(state);
}

const struct moat_lb_ops moat_lb_random_two = {
	.name = "random_two",
	.create = p2c_create,
	.pick = p2c_pick,
	.destroy = p2c_destroy,
};
