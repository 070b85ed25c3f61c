/*
 * compress_mod_test.c - unit tests of src/mod/compress/compress_mod.c: the
 * module's hooks driven directly, as phase.c calls them, with parsed
 * request and response heads, a route's compress settings and a sink that
 * collects the output (decoded with zlib for gzip).
 *
 * Covers: nothing allocated when compress is off or without a head; the
 * coding chosen from Accept-Encoding (and the route's codings); TRANSFORM
 * with the header edits; a gzip body that decodes to the input; HEAD gets
 * the GET's fields without an encoder; no Accept-Encoding or one the
 * route does not offer: PASS with Vary alone; edits that do not fit:
 * uncompressed, with Vary when it fits; a failing sink; txn_end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <zlib.h>

#include "conf/conf.h"
#include "http/h1_parse.h"
#include "mod/compress/compress_mod.h"

static const struct moat_h1_limits lim = { 8192, 16384, 64 };

struct fixture {
	struct moat_conf_route route;
	struct moat_h1_header rqh[64], rsh[64];
	struct moat_h1_head req, resp;
	void *slot;
	struct moat_mod_req q;
	struct moat_mod_resp r;
};

static void setup_route(struct fixture *f, int on, unsigned codings)
{
	memset(f, 0, sizeof(*f));
	f->route.compress.on = on;
	f->route.compress.min_size = 256;
	f->route.compress.codings = codings;
	f->q.route = &f->route;
	f->q.slot = &f->slot;
}

static void parse_req(struct fixture *f, const char *text)
{
	f->req.headers = f->rqh;
	f->req.header_cap = 64;
	assert_true(moat_h1_parse_request(text, strlen(text), &f->req, &lim) > 0);
	f->q.h = &f->req;
}

static void parse_resp(struct fixture *f, const char *text, int head)
{
	f->resp.headers = f->rsh;
	f->resp.header_cap = 64;
	assert_true(moat_h1_parse_response(text, strlen(text), &f->resp, &lim, head) > 0);
	memset(&f->r, 0, sizeof(f->r));
	f->r.h = &f->resp;
	f->r.request_was_head = head;
	f->r.has_length = f->resp.framing == MOAT_H1_BODY_LENGTH;
	f->r.body_len = f->r.has_length ? f->resp.content_length : 0;
	f->q.h = NULL;
}

static void end_txn(struct fixture *f)
{
	if (f->slot)
		moat_mod_compress.txn_end(NULL, f->slot);
	f->slot = NULL;
}

static int hidden(const struct moat_mod_resp *r, const char *name)
{
	for (size_t i = 0; i < r->nhide; i++)
		if (strcmp(r->hide[i], name) == 0)
			return 1;
	return 0;
}

static int has_line(const struct moat_mod_resp *r, const char *line)
{
	size_t n = strlen(line);

	for (size_t i = 0; i + n <= r->extra_len; i++)
		if ((i == 0 || r->extra[i - 1] == '\n') && memcmp(r->extra + i, line, n) == 0)
			return 1;
	return 0;
}

#define HTML_5000 "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5000\r\n" \
		  "ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n\r\n"

/* ---- sink ----------------------------------------------------------------- */

struct collect {
	struct moat_mod_sink k;
	unsigned char *p;
	size_t len, cap;
	int fail_after;             /* calls that succeed before put fails; -1: never */
	int calls;
};

static int collect_put(struct moat_mod_sink *k, const void *p, size_t n)
{
	struct collect *c = (struct collect *)k;

	if (c->fail_after >= 0 && c->calls >= c->fail_after)
		return -1;
	c->calls++;
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->p = realloc(c->p, c->cap);
		assert_non_null(c->p);
	}
	memcpy(c->p + c->len, p, n);
	c->len += n;
	return 0;
}

