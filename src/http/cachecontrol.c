/*
 * cachecontrol.c - Cache-Control, HTTP-date and Age parsing (see
 * cachecontrol.h for the rules chosen where the RFCs leave room).
 *
 * A Cache-Control line is read element by element, left to right:
 *
 *   element   = OWS [ token [ "=" ( token / quoted-string ) ] OWS ]
 *   line      = element *( "," element )
 *
 * Each directive belongs to one of a few kinds, and the kind alone decides
 * what a missing, present or bad argument means (table `directives`).
 */
#include "http/cachecontrol.h"

#include <string.h>

/* How a directive treats its argument. */
enum kind {
	K_FLAG_STRICT, /* no argument; honoured even with one (restrictive) */
	K_FLAG_LAX,    /* no argument; ignored with one (permissive) */
	K_DELTA_ZERO,  /* delta-seconds; missing / bad reads as 0 */
	K_DELTA_SKIP,  /* delta-seconds; missing / bad: directive ignored */
	K_MAX_STALE,   /* optional delta-seconds; missing = any; bad: ignored */
	K_LIST,        /* optional field-name list; missing / bad / empty: unqualified */
};

struct directive {
	const char *name;
	size_t len;
	unsigned bit;
	enum kind kind;
};

#define D(n, b, k) { n, sizeof(n) - 1, b, k }
static const struct directive directives[] = {
	D("max-age", MOAT_CC_MAX_AGE, K_DELTA_ZERO),
	D("s-maxage", MOAT_CC_S_MAXAGE, K_DELTA_ZERO),
	D("max-stale", MOAT_CC_MAX_STALE, K_MAX_STALE),
	D("min-fresh", MOAT_CC_MIN_FRESH, K_DELTA_SKIP),
	D("no-cache", MOAT_CC_NO_CACHE, K_LIST),
	D("no-store", MOAT_CC_NO_STORE, K_FLAG_STRICT),
	D("no-transform", MOAT_CC_NO_TRANSFORM, K_FLAG_STRICT),
	D("only-if-cached", MOAT_CC_ONLY_IF_CACHED, K_FLAG_STRICT),
	D("must-revalidate", MOAT_CC_MUST_REVALIDATE, K_FLAG_STRICT),
	D("proxy-revalidate", MOAT_CC_PROXY_REVALIDATE, K_FLAG_STRICT),
	D("must-understand", MOAT_CC_MUST_UNDERSTAND, K_FLAG_LAX),
	D("private", MOAT_CC_PRIVATE, K_LIST),
	D("public", MOAT_CC_PUBLIC, K_FLAG_LAX),
	D("immutable", MOAT_CC_IMMUTABLE, K_FLAG_LAX),
	D("stale-while-revalidate", MOAT_CC_SWR, K_DELTA_SKIP),
	D("stale-if-error", MOAT_CC_SIE, K_DELTA_SKIP),
};
#undef D

/* What an element said after the directive's name. */
enum arg { ARG_NONE, ARG_OK, ARG_BAD };

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_tchar(char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
static int is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
	       c >= 0x80;
}

/* the byte after "\" in a quoted-pair: HTAB / SP / VCHAR / obs-text */
static int is_qpchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive: s[0..n) equals the lowercase literal lit[0..n). */
static int ieq(const char *s, const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(s[i]) != lit[i])
			return 0;
	return 1;
}

/* delta-seconds = 1*DIGIT, saturating at MOAT_CC_DELTA_MAX. */
static int delta_parse(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		if (v < MOAT_CC_DELTA_MAX)
			v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v > MOAT_CC_DELTA_MAX ? MOAT_CC_DELTA_MAX : (uint32_t)v;
	return 0;
}

/*
 * Scans a quoted-string starting at v[*pos] == '"'. On success returns 0,
 * sets *pos past the closing quote and the content span (escapes kept).
 * When it is not well-formed (a byte that is not qdtext, no closing quote)
 * returns -1 with *pos past the closing quote all the same (or at len), so
 * that what follows is read as it was meant.
 */
static int quoted(const char *v, size_t len, size_t *pos, const char **cs, size_t *cn)
{
	size_t i = *pos + 1;
	int bad = 0;

	*cs = v + i;
	while (i < len) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"') {
			*cn = (size_t)(v + i - *cs);
			*pos = i + 1;
			return bad ? -1 : 0;
		}
		if (c == '\\') {
			if (i + 1 >= len || !is_qpchar((unsigned char)v[i + 1]))
				bad = 1;
			i += 2;
			continue;
		}
		if (!is_qdtext(c))
			bad = 1;
		i++;
	}
	*pos = len;
	return -1;
}

/* Moves *pos to the next ',' not inside a quoted string (or to len). */
static void skip_element(const char *v, size_t len, size_t *pos)
{
	size_t i = *pos;

	while (i < len && v[i] != ',') {
		if (v[i] == '"') {
			/* to the closing quote, honouring escapes, whatever is inside */
			i++;
			while (i < len && v[i] != '"')
				i += v[i] == '\\' ? 2 : 1;
			if (i >= len)
				break;
		}
		i++;
	}
	*pos = i < len ? i : len;
}

