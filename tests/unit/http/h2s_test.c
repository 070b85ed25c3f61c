/*
 * h2s_test.c - unit tests of src/http/h2s.c.
 *
 * Each test drives a moat_h2s with an nghttp2 client session: what the
 * client's mem_send produces goes to moat_h2s_feed, what moat_h2s_flush
 * produces goes to the client's mem_recv (pump()). The test plays the
 * proxy core too: ops->open records the HTTP/1.1 head, and the test calls
 * moat_h2s_req_read / resp_write / resp_end between pumps, as the core
 * does. A few attacks are written as raw frames.
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

#include "http/h1_parse.h"
#include "http/h2s.h"

#define NSS 64      /* server-side streams tracked */
#define NCS 64      /* client-side streams tracked (ids < 2 * NCS) */

/* The core's view of one stream (the `sp`). */
struct sstream {
	int32_t id;
	char head[65536];
	size_t head_len;
	int readable, writable, closed;
	uint32_t code;
};

/* The client's view of one stream. */
struct cstream {
	char hdrs[4][8192];  /* header blocks received, "name: value\n" each */
	size_t hlen[4];
	int nblocks;
	char data[65536];
	size_t dlen;
	int ended;          /* END_STREAM received */
	int rst;            /* RST_STREAM received */
	uint32_t rst_code;
	int closed;
};

struct tc {
	nghttp2_session *cli;
	struct moat_h2s *h;
	struct moat_buf out;
	struct sstream ss[NSS];
	int nss;
	int refuse_open;
	struct cstream cs[NCS];
	int goaway;
	uint32_t goaway_code;
	int wu_stream;      /* WINDOW_UPDATE frames for a stream received by the client */
	int feed_err;       /* moat_h2s_feed returned -1 */
	uint64_t closed_any;
};

static struct tc *T;

/* ---- the core's side ---- */

static void *op_open(void *ud, int32_t id, const char *head, size_t len)
{
	struct tc *t = ud;
	struct sstream *s;

	if (t->refuse_open)
		return NULL;
	s = &t->ss[t->nss++ % NSS];
	memset(s, 0, sizeof(*s));
	s->id = id;
	assert_true(len < sizeof(s->head));
	memcpy(s->head, head, len);
	s->head_len = len;
	return s;
}

static void op_readable(void *ud, void *sp) { ((struct sstream *)sp)->readable++; }
static void op_writable(void *ud, void *sp) { ((struct sstream *)sp)->writable++; }

static void op_closed(void *ud, void *sp, uint32_t code)
{
	struct sstream *s = sp;

	s->closed++;
	s->code = code;
	((struct tc *)ud)->closed_any++;
}

static const struct moat_h2s_ops ops = { op_open, op_readable, op_writable, op_closed };

/* ---- the client's side ---- */

static struct cstream *cs_of(struct tc *t, int32_t id)
{
	return id > 0 && id / 2 < NCS ? &t->cs[id / 2] : NULL;
}

static int c_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct cstream *c = cs_of(ud, f->hd.stream_id);

	if (c && c->nblocks < 4)
		c->nblocks++;
	return 0;
}

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl, const uint8_t *v,
		    size_t vl, uint8_t flags, void *ud)
{
	struct cstream *c = cs_of(ud, f->hd.stream_id);
	int b;

	if (c == NULL || c->nblocks == 0)
		return 0;
	b = c->nblocks - 1;
	c->hlen[b] += (size_t)snprintf(c->hdrs[b] + c->hlen[b], sizeof(c->hdrs[b]) - c->hlen[b], "%.*s: %.*s\n",
				       (int)nl, n, (int)vl, v);
	return 0;
}

static int c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *ud)
{
	struct cstream *c = cs_of(ud, id);

	if (c) {
		assert_true(c->dlen + len <= sizeof(c->data));
		memcpy(c->data + c->dlen, d, len);
		c->dlen += len;
	}
	return 0;
}

static int c_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct tc *t = ud;
	struct cstream *c = cs_of(t, f->hd.stream_id);

	if (f->hd.type == NGHTTP2_GOAWAY) {
		t->goaway++;
		t->goaway_code = f->goaway.error_code;
	} else if (f->hd.type == NGHTTP2_WINDOW_UPDATE && f->hd.stream_id) {
		t->wu_stream++;
	} else if (f->hd.type == NGHTTP2_RST_STREAM && c) {
		c->rst = 1;
		c->rst_code = f->rst_stream.error_code;
	}
	if (c && (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		c->ended = 1;
	return 0;
}

static int c_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct cstream *c = cs_of(ud, id);

	if (c)
		c->closed = 1;
	return 0;
}

static struct tc *setup_with(const struct moat_h2s_limits *lim, uint32_t client_window)
{
	struct tc *t = calloc(1, sizeof(*t));
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry set[1];

	assert_non_null(t);
	T = t;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
	nghttp2_option_new(&opt);
	if (client_window)
		nghttp2_option_set_no_auto_window_update(opt, 1);
	assert_int_equal(nghttp2_session_client_new2(&t->cli, cb, t, opt), 0);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	set[0].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	set[0].value = client_window ? client_window : 65535;
	assert_int_equal(nghttp2_submit_settings(t->cli, NGHTTP2_FLAG_NONE, set, 1), 0);
	t->h = moat_h2s_new(&ops, t, lim);
	assert_non_null(t->h);
	moat_buf_init(&t->out, NULL, 1u << 20);
	return t;
}

static struct tc *setup(void) { return setup_with(NULL, 0); }

static void teardown(struct tc *t)
{
	moat_h2s_free(t->h);
	nghttp2_session_del(t->cli);
	moat_buf_release(&t->out);
	free(t);
}

/* Client -> server only. */
static void to_server(struct tc *t)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(t->cli, &d);

		assert_true(n >= 0);
		if (n == 0)
			break;
		if (t->feed_err)
			continue;
		if (moat_h2s_feed(t->h, d, (size_t)n) < 0)
			t->feed_err = 1;
	}
}

