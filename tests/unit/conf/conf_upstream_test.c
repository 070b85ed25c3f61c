/*
 * conf_upstream_test.c - unit tests of src/conf/conf_upstream.c: what an
 * upstream holds besides its servers' addresses. Every key of balancing
 * (algorithm, hash, sticky), the servers' backup / drain / max_connections
 * and is_name, active health checks, outlier ejection, retries and
 * queueing: defaults, valid values and their limits, each error at its exact
 * file:line:column, the print round trip and moat_conf_equal.
 *
 * No test makes a DNS query: addresses are numeric, and the one name used,
 * "localhost", is answered from /etc/hosts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/limits.h"

#include "conf_test_util.h"

static const char balancing_yaml[] =
	"listeners: [{listen: \":80\"}]\n"                                        /* 1 */
	"routes: [{upstream: app}, {upstream: h}]\n"                              /* 2 */
	"upstreams:\n"                                                            /* 3 */
	"  app:\n"                                                                /* 4 */
	"    algorithm: least_connections\n"                                      /* 5 */
	"    sticky: { cookie: srv, ttl: 1h }\n"                                  /* 6 */
	"    servers:\n"                                                          /* 7 */
	"      - 127.0.0.1:3000\n"                                                /* 8 */
	"      - { address: 127.0.0.1:3001, weight: 2, backup: true, drain: false, max_connections: 100 }\n" /* 9 */
	"      - { address: localhost:3002, drain: yes }\n"                       /* 10 */
	"    health_check:\n"                                                     /* 11 */
	"      method: HEAD\n"                                                    /* 12 */
	"      path: /healthz?full=1\n"                                           /* 13 */
	"      host: app.internal\n"                                              /* 14 */
	"      status: 200-299\n"                                                 /* 15 */
	"      body: \"ok: \\\"yes\\\"\"\n"                                       /* 16 */
	"      interval: 10s\n"                                                   /* 17 */
	"      timeout: 1500ms\n"                                                 /* 18 */
	"      rise: 1\n"                                                         /* 19 */
	"      fall: 100\n"                                                       /* 20 */
	"    outlier: { consecutive_failures: 0, on_5xx: false, base_ejection: 1s, max_ejection: 1m, "
	"max_ejected_percent: 100 }\n"                                            /* 21 */
	"    retry: { attempts: 10, budget_percent: 0, budget_min: 1000, per_try_timeout: 2s, timeout: 10s }\n" /* 22 */
	"    slow_start: 30s\n"                                                   /* 23 */
	"    max_connections: 1000\n"                                             /* 24 */
	"    max_pending: 100\n"                                                  /* 25 */
	"    pending_timeout: 250ms\n"                                            /* 26 */
	"    resolve_interval: 0\n"                                               /* 27 */
	"  h:\n"                                                                  /* 28 */
	"    hash: { name: X-User, key: header }\n"                               /* 29 */
	"    algorithm: hash\n"                                                   /* 30 */
	"    servers: [\"[::1]:1\", 127.0.0.1:2]\n"                               /* 31 */
	"    health_check: {}\n"                                                  /* 32 */
	"    retry: { per_try_timeout: \"0\", timeout: 0s }\n"                    /* 33 */
	"  c:\n"                                                                  /* 34 */
	"    algorithm: hash\n"                                                   /* 35 */
	"    hash: { key: cookie, name: Sess-ID }\n"                              /* 36 */
	"    servers: [127.0.0.1:4]\n"                                            /* 37 */
	"    health_check:\n"                                                     /* 38 */
	"      status: 204\n"                                                     /* 39 */
	"  u: { algorithm: hash, hash: { key: uri }, servers: [127.0.0.1:5] }\n" /* 40 */
	"  r: { algorithm: random_two, servers: [127.0.0.1:6] }\n"                /* 41 */
	"  e: { algorithm: ewma, sticky: { cookie: e }, servers: [127.0.0.1:7] }\n"; /* 42 */

