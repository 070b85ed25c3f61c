/*
 * h2s.h - the server side of HTTP/2 (RFC 9113) as a translator to and
 * from HTTP/1.1 bytes, on nghttp2.
 *
 * moat's proxy core speaks HTTP/1.1 on its client side (parser, txn,
 * modules). An HTTP/2 connection is turned into one HTTP/1.1 exchange per
 * stream: each request (HEADERS, CONTINUATION, DATA) becomes a well-formed
 * HTTP/1.1 request the core parses like any other, and the HTTP/1.1
 * response the core writes for that stream becomes HEADERS / DATA /
 * trailing HEADERS frames. No I/O here: the caller feeds the bytes read
 * from the connection (after TLS) and sends what moat_h2s_flush produces.
 *
 * Request translation (RFC 9113 §8.3, §8.2.2):
 *  - request line: ":method :path HTTP/1.1" (CONNECT and a missing or
 *    malformed pseudo-header refuse the stream: RST_STREAM PROTOCOL_ERROR;
 *    ":scheme" must be http or https; ":path" must start with "/" or be
 *    "*" for OPTIONS);
 *  - "Host: <:authority>" first; when :authority is absent, the host field
 *    is kept (both: :authority wins and the host field is dropped);
 *  - the other fields in order, names as received (lowercase), values as
 *    received; several cookie fields joined into one with "; "
 *    (§8.2.3); a field nghttp2 lets through that HTTP/1.1 cannot carry
 *    (CR, LF or NUL in a value) refuses the stream;
 *  - connection-specific fields (connection, keep-alive, proxy-connection,
 *    transfer-encoding, upgrade; te other than "trailers") refuse the stream
 *    (nghttp2 checks these already);
 *  - body: with content-length, the DATA bytes as they are, and the sum
 *    checked against it (more or fewer: RST_STREAM PROTOCOL_ERROR, §8.1.1);
 *    without content-length and without END_STREAM on the HEADERS,
 *    "Transfer-Encoding: chunked" is added and the DATA bytes are chunked
 *    (request trailers become chunked trailer fields); END_STREAM on the
 *    HEADERS: no body (and no framing field added, unless content-length
 *    was sent);
 *  - the head ends with CRLF CRLF (a head over the limits: see the
 *    header list protection below).
 *
 * Response translation: the caller writes the HTTP/1.1 response the core
 * produced for the stream (exactly what it would send to an HTTP/1.1
 * client: status line, fields, CRLF CRLF, body framed by Content-Length,
 * chunked, or by the end) through moat_h2s_resp_write. It is parsed
 * incrementally: 1xx heads become HEADERS without END_STREAM (101 refuses
 * the stream: there is no upgrade in HTTP/2); the final head becomes
 * HEADERS with ":status" and the fields lowercased, less connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade and te; the body
 * becomes DATA (chunked decoded; chunked trailers become a trailing HEADERS
 * with END_STREAM: gRPC's grpc-status arrives this way); a response to
 * HEAD, a 204 or a 304 has no DATA. A close-delimited body ends at
 * moat_h2s_resp_end.
 *
 * Flow control and memory: the response bytes accepted for a stream and
 * not yet framed are bounded (limits.stream_out_max): moat_h2s_resp_write
 * takes less than it is given when full, and the `writable` callback says
 * when the client's WINDOW_UPDATEs let more go (backpressure reaches the
 * backend read). Request DATA is acknowledged (WINDOW_UPDATE) only as the
 * core reads it (moat_h2s_req_read), so a slow backend holds the client
 * back; the windows advertised are limits.stream_window per stream and
 * limits.conn_window for the connection.
 *
 * Protections (each ends the connection with GOAWAY, error in
 * parentheses, and makes moat_h2s_feed return -1, except where a stream
 * reset is said):
 *  - SETTINGS_MAX_CONCURRENT_STREAMS = limits.max_streams (default 100);
 *    a stream beyond it is refused (RST_STREAM REFUSED_STREAM) and counted
 *    as a reset below;
 *  - rapid reset (CVE-2023-44487): streams reset by the client (or refused)
 *    draw from a bucket of limits.reset_burst (default 200) refilled at
 *    limits.reset_rate per second (default 100): empty -> GOAWAY
 *    (ENHANCE_YOUR_CALM); a reset stream's exchange is cancelled at once
 *    (the `closed` callback);
 *  - CONTINUATION flood (2024): a header block spread over more than
 *    limits.continuation_max frames (default 32), or whose encoded size
 *    passes 2 x header_list_max, -> GOAWAY (ENHANCE_YOUR_CALM) without
 *    decoding the rest;
 *  - header list: decoded size (RFC 9113 §6.5.2: name + value + 32 per
 *    field) over limits.header_list_max (advertised as
 *    SETTINGS_MAX_HEADER_LIST_SIZE) or more than limits.header_count_max
 *    fields: the stream gets a 431 response (HEADERS ":status 431",
 *    END_STREAM) - the connection lives on;
 *  - HPACK: our decoder's table is SETTINGS_HEADER_TABLE_SIZE 4096; our
 *    encoder's table at most 4096 whatever the client allows;
 *  - control frame floods: PING, SETTINGS, empty DATA / HEADERS without
 *    END_STREAM, WINDOW_UPDATE (beyond two for each DATA frame sent: those
 *    acknowledge our data) and PRIORITY frames each draw from one
 *    bucket of limits.ctrl_burst (default 1000) refilled at
 *    limits.ctrl_rate per second (default 500): empty -> GOAWAY
 *    (ENHANCE_YOUR_CALM); queued PING / SETTINGS acks are bounded too;
 *  - any protocol error nghttp2 finds: GOAWAY with its code.
 *
 * As built (h2s.c), where the above was loose:
 *  - moat_h2s_feed returns -1 for what moat's own checks find (the
 *    buckets, CONTINUATION, out of memory) and for nghttp2's fatal errors
 *    (bad client preface, ack flood: GOAWAY PROTOCOL_ERROR /
 *    ENHANCE_YOUR_CALM); for other connection errors nghttp2 finds, it
 *    queues the GOAWAY itself and feed returns the bytes consumed (nghttp2
 *    has no way to tell): moat_h2s_done turns 1 once the GOAWAY is flushed;
 *  - max_streams: before the client acknowledged our SETTINGS, a stream
 *    beyond it gets RST_STREAM REFUSED_STREAM (counted in `refused` and
 *    the reset bucket); after, nghttp2 1.52 treats it as a connection
 *    error (GOAWAY PROTOCOL_ERROR), which RFC 9113 §5.1.2 permits less
 *    gently but which only a client ignoring SETTINGS meets;
 *  - the control-frame bucket counts PING, SETTINGS, WINDOW_UPDATE,
 *    PRIORITY and empty (zero-length) DATA / HEADERS / CONTINUATION
 *    frames without END_STREAM; HEADERS with a header block are not
 *    counted;
 *  - without :authority the host field is kept where it was, as received
 *    ("host: ..."); with it, "Host: <:authority>" comes first;
 *  - request trailers over the header list limits reset the stream
 *    (ENHANCE_YOUR_CALM): the request head is gone already; trailers of a
 *    content-length request are dropped;
 *  - a 101 response resets the stream (INTERNAL_ERROR) and
 *    moat_h2s_resp_write returns -1; bytes written after a complete
 *    response are taken and dropped;
 *  - moat_h2s_req_read may queue a WINDOW_UPDATE: flush afterwards
 *    (moat_h2s_want_write says so);
 *  - stream ids (RFC 9113 §5.1.1): a HEADERS on an id the client skipped
 *    (below a newer stream's id, never opened, or only made known by
 *    PRIORITY) ends the connection (GOAWAY PROTOCOL_ERROR); nghttp2
 *    alone ignores it, as it cannot tell such an id from a stream it
 *    forgot. The last 8 ranges of skipped ids are remembered; a HEADERS
 *    on a stream that did open (late trailers) stays ignored;
 *  - where RFC 9113 asks for a stream error, nghttp2 makes some of them
 *    connection errors with the same code (h2spec accepts both): DATA /
 *    HEADERS on a half-closed (remote) or closed stream (STREAM_CLOSED),
 *    self-dependency and WINDOW_UPDATE 0 on a stream (PROTOCOL_ERROR),
 *    DATA over the frame size (FRAME_SIZE_ERROR), a stream over
 *    max_streams once SETTINGS is acknowledged (see above);
 *  - nghttp2's own limits sit behind ours: at most continuation_max
 *    CONTINUATION frames, a reset rate limit of 2 x ours, 1000 queued
 *    PING / SETTINGS acks, 32 entries a SETTINGS frame.
 *
 * Threading: one session, one thread. Callbacks run inside moat_h2s_feed
 * and moat_h2s_flush only; they must not call moat_h2s_* on the same
 * session (queue the stream and act after the call returns).
 */
