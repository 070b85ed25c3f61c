/*
 * errpage.h - the responses moat writes itself (400, 404, 502, ...): short
 * HTML pages naming the status only, never a backend, address or internal
 * detail.
 */
#ifndef MOAT_PROXY_ERRPAGE_H
#define MOAT_PROXY_ERRPAGE_H

#include "core/buf.h"

/* Appends a complete response for `status` to `out`; `keepalive` chooses
 * between "Connection: keep-alive"-compatible framing and
 * "Connection: close". `head_only` omits the body (HEAD requests).
 * Returns 0 or -ENOBUFS. */
int moat_errpage_write(struct moat_buf *out, int status, int keepalive, int head_only);

/* The reason phrase for a status moat generates. */
const char *moat_errpage_reason(int status);

#endif
