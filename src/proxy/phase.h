/*
 * phase.h - the hook table through which policy modules (src/mod/) take
 * part in a connection's and a request's way.
 *
 * A module is a const struct moat_mod; main.c lists the modules in the
 * order they run (moat_phase_set) before the runtime starts. The proxy
 * calls each module's hooks at fixed points:
 *
 *   start ........ process start (control thread): the module's process
 *                  state, kept across reloads (ban table, rate counters)
 *   gen_build .... a config generation is built (control thread): state
 *                  derived from that config (WAF rule sets); may refuse it
 *   admit ........ a client connection's address is known (after the
 *                  PROXY header, if any): 0 admits it, else it is closed
 *   gone ......... an admitted client connection closes
 *   request ...... a request head is routed, before anything is sent to a
 *                  backend: go on, refuse (moat answers), delay, or ask to
 *                  see the request body first (then the `body` hook)
 *                  -- or answer it itself (cache hit), or wait for another
 *                  request's fetch (coalescing) and be asked again
 *   resp_head .... the backend's final response head: edit the client's
 *                  fields, watch the body (cache store), transform it
 *                  (compression), or answer with the module's own response
 *                  instead (a 304 merged into a stored one, stale-if-error)
 *   resp_sent .... (watchers) the head as written for the client
 *   resp_body .... (watchers, the transformer) the body, de-framed
 *   resp_fail .... the backend gave no usable answer (502 / 503 / 504): the
 *                  module may answer instead (stale-if-error)
 *   offense ...... moat refused something of this client (bans count it)
 *   txn_end ...... the txn ends: free the module's per-txn slot
 *   admin ........ an admin API request under /api/<name>
 *
 * A module never includes another module; what they share is here. Hooks
 * run on worker threads (admit .. txn_end) or the admin / control thread
 * (start, gen_*, admin); process state must be built for concurrency.
 */
#ifndef MOAT_PROXY_PHASE_H
#define MOAT_PROXY_PHASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/stats.h"
#include "http/h1_parse.h"

#define MOAT_MOD_MAX 8

struct moat_runtime;
struct moat_confref;
struct moat_worker;
struct moat_client;
struct moat_txn;

enum moat_mod_verdict {
	MOAT_MOD_NEXT = 0,          /* go on with the next module */
	MOAT_MOD_REFUSE,            /* answer reply->status and stop */
	MOAT_MOD_DELAY,             /* go on, and hold the request reply->delay_ms once every
				     * module has seen it (and its body, if one asked) */
	MOAT_MOD_BODY,              /* call my body hook once reply->body_want bytes of the
				     * request body (or all of it) are read */
	MOAT_MOD_SERVE,             /* request / resp_fail: answer with q->serve (filled by the
				     * module); no backend (request), or none more (resp_fail) */
	MOAT_MOD_WAIT,              /* request: call my request hook again (q->h NULL) after
				     * reply->delay_ms; the hooks after mine wait too */
};

/* A response a module answers with (a cache hit, a 304 from a stored
 * response, a stale stand-in). The module writes the status line and
 * field lines (each ending CRLF; no framing, no Connection field, no
 * empty line) to `out`; moat adds Content-Length, Connection and the
 * empty line, then sends body[0..body_len) (not for HEAD) straight from
 * the module's memory, and calls release(ref) once it is sent or the txn
 * ends. */
struct moat_mod_serve {
	struct moat_buf *out;       /* the client's output */
	int status;                 /* the status written (log, counters) */
	int64_t content_length;     /* Content-Length to state; -1: none (304, 204) */
	const char *body;
	uint64_t body_len;
	void (*release)(void *ref);
	void *ref;
	int refresh;                /* after serving, fetch from the backend anyway, sending
				     * nothing more to the client (a background refresh):
				     * the resp_* hooks run as for any fetch */
};

/* Fields for the backend's request, set by a request hook (the first
 * call only, not after MOAT_MOD_WAIT). */
struct moat_mod_fwd {
	int strip_cond;             /* drop If-None-Match, If-Modified-Since, If-Range, Range */
	char extra[512];            /* field lines to add (each ending CRLF) */
	size_t extra_len;
};

/* The backend's final response head (not 1xx, not 101) as the resp_head
 * hooks see and edit it. */
#define MOAT_MOD_RESP_HIDE_MAX 16
struct moat_mod_resp {
	const struct moat_h1_head *h;       /* as parsed (valid during the hook) */
	int request_was_head;
	/* edits of the client's head, accumulated over the modules */
	const char *hide[MOAT_MOD_RESP_HIDE_MAX]; /* lowercase names to drop (static strings) */
	size_t nhide;
	char extra[1024];                   /* field lines to add */
	size_t extra_len;
	uint64_t body_len;                  /* the backend's Content-Length, or 0 when not known */
	int has_length;
};

/* Where a transforming module's output goes (resp_body). */
struct moat_mod_sink {
	int (*put)(struct moat_mod_sink *k, const void *p, size_t n); /* 0, or -1: stop */
};

