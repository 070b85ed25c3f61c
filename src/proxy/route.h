/*
 * route.h - choosing the route for a request, pure.
 */
#ifndef MOAT_PROXY_ROUTE_H
#define MOAT_PROXY_ROUTE_H

#include <stddef.h>

#include "conf/conf.h"

/*
 * Returns the first route of `c` whose host and path prefix match, or NULL.
 * `host` is the request's authority (a ":port" suffix and a trailing dot
 * are ignored; compared case-insensitively), `path` its path (the target up
 * to '?' is what counts). Thread-safe: reads the snapshot only.
 */
const struct moat_conf_route *moat_route_match(const struct moat_conf *c, const char *host,
					       size_t host_len, const char *path, size_t path_len);

#endif
