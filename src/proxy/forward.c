/*
 * forward.c - request heads towards backends and response heads towards
 * clients (see forward.h).
 *
 * Towards the backend moat removes every hop-by-hop field (RFC 9110 §7.6.1:
 * Connection and the fields it names, Keep-Alive, Proxy-Connection, TE
 * except "trailers", Transfer-Encoding, Upgrade unless tunnelling) plus
 * Expect (moat answers 100-continue itself) and Content-Length (re-stated
 * from the framing it chose), and fields whose name holds '_' (which some
 * backends fold into '-', a smuggling vector). Forwarding fields are replaced, or extended
 * when the peer is a trusted proxy. All other fields keep their order and
 * case.
 */
#include "proxy/forward.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct out {
	struct moat_buf *b;
	int err;
	size_t len0;                /* the buffer's length before this head */
};

/* On error nothing of the head stays in the buffer: a cut head must never
 * reach the wire. */
static int done(struct out *o)
{
	if (o->err)
		o->b->end = o->b->start + o->len0;
	return o->err;
}

static void put(struct out *o, const char *p, size_t n)
{
	if (!o->err && moat_buf_append(o->b, p, n) < 0)
		o->err = -ENOBUFS;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + n, sizeof(tmp) - n);
}

/*
 * Calls fn(token, len, arg) for each element of every Connection header of
 * `h` until fn returns nonzero; returns that value, or 0. Elements are
 * split on commas and whitespace; there is no bound on their number.
 */
static int each_connection_token(const struct moat_h1_head *h,
				 int (*fn)(const char *s, size_t n, const void *arg), const void *arg)
{
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *c = &h->headers[i];
		const char *p = c->value, *end = c->value + c->value_len;

		if (!moat_h1_name_is(c, "connection", 10))
			continue;
		while (p < end) {
			const char *s;
			int r;

			while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
				p++;
			s = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p > s && (r = fn(s, (size_t)(p - s), arg)) != 0)
				return r;
		}
	}
	return 0;
}

static int token_is_field(const char *s, size_t n, const void *arg)
{
	const struct moat_h1_header *f = arg;

	return n == f->name_len && strncasecmp(s, f->name, n) == 0;
}

static int token_names_field(const char *s, size_t n, const void *arg)
{
	(void)arg;
	return !((n == 5 && strncasecmp(s, "close", 5) == 0) ||
		 (n == 10 && strncasecmp(s, "keep-alive", 10) == 0) ||
		 (n == 7 && strncasecmp(s, "upgrade", 7) == 0));
}

/* Nonzero when a Connection header of `h` lists the name of field `f`. */
static int listed(const struct moat_h1_head *h, const struct moat_h1_header *f)
{
	return each_connection_token(h, token_is_field, f);
}

/* Nonzero when a Connection header names anything beyond close,
 * keep-alive and upgrade (which are removed anyway): the common case then
 * skips the per-field scan. */
static int connection_lists_fields(const struct moat_h1_head *h)
{
	return each_connection_token(h, token_names_field, NULL);
}

static int name_in(const struct moat_h1_header *f, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);

		if (moat_h1_name_is(f, names[i], l))
			return 1;
	}
	return 0;
}

static int is_token(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", ch)) || ch == 0)
			return 0;
	}
	return 1;
}

static void put_field(struct out *o, const struct moat_h1_header *f)
{
	put(o, f->name, f->name_len);
	PUTS(o, ": ");
	put(o, f->value, f->value_len);
	PUTS(o, "\r\n");
}

/* Appends the incoming values of field `lower` joined by ", ", then
 * returns whether there was any. */
static int put_joined(struct out *o, const struct moat_h1_head *h, const char *lower, size_t len)
{
	int any = 0;

	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *f = &h->headers[i];

		if (!moat_h1_name_is(f, lower, len) || f->value_len == 0)
			continue;
		if (any)
			PUTS(o, ", ");
		put(o, f->value, f->value_len);
		any = 1;
	}
	return any;
}

/* The fields a cache drops when it fetches a whole response for itself. */
static int is_cond(const struct moat_h1_header *x)
{
	return moat_h1_name_is(x, "range", 5) || moat_h1_name_is(x, "if-range", 8) ||
	       moat_h1_name_is(x, "if-none-match", 13) || moat_h1_name_is(x, "if-modified-since", 17);
}

static int dropped(const struct moat_fwd_req *f, const struct moat_h1_header *x)
{
	for (size_t k = 0; k < f->ndrop; k++)
		if (moat_h1_name_is(x, f->drop[k], f->drop_len[k]))
			return 1;
	return 0;
}

