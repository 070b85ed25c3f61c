/*
 * lb_test.c - unit tests of src/upstream/lb*.c, the balancing algorithms,
 * each driven as a pure function (inputs in, index out).
 *
 * Checked, for every algorithm: over 100,000 picks with every server idle
 * the shares follow the weights ({1,1,1}, {5,1,1}, {3,2,1}, {1..8},
 * {1000,1}): exact per period for round robin and least connections,
 * within 1 point of percentage for random two and ewma, within 1 point
 * for hash over 100,000 keys; a server of weight 0 is never chosen, one eligible server
 * always is, none gives n and leaves the state alone (the sequence after
 * goes on as if the pick had not happened); weights scaled by 16 give
 * the very same picks (only their ratios matter).
 *
 * Under load (a closed-loop simulation: two requests per tick, each served
 * in 40 ticks, requests in flight fed back as `active`) least
 * connections, random two and ewma give shares within 1.5 points of the
 * weights {3,2,1}.
 *
 * Per algorithm: round robin keeps the exact windows and the non-bursty
 * {5,1,1} sequence of the old rr_test.c; least connections picks the
 * lowest active/weight and rotates among ties; random two never picks the
 * loaded server when another is idle (with active {100,0,...,0} over 8
 * servers: 0 picks in 100,000, since the two candidates are distinct);
 * ewma never picks a 10x slower idle server and gives it under 10% in the
 * simulation, tries a server of unknown latency; hash maps a key to the
 * same server in every state built from the same weights, moves between
 * 5% and 15% of 100,000 keys when an 11th server joins 10, moves exactly
 * the keys of a server made ineligible (and they come back), moves under
 * 2% of the other keys when a state is rebuilt without the last server,
 * and splits {2,1} as 2/3 : 1/3.
 *
 * Helpers: moat_lb_ewma_update against values computed with libm
 * elsewhere (exp(-dt/tau)); moat_lb_hash_bytes pinned to fixed values, no
 * collision over all strings of up to 3 bytes of 40 letters, one flipped
 * input bit changes about half of the output bits, even buckets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "upstream/lb.h"

#define PICKS 100000u
#define MAXN  16u

static size_t seq[PICKS];

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static const struct moat_lb_ops *const all_ops[] = {
	&moat_lb_round_robin, &moat_lb_least_conn, &moat_lb_random_two, &moat_lb_ewma,
	&moat_lb_hash,
};
#define NOPS (sizeof(all_ops) / sizeof(all_ops[0]))

/* One pick: weights w, active a (NULL: all idle), latency l (NULL: all
 * equal), key hash h; a fresh random number each time. */
static size_t pick(const struct moat_lb_ops *ops, void *st, const unsigned *w, size_t n,
		   const unsigned *a, const uint64_t *l, uint64_t h)
{
	static const unsigned idle[MAXN];
	static const uint64_t same[MAXN] = {
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
	};
	struct moat_lb_input in = {
		.n = n, .weight = w, .active = a ? a : idle, .latency_us = l ? l : same,
		.hash = h, .rand = rnd(),
	};

	return ops->pick(st, &in);
}

static uint64_t key_hash(uint64_t k)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(k >> (8 * i));
	return moat_lb_hash_bytes(b, sizeof(b));
}

static unsigned wsum(const unsigned *w, size_t n)
{
	unsigned s = 0;

	for (size_t i = 0; i < n; i++)
		s += w[i];
	return s;
}

/* ---- the table ---- */

static void test_get_maps_algorithms(void **state)
{
	(void)state;
	assert_ptr_equal(moat_lb_get(MOAT_LB_ROUND_ROBIN), &moat_lb_round_robin);
	assert_ptr_equal(moat_lb_get(MOAT_LB_LEAST_CONN), &moat_lb_least_conn);
	assert_ptr_equal(moat_lb_get(MOAT_LB_RANDOM_TWO), &moat_lb_random_two);
	assert_ptr_equal(moat_lb_get(MOAT_LB_EWMA), &moat_lb_ewma);
	assert_ptr_equal(moat_lb_get(MOAT_LB_HASH), &moat_lb_hash);
	assert_ptr_equal(moat_lb_get(-1), &moat_lb_round_robin);
	assert_ptr_equal(moat_lb_get(99), &moat_lb_round_robin);
	assert_string_equal(moat_lb_round_robin.name, "round_robin");
	assert_string_equal(moat_lb_least_conn.name, "least_connections");
	assert_string_equal(moat_lb_random_two.name, "random_two");
	assert_string_equal(moat_lb_ewma.name, "ewma");
	assert_string_equal(moat_lb_hash.name, "hash");
}

static void test_create_edges(void **state)
{
	static const unsigned one = 1;
	unsigned *big = calloc(MOAT_LB_MAX_SERVERS + 1, sizeof(*big));

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i <= MOAT_LB_MAX_SERVERS; i++)
		big[i] = 1;
	for (size_t k = 0; k < NOPS; k++) {
		void *st = all_ops[k]->create(&one, NULL, 0);

		/* no servers: "none eligible" */
		assert_non_null(st);
		assert_int_equal(pick(all_ops[k], st, &one, 0, NULL, NULL, 7), 0);
		all_ops[k]->destroy(st);
		all_ops[k]->destroy(NULL);
		assert_null(all_ops[k]->create(big, NULL, MOAT_LB_MAX_SERVERS + 1));
		/* one server */
		st = all_ops[k]->create(&one, NULL, 1);
		assert_non_null(st);
		for (int i = 0; i < 100; i++)
			assert_int_equal(pick(all_ops[k], st, &one, 1, NULL, NULL, rnd()), 0);
		all_ops[k]->destroy(st);
	}
	free(big);
}

/* ---- shares with every server idle, every algorithm ---- */

/* Picks PICKS times (hash: PICKS different keys) and checks each server's
 * share against weight / sum within tol_permille of all picks. */
