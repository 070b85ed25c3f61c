/*
 * conf_ops_test.c - unit tests of the keys that act on the process
 * (user, group, pid_file: src/conf/conf_schema.c), of duplicate server
 * addresses (an error: src/conf/conf_upstream.c), and of the warnings of
 * `moat -t` (src/conf/conf_lint.c): shadowed routes, unused upstreams, a
 * group without a user. Each message at its exact file:line:column.
 *
 * "root" and "nogroup"/"root" groups come from the test machine's user
 * database; every Linux system has user root and group root (gid 0).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#include "conf_test_util.h"

/* ---- user, group, pid_file ---- */

static void test_process_keys(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok("user: root\ngroup: root\npid_file: /run/moat/moat.pid\n" MINIMAL_TAIL);
	assert_string_equal(c->user, "root");
	assert_string_equal(c->group, "root");
	assert_string_equal(c->pid_file, "/run/moat/moat.pid");
	roundtrip(c);
	moat_conf_free(c);

	/* all optional: NULL when absent */
	c = load_ok(MINIMAL_TAIL);
	assert_null(c->user);
	assert_null(c->group);
	assert_null(c->pid_file);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_process_keys_errors(void **state)
{
	(void)state;
	expect_error("user: no-such-user-moat-test\n" MINIMAL_TAIL,
		     "t.yaml:1:7: user: unknown user \"no-such-user-moat-test\" (not in the user database)");
	expect_error("user: root\ngroup: no-such-group-moat-test\n" MINIMAL_TAIL,
		     "t.yaml:2:8: group: unknown group \"no-such-group-moat-test\" (not in the group database)");
	expect_error("user: [root]\n" MINIMAL_TAIL,
		     "t.yaml:1:7: user: expected a user name like \"www-data\", got a list");
	expect_error("pid_file: {}\n" MINIMAL_TAIL,
		     "t.yaml:1:11: pid_file: expected a file path like \"/run/moat/moat.pid\", got a mapping");
	expect_error("pid_file:\n" MINIMAL_TAIL,
		     "t.yaml:1:10: pid_file: expected a file path like \"/run/moat/moat.pid\", got an empty value");
}

static void test_process_keys_equal(void **state)
{
	struct moat_conf *a, *b;

	(void)state;
	a = load_ok("user: root\n" MINIMAL_TAIL);
	b = load_ok(MINIMAL_TAIL);
	assert_false(moat_conf_equal(a, b));
	moat_conf_free(b);
	b = load_ok("user: root\n" MINIMAL_TAIL);
	assert_true(moat_conf_equal(a, b));
	moat_conf_free(b);
	b = load_ok("user: root\npid_file: x.pid\n" MINIMAL_TAIL);
	assert_false(moat_conf_equal(a, b));
	moat_conf_free(b);
	moat_conf_free(a);
}

/* With lookups off (the fuzzer), names are taken as written. */
static void test_process_keys_no_resolve(void **state)
{
	struct moat_conf *c;

	(void)state;
	moat_conf_no_resolve = 1;
	c = load_ok("user: no-such-user-moat-test\ngroup: no-such-group-moat-test\n" MINIMAL_TAIL);
	moat_conf_no_resolve = 0;
	assert_string_equal(c->user, "no-such-user-moat-test");
	moat_conf_free(c);
}

/* ---- duplicate servers ---- */

static void test_duplicate_servers(void **state)
{
	(void)state;
	expect_error("listeners: [{listen: \":80\"}]\n"
		     "routes: [{upstream: app}]\n"
		     "upstreams:\n"
		     "  app:\n"
		     "    servers:\n"
		     "      - 127.0.0.1:3000\n"
		     "      - 127.0.0.1:3001\n"
		     "      - { address: \"http://127.0.0.1:3000/\", weight: 2 }\n",
		     "t.yaml:8:20: upstreams.app.servers[2]: duplicate server address \"127.0.0.1:3000\" "
		     "(servers[0] \"127.0.0.1:3000\" at line 6, column 9 has the same address); servers are "
		     "told apart by address: give one a higher weight instead");
	/* a name that resolves to the same address as a literal */
	expect_error("listeners: [{listen: \":80\"}]\n"
		     "routes: [{upstream: app}]\n"
		     "upstreams:\n"
		     "  app: { servers: [127.0.0.1:3000, \"localhost:3000\"] }\n",
		     "t.yaml:4:36: upstreams.app.servers[1]: duplicate server address \"localhost:3000\" "
		     "(servers[0] \"127.0.0.1:3000\" at line 4, column 20 has the same address); servers are "
		     "told apart by address: give one a higher weight instead");
	/* the same address in two upstreams is fine */
	moat_conf_free(load_ok("listeners: [{listen: \":80\"}]\n"
			       "routes: [{upstream: a, path: /a/}, {upstream: b}]\n"
			       "upstreams:\n"
			       "  a: { servers: [127.0.0.1:3000] }\n"
			       "  b: { servers: [127.0.0.1:3000, \"[::1]:3000\"] }\n"));
}

/* ---- moat -t warnings ---- */

/* Loads `yaml` (valid) and returns its warnings' text (caller frees). */
static char *lint(const char *yaml, int *count)
{
	struct moat_conf_errors w = { 0 };
	struct moat_conf *c = load_ok(yaml);
	char *text;

	*count = moat_conf_lint(c, &w);
	assert_int_equal((unsigned)*count, w.count);
	text = strdup(w.buf ? w.buf : "");
	moat_conf_errors_free(&w);
	moat_conf_free(c);
	return text;
}

static void expect_lint(const char *yaml, const char *expected)
{
	int n;
	char *got = lint(yaml, &n);

	if (strcmp(got, expected) != 0)
		fail_msg("warnings differ:\nexpected:\n%sgot:\n%s", expected, got);
	free(got);
}

static const char lint_yaml[] =
	"listeners: [{listen: \":80\"}]\n"                              /* 1 */
	"upstreams:\n"                                                  /* 2 */
	"  app: { servers: [127.0.0.1:3000] }\n"                        /* 3 */
	"  api: { servers: [127.0.0.1:3001] }\n"                        /* 4 */
	"  old: { servers: [127.0.0.1:3002] }\n"                        /* 5 */
	"routes:\n"                                                     /* 6 */
	"  - { host: \"*.example.com\", path: /api/, upstream: api }\n" /* 7 */
	"  - { host: a.example.com, path: /api/v1/, upstream: api }\n"  /* 8: shadowed by 7 */
	"  - { host: example.com, path: /api/, upstream: api }\n"       /* 9: not: the bare suffix */
	"  - { host: \"*.b.example.com\", path: /api/x, upstream: app }\n" /* 10: shadowed by 7 */
	"  - { path: /static/, upstream: app }\n"                       /* 11 */
	"  - { path: /static, upstream: app }\n"                        /* 12: not: broader */
	"  - { host: x.example.com, path: /static/img/, upstream: app }\n" /* 13: shadowed by 11 */
	"  - { path: /, upstream: app }\n"                              /* 14: catch-all */
	"  - { host: late.example.com, upstream: app }\n"               /* 15: shadowed by 14 */
	"  - { upstream: api }\n";                                      /* 16: shadowed by 14 */

static void test_lint(void **state)
{
	(void)state;
	expect_lint(lint_yaml,
		    "t.yaml:8:5: warning: routes[1] can never match: routes[0] (line 7, column 5; host "
		    "\"*.example.com\", path \"/api/\") comes first and takes every request it would\n"
		    "t.yaml:10:5: warning: routes[3] can never match: routes[0] (line 7, column 5; host "
		    "\"*.example.com\", path \"/api/\") comes first and takes every request it would\n"
		    "t.yaml:13:5: warning: routes[6] can never match: routes[4] (line 11, column 5; any host, "
		    "path \"/static/\") comes first and takes every request it would\n"
		    "t.yaml:15:5: warning: routes[8] can never match: routes[7] (line 14, column 5; any host, "
		    "any path) comes first and takes every request it would\n"
		    "t.yaml:16:5: warning: routes[9] can never match: routes[7] (line 14, column 5; any host, "
		    "any path) comes first and takes every request it would\n"
		    "t.yaml:5:3: warning: upstream \"old\" is not used by any route\n");
}

static void test_lint_catch_all_first(void **state)
{
	(void)state;
	expect_lint("listeners: [{listen: \":80\"}]\n"
		    "upstreams: { app: { servers: [127.0.0.1:3000] }, api: { servers: [127.0.0.1:3001] } }\n"
		    "routes:\n"
		    "  - upstream: app\n"
		    "  - path: /api/\n"
		    "    upstream: api\n",
		    "t.yaml:5:5: warning: routes[1] can never match: routes[0] (line 4, column 5; any host, "
		    "any path) comes first and takes every request it would\n");
}

static void test_lint_clean(void **state)
{
	int n;
	char *got;

	(void)state;
	/* specific before general: nothing to say */
	got = lint("listeners: [{listen: \":80\"}]\n"
		   "upstreams: { app: { servers: [127.0.0.1:3000] }, api: { servers: [127.0.0.1:3001] } }\n"
		   "routes:\n"
		   "  - { host: a.example.com, path: /api/v1/, upstream: api }\n"
		   "  - { host: \"*.example.com\", path: /api/, upstream: api }\n"
		   "  - { host: \"*.a.example.com\", upstream: app }\n"
		   "  - { host: \"[::1]\", upstream: app }\n"
		   "  - { host: \"*.example.com\", upstream: app }\n"
		   "  - { path: /api/, upstream: api }\n"
		   "  - { upstream: app }\n",
		   &n);
	assert_int_equal(n, 0);
	assert_string_equal(got, "");
	free(got);
}

static void test_lint_group_without_user(void **state)
{
	(void)state;
	expect_lint("group: root\n" MINIMAL_TAIL,
		    "t.yaml: warning: group \"root\" is ignored without user (privileges are dropped only when "
		    "user is set)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_process_keys),
		cmocka_unit_test(test_process_keys_errors),
		cmocka_unit_test(test_process_keys_equal),
		cmocka_unit_test(test_process_keys_no_resolve),
		cmocka_unit_test(test_duplicate_servers),
		cmocka_unit_test(test_lint),
		cmocka_unit_test(test_lint_catch_all_first),
		cmocka_unit_test(test_lint_clean),
		cmocka_unit_test(test_lint_group_without_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
