/*
 * xff_fuzz.c - libFuzzer target for moat_xff_client.
 *
 * Input: byte 0 picks the header (bit 0: X-Forwarded-For or Forwarded),
 * whether an unrelated field sits between the others (bit 1) and which
 * addresses count as trusted (the rest); the remaining bytes, split at
 * '\n', are the field values, each in an exactly sized heap copy (so ASan
 * sees any over-read). Checked: no crash; `trusted` only sees IPv4 / IPv6
 * with port 0; an answer is an address `trusted` was asked about: for
 * X-Forwarded-For the last one asked (the walk stops at the client), and
 * for both, an answer judged trusted only when every address asked about
 * was trusted (then it is the leftmost).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/xff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 32
#define MAXCALLS 4096

struct call {
	struct sockaddr_storage ss;
	int verdict;
};

struct rec {
	unsigned rule;
	struct call calls[MAXCALLS];
	size_t n, over;
};

static size_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int trusted(void *ctx, const struct sockaddr *sa)
{
	struct rec *r = ctx;
	const unsigned char *a;
	size_t alen;
	int v;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		if (s4->sin_port != 0)
			abort();
		a = (const unsigned char *)&s4->sin_addr;
		alen = 4;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (s6->sin6_port != 0)
			abort();
		a = s6->sin6_addr.s6_addr;
		alen = 16;
	} else {
		abort();
	}
	/* trusted when the last byte's low bits match the rule */
	v = r->rule == 0 ? 0 : r->rule == 127 ? 1 : (a[alen - 1] & 3u) == (r->rule & 3u);
	if (r->n < MAXCALLS) {
		memset(&r->calls[r->n].ss, 0, sizeof r->calls[r->n].ss);
		memcpy(&r->calls[r->n].ss, sa, alen == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		r->calls[r->n].verdict = v;
		r->n++;
	} else {
		r->over = 1;
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec rec;
	struct moat_h1_header hdrs[2 * MAXF];
	char *copies[MAXF];
	struct moat_h1_head h;
	struct sockaddr_storage out;
	socklen_t outlen = 0;
	size_t nf = 0, nh = 0, pos = 1, i;
	int which, r;

	if (size == 0)
		return 0;
	which = data[0] & 1 ? MOAT_XFF_FORWARDED : MOAT_XFF_X_FORWARDED_FOR;
	rec.n = 0;
	rec.over = 0;
	rec.rule = data[0] >> 1 & 127u;
	while (pos <= size && nf < MAXF) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;

		copies[nf] = malloc(end - pos ? end - pos : 1);
		if (copies[nf] == NULL)
			abort();
		memcpy(copies[nf], data + pos, end - pos);
		if ((data[0] & 2) && nh > 0) {
			hdrs[nh].name = "X-Other";
			hdrs[nh].name_len = 7;
			hdrs[nh].value = "1.2.3.4";
			hdrs[nh].value_len = 7;
			nh++;
		}
		hdrs[nh].name = which == MOAT_XFF_FORWARDED ? "Forwarded" : "X-Forwarded-For";
		hdrs[nh].name_len = strlen(hdrs[nh].name);
		hdrs[nh].value = copies[nf];
		hdrs[nh].value_len = end - pos;
		nh++;
		nf++;
		pos = end + 1;
	}
	memset(&h, 0, sizeof h);
	h.headers = hdrs;
	h.header_cap = 2 * MAXF;
	h.nheaders = nh;
	r = moat_xff_client(&h, which, trusted, &rec, &out, &outlen);

	if (r != 0 && r != -1)
		abort();
	if (r == 0 && !rec.over) {
		size_t last_untrusted = rec.n;

		if (rec.n == 0 || outlen != sa_len(&out))
			abort();
		for (i = 0; i < rec.n; i++)
			if (!rec.calls[i].verdict)
				last_untrusted = i;
		if (which == MOAT_XFF_X_FORWARDED_FOR) {
			/* the walk from the right stops at the answer */
			if (memcmp(&rec.calls[rec.n - 1].ss, &out, outlen) != 0)
				abort();
			if (rec.calls[rec.n - 1].verdict && last_untrusted != rec.n)
				abort();
		} else if (last_untrusted < rec.n) {
			if (memcmp(&rec.calls[last_untrusted].ss, &out, outlen) != 0)
				abort();
		} else if (memcmp(&rec.calls[0].ss, &out, outlen) != 0) {
			abort(); /* all trusted: the leftmost */
		}
	}
	for (i = 0; i < nf; i++)
		free(copies[i]);
	return 0;
}
