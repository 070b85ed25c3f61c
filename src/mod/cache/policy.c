/*
 * policy.c - shared-cache decisions (see policy.h for each contract).
 *
 * The lookup path, as the cache module drives it:
 *
 *   request --vary_key--> variant --usable(now, OK)--> FRESH / STALE /
 *        STALE_REFRESH: serve (not_modified, range on the way out)
 *        REVALIDATE: forward --fails--> usable(now, FAILED) --> STALE_ERROR
 *                                 or the error
 *        ONLY_IF_CACHED: 504
 *
 * and the fill path: answer --storable--> store with request_time /
 * response_time; freshness_lifetime / current_age give ttl and Age.
 */
#include "mod/cache/policy.h"

#include <string.h>

#define DMAX ((int64_t)MOAT_CC_DELTA_MAX)

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_tchar(char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive equality of s[0..n) and the lowercase literal lit. */
static int ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower(s[i]) != lit[i])
			return 0;
	return 1;
}

static int ieq2(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return 0;
	for (i = 0; i < an; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

static int time_ok(int64_t t)
{
	return t != MOAT_CACHE_TIME_NONE && t != MOAT_CACHE_TIME_INVALID;
}

static int64_t clamp(int64_t v)
{
	return v < 0 ? 0 : v > DMAX ? DMAX : v;
}

/* a - b without overflow, clamped to [-DMAX, DMAX]. */
static int64_t diff(int64_t a, int64_t b)
{
	if (b > 0 && a < INT64_MIN + b)
		return -DMAX;
	if (b < 0 && a > INT64_MAX + b)
		return DMAX;
	a -= b;
	return a < -DMAX ? -DMAX : a > DMAX ? DMAX : a;
}

static int method_is(const struct moat_cache_req *req, const char *m)
{
	size_t n = strlen(m);

	return req->method != NULL && req->method_len == n && memcmp(req->method, m, n) == 0;
}

static int heuristic_status(int s)
{
	switch (s) {
	case 200: case 203: case 204: case 300: case 301: case 308:
	case 404: case 405: case 410: case 414: case 501:
		return 1;
	default:
		return 0;
	}
}

static int understood_status(int s)
{
	switch (s) {
	case 302: case 303: case 307: case 451:
		return 1;
	default:
		return heuristic_status(s);
	}
}

/* ---- Vary members ---------------------------------------------------------- */

/* Iterates over list members: *pos in, member span out; 0 at the end. */
static int next_member(const char *v, size_t len, size_t *pos, const char **m, size_t *mn)
{
	size_t i = *pos, e;

	for (;;) {
		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		if (i >= len) {
			*pos = len;
			return 0;
		}
		e = i;
		while (e < len && v[e] != ',')
			e++;
		*pos = e;
		while (e > i && is_ows(v[e - 1]))
			e--;
		*m = v + i;
		*mn = e - i;
		return 1;
	}
}

static int token_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar(s[i]))
			return 0;
	return 1;
}

/* 1 when Vary holds "*" or a member that is not a field name. */
static int vary_never(const char *vary, size_t len)
{
	size_t pos = 0, mn, n = 0;
	const char *m;

	while (next_member(vary, len, &pos, &m, &mn))
		if ((mn == 1 && m[0] == '*') || !token_ok(m, mn) || ++n > MOAT_CACHE_VARY_MAX)
			return 1;
	return 0;
}

/* ---- storing ----------------------------------------------------------------- */

void moat_cache_cfg_default(struct moat_cache_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->allow_set_cookie = 0;
	cfg->honour_client_no_cache = 1;
	cfg->honour_client_max_age = 1;
	cfg->heuristic_percent = MOAT_CACHE_HEURISTIC_PERCENT;
	cfg->heuristic_max = MOAT_CACHE_HEURISTIC_MAX;
	cfg->default_ttl = MOAT_CACHE_DEFAULT_TTL;
}

static int has_explicit_freshness(const struct moat_cache_resp *r)
{
	return (r->cc.flags & (MOAT_CC_S_MAXAGE | MOAT_CC_MAX_AGE)) != 0 || r->expires != MOAT_CACHE_TIME_NONE;
}

static int heuristically_cacheable(const struct moat_cache_resp *r)
{
	return heuristic_status(r->status) || (r->cc.flags & MOAT_CC_PUBLIC) != 0;
}

static int has_validator(const struct moat_cache_resp *r)
{
	return r->etag != NULL || time_ok(r->last_modified);
}

