/*
 * proxy.h - the proxy's runtime objects, shared by the files of src/proxy/.
 *
 * Ownership, top down:
 *   runtime (control thread) -> workers (one thread each) and the published
 *     config (a confref, reference counted across threads);
 *   worker -> its loop, listeners, client conns, idle backend pool, and its
 *     pins on config generations (wconf, counted locally, no atomics);
 *   client conn -> its txn (one request at a time; pipelined
 *     requests wait in the input buffer) and, while the txn runs, the
 *     backend conn it uses;
 *   backend conn -> owned by the txn while active, by the worker's pool
 *     while idle.
 * Conns are never freed inside a callback: closing marks them dead and the
 * worker frees them at the end of the loop iteration.
 */
#ifndef MOAT_PROXY_PROXY_H
#define MOAT_PROXY_PROXY_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "http/chunked.h"
#include "http/h1_parse.h"
#include "proxy/phase.h"
#include "proxy/upgrade.h"
#include "upstream/lb.h"
#include "upstream/state.h"

struct moat_worker;
struct moat_io;
struct moat_tls_conn;
struct moat_tls_server;
struct moat_tls_client;
struct moat_h2conn;

/*
 * A transport under a conn's bytes, when they do not go straight to the
 * socket: TLS (tlsconn.c), one stream of an HTTP/2 connection (h2conn.c),
 * an HTTP/2 backend connection (h2up.c). moat_io_* call it instead of
 * read/writev; each keeps io's flags true as the plain path does.
 */
struct moat_xport {
	/* Reads up to n bytes: > 0 bytes; 0 nothing now (can_read cleared)
	 * or the end (eof set); -errno fatal. */
	ssize_t (*read)(void *x, struct moat_io *io, char *p, size_t n);
	/* Writes up to n bytes: > 0 taken; 0 none now (can_write cleared);
	 * -errno fatal. */
	ssize_t (*write)(void *x, struct moat_io *io, const char *p, size_t n);
	/* The write side ends (TLS close_notify); the caller then shuts the
	 * socket's write side if it has one. */
	void (*shutdown)(void *x, struct moat_io *io);
};

/* Edge-triggered readiness of one socket, as last seen. */
struct moat_io {
	unsigned char can_read, can_write, eof, wr_shut;
	unsigned char hup;          /* the peer's FIN or an error was reported: read to EOF */
	unsigned char rd_wants_wr;  /* TLS: a read waits for the socket to be writable */
	uint64_t nread, nwritten;   /* bytes moved so far, to tell progress from events */
	const struct moat_xport *xp; /* NULL: the socket itself */
	void *xa;                   /* the transport's state */
};

/* A published config generation, shared by all threads. */
struct moat_confref {
	struct moat_conf *conf;
	atomic_uint refs;
	uint64_t generation;
	int64_t loaded_at;          /* unix seconds */
	struct moat_upstream_rt *ups;   /* server states bound for this generation */
	struct moat_route_rt *routes;   /* route counters, one per conf route */
	struct moat_srv_registry *reg;  /* where they are bound (for the unbind) */
	void *mod_gen[MOAT_MOD_MAX];    /* each module's state for this generation */
	uint8_t *route_mods;            /* per route: bit i = module i's request hook runs
					 * (route_on); NULL: all of them */
	struct moat_tls_server **tls_srv; /* per listener: its TLS context, or NULL (tlsconn.c) */
	struct moat_tls_client **tls_cli; /* per upstream with https:// or h2:// servers, or NULL */
	int any_redirect;               /* a listener has redirect_https */
	char **cert_fields;             /* lowercase names of the client-certificate fields
					 * (the default and every TLS listener's client_header):
					 * removed from every request, whatever the listener */
	size_t *cert_field_len, ncert_fields;
	void *const *mod_state;         /* the runtime's module states (for gen_free) */
};

/* A worker's pin on a generation, counted without atomics. */
struct moat_wconf {
	struct moat_confref *ref;
	unsigned users;             /* txns running under it */
	struct moat_wconf *next;    /* older generations still in use */
	uint64_t retire_at;         /* once replaced: txns still under it are closed then */
	struct moat_wup *wup;       /* balancer state, one per upstream */
};

/* One upstream's balancer in one worker: the algorithm's own state and
 * scratch arrays for its inputs. */
