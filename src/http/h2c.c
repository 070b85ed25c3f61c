/*
 * h2c.c - the client side of HTTP/2 towards a backend, as a translator
 * between the HTTP/1.1 bytes the proxy core writes and reads and one
 * nghttp2 client session (see h2c.h for the contract).
 *
 * Request way: moat_h2c_write -> `rq` (at most RQ_MAX bytes: the head while
 * it is incomplete, then body bytes not yet framed) -> moat_h1_parse_request
 * -> nghttp2_submit_request; the body goes out through a data provider
 * that reads `rq` (deferred while it is empty), chunked bodies are decoded
 * in place in `rq` and their trailers sent with nghttp2_submit_trailer.
 *
 * Response way: nghttp2 callbacks -> `hout` (HTTP/1.1 heads), `body` (DATA
 * bytes, unframed), `tail` (last chunk and trailer section) -> read() frames
 * the body (raw, or one chunk per read of what has arrived) and tells
 * nghttp2 the DATA bytes were consumed only as they are copied out, so
 * WINDOW_UPDATE follows the core's reading.
 *
 * Owns: the nghttp2 session and every buffer above; all freed by
 * moat_h2c_free.
 *
 * One exchange at a time:
 *
 *   idle --write head--> REQ_HEAD --head parsed--> REQ_BODY --body end--> REQ_DONE
 *   response:  RESP_HEAD (1xx heads stay here) --final head--> RESP_BODY
 *              --END_STREAM--> RESP_DONE; the exchange is done when the
 *              request is sent, the response ended and read() drained it.
 */
#include "http/h2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "http/chunked.h"
#include "http/h1_parse.h"
#include "http/status.h"

#define RQ_MAX        (64u * 1024u)   /* request bytes accepted, not yet framed */
#define HEAD_MAX      (64u * 1024u)   /* a request head; a response head / trailer section */
#define HOUT_MAX      (256u * 1024u)  /* heads waiting to be read (1xx ones included) */
#define BODY_MAX      (1024u * 1024u) /* response DATA waiting (flow control keeps it at 256 KiB) */
#define NFIELDS       256
#define STREAM_WINDOW (256 * 1024)
#define CONN_WINDOW   (1024 * 1024)

enum { REQ_HEAD = 1, REQ_BODY, REQ_DONE };
enum { RESP_HEAD = 1, RESP_BODY, RESP_DONE };

/* A growable byte queue: bytes at p[off .. off + len). */
struct dbuf {
	char *p;
	size_t off, len, cap;
};

struct moat_h2c {
	nghttp2_session *s;
	char scheme[8];
	const uint8_t *spill;  /* the rest of the last mem_send chunk */
	size_t spill_len;
	int fatal;             /* the session failed (feed / flush / memory) */
	int broken;            /* the core wrote something we could not send */
	int goaway, peer_eof;

	/* the exchange in progress (active) or the last one */
	int active;
	int32_t sid;
	int is_head;

	int req;
	char *rq;              /* RQ_MAX bytes: data rq[0..data_len), raw input rq[data_len..rq_len) */
	size_t rq_len, data_len;
	enum moat_h1_framing framing;
	uint64_t body_left;
	struct moat_chunked dec;
	struct dbuf rtrail;    /* request trailer lines, each ended by '\n' */
	int deferred, req_sent, stream_closed, failed;

	int resp;
	int status, has_cl, chunked, nobody;
	struct dbuf hbuild;    /* fields of the HEADERS being received, as "name: value\r\n" */
	struct dbuf hout, body, tail;
	char ctl[24];          /* a chunk-size line or a chunk's closing CRLF */
	size_t ctl_off, ctl_len;
	uint64_t chunk_left;
};

/* --- byte queues --- */

