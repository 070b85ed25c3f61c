/*
 * conf.h - moat's configuration: YAML (or the one-line proxy mode) into an
 * immutable, validated snapshot.
 *
 * The control thread builds a snapshot (moat_conf_load_file or
 * moat_conf_from_proxy_args); once published it is never modified, and is
 * shared read-only by every worker. A snapshot owns all its strings and
 * arrays; it is freed by moat_conf_free when the last reference goes
 * (reference counting lives in core/, not here).
 *
 * Errors: every problem found is reported as "file:line:column: message"
 * (one per line) into the caller's error buffer; loading continues after an
 * error where it can so that all errors are reported at once.
 */
#ifndef MOAT_CONF_CONF_H
#define MOAT_CONF_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* Where a value came from in the config file (1-based; 0 when built from
 * the command line). */
struct moat_conf_pos {
	unsigned line;
	unsigned col;
};

struct moat_cidr_trie; /* core/cidr.h */

/* A resolved socket address plus its text as written. */
struct moat_conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *text;              /* as written, e.g. "127.0.0.1:8080" */
	struct moat_conf_pos pos;
};

/* One CIDR block (IPv4 or IPv6). */
struct moat_conf_cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network order, masked */
	unsigned prefix;         /* prefix length in bits */
};

/* How moat talks to a server, from its URL's scheme. */
enum moat_conf_scheme {
	MOAT_SCHEME_HTTP = 0,       /* http://  HTTP/1.1 over TCP (default port 80) */
	MOAT_SCHEME_HTTPS,          /* https:// HTTP/1.1 over TLS (default port 443) */
	MOAT_SCHEME_H2C,            /* h2c://   HTTP/2 prior knowledge over TCP (default port 80); gRPC */
	MOAT_SCHEME_H2,             /* h2://    HTTP/2 over TLS, ALPN h2 (default port 443); gRPC */
};

/* TLS towards the servers of an upstream ("tls:" in an upstream); used by
 * https:// and h2:// servers. */
struct moat_conf_upstream_tls {
	int verify;                 /* verify the server's chain and name; default 1 */
	char *ca;                   /* CA file (PEM); NULL = the system's store */
	char *sni;                  /* name sent and verified; NULL = the server's host as
				     * written (no SNI for an IP literal; the IP is verified) */
	char *cert, *key;           /* client certificate for the backend (PEM); NULL = none */
	struct moat_conf_pos pos;
};

struct moat_conf_server {
	struct moat_conf_addr addr; /* numeric address after resolution; addr.text is
				     * "host:port" as written, without "http://", with
				     * ":80" added when a URL left the port out */
	char *host;                 /* the host part as written (name or literal; an
				     * IPv6 literal without its brackets) */
	unsigned weight;            /* default 1; 1..1000 */
	int backup;                 /* backup: true -- used only when no primary server is available */
	int drain;                  /* drain: true -- no new requests; in-flight ones finish */
	unsigned max_connections;   /* concurrent requests to this server (all workers); 0 = unlimited */
	int is_name;                /* host is a DNS name (re-resolved every resolve_interval) */
	enum moat_conf_scheme scheme; /* from the URL: http:// (default), https://, h2c://, h2:// */
};

/* Load-balancing algorithm of an upstream. */
enum moat_lb_algo {
	MOAT_LB_ROUND_ROBIN = 0,    /* "round_robin": smooth weighted (default) */
	MOAT_LB_LEAST_CONN,         /* "least_connections": weighted, fewest requests in flight */
	MOAT_LB_RANDOM_TWO,         /* "random_two": power of two choices over requests in flight */
	MOAT_LB_EWMA,               /* "ewma": peak-EWMA latency x load */
	MOAT_LB_HASH,               /* "hash": consistent (Maglev) on hash.key */
};

/* What the hash algorithm hashes. */
enum moat_lb_hash_key {
	MOAT_HASH_CLIENT_IP = 0,    /* "client_ip" (default) */
	MOAT_HASH_HEADER,           /* "header": the value of hash.name */
	MOAT_HASH_COOKIE,           /* "cookie": the value of cookie hash.name */
	MOAT_HASH_URI,              /* "uri": the request target (path and query) */
};

