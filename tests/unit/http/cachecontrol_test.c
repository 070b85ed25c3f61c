/*
 * cachecontrol_test.c - unit tests of src/http/cachecontrol.c.
 *
 * Every directive in both argument forms, case, OWS and empty elements,
 * several field lines, duplicates (first value wins, unqualified wins),
 * bad arguments (restrictive ones kept or read as 0, permissive ones
 * dropped), malformed elements and what survives them, delta-seconds
 * saturation; HTTP-dates in the three formats, their edge cases and
 * invalid forms, formatting round trips; Age values.
 *
 * Each input is parsed from an exactly sized heap copy so that ASan sees
 * any read past its end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/cachecontrol.h"

static char *copy;

/* Parses one line (heap copy, kept until the next call) into cc. */
static int parse(struct moat_cc *cc, const char *s)
{
	size_t n = strlen(s);

	free(copy);
	copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	return moat_cc_parse(copy, n, cc);
}

static struct moat_cc cc1(const char *s, int want_rc)
{
	struct moat_cc cc;

	moat_cc_init(&cc);
	assert_int_equal(parse(&cc, s), want_rc);
	return cc;
}

static int teardown(void **state)
{
	(void)state;
	free(copy);
	copy = NULL;
	return 0;
}

static void test_empty(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("", 0);
	assert_int_equal(cc.flags, 0);
	cc = cc1("  ,, , ", 0);
	assert_int_equal(cc.flags, 0);
	assert_int_equal(cc.invalid, 0);
	moat_cc_init(&cc);
	assert_int_equal(moat_cc_parse(NULL, 0, &cc), 0);
	assert_int_equal(cc.flags, 0);
}

static void test_flags(void **state)
{
	static const struct {
		const char *s;
		unsigned bit;
	} t[] = {
		{ "no-cache", MOAT_CC_NO_CACHE },
		{ "no-store", MOAT_CC_NO_STORE },
		{ "no-transform", MOAT_CC_NO_TRANSFORM },
		{ "only-if-cached", MOAT_CC_ONLY_IF_CACHED },
		{ "must-revalidate", MOAT_CC_MUST_REVALIDATE },
		{ "proxy-revalidate", MOAT_CC_PROXY_REVALIDATE },
		{ "must-understand", MOAT_CC_MUST_UNDERSTAND },
		{ "private", MOAT_CC_PRIVATE },
		{ "public", MOAT_CC_PUBLIC },
		{ "immutable", MOAT_CC_IMMUTABLE },
		{ "max-stale", MOAT_CC_MAX_STALE },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct moat_cc cc = cc1(t[i].s, 0);

		assert_int_equal(cc.flags, t[i].bit);
		assert_int_equal(cc.invalid, 0);
		assert_int_equal(cc.dup, 0);
	}
}

static void test_values(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("max-age=60, s-maxage=120, max-stale=5, min-fresh=7, stale-while-revalidate=30, "
		 "stale-if-error=600",
		 0);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE | MOAT_CC_S_MAXAGE | MOAT_CC_MAX_STALE | MOAT_CC_MIN_FRESH |
					   MOAT_CC_SWR | MOAT_CC_SIE);
	assert_int_equal(cc.max_age, 60);
	assert_int_equal(cc.s_maxage, 120);
	assert_int_equal(cc.max_stale, 5);
	assert_int_equal(cc.max_stale_any, 0);
	assert_int_equal(cc.min_fresh, 7);
	assert_int_equal(cc.swr, 30);
	assert_int_equal(cc.sie, 600);
	assert_int_equal(cc.invalid, 0);

	/* quoted forms are accepted too (§5.2) */
	cc = cc1("max-age=\"60\", s-maxage=\"0\", min-fresh=\"3\"", 0);
	assert_int_equal(cc.max_age, 60);
	assert_int_equal(cc.s_maxage, 0);
	assert_int_equal(cc.min_fresh, 3);
	assert_int_equal(cc.invalid, 0);

	/* leading zeros, zero */
	cc = cc1("max-age=000042", 0);
	assert_int_equal(cc.max_age, 42);
	cc = cc1("max-age=0", 0);
	assert_true(cc.flags & MOAT_CC_MAX_AGE);
	assert_int_equal(cc.max_age, 0);

	/* max-stale with no value: any staleness */
	cc = cc1("max-stale", 0);
	assert_int_equal(cc.max_stale_any, 1);
	assert_int_equal(cc.max_stale, MOAT_CC_DELTA_MAX);
}