struct moat_wup {
	const struct moat_lb_ops *ops;
	void *lb;
	size_t n;
	unsigned *weight;           /* effective weights of this pick (0: not eligible) */
	unsigned *active;
	uint64_t *latency;
	uint64_t *sticky_id;        /* per server: the opaque id in the sticky cookie */
	uint64_t rand;              /* xorshift state */
};

struct moat_listener {
	struct moat_ev ev;
	struct moat_worker *w;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int keep;                   /* mark while syncing with a new config */
	int proxy_protocol;         /* from its config: connections start with a PROXY header */
	int dead;                   /* closed; freed at the end of the iteration */
	struct moat_listener *dead_next;
};

enum moat_bconn_state {
	MOAT_B_CONNECTING = 0,
	MOAT_B_ACTIVE,
	MOAT_B_IDLE,
};

/* A connection to a backend server. */
struct moat_bconn {
	struct moat_ev ev;
	struct moat_worker *w;
	struct moat_client *c;      /* the client whose txn uses it (ACTIVE/CONNECTING) */
	struct moat_bconn *next, *prev; /* idle list of its pool */
	struct moat_bpool *pool;
	struct moat_buf in, out;
	struct moat_timer timer;
	enum moat_bconn_state state;
	struct moat_io io;
	unsigned dead : 1, reused : 1, handshaking : 1;
	uint64_t connect_started;
	struct moat_tls_conn *tls;      /* https:// and h2:// servers */
	struct moat_tls_client *tc;     /* CONNECTING: the context to start TLS with */
	const struct moat_conf_server *sv; /* CONNECTING: the server (scheme, name) */
	uint8_t scheme;                 /* enum moat_conf_scheme */
	uint64_t kind;                  /* scheme and TLS settings it was made with (backend.c) */
	void *h2;                       /* h2c:// and h2:// servers: the HTTP/2 session (h2up.c) */
	struct moat_bconn *dead_next;
};

/* Idle connections to one backend address, in one worker. */
struct moat_bpool {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct moat_bconn *idle;    /* most recently used first */
	unsigned nidle;
	struct moat_bpool *next;
};

enum moat_txn_phase {
	MOAT_TXN_NONE = 0,
	MOAT_TXN_PENDING,           /* every server at its limit: waiting for a slot */
	MOAT_TXN_HOLD,              /* a module delays it (rate limit): until hold_until */
	MOAT_TXN_INSPECT,           /* a module reads the request body first (WAF) */
	MOAT_TXN_CONNECT,           /* waiting for the backend connection */
	MOAT_TXN_EXCHANGE,          /* request and response flowing */
	MOAT_TXN_TUNNEL,            /* after 101: bytes both ways */
	MOAT_TXN_FINISHING,         /* response complete, flushing to the client */
	MOAT_TXN_LOCAL,             /* sending a module's own response (t->serve) */
};

/* One request and its response. Taken from the worker's free list when a
 * request head is complete, given back when the txn ends; owned by the
 * client conn meanwhile. */
struct moat_txn {
	enum moat_txn_phase phase;
	struct moat_wconf *wc;
	const struct moat_conf_route *route;
	const struct moat_conf_upstream *up;
	size_t up_idx, server_idx;
	unsigned tries;             /* connections tried */
	unsigned retries;           /* tries after the first that count against retry.attempts */
	uint64_t tried;             /* bit i: server i tried (first 64 servers) */
	struct moat_srv_state *srv; /* server of the current try, counted in its active */
	uint64_t hash;              /* hash key (algorithm hash) */
	int sticky_idx;             /* server named by the sticky cookie, or -1 */
	uint64_t try_start_us;      /* when the current try's request was sent */
	uint64_t deadline_ms;       /* retry.timeout across tries; 0 = none */
	uint64_t pending_until;     /* PENDING: give up (503) at this time */
	uint64_t hold_until;        /* HOLD: go on at this time */
	uint64_t body_max;          /* request body limit of the route (0 = none) */
	size_t inspect_want;        /* INSPECT: body bytes the module waits for */
	size_t in_max_saved;        /* the client input's maximum before a module raised it; 0 = not raised */
	unsigned inspect_mod;       /* INSPECT: which module */
	unsigned next_mod;          /* request hooks run so far (resumed after HOLD / INSPECT) */
	void *mod_slot[MOAT_MOD_MAX]; /* each module's per-txn state */
	struct moat_mod_serve serve;  /* LOCAL: a module's own response (phase.h) */
	uint64_t serve_off;         /* LOCAL: body bytes sent */
	uint8_t resp_watch;         /* bit i: module i watches the response body */
	int8_t resp_xform;          /* the module transforming the body, or -1 */
	unsigned served : 1,        /* t->serve holds a response (released at the end) */
		sink : 1,           /* a background fetch: the response goes to the modules only */
		filtered : 1;       /* the body goes through the modules (resp_watch / resp_xform) */
	struct sockaddr_storage client; /* the client's address (trusted proxies applied) */
	char client_text[64];
	unsigned idempotent : 1, stale_retry : 1, retry_counted : 1, pending_counted : 1,
		set_sticky : 1, overload : 1;
	short fail_status;          /* what the last failed try calls for (502, 504) */
	struct moat_bconn *b;
	struct moat_buf reqhead;    /* what was sent to the backend (head, then body while
				     * it fits in REPLAY_MAX), kept for a retry */
	uint64_t start_ms;
	uint64_t start_us;          /* precise start, for the access log */

