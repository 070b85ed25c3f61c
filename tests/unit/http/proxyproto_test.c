/*
 * proxyproto_test.c - unit tests of src/http/proxyproto.c.
 *
 * Every input goes through parse_all(): it is parsed from an exactly sized
 * heap copy (so ASan catches any over-read), then every strict prefix is
 * parsed too and must give MOAT_AGAIN or the very result of the whole
 * input, and a valid header must give MOAT_AGAIN on each of its prefixes
 * and the same length when the client's bytes follow it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "http/proxyproto.h"

static struct moat_proxyproto PP;

static int parse_all(const void *s, size_t n)
{
	struct moat_proxyproto tmp;
	char *buf = malloc(n ? n : 1);
	size_t k;
	int r;

	assert_non_null(buf);
	memcpy(buf, s, n);
	memset(&PP, 0xa5, sizeof PP);
	r = moat_proxyproto_parse(buf, n, &PP);
	free(buf);
	for (k = 0; k < n; k++) {
		char *pre = malloc(k ? k : 1);
		int rk;

		assert_non_null(pre);
		memcpy(pre, s, k);
		rk = moat_proxyproto_parse(pre, k, &tmp);
		free(pre);
		if (rk != MOAT_AGAIN && rk != r)
			fail_msg("prefix %zu of %zu: %d, whole input: %d", k, n, rk, r);
		if (r > 0 && k < (size_t)r && rk != MOAT_AGAIN)
			fail_msg("prefix %zu of a valid header: %d", k, rk);
	}
	if (r > 0) {
		/* the client's stream after the header changes nothing */
		char *more = malloc(n + 5);

		assert_non_null(more);
		memcpy(more, s, n);
		memcpy(more + n, "GET /", 5);
		assert_int_equal(moat_proxyproto_parse(more, n + 5, &tmp), r);
		free(more);
	}
	return r;
}

#define PARSE(lit) parse_all(lit, sizeof(lit) - 1)

static void expect_v4(const struct sockaddr_storage *ss, socklen_t len, const char *addr, unsigned port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	struct in_addr want;

	assert_int_equal(len, sizeof *s4);
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_memory_equal(&s4->sin_addr, &want, 4);
	assert_int_equal(ntohs(s4->sin_port), port);
}

static void expect_v6(const struct sockaddr_storage *ss, socklen_t len, const char *addr, unsigned port)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;

	assert_int_equal(len, sizeof *s6);
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
	assert_memory_equal(&s6->sin6_addr, &want, 16);
	assert_int_equal(ntohs(s6->sin6_port), port);
}

static void expect_local(int version)
{
	static const struct sockaddr_storage zero;

	assert_int_equal(PP.local, 1);
	assert_int_equal(PP.version, version);
	assert_int_equal(PP.srclen, 0);
	assert_int_equal(PP.dstlen, 0);
	assert_memory_equal(&PP.src, &zero, sizeof zero);
	assert_memory_equal(&PP.dst, &zero, sizeof zero);
}

/* ---- version 1 -------------------------------------------------------- */