static void test_case_and_ows(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("  Max-Age=10 ,\tNO-STORE\t,PUBLIC  ", 0);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE | MOAT_CC_NO_STORE | MOAT_CC_PUBLIC);
	assert_int_equal(cc.max_age, 10);
	cc = cc1("S-MAXAGE=5", 0);
	assert_int_equal(cc.s_maxage, 5);
}

static void test_saturation(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("max-age=2147483647", 0);
	assert_int_equal(cc.max_age, 2147483647u);
	cc = cc1("max-age=2147483648", 0);
	assert_int_equal(cc.max_age, MOAT_CC_DELTA_MAX);
	cc = cc1("max-age=2147483649", 0);
	assert_int_equal(cc.max_age, MOAT_CC_DELTA_MAX);
	cc = cc1("s-maxage=99999999999999999999999999999999999999", 0);
	assert_int_equal(cc.s_maxage, MOAT_CC_DELTA_MAX);
	assert_int_equal(cc.invalid, 0);
	cc = cc1("max-stale=18446744073709551616", 0);
	assert_int_equal(cc.max_stale, MOAT_CC_DELTA_MAX);
	assert_int_equal(cc.max_stale_any, 0);
}

static void test_field_lists(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("no-cache=\"Set-Cookie, X-Foo\"", 0);
	assert_int_equal(cc.flags, MOAT_CC_NO_CACHE);
	assert_non_null(cc.no_cache_fields);
	assert_int_equal(cc.no_cache_fields_len, 17);
	assert_memory_equal(cc.no_cache_fields, "Set-Cookie, X-Foo", 17);
	assert_ptr_equal(cc.no_cache_fields, copy + 10);

	cc = cc1("private=\"Authorization\", max-age=5", 0);
	assert_int_equal(cc.flags, MOAT_CC_PRIVATE | MOAT_CC_MAX_AGE);
	assert_int_equal(cc.private_fields_len, 13);
	assert_memory_equal(cc.private_fields, "Authorization", 13);

	/* token form */
	cc = cc1("no-cache=Set-Cookie", 0);
	assert_int_equal(cc.no_cache_fields_len, 10);
	assert_memory_equal(cc.no_cache_fields, "Set-Cookie", 10);

	/* unqualified: NULL list */
	cc = cc1("no-cache, private", 0);
	assert_null(cc.no_cache_fields);
	assert_null(cc.private_fields);

	/* escapes are kept as written; a comma inside quotes does not split */
	cc = cc1("no-cache=\"a\\\"b, c\", no-store", 0);
	assert_int_equal(cc.flags, MOAT_CC_NO_CACHE | MOAT_CC_NO_STORE);
	assert_int_equal(cc.no_cache_fields_len, 7);
	assert_memory_equal(cc.no_cache_fields, "a\\\"b, c", 7);

	/* an empty list reads as unqualified */
	cc = cc1("no-cache=\"\"", 0);
	assert_true(cc.flags & MOAT_CC_NO_CACHE);
	assert_null(cc.no_cache_fields);
	assert_true(cc.invalid & MOAT_CC_NO_CACHE);
}

