/*
 * bantable_test.c - unit tests of src/mod/ban/bantable.c, automatic bans.
 *
 * The clock is the test's (milliseconds). Checked: addresses from
 * sockaddrs (IPv4 mapped), the threshold crossed by exactly the n-th
 * offense, the window's expiry, doubling ban lengths with their cap and
 * the repeat count forgotten after max_duration, offenses while banned
 * ignored, manual bans and lifts, the active count (zero again once bans
 * end), listing, the bound on tracked addresses (counters dropped least
 * recently active first, never an active ban), and four threads offending
 * and checking at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mod/ban/bantable.h"

#define SEC 1000ull

/* 2001:db8::n, or with n >= 2^32 in the upper half too */
static void addr_n(unsigned char a[16], uint64_t n)
{
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	for (unsigned i = 0; i < 8; i++)
		a[15 - i] = (unsigned char)(n >> (8 * i));
}

static void test_sockaddr(void **state)
{
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	struct sockaddr_storage un;
	unsigned char a[16];
	static const unsigned char want4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
						 203, 0, 113, 7 };

	(void)state;
	memset(&v4, 0, sizeof(v4));
	v4.sin_family = AF_INET;
	v4.sin_port = htons(443);
	inet_pton(AF_INET, "203.0.113.7", &v4.sin_addr);
	moat_ban_addr_from_sockaddr((const struct sockaddr *)&v4, a);
	assert_memory_equal(a, want4, 16);

	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	moat_ban_addr_from_sockaddr((const struct sockaddr *)&v6, a);
	assert_memory_equal(a, &v6.sin6_addr, 16);
	/* A v4-mapped v6 peer is the same client as its v4 form. */
	inet_pton(AF_INET6, "::ffff:203.0.113.7", &v6.sin6_addr);
	moat_ban_addr_from_sockaddr((const struct sockaddr *)&v6, a);
	assert_memory_equal(a, want4, 16);

	memset(&un, 0xaa, sizeof(un));
	un.ss_family = AF_UNIX;
	moat_ban_addr_from_sockaddr((const struct sockaddr *)&un, a);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(a[i], 0);
}

static void test_threshold_and_window(void **state)
{
	struct moat_ban_policy p = { 3, 10 * SEC, 60 * SEC, 3600 * SEC };
	struct moat_bans *b = moat_bans_new(1000);
	unsigned char a[16], other[16];
	uint64_t until;

	(void)state;
	assert_non_null(b);
	addr_n(a, 1);
	addr_n(other, 2);
	assert_int_equal(moat_bans_active(b), 0);
	assert_int_equal(moat_bans_check(b, a, 0), 0);

	/* Two offenses, then the window (10 s from the first) closes. */
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 1000, &until), 0);
	assert_int_equal(until, 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 5000, &until), 0);
	/* at 11 s the window opened at 1 s is over: this one counts as 1 */
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 11000, &until), 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 20999, &until), 0);
	assert_int_equal(moat_bans_check(b, a, 20999), 0);
	/* the third within [11 s, 21 s) bans, for 60 s */
	assert_int_equal(moat_bans_offend(b, &p, a, 9, 20999, &until), 1);
	assert_int_equal(until, 20999 + 60 * SEC);
	assert_int_equal(moat_bans_active(b), 1);
	assert_int_equal(moat_bans_check(b, a, 21000), 1);
	assert_int_equal(moat_bans_check(b, other, 21000), 0);

	/* Offenses while banned: ignored, the end does not move. */
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(moat_bans_offend(b, &p, a, 7, 30000 + i, &until), 0);
		assert_int_equal(until, 20999 + 60 * SEC);
	}
	assert_int_equal(moat_bans_check(b, a, 20999 + 60 * SEC - 1), 1);
	assert_int_equal(moat_bans_check(b, a, 20999 + 60 * SEC), 0);
	/* Retired by that check: nobody is banned, the fast path is back. */
	assert_int_equal(moat_bans_active(b), 0);
	/* The ignored offenses left no count: three more are needed. */
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 90000, &until), 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 90001, &until), 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 7, 90002, &until), 1);
	moat_bans_free(b);

	/* window 0: offenses never expire. threshold 0 acts as 1. */
	b = moat_bans_new(10);
	p = (struct moat_ban_policy){ 2, 0, SEC, SEC };
	assert_int_equal(moat_bans_offend(b, &p, a, 1, 0, &until), 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 1, 1000000 * SEC, &until), 1);
	p.threshold = 0;
	assert_int_equal(moat_bans_offend(b, &p, other, 1, 0, &until), 1);
	moat_bans_free(b);
}

