/*
 * clienthello_test.c - unit tests of src/tls/clienthello.c.
 *
 * Every input goes through parse_all(): it is parsed from an exactly sized
 * heap copy (so ASan catches any over-read), then its strict prefixes are
 * parsed too (all of them up to 4 KiB, a sample beyond) and must give
 * MOAT_AGAIN or the very result of the whole input, a valid ClientHello
 * MOAT_AGAIN on each of its prefixes; and a record that follows the input
 * changes neither the result nor what was read.
 *
 * The captured hellos are the seeds of the fuzz target
 * (fuzz/corpus/clienthello/, read from the repository root, where
 * `make unit` runs): what openssl s_client, curl, Python's ssl module and
 * Chromium sent to a listener on loopback. The rest are built here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls/clienthello.h"

static struct moat_tls_ch CH;

static int parse_all(const uint8_t *s, size_t n)
{
	static const uint8_t ccs[6] = { 20, 3, 3, 0, 1, 1 }; /* a ChangeCipherSpec record */
	struct moat_tls_ch tmp;
	uint8_t *buf = malloc(n ? n : 1);
	size_t k, step;
	int r, rk;

	assert_non_null(buf);
	memcpy(buf, s, n);
	memset(&CH, 0xa5, sizeof CH);
	r = moat_tls_ch_parse(buf, n, &CH);
	free(buf);
	assert_true(r == MOAT_AGAIN || r < -4096 || (r > 0 && (size_t)r <= n && r <= (int)MOAT_TLS_CH_MAX));
	step = n <= 4096 ? 1 : n / 509 + 1;
	for (k = 0; k < n; k += step) {
		uint8_t *pre = malloc(k ? k : 1);

		assert_non_null(pre);
		memcpy(pre, s, k);
		rk = moat_tls_ch_parse(pre, k, &tmp);
		free(pre);
		if (rk != MOAT_AGAIN && rk != r)
			fail_msg("prefix %zu of %zu: %d, whole input: %d", k, n, rk, r);
		if (r > 0 && k < (size_t)r && rk != MOAT_AGAIN)
			fail_msg("prefix %zu of a valid hello: %d", k, rk);
		/* the hint: more than we have, never past the hello */
		if (rk == MOAT_AGAIN &&
		    (tmp.need <= k || tmp.need > MOAT_TLS_CH_MAX || (r > 0 && tmp.need > (unsigned)r)))
			fail_msg("prefix %zu of %zu: need %u, whole input: %d", k, n, tmp.need, r);
	}
	if (r != MOAT_AGAIN) {
		uint8_t *more = malloc(n + sizeof ccs);

		assert_non_null(more);
		memcpy(more, s, n);
		memcpy(more + n, ccs, sizeof ccs);
		assert_int_equal(moat_tls_ch_parse(more, n + sizeof ccs, &tmp), r);
		free(more);
		if (r > 0)
			assert_memory_equal(&tmp, &CH, sizeof CH);
	}
	return r;
}

/* ---- building hellos -------------------------------------------------- */

/* A handshake message under construction, with its open vectors. */
static struct {
	uint8_t b[1 << 17];
	size_t n;
	size_t at[8];
	unsigned width[8];
	unsigned depth;
} H;

static uint8_t REC[1 << 19]; /* records made of H */
static size_t RECN;

static void put8(unsigned v)
{
	H.b[H.n++] = (uint8_t)v;
}

static void put16(unsigned v)
{
	put8(v >> 8);
	put8(v & 0xff);
}

static void putn(const void *p, size_t n)
{
	memcpy(H.b + H.n, p, n);
	H.n += n;
}

/* Opens a vector with a length of `width` bytes; returns where the length is. */
static size_t vec_open(unsigned width)
{
	size_t at = H.n;
	unsigned i;

	H.at[H.depth] = at;
	H.width[H.depth++] = width;
	for (i = 0; i < width; i++)
		put8(0);
	return at;
}

static void vec_close(void)
{
	unsigned d = --H.depth, w = H.width[d], i;
	size_t at = H.at[d], len = H.n - at - w;

	for (i = 0; i < w; i++)
		H.b[at + i] = (uint8_t)(len >> (8 * (w - 1 - i)));
}

/* Adds `delta` to the message's 3-byte length. */
static void bump_hs(int delta)
{
	unsigned v = (unsigned)(H.b[1] << 16 | H.b[2] << 8 | H.b[3]) + (unsigned)delta;

	H.b[1] = (uint8_t)(v >> 16);
	H.b[2] = (uint8_t)(v >> 8);
	H.b[3] = (uint8_t)v;
}

/* Adds `delta` to the 2-byte length at H.b[at]. */
static void bump16(size_t at, int delta)
{
	unsigned v = (unsigned)(H.b[at] << 8 | H.b[at + 1]) + (unsigned)delta;

	H.b[at] = (uint8_t)(v >> 8);
	H.b[at + 1] = (uint8_t)v;
}

static const uint16_t std_ciphers[] = { 0x1301, 0x1302, 0xc02f };

/* Starts a ClientHello: legacy_version 0x0303, a random, a 32-byte
 * session id, the ciphers, null compression; leaves the extensions block
 * open (unless !exts). */
static void hello_begin(const uint16_t *ciphers, size_t n, int exts)
{
	size_t i;

	H.n = 0;
	H.depth = 0;
	put8(1);
	vec_open(3);
	put16(0x0303);
	for (i = 0; i < 32; i++)
		put8(0x40 + i);
	vec_open(1);
	for (i = 0; i < 32; i++)
		put8(0x80 + i);
	vec_close();
	vec_open(2);
	for (i = 0; i < n; i++)
		put16(ciphers[i]);
	vec_close();
	put8(1);
	put8(0);
	if (exts)
		vec_open(2);
}