static void check_shares(const struct moat_lb_ops *ops, const unsigned *w, size_t n,
			 unsigned tol_permille)
{
	unsigned count[MAXN] = { 0 };
	unsigned sum = wsum(w, n);
	void *st = ops->create(w, NULL, n);

	assert_non_null(st);
	for (unsigned k = 0; k < PICKS; k++) {
		size_t r = pick(ops, st, w, n, NULL, NULL, key_hash(k));

		assert_true(r < n);
		count[r]++;
	}
	ops->destroy(st);
	for (size_t i = 0; i < n; i++) {
		double want = (double)PICKS * w[i] / sum;
		double got = count[i];

		if (got < want - PICKS * tol_permille / 1000.0 || got > want + PICKS * tol_permille / 1000.0)
			fail_msg("%s: server %zu of %zu got %u picks, want %.0f +- %u per mille",
				 ops->name, i, n, count[i], want, tol_permille);
	}
}

static void test_idle_shares_every_algorithm(void **state)
{
	static const unsigned w1[] = { 1, 1, 1 };
	static const unsigned w2[] = { 5, 1, 1 };
	static const unsigned w3[] = { 3, 2, 1 };
	static const unsigned w4[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const unsigned w5[] = { 1000, 1 };
	/* per mille of the picks: rr and least are exact up to one period;
	 * random two and ewma are random draws (sd ~ 1.5 per mille); hash
	 * owns table shares within 1% of the weights, plus key noise */
	static const unsigned tol[NOPS] = { 1, 1, 10, 10, 10 };

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (size_t k = 0; k < NOPS; k++) {
		check_shares(all_ops[k], w1, 3, tol[k]);
		check_shares(all_ops[k], w2, 3, tol[k]);
		check_shares(all_ops[k], w3, 3, tol[k]);
		check_shares(all_ops[k], w4, 8, tol[k]);
		check_shares(all_ops[k], w5, 2, tol[k]);
	}
}

/* Weight 0 is never chosen; one eligible is always chosen; none gives n.
 * Eligibility changes every 37 picks, at random. */
static void test_ineligible_skipped_every_algorithm(void **state)
{
	static const unsigned conf_w[] = { 4, 3, 2, 1, 7, 1, 1, 5 };
	const size_t n = 8;

	(void)state;
	rng_state = 0x853c49e6748fea9bull;
	for (size_t k = 0; k < NOPS; k++) {
		const struct moat_lb_ops *ops = all_ops[k];
		void *st = ops->create(conf_w, NULL, n);
		unsigned w[8], a[8];
		uint64_t l[8];
		size_t nelig = 0, only = 0;

		assert_non_null(st);
		for (unsigned p = 0; p < PICKS; p++) {
			size_t r;

			if (p % 37 == 0) {
				unsigned mode = (unsigned)(rnd() % 4);

				nelig = 0;
				for (size_t i = 0; i < n; i++) {
					/* mode 0: none; 1: one; else about 2 in 3 */
					w[i] = mode >= 2 && rnd() % 3 ? conf_w[i] : 0;
					a[i] = (unsigned)(rnd() % 5);
					l[i] = rnd() % 4 ? 1 + rnd() % 1000 : 0;
				}
				if (mode == 1)
					w[rnd() % n] = 1;
				for (size_t i = 0; i < n; i++)
					if (w[i]) {
						nelig++;
						only = i;
					}
			}
			r = pick(ops, st, w, n, a, l, key_hash(p));
			if (nelig == 0) {
				assert_int_equal(r, n);
				continue;
			}
			if (r >= n || !w[r])
				fail_msg("%s: pick %u chose %zu, not eligible", ops->name, p, r);
			if (nelig == 1)
				assert_int_equal(r, only);
		}
		ops->destroy(st);
	}
}

/* A pick with nothing eligible leaves the state alone: the picks after
 * it are those of a state that never saw it. */
static void test_none_eligible_keeps_state(void **state)
{
	static const unsigned w[] = { 5, 1, 1, 2 };
	static const unsigned none[] = { 0, 0, 0, 0 };
	static const unsigned a[] = { 1, 1, 2, 2 };

	(void)state;
	for (size_t k = 0; k < NOPS; k++) {
		void *s1 = all_ops[k]->create(w, NULL, 4), *s2 = all_ops[k]->create(w, NULL, 4);

		assert_non_null(s1);
		assert_non_null(s2);
		for (unsigned p = 0; p < 1000; p++) {
			size_t r1, r2;

			if (p % 3 == 0)
				assert_int_equal(pick(all_ops[k], s1, none, 4, a, NULL, p), 4);
			rng_state = 0x2545f4914f6cdd1dull + p;
			r1 = pick(all_ops[k], s1, w, 4, p % 2 ? a : NULL, NULL, p);
			rng_state = 0x2545f4914f6cdd1dull + p;
			r2 = pick(all_ops[k], s2, w, 4, p % 2 ? a : NULL, NULL, p);
			assert_int_equal(r1, r2);
		}
		all_ops[k]->destroy(s1);
		all_ops[k]->destroy(s2);
	}
}

/* Weights are relative: every algorithm picks the same with the weights
 * scaled by 16 (as the caller does to leave room for slow start), under
 * random loads, latencies (some unknown) and eligibility. */
static void test_weights_scale_free(void **state)
{
	static const unsigned conf_w[] = { 3, 2, 1, 5, 1, 4 };
	const size_t n = 6;

	(void)state;
	for (size_t k = 0; k < NOPS; k++) {
		const struct moat_lb_ops *ops = all_ops[k];
		unsigned cw16[6], w[6], w16[6], a[6];
		uint64_t l[6];
		void *s1, *s16;

		for (size_t i = 0; i < n; i++)
			cw16[i] = conf_w[i] * 16;
		s1 = ops->create(conf_w, NULL, n);
		s16 = ops->create(cw16, NULL, n);
		assert_non_null(s1);
		assert_non_null(s16);
		rng_state = 0x6a09e667f3bcc908ull;
		for (unsigned p = 0; p < PICKS; p++) {
			uint64_t seed;
			size_t r1, r16;

			if (p % 11 == 0)
				for (size_t i = 0; i < n; i++) {
					w[i] = rnd() % 4 ? conf_w[i] : 0;
					w16[i] = w[i] * 16;
					a[i] = (unsigned)(rnd() % 20);
					l[i] = rnd() % 5 ? 100 * (1 + rnd() % 20) : 0;
				}
			seed = rnd();
			rng_state = seed;
			r1 = pick(ops, s1, w, n, a, l, key_hash(p));
			rng_state = seed;
			r16 = pick(ops, s16, w16, n, a, l, key_hash(p));
			if (r1 != r16)
				fail_msg("%s: pick %u: %zu with weights x1, %zu with x16", ops->name, p, r1, r16);
		}
		ops->destroy(s1);
		ops->destroy(s16);
	}
}

/* ---- under load: a closed-loop simulation ---- */

#define RING 4096u

struct sim {
	size_t n;
	unsigned active[MAXN];
	uint64_t latency[MAXN];     /* what the balancer is told, us */
	unsigned service[MAXN];     /* ticks a request takes */
	uint64_t done[MAXN][RING];  /* completion ticks, FIFO per server */
	unsigned head[MAXN];
	unsigned count[MAXN];       /* picks per server */
};

static struct sim sim;

/* `per_tick` requests arrive each tick for `ticks` ticks; server i serves
 * each in service[i] ticks, without queueing (latency does not grow with
 * load; the requests in flight do). */
static void simulate(const struct moat_lb_ops *ops, const unsigned *w, unsigned ticks,
		     unsigned per_tick)
{
	void *st = ops->create(w, NULL, sim.n);

	assert_non_null(st);
	memset(sim.active, 0, sizeof(sim.active));
	memset(sim.head, 0, sizeof(sim.head));
	memset(sim.count, 0, sizeof(sim.count));
	for (uint64_t t = 0; t < ticks; t++) {
		for (size_t i = 0; i < sim.n; i++)
			while (sim.active[i] && sim.done[i][sim.head[i] % RING] <= t) {
				sim.head[i]++;
				sim.active[i]--;
			}
		for (unsigned k = 0; k < per_tick; k++) {
			size_t r = pick(ops, st, w, sim.n, sim.active, sim.latency, rnd());

			assert_true(r < sim.n);
			assert_true(sim.active[r] < RING);
			sim.done[r][(sim.head[r] + sim.active[r]) % RING] = t + sim.service[r];
			sim.active[r]++;
			sim.count[r]++;
		}
	}
	ops->destroy(st);
}

static void test_loaded_shares_follow_weights(void **state)
{
	static const unsigned w[] = { 3, 2, 1 };
	const struct moat_lb_ops *ops[] = { &moat_lb_least_conn, &moat_lb_random_two, &moat_lb_ewma };

	(void)state;
	rng_state = 0x1234567887654321ull;
	sim.n = 3;
	for (size_t i = 0; i < 3; i++) {
		sim.service[i] = 40;
		sim.latency[i] = 4000;
	}
	for (size_t k = 0; k < 3; k++) {
		simulate(ops[k], w, PICKS / 2, 2);
		for (size_t i = 0; i < 3; i++) {
			double share = (double)sim.count[i] / PICKS, want = w[i] / 6.0;

			print_message("  %s under load: server %zu weight %u share %.4f (want %.4f)\n",
				      ops[k]->name, i, w[i], share, want);
			assert_true(share > want - 0.015 && share < want + 0.015);
		}
	}
}

/* ---- round robin (the tests of the former rr_test.c) ---- */

/* Every window of `period` consecutive entries of seq[0..npicks) holds
 * server i exactly want[i] times (servers with want 0 never appear). */
static void check_windows(const size_t *s, size_t npicks, size_t n, const unsigned *want,
			  unsigned period)
{
	unsigned count[MAXN] = { 0 };

	assert_true(npicks >= period);
	for (size_t k = 0; k < npicks; k++) {
		assert_true(s[k] < n);
		count[s[k]]++;
		if (k >= period)
			count[s[k - period]]--;
		if (k + 1 >= period) {
			for (size_t i = 0; i < n; i++)
				if (count[i] != want[i])
					fail_msg("window ending at pick %zu: server %zu chosen %u times, want %u",
						 k, i, count[i], want[i]);
		}
	}
}

static void pick_many(const struct moat_lb_ops *ops, void *st, const unsigned *w, size_t n,
		      size_t npicks)
{
	for (size_t k = 0; k < npicks; k++)
		seq[k] = pick(ops, st, w, n, NULL, NULL, 0);
}

static void run_windows(const struct moat_lb_ops *ops, const unsigned *w, size_t n)
{
	void *st = ops->create(w, NULL, n);

	assert_non_null(st);
	pick_many(ops, st, w, n, PICKS);
	check_windows(seq, PICKS, n, w, wsum(w, n));
	ops->destroy(st);
}

static void test_rr_shares_exact_per_window(void **state)
{
	static const unsigned w1[] = { 1 };
	static const unsigned w2[] = { 1, 1 };
	static const unsigned w3[] = { 5, 1, 1 };
	static const unsigned w4[] = { 3, 2 };
	static const unsigned w5[] = { 1000, 1, 999, 7 };
	static const unsigned w6[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	static const unsigned w7[] = { 1000, 1000, 1000 };
	static const unsigned w8[] = { 1, 1000 };

	(void)state;
	/* least connections with every server idle is the same rotation */
	for (int k = 0; k < 2; k++) {
		const struct moat_lb_ops *ops = k ? &moat_lb_least_conn : &moat_lb_round_robin;

		run_windows(ops, w1, 1);
		run_windows(ops, w2, 2);
		run_windows(ops, w3, 3);
		run_windows(ops, w4, 2);
		run_windows(ops, w5, 4);
		run_windows(ops, w6, 16);
		run_windows(ops, w7, 3);
		run_windows(ops, w8, 2);
	}
}

static void test_rr_shares_exact_random_weights(void **state)
{
	(void)state;
	rng_state = 0x2545f4914f6cdd1dull;
	for (int round = 0; round < 40; round++) {
		unsigned w[MAXN];
		size_t n = 1 + (size_t)(rnd() % MAXN);

		for (size_t i = 0; i < n; i++)
			w[i] = 1 + (unsigned)(rnd() % (round < 20 ? 10 : 1000));
		run_windows(&moat_lb_round_robin, w, n);
	}
}

/* The classic sequence: a a b a c a a, repeated. */
static void test_rr_five_one_one_not_bursty(void **state)
{
	static const unsigned w[] = { 5, 1, 1 };
	static const size_t want[] = { 0, 0, 1, 0, 2, 0, 0 };
	void *st = moat_lb_round_robin.create(w, NULL, 3);
	size_t run = 0, longest = 0;

	(void)state;
	assert_non_null(st);
	pick_many(&moat_lb_round_robin, st, w, 3, 700);
	moat_lb_round_robin.destroy(st);
	for (size_t k = 0; k < 700; k++) {
		if (seq[k] != want[k % 7])
			fail_msg("pick %zu: server %zu, want %zu", k, seq[k], want[k % 7]);
		run = k && seq[k] == seq[k - 1] ? run + 1 : 1;
		if (run > longest)
			longest = run;
		if (seq[k] != 0)
			assert_true(run == 1);   /* b and c never twice in a row */
	}
	/* within a period a is never chosen more than twice in a row; across
	 * the boundary ("... a a | a a b ...") four times, still under its
	 * share of 5 */
	assert_int_equal(longest, 4);
}

/* Equal weights: plain round robin in index order. */
static void test_rr_equal_weights_rotate(void **state)
{
	static const unsigned w[] = { 3, 3, 3, 3 };
	void *st = moat_lb_round_robin.create(w, NULL, 4);

	(void)state;
	assert_non_null(st);
	pick_many(&moat_lb_round_robin, st, w, 4, 400);
	moat_lb_round_robin.destroy(st);
	for (size_t k = 0; k < 400; k++)
		assert_int_equal(seq[k], k % 4);
}

static void test_rr_ineligible_skipped(void **state)
{
	static const unsigned w[] = { 5, 1, 1 };
	static const unsigned no_a[] = { 0, 1, 1 };
	static const unsigned only_a[] = { 5, 0, 0 };
	static const unsigned no_b[] = { 5, 0, 1 };
	void *st;

	(void)state;
	st = moat_lb_round_robin.create(w, NULL, 3);
	pick_many(&moat_lb_round_robin, st, no_a, 3, 1000);
	for (size_t k = 0; k < 1000; k++)
		assert_int_equal(seq[k], 1 + k % 2);     /* b c b c ... */
	moat_lb_round_robin.destroy(st);

	st = moat_lb_round_robin.create(w, NULL, 3);
	pick_many(&moat_lb_round_robin, st, only_a, 3, 100);
	for (size_t k = 0; k < 100; k++)
		assert_int_equal(seq[k], 0);
	moat_lb_round_robin.destroy(st);

	st = moat_lb_round_robin.create(w, NULL, 3);
	pick_many(&moat_lb_round_robin, st, no_b, 3, 6000);
	check_windows(seq, 6000, 3, no_b, 6);
	moat_lb_round_robin.destroy(st);
}

/* After eligibility churned, all eligible again: the shares come back. */
static void test_rr_recovers_after_churn(void **state)
{
	static const unsigned w[] = { 4, 3, 2, 1, 7 };
	unsigned cw[5];
	unsigned count[5] = { 0 };
	void *st = moat_lb_round_robin.create(w, NULL, 5);

	(void)state;
	assert_non_null(st);
	rng_state = 0x853c49e6748fea9bull;
	for (size_t k = 0; k < PICKS; k++) {
		if (k % 37 == 0)
			for (size_t i = 0; i < 5; i++)
				cw[i] = rnd() % 3 ? w[i] : 0;
		(void)pick(&moat_lb_round_robin, st, cw, 5, NULL, NULL, 0);
	}
	for (size_t k = 0; k < 1000; k++)
		(void)pick(&moat_lb_round_robin, st, w, 5, NULL, NULL, 0);
	pick_many(&moat_lb_round_robin, st, w, 5, 17 * 100);
	moat_lb_round_robin.destroy(st);
	for (size_t k = 0; k < 17 * 100; k++)
		count[seq[k]]++;
	for (size_t i = 0; i < 5; i++)
		assert_true(count[i] + 5 >= w[i] * 100 && count[i] <= w[i] * 100 + 5);
}

/* Effective weights (slow start) change the shares at once. */
static void test_rr_effective_weights(void **state)
{
	static const unsigned conf_w[] = { 4, 4 };
	static const unsigned ramp[] = { 4, 1 };
	static const unsigned want[] = { 4, 1 };
	void *st = moat_lb_round_robin.create(conf_w, NULL, 2);

	(void)state;
	assert_non_null(st);
	pick_many(&moat_lb_round_robin, st, ramp, 2, 5000);
	moat_lb_round_robin.destroy(st);
	check_windows(seq, 5000, 2, want, 5);
}

/* ---- least connections ---- */

static void test_least_picks_least_loaded(void **state)
{
	static const unsigned w1[] = { 1, 1, 1 };
	static const unsigned a1[] = { 3, 1, 2 };
	static const unsigned w2[] = { 10, 1 };
	static const unsigned a2[] = { 5, 1 };       /* 0.5 per weight vs 1 */
	static const unsigned w3[] = { 1, 10 };
	static const unsigned a3[] = { 1, 11 };      /* 1 vs 1.1 */
	void *st = moat_lb_least_conn.create(w1, NULL, 3);

	(void)state;
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(&moat_lb_least_conn, st, w1, 3, a1, NULL, 0), 1);
	moat_lb_least_conn.destroy(st);
	st = moat_lb_least_conn.create(w2, NULL, 2);
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(&moat_lb_least_conn, st, w2, 2, a2, NULL, 0), 0);
	moat_lb_least_conn.destroy(st);
	st = moat_lb_least_conn.create(w3, NULL, 2);
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(&moat_lb_least_conn, st, w3, 2, a3, NULL, 0), 0);
	moat_lb_least_conn.destroy(st);
}