static void test_growing_durations(void **state)
{
	struct moat_ban_policy p = { 1, SEC, 10 * SEC, 60 * SEC };
	struct moat_bans *b = moat_bans_new(100);
	unsigned char a[16];
	uint64_t until, now = 5000;
	static const uint64_t want[] = { 10, 20, 40, 60, 60, 60 };

	(void)state;
	addr_n(a, 77);
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
		assert_int_equal(until - now, want[i] * SEC);
		assert_int_equal(moat_bans_check(b, a, until - 1), 1);
		/* the next offense comes just as the ban ends */
		now = until;
	}
	/* Remembered until max_duration after the end: just before, the
	 * next ban is still the capped one... */
	now = until + 60 * SEC - 1;
	assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
	assert_int_equal(until - now, 60 * SEC);
	/* ...and once max_duration has passed, the first length again. */
	now = until + 60 * SEC;
	assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
	assert_int_equal(until - now, 10 * SEC);
	now = until;
	assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
	assert_int_equal(until - now, 20 * SEC);

	/* max below duration: no growth. Huge lengths saturate. */
	p = (struct moat_ban_policy){ 1, SEC, 10 * SEC, 0 };
	addr_n(a, 78);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
		assert_int_equal(until - now, 10 * SEC);
		now = until;
	}
	p = (struct moat_ban_policy){ 1, SEC, UINT64_MAX / 2, UINT64_MAX };
	addr_n(a, 79);
	assert_int_equal(moat_bans_offend(b, &p, a, 1, now, &until), 1);
	assert_int_equal(moat_bans_offend(b, &p, a, 1, until, &until), 1);
	assert_int_equal(until, UINT64_MAX);
	moat_bans_free(b);
}

struct seen {
	unsigned n;
	unsigned char addr[8][16];
	uint64_t until[8];
	unsigned count[8], reason[8];
};

static void collect(void *ctx, const unsigned char addr[16], uint64_t until_ms, unsigned count,
		    unsigned reason)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		memcpy(s->addr[s->n], addr, 16);
		s->until[s->n] = until_ms;
		s->count[s->n] = count;
		s->reason[s->n] = reason;
	}
	s->n++;
}