/* Server -> client only. Returns the bytes moved. */
static size_t to_client(struct tc *t)
{
	ssize_t n = moat_h2s_flush(t->h, &t->out);
	size_t len = moat_buf_len(&t->out);

	assert_true(n >= 0);
	if (len) {
		ssize_t r = nghttp2_session_mem_recv(t->cli, (const uint8_t *)moat_buf_head(&t->out), len);

		assert_true(r >= 0);
		moat_buf_consume(&t->out, len);
	}
	return len;
}

/* Both ways until quiet. */
static void pump(struct tc *t)
{
	int i;

	for (i = 0; i < 1000; i++) {
		int busy = nghttp2_session_want_write(t->cli);

		to_server(t);
		if (to_client(t))
			busy = 1;
		if (!busy && !nghttp2_session_want_write(t->cli))
			break;
	}
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }

static int32_t get(struct tc *t, const char *path)
{
	nghttp2_nv nv[] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "example.com"),
			    NV(":path", "/") };
	int32_t id;

	nv[3].value = (uint8_t *)path;
	nv[3].valuelen = strlen(path);
	id = nghttp2_submit_request(t->cli, NULL, nv, 4, NULL, NULL);
	assert_true(id > 0);
	return id;
}

static struct sstream *ss_of(struct tc *t, int32_t id)
{
	int i;

	for (i = 0; i < NSS; i++)
		if (t->ss[i].id == id)
			return &t->ss[i];
	return NULL;
}

static void write_all(struct tc *t, struct sstream *s, const char *p)
{
	assert_int_equal(moat_h2s_resp_write(t->h, s, p, strlen(p)), (ssize_t)strlen(p));
}

/* ---- request translation ---- */

static void test_get(void **state)
{
	struct tc *t = setup();
	nghttp2_nv nv[] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "example.com:8443"),
			    NV(":path", "/a/b?c=d"), NV("user-agent", "t/1"), NV("cookie", "a=1"),
			    NV("accept", "*/*"), NV("cookie", "b=2"), NV("x-many", "1"), NV("x-many", "2") };
	const char *want = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8443\r\nuser-agent: t/1\r\n"
			   "cookie: a=1; b=2\r\naccept: */*\r\nx-many: 1\r\nx-many: 2\r\n\r\n";
	struct moat_h1_header hdr[32];
	struct moat_h1_head hd = { .headers = hdr, .header_cap = 32 };
	struct moat_h1_limits lim = { 8192, 65536, 32 };
	struct sstream *s;
	struct cstream *c;
	int32_t id;
	int ended;
	char buf[16];

	(void)state;
	id = nghttp2_submit_request(t->cli, NULL, nv, sizeof(nv) / sizeof(nv[0]), NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(s->head_len, strlen(want));
	assert_memory_equal(s->head, want, strlen(want));
	assert_int_equal(moat_h1_parse_request(s->head, s->head_len, &hd, &lim), (int)s->head_len);
	assert_int_equal(hd.framing, MOAT_H1_BODY_NONE);
	assert_int_equal(hd.host_len, 16);
	assert_int_equal(moat_h2s_req_read(t->h, s, buf, sizeof(buf), &ended), 0);
	assert_int_equal(ended, 1);

	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
			"X-A: B\r\nTE: trailers\r\nUpgrade: h2c\r\n\r\nhel");
	write_all(t, s, "lo");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->nblocks, 1);
	assert_string_equal(c->hdrs[0], ":status: 200\ncontent-length: 5\nx-a: B\n");
	assert_int_equal(c->dlen, 5);
	assert_memory_equal(c->data, "hello", 5);
	assert_true(c->ended && c->closed && !c->rst);
	assert_int_equal(s->closed, 1);
	assert_int_equal(s->code, 0);
	/* gone: calls with its pointer are ignored */
	assert_int_equal(moat_h2s_resp_write(t->h, s, "x", 1), -1);
	assert_int_equal(moat_h2s_req_read(t->h, s, buf, sizeof(buf), &ended), -1);
	moat_h2s_resp_end(t->h, s);
	teardown(t);
}

