/*
 * cachecontrol.h - Cache-Control field values (RFC 9111 §5.2, RFC 5861,
 * RFC 8246), HTTP-dates (RFC 9110 §5.6.7) and Age values, pure.
 *
 * The cache (mod/cache) reads a request's and a stored response's
 * Cache-Control through struct moat_cc; this file only turns bytes into
 * that struct and knows nothing of caching decisions (mod/cache/policy.h
 * makes them). No I/O, no allocation, no globals; every function is
 * thread-safe.
 *
 * How values are read (the RFC leaves room; what moat chose):
 *
 *   - Directive names are case-insensitive; unknown directives are ignored
 *     (§5.2.3). Arguments may be a token or a quoted-string for every
 *     directive (§5.2: recipients ought to accept both forms).
 *   - A directive seen more than once keeps its FIRST value (§4.2.1 allows
 *     "the first occurrence" or "stale"; first lets field lines be read one
 *     at a time). Later occurrences only set the directive's `dup` bit.
 *   - Bad arguments lean to the restrictive side (§4.2.1: "the most
 *     restrictive directive should be honored", invalid freshness
 *     information should make the response stale):
 *       max-age, s-maxage without a delta-seconds argument read as 0 (that
 *         occurrence counts as the first one);
 *       no-cache, private with a bad argument (or an empty list) read as
 *         their unqualified form, and an unqualified occurrence anywhere
 *         wins over a qualified one;
 *       no-store, no-transform, must-revalidate, proxy-revalidate,
 *         only-if-cached count even with an argument they do not take;
 *       the permissive ones (public, immutable, must-understand, max-stale
 *         with a bad value, min-fresh, stale-while-revalidate,
 *         stale-if-error without a valid value) are ignored.
 *     Each such case sets the directive's `invalid` bit.
 *   - delta-seconds (§1.2.2) are 1*DIGIT; a value above 2^31 saturates at
 *     MOAT_CC_DELTA_MAX (2^31, "infinity").
 *   - An element that does not follow the grammar (e.g. "max-age=5 x",
 *     "max-age = 5", "a=b\"c") is skipped up to the next comma outside a
 *     quoted string; its leading token, when it names a directive, is
 *     treated as that directive with a bad argument (above). The rest of
 *     the line is still read.
 */
#ifndef MOAT_HTTP_CACHECONTROL_H
#define MOAT_HTTP_CACHECONTROL_H

#include <stddef.h>
#include <stdint.h>

#define MOAT_CC_EBAD (-5401) /* a Cache-Control line held a malformed element */

/* Directives: bits of struct moat_cc's flags / invalid / dup. */
#define MOAT_CC_MAX_AGE          (1u << 0)  /* request and response */
#define MOAT_CC_S_MAXAGE         (1u << 1)  /* response */
#define MOAT_CC_MAX_STALE        (1u << 2)  /* request */
#define MOAT_CC_MIN_FRESH        (1u << 3)  /* request */
#define MOAT_CC_NO_CACHE         (1u << 4)  /* request and response */
#define MOAT_CC_NO_STORE         (1u << 5)  /* request and response */
#define MOAT_CC_NO_TRANSFORM     (1u << 6)  /* request and response */
#define MOAT_CC_ONLY_IF_CACHED   (1u << 7)  /* request */
#define MOAT_CC_MUST_REVALIDATE  (1u << 8)  /* response */
#define MOAT_CC_PROXY_REVALIDATE (1u << 9)  /* response */
#define MOAT_CC_MUST_UNDERSTAND  (1u << 10) /* response */
#define MOAT_CC_PRIVATE          (1u << 11) /* response */
#define MOAT_CC_PUBLIC           (1u << 12) /* response */
#define MOAT_CC_IMMUTABLE        (1u << 13) /* response (RFC 8246) */
#define MOAT_CC_SWR              (1u << 14) /* stale-while-revalidate, response (RFC 5861) */
#define MOAT_CC_SIE              (1u << 15) /* stale-if-error, request and response (RFC 5861) */

