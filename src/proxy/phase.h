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
	enum moat_mod_verdict (*request)(struct moat_mod_req *q);
	enum moat_mod_verdict (*body)(struct moat_mod_req *q);
	void (*offense)(void *state, const struct moat_conf *conf, const struct sockaddr *client, int offense,
			uint64_t now_ms);
	void (*txn_end)(void *state, void *slot);
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
