/*
 * conf_test.c - unit tests of src/conf: the YAML loader (values, defaults,
 * every kind of error at its exact file:line:column), the one-line proxy
 * mode, printing and loading back, and the pure value parsers. What is
 * new to upstreams (balancing, health checks, ejection, retries, queueing)
 * is tested in conf_upstream_test.c.
 *
 * No test makes a DNS query: addresses are numeric, and the one name used,
 * "localhost", is answered from /etc/hosts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/limits.h"

#include "conf_test_util.h"

static const char full_yaml[] =
	"workers: 4\n"                                              /* 1 */
	"log:\n"                                                    /* 2 */
	"  level: debug\n"                                          /* 3 */
	"  error: /var/log/moat/error.log\n"                        /* 4 */
	"  access: /var/log/moat/access.log\n"                      /* 5 */
	"  format: combined\n"                                      /* 6 */
	"limits:\n"                                                 /* 7 */
	"  request_line: 4KiB\n"                                    /* 8 */
	"  header_size: 64KiB\n"                                    /* 9 */
	"  header_count: 50\n"                                      /* 10 */
	"  body: 10MB\n"                                            /* 11 */
	"  connections: 1000\n"                                     /* 12 */
	"timeouts:\n"                                               /* 13 */
	"  client_header: 5s\n"                                     /* 14 */
	"  client_body: 250ms\n"                                    /* 15 */
	"  keepalive: 2m\n"                                         /* 16 */
	"  client_send: 1h\n"                                       /* 17 */
	"  backend_connect: 3\n"                                    /* 18 */
	"  backend_first_byte: 1m30s\n"                             /* 19 */
	"  backend_idle: 45s\n"                                     /* 20 */
	"  drain: 10s\n"                                            /* 21 */
	"proxy:\n"                                                  /* 22 */
	"  trusted_proxies: [127.0.0.1, 10.0.0.0/8, \"::1/128\"]\n" /* 23 */
	"  hide_headers: [X-Debug, server]\n"                       /* 24 */
	"  preserve_host: false\n"                                  /* 25 */
	"listeners:\n"                                              /* 26 */
	"  - listen: 127.0.0.1:8080\n"                              /* 27 */
	"    backlog: 1024\n"                                       /* 28 */
	"  - listen: \"[::1]:8443\"\n"                              /* 29 */
	"  - listen: \"*:9000\"\n"                                  /* 30 */
	"upstreams:\n"                                              /* 31 */
	"  app:\n"                                                  /* 32 */
	"    servers:\n"                                            /* 33 */
	"      - 127.0.0.1:3000\n"                                  /* 34 */
	"      - { address: localhost:3001, weight: 2 }\n"          /* 35 */
	"      - http://[::1]:3002\n"                               /* 36 */
	"      - http://10.1.2.3\n"                                 /* 37 */
	"    keepalive: 0\n"                                        /* 38 */
	"    keepalive_timeout: 90s\n"                              /* 39 */
	"  static.v2:\n"                                            /* 40 */
	"    servers: [\"127.0.0.2:80\"]\n"                         /* 41 */
	"routes:\n"                                                 /* 42 */
	"  - host: \"*.Example.COM\"\n"                             /* 43 */
	"    path: /api/\n"                                         /* 44 */
	"    upstream: app\n"                                       /* 45 */
	"    strip_headers: [X-Internal, x-internal, x-other]\n"    /* 46 */
	"  - host: static.example.com\n"                            /* 47 */
	"    upstream: static.v2\n"                                 /* 48 */
	"  - upstream: app\n";                                      /* 49 */

static uint16_t port_of(const struct moat_conf_addr *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;

	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

static void assert_v4(const struct moat_conf_addr *a, const char *ip, uint16_t port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)&a->ss;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(a->len, sizeof *s4);
	assert_non_null(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(s4->sin_port), port);
}

static void assert_v6(const struct moat_conf_addr *a, const char *ip, uint16_t port)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(a->len, sizeof *s6);
	assert_non_null(inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(s6->sin6_port), port);
}

/* ---- valid documents ---------------------------------------------------- */

