/*
 * h1_request_fuzz.c - libFuzzer target for moat_h1_parse_request().
 *
 * The input is parsed from an exactly sized heap copy, so any read past
 * the end hits ASan. Beyond crashes it checks the parser's contract and
 * abort()s when broken: a prefix (cut where the first byte says) gives
 * MOAT_AGAIN or the whole input's result, a valid head gives MOAT_AGAIN on
 * that prefix, results point inside the head, and the head alone parses to
 * the same length.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NHDR 32

static const struct moat_h1_limits lim = {
	.request_line_max = 512,
	.header_size_max = 2048,
	.header_count_max = 24,
};

static int parse(const uint8_t *data, size_t n, struct moat_h1_head *h, struct moat_h1_header *hdrs,
		 char **out)
{
	char *buf = malloc(n ? n : 1);
	int r;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	memset(h, 0, sizeof(*h));
	h->headers = hdrs;
	h->header_cap = NHDR;
	r = moat_h1_parse_request(buf, n, h, &lim);
	*out = buf;
	return r;
}

static void inside(const char *p, size_t len, const char *buf, int r)
{
	if (p == NULL || p < buf || p + len > buf + r)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_h1_header hdrs[NHDR], hdrs2[NHDR];
	struct moat_h1_head h, h2;
	char *buf, *buf2;
	size_t cut, i;
	int r, r2;

	r = parse(data, size, &h, hdrs, &buf);
	if (r > 0) {
		if ((size_t)r > size || h.nheaders > NHDR || h.minor_version < 0 || h.minor_version > 1)
			abort();
		inside(h.method, h.method_len, buf, r);
		inside(h.target, h.target_len, buf, r);
		for (i = 0; i < h.nheaders; i++) {
			inside(h.headers[i].name, h.headers[i].name_len, buf, r);
			inside(h.headers[i].value, h.headers[i].value_len, buf, r);
		}
		if (h.host != NULL)
			inside(h.host, h.host_len, buf, r);
		if (h.minor_version == 1 && h.host == NULL)
			abort();
		if (h.framing == MOAT_H1_BODY_CLOSE)
			abort();
	} else if (r != MOAT_AGAIN && r != MOAT_H1_EBAD && r != MOAT_H1_EURI_TOO_LONG &&
		   r != MOAT_H1_EHDR_TOO_BIG && r != MOAT_H1_ETE_UNKNOWN && r != MOAT_H1_EVERSION) {
		abort();
	}

	/* a prefix: AGAIN or the same result, never an error for a valid head */
	cut = size ? (size_t)data[0] * size / 256 : 0;
	r2 = parse(data, cut, &h2, hdrs2, &buf2);
	free(buf2);
	if (r2 != MOAT_AGAIN && r2 != r)
		abort();
	if (r > 0 && cut < (size_t)r && r2 != MOAT_AGAIN)
		abort();

	/* the head alone parses the same */
	if (r > 0) {
		r2 = parse(data, (size_t)r, &h2, hdrs2, &buf2);
		free(buf2);
		if (r2 != r || h2.nheaders != h.nheaders || h2.framing != h.framing ||
		    h2.content_length != h.content_length || h2.flags != h.flags)
			abort();
	}
	free(buf);
	return 0;
}
