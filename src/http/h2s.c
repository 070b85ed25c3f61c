/*
 * h2s.c - the server side of HTTP/2 as a translator to and from HTTP/1.1
 * bytes (contract in h2s.h), on nghttp2.
 *
 * Sits between the client connection (after TLS) and the proxy core: the
 * caller feeds the bytes it read, gets one HTTP/1.1 request head per stream
 * through ops->open, reads the request body with moat_h2s_req_read, writes
 * the HTTP/1.1 response with moat_h2s_resp_write and sends what
 * moat_h2s_flush produces.
 *
 * Ownership: the session owns one struct stream per stream nghttp2 knows
 * (allocated when the request HEADERS begin, freed when nghttp2 closes the
 * stream, or by moat_h2s_free). A stream's memory is bounded: its request
 * fields by header_list_max, its unread request body by the stream window
 * (we acknowledge DATA only as the core reads it), its response bytes (not
 * yet parsed + not yet framed) by stream_out_max.
 *
 * Response side of a stream:
 *
 *   HEAD --1xx--> HEAD --final--> BODY(length | chunked | close) --> END
 *                                  |  none (HEAD, 204, 304) ---------^
 *
 * Callbacks to the caller only notify; all state they could make the
 * caller touch is consistent when they run.
 */
#include "http/h2s.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/chunked.h"
#include "http/h1_parse.h"

#define RESP_HDR_MAX 256u      /* fields in a response head from the core */
#define SP_BUCKETS   64u       /* caller pointer -> stream hash buckets */
#define SPARE_MAX    16u       /* freed stream structs kept for reuse */

/* A growable byte array holding p[off .. off + len); at most `max` bytes. */
struct bytes {
	char *p;
	size_t off, len, cap;
};

/* bytes_room's slow path: compacts, then grows by doubling. */
static __attribute__((noinline)) char *bytes_grow(struct bytes *b, size_t n)
{
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *np;

		while (ncap < b->len + n)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (np == NULL)
			return NULL;
		b->p = np;
		b->cap = ncap;
	}
	return b->p + b->len;
}

/* Room for n more bytes: returns where they go (the caller writes them
 * and adds n to len), NULL when out of memory. */
static inline char *bytes_room(struct bytes *b, size_t n)
{
	if (b->off + b->len + n > b->cap)
		return bytes_grow(b, n);
	return b->p + b->off + b->len;
}

static int bytes_add(struct bytes *b, const void *d, size_t n)
{
	char *w;

	if (n == 0)
		return 0;
	w = bytes_room(b, n);
	if (w == NULL)
		return -1;
	memcpy(w, d, n);
	b->len += n;
	return 0;
}

/* Appends "name: value\r\n". */
static int line_add(struct bytes *b, const void *n, size_t nl, const void *v, size_t vl)
{
	char *w = bytes_room(b, nl + vl + 4);

	if (w == NULL)
		return -1;
	memcpy(w, n, nl);
	w += nl;
	w[0] = ':';
	w[1] = ' ';
	memcpy(w + 2, v, vl);
	w += 2 + vl;
	w[0] = '\r';
	w[1] = '\n';
	b->len += nl + vl + 4;
	return 0;
}

static void bytes_drop(struct bytes *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0) {
		b->off = 0;
		if (b->cap > 4096) {
			free(b->p);
			b->p = NULL;
			b->cap = 0;
		}
	}
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static char *bytes_at(const struct bytes *b)
{
	static char empty[1];

	return b->p ? b->p + b->off : empty;
}

/* Fields kept as [u32 name_len][u32 value_len][name][value] records. */
static int field_add(struct bytes *b, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	uint32_t l[2] = { (uint32_t)nl, (uint32_t)vl };

	if (bytes_add(b, l, sizeof(l)) < 0 || bytes_add(b, n, nl) < 0 || bytes_add(b, v, vl) < 0)
		return -1;
	return 0;
}

/* Walks the records: *pos starts at 0. Returns 0 at the end. */
static int field_next(const struct bytes *b, size_t *pos, const char **n, size_t *nl, const char **v, size_t *vl)
{
	uint32_t l[2];
	const char *base = bytes_at(b);

	if (*pos + sizeof(l) > b->len)
		return 0;
	memcpy(l, base + *pos, sizeof(l));
	*n = base + *pos + sizeof(l);
	*nl = l[0];
	*v = *n + l[0];
	*vl = l[1];
	*pos += sizeof(l) + l[0] + l[1];
	return 1;
}

