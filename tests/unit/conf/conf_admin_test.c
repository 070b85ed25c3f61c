/*
 * conf_admin_test.c - unit tests of src/conf/conf_admin.c: the "admin"
 * section (listen over TCP or a unix socket, token, allow), each error at
 * its exact file:line:column, the refusal of a traffic listener's address,
 * --admin of the one-line mode, the print round trip and moat_conf_equal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#include "conf_test_util.h"

static void test_admin_off_by_default(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL);

	(void)state;
	assert_int_equal(c->admin.enabled, 0);
	assert_null(c->admin.addr.text);
	assert_null(c->admin.unix_path);
	assert_null(c->admin.token);
	assert_int_equal(c->admin.nallow, 0);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_admin_tcp(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL
				      "admin:\n"
				      "  listen: 127.0.0.1:9901\n"
				      "  token: s3cret-Token_1/+=\n"
				      "  allow: [10.0.0.0/8, \"2001:db8::/32\", 192.168.1.7]\n");
	const struct sockaddr_in *sin;

	(void)state;
	assert_int_equal(c->admin.enabled, 1);
	assert_string_equal(c->admin.addr.text, "127.0.0.1:9901");
	assert_null(c->admin.unix_path);
	sin = (const struct sockaddr_in *)(const void *)&c->admin.addr.ss;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9901);
	assert_int_equal(c->admin.addr.pos.line, 9);
	assert_int_equal(c->admin.addr.pos.col, 11);
	assert_string_equal(c->admin.token, "s3cret-Token_1/+=");
	assert_int_equal(c->admin.nallow, 3);
	assert_int_equal(c->admin.allow[0].family, AF_INET);
	assert_int_equal(c->admin.allow[0].prefix, 8);
	assert_int_equal(c->admin.allow[1].family, AF_INET6);
	assert_int_equal(c->admin.allow[1].prefix, 32);
	assert_int_equal(c->admin.allow[2].prefix, 32);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_admin_unix_and_v6(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL "admin: { listen: \"unix:/run/moat/admin.sock\" }\n");

	(void)state;
	assert_int_equal(c->admin.enabled, 1);
	assert_string_equal(c->admin.unix_path, "/run/moat/admin.sock");
	assert_string_equal(c->admin.addr.text, "unix:/run/moat/admin.sock");
	assert_null(c->admin.token);
	roundtrip(c);
	moat_conf_free(c);

	c = load_ok(MINIMAL_TAIL "admin: { listen: \"[::1]:9901\", allow: [] }\n");
	assert_int_equal(c->admin.addr.ss.ss_family, AF_INET6);
	assert_null(c->admin.unix_path);
	assert_int_equal(c->admin.nallow, 0);
	roundtrip(c);
	moat_conf_free(c);

	/* the same port as a listener on another address is fine */
	c = load_ok(MINIMAL_TAIL "admin: { listen: \"127.0.0.2:8080\" }\n");
	moat_conf_free(c);
}

static void test_admin_print_text(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL "admin: { listen: 127.0.0.1:9901, token: abc, allow: [10.1.2.3/8] }\n");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "admin:\n  listen: \"127.0.0.1:9901\"\n  token: \"abc\"\n  allow: [\"10.0.0.0/8\"]\n"));
	free(text);
	moat_conf_free(c);
}

static void test_admin_errors(void **state)
{
	(void)state;
	expect_error(MINIMAL_TAIL "admin: {}\n", "t.yaml:8:8: admin: missing required key \"listen\"");
	expect_error(MINIMAL_TAIL "admin:\n",
		     "t.yaml:8:7: admin: expected a mapping like \"listen: 127.0.0.1:9901\", got an empty value");
	expect_error(MINIMAL_TAIL "admin:\n  listen: localhost:9901\n",
		     "t.yaml:9:11: admin.listen: listen addresses must be numeric, not a host name (\"localhost\")");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1\n",
		     "t.yaml:9:11: admin.listen: expected an address like \"127.0.0.1:9901\", \"[::1]:9901\" or "
		     "\"unix:/run/moat/admin.sock\", got \"127.0.0.1\" (missing port)");
	expect_error(MINIMAL_TAIL "admin:\n  listen: \"unix:\"\n",
		     "t.yaml:9:11: admin.listen: expected an address like \"127.0.0.1:9901\", \"[::1]:9901\" or "
		     "\"unix:/run/moat/admin.sock\", got \"unix:\" (a unix socket needs a path after \"unix:\")");
	expect_error(MINIMAL_TAIL "admin:\n  listen: \"unix:/run/moat/\"\n",
		     "t.yaml:9:11: admin.listen: a unix socket path names a file, not a directory");
	expect_error_prefix(MINIMAL_TAIL "admin:\n  listen: \"unix:/"
					 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
					 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
			    "t.yaml:9:11: admin.listen: a unix socket path has at most 107 bytes, got 133");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:9901\n  token: \"two words\"\n",
		     "t.yaml:10:10: admin.token: expected a token of 1 to 1024 visible ASCII characters (no spaces), "
		     "as sent in \"Authorization: Bearer TOKEN\"");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:9901\n  token: \"\"\n",
		     "t.yaml:10:10: admin.token: expected a token of 1 to 1024 visible ASCII characters (no spaces), "
		     "as sent in \"Authorization: Bearer TOKEN\"");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:9901\n  allow: [10.0.0.0/8, nope]\n",
		     "t.yaml:10:23: admin.allow[1]: expected an IP address or CIDR block like \"10.0.0.0/8\" or "
		     "\"::1/128\", got \"nope\"");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:9901\n  allow: 10.0.0.0/8\n",
		     "t.yaml:10:10: admin.allow: expected a list of CIDR blocks, got \"10.0.0.0/8\"");
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:9901\n  tokn: x\n",
		     "t.yaml:10:3: unknown key \"tokn\" in admin; expected one of: listen, token, allow");
}