/* Active health checks, sent by one thread for all workers. */
struct moat_conf_health {
	int enabled;                /* set when the upstream has a health_check block */
	char *method;               /* default "GET" */
	char *path;                 /* default "/" ; must start with '/' */
	char *host;                 /* Host header; default: the server's "host:port" */
	unsigned status_min;        /* expected status range, default 200..399 ("200-399" or a single "200") */
	unsigned status_max;
	char *body;                 /* optional substring the body must contain (first 64 KiB) */
	uint64_t interval_ms;       /* default 5s */
	uint64_t timeout_ms;        /* default 2s; must be <= interval */
	unsigned rise;              /* successes to go up, default 2 */
	unsigned fall;              /* failures to go down, default 3 */
};

/* Passive health: outlier ejection. */
struct moat_conf_outlier {
	unsigned consecutive_failures; /* default 5; 0 disables (connect failures still eject) */
	int on_5xx;                 /* count 5xx answers as failures; default true */
	uint64_t base_ejection_ms;  /* default 10s; doubles on each repeated ejection */
	uint64_t max_ejection_ms;   /* default 300s */
	unsigned max_ejected_percent; /* default 50: never eject more than this share of the group */
};

/* Retries of a request that failed before any response byte reached the client. */
struct moat_conf_retry {
	unsigned attempts;          /* retries after the first try; default 2; 0 disables */
	unsigned budget_percent;    /* retries in flight at most this share of requests in flight; default 20 */
	unsigned budget_min;        /* ... but always allow this many concurrent retries; default 3 */
	uint64_t per_try_timeout_ms; /* 0 = timeouts.backend_first_byte */
	uint64_t timeout_ms;        /* overall, across tries; 0 = none */
};

struct moat_conf_upstream {
	char *name;
	struct moat_conf_pos pos;
	struct moat_conf_server *servers;
	size_t nservers;
	unsigned keepalive;         /* idle pooled connections per worker per server; default 32; 0 = no pooling */
	uint64_t keepalive_timeout_ms; /* idle pooled connection lifetime; default 60s */
	unsigned used;              /* set by validation: referenced by a route */

	enum moat_lb_algo algorithm;   /* "algorithm:", default round_robin */
	enum moat_lb_hash_key hash_key; /* "hash: {key: ..., name: ...}" */
	char *hash_name;            /* header or cookie name (lowercase for headers) */
	char *sticky_cookie;        /* "sticky: {cookie: NAME, ttl: 1h}": NULL = off */
	uint64_t sticky_ttl_ms;     /* 0 = session cookie */
	struct moat_conf_health health;
	struct moat_conf_outlier outlier;
	struct moat_conf_retry retry;
	uint64_t slow_start_ms;     /* ramp after a server comes back; 0 = off (default) */
	unsigned max_connections;   /* concurrent requests to the group; 0 = unlimited */
	unsigned max_pending;       /* requests that may wait for a free slot; default 0 = 503 at once */
	uint64_t pending_timeout_ms; /* longest wait for a slot; default 1s */
	uint64_t resolve_interval_ms; /* re-resolve server names; default 30s; 0 = never */
	struct moat_conf_upstream_tls tls; /* for https:// and h2:// servers */
};

/* An address allow/deny list (listeners and routes). The most specific
 * (longest) matching block decides; an address no block matches is allowed
 * unless the list has allow blocks, then it is denied. */
struct moat_conf_acl {
	struct moat_conf_cidr *allow, *deny; /* as written in the config */
	size_t nallow, ndeny;
	char *allow_file, *deny_file;        /* one CIDR per line, read at load (and at every reload) */
	size_t nfile_allow, nfile_deny;      /* blocks read from the files */
	struct moat_cidr_trie *trie;         /* every block: value 1 allow, 0 deny; NULL when the list is empty */
	int default_deny;                    /* some allow block exists: unmatched addresses are denied */
};

/* The WAF of a route (ModSecurity v3 with the OWASP CRS). */
struct moat_conf_waf {
	int enabled;
	int detect_only;            /* mode: detect -- log, never block */
	unsigned paranoia;          /* 1..4, default 1 */
	unsigned anomaly_threshold; /* default 5 */
	uint64_t body_limit;        /* request body bytes inspected; default 128 KiB */
	char *crs;                  /* CRS directory; NULL = Debian's */
};