static void test_manual_lift_list(void **state)
{
	struct moat_ban_policy p = { 2, 10 * SEC, 30 * SEC, 300 * SEC };
	struct moat_bans *b = moat_bans_new(100);
	unsigned char a[16], c[16], d[16];
	struct seen seen;
	uint64_t until;

	(void)state;
	addr_n(a, 1);
	addr_n(c, 2);
	addr_n(d, 3);
	assert_int_equal(moat_bans_add(b, a, 0, 0, 5), -EINVAL);
	assert_int_equal(moat_bans_add(b, a, 1000, 50 * SEC, 5), 0);
	assert_int_equal(moat_bans_active(b), 1);
	assert_int_equal(moat_bans_check(b, a, 1000), 1);
	assert_int_equal(moat_bans_check(b, a, 51000), 0);
	/* A second add replaces the end (and may shorten it). */
	assert_int_equal(moat_bans_add(b, a, 2000, 5 * SEC, 6), 0);
	assert_int_equal(moat_bans_active(b), 1);
	assert_int_equal(moat_bans_check(b, a, 6999), 1);
	assert_int_equal(moat_bans_check(b, a, 7000), 0);
	assert_int_equal(moat_bans_active(b), 0);

	/* c banned by offenses, d by hand; list shows both with their ends,
	 * counts and reasons, and only while they last. */
	moat_bans_offend(b, &p, c, 11, 10000, &until);
	assert_int_equal(moat_bans_offend(b, &p, c, 12, 10001, &until), 1);
	assert_int_equal(moat_bans_add(b, d, 10002, 100 * SEC, 13), 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(moat_bans_list(b, 10003, collect, &seen), 2);
	assert_int_equal(seen.n, 2);
	for (unsigned i = 0; i < 2; i++) {
		if (memcmp(seen.addr[i], c, 16) == 0) {
			assert_int_equal(seen.until[i], 10001 + 30 * SEC);
			assert_int_equal(seen.count[i], 1);
			assert_int_equal(seen.reason[i], 12);
		} else {
			assert_memory_equal(seen.addr[i], d, 16);
			assert_int_equal(seen.until[i], 10002 + 100 * SEC);
			assert_int_equal(seen.count[i], 0);
			assert_int_equal(seen.reason[i], 13);
		}
	}
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(moat_bans_list(b, 10001 + 30 * SEC, collect, &seen), 1);
	assert_memory_equal(seen.addr[0], d, 16);
	assert_int_equal(moat_bans_active(b), 1);

	/* Lift: 1 when banned, 0 when not; the address starts over. */
	assert_int_equal(moat_bans_lift(b, d), 1);
	assert_int_equal(moat_bans_lift(b, d), 0);
	assert_int_equal(moat_bans_check(b, d, 20000), 0);
	assert_int_equal(moat_bans_active(b), 0);
	/* c's repeat count survives its ban's end, lift forgets it. */
	moat_bans_offend(b, &p, c, 1, 50000, &until);
	assert_int_equal(moat_bans_offend(b, &p, c, 1, 50001, &until), 1);
	assert_int_equal(until, 50001 + 60 * SEC);
	assert_int_equal(moat_bans_lift(b, c), 1);
	assert_int_equal(moat_bans_lift(b, a), 0);
	moat_bans_offend(b, &p, c, 1, 60000, &until);
	assert_int_equal(moat_bans_offend(b, &p, c, 1, 60001, &until), 1);
	assert_int_equal(until, 60001 + 30 * SEC);
	/* A manual ban keeps the repeat count as it was. */
	assert_int_equal(moat_bans_add(b, c, 60002, SEC, 0), 0);
	moat_bans_offend(b, &p, c, 1, 70000, &until);
	assert_int_equal(moat_bans_offend(b, &p, c, 1, 70001, &until), 1);
	assert_int_equal(until, 70001 + 60 * SEC);
	moat_bans_free(b);
	moat_bans_free(NULL);
	assert_null(moat_bans_new(0));
}

static void test_bound(void **state)
{
	struct moat_ban_policy p = { 3, 1000 * SEC, 100 * SEC, 100 * SEC };
	struct moat_bans *b = moat_bans_new(8); /* one shard of 8 */
	unsigned char a[16];
	uint64_t until, now = 1000;

	(void)state;
	/* 1..6 offend twice each (one short of a ban), 7 and 8 get banned. */
	for (uint64_t n = 1; n <= 8; n++) {
		addr_n(a, n);
		moat_bans_offend(b, &p, a, 0, now++, &until);
		moat_bans_offend(b, &p, a, 0, now++, &until);
		if (n >= 7)
			assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 1);
	}
	assert_int_equal(moat_bans_active(b), 2);
	/* 1 offends again: 2 is now the least recently active. (1 is banned
	 * by it: its third.) */
	addr_n(a, 1);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 1);
	/* A new address takes 2's place: 2's two offenses are forgotten. */
	addr_n(a, 100);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 0);
	addr_n(a, 2);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 0); /* takes 3's place */
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 0);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 1);
	/* 4 kept its count: one more bans it. */
	addr_n(a, 4);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 1);
	assert_int_equal(moat_bans_active(b), 5);

	/* Tracked now: 1, 2, 4..8 (banned) and 100 (counting). Ban 5 and 6
	 * too, and one more by hand: it takes 100's place. */
	for (uint64_t n = 5; n <= 6; n++) {
		addr_n(a, n);
		assert_int_equal(moat_bans_offend(b, &p, a, 0, now++, &until), 1);
	}
	addr_n(a, 200);
	assert_int_equal(moat_bans_add(b, a, now, 100 * SEC, 0), 0);
	assert_int_equal(moat_bans_active(b), 8);
	/* Full of active bans: a newcomer is not tracked, no ban is dropped. */
	addr_n(a, 300);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(moat_bans_offend(b, &p, a, 0, now, &until), 0);
		assert_int_equal(until, 0);
	}
	assert_int_equal(moat_bans_add(b, a, now, SEC, 0), -ENOSPC);
	for (uint64_t n = 1; n <= 8; n++) {
		addr_n(a, n);
		assert_int_equal(moat_bans_check(b, a, now), n == 3 ? 0 : 1);
	}
	addr_n(a, 200);
	assert_int_equal(moat_bans_check(b, a, now), 1);
	/* Once the bans end there is room again. */
	now += 101 * SEC;
	addr_n(a, 300);
	assert_int_equal(moat_bans_offend(b, &p, a, 0, now, &until), 0);
	assert_int_equal(moat_bans_active(b), 0);
	moat_bans_free(b);

	/* Many addresses through a small table: never more bans dropped
	 * than none. */
	b = moat_bans_new(1000);
	p = (struct moat_ban_policy){ 2, 1000 * SEC, 1000 * SEC, 1000 * SEC };
	for (uint64_t n = 0; n < 500; n++) {
		addr_n(a, n);
		moat_bans_offend(b, &p, a, 0, 0, &until);
		assert_int_equal(moat_bans_offend(b, &p, a, 0, 0, &until), 1);
	}
	for (uint64_t n = 1000; n < 200000; n++) {
		addr_n(a, n);
		moat_bans_offend(b, &p, a, 0, 1, &until);
	}
	assert_int_equal(moat_bans_active(b), 500);
	for (uint64_t n = 0; n < 500; n++) {
		addr_n(a, n);
		assert_int_equal(moat_bans_check(b, a, 2), 1);
	}
	moat_bans_free(b);
}