int moat_fwd_request_head(struct moat_buf *b, const struct moat_h1_head *h,
			  const struct moat_fwd_req *f)
{
	struct out o = { b, 0, moat_buf_len(b) };
	int nt = connection_lists_fields(h);
	const struct moat_h1_header *up = NULL;
	const char *xhost = f->client_host ? f->client_host :
			    f->host && !f->host_fallback ? f->host : h->host;
	size_t xhost_len = f->client_host ? f->client_host_len :
			   f->host && !f->host_fallback ? f->host_len : h->host_len;

	put(&o, h->method, h->method_len);
	PUTS(&o, " ");
	put(&o, f->target, f->target_len);
	PUTS(&o, " HTTP/1.1\r\n");
	if (f->host && !moat_h1_find(h, "host", 4)) {
		PUTS(&o, "Host: ");
		put(&o, f->host, f->host_len);
		PUTS(&o, "\r\n");
	}
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];

		switch (x->name_len) {
		case 2:
			if (moat_h1_name_is(x, "te", 2))
				continue;
			break;
		case 4:
			if (moat_h1_name_is(x, "host", 4)) {
				/* In place; the value may come from an
				 * absolute-form target (RFC 9112 §3.2.2). */
				if (f->host) {
					put(&o, x->name, x->name_len);
					PUTS(&o, ": ");
					put(&o, f->host, f->host_len);
					PUTS(&o, "\r\n");
				}
				continue;
			}
			break;
		case 6:
			if (moat_h1_name_is(x, "expect", 6))
				continue;
			break;
		case 7:
			if (moat_h1_name_is(x, "upgrade", 7)) {
				up = x;
				continue;
			}
			break;
		case 9:
			if (moat_h1_name_is(x, "forwarded", 9))
				continue;
			break;
		case 10:
			if (moat_h1_name_is(x, "connection", 10) || moat_h1_name_is(x, "keep-alive", 10))
				continue;
			break;
		case 14:
			if (moat_h1_name_is(x, "content-length", 14))
				continue;
			break;
		case 15:
			if (moat_h1_name_is(x, "x-forwarded-for", 15))
				continue;
			break;
		case 16:
			if (moat_h1_name_is(x, "proxy-connection", 16) ||
			    moat_h1_name_is(x, "x-forwarded-host", 16))
				continue;
			break;
		case 17:
			if (moat_h1_name_is(x, "transfer-encoding", 17) ||
			    moat_h1_name_is(x, "x-forwarded-proto", 17))
				continue;
			break;
		default:
			break;
		}
		if (nt && listed(h, x))
			continue;
		if (f->strip_cond && is_cond(x))
			continue;
		if (f->ndrop && dropped(f, x))
			continue;
		/* Some backends read "Content_Length" as "Content-Length":
		 * names with '_' are dropped, as nginx does by default. */
		if (memchr(x->name, '_', x->name_len))
			continue;
		put_field(&o, x);
	}
	if (h->flags & MOAT_H1_F_TE_TRAILERS)
		PUTS(&o, "TE: trailers\r\n");
	if (f->framing == MOAT_H1_BODY_LENGTH) {
		PUTS(&o, "Content-Length: ");
		put_u64(&o, f->content_length);
		PUTS(&o, "\r\n");
	} else if (f->framing == MOAT_H1_BODY_CHUNKED) {
		PUTS(&o, "Transfer-Encoding: chunked\r\n");
	}
	if (f->upgrade && up) {
		PUTS(&o, "Connection: upgrade\r\n");
		put_field(&o, up);
	}

	if (f->extra)
		put(&o, f->extra, f->extra_len);
	if (f->tls_line)
		put(&o, f->tls_line, f->tls_line_len);

	/* X-Forwarded-For: extended only when the peer is trusted. */
	PUTS(&o, "X-Forwarded-For: ");
	if (f->peer_trusted && put_joined(&o, h, "x-forwarded-for", 15))
		PUTS(&o, ", ");
	put(&o, f->client_ip, strlen(f->client_ip));
	PUTS(&o, "\r\n");

	{
		const struct moat_h1_header *xp = f->peer_trusted ? moat_h1_find(h, "x-forwarded-proto", 17) : NULL;
		const struct moat_h1_header *xh = f->peer_trusted ? moat_h1_find(h, "x-forwarded-host", 16) : NULL;

		PUTS(&o, "X-Forwarded-Proto: ");
		if (xp)
			put(&o, xp->value, xp->value_len);
		else if (f->https)
			PUTS(&o, "https");
		else
			PUTS(&o, "http");
		PUTS(&o, "\r\n");
		if (xh) {
			PUTS(&o, "X-Forwarded-Host: ");
			put(&o, xh->value, xh->value_len);
			PUTS(&o, "\r\n");
		} else if (xhost) {
			PUTS(&o, "X-Forwarded-Host: ");
			put(&o, xhost, xhost_len);
			PUTS(&o, "\r\n");
		}
	}

	/* RFC 7239 Forwarded: for=, host=, proto=; IPv6 quoted and bracketed. */
	PUTS(&o, "Forwarded: ");
	if (f->peer_trusted && put_joined(&o, h, "forwarded", 9))
		PUTS(&o, ", ");
	if (f->client_ipv6) {
		PUTS(&o, "for=\"[");
		put(&o, f->client_ip, strlen(f->client_ip));
		PUTS(&o, "]\"");
	} else {
		PUTS(&o, "for=");
		put(&o, f->client_ip, strlen(f->client_ip));
	}
	if (xhost && xhost_len) {
		/* host= is a token or a quoted-string (RFC 7239 §4): quote
		 * unless every byte is a token character, so a Host such as
		 * "a,for=6.6.6.6" cannot add an element. The parser admits no
		 * '"' or '\\' in a Host. */
		int q = !is_token(xhost, xhost_len);

		PUTS(&o, ";host=");
		if (q)
			PUTS(&o, "\"");
		put(&o, xhost, xhost_len);
		if (q)
			PUTS(&o, "\"");
	}
	if (f->https)
		PUTS(&o, ";proto=https\r\n\r\n");
	else
		PUTS(&o, ";proto=http\r\n\r\n");
	return done(&o);
}

