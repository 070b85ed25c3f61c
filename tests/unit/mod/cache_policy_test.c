/*
 * cache_policy_test.c - unit tests of src/mod/cache/policy.c.
 *
 * Storability rule by rule, freshness lifetime (s-maxage, max-age,
 * Expires, heuristics and their cap), the RFC 9111 §4.2.3 age algorithm on
 * a worked example, the usable() matrix (fresh, stale, every directive
 * that allows or forbids stale answers, request directives and their
 * switches, backend failure), Vary keys, If-None-Match / If-Modified-
 * Since, Range / If-Range, invalidation and Cache-Status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mod/cache/policy.h"

#define T0 1000000 /* Date of the test responses */

static struct moat_cache_cfg cfg;

static struct moat_cc ccof(const char *s)
{
	struct moat_cc cc;

	moat_cc_init(&cc);
	(void)moat_cc_parse(s, strlen(s), &cc);
	return cc;
}

static struct moat_cache_req req_get(const char *cc)
{
	struct moat_cache_req r;

	memset(&r, 0, sizeof r);
	r.method = "GET";
	r.method_len = 3;
	r.cc = ccof(cc);
	return r;
}

/* A 200 with `cc`, Date T0, received at T0 for a request sent at T0. */
static struct moat_cache_resp resp200(const char *cc)
{
	struct moat_cache_resp r;

	memset(&r, 0, sizeof r);
	r.status = 200;
	r.cc = ccof(cc);
	r.date = T0;
	r.expires = MOAT_CACHE_TIME_NONE;
	r.last_modified = MOAT_CACHE_TIME_NONE;
	r.age = -1;
	r.request_time = T0;
	r.response_time = T0;
	return r;
}

static int setup(void **state)
{
	(void)state;
	moat_cache_cfg_default(&cfg);
	return 0;
}

/* ---- storable ---- */

static void expect_store(const struct moat_cache_req *q, const struct moat_cache_resp *r, enum moat_cache_storable want)
{
	assert_int_equal(moat_cache_storable(&cfg, q, r), want);
}

static void test_store_method(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r = resp200("max-age=60");

	(void)state;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	q.method = "HEAD";
	q.method_len = 4;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	q.method = "POST";
	expect_store(&q, &r, MOAT_CACHE_STORE_METHOD);
	q.method = "get";
	q.method_len = 3;
	expect_store(&q, &r, MOAT_CACHE_STORE_METHOD);
	q.method = NULL;
	q.method_len = 0;
	expect_store(&q, &r, MOAT_CACHE_STORE_METHOD);
}

static void test_store_status(void **state)
{
	static const int heuristic[] = { 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501 };
	static const int not_heuristic[] = { 201, 202, 205, 302, 303, 307, 400, 401, 403, 409, 418, 451, 500,
					     502, 503, 504, 299, 599 };
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;
	size_t i;

	(void)state;
	r = resp200("max-age=60");
	r.status = 100;
	expect_store(&q, &r, MOAT_CACHE_STORE_STATUS);
	r.status = 199;
	expect_store(&q, &r, MOAT_CACHE_STORE_STATUS);
	r.status = 304;
	expect_store(&q, &r, MOAT_CACHE_STORE_STATUS);
	r.status = 600;
	expect_store(&q, &r, MOAT_CACHE_STORE_STATUS);
	r.status = 206;
	expect_store(&q, &r, MOAT_CACHE_STORE_PARTIAL);

	/* heuristically cacheable: stored without explicit freshness (given a validator) */
	for (i = 0; i < sizeof heuristic / sizeof heuristic[0]; i++) {
		r = resp200("");
		r.status = heuristic[i];
		r.etag = "\"v\"";
		r.etag_len = 3;
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	}
	/* the others need explicit freshness or public */
	for (i = 0; i < sizeof not_heuristic / sizeof not_heuristic[0]; i++) {
		r = resp200("");
		r.status = not_heuristic[i];
		r.etag = "\"v\"";
		r.etag_len = 3;
		expect_store(&q, &r, MOAT_CACHE_STORE_NOT_CACHEABLE);
		r.cc = ccof("max-age=10");
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
		r.cc = ccof("s-maxage=10");
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
		r.cc = ccof("public");
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
		r.cc = ccof("");
		r.expires = T0 + 60;
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
		r.expires = MOAT_CACHE_TIME_INVALID; /* explicit, already expired; revalidatable */
		expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	}
}

