/*
 * limits.h - every default limit and timeout of moat, in one place.
 *
 * Each runtime limit and timeout is a configuration key (docs/configuration.md);
 * the values here are what a key takes when the configuration leaves it out,
 * and the ranges the configuration loader accepts. Sizes are in bytes,
 * durations in milliseconds. Nothing here is HTTP-specific code: only numbers.
 */
#ifndef MOAT_CORE_LIMITS_H
#define MOAT_CORE_LIMITS_H

#define MOAT_KIB 1024ull
#define MOAT_MIB (1024ull * 1024ull)
#define MOAT_GIB (1024ull * 1024ull * 1024ull)

#define MOAT_SECOND_MS 1000ull
#define MOAT_MINUTE_MS (60ull * MOAT_SECOND_MS)
#define MOAT_HOUR_MS   (60ull * MOAT_MINUTE_MS)

/* ---- process ---------------------------------------------------------- */

/* workers: 0 = one worker thread per CPU ("auto"). */
#define MOAT_DEFAULT_WORKERS 0u
/* workers: the most worker threads one process may run. */
#define MOAT_MAX_WORKERS 1024u

/* ---- limits: what one client may send (config section "limits") -------- */

/* limits.request_line: longest request line, method + target + version; 414 past it. */
#define MOAT_DEFAULT_REQUEST_LINE_MAX (8 * MOAT_KIB)
#define MOAT_MIN_REQUEST_LINE_MAX     256ull
#define MOAT_MAX_REQUEST_LINE_MAX     MOAT_MIB

/* limits.header_size: whole request head (request line and every field); 431 past it.
 * Never below limits.request_line: set alone below it, it lowers request_line too. */
#define MOAT_DEFAULT_HEADER_SIZE_MAX (32 * MOAT_KIB)
#define MOAT_MIN_HEADER_SIZE_MAX     MOAT_KIB
#define MOAT_MAX_HEADER_SIZE_MAX     MOAT_MIB

/* limits.header_count: header fields in one request head; 431 past it. */
#define MOAT_DEFAULT_HEADER_COUNT_MAX 100u
#define MOAT_MIN_HEADER_COUNT_MAX     1u
#define MOAT_MAX_HEADER_COUNT_MAX     1000u

/* limits.body: request body bytes; 0 = unlimited; 413 past it. */
#define MOAT_DEFAULT_BODY_MAX 0ull

/* limits.connections: client connections one worker holds open at once;
 * new connections wait in the listen queue past it. */
#define MOAT_DEFAULT_CONNS_MAX 16384u
/* Concurrent streams of one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS):
 * nginx's and HAProxy's default 100; at most 1000, each stream holding
 * buffers and maybe a backend connection. */
#define MOAT_DEFAULT_H2_STREAMS 100u
#define MOAT_MAX_H2_STREAMS 1000u
#define MOAT_MIN_CONNS_MAX     1u
#define MOAT_MAX_CONNS_MAX     1000000u

/* limits.connections_per_ip: open connections from one client address, all
 * workers together; 0 = off. Past it a new connection is closed at accept. */
#define MOAT_DEFAULT_CONNS_PER_IP 0u
/* limits.connections_total: open client connections of the process; 0 = off.
 * Past it accepting pauses (connections wait in the listen queue). */
#define MOAT_DEFAULT_CONNS_TOTAL 0u

/* limits.min_body_rate / min_send_rate: bytes per second a request body must
 * arrive at / a response must be read at, on average since it started, after
 * a grace of timeouts.client_body / client_send; 0 = off. Slow-body and
 * slow-read attacks are cut off by it (408 or close). */
#define MOAT_DEFAULT_MIN_BODY_RATE 512ull
#define MOAT_DEFAULT_MIN_SEND_RATE 512ull
#define MOAT_MAX_MIN_RATE          (1024ull * MOAT_MIB)