/* What a rate limit is keyed by: one or more parts, in order. */
enum moat_rl_part_kind {
	MOAT_RL_CLIENT_IP = 0,      /* "client_ip" */
	MOAT_RL_ROUTE,              /* "route" */
	MOAT_RL_HEADER,             /* "header:NAME" (lowercased name) */
	MOAT_RL_COOKIE,             /* "cookie:NAME" */
};

struct moat_conf_rl_part {
	enum moat_rl_part_kind kind;
	char *name;                 /* header or cookie name; NULL otherwise */
};

/* One named rate-limit policy ("rate_limits:" map). */
struct moat_conf_ratelimit {
	char *name;
	struct moat_conf_pos pos;
	struct moat_conf_rl_part *key;
	size_t nkey;
	uint64_t count;             /* "rate: COUNT/PERIOD" */
	uint64_t period_ms;         /* 1000, 60000 or 3600000 */
	uint64_t burst;             /* default 0 */
	int delay;                  /* delay_after given */
	uint64_t delay_after;
	unsigned status;            /* 429 (default) or 503 */
	unsigned used;              /* set by validation: named by a route */
};

/* Offense kinds counted towards automatic bans ("bans.on"). */
enum moat_ban_offense {
	MOAT_OFFENSE_MALFORMED = 0, /* "malformed": a refused request head or framing */
	MOAT_OFFENSE_RATE_LIMIT,    /* "rate_limit" */
	MOAT_OFFENSE_WAF,           /* "waf" */
	MOAT_OFFENSE_ACL,           /* "acl": refused by a route's deny list */
	MOAT_OFFENSE_4XX,           /* "4xx": any 4xx answer (moat's or the backend's) */
	MOAT_OFFENSE_COUNT,
};

/* A route's cache ("cache:" in a route; `cache: true` takes every
 * default). Needs the top-level store (struct moat_conf_cache). */
#define MOAT_CONF_CACHE_KEY_HOST  1u  /* the Host (lowercased) is part of the key */
#define MOAT_CONF_CACHE_KEY_PATH  2u  /* the path */
#define MOAT_CONF_CACHE_KEY_QUERY 4u  /* the query (all of it, or key_query's parameters only) */
struct moat_conf_route_cache {
	int on;
	struct moat_conf_pos pos;
	unsigned key;               /* MOAT_CONF_CACHE_KEY_* bits; default all three */
	char **key_query;           /* "key: {query: [a, b]}": only these parameters, sorted; NULL: whole query */
	size_t nkey_query;
	char **key_headers;         /* request fields whose values join the key (lowercase names) */
	size_t nkey_headers;
	int allow_set_cookie;       /* store responses with Set-Cookie (the field is not stored); default 0 */
	int client_no_cache;        /* honour a request's no-cache / max-age / min-fresh; default 1 */
	uint64_t default_ttl_ms;    /* lifetime of a heuristically cacheable response without
				     * Last-Modified; default 0 (not stored) */
	uint64_t heuristic_max_ms;  /* cap of a heuristic lifetime; default 1d */
	unsigned heuristic_percent; /* of Date - Last-Modified; default 10 */
	uint64_t stale_grace_ms;    /* serve stale this long past expiry when the backend fails,
				     * even without stale-if-error (not with must-revalidate); default 0 */
	int coalesce;               /* concurrent misses share one backend request; default 1 */
	uint64_t coalesce_wait_ms;  /* the most a request waits for another's fetch; default 10s */
};

/* A route's on-the-fly compression ("compress:" in a route; `compress:
 * true` takes every default). */
#define MOAT_CONF_CODING_GZIP 2u    /* same bits as MOAT_AE_BIT(MOAT_AE_GZIP) in http/accept_encoding.h */
#define MOAT_CONF_CODING_BR   4u
#define MOAT_CONF_CODING_ZSTD 8u
struct moat_conf_route_compress {
	int on;
	struct moat_conf_pos pos;
	char **types;               /* media types, lowercase ("text/html", "text/" + "*" for a whole type); NULL: the built-in list */
	size_t ntypes;
	uint64_t min_size;          /* bytes; default 256 */
	unsigned codings;           /* MOAT_CONF_CODING_* offered; default all three */
	int gzip_level, br_level, zstd_level; /* 0: the codec's default (5, 4, 3) */
};

