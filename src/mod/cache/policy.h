/*
 * policy.h - the decisions of moat's shared cache (RFC 9111, RFC 5861,
 * RFC 8246, RFC 9110 §13-14 conditionals and ranges, RFC 9211
 * Cache-Status), as pure functions.
 *
 * Where it sits: the cache module looks a request up (usable, vary_key,
 * not_modified, range), forwards on a miss and decides whether to keep the
 * answer (storable, freshness_lifetime); unsafe requests invalidate
 * (invalidates, invalidate_ref); every answer gets a Cache-Status
 * (status_format). This file decides; it stores nothing: no I/O, no clock
 * (every function that needs the time takes `now`), no globals, no
 * allocation. All functions are thread-safe.
 *
 * Times are int64_t seconds since the Unix epoch. A date field the caller
 * did not find is MOAT_CACHE_TIME_NONE; one it found but could not parse
 * (moat_http_date_parse failed) is MOAT_CACHE_TIME_INVALID. Durations are
 * clamped to 0..MOAT_CC_DELTA_MAX (2^31 s, "infinity", RFC 9111 §1.2.2).
 *
 * moat is a shared cache: s-maxage, private and Authorization are read
 * the way §3, §3.5 and §5.2.2 ask of a shared cache.
 */
#ifndef MOAT_MOD_CACHE_POLICY_H
#define MOAT_MOD_CACHE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "http/cachecontrol.h"
#include "http/h1_parse.h"

#define MOAT_CACHE_TIME_NONE    INT64_MIN       /* field absent */
#define MOAT_CACHE_TIME_INVALID (INT64_MIN + 1) /* field present, not an HTTP-date */

/* Errors of moat_cache_vary_key / moat_cache_invalidate_ref /
 * moat_cache_status_format. */
#define MOAT_CACHE_EVARY  (-5501) /* Vary holds "*" (or a member that is not a field name): never matches */
#define MOAT_CACHE_ENOSPC (-5502) /* the output does not fit */
#define MOAT_CACHE_EORIGIN (-5503) /* the URI is of another origin, or not one moat can read */

/* A Vary naming more fields than this (members, duplicates counted) is
 * read as Vary: * -- never matches, not stored: every lookup computes the
 * variant key, whose cost grows with the square of the members. */
#define MOAT_CACHE_VARY_MAX 32

/* Defaults of struct moat_cache_cfg (the config keys will carry them). */
#define MOAT_CACHE_HEURISTIC_PERCENT 10    /* of (Date - Last-Modified) */
#define MOAT_CACHE_HEURISTIC_MAX     86400 /* cap of a heuristic lifetime, seconds */
#define MOAT_CACHE_DEFAULT_TTL       0     /* heuristic lifetime without Last-Modified */

/* What the operator chose. Owned by the config snapshot; read only here. */
struct moat_cache_cfg {
	int allow_set_cookie;       /* store responses carrying Set-Cookie (they are replayed to everyone) */
	int honour_client_no_cache; /* a request's no-cache forces revalidation */
	int honour_client_max_age;  /* a request's max-age / min-fresh force revalidation */
	unsigned heuristic_percent; /* heuristic lifetime: this % of (Date - Last-Modified) ... */
	int64_t heuristic_max;      /* ... at most this many seconds */
	int64_t default_ttl;        /* heuristic lifetime when there is no usable Last-Modified */
};

/* Fills cfg with the defaults above: Set-Cookie refused, request
 * directives honoured (as RFC 9111 describes them). */
void moat_cache_cfg_default(struct moat_cache_cfg *cfg);

/* The request as the cache sees it. Strings are borrowed from the txn's
 * request head (valid until the txn is logged). */
struct moat_cache_req {
	const char *method;        /* as received, case-sensitive ("GET") */
	size_t method_len;
	struct moat_cc cc;         /* its Cache-Control, every line parsed */
	int has_authorization;     /* an Authorization field is present */
};

/*
 * A response as the cache sees it: the one just received (storable,
 * freshness_lifetime) or the stored one (usable, not_modified, range).
 * For a stored response the strings point into the stored head and live
 * as long as the cache entry.
 */
