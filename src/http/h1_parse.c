/*
 * h1_parse.c - strict HTTP/1.x head parser (RFC 9112), pure.
 *
 * The h1 codecs call it with everything read so far for the current
 * message; it scans from byte 0 each time (heads are small), so it keeps no
 * state between calls. One pass, byte by byte in input order, no allocation:
 * every result points into the caller's buffer.
 *
 * Order of checks matters for restartability: an error is reported as soon
 * as the bytes seen prove it, and a limit is reported when the next byte the
 * head needs would lie past it. Hence for any prefix of an input, the result
 * is either MOAT_AGAIN or the result for the whole input, and a valid head
 * never yields an error on a prefix. The framing rules (RFC 9112 §6) are
 * applied once the empty line ending the head is seen.
 *
 * What is refused and why: docs/internals/h1-parser.md.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/h1_parse.h"

/* Largest Content-Length accepted; matches the chunk size limit. */
#define CL_MAX ((uint64_t)1 << 62)

/* Empty lines (CRLF) skipped before a request line (RFC 9112 §2.2). */
#define LEADING_CRLF_MAX 4

/* Byte classes. */
#define C_TOKEN  0x01 /* tchar (RFC 9110 §5.6.2): method, field name */
#define C_VALUE  0x02 /* field-vchar, obs-text, SP, HTAB: field value, reason */
#define C_TARGET 0x04 /* VCHAR: request-target */
#define C_HOST   0x08 /* reg-name / IP-literal / port characters of Host */

#define V    C_VALUE
#define VR   (C_VALUE | C_TARGET)
#define VRH  (C_VALUE | C_TARGET | C_HOST)
#define TVR  (C_TOKEN | C_VALUE | C_TARGET)
#define TVRH (C_TOKEN | C_VALUE | C_TARGET | C_HOST)
static const unsigned char cls[256] = {
	/* 00 */ 0,    0,    0,    0,    0,    0,    0,    0,
	/* 08 */ 0,    V,    0,    0,    0,    0,    0,    0,
	/* 10 */ 0,    0,    0,    0,    0,    0,    0,    0,
	/* 18 */ 0,    0,    0,    0,    0,    0,    0,    0,
	/* 20 */ V,    TVRH, VR,   TVR,  TVRH, TVRH, TVRH, TVRH,
	/* 28 */ VRH,  VRH,  TVRH, TVRH, VRH,  TVRH, TVRH, VR,
	/* 30 */ TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 38 */ TVRH, TVRH, VRH,  VRH,  VR,   VRH,  VR,   VR,
	/* 40 */ VR,   TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 48 */ TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 50 */ TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 58 */ TVRH, TVRH, TVRH, VRH,  VR,   VRH,  TVR,  TVRH,
	/* 60 */ TVR,  TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 68 */ TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 70 */ TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH, TVRH,
	/* 78 */ TVRH, TVRH, TVRH, VR,   TVR,  VR,   TVRH, 0,
	/* 80 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* 88 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* 90 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* 98 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* a0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* a8 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* b0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* b8 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* c0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* c8 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* d0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* d8 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* e0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* e8 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* f0 */ V,    V,    V,    V,    V,    V,    V,    V,
	/* f8 */ V,    V,    V,    V,    V,    V,    V,    V,
};
#undef V
#undef VR
#undef VRH
#undef TVR
#undef TVRH

/*
 * A scanning window over the input: bytes [pos, stop) may be read, where
 * stop = min(len, limit). Reaching stop means either "need more input"
 * (stop == len < limit) or "the head would not fit" (stop == limit): the
 * byte at index `limit` can never belong to an acceptable head element.
 */
struct win {
	const unsigned char *b;
	size_t len;
	size_t pos;
	size_t stop;
	size_t limit;
	int err; /* returned when the limit is what stopped the scan */
};

static void win_limit(struct win *w, size_t limit, int err)
{
	w->limit = limit;
	w->stop = limit < w->len ? limit : w->len;
	w->err = err;
}

/* Advances over bytes of class `mask`; stops at the first other byte or at
 * w->stop. The hot loop of the parser: locals only, one table look-up. */
static void win_skip(struct win *w, unsigned char mask)
{
	const unsigned char *b = w->b;
	size_t pos = w->pos, stop = w->stop;

	while (pos < stop && (cls[b[pos]] & mask))
		pos++;
	w->pos = pos;
}