static uint32_t *delta_slot(struct moat_cc *cc, unsigned bit)
{
	switch (bit) {
	case MOAT_CC_MAX_AGE: return &cc->max_age;
	case MOAT_CC_S_MAXAGE: return &cc->s_maxage;
	case MOAT_CC_MAX_STALE: return &cc->max_stale;
	case MOAT_CC_MIN_FRESH: return &cc->min_fresh;
	case MOAT_CC_SWR: return &cc->swr;
	default: return &cc->sie;
	}
}

/* Records one occurrence of directive d. */
static void apply(struct moat_cc *cc, const struct directive *d, enum arg arg, const char *a, size_t an)
{
	unsigned bit = d->bit;
	int seen = (cc->flags & bit) != 0;
	uint32_t val = 0;
	int ok;

	switch (d->kind) {
	case K_FLAG_STRICT:
		if (arg != ARG_NONE)
			cc->invalid |= bit;
		break;
	case K_FLAG_LAX:
		if (arg != ARG_NONE) {
			cc->invalid |= bit;
			return;
		}
		break;
	case K_DELTA_ZERO:
		ok = arg == ARG_OK && delta_parse(a, an, &val) == 0;
		if (!ok) {
			cc->invalid |= bit;
			val = 0;
		}
		if (!seen)
			*delta_slot(cc, bit) = val;
		break;
	case K_DELTA_SKIP:
		if (arg != ARG_OK || delta_parse(a, an, &val) != 0) {
			cc->invalid |= bit;
			return;
		}
		if (!seen)
			*delta_slot(cc, bit) = val;
		break;
	case K_MAX_STALE:
		if (arg == ARG_BAD || (arg == ARG_OK && delta_parse(a, an, &val) != 0)) {
			cc->invalid |= bit;
			return;
		}
		if (!seen) {
			cc->max_stale_any = arg == ARG_NONE;
			cc->max_stale = arg == ARG_NONE ? MOAT_CC_DELTA_MAX : val;
		}
		break;
	case K_LIST: {
		const char **fs = bit == MOAT_CC_NO_CACHE ? &cc->no_cache_fields : &cc->private_fields;
		size_t *fn = bit == MOAT_CC_NO_CACHE ? &cc->no_cache_fields_len : &cc->private_fields_len;
		int qualified = arg == ARG_OK && an > 0;

		if (arg == ARG_BAD || (arg == ARG_OK && an == 0))
			cc->invalid |= bit;
		if (!qualified) {
			*fs = NULL; /* unqualified wins over any qualified occurrence */
			*fn = 0;
		} else if (!seen) {
			*fs = a;
			*fn = an;
		}
		break;
	}
	}
	if (seen)
		cc->dup |= bit;
	cc->flags |= bit;
}

static const struct directive *lookup(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof directives / sizeof directives[0]; i++)
		if (directives[i].len == n && ieq(name, directives[i].name, n))
			return &directives[i];
	return NULL;
}

void moat_cc_init(struct moat_cc *cc)
{
	memset(cc, 0, sizeof *cc);
}

int moat_cc_parse(const char *v, size_t len, struct moat_cc *cc)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < len) {
		const struct directive *d;
		const char *name, *a = NULL;
		size_t nlen, an = 0;
		enum arg arg = ARG_NONE;

		while (pos < len && is_ows(v[pos]))
			pos++;
		if (pos >= len)
			break;
		if (v[pos] == ',') { /* empty element */
			pos++;
			continue;
		}
		name = v + pos;
		while (pos < len && is_tchar(v[pos]))
			pos++;
		nlen = (size_t)(v + pos - name);
		if (nlen == 0) { /* no name: nothing to apply */
			rc = MOAT_CC_EBAD;
			skip_element(v, len, &pos);
			continue;
		}
		d = lookup(name, nlen);
		if (pos < len && v[pos] == '=') {
			pos++;
			if (pos < len && v[pos] == '"') {
				arg = quoted(v, len, &pos, &a, &an) == 0 ? ARG_OK : ARG_BAD;
			} else {
				a = v + pos;
				while (pos < len && is_tchar(v[pos]))
					pos++;
				an = (size_t)(v + pos - a);
				arg = an > 0 ? ARG_OK : ARG_BAD;
			}
		}
		while (pos < len && is_ows(v[pos]))
			pos++;
		if (arg == ARG_BAD || (pos < len && v[pos] != ',')) {
			rc = MOAT_CC_EBAD;
			if (d != NULL)
				apply(cc, d, ARG_BAD, NULL, 0);
			skip_element(v, len, &pos);
			continue;
		}
		if (d != NULL)
			apply(cc, d, arg, a, an);
	}
	return rc;
}

/* ---- HTTP-date ---------------------------------------------------------- */

