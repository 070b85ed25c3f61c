/*
 * cidr_fuzz.c - libFuzzer target for src/core/cidr.c.
 *
 * The input is read as a list file into a trie (and a linear list beside
 * it). Checked: every error is reported once with a line and column inside
 * the input; each entry looks itself up; lookups of addresses derived from
 * each entry (its base, last address, neighbours, a flipped prefix bit,
 * the IPv4-mapped form) agree with a linear longest-prefix scan; lists of
 * 256 blocks of a family or more exercise the trie's jump table. The whole
 * input is also parsed as one CIDR and as one address: an accepted CIDR
 * printed back and parsed again is the same, and the address parser agrees
 * with inet_pton.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 640

struct block {
	int v6;                 /* after the mapping of ::ffff:0:0/96 to IPv4 */
	unsigned char a[16];
	unsigned plen;
};

struct state {
	struct moat_cidr_trie *t;
	struct block b[MAXN];
	int n;
	int errors;
	size_t size;
	unsigned lines;
};

static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The reference scan is not what is being fuzzed: no coverage feedback
 * (it would cost most of the time and steer nothing). */
#if defined(__clang__) && __clang_major__ >= 13
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))
#else
#define NO_COVERAGE
#endif

NO_COVERAGE static int covers(const struct block *b, int v6, const unsigned char *a)
{
	unsigned full = b->plen / 8, rest = b->plen % 8, i;

	if (b->v6 != v6)
		return 0;
	for (i = 0; i < full; i++) /* not memcmp: libFuzzer hooks it */
		if (b->a[i] != a[i])
			return 0;
	return rest == 0 || ((b->a[full] ^ a[full]) & (0xff00u >> rest) & 0xffu) == 0;
}

/* Longest block covering the address, the later of equals; -1 if none. */
NO_COVERAGE static int linear(const struct state *st, int family, const unsigned char *a)
{
	int v6 = family == AF_INET6, best = -1, bestlen = -1, i;

	if (v6 && memcmp(a, mapped, 12) == 0) {
		v6 = 0;
		a += 12;
	}
	for (i = 0; i < st->n; i++)
		if ((int)st->b[i].plen >= bestlen && covers(&st->b[i], v6, a)) {
			best = i;
			bestlen = (int)st->b[i].plen;
		}
	return best;
}

static void check(const struct state *st, int family, const unsigned char *a)
{
	int want = linear(st, family, a), got = moat_cidr_trie_lookup_raw(st->t, family, a);
	struct sockaddr_storage ss;

	if (got != want)
		abort();
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, 4);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, 16);
	}
	if (moat_cidr_trie_lookup(st->t, (struct sockaddr *)&ss) != want)
		abort();
}

static int on_entry(void *ctx, int family, const unsigned char addr[16], unsigned prefix, unsigned line,
		    unsigned col)
{
	struct state *st = ctx;
	struct block *b;

	if (line == 0 || line > st->lines || col == 0 || col > st->size)
		abort();
	if (st->n == MAXN)
		return 0;
	b = &st->b[st->n];
	b->v6 = family == AF_INET6;
	b->plen = prefix;
	memset(b->a, 0, sizeof b->a);
	if (b->v6 && prefix >= 96 && memcmp(addr, mapped, 12) == 0) {
		b->v6 = 0;
		b->plen -= 96;
		memcpy(b->a, addr + 12, 4);
	} else {
		memcpy(b->a, addr, b->v6 ? 16 : 4);
	}
	if (moat_cidr_trie_add(st->t, family, addr, prefix, st->n) != 0)
		abort();
	st->n++;
	return 0;
}

static void on_error(void *ctx, unsigned line, unsigned col, const char *msg)
{
	struct state *st = ctx;

	if (line == 0 || line > st->lines || col == 0 || col > st->size || strlen(msg) < 20)
		abort();
	st->errors++;
}

/* The whole input as one CIDR and one address. */
static void one(const char *s, size_t n)
{
	unsigned char a[16], b[16];
	char text[INET6_ADDRSTRLEN + 8], z[64];
	unsigned p, q;
	int fam, fam2, r;

	if (moat_cidr_parse(s, n, &fam, a, &p) == 0) {
		if (inet_ntop(fam, a, text, INET6_ADDRSTRLEN) == NULL)
			abort();
		snprintf(text + strlen(text), 8, "/%u", p);
		if (moat_cidr_parse(text, strlen(text), &fam2, b, &q) != 0 || fam2 != fam || q != p ||
		    memcmp(a, b, 16) != 0)
			abort();
	}
	if (n < sizeof z && memchr(s, '\0', n) == NULL) {
		memcpy(z, s, n);
		z[n] = '\0';
		fam2 = memchr(s, ':', n) ? AF_INET6 : AF_INET;
		r = moat_cidr_parse_addr(s, n, &fam, a);
		if ((r == 0) != (inet_pton(fam2, z, b) == 1))
			abort();
		if (r == 0 && (fam != fam2 || memcmp(a, b, fam == AF_INET ? 4 : 16) != 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	char *buf = malloc(size ? size : 1);
	int r, i;
	size_t k;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	one(buf, size);

	memset(&st, 0, sizeof st);
	st.size = size;
	st.lines = 1;
	for (k = 0; k < size; k++)
		st.lines += buf[k] == '\n';
	st.t = moat_cidr_trie_new();
	if (st.t == NULL)
		abort();
	r = moat_cidr_list_parse(buf, size, on_entry, on_error, &st);
	if (r != st.errors)
		abort();

	/* every block of a short list, 32 of a long one */
	for (i = 0; i < st.n; i += st.n > 64 ? st.n / 32 : 1) {
		const struct block *b = &st.b[i];
		unsigned char a[16];
		unsigned nb = b->v6 ? 16 : 4, bits = nb * 8, j;

		/* the block itself: found, and as the linear scan says */
		if (moat_cidr_trie_lookup_raw(st.t, b->v6 ? AF_INET6 : AF_INET, b->a) < 0)
			abort();
		check(&st, b->v6 ? AF_INET6 : AF_INET, b->a);
		/* its last address, one past it, one before its base */
		memcpy(a, b->a, 16);
		for (j = b->plen; j < bits; j++)
			a[j / 8] |= (unsigned char)(0x80u >> (j % 8));
		check(&st, b->v6 ? AF_INET6 : AF_INET, a);
		for (j = nb; j-- > 0 && ++a[j] == 0;)
			;
		check(&st, b->v6 ? AF_INET6 : AF_INET, a);
		memcpy(a, b->a, 16);
		for (j = nb; j-- > 0 && a[j]-- == 0;)
			;
		check(&st, b->v6 ? AF_INET6 : AF_INET, a);
		/* the last bit of its prefix flipped */
		if (b->plen > 0) {
			memcpy(a, b->a, 16);
			a[(b->plen - 1) / 8] ^= (unsigned char)(0x80u >> ((b->plen - 1) % 8));
			check(&st, b->v6 ? AF_INET6 : AF_INET, a);
		}
		/* an IPv4 block seen through a dual-stack socket */
		if (!b->v6) {
			memset(a, 0, 16);
			memcpy(a, mapped, 12);
			memcpy(a + 12, b->a, 4);
			check(&st, AF_INET6, a);
		}
	}
	moat_cidr_trie_free(st.t);
	free(buf);
	return 0;
}
