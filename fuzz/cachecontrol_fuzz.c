/*
 * cachecontrol_fuzz.c - libFuzzer target for the Cache-Control parser
 * (moat_cc_parse), with the HTTP-date and Age parsers and the cache policy
 * functions that read bytes from the network (src/mod/cache/policy.h).
 *
 * Input: byte 0 picks what is fuzzed (low 3 bits); the rest, split at
 * '\n', are field values, each in an exactly sized heap copy (so ASan sees
 * any over-read).
 *   0, 6, 7  Cache-Control lines into one struct moat_cc (the default:
 *      most of the corpus). Checked: only known bits; dup within flags;
 *      values <= 2^31; field lists inside the line they came from and
 *      only with their directive; max-stale "any" means 2^31; parsing the
 *      same lines again gives the same struct; then storable / lifetime /
 *      usable on a response with these directives (and the request with
 *      them too): lifetime and age in 0..2^31, a verdict consistent with
 *      them (FRESH only while fresh, ttl = lifetime - age).
 *   1  HTTP-dates: a date that parses formats back to itself.
 *   2  Age values: the result is at most 2^31.
 *   3  Vary (first line) and request fields ("name:value" lines): the key
 *      fits what was asked, is the same for the same input, and ends
 *      with a line feed.
 *   4  Range, If-Range, If-None-Match, If-Modified-Since, ETag (lines 1-5)
 *      against a 1000-byte response: a partial range lies inside it.
 *   5  Location (line 1) against a target "/a/b/c?x=1": what is returned
 *      is NUL-terminated, starts with '/' and has no dot-segments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cachecontrol.h"
#include "mod/cache/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXL 16
#define ALL_BITS 0xffffu

struct lines {
	char *p[MAXL];
	size_t n[MAXL];
	size_t count;
};

static void split(const uint8_t *data, size_t size, struct lines *l)
{
	size_t pos = 1;

	l->count = 0;
	while (pos <= size && l->count < MAXL) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;

		l->p[l->count] = malloc(end - pos ? end - pos : 1);
		if (l->p[l->count] == NULL)
			abort();
		memcpy(l->p[l->count], data + pos, end - pos);
		l->n[l->count] = end - pos;
		l->count++;
		pos = end + 1;
	}
}

static void release(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->p[i]);
}

static int inside(const struct lines *l, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		if (s >= l->p[i] && s + n <= l->p[i] + l->n[i])
			return 1;
	return 0;
}

static void check_cc(const struct lines *l, const struct moat_cc *cc)
{
	if ((cc->flags | cc->invalid | cc->dup) & ~ALL_BITS)
		abort();
	if (cc->dup & ~cc->flags)
		abort();
	if (cc->max_age > MOAT_CC_DELTA_MAX || cc->s_maxage > MOAT_CC_DELTA_MAX || cc->max_stale > MOAT_CC_DELTA_MAX ||
	    cc->min_fresh > MOAT_CC_DELTA_MAX || cc->swr > MOAT_CC_DELTA_MAX || cc->sie > MOAT_CC_DELTA_MAX)
		abort();
	if (cc->max_stale_any && (cc->max_stale != MOAT_CC_DELTA_MAX || !(cc->flags & MOAT_CC_MAX_STALE)))
		abort();
	if (cc->no_cache_fields != NULL &&
	    (!(cc->flags & MOAT_CC_NO_CACHE) || cc->no_cache_fields_len == 0 ||
	     !inside(l, cc->no_cache_fields, cc->no_cache_fields_len)))
		abort();
	if (cc->private_fields != NULL &&
	    (!(cc->flags & MOAT_CC_PRIVATE) || cc->private_fields_len == 0 ||
	     !inside(l, cc->private_fields, cc->private_fields_len)))
		abort();
}

static void fuzz_cc(const struct lines *l, unsigned sel)
{
	struct moat_cc a, b;
	struct moat_cache_cfg cfg;
	struct moat_cache_req req;
	struct moat_cache_resp resp;
	struct moat_cache_verdict v;
	enum moat_cache_use use;
	int64_t life, age, now;
	size_t i;

	moat_cc_init(&a);
	moat_cc_init(&b);
	for (i = 0; i < l->count; i++) {
		int rc = moat_cc_parse(l->p[i], l->n[i], &a);

		if (rc != 0 && rc != MOAT_CC_EBAD)
			abort();
	}
	check_cc(l, &a);
	for (i = 0; i < l->count; i++)
		(void)moat_cc_parse(l->p[i], l->n[i], &b);
	if (memcmp(&a, &b, sizeof a) != 0)
		abort();

	moat_cache_cfg_default(&cfg);
	cfg.default_ttl = sel & 8 ? 60 : 0;
	memset(&req, 0, sizeof req);
	req.method = sel & 16 ? "HEAD" : "GET";
	req.method_len = strlen(req.method);
	req.cc = a;
	req.has_authorization = (sel & 32) != 0;
	memset(&resp, 0, sizeof resp);
	resp.status = sel & 64 ? 302 : 200;
	resp.cc = a;
	resp.date = 1000000;
	resp.expires = sel & 128 ? 1000100 : MOAT_CACHE_TIME_NONE;
	resp.last_modified = 900000;
	resp.age = (int64_t)(sel & 3) * 50 - 1;
	resp.request_time = 999990;
	resp.response_time = 1000000;
	(void)moat_cache_store_text(moat_cache_storable(&cfg, &req, &resp));
	life = moat_cache_freshness_lifetime(&cfg, &resp, NULL);
	if (life < 0 || life > (int64_t)MOAT_CC_DELTA_MAX)
		abort();
	for (now = 1000000; now < 1000000 + 4 * 86400; now += 86400 / 3) {
		int failed;

		for (failed = 0; failed <= 1; failed++) {
			use = moat_cache_usable(&cfg, &req, &resp, now, failed, &v);
			age = moat_cache_current_age(&resp, now);
			if (use != v.use || v.age != age || v.lifetime != life || v.ttl != life - age)
				abort();
			if (age < 0 || age > (int64_t)MOAT_CC_DELTA_MAX)
				abort();
			if (use == MOAT_CACHE_USE_FRESH && life <= age)
				abort();
			if (use == MOAT_CACHE_USE_STALE_ERROR && !failed)
				abort();
			if (use == MOAT_CACHE_USE_ONLY_IF_CACHED && (failed || !(a.flags & MOAT_CC_ONLY_IF_CACHED)))
				abort();
			if ((use == MOAT_CACHE_USE_STALE || use == MOAT_CACHE_USE_STALE_REFRESH ||
			     use == MOAT_CACHE_USE_STALE_ERROR) &&
			    (life > age || (a.flags & (MOAT_CC_NO_CACHE | MOAT_CC_MUST_REVALIDATE |
						       MOAT_CC_PROXY_REVALIDATE))))
				abort();
		}
	}
}

static void fuzz_dates(const struct lines *l)
{
	size_t i;

	for (i = 0; i < l->count; i++) {
		int64_t t, back;
		char out[30];
		size_t n;

		if (moat_http_date_parse(l->p[i], l->n[i], &t) != 0)
			continue;
		n = moat_http_date_format(t, out);
		if (n == 0)
			continue; /* 9999-12-31 23:59:60 */
		if (n != 29 || out[29] != '\0' || moat_http_date_parse(out, n, &back) != 0 || back != t)
			abort();
	}
}

