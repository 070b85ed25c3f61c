/*
 * h2c.h - the client side of HTTP/2 (RFC 9113) towards a backend, as a
 * translator to and from HTTP/1.1 bytes, on nghttp2. Used for h2c:// and
 * h2:// servers (gRPC and other HTTP/2-only backends).
 *
 * The proxy core writes an HTTP/1.1 request to a backend connection and
 * parses an HTTP/1.1 response from it. On an HTTP/2 backend connection
 * this translator sits between: the request bytes the core writes become
 * one stream's HEADERS / DATA / trailing HEADERS, and the stream's response
 * frames become HTTP/1.1 response bytes the core reads. No I/O here: the
 * caller feeds what it reads from the socket (after TLS for h2://) and
 * sends what moat_h2c_flush produces.
 *
 * One exchange at a time per connection (the core's model: a backend
 * connection carries one request, then goes back to the idle pool); each
 * new request opens the next stream on the same connection, so the
 * connection and its HPACK state are reused. moat_h2c_reusable says when
 * another request may go.
 *
 * Request translation: the HTTP/1.1 head (request line, fields, CRLF CRLF;
 * may arrive in pieces) becomes ":method", ":scheme" (the one given at
 * moat_h2c_new), ":authority" (from Host; the Host field dropped),
 * ":path" (the target; an absolute-form target is split), the other
 * fields lowercased, less connection, keep-alive, proxy-connection,
 * transfer-encoding, upgrade, host, and te unless "trailers" (kept: gRPC
 * requires "te: trailers"). The body is read as the head frames it
 * (Content-Length bytes, or chunked decoded, its trailers becoming a
 * trailing HEADERS) and sent as DATA within the server's flow-control
 * windows; END_STREAM on the last DATA (or on the HEADERS when there is no
 * body).
 *
 * Response translation: ":status" and the fields become an HTTP/1.1 head
 * "HTTP/1.1 <status> <reason>", fields as received (lowercase names);
 * 1xx HEADERS become 1xx heads. The body: when the response has
 * content-length and no trailers can follow... since trailers cannot be
 * known in advance, the rule is: with content-length the body is raw
 * (trailers, if any, are dropped); without it the body is chunked
 * ("Transfer-Encoding: chunked" added) and the trailing HEADERS become
 * the chunked trailer section (gRPC's grpc-status / grpc-message reach
 * the client this way). A response to HEAD, 204 and 304 have no body.
 * RST_STREAM before the response ended: moat_h2c_read returns -1 (the core
 * then treats the backend as failed mid-response).
 *
 * Flow control: response DATA is acknowledged (WINDOW_UPDATE) only as the
 * core reads it (moat_h2c_read), so a slow client holds the backend back;
 * the windows advertised are 256 KiB per stream, 1 MiB per connection.
 * Request bytes accepted but not yet framed are bounded (64 KiB):
 * moat_h2c_write takes less when full.
 *
 * Threading: one session, one thread; no callbacks into the caller.
 *
 * Details the implementation settled (h2c.c):
 *  - A response without content-length whose final HEADERS carry
 *    END_STREAM gets "content-length: 0" instead of a chunked body. The
 *    added field is spelt "Transfer-Encoding: chunked"; the reason phrase
 *    is the standard one for the status, "Status" for unknown codes.
 *  - moat_h2c_write takes only the bytes of the request in progress; once
 *    the request is whole, more bytes (a pipelined request) are refused
 *    with -1 until the exchange completes. A CONNECT request is refused
 *    (-1). After -1 for an invalid request the connection is not reusable.
 *  - moat_h2c_read hands out what it holds before reporting -1 for a reset
 *    stream. An exchange that failed (reset, refused by GOAWAY) leaves the
 *    connection not reusable, even though HTTP/2 would allow another
 *    stream. A protocol error in what the server sent (nghttp2 answers with
 *    GOAWAY) shows as -1 / eof once that GOAWAY has been flushed.
 *  - Fields the request's Connection field names are dropped too; Expect
 *    is forwarded (a 100 from the server comes back as a 1xx head).
 */
#ifndef MOAT_HTTP_H2C_H
#define MOAT_HTTP_H2C_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

struct moat_h2c;

/* `scheme`: "http" (h2c://) or "https" (h2://). NULL when out of memory.
 * The client preface and SETTINGS are queued at once. */
struct moat_h2c *moat_h2c_new(const char *scheme);
void moat_h2c_free(struct moat_h2c *h);

/* Bytes read from the backend connection. Returns the bytes consumed or
 * -1 on a connection error (the connection must be closed; a response in
 * progress fails). */
ssize_t moat_h2c_feed(struct moat_h2c *h, const uint8_t *p, size_t n);

/* Appends frames ready to go to `out` (as much as its maximum takes).
 * Returns the bytes appended or -1 on a fatal error. */
ssize_t moat_h2c_flush(struct moat_h2c *h, struct moat_buf *out);
int moat_h2c_want_write(const struct moat_h2c *h);

/* The core's HTTP/1.1 request bytes (head, then body). Returns the bytes
 * taken (fewer when the buffer is full), or -1 when they are no valid
 * request or the connection is unusable. A new request may start only
 * when moat_h2c_reusable is 1. */
ssize_t moat_h2c_write(struct moat_h2c *h, const char *p, size_t n);

/* The response as HTTP/1.1 bytes: copies up to cap bytes; returns the
 * bytes copied, 0 when none is there now (*eof set to 1 when the server
 * ended the connection (GOAWAY or EOF fed as moat_h2c_feed(h, NULL, 0))
 * and nothing more will come), or -1 when the stream was reset or the
 * connection failed before the response was whole. */
ssize_t moat_h2c_read(struct moat_h2c *h, char *buf, size_t cap, int *eof);

/* 1 when the last exchange is complete (request sent, response read to
 * its end), the server sent no GOAWAY and stream ids remain: the
 * connection may carry another request. */
int moat_h2c_reusable(const struct moat_h2c *h);

#endif
