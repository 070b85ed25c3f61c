/*
 * clienthello.c - TLS ClientHello parser (see clienthello.h).
 *
 * The handshake message may be cut into several records, so the parser
 * reads it through a cursor (struct rd) that walks the record fragments
 * as one stream (values are read a byte at a time, skipped a fragment at
 * a time), checking each record header when it reaches one. Offsets
 * into the message ("off", counted from its 4-byte handshake header) are
 * what the vector lengths are checked against; offsets into buf ("pos")
 * only matter to the cursor.
 *
 *   buf:  [hdr|frag........][hdr|frag...][hdr|frag..]
 *   msg:       [type|len24|legacy_version|random|sid|ciphers|comp|exts]
 *
 * Everything is checked in the order of the bytes, and the cursor answers
 * MOAT_AGAIN at the first byte it does not have (ETOOBIG at the first one
 * past MOAT_TLS_CH_MAX), so a prefix of an input gets either MOAT_AGAIN or
 * the answer of the whole.
 */
#include "tls/clienthello.h"

#include <string.h>

#define REC_HANDSHAKE  22
#define REC_FRAG_MAX   16384u /* 2^14, RFC 8446 §5.1 */
#define REC_HDR        5u
#define HS_CLIENT_HELLO 1
#define HS_HDR         4u

#define EXT_SERVER_NAME        0
#define EXT_SUPPORTED_GROUPS   10
#define EXT_EC_POINT_FORMATS   11
#define EXT_SIGNATURE_ALGS     13
#define EXT_ALPN               16
#define EXT_PRE_SHARED_KEY     41
#define EXT_SUPPORTED_VERSIONS 43

#define SNI_HOST_NAME 0
#define SNI_MAX       253u /* a DNS name in text, without the trailing dot */

/* The record stream. */
struct rd {
	const uint8_t *buf;
	size_t len;     /* bytes in buf, at most MOAT_TLS_CH_MAX of them read */
	size_t pos;     /* next byte of buf */
	size_t rec_end; /* end of the current record's fragment in buf (may be past len) */
	size_t off;     /* bytes of the handshake message read */
};

int moat_tls_ch_is_grease(uint16_t v)
{
	return (v & 0x0f0fu) == 0x0a0au && (v >> 8) == (v & 0xffu);
}

/* The byte at buf[pos], if it may be read: MOAT_AGAIN when not there yet,
 * ETOOBIG when past the limit. */
static int rd_byte(const struct rd *r, size_t pos, unsigned *v)
{
	if (pos >= MOAT_TLS_CH_MAX)
		return MOAT_TLS_CH_ETOOBIG;
	if (pos >= r->len)
		return MOAT_AGAIN;
	*v = r->buf[pos];
	return 0;
}

/* Reads the header of the record that follows the current one (not the
 * first: see parse()), which must carry more of the handshake message. */
static int rd_next_record(struct rd *r)
{
	unsigned b[REC_HDR], n;
	size_t i;
	int e;

	for (i = 0; i < REC_HDR; i++) {
		if ((e = rd_byte(r, r->pos + i, &b[i])) != 0)
			return e;
		/* RFC 8446 §5.1: no other record type inside a handshake message */
		if ((i == 0 && b[0] != REC_HANDSHAKE) || (i == 1 && b[1] != 3))
			return MOAT_TLS_CH_EBAD;
	}
	n = b[3] << 8 | b[4];
	if (n == 0 || n > REC_FRAG_MAX) /* no empty handshake fragments (§5.1) */
		return MOAT_TLS_CH_EBAD;
	r->pos += REC_HDR;
	r->rec_end = r->pos + n;
	return 0;
}

static int rd_u8(struct rd *r, unsigned *v)
{
	int e;

	if (r->pos == r->rec_end && (e = rd_next_record(r)) != 0)
		return e;
	if ((e = rd_byte(r, r->pos, v)) != 0)
		return e;
	r->pos++;
	r->off++;
	return 0;
}

