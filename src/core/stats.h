/*
 * stats.h - counters and latency histograms, per worker, summed when read.
 *
 * Every counter has one writer: the worker that owns it. Increments are
 * relaxed load + store (a plain add, no lock prefix, no shared cache line);
 * the admin thread reads them with relaxed loads and sums across workers
 * at scrape time. Counters that outlive a config generation are keyed by
 * name (upstream name, route label) in the stats registry, so a reload
 * never resets them.
 */
#ifndef MOAT_CORE_STATS_H
#define MOAT_CORE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef atomic_uint_fast64_t moat_counter; /* the one typedef: a counter cell */

#define MOAT_STAT_ADD(c, n) \
	atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define MOAT_STAT_INC(c) MOAT_STAT_ADD(c, 1)
#define MOAT_STAT_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* Latency buckets, upper bounds in microseconds (Prometheus "le"); the
 * last bucket is +Inf. */
#define MOAT_HIST_BUCKETS 15
extern const uint64_t moat_hist_bounds_us[MOAT_HIST_BUCKETS - 1];

struct moat_hist {
	moat_counter bucket[MOAT_HIST_BUCKETS]; /* non-cumulative; summed when exposed */
	moat_counter count;
	moat_counter sum_us;
};

void moat_hist_observe(struct moat_hist *h, uint64_t us);

/* Refusals by reason: every answer moat gives instead of the backend's. */
enum moat_refusal {
	MOAT_REFUSE_BAD_REQUEST = 0,   /* 400 malformed head or body */
	MOAT_REFUSE_URI_TOO_LONG,      /* 414 */
	MOAT_REFUSE_HEADERS_TOO_LARGE, /* 431 */
	MOAT_REFUSE_NOT_IMPLEMENTED,   /* 501 */
	MOAT_REFUSE_VERSION,           /* 505 */
	MOAT_REFUSE_BODY_TOO_LARGE,    /* 413 */
	MOAT_REFUSE_METHOD,            /* 405 */
	MOAT_REFUSE_NO_ROUTE,          /* 404 */
	MOAT_REFUSE_TIMEOUT,           /* 408 */
	MOAT_REFUSE_NO_SERVER,         /* 503 nothing available */
	MOAT_REFUSE_OVERLOAD,          /* 503 every server at its limit */
	MOAT_REFUSE_BACKEND_ERROR,     /* 502 */
	MOAT_REFUSE_BACKEND_TIMEOUT,   /* 504 */
	MOAT_REFUSE_ACL,               /* listener deny list (closed) or route deny list (403) */
	MOAT_REFUSE_BANNED,            /* a banned client: closed at accept, or 403 */
	MOAT_REFUSE_CONN_LIMIT_IP,     /* limits.connections_per_ip: closed at accept */
	MOAT_REFUSE_RATE_LIMIT,        /* 429 (or the policy's status) */
	MOAT_REFUSE_WAF,               /* 403 from the WAF */
	MOAT_REFUSE_SLOW,              /* min_body_rate / min_send_rate: 408 or closed */
	MOAT_REFUSE_PROXY_PROTOCOL,    /* missing, bad or untrusted PROXY header: closed */
	MOAT_REFUSE_TLS,               /* TLS handshake failed (protocol, cipher, client certificate): closed */
	MOAT_REFUSE_H2,                /* HTTP/2 connection ended for a protocol error or a flood (GOAWAY) */
	MOAT_REFUSE_COUNT
};

/* The reason's label ("bad_request", "uri_too_long", ...). */
const char *moat_refusal_name(enum moat_refusal r);

/* The usual reason for a status moat answers itself. */
enum moat_refusal moat_refusal_of_status(int status);

/* Status classes: index 0 = 1xx ... 4 = 5xx. */
#define MOAT_STATUS_CLASSES 5

/* Per worker, whole-process figures. */
struct moat_wstats {
	moat_counter conns_accepted;
	moat_counter tls_handshakes;   /* completed, client side */
	moat_counter tls_resumed;      /* ... of which resumed a session */
	moat_counter h2_conns;         /* client connections that spoke HTTP/2 */
	moat_counter h2_streams;       /* requests that came over HTTP/2 */
	moat_counter conns_closed;
	moat_counter requests;
	moat_counter refusals[MOAT_REFUSE_COUNT];
	moat_counter bytes_in;
	moat_counter bytes_out;
	struct moat_hist latency;        /* client-facing: head parsed -> response complete */
};

/* Per worker, per upstream name (kept across reloads). */
struct moat_ustats {
	moat_counter requests[MOAT_STATUS_CLASSES];
	moat_counter retries;
	moat_counter connect_failures;
	moat_counter failures;           /* resets, timeouts, bad answers */
	moat_counter ejections;
	struct moat_hist latency;        /* backend: request sent -> response head */
};

/* Per worker, per route label (kept across reloads). */
struct moat_rstats {
	moat_counter requests[MOAT_STATUS_CLASSES];
	moat_counter bytes_in;
	moat_counter bytes_out;
	struct moat_hist latency;
};

#endif
