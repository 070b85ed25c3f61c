/*
 * h1_parse.h - strict HTTP/1.x head parser (RFC 9112), pure.
 *
 * Sits at the very start of a request's way: the h1 server codec hands it
 * the bytes read from the client, the h1 client codec hands it the bytes
 * read from a backend. It performs no I/O and no allocation; every string
 * it returns points into the caller's buffer and is valid as long as that
 * buffer is not moved or reused. Parsing is restartable: call again with
 * the same (grown) buffer after MOAT_AGAIN.
 *
 * Strictness: anything two servers could frame differently is an error,
 * never a guess (see docs/security.md for the list).
 */
#ifndef MOAT_HTTP_H1_PARSE_H
#define MOAT_HTTP_H1_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

/* Errors (all negative, below the errno range). */
#define MOAT_H1_EBAD          (-5001) /* malformed: 400, close */
#define MOAT_H1_EURI_TOO_LONG (-5002) /* request line too long: 414, close */
#define MOAT_H1_EHDR_TOO_BIG  (-5003) /* header section / count / field too large: 431, close */
#define MOAT_H1_ETE_UNKNOWN   (-5004) /* Transfer-Encoding other than final chunked: 501 (request) / 502 (response), close */
#define MOAT_H1_EVERSION      (-5005) /* HTTP version not 1.0 / 1.1: 505, close */

/* How the body that follows a head is delimited. */
enum moat_h1_framing {
	MOAT_H1_BODY_NONE = 0,   /* no body (requests without CL/TE, 1xx/204/304, HEAD responses) */
	MOAT_H1_BODY_LENGTH,     /* exactly content_length bytes */
	MOAT_H1_BODY_CHUNKED,    /* chunked coding, see chunked.h */
	MOAT_H1_BODY_CLOSE,      /* response only: until the backend closes */
};

/* Flags derived from the headers while parsing. */
#define MOAT_H1_F_CONN_CLOSE     0x0001u /* Connection: close */
#define MOAT_H1_F_CONN_KEEPALIVE 0x0002u /* Connection: keep-alive */
#define MOAT_H1_F_CONN_UPGRADE   0x0004u /* Connection lists "upgrade" */
#define MOAT_H1_F_UPGRADE        0x0008u /* an Upgrade header is present */
#define MOAT_H1_F_EXPECT_100     0x0010u /* Expect: 100-continue */
#define MOAT_H1_F_TE_TRAILERS    0x0020u /* TE header lists "trailers" */
#define MOAT_H1_F_HAS_HOST       0x0040u /* a Host header is present (exactly one) */

/* One header field; name and value point into the parsed buffer. The value
 * has leading and trailing whitespace (SP / HTAB) removed. */
struct moat_h1_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Limits applied while parsing; every value must be > 0. */
struct moat_h1_limits {
	size_t request_line_max; /* bytes of the request line incl. CRLF (414 past it) */
	size_t header_size_max;  /* bytes of the whole head incl. request line (431 past it) */
	size_t header_count_max; /* number of header fields (431 past it) */
};

/* A parsed head. Before calling, set `headers` to an array of
 * `header_cap` entries (header_cap >= limits->header_count_max is the
 * caller's duty for requests; for responses the parser fails with
 * MOAT_H1_EHDR_TOO_BIG if the array is too small). */
struct moat_h1_head {
	/* request line (requests) */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	/* status line (responses) */
	int status;
	const char *reason;
	size_t reason_len;

	int minor_version;            /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
	struct moat_h1_header *headers;
	size_t header_cap;
	size_t nheaders;              /* out */

	enum moat_h1_framing framing; /* out */
	uint64_t content_length;      /* out, valid when framing == LENGTH */
	unsigned flags;               /* out, MOAT_H1_F_* */
	const char *host;             /* out: the Host value (requests), or NULL */
	size_t host_len;
};

/*
 * Parses a request head from buf[0..len).
 * Returns the length of the head (request line through the empty line) on
 * success, MOAT_AGAIN if the head is incomplete and within limits, or one
 * of MOAT_H1_E* on error. On success the framing rules of RFC 9112 §6 are
 * applied: Transfer-Encoding must be exactly "chunked" (case-insensitive,
 * once) and not combined with Content-Length; Content-Length must be one
 * valid decimal (a repeated identical value in one field list is refused
 * too); HTTP/1.1 requires exactly one Host; no Content-Length and no
 * Transfer-Encoding means no body. Refused: obs-fold, bare CR or LF,
 * NUL / control bytes in names or values, whitespace before the colon,
 * an empty or non-token method, a target with SP / control bytes, an
 * HTTP-version other than HTTP/1.0 and HTTP/1.1 (EVERSION for HTTP/x.y
 * with other digits, EBAD for garbage). Leading empty lines (CRLF) before
 * the request line are skipped, at most a few, per RFC 9112 §2.2.
 * Thread-safe, no allocation.
 */
int moat_h1_parse_request(const char *buf, size_t len, struct moat_h1_head *head,
			  const struct moat_h1_limits *lim);

/*
 * Parses a response head (from a backend) from buf[0..len).
 * `req_method_head` is nonzero when the request was HEAD (the response then
 * has no body), `req_connect` likewise for CONNECT 2xx. Same returns as
 * moat_h1_parse_request. Framing: 1xx/204/304 or HEAD: NONE; TE chunked:
 * CHUNKED (CL ignored if both: refused as EBAD, strict); CL: LENGTH;
 * neither: CLOSE. Status must be three digits 100..999.
 */
int moat_h1_parse_response(const char *buf, size_t len, struct moat_h1_head *head,
			   const struct moat_h1_limits *lim, int req_method_head);

/* Case-insensitive comparison of a header name with a lowercase literal
 * name of known length; returns nonzero when equal. */
int moat_h1_name_is(const struct moat_h1_header *h, const char *lower, size_t lower_len);

/* Returns nonzero when the comma-separated list `v[0..len)` contains the
 * token `lower` (case-insensitive, ignoring OWS around elements). */
int moat_h1_list_has(const char *v, size_t len, const char *lower, size_t lower_len);

#endif
