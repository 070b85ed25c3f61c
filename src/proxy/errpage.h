/*
 * errpage.h - the responses moat writes itself (400, 404, 502, ...): short
 * HTML pages naming the status only, never a backend, address or internal
 * detail.
 */
#ifndef MOAT_PROXY_ERRPAGE_H
#define MOAT_PROXY_ERRPAGE_H

#include <stddef.h>

#include "core/buf.h"

/* Appends a complete response for `status` to `out`; `keepalive` chooses
 * between "Connection: keep-alive"-compatible framing and
 * "Connection: close". `head_only` omits the body (HEAD requests).
 * Returns 0 or -ENOBUFS. */
int moat_errpage_write(struct moat_buf *out, int status, int keepalive, int head_only);

/* Same, with `extra_len` bytes of extra header lines (each ending in CRLF)
 * and, when `id` is not NULL or empty, "Reference: ID" in the body (the id
 * the error log line carries). */
int moat_errpage_write_ex(struct moat_buf *out, int status, int keepalive, int head_only, const char *extra,
			  size_t extra_len, const char *id);

/* The reason phrase for a status moat generates. */
const char *moat_errpage_reason(int status);

#endif