	/* request */
	enum moat_h1_framing req_framing;
	uint64_t req_remaining;     /* LENGTH: bytes still to forward */
	uint64_t req_body_bytes;
	struct moat_chunked req_chunk;
	unsigned req_done : 1, is_head : 1, upgrade : 1, expect : 1, sent_100 : 1,
		keepalive : 1, replay_lost : 1;
	int minor;

	/* response */
	unsigned resp_started : 1, resp_done : 1, out_chunked : 1, out_close : 1,
		backend_reusable : 1, got_byte : 1, req_trailers : 1, resp_trailers : 1;
	int status;
	enum moat_h1_framing resp_framing;
	uint64_t resp_remaining;
	struct moat_chunked resp_chunk;
	uint64_t bytes_out;         /* body bytes to the client */
	uint64_t bytes_in;          /* request bytes from the client */

	/* not zeroed at the start (only its lengths are): */
	struct moat_mod_fwd fwd;    /* the modules' fields for the backend's request */
	/* access log values, copied out of the request head */
	char logv[1536];
	unsigned short lv_method, lv_uri, lv_host, lv_ua, lv_ref; /* lengths, stored back to back */
	char server_text[64];
	struct moat_txn *free_next;    /* worker's free list */
};

enum moat_client_state {
	MOAT_C_HEAD = 0,            /* reading a request head */
	MOAT_C_PROXY_HDR,           /* reading the PROXY protocol header (before any head) */
	MOAT_C_TXN,                 /* a txn runs */
	MOAT_C_CLOSING,             /* flushing the last bytes, then close */
	MOAT_C_TLS,                 /* TLS handshake (after any PROXY header) */
	MOAT_C_H2,                  /* an HTTP/2 connection: its streams are virtual clients */
};

/* A client connection. */
struct moat_client {
	struct moat_ev ev;
	struct moat_worker *w;
	struct moat_client *prev, *next;   /* worker's list */
	uint64_t id;
	union moat_sa_ip peer;             /* IPv4 or IPv6 (listeners are IP only) */
	socklen_t peerlen;
	struct moat_buf in, out;
	struct moat_timer timer;
	enum moat_client_state state;
	struct moat_io io;
	unsigned dead : 1, head_deadline_set : 1, nodelay : 1, on_pending : 1, admitted : 1, slow : 1,
		virt : 1,                  /* an HTTP/2 stream: no socket of its own (h2conn.c) */
		h2c_ok : 1;                /* cleartext listener taking HTTP/2 prior knowledge */
	struct moat_tls_conn *tls;         /* a TLS connection (also set on its streams: the parent's) */
	void *h2;                          /* MOAT_C_H2: its struct moat_h2conn (a stream's virtual
					    * client reaches its stream through io.xa) */
	uint8_t gone_mask;                 /* modules whose `gone` hook this conn owes (phase.c) */
	struct moat_client *pnext, *pprev; /* worker's pending list (txn waiting for a slot) */
	uint64_t head_deadline;
	uint64_t close_deadline;
	uint64_t seen_read, seen_written;  /* io counters at the last timer arming */
	uint64_t last_read_ms, last_write_ms;
	uint64_t body_started_ms, body_base;   /* min_body_rate: when the body began, bytes read then */
	uint64_t send_started_ms, send_base;   /* min_send_rate: same for the response */
	uint64_t drained_at;                   /* nwritten when the send queue was last seen empty */
	unsigned requests;
	struct moat_txn *txn;          /* while state == MOAT_C_TXN */
	struct moat_listener *lst;     /* PROXY_HDR: the listener it came through (compared with the
				        * worker's open listeners, never followed blindly) */
	struct moat_client *dead_next;
};