static void fuzz_age(const struct lines *l)
{
	size_t i;

	for (i = 0; i < l->count; i++) {
		uint32_t s = 0;

		if (moat_http_age_parse(l->p[i], l->n[i], &s) == 0 && s > MOAT_CC_DELTA_MAX)
			abort();
	}
}

static void fuzz_vary(const struct lines *l, unsigned sel)
{
	struct moat_h1_header h[MAXL];
	size_t nh = 0, i, cap = sel & 8 ? 16 : 512;
	char out[512], again[512];
	int n, m;

	if (l->count == 0)
		return;
	for (i = 1; i < l->count; i++) {
		const char *colon = memchr(l->p[i], ':', l->n[i]);
		size_t nl = colon ? (size_t)(colon - l->p[i]) : l->n[i];

		h[nh].name = l->p[i];
		h[nh].name_len = nl;
		h[nh].value = colon ? colon + 1 : l->p[i] + nl;
		h[nh].value_len = colon ? l->n[i] - nl - 1 : 0;
		nh++;
	}
	n = moat_cache_vary_key(l->p[0], l->n[0], h, nh, out, cap);
	m = moat_cache_vary_key(l->p[0], l->n[0], h, nh, again, cap);
	if (n != m)
		abort();
	if (n >= 0) {
		if ((size_t)n > cap || memcmp(out, again, (size_t)n) != 0 || (n > 0 && out[n - 1] != '\n'))
			abort();
	} else if (n != MOAT_CACHE_EVARY && n != MOAT_CACHE_ENOSPC) {
		abort();
	}
}

