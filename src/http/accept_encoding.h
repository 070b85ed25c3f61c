/*
 * accept_encoding.h - Accept-Encoding (RFC 9110 §12.5.3): which content
 * coding a response may use, pure.
 *
 * Sits on the response's way: once a backend's response is known to be
 * compressible (mod/compress/policy.h), the request's Accept-Encoding
 * picks the coding (mod/compress/codec.h produces it). The cache uses
 * moat_ae_normalise() as the Accept-Encoding part of a variant key.
 *
 *   Accept-Encoding: gzip;q=0.8, br, identity;q=0.1, *;q=0
 *                    ^ coding [;q=weight], comma-separated, in any case
 *
 * Parsing never fails: an element that is not `token *(;param)` with at
 * most one valid q is ignored, the others still count. No allocation, no
 * globals; thread-safe on distinct structs.
 */
#ifndef MOAT_HTTP_ACCEPT_ENCODING_H
#define MOAT_HTTP_ACCEPT_ENCODING_H

#include <stddef.h>

#include "http/h1_parse.h"

/* The codings moat knows. IDENTITY is "no content coding". The values index
 * struct moat_ae's q[] and name the bits of an `offered` mask. */
enum moat_ae_coding {
	MOAT_AE_IDENTITY = 0,
	MOAT_AE_GZIP = 1,     /* "gzip" (and its alias "x-gzip", RFC 9110 §8.4.1.3) */
	MOAT_AE_BR = 2,       /* "br" (RFC 7932) */
	MOAT_AE_ZSTD = 3,     /* "zstd" (RFC 8878) */
};
#define MOAT_AE_NCODINGS 4

/* moat_ae_choose(): identity is excluded ("identity;q=0", or "*;q=0" with
 * no identity entry) and no offered coding is acceptable. HTTP would allow
 * a 415 / 406 here; moat, like most servers, sends identity anyway. */
#define MOAT_AE_NOT_ACCEPTABLE (-1)

#define MOAT_AE_BIT(c)   (1u << (c))
#define MOAT_AE_OFFER_ALL (MOAT_AE_BIT(MOAT_AE_GZIP) | MOAT_AE_BIT(MOAT_AE_BR) | MOAT_AE_BIT(MOAT_AE_ZSTD))

/* The longest string moat_ae_normalise() writes, with its NUL:
 * "br,zstd,gzip". */
#define MOAT_AE_NORM_MAX 16

/* What one request's Accept-Encoding said. Q-values are in thousandths
 * (0..1000); -1 means "not mentioned". Owned by the caller (a stack value
 * or the txn); holds no pointers. */
struct moat_ae {
	short q[MOAT_AE_NCODINGS]; /* explicit entry per coding; identity included */
	short star;                /* the "*" entry */
	int present;               /* at least one Accept-Encoding field was parsed */
};

/* Resets `ae` to "no Accept-Encoding field". */
void moat_ae_init(struct moat_ae *ae);

/*
 * Adds one Accept-Encoding field value v[0..len) to `ae` (call once per
 * field, in order: several fields form one list). Elements are
 * `coding *( OWS ";" OWS name "=" value )`, value a token or quoted
 * string, OWS (SP / HTAB) around elements and '=' tolerated; names match
 * case-insensitively. The parameter "q" must be a qvalue ("0", "0.5",
 * "0.125", "1", "1.000"; not "1.5", ".5", "0.1234", "2"): an element with
 * an invalid or repeated q, an unquoted non-token character, or an
 * unterminated quoted string is ignored. Other parameters are ignored
 * (the element counts). Unknown codings are ignored ("deflate",
 * "compress": moat does not produce them). A coding listed more than once
 * keeps its lowest q (the most restrictive reading).
 */
void moat_ae_parse(struct moat_ae *ae, const char *v, size_t len);

/* Resets `ae` and parses every Accept-Encoding field of the request head
 * `h`, in order. */
void moat_ae_from_head(struct moat_ae *ae, const struct moat_h1_head *h);

/*
 * The q (thousandths) of coding `c` after defaults: its own entry, else
 * the "*" entry, else 1000 for identity (acceptable unless excluded) and
 * 0 for the others. No Accept-Encoding field at all (present == 0) gives
 * identity 1000 and the others 0: although RFC 9110 lets a server send
 * any coding then, clients that say nothing often cannot decode, so moat
 * compresses only for clients that ask.
 */
int moat_ae_q(const struct moat_ae *ae, enum moat_ae_coding c);

/*
 * Picks the coding for a response, among the codings in `offered`
 * (MOAT_AE_BIT mask; the identity bit is ignored: identity is always
 * possible). The best is the acceptable (q > 0) offered coding with the
 * highest q; equal q prefer br, then zstd, then gzip. Identity wins over
 * it only when the client ranked identity above it explicitly
 * ("gzip;q=0.5, identity"): a client that merely allows identity gets the
 * compressed response.
 *
 * Returns a coding > 0, MOAT_AE_IDENTITY (0) when nothing offered is
 * acceptable but identity is, or MOAT_AE_NOT_ACCEPTABLE when identity is
 * excluded too (the caller then sends identity anyway: see above).
 */
int moat_ae_choose(const struct moat_ae *ae, unsigned offered);

/*
 * Writes into out[0..cap) a canonical string of the codings that can
 * answer this request, for a cache variant key: the acceptable offered
 * codings that moat_ae_choose() would take over identity, best first,
 * joined by ','; "identity" when there is none. Requests with the same
 * string get the same moat_ae_choose() answer for `offered` and for every
 * subset of it (NOT_ACCEPTABLE is folded into identity, which is what is
 * sent). Examples (all offered): "gzip, deflate, br" -> "br,gzip";
 * "GZIP;q=1, br;q=0.5" -> "gzip,br"; "*" -> "br,zstd,gzip"; "" ->
 * "identity". Returns the length written (without the NUL, always
 * written when cap > 0); a cap below MOAT_AE_NORM_MAX may truncate (the
 * return value then says how long the whole string is, as snprintf).
 */
size_t moat_ae_normalise(const struct moat_ae *ae, unsigned offered, char *out, size_t cap);

/* The Content-Encoding token of coding c ("identity", "gzip", "br",
 * "zstd"), or NULL for a value outside the enum. Static storage. */
const char *moat_ae_name(int c);

#endif
