/*
 * clienthello_fuzz.c - libFuzzer target for moat_tls_ch_parse: never
 * reads out of bounds (the input is an exactly sized copy); answers with
 * whole records, no more than the input nor MOAT_TLS_CH_MAX, or MOAT_AGAIN
 * only while the input is shorter than MOAT_TLS_CH_MAX (with a `need`
 * past the input), or one of its errors; a prefix of the input gives
 * MOAT_AGAIN or the whole input's result (MOAT_AGAIN whenever it is
 * shorter than a hello found, with a `need` not past the hello); bytes
 * after a hello change nothing; what it fills in keeps its own rules
 * (counts within arrays, a valid NUL-terminated SNI, flags that agree);
 * and a hello found, cut into records of another size, reads the same
 * (or is too big, when the new records pass the limit).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t n, struct moat_tls_ch *ch)
{
	uint8_t *buf = malloc(n ? n : 1);
	int r;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	r = moat_tls_ch_parse(buf, n, ch);
	free(buf);
	return r;
}

static int is_err(int r)
{
	return r == MOAT_TLS_CH_ENOTTLS || r == MOAT_TLS_CH_ESSLV2 || r == MOAT_TLS_CH_ENOTCH ||
	       r == MOAT_TLS_CH_EBAD || r == MOAT_TLS_CH_ETOOBIG;
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.';
}

/* The rules a returned hello keeps whatever the input. */
static void check_hello(const struct moat_tls_ch *ch)
{
	const uint16_t *lists[] = { ch->versions, ch->ciphers, ch->exts, ch->groups, ch->sigalgs };
	const unsigned counts[] = { ch->nversions, ch->nciphers, ch->nexts, ch->ngroups, ch->nsigalgs };
	const unsigned caps[] = { 16, 128, 64, 32, 64 };
	const unsigned bits[] = { MOAT_TLS_CH_L_VERSIONS, MOAT_TLS_CH_L_CIPHERS, MOAT_TLS_CH_L_EXTS,
				  MOAT_TLS_CH_L_GROUPS, MOAT_TLS_CH_L_SIGALGS };
	unsigned i, j;

	for (i = 0; i < 5; i++) {
		if (counts[i] > caps[i] || ((ch->truncated & bits[i]) && counts[i] != caps[i]))
			abort();
		for (j = 0; j < counts[i]; j++)
			if (moat_tls_ch_is_grease(lists[i][j]) && !(ch->grease & bits[i]))
				abort();
	}
	if (ch->nciphers == 0 || ch->session_id_len > 32 || ch->necpf > 8 || ch->nalpn > 8)
		abort();
	for (i = 0; i < ch->nexts; i++)
		for (j = 0; j < i; j++)
			if (ch->exts[i] == ch->exts[j])
				abort();
	if (ch->nexts > 0 && !(ch->flags & MOAT_TLS_CH_F_EXTENSIONS))
		abort();
	/* SNI: present when named; a valid name or "" with the flag */
	if (ch->sni_len > 253 || strlen(ch->sni) != ch->sni_len)
		abort();
	if ((ch->sni_len > 0 || (ch->flags & MOAT_TLS_CH_F_SNI_INVALID)) && !(ch->flags & MOAT_TLS_CH_F_SNI))
		abort();
	if ((ch->flags & MOAT_TLS_CH_F_SNI) && (ch->sni_len == 0) != !!(ch->flags & MOAT_TLS_CH_F_SNI_INVALID))
		abort();
	for (i = 0; i < ch->sni_len; i++)
		if (!host_char(ch->sni[i]) || (ch->sni[i] == '.' && (i == 0 || ch->sni[i - 1] == '.')))
			abort();
	if (ch->sni_len > 0 && ch->sni[ch->sni_len - 1] == '.')
		abort();
	/* ALPN names: kept bytes, a NUL, the whole length and last byte */
	if (ch->nalpn > 0 && !(ch->flags & MOAT_TLS_CH_F_ALPN))
		abort();
	for (i = 0; i < ch->nalpn; i++) {
		unsigned kept = ch->alpn_len[i] < 31 ? ch->alpn_len[i] : 31;

		if (ch->alpn_len[i] == 0 || ch->alpn[i][kept] != '\0')
			abort();
		if (ch->alpn_len[i] <= 31 && (uint8_t)ch->alpn[i][kept - 1] != ch->alpn_last[i])
			abort();
		if (ch->alpn_len[i] > 31 && !(ch->truncated & MOAT_TLS_CH_L_ALPN_NAME))
			abort();
	}
	if (ch->nversions > 0 && !(ch->flags & MOAT_TLS_CH_F_VERSIONS))
		abort();
}