static void test_upstream_balancing(void **state)
{
	struct moat_conf *c = load_ok(balancing_yaml);
	const struct moat_conf_upstream *u;
	const struct moat_conf_health *h;

	(void)state;
	assert_int_equal(c->nupstreams, 6);
	u = &c->upstreams[0];
	assert_string_equal(u->name, "app");
	assert_int_equal(u->algorithm, MOAT_LB_LEAST_CONN);
	assert_int_equal(u->hash_key, MOAT_HASH_CLIENT_IP);
	assert_null(u->hash_name);
	assert_string_equal(u->sticky_cookie, "srv");
	assert_int_equal(u->sticky_ttl_ms, 3600000);
	assert_int_equal(u->nservers, 3);
	assert_int_equal(u->servers[0].weight, 1);
	assert_int_equal(u->servers[0].backup, 0);
	assert_int_equal(u->servers[0].drain, 0);
	assert_int_equal(u->servers[0].max_connections, 0);
	assert_int_equal(u->servers[0].is_name, 0);
	assert_int_equal(u->servers[1].weight, 2);
	assert_int_equal(u->servers[1].backup, 1);
	assert_int_equal(u->servers[1].drain, 0);
	assert_int_equal(u->servers[1].max_connections, 100);
	assert_int_equal(u->servers[1].is_name, 0);
	assert_int_equal(u->servers[2].drain, 1);
	assert_int_equal(u->servers[2].backup, 0);
	assert_int_equal(u->servers[2].is_name, 1);
	assert_string_equal(u->servers[2].host, "localhost");
	h = &u->health;
	assert_int_equal(h->enabled, 1);
	assert_string_equal(h->method, "HEAD");
	assert_string_equal(h->path, "/healthz?full=1");
	assert_string_equal(h->host, "app.internal");
	assert_int_equal(h->status_min, 200);
	assert_int_equal(h->status_max, 299);
	assert_string_equal(h->body, "ok: \"yes\"");
	assert_int_equal(h->interval_ms, 10000);
	assert_int_equal(h->timeout_ms, 1500);
	assert_int_equal(h->rise, 1);
	assert_int_equal(h->fall, 100);
	assert_int_equal(u->outlier.consecutive_failures, 0);
	assert_int_equal(u->outlier.on_5xx, 0);
	assert_int_equal(u->outlier.base_ejection_ms, 1000);
	assert_int_equal(u->outlier.max_ejection_ms, 60000);
	assert_int_equal(u->outlier.max_ejected_percent, 100);
	assert_int_equal(u->retry.attempts, 10);
	assert_int_equal(u->retry.budget_percent, 0);
	assert_int_equal(u->retry.budget_min, 1000);
	assert_int_equal(u->retry.per_try_timeout_ms, 2000);
	assert_int_equal(u->retry.timeout_ms, 10000);
	assert_int_equal(u->slow_start_ms, 30000);
	assert_int_equal(u->max_connections, 1000);
	assert_int_equal(u->max_pending, 100);
	assert_int_equal(u->pending_timeout_ms, 250);
	assert_int_equal(u->resolve_interval_ms, 0);

	u = &c->upstreams[1];
	assert_string_equal(u->name, "h");
	assert_int_equal(u->algorithm, MOAT_LB_HASH);
	assert_int_equal(u->hash_key, MOAT_HASH_HEADER);
	assert_string_equal(u->hash_name, "x-user"); /* header names in lowercase */
	assert_null(u->sticky_cookie);
	assert_int_equal(u->servers[0].is_name, 0);
	h = &u->health;
	assert_int_equal(h->enabled, 1); /* an empty block: every default */
	assert_string_equal(h->method, "GET");
	assert_string_equal(h->path, "/");
	assert_null(h->host);
	assert_null(h->body);
	assert_int_equal(h->status_min, MOAT_DEFAULT_HEALTH_STATUS_MIN);
	assert_int_equal(h->status_max, MOAT_DEFAULT_HEALTH_STATUS_MAX);
	assert_int_equal(h->interval_ms, MOAT_DEFAULT_HEALTH_INTERVAL_MS);
	assert_int_equal(h->timeout_ms, MOAT_DEFAULT_HEALTH_TIMEOUT_MS);
	assert_int_equal(h->rise, 2);
	assert_int_equal(h->fall, 3);
	assert_int_equal(u->retry.attempts, MOAT_DEFAULT_RETRY_ATTEMPTS);
	assert_int_equal(u->retry.per_try_timeout_ms, 0);
	assert_int_equal(u->retry.timeout_ms, 0);

	u = &c->upstreams[2];
	assert_int_equal(u->hash_key, MOAT_HASH_COOKIE);
	assert_string_equal(u->hash_name, "Sess-ID"); /* cookie names as written */
	assert_int_equal(u->health.status_min, 204);
	assert_int_equal(u->health.status_max, 204);
	u = &c->upstreams[3];
	assert_int_equal(u->algorithm, MOAT_LB_HASH);
	assert_int_equal(u->hash_key, MOAT_HASH_URI);
	assert_null(u->hash_name);
	assert_int_equal(c->upstreams[4].algorithm, MOAT_LB_RANDOM_TWO);
	u = &c->upstreams[5];
	assert_int_equal(u->algorithm, MOAT_LB_EWMA);
	assert_string_equal(u->sticky_cookie, "e");
	assert_int_equal(u->sticky_ttl_ms, 0); /* a session cookie */
	moat_conf_free(c);
}

