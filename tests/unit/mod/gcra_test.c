/*
 * gcra_test.c - unit tests of src/mod/ratelimit/gcra.c, the GCRA math.
 *
 * The clock is the test's: every request names its own now. Checked:
 * burst + 1 at once from an empty state then one per interval, exact
 * counts over ten simulated seconds, delays that space requests out at
 * the rate, Retry-After (accepted exactly at now + wait, not a
 * microsecond before), remaining and reset, idle refill, saturation on
 * huge values, and agreement with an independent model (a token bucket
 * kept in microseconds of credit) on random traffic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mod/ratelimit/gcra.h"

#define MS 1000ull
#define SEC 1000000ull

static struct moat_gcra_policy policy(uint64_t interval_us, uint64_t burst, int delay,
				      uint64_t delay_after)
{
	struct moat_gcra_policy p = { interval_us, burst, delay, delay_after };

	return p;
}

static enum moat_gcra_verdict take(const struct moat_gcra_policy *p, uint64_t *tat,
				   uint64_t now, struct moat_gcra_result *r)
{
	struct moat_gcra_result local;

	if (!r)
		r = &local;
	moat_gcra_take(p, tat, now, r);
	return r->verdict;
}

static void test_burst_then_rate(void **state)
{
	struct moat_gcra_policy p = policy(100 * MS, 5, 0, 0); /* 10/s burst 5 */
	struct moat_gcra_result r;
	uint64_t tat = 0;

	(void)state;
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_PASS);
		assert_int_equal(r.wait_us, 0);
		assert_int_equal(r.remaining, 5 - i);
		assert_int_equal(r.reset_us, (i + 1) * 100 * MS);
	}
	assert_int_equal(tat, 600 * MS);
	assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_REJECT);
	assert_int_equal(r.wait_us, 100 * MS);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_us, 600 * MS);
	assert_int_equal(tat, 600 * MS); /* unchanged on REJECT */

	/* Then exactly one per interval. */
	for (uint64_t t = 100 * MS; t < 2 * SEC; t += 100 * MS) {
		assert_int_equal(take(&p, &tat, t - 1, &r), MOAT_GCRA_REJECT);
		assert_int_equal(r.wait_us, 1);
		assert_int_equal(take(&p, &tat, t, &r), MOAT_GCRA_PASS);
		assert_int_equal(r.remaining, 0);
		assert_int_equal(take(&p, &tat, t, &r), MOAT_GCRA_REJECT);
		assert_int_equal(r.wait_us, 100 * MS);
	}
}

static unsigned run_every(const struct moat_gcra_policy *p, uint64_t from, uint64_t to,
			  uint64_t step, uint64_t *tat, unsigned *delayed)
{
	unsigned accepted = 0;

	for (uint64_t t = from; t < to; t += step) {
		enum moat_gcra_verdict v = take(p, tat, t, NULL);

		if (v != MOAT_GCRA_REJECT)
			accepted++;
		if (v == MOAT_GCRA_DELAY && delayed)
			(*delayed)++;
	}
	return accepted;
}

static void test_exact_count_ten_seconds(void **state)
{
	struct moat_gcra_policy p = policy(100 * MS, 5, 0, 0);
	uint64_t tat = 0;

	(void)state;
	/* 10/s burst 5, one request every millisecond for t in [0, 10 s):
	 * t = 0..5 ms pass (the excess before each is 0, 99, 198, 297, 396,
	 * 495 ms <= 500 ms), which puts tat at 600 ms; from then on the one at
	 * t = 100, 200, ... 9900 ms passes: 99 more. 6 + 99 = 105. */
	assert_int_equal(run_every(&p, 0, 10 * SEC, MS, &tat, NULL), 105);
	assert_int_equal(tat, 10 * SEC + 500 * MS);

	/* The next ten seconds right after: the burst is still used up (tat
	 * runs 500 ms ahead), so one per 100 ms: 100 pass. */
	assert_int_equal(run_every(&p, 10 * SEC, 20 * SEC, MS, &tat, NULL), 100);

	/* At exactly the rate: never refused. */
	tat = 0;
	assert_int_equal(run_every(&p, 0, 10 * SEC, 100 * MS, &tat, NULL), 100);
	/* At twice the rate from empty: the burst, then half. t = 0, 50, ...
	 * 9950 ms: 200 requests; accepted: the first 11 (excess 0, 50, ...
	 * 500 ms) then one per 100 ms from 600 ms: 94. */
	tat = 0;
	assert_int_equal(run_every(&p, 0, 10 * SEC, 50 * MS, &tat, NULL), 11 + 94);
}