static void test_admin_takes_a_listener(void **state)
{
	(void)state;
	expect_error(MINIMAL_TAIL "admin:\n  listen: 127.0.0.1:8080\n",
		     "t.yaml:9:11: admin.listen: \"127.0.0.1:8080\" takes the address of listeners[0] "
		     "(\"127.0.0.1:8080\" at line 2, column 13); the admin listener needs an address of its own");
	/* a wildcard on either side takes the port on every address */
	expect_error(MINIMAL_TAIL "admin:\n  listen: \":8080\"\n",
		     "t.yaml:9:11: admin.listen: \":8080\" takes the address of listeners[0] "
		     "(\"127.0.0.1:8080\" at line 2, column 13); the admin listener needs an address of its own");
	expect_error("listeners:\n"
		     "  - listen: 127.0.0.1:80\n"
		     "  - listen: \"*:9901\"\n"
		     "upstreams: { app: { servers: [127.0.0.1:3000] } }\n"
		     "routes: [{upstream: app}]\n"
		     "admin: { listen: 127.0.0.1:9901 }\n",
		     "t.yaml:6:18: admin.listen: \"127.0.0.1:9901\" takes the address of listeners[1] "
		     "(\"*:9901\" at line 3, column 13); the admin listener needs an address of its own");
}

static void test_admin_equal(void **state)
{
	struct moat_conf *a = load_ok(MINIMAL_TAIL "admin: { listen: 127.0.0.1:9901, token: x }\n");
	struct moat_conf *b = load_ok(MINIMAL_TAIL "admin:\n  token: x\n  listen: 127.0.0.1:9901\n");
	struct moat_conf *c = load_ok(MINIMAL_TAIL "admin: { listen: 127.0.0.1:9901, token: y }\n");
	struct moat_conf *d = load_ok(MINIMAL_TAIL "admin: { listen: 127.0.0.1:9901, token: x, allow: [\"::1\"] }\n");
	struct moat_conf *e = load_ok(MINIMAL_TAIL);
	struct moat_conf *f = load_ok(MINIMAL_TAIL "admin: { listen: \"unix:/tmp/a.sock\", token: x }\n");

	(void)state;
	assert_true(moat_conf_equal(a, b));
	assert_false(moat_conf_equal(a, c));
	assert_false(moat_conf_equal(a, d));
	assert_false(moat_conf_equal(a, e));
	assert_false(moat_conf_equal(e, a));
	assert_false(moat_conf_equal(a, f));
	moat_conf_free(a);
	moat_conf_free(b);
	moat_conf_free(c);
	moat_conf_free(d);
	moat_conf_free(e);
	moat_conf_free(f);
}

static void test_admin_one_line(void **state)
{
	const char *to[] = { "http://127.0.0.1:3000" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c = moat_conf_from_proxy_args("127.0.0.1:8080", to, 1, 1, &err);

	(void)state;
	assert_non_null(c);
	assert_int_equal(moat_conf_set_admin(c, "127.0.0.1:9901", &err), 0);
	assert_int_equal(c->admin.enabled, 1);
	assert_string_equal(c->admin.addr.text, "127.0.0.1:9901");
	assert_int_equal(moat_conf_set_admin(c, "unix:/tmp/moat-admin.sock", &err), 0);
	assert_string_equal(c->admin.unix_path, "/tmp/moat-admin.sock");
	assert_null(err.buf);

	assert_int_equal(moat_conf_set_admin(c, "127.0.0.1:8080", &err), -1);
	assert_has_line(&err, "--admin: \"127.0.0.1:8080\" is also the address of --from; the admin listener "
			      "needs one of its own");
	moat_conf_errors_free(&err);
	assert_int_equal(moat_conf_set_admin(c, "nope", &err), -1);
	assert_has_line(&err, "--admin: expected an address like \"127.0.0.1:9901\", \"[::1]:9901\" or "
			      "\"unix:/run/moat/admin.sock\", got \"nope\" (missing port)");
	moat_conf_errors_free(&err);
	moat_conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_off_by_default),
		cmocka_unit_test(test_admin_tcp),
		cmocka_unit_test(test_admin_unix_and_v6),
		cmocka_unit_test(test_admin_print_text),
		cmocka_unit_test(test_admin_errors),
		cmocka_unit_test(test_admin_takes_a_listener),
		cmocka_unit_test(test_admin_equal),
		cmocka_unit_test(test_admin_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