static void assert_upstream_defaults(const struct moat_conf_upstream *u)
{
	size_t i;

	assert_int_equal(u->algorithm, MOAT_LB_ROUND_ROBIN);
	assert_int_equal(u->hash_key, MOAT_HASH_CLIENT_IP);
	assert_null(u->hash_name);
	assert_null(u->sticky_cookie);
	assert_int_equal(u->sticky_ttl_ms, 0);
	assert_int_equal(u->health.enabled, 0);
	assert_null(u->health.method);
	assert_null(u->health.path);
	assert_null(u->health.host);
	assert_null(u->health.body);
	assert_int_equal(u->health.status_min, 200);
	assert_int_equal(u->health.status_max, 399);
	assert_int_equal(u->health.interval_ms, 5000);
	assert_int_equal(u->health.timeout_ms, 2000);
	assert_int_equal(u->health.rise, 2);
	assert_int_equal(u->health.fall, 3);
	assert_int_equal(u->outlier.consecutive_failures, 5);
	assert_int_equal(u->outlier.on_5xx, 1);
	assert_int_equal(u->outlier.base_ejection_ms, 10000);
	assert_int_equal(u->outlier.max_ejection_ms, 300000);
	assert_int_equal(u->outlier.max_ejected_percent, 50);
	assert_int_equal(u->retry.attempts, 2);
	assert_int_equal(u->retry.budget_percent, 20);
	assert_int_equal(u->retry.budget_min, 3);
	assert_int_equal(u->retry.per_try_timeout_ms, 0);
	assert_int_equal(u->retry.timeout_ms, 0);
	assert_int_equal(u->slow_start_ms, 0);
	assert_int_equal(u->max_connections, 0);
	assert_int_equal(u->max_pending, 0);
	assert_int_equal(u->pending_timeout_ms, 1000);
	assert_int_equal(u->resolve_interval_ms, 30000);
	for (i = 0; i < u->nservers; i++) {
		assert_int_equal(u->servers[i].weight, 1);
		assert_int_equal(u->servers[i].backup, 0);
		assert_int_equal(u->servers[i].drain, 0);
		assert_int_equal(u->servers[i].max_connections, 0);
	}
}

static void test_upstream_defaults(void **state)
{
	static const char *const to[] = { "http://127.0.0.1:3000", "localhost:3001" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	c = load_ok(MINIMAL_TAIL);
	assert_upstream_defaults(&c->upstreams[0]);
	assert_int_equal(c->upstreams[0].servers[0].is_name, 0);
	moat_conf_free(c);

	/* the one-line mode takes the same defaults; is_name is set there too */
	c = moat_conf_from_proxy_args(":8080", to, 2, 0, &err);
	assert_non_null(c);
	assert_upstream_defaults(&c->upstreams[0]);
	assert_int_equal(c->upstreams[0].servers[0].is_name, 0);
	assert_int_equal(c->upstreams[0].servers[1].is_name, 1);
	assert_string_equal(c->upstreams[0].servers[1].host, "localhost");
	moat_conf_free(c);

	/* empty blocks: outlier and retry keep their defaults; health_check is on */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\nupstreams:\n"
		    "  a:\n    servers: [127.0.0.1:1]\n    outlier:\n    retry: {}\n    health_check:\n");
	assert_int_equal(c->upstreams[0].health.enabled, 1);
	assert_string_equal(c->upstreams[0].health.method, "GET");
	assert_string_equal(c->upstreams[0].health.path, "/");
	assert_int_equal(c->upstreams[0].outlier.max_ejection_ms, 300000);
	assert_int_equal(c->upstreams[0].retry.budget_min, 3);
	moat_conf_free(c);

	/* algorithm: hash without a hash block hashes the client address */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\n"
		    "upstreams: {a: {algorithm: hash, servers: [127.0.0.1:1]}}\n");
	assert_int_equal(c->upstreams[0].algorithm, MOAT_LB_HASH);
	assert_int_equal(c->upstreams[0].hash_key, MOAT_HASH_CLIENT_IP);
	moat_conf_free(c);
}

static void test_upstream_edge_values(void **state)
{
	struct moat_conf *c;

	(void)state;
	/* every server draining is allowed; so are backups beside a primary */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\nupstreams:\n"
		    "  a:\n    servers:\n      - {address: 127.0.0.1:1, drain: true}\n"
		    "      - {address: 127.0.0.1:2, drain: on, backup: true}\n");
	assert_int_equal(c->upstreams[0].servers[0].drain, 1);
	assert_int_equal(c->upstreams[0].servers[1].drain, 1);
	assert_int_equal(c->upstreams[0].servers[1].backup, 1);
	moat_conf_free(c);

	/* an interval set alone below the default timeout takes the timeout down with it */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\nupstreams:\n"
		    "  a:\n    servers: [127.0.0.1:1]\n    health_check: {interval: 1s}\n");
	assert_int_equal(c->upstreams[0].health.interval_ms, 1000);
	assert_int_equal(c->upstreams[0].health.timeout_ms, 1000);
	moat_conf_free(c);
	/* likewise max_ejection set alone below the default base_ejection */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\nupstreams:\n"
		    "  a:\n    servers: [127.0.0.1:1]\n    outlier: {max_ejection: 5s}\n");
	assert_int_equal(c->upstreams[0].outlier.base_ejection_ms, 5000);
	assert_int_equal(c->upstreams[0].outlier.max_ejection_ms, 5000);
	moat_conf_free(c);

	/* limits of the ranges, and equal bounds */
	c = load_ok("listeners: [{listen: \":80\"}]\nroutes: [{upstream: a}]\nupstreams:\n"
		    "  a:\n    servers: [{address: 127.0.0.1:1, max_connections: 1000000}]\n"
		    "    health_check: {status: 100-599, interval: 2s, timeout: 2s, method: M-SEARCH, host: \"[::1]:8080\"}\n"
		    "    outlier: {base_ejection: 24h, max_ejection: 24h, consecutive_failures: 1000, max_ejected_percent: 0}\n"
		    "    retry: {attempts: 0, budget_percent: 100, budget_min: 0, per_try_timeout: 24h, timeout: 24h}\n"
		    "    sticky: {cookie: \"a!#$%&'*+-.^_`|~z\", ttl: 8760h}\n"
		    "    slow_start: 24h\n    max_connections: 1000000\n    max_pending: 100000\n"
		    "    pending_timeout: 1ms\n    resolve_interval: 24h\n");
	assert_int_equal(c->upstreams[0].servers[0].max_connections, 1000000);
	assert_int_equal(c->upstreams[0].health.status_min, 100);
	assert_int_equal(c->upstreams[0].health.status_max, 599);
	assert_string_equal(c->upstreams[0].health.host, "[::1]:8080");
	assert_int_equal(c->upstreams[0].health.timeout_ms, 2000);
	assert_int_equal(c->upstreams[0].outlier.max_ejected_percent, 0);
	assert_int_equal(c->upstreams[0].retry.attempts, 0);
	assert_int_equal(c->upstreams[0].sticky_ttl_ms, 8760ull * 3600000);
	assert_int_equal(c->upstreams[0].max_pending, 100000);
	assert_int_equal(c->upstreams[0].pending_timeout_ms, 1);
	assert_int_equal(c->upstreams[0].resolve_interval_ms, 86400000);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_upstream_balancing_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n";
	char doc[1024];

	(void)state;