static const char *line(const struct lines *l, size_t i, size_t *n)
{
	if (i >= l->count) {
		*n = 0;
		return NULL;
	}
	*n = l->n[i];
	return l->p[i];
}

static void fuzz_conditional(const struct lines *l, unsigned sel)
{
	struct moat_cache_resp r;
	const char *range, *ifr, *inm, *ims;
	size_t rn, ifn, inmn, imsn;
	uint64_t first = 0, last = 0, len = sel & 8 ? 0 : 1000;
	enum moat_cache_range res;

	memset(&r, 0, sizeof r);
	r.status = 200;
	r.date = 1704844800 + 3600;
	r.last_modified = sel & 16 ? 1704844800 : MOAT_CACHE_TIME_NONE;
	r.expires = MOAT_CACHE_TIME_NONE;
	r.age = -1;
	r.etag = line(l, 4, &r.etag_len);
	range = line(l, 0, &rn);
	ifr = line(l, 1, &ifn);
	inm = line(l, 2, &inmn);
	ims = line(l, 3, &imsn);
	res = moat_cache_range(range, rn, ifr, ifn, &r, len, &first, &last);
	if (res == MOAT_CACHE_RANGE_PARTIAL && (first > last || last >= len))
		abort();
	if (res != MOAT_CACHE_RANGE_FULL && range == NULL)
		abort();
	if ((unsigned)moat_cache_not_modified(&r, sel & 32 ? NULL : inm, inmn, ims, imsn) > 1)
		abort();
}

static void fuzz_location(const struct lines *l, unsigned sel)
{
	struct moat_cache_target t;
	char out[256];
	size_t i, cap = sel & 8 ? 8 : sizeof out;
	int n;

	if (l->count == 0)
		return;
	t.scheme = sel & 16 ? "https" : "http";
	t.scheme_len = strlen(t.scheme);
	t.authority = "example.com";
	t.authority_len = 11;
	t.path = "/a/b/c?x=1";
	t.path_len = 10;
	n = moat_cache_invalidate_ref(&t, l->p[0], l->n[0], out, cap);
	if (n < 0) {
		if (n != MOAT_CACHE_EORIGIN && n != MOAT_CACHE_ENOSPC)
			abort();
		return;
	}
	if ((size_t)n >= cap || out[n] != '\0' || n == 0 || out[0] != '/' || strlen(out) != (size_t)n)
		abort();
	for (i = 0; i < (size_t)n && out[i] != '?'; i++) {
		/* no "/./" or "/../" (nor at the end) left in the path */
		if (out[i] == '/' && i + 1 < (size_t)n && out[i + 1] == '.') {
			size_t j = i + 2;

			if (j < (size_t)n && out[j] == '.')
				j++;
			if (j == (size_t)n || out[j] == '/' || out[j] == '?')
				abort();
		}
	}
	(void)moat_cache_invalidates(l->p[0], l->n[0], 200);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lines l;
	unsigned sel;

	if (size == 0)
		return 0;
	sel = data[0];
	split(data, size, &l);
	switch (sel & 7) {
	case 1: fuzz_dates(&l); break;
	case 2: fuzz_age(&l); break;
	case 3: fuzz_vary(&l, sel); break;
	case 4: fuzz_conditional(&l, sel); break;
	case 5: fuzz_location(&l, sel); break;
	default: fuzz_cc(&l, sel); break;
	}
	release(&l);
	return 0;
}
