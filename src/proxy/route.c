/*
 * route.c - first-match routing on host and path prefix (see route.h).
 */
#include "proxy/route.h"

#include <string.h>
#include <strings.h>

/* Strips ":port" (IPv6 literals keep their brackets) and a trailing dot. */
static size_t host_name_len(const char *h, size_t n)
{
	if (n && h[0] == '[') {
		const char *e = memchr(h, ']', n);

		return e ? (size_t)(e - h) + 1 : n;
	}
	for (size_t i = 0; i < n; i++)
		if (h[i] == ':') {
			n = i;
			break;
		}
	if (n && h[n - 1] == '.')
		n--;
	return n;
}

static int host_matches(const struct moat_conf_route *r, const char *h, size_t n)
{
	size_t rl;

	if (!r->host)
		return 1;
	rl = strlen(r->host);
	if (r->host_wildcard) {
		/* r->host is ".example.com": the name must be longer and end with it. */
		return n > rl && strncasecmp(h + n - rl, r->host, rl) == 0;
	}
	return n == rl && strncasecmp(h, r->host, n) == 0;
}

const struct moat_conf_route *moat_route_match(const struct moat_conf *c, const char *host,
					       size_t host_len, const char *path, size_t path_len)
{
	size_t hn = host ? host_name_len(host, host_len) : 0;
	const char *q = memchr(path, '?', path_len);

	if (q)
		path_len = (size_t)(q - path);
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct moat_conf_route *r = &c->routes[i];

		if (!host_matches(r, host ? host : "", hn))
			continue;
		if (r->path_prefix && r->path_prefix_len > 1 &&
		    (path_len < r->path_prefix_len || memcmp(path, r->path_prefix, r->path_prefix_len) != 0))
			continue;
		return r;
	}
	return NULL;
}