static int dbuf_append(struct dbuf *d, const void *p, size_t n, size_t max)
{
	if (n > max || d->len > max - n)
		return -1;
	if (n == 0)
		return 0;
	if (d->off + d->len + n > d->cap) {
		if (d->off > 0) {
			memmove(d->p, d->p + d->off, d->len);
			d->off = 0;
		}
		if (d->len + n > d->cap) {
			size_t cap = d->cap ? d->cap : 1024;
			char *np;

			while (cap < d->len + n)
				cap *= 2;
			np = realloc(d->p, cap);
			if (np == NULL)
				return -1;
			d->p = np;
			d->cap = cap;
		}
	}
	memcpy(d->p + d->off + d->len, p, n);
	d->len += n;
	return 0;
}

static int dbuf_puts(struct dbuf *d, const char *s, size_t max)
{
	return dbuf_append(d, s, strlen(s), max);
}

static void dbuf_drop(struct dbuf *d, size_t n)
{
	d->off += n;
	d->len -= n;
	if (d->len == 0)
		d->off = 0;
}

static void dbuf_free(struct dbuf *d)
{
	free(d->p);
	memset(d, 0, sizeof(*d));
}

static size_t take(char *dst, size_t cap, const char *src, size_t n)
{
	size_t k = n < cap ? n : cap;

	memcpy(dst, src, k);
	return k;
}

/* --- small helpers --- */

static const char *reason(int status)
{
	const char *r = moat_http_reason(status);

	return r ? r : "Status";
}