static unsigned char *text(size_t n)
{
	static const char *const w[] = { "moat ", "proxy ", "<p>cache</p> ", "compress ", "body " };
	unsigned char *p = malloc(n);
	unsigned x = 7;

	assert_non_null(p);
	for (size_t i = 0; i < n;) {
		const char *s;

		x = x * 1103515245u + 12345u;
		s = w[(x >> 16) % 5];
		for (; *s && i < n; s++)
			p[i++] = (unsigned char)*s;
	}
	return p;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_off_no_slot(void **st)
{
	struct fixture f;

	(void)st;
	setup_route(&f, 0, MOAT_CONF_CODING_GZIP | MOAT_CONF_CODING_BR | MOAT_CONF_CODING_ZSTD);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
	assert_int_equal(moat_mod_compress.request(&f.q), MOAT_MOD_NEXT);
	assert_null(f.slot);
	parse_resp(&f, HTML_5000, 0);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_int_equal(f.r.nhide, 0);
	assert_int_equal(f.r.extra_len, 0);

	/* on, but asked again without a head (after a wait): nothing either */
	setup_route(&f, 1, MOAT_CONF_CODING_GZIP);
	assert_int_equal(moat_mod_compress.request(&f.q), MOAT_MOD_NEXT);
	assert_null(f.slot);
}

static void test_choice(void **st)
{
	static const struct {
		unsigned codings;
		const char *ae;
		const char *want;   /* Content-Encoding, or NULL: not compressed */
	} cases[] = {
		{ 14, "gzip, deflate, br", "br" },
		{ 14, "gzip;q=0.5, zstd", "zstd" },
		{ 14, "*", "br" },
		{ 14, "identity", NULL },
		{ 14, "gzip;q=0", NULL },
		{ MOAT_CONF_CODING_GZIP, "gzip, br", "gzip" },
		{ MOAT_CONF_CODING_GZIP, "br, zstd", NULL },
		{ MOAT_CONF_CODING_ZSTD | MOAT_CONF_CODING_GZIP, "br, gzip;q=0.9, zstd;q=0.8", "gzip" },
		{ 14, NULL, NULL },
	};
	char req[256], line[64];

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		enum moat_mod_rverdict v;

		setup_route(&f, 1, cases[i].codings);
		if (cases[i].ae)
			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: %s\r\n\r\n", cases[i].ae);
		else
			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
		parse_req(&f, req);
		assert_int_equal(moat_mod_compress.request(&f.q), MOAT_MOD_NEXT);
		assert_non_null(f.slot);
		parse_resp(&f, HTML_5000, 0);
		v = moat_mod_compress.resp_head(&f.q, &f.r);
		/* every case here depends on Accept-Encoding: Vary always */
		assert_true(has_line(&f.r, "Vary: Accept-Encoding\r\n"));
		if (cases[i].want) {
			assert_int_equal(v, MOAT_MOD_R_TRANSFORM);
			snprintf(line, sizeof(line), "Content-Encoding: %s\r\n", cases[i].want);
			assert_true(has_line(&f.r, line));
			assert_true(has_line(&f.r, "ETag: W/\"v1\"\r\n"));
			assert_true(hidden(&f.r, "content-length"));
			assert_true(hidden(&f.r, "accept-ranges"));
			assert_true(hidden(&f.r, "etag"));
		} else {
			assert_int_equal(v, MOAT_MOD_R_PASS);
			assert_false(has_line(&f.r, "Content-Encoding"));
			assert_false(hidden(&f.r, "content-length"));
		}
		end_txn(&f);
	}
}

static void test_gzip_body(void **st)
{
	struct fixture f;
	struct collect c = { { collect_put }, NULL, 0, 0, -1, 0 };
	const size_t n = 300000;
	unsigned char *in = text(n), *out = malloc(n + 1);
	char resp[256];
	z_stream z;

	(void)st;
	assert_non_null(out);
	setup_route(&f, 1, MOAT_CONF_CODING_GZIP | MOAT_CONF_CODING_BR);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
	moat_mod_compress.request(&f.q);
	snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n\r\n", n);
	parse_resp(&f, resp, 0);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_TRANSFORM);
	assert_true(has_line(&f.r, "Content-Encoding: gzip\r\n"));
	/* in odd pieces, as the proxy's slices come; an empty call; the end alone */
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 7777 ? n - off : 7777;

		assert_int_equal(moat_mod_compress.resp_body(&f.q, (const char *)in + off, k, 0, &c.k), 0);
		assert_int_equal(moat_mod_compress.resp_body(&f.q, NULL, 0, 0, &c.k), 0);
		off += k;
	}
	assert_int_equal(moat_mod_compress.resp_body(&f.q, NULL, 0, 1, &c.k), 0);
	assert_true(c.len > 0 && c.len < n / 3);

	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = c.p;
	z.avail_in = (uInt)c.len;
	z.next_out = out;
	z.avail_out = (uInt)(n + 1);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.total_out, n);
	assert_memory_equal(out, in, n);
	inflateEnd(&z);
	end_txn(&f);
	free(c.p);
	free(in);
	free(out);
}

static void test_chunked_unknown_length(void **st)
{
	struct fixture f;
	struct collect c = { { collect_put }, NULL, 0, 0, -1, 0 };

	(void)st;
	setup_route(&f, 1, MOAT_CONF_CODING_ZSTD);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: zstd\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
		       "Vary: Origin\r\n\r\n", 0);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_TRANSFORM);
	assert_true(has_line(&f.r, "Content-Encoding: zstd\r\n"));
	assert_true(has_line(&f.r, "Vary: Origin, Accept-Encoding\r\n"));
	assert_true(hidden(&f.r, "vary"));
	assert_int_equal(moat_mod_compress.resp_body(&f.q, "{\"a\": 1}", 8, 0, &c.k), 0);
	assert_int_equal(moat_mod_compress.resp_body(&f.q, "", 0, 1, &c.k), 0);
	assert_true(c.len >= 4 && memcmp(c.p, "\x28\xb5\x2f\xfd", 4) == 0); /* a zstd frame */
	end_txn(&f);
	free(c.p);
}