static int rd_u16(struct rd *r, unsigned *v)
{
	unsigned hi, lo;
	int e;

	if ((e = rd_u8(r, &hi)) != 0 || (e = rd_u8(r, &lo)) != 0)
		return e;
	*v = hi << 8 | lo;
	return 0;
}

/* Skips n bytes of the message, a fragment at a time. */
static int rd_skip(struct rd *r, size_t n)
{
	while (n > 0) {
		size_t avail, lim;
		int e;

		if (r->pos == r->rec_end && (e = rd_next_record(r)) != 0)
			return e;
		lim = r->rec_end;
		if (lim > r->len)
			lim = r->len;
		if (lim > MOAT_TLS_CH_MAX)
			lim = MOAT_TLS_CH_MAX;
		if (r->pos >= lim)
			return r->pos >= MOAT_TLS_CH_MAX ? MOAT_TLS_CH_ETOOBIG : MOAT_AGAIN;
		avail = lim - r->pos;
		if (avail > n)
			avail = n;
		r->pos += avail;
		r->off += avail;
		n -= avail;
	}
	return 0;
}

/* Reads a vector length of `width` bytes and checks that the vector fits
 * in its container (which ends at message offset `end`): its end, or an
 * error. */
static int rd_vec(struct rd *r, unsigned width, size_t end, size_t *vend)
{
	unsigned n;
	int e;

	if (r->off + width > end)
		return MOAT_TLS_CH_EBAD;
	e = width == 1 ? rd_u8(r, &n) : rd_u16(r, &n);
	if (e != 0)
		return e;
	if (n > end - r->off)
		return MOAT_TLS_CH_EBAD;
	*vend = r->off + n;
	return 0;
}

/*
 * Reads a vector of 16-bit values <min..> that ends at `end` into
 * list[0..cap), setting `bit` in out->truncated / out->grease as needed.
 */
static int rd_list16(struct rd *r, size_t end, size_t min, uint16_t *list, unsigned cap, unsigned *n,
		     unsigned bit, struct moat_tls_ch *out)
{
	if (end - r->off < min || (end - r->off) % 2 != 0)
		return MOAT_TLS_CH_EBAD;
	while (r->off < end) {
		unsigned v;
		int e;

		if ((e = rd_u16(r, &v)) != 0)
			return e;
		if (moat_tls_ch_is_grease((uint16_t)v))
			out->grease |= bit;
		if (*n < cap)
			list[(*n)++] = (uint16_t)v;
		else
			out->truncated |= bit;
	}
	return 0;
}

/* ---- extensions ------------------------------------------------------- */

static int is_ldh(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Nonzero when s[0..n) is a host name as clienthello.h describes it. */
static int host_name_ok(const char *s, size_t n)
{
	size_t i, label = 0;
	int digits = 1;

	if (n == 0 || n > SNI_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			digits = 1;
			continue;
		}
		if (!is_ldh(c) || ++label > 63)
			return 0;
		if (c < '0' || c > '9')
			digits = 0;
	}
	return label > 0 && !digits;
}

/*
 * server_name (RFC 6066 §3): ServerName server_name_list<1..2^16-1>, each
 * a NameType byte and, for host_name, HostName opaque<1..2^16-1>. Other
 * name types (none defined) are read with the same length prefix, which
 * is what every implementation assumes, and skipped. At most one
 * host_name (§3: one name per type).
 */
static int ext_server_name(struct rd *r, size_t end, struct moat_tls_ch *out)
{
	size_t lend;
	int e, seen = 0, ok = 0;

	if ((e = rd_vec(r, 2, end, &lend)) != 0)
		return e;
	if (lend == r->off)
		return MOAT_TLS_CH_EBAD;
	while (r->off < lend) {
		unsigned type;
		size_t nend, n, i;

		if ((e = rd_u8(r, &type)) != 0)
			return e;
		if ((e = rd_vec(r, 2, lend, &nend)) != 0)
			return e;
		n = nend - r->off;
		if (n == 0)
			return MOAT_TLS_CH_EBAD;
		if (type != SNI_HOST_NAME) {
			if ((e = rd_skip(r, n)) != 0)
				return e;
			continue;
		}
		if (seen)
			return MOAT_TLS_CH_EBAD;
		seen = 1;
		for (i = 0; i < n; i++) {
			unsigned c;

			if ((e = rd_u8(r, &c)) != 0)
				return e;
			if (i < sizeof out->sni - 1)
				out->sni[i] = (char)c;
		}
		ok = host_name_ok(out->sni, n); /* (refuses n > SNI_MAX before reading) */
		out->sni_len = ok ? (unsigned)n : 0;
	}
	if (!ok) {
		out->flags |= MOAT_TLS_CH_F_SNI_INVALID;
		out->sni_len = 0;
	}
	out->sni[out->sni_len] = '\0';
	return r->off == end ? 0 : MOAT_TLS_CH_EBAD;
}

