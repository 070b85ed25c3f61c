/*
 * h2c_test.c - unit tests of src/http/h2c.c.
 *
 * An nghttp2 *server* session plays the backend: pump() moves what
 * moat_h2c_flush produces into the server's mem_recv and what the server's
 * mem_send produces into moat_h2c_feed until neither has anything left. The
 * server records the request it got (HEADERS, body, trailing HEADERS,
 * which frame ended the stream) and answers with what a test queues. The
 * HTTP/1.1 response bytes moat_h2c_read gives are checked with the
 * project's own parsers (moat_h1_parse_response, moat_chunked_decode).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "http/chunked.h"
#include "http/h1_parse.h"
#include "http/h2c.h"

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }
#define BODY_CAP (2u * 1024u * 1024u)

/* The backend. */
static struct {
	nghttp2_session *s;
	struct moat_h2c *c;
	int32_t sid;
	char hdrs[8192];      /* request HEADERS, "name: value\n" each */
	char trailers[4096];  /* trailing HEADERS */
	char *body;
	size_t body_len;
	int end_type;         /* frame type that carried END_STREAM, -1 none */
	uint32_t closed_err;
	int closed;
	/* the response body the data provider sends */
	const char *resp;
	size_t resp_len, resp_off;
	const nghttp2_nv *tr;
	size_t ntr;
	int manual_consume;   /* the server does not give the window back itself */
} sv;

static void add_line(char *dst, size_t cap, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	size_t len = strlen(dst);

	assert_true(len + nl + vl + 3 < cap);
	memcpy(dst + len, n, nl);
	memcpy(dst + len + nl, ": ", 2);
	memcpy(dst + len + nl + 2, v, vl);
	dst[len + nl + 2 + vl] = '\n';
	dst[len + nl + 3 + vl] = '\0';
}

static int s_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl, const uint8_t *v,
		       size_t vl, uint8_t flags, void *ud)
{
	(void)s;
	(void)flags;
	(void)ud;
	if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		sv.sid = f->hd.stream_id;
		add_line(sv.hdrs, sizeof sv.hdrs, n, nl, v, vl);
	} else {
		add_line(sv.trailers, sizeof sv.trailers, n, nl, v, vl);
	}
	return 0;
}

static int s_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)s;
	(void)ud;
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		sv.end_type = f->hd.type;
	return 0;
}

static int s_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *d, size_t len, void *ud)
{
	(void)s;
	(void)flags;
	(void)sid;
	(void)ud;
	assert_true(sv.body_len + len <= BODY_CAP);
	memcpy(sv.body + sv.body_len, d, len);
	sv.body_len += len;
	return 0;
}

static int s_on_close(nghttp2_session *s, int32_t sid, uint32_t err, void *ud)
{
	(void)s;
	(void)sid;
	(void)ud;
	sv.closed = 1;
	sv.closed_err = err;
	return 0;
}

static void server_new(uint32_t initial_window)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window },
	};

	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, s_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, s_on_close);
	assert_int_equal(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_no_auto_window_update(opt, sv.manual_consume);
	assert_int_equal(nghttp2_session_server_new2(&sv.s, cb, NULL, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(sv.s, NGHTTP2_FLAG_NONE, iv, 2), 0);
}

static void reset_request(void)
{
	sv.sid = 0;
	sv.hdrs[0] = sv.trailers[0] = '\0';
	sv.body_len = 0;
	sv.end_type = -1;
	sv.closed = 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&sv, 0, sizeof(sv));
	sv.body = malloc(BODY_CAP);
	assert_non_null(sv.body);
	reset_request();
	sv.c = moat_h2c_new("http");
	assert_non_null(sv.c);
	server_new(65535);
	return 0;
}

