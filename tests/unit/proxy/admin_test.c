/*
 * admin_test.c - unit tests of the pure parts of the admin listener
 * (src/proxy/admin.c, admin_text.c, admin_api.c): who may connect
 * (loopback, admin.allow, unix peers), the constant-time token compare, the
 * JSON writer and its string escaping, Prometheus label escaping, decimal
 * seconds, ISO 8601, percent-decoding of path segments, and the state a
 * server is reported in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "proxy/admin.h"
#include "proxy/admin_int.h"

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(4242);
	assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(4242);
	assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
	return ss;
}

static int allowed(struct sockaddr_storage ss, const struct moat_conf_cidr *allow, size_t n)
{
	return moat_admin_peer_allowed((const struct sockaddr *)&ss, allow, n);
}

static void test_peer_allowed(void **state)
{
	struct moat_conf_cidr allow[2];
	struct sockaddr_un sun;

	(void)state;
	assert_int_equal(moat_conf_parse_cidr("10.0.0.0/8", &allow[0]), 0);
	assert_int_equal(moat_conf_parse_cidr("2001:db8::/32", &allow[1]), 0);

	/* loopback, always */
	assert_true(allowed(v4("127.0.0.1"), NULL, 0));
	assert_true(allowed(v4("127.255.0.9"), NULL, 0));
	assert_true(allowed(v6("::1"), NULL, 0));
	assert_true(allowed(v6("::ffff:127.0.0.1"), NULL, 0));

	/* everything else only through allow */
	assert_false(allowed(v4("192.168.1.1"), NULL, 0));
	assert_false(allowed(v4("10.1.2.3"), NULL, 0));
	assert_true(allowed(v4("10.1.2.3"), allow, 2));
	assert_false(allowed(v4("11.1.2.3"), allow, 2));
	assert_true(allowed(v6("::ffff:10.9.9.9"), allow, 2));
	assert_true(allowed(v6("2001:db8::7"), allow, 2));
	assert_false(allowed(v6("2001:db9::7"), allow, 2));
	assert_false(allowed(v6("::2"), allow, 2));
	assert_false(allowed(v4("128.0.0.1"), allow, 2));
	assert_false(allowed(v4("0.0.0.0"), allow, 2));

	/* unix peers are always allowed; an unknown family never */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(moat_admin_peer_allowed((const struct sockaddr *)&sun, NULL, 0));
	sun.sun_family = AF_UNSPEC;
	assert_false(moat_admin_peer_allowed((const struct sockaddr *)&sun, allow, 2));
	assert_false(moat_admin_peer_allowed(NULL, allow, 2));
}

static void test_token_eq(void **state)
{
	(void)state;
	assert_true(moat_admin_token_eq("s3cret", 6, "s3cret"));
	assert_false(moat_admin_token_eq("s3cret", 5, "s3cret"));
	assert_false(moat_admin_token_eq("s3cre", 5, "s3cret"));
	assert_false(moat_admin_token_eq("s3cretX", 7, "s3cret"));
	assert_false(moat_admin_token_eq("S3cret", 6, "s3cret"));
	assert_false(moat_admin_token_eq("", 0, "s3cret"));
	/* the given length counts, not a NUL inside */
	assert_false(moat_admin_token_eq("s3cret\0x", 8, "s3cret"));
	assert_true(moat_admin_token_eq("", 0, ""));
}

static void expect_json(const char *in, size_t n, const char *want)
{
	struct moat_text t;

	moat_text_init(&t, 1024);
	moat_json_escape(&t, in, n);
	assert_false(t.full);
	assert_string_equal(t.p, want);
	moat_text_free(&t);
}