enum moat_cache_storable moat_cache_storable(const struct moat_cache_cfg *cfg, const struct moat_cache_req *req,
					  const struct moat_cache_resp *resp)
{
	unsigned rf = resp->cc.flags;
	int64_t life;

	if (!method_is(req, "GET") && !method_is(req, "HEAD"))
		return MOAT_CACHE_STORE_METHOD;
	if (resp->status < 200 || resp->status > 599 || resp->status == 304)
		return MOAT_CACHE_STORE_STATUS;
	if (resp->status == 206)
		return MOAT_CACHE_STORE_PARTIAL;
	if (rf & MOAT_CC_MUST_UNDERSTAND) {
		if (!understood_status(resp->status))
			return MOAT_CACHE_STORE_MUST_UNDERSTAND;
		rf &= ~MOAT_CC_NO_STORE; /* §5.2.2.3 */
	}
	if (rf & MOAT_CC_NO_STORE)
		return MOAT_CACHE_STORE_NO_STORE;
	if (req->cc.flags & MOAT_CC_NO_STORE)
		return MOAT_CACHE_STORE_REQ_NO_STORE;
	if (rf & MOAT_CC_PRIVATE)
		return MOAT_CACHE_STORE_PRIVATE;
	if (req->has_authorization && !(rf & (MOAT_CC_PUBLIC | MOAT_CC_S_MAXAGE | MOAT_CC_MUST_REVALIDATE)))
		return MOAT_CACHE_STORE_AUTHORIZATION;
	if (resp->has_set_cookie && !cfg->allow_set_cookie)
		return MOAT_CACHE_STORE_SET_COOKIE;
	if (resp->vary != NULL && vary_never(resp->vary, resp->vary_len))
		return MOAT_CACHE_STORE_VARY_STAR;
	if (!has_explicit_freshness(resp) && !heuristically_cacheable(resp))
		return MOAT_CACHE_STORE_NOT_CACHEABLE;
	if (!has_validator(resp)) {
		life = moat_cache_freshness_lifetime(cfg, resp, NULL);
		if ((rf & MOAT_CC_NO_CACHE) || (life == 0 && !(rf & (MOAT_CC_SWR | MOAT_CC_SIE))))
			return MOAT_CACHE_STORE_NO_VALIDATOR;
	}
	return MOAT_CACHE_STORE_OK;
}

const char *moat_cache_store_text(enum moat_cache_storable r)
{
	switch (r) {
	case MOAT_CACHE_STORE_OK: return "stored";
	case MOAT_CACHE_STORE_METHOD: return "method";
	case MOAT_CACHE_STORE_STATUS: return "status";
	case MOAT_CACHE_STORE_PARTIAL: return "partial";
	case MOAT_CACHE_STORE_MUST_UNDERSTAND: return "must-understand";
	case MOAT_CACHE_STORE_NO_STORE: return "no-store";
	case MOAT_CACHE_STORE_REQ_NO_STORE: return "request-no-store";
	case MOAT_CACHE_STORE_PRIVATE: return "private";
	case MOAT_CACHE_STORE_AUTHORIZATION: return "authorization";
	case MOAT_CACHE_STORE_SET_COOKIE: return "set-cookie";
	case MOAT_CACHE_STORE_VARY_STAR: return "vary-star";
	case MOAT_CACHE_STORE_NOT_CACHEABLE: return "not-cacheable";
	case MOAT_CACHE_STORE_NO_VALIDATOR: return "no-validator";
	}
	return "unknown";
}

/* ---- freshness and age ------------------------------------------------------ */

static int64_t date_value(const struct moat_cache_resp *r)
{
	return time_ok(r->date) ? r->date : r->response_time;
}

int64_t moat_cache_freshness_lifetime(const struct moat_cache_cfg *cfg, const struct moat_cache_resp *resp,
				      int *heuristic)
{
	int64_t date, span, life;

	if (heuristic != NULL)
		*heuristic = 0;
	if (resp->cc.flags & MOAT_CC_S_MAXAGE)
		return resp->cc.s_maxage;
	if (resp->cc.flags & MOAT_CC_MAX_AGE)
		return resp->cc.max_age;
	if (resp->expires != MOAT_CACHE_TIME_NONE) {
		if (resp->expires == MOAT_CACHE_TIME_INVALID)
			return 0;
		return clamp(diff(resp->expires, date_value(resp)));
	}
	if (!heuristically_cacheable(resp))
		return 0;
	if (heuristic != NULL)
		*heuristic = 1;
	date = date_value(resp);
	if (time_ok(resp->last_modified) && resp->last_modified <= date) {
		span = clamp(diff(date, resp->last_modified));
		life = span / 100 * (int64_t)cfg->heuristic_percent +
		       span % 100 * (int64_t)cfg->heuristic_percent / 100;
		if (life > cfg->heuristic_max)
			life = cfg->heuristic_max;
		return clamp(life);
	}
	return clamp(cfg->default_ttl);
}