static void test_delay(void **state)
{
	struct moat_gcra_policy p = policy(100 * MS, 5, 1, 2);
	struct moat_gcra_result r;
	uint64_t tat = 0;

	(void)state;
	/* delay_after 2: three go at once, the next three are held so they
	 * leave at 100, 200, 300 ms, the seventh is refused. */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_PASS);
		assert_int_equal(r.remaining, 5 - i);
	}
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_DELAY);
		assert_int_equal(r.wait_us, (i + 1) * 100 * MS);
		assert_int_equal(r.remaining, 2 - i);
	}
	assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_REJECT);
	assert_int_equal(r.wait_us, 100 * MS);
	/* Accepted again at 100 ms, and held (the queue is full up to burst). */
	assert_int_equal(take(&p, &tat, 100 * MS, &r), MOAT_GCRA_DELAY);
	assert_int_equal(r.wait_us, 300 * MS);

	/* delay_after 0 (nginx without nodelay): one at once, burst held. */
	p = policy(100 * MS, 5, 1, 0);
	tat = 0;
	assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_PASS);
	for (unsigned i = 1; i <= 5; i++) {
		assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_DELAY);
		assert_int_equal(r.wait_us, i * 100 * MS);
	}
	assert_int_equal(take(&p, &tat, 0, &r), MOAT_GCRA_REJECT);

	/* delay_after past burst, or delay off: never DELAY. */
	p = policy(100 * MS, 5, 1, 50);
	tat = 0;
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(take(&p, &tat, 0, NULL), MOAT_GCRA_PASS);
	assert_int_equal(take(&p, &tat, 0, NULL), MOAT_GCRA_REJECT);
	p = policy(100 * MS, 5, 0, 2);
	tat = 0;
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(take(&p, &tat, 0, NULL), MOAT_GCRA_PASS);

	/* Sustained over the rate with delay: every accepted request leaves
	 * (now + wait) one interval after the one before it. */
	p = policy(100 * MS, 5, 1, 0);
	tat = 0;
	{
		uint64_t last_out = 0;
		unsigned accepted = 0, delayed = 0;

		for (uint64_t t = 0; t < 5 * SEC; t += 10 * MS) {
			if (take(&p, &tat, t, &r) == MOAT_GCRA_REJECT)
				continue;
			if (accepted++)
				assert_int_equal(t + r.wait_us, last_out + 100 * MS);
			last_out = t + r.wait_us;
			delayed += r.verdict == MOAT_GCRA_DELAY;
		}
		/* 1 at once, then accepted as fast as they can leave: the last
		 * accepted at t < 5 s leaves 500 ms later, so 5.5 s of departures
		 * at 10/s -> 55 accepted in all, 54 of them delayed. */
		assert_int_equal(accepted, 55);
		assert_int_equal(delayed, 54);
	}
}

