/*
 * rr_test.c - unit tests of src/upstream/rr.c, smooth weighted round robin.
 *
 * Checked: over 100,000 picks every window of sum(weights) consecutive
 * picks holds each server exactly weight times (aligned or sliding: the
 * sequence repeats with that period); weights {5,1,1} give the classic
 * non-bursty "a a b a c a a"; ineligible servers are skipped and the
 * eligible ones keep their shares among themselves; no eligible server
 * gives n and leaves the state alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/rr.h"

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

static void pick_many(int *cur, const unsigned *w, const unsigned char *elig, size_t n,
		      size_t npicks)
{
	for (size_t k = 0; k < npicks; k++)
		seq[k] = moat_rr_pick(cur, w, elig, n);
}

static void run_shares(const unsigned *w, size_t n)
{
	int cur[MAXN] = { 0 };
	unsigned sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += w[i];
	pick_many(cur, w, NULL, n, PICKS);
	check_windows(seq, PICKS, n, w, sum);
	/* after whole periods the state is back where it started */
	if (PICKS % sum == 0)
		for (size_t i = 0; i < n; i++)
			assert_int_equal(cur[i], 0);
}

static void test_shares_exact_per_window(void **state)
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
	run_shares(w1, 1);
	run_shares(w2, 2);
	run_shares(w3, 3);
	run_shares(w4, 2);
	run_shares(w5, 4);
	run_shares(w6, 16);
	run_shares(w7, 3);
	run_shares(w8, 2);
}

static void test_shares_exact_random_weights(void **state)
{
	(void)state;
	rng_state = 0x2545f4914f6cdd1dull;
	for (int round = 0; round < 40; round++) {
		unsigned w[MAXN];
		size_t n = 1 + (size_t)(rnd() % MAXN);

		for (size_t i = 0; i < n; i++)
			w[i] = 1 + (unsigned)(rnd() % (round < 20 ? 10 : 1000));
		run_shares(w, n);
	}
}

/* The classic sequence: a a b a c a a, repeated. */
static void test_five_one_one_not_bursty(void **state)
{
	static const unsigned w[] = { 5, 1, 1 };
	static const size_t want[] = { 0, 0, 1, 0, 2, 0, 0 };
	int cur[3] = { 0, 0, 0 };
	size_t run = 0, longest = 0;

	(void)state;
	pick_many(cur, w, NULL, 3, 700);
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
static void test_equal_weights_rotate(void **state)
{
	static const unsigned w[] = { 3, 3, 3, 3 };
	int cur[4] = { 0 };

	(void)state;
	pick_many(cur, w, NULL, 4, 400);
	for (size_t k = 0; k < 400; k++)
		assert_int_equal(seq[k], k % 4);
}

static void test_ineligible_skipped(void **state)
{
	static const unsigned w[] = { 5, 1, 1 };
	static const unsigned char no_a[] = { 0, 1, 1 };
	static const unsigned char only_a[] = { 1, 0, 0 };
	static const unsigned char no_b[] = { 1, 0, 1 };
	static const unsigned want_no_b[] = { 5, 0, 1 };
	int cur[3] = { 0 };

	(void)state;
	pick_many(cur, w, no_a, 3, 1000);
	for (size_t k = 0; k < 1000; k++)
		assert_int_equal(seq[k], 1 + k % 2);     /* b c b c ... */

	memset(cur, 0, sizeof(cur));
	pick_many(cur, w, only_a, 3, 100);
	for (size_t k = 0; k < 100; k++)
		assert_int_equal(seq[k], 0);

	memset(cur, 0, sizeof(cur));
	pick_many(cur, w, no_b, 3, 6000);
	check_windows(seq, 6000, 3, want_no_b, 6);
}

/* Eligibility changing on the way: an ineligible server is never chosen,
 * and the picks stay valid indexes. */
static void test_eligibility_changes(void **state)
{
	static const unsigned w[] = { 4, 3, 2, 1, 7 };
	unsigned char elig[5];
	int cur[5] = { 0 };

	(void)state;
	rng_state = 0x853c49e6748fea9bull;
	for (size_t k = 0; k < PICKS; k++) {
		size_t any = 0, r;

		if (k % 37 == 0)
			for (size_t i = 0; i < 5; i++)
				elig[i] = (unsigned char)(rnd() % 3 != 0);
		for (size_t i = 0; i < 5; i++)
			any += elig[i];
		r = moat_rr_pick(cur, w, elig, 5);
		if (!any) {
			assert_int_equal(r, 5);
			continue;
		}
		assert_true(r < 5);
		assert_true(elig[r]);
	}
	/* back to all eligible: exact shares again after the state settles */
	for (size_t k = 0; k < 1000; k++)
		(void)moat_rr_pick(cur, w, NULL, 5);
	pick_many(cur, w, NULL, 5, 17 * 100);
	{
		unsigned count[5] = { 0 };

		for (size_t k = 0; k < 17 * 100; k++)
			count[seq[k]]++;
		for (size_t i = 0; i < 5; i++)
			assert_true(count[i] + 5 >= w[i] * 100 && count[i] <= w[i] * 100 + 5);
	}
}

static void test_none_eligible_returns_n(void **state)
{
	static const unsigned w[] = { 5, 1, 1 };
	static const unsigned char none[] = { 0, 0, 0 };
	int cur[3] = { 3, -2, -1 };
	int zero = 0;
	unsigned one = 1;

	(void)state;
	assert_int_equal(moat_rr_pick(cur, w, none, 3), 3);
	assert_int_equal(cur[0], 3);            /* state untouched */
	assert_int_equal(cur[1], -2);
	assert_int_equal(cur[2], -1);
	assert_int_equal(moat_rr_pick(cur, w, NULL, 0), 0);
	assert_int_equal(moat_rr_pick(&zero, &one, none, 1), 1);
	assert_int_equal(zero, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shares_exact_per_window),
		cmocka_unit_test(test_shares_exact_random_weights),
		cmocka_unit_test(test_five_one_one_not_bursty),
		cmocka_unit_test(test_equal_weights_rotate),
		cmocka_unit_test(test_ineligible_skipped),
		cmocka_unit_test(test_eligibility_changes),
		cmocka_unit_test(test_none_eligible_returns_n),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