static void test_full_config(void **state)
{
	struct moat_conf *c = load_ok(full_yaml);
	const struct moat_conf_upstream *u;
	const struct moat_conf_route *r;

	(void)state;
	assert_string_equal(c->file, "t.yaml");
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->log_level, MOAT_LOG_DEBUG);
	assert_string_equal(c->error_log, "/var/log/moat/error.log");
	assert_string_equal(c->access_log, "/var/log/moat/access.log");
	assert_int_equal(c->access_format, MOAT_LOG_FMT_COMBINED);

	assert_int_equal(c->limits.request_line_max, 4096);
	assert_int_equal(c->limits.header_size_max, 65536);
	assert_int_equal(c->limits.header_count_max, 50);
	assert_int_equal(c->limits.body_max, 10000000);
	assert_int_equal(c->limits.conns_max, 1000);

	assert_int_equal(c->timeouts.client_header, 5000);
	assert_int_equal(c->timeouts.client_body, 250);
	assert_int_equal(c->timeouts.keepalive, 120000);
	assert_int_equal(c->timeouts.client_send, 3600000);
	assert_int_equal(c->timeouts.backend_connect, 3000);
	assert_int_equal(c->timeouts.backend_first_byte, 90000);
	assert_int_equal(c->timeouts.backend_idle, 45000);
	assert_int_equal(c->timeouts.drain, 10000);

	assert_int_equal(c->ntrusted_proxies, 3);
	assert_int_equal(c->trusted_proxies[0].family, AF_INET);
	assert_int_equal(c->trusted_proxies[0].prefix, 32);
	assert_int_equal(c->trusted_proxies[1].prefix, 8);
	assert_int_equal(c->trusted_proxies[1].addr[0], 10);
	assert_int_equal(c->trusted_proxies[2].family, AF_INET6);
	assert_int_equal(c->trusted_proxies[2].prefix, 128);
	assert_int_equal(c->trusted_proxies[2].addr[15], 1);
	assert_int_equal(c->nhide_headers, 3);
	assert_string_equal(c->hide_headers[0], "server");
	assert_string_equal(c->hide_headers[1], "x-powered-by");
	assert_string_equal(c->hide_headers[2], "x-debug");
	assert_int_equal(c->preserve_host, 0);

	assert_int_equal(c->nlisteners, 3);
	assert_v4(&c->listeners[0].addr, "127.0.0.1", 8080);
	assert_string_equal(c->listeners[0].addr.text, "127.0.0.1:8080");
	assert_int_equal(c->listeners[0].addr.pos.line, 27);
	assert_int_equal(c->listeners[0].addr.pos.col, 13);
	assert_int_equal(c->listeners[0].backlog, 1024);
	assert_v6(&c->listeners[1].addr, "::1", 8443);
	assert_int_equal(c->listeners[1].backlog, MOAT_DEFAULT_BACKLOG);
	assert_v4(&c->listeners[2].addr, "0.0.0.0", 9000);
	assert_string_equal(c->listeners[2].addr.text, "*:9000");

	assert_int_equal(c->nupstreams, 2);
	u = &c->upstreams[0];
	assert_string_equal(u->name, "app");
	assert_int_equal(u->pos.line, 32);
	assert_int_equal(u->pos.col, 3);
	assert_int_equal(u->nservers, 4);
	assert_v4(&u->servers[0].addr, "127.0.0.1", 3000);
	assert_string_equal(u->servers[0].host, "127.0.0.1");
	assert_int_equal(u->servers[0].weight, 1);
	/* localhost: from /etc/hosts, IPv4 or IPv6 */
	assert_string_equal(u->servers[1].host, "localhost");
	assert_string_equal(u->servers[1].addr.text, "localhost:3001");
	assert_int_equal(port_of(&u->servers[1].addr), 3001);
	assert_int_equal(u->servers[1].weight, 2);
	assert_int_equal(u->servers[1].addr.pos.line, 35);
	assert_int_equal(u->servers[1].addr.pos.col, 20);
	assert_v6(&u->servers[2].addr, "::1", 3002);
	assert_string_equal(u->servers[2].host, "::1");
	assert_string_equal(u->servers[2].addr.text, "[::1]:3002");
	assert_v4(&u->servers[3].addr, "10.1.2.3", 80);
	assert_string_equal(u->servers[3].addr.text, "10.1.2.3:80");
	assert_int_equal(u->keepalive, 0);
	assert_int_equal(u->keepalive_timeout_ms, 90000);
	assert_int_equal(u->used, 1);
	assert_string_equal(c->upstreams[1].name, "static.v2");
	assert_int_equal(c->upstreams[1].keepalive, MOAT_DEFAULT_UPSTREAM_KEEPALIVE);
	assert_int_equal(c->upstreams[1].keepalive_timeout_ms, MOAT_DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_MS);
	assert_int_equal(c->upstreams[1].used, 1);

	assert_int_equal(c->nroutes, 3);
	r = &c->routes[0];
	assert_int_equal(r->pos.line, 43);
	assert_int_equal(r->pos.col, 5);
	assert_string_equal(r->host, ".example.com");
	assert_int_equal(r->host_wildcard, 1);
	assert_string_equal(r->path_prefix, "/api/");
	assert_int_equal(r->path_prefix_len, 5);
	assert_int_equal(r->upstream, 0);
	assert_int_equal(r->nstrip_headers, 2);
	assert_string_equal(r->strip_headers[0], "x-internal");
	assert_string_equal(r->strip_headers[1], "x-other");
	r = &c->routes[1];
	assert_string_equal(r->host, "static.example.com");
	assert_int_equal(r->host_wildcard, 0);
	assert_null(r->path_prefix);
	assert_int_equal(r->upstream, 1);
	r = &c->routes[2];
	assert_null(r->host);
	assert_int_equal(r->upstream, 0);
	moat_conf_free(c);
}

static void test_defaults(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL);

	(void)state;
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->log_level, MOAT_LOG_INFO);
	assert_null(c->error_log);
	assert_string_equal(c->access_log, "stdout");
	assert_int_equal(c->access_format, MOAT_LOG_FMT_JSON);
	assert_int_equal(c->limits.request_line_max, MOAT_DEFAULT_REQUEST_LINE_MAX);
	assert_int_equal(c->limits.request_line_max, 8192);
	assert_int_equal(c->limits.header_size_max, MOAT_DEFAULT_HEADER_SIZE_MAX);
	assert_int_equal(c->limits.header_size_max, 32768);
	assert_int_equal(c->limits.header_count_max, 100);
	assert_int_equal(c->limits.body_max, 0);
	assert_int_equal(c->limits.conns_max, 16384);
	assert_int_equal(c->timeouts.client_header, 10000);
	assert_int_equal(c->timeouts.client_body, 60000);
	assert_int_equal(c->timeouts.keepalive, 75000);
	assert_int_equal(c->timeouts.client_send, 60000);
	assert_int_equal(c->timeouts.backend_connect, 5000);
	assert_int_equal(c->timeouts.backend_first_byte, 60000);
	assert_int_equal(c->timeouts.backend_idle, 60000);
	assert_int_equal(c->timeouts.drain, 30000);
	assert_int_equal(c->ntrusted_proxies, 0);
	assert_int_equal(c->nhide_headers, 2);
	assert_string_equal(c->hide_headers[0], "server");
	assert_string_equal(c->hide_headers[1], "x-powered-by");
	assert_int_equal(c->preserve_host, 1);
	assert_int_equal(c->listeners[0].backlog, 511);
	assert_int_equal(c->upstreams[0].keepalive, 32);
	assert_int_equal(c->upstreams[0].keepalive_timeout_ms, 60000);
	assert_int_equal(c->upstreams[0].servers[0].weight, 1);
	assert_int_equal(c->upstreams[0].used, 1);
	assert_null(c->routes[0].host);
	assert_null(c->routes[0].path_prefix);
	moat_conf_free(c);
}

static void test_empty_sections_and_special_values(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok("log:\nlimits: ~\ntimeouts: {}\nproxy: null\nworkers: auto\n" MINIMAL_TAIL);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->timeouts.keepalive, 75000);
	moat_conf_free(c);

	c = load_ok("---\nlog: {error: stderr, access: \"off\", level: warn, format: common}\n"
		    "proxy: {preserve_host: no, trusted_proxies: []}\nworkers: \"1024\"\n" MINIMAL_TAIL "...\n");
	assert_null(c->error_log);
	assert_null(c->access_log);
	assert_int_equal(c->log_level, MOAT_LOG_WARN);
	assert_int_equal(c->access_format, MOAT_LOG_FMT_COMMON);
	assert_int_equal(c->preserve_host, 0);
	assert_int_equal(c->workers, 1024);
	moat_conf_free(c);

	/* an alias is followed */
	c = load_ok("listeners: [{listen: \":80\"}]\nupstreams:\n  a: {servers: &s [127.0.0.1:1, 127.0.0.1:2]}\n"
		    "  b: {servers: *s, keepalive: 1}\nroutes: [{upstream: a}, {upstream: b}]\n");
	assert_int_equal(c->upstreams[1].nservers, 2);
	assert_int_equal(c->upstreams[1].keepalive, 1);
	assert_v4(&c->upstreams[1].servers[1].addr, "127.0.0.1", 2);
	moat_conf_free(c);
}