static void test_no_authority_keeps_host(void **state)
{
	struct tc *t = setup();
	nghttp2_nv nv[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("x", "1"),
			    NV("host", "h.example") };
	const char *want = "GET / HTTP/1.1\r\nx: 1\r\nhost: h.example\r\n\r\n";
	nghttp2_nv nv2[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
			     NV(":authority", "a.example"), NV("host", "h.example") };
	struct sstream *s;
	int32_t id;

	(void)state;
	id = nghttp2_submit_request(t->cli, NULL, nv, 5, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(s->head_len, strlen(want));
	assert_memory_equal(s->head, want, strlen(want));
	id = nghttp2_submit_request(t->cli, NULL, nv2, 5, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	want = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
	assert_int_equal(s->head_len, strlen(want));
	assert_memory_equal(s->head, want, strlen(want));
	teardown(t);
}

/* The head is written as the fields arrive: cookies last (joined), a
 * request of pseudo-headers only, and heads that outgrow the buffers
 * between blocks of one connection. */
static void test_head_shapes(void **state)
{
	struct tc *t = setup();
	static char longpath[1200], bigval[3000];
	nghttp2_nv nv1[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "a"), NV(":path", "/"),
			     NV("cookie", "x=1"), NV("cookie", "y=2") };
	nghttp2_nv nv2[] = { NV(":method", "HEAD"), NV(":path", "/p"), NV(":scheme", "https"), NV(":authority", "x") };
	nghttp2_nv nv3[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "b"), NV(":path", "/"),
			     NV("cookie", "c=3"), NV("x-big", ""), NV("cookie", "d=4"), NV("x-after", "z") };
	struct sstream *s;
	char want[8192];
	int32_t id;
	int n;

	(void)state;
	id = nghttp2_submit_request(t->cli, NULL, nv1, 6, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	n = snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: a\r\ncookie: x=1; y=2\r\n\r\n");
	assert_int_equal(s->head_len, (size_t)n);
	assert_memory_equal(s->head, want, (size_t)n);

	id = nghttp2_submit_request(t->cli, NULL, nv2, 4, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	n = snprintf(want, sizeof(want), "HEAD /p HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(s->head_len, (size_t)n);
	assert_memory_equal(s->head, want, (size_t)n);

	longpath[0] = '/';
	memset(longpath + 1, 'p', sizeof(longpath) - 2);
	memset(bigval, 'v', sizeof(bigval) - 1);
	nv3[3].value = (uint8_t *)longpath;
	nv3[3].valuelen = strlen(longpath);
	nv3[5].value = (uint8_t *)bigval;
	nv3[5].valuelen = strlen(bigval);
	id = nghttp2_submit_request(t->cli, NULL, nv3, 8, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	n = snprintf(want, sizeof(want), "GET %s HTTP/1.1\r\nHost: b\r\ncookie: c=3; d=4\r\nx-big: %s\r\nx-after: z\r\n\r\n",
		     longpath, bigval);
	assert_int_equal(s->head_len, (size_t)n);
	assert_memory_equal(s->head, want, (size_t)n);

	id = nghttp2_submit_request(t->cli, NULL, nv1, 6, NULL, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	n = snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: a\r\ncookie: x=1; y=2\r\n\r\n");
	assert_int_equal(s->head_len, (size_t)n);
	assert_memory_equal(s->head, want, (size_t)n);
	teardown(t);
}

/* A body served from memory for the client's DATA frames. */
struct body {
	const char *p;
	size_t len, off;
	int trailers;
};

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct body *b = src->ptr;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	if (n > 7)
		n = 7; /* several DATA frames */
	memcpy(buf, b->p + b->off, n);
	b->off += n;
	if (b->off == b->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (b->trailers) {
			nghttp2_nv tr[] = { NV("x-sum", "abc") };

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			assert_int_equal(nghttp2_submit_trailer(s, id, tr, 1), 0);
		}
	}
	return (ssize_t)n;
}

static int32_t post(struct tc *t, struct body *b, const char *cl)
{
	nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "example.com"),
			    NV(":path", "/up"), NV("content-length", "0") };
	nghttp2_data_provider dp;
	size_t n = 4;

	dp.source.ptr = b;
	dp.read_callback = body_read;
	if (cl) {
		nv[4].value = (uint8_t *)cl;
		nv[4].valuelen = strlen(cl);
		n = 5;
	}
	return nghttp2_submit_request(t->cli, NULL, nv, n, &dp, NULL);
}

static size_t read_all(struct tc *t, struct sstream *s, char *buf, size_t cap, size_t step, int *ended)
{
	size_t got = 0;

	*ended = 0;
	while (got < cap) {
		ssize_t n = moat_h2s_req_read(t->h, s, buf + got, step < cap - got ? step : cap - got, ended);

		assert_true(n >= 0);
		got += (size_t)n;
		if (n == 0 || *ended)
			break;
	}
	return got;
}

static void test_post_content_length(void **state)
{
	struct tc *t = setup();
	struct body b = { "0123456789abcdefghij", 20, 0, 0 };
	struct moat_h1_header hdr[32];
	struct moat_h1_head hd = { .headers = hdr, .header_cap = 32 };
	struct moat_h1_limits lim = { 8192, 65536, 32 };
	const char *want = "POST /up HTTP/1.1\r\nHost: example.com\r\ncontent-length: 20\r\n\r\n";
	struct sstream *s;
	char buf[64];
	int32_t id;
	int ended;
	size_t n;

	(void)state;
	id = post(t, &b, "20");
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(s->head_len, strlen(want));
	assert_memory_equal(s->head, want, strlen(want));
	assert_int_equal(moat_h1_parse_request(s->head, s->head_len, &hd, &lim), (int)s->head_len);
	assert_int_equal(hd.framing, MOAT_H1_BODY_LENGTH);
	assert_true(s->readable > 0);
	n = read_all(t, s, buf, sizeof(buf), 3, &ended);
	assert_int_equal(n, 20);
	assert_memory_equal(buf, b.p, 20);
	assert_int_equal(ended, 1);
	write_all(t, s, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_string_equal(cs_of(t, id)->hdrs[0], ":status: 201\ncontent-length: 0\n");
	assert_true(cs_of(t, id)->closed && !cs_of(t, id)->rst);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

static void test_post_chunked(void **state)
{
	struct tc *t = setup();
	struct body b = { "0123456789abcdefghij", 20, 0, 1 };
	struct moat_h1_header hdr[32];
	struct moat_h1_head hd = { .headers = hdr, .header_cap = 32 };
	struct moat_h1_limits lim = { 8192, 65536, 32 };
	const char *want = "POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *wbody = "14\r\n0123456789abcdefghij\r\n0\r\nx-sum: abc\r\n\r\n";
	struct sstream *s;
	char buf[128];
	int32_t id;
	int ended;
	size_t n;

	(void)state;
	id = post(t, &b, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(s->head_len, strlen(want));
	assert_memory_equal(s->head, want, strlen(want));
	assert_int_equal(moat_h1_parse_request(s->head, s->head_len, &hd, &lim), (int)s->head_len);
	assert_int_equal(hd.framing, MOAT_H1_BODY_CHUNKED);
	/* read in small steps: the framing is cut anywhere */
	n = read_all(t, s, buf, sizeof(buf), 5, &ended);
	assert_int_equal(n, strlen(wbody));
	assert_memory_equal(buf, wbody, n);
	assert_int_equal(ended, 1);
	teardown(t);
}

/* A body read while it arrives: one chunk per read. */
static void test_post_chunked_streaming(void **state)
{
	struct tc *t = setup();
	nghttp2_nv nv[] = { NV(":method", "PUT"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	struct sstream *s;
	char buf[128];
	int32_t id;
	int ended;
	ssize_t n;

	(void)state;
	id = nghttp2_submit_headers(t->cli, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(moat_h2s_req_read(t->h, s, buf, sizeof(buf), &ended), 0);
	assert_int_equal(ended, 0);
	assert_int_equal(nghttp2_submit_data(t->cli, NGHTTP2_FLAG_END_STREAM, id, &(nghttp2_data_provider){
		.source.ptr = &(struct body){ "abc", 3, 0, 0 }, .read_callback = body_read }), 0);
	pump(t);
	/* END_STREAM came with the data */
	n = moat_h2s_req_read(t->h, s, buf, sizeof(buf), &ended);
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "3\r\nabc\r\n0\r\n\r\n", 13);
	assert_int_equal(ended, 1);
	teardown(t);
}

static void test_content_length_mismatch(void **state)
{
	struct tc *t = setup();
	struct body b = { "abc", 3, 0, 0 };
	struct body b2 = { "abcdef", 6, 0, 0 };
	int32_t id, id2;

	(void)state;
	id = post(t, &b, "10");
	id2 = post(t, &b2, "2");
	pump(t);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(cs_of(t, id)->rst_code, NGHTTP2_PROTOCOL_ERROR);
	assert_true(cs_of(t, id2)->rst);
	assert_int_equal(cs_of(t, id2)->rst_code, NGHTTP2_PROTOCOL_ERROR);
	assert_int_equal(ss_of(t, id)->closed, 1);
	assert_int_equal(ss_of(t, id)->code, NGHTTP2_PROTOCOL_ERROR);
	assert_int_equal(t->goaway, 0);
	teardown(t);
}

static void test_bad_requests_refused(void **state)
{
	struct tc *t = setup();
	nghttp2_nv bad_scheme[] = { NV(":method", "GET"), NV(":scheme", "ftp"), NV(":authority", "e"), NV(":path", "/") };
	nghttp2_nv conn[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "e"), NV(":path", "/"),
			      NV("connection", "close") };
	nghttp2_nv star[] = { NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "e"), NV(":path", "*") };
	nghttp2_nv connect[] = { NV(":method", "CONNECT"), NV(":authority", "e:443") };
	int32_t ids[4];
	int i;

	(void)state;
	ids[0] = nghttp2_submit_request(t->cli, NULL, bad_scheme, 4, NULL, NULL);
	ids[1] = nghttp2_submit_request(t->cli, NULL, conn, 5, NULL, NULL);
	ids[2] = nghttp2_submit_request(t->cli, NULL, star, 4, NULL, NULL);
	ids[3] = nghttp2_submit_request(t->cli, NULL, connect, 2, NULL, NULL);
	pump(t);
	for (i = 0; i < 4; i++) {
		assert_true(cs_of(t, ids[i])->rst);
		assert_int_equal(cs_of(t, ids[i])->rst_code, NGHTTP2_PROTOCOL_ERROR);
	}
	assert_int_equal(t->nss, 0);
	assert_int_equal(t->goaway, 0);
	teardown(t);
}

/* ---- response translation ---- */

static void test_resp_chunked_trailers(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	struct cstream *c;
	int32_t id;

	(void)state;
	id = get(t, "/grpc");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5\r\nhel");
	pump(t);
	write_all(t, s, "lo\r\n3;ext=1\r\n, w\r\n0\r\ngrpc-sta");
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->dlen, 8);
	assert_false(c->ended);
	write_all(t, s, "tus: 0\r\nGrpc-Message: ok \r\n\r\n");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_int_equal(c->nblocks, 2);
	assert_string_equal(c->hdrs[0], ":status: 200\ncontent-type: application/grpc\n");
	assert_string_equal(c->hdrs[1], "grpc-status: 0\ngrpc-message: ok\n");
	assert_memory_equal(c->data, "hello, w", 8);
	assert_true(c->ended && c->closed && !c->rst);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

/* A response written a byte at a time: every head, size line and
 * trailer is held over between writes. */
static void test_resp_bytewise(void **state)
{
	struct tc *t = setup();
	const char *r = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
			"HTTP/1.1 200 OK\r\nX-Up: A\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5\r\nhello\r\n2\r\n, \r\n0\r\nX-Tr: 1\r\n\r\n";
	struct sstream *s;
	struct cstream *c;
	int32_t id;
	size_t i;

	(void)state;
	id = get(t, "/b");
	pump(t);
	s = ss_of(t, id);
	for (i = 0; r[i]; i++)
		assert_int_equal(moat_h2s_resp_write(t->h, s, r + i, 1), 1);
	moat_h2s_resp_end(t->h, s);
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->nblocks, 3);
	assert_string_equal(c->hdrs[0], ":status: 103\nlink: </a>\n");
	assert_string_equal(c->hdrs[1], ":status: 200\nx-up: A\n");
	assert_string_equal(c->hdrs[2], "x-tr: 1\n");
	assert_int_equal(c->dlen, 7);
	assert_memory_equal(c->data, "hello, ", 7);
	assert_true(c->ended && c->closed && !c->rst);
	teardown(t);
}

static void test_resp_chunked_no_trailers(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	struct cstream *c;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->nblocks, 1);
	assert_int_equal(c->dlen, 2);
	assert_true(c->ended && c->closed && !c->rst);
	teardown(t);
}

static void test_resp_no_body(void **state)
{
	struct tc *t = setup();
	nghttp2_nv head[] = { NV(":method", "HEAD"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	const char *resp[3] = { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
				"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n" };
	const char *want[3] = { ":status: 200\ncontent-length: 10\n", ":status: 204\n",
				":status: 304\netag: \"x\"\ncontent-length: 10\n" };
	int32_t ids[3];
	int i;

	(void)state;
	ids[0] = nghttp2_submit_request(t->cli, NULL, head, 4, NULL, NULL);
	ids[1] = get(t, "/204");
	ids[2] = get(t, "/304");
	pump(t);
	for (i = 0; i < 3; i++) {
		struct sstream *s = ss_of(t, ids[i]);

		write_all(t, s, resp[i]);
		moat_h2s_resp_end(t->h, s);
	}
	pump(t);
	for (i = 0; i < 3; i++) {
		struct cstream *c = cs_of(t, ids[i]);

		assert_int_equal(c->nblocks, 1);
		assert_string_equal(c->hdrs[0], want[i]);
		assert_int_equal(c->dlen, 0);
		assert_true(c->ended && c->closed && !c->rst);
		assert_int_equal(ss_of(t, ids[i])->closed, 1);
	}
	teardown(t);
}

static void test_resp_1xx(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	struct cstream *c;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->nblocks, 1);
	assert_false(c->ended);
	write_all(t, s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_int_equal(c->nblocks, 3);
	assert_string_equal(c->hdrs[0], ":status: 103\nlink: </s.css>; rel=preload\n");
	assert_string_equal(c->hdrs[1], ":status: 100\n");
	assert_string_equal(c->hdrs[2], ":status: 200\ncontent-length: 2\n");
	assert_int_equal(c->dlen, 2);
	assert_true(c->ended && !c->rst);
	teardown(t);
}

static void test_resp_close_delimited(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	struct cstream *c;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nabc");
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->dlen, 3);
	assert_false(c->ended);
	write_all(t, s, "def");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_string_equal(c->hdrs[0], ":status: 200\n");
	assert_int_equal(c->dlen, 6);
	assert_memory_equal(c->data, "abcdef", 6);
	assert_true(c->ended && c->closed && !c->rst);
	assert_int_equal(s->closed, 1);
	assert_int_equal(s->code, 0);
	teardown(t);
}

static void test_resp_cut_short(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(cs_of(t, id)->rst_code, NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(s->closed, 1);
	assert_int_equal(s->code, NGHTTP2_INTERNAL_ERROR);
	teardown(t);
}

static void test_resp_invalid(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	assert_int_equal(moat_h2s_resp_write(t->h, s, "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 32), -1);
	pump(t);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(cs_of(t, id)->rst_code, NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

static void test_101_refused(void **state)
{
	struct tc *t = setup();
	const char *r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
	struct sstream *s;
	int32_t id;

	(void)state;
	id = get(t, "/ws");
	pump(t);
	s = ss_of(t, id);
	assert_int_equal(moat_h2s_resp_write(t->h, s, r, strlen(r)), -1);
	pump(t);
	assert_int_equal(cs_of(t, id)->nblocks, 0);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

/* An early complete response to a request still uploading: RST NO_ERROR
 * after it (§8.1). */
static void test_early_response_cancels_upload(void **state)
{
	struct tc *t = setup();
	nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	struct sstream *s;
	struct cstream *c;
	int32_t id;

	(void)state;
	id = nghttp2_submit_headers(t->cli, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	c = cs_of(t, id);
	assert_string_equal(c->hdrs[0], ":status: 413\ncontent-length: 0\n");
	assert_true(c->ended && c->rst);
	assert_int_equal(c->rst_code, NGHTTP2_NO_ERROR);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

/* ---- flow control ---- */

static void test_backpressure(void **state)
{
	struct moat_h2s_limits lim = { .stream_out_max = 1000 };
	struct tc *t = setup_with(&lim, 100);
	static char body[5000];
	char head[64];
	struct sstream *s;
	struct cstream *c;
	size_t off = 0, hl;
	int32_t id;
	int rounds = 0;
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	id = get(t, "/big");
	pump(t);
	s = ss_of(t, id);
	c = cs_of(t, id);
	hl = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", sizeof(body));
	write_all(t, s, head);
	while (off < sizeof(body)) {
		n = moat_h2s_resp_write(t->h, s, body + off, sizeof(body) - off);
		assert_true(n >= 0);
		assert_true((size_t)n <= 1000);
		off += (size_t)n;
		if (off == sizeof(body))
			break;
		/* short: nothing more goes until the client opens its window */
		assert_true((size_t)n < sizeof(body) - off + (size_t)n);
		pump(t);
		/* what the client's window let go is taken again, then no more */
		while (off < sizeof(body) && (n = moat_h2s_resp_write(t->h, s, body + off, sizeof(body) - off)) > 0) {
			off += (size_t)n;
			pump(t);
		}
		if (off == sizeof(body))
			break;
		assert_int_equal(n, 0);
		s->writable = 0;
		pump(t);
		assert_int_equal(s->writable, 0);
		assert_true(c->dlen <= off);
		assert_int_equal(nghttp2_submit_window_update(t->cli, NGHTTP2_FLAG_NONE, id, 700), 0);
		pump(t);
		assert_int_equal(s->writable, 1);
		rounds++;
	}
	(void)hl;
	assert_true(rounds > 3);
	while (!c->ended) {
		nghttp2_submit_window_update(t->cli, NGHTTP2_FLAG_NONE, id, 1000);
		pump(t);
	}
	assert_int_equal(c->dlen, sizeof(body));
	assert_memory_equal(c->data, body, sizeof(body));
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_int_equal(s->closed, 1);
	teardown(t);
}

static void test_request_flow_control(void **state)
{
	struct moat_h2s_limits lim = { .stream_window = 16384 };
	struct tc *t = setup_with(&lim, 0);
	static char big[30000];
	struct body b = { big, sizeof(big), 0, 0 };
	struct sstream *s;
	static char buf[sizeof(big)];
	int32_t id;
	int ended;
	size_t got = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	id = post(t, &b, "30000");
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	/* the stream window is full and nothing was read: no WINDOW_UPDATE */
	assert_int_equal(t->wu_stream, 0);
	assert_int_equal(moat_h2s_req_read(t->h, s, buf, 16384, &ended), 16384);
	assert_int_equal(ended, 0);
	pump(t);
	assert_true(t->wu_stream > 0);
	got = 16384;
	while (!ended) {
		ssize_t n = moat_h2s_req_read(t->h, s, buf + got, sizeof(buf) - got, &ended);

		assert_true(n >= 0);
		got += (size_t)n;
		pump(t);
	}
	assert_int_equal(got, sizeof(big));
	teardown(t);
}

/* ---- protections ---- */

static void test_rapid_reset(void **state)
{
	struct tc *t = setup();
	struct moat_h2s_stats st;
	int i;

	(void)state;
	pump(t);
	for (i = 0; i < 1000 && !t->feed_err; i++) {
		int32_t id = get(t, "/");

		to_server(t);
		nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
		to_server(t);
		if (i % 16 == 0)
			to_client(t);
	}
	assert_true(t->feed_err);
	assert_true(i < 400);
	to_client(t);
	assert_int_equal(t->goaway, 1);
	assert_int_equal(t->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(moat_h2s_done(t->h), 1);
	moat_h2s_get_stats(t->h, &st);
	assert_int_equal(st.goaway_calm, 1);
	assert_true(st.resets_recv > 190);
	/* the reset streams' exchanges were cancelled at once */
	assert_true(t->closed_any >= st.resets_recv - 1);
	teardown(t);
}

static void put_frame(uint8_t *p, size_t *off, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
		      const uint8_t *payload)
{
	p[(*off)++] = (uint8_t)(len >> 16);
	p[(*off)++] = (uint8_t)(len >> 8);
	p[(*off)++] = (uint8_t)len;
	p[(*off)++] = type;
	p[(*off)++] = flags;
	p[(*off)++] = (uint8_t)(sid >> 24);
	p[(*off)++] = (uint8_t)(sid >> 16);
	p[(*off)++] = (uint8_t)(sid >> 8);
	p[(*off)++] = (uint8_t)sid;
	if (len)
		memcpy(p + *off, payload, len);
	*off += len;
}

/* Finds a GOAWAY in raw server output; returns its error code or -1. */
static int64_t find_goaway(const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off + 9 <= n) {
		uint32_t len = (uint32_t)p[off] << 16 | (uint32_t)p[off + 1] << 8 | p[off + 2];

		if (p[off + 3] == NGHTTP2_GOAWAY && off + 9 + len <= n && len >= 8)
			return (int64_t)((uint32_t)p[off + 13] << 24 | (uint32_t)p[off + 14] << 16 |
					 (uint32_t)p[off + 15] << 8 | p[off + 16]);
		off += 9 + len;
	}
	return -1;
}

/* Finds a RST_STREAM for `sid` in raw server output; its code or -1. */
static int64_t find_rst(const uint8_t *p, size_t n, uint32_t sid)
{
	size_t off = 0;

	while (off + 9 <= n) {
		uint32_t len = (uint32_t)p[off] << 16 | (uint32_t)p[off + 1] << 8 | p[off + 2];
		uint32_t id = (uint32_t)p[off + 5] << 24 | (uint32_t)p[off + 6] << 16 | (uint32_t)p[off + 7] << 8 |
			      p[off + 8];

		if (p[off + 3] == NGHTTP2_RST_STREAM && id == sid && off + 9 + len <= n && len == 4)
			return (int64_t)((uint32_t)p[off + 9] << 24 | (uint32_t)p[off + 10] << 16 |
					 (uint32_t)p[off + 11] << 8 | p[off + 12]);
		off += 9 + len;
	}
	return -1;
}

static void test_continuation_flood(void **state)
{
	struct tc *t = setup();
	static uint8_t raw[8192];
	static const uint8_t hb[] = { 0x82, 0x86, 0x84, 0x41, 0x01, 'e' };
	static const uint8_t frag[] = { 0x00, 0x01, 'a', 0x01, 'b' };
	size_t off = 0;
	int i;
	struct moat_h2s_stats st;

	(void)state;
	memcpy(raw, MOAT_H2_PREFACE, MOAT_H2_PREFACE_LEN);
	off = MOAT_H2_PREFACE_LEN;
	put_frame(raw, &off, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
	put_frame(raw, &off, sizeof(hb), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, hb);
	for (i = 0; i < 100; i++)
		put_frame(raw, &off, sizeof(frag), NGHTTP2_CONTINUATION, 0, 1, frag);
	assert_int_equal(moat_h2s_feed(t->h, raw, off), -1);
	assert_int_equal(moat_h2s_flush(t->h, &t->out) > 0, 1);
	assert_int_equal(find_goaway((const uint8_t *)moat_buf_head(&t->out), moat_buf_len(&t->out)),
			 NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(moat_h2s_done(t->h), 1);
	assert_int_equal(t->nss, 0);
	moat_h2s_get_stats(t->h, &st);
	assert_int_equal(st.goaway_calm, 1);
	teardown(t);
}

/* Within the frame limit, a block ending in time is decoded. */
static void test_continuation_ok(void **state)
{
	struct tc *t = setup();
	static uint8_t raw[8192];
	static const uint8_t hb[] = { 0x82, 0x86, 0x84, 0x41, 0x01, 'e' };
	static const uint8_t frag[] = { 0x00, 0x01, 'a', 0x01, 'b' };
	size_t off = 0;
	int i;

	(void)state;
	memcpy(raw, MOAT_H2_PREFACE, MOAT_H2_PREFACE_LEN);
	off = MOAT_H2_PREFACE_LEN;
	put_frame(raw, &off, 0, NGHTTP2_SETTINGS, 0, 0, NULL);
	put_frame(raw, &off, sizeof(hb), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, hb);
	for (i = 0; i < 5; i++)
		put_frame(raw, &off, sizeof(frag), NGHTTP2_CONTINUATION, i == 4 ? NGHTTP2_FLAG_END_HEADERS : 0, 1, frag);
	assert_int_equal(moat_h2s_feed(t->h, raw, off), (ssize_t)off);
	assert_int_equal(t->nss, 1);
	assert_memory_equal(t->ss[0].head, "GET / HTTP/1.1\r\nHost: e\r\na: b\r\n", 31);
	teardown(t);
}

static void test_header_list_431(void **state)
{
	struct tc *t = setup();
	static char vals[40][1001];
	nghttp2_nv nv[44] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	struct cstream *c;
	int32_t id, id2;
	int i;

	(void)state;
	for (i = 0; i < 40; i++) {
		memset(vals[i], 'a' + i % 26, 1000);
		nv[4 + i] = (nghttp2_nv){ (uint8_t *)"x-big", (uint8_t *)vals[i], 5, 1000, NGHTTP2_NV_FLAG_NO_INDEX };
	}
	id = nghttp2_submit_request(t->cli, NULL, nv, 44, NULL, NULL);
	pump(t);
	c = cs_of(t, id);
	assert_int_equal(c->nblocks, 1);
	assert_string_equal(c->hdrs[0], ":status: 431\n");
	assert_true(c->ended && c->closed);
	assert_int_equal(t->nss, 0);
	assert_int_equal(t->goaway, 0);
	/* the same fields, small: within the limits */
	for (i = 0; i < 40; i++)
		nv[4 + i].valuelen = 1;
	id = nghttp2_submit_request(t->cli, NULL, nv, 44, NULL, NULL);
	pump(t);
	assert_non_null(ss_of(t, id));
	/* the connection lives on */
	id2 = get(t, "/after");
	pump(t);
	assert_non_null(ss_of(t, id2));
	teardown(t);
}

static void test_header_count_431(void **state)
{
	struct moat_h2s_limits lim = { .header_count_max = 10 };
	struct tc *t = setup_with(&lim, 0);
	nghttp2_nv nv[12] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	int32_t id;
	int i;

	(void)state;
	for (i = 4; i < 12; i++)
		nv[i] = (nghttp2_nv)NV("x-f", "v");
	id = nghttp2_submit_request(t->cli, NULL, nv, 12, NULL, NULL);
	pump(t);
	assert_string_equal(cs_of(t, id)->hdrs[0], ":status: 431\n");
	id = nghttp2_submit_request(t->cli, NULL, nv, 10, NULL, NULL);
	pump(t);
	assert_non_null(ss_of(t, id));
	teardown(t);
}

static void test_request_trailers_too_big(void **state)
{
	struct moat_h2s_limits lim = { .header_list_max = 2048 };
	struct tc *t = setup_with(&lim, 0);
	nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"), NV(":authority", "e"), NV(":path", "/") };
	static char v[3000];
	nghttp2_nv tr[] = { { (uint8_t *)"x-t", (uint8_t *)v, 3, sizeof(v), NGHTTP2_NV_FLAG_NONE } };
	struct sstream *s;
	int32_t id;

	(void)state;
	memset(v, 'v', sizeof(v));
	id = nghttp2_submit_headers(t->cli, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
	pump(t);
	s = ss_of(t, id);
	assert_non_null(s);
	assert_int_equal(nghttp2_submit_headers(t->cli, NGHTTP2_FLAG_END_STREAM, id, NULL, tr, 1, NULL), 0);
	pump(t);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(cs_of(t, id)->rst_code, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(s->closed, 1);
	assert_int_equal(t->goaway, 0);
	teardown(t);
}

static void test_max_streams(void **state)
{
	struct moat_h2s_limits lim = { .max_streams = 2 };
	struct tc *t = setup_with(&lim, 0);
	struct moat_h2s_stats st;
	int32_t ids[3];
	int i;

	(void)state;
	/* the client has not seen our SETTINGS yet: it sends all three */
	for (i = 0; i < 3; i++)
		ids[i] = get(t, "/");
	to_server(t);
	pump(t);
	assert_non_null(ss_of(t, ids[0]));
	assert_non_null(ss_of(t, ids[1]));
	assert_null(ss_of(t, ids[2]));
	assert_true(cs_of(t, ids[2])->rst);
	assert_int_equal(cs_of(t, ids[2])->rst_code, NGHTTP2_REFUSED_STREAM);
	assert_false(cs_of(t, ids[0])->rst);
	moat_h2s_get_stats(t->h, &st);
	assert_int_equal(st.refused, 1);
	teardown(t);
}

/* After our SETTINGS were acknowledged, a client that ignores them breaks
 * the protocol: nghttp2 ends the connection (GOAWAY PROTOCOL_ERROR, see
 * h2s.h). */
static void test_max_streams_after_ack(void **state)
{
	struct moat_h2s_limits lim = { .max_streams = 2 };
	struct tc *t = setup_with(&lim, 0);
	/* GET https "/" with a literal :authority not indexed: the client's
	 * HPACK state stays in step */
	static const uint8_t hb[] = { 0x82, 0x87, 0x84, 0x01, 0x01, 'e' };
	struct moat_h2s_stats st;
	uint8_t raw[64];
	size_t off = 0;

	(void)state;
	get(t, "/");
	get(t, "/");
	pump(t);
	assert_int_equal(t->nss, 2);
	put_frame(raw, &off, sizeof(hb), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 5, hb);
	assert_int_equal(moat_h2s_feed(t->h, raw, off), (ssize_t)off);
	assert_true(moat_h2s_flush(t->h, &t->out) > 0);
	assert_int_equal(find_goaway((const uint8_t *)moat_buf_head(&t->out), moat_buf_len(&t->out)),
			 NGHTTP2_PROTOCOL_ERROR);
	assert_int_equal(find_rst((const uint8_t *)moat_buf_head(&t->out), moat_buf_len(&t->out), 5), -1);
	moat_buf_consume(&t->out, moat_buf_len(&t->out));
	assert_int_equal(t->nss, 2);
	assert_int_equal(moat_h2s_want_write(t->h), 0);
	assert_int_equal(moat_h2s_done(t->h), 1);
	moat_h2s_get_stats(t->h, &st);
	assert_int_equal(st.refused, 0);
	teardown(t);
}

static void test_open_refused(void **state)
{
	struct tc *t = setup();
	int32_t id;

	(void)state;
	t->refuse_open = 1;
	id = get(t, "/");
	pump(t);
	assert_true(cs_of(t, id)->rst);
	assert_int_equal(cs_of(t, id)->rst_code, NGHTTP2_REFUSED_STREAM);
	teardown(t);
}

static void test_ping_flood(void **state)
{
	struct tc *t = setup();
	uint8_t data[8] = { 0 };
	int i;

	(void)state;
	pump(t);
	for (i = 0; i < 1500; i++)
		nghttp2_submit_ping(t->cli, NGHTTP2_FLAG_NONE, data);
	to_server(t);
	assert_true(t->feed_err);
	to_client(t);
	assert_int_equal(t->goaway, 1);
	assert_int_equal(t->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(moat_h2s_done(t->h), 1);
	teardown(t);
}

/* PINGs at a polite pace are answered and do not end anything. */
static void test_ping_ok(void **state)
{
	struct tc *t = setup();
	uint8_t data[8] = { 0 };
	int i;

	(void)state;
	for (i = 0; i < 50; i++) {
		nghttp2_submit_ping(t->cli, NGHTTP2_FLAG_NONE, data);
		pump(t);
	}
	assert_false(t->feed_err);
	assert_int_equal(t->goaway, 0);
	teardown(t);
}

static void test_garbage_goaway(void **state)
{
	struct tc *t = setup();
	static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_int_equal(moat_h2s_feed(t->h, junk, sizeof(junk) - 1), -1);
	assert_int_equal(moat_h2s_done(t->h), 1);
	moat_h2s_flush(t->h, &t->out);
	teardown(t);
}

static void test_shutdown(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	moat_h2s_shutdown(t->h);
	pump(t);
	assert_int_equal(t->goaway, 1);
	assert_int_equal(t->goaway_code, NGHTTP2_NO_ERROR);
	assert_int_equal(moat_h2s_done(t->h), 0);
	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_true(cs_of(t, id)->ended);
	assert_int_equal(s->closed, 1);
	assert_int_equal(moat_h2s_done(t->h), 1);
	teardown(t);
}

/* The client's GOAWAY: done once the streams are over. */
static void test_client_goaway(void **state)
{
	struct tc *t = setup();
	struct sstream *s;
	int32_t id;

	(void)state;
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	nghttp2_submit_goaway(t->cli, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	pump(t);
	assert_int_equal(moat_h2s_done(t->h), 0);
	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	moat_h2s_resp_end(t->h, s);
	pump(t);
	assert_int_equal(moat_h2s_done(t->h), 1);
	teardown(t);
}

/* Streams still open at free: `closed` is not called. */
static void test_free_with_open_streams(void **state)
{
	struct tc *t = setup();

	(void)state;
	get(t, "/");
	get(t, "/");
	pump(t);
	assert_int_equal(t->nss, 2);
	moat_h2s_free(t->h);
	t->h = NULL;
	assert_int_equal(t->closed_any, 0);
	teardown(t);
}

/* A small output buffer: frames are kept and come out whole later. */
static void test_small_flush_buffer(void **state)
{
	struct tc *t = setup();
	static char body[3000];
	struct moat_buf small;
	struct sstream *s;
	int32_t id;
	int guard = 0;

	(void)state;
	memset(body, 'q', sizeof(body));
	id = get(t, "/");
	pump(t);
	s = ss_of(t, id);
	write_all(t, s, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n");
	assert_int_equal(moat_h2s_resp_write(t->h, s, body, sizeof(body)), (ssize_t)sizeof(body));
	moat_buf_init(&small, NULL, 7);
	while (moat_h2s_want_write(t->h) && guard++ < 10000) {
		assert_true(moat_h2s_flush(t->h, &small) > 0);
		assert_true(nghttp2_session_mem_recv(t->cli, (const uint8_t *)moat_buf_head(&small),
						     moat_buf_len(&small)) >= 0);
		moat_buf_consume(&small, moat_buf_len(&small));
	}
	moat_buf_release(&small);
	assert_int_equal(cs_of(t, id)->dlen, 3000);
	assert_true(cs_of(t, id)->ended);
	teardown(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_no_authority_keeps_host),
		cmocka_unit_test(test_head_shapes),
		cmocka_unit_test(test_post_content_length),
		cmocka_unit_test(test_post_chunked),
		cmocka_unit_test(test_post_chunked_streaming),
		cmocka_unit_test(test_content_length_mismatch),
		cmocka_unit_test(test_bad_requests_refused),
		cmocka_unit_test(test_resp_chunked_trailers),
		cmocka_unit_test(test_resp_bytewise),
		cmocka_unit_test(test_resp_chunked_no_trailers),
		cmocka_unit_test(test_resp_no_body),
		cmocka_unit_test(test_resp_1xx),
		cmocka_unit_test(test_resp_close_delimited),
		cmocka_unit_test(test_resp_cut_short),
		cmocka_unit_test(test_resp_invalid),
		cmocka_unit_test(test_101_refused),
		cmocka_unit_test(test_early_response_cancels_upload),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_request_flow_control),
		cmocka_unit_test(test_rapid_reset),
		cmocka_unit_test(test_continuation_flood),
		cmocka_unit_test(test_continuation_ok),
		cmocka_unit_test(test_header_list_431),
		cmocka_unit_test(test_header_count_431),
		cmocka_unit_test(test_request_trailers_too_big),
		cmocka_unit_test(test_max_streams),
		cmocka_unit_test(test_max_streams_after_ack),
		cmocka_unit_test(test_open_refused),
		cmocka_unit_test(test_ping_flood),
		cmocka_unit_test(test_ping_ok),
		cmocka_unit_test(test_garbage_goaway),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_client_goaway),
		cmocka_unit_test(test_free_with_open_streams),
		cmocka_unit_test(test_small_flush_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