int64_t moat_cache_current_age(const struct moat_cache_resp *resp, int64_t now)
{
	int64_t age_value = resp->age > 0 ? clamp(resp->age) : 0;
	int64_t apparent_age = clamp(diff(resp->response_time, date_value(resp)));
	int64_t response_delay = clamp(diff(resp->response_time, resp->request_time));
	int64_t corrected_age_value = clamp(age_value + response_delay);
	int64_t corrected_initial_age = apparent_age > corrected_age_value ? apparent_age : corrected_age_value;
	int64_t resident_time = clamp(diff(now, resp->response_time));

	return clamp(corrected_initial_age + resident_time);
}

/* ---- reuse --------------------------------------------------------------------- */

const char *moat_cache_fwd_text(enum moat_cache_fwd f)
{
	switch (f) {
	case MOAT_CACHE_FWD_NONE: return "";
	case MOAT_CACHE_FWD_BYPASS: return "bypass";
	case MOAT_CACHE_FWD_METHOD: return "method";
	case MOAT_CACHE_FWD_URI_MISS: return "uri-miss";
	case MOAT_CACHE_FWD_VARY_MISS: return "vary-miss";
	case MOAT_CACHE_FWD_MISS: return "miss";
	case MOAT_CACHE_FWD_REQUEST: return "request";
	case MOAT_CACHE_FWD_STALE: return "stale";
	case MOAT_CACHE_FWD_PARTIAL: return "partial";
	}
	return "miss";
}

static enum moat_cache_use verdict(struct moat_cache_verdict *v, enum moat_cache_use use, enum moat_cache_fwd fwd,
				   const char *detail)
{
	v->use = use;
	v->fwd = fwd;
	v->detail = detail;
	return use;
}

/* The stored response cannot be used for this lookup: forward, unless the
 * client asked for cached answers only. */
static enum moat_cache_use forward(struct moat_cache_verdict *v, const struct moat_cache_req *req,
				   enum moat_cache_fwd fwd, const char *detail)
{
	if (req->cc.flags & MOAT_CC_ONLY_IF_CACHED)
		return verdict(v, MOAT_CACHE_USE_ONLY_IF_CACHED, fwd, detail);
	return verdict(v, MOAT_CACHE_USE_REVALIDATE, fwd, detail);
}

enum moat_cache_use moat_cache_usable(const struct moat_cache_cfg *cfg, const struct moat_cache_req *req,
				      const struct moat_cache_resp *stored, int64_t now, int backend_failed,
				      struct moat_cache_verdict *v)
{
	const struct moat_cc *rc = &req->cc, *sc = &stored->cc;
	int64_t age = moat_cache_current_age(stored, now);
	int64_t life = moat_cache_freshness_lifetime(cfg, stored, NULL);
	int fresh = life > age;
	int64_t staleness = age - life; /* >= 0 when stale */
	enum moat_cache_fwd why = fresh ? MOAT_CACHE_FWD_REQUEST : MOAT_CACHE_FWD_STALE;
	int client_stale_ok;

	v->age = age;
	v->lifetime = life;
	v->ttl = life - age;
	v->fwd = MOAT_CACHE_FWD_NONE;
	v->detail = NULL;

	if (!method_is(req, "GET") && !method_is(req, "HEAD"))
		return verdict(v, MOAT_CACHE_USE_REVALIDATE, MOAT_CACHE_FWD_METHOD, "method");
	if (sc->flags & MOAT_CC_NO_CACHE) {
		if (backend_failed)
			return verdict(v, MOAT_CACHE_USE_REVALIDATE, MOAT_CACHE_FWD_STALE, "no-cache");
		return forward(v, req, MOAT_CACHE_FWD_STALE, "no-cache");
	}
	if (!backend_failed) {
		if (cfg->honour_client_no_cache && (rc->flags & MOAT_CC_NO_CACHE))
			return forward(v, req, why, "request-no-cache");
		if (cfg->honour_client_max_age && !(fresh && (sc->flags & MOAT_CC_IMMUTABLE))) {
			if ((rc->flags & MOAT_CC_MAX_AGE) && age > (int64_t)rc->max_age)
				return forward(v, req, why, "request-max-age");
			if ((rc->flags & MOAT_CC_MIN_FRESH) && life - age < (int64_t)rc->min_fresh)
				return forward(v, req, why, "request-min-fresh");
		}
	}
	if (fresh)
		return verdict(v, MOAT_CACHE_USE_FRESH, MOAT_CACHE_FWD_NONE, NULL);