static void test_store_directives(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;

	(void)state;
	r = resp200("max-age=60, no-store");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_STORE);
	r = resp200("no-store=\"x\", max-age=60"); /* restrictive even with an argument */
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_STORE);

	/* must-understand: no-store ignored for an understood status ... */
	r = resp200("must-understand, no-store, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r.status = 302;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	/* ... refused for another */
	r.status = 299;
	expect_store(&q, &r, MOAT_CACHE_STORE_MUST_UNDERSTAND);
	r.status = 500;
	expect_store(&q, &r, MOAT_CACHE_STORE_MUST_UNDERSTAND);
	/* a malformed must-understand is ignored: no-store stands */
	r = resp200("must-understand=1, no-store, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_STORE);

	/* request no-store */
	q = req_get("no-store");
	r = resp200("max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_REQ_NO_STORE);
	q = req_get("");

	/* private, qualified or not */
	r = resp200("private, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_PRIVATE);
	r = resp200("private=\"Set-Cookie\", max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_PRIVATE);
	r = resp200("public, private");
	expect_store(&q, &r, MOAT_CACHE_STORE_PRIVATE);
}

static void test_store_authorization(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;

	(void)state;
	q.has_authorization = 1;
	r = resp200("max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_AUTHORIZATION);
	r = resp200("");
	r.expires = T0 + 60;
	expect_store(&q, &r, MOAT_CACHE_STORE_AUTHORIZATION);
	r = resp200("public, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("s-maxage=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("must-revalidate, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("proxy-revalidate, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_AUTHORIZATION);
}

static void test_store_cookie_vary(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r = resp200("max-age=60");

	(void)state;
	r.has_set_cookie = 1;
	expect_store(&q, &r, MOAT_CACHE_STORE_SET_COOKIE);
	cfg.allow_set_cookie = 1;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	cfg.allow_set_cookie = 0;

	r = resp200("max-age=60");
	r.vary = "Accept-Encoding";
	r.vary_len = strlen(r.vary);
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r.vary = "*";
	r.vary_len = 1;
	expect_store(&q, &r, MOAT_CACHE_STORE_VARY_STAR);
	r.vary = "Accept-Encoding, *";
	r.vary_len = strlen(r.vary);
	expect_store(&q, &r, MOAT_CACHE_STORE_VARY_STAR);
	r.vary = " * ";
	r.vary_len = strlen(r.vary);
	expect_store(&q, &r, MOAT_CACHE_STORE_VARY_STAR);
	r.vary = "Accept Encoding";
	r.vary_len = strlen(r.vary);
	expect_store(&q, &r, MOAT_CACHE_STORE_VARY_STAR);
	r.vary = "";
	r.vary_len = 0;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
}

static void test_store_no_validator(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;

	(void)state;
	/* heuristically cacheable, nothing to go on, no default ttl */
	r = resp200("");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_VALIDATOR);
	cfg.default_ttl = 60;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	cfg.default_ttl = 0;
	r.last_modified = T0 - 1000; /* a validator, and a heuristic of 100 s */
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);

	/* max-age=0 / Expires in the past: only with a validator or a stale window */
	r = resp200("max-age=0");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_VALIDATOR);
	r.etag = "\"v\"";
	r.etag_len = 3;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("max-age=0, stale-if-error=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("max-age=0, stale-while-revalidate=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("");
	r.expires = MOAT_CACHE_TIME_INVALID;
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_VALIDATOR);

	/* no-cache: every use is validated, so a validator is needed */
	r = resp200("no-cache, max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_VALIDATOR);
	r.last_modified = T0 - 10;
	expect_store(&q, &r, MOAT_CACHE_STORE_OK);
	r = resp200("no-cache=\"Set-Cookie\", max-age=60");
	expect_store(&q, &r, MOAT_CACHE_STORE_NO_VALIDATOR);
}

static void test_store_text(void **state)
{
	static const char *const want[] = { "stored", "method", "status", "partial", "must-understand",
					    "no-store", "request-no-store", "private", "authorization",
					    "set-cookie", "vary-star", "not-cacheable", "no-validator" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_string_equal(moat_cache_store_text((enum moat_cache_storable)i), want[i]);
	assert_string_equal(moat_cache_store_text((enum moat_cache_storable)99), "unknown");
}

/* ---- freshness lifetime ---- */

static int64_t life(const struct moat_cache_resp *r, int *heur)
{
	return moat_cache_freshness_lifetime(&cfg, r, heur);
}

static void test_lifetime_explicit(void **state)
{
	struct moat_cache_resp r;
	int h = 7;

	(void)state;
	r = resp200("max-age=60, s-maxage=600");
	r.expires = T0 + 6000;
	assert_int_equal(life(&r, &h), 600);
	assert_int_equal(h, 0);
	r.cc = ccof("max-age=60");
	assert_int_equal(life(&r, &h), 60); /* max-age: Expires ignored */
	r.cc = ccof("");
	assert_int_equal(life(&r, &h), 6000);
	assert_int_equal(h, 0);
	r.cc = ccof("max-age=abc"); /* invalid: stale */
	assert_int_equal(life(&r, NULL), 0);
	r.cc = ccof("s-maxage=0, max-age=100");
	assert_int_equal(life(&r, NULL), 0);

	/* Expires - Date; Expires before Date; invalid Expires */
	r = resp200("");
	r.expires = T0 - 10;
	assert_int_equal(life(&r, NULL), 0);
	r.expires = MOAT_CACHE_TIME_INVALID;
	assert_int_equal(life(&r, &h), 0);
	assert_int_equal(h, 0);
	/* Date absent or invalid: response_time */
	r.expires = T0 + 100;
	r.date = MOAT_CACHE_TIME_NONE;
	r.response_time = T0 + 30;
	assert_int_equal(life(&r, NULL), 70);
	r.date = MOAT_CACHE_TIME_INVALID;
	assert_int_equal(life(&r, NULL), 70);

	/* saturation */
	r = resp200("max-age=99999999999999");
	assert_int_equal(life(&r, NULL), MOAT_CC_DELTA_MAX);
	r = resp200("");
	r.expires = INT64_MAX;
	assert_int_equal(life(&r, NULL), MOAT_CC_DELTA_MAX);
	r.date = INT64_MIN + 2;
	assert_int_equal(life(&r, NULL), MOAT_CC_DELTA_MAX);
	r.expires = INT64_MIN + 2;
	r.date = INT64_MAX;
	assert_int_equal(life(&r, NULL), 0);
}

static void test_lifetime_heuristic(void **state)
{
	struct moat_cache_resp r;
	int h = 0;

	(void)state;
	/* 10% of (Date - Last-Modified) */
	r = resp200("");
	r.last_modified = T0 - 100000;
	assert_int_equal(life(&r, &h), 10000);
	assert_int_equal(h, 1);
	r.last_modified = T0 - 15;
	assert_int_equal(life(&r, NULL), 1);
	r.last_modified = T0 - 9;
	assert_int_equal(life(&r, NULL), 0);
	/* capped at a day */
	r.last_modified = T0 - 30 * 86400;
	assert_int_equal(life(&r, NULL), 86400);
	cfg.heuristic_max = 3600;
	assert_int_equal(life(&r, NULL), 3600);
	cfg.heuristic_max = MOAT_CACHE_HEURISTIC_MAX;
	cfg.heuristic_percent = 20;
	r.last_modified = T0 - 1000;
	assert_int_equal(life(&r, NULL), 200);
	cfg.heuristic_percent = MOAT_CACHE_HEURISTIC_PERCENT;
	/* Last-Modified after Date, invalid or absent: default_ttl */
	r.last_modified = T0 + 10;
	assert_int_equal(life(&r, &h), 0);
	assert_int_equal(h, 1);
	cfg.default_ttl = 300;
	assert_int_equal(life(&r, NULL), 300);
	r.last_modified = MOAT_CACHE_TIME_INVALID;
	assert_int_equal(life(&r, NULL), 300);
	r.last_modified = MOAT_CACHE_TIME_NONE;
	assert_int_equal(life(&r, NULL), 300);
	/* no Date: response_time stands for it */
	r.date = MOAT_CACHE_TIME_NONE;
	r.response_time = T0 + 1000;
	r.last_modified = T0;
	assert_int_equal(life(&r, NULL), 100);
	cfg.default_ttl = 0;

	/* not heuristically cacheable: 0, unless public */
	r = resp200("");
	r.status = 302;
	r.last_modified = T0 - 100000;
	assert_int_equal(life(&r, &h), 0);
	assert_int_equal(h, 0);
	r.cc = ccof("public");
	assert_int_equal(life(&r, &h), 10000);
	assert_int_equal(h, 1);
	/* explicit freshness means no heuristic */
	r.cc = ccof("public, max-age=5");
	assert_int_equal(life(&r, &h), 5);
	assert_int_equal(h, 0);
}

/* ---- age ---- */

static void test_age_worked_example(void **state)
{
	struct moat_cache_resp r = resp200("max-age=600");

	(void)state;
	/*
	 * The request left at 1000 and the answer arrived at 1002
	 * (response_delay 2). The origin's clock is 10 s behind ours: Date
	 * 992, so apparent_age = 1002 - 992 = 10. An upstream cache said
	 * Age: 5, so corrected_age_value = 5 + 2 = 7. corrected_initial_age
	 * = max(10, 7) = 10. At now = 1100, resident_time = 98 and
	 * current_age = 108.
	 */
	r.request_time = 1000;
	r.response_time = 1002;
	r.date = 992;
	r.age = 5;
	assert_int_equal(moat_cache_current_age(&r, 1100), 108);
	assert_int_equal(moat_cache_current_age(&r, 1002), 10);
	/* Age: 30 dominates: corrected_age_value = 32 */
	r.age = 30;
	assert_int_equal(moat_cache_current_age(&r, 1100), 130);
	/* no Age, Date in the future (origin clock ahead): apparent_age 0, delay 2 */
	r.age = -1;
	r.date = 1500;
	assert_int_equal(moat_cache_current_age(&r, 1100), 100);
	/* no Date: dated on receipt */
	r.date = MOAT_CACHE_TIME_NONE;
	assert_int_equal(moat_cache_current_age(&r, 1100), 100);
	r.date = MOAT_CACHE_TIME_INVALID;
	assert_int_equal(moat_cache_current_age(&r, 1100), 100);
	/* our clock stepped back: delay and resident time count as 0 */
	r.request_time = 1010;
	assert_int_equal(moat_cache_current_age(&r, 1000), 0);
	/* saturation */
	r.age = INT64_MAX;
	assert_int_equal(moat_cache_current_age(&r, INT64_MAX), MOAT_CC_DELTA_MAX);
	r.age = 0;
	r.response_time = INT64_MIN + 5;
	r.request_time = INT64_MAX;
	r.date = INT64_MAX;
	assert_int_equal(moat_cache_current_age(&r, INT64_MAX), MOAT_CC_DELTA_MAX);
}

/* ---- usable ---- */


static void expect_use(const struct moat_cache_req *q, const struct moat_cache_resp *r, int64_t now, int failed,
		       enum moat_cache_use use, enum moat_cache_fwd fwd, const char *detail)
{
	struct moat_cache_verdict v;

	memset(&v, 0xa5, sizeof v);
	assert_int_equal(moat_cache_usable(&cfg, q, r, now, failed, &v), use);
	assert_int_equal(v.use, use);
	assert_int_equal(v.fwd, fwd);
	if (detail == NULL)
		assert_null(v.detail);
	else
		assert_string_equal(v.detail, detail);
	assert_int_equal(v.age, moat_cache_current_age(r, now));
	assert_int_equal(v.lifetime, moat_cache_freshness_lifetime(&cfg, r, NULL));
	assert_int_equal(v.ttl, v.lifetime - v.age);
}

#define OK MOAT_CACHE_BACKEND_OK
#define FAILED MOAT_CACHE_BACKEND_FAILED
#define FRESH MOAT_CACHE_USE_FRESH
#define STALE MOAT_CACHE_USE_STALE
#define REFRESH MOAT_CACHE_USE_STALE_REFRESH
#define ON_ERROR MOAT_CACHE_USE_STALE_ERROR
#define REVAL MOAT_CACHE_USE_REVALIDATE
#define OIC MOAT_CACHE_USE_ONLY_IF_CACHED
#define F_NONE MOAT_CACHE_FWD_NONE
#define F_REQ MOAT_CACHE_FWD_REQUEST
#define F_STALE MOAT_CACHE_FWD_STALE

static void test_usable_fresh_stale(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r = resp200("max-age=100");
	struct moat_cache_verdict v;

	(void)state;
	expect_use(&q, &r, T0, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 99, OK, FRESH, F_NONE, NULL);
	moat_cache_usable(&cfg, &q, &r, T0 + 40, OK, &v);
	assert_int_equal(v.age, 40);
	assert_int_equal(v.ttl, 60);
	/* freshness_lifetime > current_age: at 100 it is stale */
	expect_use(&q, &r, T0 + 100, OK, REVAL, F_STALE, NULL);
	moat_cache_usable(&cfg, &q, &r, T0 + 130, OK, &v);
	assert_int_equal(v.ttl, -30);
	/* a received Age counts */
	r.age = 90;
	expect_use(&q, &r, T0 + 9, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 10, OK, REVAL, F_STALE, NULL);
	/* heuristic freshness */
	r = resp200("");
	r.last_modified = T0 - 1000; /* 100 s */
	expect_use(&q, &r, T0 + 99, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 100, OK, REVAL, F_STALE, NULL);
	/* method */
	q.method = "POST";
	q.method_len = 4;
	expect_use(&q, &r, T0, OK, REVAL, MOAT_CACHE_FWD_METHOD, "method");
	q.method = "HEAD";
	expect_use(&q, &r, T0, OK, FRESH, F_NONE, NULL);
}

static void test_usable_response_directives(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;

	(void)state;
	/* no-cache: always revalidated, even fresh, even with stale windows */
	r = resp200("max-age=100, no-cache");
	expect_use(&q, &r, T0, OK, REVAL, F_STALE, "no-cache");
	r = resp200("max-age=100, no-cache=\"Set-Cookie\"");
	expect_use(&q, &r, T0, OK, REVAL, F_STALE, "no-cache");
	r = resp200("max-age=100, no-cache, stale-if-error=600");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, "no-cache");

	/* stale-while-revalidate: inclusive window */
	r = resp200("max-age=100, stale-while-revalidate=30");
	expect_use(&q, &r, T0 + 99, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 100, OK, REFRESH, F_NONE, "stale-while-revalidate");
	expect_use(&q, &r, T0 + 130, OK, REFRESH, F_NONE, "stale-while-revalidate");
	expect_use(&q, &r, T0 + 131, OK, REVAL, F_STALE, NULL);
	/* ... also with s-maxage (the origin's explicit permission) */
	r = resp200("s-maxage=100, stale-while-revalidate=30");
	expect_use(&q, &r, T0 + 120, OK, REFRESH, F_NONE, "stale-while-revalidate");
	/* ... never with must-revalidate / proxy-revalidate */
	r = resp200("max-age=100, stale-while-revalidate=30, must-revalidate");
	expect_use(&q, &r, T0 + 99, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 120, OK, REVAL, F_STALE, "must-revalidate");
	r = resp200("max-age=100, stale-while-revalidate=30, proxy-revalidate");
	expect_use(&q, &r, T0 + 120, OK, REVAL, F_STALE, "proxy-revalidate");
}

static void test_usable_max_stale(void **state)
{
	struct moat_cache_req q;
	struct moat_cache_resp r = resp200("max-age=100");

	(void)state;
	q = req_get("max-stale=60");
	expect_use(&q, &r, T0 + 160, OK, STALE, F_NONE, "max-stale");
	expect_use(&q, &r, T0 + 161, OK, REVAL, F_STALE, NULL);
	q = req_get("max-stale");
	expect_use(&q, &r, T0 + 100000, OK, STALE, F_NONE, "max-stale");
	q = req_get("max-stale=0");
	expect_use(&q, &r, T0 + 100, OK, STALE, F_NONE, "max-stale");
	expect_use(&q, &r, T0 + 101, OK, REVAL, F_STALE, NULL);
	/* the client cannot override the origin */
	q = req_get("max-stale");
	r = resp200("max-age=100, must-revalidate");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, "must-revalidate");
	r = resp200("max-age=100, proxy-revalidate");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, "proxy-revalidate");
	r = resp200("s-maxage=100"); /* implies proxy-revalidate */
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, NULL);
	r = resp200("max-age=100, no-cache");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, "no-cache");
	/* max-stale takes precedence over the swr window (no background refresh needed) */
	r = resp200("max-age=100, stale-while-revalidate=30");
	expect_use(&q, &r, T0 + 110, OK, STALE, F_NONE, "max-stale");
}