static void test_duplicates(void **state)
{
	struct moat_cc cc;

	(void)state;
	/* first value wins */
	cc = cc1("max-age=60, max-age=0", 0);
	assert_int_equal(cc.max_age, 60);
	assert_int_equal(cc.dup, MOAT_CC_MAX_AGE);
	cc = cc1("s-maxage=1, s-maxage=2, stale-if-error=3, stale-if-error=4", 0);
	assert_int_equal(cc.s_maxage, 1);
	assert_int_equal(cc.sie, 3);
	assert_int_equal(cc.dup, MOAT_CC_S_MAXAGE | MOAT_CC_SIE);
	cc = cc1("max-stale=10, max-stale", 0);
	assert_int_equal(cc.max_stale, 10);
	assert_int_equal(cc.max_stale_any, 0);

	/* an invalid max-age reads as 0 and counts as the first occurrence */
	cc = cc1("max-age=abc, max-age=60", 0);
	assert_int_equal(cc.max_age, 0);
	assert_true(cc.invalid & MOAT_CC_MAX_AGE);

	/* an ignored (invalid) permissive value does not count */
	cc = cc1("stale-while-revalidate=x, stale-while-revalidate=9", 0);
	assert_int_equal(cc.swr, 9);
	assert_int_equal(cc.dup, 0);

	/* an unqualified no-cache / private wins over a qualified one, either order */
	cc = cc1("no-cache=\"a\", no-cache", 0);
	assert_null(cc.no_cache_fields);
	cc = cc1("private, private=\"a\"", 0);
	assert_null(cc.private_fields);
	/* two qualified: the first list */
	cc = cc1("no-cache=\"a\", no-cache=\"b\"", 0);
	assert_int_equal(cc.no_cache_fields_len, 1);
	assert_memory_equal(cc.no_cache_fields, "a", 1);

	/* flags twice */
	cc = cc1("no-store, no-store", 0);
	assert_int_equal(cc.flags, MOAT_CC_NO_STORE);
	assert_int_equal(cc.dup, MOAT_CC_NO_STORE);
}

static void test_lines_accumulate(void **state)
{
	struct moat_cc cc;
	char *a, *b;

	(void)state;
	moat_cc_init(&cc);
	a = strdup("max-age=10, no-cache=\"x\"");
	b = strdup("max-age=20, must-revalidate, no-cache");
	assert_int_equal(moat_cc_parse(a, strlen(a), &cc), 0);
	assert_int_equal(moat_cc_parse(b, strlen(b), &cc), 0);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE | MOAT_CC_NO_CACHE | MOAT_CC_MUST_REVALIDATE);
	assert_int_equal(cc.max_age, 10);
	assert_null(cc.no_cache_fields);
	assert_int_equal(cc.dup, MOAT_CC_MAX_AGE | MOAT_CC_NO_CACHE);
	free(a);
	free(b);
}

static void test_bad_arguments(void **state)
{
	struct moat_cc cc;

	(void)state;
	/* max-age / s-maxage: 0 */
	cc = cc1("max-age", 0);
	assert_true(cc.flags & MOAT_CC_MAX_AGE);
	assert_int_equal(cc.max_age, 0);
	assert_int_equal(cc.invalid, MOAT_CC_MAX_AGE);
	cc = cc1("max-age=-1", 0);
	assert_true(cc.flags & MOAT_CC_MAX_AGE);
	assert_int_equal(cc.max_age, 0);
	cc = cc1("max-age=1.5", 0);
	assert_int_equal(cc.max_age, 0);
	assert_int_equal(cc.invalid, MOAT_CC_MAX_AGE);
	cc = cc1("s-maxage=\"\"", 0);
	assert_true(cc.flags & MOAT_CC_S_MAXAGE);
	assert_int_equal(cc.s_maxage, 0);
	cc = cc1("max-age=\" 5\"", 0);
	assert_int_equal(cc.max_age, 0);
	cc = cc1("max-age=+5", 0);
	assert_int_equal(cc.max_age, 0);

	/* restrictive flags: kept even with an argument */
	cc = cc1("no-store=1, must-revalidate=\"x\", proxy-revalidate=y, no-transform=1, only-if-cached=1", 0);
	assert_int_equal(cc.flags, MOAT_CC_NO_STORE | MOAT_CC_MUST_REVALIDATE | MOAT_CC_PROXY_REVALIDATE |
					   MOAT_CC_NO_TRANSFORM | MOAT_CC_ONLY_IF_CACHED);
	assert_int_equal(cc.invalid, cc.flags);

	/* permissive ones: dropped */
	cc = cc1("public=yes, immutable=1, must-understand=\"x\"", 0);
	assert_int_equal(cc.flags, 0);
	assert_int_equal(cc.invalid, MOAT_CC_PUBLIC | MOAT_CC_IMMUTABLE | MOAT_CC_MUST_UNDERSTAND);
	cc = cc1("max-stale=abc, min-fresh, min-fresh=x, stale-while-revalidate, stale-if-error=-1", 0);
	assert_int_equal(cc.flags, 0);
	assert_int_equal(cc.invalid, MOAT_CC_MAX_STALE | MOAT_CC_MIN_FRESH | MOAT_CC_SWR | MOAT_CC_SIE);
}