/*
 * win_skip(w, C_VALUE), eight bytes at a time while none of them can be a
 * CTL or DEL (field values are long: cookies, user agents). A word with a
 * byte below 0x20 (HTAB included) or equal to 0x7f drops to the byte loop,
 * which decides. Bytes >= 0x80 (obs-text) pass, as they should.
 */
static void win_skip_value(struct win *w)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	const unsigned char *b = w->b;
	size_t pos = w->pos, stop = w->stop;

	while (stop - pos >= 8) {
		uint64_t x, ctl, del;

		memcpy(&x, b + pos, 8);
		ctl = (x - ones * 0x20) & ~x & highs;
		del = ((x ^ (ones * 0x7f)) - ones) & ~(x ^ (ones * 0x7f)) & highs;
		if (ctl | del)
			break;
		pos += 8;
	}
	w->pos = pos;
	win_skip(w, C_VALUE);
}

/* The result when the scan needs the byte at w->stop. */
static int win_end(const struct win *w)
{
	return w->stop == w->limit ? w->err : MOAT_AGAIN;
}

/* Consumes CR LF; anything else there is a bare CR or a stray byte. */
static int expect_crlf(struct win *w)
{
	if (w->pos == w->stop)
		return win_end(w);
	if (w->b[w->pos] != '\r')
		return MOAT_H1_EBAD;
	if (++w->pos == w->stop)
		return win_end(w);
	if (w->b[w->pos] != '\n')
		return MOAT_H1_EBAD;
	w->pos++;
	return 0;
}

/*
 * Consumes "HTTP/" DIGIT "." DIGIT (case-sensitive, RFC 9112 §2.3). Whether
 * the digits name a version we speak is decided by the caller once the
 * whole line is seen, so that "HTTP/2.0x" is garbage (EBAD), not EVERSION.
 */
static int parse_version(struct win *w, int *major, int *minor)
{
	static const char pattern[] = "HTTP/0.0";
	size_t i;

	for (i = 0; i < sizeof(pattern) - 1; i++) {
		unsigned char c;
		int ok;

		if (w->pos == w->stop)
			return win_end(w);
		c = w->b[w->pos];
		if (pattern[i] == '0')
			ok = c >= '0' && c <= '9';
		else
			ok = c == (unsigned char)pattern[i];
		if (!ok)
			return MOAT_H1_EBAD;
		w->pos++;
	}
	*major = w->b[w->pos - 3] - '0';
	*minor = w->b[w->pos - 1] - '0';
	return 0;
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive equality of s[0..n) with the lowercase literal l[0..n). */
static int eq_lower(const char *s, const char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != (unsigned char)l[i])
			return 0;
	return 1;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

int moat_h1_name_is(const struct moat_h1_header *h, const char *lower, size_t lower_len)
{
	return h->name_len == lower_len && eq_lower(h->name, lower, lower_len);
}

const struct moat_h1_header *moat_h1_find(const struct moat_h1_head *h, const char *lower, size_t lower_len)
{
	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], lower, lower_len))
			return &h->headers[i];
	return NULL;
}

int moat_h1_list_has(const char *v, size_t len, const char *lower, size_t lower_len)
{
	size_t i = 0;

	for (;;) {
		size_t s, e;

		while (i < len && is_ows(v[i]))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e - s == lower_len && eq_lower(v + s, lower, lower_len))
			return 1;
		if (i == len)
			return 0;
		i++; /* the comma */
	}
}

/* What the framing-relevant fields said, gathered field by field and judged
 * once the head is complete. */
struct fields {
	int is_request;
	unsigned cl_fields;   /* Content-Length fields seen */
	int cl_bad;           /* a Content-Length value was not one valid number */
	uint64_t cl;          /* value of the first Content-Length */
	unsigned te_fields;   /* Transfer-Encoding fields seen */
	unsigned te_chunked;  /* "chunked" elements over all TE fields */
	unsigned te_other;    /* other non-empty elements */
	int te_empty;         /* an empty list element (or empty value) */
	int te_chunked_last;  /* the last element seen was "chunked" */
	unsigned host_fields;
	int host_bad;         /* a Host value had a byte outside the host grammar */
};

/* Content-Length = 1*DIGIT, nothing else: no sign, no list, no spaces
 * inside. Values over CL_MAX are refused rather than risk overflow in the
 * layers that add or compare lengths. */