static void test_head(void **st)
{
	struct fixture f;

	(void)st;
	setup_route(&f, 1, 14);
	parse_req(&f, "HEAD / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
	moat_mod_compress.request(&f.q);
	assert_non_null(f.slot);
	parse_resp(&f, HTML_5000, 1);
	/* the GET's fields, and no body to transform */
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_true(has_line(&f.r, "Content-Encoding: gzip\r\n"));
	assert_true(has_line(&f.r, "Vary: Accept-Encoding\r\n"));
	assert_true(has_line(&f.r, "ETag: W/\"v1\"\r\n"));
	assert_true(hidden(&f.r, "content-length"));
	end_txn(&f);

	/* HEAD without Accept-Encoding: Vary alone */
	setup_route(&f, 1, 14);
	parse_req(&f, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, HTML_5000, 1);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_false(has_line(&f.r, "Content-Encoding"));
	assert_true(has_line(&f.r, "Vary: Accept-Encoding\r\n"));
	assert_false(hidden(&f.r, "content-length"));
	end_txn(&f);
}

static void test_not_compressible(void **st)
{
	static const char *const resps[] = {
		"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: 5000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: no-transform\r\nContent-Length: 5000\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Type: text/html\r\n\r\n",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(resps) / sizeof(resps[0]); i++) {
		struct fixture f;

		setup_route(&f, 1, 14);
		parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
		moat_mod_compress.request(&f.q);
		parse_resp(&f, resps[i], 0);
		assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
		assert_int_equal(f.r.nhide, 0);
		assert_int_equal(f.r.extra_len, 0);
		end_txn(&f);
	}
}

static void test_edits_do_not_fit(void **st)
{
	struct fixture f;

	(void)st;
	/* no room for Content-Encoding + ETag + Vary, room for Vary: uncompressed, with Vary */
	setup_route(&f, 1, 14);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, HTML_5000, 0);
	f.r.extra_len = sizeof(f.r.extra) - 30;
	memset(f.r.extra, 'x', f.r.extra_len);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_int_equal(f.r.extra_len, sizeof(f.r.extra) - 30 + strlen("Vary: Accept-Encoding\r\n"));
	assert_memory_equal(f.r.extra + sizeof(f.r.extra) - 30, "Vary: Accept-Encoding\r\n", 23);
	assert_false(hidden(&f.r, "content-length"));
	end_txn(&f);

	/* no room at all: untouched */
	setup_route(&f, 1, 14);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, HTML_5000, 0);
	f.r.extra_len = sizeof(f.r.extra) - 5;
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_int_equal(f.r.extra_len, sizeof(f.r.extra) - 5);
	assert_int_equal(f.r.nhide, 0);
	end_txn(&f);

	/* the hide list nearly full: uncompressed, with Vary (nothing to hide) */
	setup_route(&f, 1, 14);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, HTML_5000, 0);
	for (f.r.nhide = 0; f.r.nhide < MOAT_MOD_RESP_HIDE_MAX - 2; f.r.nhide++)
		f.r.hide[f.r.nhide] = "x-other";
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_PASS);
	assert_true(has_line(&f.r, "Vary: Accept-Encoding\r\n"));
	assert_false(has_line(&f.r, "Content-Encoding"));
	assert_int_equal(f.r.nhide, MOAT_MOD_RESP_HIDE_MAX - 2);
	end_txn(&f);

	/* names another module hid already are not listed twice */
	setup_route(&f, 1, 14);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, HTML_5000, 0);
	for (f.r.nhide = 0; f.r.nhide < MOAT_MOD_RESP_HIDE_MAX - 7; f.r.nhide++)
		f.r.hide[f.r.nhide] = "x-other";
	f.r.hide[f.r.nhide++] = "content-length";
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_TRANSFORM);
	assert_int_equal(f.r.nhide, MOAT_MOD_RESP_HIDE_MAX);
	end_txn(&f);
}

static void test_sink_fails(void **st)
{
	struct fixture f;
	struct collect c = { { collect_put }, NULL, 0, 0, 0, 0 };
	unsigned char *in = text(100000);

	(void)st;
	setup_route(&f, 1, 14);
	parse_req(&f, "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
	moat_mod_compress.request(&f.q);
	parse_resp(&f, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", 0);
	assert_int_equal(moat_mod_compress.resp_head(&f.q, &f.r), MOAT_MOD_R_TRANSFORM);
	assert_int_equal(moat_mod_compress.resp_body(&f.q, (const char *)in, 100000, 1, &c.k), -1);
	end_txn(&f);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_no_slot),
		cmocka_unit_test(test_choice),
		cmocka_unit_test(test_gzip_body),
		cmocka_unit_test(test_chunked_unknown_length),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_not_compressible),
		cmocka_unit_test(test_edits_do_not_fit),
		cmocka_unit_test(test_sink_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