#define U(ups) (snprintf(doc, sizeof doc, "%s  app:\n    servers: [10.0.0.1:80]\n%s", head, ups), doc)
	/* line 4 is "  app:", line 5 the servers, line 6 the first line of `ups` */
	expect_error(U("    algorithm: fastest\n"),
		     "t.yaml:6:16: upstreams.app.algorithm: expected one of round_robin, least_connections, random_two, "
		     "ewma, hash; got \"fastest\"");
	expect_error(U("    algorithm: [hash]\n"),
		     "t.yaml:6:16: upstreams.app.algorithm: expected one of round_robin, least_connections, random_two, "
		     "ewma, hash, got a list");
	expect_error(U("    hash: { key: header, name: x-user }\n"),
		     "t.yaml:6:11: upstreams.app.hash: only with algorithm: hash");
	expect_error(U("    hash: { key: uri }\n    algorithm: ewma\n"),
		     "t.yaml:6:11: upstreams.app.hash: only with algorithm: hash");
	/* a bad algorithm is reported once, not again through the hash block */
	expect_error(U("    hash: { key: uri }\n    algorithm: hsah\n"),
		     "t.yaml:7:16: upstreams.app.algorithm: expected one of round_robin, least_connections, random_two, "
		     "ewma, hash; got \"hsah\"");
	expect_error(U("    algorithm: hash\n    hash: { key: ip }\n"),
		     "t.yaml:7:18: upstreams.app.hash.key: expected one of client_ip, header, cookie, uri; got \"ip\"");
	expect_error(U("    algorithm: hash\n    hash: { key: header }\n"),
		     "t.yaml:7:11: upstreams.app.hash: missing required key \"name\" (the header name for key: header)");
	expect_error(U("    algorithm: hash\n    hash:\n      key: cookie\n"),
		     "t.yaml:8:7: upstreams.app.hash: missing required key \"name\" (the cookie name for key: cookie)");
	expect_error(U("    algorithm: hash\n    hash: { name: x-user }\n"),
		     "t.yaml:7:19: upstreams.app.hash.name: only with key: header or key: cookie");
	expect_error(U("    algorithm: hash\n    hash: { name: x-user, key: uri }\n"),
		     "t.yaml:7:19: upstreams.app.hash.name: only with key: header or key: cookie");
	expect_error(U("    algorithm: hash\n    hash: { key: header, name: \"x user\" }\n"),
		     "t.yaml:7:32: upstreams.app.hash.name: expected a header or cookie name like \"x-user\" (letters, "
		     "digits and !#$%&'*+-.^_`|~), got \"x user\"");
	expect_error(U("    algorithm: hash\n    hash: header\n"),
		     "t.yaml:7:11: upstreams.app.hash: expected a mapping (\"key: value\" lines), got \"header\"");
	expect_error(U("    algorithm: hash\n    hash: { key: uri, salt: 1 }\n"),
		     "t.yaml:7:23: unknown key \"salt\" in upstreams.app.hash; expected one of: key, name");

	expect_error(U("    sticky: { cookie: srv }\n    algorithm: hash\n"),
		     "t.yaml:6:13: upstreams.app.sticky: not with algorithm: hash (the hash already keeps a client on "
		     "one server)");
	expect_error(U("    sticky: { ttl: 1h }\n"), "t.yaml:6:13: upstreams.app.sticky: missing required key \"cookie\"");
	expect_error(U("    sticky: srv\n"),
		     "t.yaml:6:13: upstreams.app.sticky: expected a mapping like { cookie: srv, ttl: 1h }, got \"srv\"");
	expect_error(U("    sticky:\n"),
		     "t.yaml:6:12: upstreams.app.sticky: expected a mapping like { cookie: srv, ttl: 1h }, got an empty "
		     "value");
	expect_error(U("    sticky: { cookie: \"a;b\" }\n"),
		     "t.yaml:6:23: upstreams.app.sticky.cookie: expected a cookie name like \"srv\" (letters, digits and "
		     "!#$%&'*+-.^_`|~), got \"a;b\"");
	expect_error(U("    sticky: { cookie: srv, ttl: forever }\n"),
		     "t.yaml:6:33: upstreams.app.sticky.ttl: expected a duration like \"30s\" or \"500ms\", got \"forever\"");
	expect_error(U("    sticky: { cookie: srv, ttl: 8761h }\n"),
		     "t.yaml:6:33: upstreams.app.sticky.ttl: expected a duration of at most 8760h, got \"8761h\"");
