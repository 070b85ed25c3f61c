/*
 * access_test.c - unit tests of src/proxy/access.c, access-log lines.
 *
 * Checked: the exact JSON, combined and common lines for a plain request;
 * JSON string escaping (quotes, backslashes, control bytes, DEL and bytes
 * >= 0x80) checked both byte for byte and with a strict JSON validator;
 * \xHH escaping in the text formats; a line that does not fit the buffer
 * is still one line, shorter than the buffer, and (JSON) still valid JSON.
 * Every line is written into an exactly sized heap buffer so any write
 * past `cap` is caught by ASan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/access.h"

/* ---- a strict JSON validator (RFC 8259), for one object ---------------- */

struct jp {
	const char *p, *end;
};

static int j_value(struct jp *j, int depth);

static void j_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int j_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int j_string(struct jp *j)
{
	if (j->p >= j->end || *j->p != '"')
		return 0;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p++;

		if (c == '"')
			return 1;
		if (c < 0x20 || c >= 0x80)   /* raw control bytes; we also want ASCII only */
			return 0;
		if (c == '\\') {
			if (j->p >= j->end)
				return 0;
			c = (unsigned char)*j->p++;
			if (c == 'u') {
				if (j->end - j->p < 4 || !j_hex(j->p[0]) || !j_hex(j->p[1]) ||
				    !j_hex(j->p[2]) || !j_hex(j->p[3]))
					return 0;
				j->p += 4;
			} else if (!strchr("\"\\/bfnrt", c)) {
				return 0;
			}
		}
	}
	return 0;
}

static int j_number(struct jp *j)
{
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end)
		return 0;
	if (*j->p == '0') {
		j->p++;
	} else if (*j->p >= '1' && *j->p <= '9') {
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	} else {
		return 0;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return 0;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return 0;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s;
}

static int j_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

static int j_object(struct jp *j, int depth)
{
	j->p++;   /* '{' */
	j_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 1;
	}
	for (;;) {
		j_ws(j);
		if (!j_string(j))
			return 0;
		j_ws(j);
		if (j->p >= j->end || *j->p++ != ':')
			return 0;
		if (!j_value(j, depth + 1))
			return 0;
		j_ws(j);
		if (j->p >= j->end)
			return 0;
		if (*j->p == '}') {
			j->p++;
			return 1;
		}
		if (*j->p++ != ',')
			return 0;
	}
}

static int j_array(struct jp *j, int depth)
{
	j->p++;   /* '[' */
	j_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 1;
	}
	for (;;) {
		if (!j_value(j, depth + 1))
			return 0;
		j_ws(j);
		if (j->p >= j->end)
			return 0;
		if (*j->p == ']') {
			j->p++;
			return 1;
		}
		if (*j->p++ != ',')
			return 0;
	}
}

static int j_value(struct jp *j, int depth)
{
	if (depth > 32)
		return 0;
	j_ws(j);
	if (j->p >= j->end)
		return 0;
	switch (*j->p) {
	case '{':
		return j_object(j, depth);
	case '[':
		return j_array(j, depth);
	case '"':
		return j_string(j);
	case 't':
		return j_lit(j, "true");
	case 'f':
		return j_lit(j, "false");
	case 'n':
		return j_lit(j, "null");
	default:
		return j_number(j);
	}
}

/* One JSON object, then exactly one '\n' ending the line. */
static int json_line_valid(const char *s, size_t n)
{
	struct jp j = { s, s + n };

	if (n < 3 || s[0] != '{' || s[n - 1] != '\n')
		return 0;
	j.end = s + n - 1;
	if (!j_value(&j, 0))
		return 0;
	return j.p == j.end;
}