static const char *const reason_default = "Unknown";

int moat_fwd_response_head(struct moat_buf *b, const struct moat_h1_head *h,
			   const struct moat_fwd_resp *f)
{
	struct out o = { b, 0, moat_buf_len(b) };
	int nt = connection_lists_fields(h);
	char line[32];
	int n;

	memcpy(line, "HTTP/1.1 000 ", 13);
	n = h->status >= 0 && h->status <= 999 ? h->status : 0;
	line[9] = (char)('0' + n / 100);
	line[10] = (char)('0' + n / 10 % 10);
	line[11] = (char)('0' + n % 10);
	put(&o, line, 13);
	if (h->reason_len)
		put(&o, h->reason, h->reason_len);
	else
		put(&o, reason_default, strlen(reason_default));
	PUTS(&o, "\r\n");
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];

		if (moat_h1_name_is(x, "connection", 10) || moat_h1_name_is(x, "keep-alive", 10) ||
		    moat_h1_name_is(x, "proxy-connection", 16) || moat_h1_name_is(x, "te", 2) ||
		    moat_h1_name_is(x, "transfer-encoding", 17))
			continue;
		if (moat_h1_name_is(x, "upgrade", 7)) {
			if (f->framing == MOAT_FWD_RESP_TUNNEL)
				put_field(&o, x);
			continue;
		}
		if (moat_h1_name_is(x, "content-length", 14)) {
			/* For bodiless answers (HEAD, 304) the backend's value
			 * describes the representation: pass it on, except
			 * where it is forbidden (1xx, 204). */
			if (f->framing == MOAT_FWD_RESP_NONE && h->status >= 200 && h->status != 204 &&
			    !name_in(x, f->hide3, f->nhide3))
				put_field(&o, x);
			continue;
		}
		if (name_in(x, f->hide, f->nhide) || name_in(x, f->hide2, f->nhide2) ||
		    name_in(x, f->hide3, f->nhide3))
			continue;
		if (nt && listed(h, x))
			continue;
		put_field(&o, x);
	}
	switch (f->framing) {
	case MOAT_FWD_RESP_LENGTH:
		PUTS(&o, "Content-Length: ");
		put_u64(&o, f->content_length);
		PUTS(&o, "\r\n");
		break;
	case MOAT_FWD_RESP_CHUNKED:
		PUTS(&o, "Transfer-Encoding: chunked\r\n");
		break;
	case MOAT_FWD_RESP_TUNNEL:
		PUTS(&o, "Connection: upgrade\r\n");
		break;
	default:
		break;
	}
	if (f->extra)
		put(&o, f->extra, f->extra_len);
	if (f->extra2)
		put(&o, f->extra2, f->extra2_len);
	if (f->extra3)
		put(&o, f->extra3, f->extra3_len);
	if (f->framing != MOAT_FWD_RESP_TUNNEL) {
		if (!f->keepalive)
			PUTS(&o, "Connection: close\r\n");
		else if (f->client_minor == 0)
			PUTS(&o, "Connection: keep-alive\r\n");
	}
	PUTS(&o, "\r\n");
	return done(&o);
}