/* Ties rotate: among the idle servers 0, 2, 4 each gets a third, in turn;
 * the loaded 1 and 3 get nothing. Weighted ties share by weight. */
static void test_least_spreads_ties(void **state)
{
	static const unsigned w[] = { 1, 1, 1, 1, 1 };
	static const unsigned a[] = { 0, 5, 0, 5, 0 };
	static const unsigned w2[] = { 4, 1 };
	static const unsigned a2[] = { 8, 2 };       /* 2 per weight each */
	static const unsigned want2[] = { 4, 1 };
	unsigned count[5] = { 0 };
	void *st = moat_lb_least_conn.create(w, NULL, 5);

	(void)state;
	for (size_t k = 0; k < 3000; k++) {
		seq[k] = pick(&moat_lb_least_conn, st, w, 5, a, NULL, 0);
		count[seq[k]]++;
		if (k)
			assert_true(seq[k] != seq[k - 1]);
	}
	moat_lb_least_conn.destroy(st);
	assert_int_equal(count[0], 1000);
	assert_int_equal(count[1], 0);
	assert_int_equal(count[2], 1000);
	assert_int_equal(count[3], 0);
	assert_int_equal(count[4], 1000);

	st = moat_lb_least_conn.create(w2, NULL, 2);
	for (size_t k = 0; k < 5000; k++)
		seq[k] = pick(&moat_lb_least_conn, st, w2, 2, a2, NULL, 0);
	moat_lb_least_conn.destroy(st);
	check_windows(seq, 5000, 2, want2, 5);
}