static void test_usable_request_directives(void **state)
{
	struct moat_cache_req q;
	struct moat_cache_resp r = resp200("max-age=100");

	(void)state;
	/* no-cache */
	q = req_get("no-cache");
	expect_use(&q, &r, T0 + 50, OK, REVAL, F_REQ, "request-no-cache");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, "request-no-cache");
	cfg.honour_client_no_cache = 0;
	expect_use(&q, &r, T0 + 50, OK, FRESH, F_NONE, NULL);
	cfg.honour_client_no_cache = 1;

	/* max-age */
	q = req_get("max-age=10");
	expect_use(&q, &r, T0 + 10, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 11, OK, REVAL, F_REQ, "request-max-age");
	q = req_get("max-age=0");
	expect_use(&q, &r, T0 + 1, OK, REVAL, F_REQ, "request-max-age");
	cfg.honour_client_max_age = 0;
	expect_use(&q, &r, T0 + 1, OK, FRESH, F_NONE, NULL);
	cfg.honour_client_max_age = 1;
	/* max-age with max-stale: the age still decides */
	q = req_get("max-age=200, max-stale=100");
	expect_use(&q, &r, T0 + 150, OK, STALE, F_NONE, "max-stale");
	expect_use(&q, &r, T0 + 201, OK, REVAL, F_STALE, "request-max-age");

	/* min-fresh: wants at least that much freshness left */
	q = req_get("min-fresh=30");
	expect_use(&q, &r, T0 + 70, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 71, OK, REVAL, F_REQ, "request-min-fresh");
	cfg.honour_client_max_age = 0;
	expect_use(&q, &r, T0 + 71, OK, FRESH, F_NONE, NULL);
	cfg.honour_client_max_age = 1;

	/* immutable: a reload's max-age=0 does not revalidate while fresh ... */
	r = resp200("max-age=100, immutable");
	q = req_get("max-age=0");
	expect_use(&q, &r, T0 + 50, OK, FRESH, F_NONE, NULL);
	q = req_get("min-fresh=1000");
	expect_use(&q, &r, T0 + 50, OK, FRESH, F_NONE, NULL);
	/* ... a forced reload's no-cache does; stale ones are not special */
	q = req_get("no-cache");
	expect_use(&q, &r, T0 + 50, OK, REVAL, F_REQ, "request-no-cache");
	q = req_get("max-age=0");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, "request-max-age");

	/* request no-store does not concern a stored response */
	r = resp200("max-age=100");
	q = req_get("no-store");
	expect_use(&q, &r, T0 + 50, OK, FRESH, F_NONE, NULL);
}