	if (sc->flags & MOAT_CC_MUST_REVALIDATE) {
		if (backend_failed)
			return verdict(v, MOAT_CACHE_USE_REVALIDATE, MOAT_CACHE_FWD_STALE, "must-revalidate");
		return forward(v, req, MOAT_CACHE_FWD_STALE, "must-revalidate");
	}
	if (sc->flags & MOAT_CC_PROXY_REVALIDATE) {
		if (backend_failed)
			return verdict(v, MOAT_CACHE_USE_REVALIDATE, MOAT_CACHE_FWD_STALE, "proxy-revalidate");
		return forward(v, req, MOAT_CACHE_FWD_STALE, "proxy-revalidate");
	}
	client_stale_ok = (rc->flags & MOAT_CC_MAX_STALE) && !(sc->flags & MOAT_CC_S_MAXAGE) &&
			  staleness <= (int64_t)rc->max_stale;
	if (backend_failed) {
		const struct moat_cc *w = (rc->flags & MOAT_CC_SIE) ? rc : (sc->flags & MOAT_CC_SIE) ? sc : NULL;

		if (w != NULL && staleness <= (int64_t)w->sie)
			return verdict(v, MOAT_CACHE_USE_STALE_ERROR, MOAT_CACHE_FWD_STALE, "stale-if-error");
		if (client_stale_ok)
			return verdict(v, MOAT_CACHE_USE_STALE, MOAT_CACHE_FWD_NONE, "max-stale");
		return verdict(v, MOAT_CACHE_USE_REVALIDATE, MOAT_CACHE_FWD_STALE, NULL);
	}
	if (client_stale_ok)
		return verdict(v, MOAT_CACHE_USE_STALE, MOAT_CACHE_FWD_NONE, "max-stale");
	if ((sc->flags & MOAT_CC_SWR) && staleness <= (int64_t)sc->swr)
		return verdict(v, MOAT_CACHE_USE_STALE_REFRESH, MOAT_CACHE_FWD_NONE, "stale-while-revalidate");
	return forward(v, req, MOAT_CACHE_FWD_STALE, NULL);
}

/* ---- Vary key ------------------------------------------------------------------ */

struct out {
	char *p;
	size_t cap, len;
	int full;
};

static void put(struct out *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len++] = c;
	else
		o->full = 1;
}

static void puts_n(struct out *o, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		put(o, s[i]);
}

/* Whitespace folding state, carried from one field line to the next. */
struct fold {
	int start;   /* nothing written yet, or just a ',' */
	int space;   /* a whitespace run is pending */
};

static void fold_line(struct out *o, struct fold *f, const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = v[i];

		if (is_ows(c)) {
			f->space = 1;
			i++;
			continue;
		}
		if (c == ',') {
			put(o, ',');
			f->start = 1;
			f->space = 0;
			i++;
			continue;
		}
		if (f->space && !f->start)
			put(o, ' ');
		f->space = 0;
		f->start = 0;
		if (c == '"') { /* a quoted string, copied whole */
			put(o, c);
			i++;
			while (i < n && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < n)
					put(o, v[i++]);
				put(o, v[i++]);
			}
			if (i < n)
				put(o, v[i++]);
			continue;
		}
		put(o, c);
		i++;
	}
}

/* Accept-Encoding codings that can select a variant, in output order. */
enum { AE_BR, AE_GZIP, AE_IDENTITY, AE_ZSTD, AE_STAR, AE_N };
static const char *const ae_name[AE_N] = { "br", "gzip", "identity", "zstd", "*" };

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): 1 for q > 0,
 * 0 for q = 0, -1 when malformed. */
static int qvalue(const char *s, size_t n)
{
	size_t i;
	int nonzero = 0;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	if (n > 1 && (s[1] != '.' || n > 5))
		return -1;
	for (i = 2; i < n; i++) {
		if (!is_digit(s[i]) || (s[0] == '1' && s[i] != '0'))
			return -1;
		nonzero |= s[i] != '0';
	}
	return s[0] == '1' || nonzero;
}

/* One Accept-Encoding element: records its coding's q in st (first mention wins). */
static void ae_element(const char *e, size_t n, int st[AE_N])
{
	size_t i = 0, nl;
	const char *name = e;
	int q = 1, k;

	while (i < n && is_tchar(e[i]))
		i++;
	nl = i;
	if (nl == 0)
		return;
	while (i < n) { /* parameters: OWS ";" OWS name "=" value */
		size_t ps, pn, vs;

		while (i < n && is_ows(e[i]))
			i++;
		if (i >= n)
			break;
		if (e[i] != ';')
			return; /* malformed: ignored */
		i++;
		while (i < n && is_ows(e[i]))
			i++;
		ps = i;
		while (i < n && is_tchar(e[i]))
			i++;
		pn = i - ps;
		if (pn == 0 || i >= n || e[i] != '=')
			return;
		vs = ++i;
		while (i < n && is_tchar(e[i]))
			i++;
		if (ieq(e + ps, pn, "q")) {
			q = qvalue(e + vs, i - vs);
			if (q < 0)
				return;
		}
	}
	if (ieq(name, nl, "x-gzip"))
		k = AE_GZIP;
	else
		for (k = 0; k < AE_N && !ieq(name, nl, ae_name[k]); k++)
			;
	if (k < AE_N && st[k] < 0)
		st[k] = q;
}