struct moat_cache_resp {
	int status;
	struct moat_cc cc;         /* its Cache-Control, every line parsed */
	int has_set_cookie;        /* a Set-Cookie field is present */
	int64_t date;              /* Date; TIME_NONE / TIME_INVALID */
	int64_t expires;           /* Expires (first field line); TIME_NONE / TIME_INVALID ("0" too) */
	int64_t last_modified;     /* Last-Modified; TIME_NONE / TIME_INVALID */
	int64_t age;               /* Age (moat_http_age_parse); negative when absent or invalid */
	int64_t request_time;      /* our clock when the request that fetched it was sent */
	int64_t response_time;     /* our clock when its head was received */
	const char *etag;          /* ETag value as received, NULL when absent */
	size_t etag_len;
	const char *vary;          /* Vary, all field lines joined with ',', NULL when absent */
	size_t vary_len;
};

/* Why a response may (not) be stored; each has a short token for the
 * Cache-Status detail (moat_cache_store_text). */
enum moat_cache_storable {
	MOAT_CACHE_STORE_OK = 0,         /* "stored" */
	MOAT_CACHE_STORE_METHOD,         /* "method": request not GET / HEAD */
	MOAT_CACHE_STORE_STATUS,         /* "status": 1xx, 304, or not 200..599 */
	MOAT_CACHE_STORE_PARTIAL,        /* "partial": 206 (only full responses are stored) */
	MOAT_CACHE_STORE_MUST_UNDERSTAND,/* "must-understand": with a status moat does not understand */
	MOAT_CACHE_STORE_NO_STORE,       /* "no-store" in the response */
	MOAT_CACHE_STORE_REQ_NO_STORE,   /* "request-no-store": no-store in the request */
	MOAT_CACHE_STORE_PRIVATE,        /* "private" (qualified or not) */
	MOAT_CACHE_STORE_AUTHORIZATION,  /* "authorization": without public / s-maxage / must-revalidate */
	MOAT_CACHE_STORE_SET_COOKIE,     /* "set-cookie": and cfg->allow_set_cookie is off */
	MOAT_CACHE_STORE_VARY_STAR,      /* "vary-star": Vary: * (or a Vary that is not a list of names) */
	MOAT_CACHE_STORE_NOT_CACHEABLE,  /* "not-cacheable": no explicit freshness, no public, status not
					  * heuristically cacheable */
	MOAT_CACHE_STORE_NO_VALIDATOR,   /* "no-validator": could never be reused without a full fetch
					  * (no ETag / Last-Modified, and no-cache or lifetime 0 with no
					  * stale-while-revalidate / stale-if-error) */
};

/*
 * RFC 9111 §3 for a shared cache: may `resp`, the answer to `req`, be
 * stored? Checks, in this order (the first failing one is returned):
 * method GET or HEAD; status final, 200..599, not 304; not 206; with
 * must-understand, a status moat understands (200 203 204 300 301 302 303
 * 307 308 404 405 410 414 451 501), and then no-store is ignored (§5.2.2.3);
 * no no-store in the response, nor in the request (§5.2.1.5); no private;
 * Authorization in the request only with public, s-maxage or
 * must-revalidate (§3.5); Set-Cookie only when configured; no "*" in Vary;
 * explicit freshness (s-maxage, max-age, Expires, valid or not), public, or
 * a heuristically cacheable status (200 203 204 300 301 308 404 405 410
 * 414 501: RFC 9110 §15.1 less 206); and some way to reuse it (see
 * NO_VALIDATOR). Qualified private / no-cache are read as unqualified (the
 * RFC notes this is the common practice; it is the safe one).
 */
enum moat_cache_storable moat_cache_storable(const struct moat_cache_cfg *cfg, const struct moat_cache_req *req,
					  const struct moat_cache_resp *resp);

/* The token for r ("stored", "no-store", ...); never NULL. */
const char *moat_cache_store_text(enum moat_cache_storable r);

/*
 * RFC 9111 §4.2.1 for a shared cache, first match: s-maxage; max-age;
 * Expires - Date (Date absent or invalid: response_time; Expires invalid:
 * 0, already expired, §5.3); otherwise, when the response is heuristically
 * cacheable (status as in storable, or public), a heuristic (§4.2.2):
 * heuristic_percent of (Date - Last-Modified), at most heuristic_max, or
 * default_ttl when Last-Modified is absent, invalid or after Date. Not
 * heuristically cacheable: 0. Returns seconds in 0..MOAT_CC_DELTA_MAX;
 * *heuristic (may be NULL) says whether the heuristic gave it.
 */