/* A token bucket. */
struct bucket {
	double tokens;
	uint64_t last_ns;
	unsigned burst, rate;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bucket_init(struct bucket *b, unsigned burst, unsigned rate)
{
	b->burst = burst;
	b->rate = rate;
	b->tokens = burst;
	b->last_ns = now_ns();
}

/* Takes one token; 0 when the bucket is empty. */
static int bucket_take(struct bucket *b)
{
	uint64_t now = now_ns();

	if (now > b->last_ns) {
		b->tokens += (double)(now - b->last_ns) * b->rate / 1e9;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ns = now;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

enum resp_state { R_HEAD = 0, R_BODY, R_DONE };

struct stream {
	struct moat_h2s *h;
	int32_t id;
	void *sp;                    /* the caller's, NULL until open() */
	struct stream *next, *prev;  /* all streams of the session */
	struct stream *hnext;        /* sp hash chain */

	/* request */
	size_t hsize, hcount;        /* the header block being received */
	unsigned counted : 1;        /* counts against max_streams */
	unsigned too_big : 1;        /* header list over the limits: 431 */
	unsigned bad : 1;            /* refuse at the end of the headers */
	unsigned dead : 1;           /* reset by us: nothing more goes to or from the caller */
	unsigned is_head : 1;        /* request method HEAD */
	unsigned chunked_req : 1;    /* request body chunked by us */
	unsigned req_ended : 1;      /* END_STREAM received */
	unsigned last_chunk : 1;     /* chunked: "0" chunk and trailers queued in pend */
	unsigned in_trailers : 1;    /* receiving request trailers */
	unsigned sp_hashed : 1;
	unsigned refused : 1;        /* refused by us (counted already) */
	struct bytes rbody;          /* request body bytes received, not read */
	struct bytes pend;           /* chunk framing / trailers due before more body */
	size_t chunk_left;           /* body bytes of the current chunk still to give */
	struct bytes rtrail;         /* request trailers as "name: value\r\n" (written as received) */

	/* response */
	enum resp_state rstate;
	enum moat_h1_framing framing;
	uint64_t rleft;              /* LENGTH: bytes still due */
	struct moat_chunked chunk;
	struct bytes ibuf;           /* response bytes from the core not parsed yet */
	struct bytes obuf;           /* body bytes not yet framed as DATA */
	struct bytes otrail;         /* response trailers (records) */
	unsigned out_ended : 1;      /* the body is complete in obuf */
	unsigned deferred : 1;       /* data provider returned DEFERRED */
	unsigned blocked : 1;        /* a resp_write was short: notify writable */
	unsigned core_done : 1;      /* resp_end called (or internal response) */
	unsigned resp_sent : 1;      /* END_STREAM sent */
};

/* The request header block being received. Header blocks do not
 * interleave on a connection (RFC 9113 §4.3, CONTINUATION), so the
 * session holds one: the pseudo-header values are copied to the front of
 * hb, and the HTTP/1.1 head is written after them (from `head`) as the
 * regular fields arrive, which follow the pseudo-headers in a valid
 * request (§8.3). The cookie values are joined in `cookie` and their line
 * put in where the first cookie was at the end. hb and cookie are kept
 * between blocks (freed when over 4 KiB). */
struct hblock {
	struct bytes hb, cookie;
	struct stream *st;           /* whose block (also trailers); NULL when freed */
	int32_t id;
	size_t head;                 /* offset of the head in hb (once `line`) */
	size_t m_off, m_len, p_off, p_len, a_off, a_len;
	size_t cookie_at;            /* offset in hb of the cookie line */
	unsigned have_m : 1, have_p : 1, have_s : 1, scheme_ok : 1, have_a : 1;
	unsigned line : 1;           /* request line (and Host) written */
	unsigned has_cl : 1, has_cookie : 1;
};

#define WU_CREDIT_MAX 4096u
#define SKIP_MAX      8u       /* ranges of stream ids the client skipped, remembered */

/* Client stream ids lo..hi (odd ones) that never opened. */
struct idrange {
	int32_t lo, hi;
};

struct moat_h2s {
	nghttp2_session *s;
	const struct moat_h2s_ops *ops;
	void *ud;
	struct moat_h2s_limits lim;
	struct moat_h2s_stats st;
	struct stream *streams;      /* list */
	struct stream *hash[SP_BUCKETS];
	unsigned nactive;
	struct bucket resets, ctrl;
	unsigned wu_credit;          /* WINDOW_UPDATEs the DATA we sent makes due (not a flood) */
	unsigned cont_frames;
	size_t cont_bytes;
	int32_t max_id;              /* highest client stream id in a HEADERS frame */
	struct idrange skip[SKIP_MAX]; /* the last SKIP_MAX ranges of ids skipped below it */
	unsigned nskip;
	int fatal;
	int shutdown;
	int freeing;               /* in moat_h2s_free: no callbacks */
	struct bytes spill;          /* nghttp2 output that did not fit the caller's buffer */
	struct hblock blk;
	struct bytes names;          /* lowercased response field names (head_nv) */
	struct stream *spare;        /* freed streams for reuse (linked by next), at most SPARE_MAX */
	unsigned nspare;
	struct moat_h1_header rh[RESP_HDR_MAX];
	nghttp2_nv nv[RESP_HDR_MAX + 1];
};

/* ---- streams ---- */

static size_t sp_slot(const void *sp)
{
	uintptr_t x = (uintptr_t)sp;

	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ull;
	return (size_t)(x >> 40) & (SP_BUCKETS - 1);
}

static struct stream *by_sp(const struct moat_h2s *h, const void *sp)
{
	struct stream *st;

	if (sp == NULL)
		return NULL;
	for (st = h->hash[sp_slot(sp)]; st; st = st->hnext)
		if (st->sp == sp)
			return st;
	return NULL;
}

static void sp_unhash(struct moat_h2s *h, struct stream *st)
{
	struct stream **pp;

	if (!st->sp_hashed)
		return;
	for (pp = &h->hash[sp_slot(st->sp)]; *pp; pp = &(*pp)->hnext)
		if (*pp == st) {
			*pp = st->hnext;
			break;
		}
	st->sp_hashed = 0;
}

static void uncount(struct moat_h2s *h, struct stream *st)
{
	if (st->counted) {
		st->counted = 0;
		h->nactive--;
	}
}

static void stream_free(struct moat_h2s *h, struct stream *st)
{
	sp_unhash(h, st);
	uncount(h, st);
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (h->blk.st == st)
		h->blk.st = NULL;
	bytes_free(&st->rbody);
	bytes_free(&st->pend);
	bytes_free(&st->rtrail);
	bytes_free(&st->ibuf);
	bytes_free(&st->obuf);
	bytes_free(&st->otrail);
	if (!h->freeing && h->nspare < SPARE_MAX) {
		st->next = h->spare;
		h->spare = st;
		h->nspare++;
		return;
	}
	free(st);
}

/* A zeroed stream: a spare one, or a new one (NULL out of memory). */
static struct stream *stream_alloc(struct moat_h2s *h)
{
	struct stream *st = h->spare;

	if (st == NULL)
		return calloc(1, sizeof(*st));
	h->spare = st->next;
	h->nspare--;
	memset(st, 0, sizeof(*st));
	return st;
}

static struct stream *get_stream(struct moat_h2s *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

/* Ends the connection: GOAWAY ENHANCE_YOUR_CALM. */
static void calm(struct moat_h2s *h)
{
	if (h->fatal)
		return;
	nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
	h->st.goaway_calm++;
	h->fatal = 1;
}

/* Ends the connection: GOAWAY PROTOCOL_ERROR. */
static void proto_error(struct moat_h2s *h)
{
	if (h->fatal)
		return;
	nghttp2_session_terminate_session(h->s, NGHTTP2_PROTOCOL_ERROR);
	h->fatal = 1;
}

/* RFC 9113 §5.1.1: a new stream's id is above every id the client used
 * before, and the ids it skips are closed without ever opening. nghttp2
 * ignores a HEADERS on an id below the last one unless it still holds
 * that stream: it cannot tell an id that never opened from a stream it
 * forgot (whose late trailers must not end the connection). So the ranges
 * skipped are remembered here (the last SKIP_MAX of them: clients that
 * skip ids are rare) and 1 is returned for a HEADERS on one of them. */
static int skipped_id(struct moat_h2s *h, int32_t id)
{
	if (id <= 0 || !(id & 1))
		return 0;
	if (id > h->max_id) {
		int32_t lo = h->max_id ? h->max_id + 2 : 1;

		if (id > lo) {
			h->skip[h->nskip % SKIP_MAX] = (struct idrange){ lo, id - 2 };
			h->nskip++;
		}
		h->max_id = id;
		return 0;
	}
	for (unsigned i = 0; i < SKIP_MAX && i < h->nskip; i++)
		if (id >= h->skip[i].lo && id <= h->skip[i].hi)
			return 1;
	return 0;
}

/* Gives the request body bytes nobody will read back to flow control. */
static void drop_body(struct moat_h2s *h, struct stream *st)
{
	if (st->rbody.len) {
		nghttp2_session_consume(h->s, st->id, st->rbody.len);
		bytes_drop(&st->rbody, st->rbody.len);
	}
}

/* Resets a stream; from then on nothing of it reaches the caller but the
 * `closed` callback. */
static void reset(struct moat_h2s *h, struct stream *st, uint32_t code)
{
	if (st->dead)
		return;
	st->dead = 1;
	uncount(h, st);
	drop_body(h, st);
	nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, code);
}

static void refuse(struct moat_h2s *h, struct stream *st)
{
	h->st.refused++;
	st->refused = 1;
	reset(h, st, NGHTTP2_REFUSED_STREAM);
	if (!bucket_take(&h->resets))
		calm(h);
}

/* ---- request side ---- */

static int name_is(const char *n, size_t nl, const char *lit)
{
	size_t l = strlen(lit);

	return nl == l && memcmp(n, lit, l) == 0;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Nonzero when a byte of x is zero (exact: no false positives). */
#define HAS_ZERO(x) (((x) - ONES) & ~(x) & HIGHS)

static int word_ctl(uint64_t x)
{
	return (HAS_ZERO(x) | HAS_ZERO(x ^ (ONES * '\r')) | HAS_ZERO(x ^ (ONES * '\n'))) != 0;
}

/* 1 when v[0 .. n) holds CR, LF or NUL; eight bytes a step, the last
 * step overlapping the one before (four to seven bytes: two
 * overlapping four-byte words). */
static int has_ctl(const uint8_t *v, size_t n)
{
	uint64_t x;
	size_t i;

	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&x, v + i, 8);
			if (word_ctl(x))
				return 1;
		}
		memcpy(&x, v + n - 8, 8);
		return word_ctl(x);
	}
	if (n >= 4) {
		uint32_t a, b;

		memcpy(&a, v, 4);
		memcpy(&b, v + n - 4, 4);
		return word_ctl((uint64_t)a | (uint64_t)b << 32);
	}
	for (i = 0; i < n; i++)
		if (v[i] == '\r' || v[i] == '\n' || v[i] == 0)
			return 1;
	return 0;
}

/* Copies n bytes from s to d with A-Z lowercased; eight bytes a step. */
static void copy_lower(char *d, const char *s, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, low7, ge_a, gt_z, upper;

		memcpy(&x, s + i, 8);
		low7 = x & ~HIGHS;
		ge_a = low7 + ONES * (0x80 - 'A');       /* high bit: byte >= 'A' (low 7 bits) */
		gt_z = low7 + ONES * (0x80 - 'Z' - 1);   /* high bit: byte > 'Z' */
		upper = ge_a & ~gt_z & ~x & HIGHS;       /* ASCII and in A-Z */
		x |= upper >> 2;                         /* 0x80 >> 2 = 0x20 */
		memcpy(d + i, &x, 8);
	}
	if (i < n && n >= 8) {
		/* the last eight bytes again, overlapping: same result */
		copy_lower(d + n - 8, s + n - 8, 8);
		return;
	}
	for (; i < n; i++)
		d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
}

