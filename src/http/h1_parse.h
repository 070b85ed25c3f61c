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
 * never a guess (docs/internals/h1-parser.md lists what is refused, with
 * which error, and why).
 *
 * Restartability: the parser keeps no state between calls and scans from
 * byte 0 each time. For any prefix of an input the result is either
 * MOAT_AGAIN or the result for the whole input: an error is reported as
 * soon as the bytes seen prove it (limits included: a head that can no
 * longer fit fails before it is complete), and a valid head never yields an
 * error on one of its prefixes. After MOAT_AGAIN or an error the contents
 * of struct moat_h1_head are unspecified.
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
#define MOAT_H1_ETE_UNKNOWN   (-5004) /* Transfer-Encoding with a coding we do not implement: 501 (request) / 502 (response), close */
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

/* Limits applied while parsing; every value must be > 0 (a 0 refuses
 * everything). Sizes over INT_MAX act as INT_MAX, since the head length is
 * returned as an int. */
struct moat_h1_limits {
	size_t request_line_max; /* bytes of the request line incl. CRLF (414 past it); requests only */
	size_t header_size_max;  /* bytes of the whole head incl. start line, skipped empty lines and
				  * the final CRLF (431 past it) */
	size_t header_count_max; /* number of header fields (431 past it) */
};

/* A parsed head. Before calling, set `headers` to an array of
 * `header_cap` entries. The parser never writes past it: more fields than
 * min(header_cap, limits->header_count_max) fail with MOAT_H1_EHDR_TOO_BIG,
 * for requests and responses alike (so give requests an array of at least
 * header_count_max entries, or the array size becomes the limit). All
 * other members are outputs, reset at each call. */
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
	const char *host;             /* out: the Host value (requests; may be empty), or NULL */
	size_t host_len;
};

/*
 * Parses a request head from buf[0..len).
 * Returns the length of the head (from buf[0], so including any skipped
 * leading empty lines, through the empty line) on success, MOAT_AGAIN if
 * the head is incomplete and within limits, or one of MOAT_H1_E* on error.
 * On success the framing rules of RFC 9112 §6 are applied:
 * Transfer-Encoding must be exactly one "chunked" element over all its
 * fields (case-insensitive), never with Content-Length (EBAD) nor in
 * HTTP/1.0 (EBAD); chunked missing, not final, repeated or in a list with
 * empty elements is EBAD (400, §6.3), a final chunked after another coding
 * is ETE_UNKNOWN (501). Content-Length must be one field holding one
 * decimal <= 2^62 (a list, even "5, 5", or a second field, even identical,
 * is EBAD). Host: at most one in any version, exactly one in HTTP/1.1, and
 * only reg-name / IP-literal / port characters. No Content-Length and no
 * Transfer-Encoding means no body. Refused (EBAD): obs-fold, bare CR or
 * LF, NUL / control bytes / DEL in names or values (HTAB and obs-text are
 * allowed in values), whitespace before the colon, an empty or non-token
 * field name or method, an empty target or one with SP / CTL / DEL /
 * non-ASCII bytes, an HTTP-version other than HTTP/1.0 and HTTP/1.1
 * (EVERSION for "HTTP/" DIGIT "." DIGIT with other digits, EBAD for
 * anything else, e.g. "http/1.1" or "HTTP/1.1x"). Up to 4 leading empty
 * lines (CRLF) before the request line are skipped (RFC 9112 §2.2), a 5th
 * is EBAD. The form of the target (origin, absolute, authority, asterisk)
 * is not checked against the method: that is the caller's.
 * Thread-safe, no allocation.
 */
int moat_h1_parse_request(const char *buf, size_t len, struct moat_h1_head *head,
			  const struct moat_h1_limits *lim);

/*
 * Parses a response head (from a backend) from buf[0..len).
 * `req_method_head` is nonzero when the request was HEAD (the response then
 * has no body). A 2xx answer to CONNECT is not special here: the caller
 * turns it into a tunnel whatever `framing` says. Same returns and same
 * field rules as moat_h1_parse_request (Host, Expect and TE are not
 * interpreted; request_line_max does not apply; no leading empty lines).
 * Status line: "HTTP/1.x" SP 3DIGIT (100..999) [SP reason] CRLF; the reason
 * may be empty or, leniently, missing with its SP; it may hold obs-text.
 * Framing: 1xx (101 included), 204, 304 or HEAD: NONE, whatever CL / TE
 * say, but a Content-Length present must still be valid (it is forwarded);
 * otherwise TE with CL or TE in HTTP/1.0: EBAD; TE other than exactly one
 * "chunked": ETE_UNKNOWN; TE chunked: CHUNKED; CL: LENGTH; neither: CLOSE.
 */
int moat_h1_parse_response(const char *buf, size_t len, struct moat_h1_head *head,
			   const struct moat_h1_limits *lim, int req_method_head);

/* Case-insensitive comparison of a header name with a lowercase literal
 * name of known length; returns nonzero when equal. */
int moat_h1_name_is(const struct moat_h1_header *h, const char *lower, size_t lower_len);

/* The first field of `h` named `lower` (a lowercase name of lower_len
 * bytes), or NULL. Pure. */
const struct moat_h1_header *moat_h1_find(const struct moat_h1_head *h, const char *lower, size_t lower_len);

/* Returns nonzero when the comma-separated list `v[0..len)` contains the
 * token `lower` (case-insensitive, ignoring OWS around elements). Meant for
 * token lists (Connection, TE): quoted strings are not understood, so a
 * comma inside one splits elements. */
int moat_h1_list_has(const char *v, size_t len, const char *lower, size_t lower_len);

#endif