/* ---- errors: each kind, at its exact position -------------------------------- */

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_error_prefix("listeners: [\n", "t.yaml:2:1: YAML syntax error: ");
	expect_error_prefix("a: b: c\n", "t.yaml:1:5: YAML syntax error: mapping values are not allowed");
	expect_error_prefix("routes:\n  - upstream: *nope\n", "t.yaml:2:15: YAML syntax error: found undefined alias");
	expect_error_prefix("listeners:\n  - listen: \"*:80\"\n    x: \xff\n", "t.yaml:3:8: YAML: invalid leading UTF-8 octet");
	expect_error("", "t.yaml:1:1: the configuration is empty; expected listeners, upstreams and routes");
	expect_error("# only a comment\n", "t.yaml:1:1: the configuration is empty; expected listeners, upstreams and routes");
	expect_error("- a\n- b\n",
		     "t.yaml:1:1: expected a mapping with listeners, upstreams and routes at the top level, got a list");
	expect_error(MINIMAL_TAIL "---\nworkers: 2\n", "t.yaml:9:1: only one YAML document is allowed; a second one starts here");
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_error("listeners:\n  - listner: 127.0.0.1:8080\n    listen: 127.0.0.1:8080\n"
		     "upstreams: {app: {servers: [127.0.0.1:1]}}\nroutes: [{upstream: app}]\n",
		     "t.yaml:2:5: unknown key \"listner\" in listeners[0]; expected one of: listen, backlog, allow, deny, "
		     "allow_file, deny_file, proxy_protocol, tls, h2c, redirect_https");
	expect_error("worker: 2\n" MINIMAL_TAIL,
		     "t.yaml:1:1: unknown key \"worker\" at the top level; expected one of: workers, log, limits, "
		     "timeouts, proxy, listeners, upstreams, routes, admin, user, group, pid_file, rate_limits, bans, cache");
	expect_error(MINIMAL_TAIL "timeouts:\n  keepalive: 1s\n  idle: 2s\n",
		     "t.yaml:10:3: unknown key \"idle\" in timeouts; expected one of: client_header, client_body, "
		     "keepalive, client_send, backend_connect, backend_first_byte, backend_idle, drain");
	expect_error(MINIMAL_TAIL "  - {upstream: app, weight: 2}\n",
		     "t.yaml:8:21: unknown key \"weight\" in routes[1]; expected one of: host, path, upstream, strip_headers, "
		     "allow, deny, allow_file, deny_file, body, rate_limit, waf, normalize_path, cache, compress");
	expect_error("upstreams:\n  app:\n    servers: [{address: 127.0.0.1:1, wieght: 2}]\n"
		     "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\n",
		     "t.yaml:3:38: unknown key \"wieght\" in upstreams.app.servers[0]; expected one of: address, weight, "
		     "backup, drain, max_connections");
	expect_error("upstreams:\n  app:\n    servers: [127.0.0.1:1]\n    algoritm: hash\n"
		     "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\n",
		     "t.yaml:4:5: unknown key \"algoritm\" in upstreams.app; expected one of: servers, keepalive, "
		     "keepalive_timeout, algorithm, hash, sticky, health_check, outlier, retry, slow_start, "
		     "max_connections, max_pending, pending_timeout, resolve_interval, tls");
	expect_error("[a]: 1\n" MINIMAL_TAIL, "t.yaml:1:1: expected a key name at the top level, got a list");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("workers: 2\n" MINIMAL_TAIL "workers: 3\n",
		     "t.yaml:9:1: duplicate key \"workers\" at the top level (first at line 1, column 1)");
	expect_error("log:\n  level: info\n  level: debug\n" MINIMAL_TAIL,
		     "t.yaml:3:3: duplicate key \"level\" in log (first at line 2, column 3)");
	/* a second "upstreams" block is not merged */
	expect_error(MINIMAL_TAIL "upstreams:\n  other:\n    servers: [127.0.0.1:1]\n",
		     "t.yaml:8:1: duplicate key \"upstreams\" at the top level (first at line 3, column 1)");
	/* duplicate upstream names */
	expect_error("listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n"
		     "  app: {servers: [127.0.0.1:1]}\n  app: {servers: [127.0.0.1:2]}\n",
		     "t.yaml:5:3: duplicate key \"app\" in upstreams (first at line 4, column 3)");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_error(MINIMAL_TAIL "timeouts:\n  keepalive: fast\n",
		     "t.yaml:9:14: timeouts.keepalive: expected a duration like \"75s\" or \"500ms\", got \"fast\"");
	expect_error(MINIMAL_TAIL "timeouts:\n  drain: 0s\n",
		     "t.yaml:9:10: timeouts.drain: expected a duration greater than 0 like \"30s\", got \"0s\"");
	expect_error(MINIMAL_TAIL "timeouts:\n  drain: 25h\n",
		     "t.yaml:9:10: timeouts.drain: expected a duration of at most 24h, got \"25h\"");
	expect_error(MINIMAL_TAIL "timeouts:\n  backend_idle: 1.5s\n",
		     "t.yaml:9:17: timeouts.backend_idle: expected a duration like \"60s\" or \"500ms\", got \"1.5s\"");
	expect_error(MINIMAL_TAIL "limits:\n  body: 10 MB\n",
		     "t.yaml:9:9: limits.body: expected a size like \"64KiB\" or \"1MiB\", got \"10 MB\"");
	expect_error(MINIMAL_TAIL "limits:\n  request_line: 100\n",
		     "t.yaml:9:17: limits.request_line: expected a size between 256B and 1MiB, got \"100\"");
	expect_error(MINIMAL_TAIL "limits:\n  header_size: 2MiB\n",
		     "t.yaml:9:16: limits.header_size: expected a size between 1KiB and 1MiB, got \"2MiB\"");
	expect_error(MINIMAL_TAIL "limits:\n  header_count: 0\n",
		     "t.yaml:9:17: limits.header_count: expected an integer between 1 and 1000, got \"0\"");
	expect_error(MINIMAL_TAIL "limits:\n  connections: [1]\n",
		     "t.yaml:9:16: limits.connections: expected an integer between 1 and 1000000, got a list");
	expect_error(MINIMAL_TAIL "proxy:\n  trusted_proxies: [10.0.0.0/8, 300.0.0.1]\n",
		     "t.yaml:9:33: proxy.trusted_proxies[1]: expected an IP address or CIDR block like "
		     "\"10.0.0.0/8\" or \"::1/128\", got \"300.0.0.1\"");
	expect_error(MINIMAL_TAIL "proxy:\n  trusted_proxies: 10.0.0.0/8\n",
		     "t.yaml:9:20: proxy.trusted_proxies: expected a list of CIDR blocks, got \"10.0.0.0/8\"");
	expect_error(MINIMAL_TAIL "proxy:\n  preserve_host: maybe\n",
		     "t.yaml:9:18: proxy.preserve_host: expected true or false, got \"maybe\"");
	expect_error(MINIMAL_TAIL "proxy:\n  hide_headers: [\"x y\"]\n",
		     "t.yaml:9:18: proxy.hide_headers[0]: expected a header name like \"x-debug\", got \"x y\"");
	expect_error("workers: 0\n" MINIMAL_TAIL,
		     "t.yaml:1:10: workers: expected \"auto\" or an integer between 1 and 1024, got \"0\"");
	expect_error("workers: 1025\n" MINIMAL_TAIL,
		     "t.yaml:1:10: workers: expected \"auto\" or an integer between 1 and 1024, got \"1025\"");
	expect_error("workers:\n" MINIMAL_TAIL,
		     "t.yaml:1:9: workers: expected \"auto\" or an integer between 1 and 1024, got an empty value");
	expect_error("log:\n  level: verbose\n" MINIMAL_TAIL,
		     "t.yaml:2:10: log.level: expected one of error, warn, info, debug; got \"verbose\"");
	expect_error("log:\n  format: apache\n" MINIMAL_TAIL,
		     "t.yaml:2:11: log.format: expected one of json, combined, common; got \"apache\"");
	expect_error("log:\n  error: stdout\n" MINIMAL_TAIL,
		     "t.yaml:2:10: log.error: the error log goes to \"stderr\" or a file, not \"stdout\" "
		     "(write \"./stdout\" for a file of that name)");
	expect_error("log:\n  access: \"a\\tb\"\n" MINIMAL_TAIL,
		     "t.yaml:2:11: log.access: expected a file path, \"stdout\" or \"off\", got \"a\\x09b\"");
	expect_error("log: info\n" MINIMAL_TAIL,
		     "t.yaml:1:6: log: expected a mapping (\"key: value\" lines), got \"info\"");
	expect_error("limits:\n  request_line: \"a\\0b\"\n" MINIMAL_TAIL,
		     "t.yaml:2:17: limits.request_line: expected a size like \"8KiB\" or \"1MiB\", got a string with a NUL character");
}