static int add_lit(struct bytes *b, const char *s) { return bytes_add(b, s, strlen(s)); }

/* Starts the header block of stream st (request head or trailers). */
static void blk_begin(struct moat_h2s *h, struct stream *st)
{
	struct hblock *b = &h->blk;

	b->hb.len = b->hb.off = 0;
	b->cookie.len = b->cookie.off = 0;
	b->st = st;
	b->id = st->id;
	b->head = b->m_off = b->m_len = b->p_off = b->p_len = b->a_off = b->a_len = b->cookie_at = 0;
	b->have_m = b->have_p = b->have_s = b->scheme_ok = b->have_a = b->line = b->has_cl = b->has_cookie = 0;
}

/* The block is over: big buffers go. */
static void blk_end(struct moat_h2s *h)
{
	struct hblock *b = &h->blk;

	b->st = NULL;
	bytes_drop(&b->hb, b->hb.len);
	bytes_drop(&b->cookie, b->cookie.len);
}

/* Checks the pseudo-headers received and writes the request line and
 * Host. Returns 0, 1 to refuse the stream (PROTOCOL_ERROR; st->bad set),
 * -1 out of memory. */
static int head_line(struct stream *st, struct hblock *b)
{
	const char *m, *p, *base;
	size_t need;
	char *w;

	b->line = 1;
	if (!b->have_m || !b->have_p || !b->have_s || b->m_len == 0 || b->p_len == 0)
		goto refuse;
	base = bytes_at(&b->hb);
	m = base + b->m_off;
	p = base + b->p_off;
	if (name_is(m, b->m_len, "CONNECT") || !b->scheme_ok)
		goto refuse;
	if (p[0] != '/' && !(b->p_len == 1 && p[0] == '*' && name_is(m, b->m_len, "OPTIONS")))
		goto refuse;
	st->is_head = name_is(m, b->m_len, "HEAD");

	need = b->m_len + 1 + b->p_len + 11 + (b->have_a ? 8 + b->a_len : 0);
	w = bytes_room(&b->hb, need);
	if (w == NULL)
		return -1;
	base = bytes_at(&b->hb);
	b->head = b->hb.len;
	memcpy(w, base + b->m_off, b->m_len);
	w += b->m_len;
	*w++ = ' ';
	memcpy(w, base + b->p_off, b->p_len);
	w += b->p_len;
	memcpy(w, " HTTP/1.1\r\n", 11);
	w += 11;
	if (b->have_a) {
		memcpy(w, "Host: ", 6);
		memcpy(w + 6, base + b->a_off, b->a_len);
		w += 6 + b->a_len;
		w[0] = '\r';
		w[1] = '\n';
	}
	b->hb.len += need;
	return 0;
refuse:
	st->bad = 1;
	return 1;
}

