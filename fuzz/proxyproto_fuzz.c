/*
 * proxyproto_fuzz.c - libFuzzer target for moat_proxyproto_parse: never
 * reads out of bounds (the input is an exactly sized copy); a header is
 * within its version's limit and no longer than the input; a prefix of
 * the input gives MOAT_AGAIN or the whole input's result (MOAT_AGAIN
 * whenever it is shorter than a valid header); bytes after a header change
 * nothing; a v1 TCP header printed back from the result parses to the
 * same addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t n, struct moat_proxyproto *pp)
{
	char *buf = malloc(n ? n : 1);
	int r;

	if (buf == NULL)
		abort();
	memcpy(buf, data, n);
	r = moat_proxyproto_parse(buf, n, pp);
	free(buf);
	return r;
}

static void addr_text(const struct sockaddr_storage *ss, char *s, size_t cap, unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, s, (socklen_t)cap);
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, s, (socklen_t)cap);
		*port = ntohs(s6->sin6_port);
	} else {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_proxyproto pp, again;
	size_t k, step;
	int r, rk;

	r = parse_copy(data, size, &pp);
	if (r == 0 || r > (int)size ||
	    (r < 0 && r != MOAT_AGAIN && r != MOAT_PROXYPROTO_EBAD && r != MOAT_PROXYPROTO_ETOOBIG))
		abort();
	if (r == MOAT_AGAIN && size >= MOAT_PROXYPROTO_V2_MAX)
		abort(); /* every header is decided within its limit */
	if (r > 0) {
		if (pp.version == 1 ? (size_t)r > MOAT_PROXYPROTO_V1_MAX
				    : pp.version != 2 || (size_t)r > MOAT_PROXYPROTO_V2_MAX)
			abort();
		if (pp.local ? pp.srclen != 0 || pp.dstlen != 0
			     : pp.srclen == 0 || pp.dstlen != pp.srclen || pp.src.ss_family != pp.dst.ss_family)
			abort();
	}

	/* prefixes: all of them for short inputs, a sample for long ones */
	step = size <= 300 ? 1 : size / 97 + 1;
	for (k = 0; k < size; k += step) {
		rk = parse_copy(data, k, &again);
		if (rk != MOAT_AGAIN && rk != r)
			abort();
		if (r > 0 && k < (size_t)r && rk != MOAT_AGAIN)
			abort();
	}
	if (r > 0 && (size_t)r < size) {
		/* the header alone gives the same answer */
		rk = parse_copy(data, (size_t)r, &again);
		if (rk != r || again.local != pp.local || again.srclen != pp.srclen ||
		    memcmp(&again.src, &pp.src, sizeof pp.src) != 0 || memcmp(&again.dst, &pp.dst, sizeof pp.dst) != 0)
			abort();
	}
	if (r > 0 && pp.version == 1 && !pp.local) {
		/* printed back in the shortest form, parsed again */
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[200];
		unsigned sp, dp;
		int n;

		addr_text(&pp.src, s, sizeof s, &sp);
		addr_text(&pp.dst, d, sizeof d, &dp);
		n = snprintf(line, sizeof line, "PROXY TCP%c %s %s %u %u\r\n", pp.src.ss_family == AF_INET ? '4' : '6',
			     s, d, sp, dp);
		if (parse_copy((const uint8_t *)line, (size_t)n, &again) != n ||
		    memcmp(&again.src, &pp.src, sizeof pp.src) != 0 || memcmp(&again.dst, &pp.dst, sizeof pp.dst) != 0)
			abort();
	}
	return 0;
}