static void test_usable_only_if_cached(void **state)
{
	struct moat_cache_req q = req_get("only-if-cached");
	struct moat_cache_resp r = resp200("max-age=100, stale-while-revalidate=10");

	(void)state;
	expect_use(&q, &r, T0 + 50, OK, FRESH, F_NONE, NULL);
	expect_use(&q, &r, T0 + 105, OK, REFRESH, F_NONE, "stale-while-revalidate");
	expect_use(&q, &r, T0 + 150, OK, OIC, F_STALE, NULL);
	q = req_get("only-if-cached, no-cache");
	expect_use(&q, &r, T0 + 50, OK, OIC, F_REQ, "request-no-cache");
	q = req_get("only-if-cached, max-stale");
	expect_use(&q, &r, T0 + 150, OK, STALE, F_NONE, "max-stale");
	r = resp200("max-age=100, no-cache");
	expect_use(&q, &r, T0 + 50, OK, OIC, F_STALE, "no-cache");
	/* with backend_failed it never applies (a forward was made) */
	expect_use(&q, &r, T0 + 50, FAILED, REVAL, F_STALE, "no-cache");
}

static void test_usable_backend_failed(void **state)
{
	struct moat_cache_req q = req_get("");
	struct moat_cache_resp r;

	(void)state;
	/* stale-if-error from the response: inclusive window */
	r = resp200("max-age=100, stale-if-error=60");
	expect_use(&q, &r, T0 + 150, OK, REVAL, F_STALE, NULL); /* not on lookup */
	expect_use(&q, &r, T0 + 150, FAILED, ON_ERROR, F_STALE, "stale-if-error");
	expect_use(&q, &r, T0 + 160, FAILED, ON_ERROR, F_STALE, "stale-if-error");
	expect_use(&q, &r, T0 + 161, FAILED, REVAL, F_STALE, NULL);
	/* a fresh response stands in for a failed forward (e.g. request no-cache) */
	q = req_get("no-cache");
	expect_use(&q, &r, T0 + 50, FAILED, FRESH, F_NONE, NULL);
	/* the request's stale-if-error replaces the response's */
	q = req_get("stale-if-error=10");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, NULL);
	expect_use(&q, &r, T0 + 110, FAILED, ON_ERROR, F_STALE, "stale-if-error");
	r = resp200("max-age=100");
	q = req_get("stale-if-error=100");
	expect_use(&q, &r, T0 + 150, FAILED, ON_ERROR, F_STALE, "stale-if-error");
	q = req_get("");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, NULL);
	/* s-maxage does not stop the origin's own stale-if-error */
	r = resp200("s-maxage=100, stale-if-error=60");
	expect_use(&q, &r, T0 + 150, FAILED, ON_ERROR, F_STALE, "stale-if-error");
	/* must-revalidate / proxy-revalidate do */
	r = resp200("max-age=100, stale-if-error=60, must-revalidate");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, "must-revalidate");
	r = resp200("max-age=100, stale-if-error=60, proxy-revalidate");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, "proxy-revalidate");
	q = req_get("stale-if-error=600");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, "proxy-revalidate");
	/* the client's max-stale still allows it */
	r = resp200("max-age=100");
	q = req_get("max-stale=100");
	expect_use(&q, &r, T0 + 150, FAILED, STALE, F_NONE, "max-stale");
	/* stale-while-revalidate alone is no licence to hide an error */
	r = resp200("max-age=100, stale-while-revalidate=600");
	q = req_get("");
	expect_use(&q, &r, T0 + 150, FAILED, REVAL, F_STALE, NULL);
}

