/*
 * chunked.c - strict incremental decoder of the chunked transfer coding
 * (RFC 9112 §7.1), pure.
 *
 * Sits between the h1 codec's read buffer and whoever consumes the body
 * (the upstream or the client side of a txn). It owns nothing and copies
 * nothing: it walks the bytes it is shown once, keeps its place in a
 * struct moat_chunked, and reports data and trailer lines as spans of the
 * caller's input.
 *
 * Everything outside the grammar is an error, never a guess: a proxy that
 * reads chunk framing differently from the server behind it can be made to
 * forward a hidden request. Notably refused: bare CR or LF, whitespace
 * before the CRLF of a size line, "0x" / sign prefixes, more than 16 size
 * digits, sizes over 2^62, malformed extensions, data not followed by CRLF,
 * obs-fold or malformed trailer fields.
 *
 *   SIZE --hex--> SIZE --SP/HTAB--> SIZE_BWS --";"--> EXT
 *     |               `--";"--> EXT --CR--> SIZE_LF
 *     `--CR--> SIZE_LF --LF--> DATA (size > 0) --> DATA_CR --> DATA_LF --> SIZE
 *                         `--> TRAILER (size 0) --field CRLF--> TRAILER
 *                                               `--CR--> END_LF --LF--> DONE
 */
#include <stddef.h>
#include <stdint.h>

#include "http/chunked.h"

#define SIZE_MAX_VALUE  ((uint64_t)1 << 62)
#define SIZE_DIGITS_MAX 16
#define LINE_MAX_DEFAULT    4096
#define TRAILER_MAX_DEFAULT 16384

enum {
	S_SIZE = 0,   /* chunk-size digits (zeroed struct starts here) */
	S_SIZE_BWS,   /* SP / HTAB after the size: only ";" may follow */
	S_EXT,        /* chunk extensions, sub-state in ext_state */
	S_SIZE_LF,    /* CR ending the size line seen */
	S_DATA,
	S_DATA_CR,
	S_DATA_LF,
	S_TRAILER,    /* at the start of a trailer line (or of the final CRLF) */
	S_END_LF,     /* CR of the final empty line seen */
	S_DONE,
	S_ERROR,
};

/*
 * chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 * ext-val   = token / quoted-string
 */
enum {
	E_NAME0 = 0, /* after ";": BWS, then a name */
	E_NAME,      /* in the name */
	E_NAME_BWS,  /* BWS after the name: "=" or ";" */
	E_VAL0,      /* after "=": BWS, then a token or a quoted string */
	E_TOKEN,     /* in a token value */
	E_QUOTED,    /* in a quoted string */
	E_QPAIR,     /* after a backslash in a quoted string */
	E_VAL_END,   /* right after a closing quote */
	E_VAL_BWS,   /* BWS after a value: only ";" may follow */
};

void moat_chunked_init(struct moat_chunked *d)
{
	d->state = S_SIZE;
	d->remaining = 0;
	d->line_len = 0;
	d->trailer_total = 0;
	d->size_digits = 0;
	d->ext_state = E_NAME0;
	d->max_line = LINE_MAX_DEFAULT;
	d->max_trailer = TRAILER_MAX_DEFAULT;
}

static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
	case '+': case '-': case '.': case '^': case '_': case '`': case '|':
	case '~':
		return 1;
	default:
		return 0;
	}
}

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar / obs-text / SP / HTAB: what a field value, a quoted pair or
 * (less '"' and '\\') qdtext may hold. */