int64_t moat_cache_freshness_lifetime(const struct moat_cache_cfg *cfg, const struct moat_cache_resp *resp,
				      int *heuristic);

/*
 * RFC 9111 §4.2.3, the conservative corrected_initial_age:
 *   apparent_age          = max(0, response_time - date_value)
 *   response_delay        = response_time - request_time
 *   corrected_age_value   = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 *   resident_time         = now - response_time
 *   current_age           = corrected_initial_age + resident_time
 * date_value is Date, or response_time when Date is absent or invalid
 * (RFC 9110 §6.6.1: the recipient dates it on receipt); age_value is Age or
 * 0. A clock that stepped back (negative response_delay or resident_time)
 * counts as 0 rather than making the response younger. Returns seconds in
 * 0..MOAT_CC_DELTA_MAX.
 */
int64_t moat_cache_current_age(const struct moat_cache_resp *resp, int64_t now);

/* RFC 9211 fwd reasons (why the request went to the backend). */
enum moat_cache_fwd {
	MOAT_CACHE_FWD_NONE = 0, /* not forwarded */
	MOAT_CACHE_FWD_BYPASS,   /* cache off for this route / request */
	MOAT_CACHE_FWD_METHOD,   /* method not served from cache */
	MOAT_CACHE_FWD_URI_MISS, /* nothing stored for the URI */
	MOAT_CACHE_FWD_VARY_MISS,/* stored for the URI, no variant matches */
	MOAT_CACHE_FWD_MISS,     /* no match, kind unknown */
	MOAT_CACHE_FWD_REQUEST,  /* a fresh one was stored, the request's directives refused it */
	MOAT_CACHE_FWD_STALE,    /* the stored one needs validation */
	MOAT_CACHE_FWD_PARTIAL,  /* only part was stored */
};

/* The RFC 9211 token ("uri-miss", ...); "" for NONE. */
const char *moat_cache_fwd_text(enum moat_cache_fwd f);

/* What to do with a stored response for a request. */
enum moat_cache_use {
	MOAT_CACHE_USE_FRESH,         /* serve it (hit) */
	MOAT_CACHE_USE_STALE,         /* serve it stale: the client's max-stale allows it (hit) */
	MOAT_CACHE_USE_STALE_REFRESH, /* serve it stale now and revalidate in the background
				       * (stale-while-revalidate window) */
	MOAT_CACHE_USE_STALE_ERROR,   /* (backend_failed only) serve it stale instead of the error
				       * (stale-if-error window) */
	MOAT_CACHE_USE_REVALIDATE,    /* do not serve it: forward (conditionally when it has a
				       * validator); with backend_failed: send the error (504 when there
				       * is no backend answer: must-revalidate asks for it) */
	MOAT_CACHE_USE_ONLY_IF_CACHED,/* do not serve it, do not forward: 504 (only-if-cached) */
};

/* Everything moat_cache_usable computed, for the Age header and the
 * Cache-Status. */
struct moat_cache_verdict {
	enum moat_cache_use use;
	enum moat_cache_fwd fwd; /* REVALIDATE / ONLY_IF_CACHED: REQUEST, STALE or METHOD;
				  * STALE_ERROR: STALE; NONE otherwise */
	int64_t age;             /* current_age: the Age to send */
	int64_t lifetime;        /* freshness_lifetime */
	int64_t ttl;             /* lifetime - age: Cache-Status ttl, negative when stale */
	const char *detail;      /* constant token saying why ("no-cache", "max-stale", ...), or NULL */
};

#define MOAT_CACHE_BACKEND_OK     0
#define MOAT_CACHE_BACKEND_FAILED 1 /* no answer, or 500 / 502 / 503 / 504 (RFC 5861 §4) */