static int parse_cl(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)v[i] - '0';

		if (d > 9)
			return -1;
		if (x > (CL_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* Splits one Transfer-Encoding value into its elements and counts them. */
static void scan_te(struct fields *f, const char *v, size_t len)
{
	size_t i = 0;

	for (;;) {
		size_t s, e;

		while (i < len && is_ows(v[i]))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e == s) {
			f->te_empty = 1;
			f->te_chunked_last = 0;
		} else if (e - s == 7 && eq_lower(v + s, "chunked", 7)) {
			f->te_chunked++;
			f->te_chunked_last = 1;
		} else {
			f->te_other++;
			f->te_chunked_last = 0;
		}
		if (i == len)
			return;
		i++;
	}
}

static int host_ok(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(cls[(unsigned char)v[i]] & C_HOST))
			return 0;
	return 1;
}

#define NAME_IS(h, lit) moat_h1_name_is((h), lit, sizeof(lit) - 1)
#define LIST_HAS(h, lit) moat_h1_list_has((h)->value, (h)->value_len, lit, sizeof(lit) - 1)

/* Notes what one field means for framing and flags. Field names of
 * interest have distinct lengths, so the length picks the candidate. */
static void note_field(struct moat_h1_head *head, struct fields *f, const struct moat_h1_header *h)
{
	switch (h->name_len) {
	case 2:
		if (f->is_request && NAME_IS(h, "te") && LIST_HAS(h, "trailers"))
			head->flags |= MOAT_H1_F_TE_TRAILERS;
		break;
	case 4:
		if (f->is_request && NAME_IS(h, "host")) {
			if (f->host_fields++ == 0) {
				head->host = h->value;
				head->host_len = h->value_len;
			}
			if (!host_ok(h->value, h->value_len))
				f->host_bad = 1;
		}
		break;
	case 6:
		if (f->is_request && NAME_IS(h, "expect") && LIST_HAS(h, "100-continue"))
			head->flags |= MOAT_H1_F_EXPECT_100;
		break;
	case 7:
		if (NAME_IS(h, "upgrade"))
			head->flags |= MOAT_H1_F_UPGRADE;
		break;
	case 10:
		if (NAME_IS(h, "connection")) {
			if (LIST_HAS(h, "close"))
				head->flags |= MOAT_H1_F_CONN_CLOSE;
			if (LIST_HAS(h, "keep-alive"))
				head->flags |= MOAT_H1_F_CONN_KEEPALIVE;
			if (LIST_HAS(h, "upgrade"))
				head->flags |= MOAT_H1_F_CONN_UPGRADE;
		}
		break;
	case 14:
		if (NAME_IS(h, "content-length")) {
			uint64_t v;

			if (parse_cl(h->value, h->value_len, &v) != 0)
				f->cl_bad = 1;
			else if (f->cl_fields == 0)
				f->cl = v;
			f->cl_fields++;
		}
		break;
	case 17:
		if (NAME_IS(h, "transfer-encoding")) {
			f->te_fields++;
			scan_te(f, h->value, h->value_len);
		}
		break;
	default:
		break;
	}
}

/*
 * Parses field lines up to and including the empty line that ends the
 * head. Returns the head length or an error / MOAT_AGAIN.
 *
 *   line start --CR LF--> end of head
 *       |--SP/HTAB (obs-fold), LF, other non-tchar--> EBAD
 *       `--name--":"--OWS--value--OWS--CR LF--> line start
 */
static int parse_fields(struct win *w, struct moat_h1_head *head, struct fields *f, size_t max_fields)
{
	for (;;) {
		struct moat_h1_header *h;
		size_t start, vend;
		unsigned char c;

		if (w->pos == w->stop)
			return win_end(w);
		c = w->b[w->pos];
		if (c == '\r') {
			int r = expect_crlf(w);

			return r != 0 ? r : (int)w->pos;
		}
		/* a field line must start with a name: SP / HTAB would be an
		 * obs-fold, LF a bare line ending */
		if (!(cls[c] & C_TOKEN))
			return MOAT_H1_EBAD;
		if (head->nheaders >= max_fields)
			return MOAT_H1_EHDR_TOO_BIG;

		start = w->pos;
		win_skip(w, C_TOKEN);
		if (w->pos == w->stop)
			return win_end(w);
		if (w->b[w->pos] != ':')
			return MOAT_H1_EBAD; /* whitespace before the colon, or a non-token byte */
		h = &head->headers[head->nheaders];
		h->name = (const char *)w->b + start;
		h->name_len = w->pos - start;
		w->pos++;

		while (w->pos < w->stop && is_ows((char)w->b[w->pos]))
			w->pos++;
		start = w->pos;
		win_skip_value(w);
		vend = w->pos;
		{
			int r = expect_crlf(w); /* also refuses NUL, CTLs, DEL, bare LF */

			if (r != 0)
				return r;
		}
		while (vend > start && is_ows((char)w->b[vend - 1]))
			vend--;
		h->value = (const char *)w->b + start;
		h->value_len = vend - start;
		head->nheaders++;
		note_field(head, f, h);
	}
}