static int setup_manual(void **state)
{
	(void)state;
	memset(&sv, 0, sizeof(sv));
	sv.body = malloc(BODY_CAP);
	assert_non_null(sv.body);
	reset_request();
	sv.manual_consume = 1;
	sv.c = moat_h2c_new("https");
	assert_non_null(sv.c);
	server_new(1000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	moat_h2c_free(sv.c);
	nghttp2_session_del(sv.s);
	free(sv.body);
	return 0;
}

/* Moves bytes both ways until both sides are quiet. */
static void pump(void)
{
	int i;

	for (i = 0; i < 10000; i++) {
		struct moat_buf out;
		const uint8_t *d;
		size_t moved = 0;
		ssize_t n;

		moat_buf_init(&out, NULL, 1u << 20);
		n = moat_h2c_flush(sv.c, &out);
		assert_true(n >= 0);
		if (n > 0) {
			assert_int_equal(nghttp2_session_mem_recv(sv.s, (const uint8_t *)moat_buf_head(&out), (size_t)n), n);
			moved += (size_t)n;
		}
		moat_buf_release(&out);
		while ((n = nghttp2_session_mem_send(sv.s, &d)) > 0) {
			assert_int_equal(moat_h2c_feed(sv.c, d, (size_t)n), n);
			moved += (size_t)n;
		}
		assert_true(n == 0);
		if (moved == 0)
			return;
	}
	fail_msg("pump does not settle");
}

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = moat_h2c_write(sv.c, p, n);

		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
		pump();
	}
}

static void write_str(const char *s)
{
	write_all(s, strlen(s));
}