static void hello_end(void)
{
	while (H.depth > 0)
		vec_close();
}

static size_t ext_begin(unsigned type)
{
	put16(type);
	return vec_open(2);
}

static void ext_raw(unsigned type, const void *p, size_t n)
{
	ext_begin(type);
	putn(p, n);
	vec_close();
}

static void ext_sni(const char *name, size_t n)
{
	ext_begin(0);
	vec_open(2);
	put8(0);
	vec_open(2);
	putn(name, n);
	vec_close();
	vec_close();
	vec_close();
}

/* Offsets of the length fields of std_hello(). */
struct offs {
	size_t hs, sid, ciphers, comp, exts;
	size_t sni_ext, sni_list, sni_name;
	size_t alpn_ext, alpn_list, alpn_name;
	size_t sv_ext, sv_list, groups_ext, groups_list, sigalgs_ext, sigalgs_list, ecpf_ext, ecpf_list;
	size_t last_ext;
};

/* A usual TLS 1.3 hello: SNI example.com, ALPN h2 + http/1.1, versions
 * 1.3 + 1.2, groups x25519 + P-256, two signature algorithms, ec point
 * formats, and an unknown extension last. */
static void std_hello(struct offs *o)
{
	static const char *alpn[] = { "h2", "http/1.1" };
	size_t i;

	hello_begin(std_ciphers, 3, 1);
	o->hs = 1;
	o->sid = 1 + 3 + 2 + 32;
	o->ciphers = o->sid + 1 + 32;
	o->comp = o->ciphers + 2 + 6;
	o->exts = o->comp + 2;
	o->sni_ext = ext_begin(0);
	o->sni_list = vec_open(2);
	put8(0);
	o->sni_name = vec_open(2);
	putn("example.com", 11);
	vec_close();
	vec_close();
	vec_close();
	o->alpn_ext = ext_begin(16);
	o->alpn_list = vec_open(2);
	o->alpn_name = H.n;
	for (i = 0; i < 2; i++) {
		vec_open(1);
		putn(alpn[i], strlen(alpn[i]));
		vec_close();
	}
	vec_close();
	vec_close();
	o->sv_ext = ext_begin(43);
	o->sv_list = vec_open(1);
	put16(0x0304);
	put16(0x0303);
	vec_close();
	vec_close();
	o->groups_ext = ext_begin(10);
	o->groups_list = vec_open(2);
	put16(0x001d);
	put16(0x0017);
	vec_close();
	vec_close();
	o->sigalgs_ext = ext_begin(13);
	o->sigalgs_list = vec_open(2);
	put16(0x0403);
	put16(0x0804);
	vec_close();
	vec_close();
	o->ecpf_ext = ext_begin(11);
	o->ecpf_list = vec_open(1);
	put8(0);
	vec_close();
	vec_close();
	o->last_ext = ext_begin(0x7777);
	putn("opaque", 6);
	vec_close();
	hello_end();
}

/* Cuts msg[0..n) into handshake records of `frag` bytes. */
static size_t to_records(const uint8_t *msg, size_t n, size_t frag, unsigned version, uint8_t *out)
{
	size_t off = 0, o = 0;

	while (off < n) {
		size_t k = n - off < frag ? n - off : frag;

		out[o++] = 22;
		out[o++] = (uint8_t)(version >> 8);
		out[o++] = (uint8_t)version;
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, msg + off, k);
		o += k;
		off += k;
	}
	return o;
}

/* Parses H as records of `frag` bytes. */
static int parse_h(size_t frag)
{
	RECN = to_records(H.b, H.n, frag, 0x0301, REC);
	return parse_all(REC, RECN);
}

/* Parses H as records of `frag` bytes, expecting the whole of them. */
static void parse_h_ok(size_t frag)
{
	int r = parse_h(frag);

	if (r != (int)RECN)
		fail_msg("%d, expected %zu", r, RECN);
}

/* The handshake message carried by the records at rec[0..n). */
static size_t unwrap(const uint8_t *rec, size_t n, uint8_t *msg)
{
	size_t p = 0, m = 0;

	while (p + 5 <= n) {
		size_t k = (size_t)rec[p + 3] << 8 | rec[p + 4];

		assert_true(p + 5 + k <= n);
		memcpy(msg + m, rec + p + 5, k);
		m += k;
		p += 5 + k;
	}
	assert_int_equal(p, n);
	return m;
}

static int alpn_is(unsigned i, const char *name)
{
	return i < CH.nalpn && CH.alpn_len[i] == strlen(name) && strcmp(CH.alpn[i], name) == 0;
}

/* ---- captured hellos -------------------------------------------------- */