/* One field of a request head. Returns 0 or -1 out of memory. */
static int head_field(struct stream *st, struct hblock *b, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	size_t *off, *len;

	if (nl == 0 || n[0] == ':') {
		if (b->line) {
			/* after a regular field (nghttp2 refuses this first) */
			st->bad = 1;
			return 0;
		}
		if (name_is((const char *)n, nl, ":method")) {
			b->have_m = 1;
			off = &b->m_off, len = &b->m_len;
		} else if (name_is((const char *)n, nl, ":path")) {
			b->have_p = 1;
			off = &b->p_off, len = &b->p_len;
		} else if (name_is((const char *)n, nl, ":authority")) {
			b->have_a = 1;
			off = &b->a_off, len = &b->a_len;
		} else if (name_is((const char *)n, nl, ":scheme")) {
			b->have_s = 1;
			b->scheme_ok = name_is((const char *)v, vl, "http") || name_is((const char *)v, vl, "https");
			return 0;
		} else {
			st->bad = 1;
			return 0;
		}
		*off = b->hb.len;
		*len = vl;
		return bytes_add(&b->hb, v, vl);
	}
	if (!b->line) {
		int r = head_line(st, b);

		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (b->have_a && name_is((const char *)n, nl, "host"))
		return 0;
	if (name_is((const char *)n, nl, "content-length")) {
		b->has_cl = 1;
	} else if (name_is((const char *)n, nl, "cookie")) {
		/* all cookie fields as one, where the first was (head_end) */
		if (!b->has_cookie) {
			b->has_cookie = 1;
			b->cookie_at = b->hb.len;
		} else if (bytes_add(&b->cookie, "; ", 2) < 0) {
			return -1;
		}
		return bytes_add(&b->cookie, v, vl);
	}
	return line_add(&b->hb, n, nl, v, vl);
}

/* Completes the head: the cookie line, the framing, CRLF. Returns 0 or
 * -1 out of memory. */
static int head_end(struct stream *st, struct hblock *b, int end_stream)
{
	if (b->has_cookie) {
		size_t l = 8 + b->cookie.len + 2, tail = b->hb.len - b->cookie_at;
		char *at;

		if (bytes_room(&b->hb, l) == NULL)
			return -1;
		at = bytes_at(&b->hb) + b->cookie_at;
		memmove(at + l, at, tail);
		memcpy(at, "cookie: ", 8);
		memcpy(at + 8, bytes_at(&b->cookie), b->cookie.len);
		memcpy(at + 8 + b->cookie.len, "\r\n", 2);
		b->hb.len += l;
	}
	if (!b->has_cl && !end_stream) {
		st->chunked_req = 1;
		if (add_lit(&b->hb, "Transfer-Encoding: chunked\r\n") < 0)
			return -1;
	}
	return bytes_add(&b->hb, "\r\n", 2);
}

/* The 431 answer to a request whose header list is over the limits. */
static void answer_431(struct moat_h2s *h, struct stream *st)
{
	nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"431", 7, 3, NGHTTP2_NV_FLAG_NONE };

	uncount(h, st);
	st->core_done = 1;
	st->rstate = R_DONE;
	if (nghttp2_submit_response(h->s, st->id, &nv, 1, NULL) != 0)
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
}

static void request_headers_done(struct moat_h2s *h, struct stream *st, int end_stream)
{
	struct hblock *b = &h->blk;
	int r = 0;

	if (st->dead)
		goto out;
	if (st->too_big) {
		answer_431(h, st);
		goto out;
	}
	if (b->st != st) {
		/* not the block we built (cannot happen: blocks do not interleave) */
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
		goto out;
	}
	if (!st->bad && !b->line)
		r = head_line(st, b);
	if (st->bad) {
		reset(h, st, NGHTTP2_PROTOCOL_ERROR);
		goto out;
	}
	if (r == 0)
		r = head_end(st, b, end_stream);
	if (r != 0) {
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
		goto out;
	}
	st->sp = h->ops->open(h->ud, st->id, bytes_at(&b->hb) + b->head, b->hb.len - b->head);
	if (st->sp == NULL) {
		refuse(h, st);
		goto out;
	}
	h->st.streams++;
	st->hnext = h->hash[sp_slot(st->sp)];
	h->hash[sp_slot(st->sp)] = st;
	st->sp_hashed = 1;
out:
	blk_end(h);
}

/* One request trailer field: a chunked trailer line in st->rtrail (read
 * once the trailers are complete); for a content-length body dropped. */