struct moat_conf_route {
	struct moat_conf_pos pos;
	char *host;                 /* NULL: any host. Lowercase. "*.example.com" stored as ".example.com" with host_wildcard set */
	int host_wildcard;          /* 1 when host was "*.suffix": matches any name ending in ".suffix" (not "suffix" itself) */
	char *path_prefix;          /* NULL or "/": any path */
	size_t path_prefix_len;
	size_t upstream;            /* index into conf->upstreams */
	char **strip_headers;       /* extra response headers to remove (lowercase) */
	size_t nstrip_headers;
	struct moat_conf_acl acl;   /* allow/deny by client address: 403 */
	int has_body_max;           /* "body:" given: overrides limits.body */
	uint64_t body_max;          /* 0 = unlimited */
	char **rate_limit_names;    /* "rate_limit:" as written (a name or a list) */
	size_t *rate_limits;        /* ... resolved: indexes into conf->rate_limits, in order */
	size_t nrate_limits;
	struct moat_conf_pos rate_limit_pos;
	struct moat_conf_waf waf;
	int normalize_path;         /* forward the normalised path (the one routed on) instead of the raw one */
	struct moat_conf_route_cache cache;
	struct moat_conf_route_compress compress;
};

/* One certificate of a TLS listener: a chain and its key, PEM. */
struct moat_conf_tls_cert {
	char *cert;                 /* PEM: the leaf first, then intermediates */
	char *key;                  /* PEM private key (RSA or EC) */
	char *ocsp;                 /* DER OCSP response file to staple; NULL = none */
	struct moat_conf_pos pos;
};

enum moat_conf_tls_verify {
	MOAT_TLS_VERIFY_OFF = 0,    /* no client certificate asked */
	MOAT_TLS_VERIFY_OPTIONAL,   /* asked; a client without one is let in; a bad one is refused */
	MOAT_TLS_VERIFY_REQUIRED,   /* asked and required */
};

/* TLS of a listener ("tls:" in a listener). The certificate for a
 * connection is chosen by SNI among every certificate's names (subjectAltName
 * DNS entries, exact or "*.suffix"; CN when there is no SAN); the first
 * certificate is the default. An RSA and an ECDSA certificate may carry the
 * same names: the client gets ECDSA when it supports it. */
struct moat_conf_tls {
	int on;                     /* the listener speaks TLS */
	struct moat_conf_tls_cert *certs;
	size_t ncerts;
	int min_version;            /* 0x0303 (TLS 1.2, default) or 0x0304 (1.3) */
	char *ciphers;              /* TLS 1.2 list (OpenSSL syntax); NULL = ECDHE with AEAD only */
	char *ciphersuites;         /* TLS 1.3 list; NULL = OpenSSL's (all AEAD) */
	char *groups;               /* NULL = "X25519:P-256" */
	int h2;                     /* offer h2 in ALPN; default 1 */
	int session_tickets;        /* default 1 (keys rotated hourly, shared by every worker) */
	char *client_ca;            /* mTLS: CA file (PEM) of client certificates; NULL = off */
	enum moat_conf_tls_verify client_verify; /* default REQUIRED when client_ca is set */
	char *client_header;        /* request field carrying the verified subject to the
				     * backend; default "X-Client-Cert-Subject" (a client's own
				     * field of that name is always removed) */
	uint64_t hsts_max_age;      /* Strict-Transport-Security max-age in seconds; 0 = none (default) */
	int hsts_subdomains, hsts_preload;
	struct moat_conf_pos pos;
};

struct moat_conf_listener {
	struct moat_conf_addr addr;
	unsigned backlog;           /* default 511 */
	struct moat_conf_acl acl;   /* allow/deny by peer address: closed at accept */
	int proxy_protocol;         /* connections start with a PROXY v1/v2 header (trusted peers only) */
	struct moat_conf_tls tls;   /* tls.on: a TLS listener */
	int h2c;                    /* cleartext listener: also HTTP/2 with prior knowledge
				     * (told apart by the connection preface); default 1;
				     * always 0 on a TLS listener (h2 comes from ALPN there:
				     * tls.h2), where the key is refused */
	unsigned redirect_https;    /* cleartext listener: answer every request with 308 to
				     * https:// on this port (443: no port in the URL); 0 = off */
};