static void test_json_escape(void **state)
{
	(void)state;
	expect_json("plain", 5, "\"plain\"");
	expect_json("", 0, "\"\"");
	expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	expect_json("l1\nl2\r\t\b\f", 9, "\"l1\\nl2\\r\\t\\b\\f\"");
	expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	expect_json("nul\0x", 5, "\"nul\\u0000x\"");
	/* UTF-8 kept as is; broken sequences become U+FFFD */
	expect_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	expect_json("a\xff" "b", 3, "\"a\xef\xbf\xbd" "b\"");
	expect_json("\xc3", 1, "\"\xef\xbf\xbd\"");
	expect_json("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");       /* overlong */
	expect_json("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
}

static void test_json_writer(void **state)
{
	struct moat_text t;
	struct moat_json j;

	(void)state;
	moat_text_init(&t, 4096);
	moat_json_init(&j, &t);
	moat_json_obj(&j);
	moat_json_key(&j, "a");
	moat_json_u64(&j, 18446744073709551615ull);
	moat_json_key(&j, "b");
	moat_json_arr(&j);
	moat_json_i64(&j, -5);
	moat_json_bool(&j, 1);
	moat_json_null(&j);
	moat_json_str(&j, NULL);
	moat_json_obj(&j);
	moat_json_obj_end(&j);
	moat_json_arr(&j);
	moat_json_arr_end(&j);
	moat_json_arr_end(&j);
	moat_json_key(&j, "c\"d");
	moat_json_milli(&j, 1234567);
	moat_json_key(&j, "e");
	moat_json_milli(&j, 5);
	moat_json_key(&j, "f");
	moat_json_strn(&j, "xyz", 2);
	moat_json_obj_end(&j);
	assert_false(t.full);
	assert_string_equal(t.p, "{\"a\":18446744073709551615,\"b\":[-5,true,null,null,{},[]],\"c\\\"d\":1234.567,"
				 "\"e\":0.005,\"f\":\"xy\"}");
	moat_text_free(&t);
}

static void test_text_max(void **state)
{
	struct moat_text t;
	struct moat_json j;

	(void)state;
	moat_text_init(&t, 8);
	moat_text_str(&t, "12345678");
	assert_false(t.full);
	assert_int_equal(t.len, 8);
	moat_text_str(&t, "9");
	assert_true(t.full);
	assert_int_equal(t.len, 8);
	moat_text_reset(&t);
	assert_false(t.full);
	moat_text_printf(&t, "%s", "0123456789");
	assert_true(t.full);
	moat_text_free(&t);

	/* a long printf goes past the small stack buffer */
	moat_text_init(&t, 100000);
	moat_text_printf(&t, "%0500d|%s", 7, "end");
	assert_int_equal(t.len, 504);
	assert_string_equal(t.p + 500, "|end");
	moat_text_free(&t);

	/* nesting past the depth marks the text full */
	moat_text_init(&t, 4096);
	moat_json_init(&j, &t);
	for (int i = 0; i < MOAT_JSON_DEPTH + 1; i++)
		moat_json_arr(&j);
	assert_true(t.full);
	moat_text_free(&t);
}

static void test_seconds(void **state)
{
	static const struct {
		uint64_t us;
		const char *s;
	} cases[] = {
		{ 0, "0" },          { 1, "0.000001" },      { 500, "0.0005" },   { 1000, "0.001" },
		{ 2500, "0.0025" },  { 250000, "0.25" },     { 1000000, "1" },    { 2500000, "2.5" },
		{ 10000000, "10" },  { 123456789, "123.456789" },
	};
	char b[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		moat_admin_seconds(cases[i].us, b, sizeof(b));
		assert_string_equal(b, cases[i].s);
	}
	/* every bucket bound reads back as the bound */
	for (size_t i = 0; i < MOAT_HIST_BUCKETS - 1; i++) {
		moat_admin_seconds(moat_hist_bounds_us[i], b, sizeof(b));
		assert_true((uint64_t)(strtod(b, NULL) * 1e6 + 0.5) == moat_hist_bounds_us[i]);
	}
}

static void test_iso8601(void **state)
{
	char b[32];

	(void)state;
	moat_admin_iso8601(0, b, sizeof(b));
	assert_string_equal(b, "1970-01-01T00:00:00Z");
	moat_admin_iso8601(1795787253, b, sizeof(b));
	assert_string_equal(b, "2026-11-27T13:47:33Z");
}

static void test_unescape(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(moat_admin_unescape("app", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "app");
	assert_int_equal(moat_admin_unescape("%5B%3a%3A1%5d:80", 16, out, sizeof(out)), 8);
	assert_string_equal(out, "[::1]:80");
	assert_int_equal(moat_admin_unescape("a%2", 3, out, sizeof(out)), -1);
	assert_int_equal(moat_admin_unescape("a%zz", 4, out, sizeof(out)), -1);
	assert_int_equal(moat_admin_unescape("a%00", 4, out, sizeof(out)), -1);
	assert_int_equal(moat_admin_unescape("a%2Fb", 5, out, sizeof(out)), -1);
	assert_int_equal(moat_admin_unescape("0123456789abcdef", 16, out, sizeof(out)), -1);
	assert_int_equal(moat_admin_unescape("0123456789abcde", 15, out, sizeof(out)), 15);
	assert_int_equal(moat_admin_unescape("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void test_prom_escape(void **state)
{
	struct moat_text t;

	(void)state;
	moat_text_init(&t, 1024);
	moat_prom_escape(&t, "plain/path");
	assert_string_equal(t.p, "plain/path");
	moat_text_reset(&t);
	moat_prom_escape(&t, "a\\b\"c\nd");
	assert_string_equal(t.p, "a\\\\b\\\"c\\nd");
	moat_text_reset(&t);
	moat_prom_escape(&t, "");
	assert_int_equal(t.len, 0);
	moat_text_free(&t);
}

static void test_server_state(void **state)
{
	struct moat_conf_upstream up;
	struct moat_conf_server cs;
	struct moat_srv_state *s = calloc(1, sizeof(*s));

	(void)state;
	assert_non_null(s);
	memset(&up, 0, sizeof(up));
	memset(&cs, 0, sizeof(cs));
	atomic_init(&s->up, 1);
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "up");

	/* slow start: only with slow_start set and a time it came back */
	up.slow_start_ms = 500;
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "up");
	atomic_store(&s->back_since, 800);
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "slow_start");
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1300), "up");

	atomic_store(&s->ejected_until, 2000);
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "ejected");
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 2000), "up");

	atomic_store(&s->up, 0);
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "down");

	/* draining wins over everything, from the config or the API */
	atomic_store(&s->admin_drain, 1);
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "draining");
	atomic_store(&s->admin_drain, 0);
	cs.drain = 1;
	assert_string_equal(moat_admin_server_state(&up, &cs, s, 1000), "draining");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_allowed), cmocka_unit_test(test_token_eq),
		cmocka_unit_test(test_json_escape),  cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_text_max),     cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_iso8601),      cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_prom_escape),  cmocka_unit_test(test_server_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