static void test_validator_itself(void **state)
{
	static const char *const good[] = {
		"{}\n", "{\"a\":1}\n", "{\"a\":\"\\u00ff\\\"\\\\\",\"b\":[1,2.5,-0.1e3],\"c\":null}\n",
	};
	static const char *const bad[] = {
		"{\n", "{\"a\":1}", "{\"a\":\"\x01\"}\n", "{\"a\":\"\\x01\"}\n", "{\"a\":\"\xc3\xa9\"}\n",
		"{\"a\":01}\n", "{\"a\":1,}\n", "{\"a\":\"x}\n", "{\"a\":1}\n\n", "{\"a\":\"\\u00f\"}\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(json_line_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (json_line_valid(bad[i], strlen(bad[i])))
			fail_msg("validator accepted bad[%zu]", i);
}

/* ---- formatting ------------------------------------------------------- */

#define S(lit) (lit), (sizeof(lit) - 1)

static struct moat_access_rec rec_plain(void)
{
	struct moat_access_rec r;

	memset(&r, 0, sizeof(r));
	r.time_iso = "2026-11-27T12:00:00.123Z";
	r.time_clf = "27/Nov/2026:12:00:00 +0000";
	r.client = "192.0.2.1";
	r.method = "GET";
	r.method_len = 3;
	r.uri = "/x?y=1";
	r.uri_len = 6;
	r.host = "example.com";
	r.host_len = 11;
	r.ua = "curl/8.5.0";
	r.ua_len = 10;
	r.referer = "https://ref.example/";
	r.referer_len = 20;
	r.minor = 1;
	r.status = 200;
	r.bytes_in = 78;
	r.bytes_out = 512;
	r.duration_us = 1500;
	r.upstream = "app";
	r.server = "10.0.0.1:8080";
	r.conn_id = 7;
	r.conn_requests = 2;
	return r;
}

static char *line;   /* exactly `cap` bytes, freed by the teardown */

/* Formats into an exactly sized buffer; checks the line shape. */
static size_t fmt(int format, const struct moat_access_rec *r, size_t cap)
{
	size_t n;

	free(line);
	line = malloc(cap);
	assert_non_null(line);
	n = moat_access_format(line, cap, format, r);
	assert_true(n > 0 && n <= cap);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	return n;
}

static void expect_line(const char *want, size_t n)
{
	if (n != strlen(want) || memcmp(line, want, n) != 0)
		fail_msg("--- got (%zu bytes):\n%.*s--- want (%zu bytes):\n%s", n, (int)n, line,
			 strlen(want), want);
}

static int teardown(void **state)
{
	(void)state;
	free(line);
	line = NULL;
	return 0;
}

static void test_json_exact(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	n = fmt(MOAT_ACCESS_JSON, &r, 4096);
	expect_line("{\"time\":\"2026-11-27T12:00:00.123Z\",\"client\":\"192.0.2.1\","
		    "\"method\":\"GET\",\"uri\":\"/x?y=1\",\"proto\":\"HTTP/1.1\","
		    "\"host\":\"example.com\",\"status\":200,\"bytes_in\":78,\"bytes_out\":512,"
		    "\"duration_ms\":1.500,\"upstream\":\"app\",\"server\":\"10.0.0.1:8080\","
		    "\"user_agent\":\"curl/8.5.0\",\"referer\":\"https://ref.example/\","
		    "\"conn\":7,\"conn_requests\":2}\n", n);
	assert_true(json_line_valid(line, n));
	assert_true(n < 4096);
}

/* No upstream (an error answered by moat itself), no server, no header
 * fields, HTTP/1.0, big numbers. */
static void test_json_without_upstream(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	r.upstream = NULL;
	r.server = "";
	r.ua_len = 0;
	r.referer_len = 0;
	r.host_len = 0;
	r.minor = 0;
	r.status = 404;
	r.bytes_in = 18446744073709551615ull;
	r.bytes_out = 0;
	r.duration_us = 0;
	r.conn_id = 18446744073709551615ull;
	r.conn_requests = 4294967295u;
	n = fmt(MOAT_ACCESS_JSON, &r, 4096);
	expect_line("{\"time\":\"2026-11-27T12:00:00.123Z\",\"client\":\"192.0.2.1\","
		    "\"method\":\"GET\",\"uri\":\"/x?y=1\",\"proto\":\"HTTP/1.0\","
		    "\"host\":\"\",\"status\":404,\"bytes_in\":18446744073709551615,\"bytes_out\":0,"
		    "\"duration_ms\":0.000,\"user_agent\":\"\",\"referer\":\"\","
		    "\"conn\":18446744073709551615,\"conn_requests\":4294967295}\n", n);
	assert_true(json_line_valid(line, n));
}

static void test_json_escaping(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	r.uri = "/a\"b\\c\x01\x1f\x7f\x80\xff\n\t/";
	r.uri_len = strlen(r.uri);
	r.ua = "Mozilla \"x\" \\ \xc3\xa9t\xc3\xa9";
	r.ua_len = strlen(r.ua);
	r.referer = "\r\n{\"inject\":1}";
	r.referer_len = strlen(r.referer);
	r.host = "h\0st";                       /* a NUL inside a field */
	r.host_len = 4;
	r.method = "G\"T";
	r.method_len = 3;
	n = fmt(MOAT_ACCESS_JSON, &r, 4096);
	expect_line("{\"time\":\"2026-11-27T12:00:00.123Z\",\"client\":\"192.0.2.1\","
		    "\"method\":\"G\\\"T\","
		    "\"uri\":\"/a\\\"b\\\\c\\u0001\\u001f\\u007f\\u0080\\u00ff\\u000a\\u0009/\","
		    "\"proto\":\"HTTP/1.1\",\"host\":\"h\\u0000st\","
		    "\"status\":200,\"bytes_in\":78,\"bytes_out\":512,"
		    "\"duration_ms\":1.500,\"upstream\":\"app\",\"server\":\"10.0.0.1:8080\","
		    "\"user_agent\":\"Mozilla \\\"x\\\" \\\\ \\u00c3\\u00a9t\\u00c3\\u00a9\","
		    "\"referer\":\"\\u000d\\u000a{\\\"inject\\\":1}\","
		    "\"conn\":7,\"conn_requests\":2}\n", n);
	assert_true(json_line_valid(line, n));
}

/* Every byte value in every string field: always one valid JSON line. */
static void test_json_every_byte_valid(void **state)
{
	char all[256];
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	for (int i = 0; i < 256; i++) {
		r.uri = all + i;
		r.uri_len = 1;
		r.method = all + (255 - i);
		r.method_len = 1;
		r.ua = all;
		r.ua_len = (size_t)i;
		r.host = all + i;
		r.host_len = (size_t)(256 - i) < 8 ? (size_t)(256 - i) : 8;
		n = fmt(MOAT_ACCESS_JSON, &r, 8192);
		if (!json_line_valid(line, n))
			fail_msg("byte 0x%02x: invalid JSON:\n%.*s", i, (int)n, line);
	}
}

static void test_combined_exact(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	n = fmt(MOAT_ACCESS_COMBINED, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] \"GET /x?y=1 HTTP/1.1\" 200 512 "
		    "\"https://ref.example/\" \"curl/8.5.0\"\n", n);

	r.referer_len = 0;
	r.ua_len = 0;
	r.bytes_out = 0;
	r.minor = 0;
	r.status = 304;
	n = fmt(MOAT_ACCESS_COMBINED, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] \"GET /x?y=1 HTTP/1.0\" 304 - "
		    "\"-\" \"-\"\n", n);

	r.client = "2001:db8::1";
	n = fmt(MOAT_ACCESS_COMBINED, &r, 4096);
	expect_line("2001:db8::1 - - [27/Nov/2026:12:00:00 +0000] \"GET /x?y=1 HTTP/1.0\" 304 - "
		    "\"-\" \"-\"\n", n);
}