static void trailer_field(struct moat_h2s *h, struct stream *st, const uint8_t *n, size_t nl, const uint8_t *v,
			  size_t vl)
{
	if (!st->chunked_req || name_is((const char *)n, nl, "content-length") || name_is((const char *)n, nl, "host") ||
	    name_is((const char *)n, nl, "transfer-encoding"))
		return;
	if (line_add(&st->rtrail, n, nl, v, vl) < 0)
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
}

static void request_trailers_done(struct moat_h2s *h, struct stream *st)
{
	st->in_trailers = 0;
	if (st->too_big) {
		bytes_drop(&st->rtrail, st->rtrail.len);
		if (!st->dead && st->sp)
			reset(h, st, NGHTTP2_ENHANCE_YOUR_CALM);
	}
	blk_end(h);
}

static void notify_readable(struct moat_h2s *h, struct stream *st)
{
	if (st->sp && !st->dead)
		h->ops->readable(h->ud, st->sp);
}

/* ---- response side ---- */

static int hop_by_hop(const char *n, size_t nl)
{
	switch (nl) {
	case 2:
		return strncasecmp(n, "te", 2) == 0;
	case 7:
		return strncasecmp(n, "upgrade", 7) == 0;
	case 10:
		return strncasecmp(n, "connection", 10) == 0 || strncasecmp(n, "keep-alive", 10) == 0;
	case 16:
		return strncasecmp(n, "proxy-connection", 16) == 0;
	case 17:
		return strncasecmp(n, "transfer-encoding", 17) == 0;
	default:
		return 0;
	}
}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st = src->ptr;
	size_t n = st->obuf.len < length ? st->obuf.len : length;

	(void)s;
	(void)id;
	if (n) {
		memcpy(buf, bytes_at(&st->obuf), n);
		bytes_drop(&st->obuf, n);
	}
	if (st->obuf.len == 0 && st->out_ended) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->otrail.len) {
			size_t cnt = 0, pos = 0, nl, vl;
			const char *nm, *v;

			while (cnt < RESP_HDR_MAX && field_next(&st->otrail, &pos, &nm, &nl, &v, &vl)) {
				h->nv[cnt] = (nghttp2_nv){ (uint8_t *)nm, (uint8_t *)v, nl, vl, NGHTTP2_NV_FLAG_NONE };
				cnt++;
			}
			if (nghttp2_submit_trailer(s, st->id, h->nv, cnt) == 0)
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	} else if (n == 0) {
		st->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n && st->blocked && st->sp && !st->dead) {
		st->blocked = 0;
		h->ops->writable(h->ud, st->sp);
	}
	return (ssize_t)n;
}

static void resume(struct moat_h2s *h, struct stream *st)
{
	if (st->deferred && (st->obuf.len || st->out_ended)) {
		st->deferred = 0;
		nghttp2_session_resume_data(h->s, st->id);
	}
}

/* Fills h->nv from a parsed head of hlen bytes, the names lowercased into
 * h->names (the head's bytes are the caller's). Returns the count, 0 when
 * out of memory. */
static size_t head_nv(struct moat_h2s *h, const struct moat_h1_head *hd, char *status, size_t hlen)
{
	size_t i, cnt = 0;
	char *w;

	h->names.len = h->names.off = 0;
	w = bytes_room(&h->names, hlen);
	if (w == NULL)
		return 0;

	status[0] = (char)('0' + hd->status / 100 % 10);
	status[1] = (char)('0' + hd->status / 10 % 10);
	status[2] = (char)('0' + hd->status % 10);
	h->nv[cnt++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE };
	for (i = 0; i < hd->nheaders; i++) {
		const struct moat_h1_header *f = &hd->headers[i];
		const char *nm = f->name;

		if (hop_by_hop(f->name, f->name_len))
			continue;
		copy_lower(w, nm, f->name_len);
		h->nv[cnt++] = (nghttp2_nv){ (uint8_t *)w, (uint8_t *)f->value, f->name_len, f->value_len,
					     NGHTTP2_NV_FLAG_NONE };
		w += f->name_len;
	}
	return cnt;
}

/* One chunked trailer line "name: value" -> a record (framing fields and
 * hop-by-hop ones dropped). */