static const char *const day_short[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
static const char *const day_long[7] = { "sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
					 "saturday" };
static const char *const month_name[12] = { "jan", "feb", "mar", "apr", "may", "jun",
					    "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const day_out[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const month_out[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

/* n digits at s, or -1. */
static int num(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Month name at s (3 letters): 1..12, or -1. */
static int month_at(const char *s)
{
	int i;

	for (i = 0; i < 12; i++)
		if (ieq(s, month_name[i], 3))
			return i + 1;
	return -1;
}

/* "HH:MM:SS" at s: seconds of the day (up to 86400 with a leap second), or -1. */
static int64_t time_at(const char *s)
{
	int h = num(s, 2), mi = num(s + 3, 2), se = num(s + 6, 2);

	if (h < 0 || mi < 0 || se < 0 || s[2] != ':' || s[5] != ':' || h > 23 || mi > 59 || se > 60)
		return -1;
	return (int64_t)h * 3600 + mi * 60 + se;
}

static int day_name_ok(const char *s, size_t n)
{
	int i;

	for (i = 0; i < 7; i++) {
		if (n == 3 && ieq(s, day_short[i], 3))
			return 1;
		if (n > 3 && n == strlen(day_long[i]) && ieq(s, day_long[i], n))
			return 1;
	}
	return 0;
}

int moat_http_date_parse(const char *s, size_t len, int64_t *unix_s)
{
	size_t n = 0;
	int64_t year, secs;
	int mon, day;
	const char *p;

	while (len > 0 && is_ows(s[0])) {
		s++;
		len--;
	}
	while (len > 0 && is_ows(s[len - 1]))
		len--;
	while (n < len && is_alpha(s[n]))
		n++;
	if (n == len || !day_name_ok(s, n))
		return -1;
	p = s + n;
	if (n == 3 && s[3] == ',') {
		/* IMF-fixdate: ", DD Mon YYYY HH:MM:SS GMT" */
		if (len != 29 || p[1] != ' ' || p[4] != ' ' || p[8] != ' ' || p[13] != ' ' || p[22] != ' ')
			return -1;
		day = num(p + 2, 2);
		mon = month_at(p + 5);
		year = num(p + 9, 4);
		secs = time_at(p + 14);
		if (!ieq(p + 23, "gmt", 3))
			return -1;
	} else if (n > 3 && s[n] == ',') {
		/* rfc850-date: ", DD-Mon-YY HH:MM:SS GMT" */
		if (len != n + 24 || p[1] != ' ' || p[4] != '-' || p[8] != '-' || p[11] != ' ' || p[20] != ' ')
			return -1;
		day = num(p + 2, 2);
		mon = month_at(p + 5);
		year = num(p + 9, 2);
		if (year >= 0)
			year += year >= 70 ? 1900 : 2000;
		secs = time_at(p + 12);
		if (!ieq(p + 21, "gmt", 3))
			return -1;
	} else if (n == 3 && s[3] == ' ') {
		/* asctime-date: " Mon DD HH:MM:SS YYYY", DD = 2DIGIT / SP DIGIT */
		if (len != 24 || p[4] != ' ' || p[7] != ' ' || p[16] != ' ')
			return -1;
		mon = month_at(p + 1);
		day = p[5] == ' ' ? num(p + 6, 1) : num(p + 5, 2);
		secs = time_at(p + 8);
		year = num(p + 17, 4);
	} else {
		return -1;
	}
	if (day < 1 || mon < 1 || year < 0 || secs < 0 || day > days_in_month(year, mon))
		return -1;
	*unix_s = days_from_civil(year, mon, day) * 86400 + secs;
	return 0;
}

static void put2(char *o, int v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

size_t moat_http_date_format(int64_t t, char out[30])
{
	int64_t days, rem, y;
	int m, d, wd;

	/* years 0..9999: -62167219200 (0000-01-01) .. 253402300799 (9999-12-31 23:59:59) */
	if (t < -62167219200LL || t > 253402300799LL) {
		out[0] = '\0';
		return 0;
	}
	days = t / 86400;
	rem = t % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	wd = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	memcpy(out, day_out[wd], 3);
	memcpy(out + 3, ", ", 2);
	put2(out + 5, d);
	out[7] = ' ';
	memcpy(out + 8, month_out[m - 1], 3);
	out[11] = ' ';
	put2(out + 12, (int)(y / 100));
	put2(out + 14, (int)(y % 100));
	out[16] = ' ';
	put2(out + 17, (int)(rem / 3600));
	out[19] = ':';
	put2(out + 20, (int)(rem / 60 % 60));
	out[22] = ':';
	put2(out + 23, (int)(rem % 60));
	memcpy(out + 25, " GMT", 5); /* with the NUL */
	return 29;
}

int moat_http_age_parse(const char *v, size_t len, uint32_t *secs)
{
	size_t i = 0, start, end;

	for (;;) {
		while (i < len && is_ows(v[i]))
			i++;
		if (i < len && v[i] == ',') { /* empty list element */
			i++;
			continue;
		}
		break;
	}
	start = i;
	while (i < len && v[i] != ',')
		i++;
	end = i;
	while (end > start && is_ows(v[end - 1]))
		end--;
	return delta_parse(v + start, end - start, secs);
}