enum moat_conf_log_format {
	MOAT_LOG_FMT_JSON = 0,
	MOAT_LOG_FMT_COMBINED,
	MOAT_LOG_FMT_COMMON,
};

enum moat_conf_log_level {
	MOAT_LOG_ERROR = 0,
	MOAT_LOG_WARN,
	MOAT_LOG_INFO,
	MOAT_LOG_DEBUG,
};

struct moat_conf_limits {
	size_t request_line_max;     /* default 8 KiB */
	size_t header_size_max;      /* default 32 KiB */
	size_t header_count_max;     /* default 100 */
	uint64_t body_max;           /* default 0 = unlimited (413 past it) */
	unsigned conns_max;          /* per worker client connections; default 16384 */
	unsigned h2_streams;         /* concurrent streams of one HTTP/2 connection; default 100 */
	unsigned conns_per_ip;       /* open connections from one address, all workers; 0 = off */
	unsigned conns_total;        /* open connections of the process; 0 = off */
	uint64_t min_body_rate;      /* bytes/s a request body averages; 0 = off; default 512 */
	uint64_t min_send_rate;      /* bytes/s a client reads a response at; 0 = off; default 512 */
	size_t rate_limit_keys;      /* rate-limit keys held; default 1M */
};

/* Where the client address comes from behind a trusted proxy. */
enum moat_client_ip_from {
	MOAT_CLIENT_IP_XFF = 0,       /* "x-forwarded-for" (default) */
	MOAT_CLIENT_IP_FORWARDED,     /* "forwarded" (RFC 7239 for=) */
	MOAT_CLIENT_IP_NONE,          /* "none": always the peer */
};

/* Automatic bans ("bans:"; on when the block is present). */
struct moat_conf_bans {
	int enabled;
	unsigned threshold;           /* offenses within window; default 20 */
	uint64_t window_ms;           /* default 1m */
	uint64_t duration_ms;         /* first ban; default 10m; doubles on each repeat */
	uint64_t max_duration_ms;     /* default 24h */
	unsigned on;                  /* bit per enum moat_ban_offense; default malformed, rate_limit, waf */
	struct moat_conf_cidr *exempt;
	size_t nexempt;
};

struct moat_conf_timeouts {       /* all in milliseconds */
	uint64_t client_header;       /* default 10s: whole head must arrive */
	uint64_t client_body;         /* default 60s: idle between body reads */
	uint64_t keepalive;           /* default 75s: idle between requests */
	uint64_t client_send;         /* default 60s: idle while the client does not read */
	uint64_t backend_connect;     /* default 5s */
	uint64_t backend_first_byte;  /* default 60s: request sent -> response head */
	uint64_t backend_idle;        /* default 60s: idle while streaming from/to backend */
	uint64_t drain;               /* default 30s: SIGTERM / reload drain bound */
};

struct moat_conf {
	char *file;                   /* path loaded, or NULL for the one-line mode */
	unsigned workers;             /* 0 = one per CPU */
	enum moat_conf_log_level log_level;   /* default info */
	char *error_log;              /* path, or NULL for stderr */
	char *access_log;             /* path, "stdout", or NULL for off; default stdout */
	enum moat_conf_log_format access_format; /* default json */

	struct moat_conf_limits limits;
	struct moat_conf_timeouts timeouts;

	struct moat_conf_listener *listeners;
	size_t nlisteners;
	struct moat_conf_upstream *upstreams;
	size_t nupstreams;
	struct moat_conf_route *routes;
	size_t nroutes;

	struct moat_conf_cidr *trusted_proxies; /* peers whose X-Forwarded-For / Forwarded are appended to */
	size_t ntrusted_proxies;
	char **hide_headers;          /* response headers removed (lowercase); default "server", "x-powered-by" */
	size_t nhide_headers;
	int preserve_host;            /* default 1: forward the client's Host */
	enum moat_client_ip_from client_ip; /* proxy.client_ip */
	struct moat_cidr_trie *trusted_trie; /* trusted_proxies as a trie (value 1); NULL when empty */

	struct moat_conf_ratelimit *rate_limits; /* "rate_limits:", sorted by name */
	size_t nrate_limits;
	struct moat_conf_bans bans;
	unsigned refusal_log_rate;    /* log.refusal_rate: refusal lines per second per worker; 0 = all */