static void test_listener_errors(void **state)
{
	static const char tail[] = "upstreams: {app: {servers: [127.0.0.1:1]}}\nroutes: [{upstream: app}]\n";
	char doc[512];

	(void)state;
#define L(listeners) (snprintf(doc, sizeof doc, "listeners:\n%s%s", listeners, tail), doc)
	expect_error(L("  - listen: 127.0.0.1\n"),
		     "t.yaml:2:13: listeners[0].listen: expected an address like \"127.0.0.1:8080\", \"[::1]:8080\" or "
		     "\":8080\", got \"127.0.0.1\" (missing port)");
	expect_error(L("  - listen: localhost:80\n"),
		     "t.yaml:2:13: listeners[0].listen: listen addresses must be numeric, not a host name (\"localhost\")");
	expect_error(L("  - listen: 127.0.0.1:0\n"),
		     "t.yaml:2:13: listeners[0].listen: port must be between 1 and 65535, got 0");
	expect_error(L("  - listen: \"::1:80\"\n"),
		     "t.yaml:2:13: listeners[0].listen: expected an address like \"127.0.0.1:8080\", \"[::1]:8080\" or "
		     "\":8080\", got \"::1:80\" (an IPv6 address goes in brackets, like [::1]:8080)");
	expect_error(L("  - listen: \"[::g]:80\"\n"),
		     "t.yaml:2:13: listeners[0].listen: \"::g\" is not an IPv6 address");
	expect_error(L("  - listen: 127.1:80\n"), "t.yaml:2:13: listeners[0].listen: \"127.1\" is not an IPv4 address");
	expect_error(L("  - listen: 127.0.0.1:80\n    backlog: 0\n"),
		     "t.yaml:3:14: listeners[0].backlog: expected an integer between 1 and 65535, got \"0\"");
	expect_error(L("  - backlog: 10\n"), "t.yaml:2:5: listeners[0]: missing required key \"listen\"");
	expect_error(L("  - 127.0.0.1:80\n"),
		     "t.yaml:2:5: listeners[0]: expected a mapping like \"listen: 127.0.0.1:8080\", got \"127.0.0.1:80\"");
	expect_error(L("  - listen: 127.0.0.1:80\n  - listen: :8080\n  - listen: 0.0.0.0:8080\n"),
		     "t.yaml:4:13: listeners[2].listen: duplicate listener address \"0.0.0.0:8080\" (listeners[1] at "
		     "line 3, column 13)");
	expect_error("listeners: []\n" "upstreams: {app: {servers: [127.0.0.1:1]}}\nroutes: [{upstream: app}]\n",
		     "t.yaml:1:12: listeners: at least one listener is required, like \"- listen: 127.0.0.1:8080\"");
	expect_error("listeners: {listen: 127.0.0.1:80}\n" "upstreams: {app: {servers: [127.0.0.1:1]}}\nroutes: [{upstream: app}]\n",
		     "t.yaml:1:12: listeners: expected a list of listeners, got a mapping");
#undef L
}

static void test_upstream_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams:\n";
	char doc[512];

	(void)state;
