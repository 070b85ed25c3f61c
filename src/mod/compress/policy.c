/*
 * policy.c - compress or not, and the header edits (see policy.h). Pure:
 * reads parsed heads, writes the caller's buffer.
 */
#include <errno.h>
#include <string.h>

#include "http/cachecontrol.h"
#include "mod/compress/policy.h"

const char *const moat_compress_default_types[] = {
	"text/html", "text/css", "text/plain", "text/xml", "text/javascript", "text/markdown",
	"text/csv", "application/javascript", "application/json", "application/ld+json",
	"application/manifest+json", "application/xml", "application/xhtml+xml",
	"application/rss+xml", "application/atom+xml", "application/wasm", "image/svg+xml",
	"image/x-icon", "font/ttf", "font/otf", "application/vnd.ms-fontobject",
};
const size_t moat_compress_default_ntypes =
	sizeof moat_compress_default_types / sizeof moat_compress_default_types[0];

/* The fields dropped with YES; "vary" last, included only when Vary is
 * rewritten. */
static const char *const hide_yes[MOAT_COMPRESS_HIDE_MAX] = {
	"content-length", "accept-ranges", "etag", "content-md5", "digest", "content-digest",
	"repr-digest", "vary",
};
static const char *const hide_vary[] = { "vary" };

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

int moat_compress_type_ok(const char *const *types, size_t n, const char *v, size_t len)
{
	size_t end = 0, slash;

	/* the media type: up to ';', without OWS */
	while (end < len && v[end] != ';')
		end++;
	while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		len--;
		end--;
	}
	while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
		end--;
	for (slash = 0; slash < end && v[slash] != '/'; slash++)
		;
	if (slash == 0 || slash + 1 >= end)
		return 0; /* not type "/" subtype */
	for (size_t i = 0; i < n; i++) {
		const char *t = types[i];
		size_t tl = strlen(t);

		if (strcmp(t, "*/*") == 0)
			return 1;
		if (tl >= 2 && t[tl - 1] == '*' && t[tl - 2] == '/') {
			if (ieq(v, slash + 1, t, tl - 1))
				return 1;
		} else if (ieq(v, end, t, tl)) {
			return 1;
		}
	}
	return 0;
}

/* Count of fields named `lower` (lowercase, length n); *first set to the first. */
static size_t find(const struct moat_h1_head *h, const char *name, size_t n,
		   const struct moat_h1_header **first)
{
	size_t count = 0;

	*first = NULL;
	for (size_t i = 0; i < h->nheaders; i++) {
		if (moat_h1_name_is(&h->headers[i], name, n)) {
			if (count++ == 0)
				*first = &h->headers[i];
		}
	}
	return count;
}

static int any_lists(const struct moat_h1_head *h, const char *name, size_t n, const char *tok,
		     size_t tlen)
{
	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], name, n) &&
		    moat_h1_list_has(h->headers[i].value, h->headers[i].value_len, tok, tlen))
			return 1;
	return 0;
}

/* Cache-Control: no-transform, in any of the response's field lines
 * (http/cachecontrol.h reads quoted strings and case as RFC 9111 says). */
static int no_transform(const struct moat_h1_head *h)
{
	struct moat_cc cc;

	moat_cc_init(&cc);
	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], "cache-control", 13))
			(void)moat_cc_parse(h->headers[i].value, h->headers[i].value_len, &cc);
	return (cc.flags & MOAT_CC_NO_TRANSFORM) != 0;
}

/* The Content-Length field's value when it is one field of digits only
 * (the parser has already refused others on a framed body); -1 if none. */
