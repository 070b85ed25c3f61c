/*
 * cache_head_fuzz.c - libFuzzer target for moat_cache_parse_head(), the
 * parser of a stored response head (src/mod/cache/store.h: what the
 * store keeps in memory and reads back from disk files, so untrusted at
 * load), and for the cache decisions made on what it returns
 * (src/mod/cache/policy.h): the variant key, storable, usable, the
 * conditionals and ranges.
 *
 * Input: the head itself, parsed from an exactly sized heap copy so ASan
 * sees any over-read. The input size picks the configuration and the
 * request's Cache-Control (so every input is a head, and the same head
 * at other sizes does not exist: the mutator varies both together).
 * Checked, beyond crashes:
 *   - the result is 0 or -1; on 0: status in 100..999, the times 0, Age
 *     -1 or at most 2^31, only known Cache-Control bits (dup within
 *     flags), ETag inside the head, Vary inside the head or a joined
 *     copy of at most 4 KiB or "*"; parsing again gives the same
 *     struct; the head less its last byte is not a head;
 *   - vary_key with a fixed set of request fields: deterministic, ends
 *     with '\n', "" without Vary, EVARY exactly when storable would
 *     refuse the Vary (VARY_STAR never with a usable key, OK never with
 *     EVARY), a small output buffer gives ENOSPC or the same key;
 *   - storable: a known reason with a token;
 *   - usable at several times, backend failed or not: the verdict agrees
 *     with current_age and freshness_lifetime, FRESH only while fresh,
 *     stale serving never with no-cache / must-revalidate /
 *     proxy-revalidate nor while fresh, STALE_ERROR only when failed,
 *     ONLY_IF_CACHED only when asked;
 *   - not_modified is 0 or 1; a 206 range lies inside the content.
 * Seeds: fuzz/corpus/cache_head/ (realistic stored heads).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cachecontrol.h"
#include "http/h1_parse.h"
#include "mod/cache/policy.h"
#include "mod/cache/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALL_BITS 0xffffu
#define BASE     1700000000  /* response_time when the head has no usable Date */

#define H(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }
static const struct moat_h1_header req_fields[] = {
	H("Host", "example.com"),
	H("Accept-Encoding", "gzip, deflate, br"),
	H("accept-language", "en-GB,en;q=0.8"),
	H("Accept-Language", "fr"),
	H("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)  fuzz"),
	H("Cookie", "a=1; b=\"x, y\""),
	H("Origin", "https://example.org"),
	H("X-Empty", ""),
};
#undef H
#define NREQ (sizeof(req_fields) / sizeof(req_fields[0]))

/* The request's Cache-Control, picked by the input size. */
static const char *const req_cc[] = {
	"", "max-age=0", "no-cache", "max-stale", "max-stale=30, min-fresh=5", "only-if-cached", "no-store",
	"max-age=10, stale-if-error=600",
};

static void inside(const char *s, size_t n, const char *buf, size_t len)
{
	if (s == NULL || s < buf || n > len || (size_t)(s - buf) > len - n)
		abort();
}

static void check_resp(const struct moat_cache_resp *r, const char *buf, size_t len)
{
	const struct moat_cc *cc = &r->cc;

	if (r->status < 100 || r->status > 999 || r->request_time != 0 || r->response_time != 0)
		abort();
	if (r->age < -1 || r->age > (int64_t)MOAT_CC_DELTA_MAX || (unsigned)r->has_set_cookie > 1)
		abort();
	if ((cc->flags | cc->invalid | cc->dup) & ~ALL_BITS || cc->dup & ~cc->flags)
		abort();
	if (cc->no_cache_fields != NULL)
		inside(cc->no_cache_fields, cc->no_cache_fields_len, buf, len);
	if (cc->private_fields != NULL)
		inside(cc->private_fields, cc->private_fields_len, buf, len);
	if (r->etag != NULL)
		inside(r->etag, r->etag_len, buf, len);
	else if (r->etag_len != 0)
		abort();
	if (r->vary == NULL) {
		if (r->vary_len != 0)
			abort();
	} else if (r->vary >= buf && r->vary < buf + len) {
		inside(r->vary, r->vary_len, buf, len);
	} else if (r->vary_len > 4096) {
		abort();    /* a joined copy is at most 4 KiB; larger reads as "*" */
	}
}

static void check_vary(const struct moat_cache_resp *r, enum moat_cache_storable st)
{
	char out[1024], again[1024], small[16];
	int n, m, k;

	n = moat_cache_vary_key(r->vary, r->vary_len, req_fields, NREQ, out, sizeof(out));
	m = moat_cache_vary_key(r->vary, r->vary_len, req_fields, NREQ, again, sizeof(again));
	if (n != m)
		abort();
	if (r->vary == NULL && n != 0)
		abort();
	if (n >= 0) {
		if ((size_t)n > sizeof(out) || memcmp(out, again, (size_t)n) != 0 || (n > 0 && out[n - 1] != '\n'))
			abort();
	} else if (n != MOAT_CACHE_EVARY && n != MOAT_CACHE_ENOSPC) {
		abort();
	}
	if (st == MOAT_CACHE_STORE_VARY_STAR && n != MOAT_CACHE_EVARY)
		abort();
	if (st == MOAT_CACHE_STORE_OK && n == MOAT_CACHE_EVARY)
		abort();
	k = moat_cache_vary_key(r->vary, r->vary_len, req_fields, NREQ, small, sizeof(small));
	if (n == MOAT_CACHE_EVARY && k != n)
		abort();
	if (n >= 0 && (size_t)n <= sizeof(small) && (k != n || memcmp(small, out, (size_t)n) != 0))
		abort();
	if (n >= 0 && (size_t)n > sizeof(small) && k != MOAT_CACHE_ENOSPC)
		abort();
}