static void head_reset(struct moat_h1_head *head)
{
	head->method = NULL;
	head->method_len = 0;
	head->target = NULL;
	head->target_len = 0;
	head->status = 0;
	head->reason = NULL;
	head->reason_len = 0;
	head->minor_version = 0;
	head->nheaders = 0;
	head->framing = MOAT_H1_BODY_NONE;
	head->content_length = 0;
	head->flags = 0;
	head->host = NULL;
	head->host_len = 0;
}

static void fields_reset(struct fields *f, int is_request)
{
	f->is_request = is_request;
	f->cl_fields = 0;
	f->cl_bad = 0;
	f->cl = 0;
	f->te_fields = 0;
	f->te_chunked = 0;
	f->te_other = 0;
	f->te_empty = 0;
	f->te_chunked_last = 0;
	f->host_fields = 0;
	f->host_bad = 0;
}

/* The head must fit an int return; larger limits act as INT_MAX. */
static size_t head_limit(const struct moat_h1_limits *lim)
{
	return lim->header_size_max < (size_t)INT_MAX ? lim->header_size_max : (size_t)INT_MAX;
}

static size_t field_limit(const struct moat_h1_head *head, const struct moat_h1_limits *lim)
{
	if (head->headers == NULL)
		return 0;
	return lim->header_count_max < head->header_cap ? lim->header_count_max : head->header_cap;
}

/* Exactly one "chunked", last, and nothing else. */
static int te_is_chunked(const struct fields *f)
{
	return f->te_chunked == 1 && f->te_chunked_last && f->te_other == 0 && !f->te_empty;
}

/* RFC 9112 §6.3 for requests, applied strictly. */
static int request_framing(struct moat_h1_head *head, const struct fields *f)
{
	if (f->host_fields > 1 || f->host_bad)
		return MOAT_H1_EBAD;
	if (head->minor_version == 1 && f->host_fields == 0)
		return MOAT_H1_EBAD;
	if (f->host_fields == 1)
		head->flags |= MOAT_H1_F_HAS_HOST;
	if (f->cl_fields > 1 || f->cl_bad)
		return MOAT_H1_EBAD;
	if (f->te_fields > 0) {
		if (f->cl_fields > 0)
			return MOAT_H1_EBAD;
		if (head->minor_version == 0)
			return MOAT_H1_EBAD; /* §6.1: TE in HTTP/1.0 means faulty framing */
		/* §6.3 (4): chunked not final (or not there, or twice): 400 */
		if (f->te_empty || f->te_chunked != 1 || !f->te_chunked_last)
			return MOAT_H1_EBAD;
		/* final chunked over a coding we do not implement: 501 */
		if (f->te_other > 0)
			return MOAT_H1_ETE_UNKNOWN;
		head->framing = MOAT_H1_BODY_CHUNKED;
	} else if (f->cl_fields == 1) {
		head->framing = MOAT_H1_BODY_LENGTH;
		head->content_length = f->cl;
	} else {
		head->framing = MOAT_H1_BODY_NONE;
	}
	return 0;
}

