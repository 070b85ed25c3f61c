/*
 * accept_encoding.c - Accept-Encoding parsing and coding choice (see
 * accept_encoding.h). Pure: reads the caller's bytes, writes the caller's
 * struct.
 */
#include <string.h>

#include "http/accept_encoding.h"

static const char *const names[MOAT_AE_NCODINGS] = { "identity", "gzip", "br", "zstd" };

/* Ranking of equal q: br, zstd, gzip. */
static const enum moat_ae_coding pref[] = { MOAT_AE_BR, MOAT_AE_ZSTD, MOAT_AE_GZIP };
#define NPREF (sizeof pref / sizeof pref[0])

/* tchar of RFC 9110 §5.6.2 */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int token_is(const char *s, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
 * thousandths, or -1. */
static int parse_q(const char *s, size_t n)
{
	int q, scale = 100;
	size_t i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = s[0] == '1' ? 1000 : 0;
	if (n == 1)
		return q;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (q == 1000 && s[i] != '0')
			return -1;
		if (q < 1000)
			q += (s[i] - '0') * scale;
		scale /= 10;
	}
	return q;
}

/* The end of a quoted string starting at s[i] == '"', past its closing
 * quote, or 0 when it does not close before n. */
static size_t skip_quoted(const char *s, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\') {
			if (++i >= n)
				return 0;
		} else if (s[i] == '"') {
			return i + 1;
		}
	}
	return 0;
}

/*
 * Reads one element e[0..n) (no top-level comma inside). Returns the
 * coding index, MOAT_AE_NCODINGS for "*", or -1 to ignore it (unknown
 * coding or malformed); sets *q.
 */
static int parse_element(const char *e, size_t n, int *q)
{
	size_t i = 0, name_start, name_end;
	int c = -1, have_q = 0;

	*q = 1000;
	while (i < n && is_tchar((unsigned char)e[i]))
		i++;
	if (i == 0)
		return -1;
	if (i == 1 && e[0] == '*')
		c = MOAT_AE_NCODINGS;
	else if (token_is(e, i, "x-gzip"))
		c = MOAT_AE_GZIP;
	else
		for (int k = 0; k < MOAT_AE_NCODINGS; k++)
			if (token_is(e, i, names[k]))
				c = k;
	for (;;) {
		while (i < n && is_ows((unsigned char)e[i]))
			i++;
		if (i == n)
			break;
		if (e[i] != ';')
			return -1;
		i++;
		while (i < n && is_ows((unsigned char)e[i]))
			i++;
		if (i == n || e[i] == ';')
			continue; /* empty parameter */
		name_start = i;
		while (i < n && is_tchar((unsigned char)e[i]))
			i++;
		name_end = i;
		if (name_end == name_start)
			return -1;
		while (i < n && is_ows((unsigned char)e[i]))
			i++;
		if (i == n || e[i] != '=')
			return -1;
		i++;
		while (i < n && is_ows((unsigned char)e[i]))
			i++;
		if (i < n && e[i] == '"') {
			size_t end = skip_quoted(e, i, n);

			if (end == 0)
				return -1;
			if (token_is(e + name_start, name_end - name_start, "q"))
				return -1; /* a qvalue is never quoted */
			i = end;
		} else {
			size_t vs = i;

			while (i < n && is_tchar((unsigned char)e[i]))
				i++;
			if (i == vs)
				return -1;
			if (token_is(e + name_start, name_end - name_start, "q")) {
				if (have_q)
					return -1;
				have_q = 1;
				*q = parse_q(e + vs, i - vs);
				if (*q < 0)
					return -1;
			}
		}
	}
	return c;
}

void moat_ae_init(struct moat_ae *ae)
{
	for (int i = 0; i < MOAT_AE_NCODINGS; i++)
		ae->q[i] = -1;
	ae->star = -1;
	ae->present = 0;
}

static void keep_lowest(short *slot, int q)
{
	if (*slot < 0 || q < *slot)
		*slot = (short)q;
}