/* limits.rate_limit_keys: rate-limit keys held by the node (all policies);
 * idle keys are evicted first. ~24 bytes per key. */
#define MOAT_DEFAULT_RATE_LIMIT_KEYS 1000000ull
#define MOAT_MIN_RATE_LIMIT_KEYS     1024ull
#define MOAT_MAX_RATE_LIMIT_KEYS     100000000ull

/* ---- gatekeeping ------------------------------------------------------ */

/* rate_limits.*: "rate: COUNT/PERIOD", COUNT in 1..this; burst at most this. */
#define MOAT_MAX_RATE_COUNT 1000000000ull
#define MOAT_DEFAULT_RATE_STATUS 429u

/* bans: threshold offenses within window ban for duration, doubling on each
 * repeat up to max_duration. */
#define MOAT_DEFAULT_BAN_THRESHOLD    20u
#define MOAT_MAX_BAN_THRESHOLD        1000000u
#define MOAT_DEFAULT_BAN_WINDOW_MS    MOAT_MINUTE_MS
#define MOAT_DEFAULT_BAN_DURATION_MS  (10 * MOAT_MINUTE_MS)
#define MOAT_DEFAULT_BAN_MAX_MS       (24 * MOAT_HOUR_MS)
#define MOAT_MAX_BAN_MS               (365 * 24 * MOAT_HOUR_MS)
/* Addresses the ban table tracks (offenders and bans). */
#define MOAT_BAN_TABLE_ENTRIES        65536u

/* routes[].waf: CRS paranoia 1..4 (default 1), inbound anomaly threshold
 * (default 5), request body bytes inspected (default 128 KiB; the rest of a
 * longer body passes uninspected). */
#define MOAT_DEFAULT_WAF_PARANOIA   1u
#define MOAT_MAX_WAF_PARANOIA       4u
#define MOAT_DEFAULT_WAF_THRESHOLD  5u
#define MOAT_MAX_WAF_THRESHOLD      10000u
#define MOAT_DEFAULT_WAF_BODY_LIMIT (128 * MOAT_KIB)
#define MOAT_MAX_WAF_BODY_LIMIT     (16 * MOAT_MIB)

/* log.refusal_rate: refusal lines per second per worker in the error log;
 * the rest are counted and summarised; 0 = every one. */
#define MOAT_DEFAULT_REFUSAL_LOG_RATE 20u
#define MOAT_MAX_REFUSAL_LOG_RATE     1000000u

/* ---- timeouts (config section "timeouts"), milliseconds ---------------- */

/* timeouts.client_header: the whole request head must arrive within it; 408 past it. */
#define MOAT_DEFAULT_TIMEOUT_CLIENT_HEADER_MS (10 * MOAT_SECOND_MS)
/* timeouts.client_body: longest idle gap between two reads of a request body; 408. */
#define MOAT_DEFAULT_TIMEOUT_CLIENT_BODY_MS (60 * MOAT_SECOND_MS)
/* timeouts.keepalive: idle client connection between two requests; closed past it. */
#define MOAT_DEFAULT_TIMEOUT_KEEPALIVE_MS (75 * MOAT_SECOND_MS)
/* timeouts.client_send: longest time a client may leave our writes unread; closed. */
#define MOAT_DEFAULT_TIMEOUT_CLIENT_SEND_MS (60 * MOAT_SECOND_MS)
/* timeouts.backend_connect: TCP connect to a backend server; 502/next server past it. */
#define MOAT_DEFAULT_TIMEOUT_BACKEND_CONNECT_MS (5 * MOAT_SECOND_MS)
/* timeouts.backend_first_byte: request sent -> response head complete; 504 past it. */
#define MOAT_DEFAULT_TIMEOUT_BACKEND_FIRST_BYTE_MS (60 * MOAT_SECOND_MS)
/* timeouts.backend_idle: idle gap while streaming to or from a backend; 504/abort. */
#define MOAT_DEFAULT_TIMEOUT_BACKEND_IDLE_MS (60 * MOAT_SECOND_MS)
/* timeouts.drain: how long SIGTERM or a reload waits for requests in flight. */
#define MOAT_DEFAULT_TIMEOUT_DRAIN_MS (30 * MOAT_SECOND_MS)
/* Every timeout is > 0 and at most this (one day). */
#define MOAT_MAX_TIMEOUT_MS (24 * MOAT_HOUR_MS)

