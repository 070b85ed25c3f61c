/*
 * admin_int.h - what the admin files share, and nobody else uses:
 *
 *   admin.c       the thread, its listener and connections, HTTP/1.1
 *                 framing, the peer and token checks, the dashboard page
 *   admin_api.c   the JSON endpoints (/api/...)
 *   admin_text.c  a growable text with a maximum, the JSON writer and the
 *                 little formatters (seconds, ISO 8601, path segments)
 *   metrics.c     /metrics in the Prometheus text format 0.0.4
 *
 * Everything here runs on the admin thread (the pure helpers anywhere).
 */
#ifndef MOAT_PROXY_ADMIN_INT_H
#define MOAT_PROXY_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "proxy/admin.h"
#include "proxy/proxy.h"
#include "upstream/state.h"

/* ---- text: bytes in a growable buffer with a maximum ---------------------------- */

/* Owned by whoever embeds it; `p` is NUL-terminated when not NULL. Once
 * an append would pass `max` (or memory runs out) `full` is set and every
 * later append is dropped: check it once at the end. */
struct moat_text {
	char *p;
	size_t len, cap, max;
	int full;
};

void moat_text_init(struct moat_text *t, size_t max);
void moat_text_free(struct moat_text *t);
/* Empties it, keeping the memory. */
void moat_text_reset(struct moat_text *t);
void moat_text_add(struct moat_text *t, const void *p, size_t n);
void moat_text_str(struct moat_text *t, const char *s);
void moat_text_printf(struct moat_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- JSON ------------------------------------------------------------------------ */

#define MOAT_JSON_DEPTH 16

/* A JSON writer over a text: commas and colons are its business. Nesting
 * past MOAT_JSON_DEPTH marks the text full. */
struct moat_json {
	struct moat_text *t;
	unsigned depth;
	unsigned char first[MOAT_JSON_DEPTH + 1]; /* nothing written yet at this depth */
	unsigned char after_key;
};

void moat_json_init(struct moat_json *j, struct moat_text *t);
void moat_json_obj(struct moat_json *j);
void moat_json_obj_end(struct moat_json *j);
void moat_json_arr(struct moat_json *j);
void moat_json_arr_end(struct moat_json *j);
void moat_json_key(struct moat_json *j, const char *k);
void moat_json_str(struct moat_json *j, const char *s);   /* NULL writes null */
void moat_json_strn(struct moat_json *j, const char *s, size_t n);
void moat_json_u64(struct moat_json *j, uint64_t v);
void moat_json_i64(struct moat_json *j, int64_t v);
void moat_json_bool(struct moat_json *j, int v);
void moat_json_null(struct moat_json *j);
/* A fixed-point number with 3 decimals ("1.250"). */
void moat_json_milli(struct moat_json *j, uint64_t thousandths);

/* Pure: appends s[0..n) as a JSON string, quotes included: '"', '\\' and
 * control characters escaped (\n, \t... or \u00XX), DEL as \u007f, bytes
 * that are not well-formed UTF-8 replaced by U+FFFD. */
void moat_json_escape(struct moat_text *t, const char *s, size_t n);

/* ---- formatters ------------------------------------------------------------------- */

/* Pure: microseconds as exact decimal seconds, no trailing zeros:
 * 500 -> "0.0005", 2500000 -> "2.5", 10000000 -> "10", 0 -> "0". */
void moat_admin_seconds(uint64_t us, char *out, size_t outlen);

/* Unix seconds as "2026-11-27T12:00:00Z" (UTC); out of at least 32 bytes. */
void moat_admin_iso8601(int64_t unix_s, char *out, size_t outlen);

/* Pure: percent-decodes a path segment s[0..n) into out (NUL-terminated).
 * Returns the decoded length, or -1 for a bad escape, an encoded NUL or
 * '/', or when it does not fit in outlen. */
long moat_admin_unescape(const char *s, size_t n, char *out, size_t outlen);

/* Pure: appends v as a Prometheus label value (without the quotes):
 * '\\' -> "\\\\", '"' -> "\\\"", newline -> "\\n". */
void moat_prom_escape(struct moat_text *t, const char *v);

/* ---- requests and responses --------------------------------------------------------- */

/* One admin request, borrowed from the connection's input buffer for the
 * duration of moat_admin_api / moat_metrics_render. */
struct moat_admin_req {
	const char *method;
	size_t method_len;
	const char *path;        /* the target up to '?' */
	size_t path_len;
	const char *body;
	size_t body_len;
	const char *peer;        /* "127.0.0.1", "unix pid=12 uid=0": for log lines */
};

/* The answer being built. `body` belongs to the connection; `allow` and
 * `content_type` point to constants. */
struct moat_admin_resp {
	int status;
	const char *content_type;
	const char *allow;       /* for 405: the Allow header */
	const char *www_auth;    /* for 401: the WWW-Authenticate header */
	struct moat_text *body;
};

/* What a handler sees: the runtime, and the generation current when the
 * request arrived (a reference held by the caller until the answer is
 * written). */
struct moat_admin_ctx {
	struct moat_runtime *rt;
	struct moat_confref *cur;
	const char *version;
};

/* admin_api.c: answers a request whose path starts with "/api/" (any other
 * path: 404). Logs actions (POST) at info with the peer. */
void moat_admin_api(const struct moat_admin_ctx *x, const struct moat_admin_req *q, struct moat_admin_resp *r);

/* Writes {"error": msg} with `status`. */
void moat_admin_error(struct moat_admin_resp *r, int status, const char *msg);

/* The state of one server as the admin API reports it: "draining" (drain
 * in the config or through the API), "down" (failed its health checks),
 * "ejected" (passive ejection until a later time), "slow_start" (back up
 * and still ramping its weight), else "up". `now_ms` is moat_clock_ms(). */
const char *moat_admin_server_state(const struct moat_conf_upstream *up, const struct moat_conf_server *cs,
				    struct moat_srv_state *s, uint64_t now_ms);

/* metrics.c: the whole exposition into `t`. */
void moat_metrics_render(const struct moat_admin_ctx *x, struct moat_text *t);

#endif