static size_t load(const char *name, uint8_t *buf, size_t cap)
{
	char path[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "fuzz/corpus/clienthello/%s", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("%s: cannot open (run from the repository root)", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* The capture parses whole; cut into records of other sizes it parses to
 * the same result. */
static size_t check_capture(const char *name)
{
	static const size_t frags[] = { 1, 2, 3, 7, 64, 511, 16384 };
	static uint8_t cap[20000], msg[20000], rec[1 << 17];
	struct moat_tls_ch whole;
	size_t n, m, i;

	n = load(name, cap, sizeof cap);
	assert_int_equal(parse_all(cap, n), (int)n);
	whole = CH;
	m = unwrap(cap, n, msg);
	for (i = 0; i < sizeof frags / sizeof frags[0]; i++) {
		size_t rn = to_records(msg, m, frags[i], whole.record_version, rec);

		assert_true(rn <= MOAT_TLS_CH_MAX);
		assert_int_equal(parse_all(rec, rn), (int)rn);
		assert_memory_equal(&CH, &whole, sizeof CH);
	}
	CH = whole;
	return n;
}

#define ALL_FLAGS (MOAT_TLS_CH_F_SNI | MOAT_TLS_CH_F_ALPN | MOAT_TLS_CH_F_VERSIONS | MOAT_TLS_CH_F_EXTENSIONS)

static void test_openssl(void **state)
{
	check_capture("openssl_s_client");
	assert_int_equal(CH.record_version, 0x0301);
	assert_int_equal(CH.legacy_version, 0x0303);
	assert_string_equal(CH.sni, "moat.test");
	assert_int_equal(CH.sni_len, 9);
	assert_int_equal(CH.nalpn, 2);
	assert_true(alpn_is(0, "h2") && alpn_is(1, "http/1.1"));
	assert_int_equal(CH.nversions, 4);
	assert_int_equal(CH.versions[0], 0x0304);
	assert_int_equal(CH.versions[3], 0x0301);
	assert_int_equal(CH.nciphers, 31);
	assert_int_equal(CH.ciphers[0], 0x1302);
	assert_int_equal(CH.ciphers[30], 0x00ff);
	assert_int_equal(CH.nexts, 11);
	assert_int_equal(CH.exts[0], 0);
	assert_int_equal(CH.exts[10], 51);
	assert_int_equal(CH.ngroups, 10);
	assert_int_equal(CH.groups[0], 0x001d);
	assert_int_equal(CH.nsigalgs, 20);
	assert_int_equal(CH.necpf, 3);
	assert_int_equal(CH.flags, ALL_FLAGS);
	assert_int_equal(CH.grease, 0);
	assert_int_equal(CH.truncated, 0);

	/* -tls1_2: no supported_versions, no session id */
	check_capture("openssl_tls12");
	assert_string_equal(CH.sni, "www.example.org");
	assert_int_equal(CH.nalpn, 1);
	assert_true(alpn_is(0, "http/1.1"));
	assert_int_equal(CH.nversions, 0);
	assert_int_equal(CH.flags, ALL_FLAGS & ~MOAT_TLS_CH_F_VERSIONS);
	assert_int_equal(CH.session_id_len, 0);
	assert_int_equal(CH.nciphers, 28);
	assert_int_equal(CH.nexts, 8);

	/* -max_send_frag 512, every cipher and 23 ALPN names: two records */
	assert_int_equal(check_capture("openssl_frag512"), 626);
	assert_string_equal(CH.sni, "frag.moat.test");
	assert_int_equal(CH.nciphers, 93);
	assert_int_equal(CH.nalpn, 8);
	assert_true(alpn_is(0, "h2") && alpn_is(7, "ftp"));
	assert_int_equal(CH.truncated, MOAT_TLS_CH_L_ALPN);
}

static void test_curl_python(void **state)
{
	check_capture("curl_http2");
	assert_string_equal(CH.sni, "moat.test");
	assert_true(CH.nalpn == 2 && alpn_is(0, "h2") && alpn_is(1, "http/1.1"));
	assert_int_equal(CH.nversions, 4);
	assert_int_equal(CH.nexts, 12);
	assert_int_equal(CH.exts[11], 21); /* padding, last */
	assert_int_equal(CH.flags, ALL_FLAGS);

	check_capture("python_ssl");
	assert_string_equal(CH.sni, "api.moat.test");
	assert_true(CH.nalpn == 2 && alpn_is(0, "h2") && alpn_is(1, "http/1.1"));
	assert_int_equal(CH.nversions, 2);
	assert_int_equal(CH.versions[0], 0x0304);
	assert_int_equal(CH.versions[1], 0x0303);
	assert_int_equal(CH.nciphers, 18);
	assert_int_equal(CH.grease, 0);
}

static void test_chromium(void **state)
{
	static const uint16_t exts[] = { 0x2a2a, 51, 45, 0xca34, 23, 5, 16, 10, 0xfe0d, 11,
					 0, 13, 0x44cd, 0xff01, 18, 27, 35, 43, 0x3a3a };

	assert_int_equal(check_capture("chromium"), 2013);
	assert_string_equal(CH.sni, "moat.test");
	assert_true(CH.nalpn == 2 && alpn_is(0, "h2") && alpn_is(1, "http/1.1"));
	assert_int_equal(CH.nversions, 3);
	assert_true(moat_tls_ch_is_grease(CH.versions[0]));
	assert_int_equal(CH.versions[1], 0x0304);
	assert_int_equal(CH.nciphers, 16);
	assert_true(moat_tls_ch_is_grease(CH.ciphers[0]));
	assert_int_equal(CH.ciphers[1], 0x1301);
	assert_int_equal(CH.nexts, 19);
	assert_memory_equal(CH.exts, exts, sizeof exts);
	assert_int_equal(CH.ngroups, 5);
	assert_int_equal(CH.groups[1], 0x11ec); /* X25519MLKEM768 */
	assert_int_equal(CH.grease, MOAT_TLS_CH_L_VERSIONS | MOAT_TLS_CH_L_CIPHERS | MOAT_TLS_CH_L_EXTS |
					    MOAT_TLS_CH_L_GROUPS | MOAT_TLS_CH_L_SIGALGS);
	assert_int_equal(CH.truncated, 0);
	assert_int_equal(CH.flags, ALL_FLAGS);
}

/* A client that sends a byte at a time: with out->need, a parse per
 * record, not per byte. */
static void trickle(const uint8_t *s, size_t n, unsigned max_calls)
{
	struct moat_tls_ch ch;
	unsigned calls = 0;
	size_t k, next = 0;
	int r = MOAT_AGAIN;

	for (k = 1; k <= n && r == MOAT_AGAIN; k++) {
		if (k < next)
			continue;
		calls++;
		r = moat_tls_ch_parse(s, k, &ch);
		next = ch.need;
	}
	assert_int_equal(r, (int)n);
	assert_int_equal(k - 1, n);
	if (calls > max_calls)
		fail_msg("%u calls for %zu bytes", calls, n);
}

static void test_need(void **state)
{
	static uint8_t cap[4096];
	struct moat_tls_ch ch;
	size_t n;

	n = load("chromium", cap, sizeof cap);
	trickle(cap, n, 6); /* 1..5 for the record header, then the record */
	n = load("openssl_frag512", cap, sizeof cap);
	trickle(cap, n, 12);
	/* once the length is known, the hint goes past the first record */
	assert_int_equal(moat_tls_ch_parse(cap, 20, &ch), MOAT_AGAIN);
	assert_int_equal(ch.need, n);
	assert_int_equal(moat_tls_ch_parse(cap, 8, &ch), MOAT_AGAIN);
	assert_int_equal(ch.need, 517); /* the first record; the length is not read yet */
	assert_int_equal(moat_tls_ch_parse(cap, 517, &ch), MOAT_AGAIN);
	assert_int_equal(ch.need, n);
	assert_int_equal(moat_tls_ch_parse(cap, 3, &ch), MOAT_AGAIN);
	assert_int_equal(ch.need, 4);
}

/* ---- built hellos ----------------------------------------------------- */

static void test_std(void **state)
{
	struct offs o;
	struct moat_tls_ch whole;
	size_t frag;

	std_hello(&o);
	parse_h_ok(16384);
	assert_string_equal(CH.sni, "example.com");
	assert_int_equal(CH.nexts, 7);
	assert_int_equal(CH.exts[6], 0x7777);
	assert_int_equal(CH.nsigalgs, 2);
	assert_int_equal(CH.sigalgs[1], 0x0804);
	assert_int_equal(CH.session_id_len, 32);
	whole = CH;
	/* every fragmentation, down to one byte a record */
	for (frag = 1; frag <= H.n; frag++) {
		parse_h_ok(frag);
		assert_memory_equal(&CH, &whole, sizeof CH);
	}
}

/* Builds std_hello, lets `mutate` break it, expects `want`. */
static void expect_std(void (*mutate)(const struct offs *), int want, const char *what)
{
	struct offs o;
	int r;

	std_hello(&o);
	mutate(&o);
	r = parse_h(16384);
	if (r != want)
		fail_msg("%s: %d, expected %d", what, r, want);
	r = parse_h(3);
	if (r != want)
		fail_msg("%s (3-byte records): %d, expected %d", what, r, want);
}

static void m_hs_long(const struct offs *o) { bump_hs(1); }
static void m_hs_short(const struct offs *o) { bump_hs(-1); }
static void m_sid_33(const struct offs *o) { H.b[o->sid] = 33; }
static void m_ciphers_odd(const struct offs *o) { bump16(o->ciphers, -1); }
static void m_ciphers_long(const struct offs *o) { bump16(o->ciphers, 2); }
static void m_ciphers_huge(const struct offs *o) { bump16(o->ciphers, 0x7000); }
static void m_comp_0(const struct offs *o) { H.b[o->comp] = 0; }
static void m_comp_2(const struct offs *o) { H.b[o->comp] = 2; }
static void m_exts_long(const struct offs *o) { bump16(o->exts, 1); }
static void m_exts_short(const struct offs *o) { bump16(o->exts, -1); }
static void m_sni_ext_long(const struct offs *o) { bump16(o->sni_ext, 1); }
static void m_sni_ext_short(const struct offs *o) { bump16(o->sni_ext, -1); }
static void m_sni_list_long(const struct offs *o) { bump16(o->sni_list, 1); }
static void m_sni_list_short(const struct offs *o) { bump16(o->sni_list, -1); }
static void m_sni_name_long(const struct offs *o) { bump16(o->sni_name, 1); }
static void m_sni_name_short(const struct offs *o) { bump16(o->sni_name, -1); }
static void m_alpn_list_long(const struct offs *o) { bump16(o->alpn_list, 1); }
static void m_alpn_list_short(const struct offs *o) { bump16(o->alpn_list, -1); }
static void m_alpn_name_long(const struct offs *o) { H.b[o->alpn_name]++; }
static void m_alpn_name_short(const struct offs *o) { H.b[o->alpn_name]--; }
static void m_alpn_name_0(const struct offs *o) { H.b[o->alpn_name] = 0; }
static void m_sv_list_long(const struct offs *o) { H.b[o->sv_list]++; }
static void m_sv_list_short(const struct offs *o) { H.b[o->sv_list]--; }
static void m_sv_odd(const struct offs *o) { H.b[o->sv_list]--; bump16(o->sv_ext, -1); }
static void m_groups_odd(const struct offs *o) { bump16(o->groups_list, -1); bump16(o->groups_ext, -1); }
static void m_groups_short(const struct offs *o) { bump16(o->groups_list, -2); }
static void m_sigalgs_long(const struct offs *o) { bump16(o->sigalgs_list, 2); }
static void m_ecpf_long(const struct offs *o) { H.b[o->ecpf_list]++; }
static void m_ecpf_0(const struct offs *o) { H.b[o->ecpf_list] = 0; bump16(o->ecpf_ext, -1); }
static void m_last_ext_long(const struct offs *o) { bump16(o->last_ext, 1); }
static void m_last_ext_huge(const struct offs *o) { bump16(o->last_ext, 0x8000); }
static void m_ext_hdr_cut(const struct offs *o)
{
	/* 3 bytes left in the block: not a whole extension header */
	put8(0);
	put8(0x55);
	put8(0);
	bump16(o->exts, 3);
	bump_hs(3);
}
static void m_trailing_msg(const struct offs *o)
{
	/* a byte after the extensions block, inside the message */
	put8(0);
	bump_hs(1);
}
static void m_sni_trailing(const struct offs *o)
{
	/* a byte inside the extension after the ServerNameList */
	size_t i;

	for (i = H.n; i > o->alpn_ext; i--)
		H.b[i] = H.b[i - 1];
	H.n++;
	bump16(o->sni_ext, 1);
	bump16(o->exts, 1);
	bump_hs(1);
}

static void test_malformed_lengths(void **state)
{
#define BAD(m) expect_std(m, MOAT_TLS_CH_EBAD, #m)
	BAD(m_hs_long);
	BAD(m_hs_short);
	BAD(m_sid_33);
	BAD(m_ciphers_odd);
	BAD(m_ciphers_long);
	BAD(m_ciphers_huge);
	BAD(m_comp_0);
	BAD(m_comp_2);
	BAD(m_exts_long);
	BAD(m_exts_short);
	BAD(m_sni_ext_long);
	BAD(m_sni_ext_short);
	BAD(m_sni_list_long);
	BAD(m_sni_list_short);
	BAD(m_sni_name_long);
	BAD(m_sni_name_short);
	BAD(m_alpn_list_long);
	BAD(m_alpn_list_short);
	BAD(m_alpn_name_long);
	BAD(m_alpn_name_short);
	BAD(m_alpn_name_0);
	BAD(m_sv_list_long);
	BAD(m_sv_list_short);
	BAD(m_sv_odd);
	BAD(m_groups_odd);
	BAD(m_groups_short);
	BAD(m_sigalgs_long);
	BAD(m_ecpf_long);
	BAD(m_ecpf_0);
	BAD(m_last_ext_long);
	BAD(m_last_ext_huge);
	BAD(m_ext_hdr_cut);
	BAD(m_trailing_msg);
	BAD(m_sni_trailing);
#undef BAD
}

/* A hello with a session id of `sid` bytes, `cb` bytes of cipher suites
 * and `comp` compression methods, all lengths consistent. */
static int parse_vectors(size_t sid, size_t cb, size_t comp)
{
	size_t i;

	H.n = 0;
	H.depth = 0;
	put8(1);
	vec_open(3);
	put16(0x0303);
	for (i = 0; i < 32; i++)
		put8(i);
	vec_open(1);
	for (i = 0; i < sid; i++)
		put8(0xee);
	vec_close();
	vec_open(2);
	for (i = 0; i < cb; i++)
		put8(i % 2 ? 0x01 : 0x13);
	vec_close();
	vec_open(1);
	for (i = 0; i < comp; i++)
		put8(i);
	vec_close();
	vec_open(2);
	ext_sni("x.example", 9);
	hello_end();
	return parse_h(16384);
}

static void test_vector_bounds(void **state)
{
	int r;

	r = parse_vectors(0, 2, 1);
	assert_int_equal(r, RECN);
	assert_int_equal(CH.session_id_len, 0);
	r = parse_vectors(32, 2, 255);
	assert_int_equal(r, RECN);
	assert_int_equal(CH.session_id_len, 32);
	assert_int_equal(CH.nciphers, 1);
	assert_int_equal(parse_vectors(33, 2, 1), MOAT_TLS_CH_EBAD);  /* legacy_session_id<0..32> */
	assert_int_equal(parse_vectors(0, 0, 1), MOAT_TLS_CH_EBAD);   /* cipher_suites<2..2^16-2> */
	assert_int_equal(parse_vectors(0, 3, 1), MOAT_TLS_CH_EBAD);   /* half a cipher suite */
	assert_int_equal(parse_vectors(0, 2, 0), MOAT_TLS_CH_EBAD);   /* legacy_compression_methods<1..2^8-1> */
}

/* Empty or too short lists in extensions of their own. */
static void test_malformed_contents(void **state)
{
	static const struct {
		unsigned type;
		const char *body;
		size_t n;
	} bad[] = {
		{ 0, "", 0 },                          /* server_name without a list */
		{ 0, "\0\0", 2 },                      /* empty ServerNameList */
		{ 0, "\0\3\0\0\0", 5 },                /* empty host_name */
		{ 16, "", 0 },                         /* ALPN without a list */
		{ 16, "\0\0", 2 },                     /* empty protocol list */
		{ 16, "\0\1\0", 3 },                   /* list of one empty name */
		{ 16, "\0\3\2h2\0", 6 },               /* a byte after the protocol list */
		{ 43, "\0", 1 },                       /* empty supported_versions */
		{ 43, "\2\3\4\0", 4 },                 /* a byte after the list */
		{ 10, "\0\0", 2 },                     /* empty supported_groups */
		{ 13, "\0\0", 2 },                     /* empty signature_algorithms */
		{ 13, "\0\1\4", 3 },                   /* odd signature_algorithms */
		{ 11, "\0", 1 },                       /* empty ec_point_formats */
		{ 11, "\1\0\0", 3 },                   /* a byte after ec_point_formats */
		{ 0, "\0\5\0\0\2ab\0", 8 },            /* a byte after the ServerNameList */
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r;

		hello_begin(std_ciphers, 3, 1);
		ext_raw(bad[i].type, bad[i].body, bad[i].n);
		hello_end();
		r = parse_h(16384);
		if (r != MOAT_TLS_CH_EBAD)
			fail_msg("case %zu (extension %u): %d", i, bad[i].type, r);
	}
}

static void test_records(void **state)
{
	struct offs o;
	size_t n;

	std_hello(&o);
	RECN = to_records(H.b, H.n, 16384, 0x0301, REC);
	n = RECN;

	/* zero-length or oversized first record */
	REC[3] = 0;
	REC[4] = 0;
	assert_int_equal(parse_all(REC, n), MOAT_TLS_CH_EBAD);
	REC[3] = 0x40;
	REC[4] = 1;
	assert_int_equal(parse_all(REC, n), MOAT_TLS_CH_EBAD);

	/* the record holds a byte more than the hello (even before it comes) */
	RECN = to_records(H.b, H.n, 16384, 0x0301, REC);
	assert_true(REC[4] < 0xff);
	REC[4]++;
	assert_int_equal(parse_all(REC, n), MOAT_TLS_CH_EBAD);
	REC[n] = 0;
	assert_int_equal(parse_all(REC, n + 1), MOAT_TLS_CH_EBAD);

	/* a second record of another type, version or with no bytes */
	RECN = to_records(H.b, H.n, 50, 0x0303, REC);
	assert_int_equal(parse_all(REC, RECN), (int)RECN);
	assert_int_equal(CH.record_version, 0x0303);
	REC[55] = 21; /* alert */
	assert_int_equal(parse_all(REC, RECN), MOAT_TLS_CH_EBAD);
	REC[55] = 22;
	REC[56] = 2;
	assert_int_equal(parse_all(REC, RECN), MOAT_TLS_CH_EBAD);
	REC[56] = 3;
	REC[57] = 0x99; /* other minor versions are taken */
	assert_int_equal(parse_all(REC, RECN), (int)RECN);
	REC[59] = 0;
	assert_int_equal(parse_all(REC, RECN), MOAT_TLS_CH_EBAD);
	REC[58] = 0x40;
	REC[59] = 1;
	assert_int_equal(parse_all(REC, RECN), MOAT_TLS_CH_EBAD);

	/* the handshake header itself cut over records */
	RECN = to_records(H.b, H.n, 2, 0x0301, REC);
	assert_int_equal(parse_all(REC, RECN), (int)RECN);
}

static void test_not_tls(void **state)
{
	static const uint8_t sslv2[] = { 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10 };
	static const uint8_t sh[] = { 22, 3, 3, 0, 4, 2, 0, 0, 0 };

	assert_int_equal(moat_tls_ch_parse(NULL, 0, &CH), MOAT_AGAIN);
	assert_int_equal(parse_all((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18), MOAT_TLS_CH_ENOTTLS);
	assert_int_equal(parse_all((const uint8_t *)"PRI * HTTP/2.0\r\n", 16), MOAT_TLS_CH_ENOTTLS);
	assert_int_equal(parse_all((const uint8_t *)"\x16", 1), MOAT_AGAIN);
	assert_int_equal(parse_all((const uint8_t *)"\x16\x03", 2), MOAT_AGAIN);
	assert_int_equal(parse_all((const uint8_t *)"\x16\x02", 2), MOAT_TLS_CH_ENOTTLS);
	assert_int_equal(parse_all((const uint8_t *)"\x17\x03\x03\x00\x01\x00", 6), MOAT_TLS_CH_ENOTTLS);
	assert_int_equal(parse_all((const uint8_t *)"\x15\x03\x01\x00\x02\x02\x28", 7), MOAT_TLS_CH_ENOTTLS);
	assert_int_equal(parse_all((const uint8_t *)"\x16\x03\x01", 3), MOAT_AGAIN);
	/* PROXY protocol in front of TLS is the listener's business, not ours */
	assert_int_equal(parse_all((const uint8_t *)"PROXY TCP4 ", 11), MOAT_TLS_CH_ENOTTLS);

	assert_int_equal(parse_all(sslv2, sizeof sslv2), MOAT_TLS_CH_ESSLV2);
	assert_int_equal(parse_all(sslv2, 2), MOAT_AGAIN);
	assert_int_equal(parse_all((const uint8_t *)"\x80\x2e\x02", 3), MOAT_TLS_CH_ENOTTLS);

	/* a ServerHello, or anything but a ClientHello, first */
	assert_int_equal(parse_all(sh, sizeof sh), MOAT_TLS_CH_ENOTCH);
	assert_int_equal(parse_all((const uint8_t *)"\x16\x03\x01\x00\x01\x00", 6), MOAT_TLS_CH_ENOTCH);
}

static void test_grease(void **state)
{
	static const uint16_t ciphers[] = { 0x5a5a, 0x1301, 0xeaea };
	unsigned v, n = 0;

	for (v = 0; v < 0x10000; v++)
		if (moat_tls_ch_is_grease((uint16_t)v)) {
			assert_int_equal(v, 0x0a0a + 0x1010 * n);
			n++;
		}
	assert_int_equal(n, 16);
	assert_false(moat_tls_ch_is_grease(0x0a1a));
	assert_false(moat_tls_ch_is_grease(0x0b0b));
	assert_false(moat_tls_ch_is_grease(0xaaab));

	hello_begin(ciphers, 3, 1);
	ext_raw(0x2a2a, "", 0);
	ext_raw(43, "\6\x7a\x7a\3\4\3\3", 7);
	ext_raw(10, "\0\4\x8a\x8a\0\x1d", 6);
	ext_raw(13, "\0\4\4\3\x9a\x9a", 6);
	ext_raw(16, "\0\6\2\x3a\x3a\2h2", 8);
	ext_raw(0xdada, "\0", 1);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.grease, MOAT_TLS_CH_L_VERSIONS | MOAT_TLS_CH_L_CIPHERS | MOAT_TLS_CH_L_EXTS |
					    MOAT_TLS_CH_L_GROUPS | MOAT_TLS_CH_L_SIGALGS | MOAT_TLS_CH_L_ALPN);
	assert_int_equal(CH.nciphers, 3);
	assert_int_equal(CH.ciphers[2], 0xeaea);
	assert_int_equal(CH.nexts, 6);
	assert_int_equal(CH.exts[0], 0x2a2a);
	assert_int_equal(CH.exts[5], 0xdada);
	assert_int_equal(CH.nversions, 3);
	assert_int_equal(CH.versions[0], 0x7a7a);
	assert_int_equal(CH.groups[0], 0x8a8a);
	assert_int_equal(CH.sigalgs[1], 0x9a9a);
	assert_int_equal(CH.nalpn, 2);
	assert_int_equal(CH.alpn_len[0], 2);
	assert_memory_equal(CH.alpn[0], "\x3a\x3a", 3);
	assert_true(alpn_is(1, "h2"));

	/* a 2-byte ALPN name that is no GREASE value */
	hello_begin(std_ciphers, 3, 1);
	ext_raw(16, "\0\3\2\x3a\x3b", 5);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.grease, 0);
}

static void test_duplicates(void **state)
{
	/* RFC 8446 §4.2: no extension type twice, known or not */
	hello_begin(std_ciphers, 3, 1);
	ext_sni("a.example", 9);
	ext_raw(23, "", 0);
	ext_sni("b.example", 9);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);

	hello_begin(std_ciphers, 3, 1);
	ext_raw(0x1234, "x", 1);
	ext_raw(23, "", 0);
	ext_raw(0x1234, "y", 1);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);

	hello_begin(std_ciphers, 3, 1);
	ext_raw(0x0a0a, "", 0);
	ext_raw(0x0a0a, "", 0);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);

	/* two GREASE extensions of different values are fine (Chromium) */
	hello_begin(std_ciphers, 3, 1);
	ext_raw(0x0a0a, "", 0);
	ext_raw(0xfafa, "\0", 1);
	ext_raw(0xffff, "", 0);
	ext_raw(0, "\0\4\0\0\1x", 6);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.nexts, 4);
	assert_string_equal(CH.sni, "x");

	/* pre_shared_key: last or refused (RFC 8446 §4.2.11) */
	hello_begin(std_ciphers, 3, 1);
	ext_raw(41, "\0\0\0\0", 4);
	ext_raw(23, "", 0);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);
	hello_begin(std_ciphers, 3, 1);
	ext_raw(23, "", 0);
	ext_raw(41, "\0\0\0\0", 4);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.exts[1], 41);
}