	/* "cache:" -- the response store shared by every route with a cache
	 * (on when the block is present, or with --cache). */
	struct moat_conf_cache {
		int on;
		struct moat_conf_pos pos;
		uint64_t memory;          /* bytes of objects held in memory; default 256 MiB */
		char *disk;               /* directory of the disk store, NULL: memory only */
		uint64_t disk_size;       /* bytes on disk; default 1 GiB */
		uint64_t max_object;      /* larger responses are streamed, not stored; default 16 MiB */
		struct moat_conf_cidr *purge_from; /* peers allowed the PURGE method; default loopback */
		size_t npurge_from;
	} cache;

	/* "admin:" -- the admin listener (JSON API, /metrics, dashboard). */
	struct moat_conf_admin {
		int enabled;              /* set when an admin block (or --admin) is given */
		struct moat_conf_addr addr; /* "127.0.0.1:9901", "[::1]:9901"; unused for a unix socket */
		char *unix_path;          /* "unix:/run/moat/admin.sock" -> "/run/moat/admin.sock", else NULL */
		char *token;              /* optional bearer token; NULL = none */
		struct moat_conf_cidr *allow; /* peers allowed besides loopback; default none */
		size_t nallow;
	} admin;

	/* "user:" / "group:" -- privileges dropped to after binding; NULL = keep. */
	char *user;
	char *group;
	/* "pid_file:" -- written at start, removed at exit; NULL = none. */
	char *pid_file;
};

/* The error buffer: messages are appended, one per line, each ending in
 * '\n'. Zero it before its first use; the loaders only append, so one
 * buffer may collect the errors of several calls. A loader given NULL
 * instead of a buffer still fails the same way, silently. */
struct moat_conf_errors {
	char *buf;      /* NUL-terminated; owned by the caller, freed with moat_conf_errors_free */
	size_t len;
	unsigned count;
};

/* Frees the buffer's text and zeroes it (ready for reuse). */
void moat_conf_errors_free(struct moat_conf_errors *e);

/*
 * Loads, validates and resolves the YAML file at `path`.
 * Returns a new snapshot (owned by the caller) or NULL with `err` filled
 * ("path:line:col: message" per error). Unknown keys, wrong types, bad
 * durations/sizes/addresses, unknown upstream names, duplicate names, no
 * listener, no route: all errors. A file that cannot be read gives the one
 * line "path: cannot open: <strerror>"; one over MOAT_CONF_MAX_FILE is
 * refused. Defaults and ranges come from core/limits.h. Control thread only
 * (may block on DNS).
 */
struct moat_conf *moat_conf_load_file(const char *path, struct moat_conf_errors *err);

/* Same as moat_conf_load_file for an in-memory document; `name` is used in
 * messages. For tests and fuzzing. */
struct moat_conf *moat_conf_load_buffer(const char *name, const char *data, size_t len,
					struct moat_conf_errors *err);

/*
 * Builds a snapshot for `moat proxy --from ADDR --to URL [--to URL ...]`:
 * one listener, one upstream "default" with the given servers (written as
 * in a file: host:port, http://, https://, h2c:// or h2:// URLs, the port
 * defaulting to the scheme's), one catch-all route, access log to stdout.
 * Returns NULL with `err` filled on a bad argument.
 */
struct moat_conf *moat_conf_from_proxy_args(const char *from, const char *const *to, size_t nto,
					    unsigned workers, struct moat_conf_errors *err);

/*
 * `moat proxy ... --cert PATH [--key PATH]`: makes the listener of `c` a
 * TLS listener with that one certificate (`key` NULL: the key is in the
 * cert file) and every other tls default (h2 offered by ALPN). The files
 * must be readable; their content is checked by the runtime. Returns 0, or
 * -1 with "--cert: ..." / "--key: ..." lines in `err` (a key without a
 * cert, an unreadable file). Control thread.
 */
int moat_conf_set_tls(struct moat_conf *c, const char *cert, const char *key, struct moat_conf_errors *err);

/*
 * Enables the admin listener of `c` on `listen` (`moat proxy ... --admin
 * ADDR`): "127.0.0.1:9901", "[::1]:9901" or "unix:/path". Returns 0, or -1
 * with one "--admin: ..." line in `err` (bad address, or the address of a
 * traffic listener). Control thread.
 */
