/*
 * h1_response_fuzz.c - libFuzzer target for moat_h1_parse_response().
 *
 * The input is parsed from an exactly sized heap copy, so any read past
 * the end hits ASan. Beyond crashes it checks the parser's contract and
 * abort()s when broken: a prefix (cut where the first byte says) gives
 * MOAT_AGAIN or the whole input's result, a valid head gives MOAT_AGAIN on
 * that prefix, results point inside the head, the framing agrees with the
 * status, and the head alone parses to the same length. Whether the
 * request was HEAD is taken from the input length, so both paths run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NHDR 16

static const struct moat_h1_limits lim = {
	.request_line_max = 512,
	.header_size_max = 2048,
	.header_count_max = 24, /* more than NHDR: the array size is the bound */
};

static int parse(const uint8_t *data, size_t n, struct moat_h1_head *h, struct moat_h1_header *hdrs,
		 int is_head, char **out)
{
	char *buf = malloc(n ? n : 1);
	int r;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	memset(h, 0, sizeof(*h));
	h->headers = hdrs;
	h->header_cap = NHDR;
	r = moat_h1_parse_response(buf, n, h, &lim, is_head);
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
	int is_head = size % 5 == 0;
	char *buf, *buf2;
	size_t cut, i;
	int r, r2;

	r = parse(data, size, &h, hdrs, is_head, &buf);
	if (r > 0) {
		int nobody = is_head || h.status / 100 == 1 || h.status == 204 || h.status == 304;

		if ((size_t)r > size || h.nheaders > NHDR || h.status < 100 || h.status > 999)
			abort();
		if (nobody != (h.framing == MOAT_H1_BODY_NONE))
			abort();
		inside(h.reason, h.reason_len, buf, r);
		for (i = 0; i < h.nheaders; i++) {
			inside(h.headers[i].name, h.headers[i].name_len, buf, r);
			inside(h.headers[i].value, h.headers[i].value_len, buf, r);
		}
		if (h.host != NULL || h.method != NULL)
			abort();
	} else if (r != MOAT_AGAIN && r != MOAT_H1_EBAD && r != MOAT_H1_EHDR_TOO_BIG &&
		   r != MOAT_H1_ETE_UNKNOWN && r != MOAT_H1_EVERSION) {
		abort();
	}

	cut = size ? (size_t)data[0] * size / 256 : 0;
	r2 = parse(data, cut, &h2, hdrs2, is_head, &buf2);
	free(buf2);
	if (r2 != MOAT_AGAIN && r2 != r)
		abort();
	if (r > 0 && cut < (size_t)r && r2 != MOAT_AGAIN)
		abort();

	if (r > 0) {
		r2 = parse(data, (size_t)r, &h2, hdrs2, is_head, &buf2);
		free(buf2);
		if (r2 != r || h2.nheaders != h.nheaders || h2.framing != h.framing ||
		    h2.content_length != h.content_length || h2.status != h.status)
			abort();
	}
	free(buf);
	return 0;
}
