/*
 * xff.c - client address from X-Forwarded-For / Forwarded (see xff.h).
 *
 * X-Forwarded-For has no quoting, so it is split from the right, field by
 * field, and stops at the client. Forwarded may quote commas, so each of
 * its fields is read from the left and every element fed to a small
 * machine that gives the same answer as the walk from the right:
 *
 *   element            NONE        RESULT(x)   ALL_TRUSTED(x)  FAIL
 *   unusable           FAIL        FAIL        FAIL            FAIL
 *   untrusted address  RESULT(e)   RESULT(e)   RESULT(e)       RESULT(e)
 *   trusted address    ALL_TR.(e)  RESULT(x)   ALL_TR.(x)      FAIL
 *
 * (the rightmost element that is not a trusted address decides; with none,
 * the leftmost trusted one; RESULT and ALL_TRUSTED return 0, the others -1).
 */
#include "http/xff.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "core/cidr.h"

/* One hop's address, port 0. */
struct hop {
	struct sockaddr_storage ss;
	socklen_t len;
};

enum { PICK_NONE, PICK_RESULT, PICK_ALL_TRUSTED, PICK_FAIL };

struct pick {
	int state;
	struct hop hop;
	int (*trusted)(void *ctx, const struct sockaddr *sa);
	void *ctx;
};

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_tchar(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* port = 1*5DIGIT <= 65535; with `obf`, also "_" 1*(ALPHA / DIGIT / "." /
 * "_" / "-") (RFC 7239 obfport). */
static int port_ok(const char *s, size_t n, int obf)
{
	unsigned long v = 0;
	size_t i;

	if (obf && n >= 2 && s[0] == '_') {
		for (i = 1; i < n; i++)
			if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
				return 0;
		return 1;
	}
	if (n == 0 || n > 5)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v <= 65535;
}

static int addr_of(const char *s, size_t n, int want, struct hop *h)
{
	unsigned char a[16];
	int fam;

	if (moat_cidr_parse_addr(s, n, &fam, a) < 0 || (want != 0 && fam != want))
		return -1;
	memset(&h->ss, 0, sizeof h->ss);
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&h->ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		h->len = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&h->ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		h->len = sizeof *s6;
	}
	return 0;
}

/*
 * Reads a node s[0..n): "[v6]" or "[v6]:port" or "v4" or "v4:port", and
 * with `forwarded` == 0 (X-Forwarded-For) also a bare IPv6; with
 * `forwarded` ports may be obfuscated. 0 with *h set, or -1.
 */
static int parse_node(const char *s, size_t n, int forwarded, struct hop *h)
{
	const char *colon;

	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		size_t rest;

		if (close == NULL || addr_of(s + 1, (size_t)(close - s - 1), AF_INET6, h) < 0)
			return -1;
		rest = n - (size_t)(close - s) - 1;
		if (rest == 0)
			return 0;
		return close[1] == ':' && port_ok(close + 2, rest - 1, forwarded) ? 0 : -1;
	}
	if (!forwarded && addr_of(s, n, 0, h) == 0)
		return 0;
	colon = memchr(s, ':', n);
	if (colon == NULL)
		return addr_of(s, n, AF_INET, h);
	if (addr_of(s, (size_t)(colon - s), AF_INET, h) < 0)
		return -1;
	return port_ok(colon + 1, n - (size_t)(colon - s) - 1, forwarded) ? 0 : -1;
}

/* Feeds one element, left to right (table in the file comment); h is
 * NULL for an unusable element. */
static void feed(struct pick *p, const struct hop *h)
{
	if (h == NULL) {
		p->state = PICK_FAIL;
	} else if (p->trusted == NULL || !p->trusted(p->ctx, (const struct sockaddr *)(const void *)&h->ss)) {
		p->state = PICK_RESULT;
		p->hop = *h;
	} else if (p->state == PICK_NONE) {
		p->state = PICK_ALL_TRUSTED;
		p->hop = *h;
	}
}

/* ---- X-Forwarded-For, from the right ---------------------------------- */

static int xff(const struct moat_h1_head *h, struct pick *p)
{
	struct hop hop;
	size_t i;

	for (i = h->nheaders; i-- > 0;) {
		const struct moat_h1_header *f = &h->headers[i];
		size_t e = f->value_len;

		if (!moat_h1_name_is(f, "x-forwarded-for", 15))
			continue;
		for (;;) {
			size_t b = e, s, t;

			while (b > 0 && f->value[b - 1] != ',')
				b--;
			s = b;
			t = e;
			while (s < t && is_ows(f->value[s]))
				s++;
			while (t > s && is_ows(f->value[t - 1]))
				t--;
			if (s < t) {
				if (parse_node(f->value + s, t - s, 0, &hop) < 0)
					return -1;
				if (p->trusted == NULL ||
				    !p->trusted(p->ctx, (const struct sockaddr *)(const void *)&hop.ss)) {
					p->state = PICK_RESULT;
					p->hop = hop;
					return 0;
				}
				p->state = PICK_ALL_TRUSTED; /* the leftmost so far */
				p->hop = hop;
			}
			if (b == 0)
				break;
			e = b - 1;
		}
	}
	return p->state == PICK_ALL_TRUSTED ? 0 : -1;
}

