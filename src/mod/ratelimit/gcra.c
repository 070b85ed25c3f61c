/*
 * gcra.c - GCRA rate-limit math (see gcra.h). Pure: no clock, no state
 * beyond the caller's tat.
 */
#include "mod/ratelimit/gcra.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

void moat_gcra_take(const struct moat_gcra_policy *p, uint64_t *tat, uint64_t now_us,
		    struct moat_gcra_result *r)
{
	uint64_t t = p->interval_us;
	uint64_t tau, tau_pass, t0, excess, after, q;

	if (t == 0) {
		r->verdict = MOAT_GCRA_PASS;
		r->wait_us = 0;
		r->remaining = UINT64_MAX;
		r->reset_us = 0;
		return;
	}
	/* tau: how far tat may run ahead of now and still accept; tau_pass:
	 * how far it may run ahead and still let a request go at once. */
	tau = sat_mul(p->burst, t);
	tau_pass = p->delay && p->delay_after < p->burst ? sat_mul(p->delay_after, t) : tau;
	t0 = *tat > now_us ? *tat : now_us;
	excess = t0 - now_us;
	if (excess > tau) {
		r->verdict = MOAT_GCRA_REJECT;
		r->wait_us = excess - tau;
		r->remaining = 0;
		r->reset_us = excess;
		return;
	}
	*tat = sat_add(t0, t);
	if (excess > tau_pass) {
		r->verdict = MOAT_GCRA_DELAY;
		r->wait_us = excess - tau_pass;
	} else {
		r->verdict = MOAT_GCRA_PASS;
		r->wait_us = 0;
	}
	/* The k-th next request at this instant (k = 0, 1, ...) sees an excess
	 * of after + k * t; it is accepted while that stays <= tau. */
	after = *tat - now_us;
	if (after > tau) {
		r->remaining = 0;
	} else {
		q = (tau - after) / t;
		r->remaining = q == UINT64_MAX ? q : q + 1;
	}
	r->reset_us = after;
}