/*
 * RFC 9111 §4 (with RFC 5861 and RFC 8246): may `stored` (the variant
 * already chosen for `req`, Vary matched) answer `req` at `now`? Call it
 * on lookup with MOAT_CACHE_BACKEND_OK, and again with
 * MOAT_CACHE_BACKEND_FAILED when the forward it asked for failed. Fills
 * *v (v->use is also returned). In order:
 *   - method not GET / HEAD: REVALIDATE, fwd=method;
 *   - no-cache in the response (qualified read as unqualified): REVALIDATE,
 *     fwd=stale, whatever else (no stale serving either, §4.2.4);
 *   - on lookup, request no-cache (cfg->honour_client_no_cache):
 *     REVALIDATE, fwd=request (fwd=stale when it is stale anyway);
 *   - on lookup, request max-age exceeded by the age, or min-fresh more
 *     than the freshness left (cfg->honour_client_max_age): same; skipped
 *     while an immutable response is fresh (RFC 8246: a reload's
 *     max-age=0 needs no revalidation; a forced reload's no-cache still
 *     does). With backend_failed these asked for the forward that failed
 *     and are not looked at again: a fresh response may stand in;
 *   - fresh (lifetime > age): FRESH;
 *   - stale, with must-revalidate or proxy-revalidate: REVALIDATE, never
 *     served stale (§5.2.2.2: not even when the backend fails);
 *   - backend_failed: STALE_ERROR while staleness (age - lifetime) <= the
 *     stale-if-error window (the request's value when it has one, else the
 *     response's), or STALE within the client's max-stale; else REVALIDATE;
 *   - the client's max-stale covers the staleness, unless the response has
 *     s-maxage (which implies proxy-revalidate, §5.2.2.10): STALE;
 *   - within stale-while-revalidate: STALE_REFRESH;
 *   - else REVALIDATE, fwd=stale.
 * stale-while-revalidate and stale-if-error, the origin's explicit
 * permission, do apply to a response with s-maxage (RFC 9111 lets an
 * extension override its defaults, §5.2.3); explicit must-revalidate /
 * proxy-revalidate / no-cache win over them. Windows are inclusive. Any
 * REVALIDATE of a lookup (not of backend_failed) becomes ONLY_IF_CACHED
 * when the request has only-if-cached.
 */
enum moat_cache_use moat_cache_usable(const struct moat_cache_cfg *cfg, const struct moat_cache_req *req,
				      const struct moat_cache_resp *stored, int64_t now, int backend_failed,
				      struct moat_cache_verdict *v);

/*
 * The variant key of a request (RFC 9111 §4.1): for each member of
 * vary[0..vary_len) (the stored response's Vary, lines joined with ','),
 * in Vary order, the first occurrence of each name only, one line
 *   "<lowercase name>\n"               the request lacks the field
 *   "<lowercase name>:<value>\n"       value of all its lines joined by ','
 * so that a missing field never matches an empty one. Values are
 * normalised: OWS at the ends and around commas removed, other runs of
 * SP / HTAB folded into one SP, quoted strings copied as they are. Accept-
 * Encoding becomes the sorted set of codings among br, gzip (x-gzip too),
 * identity and zstd that it accepts with q > 0 ("*" counts for those not
 * named; identity is accepted unless refused by "identity;q=0" or
 * "*;q=0"), so "gzip, deflate, br" and "br,gzip" give the same key
 * ("br,gzip,identity"). Two requests select the same variant exactly when
 * their keys are byte-equal. An empty or absent Vary gives "" (length 0).
 * hdrs[0..nhdrs) are the request's fields (only name / value are read).
 * Writes at most cap bytes to out (no NUL). Returns the key's length,
 * MOAT_CACHE_EVARY for "*" or a member that is not a token, or
 * MOAT_CACHE_ENOSPC.
 */
int moat_cache_vary_key(const char *vary, size_t vary_len, const struct moat_h1_header *hdrs, size_t nhdrs,
			char *out, size_t cap);

/*
 * RFC 9110 §13.1.1-2 and RFC 9111 §4.3.2 for a GET / HEAD answered from
 * `stored`: returns 1 when the answer is 304 (Not Modified), 0 when it is
 * the full response. inm[0..inm_len) is If-None-Match (lines joined with
 * ','; NULL when absent): "*" matches; otherwise a list of entity-tags
 * compared weakly with the stored ETag; a malformed field or stored ETag
 * never matches. Only when If-None-Match is absent, ims[0..ims_len)
 * (If-Modified-Since; NULL when absent) is compared with Last-Modified, or
 * when there is none with Date, or with response_time: 304 when that is
 * not after it; an invalid date is ignored. The caller evaluates them
 * only for GET / HEAD and only against a 200 it would send.
 */
int moat_cache_not_modified(const struct moat_cache_resp *stored, const char *inm, size_t inm_len,
			    const char *ims, size_t ims_len);