struct moat_runtime;

struct moat_worker {
	struct moat_loop loop;
	unsigned id;
	pthread_t thread;
	struct moat_runtime *rt;
	struct moat_buf_pool bufpool;
	struct moat_wconf *conf;       /* current generation */
	struct moat_wconf *old;        /* older generations still used */
	struct moat_listener **listeners;
	size_t nlisteners;
	struct moat_client *clients;
	unsigned nclients;
	moat_counter bconns_idle;      /* backend conns idle in the pools (a gauge the admin
				        * thread reads) */
	struct moat_bpool *pools;
	struct moat_alog_ring *alog;
	uint64_t next_id;
	int accept_paused;
	int stopping;
	uint64_t stop_deadline;
	struct moat_timer stop_timer;
	struct moat_timer accept_timer;
	struct moat_defer reap;
	struct moat_client *dead_clients;
	struct moat_h2conn *h2_dirty;  /* HTTP/2 conns with frames to send (h2conn.c) */
	struct moat_defer h2_flush;
	struct moat_bconn *dead_bconns;
	struct moat_listener *dead_listeners;
	int start_error;               /* -errno when listeners failed at start */
	struct moat_txn *free_txns;
	struct moat_client *pending;   /* conns whose txn waits for a server slot */
	struct moat_timer pending_timer;
	struct moat_timer retire_timer;
	struct moat_h1_header *hdrs;   /* scratch for parsing one head at a time */
	struct moat_wstats stats;      /* written by this worker only */
	uint64_t refusal_log_sec;      /* error-log rate limit of refusals: current second */
	unsigned refusal_log_n;        /* lines written in it */
	unsigned long long refusal_log_dropped; /* lines not written since the last summary */
	struct moat_timer refusal_timer; /* writes the summary of what was left out */
	size_t hdrs_cap;
};

struct moat_health;

struct moat_runtime {
	const char *path;               /* config file, NULL in the one-line mode */
	pthread_mutex_t reload_lock;    /* one reload at a time (signal or admin API) */
	int64_t started_at;             /* unix seconds */
	struct moat_srv_registry *reg;
	struct moat_health *health;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct moat_confref *current;   /* under lock */
	uint64_t generation;
	struct moat_worker *workers;
	unsigned nworkers;
	unsigned started;               /* workers past start-up (under lock) */
	atomic_int stopping;
	atomic_int leave_queues;        /* at the stop, listeners close without taking what
					 * waits in their accept queues: another process holds
					 * the same sockets and accepts it (a binary upgrade:
					 * the new process took over, or this one failed to
					 * start and the old one serves on) */
	struct moat_lfds lfds;          /* every listening socket, for a binary upgrade */
	struct moat_inherit *inherit;   /* sockets given at start (binary upgrade, socket
					 * activation), or NULL; set by the caller before start */
	void *mod_state[MOAT_MOD_MAX];  /* each module's process state (phase.h) */
	atomic_uint nclients;           /* client connections of every worker (connections_total) */
};

/* phase.c: running the modules' hooks (phase.h) */
int moat_phase_start(struct moat_runtime *rt, const struct moat_conf *conf);
void moat_phase_stop(struct moat_runtime *rt);
int moat_phase_gen_build(struct moat_runtime *rt, struct moat_confref *r, char **why);
void moat_phase_gen_free(struct moat_confref *r);
/* Admits a client whose address is known; 0, or -1 after closing it. */
int moat_phase_admit(struct moat_client *c, const struct moat_conf_listener *l);
void moat_phase_gone(struct moat_client *c);
/* Runs the request hooks from t->next_mod on: 1 go on (all passed), 0 the
 * txn waits (HOLD / INSPECT), -1 refused (moat's answer queued), 2 a
 * module answers itself (t->serve). */
int moat_phase_request(struct moat_client *c, const struct moat_h1_head *h);
/* INSPECT: the body is there (or all of it): runs the module's body hook,
 * then the remaining request hooks; same returns. */
int moat_phase_body(struct moat_client *c, const char *body, size_t len, int complete);
void moat_phase_offense(struct moat_client *c, const struct sockaddr *client, int offense);
void moat_phase_txn_end(struct moat_txn *t);
/* The response hooks (phase.h). resp_head: R_SERVE (t->serve filled),
 * R_TRANSFORM (t->resp_xform), R_WATCH (t->resp_watch) or R_PASS. */
