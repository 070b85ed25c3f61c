/*
 * cidr_test.c - unit tests of src/core/cidr.c: address and CIDR text,
 * the longest-prefix-match trie, list files.
 *
 * Checked: tables of accepted and refused text (leading zeros, zones,
 * signs, spaces, prefixes out of range), the address parser against
 * glibc's inet_pton over many generated strings, longest-prefix semantics
 * (/0, /32, /128, nested allow / deny), IPv4-mapped addresses and blocks,
 * the later value winning, and thousands of random blocks against a
 * linear reference; list files with errors at the right line:col.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "core/cidr.h"

/* ---- text ------------------------------------------------------------- */

static void expect_cidr(const char *s, int family, const char *addr, unsigned prefix)
{
	unsigned char got[16], want[16];
	unsigned p = 999;
	int fam = -1;

	memset(want, 0, sizeof want);
	assert_int_equal(inet_pton(family, addr, want), 1);
	if (moat_cidr_parse(s, strlen(s), &fam, got, &p) != 0)
		fail_msg("\"%s\" refused", s);
	assert_int_equal(fam, family);
	assert_int_equal(p, prefix);
	if (memcmp(got, want, 16) != 0)
		fail_msg("\"%s\": wrong address", s);
}

static void expect_refused(const char *s)
{
	unsigned char a[16] = { 0x5a };
	unsigned p = 7;
	int fam = 99;

	if (moat_cidr_parse(s, strlen(s), &fam, a, &p) == 0)
		fail_msg("\"%s\" accepted", s);
	/* outputs untouched on error */
	assert_int_equal(fam, 99);
	assert_int_equal(p, 7);
	assert_int_equal(a[0], 0x5a);
}

