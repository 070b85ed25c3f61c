/*
 * proxyproto.c - PROXY protocol v1 / v2 header parser (see proxyproto.h).
 *
 * Both versions are checked in byte order, stopping at the first byte that
 * proves the header bad or at the end of the input, so a prefix of an
 * input gets either MOAT_AGAIN or the same answer as the whole. For v1
 * that means a field cut short by the end of the input is checked as a
 * prefix: "PROXY TCP4 1.2.3" waits for more, "PROXY TCP4 1.2.300" fails.
 */
#include "http/proxyproto.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "core/cidr.h"

static const char v2sig[12] = { '\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n' };

#define IPV6_TEXT_MAX 45 /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- version 1 -------------------------------------------------------- */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes an address field of the family may hold. */
static int addr_char(int v6, char c)
{
	return is_digit(c) || c == '.' || (v6 && (c == ':' || is_hex(c)));
}

static int addr_ok(int v6, const char *s, size_t n, unsigned char a[16])
{
	int fam;

	return moat_cidr_parse_addr(s, n, &fam, a) == 0 && fam == (v6 ? AF_INET6 : AF_INET);
}

/*
 * Nonzero when s[0..n) (made of addr_char bytes) can still be completed
 * into an address of the family. It can when one of a few fixed suffixes
 * completes it: a dotted part needs at most "0" and ".0" per missing part;
 * an IPv6 group or separator needs at most "0", ":" and "::", and an IPv4
 * tail the dotted endings. (A prefix of a valid address ends inside a
 * group, after ':' or "::", or inside the IPv4 tail; each of those states
 * is closed by one of these suffixes, and a suffix that yields an address
 * proves the prefix.)
 */
static int addr_prefix_ok(int v6, const char *s, size_t n)
{
	static const char *const sfx4[] = { "", "0", "0.0", "0.0.0", "0.0.0.0", ".0", ".0.0", ".0.0.0" };
	static const char *const sfx6[] = { "", "0", ":", "::", "0::", "0.0", "0.0.0", "0.0.0.0",
					    ".0", ".0.0", ".0.0.0" };
	const char *const *sfx = v6 ? sfx6 : sfx4;
	size_t nsfx = v6 ? sizeof sfx6 / sizeof sfx6[0] : sizeof sfx4 / sizeof sfx4[0], i;
	char tmp[IPV6_TEXT_MAX + 8];
	unsigned char a[16];

	if (n > (v6 ? (size_t)IPV6_TEXT_MAX : (size_t)15))
		return 0;
	memcpy(tmp, s, n);
	for (i = 0; i < nsfx; i++) {
		size_t k = strlen(sfx[i]);

		memcpy(tmp + n, sfx[i], k);
		if (addr_ok(v6, tmp, n + k, a))
			return 1;
	}
	return 0;
}

/* Port: 1*5DIGIT without leading zero (but "0"), <= 65535. `partial`: s
 * may still grow (empty allowed). Returns the value or -1. */
static long port_val(const char *s, size_t n, int partial)
{
	long v = 0;
	size_t i;

	if ((n == 0 && !partial) || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? v : -1;
}

static void set_sa(struct sockaddr_storage *ss, socklen_t *sl, int v6, const unsigned char *a, unsigned port)
{
	memset(ss, 0, sizeof *ss);
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof *s4;
	}
}

/* What a v1 parse step found when the input ran out: AGAIN while the
 * line may still end within the limit, else too big. */
static int v1_short(size_t len)
{
	return len >= MOAT_PROXYPROTO_V1_MAX ? MOAT_PROXYPROTO_ETOOBIG : MOAT_AGAIN;
}

/* Compares buf[pos..lim) with the literal; 1 when all of lit is there,
 * 0 when the input ends first, -1 on a difference. */
static int literal(const char *buf, size_t lim, size_t pos, const char *lit)
{
	size_t k = strlen(lit), n = min_size(k, lim - pos);

	if (memcmp(buf + pos, lit, n) != 0)
		return -1;
	return n == k;
}