int moat_conf_set_admin(struct moat_conf *c, const char *listen, struct moat_conf_errors *err);

/*
 * `moat proxy ... --cache SIZE`: turns the store of `c` on with `memory`
 * bytes of objects ("256MiB", at least 1 MiB; max_object lowered to it when
 * larger) and every route's cache on with its defaults. Returns 0, or -1
 * with one "--cache: ..." line in `err`. Control thread.
 */
int moat_conf_set_cache(struct moat_conf *c, const char *memory, struct moat_conf_errors *err);

/* `moat proxy ... --compress`: every route's compression on with its
 * defaults. Control thread. */
void moat_conf_set_compress(struct moat_conf *c);

/*
 * Writes the effective configuration `c` (every default filled in) to `out`
 * as YAML that moat_conf_load_buffer loads back into a snapshot equal to `c`
 * by moat_conf_equal (host names of servers are resolved again). Powers
 * `moat --print-config`. Returns 0, or -EIO when writing to `out` failed.
 * Does not take ownership of anything; any thread (`c` is immutable).
 */
int moat_conf_print(const struct moat_conf *c, FILE *out);

/*
 * Returns 1 when `a` and `b` configure the same thing, 0 otherwise: every
 * value, list and address is compared, in order; `file` and the positions
 * (struct moat_conf_pos) are not. A reload can use it to see that nothing
 * changed; the tests use it for the moat_conf_print round trip. Pure.
 */
int moat_conf_equal(const struct moat_conf *a, const struct moat_conf *b);

/*
 * Name resolution switch for the loaders, 0 by default. When nonzero, host
 * names in upstream servers (and --to) are never looked up: only numeric
 * addresses are accepted and a name is an error ("name resolution is
 * disabled"). The fuzz target sets it so that no input causes a DNS query;
 * with it 0 a name is resolved with getaddrinfo (first result), which for
 * "localhost" normally reads only /etc/hosts. Listen addresses are always
 * numeric. Set it before loading, from the control thread.
 */
extern int moat_conf_no_resolve;

/*
 * Warnings about a valid snapshot (`moat -t`): a route that can never
 * match because an earlier route matches every request it would (same or
 * broader host, and a path prefix that is a prefix of its own), an
 * upstream no route uses, a group without a user. Appends one line per
 * warning, "FILE:LINE:COL: warning: message", to `out` (may be NULL) and
 * returns how many. Pure (reads `c` only); any thread.
 */
int moat_conf_lint(const struct moat_conf *c, struct moat_conf_errors *out);

/*
 * Returns 1 when the address `sa` passes `acl` (allowed), 0 when it is
 * denied: the longest matching block decides; no match is allowed unless
 * the list has allow blocks. An empty list allows everything. Pure; any
 * thread.
 */
int moat_conf_acl_allows(const struct moat_conf_acl *acl, const struct sockaddr *sa);

/* Names of the ban offenses as written in "bans.on", by enum moat_ban_offense. */
extern const char *const moat_conf_offense_names[MOAT_OFFENSE_COUNT];

/* Frees a snapshot and everything it owns. NULL is allowed. */
void moat_conf_free(struct moat_conf *c);

/* Parses "10s", "250ms", "2m", "1h" (or a bare number of seconds) into
 * milliseconds; returns 0 on success, -1 on error. Pure. */
int moat_conf_parse_duration(const char *s, uint64_t *ms);

/* Parses "512", "64KiB", "1MiB", "2GiB", "10kB"/"10MB" (powers of 1000)
 * into bytes; returns 0 on success, -1 on error. Pure. */
int moat_conf_parse_size(const char *s, uint64_t *bytes);

/* Parses "10.0.0.0/8", "::1/128" or a bare address (full-length prefix);
 * returns 0 on success, -1 on error. Pure. */
int moat_conf_parse_cidr(const char *s, struct moat_conf_cidr *out);

/* Returns nonzero when the address `sa` lies within one of the blocks. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, as seen on a dual-stack socket)
 * is also matched against the IPv4 blocks. Other families never match. Pure. */
int moat_conf_cidr_match(const struct moat_conf_cidr *list, size_t n, const struct sockaddr *sa);

#endif