/* ---- listeners -------------------------------------------------------- */

/* listeners[].backlog: listen(2) queue length (the kernel may cap it at somaxconn). */
#define MOAT_DEFAULT_BACKLOG 511u
#define MOAT_MIN_BACKLOG     1u
#define MOAT_MAX_BACKLOG     65535u

/* ---- upstreams -------------------------------------------------------- */

/* upstreams.*.servers[].weight: share of requests relative to the other servers. */
#define MOAT_DEFAULT_SERVER_WEIGHT 1u
#define MOAT_MIN_SERVER_WEIGHT     1u
#define MOAT_MAX_SERVER_WEIGHT     1000u

/* upstreams.*.keepalive: idle pooled connections per worker per server; 0 = no pooling. */
#define MOAT_DEFAULT_UPSTREAM_KEEPALIVE 32u
#define MOAT_MAX_UPSTREAM_KEEPALIVE     10000u

/* upstreams.*.keepalive_timeout: how long an idle pooled connection is kept. */
#define MOAT_DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_MS (60 * MOAT_SECOND_MS)

/* upstreams.*.servers[].max_connections: requests in flight to one server,
 * all workers together; 0 = unlimited. Past it the server is skipped. */
#define MOAT_DEFAULT_SERVER_MAX_CONNECTIONS 0u
#define MOAT_MAX_SERVER_MAX_CONNECTIONS     1000000u

/* upstreams.*.sticky.ttl: lifetime of the sticky cookie; 0 = a session cookie. */
#define MOAT_DEFAULT_STICKY_TTL_MS 0ull
#define MOAT_MAX_STICKY_TTL_MS     (365 * 24 * MOAT_HOUR_MS)

/* upstreams.*.health_check: active checks (off unless the block is present).
 * status: the range of statuses counted as healthy, within 100..599. */
#define MOAT_DEFAULT_HEALTH_STATUS_MIN 200u
#define MOAT_DEFAULT_HEALTH_STATUS_MAX 399u
#define MOAT_MIN_HEALTH_STATUS         100u
#define MOAT_MAX_HEALTH_STATUS         599u
/* health_check.interval: time between two probes of one server (> 0, at most MOAT_MAX_TIMEOUT_MS). */
#define MOAT_DEFAULT_HEALTH_INTERVAL_MS (5 * MOAT_SECOND_MS)
/* health_check.timeout: a probe gets no answer within it: failed. At most the interval. */
#define MOAT_DEFAULT_HEALTH_TIMEOUT_MS (2 * MOAT_SECOND_MS)
/* health_check.rise / fall: consecutive successes to mark a server up, failures to mark it down. */
#define MOAT_DEFAULT_HEALTH_RISE 2u
#define MOAT_DEFAULT_HEALTH_FALL 3u
#define MOAT_MIN_HEALTH_RISE_FALL 1u
#define MOAT_MAX_HEALTH_RISE_FALL 100u
/* health_check.body: longest substring looked for in a probe's body. */
#define MOAT_MAX_HEALTH_BODY_MATCH 1024u

/* upstreams.*.outlier: passive ejection after consecutive failures (0 = only
 * connect failures eject); each repeated ejection doubles the time, from
 * base_ejection up to max_ejection; never more than max_ejected_percent of a group. */