static int parse_v1(const char *buf, size_t len, struct moat_proxyproto *out)
{
	size_t lim = min_size(len, MOAT_PROXYPROTO_V1_MAX), pos, start[4], end[4];
	unsigned char src[16], dst[16];
	int v6, f, r;

	if ((r = literal(buf, lim, 0, "PROXY ")) <= 0)
		return r < 0 ? MOAT_PROXYPROTO_EBAD : v1_short(len);
	if ((r = literal(buf, lim, 6, "UNKNOWN")) >= 0) {
		if (r == 0)
			return v1_short(len);
		/* "UNKNOWN" [SP anything] CRLF: what follows is ignored */
		for (pos = 13; pos < lim; pos++) {
			if (buf[pos] == '\n' || (pos == 13 && buf[pos] != '\r' && buf[pos] != ' '))
				return MOAT_PROXYPROTO_EBAD;
			if (buf[pos] == '\r') {
				if (pos + 1 == lim)
					return v1_short(len);
				if (buf[pos + 1] != '\n')
					return MOAT_PROXYPROTO_EBAD;
				memset(out, 0, sizeof *out);
				out->version = 1;
				out->local = 1;
				return (int)(pos + 2);
			}
		}
		return v1_short(len);
	}
	if ((r = literal(buf, lim, 6, "TCP4 ")) < 0 && (r = literal(buf, lim, 6, "TCP6 ")) < 0)
		return MOAT_PROXYPROTO_EBAD;
	if (r == 0)
		return v1_short(len);
	v6 = buf[9] == '6';
	/* four fields: src SP dst SP sport SP dport CR LF */
	pos = 11;
	for (f = 0; f < 4; f++) {
		char stop = f < 3 ? ' ' : '\r';

		start[f] = pos;
		while (pos < lim && (f < 2 ? addr_char(v6, buf[pos]) : is_digit(buf[pos])))
			pos++;
		end[f] = pos;
		if (pos == lim) {
			/* cut short: still a prefix of a valid field? */
			if (f < 2 ? !addr_prefix_ok(v6, buf + start[f], pos - start[f])
				  : port_val(buf + start[f], pos - start[f], 1) < 0)
				return MOAT_PROXYPROTO_EBAD;
			return v1_short(len);
		}
		if (buf[pos] != stop)
			return MOAT_PROXYPROTO_EBAD;
		if (f < 2 ? !addr_ok(v6, buf + start[f], end[f] - start[f], f == 0 ? src : dst)
			  : port_val(buf + start[f], end[f] - start[f], 0) < 0)
			return MOAT_PROXYPROTO_EBAD;
		pos++;
	}
	if (pos == lim)
		return v1_short(len);
	if (buf[pos] != '\n')
		return MOAT_PROXYPROTO_EBAD;
	memset(out, 0, sizeof *out);
	out->version = 1;
	set_sa(&out->src, &out->srclen, v6, src, (unsigned)port_val(buf + start[2], end[2] - start[2], 0));
	set_sa(&out->dst, &out->dstlen, v6, dst, (unsigned)port_val(buf + start[3], end[3] - start[3], 0));
	return (int)(pos + 1);
}

/* ---- version 2 -------------------------------------------------------- */

#define V2_HEAD 16u

static unsigned be16(const char *p)
{
	return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

static int parse_v2(const char *buf, size_t len, struct moat_proxyproto *out)
{
	size_t end, off;
	unsigned cmd, fam = 0, need = 0;
	const unsigned char *u = (const unsigned char *)buf;

	if (memcmp(buf, v2sig, min_size(len, sizeof v2sig)) != 0)
		return MOAT_PROXYPROTO_EBAD;
	if (len < 13)
		return MOAT_AGAIN;
	if (u[12] >> 4 != 2 || (u[12] & 0xf) > 1)
		return MOAT_PROXYPROTO_EBAD;
	cmd = u[12] & 0xf; /* 0 LOCAL, 1 PROXY */
	if (len < 14)
		return MOAT_AGAIN;
	if (cmd == 1) {
		fam = u[13];
		switch (fam) {
		case 0x00:              /* UNSPEC */
			break;
		case 0x11: case 0x12:   /* TCP4, UDP4: 2 x 4 bytes + 2 ports */
			need = 12;
			break;
		case 0x21: case 0x22:   /* TCP6, UDP6: 2 x 16 bytes + 2 ports */
			need = 36;
			break;
		case 0x31: case 0x32:   /* UNIX stream / dgram: 2 x 108 bytes */
			need = 216;
			break;
		default:
			return MOAT_PROXYPROTO_EBAD;
		}
	}
	if (len < V2_HEAD)
		return MOAT_AGAIN;
	end = V2_HEAD + be16(buf + 14);
	if (end > MOAT_PROXYPROTO_V2_MAX)
		return MOAT_PROXYPROTO_ETOOBIG;
	if (end - V2_HEAD < need)
		return MOAT_PROXYPROTO_EBAD;
	if (cmd == 1 && fam != 0) {
		/* the TLVs after the addresses must tile the rest exactly */
		for (off = V2_HEAD + need; off < end; off += 3 + be16(buf + off + 1)) {
			if (end - off < 3)
				return MOAT_PROXYPROTO_EBAD;
			if (len < off + 3)
				return MOAT_AGAIN;
			if (end - off - 3 < be16(buf + off + 1))
				return MOAT_PROXYPROTO_EBAD;
		}
	}
	if (len < end)
		return MOAT_AGAIN;
	memset(out, 0, sizeof *out);
	out->version = 2;
	if (fam == 0x11) {
		set_sa(&out->src, &out->srclen, 0, u + 16, be16(buf + 24));
		set_sa(&out->dst, &out->dstlen, 0, u + 20, be16(buf + 26));
	} else if (fam == 0x21) {
		set_sa(&out->src, &out->srclen, 1, u + 16, be16(buf + 48));
		set_sa(&out->dst, &out->dstlen, 1, u + 32, be16(buf + 50));
	} else {
		out->local = 1;
	}
	return (int)end;
}

int moat_proxyproto_parse(const char *buf, size_t len, struct moat_proxyproto *out)
{
	if (len == 0)
		return MOAT_AGAIN;
	if (buf[0] == 'P')
		return parse_v1(buf, len, out);
	if (buf[0] == '\r')
		return parse_v2(buf, len, out);
	return MOAT_PROXYPROTO_EBAD;
}