/* Whether a module with a per-txn slot has a response hook (the resp_*
 * hooks run only for modules holding a slot). */
int moat_phase_resp_wanted(const struct moat_txn *t);
enum moat_mod_rverdict moat_phase_resp_head(struct moat_client *c, struct moat_mod_resp *r);
void moat_phase_resp_sent(struct moat_client *c, const char *head, size_t len);
int moat_phase_resp_watch(struct moat_client *c, const char *data, size_t len, int end);
int moat_phase_resp_xform(struct moat_client *c, const char *data, size_t len, int end, struct moat_mod_sink *k);
/* 1 when a module answers instead of the error `status` (t->serve filled). */
int moat_phase_resp_fail(struct moat_client *c, int status);
/* Admin API under /api/<module name>: -1 when no module has that name. */
/* The modules' /metrics series (phase.h's metrics hook); the length. */
size_t moat_phase_metrics(struct moat_runtime *rt, char *out, size_t cap);
int moat_phase_admin(struct moat_runtime *rt, const char *method, const char *path, const char *body,
		     size_t body_len, struct moat_buf *out);

/* runtime.c */
int moat_runtime_start(struct moat_runtime *rt, struct moat_conf *conf, unsigned nworkers);
int moat_runtime_reload(struct moat_runtime *rt, struct moat_conf *conf, char **why);
/* Loads rt->path, validates it and publishes it. Returns the new
 * generation (> 0), or a negative error with every problem, one
 * "file:line:col: message" per line, in *why (malloc'd; the caller frees
 * it). Logs the outcome. Any thread; reloads are serialised. */
int64_t moat_runtime_reload_file(struct moat_runtime *rt, char **why);
/* The current generation with a reference the caller must put. */
struct moat_confref *moat_runtime_current(struct moat_runtime *rt);
void moat_runtime_stop(struct moat_runtime *rt);
/* A signature of the TLS files (certificates, keys, CA files) the current
 * generation uses: identity, size and change times; 0 when it uses none.
 * A change means they were replaced on disk (main reloads then). */
uint64_t moat_runtime_tls_files_sig(struct moat_runtime *rt);
void moat_confref_put(struct moat_confref *r);

/* worker.c */
void *moat_worker_main(void *arg);
int moat_worker_adopt(struct moat_worker *w);
void moat_wconf_put(struct moat_worker *w, struct moat_wconf *wc);
void moat_worker_client_gone(struct moat_worker *w);
void moat_pending_add(struct moat_worker *w, struct moat_client *c);
void moat_pending_del(struct moat_worker *w, struct moat_client *c);

/* client.c */
void moat_client_close(struct moat_client *c);
void moat_client_closing(struct moat_client *c);
void moat_client_head_error(struct moat_client *c, int status, const char *why);
void moat_client_log_refusal(const struct moat_client *c, int status, const char *why);
/* Same, naming `client` (text; NULL: the peer) as the client; at most
 * log.refusal_rate lines per second per worker, the rest counted and
 * summarised in the next line written. */
void moat_client_log_refusal_as(const struct moat_client *c, const char *client, int status, const char *why);
/* The refusal_timer's callback: the summary of lines left out. */
void moat_worker_refusal_summary(struct moat_timer *tm);

/* txn.c: start a txn for a parsed head (headlen bytes of c->in); run it as
 * far as it goes (1 progress, 0 waiting, -1 ended); end it with moat's own
 * response; finish it (access log, pins released). */
void moat_txn_start(struct moat_client *c, struct moat_h1_head *h, size_t headlen);
int moat_txn_run(struct moat_client *c);
void moat_txn_error(struct moat_client *c, int status);
/* moat's own answer for a module: extra header lines and an id in the
 * body; not counted (the caller counts it). */
void moat_txn_answer(struct moat_client *c, int status, const char *extra, size_t extra_len, const char *id);
void moat_txn_answer_ex(struct moat_client *c, int status, const char *extra, size_t extra_len, const char *id,
			int count);
void moat_txn_finish(struct moat_client *c);
/* The txn's client address as text, formatted on first use. */
const char *moat_txn_client_text(struct moat_txn *t);
/* The worker's pending timer: retries a waiting txn; 1 when it left the
 * pending state. */
int moat_txn_pending_retry(struct moat_client *c);
/* Takes an accepted fd; the caller has already counted it in
 * rt->nclients (given back here if no client can be made). */