static void check_usable(const struct moat_cache_cfg *cfg, const struct moat_cache_req *req,
			 const struct moat_cache_resp *r)
{
	static const int64_t later[] = { 0, 1, 59, 61, 3600, 86400 * 2, 86400 * 400, (int64_t)1 << 32 };
	unsigned rf = r->cc.flags;
	int64_t life = moat_cache_freshness_lifetime(cfg, r, NULL);

	if (life < 0 || life > (int64_t)MOAT_CC_DELTA_MAX)
		abort();
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		for (int failed = 0; failed <= 1; failed++) {
			struct moat_cache_verdict v;
			int64_t now = r->response_time + later[i];
			enum moat_cache_use use = moat_cache_usable(cfg, req, r, now, failed, &v);
			int64_t age = moat_cache_current_age(r, now);
			int stale_use = use == MOAT_CACHE_USE_STALE || use == MOAT_CACHE_USE_STALE_REFRESH ||
					use == MOAT_CACHE_USE_STALE_ERROR;

			if (use != v.use || v.age != age || v.lifetime != life || v.ttl != life - age)
				abort();
			if (age < 0 || age > (int64_t)MOAT_CC_DELTA_MAX)
				abort();
			if (use == MOAT_CACHE_USE_FRESH && life <= age)
				abort();
			if (use == MOAT_CACHE_USE_STALE_ERROR && !failed)
				abort();
			if (use == MOAT_CACHE_USE_ONLY_IF_CACHED &&
			    (failed || !(req->cc.flags & MOAT_CC_ONLY_IF_CACHED)))
				abort();
			if (stale_use &&
			    (life > age || (rf & (MOAT_CC_NO_CACHE | MOAT_CC_MUST_REVALIDATE | MOAT_CC_PROXY_REVALIDATE))))
				abort();
			if (use == MOAT_CACHE_USE_FRESH && (rf & MOAT_CC_NO_CACHE))
				abort();
		}
	}
}

static void check_conditionals(const struct moat_cache_resp *r)
{
	static const char inm[] = "\"v1\", W/\"v2\"";
	static const char ims[] = "Tue, 14 Nov 2023 22:13:20 GMT";
	static const char range[] = "bytes=100-";
	uint64_t first = 0, last = 0;
	enum moat_cache_range res;

	if ((unsigned)moat_cache_not_modified(r, inm, sizeof(inm) - 1, NULL, 0) > 1 ||
	    (unsigned)moat_cache_not_modified(r, NULL, 0, ims, sizeof(ims) - 1) > 1)
		abort();
	/* If-Range with the stored ETag itself, and with its date. */
	res = moat_cache_range(range, sizeof(range) - 1, r->etag, r->etag_len, r, 1000, &first, &last);
	if (res == MOAT_CACHE_RANGE_PARTIAL && (first != 100 || last != 999))
		abort();
	res = moat_cache_range(range, sizeof(range) - 1, ims, sizeof(ims) - 1, r, 50, &first, &last);
	if (res == MOAT_CACHE_RANGE_PARTIAL)
		abort();    /* 100- of 50 bytes cannot be satisfied */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_cache_resp r, r2;
	struct moat_cache_cfg cfg;
	struct moat_cache_req req;
	enum moat_cache_storable st;
	char *buf = malloc(size ? size : 1);
	int rc;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	rc = moat_cache_parse_head(buf, size, &r);
	if (rc != 0) {
		if (rc != -1)
			abort();
		free(buf);
		return 0;
	}
	check_resp(&r, buf, size);
	if (moat_cache_parse_head(buf, size, &r2) != 0 || memcmp(&r, &r2, sizeof(r)) != 0)
		abort();
	if (moat_cache_parse_head(buf, size - 1, &r2) != -1)
		abort();
	/* The last parse may have reused the thread's Vary buffer: again. */
	if (moat_cache_parse_head(buf, size, &r) != 0)
		abort();

	moat_cache_cfg_default(&cfg);
	cfg.allow_set_cookie = (size & 1) != 0;
	cfg.default_ttl = size & 2 ? 60 : 0;
	memset(&req, 0, sizeof(req));
	req.method = size % 7 == 3 ? "HEAD" : "GET";
	req.method_len = strlen(req.method);
	moat_cc_init(&req.cc);
	{
		const char *c = req_cc[(size >> 2) % (sizeof(req_cc) / sizeof(req_cc[0]))];

		(void)moat_cc_parse(c, strlen(c), &req.cc);
	}
	req.has_authorization = size % 5 == 0;
	/* As the store sets them: when the request went out and the head came. */
	r.response_time = r.date >= 0 && r.date < ((int64_t)1 << 40) ? r.date : BASE;
	r.request_time = r.response_time - (int64_t)(size % 3);

	st = moat_cache_storable(&cfg, &req, &r);
	if ((unsigned)st > MOAT_CACHE_STORE_NO_VALIDATOR || moat_cache_store_text(st) == NULL)
		abort();
	check_vary(&r, st);
	check_usable(&cfg, &req, &r);
	check_conditionals(&r);
	free(buf);
	return 0;
}
