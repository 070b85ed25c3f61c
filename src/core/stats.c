/*
 * stats.c - histogram buckets and refusal names (see stats.h).
 */
#include "core/stats.h"

const uint64_t moat_hist_bounds_us[MOAT_HIST_BUCKETS - 1] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

void moat_hist_observe(struct moat_hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < MOAT_HIST_BUCKETS - 1 && us > moat_hist_bounds_us[i])
		i++;
	MOAT_STAT_INC(h->bucket[i]);
	MOAT_STAT_INC(h->count);
	MOAT_STAT_ADD(h->sum_us, us);
}

const char *moat_refusal_name(enum moat_refusal r)
{
	static const char *const names[MOAT_REFUSE_COUNT] = {
		[MOAT_REFUSE_BAD_REQUEST] = "bad_request",
		[MOAT_REFUSE_URI_TOO_LONG] = "uri_too_long",
		[MOAT_REFUSE_HEADERS_TOO_LARGE] = "headers_too_large",
		[MOAT_REFUSE_NOT_IMPLEMENTED] = "not_implemented",
		[MOAT_REFUSE_VERSION] = "version_not_supported",
		[MOAT_REFUSE_BODY_TOO_LARGE] = "body_too_large",
		[MOAT_REFUSE_METHOD] = "method_not_allowed",
		[MOAT_REFUSE_NO_ROUTE] = "no_route",
		[MOAT_REFUSE_TIMEOUT] = "timeout",
		[MOAT_REFUSE_NO_SERVER] = "no_server",
		[MOAT_REFUSE_OVERLOAD] = "overload",
		[MOAT_REFUSE_BACKEND_ERROR] = "backend_error",
		[MOAT_REFUSE_BACKEND_TIMEOUT] = "backend_timeout",
		[MOAT_REFUSE_ACL] = "acl",
		[MOAT_REFUSE_BANNED] = "banned",
		[MOAT_REFUSE_CONN_LIMIT_IP] = "conn_limit_ip",
		[MOAT_REFUSE_RATE_LIMIT] = "rate_limit",
		[MOAT_REFUSE_WAF] = "waf",
		[MOAT_REFUSE_SLOW] = "slow",
		[MOAT_REFUSE_PROXY_PROTOCOL] = "proxy_protocol",
		[MOAT_REFUSE_TLS] = "tls_handshake",
		[MOAT_REFUSE_H2] = "h2_protocol",
	};

	return (unsigned)r < MOAT_REFUSE_COUNT ? names[r] : "other";
}

enum moat_refusal moat_refusal_of_status(int status)
{
	switch (status) {
	case 404: return MOAT_REFUSE_NO_ROUTE;
	case 405: return MOAT_REFUSE_METHOD;
	case 408: return MOAT_REFUSE_TIMEOUT;
	case 413: return MOAT_REFUSE_BODY_TOO_LARGE;
	case 414: return MOAT_REFUSE_URI_TOO_LONG;
	case 431: return MOAT_REFUSE_HEADERS_TOO_LARGE;
	case 501: return MOAT_REFUSE_NOT_IMPLEMENTED;
	case 502: return MOAT_REFUSE_BACKEND_ERROR;
	case 503: return MOAT_REFUSE_NO_SERVER;
	case 504: return MOAT_REFUSE_BACKEND_TIMEOUT;
	case 505: return MOAT_REFUSE_VERSION;
	default: return MOAT_REFUSE_BAD_REQUEST;
	}
}