void moat_client_accept(struct moat_worker *w, struct moat_listener *l, int fd, const struct sockaddr *sa,
			socklen_t len);
void moat_client_free(struct moat_client *c);
/* A virtual client for one HTTP/2 stream of `parent` (h2conn.c sets its
 * transport); NULL when out of memory. */
struct moat_client *moat_client_virtual(struct moat_client *parent);
void moat_client_run(struct moat_client *c);
void moat_client_stop_idle(struct moat_client *c);
void moat_client_abort(struct moat_client *c);
/* From backend.c: the connect finished (err 0) or failed (-errno). */
void moat_client_backend_connected(struct moat_client *c, int err);
/* From backend.c: a backend timer expired while a txn used it. */
void moat_client_backend_timeout(struct moat_client *c);

/* tlsconn.c: TLS contexts per generation, the TLS transport, handshakes */
extern const struct moat_xport moat_tls_xport;
int moat_tls_gen_build(struct moat_confref *r, char **why);
void moat_tls_gen_free(struct moat_confref *r);
/* MOAT_C_TLS: 1 progress, 0 waiting, -1 closed. */
int moat_client_run_tls(struct moat_client *c);
/* The listener config of a client's listener in generation `conf`, or NULL. */
const struct moat_conf_listener *moat_client_listener(const struct moat_client *c, const struct moat_conf *conf);

/* h2conn.c: HTTP/2 connections whose streams run as virtual clients */
/* Turns c (after the preface or ALPN h2) into an HTTP/2 connection; -1
 * after closing it. */
int moat_h2conn_start(struct moat_client *c);
int moat_h2conn_run(struct moat_client *c);
void moat_h2conn_close(struct moat_client *c);   /* from moat_client_close */
uint64_t moat_h2conn_deadline(struct moat_client *c); /* its timer (0: none) */
/* Aborts the streams whose txn runs under a generation retired by `now`. */
void moat_h2conn_retire(struct moat_client *c, uint64_t now);
void moat_h2conn_stop(struct moat_client *c);    /* graceful: GOAWAY */
void moat_h2conn_flush_dirty(struct moat_defer *d);
/* A stream's virtual client is closed: tell the session. */
void moat_h2stream_gone(struct moat_client *vc);

/* h2up.c: HTTP/2 backend connections */
int moat_h2up_start(struct moat_bconn *b, int tls);
void moat_h2up_free(struct moat_bconn *b);
int moat_h2up_idle(struct moat_bconn *b);             /* idle and readable: -1 close it */
int moat_h2up_reusable(const struct moat_bconn *b);

/* backend.c */
/* `sv`: the server (its scheme: TLS and HTTP/2 set up after the connect);
 * `tc`: the upstream's TLS context for https:// and h2:// (else NULL). */
struct moat_bconn *moat_bconn_get(struct moat_worker *w, const struct sockaddr *sa, socklen_t len,
				  const struct moat_conf_upstream *up, const struct moat_conf_server *sv,
				  struct moat_tls_client *tc, int fresh, int *err);
void moat_bconn_release(struct moat_bconn *b, int reusable, const struct moat_conf_upstream *up);
void moat_bconn_close(struct moat_bconn *b);
void moat_bconn_free(struct moat_bconn *b);
void moat_bconn_set_timer(struct moat_bconn *b, uint64_t deadline);

/* balance.c: choosing servers, and what a try's outcome does to them */
#define MOAT_PICK_NONE (-2)         /* no server available: 503 */
#define MOAT_PICK_BUSY (-3)         /* every candidate at its limit: wait or 503 */
int moat_wup_init(struct moat_wup *wu, const struct moat_conf_upstream *up);
void moat_wup_free(struct moat_wup *wu);
int moat_balance_pick(struct moat_worker *w, struct moat_txn *t);
void moat_balance_release(struct moat_txn *t);
void moat_balance_outcome(struct moat_worker *w, struct moat_txn *t, int ok, int connect_fail);
void moat_balance_latency(struct moat_worker *w, struct moat_txn *t, uint64_t us);
void moat_balance_prepare(struct moat_worker *w, struct moat_txn *t, const struct moat_h1_head *h,
			  const struct sockaddr *peer, const char *target, size_t target_len);
int moat_balance_may_retry(struct moat_worker *w, struct moat_txn *t, int connect_fail);
void moat_balance_txn_end(struct moat_txn *t);

#endif