static ssize_t s_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
		      nghttp2_data_source *src, void *ud)
{
	size_t k = sv.resp_len - sv.resp_off;

	(void)src;
	(void)ud;
	if (k > len)
		k = len;
	memcpy(buf, sv.resp + sv.resp_off, k);
	sv.resp_off += k;
	if (sv.resp_off == sv.resp_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (sv.ntr) {
			assert_int_equal(nghttp2_submit_trailer(s, sid, sv.tr, sv.ntr), 0);
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	}
	return (ssize_t)k;
}

/* Queues a response on the current stream: body NULL means END_STREAM on
 * the HEADERS. */
static void respond(const nghttp2_nv *nva, size_t n, const char *body, size_t len, const nghttp2_nv *tr,
		    size_t ntr)
{
	nghttp2_data_provider prov;

	sv.resp = body;
	sv.resp_len = len;
	sv.resp_off = 0;
	sv.tr = tr;
	sv.ntr = ntr;
	prov.source.ptr = NULL;
	prov.read_callback = s_read;
	assert_true(sv.sid > 0);
	assert_int_equal(nghttp2_submit_response(sv.s, sv.sid, nva, n, body ? &prov : NULL), 0);
	pump();
}

/* Reads what is there, `step` bytes a call, pumping between calls. Returns
 * the length, *rc the last read's result (0 or -1), *eof its eof. */
static size_t read_resp(char *buf, size_t cap, size_t step, int *rc, int *eof)
{
	size_t got = 0;

	*rc = 0;
	*eof = 0;
	for (;;) {
		size_t want = cap - got < step ? cap - got : step;
		ssize_t r = moat_h2c_read(sv.c, buf + got, want, eof);

		assert_true(r <= (ssize_t)want);
		if (r <= 0) {
			*rc = (int)r;
			break;
		}
		got += (size_t)r;
		pump();
	}
	buf[got] = '\0';
	return got;
}

/* Parses a complete response: the head, then the body by its framing. */
struct resp {
	int status;
	char reason[32];
	enum moat_h1_framing framing;
	char head[4096];
	char body[4096];
	size_t body_len;
	char trailers[1024];
	size_t total;
};

static void parse_resp(const char *buf, size_t len, int is_head, struct resp *r)
{
	struct moat_h1_header fields[32];
	struct moat_h1_head h;
	struct moat_h1_limits lim = { 8192, 8192, 32 };
	int n;

	memset(r, 0, sizeof(*r));
	memset(&h, 0, sizeof(h));
	h.headers = fields;
	h.header_cap = 32;
	n = moat_h1_parse_response(buf, len, &h, &lim, is_head);
	assert_true(n > 0);
	r->status = h.status;
	memcpy(r->reason, h.reason, h.reason_len);
	memcpy(r->head, buf, (size_t)n);
	r->framing = h.framing;
	if (h.framing == MOAT_H1_BODY_LENGTH) {
		assert_true(len - (size_t)n >= h.content_length);
		memcpy(r->body, buf + n, (size_t)h.content_length);
		r->body_len = (size_t)h.content_length;
		r->total = (size_t)n + r->body_len;
	} else if (h.framing == MOAT_H1_BODY_CHUNKED) {
		struct moat_chunked d;
		size_t at = (size_t)n;

		moat_chunked_init(&d);
		for (;;) {
			size_t consumed, off, l;
			int e = moat_chunked_decode(&d, buf + at, len - at, &consumed, &off, &l);

			assert_true(e > 0);
			if (e == MOAT_CHUNKED_DATA) {
				memcpy(r->body + r->body_len, buf + at + off, l);
				r->body_len += l;
			} else if (e == MOAT_CHUNKED_TRAILER) {
				strncat(r->trailers, buf + at + off, l);
				strcat(r->trailers, "\n");
			}
			at += consumed;
			if (e == MOAT_CHUNKED_DONE)
				break;
			assert_int_not_equal(e, MOAT_CHUNKED_NEED);
		}
		r->total = at;
	} else {
		r->total = (size_t)n;
	}
	assert_int_equal(r->total, len); /* nothing after the message */
}

static void get_exchange(const char *req, const nghttp2_nv *nva, size_t n, const char *body, int is_head,
			 struct resp *r)
{
	static char buf[65536];
	int rc, eof;
	size_t len;

	reset_request();
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
	write_str(req);
	respond(nva, n, body, body ? strlen(body) : 0, NULL, 0);
	len = read_resp(buf, sizeof buf - 1, 100, &rc, &eof);
	assert_int_equal(rc, 0);
	assert_int_equal(eof, 0);
	parse_resp(buf, len, is_head, r);
}

static void test_get(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "5"), NV("x-b", "y") };
	struct resp r;

	(void)state;
	pump();
	get_exchange("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Foo\r\n"
		     "X-Foo: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUser-Agent: t/1\r\n"
		     "Upgrade: websocket\r\nAccept: */*\r\n\r\n",
		     nva, 3, "hello", 0, &r);
	assert_string_equal(sv.hdrs, ":method: GET\n:scheme: http\n:authority: example.com\n:path: /a?b=1\n"
				     "te: trailers\nuser-agent: t/1\naccept: */*\n");
	assert_int_equal(sv.end_type, NGHTTP2_HEADERS);
	assert_int_equal(sv.body_len, 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_int_equal(r.framing, MOAT_H1_BODY_LENGTH);
	assert_string_equal(r.head, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-b: y\r\n\r\n");
	assert_memory_equal(r.body, "hello", 5);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_absolute_form(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "404"), NV("content-length", "0") };
	struct resp r;

	(void)state;
	pump();
	get_exchange("GET http://h.example:8080 HTTP/1.1\r\nHost: other\r\nTE: gzip\r\n\r\n", nva, 2, NULL, 0, &r);
	assert_string_equal(sv.hdrs, ":method: GET\n:scheme: http\n:authority: h.example:8080\n:path: /\n");
	assert_int_equal(r.status, 404);
	assert_string_equal(r.reason, "Not Found");
	assert_int_equal(r.body_len, 0);
}