static void test_unknown(void **state)
{
	struct moat_cc cc;

	(void)state;
	cc = cc1("community=\"UCI\", private, x-foo, x-bar=1, max-ages=5, max-age5", 0);
	assert_int_equal(cc.flags, MOAT_CC_PRIVATE);
	assert_int_equal(cc.invalid, 0);
}

static void test_malformed(void **state)
{
	struct moat_cc cc;

	(void)state;
	/* junk after a value: max-age read as 0, the rest still read */
	cc = cc1("max-age=5 x, public", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE | MOAT_CC_PUBLIC);
	assert_int_equal(cc.max_age, 0);
	/* BWS around '=' is not in the grammar */
	cc = cc1("max-age = 60", MOAT_CC_EBAD);
	assert_int_equal(cc.max_age, 0);
	assert_true(cc.flags & MOAT_CC_MAX_AGE);
	/* permissive directives in a malformed element are dropped */
	cc = cc1("public x, s-maxage=9", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_S_MAXAGE);
	/* restrictive ones are kept */
	cc = cc1("no-store;x, max-age=9", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_NO_STORE | MOAT_CC_MAX_AGE);
	assert_int_equal(cc.max_age, 9);
	/* a no-cache with a broken list: unqualified */
	cc = cc1("no-cache=\"a, b", MOAT_CC_EBAD);
	assert_true(cc.flags & MOAT_CC_NO_CACHE);
	assert_null(cc.no_cache_fields);
	/* no name */
	cc = cc1("=5, \"quoted\", max-age=3", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE);
	assert_int_equal(cc.max_age, 3);
	/* a comma inside a quoted string of a malformed element does not end it */
	cc = cc1("x=\"a\"b\"c, no-store\", max-age=4", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE);
	/* an unterminated quote swallows the rest */
	cc = cc1("x=\"abc, no-store", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, 0);
	/* a backslash at the very end of a quoted string */
	cc = cc1("x=\"abc\\", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, 0);
	/* control bytes in a quoted string */
	cc = cc1("no-cache=\"a\001b\", public", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_NO_CACHE | MOAT_CC_PUBLIC);
	assert_null(cc.no_cache_fields);
	/* "max-age=" (empty token) */
	cc = cc1("max-age=, public", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_MAX_AGE | MOAT_CC_PUBLIC);
	assert_int_equal(cc.max_age, 0);
	/* NUL and 8-bit bytes in names */
	{
		struct moat_cc c2;
		static const char nul[] = "no-st\0re, public";

		moat_cc_init(&c2);
		free(copy);
		copy = malloc(sizeof nul - 1);
		memcpy(copy, nul, sizeof nul - 1);
		assert_int_equal(moat_cc_parse(copy, sizeof nul - 1, &c2), MOAT_CC_EBAD);
		assert_int_equal(c2.flags, MOAT_CC_PUBLIC);
	}
	cc = cc1("pub\xc3\xa9lic, no-store", MOAT_CC_EBAD);
	assert_int_equal(cc.flags, MOAT_CC_NO_STORE);
}

/* ---- dates ---- */

static int date(const char *s, int64_t *t)
{
	size_t n = strlen(s);
	int rc;

	free(copy);
	copy = malloc(n ? n : 1);
	memcpy(copy, s, n);
	rc = moat_http_date_parse(copy, n, t);
	return rc;
}

static void expect_date(const char *s, int64_t want)
{
	int64_t t = -12345;

	assert_int_equal(date(s, &t), 0);
	assert_int_equal(t, want);
}