/* ALPN (RFC 7301 §3.1): ProtocolName protocol_name_list<2..2^16-1>, each
 * opaque<1..2^8-1>; empty names are refused. */
static int ext_alpn(struct rd *r, size_t end, struct moat_tls_ch *out)
{
	size_t lend;
	int e;

	if ((e = rd_vec(r, 2, end, &lend)) != 0)
		return e;
	if (lend - r->off < 2)
		return MOAT_TLS_CH_EBAD;
	while (r->off < lend) {
		size_t nend, n, i;
		unsigned k = out->nalpn, c = 0, first = 0;

		if ((e = rd_vec(r, 1, lend, &nend)) != 0)
			return e;
		n = nend - r->off;
		if (n == 0)
			return MOAT_TLS_CH_EBAD;
		for (i = 0; i < n; i++) {
			if ((e = rd_u8(r, &c)) != 0)
				return e;
			if (i == 0)
				first = c;
			if (k < MOAT_TLS_CH_ALPN_MAX && i < MOAT_TLS_CH_ALPN_NAME_MAX)
				out->alpn[k][i] = (char)c;
		}
		if (n == 2 && moat_tls_ch_is_grease((uint16_t)(first << 8 | c)))
			out->grease |= MOAT_TLS_CH_L_ALPN;
		if (k >= MOAT_TLS_CH_ALPN_MAX) {
			out->truncated |= MOAT_TLS_CH_L_ALPN;
			continue;
		}
		out->alpn_len[k] = (uint8_t)n;
		out->alpn_last[k] = (uint8_t)c;
		if (n > MOAT_TLS_CH_ALPN_NAME_MAX) {
			out->truncated |= MOAT_TLS_CH_L_ALPN_NAME;
			n = MOAT_TLS_CH_ALPN_NAME_MAX;
		}
		out->alpn[k][n] = '\0';
		out->nalpn++;
	}
	return r->off == end ? 0 : MOAT_TLS_CH_EBAD;
}

static int ext_body(struct rd *r, unsigned type, size_t end, struct moat_tls_ch *out)
{
	size_t vend;
	int e;

	switch (type) {
	case EXT_SERVER_NAME:
		out->flags |= MOAT_TLS_CH_F_SNI;
		return ext_server_name(r, end, out);
	case EXT_ALPN:
		out->flags |= MOAT_TLS_CH_F_ALPN;
		return ext_alpn(r, end, out);
	case EXT_SUPPORTED_VERSIONS: /* ProtocolVersion versions<2..254> (RFC 8446 §4.2.1) */
		out->flags |= MOAT_TLS_CH_F_VERSIONS;
		if ((e = rd_vec(r, 1, end, &vend)) != 0)
			return e;
		if (vend != end)
			return MOAT_TLS_CH_EBAD;
		return rd_list16(r, end, 2, out->versions, 16, &out->nversions, MOAT_TLS_CH_L_VERSIONS, out);
	case EXT_SUPPORTED_GROUPS: /* NamedGroup named_group_list<2..2^16-1> (§4.2.7) */
		if ((e = rd_vec(r, 2, end, &vend)) != 0)
			return e;
		if (vend != end)
			return MOAT_TLS_CH_EBAD;
		return rd_list16(r, end, 2, out->groups, 32, &out->ngroups, MOAT_TLS_CH_L_GROUPS, out);
	case EXT_SIGNATURE_ALGS: /* SignatureScheme supported_signature_algorithms<2..2^16-2> (§4.2.3) */
		if ((e = rd_vec(r, 2, end, &vend)) != 0)
			return e;
		if (vend != end)
			return MOAT_TLS_CH_EBAD;
		return rd_list16(r, end, 2, out->sigalgs, 64, &out->nsigalgs, MOAT_TLS_CH_L_SIGALGS, out);
	case EXT_EC_POINT_FORMATS: /* ECPointFormat ec_point_format_list<1..2^8-1> (RFC 8422 §5.1.2) */
		if ((e = rd_vec(r, 1, end, &vend)) != 0)
			return e;
		if (vend != end || vend == r->off)
			return MOAT_TLS_CH_EBAD;
		while (r->off < end) {
			unsigned v;

			if ((e = rd_u8(r, &v)) != 0)
				return e;
			if (out->necpf < sizeof out->ec_point_formats)
				out->ec_point_formats[out->necpf++] = (uint8_t)v;
			else
				out->truncated |= MOAT_TLS_CH_L_ECPF;
		}
		return 0;
	default:
		return rd_skip(r, end - r->off);
	}
}