#ifndef MOAT_HTTP_H2S_H
#define MOAT_HTTP_H2S_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", the client connection preface. */
#define MOAT_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MOAT_H2_PREFACE_LEN 24u

struct moat_h2s;

struct moat_h2s_limits {
	unsigned max_streams;        /* default 100 */
	size_t header_list_max;      /* default 32 KiB (moat passes limits.header_size_max) */
	size_t header_count_max;     /* default 100 (moat passes limits.header_count_max) */
	uint32_t stream_window;      /* default 256 KiB */
	uint32_t conn_window;        /* default 1 MiB */
	size_t stream_out_max;       /* response bytes held per stream; default 64 KiB */
	unsigned reset_burst, reset_rate;     /* defaults 200, 100/s */
	unsigned continuation_max;   /* default 32 */
	unsigned ctrl_burst, ctrl_rate;       /* defaults 1000, 500/s */
};

/* The caller's side of a session. `sp` is the pointer `open` returned. */
struct moat_h2s_ops {
	/* A request head is complete and valid: `head` holds the HTTP/1.1
	 * request head (through CRLF CRLF). Returns the stream's pointer, or
	 * NULL to refuse it (RST_STREAM REFUSED_STREAM, counted as a reset). */
	void *(*open)(void *ud, int32_t id, const char *head, size_t len);
	/* Request body bytes (already framed as the head says) can be read
	 * with moat_h2s_req_read, or the request ended. */
	void (*readable)(void *ud, void *sp);
	/* The stream may take more response bytes (after a short
	 * moat_h2s_resp_write). */
	void (*writable)(void *ud, void *sp);
	/* The stream is over: its response was sent whole and the request
	 * read whole (error 0), or it was reset by either side or the
	 * connection is ending (the error code). `sp` is not passed again
	 * after this; moat_h2s_* calls with it are ignored (return -1). */
	void (*closed)(void *ud, void *sp, uint32_t error_code);
};

