/*
 * admin.h - the admin listener: a small HTTP/1.1 server on its own thread
 * serving the JSON API (/api/...), Prometheus metrics (/metrics) and the
 * dashboard page (/), on the address of the config's `admin` section (TCP
 * or a unix socket).
 *
 * It sits beside the request's way, never on it: it reads what workers
 * count (per-worker counters summed at read time, shared server states)
 * and writes only a server's `admin_drain` flag and, through
 * moat_runtime_reload_file, a new config generation.
 *
 * Who may talk to it: peers of the unix socket always; TCP peers from
 * loopback (127.0.0.0/8, ::1) or a block of admin.allow; everyone else gets
 * 403. With admin.token set, every request but GET / (the dashboard page,
 * which holds no data) needs "Authorization: Bearer TOKEN" (401 otherwise).
 * token and allow follow reloads; the address is fixed at start.
 */
#ifndef MOAT_PROXY_ADMIN_H
#define MOAT_PROXY_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf/conf.h"

/* Fixed bounds of the admin listener (operators' tool, not config keys). */
#define MOAT_ADMIN_HEAD_MAX (8u * 1024u)           /* request head; 431 past it */
#define MOAT_ADMIN_HEADERS_MAX 64u                 /* header fields; 431 past it */
#define MOAT_ADMIN_BODY_MAX (64u * 1024u)          /* request body; 413 past it */
#define MOAT_ADMIN_TIMEOUT_MS 10000u               /* a request, or idle keep-alive */
#define MOAT_ADMIN_CONNS_MAX 64u                   /* connections at once; 503 past it */
#define MOAT_ADMIN_OUT_MAX (64u * 1024u * 1024u)   /* one response */

struct moat_runtime;
struct moat_admin;

/*
 * Starts the admin thread when the current generation of `rt` has an admin
 * section: binds its address (a stale unix socket file is replaced; the new
 * one is made 0600), then serves until moat_admin_stop. `version` is
 * borrowed for the thread's life. Returns 0 with *out set (NULL when admin
 * is off), or -errno after logging why. Control thread, after
 * moat_runtime_start succeeded.
 */
int moat_admin_start(struct moat_runtime *rt, const char *version, struct moat_admin **out);

/* Stops the thread, closes every admin connection and the listener
 * (removing the unix socket file it made), frees `a`. NULL is allowed.
 * Control thread, before moat_runtime_stop. */
void moat_admin_stop(struct moat_admin *a);

/* Pure: may a TCP peer at `sa` use the admin listener? Loopback (127.0.0.0/8,
 * ::1, ::ffff:127.0.0.0/104) always, else when within one of `allow`
 * (n blocks). AF_UNIX peers are always allowed; other families never. */
int moat_admin_peer_allowed(const struct sockaddr *sa, const struct moat_conf_cidr *allow, size_t n);

/* Pure: compares a presented token with the configured one in time that
 * depends only on the configured token's length. Returns 1 when equal. */
int moat_admin_token_eq(const char *given, size_t given_len, const char *want);

#endif