/* Extension extensions<0..2^16-1>, ending exactly at the message's end. */
static int extensions(struct rd *r, size_t end, struct moat_tls_ch *out)
{
	uint64_t seen[65536 / 64];
	size_t bend;
	int e, psk = 0;

	out->flags |= MOAT_TLS_CH_F_EXTENSIONS;
	if ((e = rd_vec(r, 2, end, &bend)) != 0)
		return e;
	if (bend != end)
		return MOAT_TLS_CH_EBAD;
	memset(seen, 0, sizeof seen);
	while (r->off < bend) {
		unsigned type;
		size_t xend;

		if (psk) /* pre_shared_key must be the last one (RFC 8446 §4.2.11) */
			return MOAT_TLS_CH_EBAD;
		if (r->off + 4 > bend)
			return MOAT_TLS_CH_EBAD;
		if ((e = rd_u16(r, &type)) != 0)
			return e;
		if (seen[type / 64] & (uint64_t)1 << (type % 64))
			return MOAT_TLS_CH_EBAD; /* RFC 8446 §4.2 */
		seen[type / 64] |= (uint64_t)1 << (type % 64);
		if (moat_tls_ch_is_grease((uint16_t)type))
			out->grease |= MOAT_TLS_CH_L_EXTS;
		if (out->nexts < sizeof out->exts / sizeof out->exts[0])
			out->exts[out->nexts++] = (uint16_t)type;
		else
			out->truncated |= MOAT_TLS_CH_L_EXTS;
		psk = type == EXT_PRE_SHARED_KEY;
		if ((e = rd_vec(r, 2, bend, &xend)) != 0)
			return e;
		if ((e = ext_body(r, type, xend, out)) != 0)
			return e;
		if (r->off != xend)
			return MOAT_TLS_CH_EBAD;
	}
	return 0;
}

/* ---- the message ------------------------------------------------------ */

/*
 * ClientHello (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for the optional
 * extensions):
 *   ProtocolVersion legacy_version; Random random (32);
 *   opaque legacy_session_id<0..32>; CipherSuite cipher_suites<2..2^16-2>;
 *   opaque legacy_compression_methods<1..2^8-1>;
 *   [Extension extensions<0..2^16-1>]
 */