/* ---- random two ---- */

/* With 8 servers of weight 1, active {100, 0, ..., 0}: server 0 is chosen
 * only when both candidates are server 0, which distinct candidates rule
 * out: 0 picks in 100,000; the 7 idle ones share the rest evenly. Random
 * loads: the single most loaded server is never chosen. */
static void test_p2c_avoids_loaded(void **state)
{
	static const unsigned w[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	static const unsigned a[] = { 100, 0, 0, 0, 0, 0, 0, 0 };
	unsigned count[8] = { 0 }, ra[8];
	void *st = moat_lb_random_two.create(w, NULL, 8);

	(void)state;
	rng_state = 0xdeadbeefcafef00dull;
	for (unsigned k = 0; k < PICKS; k++)
		count[pick(&moat_lb_random_two, st, w, 8, a, NULL, 0)]++;
	assert_int_equal(count[0], 0);
	for (size_t i = 1; i < 8; i++)
		assert_true(count[i] > PICKS / 7 - 1000 && count[i] < PICKS / 7 + 1000);

	for (unsigned k = 0; k < PICKS; k++) {
		size_t top = 0, r;

		for (size_t i = 0; i < 8; i++) {
			ra[i] = (unsigned)(rnd() % 50);
			if (ra[i] > ra[top])
				top = i;
		}
		ra[top] = 50;       /* one strict maximum */
		r = pick(&moat_lb_random_two, st, w, 8, ra, NULL, 0);
		assert_true(r != top);
	}
	moat_lb_random_two.destroy(st);
}

/* Two servers: the candidates are both of them, so the less loaded per
 * weight always wins. */
static void test_p2c_two_servers_least_loaded(void **state)
{
	static const unsigned w[] = { 2, 1 };
	static const unsigned a1[] = { 3, 1 };       /* 1.5 vs 1 */
	static const unsigned a2[] = { 1, 1 };       /* 0.5 vs 1 */
	void *st = moat_lb_random_two.create(w, NULL, 2);

	(void)state;
	for (int k = 0; k < 1000; k++) {
		assert_int_equal(pick(&moat_lb_random_two, st, w, 2, a1, NULL, 0), 1);
		assert_int_equal(pick(&moat_lb_random_two, st, w, 2, a2, NULL, 0), 0);
	}
	moat_lb_random_two.destroy(st);
}

/* ---- ewma ---- */

/* Idle, a server 10x slower than the others: never chosen (it is in a
 * pair with a faster one every time). Under load in the simulation: under
 * 10% of the picks. */
static void test_ewma_prefers_fast(void **state)
{
	static const unsigned w[] = { 1, 1, 1 };
	static const uint64_t l[] = { 1000, 1000, 10000 };
	unsigned count[3] = { 0 };
	void *st = moat_lb_ewma.create(w, NULL, 3);

	(void)state;
	rng_state = 0x0123456789abcdefull;
	for (unsigned k = 0; k < PICKS; k++)
		count[pick(&moat_lb_ewma, st, w, 3, NULL, l, 0)]++;
	moat_lb_ewma.destroy(st);
	assert_int_equal(count[2], 0);

	sim.n = 3;
	for (size_t i = 0; i < 3; i++) {
		sim.service[i] = i == 2 ? 100 : 10;
		sim.latency[i] = sim.service[i] * 100;
	}
	for (unsigned per_tick = 1; per_tick <= 4; per_tick *= 2) {
		double slow;

		simulate(&moat_lb_ewma, w, PICKS / per_tick, per_tick);
		slow = (double)sim.count[2] / PICKS;
		print_message("  ewma, %u request(s) per tick served in 10 ticks (x2) and 100: "
			      "slow server share %.4f\n", per_tick, slow);
		assert_true(slow < 0.10);
		assert_true(sim.count[0] > PICKS / 3 && sim.count[1] > PICKS / 3);
	}
}

/* Load counts too: at equal latency the busier server loses. */
static void test_ewma_weighs_load(void **state)
{
	static const unsigned w[] = { 1, 1 };
	static const unsigned a[] = { 3, 0 };
	static const uint64_t l1[] = { 100, 300 };   /* 100*4 > 300*1 */
	static const uint64_t l2[] = { 100, 500 };   /* 100*4 < 500*1 */
	void *st = moat_lb_ewma.create(w, NULL, 2);

	(void)state;
	for (int k = 0; k < 1000; k++) {
		assert_int_equal(pick(&moat_lb_ewma, st, w, 2, a, l1, 0), 1);
		assert_int_equal(pick(&moat_lb_ewma, st, w, 2, a, l2, 0), 0);
	}
	moat_lb_ewma.destroy(st);
}

/* A server without a figure yet (latency 0) counts as the fastest known
 * one, so it gets tried: with {0, 100, 100} idle it gets its third; beside
 * {100, 500} it beats the slow one; all unknown: shares by weight. */
static void test_ewma_unknown_latency_tried(void **state)
{
	static const unsigned w[] = { 1, 1, 1 };
	static const uint64_t l1[] = { 0, 100, 100 };
	static const uint64_t l2[] = { 0, 100, 500 };
	static const unsigned w3[] = { 3, 1 };
	static const uint64_t l3[] = { 0, 0 };
	unsigned c1[3] = { 0 }, c2[3] = { 0 }, c3[2] = { 0 };
	void *st = moat_lb_ewma.create(w, NULL, 3);

	(void)state;
	rng_state = 0x0badc0ffee0ddf00ull;
	for (unsigned k = 0; k < PICKS; k++) {
		c1[pick(&moat_lb_ewma, st, w, 3, NULL, l1, 0)]++;
		c2[pick(&moat_lb_ewma, st, w, 3, NULL, l2, 0)]++;
	}
	moat_lb_ewma.destroy(st);
	assert_true(c1[0] > PICKS / 3 - 1000 && c1[0] < PICKS / 3 + 1000);
	assert_int_equal(c2[2], 0);
	assert_true(c2[0] > PICKS / 2 - 1000 && c2[0] < PICKS / 2 + 1000);

	st = moat_lb_ewma.create(w3, NULL, 2);
	for (unsigned k = 0; k < PICKS; k++)
		c3[pick(&moat_lb_ewma, st, w3, 2, NULL, l3, 0)]++;
	moat_lb_ewma.destroy(st);
	assert_true(c3[0] > PICKS * 3 / 4 - 1000 && c3[0] < PICKS * 3 / 4 + 1000);
}

/* ---- hash (Maglev) ---- */

static void hash_map(void *st, const unsigned *w, size_t n, size_t *out)
{
	for (unsigned k = 0; k < PICKS; k++)
		out[k] = pick(&moat_lb_hash, st, w, n, NULL, NULL, key_hash(k));
}

static size_t map_a[PICKS], map_b[PICKS];

static void test_hash_same_key_same_server(void **state)
{
	static const unsigned w[] = { 1, 2, 1, 3, 1 };
	void *s1 = moat_lb_hash.create(w, NULL, 5), *s2 = moat_lb_hash.create(w, NULL, 5);

	(void)state;
	assert_non_null(s1);
	assert_non_null(s2);
	hash_map(s1, w, 5, map_a);
	hash_map(s2, w, 5, map_b);
	for (unsigned k = 0; k < PICKS; k++) {
		assert_int_equal(map_a[k], map_b[k]);
		assert_int_equal(pick(&moat_lb_hash, s1, w, 5, NULL, NULL, key_hash(k)), map_a[k]);
	}
	moat_lb_hash.destroy(s1);
	moat_lb_hash.destroy(s2);
}

static void test_hash_weighted_two_to_one(void **state)
{
	static const unsigned w[] = { 2, 1 };
	unsigned count[2] = { 0 };
	void *st = moat_lb_hash.create(w, NULL, 2);

	(void)state;
	hash_map(st, w, 2, map_a);
	moat_lb_hash.destroy(st);
	for (unsigned k = 0; k < PICKS; k++)
		count[map_a[k]]++;
	print_message("  hash {2,1}: %u / %u of %u keys\n", count[0], count[1], PICKS);
	assert_true(count[0] > PICKS * 2 / 3 - 1000 && count[0] < PICKS * 2 / 3 + 1000);
}

/* 10 servers, then an 11th appended: about 1/11 of the keys move (the
 * minimum), a few more because Maglev shuffles some entries among the old
 * servers too. */
static void test_hash_add_server_moves_few(void **state)
{
	static const unsigned w[11] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	void *s10 = moat_lb_hash.create(w, NULL, 10), *s11 = moat_lb_hash.create(w, NULL, 11);
	unsigned moved = 0, to_new = 0;

	(void)state;
	hash_map(s10, w, 10, map_a);
	hash_map(s11, w, 11, map_b);
	moat_lb_hash.destroy(s10);
	moat_lb_hash.destroy(s11);
	for (unsigned k = 0; k < PICKS; k++) {
		moved += map_a[k] != map_b[k];
		to_new += map_b[k] == 10;
	}
	print_message("  hash 10 -> 11 servers: %u of %u keys moved (%.2f%%), %u to the new one, "
		      "%u between old ones\n", moved, PICKS, 100.0 * moved / PICKS, to_new,
		      moved - to_new);
	assert_true(moved > PICKS * 5 / 100 && moved < PICKS * 15 / 100);
	assert_true(to_new > PICKS / 11 - 1000 && to_new < PICKS / 11 + 1000);
}

/* Server 3 of 10 made ineligible: exactly its keys move, spread over the
 * nine others; made eligible again, they come back. */
static void test_hash_ineligible_moves_only_its_keys(void **state)
{
	unsigned w[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	unsigned spread[10] = { 0 };
	void *st = moat_lb_hash.create(w, NULL, 10);
	unsigned moved = 0, had = 0;

	(void)state;
	hash_map(st, w, 10, map_a);
	w[3] = 0;
	hash_map(st, w, 10, map_b);
	for (unsigned k = 0; k < PICKS; k++) {
		had += map_a[k] == 3;
		moved += map_a[k] != map_b[k];
		if (map_a[k] == 3) {
			assert_true(map_b[k] != 3);
			spread[map_b[k]]++;
		} else {
			assert_int_equal(map_b[k], map_a[k]);
		}
	}
	print_message("  hash, server 3 of 10 ineligible: %u keys moved, %u were on it\n", moved, had);
	assert_int_equal(moved, had);
	for (size_t i = 0; i < 10; i++)
		if (i != 3)
			assert_true(spread[i] > had / 9 / 2 && spread[i] < had / 9 * 2);
	w[3] = 1;
	hash_map(st, w, 10, map_b);
	assert_memory_equal(map_a, map_b, sizeof(map_a));
	moat_lb_hash.destroy(st);
}

/* Rebuilt without its last server (10 -> 9): the keys on it move, and
 * only a few others (Maglev is near-minimal, not minimal). Removing a
 * server in the middle shifts the indexes after it: that is the caller's
 * contract (indexes stable), shown here only as a figure. */
static void test_hash_rebuild_without_server(void **state)
{
	static const unsigned w[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	void *s10 = moat_lb_hash.create(w, NULL, 10), *s9 = moat_lb_hash.create(w, NULL, 9);
	unsigned had = 0, others_moved = 0;

	(void)state;
	hash_map(s10, w, 10, map_a);
	hash_map(s9, w, 9, map_b);
	moat_lb_hash.destroy(s10);
	moat_lb_hash.destroy(s9);
	for (unsigned k = 0; k < PICKS; k++) {
		if (map_a[k] == 9)
			had++;
		else
			others_moved += map_a[k] != map_b[k];
	}
	print_message("  hash rebuilt 10 -> 9 servers: %u keys were on the removed one, "
		      "%u others moved (%.2f%%)\n", had, others_moved, 100.0 * others_moved / PICKS);
	assert_true(others_moved < PICKS * 2 / 100);

	/* server 4 removed instead: 5..9 become 4..8 */
	had = others_moved = 0;
	for (unsigned k = 0; k < PICKS; k++) {
		if (map_a[k] == 4)
			had++;
		else
			others_moved += map_b[k] != (map_a[k] < 4 ? map_a[k] : map_a[k] - 1);
	}
	print_message("  hash rebuilt without server 4 of 10 (indexes shift): %u keys were on it, "
		      "%u others moved (%.2f%%)\n", had, others_moved, 100.0 * others_moved / PICKS);
}

/* With stable ids (the caller passes one per server, e.g. a hash of its
 * address), removing a server from the middle moves its keys and only a
 * few others, whatever the indexes do. */
static void test_hash_rebuild_with_ids_middle_removed(void **state)
{
	static const unsigned w[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	uint64_t id10[10], id9[9];
	void *s10, *s9;
	unsigned had = 0, others_moved = 0;

	(void)state;
	for (unsigned i = 0; i < 10; i++)
		id10[i] = moat_lb_hash_bytes(&i, sizeof(i));
	for (unsigned i = 0, j = 0; i < 10; i++)
		if (i != 4)
			id9[j++] = id10[i];
	s10 = moat_lb_hash.create(w, id10, 10);
	s9 = moat_lb_hash.create(w, id9, 9);
	hash_map(s10, w, 10, map_a);
	hash_map(s9, w, 9, map_b);
	moat_lb_hash.destroy(s10);
	moat_lb_hash.destroy(s9);
	for (unsigned k = 0; k < PICKS; k++) {
		if (map_a[k] == 4)
			had++;
		else
			others_moved += map_b[k] != (map_a[k] < 4 ? map_a[k] : map_a[k] - 1);
	}
	print_message("  hash with ids, server 4 of 10 removed: %u keys were on it, %u others moved "
		      "(%.2f%%)\n", had, others_moved, 100.0 * others_moved / PICKS);
	assert_true(others_moved < PICKS * 3 / 100);
}

/* Above 655 servers the table grows past 65537 entries: still even. */
static void test_hash_many_servers(void **state)
{
	static unsigned w[1024];
	static unsigned count[1024];
	void *st;
	unsigned lo = PICKS, hi = 0;

	(void)state;
	for (size_t i = 0; i < 1024; i++)
		w[i] = 1;
	st = moat_lb_hash.create(w, NULL, 1024);
	assert_non_null(st);
	for (unsigned k = 0; k < 10 * PICKS; k++)
		count[pick(&moat_lb_hash, st, w, 1024, NULL, NULL, key_hash(k))]++;
	moat_lb_hash.destroy(st);
	for (size_t i = 0; i < 1024; i++) {
		lo = count[i] < lo ? count[i] : lo;
		hi = count[i] > hi ? count[i] : hi;
	}
	print_message("  hash 1024 servers, 1,000,000 keys: %u..%u per server (mean %.0f)\n", lo, hi,
		      10.0 * PICKS / 1024);
	/* mean 977, sd ~31 from the keys, table shares within ~1% */
	assert_true(lo > 800 && hi < 1150);
}

/* ---- moat_lb_ewma_update ---- */

static void test_ewma_update(void **state)
{
	uint64_t v;

	(void)state;
	/* unknown, peak, equal, no decay constant */
	assert_int_equal(moat_lb_ewma_update(0, 500, 10, 1000), 500);
	assert_int_equal(moat_lb_ewma_update(100, 500, 10, 1000), 500);
	assert_int_equal(moat_lb_ewma_update(100, 500, 0, 1000), 500);
	assert_int_equal(moat_lb_ewma_update(500, 500, 10, 1000), 500);
	assert_int_equal(moat_lb_ewma_update(500, 100, 10, 0), 100);
	/* no time passed: a lower sample changes nothing */
	assert_int_equal(moat_lb_ewma_update(500, 100, 0, 1000), 500);
	/* w = exp(-dt/tau), values from libm: round(old*w + sample*(1-w)) */
	assert_int_equal(moat_lb_ewma_update(1000000000, 0, 1000, 1000), 367879441);
	assert_int_equal(moat_lb_ewma_update(1000000000, 0, 500, 1000), 606530660);
	assert_int_equal(moat_lb_ewma_update(1000000000, 0, 10000, 1000), 45400);
	assert_int_equal(moat_lb_ewma_update(1000000000, 0, 1, 10000), 999900005);
	assert_int_equal(moat_lb_ewma_update(2000000, 1000000, 3000, 1000), 1049787);
	assert_int_equal(moat_lb_ewma_update(1000000000, 0, 40000, 1000), 0);
	assert_int_equal(moat_lb_ewma_update(900, 100, 100, 1000), 824);
	/* near 2^64: right to 1e-12 (libm: 6786177901268885504), no overflow */
	v = moat_lb_ewma_update(UINT64_MAX, 0, 1000, 1000);
	assert_true(v > 6786177901268885504ull - 6786177 && v < 6786177901268885504ull + 6786177);
	assert_int_equal(moat_lb_ewma_update(UINT64_MAX, UINT64_MAX - 1, 1, 1000), UINT64_MAX - 1);
	/* far past tau: the sample */
	assert_int_equal(moat_lb_ewma_update(1000000, 300, 1000000, 1), 300);
	/* a tiny step still moves by 1, never below the sample */
	assert_int_equal(moat_lb_ewma_update(1000, 999, 1, 1000000), 999);
	assert_int_equal(moat_lb_ewma_update(1000, 100, 1, 1000000), 999);
	/* decays monotonically to the sample with an update every ms */
	v = 50000;
	for (int ms = 0; ms < 100000; ms++) {
		uint64_t next = moat_lb_ewma_update(v, 2000, 1, 1000);

		assert_true(next <= v && next >= 2000);
		assert_true(v == 2000 || next < v);
		v = next;
	}
	assert_int_equal(v, 2000);
}

/* ---- moat_lb_hash_bytes ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pinned values: a change of the function moves every hash-balanced
 * client and every sticky id, so it must be deliberate. */
static void test_hash_bytes_stable(void **state)
{
	static const struct {
		const char *s;
		uint64_t h;
	} pin[] = {
		{ "", 0x0d2f029c436c4567ull },
		{ "a", 0x3c353ba2c2dfca9cull },
		{ "abc", 0x734d8cc0638565faull },
		{ "10.0.0.1", 0x3db71eb67f65dfa6ull },
		{ "2001:db8::1", 0x37c4b68eb52c16cfull },
		{ "/index.html?q=1", 0xfdccaaacedbab81bull },
		{ "0123456789abcdef", 0x4b6f8789ae2e4d3bull },
		{ "0123456789abcdefg", 0xaadab2dd3ffac0f7ull },
		{ "session=4b1d0c3e-77a2-4f1e-9a55-0e3c1d2b8f60", 0x51ab775ccdb4f06dull },
	};

	(void)state;
	assert_int_equal(moat_lb_hash_bytes(NULL, 0), moat_lb_hash_bytes("", 0));
	for (size_t i = 0; i < sizeof(pin) / sizeof(pin[0]); i++) {
		uint64_t h = moat_lb_hash_bytes(pin[i].s, strlen(pin[i].s));

		assert_int_equal(h, pin[i].h);
	}
}

/* Every string of 0..3 bytes from a 40-letter alphabet, and every length
 * 1..256 of zero bytes: 65,897 inputs, no two hashes equal. */
static void test_hash_bytes_distinct(void **state)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_/";
	static unsigned char zeros[256];
	size_t na = sizeof(abc) - 1, cap = 1 + 40 + 1600 + 64000 + 256, len = 0;
	uint64_t *h = malloc(cap * sizeof(*h));
	char b[3];

	(void)state;
	assert_non_null(h);
	h[len++] = moat_lb_hash_bytes(b, 0);
	for (size_t x = 0; x < na; x++) {
		b[0] = abc[x];
		h[len++] = moat_lb_hash_bytes(b, 1);
		for (size_t y = 0; y < na; y++) {
			b[1] = abc[y];
			h[len++] = moat_lb_hash_bytes(b, 2);
			for (size_t z = 0; z < na; z++) {
				b[2] = abc[z];
				h[len++] = moat_lb_hash_bytes(b, 3);
			}
		}
	}
	for (size_t k = 1; k <= 256; k++)
		h[len++] = moat_lb_hash_bytes(zeros, k);
	assert_int_equal(len, cap);
	qsort(h, len, sizeof(*h), cmp_u64);
	for (size_t k = 1; k < len; k++)
		if (h[k] == h[k - 1])
			fail_msg("collision at 0x%016llx", (unsigned long long)h[k]);
	free(h);
}

/* Flipping one input bit flips each output bit with probability 1/2:
 * over 200 random inputs of each length 1..64 and every bit, the mean of
 * flipped bits is 32 +- 0.5 and no output bit is stuck (each flips 40% to
 * 60% of the time). */
static void test_hash_bytes_avalanche(void **state)
{
	unsigned char b[64];
	static unsigned per_bit[64];
	uint64_t total = 0, trials = 0;

	(void)state;
	rng_state = 0x5eed5eed5eed5eedull;
	for (size_t n = 1; n <= 64; n++) {
		for (int r = 0; r < 200; r++) {
			uint64_t h0;

			for (size_t i = 0; i < n; i++)
				b[i] = (unsigned char)rnd();
			h0 = moat_lb_hash_bytes(b, n);
			for (size_t bit = 0; bit < 8 * n; bit += 1 + (n > 16) * 3) {
				uint64_t d;

				b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
				d = h0 ^ moat_lb_hash_bytes(b, n);
				b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
				total += (uint64_t)__builtin_popcountll(d);
				trials++;
				for (int o = 0; o < 64; o++)
					per_bit[o] += (unsigned)(d >> o & 1);
			}
		}
	}
	print_message("  avalanche: %.3f bits of 64 flip on average over %llu flips\n",
		      (double)total / trials, (unsigned long long)trials);
	assert_true((double)total / trials > 31.5 && (double)total / trials < 32.5);
	for (int o = 0; o < 64; o++)
		assert_true(per_bit[o] > trials * 4 / 10 && per_bit[o] < trials * 6 / 10);
}

/* Sequential keys (IPv4 addresses 10.0.0.0 and up, as 4 bytes) fall
 * evenly into 7 buckets by hash % 7. */
static void test_hash_bytes_buckets(void **state)
{
	unsigned count[7] = { 0 };

	(void)state;
	for (uint32_t k = 0; k < 7 * PICKS; k++) {
		unsigned char ip[4] = { 10, (unsigned char)(k >> 16), (unsigned char)(k >> 8),
					(unsigned char)k };

		count[moat_lb_hash_bytes(ip, 4) % 7]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(count[i] > PICKS - 1500 && count[i] < PICKS + 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_maps_algorithms),
		cmocka_unit_test(test_create_edges),
		cmocka_unit_test(test_idle_shares_every_algorithm),
		cmocka_unit_test(test_ineligible_skipped_every_algorithm),
		cmocka_unit_test(test_none_eligible_keeps_state),
		cmocka_unit_test(test_weights_scale_free),
		cmocka_unit_test(test_loaded_shares_follow_weights),
		cmocka_unit_test(test_rr_shares_exact_per_window),
		cmocka_unit_test(test_rr_shares_exact_random_weights),
		cmocka_unit_test(test_rr_five_one_one_not_bursty),
		cmocka_unit_test(test_rr_equal_weights_rotate),
		cmocka_unit_test(test_rr_ineligible_skipped),
		cmocka_unit_test(test_rr_recovers_after_churn),
		cmocka_unit_test(test_rr_effective_weights),
		cmocka_unit_test(test_least_picks_least_loaded),
		cmocka_unit_test(test_least_spreads_ties),
		cmocka_unit_test(test_p2c_avoids_loaded),
		cmocka_unit_test(test_p2c_two_servers_least_loaded),
		cmocka_unit_test(test_ewma_prefers_fast),
		cmocka_unit_test(test_ewma_weighs_load),
		cmocka_unit_test(test_ewma_unknown_latency_tried),
		cmocka_unit_test(test_hash_same_key_same_server),
		cmocka_unit_test(test_hash_weighted_two_to_one),
		cmocka_unit_test(test_hash_add_server_moves_few),
		cmocka_unit_test(test_hash_ineligible_moves_only_its_keys),
		cmocka_unit_test(test_hash_rebuild_without_server),
		cmocka_unit_test(test_hash_rebuild_with_ids_middle_removed),
		cmocka_unit_test(test_hash_many_servers),
		cmocka_unit_test(test_ewma_update),
		cmocka_unit_test(test_hash_bytes_stable),
		cmocka_unit_test(test_hash_bytes_distinct),
		cmocka_unit_test(test_hash_bytes_avalanche),
		cmocka_unit_test(test_hash_bytes_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