static void test_v1_tcp4(void **state)
{
	(void)state;
	assert_int_equal(PARSE("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), 45);
	assert_int_equal(PP.local, 0);
	assert_int_equal(PP.version, 1);
	expect_v4(&PP.src, PP.srclen, "192.0.2.1", 56324);
	expect_v4(&PP.dst, PP.dstlen, "198.51.100.2", 443);
	assert_int_equal(PARSE("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), 44);
	expect_v4(&PP.src, PP.srclen, "0.0.0.0", 0);
	expect_v4(&PP.dst, PP.dstlen, "255.255.255.255", 65535);
}

static void test_v1_tcp6(void **state)
{
	(void)state;
	assert_int_equal(PARSE("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"), 40);
	expect_v6(&PP.src, PP.srclen, "2001:db8::1", 1);
	expect_v6(&PP.dst, PP.dstlen, "2001:db8::2", 2);
	assert_int_equal(PARSE("PROXY TCP6 ::ffff:10.0.0.1 ::1 8080 80\r\n"), 40);
	expect_v6(&PP.src, PP.srclen, "::ffff:10.0.0.1", 8080);
	expect_v6(&PP.dst, PP.dstlen, "::1", 80);
	/* the longest line the spec counts on: 104 bytes */
	assert_int_equal(PARSE("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			       "65535 65535\r\n"),
			 104);
}

static void test_v1_unknown(void **state)
{
	(void)state;
	assert_int_equal(PARSE("PROXY UNKNOWN\r\n"), 15);
	expect_local(1);
	assert_int_equal(PARSE("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), 59);
	expect_local(1);
	assert_int_equal(PARSE("PROXY UNKNOWN \r\n"), 16);
	assert_int_equal(PARSE("PROXY UNKNOWN\r"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXY UNKNOWNX\r\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY UNKNOWN\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY UNKNOWN x\ny\r\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY UNKNOWN x\rx\r\n"), MOAT_PROXYPROTO_EBAD);
}

static void test_v1_refused(void **state)
{
	static const char *const bad[] = {
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",      /* double space */
		"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",      /* trailing space */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",         /* bare LF */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",         /* a field missing */
		"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",      /* leading zero */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",   /* out of range */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 999999\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",           /* family mismatch */
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP6 [::1] ::1 1 2\r\n",
		"PROXY TCP6 1:::2 ::1 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY\r\n",
		"PROXY \r\n",
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = parse_all(bad[i], strlen(bad[i]));

		if (r != MOAT_PROXYPROTO_EBAD)
			fail_msg("\"%s\": %d", bad[i], r);
	}
	/* a bad field is refused without waiting for the rest */
	assert_int_equal(PARSE("PROXY TCP4 1.2.3.256"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP4 1.2.3.4.5"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP4 01"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP6 1:::"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP6 1::2::"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP6 12345"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP6 1.2.3.4 "), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP4 1.2.3.4 5.6.7.8 65536"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP4 1.2.3.4 5.6.7.8 0"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXY TCP4 1.2.3.4 5.6.7.8 00"), MOAT_PROXYPROTO_EBAD);
	/* prefixes that can still become valid wait */
	assert_int_equal(PARSE("PROXY TCP6 1:2:3:4:5:6:1.2"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXY TCP6 :"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXY TCP6 1:2:3:4:5:6:7:"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXY TCP6 1:2:3:4:5:6:7:8:"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("PROXY TCP4 25"), MOAT_AGAIN);
}

static void test_v1_too_long(void **state)
{
	char line[300];
	int n;

	(void)state;
	/* 107 bytes with the CRLF is the most */
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'x', 107 - 16);
	memcpy(line + 105, "\r\n", 2);
	assert_int_equal(parse_all(line, 107), 107);
	memset(line, 'x', sizeof line);
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	assert_int_equal(parse_all(line, 108), MOAT_PROXYPROTO_ETOOBIG);
	assert_int_equal(parse_all(line, 107), MOAT_PROXYPROTO_ETOOBIG);
	assert_int_equal(parse_all(line, 106), MOAT_AGAIN);
	assert_int_equal(parse_all(line, sizeof line), MOAT_PROXYPROTO_ETOOBIG);
	/* an IPv6 spelling that does not fit the line */
	n = snprintf(line, sizeof line, "PROXY TCP6 %s %s 65535 65535\r\n",
		     "0000:0000:0000:0000:0000:ffff:255.255.255.255", "0000:0000:0000:0000:0000:ffff:255.255.255.255");
	assert_true(n > 107);
	assert_int_equal(parse_all(line, (size_t)n), MOAT_PROXYPROTO_ETOOBIG);
}

/* xorshift: reproducible pseudo-random numbers */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Many spellings of IPv6 addresses (compressed, full, with IPv4 tails,
 * upper case): every prefix of each header must wait, never fail. */
static void test_v1_v6_spellings(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 3000; i++) {
		unsigned char a[16];
		char s[64], line[160];
		size_t k;
		int n;

		for (k = 0; k < 16; k++)
			a[k] = (rnd() % 3 == 0) ? 0 : (unsigned char)rnd();
		switch (rnd() % 4) {
		case 0:
			assert_non_null(inet_ntop(AF_INET6, a, s, sizeof s));
			break;
		case 1:
			snprintf(s, sizeof s, "%x:%x:%x:%x:%x:%x:%u.%u.%u.%u", a[0] << 8 | a[1], a[2] << 8 | a[3],
				 a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9], a[10] << 8 | a[11], a[12],
				 a[13], a[14], a[15]);
			break;
		case 2:
			snprintf(s, sizeof s, "%X::%X:%u.%u.%u.%u", a[0] << 8 | a[1], a[2], a[12], a[13], a[14], a[15]);
			break;
		default:
			snprintf(s, sizeof s, "%04x:%04x::%x", a[0] << 8 | a[1], a[2] << 8 | a[3], a[4]);
			break;
		}
		n = snprintf(line, sizeof line, "PROXY TCP6 %s ::%x %u %u\r\n", s, a[5],
			     (unsigned)(rnd() % 65536), (unsigned)(rnd() % 65536));
		if (n > 107)
			continue;
		if (parse_all(line, (size_t)n) != n)
			fail_msg("refused: %s", line);
	}
}

/* ---- version 2 -------------------------------------------------------- */

static const char sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* Builds a v2 header: signature, ver_cmd, fam, the length of block[nb]. */
static size_t v2(unsigned char *out, unsigned ver_cmd, unsigned fam, const void *block, size_t nb)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)ver_cmd;
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(nb >> 8);
	out[15] = (unsigned char)nb;
	memcpy(out + 16, block, nb);
	return 16 + nb;
}

static const unsigned char inet4[12] = { 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb };

static void test_v2_inet(void **state)
{
	unsigned char h[5000], blk[600];
	size_t n;

	(void)state;
	n = v2(h, 0x21, 0x11, inet4, sizeof inet4);
	assert_int_equal(parse_all(h, n), 28);
	assert_int_equal(PP.local, 0);
	assert_int_equal(PP.version, 2);
	expect_v4(&PP.src, PP.srclen, "192.0.2.1", 56324);
	expect_v4(&PP.dst, PP.dstlen, "198.51.100.2", 443);

	memset(blk, 0, sizeof blk);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", blk), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", blk + 16), 1);
	blk[32] = 0x1f;
	blk[33] = 0x90;
	blk[34] = 0;
	blk[35] = 80;
	n = v2(h, 0x21, 0x21, blk, 36);
	assert_int_equal(parse_all(h, n), 52);
	expect_v6(&PP.src, PP.srclen, "2001:db8::1", 8080);
	expect_v6(&PP.dst, PP.dstlen, "2001:db8::2", 80);

	/* TLVs after the addresses: ALPN "h2", authority, an empty NOOP */
	memcpy(blk, inet4, 12);
	memcpy(blk + 12, "\x01\x00\x02h2\x02\x00\x0b" "example.com\x04\x00\x00", 3 + 2 + 3 + 11 + 3);
	n = v2(h, 0x21, 0x11, blk, 12 + 22);
	assert_int_equal(parse_all(h, n), 16 + 34);
	expect_v4(&PP.src, PP.srclen, "192.0.2.1", 56324);

	/* the first TLV alone */
	n = v2(h, 0x21, 0x11, blk, 12 + 5);
	assert_int_equal(parse_all(h, n), 16 + 17);
}

static void test_v2_local(void **state)
{
	unsigned char h[5000], blk[300];
	size_t n;

	(void)state;
	/* LOCAL: everything after the length is ignored, family included */
	n = v2(h, 0x20, 0x00, "", 0);
	assert_int_equal(parse_all(h, n), 16);
	expect_local(2);
	n = v2(h, 0x20, 0x11, inet4, sizeof inet4);
	assert_int_equal(parse_all(h, n), 28);
	expect_local(2);
	n = v2(h, 0x20, 0xff, "\x01\x00\x09", 3); /* a bad TLV: not read */
	assert_int_equal(parse_all(h, n), 19);
	expect_local(2);
	/* PROXY with UNSPEC: local, block ignored */
	n = v2(h, 0x21, 0x00, "\x01\x00\x09", 3);
	assert_int_equal(parse_all(h, n), 19);
	expect_local(2);
	/* UDP and UNIX: local, but the block must hold the addresses */
	n = v2(h, 0x21, 0x12, inet4, sizeof inet4);
	assert_int_equal(parse_all(h, n), 28);
	expect_local(2);
	memset(blk, 0, sizeof blk);
	n = v2(h, 0x21, 0x22, blk, 36);
	assert_int_equal(parse_all(h, n), 52);
	expect_local(2);
	n = v2(h, 0x21, 0x31, blk, 216);
	assert_int_equal(parse_all(h, n), 232);
	expect_local(2);
	n = v2(h, 0x21, 0x32, blk, 216 + 3);
	assert_int_equal(parse_all(h, n), 235);
	n = v2(h, 0x21, 0x31, blk, 215);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
}

static void test_v2_refused(void **state)
{
	static const unsigned fams[] = { 0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x33, 0x41, 0xff };
	unsigned char h[5000], blk[5000];
	size_t n, i;

	(void)state;
	/* version, command */
	n = v2(h, 0x11, 0x11, inet4, 12);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	n = v2(h, 0x31, 0x11, inet4, 12);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	n = v2(h, 0x22, 0x11, inet4, 12);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	n = v2(h, 0x2f, 0x11, inet4, 12);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	/* undefined family / protocol bytes */
	for (i = 0; i < sizeof fams / sizeof fams[0]; i++) {
		n = v2(h, 0x21, fams[i], inet4, 12);
		assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	}
	/* a block too short for the addresses */
	n = v2(h, 0x21, 0x11, inet4, 11);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	memset(blk, 0, sizeof blk);
	n = v2(h, 0x21, 0x21, blk, 35);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	n = v2(h, 0x21, 0x21, blk, 0);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	/* TLV framing */
	memcpy(blk, inet4, 12);
	memcpy(blk + 12, "\x01\x00\x03h2", 5); /* runs past the end */
	n = v2(h, 0x21, 0x11, blk, 17);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	memcpy(blk + 12, "\x01\x00\x02h2\x04\x00", 7); /* a cut TLV header */
	n = v2(h, 0x21, 0x11, blk, 19);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	n = v2(h, 0x21, 0x11, blk, 13);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	memcpy(blk + 12, "\x01\xff\xff", 3);
	n = v2(h, 0x21, 0x11, blk, 15);
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	/* a bad TLV is refused as soon as its header is there */
	assert_int_equal(moat_proxyproto_parse((char *)h, 16 + 12 + 3, &PP), MOAT_PROXYPROTO_EBAD);
	/* signature */
	n = v2(h, 0x21, 0x11, inet4, 12);
	h[11] = 'X';
	assert_int_equal(parse_all(h, n), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(moat_proxyproto_parse((char *)h, 12, &PP), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(moat_proxyproto_parse((char *)h, 11, &PP), MOAT_AGAIN);
}

static void test_v2_size(void **state)
{
	static unsigned char h[70000], blk[66000];
	size_t n;

	(void)state;
	memset(blk, 0, sizeof blk);
	memcpy(blk, inet4, 12);
	/* one NOOP TLV filling the header up to exactly V2_MAX */
	blk[12] = 0x04;
	blk[13] = (unsigned char)((MOAT_PROXYPROTO_V2_MAX - 16 - 12 - 3) >> 8);
	blk[14] = (unsigned char)(MOAT_PROXYPROTO_V2_MAX - 16 - 12 - 3);
	n = v2(h, 0x21, 0x11, blk, MOAT_PROXYPROTO_V2_MAX - 16);
	assert_int_equal(moat_proxyproto_parse((char *)h, n, &PP), (int)MOAT_PROXYPROTO_V2_MAX);
	assert_int_equal(moat_proxyproto_parse((char *)h, n - 1, &PP), MOAT_AGAIN);
	/* one more byte: too big, known from the length alone */
	blk[14]++;
	n = v2(h, 0x21, 0x11, blk, MOAT_PROXYPROTO_V2_MAX - 16 + 1);
	assert_int_equal(moat_proxyproto_parse((char *)h, n, &PP), MOAT_PROXYPROTO_ETOOBIG);
	assert_int_equal(moat_proxyproto_parse((char *)h, 16, &PP), MOAT_PROXYPROTO_ETOOBIG);
	assert_int_equal(moat_proxyproto_parse((char *)h, 15, &PP), MOAT_AGAIN);
	n = v2(h, 0x20, 0x00, blk, 65535);
	assert_int_equal(moat_proxyproto_parse((char *)h, n, &PP), MOAT_PROXYPROTO_ETOOBIG);
}

/* ---- neither ---------------------------------------------------------- */

static void test_garbage(void **state)
{
	(void)state;
	assert_int_equal(moat_proxyproto_parse(NULL, 0, &PP), MOAT_AGAIN);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\n\r\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("\x16\x03\x01\x02\x00\x01"), MOAT_PROXYPROTO_EBAD); /* a TLS ClientHello */
	assert_int_equal(PARSE("PRI * HTTP/2.0\r\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("\r\n\r\n"), MOAT_AGAIN);
	assert_int_equal(PARSE("\r\n\r\n\r\n"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("P"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROX"), MOAT_AGAIN);
	assert_int_equal(PARSE("PROXZ"), MOAT_PROXYPROTO_EBAD);
	assert_int_equal(PARSE("\0"), MOAT_PROXYPROTO_EBAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_refused),
		cmocka_unit_test(test_v1_too_long),
		cmocka_unit_test(test_v1_v6_spellings),
		cmocka_unit_test(test_v2_inet),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_refused),
		cmocka_unit_test(test_v2_size),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
