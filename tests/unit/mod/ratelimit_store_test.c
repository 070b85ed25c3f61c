/*
 * ratelimit_store_test.c - unit tests of src/mod/ratelimit/store.c, the
 * node-local rate-limit store, and of moat_limit_key.
 *
 * The clock is the test's. Checked: the keyed hash is SipHash-1-3 (the
 * reference vectors) and separates policies and seeds; every verdict
 * through the store equals the GCRA math on a private tat; memory starts
 * small and stays within moat_limit_store_local_max_bytes with 1,000,000
 * keys; entries whose tat has passed are reused without evicting anyone;
 * a flood of new keys does not free a hot key from its limit; and four
 * threads hammering one key (1,000,000 takes) get exactly the GCRA
 * allowance between them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mod/ratelimit/store.h"

#define MS 1000ull
#define SEC 1000000ull

static uint64_t key_of(uint64_t n)
{
	return moat_limit_key(0x5eed5eed5eed5eedull, 3, &n, sizeof(n));
}

static void test_key(void **state)
{
	/* SipHash-1-3 of 00 01 02 ... under the all-zero key, from the
	 * reference implementation (github.com/veorq/SipHash). */
	static const uint64_t want[] = {
		0xd1fba762150c532cull, 0x68a914128e01e473ull, 0x010bac45c41e3669ull,
		0x4d4c9a4a8ef6e0adull, 0x7cc43f98813e4dbdull, 0x5abe2169dff36275ull,
		0xe3c25f87624f1cdbull, 0x2f098ab0c751325aull, 0xead411e67ebe2eeaull,
		0x75927f9d95124362ull, 0xaf9f77a65ab51a1dull, 0xfe64ce8b6617fcffull,
		0xa6baf4fb0f9fe1c2ull, 0xa0cf3211850f8e0dull, 0x7f86049379fbfe67ull,
		0xf30eb725bb91c9eaull, 0x8972188433a5c5b7ull, 0x4883c49a2c009c1dull,
	};
	unsigned char m[32];
	const char *ip = "203.0.113.7";

	(void)state;
	for (unsigned i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	for (unsigned len = 0; len < sizeof(want) / sizeof(want[0]); len++)
		assert_int_equal(moat_limit_key(0, 0, m, len), want[len]);
	/* The same identity under another policy or another seed is another
	 * key; the same inputs, the same key. */
	assert_int_equal(moat_limit_key(42, 1, ip, strlen(ip)), moat_limit_key(42, 1, ip, strlen(ip)));
	assert_int_not_equal(moat_limit_key(42, 1, ip, strlen(ip)), moat_limit_key(42, 2, ip, strlen(ip)));
	assert_int_not_equal(moat_limit_key(42, 1, ip, strlen(ip)), moat_limit_key(43, 1, ip, strlen(ip)));
}

static void test_init(void **state)
{
	struct moat_limit_store s;

	(void)state;
	assert_int_equal(moat_limit_store_local_init(&s, 0), -EINVAL);
	assert_null(s.ops);
	moat_limit_store_destroy(&s); /* safe on a cleared store */
	assert_int_equal(moat_limit_store_local_init(&s, 1), 0);
	assert_int_equal(moat_limit_store_count(&s), 0);
	moat_limit_store_destroy(&s);
	assert_null(s.ops);
}

static void test_exact_through_store(void **state)
{
	enum { NKEYS = 2000 };
	struct moat_gcra_policy pol[3] = {
		{ 100 * MS, 5, 0, 0 },
		{ 7 * MS, 40, 1, 10 },
		{ 0, 0, 0, 0 },
	};
	static uint64_t tat[NKEYS];
	struct moat_limit_store s;
	uint64_t now = 12345;

	(void)state;
	memset(tat, 0, sizeof(tat));
	assert_int_equal(moat_limit_store_local_init(&s, 100000), 0);
	srand(7);
	for (unsigned i = 0; i < 400000; i++) {
		unsigned k = (unsigned)rand() % NKEYS;
		const struct moat_gcra_policy *p = &pol[k % 3];
		struct moat_gcra_result a, b;

		now += (uint64_t)(rand() % 200);
		assert_int_equal(moat_limit_store_take(&s, key_of(k), p, now, &a), 0);
		moat_gcra_take(p, &tat[k], now, &b);
		assert_int_equal(a.verdict, b.verdict);
		assert_int_equal(a.wait_us, b.wait_us);
		assert_int_equal(a.remaining, b.remaining);
		assert_int_equal(a.reset_us, b.reset_us);
	}
	/* interval 0 keeps nothing */
	assert_true(moat_limit_store_count(&s) <= NKEYS * 2 / 3 + 1);
	assert_int_equal(moat_limit_store_local_evictions(&s), 0);
	moat_limit_store_destroy(&s);
}