/* ---- Vary ---- */

static struct moat_h1_header hdrs[8];
static size_t nh;

static void hdr(const char *name, const char *value)
{
	hdrs[nh].name = name;
	hdrs[nh].name_len = strlen(name);
	hdrs[nh].value = value;
	hdrs[nh].value_len = strlen(value);
	nh++;
}

static void expect_key(const char *vary, const char *want)
{
	char out[256];
	int n = moat_cache_vary_key(vary, vary ? strlen(vary) : 0, hdrs, nh, out, sizeof out);

	assert_true(n >= 0);
	assert_int_equal((size_t)n, strlen(want));
	assert_memory_equal(out, want, (size_t)n);
}

static void expect_ae(const char *ae, const char *want)
{
	char w[128];

	nh = 0;
	hdr("Accept-Encoding", ae);
	snprintf(w, sizeof w, "accept-encoding:%s\n", want);
	expect_key("Accept-Encoding", w);
}

static void test_vary_accept_encoding(void **state)
{
	(void)state;
	expect_ae("gzip, deflate, br", "br,gzip,identity");
	expect_ae("br,gzip", "br,gzip,identity");
	expect_ae("gzip, deflate, br, zstd", "br,gzip,identity,zstd");
	expect_ae("GZIP;Q=0.5 , Br ; q=1", "br,gzip,identity");
	expect_ae("gzip;q=0, br", "br,identity");
	expect_ae("gzip;q=0.000, br;q=0.001", "br,identity");
	expect_ae("x-gzip", "gzip,identity");
	expect_ae("*", "br,gzip,identity,zstd");
	expect_ae("*;q=0.1, gzip;q=0", "br,identity,zstd");
	expect_ae("*;q=0", "");
	expect_ae("*;q=0, identity", "identity");
	expect_ae("identity;q=0, gzip", "gzip");
	expect_ae("", "identity");
	expect_ae("deflate, compress", "identity");
	expect_ae("gzip;q=1.5, br", "br,identity"); /* malformed element ignored */
	expect_ae("gzip;q=, br", "br,identity");
	expect_ae("gzip x, br", "br,identity");
	expect_ae("gzip;level=9;q=0.8", "gzip,identity");
	expect_ae("gzip, gzip;q=0", "gzip,identity"); /* first mention wins */
	/* several lines */
	nh = 0;
	hdr("accept-encoding", "gzip");
	hdr("X-Other", "1");
	hdr("ACCEPT-ENCODING", "br");
	expect_key("accept-encoding", "accept-encoding:br,gzip,identity\n");
	/* absent is not empty */
	nh = 0;
	expect_key("Accept-Encoding", "accept-encoding\n");
}

static void test_vary_generic(void **state)
{
	char out[64];

	(void)state;
	nh = 0;
	expect_key(NULL, "");
	expect_key("", "");
	expect_key(" , ,", "");
	hdr("Accept-Language", "  en-US ,  fr;q=0.5 ");
	hdr("User-Agent", "Mozilla/5.0   (X11;\tLinux)");
	hdr("X-Q", "a, \"b  ,  c\" ,d");
	hdr("X-Empty", "");
	expect_key("Accept-Language", "accept-language:en-US,fr;q=0.5\n");
	expect_key("user-agent, Accept-Language",
		   "user-agent:Mozilla/5.0 (X11; Linux)\naccept-language:en-US,fr;q=0.5\n");
	expect_key("X-Q", "x-q:a,\"b  ,  c\",d\n");
	expect_key("X-Empty, X-Absent", "x-empty:\nx-absent\n");
	/* a name listed twice counts once */
	expect_key("Accept-Language, X-Empty, accept-language", "accept-language:en-US,fr;q=0.5\nx-empty:\n");
	/* several lines of one field: joined with ',' */
	nh = 0;
	hdr("Cookie", "a=1");
	hdr("cookie", " b=2 ");
	expect_key("Cookie", "cookie:a=1,b=2\n");
	/* same key for the same request whatever the whitespace */
	nh = 0;
	hdr("Accept", "text/html,application/xml;q=0.9");
	expect_key("Accept", "accept:text/html,application/xml;q=0.9\n");
	nh = 0;
	hdr("Accept", "text/html , application/xml;q=0.9");
	expect_key("Accept", "accept:text/html,application/xml;q=0.9\n");
	/* "*" and bad members */
	assert_int_equal(moat_cache_vary_key("*", 1, hdrs, nh, out, sizeof out), MOAT_CACHE_EVARY);
	assert_int_equal(moat_cache_vary_key("Accept, *", 9, hdrs, nh, out, sizeof out), MOAT_CACHE_EVARY);
	assert_int_equal(moat_cache_vary_key("Acc ept", 7, hdrs, nh, out, sizeof out), MOAT_CACHE_EVARY);
	/* more than MOAT_CACHE_VARY_MAX members (duplicates too): read as "*"
	 * (the key's cost grows with the square of the members) */
	{
		char many[4 * (MOAT_CACHE_VARY_MAX + 1)];
		size_t ml = 0;

		for (unsigned i = 0; i < MOAT_CACHE_VARY_MAX; i++)
			ml += (size_t)sprintf(many + ml, "%sa", i ? ", " : "");
		assert_true(moat_cache_vary_key(many, ml, hdrs, nh, out, sizeof out) >= 0);
		ml += (size_t)sprintf(many + ml, ", a");
		assert_int_equal(moat_cache_vary_key(many, ml, hdrs, nh, out, sizeof out), MOAT_CACHE_EVARY);
	}
	/* too small */
	assert_int_equal(moat_cache_vary_key("Accept", 6, hdrs, nh, out, 10), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_vary_key("Accept", 6, hdrs, nh, out, 0), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_vary_key("Accept", 6, hdrs, nh, out, 39), 39);
	assert_int_equal(moat_cache_vary_key("Accept", 6, hdrs, nh, out, 38), MOAT_CACHE_ENOSPC);
}

/* ---- conditionals ---- */

static int nm(const struct moat_cache_resp *r, const char *inm, const char *ims)
{
	return moat_cache_not_modified(r, inm, inm ? strlen(inm) : 0, ims, ims ? strlen(ims) : 0);
}