static int eq_lower(const char *a, size_t alen, const char *lower)
{
	size_t i, n = strlen(lower);

	if (alen != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = a[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return 0;
	}
	return 1;
}

/* Fields never forwarded over HTTP/2 (RFC 9113 8.2.2), and the ones the
 * pseudo-header fields replace. te is handled by the caller. */
static int hop_field(const char *name, size_t len)
{
	static const char *const drop[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding",
		"upgrade", "host", "te", "http2-settings",
	};
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (eq_lower(name, len, drop[i]))
			return 1;
	return 0;
}

static void lower_into(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = src[i];

		dst[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
}

static nghttp2_nv mknv(const char *name, size_t nlen, const char *value, size_t vlen)
{
	nghttp2_nv nv;

	nv.name = (uint8_t *)(uintptr_t)name;
	nv.namelen = nlen;
	nv.value = (uint8_t *)(uintptr_t)value;
	nv.valuelen = vlen;
	nv.flags = NGHTTP2_NV_FLAG_NONE;
	return nv;
}

/* --- request --- */

/* Sends the request trailers (lines of rtrail) as a trailing HEADERS.
 * Returns 0 when submitted, -1 when there was nothing to send or it failed. */
static int submit_trailers(struct moat_h2c *h)
{
	nghttp2_nv *nva;
	char *names;
	size_t n = 0, i, pos;
	const char *p = h->rtrail.p + h->rtrail.off;
	int rv;

	for (i = 0; i < h->rtrail.len; i++)
		if (p[i] == '\n')
			n++;
	nva = malloc((n ? n : 1) * sizeof(*nva));
	names = malloc(h->rtrail.len + 1);
	if (nva == NULL || names == NULL) {
		free(nva);
		free(names);
		return -1;
	}
	n = 0;
	for (pos = 0; pos < h->rtrail.len;) {
		const char *line = p + pos, *nl = memchr(line, '\n', h->rtrail.len - pos);
		const char *colon = memchr(line, ':', (size_t)(nl - line));
		const char *v, *ve;

		pos = (size_t)(nl - p) + 1;
		if (colon == NULL)
			continue;
		v = colon + 1;
		ve = nl;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (hop_field(line, (size_t)(colon - line)) || eq_lower(line, (size_t)(colon - line), "content-length") ||
		    eq_lower(line, (size_t)(colon - line), "trailer"))
			continue;
		lower_into(names + (line - p), line, (size_t)(colon - line));
		nva[n++] = mknv(names + (line - p), (size_t)(colon - line), v, (size_t)(ve - v));
	}
	rv = n ? nghttp2_submit_trailer(h->s, h->sid, nva, n) : -1;
	free(nva);
	free(names);
	return rv == 0 ? 0 : -1;
}

static ssize_t req_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			nghttp2_data_source *src, void *ud)
{
	struct moat_h2c *h = ud;
	size_t k = len < h->data_len ? len : h->data_len;

	(void)s;
	(void)src;
	if (sid != h->sid)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	memcpy(buf, h->rq, k);
	memmove(h->rq, h->rq + k, h->rq_len - k);
	h->rq_len -= k;
	h->data_len -= k;
	if (h->data_len == 0 && h->req == REQ_DONE) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (h->rtrail.len && submit_trailers(h) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	} else if (k == 0) {
		h->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)k;
}

/* Splits the target into :authority (absolute-form only) and :path. */
static int split_target(const struct moat_h1_head *hd, const char **auth, size_t *alen, const char **path,
			size_t *plen)
{
	const char *t = hd->target, *end = hd->target + hd->target_len, *sep;

	*auth = NULL;
	*alen = 0;
	if (t[0] == '/' || (hd->target_len == 1 && t[0] == '*')) {
		*path = t;
		*plen = hd->target_len;
		return 0;
	}
	sep = memchr(t, ':', hd->target_len);
	if (sep == NULL || end - sep < 3 || sep[1] != '/' || sep[2] != '/')
		return -1;
	*auth = sep + 3;
	for (sep = *auth; sep < end && *sep != '/' && *sep != '?' && *sep != '#'; sep++)
		;
	*alen = (size_t)(sep - *auth);
	*path = sep;
	*plen = (size_t)(end - sep);
	return 0;
}

/* The head in rq[0..len) was parsed into hd: opens the stream. */
static int submit_head(struct moat_h2c *h, const struct moat_h1_head *hd, size_t len)
{
	nghttp2_nv *nva;
	char *names, *pathbuf = NULL;
	const struct moat_h1_header *conn = moat_h1_find(hd, "connection", 10);
	const char *auth, *path;
	size_t alen, plen, i, n = 0;
	nghttp2_data_provider prov;
	int32_t sid;

	if (eq_lower(hd->method, hd->method_len, "connect") ||
	    split_target(hd, &auth, &alen, &path, &plen) != 0)
		return -1;
	if (auth == NULL && hd->host != NULL) {
		auth = hd->host;
		alen = hd->host_len;
	}
	if (plen == 0 || path[0] != '/') {
		if (plen == 1 && path[0] == '*') {
			/* OPTIONS * */
		} else {
			pathbuf = malloc(plen + 2);
			if (pathbuf == NULL)
				return -1;
			pathbuf[0] = '/';
			memcpy(pathbuf + 1, path, plen);
			path = pathbuf;
			plen++;
		}
	}
	nva = malloc((hd->nheaders + 5) * sizeof(*nva));
	names = malloc(len);
	if (nva == NULL || names == NULL) {
		free(nva);
		free(names);
		free(pathbuf);
		return -1;
	}
	nva[n++] = mknv(":method", 7, hd->method, hd->method_len);
	nva[n++] = mknv(":scheme", 7, h->scheme, strlen(h->scheme));
	if (auth != NULL && alen > 0)
		nva[n++] = mknv(":authority", 10, auth, alen);
	nva[n++] = mknv(":path", 5, path, plen);
	if (hd->flags & MOAT_H1_F_TE_TRAILERS)
		nva[n++] = mknv("te", 2, "trailers", 8);
	for (i = 0; i < hd->nheaders; i++) {
		const struct moat_h1_header *f = &hd->headers[i];
		char *lname = names + (f->name - h->rq);

		if (hop_field(f->name, f->name_len))
			continue;
		lower_into(lname, f->name, f->name_len);
		if (conn != NULL && moat_h1_list_has(conn->value, conn->value_len, lname, f->name_len))
			continue;
		nva[n++] = mknv(lname, f->name_len, f->value, f->value_len);
	}
	h->framing = hd->framing;
	h->body_left = hd->framing == MOAT_H1_BODY_LENGTH ? hd->content_length : 0;
	if (hd->framing == MOAT_H1_BODY_NONE || (hd->framing == MOAT_H1_BODY_LENGTH && hd->content_length == 0)) {
		h->req = REQ_DONE;
		sid = nghttp2_submit_request(h->s, NULL, nva, n, NULL, NULL);
	} else {
		h->req = REQ_BODY;
		prov.source.ptr = h;
		prov.read_callback = req_read;
		sid = nghttp2_submit_request(h->s, NULL, nva, n, &prov, NULL);
	}
	free(nva);
	free(names);
	free(pathbuf);
	if (sid < 0)
		return -1;
	h->sid = sid;
	h->is_head = eq_lower(hd->method, hd->method_len, "head");
	return 0;
}

/* Frames what rq holds. Returns the bytes at its end that belong to no
 * part of this request (trimmed), or -1 on an invalid request. */
static ssize_t process(struct moat_h2c *h)
{
	size_t excess = 0;

	if (h->req == REQ_HEAD) {
		struct moat_h1_header fields[NFIELDS];
		struct moat_h1_head hd;
		struct moat_h1_limits lim = { HEAD_MAX, HEAD_MAX, NFIELDS };
		int r;

		memset(&hd, 0, sizeof(hd));
		hd.headers = fields;
		hd.header_cap = NFIELDS;
		r = moat_h1_parse_request(h->rq, h->rq_len, &hd, &lim);
		if (r == MOAT_AGAIN)
			return h->rq_len == RQ_MAX ? -1 : 0;
		if (r < 0 || submit_head(h, &hd, (size_t)r) != 0)
			return -1;
		memmove(h->rq, h->rq + r, h->rq_len - (size_t)r);
		h->rq_len -= (size_t)r;
		h->data_len = 0;
		if (h->req == REQ_DONE) {
			excess = h->rq_len;
			h->rq_len = 0;
			return (ssize_t)excess;
		}
	}
	if (h->req != REQ_BODY)
		return 0;
	if (h->framing == MOAT_H1_BODY_LENGTH) {
		size_t raw = h->rq_len - h->data_len;

		if (raw >= h->body_left) {
			excess = raw - (size_t)h->body_left;
			raw = (size_t)h->body_left;
			h->req = REQ_DONE;
		}
		h->body_left -= raw;
		h->data_len += raw;
		h->rq_len = h->data_len;
	} else {
		size_t at = h->data_len;

		while (at < h->rq_len) {
			size_t consumed, off, len;
			int r = moat_chunked_decode(&h->dec, h->rq + at, h->rq_len - at, &consumed, &off, &len);

			if (r == MOAT_CHUNKED_DATA) {
				memmove(h->rq + h->data_len, h->rq + at + off, len);
				h->data_len += len;
			} else if (r == MOAT_CHUNKED_TRAILER) {
				if (dbuf_append(&h->rtrail, h->rq + at + off, len, HEAD_MAX) != 0 ||
				    dbuf_append(&h->rtrail, "\n", 1, HEAD_MAX + 1) != 0)
					return -1;
			} else if (r == MOAT_CHUNKED_DONE) {
				at += consumed;
				excess = h->rq_len - at;
				h->rq_len = at;
				h->req = REQ_DONE;
				break;
			} else if (r != MOAT_CHUNKED_NEED) {
				return -1;
			}
			at += consumed;
			if (r == MOAT_CHUNKED_NEED)
				break;
		}
		/* keep data, then the raw bytes the decoder has not taken */
		memmove(h->rq + h->data_len, h->rq + at, h->rq_len - at);
		h->rq_len = h->data_len + (h->rq_len - at);
	}
	if (h->stream_closed) {
		/* the server is done with this stream: the body has nowhere to go */
		memmove(h->rq, h->rq + h->data_len, h->rq_len - h->data_len);
		h->rq_len -= h->data_len;
		h->data_len = 0;
		if (h->req == REQ_DONE)
			h->rtrail.len = 0;
	}
	return (ssize_t)excess;
}

/* --- response --- */

static void fail_stream(struct moat_h2c *h)
{
	if (h->active && h->resp != RESP_DONE)
		h->failed = 1;
}

/* Writes the head of the HEADERS just received (fields in hbuild). */
static int finish_head(struct moat_h2c *h, int end_stream)
{
	char line[64];
	int final = h->status >= 200;

	if (h->status < 100)
		return -1;
	snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", h->status, reason(h->status));
	if (dbuf_puts(&h->hout, line, HOUT_MAX) != 0 ||
	    dbuf_append(&h->hout, h->hbuild.p + h->hbuild.off, h->hbuild.len, HOUT_MAX) != 0)
		return -1;
	if (final) {
		h->nobody = h->is_head || h->status == 204 || h->status == 304;
		h->chunked = 0;
		if (!h->nobody && !h->has_cl) {
			if (end_stream) {
				if (dbuf_puts(&h->hout, "content-length: 0\r\n", HOUT_MAX) != 0)
					return -1;
			} else {
				h->chunked = 1;
				if (dbuf_puts(&h->hout, "Transfer-Encoding: chunked\r\n", HOUT_MAX) != 0)
					return -1;
			}
		}
		h->resp = RESP_BODY;
	}
	if (dbuf_puts(&h->hout, "\r\n", HOUT_MAX) != 0)
		return -1;
	h->hbuild.len = h->hbuild.off = 0;
	h->has_cl = 0;
	h->status = 0;
	return 0;
}

static int end_response(struct moat_h2c *h)
{
	h->resp = RESP_DONE;
	if (h->chunked) {
		if (dbuf_puts(&h->tail, "0\r\n", HEAD_MAX + 8) != 0 ||
		    dbuf_append(&h->tail, h->hbuild.p + h->hbuild.off, h->hbuild.len, HEAD_MAX + 8) != 0 ||
		    dbuf_puts(&h->tail, "\r\n", HEAD_MAX + 8) != 0)
			return -1;
	}
	h->hbuild.len = h->hbuild.off = 0;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct moat_h2c *h = ud;

	(void)s;
	(void)flags;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != h->sid || !h->active ||
	    h->resp == RESP_DONE)
		return 0;
	if (namelen > 0 && name[0] == ':') {
		if (h->resp == RESP_HEAD && namelen == 7 && memcmp(name, ":status", 7) == 0) {
			int st = 0;
			size_t i;

			for (i = 0; i < valuelen && i < 3; i++)
				st = st * 10 + (value[i] - '0');
			h->status = valuelen == 3 ? st : 0;
		}
		return 0;
	}
	if (h->resp == RESP_HEAD && namelen == 14 && memcmp(name, "content-length", 14) == 0)
		h->has_cl = 1;
	if (dbuf_append(&h->hbuild, name, namelen, HEAD_MAX) != 0 || dbuf_append(&h->hbuild, ": ", 2, HEAD_MAX) != 0 ||
	    dbuf_append(&h->hbuild, value, valuelen, HEAD_MAX) != 0 ||
	    dbuf_append(&h->hbuild, "\r\n", 2, HEAD_MAX) != 0) {
		fail_stream(h);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	struct moat_h2c *h = ud;
	int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	(void)s;
	if (frame->hd.type == NGHTTP2_GOAWAY) {
		h->goaway = 1;
		return 0;
	}
	if (frame->hd.stream_id != h->sid || !h->active || h->failed || h->resp == RESP_DONE)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		if (h->resp == RESP_HEAD) {
			if (finish_head(h, end) != 0)
				goto fail;
		} else if (!h->chunked) {
			h->hbuild.len = h->hbuild.off = 0; /* trailers cannot follow a raw body */
		}
	} else if (frame->hd.type != NGHTTP2_DATA) {
		return 0;
	}
	if (end && h->resp == RESP_BODY && end_response(h) != 0)
		goto fail;
	return 0;
fail:
	h->failed = 1;
	nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, h->sid, NGHTTP2_INTERNAL_ERROR);
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *ud)
{
	struct moat_h2c *h = ud;

	(void)flags;
	if (sid == h->sid && h->active && !h->failed && h->resp == RESP_BODY && !h->nobody) {
		if (dbuf_append(&h->body, data, len, BODY_MAX) == 0)
			return 0;
		h->failed = 1;
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_FLOW_CONTROL_ERROR);
	}
	nghttp2_session_consume(s, sid, len); /* dropped: give the window back now */
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *ud)
{
	struct moat_h2c *h = ud;

	(void)s;
	(void)error_code;
	if (sid == h->sid && h->active) {
		h->stream_closed = 1;
		h->deferred = 0;
		fail_stream(h);
	}
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	struct moat_h2c *h = ud;

	(void)s;
	if (frame->hd.stream_id == h->sid && h->active && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
		h->req_sent = 1;
	return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int err, void *ud)
{
	struct moat_h2c *h = ud;

	(void)s;
	(void)err;
	if (frame->hd.stream_id == h->sid && h->active && frame->hd.type == NGHTTP2_HEADERS) {
		h->stream_closed = 1;
		fail_stream(h);
	}
	return 0;
}

/* --- the exchange --- */

static int exchange_done(const struct moat_h2c *h)
{
	return h->req == REQ_DONE && (h->req_sent || h->stream_closed) && h->data_len == 0 &&
	       h->resp == RESP_DONE && !h->failed && h->hout.len == 0 && h->body.len == 0 &&
	       h->tail.len == 0 && h->ctl_len == 0 && h->chunk_left == 0;
}

static void reset_exchange(struct moat_h2c *h)
{
	h->active = 1;
	h->sid = 0;
	h->is_head = 0;
	h->req = REQ_HEAD;
	h->rq_len = h->data_len = 0;
	h->framing = MOAT_H1_BODY_NONE;
	h->body_left = 0;
	moat_chunked_init(&h->dec);
	h->rtrail.len = h->rtrail.off = 0;
	h->deferred = h->req_sent = h->stream_closed = h->failed = 0;
	h->resp = RESP_HEAD;
	h->status = h->has_cl = h->chunked = h->nobody = 0;
	h->hbuild.len = h->hbuild.off = 0;
	h->hout.len = h->hout.off = 0;
	h->body.len = h->body.off = 0;
	h->tail.len = h->tail.off = 0;
	h->ctl_off = h->ctl_len = 0;
	h->chunk_left = 0;
}

/* --- public --- */

struct moat_h2c *moat_h2c_new(const char *scheme)
{
	struct moat_h2c *h = calloc(1, sizeof(*h));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEAD_MAX },
	};
	int rv;

	if (h == NULL)
		return NULL;
	snprintf(h->scheme, sizeof h->scheme, "%s", scheme && strcmp(scheme, "https") == 0 ? "https" : "http");
	h->rq = malloc(RQ_MAX);
	if (h->rq == NULL || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	rv = nghttp2_session_client_new2(&h->s, cb, h, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	cb = NULL;
	opt = NULL;
	if (rv != 0) {
		h->s = NULL;
		goto fail;
	}
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
		goto fail;
	return h;
fail:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	moat_h2c_free(h);
	return NULL;
}

void moat_h2c_free(struct moat_h2c *h)
{
	if (h == NULL)
		return;
	nghttp2_session_del(h->s);
	free(h->rq);
	dbuf_free(&h->rtrail);
	dbuf_free(&h->hbuild);
	dbuf_free(&h->hout);
	dbuf_free(&h->body);
	dbuf_free(&h->tail);
	free(h);
}

ssize_t moat_h2c_feed(struct moat_h2c *h, const uint8_t *p, size_t n)
{
	ssize_t r;

	if (p == NULL) {
		h->peer_eof = 1;
		fail_stream(h);
		return 0;
	}
	if (h->fatal)
		return -1;
	if (n == 0)
		return 0;
	r = nghttp2_session_mem_recv(h->s, p, n);
	if (r < 0) {
		h->fatal = 1;
		fail_stream(h);
		return -1;
	}
	return r;
}

ssize_t moat_h2c_flush(struct moat_h2c *h, struct moat_buf *out)
{
	size_t total = 0;

	if (h->fatal)
		return -1;
	for (;;) {
		size_t room, k;

		if (h->spill_len == 0) {
			ssize_t n = nghttp2_session_mem_send(h->s, &h->spill);

			if (n < 0) {
				h->fatal = 1;
				fail_stream(h);
				return -1;
			}
			if (n == 0)
				break;
			h->spill_len = (size_t)n;
		}
		room = moat_buf_reserve(out, h->spill_len);
		if (room == 0)
			break;
		k = room < h->spill_len ? room : h->spill_len;
		memcpy(out->data + out->end, h->spill, k);
		out->end += k;
		h->spill += k;
		h->spill_len -= k;
		total += k;
	}
	return (ssize_t)total;
}

int moat_h2c_want_write(const struct moat_h2c *h)
{
	return !h->fatal && (h->spill_len > 0 || nghttp2_session_want_write(h->s));
}

ssize_t moat_h2c_write(struct moat_h2c *h, const char *p, size_t n)
{
	size_t k;
	ssize_t excess;

	if (n == 0)
		return 0;
	if (!h->active || exchange_done(h)) {
		if (!moat_h2c_reusable(h))
			return -1;
		reset_exchange(h);
	}
	if (h->fatal || h->broken || h->req == REQ_DONE)
		return -1;
	k = RQ_MAX - h->rq_len;
	if (k > n)
		k = n;
	memcpy(h->rq + h->rq_len, p, k);
	h->rq_len += k;
	excess = process(h);
	if (excess < 0) {
		h->broken = 1;
		if (h->sid > 0 && !h->stream_closed)
			nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, h->sid, NGHTTP2_CANCEL);
		fail_stream(h);
		return -1;
	}
	if (h->deferred && (h->data_len > 0 || h->req == REQ_DONE)) {
		h->deferred = 0;
		nghttp2_session_resume_data(h->s, h->sid);
	}
	return (ssize_t)(k - (size_t)excess);
}