#define MOAT_DEFAULT_OUTLIER_CONSECUTIVE_FAILURES 5u
#define MOAT_MAX_OUTLIER_CONSECUTIVE_FAILURES     1000u
#define MOAT_DEFAULT_OUTLIER_ON_5XX               1
#define MOAT_DEFAULT_OUTLIER_BASE_EJECTION_MS     (10 * MOAT_SECOND_MS)
#define MOAT_DEFAULT_OUTLIER_MAX_EJECTION_MS      (300 * MOAT_SECOND_MS)
#define MOAT_DEFAULT_OUTLIER_MAX_EJECTED_PERCENT  50u
#define MOAT_MAX_PERCENT                          100u

/* upstreams.*.retry: retries after the first try (0 = none); retries in flight
 * at most budget_percent of the requests in flight, but always budget_min. */
#define MOAT_DEFAULT_RETRY_ATTEMPTS       2u
#define MOAT_MAX_RETRY_ATTEMPTS           10u
#define MOAT_DEFAULT_RETRY_BUDGET_PERCENT 20u
#define MOAT_DEFAULT_RETRY_BUDGET_MIN     3u
#define MOAT_MAX_RETRY_BUDGET_MIN         1000u
/* retry.per_try_timeout: 0 = timeouts.backend_first_byte; retry.timeout: across tries, 0 = none. */
#define MOAT_DEFAULT_RETRY_PER_TRY_TIMEOUT_MS 0ull
#define MOAT_DEFAULT_RETRY_TIMEOUT_MS         0ull

/* upstreams.*.slow_start: a server that comes back ramps up its weight over it; 0 = off. */
#define MOAT_DEFAULT_UPSTREAM_SLOW_START_MS 0ull

/* upstreams.*.max_connections: requests in flight to the whole group; 0 = unlimited. */
#define MOAT_DEFAULT_UPSTREAM_MAX_CONNECTIONS 0u
#define MOAT_MAX_UPSTREAM_MAX_CONNECTIONS     1000000u

/* upstreams.*.max_pending: requests that may wait for a free slot (per group);
 * 0 = answer 503 at once. A request waits at most pending_timeout, then 503. */
#define MOAT_DEFAULT_UPSTREAM_MAX_PENDING 0u
#define MOAT_MAX_UPSTREAM_MAX_PENDING     100000u
#define MOAT_DEFAULT_UPSTREAM_PENDING_TIMEOUT_MS MOAT_SECOND_MS

/* upstreams.*.resolve_interval: how often server host names are looked up again; 0 = never. */
#define MOAT_DEFAULT_UPSTREAM_RESOLVE_INTERVAL_MS (30 * MOAT_SECOND_MS)

/* ---- the configuration file itself (not configurable) ----------------- */

/* Largest configuration file read. */
#define MOAT_CONF_MAX_FILE (16 * MOAT_MIB)
/* Most values (YAML nodes, counted each time an alias is followed) one load
 * walks: bounds the work an alias-heavy document can cause. */
#define MOAT_CONF_MAX_NODES 200000u
/* Most errors one load reports; it stops there. */
#define MOAT_CONF_MAX_ERRORS 100u
/* Most entries of each list. */
#define MOAT_CONF_MAX_LISTENERS   1024u  /* listeners */
#define MOAT_CONF_MAX_UPSTREAMS   10000u /* upstreams */
#define MOAT_CONF_MAX_SERVERS     1024u  /* servers of one upstream */
#define MOAT_CONF_MAX_ROUTES      10000u /* routes */
#define MOAT_CONF_MAX_CIDRS       4096u  /* proxy.trusted_proxies, inline allow/deny lists */
#define MOAT_CONF_MAX_CIDR_FILE   1000000u /* blocks in one allow_file / deny_file */
#define MOAT_CONF_MAX_RATE_LIMITS 1000u  /* rate_limits, and rate limits of one route */
#define MOAT_CONF_MAX_HEADERS     256u   /* proxy.hide_headers, routes[].strip_headers */

#endif
