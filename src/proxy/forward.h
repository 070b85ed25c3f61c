/*
 * forward.h - the heads moat writes: the request head towards a backend
 * (hop-by-hop fields removed, framing re-stated, forwarding fields set) and
 * the response head towards the client (hidden and hop-by-hop fields
 * removed, framing and connection fields re-stated). Pure: they read a
 * parsed head and write bytes into a buffer.
 */
#ifndef MOAT_PROXY_FORWARD_H
#define MOAT_PROXY_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/h1_parse.h"

/* What the request writer needs besides the parsed head. */
struct moat_fwd_req {
	const char *target;        /* origin-form target to send */
	size_t target_len;
	const char *host;          /* Host to send (NULL: the client's) */
	size_t host_len;
	int host_fallback;         /* host is moat's stand-in (no Host from the client):
				    * X-Forwarded-Host and Forwarded host= are left out */
	const char *client_host;   /* when set: the client's host for X-Forwarded-Host and
				    * Forwarded host= (host then being a replacement) */
	size_t client_host_len;
	const char *client_ip;     /* textual client address */
	int client_ipv6;
	int peer_trusted;          /* the peer may extend X-Forwarded-* / Forwarded */
	int upgrade;               /* forward Upgrade + Connection: upgrade */
	enum moat_h1_framing framing; /* body framing towards the backend */
	uint64_t content_length;
	int strip_cond;            /* drop If-None-Match, If-Modified-Since, If-Range and Range
				    * (the cache fetches the whole response) */
	const char *extra;         /* complete field lines (each ending CRLF) to add, or NULL */
	size_t extra_len;
	int https;                 /* the client came over TLS: X-Forwarded-Proto / proto= https */
	const char *const *drop;   /* lowercase field names never forwarded (the client
				    * certificate's fields: only moat may set them) */
	const size_t *drop_len;
	size_t ndrop;
	const char *tls_line;      /* moat's field line (CRLF-ended) about the client's
				    * certificate, or NULL */
	size_t tls_line_len;
};

/* Writes the request head into `out`. Returns 0 or -ENOBUFS. */
int moat_fwd_request_head(struct moat_buf *out, const struct moat_h1_head *h,
			  const struct moat_fwd_req *f);

/* How the response body goes to the client. */
enum moat_fwd_resp_framing {
	MOAT_FWD_RESP_NONE = 0,    /* no body: pass the backend's Content-Length through if present */
	MOAT_FWD_RESP_LENGTH,      /* Content-Length: content_length */
	MOAT_FWD_RESP_CHUNKED,     /* Transfer-Encoding: chunked (moat re-encodes) */
	MOAT_FWD_RESP_CLOSE,       /* delimited by closing the connection */
	MOAT_FWD_RESP_TUNNEL,      /* 101: Connection: upgrade, Upgrade passed */
};

struct moat_fwd_resp {
	enum moat_fwd_resp_framing framing;
	uint64_t content_length;
	int keepalive;             /* the client connection stays open */
	int client_minor;          /* client's HTTP/1.x minor version */
	const char *const *hide;   /* lowercase names to remove */
	size_t nhide;
	const char *const *hide2;  /* route-specific names to remove */
	size_t nhide2;
	const char *extra;         /* complete field lines (each ending CRLF) to add, or NULL */
	size_t extra_len;
	const char *const *hide3;  /* the modules' names to remove (Content-Length too) */
	size_t nhide3;
	const char *extra2;        /* the modules' field lines to add, or NULL */
	size_t extra2_len;
	const char *extra3;        /* moat's own lines for the listener (HSTS), or NULL */
	size_t extra3_len;
};

/* Writes the response head into `out`. Returns 0 or -ENOBUFS. */
int moat_fwd_response_head(struct moat_buf *out, const struct moat_h1_head *h,
			   const struct moat_fwd_resp *f);

#endif