static void sni_case(const char *name, size_t n, const char *want)
{
	int r;

	hello_begin(std_ciphers, 3, 1);
	ext_sni(name, n);
	hello_end();
	r = parse_h(16384);
	if (r != (int)RECN)
		fail_msg("SNI \"%.*s\": %d", (int)n, name, r);
	assert_true(CH.flags & MOAT_TLS_CH_F_SNI);
	if (want != NULL) {
		if (strcmp(CH.sni, want) != 0 || CH.sni_len != strlen(want) || (CH.flags & MOAT_TLS_CH_F_SNI_INVALID))
			fail_msg("SNI \"%.*s\": got \"%s\"", (int)n, name, CH.sni);
	} else if (CH.sni_len != 0 || CH.sni[0] != '\0' || !(CH.flags & MOAT_TLS_CH_F_SNI_INVALID)) {
		fail_msg("SNI \"%.*s\" taken as \"%s\"", (int)n, name, CH.sni);
	}
}

#define SNI_OK(s) sni_case(s, strlen(s), s)
#define SNI_BAD(s) sni_case(s, sizeof(s) - 1, NULL)

static void test_sni(void **state)
{
	char name[400];
	size_t i;

	SNI_OK("example.com");
	SNI_OK("a");
	SNI_OK("Moat.Example.COM");
	SNI_OK("xn--bcher-kva.example");
	SNI_OK("under_score.example");
	SNI_OK("4chan.org");
	SNI_OK("1.2.3.com");
	SNI_OK("-x-.example");
	SNI_BAD("example.com.");
	SNI_BAD(".example.com");
	SNI_BAD("a..b");
	SNI_BAD(".");
	SNI_BAD("exa mple.com");
	SNI_BAD("exa\0mple.com");
	SNI_BAD("example.com\0");
	SNI_BAD("caf\xc3\xa9.fr");
	SNI_BAD("192.168.0.1");
	SNI_BAD("10");
	SNI_BAD("::1");
	SNI_BAD("[::1]");
	SNI_BAD("host:443");
	SNI_BAD("a/b");

	/* a label of 63 bytes, a name of 253 */
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	SNI_OK(name);
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	sni_case(name, strlen(name), NULL);
	memset(name, 'b', 253);
	for (i = 50; i < 253; i += 51)
		name[i] = '.';
	name[253] = '\0';
	SNI_OK(name);
	name[253] = 'b';
	name[254] = '\0';
	sni_case(name, 254, NULL);
	memset(name, 'c', 399);
	sni_case(name, 399, NULL); /* longer than sni[]: refused, no overflow */

	/* two host_names: refused; another name type: skipped */
	hello_begin(std_ciphers, 3, 1);
	ext_raw(0, "\0\x0a\0\0\2ab\0\0\2cd", 12);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);
	hello_begin(std_ciphers, 3, 1);
	ext_raw(0, "\0\x0b\7\0\3xyz\0\0\2cd", 13);
	hello_end();
	parse_h_ok(16384);
	assert_string_equal(CH.sni, "cd");
	hello_begin(std_ciphers, 3, 1);
	ext_raw(0, "\0\6\7\0\3xyz", 8);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.flags & (MOAT_TLS_CH_F_SNI | MOAT_TLS_CH_F_SNI_INVALID),
			 MOAT_TLS_CH_F_SNI | MOAT_TLS_CH_F_SNI_INVALID);
	assert_int_equal(CH.sni_len, 0);
}