#define U(ups) (snprintf(doc, sizeof doc, "%s%s", head, ups), doc)
	expect_error(U("  app:\n    servers: [h3://10.0.0.1:443]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: unsupported scheme \"h3\" (expected http://, https://, h2c:// or h2://)");
	expect_error(U("  app:\n    servers: [\"ftp://10.0.0.1\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: unsupported scheme \"ftp\" (expected http://, https://, h2c:// or h2://)");
	expect_error(U("  app:\n    servers: [\"http://10.0.0.1/app\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: a server URL has no path, query or fragment (got \"/app\")");
	expect_error(U("  app:\n    servers: [10.0.0.1]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: expected \"host:port\" or \"http://host:port\", got "
		     "\"10.0.0.1\" (missing port)");
	expect_error(U("  app:\n    servers: [\"bad_host!:80\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: expected \"host:port\" or \"http://host:port\", got "
		     "\"bad_host!:80\" (invalid host name)");
	expect_error(U("  app:\n    servers:\n      - address: 10.0.0.1:80\n        weight: 0\n"),
		     "t.yaml:7:17: upstreams.app.servers[0].weight: expected an integer between 1 and 1000, got \"0\"");
	expect_error(U("  app:\n    servers:\n      - weight: 3\n"),
		     "t.yaml:6:9: upstreams.app.servers[0]: missing required key \"address\"");
	expect_error(U("  app:\n    servers: []\n"),
		     "t.yaml:5:14: upstreams.app.servers: at least one server is required, like \"- 127.0.0.1:3000\"");
	expect_error(U("  app:\n    keepalive: 4\n"), "t.yaml:5:5: upstreams.app: missing required key \"servers\"");
	expect_error(U("  app:\n"), "t.yaml:4:3: upstreams.app: missing required key \"servers\"");
	expect_error(U("  app: [10.0.0.1:80]\n"),
		     "t.yaml:4:8: upstreams.app: expected a mapping like \"servers: [127.0.0.1:3000]\", got a list");
	expect_error(U("  app:\n    servers: [10.0.0.1:80]\n    keepalive: 10001\n"),
		     "t.yaml:6:16: upstreams.app.keepalive: expected an integer between 0 and 10000, got \"10001\"");
	expect_error(U("  app:\n    servers: [10.0.0.1:80]\n    keepalive_timeout: never\n"),
		     "t.yaml:6:24: upstreams.app.keepalive_timeout: expected a duration like \"60s\" or \"500ms\", got \"never\"");
	expect_error(U("  app:\n    servers: [10.0.0.1:80]\n  \"my app\":\n    servers: [10.0.0.1:80]\n"),
		     "t.yaml:6:3: upstreams: invalid upstream name \"my app\"; use letters, digits, '_', '.' and '-'");
	expect_error("listeners: [{listen: \":80\"}]\nroutes: [{upstream: app}]\nupstreams: {}\n",
		     "t.yaml:3:12: upstreams: at least one upstream is required, like \"app: { servers: [127.0.0.1:3000] }\"");
#undef U
}

static void test_route_errors(void **state)
{
	static const char head[] = "listeners: [{listen: \":80\"}]\nupstreams:\n  app: {servers: [127.0.0.1:1]}\n"
				   "  api: {servers: [127.0.0.1:2]}\nroutes:\n";
	char doc[512];

	(void)state;
#define R(routes) (snprintf(doc, sizeof doc, "%s%s", head, routes), doc)
	expect_error(R("  - path: /\n    upstream: ap\n"),
		     "t.yaml:7:15: routes[0].upstream: unknown upstream \"ap\"; defined upstreams: app, api");
	expect_error(R("  - path: api/\n    upstream: app\n"),
		     "t.yaml:6:11: routes[0].path: expected a path prefix starting with \"/\" like \"/api/\", got \"api/\"");
	expect_error(R("  - host: example.com:8080\n    upstream: app\n"),
		     "t.yaml:6:11: routes[0].host: a route's host has no port (ports in requests are ignored), got "
		     "\"example.com:8080\"");
	expect_error(R("  - host: \"*\"\n    upstream: app\n"),
		     "t.yaml:6:11: routes[0].host: expected a host name like \"example.com\" or \"*.example.com\", got \"*\"");
	expect_error(R("  - host: \"a.*.com\"\n    upstream: app\n"),
		     "t.yaml:6:11: routes[0].host: expected a host name like \"example.com\" or \"*.example.com\", got \"a.*.com\"");
	expect_error(R("  - host: example.com\n"), "t.yaml:6:5: routes[0]: missing required key \"upstream\"");
	expect_error(R("  - upstream: app\n    strip_headers: [\"a:b\"]\n"),
		     "t.yaml:7:21: routes[0].strip_headers[0]: expected a header name like \"x-debug\", got \"a:b\"");
	expect_error(R("  - app\n"), "t.yaml:6:5: routes[0]: expected a mapping like \"upstream: app\", got \"app\"");
	expect_error(R("  []\n"), "t.yaml:6:3: routes: at least one route is required, like \"- upstream: app\"");
	/* a self-referencing alias does not make the walk loop */
	expect_error(R("  &r [*r]\n"), "t.yaml:6:3: routes[0]: expected a mapping like \"upstream: app\", got a list");
#undef R
}

static void test_missing_top_level(void **state)
{
	struct moat_conf_errors err;

	(void)state;
	assert_null(load("workers: 2\n", &err));
	assert_int_equal(err.count, 3);
	assert_string_equal(err.buf, "t.yaml:1:1: missing required key \"listeners\" at the top level\n"
				     "t.yaml:1:1: missing required key \"upstreams\" at the top level\n"
				     "t.yaml:1:1: missing required key \"routes\" at the top level\n");
	moat_conf_errors_free(&err);
}

static void test_header_size_below_request_line(void **state)
{
	(void)state;
	expect_error(MINIMAL_TAIL "limits:\n  request_line: 64KiB\n  header_size: 16KiB\n",
		     "t.yaml:10:16: limits.header_size (16KiB) must be at least limits.request_line (64KiB)");
	/* header_size left at its default: reported at request_line */
	expect_error(MINIMAL_TAIL "limits:\n  request_line: 64KiB\n",
		     "t.yaml:9:17: limits.header_size (32KiB) must be at least limits.request_line (64KiB)");
	expect_error(MINIMAL_TAIL "limits:\n  header_size: 4KiB\n  request_line: 8KiB\n",
		     "t.yaml:9:16: limits.header_size (4KiB) must be at least limits.request_line (8KiB)");
}

/* header_size set alone below the default request_line lowers request_line with it */
static void test_header_size_lowers_request_line(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok(MINIMAL_TAIL "limits:\n  header_size: 4KiB\n");
	assert_int_equal(c->limits.header_size_max, 4096);
	assert_int_equal(c->limits.request_line_max, 4096);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "limits:\n  header_size: 1KiB\n  header_count: 10\n");
	assert_int_equal(c->limits.request_line_max, 1024);
	moat_conf_free(c);
	/* at or above the default: request_line keeps its default */
	c = load_ok(MINIMAL_TAIL "limits:\n  header_size: 8KiB\n");
	assert_int_equal(c->limits.request_line_max, MOAT_DEFAULT_REQUEST_LINE_MAX);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "limits:\n  header_size: 2KiB\n  request_line: 2KiB\n");
	assert_int_equal(c->limits.request_line_max, 2048);
	moat_conf_free(c);
}

static void test_multiple_errors(void **state)
{
	struct moat_conf_errors err;
	static const char doc[] =
		"workers: many\n"                  /* 1 */
		"timeouts:\n"                      /* 2 */
		"  keepalive: fast\n"              /* 3 */
		"  drian: 10s\n"                   /* 4 */
		"listeners:\n"                     /* 5 */
		"  - listen: 127.0.0.1:99999\n"    /* 6 */
		"upstreams:\n"                     /* 7 */
		"  app:\n"                         /* 8 */
		"    servers: [wss://a:1]\n"       /* 9 */
		"  unused: {servers: [1.2.3.4:5]}\n" /* 10 */
		"routes:\n"                        /* 11 */
		"  - upstream: nope\n";            /* 12 */

	(void)state;
	assert_null(load(doc, &err));
	assert_int_equal(err.count, 6);
	/* sorted by position, whatever order the checks ran in */
	assert_string_equal(err.buf,
		"t.yaml:1:10: workers: expected \"auto\" or an integer between 1 and 1024, got \"many\"\n"
		"t.yaml:3:14: timeouts.keepalive: expected a duration like \"75s\" or \"500ms\", got \"fast\"\n"
		"t.yaml:4:3: unknown key \"drian\" in timeouts; expected one of: client_header, client_body, keepalive, "
		"client_send, backend_connect, backend_first_byte, backend_idle, drain\n"
		"t.yaml:6:13: listeners[0].listen: port must be between 1 and 65535, got 99999\n"
		"t.yaml:9:15: upstreams.app.servers[0]: unsupported scheme \"wss\" (expected http://, https://, h2c:// or h2://)\n"
		"t.yaml:12:15: routes[0].upstream: unknown upstream \"nope\"; defined upstreams: app, unused\n");
	moat_conf_errors_free(&err);

	/* a NULL buffer: still fails, silently */
	assert_null(moat_conf_load_buffer("t.yaml", doc, strlen(doc), NULL));
}

static void test_too_many_errors(void **state)
{
	struct moat_conf_errors err;
	char *doc = malloc(200 * 16 + 256);
	size_t o = 0;
	int i;

	(void)state;
	assert_non_null(doc);
	o += (size_t)sprintf(doc + o, MINIMAL_TAIL "timeouts:\n");
	for (i = 0; i < 150; i++)
		o += (size_t)sprintf(doc + o, "  bad%d: 1\n", i);
	assert_null(load(doc, &err));
	assert_int_equal(err.count, MOAT_CONF_MAX_ERRORS + 1);
	assert_has_line(&err, "t.yaml:109:3: too many errors, stopping here");
	moat_conf_errors_free(&err);
	free(doc);
}

static void test_alias_budget(void **state)
{
	struct moat_conf_errors err;
	size_t cap = 1 << 20, o = 0;
	char *doc = malloc(cap);
	int i;

	(void)state;
	assert_non_null(doc);
	/* 300 upstreams sharing one list of 1000 servers: 300000 values */
	o += (size_t)snprintf(doc + o, cap - o, "listeners: [{listen: \":80\"}]\nroutes: [{upstream: u0}]\n"
					      "upstreams:\n  u0:\n    servers: &s\n");
	for (i = 0; i < 1000; i++)
		o += (size_t)snprintf(doc + o, cap - o, "      - 127.0.%d.%d:80\n", i / 250, i % 250 + 1);
	for (i = 1; i < 300; i++)
		o += (size_t)snprintf(doc + o, cap - o, "  u%d: {servers: *s}\n", i);
	assert_null(load(doc, &err));
	assert_int_equal(err.count, 1);
	assert_non_null(strstr(err.buf, "the configuration is too large: more than 200000 values"));
	moat_conf_errors_free(&err);
	free(doc);
}

static void test_unused_upstream(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL "  - {host: a.example, upstream: app}\n");

	(void)state;
	moat_conf_free(c);
	c = load_ok("listeners: [{listen: \":80\"}]\nupstreams:\n  a: {servers: [127.0.0.1:1]}\n"
		    "  b: {servers: [127.0.0.1:2]}\n  c: {servers: [127.0.0.1:3]}\nroutes: [{upstream: c}, {upstream: a}]\n");
	assert_int_equal(c->upstreams[0].used, 1);
	assert_int_equal(c->upstreams[1].used, 0);
	assert_int_equal(c->upstreams[2].used, 1);
	assert_int_equal(c->routes[0].upstream, 2);
	assert_int_equal(c->routes[1].upstream, 0);
	moat_conf_free(c);
}

static void test_route_hosts(void **state)
{
	struct moat_conf *c = load_ok(
		"listeners: [{listen: \":80\"}]\nupstreams: {a: {servers: [127.0.0.1:1]}}\nroutes:\n"
		"  - {host: WWW.Example.Org, upstream: a}\n  - {host: \"*.Sub.Example.org\", upstream: a}\n"
		"  - {host: \"[::1]\", upstream: a}\n  - {host: 10.0.0.1, upstream: a, path: /}\n");

	(void)state;
	assert_string_equal(c->routes[0].host, "www.example.org");
	assert_int_equal(c->routes[0].host_wildcard, 0);
	assert_string_equal(c->routes[1].host, ".sub.example.org");
	assert_int_equal(c->routes[1].host_wildcard, 1);
	assert_string_equal(c->routes[2].host, "[::1]");
	assert_string_equal(c->routes[3].host, "10.0.0.1");
	assert_string_equal(c->routes[3].path_prefix, "/");
	assert_int_equal(c->routes[3].path_prefix_len, 1);
	moat_conf_free(c);
}

static int resolve_again(void **state)
{
	(void)state;
	moat_conf_no_resolve = 0;
	return 0;
}

static void test_no_resolve(void **state)
{
	struct moat_conf *c;

	(void)state;
	moat_conf_no_resolve = 1;
	expect_error("listeners: [{listen: \":80\"}]\nupstreams: {a: {servers: [localhost:80]}}\nroutes: [{upstream: a}]\n",
		     "t.yaml:2:27: upstreams.a.servers[0]: cannot resolve \"localhost\": name resolution is disabled");
	c = load_ok(MINIMAL_TAIL);
	moat_conf_free(c);
	moat_conf_no_resolve = 0;
}

/* ---- files ----------------------------------------------------------------------- */

static void test_load_file(void **state)
{
	char path[] = "/tmp/moat-conf-test-XXXXXX";
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;
	int fd;

	(void)state;
	c = moat_conf_load_file("/nonexistent/moat.yaml", &err);
	assert_null(c);
	assert_string_equal(err.buf, "/nonexistent/moat.yaml: cannot open: No such file or directory\n");
	moat_conf_errors_free(&err);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_yaml, strlen(full_yaml)), (ssize_t)strlen(full_yaml));
	close(fd);
	c = moat_conf_load_file(path, &err);
	assert_non_null(c);
	assert_string_equal(c->file, path);
	assert_int_equal(c->nroutes, 3);
	moat_conf_free(c);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "workers: x\n", 11), 11);
	close(fd);
	c = moat_conf_load_file(path, &err);
	assert_null(c);
	assert_non_null(strstr(err.buf, ":1:10: workers: expected"));
	assert_int_equal(strncmp(err.buf, path, strlen(path)), 0);
	moat_conf_errors_free(&err);
	unlink(path);
}