static void test_if_none_match(void **state)
{
	struct moat_cache_resp r = resp200("max-age=60");

	(void)state;
	r.etag = "\"abc\"";
	r.etag_len = 5;
	assert_int_equal(nm(&r, "\"abc\"", NULL), 1);
	assert_int_equal(nm(&r, "W/\"abc\"", NULL), 1); /* weak comparison */
	assert_int_equal(nm(&r, "\"x\", \"abc\"", NULL), 1);
	assert_int_equal(nm(&r, " \"x\" ,, W/\"abc\" ", NULL), 1);
	assert_int_equal(nm(&r, "\"x\"", NULL), 0);
	assert_int_equal(nm(&r, "\"ABC\"", NULL), 0);
	assert_int_equal(nm(&r, "*", NULL), 1);
	assert_int_equal(nm(&r, " * ", NULL), 1);
	/* malformed: never matches */
	assert_int_equal(nm(&r, "abc", NULL), 0);
	assert_int_equal(nm(&r, "\"abc\" x", NULL), 0);
	assert_int_equal(nm(&r, "\"abc", NULL), 0);
	assert_int_equal(nm(&r, "w/\"abc\"", NULL), 0);
	assert_int_equal(nm(&r, "*, \"abc\"", NULL), 0);
	assert_int_equal(nm(&r, "", NULL), 0);
	assert_int_equal(nm(&r, "\"x\", abc, \"abc\"", NULL), 0);
	/* a weak stored tag matches weakly */
	r.etag = "W/\"abc\"";
	r.etag_len = 7;
	assert_int_equal(nm(&r, "\"abc\"", NULL), 1);
	/* a malformed stored tag matches nothing but "*" */
	r.etag = "abc";
	r.etag_len = 3;
	assert_int_equal(nm(&r, "\"abc\"", NULL), 0);
	assert_int_equal(nm(&r, "*", NULL), 1);
	/* no stored tag */
	r.etag = NULL;
	r.etag_len = 0;
	assert_int_equal(nm(&r, "\"abc\"", NULL), 0);
	assert_int_equal(nm(&r, "*", NULL), 1);
}

static void test_if_modified_since(void **state)
{
	struct moat_cache_resp r = resp200("max-age=60");
	char at[30], before[30], after[30];

	(void)state;
	moat_http_date_format(T0 - 100, at);
	moat_http_date_format(T0 - 101, before);
	moat_http_date_format(T0 - 99, after);
	r.last_modified = T0 - 100;
	assert_int_equal(nm(&r, NULL, at), 1);
	assert_int_equal(nm(&r, NULL, after), 1);
	assert_int_equal(nm(&r, NULL, before), 0);
	assert_int_equal(nm(&r, NULL, "garbage"), 0);
	assert_int_equal(nm(&r, NULL, NULL), 0);
	/* If-None-Match present: If-Modified-Since is not looked at */
	r.etag = "\"v\"";
	r.etag_len = 3;
	assert_int_equal(nm(&r, "\"other\"", at), 0);
	assert_int_equal(nm(&r, "\"v\"", before), 1);
	r.etag = NULL;
	/* no Last-Modified: the Date, then the time it was received */
	r.last_modified = MOAT_CACHE_TIME_NONE;
	moat_http_date_format(T0, at);
	moat_http_date_format(T0 - 1, before);
	assert_int_equal(nm(&r, NULL, at), 1);
	assert_int_equal(nm(&r, NULL, before), 0);
	r.date = MOAT_CACHE_TIME_NONE;
	r.response_time = T0 + 50;
	assert_int_equal(nm(&r, NULL, at), 0);
	moat_http_date_format(T0 + 50, at);
	assert_int_equal(nm(&r, NULL, at), 1);
	/* the three formats */
	r.last_modified = 784111777;
	assert_int_equal(nm(&r, NULL, "Sunday, 06-Nov-94 08:49:37 GMT"), 1);
	assert_int_equal(nm(&r, NULL, "Sun Nov  6 08:49:36 1994"), 0);
}

/* ---- ranges ---- */

static enum moat_cache_range rg(const char *range, const char *if_range, const struct moat_cache_resp *r,
				uint64_t len, uint64_t *a, uint64_t *b)
{
	*a = *b = 424242;
	return moat_cache_range(range, range ? strlen(range) : 0, if_range, if_range ? strlen(if_range) : 0, r, len,
				a, b);
}

static void expect_range(const char *range, uint64_t len, uint64_t first, uint64_t last)
{
	struct moat_cache_resp r = resp200("");
	uint64_t a, b;

	assert_int_equal(rg(range, NULL, &r, len, &a, &b), MOAT_CACHE_RANGE_PARTIAL);
	assert_int_equal(a, first);
	assert_int_equal(b, last);
}

static void expect_range_full(const char *range, uint64_t len)
{
	struct moat_cache_resp r = resp200("");
	uint64_t a, b;

	assert_int_equal(rg(range, NULL, &r, len, &a, &b), MOAT_CACHE_RANGE_FULL);
	assert_int_equal(a, 424242);
}

static void expect_range_416(const char *range, uint64_t len)
{
	struct moat_cache_resp r = resp200("");
	uint64_t a, b;

	assert_int_equal(rg(range, NULL, &r, len, &a, &b), MOAT_CACHE_RANGE_UNSATISFIABLE);
	assert_int_equal(a, 424242);
}

static void test_range(void **state)
{
	(void)state;
	expect_range("bytes=0-499", 1000, 0, 499);
	expect_range("bytes=500-", 1000, 500, 999);
	expect_range("bytes=-100", 1000, 900, 999);
	expect_range("bytes=-1000", 1000, 0, 999);
	expect_range("bytes=-2000", 1000, 0, 999);
	expect_range("bytes=0-5000", 1000, 0, 999);
	expect_range("bytes=0-0", 1000, 0, 0);
	expect_range("bytes=999-999", 1000, 999, 999);
	expect_range("Bytes=1-2", 1000, 1, 2);
	expect_range("bytes=1-2 ,", 1000, 1, 2);
	expect_range("bytes=, 1-2", 1000, 1, 2);
	expect_range("bytes=0-99999999999999999999999", 1000, 0, 999);
	expect_range("bytes=-99999999999999999999999", 1000, 0, 999);
	expect_range("bytes=0-", 1, 0, 0);
	expect_range_416("bytes=1000-", 1000);
	expect_range_416("bytes=1000-2000", 1000);
	expect_range_416("bytes=-0", 1000);
	expect_range_416("bytes=99999999999999999999999-", 1000);
	expect_range_416("bytes=0-", 0);
	expect_range_416("bytes=-0", 0);
	expect_range_full("bytes=-5", 0); /* a 206 of nothing */
	expect_range_full(NULL, 1000);
	expect_range_full("bytes=0-1,5-6", 1000);
	expect_range_full("bytes=0-1, -5", 1000);
	expect_range_full("bytes=5-1", 1000);
	expect_range_full("items=0-1", 1000);
	expect_range_full("bytes 0-1", 1000);
	expect_range_full("bytes=", 1000);
	expect_range_full("bytes=,", 1000);
	expect_range_full("bytes=abc", 1000);
	expect_range_full("bytes=-", 1000);
	expect_range_full("bytes=1-2 x", 1000);
	expect_range_full("bytes=1-2x", 1000);
	expect_range_full("bytes=1--2", 1000);
	expect_range_full("bytes=+1-2", 1000);
	expect_range_full("bytes", 1000);
	expect_range_full("", 1000);
}