enum moat_mod_rverdict {
	MOAT_MOD_R_PASS = 0,        /* nothing more from me for this response */
	MOAT_MOD_R_WATCH,           /* resp_sent, then resp_body with the bytes as the client
				     * gets them (after a transformer), end = 1 at the end */
	MOAT_MOD_R_TRANSFORM,       /* I rewrite the body: resp_body gets the backend's bytes
				     * and puts mine into the sink; moat re-frames them
				     * (chunked, or close-delimited for HTTP/1.0). One per
				     * response: the first that asks */
	MOAT_MOD_R_SERVE,           /* answer with q->serve instead of this response (its body,
				     * if any, is dropped with the backend connection) */
};

/* What a module asks for, filled by its hook. */
struct moat_mod_reply {
	int status;                 /* status moat answers with */
	enum moat_refusal refusal;  /* the counter it bumps */
	int offense;                /* enum moat_ban_offense to count, or -1 */
	const char *why;            /* static text for the error log */
	char detail[256];           /* more for the error log; may be empty */
	char headers[512];          /* extra response header lines, each ending in CRLF */
	size_t headers_len;
	char id[40];                /* an id shown in the answer and the log line, or empty */
	uint64_t delay_ms;          /* DELAY */
	size_t body_want;           /* BODY */
};

/* A request as the modules see it: borrowed, valid during the hook. */
struct moat_mod_req {
	struct moat_worker *w;
	struct moat_client *c;
	struct moat_txn *t;
	const struct moat_conf *conf;
	const struct moat_h1_head *h;       /* request hook: the head (points into the input) */
	const struct sockaddr *client;      /* the client address (PROXY / trusted proxies applied);
					     * as text: moat_mod_client_text(q) */
	const struct sockaddr *local;       /* the address the client connected to */
	const struct moat_conf_route *route;
	size_t route_idx;
	void *state;                        /* the module's process state */
	void *gen;                          /* the module's state for this config generation */
	void **slot;                        /* the module's per-txn slot (freed by txn_end) */
	uint64_t now_ms;                    /* the loop's clock (monotonic) */
	struct moat_mod_serve *serve;       /* request / resp_head / resp_fail: fill it for SERVE */
	struct moat_mod_fwd *fwd;           /* request (first call): fields for the backend */
	/* body hook only: the request body read so far (de-chunked) */
	const char *body;
	size_t body_len;
	int body_complete;
	struct moat_mod_reply *reply;
};

struct moat_mod {
	const char *name;
	int (*start)(const struct moat_conf *conf, void **state);
	void (*stop)(void *state);
	/* Returns 0, or -1 with *why malloc'd (the config is refused). */
	int (*gen_build)(void *state, const struct moat_conf *conf, void **gen, char **why);
	void (*gen_free)(void *state, void *gen);
	/* Returns 0 (admitted), 1 (admitted, and `gone` must be called when
	 * the conn closes: something was counted), or -1 (refused). */
	int (*admit)(void *state, const struct moat_conf *conf, const struct moat_conf_listener *l,
		     const struct sockaddr *client, uint64_t now_ms, struct moat_mod_reply *r);
	void (*gone)(void *state, const struct moat_conf *conf, const struct sockaddr *client);
	/* Whether the module has anything to do on route r (its request hook
	 * is skipped where not); NULL: every route. Asked once per route when
	 * a config generation is built. */
	int (*route_on)(const struct moat_conf_route *r);
	enum moat_mod_verdict (*request)(struct moat_mod_req *q);
	enum moat_mod_verdict (*body)(struct moat_mod_req *q);
	void (*offense)(void *state, const struct moat_conf *conf, const struct sockaddr *client, int offense,
			uint64_t now_ms);
	/* The response (see enum moat_mod_rverdict). resp_head and resp_fail
	 * run only for a module that set its per-txn slot in `request`: a
	 * request without any costs nothing here. */
	enum moat_mod_rverdict (*resp_head)(struct moat_mod_req *q, struct moat_mod_resp *r);
	void (*resp_sent)(struct moat_mod_req *q, const char *head, size_t len);
	/* Watchers: data as sent (sink NULL); the transformer: input, output to
	 * sink. end: no more data after this. Returns 0, or -1: the response
	 * cannot go on (the client connection is closed). */
	int (*resp_body)(struct moat_mod_req *q, const char *data, size_t len, int end, struct moat_mod_sink *sink);
	/* No usable answer from the backend; status is what moat would send.
	 * MOAT_MOD_SERVE with q->serve filled answers instead. */
	enum moat_mod_verdict (*resp_fail)(struct moat_mod_req *q, int status);
	void (*txn_end)(void *state, void *slot);
	/* Prometheus text exposition of the module's own series (families
	 * with HELP / TYPE), appended to /metrics: writes at most cap bytes
	 * to out, returns the length. Admin thread. */
	size_t (*metrics)(void *state, char *out, size_t cap);
	/* Admin API: `path` after "/api/<name>" ("" or "/..."); writes a JSON
	 * answer to `out`, returns the HTTP status. */
	int (*admin)(void *state, const char *method, const char *path, const char *body, size_t body_len,
		     struct moat_buf *out);
};

/* The client address of q as text, formatted on first use. Worker thread. */
const char *moat_mod_client_text(struct moat_mod_req *q);

/* The modules, in the order they run. Set once by main() before the
 * runtime starts; n <= MOAT_MOD_MAX. */
void moat_phase_set(const struct moat_mod *const *mods, size_t n);
size_t moat_phase_count(void);
const struct moat_mod *moat_phase_mod(size_t i);

#endif