/* The largest delta-seconds value kept: 2^31, which RFC 9111 §1.2.2 makes
 * the value of any overflow (it stands for "infinity", over 68 years). */
#define MOAT_CC_DELTA_MAX 2147483648u

/*
 * The directives of one message's Cache-Control, all its field lines
 * together. Zero it (moat_cc_init) before the first line. A value member
 * is meaningful only when its bit is in `flags`.
 *
 * The field-name lists point into the field value given to the
 * moat_cc_parse call that saw them (borrowed: valid while that header is);
 * they are the text inside the quotes (or the bare token), escapes left as
 * written, NULL for the unqualified form.
 */
struct moat_cc {
	unsigned flags;    /* MOAT_CC_* present and honoured */
	unsigned invalid;  /* MOAT_CC_* seen with a bad or missing argument */
	unsigned dup;      /* MOAT_CC_* seen more than once */
	uint32_t max_age;  /* seconds, <= MOAT_CC_DELTA_MAX, as are the others */
	uint32_t s_maxage;
	uint32_t max_stale; /* MOAT_CC_DELTA_MAX when max_stale_any */
	uint32_t min_fresh;
	uint32_t swr;      /* stale-while-revalidate */
	uint32_t sie;      /* stale-if-error */
	int max_stale_any; /* "max-stale" without a value: stale of any age */
	const char *no_cache_fields; /* qualified no-cache="a, b": "a, b" */
	size_t no_cache_fields_len;
	const char *private_fields;  /* qualified private="a": "a" */
	size_t private_fields_len;
};

/* Empties cc (no directive). */
void moat_cc_init(struct moat_cc *cc);

/*
 * Adds the directives of one Cache-Control field line v[0..len) (value
 * only, leading / trailing OWS allowed) to cc, following the rules at the
 * top of this file. Call it once per field line, in order, on the same cc.
 * Returns 0 when every element was well-formed, MOAT_CC_EBAD when one or
 * more were not (what could be read is in cc all the same: the caller
 * normally goes on; the code is there for logs and Cache-Status detail).
 * Reads exactly len bytes (no NUL needed); v may be NULL when len is 0.
 */
int moat_cc_parse(const char *v, size_t len, struct moat_cc *cc);

/*
 * Parses an HTTP-date s[0..len) in any of the three formats of RFC 9110
 * §5.6.7 into seconds since the Unix epoch (may be negative):
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * Names (day, month, "GMT") match case-insensitively (RFC 9111 §4.2); the
 * zone must be GMT; leading / trailing OWS is allowed; the day of the week
 * must be a valid name but is not checked against the date; day of month
 * must exist (Feb 29 only in leap years); second 60 (leap second) is read
 * as the next minute's 00. rfc850's two-digit year: 70..99 -> 19xx, 00..69
 * -> 20xx, a fixed pivot where RFC 9110 has a rule relative to the clock
 * ("more than 50 years in the future" is the previous century); the two
 * differ only for years the RFC would read as 2070 or later.
 * Returns 0 and sets *unix_s, or -1 (invalid; *unix_s untouched).
 */
int moat_http_date_parse(const char *s, size_t len, int64_t *unix_s);

/*
 * Writes t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and a NUL
 * into out. Returns 29 (the length), or 0 with out[0] = '\0' when the year
 * of t is outside 0..9999.
 */
size_t moat_http_date_format(int64_t t, char out[30]);

/*
 * Parses an Age field value v[0..len) (RFC 9111 §5.1): delta-seconds; of a
 * list only the first member counts (the rest is not looked at). Returns 0
 * with *secs (saturated at MOAT_CC_DELTA_MAX), or -1 when the value is
 * invalid (the field is then to be ignored).
 */
int moat_http_age_parse(const char *v, size_t len, uint32_t *secs);

#endif