static void test_million_keys(void **state)
{
	enum { N = 1000000 };
	struct moat_gcra_policy p = { SEC, 0, 0, 0 };
	struct moat_limit_store s;
	struct moat_gcra_result r;
	size_t bytes0, bytes, max, count;
	unsigned rejected = 0;

	(void)state;
	max = moat_limit_store_local_max_bytes(N);
	assert_true(max <= (size_t)N * 19);
	assert_int_equal(moat_limit_store_local_init(&s, N), 0);
	bytes0 = moat_limit_store_local_bytes(&s);
	assert_true(bytes0 <= 256 * 1024);
	for (uint64_t i = 0; i < N; i++) {
		assert_int_equal(moat_limit_store_take(&s, key_of(i), &p, 1000, &r), 0);
		assert_int_equal(r.verdict, MOAT_GCRA_PASS);
	}
	count = moat_limit_store_count(&s);
	bytes = moat_limit_store_local_bytes(&s);
	printf("1M keys: count %zu, evictions %llu, bytes %zu (%.1f per key; bound %zu), at start %zu\n",
	       count, (unsigned long long)moat_limit_store_local_evictions(&s), bytes,
	       (double)bytes / (double)count, max, bytes0);
	assert_true(count <= N);
	assert_true(count >= N - N / 100);
	assert_int_equal(count + moat_limit_store_local_evictions(&s), N);
	assert_true(bytes <= max);
	/* Every key kept is limited: its second request is refused. */
	for (uint64_t i = 0; i < N; i++) {
		moat_limit_store_take(&s, key_of(i), &p, 2000, &r);
		rejected += r.verdict == MOAT_GCRA_REJECT;
	}
	assert_true(rejected >= N - N / 50);
	assert_true(moat_limit_store_local_bytes(&s) <= max);
	moat_limit_store_destroy(&s);
}

static void test_stale_reused(void **state)
{
	struct moat_gcra_policy p = { MS, 0, 0, 0 };
	struct moat_limit_store s;
	struct moat_gcra_result r;
	uint64_t n = 0;

	(void)state;
	assert_int_equal(moat_limit_store_local_init(&s, 10000), 0);
	/* 200 rounds of 4000 new keys, each key's state gone 1 ms after its
	 * round: 800,000 keys through a store of 10,000 without an eviction. */
	for (uint64_t round = 0; round < 200; round++) {
		for (unsigned i = 0; i < 4000; i++) {
			moat_limit_store_take(&s, key_of(n++), &p, round * 10 * MS, &r);
			assert_int_equal(r.verdict, MOAT_GCRA_PASS);
		}
		assert_true(moat_limit_store_count(&s) <= 10000);
	}
	assert_int_equal(moat_limit_store_local_evictions(&s), 0);
	assert_true(moat_limit_store_local_bytes(&s) <= moat_limit_store_local_max_bytes(10000));
	moat_limit_store_destroy(&s);
}