static void ae_line(const char *v, size_t n, int st[AE_N])
{
	size_t pos = 0, mn;
	const char *m;

	while (next_member(v, n, &pos, &m, &mn))
		ae_element(m, mn, st);
}

static void ae_write(struct out *o, const int st[AE_N])
{
	int k, first = 1;

	for (k = 0; k < AE_STAR; k++) {
		int ok = st[k] == 1 || (st[k] < 0 && (k == AE_IDENTITY ? st[AE_STAR] != 0 : st[AE_STAR] == 1));

		if (!ok)
			continue;
		if (!first)
			put(o, ',');
		puts_n(o, ae_name[k], strlen(ae_name[k]));
		first = 0;
	}
}

int moat_cache_vary_key(const char *vary, size_t vary_len, const struct moat_h1_header *hdrs, size_t nhdrs,
			char *out, size_t cap)
{
	struct out o = { out, cap, 0, 0 };
	size_t pos = 0, mn, i;
	const char *m;

	if (vary == NULL)
		return 0;
	if (vary_never(vary, vary_len))
		return MOAT_CACHE_EVARY;
	while (next_member(vary, vary_len, &pos, &m, &mn)) {
		size_t p2 = 0, m2n, found = 0;
		const char *m2;
		int dup = 0, ae = ieq(m, mn, "accept-encoding");
		int st[AE_N] = { -1, -1, -1, -1, -1 };
		struct fold f = { 1, 0 };

		/* the first occurrence of a name only */
		while (next_member(vary, vary_len, &p2, &m2, &m2n) && m2 < m)
			if (ieq2(m, mn, m2, m2n))
				dup = 1;
		if (dup)
			continue;
		for (i = 0; i < mn; i++)
			put(&o, lower(m[i]));
		for (i = 0; i < nhdrs; i++) {
			if (!ieq2(hdrs[i].name, hdrs[i].name_len, m, mn))
				continue;
			if (found == 0)
				put(&o, ':');
			if (ae) {
				ae_line(hdrs[i].value, hdrs[i].value_len, st);
			} else {
				if (found > 0) {
					put(&o, ',');
					f.start = 1;
					f.space = 0;
				}
				fold_line(&o, &f, hdrs[i].value, hdrs[i].value_len);
			}
			found++;
		}
		if (found > 0 && ae)
			ae_write(&o, st);
		put(&o, '\n');
	}
	if (o.full)
		return MOAT_CACHE_ENOSPC;
	return (int)o.len;
}

/* ---- conditional requests -------------------------------------------------- */

/*
 * entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E /
 * obs-text. Reads one at s[0..n) from *pos; sets the opaque tag (quotes
 * included) and weakness; returns 0, or -1 when malformed.
 */
static int etag_at(const char *s, size_t n, size_t *pos, const char **tag, size_t *tn, int *weak)
{
	size_t i = *pos, st;

	*weak = 0;
	if (i + 1 < n && s[i] == 'W' && s[i + 1] == '/') {
		*weak = 1;
		i += 2;
	}
	if (i >= n || s[i] != '"')
		return -1;
	st = i++;
	while (i < n && s[i] != '"') {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c == 0x7f)
			return -1;
		i++;
	}
	if (i >= n)
		return -1;
	i++;
	*tag = s + st;
	*tn = i - st;
	*pos = i;
	return 0;
}

/* A whole field value that is exactly one entity-tag (OWS around). */
static int etag_whole(const char *s, size_t n, const char **tag, size_t *tn, int *weak)
{
	size_t i = 0;

	while (i < n && is_ows(s[i]))
		i++;
	if (etag_at(s, n, &i, tag, tn, weak) != 0)
		return -1;
	while (i < n && is_ows(s[i]))
		i++;
	return i == n ? 0 : -1;
}