/* ---- one-line mode --------------------------------------------------------------- */

static void test_proxy_args(void **state)
{
	static const char *const to[] = { "http://127.0.0.1:3000", "127.0.0.1:3001", "http://[::1]" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	c = moat_conf_from_proxy_args("127.0.0.1:8080", to, 3, 2, &err);
	assert_non_null(c);
	assert_null(c->file);
	assert_int_equal(c->workers, 2);
	assert_int_equal(c->nlisteners, 1);
	assert_v4(&c->listeners[0].addr, "127.0.0.1", 8080);
	assert_int_equal(c->listeners[0].backlog, MOAT_DEFAULT_BACKLOG);
	assert_int_equal(c->nupstreams, 1);
	assert_string_equal(c->upstreams[0].name, "default");
	assert_int_equal(c->upstreams[0].used, 1);
	assert_int_equal(c->upstreams[0].nservers, 3);
	assert_v4(&c->upstreams[0].servers[0].addr, "127.0.0.1", 3000);
	assert_v4(&c->upstreams[0].servers[1].addr, "127.0.0.1", 3001);
	assert_v6(&c->upstreams[0].servers[2].addr, "::1", 80);
	assert_int_equal(c->upstreams[0].servers[2].weight, 1);
	assert_int_equal(c->nroutes, 1);
	assert_null(c->routes[0].host);
	assert_null(c->routes[0].path_prefix);
	assert_int_equal(c->routes[0].upstream, 0);
	assert_string_equal(c->access_log, "stdout");
	assert_int_equal(c->timeouts.keepalive, MOAT_DEFAULT_TIMEOUT_KEEPALIVE_MS);
	moat_conf_free(c);

	c = moat_conf_from_proxy_args(":8080", to, 1, 0, &err);
	assert_non_null(c);
	assert_v4(&c->listeners[0].addr, "0.0.0.0", 8080);
	moat_conf_free(c);
}

static void test_proxy_args_errors(void **state)
{
	static const char *const bad[] = { "ftp://x", "127.0.0.1", "wss://127.0.0.1:443", "http://127.0.0.1:3000" };
	struct moat_conf_errors err = { 0 };

	(void)state;
	assert_null(moat_conf_from_proxy_args("8080", bad + 3, 1, 0, &err));
	assert_string_equal(err.buf, "--from: expected an address like \"127.0.0.1:8080\", \"[::1]:8080\" or \":8080\", "
				     "got \"8080\" (missing port)\n");
	moat_conf_errors_free(&err);

	assert_null(moat_conf_from_proxy_args("127.0.0.1:8080", bad, 3, 0, &err));
	assert_int_equal(err.count, 3);
	assert_string_equal(err.buf,
		"--to: unsupported scheme \"ftp\" (expected http://, https://, h2c:// or h2://) (in \"ftp://x\")\n"
		"--to: expected http://host:port, got \"127.0.0.1\" (missing port)\n"
		"--to: unsupported scheme \"wss\" (expected http://, https://, h2c:// or h2://) (in \"wss://127.0.0.1:443\")\n");
	moat_conf_errors_free(&err);

	assert_null(moat_conf_from_proxy_args("127.0.0.1:8080", bad, 0, 0, &err));
	assert_string_equal(err.buf, "--to: between 1 and 1024 backends are needed, like --to http://127.0.0.1:3000\n");
	moat_conf_errors_free(&err);

	assert_null(moat_conf_from_proxy_args("127.0.0.1:8080", bad + 3, 1, 5000, &err));
	assert_string_equal(err.buf, "--workers: expected an integer between 1 and 1024, got 5000\n");
	moat_conf_errors_free(&err);
}

/* ---- print and load back ---------------------------------------------------------- */

static void test_print_roundtrip(void **state)
{
	static const char *const to[] = { "http://127.0.0.1:3000", "[::1]:3001" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	c = load_ok(full_yaml);
	roundtrip(c);
	moat_conf_free(c);

	c = load_ok(MINIMAL_TAIL);
	roundtrip(c);
	moat_conf_free(c);

	/* strings that need quoting and escapes */
	c = load_ok("log:\n  error: \"/tmp/a \\\"b\\\" \\\\ \\u00e9 \\x85 \\u2028 \\U0001F600: #x\"\n"
		    "  access: \"off\"\nlimits: {body: 1099511627776, request_line: 1000}\n"
		    "timeouts: {drain: 1500ms, keepalive: 1h1s}\n"
		    "proxy: {trusted_proxies: [\"10.1.2.3/9\", \"2001:db8::1/33\", 0.0.0.0/0]}\n" MINIMAL_TAIL
		    "  - {host: \"*.X.org\", path: \"/caf\\u00e9/\", upstream: app, strip_headers: [\"X-A\"]}\n");
	roundtrip(c);
	moat_conf_free(c);

	c = moat_conf_from_proxy_args(":8080", to, 2, 3, &err);
	assert_non_null(c);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_print_text(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "\nworkers: auto\n"));
	assert_non_null(strstr(text, "\n  keepalive: 75s\n"));
	assert_non_null(strstr(text, "\n  request_line: 8KiB\n"));
	assert_non_null(strstr(text, "\n  - listen: \"127.0.0.1:8080\"\n    backlog: 511\n"));
	moat_conf_free(c);
	free(text);
}

static void test_equal(void **state)
{
	struct moat_conf *a = load_ok(MINIMAL_TAIL);
	struct moat_conf *b = load_ok("\n\n" MINIMAL_TAIL);

	(void)state;
	assert_true(moat_conf_equal(a, b)); /* positions differ */
	b->limits.body_max = 1;
	assert_false(moat_conf_equal(a, b));
	moat_conf_free(b);
	b = load_ok(MINIMAL_TAIL "  - {upstream: app}\n");
	assert_false(moat_conf_equal(a, b));
	moat_conf_free(b);
	b = load_ok("listeners: [{listen: 127.0.0.1:8080}]\nupstreams: {app: {servers: [127.0.0.1:3000]}}\n"
		    "routes: [{upstream: app}]\n");
	assert_true(moat_conf_equal(a, b));
	moat_conf_free(b);
	b = load_ok("listeners: [{listen: 127.0.0.1:8081}]\nupstreams: {app: {servers: [127.0.0.1:3000]}}\n"
		    "routes: [{upstream: app}]\n");
	assert_false(moat_conf_equal(a, b));
	moat_conf_free(b);
	moat_conf_free(a);
}

/* ---- value parsers --------------------------------------------------------------- */

static void test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
		{ "10s", 10000 }, { "250ms", 250 }, { "2m", 120000 }, { "1h", 3600000 }, { "30", 30000 },
		{ "0", 0 },       { "1h30m", 5400000 }, { "1m5s250ms", 65250 }, { "18446744073709551ms", 18446744073709551ull },
	};
	static const char *const bad[] = {
		"", "s", "10x", "1.5s", "-1s", " 1s", "1s ", "10S", "1 s", "ms", "10sm", "99999999999999999999",
		"18446744073709552s", "1h-", "+5",
	};
	uint64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(moat_conf_parse_duration(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (moat_conf_parse_duration(bad[i], &ms) != -1)
			fail_msg("\"%s\" parsed as a duration", bad[i]);
	assert_int_equal(moat_conf_parse_duration(NULL, &ms), -1);
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t b;
	} ok[] = {
		{ "512", 512 }, { "512B", 512 }, { "64KiB", 65536 }, { "1MiB", 1048576 }, { "2GiB", 2147483648ull },
		{ "10kB", 10000 }, { "10KB", 10000 }, { "10MB", 10000000 }, { "3GB", 3000000000ull }, { "0", 0 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "KiB", "1 KiB", "1kib", "1.5MiB", "-1", "1K", "1Mi", "18446744073709551616", "17179869184GiB", "1B ",
	};
	uint64_t b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(moat_conf_parse_size(ok[i].s, &b), 0);
		assert_int_equal(b, ok[i].b);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (moat_conf_parse_size(bad[i], &b) != -1)
			fail_msg("\"%s\" parsed as a size", bad[i]);
}

static void test_parse_cidr(void **state)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "::1/129", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8",
		"fe80::1%eth0/64", "10.0.0.0/ 8", "10.0.0.0/0008", "localhost", "1.2.3.4.5",
	};
	struct moat_conf_cidr b;
	size_t i;

	(void)state;
	assert_int_equal(moat_conf_parse_cidr("10.1.2.3/8", &b), 0);
	assert_int_equal(b.family, AF_INET);
	assert_int_equal(b.prefix, 8);
	assert_memory_equal(b.addr, "\x0a\x00\x00\x00", 4); /* masked */
	assert_int_equal(moat_conf_parse_cidr("192.168.1.255/23", &b), 0);
	assert_memory_equal(b.addr, "\xc0\xa8\x00\x00", 4);
	assert_int_equal(moat_conf_parse_cidr("1.2.3.4", &b), 0);
	assert_int_equal(b.prefix, 32);
	assert_int_equal(moat_conf_parse_cidr("0.0.0.0/0", &b), 0);
	assert_int_equal(b.prefix, 0);
	assert_int_equal(moat_conf_parse_cidr("::1", &b), 0);
	assert_int_equal(b.family, AF_INET6);
	assert_int_equal(b.prefix, 128);
	assert_int_equal(moat_conf_parse_cidr("2001:db8:ffff::/33", &b), 0);
	assert_memory_equal(b.addr, "\x20\x01\x0d\xb8\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16);
	assert_int_equal(moat_conf_parse_cidr("::ffff:10.0.0.1/120", &b), 0);
	assert_int_equal(b.family, AF_INET6);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (moat_conf_parse_cidr(bad[i], &b) != -1)
			fail_msg("\"%s\" parsed as a CIDR block", bad[i]);
}