static void test_post_length(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "201") };
	static char buf[8192];
	const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello";
	struct resp r;
	int rc, eof;
	size_t len;

	(void)state;
	pump();
	write_str(req);
	assert_int_equal(sv.end_type, -1);
	write_str(" world");
	assert_string_equal(sv.hdrs, ":method: POST\n:scheme: http\n:authority: h\n:path: /up\ncontent-length: 11\n");
	assert_int_equal(sv.body_len, 11);
	assert_memory_equal(sv.body, "hello world", 11);
	assert_int_equal(sv.end_type, NGHTTP2_DATA);
	/* the request is whole: more bytes are no part of it */
	assert_int_equal(moat_h2c_write(sv.c, "GET", 3), -1);
	respond(nva, 1, "ok", 2, NULL, 0);
	len = read_resp(buf, sizeof buf - 1, 7, &rc, &eof);
	assert_int_equal(rc, 0);
	parse_resp(buf, len, 0, &r);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.reason, "Created");
	assert_int_equal(r.framing, MOAT_H1_BODY_CHUNKED);
	assert_int_equal(r.body_len, 2);
	assert_memory_equal(r.body, "ok", 2);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_post_chunked_trailers(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "0") };
	const char *req = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Check: abc\r\nContent-Length: 9\r\n\r\n";
	static char buf[8192];
	struct resp r;
	int rc, eof;
	size_t i, len;

	(void)state;
	pump();
	/* one byte at a time: the head, the chunk framing and the trailer
	 * lines all arrive in pieces */
	for (i = 0; req[i]; i++) {
		assert_int_equal(moat_h2c_write(sv.c, req + i, 1), 1);
		if (i % 7 == 0)
			pump();
	}
	pump();
	assert_string_equal(sv.hdrs, ":method: POST\n:scheme: http\n:authority: h\n:path: /c\n");
	assert_int_equal(sv.body_len, 11);
	assert_memory_equal(sv.body, "hello world", 11);
	assert_string_equal(sv.trailers, "x-check: abc\n");
	assert_int_equal(sv.end_type, NGHTTP2_HEADERS);
	respond(nva, 2, NULL, 0, NULL, 0);
	len = read_resp(buf, sizeof buf - 1, 1000, &rc, &eof);
	parse_resp(buf, len, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_grpc(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-type", "application/grpc") };
	const nghttp2_nv tr[] = { NV("grpc-status", "0"), NV("grpc-message", "fine") };
	static const char msg[] = "\0\0\0\0\3abc";
	static const char reply[] = "\0\0\0\0\2xy";
	static char req[512];
	static char buf[8192];
	struct resp r;
	int rc, eof, n;
	size_t len;

	(void)state;
	pump();
	n = snprintf(req, sizeof req,
		     "POST /pkg.Svc/Call HTTP/1.1\r\nHost: grpc.local\r\nContent-Type: application/grpc\r\n"
		     "TE: trailers\r\nContent-Length: %zu\r\n\r\n",
		     sizeof msg - 1);
	memcpy(req + n, msg, sizeof msg - 1);
	write_all(req, (size_t)n + sizeof msg - 1);
	assert_string_equal(sv.hdrs, ":method: POST\n:scheme: http\n:authority: grpc.local\n:path: /pkg.Svc/Call\n"
				     "te: trailers\ncontent-type: application/grpc\ncontent-length: 8\n");
	assert_int_equal(sv.body_len, 8);
	assert_memory_equal(sv.body, msg, 8);
	respond(nva, 2, reply, sizeof reply - 1, tr, 2);
	len = read_resp(buf, sizeof buf - 1, 5, &rc, &eof);
	assert_int_equal(rc, 0);
	parse_resp(buf, len, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_int_equal(r.framing, MOAT_H1_BODY_CHUNKED);
	assert_string_equal(r.head, "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, reply, 7);
	assert_string_equal(r.trailers, "grpc-status: 0\ngrpc-message: fine\n");
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_trailers_dropped_with_length(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "3") };
	const nghttp2_nv tr[] = { NV("x-t", "1") };
	static char buf[8192];
	struct resp r;
	int rc, eof;
	size_t len;

	(void)state;
	pump();
	write_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	respond(nva, 2, "abc", 3, tr, 1);
	len = read_resp(buf, sizeof buf - 1, 4096, &rc, &eof);
	parse_resp(buf, len, 0, &r);
	assert_string_equal(buf, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc");
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_no_body_and_reuse(void **state)
{
	const nghttp2_nv head[] = { NV(":status", "200"), NV("content-length", "100") };
	const nghttp2_nv nc[] = { NV(":status", "204") };
	const nghttp2_nv nm[] = { NV(":status", "304"), NV("etag", "\"x\"") };
	const nghttp2_nv odd[] = { NV(":status", "299") };
	struct resp r;
	int32_t first;

	(void)state;
	pump();
	get_exchange("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n", head, 2, NULL, 1, &r);
	assert_string_equal(r.head, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
	assert_int_equal(r.framing, MOAT_H1_BODY_NONE);
	first = sv.sid;
	get_exchange("GET /n HTTP/1.1\r\nHost: h\r\n\r\n", nc, 1, NULL, 0, &r);
	assert_string_equal(r.head, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(sv.sid, first + 2);
	get_exchange("GET /m HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n", nm, 2, NULL, 0, &r);
	assert_string_equal(r.head, "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n");
	assert_int_equal(sv.sid, first + 4);
	get_exchange("GET /o HTTP/1.1\r\nHost: h\r\n\r\n", odd, 1, NULL, 0, &r);
	assert_string_equal(r.head, "HTTP/1.1 299 Status\r\ncontent-length: 0\r\n\r\n");
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_rst_mid_response(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "100") };
	static char buf[8192];
	int rc, eof;
	size_t len;

	(void)state;
	pump();
	write_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(nghttp2_submit_headers(sv.s, NGHTTP2_FLAG_NONE, sv.sid, NULL, nva, 2, NULL), 0);
	pump();
	len = read_resp(buf, sizeof buf - 1, 4096, &rc, &eof);
	assert_int_equal(rc, 0);
	assert_string_equal(buf, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
	assert_int_equal(nghttp2_submit_rst_stream(sv.s, NGHTTP2_FLAG_NONE, sv.sid, NGHTTP2_INTERNAL_ERROR), 0);
	pump();
	len = read_resp(buf, sizeof buf - 1, 4096, &rc, &eof);
	assert_int_equal(len, 0);
	assert_int_equal(rc, -1);
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
}

static void test_goaway(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "2") };
	static char buf[8192];
	struct resp r;
	int rc, eof;

	(void)state;
	pump();
	get_exchange("GET / HTTP/1.1\r\nHost: h\r\n\r\n", nva, 2, "hi", 0, &r);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
	assert_int_equal(nghttp2_submit_goaway(sv.s, NGHTTP2_FLAG_NONE, sv.sid, NGHTTP2_NO_ERROR, NULL, 0), 0);
	pump();
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
	assert_int_equal(read_resp(buf, sizeof buf - 1, 100, &rc, &eof), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(eof, 1);
	assert_int_equal(moat_h2c_write(sv.c, "GET / HTTP/1.1\r\n", 16), -1);
}

static void test_goaway_refuses_stream(void **state)
{
	static char buf[8192];
	int rc, eof;

	(void)state;
	pump();
	write_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(nghttp2_submit_goaway(sv.s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0), 0);
	pump();
	assert_int_equal(read_resp(buf, sizeof buf - 1, 100, &rc, &eof), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
}

static void test_eof_mid_response(void **state)
{
	static char buf[64];
	int eof;

	(void)state;
	pump();
	write_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(moat_h2c_read(sv.c, buf, sizeof buf, &eof), 0);
	assert_int_equal(eof, 0);
	assert_int_equal(moat_h2c_feed(sv.c, NULL, 0), 0);
	assert_int_equal(moat_h2c_read(sv.c, buf, sizeof buf, &eof), -1);
}

static void test_eof_idle(void **state)
{
	static char buf[64];
	int eof;

	(void)state;
	pump();
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
	assert_int_equal(moat_h2c_read(sv.c, buf, sizeof buf, &eof), 0);
	assert_int_equal(eof, 0);
	assert_int_equal(moat_h2c_feed(sv.c, NULL, 0), 0);
	assert_int_equal(moat_h2c_read(sv.c, buf, sizeof buf, &eof), 0);
	assert_int_equal(eof, 1);
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
}

static void test_bad_request(void **state)
{
	(void)state;
	pump();
	assert_int_equal(moat_h2c_write(sv.c, "GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\n\r\n", 40), -1);
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
}

static void test_garbage_from_server(void **state)
{
	static const uint8_t junk[] = "\0\0\4\x08\0\0\0\0\0\0\0\0\0"; /* WINDOW_UPDATE of 0 on the connection */
	static char buf[64];
	int eof;

	(void)state;
	pump();
	write_str("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	(void)moat_h2c_feed(sv.c, junk, sizeof junk - 1);
	/* the connection error shows once its GOAWAY went out */
	{
		struct moat_buf out;

		moat_buf_init(&out, NULL, 1u << 20);
		assert_true(moat_h2c_flush(sv.c, &out) > 0);
		assert_int_equal(nghttp2_session_mem_recv(sv.s, (const uint8_t *)moat_buf_head(&out), moat_buf_len(&out)),
				 (ssize_t)moat_buf_len(&out));
		moat_buf_release(&out);
	}
	assert_int_equal(moat_h2c_read(sv.c, buf, sizeof buf, &eof), -1);
	assert_int_equal(moat_h2c_reusable(sv.c), 0);
}

static void test_response_window(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "1048576") };
	static char big[1 << 20];
	static char buf[(1 << 20) + 4096];
	static char out[16384];
	size_t i, got = 0, head = 0, sent_before;
	int eof;

	(void)state;
	for (i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 26);
	pump();
	write_str("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
	respond(nva, 2, big, sizeof big, NULL, 0);
	/* the server sent one stream window, no more */
	assert_int_equal(sv.resp_off, 256 * 1024);
	assert_int_equal(nghttp2_session_get_stream_remote_window_size(sv.s, sv.sid), 0);
	/* one read of 16 KiB gives back too little for a WINDOW_UPDATE */
	sent_before = sv.resp_off;
	for (;;) {
		ssize_t r = moat_h2c_read(sv.c, out, sizeof out, &eof);

		assert_true(r >= 0);
		if (r == 0)
			break;
		memcpy(buf + got, out, (size_t)r);
		got += (size_t)r;
		pump();
		if (got < 64 * 1024)
			assert_int_equal(sv.resp_off, sent_before);
		assert_true(sv.resp_off <= got + 256 * 1024);
	}
	assert_int_equal(eof, 0);
	head = strlen("HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n");
	assert_int_equal(got, head + sizeof big);
	assert_memory_equal(buf, "HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n", head);
	assert_memory_equal(buf + head, big, sizeof big);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

static void test_request_window(void **state)
{
	const nghttp2_nv nva[] = { NV(":status", "200"), NV("content-length", "0") };
	static char req[300 * 1024];
	static char buf[4096];
	size_t body = 250 * 1024, hl, off = 0, i, consumed = 0;
	int rc, eof, rounds = 0;

	(void)state;
	hl = (size_t)snprintf(req, sizeof req, "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", body);
	for (i = 0; i < body; i++)
		req[hl + i] = (char)('0' + i % 10);
	pump();
	for (;;) {
		ssize_t k = moat_h2c_write(sv.c, req + off, hl + body - off);

		assert_true(k >= 0);
		off += (size_t)k;
		pump();
		if (k == 0)
			break;
	}
	/* the server's window of 1000 bytes was sent, and 64 KiB wait */
	assert_int_equal(sv.body_len, 1000);
	assert_int_equal(off, hl + 1000 + 64 * 1024);
	/* as the server gives window back, the rest flows */
	while (sv.end_type == -1) {
		assert_true(++rounds < 100000);
		if (sv.body_len > consumed) {
			assert_int_equal(nghttp2_session_consume(sv.s, sv.sid, sv.body_len - consumed), 0);
			consumed = sv.body_len;
		}
		pump();
		if (off < hl + body) {
			ssize_t k = moat_h2c_write(sv.c, req + off, hl + body - off);

			assert_true(k >= 0);
			off += (size_t)k;
			pump();
		}
	}
	assert_int_equal(sv.end_type, NGHTTP2_DATA);
	assert_int_equal(sv.body_len, body);
	assert_memory_equal(sv.body, req + hl, body);
	respond(nva, 2, NULL, 0, NULL, 0);
	assert_true(read_resp(buf, sizeof buf - 1, 4096, &rc, &eof) > 0);
	assert_int_equal(rc, 0);
	assert_int_equal(moat_h2c_reusable(sv.c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_chunked_trailers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailers_dropped_with_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_body_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_mid_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_goaway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_goaway_refuses_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_mid_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_from_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_window, setup_manual, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