static void test_common_exact(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	n = fmt(MOAT_ACCESS_COMMON, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] \"GET /x?y=1 HTTP/1.1\" 200 512\n", n);

	r.bytes_out = 0;
	r.status = 502;
	r.method = "POST";
	r.method_len = 4;
	n = fmt(MOAT_ACCESS_COMMON, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] \"POST /x?y=1 HTTP/1.1\" 502 -\n", n);
}

static void test_text_escaping(void **state)
{
	struct moat_access_rec r = rec_plain();
	size_t n;

	(void)state;
	r.uri = "/a\"b\\c\x01\x7f\x80\xff d";
	r.uri_len = strlen(r.uri);
	r.referer = "\"-\"";
	r.referer_len = 3;
	r.ua = "ua\r\nGET /fake HTTP/1.1";
	r.ua_len = strlen(r.ua);
	n = fmt(MOAT_ACCESS_COMBINED, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] "
		    "\"GET /a\\x22b\\x5cc\\x01\\x7f\\x80\\xff d HTTP/1.1\" 200 512 "
		    "\"\\x22-\\x22\" \"ua\\x0d\\x0aGET /fake HTTP/1.1\"\n", n);

	n = fmt(MOAT_ACCESS_COMMON, &r, 4096);
	expect_line("192.0.2.1 - - [27/Nov/2026:12:00:00 +0000] "
		    "\"GET /a\\x22b\\x5cc\\x01\\x7f\\x80\\xff d HTTP/1.1\" 200 512\n", n);
}