static int content_length(const struct moat_h1_head *h, uint64_t *cl)
{
	const struct moat_h1_header *f;
	uint64_t v = 0;

	if (find(h, "content-length", 14, &f) != 1 || f->value_len == 0 || f->value_len > 18)
		return -1;
	for (size_t i = 0; i < f->value_len; i++) {
		if (f->value[i] < '0' || f->value[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(f->value[i] - '0');
	}
	*cl = v;
	return 0;
}

enum moat_compress_verdict moat_compress_decide(const struct moat_compress_conf *cf,
						const struct moat_h1_head *resp, int req_head,
						int coding, struct moat_compress_decision *d)
{
	const struct moat_h1_header *ct;
	const char *const *types = cf->types;
	size_t ntypes = cf->ntypes;
	uint64_t cl = 0;
	int have_cl;

	memset(d, 0, sizeof *d);
	if (types == NULL && ntypes == 0) {
		types = moat_compress_default_types;
		ntypes = moat_compress_default_ntypes;
	}
	have_cl = resp->framing == MOAT_H1_BODY_LENGTH ? (cl = resp->content_length, 1)
		: content_length(resp, &cl) == 0;
	if (resp->status != 200 && resp->status != 203)
		d->verdict = MOAT_COMPRESS_NO_STATUS;
	else if ((!req_head && resp->framing == MOAT_H1_BODY_NONE) || (have_cl && cl == 0))
		d->verdict = MOAT_COMPRESS_NO_BODY;
	else if (find(resp, "content-encoding", 16, &ct) > 0)
		d->verdict = MOAT_COMPRESS_NO_ENCODED;
	else if (no_transform(resp))
		d->verdict = MOAT_COMPRESS_NO_TRANSFORM;
	else if (find(resp, "content-type", 12, &ct) != 1 ||
		 !moat_compress_type_ok(types, ntypes, ct->value, ct->value_len))
		d->verdict = MOAT_COMPRESS_NO_TYPE;
	else if (have_cl && cl < cf->min_size)
		d->verdict = MOAT_COMPRESS_NO_SMALL;
	else {
		/* From here the answer depends on the request's Accept-Encoding. */
		d->vary = 1;
		if (req_head) {
			d->verdict = MOAT_COMPRESS_NO_HEAD;
		} else if (coding <= 0 || !(cf->offered & MOAT_AE_BIT(coding)) ||
			   moat_ae_name(coding) == NULL) {
			d->verdict = MOAT_COMPRESS_NO_ACCEPT;
		} else {
			d->verdict = MOAT_COMPRESS_YES;
			d->coding = coding;
			d->body_len = resp->framing == MOAT_H1_BODY_LENGTH ? resp->content_length : 0;
		}
	}
	return d->verdict;
}

/* entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text */
static int etag_valid(const char *v, size_t n, int *weak)
{
	*weak = n >= 2 && v[0] == 'W' && v[1] == '/';
	if (*weak) {
		v += 2;
		n -= 2;
	}
	if (n < 2 || v[0] != '"' || v[n - 1] != '"')
		return 0;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x21 || c == '"' || c == 0x7f)
			return 0;
	}
	return 1;
}

struct out {
	char *p;
	size_t cap, len;
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

int moat_compress_edits(const struct moat_h1_head *resp, const struct moat_compress_decision *d,
			const char *const **hide, size_t *nhide, char *extra, size_t cap,
			size_t *extra_len)
{
	struct out o = { extra, cap, 0, 0 };
	const struct moat_h1_header *f;
	int yes = d->verdict == MOAT_COMPRESS_YES && moat_ae_name(d->coding) != NULL;
	int rewrite_vary = 0;

	*hide = NULL;
	*nhide = 0;
	*extra_len = 0;
	if (d->vary && !any_lists(resp, "vary", 4, "accept-encoding", 15) &&
	    !any_lists(resp, "vary", 4, "*", 1))
		rewrite_vary = 1;
	if (yes) {
		puts_(&o, "Content-Encoding: ");
		puts_(&o, moat_ae_name(d->coding));
		puts_(&o, "\r\n");
		if (find(resp, "etag", 4, &f) == 1) {
			int weak;

			if (etag_valid(f->value, f->value_len, &weak)) {
				puts_(&o, "ETag: ");
				if (!weak)
					puts_(&o, "W/");
				put(&o, f->value, f->value_len);
				puts_(&o, "\r\n");
			}
		}
	}
	if (rewrite_vary) {
		puts_(&o, "Vary: ");
		for (size_t i = 0; i < resp->nheaders; i++) {
			const struct moat_h1_header *h = &resp->headers[i];

			if (!moat_h1_name_is(h, "vary", 4) || h->value_len == 0)
				continue;
			put(&o, h->value, h->value_len);
			puts_(&o, ", ");
		}
		puts_(&o, "Accept-Encoding\r\n");
	}
	if (o.full)
		return -ENOBUFS;
	*extra_len = o.len;
	/* the old Vary fields go only when there are some to replace */
	if (rewrite_vary && find(resp, "vary", 4, &f) == 0)
		rewrite_vary = 0;
	if (yes) {
		*hide = hide_yes;
		*nhide = rewrite_vary ? MOAT_COMPRESS_HIDE_MAX : MOAT_COMPRESS_HIDE_MAX - 1;
	} else if (rewrite_vary) {
		*hide = hide_vary;
		*nhide = 1;
	}
	return 0;
}

const char *moat_compress_verdict_name(enum moat_compress_verdict v)
{
	static const char *const names[] = {
		"yes", "status", "body", "encoded", "no-transform", "type", "small", "head", "accept",
	};

	return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}