int moat_h1_parse_request(const char *buf, size_t len, struct moat_h1_head *head,
			  const struct moat_h1_limits *lim)
{
	struct win w;
	struct fields f;
	size_t hlim = head_limit(lim);
	size_t start;
	int major, minor, r;
	unsigned n;

	head_reset(head);
	fields_reset(&f, 1);
	w.b = (const unsigned char *)buf;
	w.len = len;
	w.pos = 0;
	win_limit(&w, hlim, MOAT_H1_EHDR_TOO_BIG);

	for (n = 0;; n++) {
		if (w.pos == w.stop)
			return win_end(&w);
		if (w.b[w.pos] != '\r')
			break;
		if (n == LEADING_CRLF_MAX)
			return MOAT_H1_EBAD;
		r = expect_crlf(&w);
		if (r != 0)
			return r;
	}

	/* the request line ends at whichever limit comes first */
	if (lim->request_line_max <= hlim - w.pos)
		win_limit(&w, w.pos + lim->request_line_max, MOAT_H1_EURI_TOO_LONG);

	start = w.pos;
	win_skip(&w, C_TOKEN);
	if (w.pos == w.stop)
		return win_end(&w);
	if (w.pos == start || w.b[w.pos] != ' ')
		return MOAT_H1_EBAD;
	head->method = buf + start;
	head->method_len = w.pos - start;
	w.pos++;

	start = w.pos;
	win_skip(&w, C_TARGET);
	if (w.pos == w.stop)
		return win_end(&w);
	if (w.pos == start || w.b[w.pos] != ' ')
		return MOAT_H1_EBAD;
	head->target = buf + start;
	head->target_len = w.pos - start;
	w.pos++;

	r = parse_version(&w, &major, &minor);
	if (r == 0)
		r = expect_crlf(&w);
	if (r != 0)
		return r;
	if (major != 1 || minor > 1)
		return MOAT_H1_EVERSION;
	head->minor_version = minor;

	win_limit(&w, hlim, MOAT_H1_EHDR_TOO_BIG);
	r = parse_fields(&w, head, &f, field_limit(head, lim));
	if (r < 0)
		return r;
	{
		int e = request_framing(head, &f);

		return e != 0 ? e : r;
	}
}

/* RFC 9112 §6.3 for responses, applied strictly. */
static int response_framing(struct moat_h1_head *head, const struct fields *f, int req_method_head)
{
	int s = head->status;

	if (f->cl_fields > 1 || f->cl_bad)
		return MOAT_H1_EBAD;
	if (req_method_head || (s >= 100 && s <= 199) || s == 204 || s == 304) {
		/* no body follows whatever CL / TE say; CL (checked above)
		 * still describes the representation */
		head->framing = MOAT_H1_BODY_NONE;
		head->content_length = f->cl_fields ? f->cl : 0;
		return 0;
	}
	if (f->te_fields > 0) {
		if (f->cl_fields > 0)
			return MOAT_H1_EBAD;
		if (head->minor_version == 0)
			return MOAT_H1_EBAD;
		if (!te_is_chunked(f))
			return MOAT_H1_ETE_UNKNOWN;
		head->framing = MOAT_H1_BODY_CHUNKED;
	} else if (f->cl_fields == 1) {
		head->framing = MOAT_H1_BODY_LENGTH;
		head->content_length = f->cl;
	} else {
		head->framing = MOAT_H1_BODY_CLOSE;
	}
	return 0;
}

int moat_h1_parse_response(const char *buf, size_t len, struct moat_h1_head *head,
			   const struct moat_h1_limits *lim, int req_method_head)
{
	struct win w;
	struct fields f;
	size_t start;
	int major, minor, r, i;

	head_reset(head);
	fields_reset(&f, 0);
	w.b = (const unsigned char *)buf;
	w.len = len;
	w.pos = 0;
	win_limit(&w, head_limit(lim), MOAT_H1_EHDR_TOO_BIG);

	r = parse_version(&w, &major, &minor);
	if (r != 0)
		return r;
	if (w.pos == w.stop)
		return win_end(&w);
	if (w.b[w.pos++] != ' ')
		return MOAT_H1_EBAD;

	for (i = 0; i < 3; i++) {
		unsigned char c;

		if (w.pos == w.stop)
			return win_end(&w);
		c = w.b[w.pos++];
		if (c < (i == 0 ? '1' : '0') || c > '9')
			return MOAT_H1_EBAD;
		head->status = head->status * 10 + (c - '0');
	}

	if (w.pos == w.stop)
		return win_end(&w);
	start = w.pos;
	if (w.b[w.pos] == ' ') {
		/* status-line = HTTP-version SP status-code SP [ reason-phrase ] */
		start = ++w.pos;
		win_skip(&w, C_VALUE);
	} /* else leniently no SP at all: "HTTP/1.1 200" CRLF */
	head->reason = buf + start;
	head->reason_len = w.pos - start;
	r = expect_crlf(&w);
	if (r != 0)
		return r;
	if (major != 1 || minor > 1)
		return MOAT_H1_EVERSION;
	head->minor_version = minor;

	r = parse_fields(&w, head, &f, field_limit(head, lim));
	if (r < 0)
		return r;
	{
		int e = response_framing(head, &f, req_method_head);

		return e != 0 ? e : r;
	}
}