static void test_hot_key_under_flood(void **state)
{
	struct moat_gcra_policy p = { 10 * MS, 10, 0, 0 }; /* 100/s burst 10 */
	struct moat_limit_store s;
	struct moat_gcra_result r;
	uint64_t hot[4], mirror[4] = { 0, 0, 0, 0 }, n = 1000;
	unsigned pass[4] = { 0, 0, 0, 0 };

	(void)state;
	assert_int_equal(moat_limit_store_local_init(&s, 512), 0);
	for (unsigned h = 0; h < 4; h++)
		hot[h] = key_of(h);
	/* Ten seconds; each millisecond every hot key asks once and 100 new
	 * keys arrive: ~1000 live keys for 512 places. */
	for (uint64_t t = 0; t < 10 * SEC; t += MS) {
		for (unsigned h = 0; h < 4; h++) {
			struct moat_gcra_result m;

			moat_limit_store_take(&s, hot[h], &p, t, &r);
			moat_gcra_take(&p, &mirror[h], t, &m);
			assert_int_equal(r.verdict, m.verdict);
			pass[h] += r.verdict == MOAT_GCRA_PASS;
		}
		for (unsigned i = 0; i < 100; i++)
			moat_limit_store_take(&s, key_of(n++), &p, t, &r);
	}
	/* Exactly the allowance, as if there had been no flood: 12 in the
	 * first 12 ms (each millisecond drains a tenth of a request), then
	 * one per 10 ms from 20 ms on: 998 more. */
	for (unsigned h = 0; h < 4; h++)
		assert_int_equal(pass[h], 12 + 998);
	assert_true(moat_limit_store_local_evictions(&s) > 100000);
	assert_true(moat_limit_store_count(&s) <= 512);
	moat_limit_store_destroy(&s);
}

/* ---- four threads on one key ----------------------------------------- */

#define THREADS 4
#define PHASES 100
#define PER_PHASE 2500 /* per thread: 4 x 100 x 2500 = 1,000,000 takes */

struct hammer {
	struct moat_limit_store *s;
	pthread_barrier_t *barrier;
	const struct moat_gcra_policy *p;
	unsigned id;
	unsigned passed;       /* on the shared key */
	unsigned mismatches;   /* on the thread's own keys */
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	uint64_t own[64];
	uint64_t shared = key_of(999999999);

	memset(own, 0, sizeof(own));
	for (unsigned ph = 0; ph < PHASES; ph++) {
		uint64_t now = ph * 10 * MS;

		pthread_barrier_wait(h->barrier);
		for (unsigned i = 0; i < PER_PHASE; i++) {
			struct moat_gcra_result r, m;
			unsigned k = i % 64;

			moat_limit_store_take(h->s, shared, h->p, now, &r);
			h->passed += r.verdict != MOAT_GCRA_REJECT;
			/* A key of this thread only, checked against the math. */
			moat_limit_store_take(h->s, key_of(1000000 + h->id * 64 + k), h->p, now, &r);
			moat_gcra_take(h->p, &own[k], now, &m);
			h->mismatches += r.verdict != m.verdict || r.remaining != m.remaining;
		}
	}
	return NULL;
}

static void test_threads_one_key(void **state)
{
	struct moat_gcra_policy p = { MS, 50, 0, 0 };
	struct moat_limit_store s;
	pthread_barrier_t barrier;
	pthread_t th[THREADS];
	struct hammer h[THREADS];
	unsigned total = 0, want = 0;
	uint64_t tat = 0;

	(void)state;
	/* The allowance: within a phase now is fixed, so the count does not
	 * depend on the order the threads come in. */
	for (unsigned ph = 0; ph < PHASES; ph++) {
		for (unsigned i = 0; i < THREADS * PER_PHASE; i++) {
			struct moat_gcra_result r;

			moat_gcra_take(&p, &tat, ph * 10 * MS, &r);
			want += r.verdict != MOAT_GCRA_REJECT;
		}
	}
	assert_int_equal(want, 51 + 99 * 10);

	assert_int_equal(moat_limit_store_local_init(&s, 100000), 0);
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (unsigned i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){ &s, &barrier, &p, i, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		total += h[i].passed;
		assert_int_equal(h[i].mismatches, 0);
	}
	assert_int_equal(total, want);
	pthread_barrier_destroy(&barrier);
	moat_limit_store_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_exact_through_store),
		cmocka_unit_test(test_million_keys),
		cmocka_unit_test(test_stale_reused),
		cmocka_unit_test(test_hot_key_under_flood),
		cmocka_unit_test(test_threads_one_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
