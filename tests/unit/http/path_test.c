/*
 * path_test.c - unit tests of moat_path_normalize (src/http/path.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/path.h"

static void expect_norm(const char *in, const char *want)
{
	char out[256];
	int n = moat_path_normalize(in, strlen(in), out);

	if (n < 0)
		fail_msg("%s: error %d, want %s", in, n, want);
	assert_int_equal((size_t)n, strlen(want));
	assert_string_equal(out, want);
}

static void expect_err(const char *in, int err)
{
	char out[256];

	assert_int_equal(moat_path_normalize(in, strlen(in), out), err);
}

static void test_plain(void **state)
{
	(void)state;
	expect_norm("/", "/");
	expect_norm("/a/b", "/a/b");
	expect_norm("/a/b/", "/a/b/");
	expect_norm("/a?x=../../y", "/a");
	expect_norm("/a#frag", "/a");
}

static void test_dot_segments(void **state)
{
	(void)state;
	expect_norm("/public/../admin", "/admin");
	expect_norm("/public/./../admin", "/admin");
	expect_norm("/a/./b/./c", "/a/b/c");
	expect_norm("/a/b/..", "/a/");
	expect_norm("/a/b/../", "/a/");
	expect_norm("/a/.", "/a/");
	expect_norm("/a/..", "/");
	expect_norm("/a/...", "/a/...");
	expect_norm("/a/..b/c", "/a/..b/c");
	expect_norm("/a/b.", "/a/b.");
}

static void test_escapes(void **state)
{
	(void)state;
	expect_norm("/public/%2e%2e/admin", "/admin");
	expect_norm("/public/%2E./admin", "/admin");
	expect_norm("/%7euser/%41", "/~user/A");
	expect_norm("/a%2fb", "/a%2Fb");     /* '/' is reserved: stays escaped */
	expect_norm("/a%20b", "/a%20b");
	expect_err("/a%2", MOAT_PATH_EBAD);
	expect_err("/a%zz", MOAT_PATH_EBAD);
	expect_err("/a%", MOAT_PATH_EBAD);
}

static void test_slashes(void **state)
{
	(void)state;
	expect_norm("//a///b", "/a/b");
	expect_norm("/a//../b", "/b");
}

static void test_escape_root(void **state)
{
	(void)state;
	expect_err("/..", MOAT_PATH_EESCAPE);
	expect_err("/../etc/passwd", MOAT_PATH_EESCAPE);
	expect_err("/a/../../b", MOAT_PATH_EESCAPE);
	expect_err("/%2e%2e/b", MOAT_PATH_EESCAPE);
	expect_err("a/b", MOAT_PATH_EBAD);
	expect_err("", MOAT_PATH_EBAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_dot_segments),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_slashes),
		cmocka_unit_test(test_escape_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