static void test_if_range(void **state)
{
	struct moat_cache_resp r = resp200("");
	char lm[30], other[30];
	uint64_t a, b;

	(void)state;
	r.etag = "\"v1\"";
	r.etag_len = 4;
	assert_int_equal(rg("bytes=0-9", "\"v1\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_PARTIAL);
	assert_int_equal(b, 9);
	assert_int_equal(rg("bytes=0-9", " \"v1\" ", &r, 100, &a, &b), MOAT_CACHE_RANGE_PARTIAL);
	assert_int_equal(rg("bytes=0-9", "\"v2\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	assert_int_equal(rg("bytes=0-9", "W/\"v1\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	assert_int_equal(rg("bytes=0-9", "\"v1\" x", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	assert_int_equal(rg("bytes=0-9", "", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	/* If-Range false: the whole response, even for an unsatisfiable range */
	assert_int_equal(rg("bytes=500-", "\"v2\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	assert_int_equal(rg("bytes=500-", "\"v1\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_UNSATISFIABLE);
	/* a weak stored tag never matches strongly */
	r.etag = "W/\"v1\"";
	r.etag_len = 6;
	assert_int_equal(rg("bytes=0-9", "\"v1\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	r.etag = NULL;
	assert_int_equal(rg("bytes=0-9", "\"v1\"", &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);

	/* dates: an exact, strong Last-Modified (earlier than Date) */
	r.last_modified = 1704844800; /* Wed, 10 Jan 2024 00:00:00 GMT (a 'W' date) */
	r.date = r.last_modified + 3600;
	moat_http_date_format(r.last_modified, lm);
	moat_http_date_format(r.last_modified + 1, other);
	assert_memory_equal(lm, "Wed", 3);
	assert_int_equal(rg("bytes=0-9", lm, &r, 100, &a, &b), MOAT_CACHE_RANGE_PARTIAL);
	assert_int_equal(rg("bytes=0-9", other, &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	r.date = r.last_modified; /* weak: not before Date */
	assert_int_equal(rg("bytes=0-9", lm, &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	r.date = MOAT_CACHE_TIME_NONE;
	assert_int_equal(rg("bytes=0-9", lm, &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	r.date = r.last_modified + 10;
	r.last_modified = MOAT_CACHE_TIME_NONE;
	assert_int_equal(rg("bytes=0-9", lm, &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
	/* If-Range without Range: nothing to do */
	assert_int_equal(rg(NULL, lm, &r, 100, &a, &b), MOAT_CACHE_RANGE_FULL);
}

/* ---- invalidation ---- */

static void test_invalidates(void **state)
{
	(void)state;
	assert_int_equal(moat_cache_invalidates("POST", 4, 200), 1);
	assert_int_equal(moat_cache_invalidates("POST", 4, 201), 1);
	assert_int_equal(moat_cache_invalidates("PUT", 3, 204), 1);
	assert_int_equal(moat_cache_invalidates("DELETE", 6, 301), 1);
	assert_int_equal(moat_cache_invalidates("PATCH", 5, 399), 1);
	assert_int_equal(moat_cache_invalidates("PURGE", 5, 200), 1); /* unknown methods are unsafe */
	assert_int_equal(moat_cache_invalidates("get", 3, 200), 1);   /* methods are case-sensitive */
	assert_int_equal(moat_cache_invalidates("POST", 4, 400), 0);
	assert_int_equal(moat_cache_invalidates("POST", 4, 404), 0);
	assert_int_equal(moat_cache_invalidates("POST", 4, 500), 0);
	assert_int_equal(moat_cache_invalidates("POST", 4, 100), 0);
	assert_int_equal(moat_cache_invalidates("GET", 3, 200), 0);
	assert_int_equal(moat_cache_invalidates("HEAD", 4, 200), 0);
	assert_int_equal(moat_cache_invalidates("OPTIONS", 7, 200), 0);
	assert_int_equal(moat_cache_invalidates("TRACE", 5, 200), 0);
}

static struct moat_cache_target target(const char *scheme, const char *auth, const char *path)
{
	struct moat_cache_target t;

	t.scheme = scheme;
	t.scheme_len = strlen(scheme);
	t.authority = auth;
	t.authority_len = strlen(auth);
	t.path = path;
	t.path_len = strlen(path);
	return t;
}

static void expect_ref(const struct moat_cache_target *t, const char *ref, const char *want)
{
	char out[128];
	int n;

	memset(out, 'x', sizeof out);
	n = moat_cache_invalidate_ref(t, ref, strlen(ref), out, sizeof out);
	if (want == NULL) {
		assert_int_equal(n, MOAT_CACHE_EORIGIN);
		return;
	}
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_invalidate_ref(void **state)
{
	struct moat_cache_target t = target("http", "example.com", "/a/b/c?x=1");
	char out[8];

	(void)state;
	expect_ref(&t, "/new", "/new");
	expect_ref(&t, "/new?q=1#frag", "/new?q=1");
	expect_ref(&t, "http://example.com/x?y", "/x?y");
	expect_ref(&t, "HTTP://EXAMPLE.COM:80/x", "/x");
	expect_ref(&t, "http://example.com:/x", "/x");
	expect_ref(&t, "http://user:pw@example.com/x", "/x");
	expect_ref(&t, "http://example.com", "/");
	expect_ref(&t, "http://example.com?q", "/?q");
	expect_ref(&t, "//example.com/z", "/z");
	expect_ref(&t, "d", "/a/b/d");
	expect_ref(&t, "../d", "/a/d");
	expect_ref(&t, "./d/./e/../f", "/a/b/d/f");
	expect_ref(&t, "../../../../d", "/d");
	expect_ref(&t, "/x/..", "/");
	expect_ref(&t, "/x/.", "/x/");
	expect_ref(&t, "/a/./b/../../c/", "/c/");
	expect_ref(&t, "/a?x=/../y", "/a?x=/../y");
	expect_ref(&t, "?q=2", "/a/b/c?q=2");
	expect_ref(&t, "", "/a/b/c?x=1");
	expect_ref(&t, "#frag", "/a/b/c?x=1");
	expect_ref(&t, "  /sp  ", "/sp");
	/* other origins */
	expect_ref(&t, "http://example.com:8080/x", NULL);
	expect_ref(&t, "https://example.com/x", NULL);
	expect_ref(&t, "http://other.com/x", NULL);
	expect_ref(&t, "http://example.com.evil/x", NULL);
	expect_ref(&t, "//evil.com/z", NULL);
	expect_ref(&t, "mailto:x@example.com", NULL);
	expect_ref(&t, "http:/x", NULL);
	expect_ref(&t, "http://:80/x", NULL);
	expect_ref(&t, "http://example.com:99999/x", NULL);
	expect_ref(&t, "http://example.com:8o/x", NULL);
	expect_ref(&t, "/a b", NULL);
	expect_ref(&t, "/a\x80", NULL);
	/* ports and schemes */
	t = target("https", "Example.COM:443", "/");
	expect_ref(&t, "https://example.com/x", "/x");
	expect_ref(&t, "https://example.com:443/x", "/x");
	expect_ref(&t, "http://example.com/x", NULL);
	t = target("http", "[::1]:8080", "/p");
	expect_ref(&t, "http://[::1]:8080/x", "/x");
	expect_ref(&t, "http://[::1]/x", NULL);
	expect_ref(&t, "x", "/x");
	t = target("ftp", "example.com", "/p");
	expect_ref(&t, "/x", NULL);
	t = target("http", "example.com", "");
	expect_ref(&t, "/x", NULL);
	/* space */
	t = target("http", "example.com", "/a/b/c?x=1");
	assert_int_equal(moat_cache_invalidate_ref(&t, "/1234567", 8, out, sizeof out), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_invalidate_ref(&t, "/123456", 7, out, sizeof out), 7);
	assert_string_equal(out, "/123456");
	assert_int_equal(moat_cache_invalidate_ref(&t, "dddd", 4, out, sizeof out), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_invalidate_ref(&t, "?qqqqqqq", 8, out, sizeof out), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_invalidate_ref(&t, "", 0, out, sizeof out), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_invalidate_ref(&t, "http://example.com", 18, out, 1), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_invalidate_ref(&t, "http://example.com", 18, out, 2), 1);
}

/* ---- Cache-Status ---- */

static void expect_status(const struct moat_cache_status *st, const char *want)
{
	char out[256];
	int n = moat_cache_status_format(st, out, sizeof out);

	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_cache_status(void **state)
{
	struct moat_cache_status st;
	char out[64];
	int n;

	(void)state;
	memset(&st, 0, sizeof st);
	st.hit = 1;
	st.has_ttl = 1;
	st.ttl = 376;
	expect_status(&st, "moat; hit; ttl=376");
	st.stored = 1; /* stored / collapsed only with fwd */
	st.collapsed = 1;
	expect_status(&st, "moat; hit; ttl=376");

	memset(&st, 0, sizeof st);
	st.fwd = MOAT_CACHE_FWD_URI_MISS;
	st.fwd_status = 200;
	st.stored = 1;
	expect_status(&st, "moat; fwd=uri-miss; fwd-status=200; stored");

	memset(&st, 0, sizeof st);
	st.fwd = MOAT_CACHE_FWD_STALE;
	st.fwd_status = 304;
	st.has_ttl = 1;
	st.ttl = -5;
	st.stored = 1;
	st.collapsed = 1;
	st.detail = "must-revalidate";
	expect_status(&st, "moat; fwd=stale; fwd-status=304; ttl=-5; stored; collapsed; detail=\"must-revalidate\"");

	memset(&st, 0, sizeof st);
	st.hit = 1;
	st.has_ttl = 1;
	st.ttl = INT64_MIN;
	expect_status(&st, "moat; hit; ttl=-9223372036854775808");

	memset(&st, 0, sizeof st);
	st.name = "edge-1.example:a/b";
	st.fwd = MOAT_CACHE_FWD_BYPASS;
	expect_status(&st, "edge-1.example:a/b; fwd=bypass");
	st.name = "my cache";
	expect_status(&st, "\"my cache\"; fwd=bypass");
	st.name = "1abc";
	expect_status(&st, "\"1abc\"; fwd=bypass");
	st.name = "";
	expect_status(&st, "moat; fwd=bypass");
	st.name = NULL;
	st.detail = "a \"q\" \\ \x01\xff";
	expect_status(&st, "moat; fwd=bypass; detail=\"a \\\"q\\\" \\\\ ??\"");
	memset(&st, 0, sizeof st);
	expect_status(&st, "moat");

	/* the exact size: 4 bytes need 5 */
	assert_int_equal(moat_cache_status_format(&st, out, 5), 4);
	assert_int_equal(moat_cache_status_format(&st, out, 4), MOAT_CACHE_ENOSPC);
	assert_int_equal(moat_cache_status_format(&st, out, 0), MOAT_CACHE_ENOSPC);
	st.hit = 1;
	st.detail = "a-very-long-detail-that-does-not-fit-in-sixty-four-bytes-at-all";
	n = moat_cache_status_format(&st, out, sizeof out);
	assert_int_equal(n, MOAT_CACHE_ENOSPC);

	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_NONE), "");
	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_METHOD), "method");
	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_VARY_MISS), "vary-miss");
	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_MISS), "miss");
	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_REQUEST), "request");
	assert_string_equal(moat_cache_fwd_text(MOAT_CACHE_FWD_PARTIAL), "partial");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_store_method, setup),
		cmocka_unit_test_setup(test_store_status, setup),
		cmocka_unit_test_setup(test_store_directives, setup),
		cmocka_unit_test_setup(test_store_authorization, setup),
		cmocka_unit_test_setup(test_store_cookie_vary, setup),
		cmocka_unit_test_setup(test_store_no_validator, setup),
		cmocka_unit_test_setup(test_store_text, setup),
		cmocka_unit_test_setup(test_lifetime_explicit, setup),
		cmocka_unit_test_setup(test_lifetime_heuristic, setup),
		cmocka_unit_test_setup(test_age_worked_example, setup),
		cmocka_unit_test_setup(test_usable_fresh_stale, setup),
		cmocka_unit_test_setup(test_usable_response_directives, setup),
		cmocka_unit_test_setup(test_usable_max_stale, setup),
		cmocka_unit_test_setup(test_usable_request_directives, setup),
		cmocka_unit_test_setup(test_usable_only_if_cached, setup),
		cmocka_unit_test_setup(test_usable_backend_failed, setup),
		cmocka_unit_test_setup(test_vary_accept_encoding, setup),
		cmocka_unit_test_setup(test_vary_generic, setup),
		cmocka_unit_test_setup(test_if_none_match, setup),
		cmocka_unit_test_setup(test_if_modified_since, setup),
		cmocka_unit_test_setup(test_range, setup),
		cmocka_unit_test_setup(test_if_range, setup),
		cmocka_unit_test_setup(test_invalidates, setup),
		cmocka_unit_test_setup(test_invalidate_ref, setup),
		cmocka_unit_test_setup(test_cache_status, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