static void test_retry_after(void **state)
{
	struct moat_gcra_policy p = policy(333, 3, 0, 0);
	struct moat_gcra_result r;
	uint64_t tat = 0, saved;

	(void)state;
	while (take(&p, &tat, 1000, &r) != MOAT_GCRA_REJECT)
		;
	saved = tat;
	assert_int_equal(r.wait_us, 333);
	assert_int_equal(take(&p, &tat, 1000 + r.wait_us - 1, NULL), MOAT_GCRA_REJECT);
	assert_int_equal(tat, saved);
	assert_int_equal(take(&p, &tat, 1000 + r.wait_us, NULL), MOAT_GCRA_PASS);

	/* With delay, Retry-After names when a request is accepted again;
	 * that one may be held. */
	p = policy(1000, 4, 1, 1);
	tat = 0;
	while (take(&p, &tat, 0, &r) != MOAT_GCRA_REJECT)
		;
	assert_int_equal(r.wait_us, 1000);
	assert_int_equal(take(&p, &tat, 999, NULL), MOAT_GCRA_REJECT);
	assert_int_equal(take(&p, &tat, 1000, &r), MOAT_GCRA_DELAY);
	assert_int_equal(r.wait_us, 3000);
}

static void test_idle_refill(void **state)
{
	struct moat_gcra_policy p = policy(100 * MS, 5, 0, 0);
	struct moat_gcra_result r;
	uint64_t tat = 0, reset;

	(void)state;
	for (unsigned i = 0; i < 6; i++)
		take(&p, &tat, 0, &r);
	reset = r.reset_us;
	assert_int_equal(reset, 600 * MS);
	/* 250 ms later two have drained: two accepted. */
	assert_int_equal(take(&p, &tat, 250 * MS, &r), MOAT_GCRA_PASS);
	assert_int_equal(r.remaining, 1);
	assert_int_equal(take(&p, &tat, 250 * MS, &r), MOAT_GCRA_PASS);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(take(&p, &tat, 250 * MS, &r), MOAT_GCRA_REJECT);
	assert_int_equal(r.wait_us, 50 * MS);
	assert_int_equal(r.reset_us, 550 * MS);
	/* After reset_us the key is as new: burst + 1 again, and tat <= now
	 * (what lets a store forget it). */
	assert_true(tat <= 800 * MS);
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(take(&p, &tat, 800 * MS + 7, &r), MOAT_GCRA_PASS);
		assert_int_equal(r.remaining, 5 - i);
	}
	assert_int_equal(take(&p, &tat, 800 * MS + 7, NULL), MOAT_GCRA_REJECT);
	/* A long idle gap changes nothing more. */
	assert_int_equal(run_every(&p, 3600 * SEC, 3600 * SEC + 1, 1, &tat, NULL), 1);
	tat = 0;
	assert_int_equal(take(&p, &tat, UINT64_MAX / 2, &r), MOAT_GCRA_PASS);
	assert_int_equal(r.remaining, 5);
}

static void test_edges(void **state)
{
	struct moat_gcra_policy p;
	struct moat_gcra_result r;
	uint64_t tat;

	(void)state;
	/* No limit: always PASS, no state. */
	p = policy(0, 0, 0, 0);
	tat = 0;
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(take(&p, &tat, 5, &r), MOAT_GCRA_PASS);
	assert_int_equal(tat, 0);
	assert_int_equal(r.remaining, UINT64_MAX);

	/* burst 0: exactly one per interval, no burst. */
	p = policy(7, 0, 0, 0);
	tat = 0;
	assert_int_equal(take(&p, &tat, 100, &r), MOAT_GCRA_PASS);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(take(&p, &tat, 106, &r), MOAT_GCRA_REJECT);
	assert_int_equal(r.wait_us, 1);
	assert_int_equal(take(&p, &tat, 107, NULL), MOAT_GCRA_PASS);

	/* burst * interval past 64 bits: saturates, never wraps to a small
	 * tolerance. */
	p = policy(UINT64_MAX / 4, UINT64_MAX, 0, 0);
	tat = 0;
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(take(&p, &tat, 1, &r), MOAT_GCRA_PASS);
		assert_true(r.remaining > 0);
	}
	assert_int_equal(tat, UINT64_MAX);

	/* tat + interval past 64 bits: tat saturates instead of wrapping to a
	 * small value. */
	p = policy(UINT64_MAX / 2, 1, 0, 0);
	tat = 0;
	assert_int_equal(take(&p, &tat, UINT64_MAX - 10, &r), MOAT_GCRA_PASS);
	assert_int_equal(tat, UINT64_MAX);
	assert_int_equal(r.reset_us, 10);
	assert_int_equal(r.remaining, 1);
	assert_int_equal(take(&p, &tat, UINT64_MAX - 10, &r), MOAT_GCRA_PASS);
	assert_int_equal(take(&p, &tat, UINT64_MAX - 10, &r), MOAT_GCRA_PASS);
	assert_int_equal(take(&p, &tat, UINT64_MAX, &r), MOAT_GCRA_PASS);

	/* A clock read earlier than the key's last now (another worker's) is
	 * measured as of that earlier time: no wrap, no free pass. */
	p = policy(1000, 2, 0, 0);
	tat = 0;
	take(&p, &tat, 10000, NULL);
	take(&p, &tat, 10000, NULL);
	take(&p, &tat, 10000, NULL);
	assert_int_equal(take(&p, &tat, 9990, &r), MOAT_GCRA_REJECT);
	assert_int_equal(r.wait_us, 1010);
}