static void test_parse_accept(void **state)
{
	(void)state;
	expect_cidr("10.0.0.0/8", AF_INET, "10.0.0.0", 8);
	expect_cidr("192.168.1.7", AF_INET, "192.168.1.7", 32);
	expect_cidr("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	expect_cidr("255.255.255.255/32", AF_INET, "255.255.255.255", 32);
	expect_cidr("10.1.2.3/8", AF_INET, "10.0.0.0", 8);        /* host bits masked */
	expect_cidr("10.1.2.3/23", AF_INET, "10.1.2.0", 23);
	expect_cidr("10.1.3.255/23", AF_INET, "10.1.2.0", 23);
	expect_cidr("2001:db8::/32", AF_INET6, "2001:db8::", 32);
	expect_cidr("::1", AF_INET6, "::1", 128);
	expect_cidr("::", AF_INET6, "::", 128);
	expect_cidr("::/0", AF_INET6, "::", 0);
	expect_cidr("2001:DB8::ABCD/128", AF_INET6, "2001:db8::abcd", 128);
	expect_cidr("2001:0db8:0000:0000:0000:0000:0000:0001", AF_INET6, "2001:db8::1", 128);
	expect_cidr("1:2:3:4:5:6:7:8", AF_INET6, "1:2:3:4:5:6:7:8", 128);
	expect_cidr("1:2:3:4:5:6:7::", AF_INET6, "1:2:3:4:5:6:7:0", 128);
	expect_cidr("::2:3:4:5:6:7:8", AF_INET6, "0:2:3:4:5:6:7:8", 128);
	expect_cidr("1::8", AF_INET6, "1::8", 128);
	expect_cidr("::ffff:10.0.0.1/104", AF_INET6, "::ffff:10.0.0.0", 104);
	expect_cidr("::ffff:10.0.0.1", AF_INET6, "::ffff:10.0.0.1", 128);
	expect_cidr("1:2:3:4:5:6:1.2.3.4", AF_INET6, "1:2:3:4:5:6:102:304", 128);
	expect_cidr("::1.2.3.4", AF_INET6, "::102:304", 128);
	expect_cidr("2001:db8:ffff::/33", AF_INET6, "2001:db8:8000::", 33);
	expect_cidr("fe80::1:2/127", AF_INET6, "fe80::1:2", 127);
	expect_cidr("fe80::1:3/127", AF_INET6, "fe80::1:2", 127);
}

static void test_parse_refuse(void **state)
{
	static const char *const bad[] = {
		"", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/-1",
		"10.0.0.0/8/8", "10.0.0.0/ 8", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0 /8", "010.0.0.1",
		"10.00.0.1", "10.0.0.01", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "256.0.0.0",
		"1.2.3.4a", "0x1.2.3.4", "1.2.3.-4", "+1.2.3.4", "10/8", "10.0.0.0/0032", "10.0.0.0/1000",
		"::/129", "::/0128", ":::", "1:::2", ":1::2", "1::2:", "1:2:3:4:5:6:7:8:9",
		"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1::2::3", "12345::", "g::", "fe80::1%eth0",
		"[::1]", "[::1]/128", "::ffff:1.2.3", "::ffff:01.2.3.4", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4",
		"::ffff:1.2.3.4/129", "1.2.3.4::", "::ffff:256.1.1.1", "1:2:3:4:5:6:7", "1:", ":",
		"10.0.0.0\n", "10.0.0.0/8\r",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_refused(bad[i]);
	/* a NUL inside the length is not an end */
	{
		unsigned char a[16];
		unsigned p;
		int fam;

		assert_int_equal(moat_cidr_parse("10.0.0.0\0/8", 11, &fam, a, &p), -1);
		assert_int_equal(moat_cidr_parse("10.0.0.0/8", 8, &fam, a, &p), 0); /* only "10.0.0.0" */
		assert_int_equal(p, 32);
	}
}

/* xorshift: reproducible pseudo-random numbers */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Strings over an address alphabet, compared with glibc's inet_pton (which
 * is strict in the same way: no leading zeros in IPv4, 1-4 hex digits per
 * group, one "::"). */
static void test_parse_addr_vs_inet_pton(void **state)
{
	static const char alpha[] = "0123456789abcdefF.:::";
	char s[48];
	int i, agree = 0;

	(void)state;
	for (i = 0; i < 400000; i++) {
		size_t n = 1 + rnd() % 20, k;
		unsigned char a[16], b[16];
		int fam = 0, mine, theirs, pfam;

		for (k = 0; k < n; k++)
			s[k] = alpha[rnd() % (sizeof alpha - 1)];
		if (rnd() % 3 == 0 && n > 4) /* more IPv4-like strings */
			for (k = 0; k < n; k++)
				s[k] = "0123456789.2"[rnd() % 12];
		s[n] = '\0';
		mine = moat_cidr_parse_addr(s, n, &fam, a);
		pfam = strchr(s, ':') ? AF_INET6 : AF_INET;
		theirs = inet_pton(pfam, s, b) == 1 ? 0 : -1;
		if (mine != theirs)
			fail_msg("\"%s\": moat %d, inet_pton %d", s, mine, theirs);
		if (mine == 0) {
			agree++;
			assert_int_equal(fam, pfam);
			assert_memory_equal(a, b, pfam == AF_INET ? 4 : 16);
		}
	}
	assert_true(agree > 1000);
}

/* ---- the trie --------------------------------------------------------- */

static void add(struct moat_cidr_trie *t, const char *s, int value)
{
	unsigned char a[16];
	unsigned p;
	int fam;

	if (moat_cidr_parse(s, strlen(s), &fam, a, &p) != 0)
		fail_msg("\"%s\" refused", s);
	assert_int_equal(moat_cidr_trie_add(t, fam, a, p, value), 0);
}

/* Looks up a literal address both ways (sockaddr and raw). */
static int look(const struct moat_cidr_trie *t, const char *addr)
{
	struct sockaddr_storage ss;
	unsigned char a[16];
	int fam, r;

	memset(&ss, 0, sizeof ss);
	assert_int_equal(moat_cidr_parse_addr(addr, strlen(addr), &fam, a), 0);
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(1234);
		memcpy(&s4->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	}
	r = moat_cidr_trie_lookup(t, (struct sockaddr *)&ss);
	assert_int_equal(moat_cidr_trie_lookup_raw(t, fam, a), r);
	return r;
}

enum { ALLOW = 1, DENY = 2 };

static void test_longest_prefix(void **state)
{
	struct moat_cidr_trie *t = moat_cidr_trie_new();

	(void)state;
	assert_non_null(t);
	assert_int_equal(look(t, "10.1.2.3"), -1);
	add(t, "10.0.0.0/8", ALLOW);
	add(t, "10.1.0.0/16", DENY);
	assert_int_equal(look(t, "10.1.2.3"), DENY);
	assert_int_equal(look(t, "10.2.0.1"), ALLOW);
	assert_int_equal(look(t, "10.0.0.0"), ALLOW);
	assert_int_equal(look(t, "10.255.255.255"), ALLOW);
	assert_int_equal(look(t, "11.0.0.0"), -1);
	assert_int_equal(look(t, "9.255.255.255"), -1);
	/* added in the other order: same answers */
	add(t, "10.1.2.0/24", ALLOW);
	add(t, "10.1.2.3", 7);
	assert_int_equal(look(t, "10.1.2.3"), 7);
	assert_int_equal(look(t, "10.1.2.4"), ALLOW);
	assert_int_equal(look(t, "10.1.3.4"), DENY);
	/* a shorter block added after longer ones sits above them */
	add(t, "10.0.0.0/7", 9);
	assert_int_equal(look(t, "11.0.0.1"), 9);
	assert_int_equal(look(t, "10.1.3.4"), DENY);
	assert_int_equal(look(t, "12.0.0.1"), -1);
	assert_int_equal(moat_cidr_trie_count(t), 5);
	/* IPv6 lives apart */
	assert_int_equal(look(t, "::a01:203"), -1);
	moat_cidr_trie_free(t);
}

static void test_edges(void **state)
{
	struct moat_cidr_trie *t = moat_cidr_trie_new();
	unsigned char a[16] = { 0 };
	struct sockaddr_un_like {
		sa_family_t family;
		char path[108];
	} un;

	(void)state;
	add(t, "0.0.0.0/0", 1);
	add(t, "::/0", 2);
	assert_int_equal(look(t, "1.2.3.4"), 1);
	assert_int_equal(look(t, "255.255.255.255"), 1);
	assert_int_equal(look(t, "2001:db8::1"), 2);
	add(t, "1.2.3.4/32", 3);
	add(t, "2001:db8::1/128", 4);
	add(t, "2001:db8::/127", 5);
	assert_int_equal(look(t, "1.2.3.4"), 3);
	assert_int_equal(look(t, "1.2.3.5"), 1);
	assert_int_equal(look(t, "2001:db8::1"), 4);
	assert_int_equal(look(t, "2001:db8::"), 5);
	assert_int_equal(look(t, "2001:db8::2"), 2);
	/* the later value wins, the count does not grow */
	assert_int_equal(moat_cidr_trie_count(t), 5);
	add(t, "1.2.3.4", 8);
	add(t, "::/0", 9);
	assert_int_equal(look(t, "1.2.3.4"), 8);
	assert_int_equal(look(t, "::2"), 9);
	assert_int_equal(moat_cidr_trie_count(t), 5);
	/* bad arguments */
	assert_int_equal(moat_cidr_trie_add(t, AF_INET, a, 33, 1), -EINVAL);
	assert_int_equal(moat_cidr_trie_add(t, AF_INET6, a, 129, 1), -EINVAL);
	assert_int_equal(moat_cidr_trie_add(t, AF_UNIX, a, 8, 1), -EINVAL);
	assert_int_equal(moat_cidr_trie_add(t, AF_INET, a, 8, -1), -EINVAL);
	assert_int_equal(moat_cidr_trie_add(NULL, AF_INET, a, 8, 1), -EINVAL);
	/* other families, NULLs */
	memset(&un, 0, sizeof un);
	un.family = AF_UNIX;
	assert_int_equal(moat_cidr_trie_lookup(t, (struct sockaddr *)&un), -1);
	assert_int_equal(moat_cidr_trie_lookup(t, NULL), -1);
	assert_int_equal(moat_cidr_trie_lookup_raw(t, AF_UNIX, a), -1);
	assert_int_equal(moat_cidr_trie_lookup(NULL, (struct sockaddr *)&un), -1);
	assert_int_equal(moat_cidr_trie_lookup_raw(NULL, AF_INET, a), -1);
	assert_int_equal(moat_cidr_trie_count(NULL), 0);
	moat_cidr_trie_free(t);
	moat_cidr_trie_free(NULL);
}

static void test_v4_mapped(void **state)
{
	struct moat_cidr_trie *t = moat_cidr_trie_new();

	(void)state;
	add(t, "10.0.0.0/8", 1);
	add(t, "2001:db8::/32", 2);
	add(t, "::/0", 3);
	/* a dual-stack socket's view of an IPv4 client */
	assert_int_equal(look(t, "::ffff:10.1.2.3"), 1);
	assert_int_equal(look(t, "::ffff:11.1.2.3"), -1); /* not ::/0: it is IPv4 */
	assert_int_equal(look(t, "::10.1.2.3"), 3);       /* IPv4-compatible is plain IPv6 */
	assert_int_equal(look(t, "2001:db8::5"), 2);
	/* a mapped block is filed as IPv4: the same entry as 10.1.0.0/16 */
	add(t, "::ffff:10.1.0.0/112", 4);
	assert_int_equal(look(t, "10.1.2.3"), 4);
	assert_int_equal(look(t, "::ffff:10.1.2.3"), 4);
	add(t, "10.1.0.0/16", 5);
	assert_int_equal(look(t, "::ffff:10.1.2.3"), 5);
	assert_int_equal(moat_cidr_trie_count(t), 4);
	/* ::ffff:0:0/96 is all of IPv4 */
	add(t, "::ffff:0.0.0.0/96", 6);
	assert_int_equal(look(t, "192.0.2.1"), 6);
	/* shorter than /96: IPv6 only */
	add(t, "::ffff:0.0.0.0/95", 7);
	assert_int_equal(look(t, "192.0.2.1"), 6);
	assert_int_equal(look(t, "::fffe:0:1"), 7);
	moat_cidr_trie_free(t);
}

/* Random blocks and addresses against a linear scan. */
struct ref {
	int v6;
	unsigned char a[16];
	unsigned plen;
	int value;
};

static int ref_covers(const struct ref *r, const unsigned char *a)
{
	unsigned i;

	for (i = 0; i < r->plen; i++)
		if (((r->a[i / 8] ^ a[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

static int ref_lookup(const struct ref *refs, size_t n, int v6, const unsigned char *a)
{
	int best = -1, bestlen = -1;
	size_t i;

	/* the later of two equal blocks wins: scan all, keep ties from the end */
	for (i = 0; i < n; i++)
		if (refs[i].v6 == v6 && (int)refs[i].plen >= bestlen && ref_covers(&refs[i], a)) {
			best = refs[i].value;
			bestlen = (int)refs[i].plen;
		}
	return best;
}

static void random_addr(int v6, unsigned char *a, const struct ref *near)
{
	size_t k, n = v6 ? 16 : 4;

	for (k = 0; k < n; k++)
		a[k] = (unsigned char)rnd();
	if (near != NULL) {
		/* inside or just outside a block: copy its prefix, maybe flip a bit */
		unsigned keep = near->plen, i;

		for (i = 0; i < keep; i++) {
			unsigned bit = (near->a[i / 8] >> (7 - i % 8)) & 1;

			a[i / 8] = (unsigned char)((a[i / 8] & ~(1u << (7 - i % 8))) | bit << (7 - i % 8));
		}
		if (keep > 0 && rnd() % 4 == 0) {
			i = (unsigned)(rnd() % keep);
			a[i / 8] ^= (unsigned char)(1u << (7 - i % 8));
		}
	}
}

/* Queries around the first n blocks, against the linear scan. */
static void check_random(const struct moat_cidr_trie *t, const struct ref *refs, size_t n, int q)
{
	int i;

	for (i = 0; i < q; i++) {
		unsigned char a[16];
		int v6 = (int)(rnd() % 2), want, got;
		const struct ref *near = &refs[rnd() % n];

		random_addr(v6, a, rnd() % 4 && near->v6 == v6 ? near : NULL);
		if (v6 && memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
			a[0] = 0x20;
		want = ref_lookup(refs, n, v6, a);
		got = moat_cidr_trie_lookup_raw(t, v6 ? AF_INET6 : AF_INET, a);
		if (got != want)
			fail_msg("after %zu blocks, query %d: trie %d, linear %d", n, i, got, want);
	}
}

/*
 * Random blocks and addresses against a linear scan, checked at several
 * sizes: before and after a family reaches the size where a jump table
 * over its top 16 bits is built (256 blocks), and well past it, so blocks
 * are added both before the table exists and into it.
 */
static void test_random_vs_linear(void **state)
{
	enum { N = 4000 };
	static const size_t checkpoints[] = { 1, 100, 400, 511, 520, 600, 1100, 2000, N };
	struct ref *refs = calloc(N, sizeof *refs);
	struct moat_cidr_trie *t = moat_cidr_trie_new();
	size_t i, c = 0, distinct = 0;

	(void)state;
	assert_non_null(refs);
	assert_non_null(t);
	for (i = 0; i < N; i++) {
		struct ref *r = &refs[i];
		unsigned max;

		r->v6 = (int)(rnd() % 2);
		max = r->v6 ? 128 : 32;
		/* clustered prefixes: a few roots so blocks nest and share paths */
		if (i > 0 && rnd() % 3 != 0) {
			const struct ref *base = &refs[rnd() % i];

			r->v6 = base->v6;
			max = r->v6 ? 128 : 32;
			random_addr(r->v6, r->a, base);
		} else {
			random_addr(r->v6, r->a, NULL);
		}
		r->plen = (unsigned)(rnd() % (max + 1));
		if (rnd() % 8 == 0)
			r->plen = max;
		else if (rnd() % 4 == 0)
			r->plen = (unsigned)(rnd() % 17); /* shorter than the jump table's /16 */
		if (r->v6 && r->a[0] == 0 && r->a[10] == 0xff)
			r->a[0] = 0x20; /* keep clear of ::ffff:0:0/96, filed as IPv4 */
		r->value = (int)(rnd() % 1000);
		{
			unsigned char m[16];
			unsigned b;

			memset(m, 0, sizeof m);
			for (b = 0; b < r->plen; b++)
				m[b / 8] |= (unsigned char)(r->a[b / 8] & (1u << (7 - b % 8)));
			memcpy(r->a, m, sizeof m);
		}
		assert_int_equal(moat_cidr_trie_add(t, r->v6 ? AF_INET6 : AF_INET, r->a, r->plen, r->value), 0);
		if (i + 1 == checkpoints[c]) {
			check_random(t, refs, i + 1, i + 1 == N ? 40000 : 3000);
			c++;
		}
	}
	for (i = 0; i < N; i++) {
		size_t j;
		int dup = 0;

		for (j = 0; j < i && !dup; j++)
			dup = refs[j].v6 == refs[i].v6 && refs[j].plen == refs[i].plen &&
			      memcmp(refs[j].a, refs[i].a, 16) == 0;
		distinct += !dup;
	}
	assert_int_equal(moat_cidr_trie_count(t), distinct);
	/* every block finds itself (or a later duplicate's value) */
	for (i = 0; i < N; i++)
		assert_int_equal(moat_cidr_trie_lookup_raw(t, refs[i].v6 ? AF_INET6 : AF_INET, refs[i].a),
				 ref_lookup(refs, N, refs[i].v6, refs[i].a));
	moat_cidr_trie_free(t);
	free(refs);
}

/* A list as big as the ones the trie is made for: 100k blocks. */
static void test_big(void **state)
{
	struct moat_cidr_trie *t = moat_cidr_trie_new();
	unsigned char a[16];
	unsigned i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		/* 10.x.y.0/24 for every x.y with x < 128, then 2001:db8:iiii:ii00::/56 */
		memset(a, 0, sizeof a);
		if (i < 32768) {
			a[0] = 10;
			a[1] = (unsigned char)(i >> 8);
			a[2] = (unsigned char)i;
			assert_int_equal(moat_cidr_trie_add(t, AF_INET, a, 24, (int)i), 0);
		} else {
			a[0] = 0x20;
			a[1] = 0x01;
			a[2] = 0x0d;
			a[3] = 0xb8;
			a[4] = (unsigned char)(i >> 16);
			a[5] = (unsigned char)(i >> 8);
			a[6] = (unsigned char)i;
			assert_int_equal(moat_cidr_trie_add(t, AF_INET6, a, 56, (int)i), 0);
		}
	}
	add(t, "10.0.0.0/8", 200000);
	add(t, "0.0.0.0/0", 200001);
	assert_int_equal(moat_cidr_trie_count(t), 100002);
	assert_int_equal(look(t, "10.0.0.1"), 0);
	assert_int_equal(look(t, "10.127.255.255"), 32767);
	assert_int_equal(look(t, "10.128.0.1"), 200000);
	assert_int_equal(look(t, "11.0.0.1"), 200001);
	assert_int_equal(look(t, "::ffff:10.1.2.3"), 0x0102);
	assert_int_equal(look(t, "2001:db8:80:0:1::1"), 32768);
	assert_int_equal(look(t, "2001:db8:186:9fff::1"), 99999);
	assert_int_equal(look(t, "2001:db8:0:8000::1"), -1);
	assert_int_equal(look(t, "2001:db8:186:a000::"), -1);
	moat_cidr_trie_free(t);
}

/* ---- list files ------------------------------------------------------- */

struct collect {
	char out[4096];
	int stop_at; /* entry returns -ENOSPC at this entry number (1-based), 0: never */
	int nentries;
};

static int on_entry(void *ctx, int family, const unsigned char addr[16], unsigned prefix, unsigned line,
		    unsigned col)
{
	struct collect *c = ctx;
	char text[INET6_ADDRSTRLEN];
	size_t n = strlen(c->out);

	c->nentries++;
	if (c->stop_at != 0 && c->nentries == c->stop_at)
		return -ENOSPC;
	assert_non_null(inet_ntop(family, addr, text, sizeof text));
	snprintf(c->out + n, sizeof c->out - n, "%u:%u %s/%u\n", line, col, text, prefix);
	return 0;
}

static void on_error(void *ctx, unsigned line, unsigned col, const char *msg)
{
	struct collect *c = ctx;
	size_t n = strlen(c->out);

	snprintf(c->out + n, sizeof c->out - n, "%u:%u error: %s\n", line, col, msg);
}

static int list(const char *data, size_t len, struct collect *c)
{
	memset(c->out, 0, sizeof c->out);
	c->nentries = 0;
	return moat_cidr_list_parse(data, len, on_entry, on_error, c);
}

static void test_list(void **state)
{
	static const char data[] = "# trusted proxies\n"
				   "10.0.0.0/8\n"
				   "  192.168.1.7\t# the office\r\n"
				   "\n"
				   "   \t\n"
				   "2001:db8::/32#no space needed\n"
				   "\t010.0.0.1\n"
				   "10.0.0.0/33\n"
				   "::1/129 # comment\n"
				   "1.2.3.4 5.6.7.8\n"
				   "host.example\r\n"
				   "\"\\\x01\xff\n"
				   "::ffff:10.0.0.1/104\n"
				   "#\n"
				   "1.2.3.4/24";
	struct collect c = { .stop_at = 0 };

	(void)state;
	assert_int_equal(list(data, sizeof data - 1, &c), 6);
	assert_string_equal(
		c.out,
		"2:1 10.0.0.0/8\n"
		"3:3 192.168.1.7/32\n"
		"6:1 2001:db8::/32\n"
		"7:2 error: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got \"010.0.0.1\"\n"
		"8:1 error: expected a prefix length 0..32 after the IPv4 address, got \"10.0.0.0/33\"\n"
		"9:1 error: expected a prefix length 0..128 after the IPv6 address, got \"::1/129\"\n"
		"10:1 error: expected one CIDR per line, got \"1.2.3.4 5.6.7.8\"\n"
		"11:1 error: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got \"host.example\"\n"
		"12:1 error: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got \"\\x22\\x5c\\x01\\xff\"\n"
		"13:1 ::ffff:10.0.0.0/104\n"
		"15:1 1.2.3.0/24\n");
}

static void test_list_edges(void **state)
{
	struct collect c = { .stop_at = 0 };
	char longline[300];

	(void)state;
	assert_int_equal(list("", 0, &c), 0);
	assert_string_equal(c.out, "");
	assert_int_equal(list(NULL, 5, &c), 0);
	assert_int_equal(list("\n\n\r\n#x\n", 7, &c), 0);
	assert_string_equal(c.out, "");
	/* a NUL byte is not an end of line nor of file */
	assert_int_equal(list("1.2.3.4\0\n5.6.7.8\n", 17, &c), 1);
	assert_string_equal(c.out, "1:1 error: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got \"1.2.3.4\\x00\"\n"
				   "2:1 5.6.7.8/32\n");
	/* a bare CR in the middle of a line is not a line end */
	assert_int_equal(list("1.2.3.4\r5.6.7.8\n", 16, &c), 1);
	/* long text is cut in the message */
	memset(longline, 'x', sizeof longline);
	assert_int_equal(list(longline, sizeof longline, &c), 1);
	assert_non_null(strstr(c.out, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"\n"));
	/* entry stops the parse with its negative value */
	c.stop_at = 2;
	assert_int_equal(list("1.1.1.1\nbad\n2.2.2.2\n3.3.3.3\n", 28, &c), -ENOSPC);
	assert_string_equal(c.out, "1:1 1.1.1.1/32\n2:1 error: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got \"bad\"\n");
	/* NULL callbacks: just a count */
	assert_int_equal(moat_cidr_list_parse("bad\nworse\n1.2.3.4\n", 18, NULL, NULL, NULL), 2);
}

/* Builds a trie from a list, as a config loader would. */
static int into_trie(void *ctx, int family, const unsigned char addr[16], unsigned prefix, unsigned line,
		     unsigned col)
{
	(void)col;
	return moat_cidr_trie_add(ctx, family, addr, prefix, (int)line);
}

static void test_list_to_trie(void **state)
{
	static const char data[] = "10.0.0.0/8\n10.1.0.0/16\n::ffff:10.1.2.0/120\n2001:db8::/32\n";
	struct moat_cidr_trie *t = moat_cidr_trie_new();

	(void)state;
	assert_int_equal(moat_cidr_list_parse(data, sizeof data - 1, into_trie, NULL, t), 0);
	assert_int_equal(look(t, "10.9.9.9"), 1);
	assert_int_equal(look(t, "10.1.9.9"), 2);
	assert_int_equal(look(t, "10.1.2.9"), 3);
	assert_int_equal(look(t, "::ffff:10.1.2.9"), 3);
	assert_int_equal(look(t, "2001:db8:1::"), 4);
	assert_int_equal(moat_cidr_trie_count(t), 4);
	moat_cidr_trie_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accept),
		cmocka_unit_test(test_parse_refuse),
		cmocka_unit_test(test_parse_addr_vs_inet_pton),
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_random_vs_linear),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_edges),
		cmocka_unit_test(test_list_to_trie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