#undef U
}

static void test_upstream_server_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n";
	char doc[512];

	(void)state;
#define U(ups) (snprintf(doc, sizeof doc, "%s  app:\n%s", head, ups), doc)
	expect_error(U("    servers:\n      - { address: 10.0.0.1:80, backup: maybe }\n"),
		     "t.yaml:6:41: upstreams.app.servers[0].backup: expected true or false, got \"maybe\"");
	expect_error(U("    servers:\n      - { address: 10.0.0.1:80, drain: 1 }\n"),
		     "t.yaml:6:40: upstreams.app.servers[0].drain: expected true or false, got \"1\"");
	expect_error(U("    servers:\n      - { address: 10.0.0.1:80, max_connections: 1000001 }\n"),
		     "t.yaml:6:50: upstreams.app.servers[0].max_connections: expected an integer between 0 and "
		     "1000000, got \"1000001\"");
	/* every server a backup */
	expect_error(U("    servers:\n      - { address: 10.0.0.1:80, backup: true }\n"
		       "      - { address: 10.0.0.2:80, backup: yes }\n"),
		     "t.yaml:6:7: upstreams.app.servers: every server is a backup; at least one must not be (backups "
		     "serve only when no other server can)");
	expect_error(U("    keepalive: 1\n    servers: [{ address: 10.0.0.1:80, backup: true }]\n"),
		     "t.yaml:6:14: upstreams.app.servers: every server is a backup; at least one must not be (backups "
		     "serve only when no other server can)");
#undef U
}

static void test_upstream_health_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n"
				   "  app:\n    servers: [10.0.0.1:80]\n    health_check:\n";
	char doc[2048], body[1100];

	(void)state;