/* ---- lines longer than the buffer ------------------------------------- */

static char big_quote[512], big_high[512], big_ctl[512];

static struct moat_access_rec rec_long(void)
{
	struct moat_access_rec r = rec_plain();

	/* what client.c captures at most: 512 bytes per field, which the
	 * escapes grow up to six times */
	memset(big_quote, '"', sizeof(big_quote));
	memset(big_high, 0xff, sizeof(big_high));
	memset(big_ctl, 0x01, sizeof(big_ctl));
	r.uri = big_high;
	r.uri_len = sizeof(big_high);
	r.ua = big_ctl;
	r.ua_len = sizeof(big_ctl);
	r.referer = big_quote;
	r.referer_len = sizeof(big_quote);
	r.host = big_high;
	r.host_len = sizeof(big_high);
	return r;
}

/* Never a byte past cap, always one line ending in '\n', whatever cap. */
static void test_truncation_stays_in_bounds(void **state)
{
	struct moat_access_rec r = rec_long();

	(void)state;
	for (size_t cap = 2; cap <= 5000; cap += (cap < 300 ? 1 : 97)) {
		fmt(MOAT_ACCESS_JSON, &r, cap);
		fmt(MOAT_ACCESS_COMBINED, &r, cap);
		fmt(MOAT_ACCESS_COMMON, &r, cap);
	}
}

/* access.h: "returns its length (< cap)". */
static void test_truncated_length_below_cap(void **state)
{
	struct moat_access_rec r = rec_long();
	size_t n, nj, nc;

	(void)state;
	nj = fmt(MOAT_ACCESS_JSON, &r, 4096);
	nc = fmt(MOAT_ACCESS_COMBINED, &r, 1024);
	n = fmt(MOAT_ACCESS_COMMON, &r, 512);
	if (nj >= 4096 || nc >= 1024 || n >= 512)
		fail_msg("returned JSON %zu (cap 4096), combined %zu (cap 1024), common %zu (cap 512)",
			 nj, nc, n);
}

/* access.h: long fields are truncated; the line stays a JSON object a log
 * pipeline can parse, with the fields after the long one still there. */
static void test_json_long_fields_stay_valid(void **state)
{
	struct moat_access_rec r = rec_long();
	size_t n;

	(void)state;
	n = fmt(MOAT_ACCESS_JSON, &r, 4096);
	if (!json_line_valid(line, n))
		fail_msg("invalid JSON line of %zu bytes, ending: ...%.*s", n,
			 (int)(n < 80 ? n : 80), line + (n < 80 ? 0 : n - 80));
	assert_non_null(strstr(line, "\"status\":200,"));
	assert_non_null(strstr(line, "\"conn_requests\":2}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validator_itself),
		cmocka_unit_test(test_json_exact),
		cmocka_unit_test(test_json_without_upstream),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_every_byte_valid),
		cmocka_unit_test(test_combined_exact),
		cmocka_unit_test(test_common_exact),
		cmocka_unit_test(test_text_escaping),
		cmocka_unit_test(test_truncation_stays_in_bounds),
		cmocka_unit_test(test_truncated_length_below_cap),
		cmocka_unit_test(test_json_long_fields_stay_valid),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