static void test_no_extensions(void **state)
{
	/* an old client: no extensions at all (RFC 5246 §7.4.1.2) */
	hello_begin(std_ciphers, 3, 0);
	H.b[4] = 3;
	H.b[5] = 1;
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.legacy_version, 0x0301);
	assert_int_equal(CH.nexts, 0);
	assert_int_equal(CH.flags, 0);
	assert_int_equal(CH.sni[0], '\0');
	assert_int_equal(CH.nciphers, 3);
	parse_h_ok(1);

	/* an empty extensions block */
	hello_begin(std_ciphers, 3, 1);
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.flags, MOAT_TLS_CH_F_EXTENSIONS);

	/* one byte after the compression methods: half a block length */
	hello_begin(std_ciphers, 3, 0);
	put8(0);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);

	/* a message too short for its random */
	H.n = 0;
	H.depth = 0;
	put8(1);
	vec_open(3);
	put16(0x0303);
	putn("0123456789", 10);
	hello_end();
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_EBAD);
}

/* A hello padded (extension 21) to a message of `msg` bytes. */
static void padded_hello(size_t msg)
{
	size_t i, pad;

	hello_begin(std_ciphers, 3, 1);
	ext_sni("big.example", 11);
	ext_begin(21);
	pad = msg - H.n;
	for (i = 0; i < pad; i++)
		put8(0);
	hello_end();
	assert_int_equal(H.n, msg);
}