#define H(hc) (snprintf(doc, sizeof doc, "%s%s", head, hc), doc)
	/* line 6 is "    health_check:", line 7 the first key */
	expect_error(H("      method: \"GE T\"\n"),
		     "t.yaml:7:15: upstreams.app.health_check.method: expected a method like \"GET\" (letters, digits "
		     "and !#$%&'*+-.^_`|~), got \"GE T\"");
	expect_error(H("      path: healthz\n"),
		     "t.yaml:7:13: upstreams.app.health_check.path: expected a path starting with \"/\" like \"/healthz\" "
		     "(visible ASCII, no '#'), got \"healthz\"");
	expect_error(H("      path: \"/a b\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.path: expected a path starting with \"/\" like \"/healthz\" "
		     "(visible ASCII, no '#'), got \"/a b\"");
	expect_error(H("      path: \"/caf\\u00e9\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.path: expected a path starting with \"/\" like \"/healthz\" "
		     "(visible ASCII, no '#'), got \"/caf\xc3\xa9\"");
	expect_error(H("      path: \"/a#b\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.path: expected a path starting with \"/\" like \"/healthz\" "
		     "(visible ASCII, no '#'), got \"/a#b\"");
	expect_error(H("      host: \"bad host\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"bad host\"");
	expect_error(H("      host: app:99999\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"app:99999\"");
	expect_error(H("      host: \"[::1\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"[::1\"");
	expect_error(H("      host: \"[::g]\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"[::g]\"");
	expect_error(H("      host: \"[::1]x\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"[::1]x\"");
	expect_error(H("      host: \"app:\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.host: expected a host name like \"app.internal\" or "
		     "\"app.internal:8080\", got \"app:\"");
	expect_error(H("      status: 600\n"),
		     "t.yaml:7:15: upstreams.app.health_check.status: expected a status like \"200\" or a range like "
		     "\"200-399\", between 100 and 599, got \"600\"");
	expect_error(H("      status: 99-200\n"),
		     "t.yaml:7:15: upstreams.app.health_check.status: expected a status like \"200\" or a range like "
		     "\"200-399\", between 100 and 599, got \"99-200\"");
	expect_error(H("      status: 200-\n"),
		     "t.yaml:7:15: upstreams.app.health_check.status: expected a status like \"200\" or a range like "
		     "\"200-399\", between 100 and 599, got \"200-\"");
	expect_error(H("      status: 2xx\n"),
		     "t.yaml:7:15: upstreams.app.health_check.status: expected a status like \"200\" or a range like "
		     "\"200-399\", between 100 and 599, got \"2xx\"");
	expect_error(H("      status: 399-200\n"),
		     "t.yaml:7:15: upstreams.app.health_check.status: the range must go from low to high, got \"399-200\"");
	expect_error(H("      body: \"\"\n"),
		     "t.yaml:7:13: upstreams.app.health_check.body: expected a text of 1 to 1024 bytes to find in the "
		     "body, got \"\"");
	memset(body, 'x', 1025);
	body[1025] = '\0';
	snprintf(doc, sizeof doc, "%s      body: %s\n", head, body);
	expect_error_prefix(doc, "t.yaml:7:13: upstreams.app.health_check.body: expected a text of 1 to 1024 bytes to "
				 "find in the body, got \"xxx");
	expect_error(H("      interval: 0s\n"),
		     "t.yaml:7:17: upstreams.app.health_check.interval: expected a duration greater than 0 like \"5s\", "
		     "got \"0s\"");
	expect_error(H("      timeout: 25h\n"),
		     "t.yaml:7:16: upstreams.app.health_check.timeout: expected a duration of at most 24h, got \"25h\"");
	expect_error(H("      timeout: 3s\n      interval: 2s\n"),
		     "t.yaml:7:16: upstreams.app.health_check: timeout (3s) must be at most interval (2s)");
	expect_error(H("      timeout: 6s\n"),
		     "t.yaml:7:16: upstreams.app.health_check: timeout (6s) must be at most interval (5s)");
	expect_error(H("      rise: 0\n"),
		     "t.yaml:7:13: upstreams.app.health_check.rise: expected an integer between 1 and 100, got \"0\"");
	expect_error(H("      fall: 101\n"),
		     "t.yaml:7:13: upstreams.app.health_check.fall: expected an integer between 1 and 100, got \"101\"");
	expect_error(H("      expect: 200\n"),
		     "t.yaml:7:7: unknown key \"expect\" in upstreams.app.health_check; expected one of: method, path, "
		     "host, status, body, interval, timeout, rise, fall");
	snprintf(doc, sizeof doc, "%s", head);
	doc[strlen(doc) - 1] = '\0';
	strcat(doc, " yes\n");
	expect_error(doc, "t.yaml:6:19: upstreams.app.health_check: expected a mapping (\"key: value\" lines), got \"yes\"");
#undef H
}

static void test_upstream_outlier_retry_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n"
				   "  app:\n    servers: [10.0.0.1:80]\n";
	char doc[1024];

	(void)state;
#define U(ups) (snprintf(doc, sizeof doc, "%s%s", head, ups), doc)
	/* line 6 is the first line of `ups` */
	expect_error(U("    outlier: { consecutive_failures: 1001 }\n"),
		     "t.yaml:6:38: upstreams.app.outlier.consecutive_failures: expected an integer between 0 and 1000, "
		     "got \"1001\"");
	expect_error(U("    outlier: { on_5xx: sometimes }\n"),
		     "t.yaml:6:24: upstreams.app.outlier.on_5xx: expected true or false, got \"sometimes\"");
	expect_error(U("    outlier: { base_ejection: 0 }\n"),
		     "t.yaml:6:31: upstreams.app.outlier.base_ejection: expected a duration greater than 0 like \"10s\", "
		     "got \"0\"");
	expect_error(U("    outlier: { max_ejection: 2d }\n"),
		     "t.yaml:6:30: upstreams.app.outlier.max_ejection: expected a duration like \"5m\" or \"500ms\", "
		     "got \"2d\"");
	expect_error(U("    outlier: { max_ejection: 1m, base_ejection: 2m }\n"),
		     "t.yaml:6:49: upstreams.app.outlier: base_ejection (2m) must be at most max_ejection (60s)");
	expect_error(U("    outlier: { base_ejection: 301s }\n"),
		     "t.yaml:6:31: upstreams.app.outlier: base_ejection (301s) must be at most max_ejection (5m)");
	expect_error(U("    outlier: { max_ejected_percent: 101 }\n"),
		     "t.yaml:6:37: upstreams.app.outlier.max_ejected_percent: expected an integer between 0 and 100, "
		     "got \"101\"");
	expect_error(U("    outlier: { max_ejected_percent: 50% }\n"),
		     "t.yaml:6:37: upstreams.app.outlier.max_ejected_percent: expected an integer between 0 and 100, "
		     "got \"50%\"");
	expect_error(U("    outlier: { failures: 3 }\n"),
		     "t.yaml:6:16: unknown key \"failures\" in upstreams.app.outlier; expected one of: "
		     "consecutive_failures, on_5xx, base_ejection, max_ejection, max_ejected_percent");
	expect_error(U("    retry: { attempts: 11 }\n"),
		     "t.yaml:6:24: upstreams.app.retry.attempts: expected an integer between 0 and 10, got \"11\"");
	expect_error(U("    retry: { budget_percent: 101 }\n"),
		     "t.yaml:6:30: upstreams.app.retry.budget_percent: expected an integer between 0 and 100, got \"101\"");
	expect_error(U("    retry: { budget_min: 1001 }\n"),
		     "t.yaml:6:26: upstreams.app.retry.budget_min: expected an integer between 0 and 1000, got \"1001\"");
	expect_error(U("    retry: { per_try_timeout: soon }\n"),
		     "t.yaml:6:31: upstreams.app.retry.per_try_timeout: expected a duration like \"30s\" or \"500ms\", "
		     "got \"soon\"");
	expect_error(U("    retry: { timeout: 25h }\n"),
		     "t.yaml:6:23: upstreams.app.retry.timeout: expected a duration of at most 24h, got \"25h\"");
	expect_error(U("    retry: { tries: 3 }\n"),
		     "t.yaml:6:14: unknown key \"tries\" in upstreams.app.retry; expected one of: attempts, "
		     "budget_percent, budget_min, per_try_timeout, timeout");
	expect_error(U("    retry: 3\n"),
		     "t.yaml:6:12: upstreams.app.retry: expected a mapping (\"key: value\" lines), got \"3\"");
	expect_error(U("    slow_start: 25h\n"),
		     "t.yaml:6:17: upstreams.app.slow_start: expected a duration of at most 24h, got \"25h\"");
	expect_error(U("    max_connections: 1000001\n"),
		     "t.yaml:6:22: upstreams.app.max_connections: expected an integer between 0 and 1000000, got "
		     "\"1000001\"");
	expect_error(U("    max_pending: -1\n"),
		     "t.yaml:6:18: upstreams.app.max_pending: expected an integer between 0 and 100000, got \"-1\"");
	expect_error(U("    max_pending: 100001\n"),
		     "t.yaml:6:18: upstreams.app.max_pending: expected an integer between 0 and 100000, got \"100001\"");
	expect_error(U("    pending_timeout: 0\n"),
		     "t.yaml:6:22: upstreams.app.pending_timeout: expected a duration greater than 0 like \"1s\", got "
		     "\"0\"");
	expect_error(U("    resolve_interval: often\n"),
		     "t.yaml:6:23: upstreams.app.resolve_interval: expected a duration like \"30s\" or \"500ms\", got "
		     "\"often\"");
#undef U
}

/* Several mistakes in new keys of one upstream come out together, in order. */
static void test_upstream_many_errors(void **state)
{
	struct moat_conf_errors err;
	static const char doc[] =
		"listeners: [{listen: \":80\"}]\n"                        /* 1 */
		"routes: [{upstream: app}]\n"                             /* 2 */
		"upstreams:\n"                                            /* 3 */
		"  app:\n"                                                /* 4 */
		"    hash: { key: uri }\n"                                /* 5 */
		"    servers: [{address: 10.0.0.1:80, backup: true}]\n"   /* 6 */
		"    health_check: { rise: 0, timeout: 9s }\n"            /* 7 */
		"    retry: { attempts: 99 }\n";                          /* 8 */

	(void)state;
	assert_null(load(doc, &err));
	assert_int_equal(err.count, 5);
	assert_string_equal(err.buf,
		"t.yaml:5:11: upstreams.app.hash: only with algorithm: hash\n"
		"t.yaml:6:14: upstreams.app.servers: every server is a backup; at least one must not be (backups serve "
		"only when no other server can)\n"
		"t.yaml:7:27: upstreams.app.health_check.rise: expected an integer between 1 and 100, got \"0\"\n"
		"t.yaml:7:39: upstreams.app.health_check: timeout (9s) must be at most interval (5s)\n"
		"t.yaml:8:24: upstreams.app.retry.attempts: expected an integer between 0 and 10, got \"99\"\n");
	moat_conf_errors_free(&err);
}

/* ---- print and load back, equality ---- */

static void test_upstream_roundtrip(void **state)
{
	static const char *const to[] = { "http://127.0.0.1:3000", "localhost:3001" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	/* every key of an upstream, hash and sticky, health checks on and off */
	c = load_ok(balancing_yaml);
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL);
	roundtrip(c);
	moat_conf_free(c);
	c = moat_conf_from_proxy_args(":8080", to, 2, 0, &err);
	assert_non_null(c);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_print_upstream_text(void **state)
{
	struct moat_conf *c = load_ok(balancing_yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "\n  \"app\":\n    algorithm: least_connections\n"
				     "    sticky: { cookie: \"srv\", ttl: 1h }\n    servers:\n"
				     "      - { address: \"127.0.0.1:3000\", weight: 1, backup: false, drain: false, "
				     "max_connections: 0 }\n"
				     "      - { address: \"127.0.0.1:3001\", weight: 2, backup: true, drain: false, "
				     "max_connections: 100 }\n"));
	assert_non_null(strstr(text, "\n    health_check:\n      method: \"HEAD\"\n      path: \"/healthz?full=1\"\n"
				     "      host: \"app.internal\"\n      status: \"200-299\"\n"
				     "      body: \"ok: \\\"yes\\\"\"\n      interval: 10s\n      timeout: 1500ms\n"
				     "      rise: 1\n      fall: 100\n"
				     "    outlier: { consecutive_failures: 0, on_5xx: false, base_ejection: 1s, "
				     "max_ejection: 60s, max_ejected_percent: 100 }\n"
				     "    retry: { attempts: 10, budget_percent: 0, budget_min: 1000, per_try_timeout: 2s, "
				     "timeout: 10s }\n    slow_start: 30s\n    max_connections: 1000\n    max_pending: 100\n"
				     "    pending_timeout: 250ms\n    resolve_interval: 0\n"));
	assert_non_null(strstr(text, "\n  \"h\":\n    algorithm: hash\n    hash: { key: header, name: \"x-user\" }\n"));
	assert_non_null(strstr(text, "\n    hash: { key: cookie, name: \"Sess-ID\" }\n"));
	assert_non_null(strstr(text, "\n      status: \"204\"\n"));
	assert_non_null(strstr(text, "\n    hash: { key: uri }\n"));
	assert_non_null(strstr(text, "\n    sticky: { cookie: \"e\", ttl: 0 }\n"));
	/* health checks off: no block */
	assert_null(strstr(text, "\n  \"r\":\n    algorithm: random_two\n    servers:\n"
				 "      - { address: \"127.0.0.1:6\", weight: 1, backup: false, drain: false, max_connections: 0 }\n"
				 "    keepalive: 32\n    keepalive_timeout: 60s\n    health_check"));
	assert_non_null(strstr(text, "\n  \"r\":\n    algorithm: random_two\n    servers:\n"
				     "      - { address: \"127.0.0.1:6\", weight: 1, backup: false, drain: false, max_connections: 0 }\n"
				     "    keepalive: 32\n    keepalive_timeout: 60s\n    outlier: "));
	moat_conf_free(c);
	free(text);
}

/* Every field of an upstream counts in moat_conf_equal. */
static void test_equal_upstream_fields(void **state)
{
	struct moat_conf *a = load_ok(balancing_yaml), *b;
	struct moat_conf_upstream *u;
	int i;

	(void)state;
	for (i = 0; i < 37; i++) {
		b = load_ok(balancing_yaml);
		assert_true(moat_conf_equal(a, b));
		u = &b->upstreams[0];
		switch (i) {
		case 0: u->algorithm = MOAT_LB_EWMA; break;
		case 1: b->upstreams[1].hash_key = MOAT_HASH_COOKIE; break;
		case 2: b->upstreams[1].hash_name[0] = 'y'; break;
		case 3: u->sticky_cookie[0] = 't'; break;
		case 4: u->sticky_ttl_ms++; break;
		case 5: u->health.enabled = 0; break;
		case 6: u->health.method[0] = 'G'; break;
		case 7: u->health.path[1] = 'x'; break;
		case 8: u->health.host[0] = 'b'; break;
		case 9: u->health.status_min++; break;
		case 10: u->health.status_max++; break;
		case 11: u->health.body[0] = 'O'; break;
		case 12: u->health.interval_ms++; break;
		case 13: u->health.timeout_ms++; break;
		case 14: u->health.rise++; break;
		case 15: u->health.fall++; break;
		case 16: u->outlier.consecutive_failures++; break;
		case 17: u->outlier.on_5xx = 1; break;
		case 18: u->outlier.base_ejection_ms++; break;
		case 19: u->outlier.max_ejection_ms++; break;
		case 20: u->outlier.max_ejected_percent--; break;
		case 21: u->retry.attempts--; break;
		case 22: u->retry.budget_percent++; break;
		case 23: u->retry.budget_min--; break;
		case 24: u->retry.per_try_timeout_ms++; break;
		case 25: u->retry.timeout_ms++; break;
		case 26: u->slow_start_ms++; break;
		case 27: u->max_connections++; break;
		case 28: u->max_pending++; break;
		case 29: u->pending_timeout_ms++; break;
		case 30: u->resolve_interval_ms++; break;
		case 31: u->servers[0].backup = 1; break;
		case 32: u->servers[1].drain = 1; break;
		case 33: u->servers[1].max_connections++; break;
		case 34: u->servers[2].is_name = 0; break;
		case 35: u->servers[0].weight++; break;
		default: b->upstreams[2].hash_name[0] = 's'; break;
		}
		if (moat_conf_equal(a, b))
			fail_msg("change %d not seen by moat_conf_equal", i);
		moat_conf_free(b);
	}
	moat_conf_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_balancing),
		cmocka_unit_test(test_upstream_defaults),
		cmocka_unit_test(test_upstream_edge_values),
		cmocka_unit_test(test_upstream_balancing_errors),
		cmocka_unit_test(test_upstream_server_errors),
		cmocka_unit_test(test_upstream_health_errors),
		cmocka_unit_test(test_upstream_outlier_retry_errors),
		cmocka_unit_test(test_upstream_many_errors),
		cmocka_unit_test(test_upstream_roundtrip),
		cmocka_unit_test(test_print_upstream_text),
		cmocka_unit_test(test_equal_upstream_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