static void expect_bad_date(const char *s)
{
	int64_t t = -12345;

	assert_int_equal(date(s, &t), -1);
	assert_int_equal(t, -12345);
}

static void test_dates(void **state)
{
	(void)state;
	/* RFC 9110 §5.6.7's examples: 784111777 */
	expect_date("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
	expect_date("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
	expect_date("Sun Nov  6 08:49:37 1994", 784111777);
	expect_date("Sun Nov 06 08:49:37 1994", 784111777);
	/* case-insensitive names (RFC 9111 §4.2), OWS around */
	expect_date("sun, 06 nov 1994 08:49:37 gmt", 784111777);
	expect_date("SUNDAY, 06-NOV-94 08:49:37 GMT", 784111777);
	expect_date("  Sun, 06 Nov 1994 08:49:37 GMT\t", 784111777);
	/* the weekday is not checked against the date */
	expect_date("Mon, 06 Nov 1994 08:49:37 GMT", 784111777);
	/* epoch, before it, far ahead */
	expect_date("Thu, 01 Jan 1970 00:00:00 GMT", 0);
	expect_date("Wed, 31 Dec 1969 23:59:59 GMT", -1);
	expect_date("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL);
	expect_date("Sat, 01 Jan 0000 00:00:00 GMT", -62167219200LL);
	/* leap years */
	expect_date("Tue, 29 Feb 2000 12:00:00 GMT", 951825600);
	expect_date("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800);
	expect_bad_date("Thu, 29 Feb 2100 00:00:00 GMT");
	expect_bad_date("Wed, 29 Feb 2023 00:00:00 GMT");
	expect_bad_date("Wed, 31 Apr 2023 00:00:00 GMT");
	expect_bad_date("Wed, 00 Apr 2023 00:00:00 GMT");
	/* leap second: read as the next minute */
	expect_date("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800);
	expect_bad_date("Sat, 31 Dec 2016 23:59:61 GMT");
	expect_bad_date("Sat, 31 Dec 2016 24:00:00 GMT");
	expect_bad_date("Sat, 31 Dec 2016 23:60:00 GMT");
	/* rfc850 two-digit years: 70..99 -> 19xx, 00..69 -> 20xx */
	expect_date("Thursday, 01-Jan-70 00:00:00 GMT", 0);
	expect_date("Friday, 31-Dec-99 23:59:59 GMT", 946684799);
	expect_date("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
	expect_date("Monday, 01-Jan-69 00:00:00 GMT", 3124224000LL);
	/* asctime single-digit day needs its space */
	expect_bad_date("Sun Nov 6 08:49:37 1994");
	expect_bad_date("Sun Nov  6 08:49:37 94");
	/* other zones, missing zone, extra bytes */
	expect_bad_date("Sun, 06 Nov 1994 08:49:37 UTC");
	expect_bad_date("Sun, 06 Nov 1994 08:49:37 +0000");
	expect_bad_date("Sun, 06 Nov 1994 08:49:37");
	expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMTX");
	expect_bad_date("Sunday, 06-Nov-1994 08:49:37 GMT");
	expect_bad_date("Sun Nov  6 08:49:37 1994 GMT");
	/* wrong separators / widths */
	expect_bad_date("Sun, 6 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun 06 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun,  06 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun, 06-Nov-1994 08:49:37 GMT");
	expect_bad_date("Sun, 06 Nov 1994 08-49-37 GMT");
	expect_bad_date("Sun, 06 Nov 1994 8:49:37 GMT ");
	expect_bad_date("Sun, 06 Nov 19a4 08:49:37 GMT");
	expect_bad_date("Sun, 06 Xyz 1994 08:49:37 GMT");
	expect_bad_date("Xyz, 06 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sunday, 06 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun, 06-Nov-94 08:49:37 GMT");
	expect_bad_date("Sund, 06-Nov-94 08:49:37 GMT");
	/* Expires: 0 and other garbage */
	expect_bad_date("0");
	expect_bad_date("-1");
	expect_bad_date("");
	expect_bad_date("   ");
	expect_bad_date("Sun");
	expect_bad_date("Sun,");
	expect_bad_date("1994-11-06T08:49:37Z");
}

static void test_date_format(void **state)
{
	char out[30];
	static const int64_t ts[] = { 0, -1, 784111777, 951825600, 1709164800, 253402300799LL, -62167219200LL,
				      1483228799, 86399, 4102444800LL };
	size_t i;

	(void)state;
	assert_int_equal(moat_http_date_format(784111777, out), 29);
	assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(moat_http_date_format(0, out), 29);
	assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	assert_int_equal(moat_http_date_format(-1, out), 29);
	assert_string_equal(out, "Wed, 31 Dec 1969 23:59:59 GMT");
	assert_int_equal(moat_http_date_format(1709164800, out), 29);
	assert_string_equal(out, "Thu, 29 Feb 2024 00:00:00 GMT");
	assert_int_equal(moat_http_date_format(253402300799LL, out), 29);
	assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
	assert_int_equal(moat_http_date_format(253402300800LL, out), 0);
	assert_string_equal(out, "");
	assert_int_equal(moat_http_date_format(-62167219201LL, out), 0);
	assert_int_equal(moat_http_date_format(INT64_MIN, out), 0);
	assert_int_equal(moat_http_date_format(INT64_MAX, out), 0);
	/* round trips */
	for (i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		int64_t back = 0;

		assert_int_equal(moat_http_date_format(ts[i], out), 29);
		assert_int_equal(moat_http_date_parse(out, 29, &back), 0);
		assert_int_equal(back, ts[i]);
	}
	/* every day of 2023-2024 round-trips, weekday included */
	for (i = 0; i < 731; i++) {
		int64_t t = 1672531200LL + (int64_t)i * 86400 + 3661, back = 0;
		static const char wd[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

		assert_int_equal(moat_http_date_format(t, out), 29);
		assert_memory_equal(out, wd[(i + 0) % 7], 3); /* 2023-01-01 was a Sunday */
		assert_int_equal(moat_http_date_parse(out, 29, &back), 0);
		assert_int_equal(back, t);
	}
}

static void test_age(void **state)
{
	uint32_t a = 7;

	(void)state;
	assert_int_equal(moat_http_age_parse("0", 1, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(moat_http_age_parse(" 120 ", 5, &a), 0);
	assert_int_equal(a, 120);
	assert_int_equal(moat_http_age_parse("60, 70", 6, &a), 0);
	assert_int_equal(a, 60);
	assert_int_equal(moat_http_age_parse(", 5", 3, &a), 0);
	assert_int_equal(a, 5);
	assert_int_equal(moat_http_age_parse("99999999999", 11, &a), 0);
	assert_int_equal(a, MOAT_CC_DELTA_MAX);
	a = 7;
	assert_int_equal(moat_http_age_parse("", 0, &a), -1);
	assert_int_equal(moat_http_age_parse("-1", 2, &a), -1);
	assert_int_equal(moat_http_age_parse("1.0", 3, &a), -1);
	assert_int_equal(moat_http_age_parse("abc, 5", 6, &a), -1);
	assert_int_equal(moat_http_age_parse("\"5\"", 3, &a), -1);
	assert_int_equal(a, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_empty, teardown),
		cmocka_unit_test_teardown(test_flags, teardown),
		cmocka_unit_test_teardown(test_values, teardown),
		cmocka_unit_test_teardown(test_case_and_ows, teardown),
		cmocka_unit_test_teardown(test_saturation, teardown),
		cmocka_unit_test_teardown(test_field_lists, teardown),
		cmocka_unit_test_teardown(test_duplicates, teardown),
		cmocka_unit_test_teardown(test_lines_accumulate, teardown),
		cmocka_unit_test_teardown(test_bad_arguments, teardown),
		cmocka_unit_test_teardown(test_unknown, teardown),
		cmocka_unit_test_teardown(test_malformed, teardown),
		cmocka_unit_test_teardown(test_dates, teardown),
		cmocka_unit_test_teardown(test_date_format, teardown),
		cmocka_unit_test_teardown(test_age, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