/* If-None-Match against the stored tag: 1 when it matches (weakly). */
static int inm_matches(const char *v, size_t n, const char *st, size_t stn)
{
	size_t i = 0;
	int matched = 0, any = 0;

	while (i < n && is_ows(v[i]))
		i++;
	if (i < n && v[i] == '*') {
		i++;
		while (i < n && is_ows(v[i]))
			i++;
		return i == n; /* "*" alone; anything else is malformed */
	}
	while (i < n) {
		const char *tag;
		size_t tn;
		int weak;

		if (v[i] == ',' || is_ows(v[i])) {
			i++;
			continue;
		}
		if (etag_at(v, n, &i, &tag, &tn, &weak) != 0)
			return 0;
		any = 1;
		if (st != NULL && tn == stn && memcmp(tag, st, tn) == 0)
			matched = 1;
		while (i < n && is_ows(v[i]))
			i++;
		if (i < n && v[i] != ',')
			return 0;
	}
	return any && matched;
}

int moat_cache_not_modified(const struct moat_cache_resp *stored, const char *inm, size_t inm_len,
			    const char *ims, size_t ims_len)
{
	int64_t since, lm;

	if (inm != NULL) {
		const char *st = NULL;
		size_t stn = 0;
		int weak;

		if (stored->etag != NULL && etag_whole(stored->etag, stored->etag_len, &st, &stn, &weak) != 0)
			st = NULL;
		return inm_matches(inm, inm_len, st, stn);
	}
	if (ims == NULL || moat_http_date_parse(ims, ims_len, &since) != 0)
		return 0;
	lm = time_ok(stored->last_modified) ? stored->last_modified : date_value(stored);
	return lm <= since;
}

/* ---- ranges --------------------------------------------------------------------- */