/* NULL when out of memory. `lim` NULL or zero members: the defaults. The
 * server's SETTINGS are queued at once (moat_h2s_flush sends them). */
struct moat_h2s *moat_h2s_new(const struct moat_h2s_ops *ops, void *ud, const struct moat_h2s_limits *lim);
/* Frees the session; the `closed` callback is NOT called for open
 * streams (the caller tears them down itself). */
void moat_h2s_free(struct moat_h2s *h);

/* Takes bytes read from the connection (the client preface first).
 * Returns the bytes consumed (all of them, or fewer when the session has
 * nothing more to do with input: after GOAWAY), or -1 on a connection
 * error (GOAWAY queued: flush it, then close). */
ssize_t moat_h2s_feed(struct moat_h2s *h, const uint8_t *p, size_t n);

/* Appends frames ready to go to `out` (as much as its maximum takes).
 * Returns the bytes appended (0: nothing to send now) or -1 on a fatal
 * error. */
ssize_t moat_h2s_flush(struct moat_h2s *h, struct moat_buf *out);

/* 1 when there is nothing more to do: GOAWAY sent or received and every
 * stream closed, or a connection error; flush, then close. */
int moat_h2s_done(const struct moat_h2s *h);
/* 1 while frames wait to be produced by moat_h2s_flush. */
int moat_h2s_want_write(const struct moat_h2s *h);

/* Graceful shutdown (worker stopping, reload retiring): GOAWAY with the
 * last stream id seen; open streams finish. */
void moat_h2s_shutdown(struct moat_h2s *h);

/* Request body of a stream: copies up to cap bytes (framed as the head
 * said: raw with content-length, chunked otherwise) and acknowledges them
 * to the client's flow control. Returns the bytes copied; 0 when none is
 * there now; -1 for an unknown stream. *ended is set to 1 once every byte
 * of the request (incl. the final chunk) has been read. */
ssize_t moat_h2s_req_read(struct moat_h2s *h, void *sp, char *buf, size_t cap, int *ended);

/* Response bytes for a stream (see above). Returns the bytes taken (< n
 * when the stream's buffer is full: wait for `writable`), or -1 when the
 * bytes are no valid HTTP/1.1 response or the stream is gone (the stream
 * is reset with INTERNAL_ERROR when it was still open). */
ssize_t moat_h2s_resp_write(struct moat_h2s *h, void *sp, const char *p, size_t n);
/* The core is done with the stream's response: a close-delimited body
 * ends (END_STREAM); a response cut short resets the stream
 * (INTERNAL_ERROR); an unread request is cancelled (RST_STREAM NO_ERROR
 * after the response, §8.1). The `closed` callback follows once nghttp2
 * closes the stream. */
void moat_h2s_resp_end(struct moat_h2s *h, void *sp);

/* Counters for /metrics and tests. */
struct moat_h2s_stats {
	uint64_t streams;            /* opened */
	uint64_t resets_recv;        /* RST_STREAM from the client */
	uint64_t refused;            /* streams refused (limits, open() NULL) */
	uint64_t goaway_calm;        /* connections ended with ENHANCE_YOUR_CALM */
};
void moat_h2s_get_stats(const struct moat_h2s *h, struct moat_h2s_stats *st);

#endif