static int match4(const struct moat_conf_cidr *l, size_t n, const char *ip)
{
	struct sockaddr_in s4;

	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &s4.sin_addr), 1);
	return moat_conf_cidr_match(l, n, (const struct sockaddr *)&s4);
}

static int match6(const struct moat_conf_cidr *l, size_t n, const char *ip)
{
	struct sockaddr_in6 s6;

	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &s6.sin6_addr), 1);
	return moat_conf_cidr_match(l, n, (const struct sockaddr *)&s6);
}

static void test_cidr_match(void **state)
{
	struct moat_conf_cidr b[3];
	struct sockaddr sa;

	(void)state;
	/* /0 matches its whole family, and only it */
	assert_int_equal(moat_conf_parse_cidr("0.0.0.0/0", &b[0]), 0);
	assert_true(match4(b, 1, "1.2.3.4"));
	assert_true(match4(b, 1, "255.255.255.255"));
	assert_false(match6(b, 1, "2001:db8::1"));
	assert_true(match6(b, 1, "::ffff:1.2.3.4")); /* v4-mapped */
	assert_int_equal(moat_conf_parse_cidr("::/0", &b[0]), 0);
	assert_true(match6(b, 1, "ffff::1"));
	assert_false(match4(b, 1, "1.2.3.4"));

	/* full-length prefixes */
	assert_int_equal(moat_conf_parse_cidr("10.0.0.1/32", &b[0]), 0);
	assert_true(match4(b, 1, "10.0.0.1"));
	assert_false(match4(b, 1, "10.0.0.0"));
	assert_false(match4(b, 1, "10.0.0.2"));
	assert_true(match6(b, 1, "::ffff:10.0.0.1"));
	assert_false(match6(b, 1, "::10.0.0.1")); /* v4-compatible is not v4-mapped */
	assert_int_equal(moat_conf_parse_cidr("2001:db8::1/128", &b[0]), 0);
	assert_true(match6(b, 1, "2001:db8::1"));
	assert_false(match6(b, 1, "2001:db8::0"));
	assert_false(match6(b, 1, "2001:db8::3"));

	/* prefixes not on a byte boundary */
	assert_int_equal(moat_conf_parse_cidr("172.16.0.0/12", &b[0]), 0);
	assert_true(match4(b, 1, "172.16.0.0"));
	assert_true(match4(b, 1, "172.31.255.255"));
	assert_false(match4(b, 1, "172.32.0.0"));
	assert_false(match4(b, 1, "172.15.255.255"));
	assert_int_equal(moat_conf_parse_cidr("128.0.0.0/1", &b[0]), 0);
	assert_true(match4(b, 1, "128.0.0.0"));
	assert_false(match4(b, 1, "127.255.255.255"));
	assert_int_equal(moat_conf_parse_cidr("10.0.0.0/31", &b[0]), 0);
	assert_true(match4(b, 1, "10.0.0.1"));
	assert_false(match4(b, 1, "10.0.0.2"));
	assert_int_equal(moat_conf_parse_cidr("2001:db8::/127", &b[0]), 0);
	assert_true(match6(b, 1, "2001:db8::1"));
	assert_false(match6(b, 1, "2001:db8::2"));
	assert_int_equal(moat_conf_parse_cidr("fe80::/10", &b[0]), 0);
	assert_true(match6(b, 1, "febf:ffff::1"));
	assert_false(match6(b, 1, "fec0::1"));

	/* a list: any block */
	assert_int_equal(moat_conf_parse_cidr("10.0.0.0/8", &b[0]), 0);
	assert_int_equal(moat_conf_parse_cidr("::1", &b[1]), 0);
	assert_int_equal(moat_conf_parse_cidr("192.168.0.0/16", &b[2]), 0);
	assert_true(match4(b, 3, "192.168.7.7"));
	assert_true(match6(b, 3, "::1"));
	assert_false(match4(b, 3, "11.0.0.1"));
	assert_false(match4(b, 0, "10.0.0.1"));

	/* other families never match */
	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNIX;
	assert_false(moat_conf_cidr_match(b, 3, &sa));
	assert_false(moat_conf_cidr_match(b, 3, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_sections_and_special_values),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_listener_errors),
		cmocka_unit_test(test_upstream_errors),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_missing_top_level),
		cmocka_unit_test(test_header_size_below_request_line),
		cmocka_unit_test(test_header_size_lowers_request_line),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_too_many_errors),
		cmocka_unit_test(test_alias_budget),
		cmocka_unit_test(test_unused_upstream),
		cmocka_unit_test(test_route_hosts),
		cmocka_unit_test_teardown(test_no_resolve, resolve_again),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_proxy_args),
		cmocka_unit_test(test_proxy_args_errors),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_print_text),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_cidr_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