/* 1*DIGIT, saturating at UINT64_MAX. */
static int u64_at(const char *s, size_t n, size_t *pos, uint64_t *out)
{
	size_t i = *pos;
	uint64_t v = 0;

	if (i >= n || !is_digit(s[i]))
		return -1;
	for (; i < n && is_digit(s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	*pos = i;
	*out = v;
	return 0;
}

static int if_range_true(const char *v, size_t n, const struct moat_cache_resp *stored)
{
	const char *tag, *st;
	size_t tn, stn;
	int weak, sweak;
	int64_t t;

	while (n > 0 && is_ows(v[0])) {
		v++;
		n--;
	}
	if (n > 0 && (v[0] == '"' || (n > 1 && v[0] == 'W' && v[1] == '/'))) {
		if (etag_whole(v, n, &tag, &tn, &weak) != 0 || weak || stored->etag == NULL ||
		    etag_whole(stored->etag, stored->etag_len, &st, &stn, &sweak) != 0 || sweak)
			return 0;
		return tn == stn && memcmp(tag, st, tn) == 0;
	}
	if (moat_http_date_parse(v, n, &t) != 0 || !time_ok(stored->last_modified) || !time_ok(stored->date))
		return 0;
	/* a Last-Modified is strong when at least a second before Date */
	return stored->last_modified < stored->date && stored->last_modified == t;
}

enum moat_cache_range moat_cache_range(const char *range, size_t range_len, const char *if_range,
				       size_t if_range_len, const struct moat_cache_resp *stored, uint64_t length,
				       uint64_t *first, uint64_t *last)
{
	size_t i = 0, n = range_len;
	uint64_t a = 0, b = UINT64_MAX;
	int specs = 0, suffix = 0;

	if (range == NULL)
		return MOAT_CACHE_RANGE_FULL;
	while (i < n && is_ows(range[i]))
		i++;
	if (n - i < 6 || !ieq(range + i, 5, "bytes") || range[i + 5] != '=')
		return MOAT_CACHE_RANGE_FULL;
	i += 6;
	while (i < n) {
		if (range[i] == ',' || is_ows(range[i])) {
			i++;
			continue;
		}
		if (++specs > 1)
			return MOAT_CACHE_RANGE_FULL;
		if (range[i] == '-') {
			i++;
			suffix = 1;
			if (u64_at(range, n, &i, &a) != 0)
				return MOAT_CACHE_RANGE_FULL;
		} else {
			if (u64_at(range, n, &i, &a) != 0 || i >= n || range[i] != '-')
				return MOAT_CACHE_RANGE_FULL;
			i++;
			b = UINT64_MAX;
			if (i < n && is_digit(range[i])) {
				if (u64_at(range, n, &i, &b) != 0)
					return MOAT_CACHE_RANGE_FULL;
				if (b < a)
					return MOAT_CACHE_RANGE_FULL;
			}
		}
		while (i < n && is_ows(range[i]))
			i++;
		if (i < n && range[i] != ',')
			return MOAT_CACHE_RANGE_FULL;
	}
	if (specs == 0)
		return MOAT_CACHE_RANGE_FULL;
	if (if_range != NULL && !if_range_true(if_range, if_range_len, stored))
		return MOAT_CACHE_RANGE_FULL;
	if (suffix) {
		if (a == 0)
			return MOAT_CACHE_RANGE_UNSATISFIABLE;
		if (length == 0)
			return MOAT_CACHE_RANGE_FULL;
		*first = a >= length ? 0 : length - a;
		*last = length - 1;
		return MOAT_CACHE_RANGE_PARTIAL;
	}
	if (a >= length)
		return MOAT_CACHE_RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= length ? length - 1 : b;
	return MOAT_CACHE_RANGE_PARTIAL;
}

/* ---- invalidation ----------------------------------------------------------- */

int moat_cache_invalidates(const char *method, size_t method_len, int status)
{
	static const char *const safe[] = { "GET", "HEAD", "OPTIONS", "TRACE" };
	size_t k;

	if (status < 200 || status > 399)
		return 0;
	for (k = 0; k < sizeof safe / sizeof safe[0]; k++)
		if (method_len == strlen(safe[k]) && memcmp(method, safe[k], method_len) == 0)
			return 0;
	return 1;
}

static int default_port(const char *scheme, size_t n)
{
	if (ieq(scheme, n, "http"))
		return 80;
	if (ieq(scheme, n, "https"))
		return 443;
	return -1;
}

/* host[:port] (userinfo@ dropped) -> host span and port (default when absent); -1 when malformed. */
static int authority_split(const char *a, size_t n, int defport, const char **host, size_t *hn, long *port)
{
	size_t i, hs = 0, he;
	const char *at = NULL;

	for (i = 0; i < n; i++)
		if (a[i] == '@')
			at = a + i;
	if (at != NULL)
		hs = (size_t)(at - a) + 1;
	if (hs < n && a[hs] == '[') {
		for (he = hs; he < n && a[he] != ']'; he++)
			;
		if (he >= n)
			return -1;
		he++;
	} else {
		for (he = hs; he < n && a[he] != ':'; he++)
			;
	}
	if (he == hs)
		return -1;
	*host = a + hs;
	*hn = he - hs;
	*port = defport;
	if (he < n) {
		long p = 0;

		if (a[he] != ':')
			return -1;
		for (i = he + 1; i < n; i++) {
			if (!is_digit(a[i]) || p > 65535)
				return -1;
			p = p * 10 + (a[i] - '0');
		}
		if (i > he + 1)
			*port = p;
	}
	return *port < 0 || *port > 65535 ? -1 : 0;
}

static int same_authority(const struct moat_cache_target *t, const char *a, size_t an)
{
	int dp = default_port(t->scheme, t->scheme_len);
	const char *h1, *h2;
	size_t n1, n2;
	long p1, p2;

	if (authority_split(t->authority, t->authority_len, dp, &h1, &n1, &p1) != 0 ||
	    authority_split(a, an, dp, &h2, &n2, &p2) != 0)
		return 0;
	return p1 == p2 && ieq2(h1, n1, h2, n2);
}

/*
 * RFC 3986 §5.2.4 on out[0..n) (a path starting with '/', no query), in
 * place. Returns the new length (at least 1: "/").
 */
static size_t remove_dots(char *p, size_t n)
{
	size_t i = 0, w = 0;

	while (i < n) {
		size_t s = i + 1, e = s, k;

		while (e < n && p[e] != '/')
			e++;
		if (e - s == 1 && p[s] == '.') {
			if (e == n)
				p[w++] = '/';
		} else if (e - s == 2 && p[s] == '.' && p[s + 1] == '.') {
			while (w > 0 && p[w - 1] != '/')
				w--;
			if (w > 0)
				w--; /* the '/' before the popped segment */
			if (e == n)
				p[w++] = '/';
		} else {
			for (k = i; k < e; k++)
				p[w++] = p[k]; /* w <= k: the copy never overtakes the read */
		}
		i = e;
	}
	if (w == 0)
		p[w++] = '/';
	return w;
}

int moat_cache_invalidate_ref(const struct moat_cache_target *t, const char *ref, size_t ref_len, char *out,
			      size_t cap)
{
	size_t n = ref_len, i, plen, qs, len = 0;
	const char *path;
	const char *tq;
	size_t tpath_len;

	for (i = 0; i < n; i++)
		if (ref[i] == '#')
			n = i;
	while (n > 0 && is_ows(ref[0])) {
		ref++;
		n--;
	}
	while (n > 0 && is_ows(ref[n - 1]))
		n--;
	for (i = 0; i < n; i++)
		if ((unsigned char)ref[i] <= 0x20 || (unsigned char)ref[i] >= 0x7f)
			return MOAT_CACHE_EORIGIN;
	if (t->path_len == 0 || t->path[0] != '/' || default_port(t->scheme, t->scheme_len) < 0)
		return MOAT_CACHE_EORIGIN;
	tq = memchr(t->path, '?', t->path_len);
	tpath_len = tq != NULL ? (size_t)(tq - t->path) : t->path_len;

	/* a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" before any '/', '?' */
	for (i = 0; i < n && (is_alpha(ref[i]) || (i > 0 && (is_digit(ref[i]) || strchr("+-.", ref[i]))));
	     i++)
		;
	if (i > 0 && i < n && ref[i] == ':') {
		if (!ieq2(ref, i, t->scheme, t->scheme_len))
			return MOAT_CACHE_EORIGIN;
		ref += i + 1;
		n -= i + 1;
		if (n < 2 || ref[0] != '/' || ref[1] != '/')
			return MOAT_CACHE_EORIGIN;
	}
	if (n >= 2 && ref[0] == '/' && ref[1] == '/') {
		size_t as = 2, ae = 2;

		while (ae < n && ref[ae] != '/' && ref[ae] != '?')
			ae++;
		if (!same_authority(t, ref + as, ae - as))
			return MOAT_CACHE_EORIGIN;
		ref += ae;
		n -= ae;
		if (n == 0 || ref[0] == '?') { /* empty path: "/" */
			if (cap < 1)
				return MOAT_CACHE_ENOSPC;
			out[len++] = '/';
		}
	} else if (n == 0) { /* same document: the target itself */
		ref = t->path;
		n = t->path_len;
	} else if (ref[0] == '?') { /* the target's path, another query */
		if (tpath_len > cap)
			return MOAT_CACHE_ENOSPC;
		memcpy(out, t->path, tpath_len);
		len = tpath_len;
	} else if (ref[0] != '/') { /* relative path: merged with the target's directory */
		size_t dir = tpath_len;

		while (dir > 0 && t->path[dir - 1] != '/')
			dir--;
		if (dir > cap)
			return MOAT_CACHE_ENOSPC;
		memcpy(out, t->path, dir);
		len = dir;
	}
	if (len + n + 1 > cap)
		return MOAT_CACHE_ENOSPC;
	memcpy(out + len, ref, n);
	len += n;
	path = memchr(out, '?', len);
	qs = path != NULL ? (size_t)(path - out) : len;
	plen = remove_dots(out, qs);
	if (plen < qs)
		memmove(out + plen, out + qs, len - qs);
	len = plen + (len - qs);
	out[len] = '\0';
	return (int)len;
}

/* ---- Cache-Status ------------------------------------------------------------- */

static int sf_token_ok(const char *s)
{
	size_t i;

	if (!is_alpha(s[0]) && s[0] != '*')
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!is_tchar(s[i]) && s[i] != ':' && s[i] != '/')
			return 0;
	return 1;
}

static void put_str(struct out *o, const char *s)
{
	puts_n(o, s, strlen(s));
}

static void put_sf_string(struct out *o, const char *s)
{
	put(o, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(o, '\\');
		put(o, c >= 0x20 && c <= 0x7e ? (char)c : '?');
	}
	put(o, '"');
}

static void put_int(struct out *o, int64_t v)
{
	char b[24];
	size_t n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		b[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		put(o, '-');
	while (n > 0)
		put(o, b[--n]);
}

int moat_cache_status_format(const struct moat_cache_status *st, char *out, size_t cap)
{
	struct out o = { out, cap, 0, 0 };
	const char *name = st->name != NULL && st->name[0] != '\0' ? st->name : "moat";

	if (sf_token_ok(name))
		put_str(&o, name);
	else
		put_sf_string(&o, name);
	if (st->hit)
		put_str(&o, "; hit");
	if (st->fwd != MOAT_CACHE_FWD_NONE) {
		put_str(&o, "; fwd=");
		put_str(&o, moat_cache_fwd_text(st->fwd));
		if (st->fwd_status > 0) {
			put_str(&o, "; fwd-status=");
			put_int(&o, st->fwd_status);
		}
	}
	if (st->has_ttl) {
		put_str(&o, "; ttl=");
		put_int(&o, st->ttl);
	}
	if (st->fwd != MOAT_CACHE_FWD_NONE && st->stored)
		put_str(&o, "; stored");
	if (st->fwd != MOAT_CACHE_FWD_NONE && st->collapsed)
		put_str(&o, "; collapsed");
	if (st->detail != NULL) {
		put_str(&o, "; detail=");
		put_sf_string(&o, st->detail);
	}
	if (o.full || o.len >= cap)
		return MOAT_CACHE_ENOSPC;
	out[o.len] = '\0';
	return (int)o.len;
}
