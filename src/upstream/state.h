/*
 * state.h - what moat knows about each backend server at run time, shared
 * by every worker and kept across config reloads.
 *
 * A server's state is found by its identity (upstream name + address as
 * written), so a reload that keeps a server keeps its health, ejection and
 * load figures. Workers read and update it with relaxed atomics on a
 * request's way (counters only: one shared cache line per server, as in
 * HAProxy); the health thread and the resolver write health and addresses.
 *
 * The registry is touched only by the control thread (binding a new config)
 * and by whoever drops the last use of a generation (unbinding), under its
 * mutex.
 */
#ifndef MOAT_UPSTREAM_STATE_H
#define MOAT_UPSTREAM_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/stats.h"

struct moat_srv_state {
	char *key;                          /* "upstream/host:port" */
	atomic_uint refs;                   /* bindings holding it */

	/* health */
	atomic_int up;                      /* active checks: 1 up, 0 down (1 until checked) */
	atomic_uint_fast64_t ejected_until; /* passive ejection, monotonic ms; 0 = not ejected */
	atomic_uint ejections;              /* consecutive ejections (grows the ejection time) */
	atomic_uint failures;               /* consecutive failures */
	atomic_uint_fast64_t back_since;    /* ms when it last became available (slow start) */

	/* load */
	atomic_uint active;                 /* requests in flight, all workers */
	atomic_uint_fast64_t ewma_us;       /* peak-EWMA response-head latency */
	atomic_uint_fast64_t ewma_stamp;    /* ms of the last EWMA update */

	/* address: written by the resolver, read by workers (seqlock) */
	atomic_uint addr_seq;
	struct sockaddr_storage addr;
	socklen_t addrlen;

	/* operator control */
	atomic_int admin_drain;             /* drained through the admin API */

	/* counters */
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t fails_total;
	atomic_uint_fast64_t ejections_total;
	atomic_uint_fast64_t transitions_up;   /* health checks: down -> up */
	atomic_uint_fast64_t transitions_down; /* health checks: up -> down */
};

/* One upstream of one config generation, bound to its servers' states. */
struct moat_upstream_rt {
	const struct moat_conf_upstream *conf;
	struct moat_srv_state **srv;        /* one per conf server */
	atomic_uint *group_active;          /* shared by bindings of the same upstream name */
	atomic_uint *group_retries;         /* retries in flight (retry budget) */
	atomic_uint *group_pending;         /* requests waiting for a free slot */
	struct moat_ustats *stats;          /* [nworkers], kept across reloads by name */
};

/* One route of one config generation: its counters, kept across reloads
 * by label ("host/path", host "*" when any). */
struct moat_route_rt {
	const char *label;
	struct moat_rstats *stats;          /* [nworkers] */
};

struct moat_srv_registry;

/* A registry for a process with `nworkers` workers (stats arrays). */
struct moat_srv_registry *moat_srv_registry_new(unsigned nworkers);
void moat_srv_registry_free(struct moat_srv_registry *r);

/* Binds every upstream of `c` to server states and every route to its
 * counters (created or found). Returns an array of c->nupstreams and sets
 * *routes to one of c->nroutes, or NULL on allocation failure. Control
 * thread. */
struct moat_upstream_rt *moat_srv_bind(struct moat_srv_registry *r, const struct moat_conf *c,
				       struct moat_route_rt **routes);

/* Drops a binding made by moat_srv_bind (any thread). */
void moat_srv_unbind(struct moat_srv_registry *r, struct moat_upstream_rt *u, size_t n,
		     struct moat_route_rt *routes, size_t nroutes);

/* The number of workers stats arrays are sized for. */
unsigned moat_srv_nworkers(const struct moat_srv_registry *r);

/* Reads the server's current address (seqlock); returns its length. */
socklen_t moat_srv_addr(struct moat_srv_state *s, struct sockaddr_storage *out);

/* Resolver: stores a new address. */
void moat_srv_set_addr(struct moat_srv_state *s, const struct sockaddr *sa, socklen_t len);

#endif