ssize_t moat_h2c_read(struct moat_h2c *h, char *buf, size_t cap, int *eof)
{
	size_t got = 0;

	*eof = 0;
	while (got < cap) {
		size_t k;

		if (h->hout.len) {
			k = take(buf + got, cap - got, h->hout.p + h->hout.off, h->hout.len);
			dbuf_drop(&h->hout, k);
		} else if (h->ctl_len) {
			k = take(buf + got, cap - got, h->ctl + h->ctl_off, h->ctl_len);
			h->ctl_off += k;
			h->ctl_len -= k;
		} else if (h->body.len && (!h->chunked || h->chunk_left)) {
			size_t n = h->body.len;

			if (h->chunked && h->chunk_left < n)
				n = (size_t)h->chunk_left;
			k = take(buf + got, cap - got, h->body.p + h->body.off, n);
			dbuf_drop(&h->body, k);
			nghttp2_session_consume(h->s, h->sid, k);
			if (h->chunked) {
				h->chunk_left -= k;
				if (h->chunk_left == 0) {
					memcpy(h->ctl, "\r\n", 2);
					h->ctl_off = 0;
					h->ctl_len = 2;
				}
			}
		} else if (h->body.len) {
			/* chunked: one chunk of what has arrived */
			h->chunk_left = h->body.len;
			h->ctl_off = 0;
			h->ctl_len = (size_t)snprintf(h->ctl, sizeof h->ctl, "%zx\r\n", h->body.len);
			continue;
		} else if (h->tail.len && h->resp == RESP_DONE) {
			k = take(buf + got, cap - got, h->tail.p + h->tail.off, h->tail.len);
			dbuf_drop(&h->tail, k);
		} else {
			break;
		}
		got += k;
	}
	if (got > 0)
		return (ssize_t)got;
	if (h->active && h->failed)
		return -1;
	if (h->active && h->resp != RESP_DONE) {
		if (h->fatal || h->peer_eof || !nghttp2_session_want_read(h->s))
			return -1;
		return 0;
	}
	*eof = h->fatal || h->peer_eof || h->goaway || !nghttp2_session_want_read(h->s);
	return 0;
}

int moat_h2c_reusable(const struct moat_h2c *h)
{
	if (h->fatal || h->broken || h->goaway || h->peer_eof || !nghttp2_session_want_read(h->s))
		return 0;
	if (nghttp2_session_get_next_stream_id(h->s) > INT32_MAX)
		return 0;
	return !h->active || exchange_done(h);
}