static int resp_trailer(struct stream *st, const char *line, size_t len)
{
	const char *c = memchr(line, ':', len);
	size_t nl, vs, ve, i;
	char name[256];

	if (c == NULL)
		return -1;
	nl = (size_t)(c - line);
	if (nl == 0 || nl >= sizeof(name))
		return nl == 0 ? -1 : 0;
	for (i = 0; i < nl; i++)
		name[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
	if (hop_by_hop(name, nl) || name_is(name, nl, "content-length") || name_is(name, nl, "host"))
		return 0;
	vs = nl + 1;
	ve = len;
	while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
		vs++;
	while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
		ve--;
	return field_add(&st->otrail, (const uint8_t *)name, nl, (const uint8_t *)line + vs, ve - vs);
}

/* Parses the response bytes d[0 .. *len) as far as it can; *d and *len
 * are advanced past what was used (what is left is a partial head, size
 * or trailer line). Returns 0, or -1 when the bytes are no valid response
 * (or 101). */
static int resp_parse(struct moat_h2s *h, struct stream *st, const char **dpos, size_t *lenp)
{
	const char *d = *dpos;
	size_t dlen = *lenp;

	while (st->rstate == R_HEAD) {
		struct moat_h1_head hd;
		struct moat_h1_limits lim = { 1, h->lim.stream_out_max, RESP_HDR_MAX };
		char status[3];
		size_t cnt;
		int r;

		if (dlen == 0)
			goto out;
		memset(&hd, 0, sizeof(hd));
		hd.headers = h->rh;
		hd.header_cap = RESP_HDR_MAX;
		r = moat_h1_parse_response(d, dlen, &hd, &lim, st->is_head);
		if (r == MOAT_AGAIN)
			goto out;
		if (r < 0 || hd.status == 101)
			return -1;
		cnt = head_nv(h, &hd, status, (size_t)r);
		if (cnt == 0)
			return -1;
		if (hd.status < 200) {
			if (nghttp2_submit_headers(h->s, NGHTTP2_FLAG_NONE, st->id, NULL, h->nv, cnt, NULL) < 0)
				return -1;
			d += r;
			dlen -= (size_t)r;
			continue;
		}
		st->framing = hd.framing;
		st->rleft = hd.content_length;
		if (hd.framing == MOAT_H1_BODY_NONE || (hd.framing == MOAT_H1_BODY_LENGTH && hd.content_length == 0)) {
			st->rstate = R_DONE;
			if (nghttp2_submit_response(h->s, st->id, h->nv, cnt, NULL) != 0)
				return -1;
		} else {
			nghttp2_data_provider dp;

			dp.source.ptr = st;
			dp.read_callback = data_read;
			st->rstate = R_BODY;
			moat_chunked_init(&st->chunk);
			/* a partial size or trailer line sits in ibuf: keep it well
			 * under stream_out_max, or a stream could wait forever */
			st->chunk.max_line = h->lim.stream_out_max / 4 < 4096 ? h->lim.stream_out_max / 4 + 1 : 4096;
			st->chunk.max_trailer = h->lim.stream_out_max / 2 < 16384 ? h->lim.stream_out_max / 2 + 1 : 16384;
			if (nghttp2_submit_response(h->s, st->id, h->nv, cnt, &dp) != 0)
				return -1;
		}
		d += r;
		dlen -= (size_t)r;
	}
	if (st->rstate == R_DONE) {
		/* bytes past the end of the response: nothing can carry them */
		d += dlen;
		dlen = 0;
		goto out;
	}
	switch (st->framing) {
	case MOAT_H1_BODY_LENGTH: {
		size_t k = dlen < st->rleft ? dlen : (size_t)st->rleft;

		if (bytes_add(&st->obuf, d, k) < 0)
			return -1;
		d += dlen;
		dlen = 0;
		st->rleft -= k;
		if (st->rleft == 0) {
			st->out_ended = 1;
			st->rstate = R_DONE;
		}
		break;
	}
	case MOAT_H1_BODY_CHUNKED:
		while (dlen) {
			size_t used, off, len;
			int r = moat_chunked_decode(&st->chunk, d, dlen, &used, &off, &len);

			if (r == MOAT_CHUNKED_DATA) {
				if (bytes_add(&st->obuf, d + off, len) < 0)
					return -1;
			} else if (r == MOAT_CHUNKED_TRAILER) {
				if (resp_trailer(st, d + off, len) < 0)
					return -1;
			} else if (r == MOAT_CHUNKED_DONE) {
				st->out_ended = 1;
				st->rstate = R_DONE;
				d += dlen;
				dlen = 0;
				break;
			} else if (r != MOAT_CHUNKED_NEED) {
				return -1;
			}
			d += used;
			dlen -= used;
			if (r == MOAT_CHUNKED_NEED)
				break;
		}
		break;
	default: /* CLOSE */
		if (bytes_add(&st->obuf, d, dlen) < 0)
			return -1;
		d += dlen;
		dlen = 0;
		break;
	}
	resume(h, st);
out:
	*dpos = d;
	*lenp = dlen;
	return 0;
}

/* Takes p[0 .. n) for the response: parsed straight from p when nothing
 * is held from before, else after what ibuf holds; what is left over goes
 * to (stays in) ibuf. Returns 0 or -1 (see resp_parse). */
static int resp_process(struct moat_h2s *h, struct stream *st, const char *p, size_t n)
{
	const char *d = p;
	size_t len = n;

	if (st->ibuf.len) {
		if (bytes_add(&st->ibuf, p, n) < 0)
			return -1;
		d = bytes_at(&st->ibuf);
		len = st->ibuf.len;
		if (resp_parse(h, st, &d, &len) < 0)
			return -1;
		bytes_drop(&st->ibuf, st->ibuf.len - len);
		return 0;
	}
	if (resp_parse(h, st, &d, &len) < 0)
		return -1;
	return bytes_add(&st->ibuf, d, len);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
	struct moat_h2s *h = ud;
	int ctrl = 0;

	(void)s;
	switch (hd->type) {
	case NGHTTP2_HEADERS:
		if (skipped_id(h, hd->stream_id)) {
			proto_error(h);
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		h->cont_frames = 1;
		h->cont_bytes = hd->length;
		ctrl = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
		break;
	case NGHTTP2_CONTINUATION:
		h->cont_frames++;
		h->cont_bytes += hd->length;
		if (h->cont_frames > h->lim.continuation_max || h->cont_bytes > 2 * h->lim.header_list_max) {
			calm(h);
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		ctrl = hd->length == 0;
		break;
	case NGHTTP2_DATA:
		ctrl = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
		break;
	case NGHTTP2_WINDOW_UPDATE:
		/* a client reading our DATA acknowledges it (for the stream and
		 * the connection): those are due, only the others count */
		if (h->wu_credit) {
			h->wu_credit--;
			break;
		}
		ctrl = 1;
		break;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
	case NGHTTP2_PRIORITY:
		ctrl = 1;
		break;
	default:
		break;
	}
	if (ctrl && !bucket_take(&h->ctrl)) {
		calm(h);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
		st = get_stream(h, f->hd.stream_id);
		if (st) {
			st->in_trailers = 1;
			st->hsize = st->hcount = 0;
			blk_begin(h, st);
		}
		return 0;
	}
	st = stream_alloc(h);
	if (st == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->h = h;
	st->id = f->hd.stream_id;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	if (nghttp2_session_set_stream_user_data(s, st->id, st) != 0) {
		stream_free(h, st);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	blk_begin(h, st);
	if (h->nactive >= h->lim.max_streams) {
		refuse(h, st);
		return h->fatal ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	st->counted = 1;
	h->nactive++;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st = h->blk.st;

	(void)s;
	(void)flags;
	if (st == NULL || st->id != f->hd.stream_id)
		st = get_stream(h, f->hd.stream_id);
	if (st == NULL || st->dead)
		return 0;
	st->hsize += nl + vl + 32;
	st->hcount++;
	if (st->hsize > h->lim.header_list_max || st->hcount > h->lim.header_count_max) {
		if (!st->too_big && st->in_trailers)
			bytes_drop(&st->rtrail, st->rtrail.len);
		st->too_big = 1;
		return 0;
	}
	if (st->too_big)
		return 0;
	if (has_ctl(value, vl) || has_ctl(name, nl)) {
		st->bad = 1;
		return 0;
	}
	if (st->in_trailers) {
		trailer_field(h, st, name, nl, value, vl);
		return 0;
	}
	if (st->bad || h->blk.st != st)
		return 0;
	if (head_field(st, &h->blk, name, nl, value, vl) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st = f->hd.stream_id ? get_stream(h, f->hd.stream_id) : NULL;
	int es = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	(void)s;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (st == NULL)
			break;
		if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
			request_headers_done(h, st, es);
		else if (st->in_trailers)
			request_trailers_done(h, st);
		if (es) {
			st->req_ended = 1;
			notify_readable(h, st);
		}
		break;
	case NGHTTP2_DATA:
		if (st && es) {
			st->req_ended = 1;
			notify_readable(h, st);
		}
		break;
	case NGHTTP2_RST_STREAM:
		h->st.resets_recv++;
		if (!bucket_take(&h->resets)) {
			calm(h);
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		break;
	default:
		break;
	}
	return h->fatal ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			 void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st = get_stream(h, id);

	(void)flags;
	if (st == NULL || st->dead || st->sp == NULL) {
		nghttp2_session_consume(s, id, len);
		return 0;
	}
	if (bytes_add(&st->rbody, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	notify_readable(h, st);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st;

	(void)s;
	if (f->hd.type == NGHTTP2_DATA && f->hd.length > 0 && h->wu_credit < WU_CREDIT_MAX)
		h->wu_credit += 2;
	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
		/* refused by nghttp2 itself (past SETTINGS_MAX_CONCURRENT_STREAMS
		 * before the client acknowledged it): counted here */
		st = get_stream(h, f->hd.stream_id);
		if (st == NULL || !st->refused) {
			h->st.refused++;
			if (!bucket_take(&h->resets))
				calm(h);
		}
		return 0;
	}
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = get_stream(h, f->hd.stream_id);
	if (st == NULL)
		return 0;
	st->resp_sent = 1;
	/* §8.1: the response is complete, the request is not: stop it */
	if (st->core_done && !st->req_ended)
		reset(h, st, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct moat_h2s *h = ud;
	struct stream *st = get_stream(h, id);

	if (st == NULL || h->freeing)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	if (st->rbody.len)
		nghttp2_session_consume_connection(s, st->rbody.len);
	if (st->sp) {
		void *sp = st->sp;

		sp_unhash(h, st);
		st->sp = NULL;
		h->ops->closed(h->ud, sp, code);
	}
	stream_free(h, st);
	return 0;
}

/* ---- public ---- */

static void limits_default(struct moat_h2s_limits *l, const struct moat_h2s_limits *in)
{
	static const struct moat_h2s_limits def = {
		.max_streams = 100, .header_list_max = 32 * 1024, .header_count_max = 100,
		.stream_window = 256 * 1024, .conn_window = 1024 * 1024, .stream_out_max = 64 * 1024,
		.reset_burst = 200, .reset_rate = 100, .continuation_max = 32,
		.ctrl_burst = 1000, .ctrl_rate = 500,
	};

	*l = in ? *in : def;
#define DEF(m) if (l->m == 0) l->m = def.m
	DEF(max_streams);
	DEF(header_list_max);
	DEF(header_count_max);
	DEF(stream_window);
	DEF(conn_window);
	DEF(stream_out_max);
	DEF(reset_burst);
	DEF(reset_rate);
	DEF(continuation_max);
	DEF(ctrl_burst);
	DEF(ctrl_rate);
#undef DEF
	if (l->stream_window > NGHTTP2_MAX_WINDOW_SIZE)
		l->stream_window = NGHTTP2_MAX_WINDOW_SIZE;
	if (l->conn_window > NGHTTP2_MAX_WINDOW_SIZE)
		l->conn_window = NGHTTP2_MAX_WINDOW_SIZE;
}

struct moat_h2s *moat_h2s_new(const struct moat_h2s_ops *ops, void *ud, const struct moat_h2s_limits *lim)
{
	struct moat_h2s *h = calloc(1, sizeof(*h));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry set[4];
	int ok = 0;

	if (h == NULL)
		return NULL;
	h->ops = ops;
	h->ud = ud;
	limits_default(&h->lim, lim);
	bucket_init(&h->resets, h->lim.reset_burst, h->lim.reset_rate);
	bucket_init(&h->ctrl, h->lim.ctrl_burst, h->lim.ctrl_rate);
	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	/* ours act first (they count more and are at most as generous) */
	nghttp2_option_set_max_continuations(opt, h->lim.continuation_max);
	nghttp2_option_set_stream_reset_rate_limit(opt, 2u * h->lim.reset_burst + 1, 2u * h->lim.reset_rate);
	if (nghttp2_session_server_new2(&h->s, cb, h, opt) != 0)
		goto out;
	set[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->lim.max_streams };
	set[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->lim.stream_window };
	set[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h->lim.header_list_max };
	set[3] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 };
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set, 4) != 0)
		goto out;
	if (h->lim.conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)h->lim.conn_window) != 0)
		goto out;
	ok = 1;
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (!ok) {
		moat_h2s_free(h);
		return NULL;
	}
	return h;
}

void moat_h2s_free(struct moat_h2s *h)
{
	if (h == NULL)
		return;
	h->freeing = 1;
	if (h->s)
		nghttp2_session_del(h->s);
	for (struct stream *st = h->streams, *next; st; st = next) {
		next = st->next;
		stream_free(h, st);
	}
	for (struct stream *st = h->spare, *next; st; st = next) {
		next = st->next;
		free(st);
	}
	bytes_free(&h->spill);
	bytes_free(&h->blk.hb);
	bytes_free(&h->blk.cookie);
	bytes_free(&h->names);
	free(h);
}

ssize_t moat_h2s_feed(struct moat_h2s *h, const uint8_t *p, size_t n)
{
	ssize_t r;

	if (h->fatal)
		return -1;
	r = nghttp2_session_mem_recv(h->s, p, n);
	if (r < 0 || h->fatal) {
		if (!h->fatal) {
			nghttp2_session_terminate_session(h->s, r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
									    : NGHTTP2_PROTOCOL_ERROR);
			if (r == NGHTTP2_ERR_FLOODED)
				h->st.goaway_calm++;
			h->fatal = 1;
		}
		return -1;
	}
	return r;
}

ssize_t moat_h2s_flush(struct moat_h2s *h, struct moat_buf *out)
{
	size_t total = 0;

	for (;;) {
		size_t room = out->max > moat_buf_len(out) ? out->max - moat_buf_len(out) : 0;
		const uint8_t *d;
		ssize_t r;
		size_t k;

		if (room == 0)
			break;
		if (h->spill.len) {
			k = h->spill.len < room ? h->spill.len : room;
			if (moat_buf_append(out, bytes_at(&h->spill), k) < 0)
				break;
			bytes_drop(&h->spill, k);
			total += k;
			continue;
		}
		r = nghttp2_session_mem_send(h->s, &d);
		if (r < 0) {
			h->fatal = 1;
			return -1;
		}
		if (r == 0)
			break;
		k = (size_t)r < room ? (size_t)r : room;
		if (moat_buf_append(out, d, k) < 0)
			k = 0;
		if (bytes_add(&h->spill, d + k, (size_t)r - k) < 0) {
			h->fatal = 1;
			return -1;
		}
		total += k;
	}
	return (ssize_t)total;
}

int moat_h2s_done(const struct moat_h2s *h)
{
	if (h->fatal)
		return 1;
	return h->spill.len == 0 && !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s);
}

int moat_h2s_want_write(const struct moat_h2s *h)
{
	return h->spill.len > 0 || nghttp2_session_want_write(h->s);
}

void moat_h2s_shutdown(struct moat_h2s *h)
{
	if (h->shutdown || h->fatal)
		return;
	h->shutdown = 1;
	nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

ssize_t moat_h2s_req_read(struct moat_h2s *h, void *sp, char *buf, size_t cap, int *ended)
{
	struct stream *st = by_sp(h, sp);
	size_t got = 0, acked = 0;

	*ended = 0;
	if (st == NULL || st->dead)
		return -1;
	while (got < cap) {
		size_t k;

		if (st->pend.len) {
			k = st->pend.len < cap - got ? st->pend.len : cap - got;
			memcpy(buf + got, bytes_at(&st->pend), k);
			bytes_drop(&st->pend, k);
			got += k;
			continue;
		}
		if (st->chunked_req && st->chunk_left == 0 && st->rbody.len) {
			char line[24];
			int l = snprintf(line, sizeof(line), "%zx\r\n", st->rbody.len);

			st->chunk_left = st->rbody.len;
			if (bytes_add(&st->pend, line, (size_t)l) < 0)
				return -1;
			continue;
		}
		if (st->rbody.len) {
			k = st->rbody.len < cap - got ? st->rbody.len : cap - got;
			if (st->chunked_req && k > st->chunk_left)
				k = st->chunk_left;
			memcpy(buf + got, bytes_at(&st->rbody), k);
			bytes_drop(&st->rbody, k);
			got += k;
			acked += k;
			if (st->chunked_req) {
				st->chunk_left -= k;
				if (st->chunk_left == 0 && bytes_add(&st->pend, "\r\n", 2) < 0)
					return -1;
			}
			continue;
		}
		if (st->chunked_req && st->req_ended && !st->last_chunk && !st->in_trailers) {
			st->last_chunk = 1;
			if (add_lit(&st->pend, "0\r\n") | bytes_add(&st->pend, bytes_at(&st->rtrail), st->rtrail.len) |
			    add_lit(&st->pend, "\r\n"))
				return -1;
			bytes_free(&st->rtrail);
			continue;
		}
		break;
	}
	if (acked)
		nghttp2_session_consume(h->s, st->id, acked);
	if (st->req_ended && st->rbody.len == 0 && st->pend.len == 0 && (!st->chunked_req || st->last_chunk))
		*ended = 1;
	return (ssize_t)got;
}

ssize_t moat_h2s_resp_write(struct moat_h2s *h, void *sp, const char *p, size_t n)
{
	struct stream *st = by_sp(h, sp);
	size_t held, take;

	if (st == NULL || st->dead)
		return -1;
	if (st->rstate == R_DONE && st->ibuf.len == 0)
		return (ssize_t)n; /* past the end of the response: nothing carries it */
	held = st->ibuf.len + st->obuf.len;
	take = held < h->lim.stream_out_max ? h->lim.stream_out_max - held : 0;
	if (take > n)
		take = n;
	if (take < n)
		st->blocked = 1;
	if (resp_process(h, st, p, take) < 0) {
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
		return -1;
	}
	return (ssize_t)take;
}

void moat_h2s_resp_end(struct moat_h2s *h, void *sp)
{
	struct stream *st = by_sp(h, sp);

	if (st == NULL || st->dead)
		return;
	st->core_done = 1;
	if (st->rstate == R_BODY && st->framing == MOAT_H1_BODY_CLOSE) {
		st->out_ended = 1;
		st->rstate = R_DONE;
		resume(h, st);
	}
	if (st->rstate != R_DONE) {
		reset(h, st, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	if (st->resp_sent && !st->req_ended)
		reset(h, st, NGHTTP2_NO_ERROR);
}

void moat_h2s_get_stats(const struct moat_h2s *h, struct moat_h2s_stats *st)
{
	*st = h->st;
}
