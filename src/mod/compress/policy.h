/*
 * policy.h - whether a response is compressed, and the header edits that
 * go with it, pure.
 *
 * Sits where the backend's response head has been parsed and the client's
 * head is about to be written (proxy/forward.h): moat_compress_decide()
 * says yes or no (and why not), moat_compress_edits() names the fields to
 * drop (the `hide` names of struct moat_fwd_resp) and writes the field
 * lines to add (its `extra`). The body then goes through codec.h and is
 * re-framed (chunked, or close-delimited for an HTTP/1.0 client).
 *
 *   response head ─ decide ─┬─ NO_*:  forward untouched (Vary added when
 *                           │          the answer depends on Accept-Encoding)
 *                           └─ YES:   edits: Content-Encoding, Vary, ETag weak,
 *                                      Content-Length / Accept-Ranges / digests dropped
 *
 * No allocation, no globals; thread-safe. Strings read from the heads are
 * not kept.
 */
#ifndef MOAT_MOD_COMPRESS_POLICY_H
#define MOAT_MOD_COMPRESS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "http/accept_encoding.h"
#include "http/h1_parse.h"

/* Defaults of the compress keys (the config layer may move them to
 * core/limits.h when it grows the keys). */
#define MOAT_COMPRESS_DEFAULT_MIN_SIZE 256u /* bytes; smaller bodies gain nothing worth the CPU */

/* What compression a route asks for. Owned by the config snapshot;
 * read-only, shared by every worker. */
struct moat_compress_conf {
	/* Media types, lowercase: "text/html"; a type followed by a slash and
	 * a star: any subtype of it ("text/" "*"); star slash star: anything.
	 * NULL with ntypes 0: moat_compress_default_types. */
	const char *const *types;
	size_t ntypes;
	uint64_t min_size;         /* bodies of known length under this are sent as they are */
	unsigned offered;          /* MOAT_AE_BIT mask of the codings moat may use */
};

/* The default list of compressible media types (text, scripts, JSON,
 * XML, SVG, web fonts that are not already compressed). */
extern const char *const moat_compress_default_types[];
extern const size_t moat_compress_default_ntypes;

/* moat_compress_decide()'s answer: YES, or the first reason not to. */
enum moat_compress_verdict {
	MOAT_COMPRESS_YES = 0,
	MOAT_COMPRESS_NO_STATUS,     /* not 200 / 203 (206: ranges of the identity bytes; 204 / 304 /
				      * 1xx: no body; errors: left as the backend sent them) */
	MOAT_COMPRESS_NO_BODY,       /* the response has no body (framing NONE, or Content-Length 0) */
	MOAT_COMPRESS_NO_ENCODED,    /* a Content-Encoding is present (even "identity") */
	MOAT_COMPRESS_NO_TRANSFORM,  /* Cache-Control: no-transform */
	MOAT_COMPRESS_NO_TYPE,       /* no Content-Type, or not in the list */
	MOAT_COMPRESS_NO_SMALL,      /* Content-Length under min_size */
	MOAT_COMPRESS_NO_HEAD,       /* the request was HEAD (no body to compress; Vary still set) */
	MOAT_COMPRESS_NO_ACCEPT,     /* the client accepted none of the offered codings (Vary set) */
};

struct moat_compress_decision {
	enum moat_compress_verdict verdict;
	int coding;       /* YES: the coding to apply (MOAT_AE_GZIP, _BR, _ZSTD); else 0 */
	int vary;         /* the response depends on Accept-Encoding: Vary must name it
			   * (YES, NO_HEAD, NO_ACCEPT) */
	uint64_t body_len;  /* YES: the body's exact length when framed by Content-Length,
			     * else 0; for moat_encoder_new() */
};

/*
 * Decides for the response head `resp` (as parsed by
 * moat_h1_parse_response) to a request whose method was HEAD when
 * `req_head` is nonzero and whose Accept-Encoding chose `coding`
 * (moat_ae_choose() over cf->offered: a coding, identity, or
 * MOAT_AE_NOT_ACCEPTABLE). Checks, in order: status 200 / 203, a body,
 * no Content-Encoding, no Cache-Control no-transform, a Content-Type in
 * the list (media type before any ';' compared case-insensitively),
 * Content-Length (when known) at least min_size, then HEAD and the
 * coding. Fills *d; returns d->verdict.
 */
enum moat_compress_verdict moat_compress_decide(const struct moat_compress_conf *cf,
						const struct moat_h1_head *resp, int req_head,
						int coding, struct moat_compress_decision *d);

/* Nonzero when the media type of a Content-Type value v[0..len) matches
 * one of types[0..n) (see struct moat_compress_conf). */
int moat_compress_type_ok(const char *const *types, size_t n, const char *v, size_t len);

/* The longest list of names moat_compress_edits() may return. */
#define MOAT_COMPRESS_HIDE_MAX 8

/*
 * The header edits for decision d on the response head `resp`:
 *
 *  - *hide / *nhide: lowercase field names to drop (static storage):
 *    with YES: content-length (the body is re-framed), accept-ranges (a
 *    range would address the identity bytes), etag (rewritten below),
 *    content-md5, digest, content-digest and repr-digest (they describe
 *    the identity bytes); and vary when the response has Vary fields
 *    that are rewritten below.
 *  - extra[0..*extra_len): complete field lines (each ending CRLF) to add:
 *      Content-Encoding: <coding>               (YES)
 *      ETag: W/"..."                            (YES, with a valid ETag: a strong one made
 *                                                weak, a weak one kept; an invalid or
 *                                                repeated ETag is dropped)
 *      Vary: <the response's Vary>, Accept-Encoding   (d->vary, unless a Vary already
 *                                                names Accept-Encoding or is "*": then
 *                                                Vary is left alone)
 *
 * With neither YES nor vary there are no edits (*nhide = 0, *extra_len = 0).
 * Returns 0, or -ENOBUFS when the lines do not fit in extra[0..cap)
 * (the caller then sends the response uncompressed, with the Vary line
 * alone if it can). Values are copied from resp.
 */
int moat_compress_edits(const struct moat_h1_head *resp, const struct moat_compress_decision *d,
			const char *const **hide, size_t *nhide, char *extra, size_t cap,
			size_t *extra_len);

/* A short lowercase name of a verdict for logs and counters ("yes",
 * "status", "body", "encoded", "no-transform", "type", "small", "head",
 * "accept"). */
const char *moat_compress_verdict_name(enum moat_compress_verdict v);

#endif
