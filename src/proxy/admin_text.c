/*
 * admin_text.c - what the admin answers are written with: a growable text
 * with a maximum, a JSON writer with proper string escaping, and small
 * pure formatters (decimal seconds, ISO 8601, percent-decoding, Prometheus
 * label values). See admin_int.h. No I/O; the text owns its memory.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/admin_int.h"

/* ---- text ------------------------------------------------------------------------ */

void moat_text_init(struct moat_text *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

void moat_text_free(struct moat_text *t)
{
	free(t->p);
	t->p = NULL;
	t->len = t->cap = 0;
	t->full = 0;
}

void moat_text_reset(struct moat_text *t)
{
	t->len = 0;
	t->full = 0;
	if (t->p)
		t->p[0] = '\0';
}

/* Room for n more bytes and the NUL; 0 or -1 (full). */
static int reserve(struct moat_text *t, size_t n)
{
	size_t want, cap;
	char *np;

	if (t->full)
		return -1;
	if (n > t->max || t->len > t->max - n) {
		t->full = 1;
		return -1;
	}
	want = t->len + n + 1;
	if (want <= t->cap)
		return 0;
	cap = t->cap ? t->cap : 1024;
	while (cap < want)
		cap *= 2;
	np = realloc(t->p, cap);
	if (!np) {
		t->full = 1;
		return -1;
	}
	t->p = np;
	t->cap = cap;
	return 0;
}

void moat_text_add(struct moat_text *t, const void *p, size_t n)
{
	if (reserve(t, n) < 0)
		return;
	if (n)
		memcpy(t->p + t->len, p, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void moat_text_str(struct moat_text *t, const char *s)
{
	moat_text_add(t, s, strlen(s));
}

void moat_text_printf(struct moat_text *t, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->full = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		moat_text_add(t, small, (size_t)n);
		return;
	}
	if (reserve(t, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* ---- JSON ------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return len;
}

void moat_json_escape(struct moat_text *t, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	moat_text_add(t, "\"", 1);
	while (i < n) {
		unsigned char c = p[i];
		size_t u = c >= 0x80 ? utf8_len(p + i, n - i) : 1;
		char esc[8];
		size_t elen = 0;

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && u > 0) {
			i += u;
			run += u;
			continue;
		}
		moat_text_add(t, p + i - run, run);
		run = 0;
		if (u == 0) {
			moat_text_add(t, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
			continue;
		}
		esc[elen++] = '\\';
		switch (c) {
		case '"': esc[elen++] = '"'; break;
		case '\\': esc[elen++] = '\\'; break;
		case '\n': esc[elen++] = 'n'; break;
		case '\r': esc[elen++] = 'r'; break;
		case '\t': esc[elen++] = 't'; break;
		case '\b': esc[elen++] = 'b'; break;
		case '\f': esc[elen++] = 'f'; break;
		default:
			esc[elen++] = 'u';
			esc[elen++] = '0';
			esc[elen++] = '0';
			esc[elen++] = hex[c >> 4];
			esc[elen++] = hex[c & 15];
			break;
		}
		moat_text_add(t, esc, elen);
		i++;
	}
	moat_text_add(t, p + i - run, run);
	moat_text_add(t, "\"", 1);
}

void moat_json_init(struct moat_json *j, struct moat_text *t)
{
	memset(j, 0, sizeof(*j));
	j->t = t;
	j->first[0] = 1;
}

/* Before any value or key: the comma that separates it from the last one. */
static void sep(struct moat_json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (!j->first[j->depth])
		moat_text_add(j->t, ",", 1);
	j->first[j->depth] = 0;
}

static void open_(struct moat_json *j, char c)
{
	sep(j);
	if (j->depth >= MOAT_JSON_DEPTH) {
		j->t->full = 1;
		return;
	}
	moat_text_add(j->t, &c, 1);
	j->depth++;
	j->first[j->depth] = 1;
}

static void close_(struct moat_json *j, char c)
{
	if (j->depth == 0) {
		j->t->full = 1;
		return;
	}
	moat_text_add(j->t, &c, 1);
	j->depth--;
}

void moat_json_obj(struct moat_json *j)
{
	open_(j, '{');
}

void moat_json_obj_end(struct moat_json *j)
{
	close_(j, '}');
}

void moat_json_arr(struct moat_json *j)
{
	open_(j, '[');
}

void moat_json_arr_end(struct moat_json *j)
{
	close_(j, ']');
}

void moat_json_key(struct moat_json *j, const char *k)
{
	sep(j);
	moat_json_escape(j->t, k, strlen(k));
	moat_text_add(j->t, ":", 1);
	j->after_key = 1;
}

void moat_json_strn(struct moat_json *j, const char *s, size_t n)
{
	sep(j);
	moat_json_escape(j->t, s, n);
}

void moat_json_str(struct moat_json *j, const char *s)
{
	if (!s) {
		moat_json_null(j);
		return;
	}
	moat_json_strn(j, s, strlen(s));
}

void moat_json_u64(struct moat_json *j, uint64_t v)
{
	sep(j);
	moat_text_printf(j->t, "%" PRIu64, v);
}

void moat_json_i64(struct moat_json *j, int64_t v)
{
	sep(j);
	moat_text_printf(j->t, "%" PRId64, v);
}

void moat_json_bool(struct moat_json *j, int v)
{
	sep(j);
	moat_text_str(j->t, v ? "true" : "false");
}

void moat_json_null(struct moat_json *j)
{
	sep(j);
	moat_text_str(j->t, "null");
}

void moat_json_milli(struct moat_json *j, uint64_t thousandths)
{
	sep(j);
	moat_text_printf(j->t, "%" PRIu64 ".%03u", thousandths / 1000u, (unsigned)(thousandths % 1000u));
}

/* ---- formatters -------------------------------------------------------------------- */

void moat_admin_seconds(uint64_t us, char *out, size_t outlen)
{
	uint64_t whole = us / 1000000u;
	unsigned frac = (unsigned)(us % 1000000u);
	char f[8];
	int n;

	if (frac == 0) {
		snprintf(out, outlen, "%" PRIu64, whole);
		return;
	}
	snprintf(f, sizeof(f), "%06u", frac);
	n = 6;
	while (n > 0 && f[n - 1] == '0')
		n--;
	f[n] = '\0';
	snprintf(out, outlen, "%" PRIu64 ".%s", whole, f);
}

void moat_admin_iso8601(int64_t unix_s, char *out, size_t outlen)
{
	time_t tt = (time_t)unix_s;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "1970-01-01T00:00:00Z");
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long moat_admin_unescape(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			if (c == '\0' || c == '/')
				return -1;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

void moat_prom_escape(struct moat_text *t, const char *v)
{
	size_t run = 0;

	for (; *v; v++) {
		const char *e = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;

		if (!e) {
			run++;
			continue;
		}
		moat_text_add(t, v - run, run);
		run = 0;
		moat_text_add(t, e, 2);
	}
	moat_text_add(t, v - run, run);
}