/* ---- four threads ------------------------------------------------------ */

#define THREADS 4
#define ADDRS 2000
#define ROUNDS 25

struct worker {
	struct moat_bans *b;
	const struct moat_ban_policy *p;
	unsigned id;
	unsigned bans_made;
	unsigned wrong;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned char a[16];
	uint64_t until;

	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < ADDRS; i++) {
			/* the threads walk the shared addresses in different orders */
			unsigned n = (i * 7 + w->id * 499) % ADDRS;

			addr_n(a, n);
			w->bans_made += (unsigned)moat_bans_offend(w->b, w->p, a, w->id, 1000, &until);
			/* addresses nobody offends from are never banned */
			addr_n(a, 1000000 + w->id * ADDRS + i);
			w->wrong += (unsigned)moat_bans_check(w->b, a, 1000);
			/* private addresses churn through the table */
			addr_n(a, 2000000 + (uint64_t)w->id * 1000000 + r * ADDRS + i);
			moat_bans_offend(w->b, w->p, a, w->id, 1000, &until);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	/* threshold 10: each shared address gets 4 x 25 = 100 offenses, all
	 * at once: exactly one ban each, whoever made it. */
	struct moat_ban_policy p = { 10, 60 * SEC, 60 * SEC, 600 * SEC };
	struct moat_bans *b = moat_bans_new(20000);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	unsigned made = 0;
	unsigned char a[16];
	struct seen seen;

	(void)state;
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ b, &p, i, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		made += w[i].bans_made;
		assert_int_equal(w[i].wrong, 0);
	}
	assert_int_equal(made, ADDRS);
	assert_int_equal(moat_bans_active(b), ADDRS);
	for (unsigned n = 0; n < ADDRS; n++) {
		addr_n(a, n);
		assert_int_equal(moat_bans_check(b, a, 2000), 1);
	}
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(moat_bans_list(b, 2000, collect, &seen), ADDRS);
	/* All end together; the first call after retires them all. */
	addr_n(a, 5);
	assert_int_equal(moat_bans_check(b, a, 1000 + 60 * SEC), 0);
	assert_int_equal(moat_bans_active(b), 0);
	moat_bans_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_threshold_and_window),
		cmocka_unit_test(test_growing_durations),
		cmocka_unit_test(test_manual_lift_list),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