static int client_hello(struct rd *r, size_t end, struct moat_tls_ch *out)
{
	size_t vend;
	unsigned v;
	int e;

	if (end - r->off < 2 + 32)
		return MOAT_TLS_CH_EBAD;
	if ((e = rd_u16(r, &v)) != 0)
		return e;
	out->legacy_version = (uint16_t)v;
	if ((e = rd_skip(r, 32)) != 0)
		return e;
	if ((e = rd_vec(r, 1, end, &vend)) != 0)
		return e;
	if (vend - r->off > 32)
		return MOAT_TLS_CH_EBAD;
	out->session_id_len = (uint8_t)(vend - r->off);
	if ((e = rd_skip(r, vend - r->off)) != 0)
		return e;
	if ((e = rd_vec(r, 2, end, &vend)) != 0)
		return e;
	if ((e = rd_list16(r, vend, 2, out->ciphers, 128, &out->nciphers, MOAT_TLS_CH_L_CIPHERS, out)) != 0)
		return e;
	if ((e = rd_vec(r, 1, end, &vend)) != 0)
		return e;
	if (vend == r->off)
		return MOAT_TLS_CH_EBAD;
	if ((e = rd_skip(r, vend - r->off)) != 0)
		return e;
	if (r->off == end)
		return 0; /* no extensions (RFC 5246 §7.4.1.2) */
	return extensions(r, end, out);
}

/*
 * After MOAT_AGAIN: the fewest bytes of input that could hold the whole
 * ClientHello, given what was read. It ends where a record ends, so no
 * sooner than the current record; if the message goes on past that
 * record, a record header and the rest of the message must follow.
 */
static size_t need_hint(const struct rd *r, size_t end)
{
	size_t need = r->len + 1;

	if (r->rec_end > 0) {
		size_t have = r->off + (r->rec_end - r->pos); /* message bytes through this record */
		size_t n = r->rec_end;

		if (end > 0 && end > have)
			n += REC_HDR + (end - have);
		if (n > need)
			need = n;
	}
	return need < MOAT_TLS_CH_MAX ? need : MOAT_TLS_CH_MAX;
}

/* Reads the records and the message; `end` is set once the message's
 * length is known (0 before). */
static int parse(struct rd *r, size_t *end, struct moat_tls_ch *out)
{
	unsigned b[REC_HDR], type, n1, n2;
	size_t i;
	int e;

	/* The first record header: what tells TLS from anything else. */
	for (i = 0; i < REC_HDR; i++) {
		if (i >= r->len)
			return MOAT_AGAIN;
		b[i] = r->buf[i];
		if (b[0] & 0x80) {
			/* SSL 2.0 header: 2 length bytes (the top bit set), then
			 * the message type, 1 = CLIENT-HELLO */
			if (i == 2)
				return b[2] == 1 ? MOAT_TLS_CH_ESSLV2 : MOAT_TLS_CH_ENOTTLS;
			continue;
		}
		if ((i == 0 && b[0] != REC_HANDSHAKE) || (i == 1 && b[1] != 3))
			return MOAT_TLS_CH_ENOTTLS;
	}
	out->record_version = (uint16_t)(b[1] << 8 | b[2]);
	n1 = b[3] << 8 | b[4];
	if (n1 == 0 || n1 > REC_FRAG_MAX)
		return MOAT_TLS_CH_EBAD;
	r->pos = REC_HDR;
	r->rec_end = REC_HDR + n1;

	/* The handshake header: msg_type, uint24 length. */
	if ((e = rd_u8(r, &type)) != 0)
		return e;
	if (type != HS_CLIENT_HELLO)
		return MOAT_TLS_CH_ENOTCH;
	if ((e = rd_u8(r, &n1)) != 0 || (e = rd_u16(r, &n2)) != 0)
		return e;
	*end = HS_HDR + ((size_t)n1 << 16 | n2);
	if (*end + REC_HDR > MOAT_TLS_CH_MAX)
		return MOAT_TLS_CH_ETOOBIG; /* cannot fit, even in one record */

	if ((e = client_hello(r, *end, out)) != 0)
		return e;
	/* The ClientHello ends its record (RFC 8446 §5.1). */
	if (r->pos != r->rec_end)
		return MOAT_TLS_CH_EBAD;
	return (int)r->pos;
}

int moat_tls_ch_parse(const uint8_t *buf, size_t len, struct moat_tls_ch *out)
{
	struct rd r = { .buf = buf, .len = len };
	size_t end = 0;
	int e;

	memset(out, 0, sizeof *out);
	e = parse(&r, &end, out);
	if (e == MOAT_AGAIN)
		out->need = (unsigned)need_hint(&r, end);
	return e;
}