enum moat_cache_range {
	MOAT_CACHE_RANGE_FULL,          /* send the whole response (200) */
	MOAT_CACHE_RANGE_PARTIAL,       /* send bytes first..last (206) */
	MOAT_CACHE_RANGE_UNSATISFIABLE, /* 416, Content-Range: bytes * / length */
};

/*
 * RFC 9110 §14 for a GET answered from `stored`, whose content is `length`
 * bytes. range[0..range_len) is the Range field (NULL when absent):
 * exactly one "bytes=" (unit case-insensitive) first-last, first- or -n
 * range (empty list elements and OWS around them allowed). Anything else
 * (another unit, several ranges, bad syntax, last < first) is ignored:
 * FULL. A range whose first >= length, or "-0", is UNSATISFIABLE; last is
 * clamped to length - 1, a suffix longer than the content is all of it;
 * a suffix of an empty content is FULL (a 206 of nothing cannot be said).
 * if_range[0..if_range_len) (NULL when absent), evaluated first: a strong
 * entity-tag equal (strong comparison) to the stored ETag, or an HTTP-date
 * equal to a Last-Modified that is strong (earlier than Date, §8.8.2.2);
 * when false, FULL. Sets *first / *last (inclusive) for PARTIAL only.
 */
enum moat_cache_range moat_cache_range(const char *range, size_t range_len, const char *if_range,
				       size_t if_range_len, const struct moat_cache_resp *stored, uint64_t length,
				       uint64_t *first, uint64_t *last);

/*
 * RFC 9111 §4.4: returns 1 when a response with `status` to `method`
 * invalidates what is stored for the target URI: the method is not known
 * to be safe (anything but GET, HEAD, OPTIONS, TRACE; methods are
 * case-sensitive) and the status is 2xx or 3xx. Then the target and,
 * through moat_cache_invalidate_ref, its Location and Content-Location
 * are invalidated.
 */
int moat_cache_invalidates(const char *method, size_t method_len, int status);

/* The target of a request, for moat_cache_invalidate_ref. Borrowed. */
struct moat_cache_target {
	const char *scheme;    /* "http" or "https" */
	size_t scheme_len;
	const char *authority; /* host[:port], as in Host */
	size_t authority_len;
	const char *path;      /* origin-form target: absolute path [? query] */
	size_t path_len;
};

/*
 * For a Location or Content-Location value ref[0..ref_len) in the answer
 * to an unsafe request to `t`: when ref (absolute, network-path, absolute-
 * path or relative, resolved per RFC 3986 §5.2 against t, fragment
 * dropped, dot-segments removed) has the same origin as t (scheme and
 * host case-insensitive, ports with their scheme's default), writes its
 * path and query (origin-form) and a NUL to out and returns the length.
 * Returns MOAT_CACHE_EORIGIN for another origin (§4.4 forbids invalidating
 * it) or a ref that cannot be read, MOAT_CACHE_ENOSPC when it does not fit
 * (cap must hold t->path_len + ref_len + 2 to be sure). The caller
 * normalises the result the way it builds cache keys.
 */
int moat_cache_invalidate_ref(const struct moat_cache_target *t, const char *ref, size_t ref_len, char *out,
			      size_t cap);

/* One Cache-Status member (RFC 9211) for moat. */
struct moat_cache_status {
	const char *name;        /* cache identifier; NULL: "moat" */
	int hit;                 /* answered from cache without forwarding */
	enum moat_cache_fwd fwd; /* NONE when not forwarded */
	int fwd_status;          /* status the backend answered the forward with; 0: left out */
	int has_ttl;
	int64_t ttl;             /* remaining freshness (negative: stale) */
	int stored;              /* the forward's answer was stored */
	int collapsed;           /* the forward was shared with other requests */
	const char *detail;      /* NULL: left out */
};

/*
 * Writes the member, e.g. `moat; hit; ttl=376` or
 * `moat; fwd=uri-miss; fwd-status=200; stored`, parameters in the order
 * hit, fwd, fwd-status, ttl, stored, collapsed, detail (fwd-status, stored
 * and collapsed only with fwd). The name is written as an sf-token when it
 * is one, else as an sf-string; detail always as an sf-string (bytes
 * outside 0x20..0x7e become '?'). Writes a NUL; returns the length, or
 * MOAT_CACHE_ENOSPC when it does not fit in cap (128 bytes is plenty for
 * short names and details).
 */
int moat_cache_status_format(const struct moat_cache_status *st, char *out, size_t cap);

#endif