void moat_ae_parse(struct moat_ae *ae, const char *v, size_t len)
{
	size_t i = 0;

	ae->present = 1;
	while (i < len) {
		size_t start, end;
		int c, q;

		/* one element: up to a comma outside quoted strings */
		start = i;
		while (i < len && v[i] != ',') {
			if (v[i] == '"') {
				size_t e = skip_quoted(v, i, len);

				/* unterminated: the quote is garbage in this element only */
				i = e ? e : i + 1;
			} else {
				i++;
			}
		}
		end = i;
		if (i < len)
			i++; /* the comma */
		while (start < end && is_ows((unsigned char)v[start]))
			start++;
		while (end > start && is_ows((unsigned char)v[end - 1]))
			end--;
		if (start == end)
			continue; /* empty element: allowed by the list rule */
		c = parse_element(v + start, end - start, &q);
		if (c == MOAT_AE_NCODINGS)
			keep_lowest(&ae->star, q);
		else if (c >= 0)
			keep_lowest(&ae->q[c], q);
	}
}

void moat_ae_from_head(struct moat_ae *ae, const struct moat_h1_head *h)
{
	moat_ae_init(ae);
	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], "accept-encoding", 15))
			moat_ae_parse(ae, h->headers[i].value, h->headers[i].value_len);
}

int moat_ae_q(const struct moat_ae *ae, enum moat_ae_coding c)
{
	if ((unsigned)c >= MOAT_AE_NCODINGS)
		return 0;
	if (!ae->present)
		return c == MOAT_AE_IDENTITY ? 1000 : 0;
	if (ae->q[c] >= 0)
		return ae->q[c];
	if (ae->star >= 0)
		return ae->star;
	return c == MOAT_AE_IDENTITY ? 1000 : 0;
}

/*
 * Ranks the acceptable offered codings that beat identity, best first,
 * into out[] (at most NPREF); returns how many.
 */
static size_t rank(const struct moat_ae *ae, unsigned offered, enum moat_ae_coding *out)
{
	int q[NPREF] = { 0 };
	size_t n = 0;
	int id_explicit = ae->present ? ae->q[MOAT_AE_IDENTITY] : -1;

	for (size_t i = 0; i < NPREF; i++) {
		int cq = (offered & MOAT_AE_BIT(pref[i])) ? moat_ae_q(ae, pref[i]) : 0;
		size_t j;

		if (cq <= 0 || cq < id_explicit)
			continue;
		/* insertion by q, stable on pref order */
		for (j = n; j > 0 && q[j - 1] < cq; j--) {
			q[j] = q[j - 1];
			out[j] = out[j - 1];
		}
		q[j] = cq;
		out[j] = pref[i];
		n++;
	}
	return n;
}

int moat_ae_choose(const struct moat_ae *ae, unsigned offered)
{
	enum moat_ae_coding r[NPREF];

	if (rank(ae, offered, r) > 0)
		return r[0];
	return moat_ae_q(ae, MOAT_AE_IDENTITY) > 0 ? MOAT_AE_IDENTITY : MOAT_AE_NOT_ACCEPTABLE;
}

size_t moat_ae_normalise(const struct moat_ae *ae, unsigned offered, char *out, size_t cap)
{
	enum moat_ae_coding r[NPREF];
	char tmp[MOAT_AE_NORM_MAX];
	size_t n = rank(ae, offered, r), len = 0;

	if (n == 0) {
		memcpy(tmp, "identity", 8);
		len = 8;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[r[i]]);

		if (i > 0)
			tmp[len++] = ',';
		memcpy(tmp + len, names[r[i]], l);
		len += l;
	}
	tmp[len] = '\0';
	if (cap > 0) {
		size_t c = len < cap ? len : cap - 1;

		memcpy(out, tmp, c);
		out[c] = '\0';
	}
	return len;
}

const char *moat_ae_name(int c)
{
	return c >= 0 && c < MOAT_AE_NCODINGS ? names[c] : NULL;
}