static int is_vchar_ws(unsigned char c)
{
	return is_ws(c) || (c >= 0x21 && c != 0x7f);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int fail(struct moat_chunked *d, int err)
{
	d->state = S_ERROR;
	return err;
}

/*
 * One byte of an extension. Returns 0 to go on, 1 when the CR ending the
 * size line was seen, or MOAT_CHUNKED_EBAD.
 */
static int ext_byte(struct moat_chunked *d, unsigned char c)
{
	switch (d->ext_state) {
	case E_NAME0:
		if (is_ws(c))
			return 0;
		if (!is_tchar(c))
			return MOAT_CHUNKED_EBAD;
		d->ext_state = E_NAME;
		return 0;
	case E_NAME:
		if (is_tchar(c))
			return 0;
		break;
	case E_NAME_BWS:
		if (is_ws(c))
			return 0;
		if (c == '=' || c == ';')
			break;
		return MOAT_CHUNKED_EBAD;
	case E_VAL0:
		if (is_ws(c))
			return 0;
		if (c == '"')
			d->ext_state = E_QUOTED;
		else if (is_tchar(c))
			d->ext_state = E_TOKEN;
		else
			return MOAT_CHUNKED_EBAD;
		return 0;
	case E_TOKEN:
		if (is_tchar(c))
			return 0;
		if (c == '=')
			return MOAT_CHUNKED_EBAD;
		break;
	case E_QUOTED:
		if (c == '"')
			d->ext_state = E_VAL_END;
		else if (c == '\\')
			d->ext_state = E_QPAIR;
		else if (!is_vchar_ws(c))
			return MOAT_CHUNKED_EBAD;
		return 0;
	case E_QPAIR:
		if (!is_vchar_ws(c))
			return MOAT_CHUNKED_EBAD;
		d->ext_state = E_QUOTED;
		return 0;
	case E_VAL_END:
		if (c == '=')
			return MOAT_CHUNKED_EBAD;
		break;
	case E_VAL_BWS:
		if (is_ws(c))
			return 0;
		if (c == ';')
			break;
		return MOAT_CHUNKED_EBAD;
	default:
		return MOAT_CHUNKED_EBAD;
	}

	/* the end of a name or value: what may come next */
	if (c == ';') {
		d->ext_state = E_NAME0;
		return 0;
	}
	if (c == '=' && (d->ext_state == E_NAME || d->ext_state == E_NAME_BWS)) {
		d->ext_state = E_VAL0;
		return 0;
	}
	if (is_ws(c)) {
		/* E_NAME_BWS and E_VAL_BWS consumed their own whitespace */
		d->ext_state = d->ext_state == E_NAME ? E_NAME_BWS : E_VAL_BWS;
		return 0;
	}
	if (c == '\r' && d->ext_state != E_NAME_BWS)
		return 1;
	return MOAT_CHUNKED_EBAD;
}

/*
 * Scans the trailer line starting at in[0] (never the empty line: the
 * caller handles a leading CR). `room` is how many bytes the trailer
 * section may still take. Returns 1 with *n set to the line length with
 * its CRLF when the line is whole, 0 when it is incomplete (and still fits),
 * or an error.
 */
static int trailer_line(const unsigned char *in, size_t len, size_t room, size_t *n)
{
	enum { T_NAME, T_VALUE, T_LF } st = T_NAME;
	size_t k;

	for (k = 0;; k++) {
		unsigned char c;

		/* the byte at k would make the line k + 1 bytes long */
		if (k >= room)
			return MOAT_CHUNKED_ETOOBIG;
		if (k == len)
			return 0;
		c = in[k];
		switch (st) {
		case T_NAME:
			/* no leading SP / HTAB (obs-fold), no empty name */
			if (is_tchar(c))
				continue;
			if (c == ':' && k > 0) {
				st = T_VALUE;
				continue;
			}
			break;
		case T_VALUE:
			if (is_vchar_ws(c))
				continue;
			if (c == '\r') {
				st = T_LF;
				continue;
			}
			break;
		case T_LF:
			if (c == '\n') {
				*n = k + 1;
				return 1;
			}
			break;
		}
		return MOAT_CHUNKED_EBAD;
	}
}

int moat_chunked_decode(struct moat_chunked *d, const char *in, size_t len, size_t *consumed,
			size_t *out_off, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t max_line = d->max_line ? d->max_line : LINE_MAX_DEFAULT;
	size_t max_trailer = d->max_trailer ? d->max_trailer : TRAILER_MAX_DEFAULT;
	size_t i = 0;

	*consumed = 0;
	*out_off = 0;
	*out_len = 0;

	for (;;) {
		unsigned char c;
		int v, r;

		if (d->state == S_DONE)
			return MOAT_CHUNKED_DONE;
		if (d->state == S_ERROR)
			return MOAT_CHUNKED_EBAD;

		if (d->state == S_DATA) {
			uint64_t n = len - i;

			if (n == 0)
				break;
			if (n > d->remaining)
				n = d->remaining;
			*out_off = i;
			*out_len = (size_t)n;
			i += (size_t)n;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = S_DATA_CR;
			*consumed = i;
			return MOAT_CHUNKED_DATA;
		}

		if (d->state == S_TRAILER && i < len && p[i] != '\r') {
			size_t room = d->trailer_total < max_trailer ? max_trailer - d->trailer_total : 0;
			size_t n = 0;

			r = trailer_line(p + i, len - i, room, &n);
			if (r < 0)
				return fail(d, r);
			if (r == 0) {
				/* keep the partial line: it is shown again whole */
				*consumed = i;
				return MOAT_CHUNKED_NEED;
			}
			d->trailer_total += n;
			*out_off = i;
			*out_len = n - 2;
			*consumed = i + n;
			return MOAT_CHUNKED_TRAILER;
		}

		if (i == len)
			break;
		c = p[i++];

		switch (d->state) {
		case S_SIZE:
		case S_SIZE_BWS:
		case S_EXT:
			if (c != '\r' && ++d->line_len > max_line)
				return fail(d, MOAT_CHUNKED_ETOOBIG);
			if (d->state == S_EXT) {
				r = ext_byte(d, c);
				if (r < 0)
					return fail(d, r);
				if (r == 1)
					d->state = S_SIZE_LF;
				break;
			}
			if (d->state == S_SIZE_BWS) {
				if (c == ';') {
					d->state = S_EXT;
					d->ext_state = E_NAME0;
				} else if (!is_ws(c)) {
					return fail(d, MOAT_CHUNKED_EBAD);
				}
				break;
			}
			v = hex_value(c);
			if (v >= 0) {
				if (d->size_digits == SIZE_DIGITS_MAX ||
				    d->remaining > (SIZE_MAX_VALUE - (unsigned)v) / 16)
					return fail(d, MOAT_CHUNKED_EBAD);
				d->remaining = d->remaining * 16 + (unsigned)v;
				d->size_digits++;
				break;
			}
			if (d->size_digits == 0)
				return fail(d, MOAT_CHUNKED_EBAD);
			if (c == '\r') {
				d->state = S_SIZE_LF;
			} else if (c == ';') {
				d->state = S_EXT;
				d->ext_state = E_NAME0;
			} else if (is_ws(c)) {
				d->state = S_SIZE_BWS;
			} else {
				return fail(d, MOAT_CHUNKED_EBAD);
			}
			break;
		case S_SIZE_LF:
			if (c != '\n')
				return fail(d, MOAT_CHUNKED_EBAD);
			d->line_len = 0;
			d->size_digits = 0;
			if (d->remaining == 0) {
				d->state = S_TRAILER;
				d->trailer_total = 0;
			} else {
				d->state = S_DATA;
			}
			break;
		case S_DATA_CR:
			if (c != '\r')
				return fail(d, MOAT_CHUNKED_EBAD);
			d->state = S_DATA_LF;
			break;
		case S_DATA_LF:
			if (c != '\n')
				return fail(d, MOAT_CHUNKED_EBAD);
			d->state = S_SIZE;
			d->remaining = 0;
			d->size_digits = 0;
			d->line_len = 0;
			break;
		case S_TRAILER: /* c is the CR of the final empty line */
			d->state = S_END_LF;
			break;
		case S_END_LF:
			if (c != '\n')
				return fail(d, MOAT_CHUNKED_EBAD);
			d->state = S_DONE;
			*consumed = i;
			return MOAT_CHUNKED_DONE;
		default:
			return fail(d, MOAT_CHUNKED_EBAD);
		}
	}
	*consumed = len;
	return MOAT_CHUNKED_NEED;
}