/* ---- Forwarded, from the left ----------------------------------------- */

#define NODE_MAX 64 /* longest for= value read ("[IPv6]:port" with room) */

/* Reads a quoted-string at v[*pos] (the opening quote), unescaped, into
 * dst: its first NODE_MAX bytes; *dlen is the whole length. -1 when it is
 * not closed or holds a control byte. */
static int quoted(const char *v, size_t n, size_t *pos, char *dst, size_t *dlen)
{
	size_t i = *pos + 1, k = 0;

	for (; i < n; i++) {
		char c = v[i];

		if (c == '"') {
			*pos = i + 1;
			*dlen = k;
			return 0;
		}
		if (c == '\\') {
			if (++i == n)
				return -1;
			c = v[i];
		}
		/* qdtext / quoted-pair: HTAB, SP, VCHAR, obs-text */
		if ((unsigned char)c < 0x20 ? c != '\t' : c == 0x7f)
			return -1;
		if (k < NODE_MAX)
			dst[k] = c;
		k++;
	}
	return -1;
}

/*
 * Reads one Forwarded field value v[0..n), feeding each element. A syntax
 * error feeds one unusable element and ends the field (what follows the
 * fault cannot be split reliably).
 */
static void forwarded_field(const char *v, size_t n, struct pick *p)
{
	size_t pos = 0;

	for (;;) {
		char node[NODE_MAX];
		size_t node_len = 0;
		int pairs = 0, fors = 0;
		struct hop hop;

		/* one element: [pair] *( ";" [pair] ) */
		for (;;) {
			size_t name, name_len;
			char val[NODE_MAX];
			size_t val_len = 0;

			while (pos < n && is_ows(v[pos]))
				pos++;
			if (pos < n && is_tchar(v[pos])) {
				name = pos;
				while (pos < n && is_tchar(v[pos]))
					pos++;
				name_len = pos - name;
				if (pos == n || v[pos] != '=') {
					feed(p, NULL);
					return;
				}
				pos++;
				if (pos < n && v[pos] == '"') {
					if (quoted(v, n, &pos, val, &val_len) < 0) {
						feed(p, NULL);
						return;
					}
				} else {
					size_t t = pos;

					while (pos < n && is_tchar(v[pos]))
						pos++;
					if (pos == t) {
						feed(p, NULL);
						return;
					}
					val_len = pos - t;
					memcpy(val, v + t, val_len < NODE_MAX ? val_len : NODE_MAX);
				}
				pairs++;
				if (name_len == 3 && (v[name] | 0x20) == 'f' && (v[name + 1] | 0x20) == 'o' &&
				    (v[name + 2] | 0x20) == 'r') {
					fors++;
					node_len = val_len;
					memcpy(node, val, val_len < NODE_MAX ? val_len : NODE_MAX);
				}
				while (pos < n && is_ows(v[pos]))
					pos++;
			}
			if (pos == n || v[pos] == ',')
				break;
			if (v[pos] != ';') {
				feed(p, NULL);
				return;
			}
			pos++;
		}
		if (pairs > 0) {
			if (fors == 1 && node_len <= NODE_MAX && parse_node(node, node_len, 1, &hop) == 0)
				feed(p, &hop);
			else
				feed(p, NULL);
		}
		if (pos == n)
			return;
		pos++; /* ',' */
	}
}

int moat_xff_client(const struct moat_h1_head *h, int which, int (*trusted)(void *ctx, const struct sockaddr *sa),
		    void *ctx, struct sockaddr_storage *out, socklen_t *outlen)
{
	struct pick p;
	size_t i;

	if (h == NULL || (h->nheaders > 0 && h->headers == NULL))
		return -1;
	memset(&p, 0, sizeof p);
	p.trusted = trusted;
	p.ctx = ctx;
	if (which == MOAT_XFF_X_FORWARDED_FOR) {
		if (xff(h, &p) < 0)
			return -1;
	} else if (which == MOAT_XFF_FORWARDED) {
		for (i = 0; i < h->nheaders; i++)
			if (moat_h1_name_is(&h->headers[i], "forwarded", 9))
				forwarded_field(h->headers[i].value, h->headers[i].value_len, &p);
		if (p.state != PICK_RESULT && p.state != PICK_ALL_TRUSTED)
			return -1;
	} else {
		return -1;
	}
	*out = p.hop.ss;
	*outlen = p.hop.len;
	return 0;
}