static void test_too_big(void **state)
{
	/* one record up to the limit */
	padded_hello(MOAT_TLS_CH_MAX - 5);
	assert_int_equal(parse_h(16384), (int)MOAT_TLS_CH_MAX);
	assert_string_equal(CH.sni, "big.example");
	padded_hello(MOAT_TLS_CH_MAX - 4);
	assert_int_equal(parse_h(16384), MOAT_TLS_CH_ETOOBIG);
	/* refused as soon as the handshake header says so */
	assert_int_equal(moat_tls_ch_parse(REC, 9, &CH), MOAT_TLS_CH_ETOOBIG);

	/* small records: what counts is the bytes of records */
	padded_hello(2000);
	assert_int_equal(parse_h(1), 12000);
	padded_hello(2731);
	assert_int_equal(parse_h(1), MOAT_TLS_CH_ETOOBIG);
	assert_true(RECN > MOAT_TLS_CH_MAX);
	assert_int_equal(moat_tls_ch_parse(REC, MOAT_TLS_CH_MAX, &CH), MOAT_TLS_CH_ETOOBIG);
	assert_int_equal(moat_tls_ch_parse(REC, MOAT_TLS_CH_MAX - 1, &CH), MOAT_AGAIN);
	/* 2730 bytes in 1-byte records: 16380, it fits */
	padded_hello(2730);
	assert_int_equal(parse_h(1), 16380);
}