/* The handshake message of the records at data[0..n) (known good). */
static size_t unwrap(const uint8_t *data, size_t n, uint8_t *msg)
{
	size_t p = 0, m = 0;

	while (p < n) {
		size_t k = (size_t)data[p + 3] << 8 | data[p + 4];

		memcpy(msg + m, data + p + 5, k);
		m += k;
		p += 5 + k;
	}
	if (p != n)
		abort();
	return m;
}

/* The message cut into records of `frag` bytes parses the same. */
static void check_refragment(const uint8_t *msg, size_t m, size_t frag, const struct moat_tls_ch *want)
{
	size_t nrec = (m + frag - 1) / frag, n = m + 5 * nrec, off = 0, o = 0;
	uint8_t *rec = malloc(n);
	struct moat_tls_ch ch;
	int r;

	if (rec == NULL)
		abort();
	while (off < m) {
		size_t k = m - off < frag ? m - off : frag;

		rec[o++] = 22;
		rec[o++] = (uint8_t)(want->record_version >> 8);
		rec[o++] = (uint8_t)want->record_version;
		rec[o++] = (uint8_t)(k >> 8);
		rec[o++] = (uint8_t)k;
		memcpy(rec + o, msg + off, k);
		o += k;
		off += k;
	}
	r = moat_tls_ch_parse(rec, n, &ch);
	free(rec);
	if (n > MOAT_TLS_CH_MAX ? r != MOAT_TLS_CH_ETOOBIG
				: r != (int)n || memcmp(&ch, want, sizeof ch) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_tls_ch ch, again;
	size_t k, step;
	int r, rk;

	r = parse_copy(data, size, &ch);
	if (r == 0 || r > (int)size || r > (int)MOAT_TLS_CH_MAX || (r < 0 && r != MOAT_AGAIN && !is_err(r)))
		abort();
	if (r == MOAT_AGAIN && (size >= MOAT_TLS_CH_MAX || ch.need <= size || ch.need > MOAT_TLS_CH_MAX))
		abort(); /* every input is decided within the limit */
	if (r > 0)
		check_hello(&ch);

	/* prefixes: all of them for short inputs, a sample for long ones */
	step = size <= 256 ? 1 : size / 61 + 1;
	for (k = 0; k < size; k += step) {
		rk = parse_copy(data, k, &again);
		if (rk != MOAT_AGAIN && rk != r)
			abort();
		if (r > 0 && k < (size_t)r && rk != MOAT_AGAIN)
			abort();
		/* the hint: more than the prefix, never past the hello */
		if (rk == MOAT_AGAIN &&
		    (again.need <= k || again.need > MOAT_TLS_CH_MAX || (r > 0 && again.need > (unsigned)r)))
			abort();
	}
	if (r > 0) {
		uint8_t msg[MOAT_TLS_CH_MAX];
		size_t m;

		if ((size_t)r < size) {
			/* the hello alone gives the same answer */
			if (parse_copy(data, (size_t)r, &again) != r || memcmp(&again, &ch, sizeof ch) != 0)
				abort();
		}
		m = unwrap(data, (size_t)r, msg);
		check_refragment(msg, m, 1, &ch);
		check_refragment(msg, m, 1 + data[r - 1] % 97, &ch);
		check_refragment(msg, m, 16384, &ch);
	}
	return 0;
}