/* The model: a token bucket of burst + 1 tokens refilled one per
 * interval, kept as microseconds of credit. An independent formulation
 * of the same limit; GCRA must agree on every field. */
struct model {
	uint64_t credit, last;
	int fresh;
};

static void model_take(const struct moat_gcra_policy *p, struct model *m, uint64_t now,
		       struct moat_gcra_result *r)
{
	uint64_t t = p->interval_us, cap = (p->burst + 1) * t;
	uint64_t d = p->delay && p->delay_after < p->burst ? p->delay_after : p->burst;

	if (m->fresh) {
		m->credit = cap;
		m->fresh = 0;
	} else if (now > m->last) {
		m->credit = m->credit + (now - m->last) > cap ? cap : m->credit + (now - m->last);
	}
	if (now > m->last)
		m->last = now;
	/* The credit at `now`, even when now is behind m->last. */
	{
		uint64_t c = m->credit > (m->last - now) ? m->credit - (m->last - now) : 0;

		if (c < t) {
			r->verdict = MOAT_GCRA_REJECT;
			r->wait_us = t - c;
			r->remaining = 0;
			r->reset_us = cap - c;
			return;
		}
		if (c >= (p->burst + 1 - d) * t) {
			r->verdict = MOAT_GCRA_PASS;
			r->wait_us = 0;
		} else {
			r->verdict = MOAT_GCRA_DELAY;
			r->wait_us = (p->burst + 1 - d) * t - c;
		}
		c -= t;
		r->remaining = c / t;
		r->reset_us = cap - c;
		m->credit = c + (m->last - now);
	}
}

static void test_against_model(void **state)
{
	(void)state;
	srand(12345);
	for (unsigned round = 0; round < 300; round++) {
		struct moat_gcra_policy p = policy(1 + (uint64_t)(rand() % 5000),
						   (uint64_t)(rand() % 20), rand() % 2,
						   (uint64_t)(rand() % 25));
		struct model m = { 0, 0, 1 };
		uint64_t tat = 0, now = (uint64_t)(rand() % 100000);

		for (unsigned i = 0; i < 3000; i++) {
			struct moat_gcra_result a, b;

			/* bursts, idle gaps and steady trickles */
			switch (rand() % 4) {
			case 0: break;
			case 1: now += (uint64_t)(rand() % 50); break;
			case 2: now += (uint64_t)(rand() % (int)p.interval_us * 2); break;
			default: now += (uint64_t)(rand() % 100000); break;
			}
			moat_gcra_take(&p, &tat, now, &a);
			model_take(&p, &m, now, &b);
			assert_int_equal(a.verdict, b.verdict);
			assert_int_equal(a.wait_us, b.wait_us);
			assert_int_equal(a.remaining, b.remaining);
			assert_int_equal(a.reset_us, b.reset_us);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_exact_count_ten_seconds),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_idle_refill),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