static void test_truncated(void **state)
{
	static uint16_t ciphers[200];
	unsigned i;

	for (i = 0; i < 200; i++)
		ciphers[i] = (uint16_t)(0xc000 + i);
	ciphers[150] = 0x4a4a; /* past the array: still noticed */
	hello_begin(ciphers, 200, 1);
	for (i = 0; i < 70; i++)
		ext_raw(0x1000 + i, "", 0);
	ext_begin(43);
	vec_open(1);
	for (i = 0; i < 20; i++)
		put16(0x0300 + i);
	vec_close();
	vec_close();
	ext_begin(10);
	vec_open(2);
	for (i = 0; i < 40; i++)
		put16(i);
	vec_close();
	vec_close();
	ext_begin(13);
	vec_open(2);
	for (i = 0; i < 70; i++)
		put16(0x0400 + i);
	vec_close();
	vec_close();
	ext_begin(11);
	vec_open(1);
	for (i = 0; i < 10; i++)
		put8(i);
	vec_close();
	vec_close();
	ext_begin(16);
	vec_open(2);
	vec_open(1);
	putn("a-protocol-name-of-forty-bytes-to-test!Z", 40);
	vec_close();
	for (i = 0; i < 10; i++) {
		vec_open(1);
		put8('0' + i);
		vec_close();
	}
	vec_close();
	vec_close();
	hello_end();
	parse_h_ok(16384);
	assert_int_equal(CH.truncated, MOAT_TLS_CH_L_VERSIONS | MOAT_TLS_CH_L_CIPHERS | MOAT_TLS_CH_L_EXTS |
					       MOAT_TLS_CH_L_GROUPS | MOAT_TLS_CH_L_SIGALGS | MOAT_TLS_CH_L_ECPF |
					       MOAT_TLS_CH_L_ALPN | MOAT_TLS_CH_L_ALPN_NAME);
	assert_int_equal(CH.grease, MOAT_TLS_CH_L_CIPHERS);
	assert_int_equal(CH.nciphers, 128);
	assert_int_equal(CH.ciphers[127], 0xc000 + 127);
	assert_int_equal(CH.nexts, 64);
	assert_int_equal(CH.exts[63], 0x1000 + 63);
	assert_int_equal(CH.nversions, 16);
	assert_int_equal(CH.ngroups, 32);
	assert_int_equal(CH.nsigalgs, 64);
	assert_int_equal(CH.necpf, 8);
	assert_int_equal(CH.ec_point_formats[7], 7);
	/* the extensions past the array were still read: ALPN came last */
	assert_int_equal(CH.nalpn, 8);
	assert_int_equal(CH.alpn_len[0], 40);
	assert_int_equal(CH.alpn_last[0], 'Z');
	assert_int_equal(strlen(CH.alpn[0]), 31);
	assert_memory_equal(CH.alpn[0], "a-protocol-name-of-forty-bytes-", 31);
	assert_true(alpn_is(7, "6"));
	assert_int_equal(CH.flags, ALL_FLAGS & ~MOAT_TLS_CH_F_SNI);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssl),
		cmocka_unit_test(test_curl_python),
		cmocka_unit_test(test_chromium),
		cmocka_unit_test(test_need),
		cmocka_unit_test(test_std),
		cmocka_unit_test(test_malformed_lengths),
		cmocka_unit_test(test_vector_bounds),
		cmocka_unit_test(test_malformed_contents),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_grease),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_no_extensions),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
