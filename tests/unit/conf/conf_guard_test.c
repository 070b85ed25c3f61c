/*
 * conf_guard_test.c - unit tests of the gatekeeper's configuration
 * (src/conf/conf_guard.c and its schema keys): the defaults of every key,
 * accepted values, each refusal at its exact file:line:column, address
 * lists inline and from files and their longest-prefix answers, named
 * rate limits and their resolution on routes, automatic bans, the WAF of
 * a route, the print round trip and the trusted-proxy trie.
 *
 * List files are written with mkstemp under /tmp and removed by the test
 * that wrote them. No DNS: every address is numeric.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/conf_guard.h" /* moat_conf_parse_rate */
#include "core/cidr.h"
#include "core/limits.h"

#include "conf_test_util.h"

/* ---- helpers ------------------------------------------------------------------ */

/* A socket address for the numeric `ip` (IPv4 or IPv6), port 0. */
static const struct sockaddr *sa_of(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			fail_msg("bad IPv6 address in the test: %s", ip);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			fail_msg("bad IPv4 address in the test: %s", ip);
	}
	return (const struct sockaddr *)ss;
}

static int allows(const struct moat_conf_acl *acl, const char *ip)
{
	struct sockaddr_storage ss;

	return moat_conf_acl_allows(acl, sa_of(ip, &ss));
}

static int trusted(const struct moat_conf *c, const char *ip)
{
	struct sockaddr_storage ss;

	return moat_cidr_trie_lookup(c->trusted_trie, sa_of(ip, &ss));
}

/* The files a test wrote, removed by its teardown even when it fails. */
static char tmp_files[16][32];
static size_t ntmp_files;

static int remove_tmp_files(void **state)
{
	(void)state;
	while (ntmp_files > 0)
		unlink(tmp_files[--ntmp_files]);
	return 0;
}

/* Writes `len` bytes of `data` to a new file /tmp/moat_guard_XXXXXX; its
 * name goes to `path` (at least 32 bytes). */
static void write_tmp(char *path, const char *data, size_t len)
{
	int fd;

	strcpy(path, "/tmp/moat_guard_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(ntmp_files < sizeof tmp_files / sizeof tmp_files[0]);
	strcpy(tmp_files[ntmp_files++], path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void write_tmp_str(char *path, const char *text)
{
	write_tmp(path, text, strlen(text));
}

/* `doc` with its one occurrence of `from` replaced by `to` (malloc'd). */
static char *replace_once(const char *doc, const char *from, const char *to)
{
	const char *at = strstr(doc, from);
	size_t n;
	char *out;

	if (at == NULL || strstr(at + 1, from) != NULL)
		fail_msg("\"%s\" is not in the document exactly once", from);
	n = strlen(doc) - strlen(from) + strlen(to) + 1;
	out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - doc), doc, to, at + strlen(from));
	return out;
}

/* The routes part of MINIMAL_TAIL ends with "  - upstream: app\n": these
 * keys go right after it, on the route. */
#define ROUTE(keys) MINIMAL_TAIL keys

/* ---- defaults --------------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL);
	const struct moat_conf_route *r = &c->routes[0];
	const struct moat_conf_listener *l = &c->listeners[0];

	(void)state;
	assert_int_equal(c->limits.conns_per_ip, 0);
	assert_int_equal(c->limits.conns_total, 0);
	assert_int_equal(c->limits.min_body_rate, 512);
	assert_int_equal(c->limits.min_send_rate, 512);
	assert_int_equal(c->limits.rate_limit_keys, 1000000);
	assert_int_equal(c->client_ip, MOAT_CLIENT_IP_XFF);
	assert_int_equal(c->refusal_log_rate, 20);
	assert_int_equal(c->nrate_limits, 0);
	assert_null(c->rate_limits);
	assert_null(c->trusted_trie);
	/* bans: off without the block (its values still hold the defaults) */
	assert_int_equal(c->bans.enabled, 0);
	assert_int_equal(c->bans.threshold, 20);
	/* a listener's list: empty, allows everything */
	assert_int_equal(l->acl.nallow + l->acl.ndeny, 0);
	assert_null(l->acl.allow_file);
	assert_null(l->acl.deny_file);
	assert_null(l->acl.trie);
	assert_int_equal(l->acl.default_deny, 0);
	assert_true(allows(&l->acl, "192.0.2.1"));
	assert_true(allows(&l->acl, "2001:db8::1"));
	assert_int_equal(l->proxy_protocol, 0);
	/* a route: no body limit of its own, no rate limit, WAF off with defaults */
	assert_null(r->acl.trie);
	assert_int_equal(r->has_body_max, 0);
	assert_int_equal(r->nrate_limits, 0);
	assert_null(r->rate_limits);
	assert_null(r->rate_limit_names);
	assert_int_equal(r->waf.enabled, 0);
	assert_int_equal(r->waf.detect_only, 0);
	assert_int_equal(r->waf.paranoia, 1);
	assert_int_equal(r->waf.anomaly_threshold, 5);
	assert_int_equal(r->waf.body_limit, 128 * 1024);
	assert_null(r->waf.crs);
	moat_conf_free(c);
}

static void assert_ban_defaults(const struct moat_conf *c)
{
	assert_int_equal(c->bans.enabled, 1);
	assert_int_equal(c->bans.threshold, 20);
	assert_int_equal(c->bans.window_ms, 60000);
	assert_int_equal(c->bans.duration_ms, 600000);
	assert_int_equal(c->bans.max_duration_ms, 86400000);
	assert_int_equal(c->bans.on, (1u << MOAT_OFFENSE_MALFORMED) | (1u << MOAT_OFFENSE_RATE_LIMIT) |
					     (1u << MOAT_OFFENSE_WAF));
	assert_int_equal(c->bans.nexempt, 0);
	assert_null(c->bans.exempt);
}

static void test_ban_defaults(void **state)
{
	struct moat_conf *c;

	(void)state;
	/* present means on, whatever the block holds */
	c = load_ok(MINIMAL_TAIL "bans:\n");
	assert_ban_defaults(c);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "bans: {}\n");
	assert_ban_defaults(c);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "bans: ~\n");
	assert_ban_defaults(c);
	moat_conf_free(c);

	/* a first ban longer than the default ceiling raises the ceiling with it */
	c = load_ok(MINIMAL_TAIL "bans:\n  duration: 48h\n");
	assert_int_equal(c->bans.duration_ms, 48 * 3600000ull);
	assert_int_equal(c->bans.max_duration_ms, 48 * 3600000ull);
	moat_conf_free(c);

	/* every key */
	c = load_ok(MINIMAL_TAIL "bans:\n  threshold: 5\n  window: 30s\n  duration: 1h\n  max_duration: 168h\n"
				 "  on: [acl, 4xx, malformed]\n  exempt: [10.0.0.0/8, \"2001:db8::/32\"]\n");
	assert_int_equal(c->bans.enabled, 1);
	assert_int_equal(c->bans.threshold, 5);
	assert_int_equal(c->bans.window_ms, 30000);
	assert_int_equal(c->bans.duration_ms, 3600000);
	assert_int_equal(c->bans.max_duration_ms, 7 * 24 * 3600000ull);
	assert_int_equal(c->bans.on,
			 (1u << MOAT_OFFENSE_ACL) | (1u << MOAT_OFFENSE_4XX) | (1u << MOAT_OFFENSE_MALFORMED));
	assert_int_equal(c->bans.nexempt, 2);
	assert_int_equal(c->bans.exempt[0].family, AF_INET);
	assert_int_equal(c->bans.exempt[0].prefix, 8);
	assert_int_equal(c->bans.exempt[1].family, AF_INET6);
	assert_int_equal(c->bans.exempt[1].prefix, 32);
	moat_conf_free(c);

	/* an empty "on" counts nothing; the names */
	c = load_ok(MINIMAL_TAIL "bans:\n  on: []\n");
	assert_int_equal(c->bans.on, 0);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "bans:\n  on: [rate_limit, waf, rate_limit]\n");
	assert_int_equal(c->bans.on, (1u << MOAT_OFFENSE_RATE_LIMIT) | (1u << MOAT_OFFENSE_WAF));
	moat_conf_free(c);
	assert_string_equal(moat_conf_offense_names[MOAT_OFFENSE_MALFORMED], "malformed");
	assert_string_equal(moat_conf_offense_names[MOAT_OFFENSE_RATE_LIMIT], "rate_limit");
	assert_string_equal(moat_conf_offense_names[MOAT_OFFENSE_WAF], "waf");
	assert_string_equal(moat_conf_offense_names[MOAT_OFFENSE_ACL], "acl");
	assert_string_equal(moat_conf_offense_names[MOAT_OFFENSE_4XX], "4xx");
}

static void test_waf_values(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok(ROUTE("    waf: on\n  - {upstream: app, waf: off}\n  - {upstream: app, waf: {}}\n"
			  "  - {upstream: app, waf: true}\n"));
	assert_int_equal(c->nroutes, 4);
	assert_int_equal(c->routes[0].waf.enabled, 1);
	assert_int_equal(c->routes[0].waf.detect_only, 0);
	assert_int_equal(c->routes[0].waf.paranoia, 1);
	assert_int_equal(c->routes[0].waf.anomaly_threshold, 5);
	assert_int_equal(c->routes[0].waf.body_limit, 131072);
	assert_int_equal(c->routes[1].waf.enabled, 0);
	assert_int_equal(c->routes[2].waf.enabled, 1); /* a mapping turns it on */
	assert_int_equal(c->routes[2].waf.paranoia, 1);
	assert_int_equal(c->routes[3].waf.enabled, 1);
	moat_conf_free(c);

	c = load_ok(ROUTE("    waf:\n      mode: detect\n      paranoia: 4\n      anomaly_threshold: 10000\n"
			  "      body_limit: 16MiB\n      crs: /usr/share/modsecurity-crs\n"
			  "  - {upstream: app, waf: {mode: block, paranoia: 1, anomaly_threshold: 1, body_limit: 0}}\n"));
	assert_int_equal(c->routes[0].waf.enabled, 1);
	assert_int_equal(c->routes[0].waf.detect_only, 1);
	assert_int_equal(c->routes[0].waf.paranoia, 4);
	assert_int_equal(c->routes[0].waf.anomaly_threshold, 10000);
	assert_int_equal(c->routes[0].waf.body_limit, 16 * 1024 * 1024);
	assert_string_equal(c->routes[0].waf.crs, "/usr/share/modsecurity-crs");
	assert_int_equal(c->routes[1].waf.detect_only, 0);
	assert_int_equal(c->routes[1].waf.anomaly_threshold, 1);
	assert_int_equal(c->routes[1].waf.body_limit, 0);
	moat_conf_free(c);
}

/* ---- accepted values ---------------------------------------------------------------- */

static void test_accepted_values(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok("limits:\n  connections_per_ip: 100\n  connections_total: 1000000\n  min_body_rate: 1KiB\n"
		    "  min_send_rate: 0\n  rate_limit_keys: 1024\n"
		    "log:\n  refusal_rate: 0\nproxy:\n  client_ip: forwarded\n"
		    "listeners:\n  - listen: 127.0.0.1:8080\n    proxy_protocol: true\n"
		    "    allow: [10.0.0.0/8, \"::1\"]\n    deny: [10.1.2.3/16]\n"
		    "upstreams:\n  app:\n    servers: [127.0.0.1:3000]\n"
		    "routes:\n  - upstream: app\n    body: 1MiB\n  - upstream: app\n    body: 0\n");
	assert_int_equal(c->limits.conns_per_ip, 100);
	assert_int_equal(c->limits.conns_total, 1000000);
	assert_int_equal(c->limits.min_body_rate, 1024);
	assert_int_equal(c->limits.min_send_rate, 0);
	assert_int_equal(c->limits.rate_limit_keys, 1024);
	assert_int_equal(c->refusal_log_rate, 0);
	assert_int_equal(c->client_ip, MOAT_CLIENT_IP_FORWARDED);
	assert_int_equal(c->listeners[0].proxy_protocol, 1);
	assert_int_equal(c->listeners[0].acl.nallow, 2);
	assert_int_equal(c->listeners[0].acl.ndeny, 1);
	assert_int_equal(c->listeners[0].acl.allow[1].family, AF_INET6);
	assert_int_equal(c->listeners[0].acl.allow[1].prefix, 128);
	/* host bits are masked */
	assert_int_equal(c->listeners[0].acl.deny[0].prefix, 16);
	assert_int_equal(c->listeners[0].acl.deny[0].addr[2], 0);
	assert_int_equal(c->listeners[0].acl.deny[0].addr[3], 0);
	assert_non_null(c->listeners[0].acl.trie);
	assert_int_equal(c->listeners[0].acl.default_deny, 1);
	assert_int_equal(c->routes[0].has_body_max, 1);
	assert_int_equal(c->routes[0].body_max, 1048576);
	assert_int_equal(c->routes[1].has_body_max, 1);
	assert_int_equal(c->routes[1].body_max, 0);
	moat_conf_free(c);

	c = load_ok("proxy: {client_ip: none}\nlog: {refusal_rate: 1000000}\n"
		    "limits: {min_body_rate: 1GiB, min_send_rate: 1GiB, rate_limit_keys: 100000000,"
		    " connections_per_ip: 0, connections_total: 0}\n" MINIMAL_TAIL);
	assert_int_equal(c->client_ip, MOAT_CLIENT_IP_NONE);
	assert_int_equal(c->refusal_log_rate, 1000000);
	assert_int_equal(c->limits.min_body_rate, 1024ull * 1024 * 1024);
	assert_int_equal(c->limits.min_send_rate, 1024ull * 1024 * 1024);
	assert_int_equal(c->limits.rate_limit_keys, 100000000);
	moat_conf_free(c);

	c = load_ok("proxy: {client_ip: x-forwarded-for}\n" MINIMAL_TAIL);
	assert_int_equal(c->client_ip, MOAT_CLIENT_IP_XFF);
	moat_conf_free(c);
}

/* ---- refused values, at their exact position ------------------------------------------ */

static void test_refused_values(void **state)
{
	(void)state;
	/* address lists */
	expect_error("listeners:\n  - listen: 127.0.0.1:8080\n    allow: [10.0.0.0/8, 10.300.0.0/16]\n"
		     "upstreams:\n  app:\n    servers: [127.0.0.1:3000]\nroutes:\n  - upstream: app\n",
		     "t.yaml:3:25: listeners[0].allow[1]: expected an IP address or CIDR block like \"10.0.0.0/8\" "
		     "or \"::1/128\", got \"10.300.0.0/16\"");
	expect_error(ROUTE("    deny: [\"::1/129\"]\n"),
		     "t.yaml:8:12: routes[0].deny[0]: expected an IP address or CIDR block like \"10.0.0.0/8\" "
		     "or \"::1/128\", got \"::1/129\"");
	expect_error(ROUTE("    allow: [10.0.0.0/33]\n"),
		     "t.yaml:8:13: routes[0].allow[0]: expected an IP address or CIDR block like \"10.0.0.0/8\" "
		     "or \"::1/128\", got \"10.0.0.0/33\"");
	expect_error(ROUTE("    allow_file: \"\"\n"), "t.yaml:8:17: routes[0].allow_file: expected a file path, got an empty value");
	expect_error(ROUTE("    deny_file: \"/a\\nb\"\n"), "t.yaml:8:16: routes[0].deny_file: expected a file path, got \"/a\\x0ab\"");
	expect_error(ROUTE("    body: lots\n"),
		     "t.yaml:8:11: routes[0].body: expected a size like \"1MiB\" or 0 for unlimited, got \"lots\"");

	/* rate_limits */
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/d}\n",
		     "t.yaml:9:13: rate_limits.a.rate: expected a rate like \"10/s\", \"600/m\" or \"20/h\" "
		     "(1 to 1000000000), got \"10/d\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 0/s}\n",
		     "t.yaml:9:13: rate_limits.a.rate: expected a rate like \"10/s\", \"600/m\" or \"20/h\" "
		     "(1 to 1000000000), got \"0/s\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 1000000001/s}\n",
		     "t.yaml:9:13: rate_limits.a.rate: expected a rate like \"10/s\", \"600/m\" or \"20/h\" "
		     "(1 to 1000000000), got \"1000000001/s\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, burst: many}\n",
		     "t.yaml:9:26: rate_limits.a.burst: expected a number of requests (0 to 1000000000), got \"many\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, burst: 5, delay_after: 6}\n",
		     "t.yaml:9:42: delay_after (6) must not be above burst (5)");
	/* burst left at 0: any delay_after above it */
	expect_error(MINIMAL_TAIL "rate_limits:\n  a:\n    rate: 10/s\n    delay_after: 1\n",
		     "t.yaml:11:18: delay_after (1) must not be above burst (0)");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, delay_after: x}\n",
		     "t.yaml:9:32: rate_limits.a.delay_after: expected a number of requests, got \"x\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, status: 418}\n",
		     "t.yaml:9:27: rate_limits.a.status: expected one of 429, 503; got \"418\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, key: query}\n",
		     "t.yaml:9:24: rate_limits.a.key: expected client_ip, route, \"header:NAME\" or \"cookie:NAME\", "
		     "got \"query\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, key: [client_ip, query]}\n",
		     "t.yaml:9:36: rate_limits.a.key: expected client_ip, route, \"header:NAME\" or \"cookie:NAME\", "
		     "got \"query\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, key: \"header:\"}\n",
		     "t.yaml:9:24: rate_limits.a.key: expected client_ip, route, \"header:NAME\" or \"cookie:NAME\", "
		     "got \"header:\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, key: \"cookie:a b\"}\n",
		     "t.yaml:9:24: rate_limits.a.key: expected client_ip, route, \"header:NAME\" or \"cookie:NAME\", "
		     "got \"cookie:a b\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 10/s, key: []}\n",
		     "t.yaml:9:24: rate_limits.a.key: expected at least one of client_ip, route, \"header:NAME\" or "
		     "\"cookie:NAME\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {key: client_ip}\n",
		     "t.yaml:9:6: rate_limits.a: missing required key \"rate\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: 10/s\n",
		     "t.yaml:9:6: rate_limits.a: expected a mapping like \"{key: client_ip, rate: 10/s, burst: 20}\", "
		     "got \"10/s\"");
	expect_error(MINIMAL_TAIL "rate_limits:\n  \"a b\": {rate: 1/s}\n",
		     "t.yaml:9:3: rate_limits: invalid name \"a b\"; use letters, digits, '_', '.' and '-'");
	expect_error(MINIMAL_TAIL "rate_limits: [a]\n",
		     "t.yaml:8:14: rate_limits: expected a mapping of names to { key: client_ip, rate: 10/s }, got a list");
	expect_error(MINIMAL_TAIL "rate_limits:\n  a: {rate: 1/s, burts: 2}\n",
		     "t.yaml:9:18: unknown key \"burts\" in rate_limits.a; expected one of: key, rate, burst, "
		     "delay_after, status");

	/* a route's rate_limit: a name that no rate_limits entry has */
	expect_error(ROUTE("    rate_limit: nope\n"),
		     "t.yaml:8:17: routes[0].rate_limit: unknown rate limit \"nope\"; define it under rate_limits");
	expect_error(ROUTE("    rate_limit: [a, nope]\nrate_limits:\n  a: {rate: 1/s}\n"),
		     "t.yaml:8:17: routes[0].rate_limit: unknown rate limit \"nope\"; define it under rate_limits");
	expect_error(ROUTE("    rate_limit: \"a b\"\n"),
		     "t.yaml:8:17: routes[0].rate_limit: expected the name of a rate_limits entry, got \"a b\"");

	/* waf */
	expect_error(ROUTE("    waf: maybe\n"),
		     "t.yaml:8:10: routes[0].waf: expected on, off or a mapping like {mode: block, paranoia: 1}, "
		     "got \"maybe\"");
	/* "on" quoted is on (a generated file may quote it); "maybe" quoted is not */
	expect_error(ROUTE("    waf: \"maybe\"\n"),
		     "t.yaml:8:10: routes[0].waf: expected on, off or a mapping like {mode: block, paranoia: 1}, "
		     "got \"maybe\"");
	expect_error(ROUTE("    waf: {mode: foo}\n"), "t.yaml:8:17: routes[0].waf.mode: expected one of block, detect; got \"foo\"");
	expect_error(ROUTE("    waf: {paranoia: 5}\n"),
		     "t.yaml:8:21: routes[0].waf.paranoia: expected an integer between 1 and 4, got \"5\"");
	expect_error(ROUTE("    waf: {paranoia: 0}\n"),
		     "t.yaml:8:21: routes[0].waf.paranoia: expected an integer between 1 and 4, got \"0\"");

	/* bans */
	expect_error(MINIMAL_TAIL "bans:\n  on: [foo]\n",
		     "t.yaml:9:8: bans.on: expected one of malformed, rate_limit, waf, acl, 4xx; got \"foo\"");
	expect_error(MINIMAL_TAIL "bans:\n  on: malformed\n", "t.yaml:9:7: bans.on: expected a list of offense kinds, got \"malformed\"");
	expect_error(MINIMAL_TAIL "bans:\n  duration: 1h\n  max_duration: 10m\n",
		     "t.yaml:10:17: max_duration must be at least duration");
	expect_error(MINIMAL_TAIL "bans:\n  threshold: 0\n",
		     "t.yaml:9:14: bans.threshold: expected an integer between 1 and 1000000, got \"0\"");
	expect_error(MINIMAL_TAIL "bans:\n  exempt: [10.0.0.256]\n",
		     "t.yaml:9:12: bans.exempt[0]: expected an IP address or CIDR block like \"10.0.0.0/8\" or "
		     "\"::1/128\", got \"10.0.0.256\"");

	/* limits, proxy.client_ip, log.refusal_rate */
	expect_error(MINIMAL_TAIL "proxy:\n  client_ip: real-ip\n",
		     "t.yaml:9:14: proxy.client_ip: expected one of x-forwarded-for, forwarded, none; got \"real-ip\"");
	expect_error(MINIMAL_TAIL "log:\n  refusal_rate: 1000001\n",
		     "t.yaml:9:17: log.refusal_rate: expected an integer between 0 and 1000000, got \"1000001\"");
	expect_error(MINIMAL_TAIL "limits:\n  connections_per_ip: 1000001\n",
		     "t.yaml:9:23: limits.connections_per_ip: expected an integer between 0 and 1000000, got \"1000001\"");
	expect_error(MINIMAL_TAIL "limits:\n  connections_total: -1\n",
		     "t.yaml:9:22: limits.connections_total: expected an integer between 0 and 1000000, got \"-1\"");
	expect_error(MINIMAL_TAIL "limits:\n  min_body_rate: 2GiB\n",
		     "t.yaml:9:18: limits.min_body_rate: expected a size between 0B and 1GiB, got \"2GiB\"");
	expect_error(MINIMAL_TAIL "limits:\n  min_send_rate: fast\n",
		     "t.yaml:9:18: limits.min_send_rate: expected a size like \"512\" or \"1MiB\", got \"fast\"");
	expect_error("listeners:\n  - listen: 127.0.0.1:8080\n    proxy_protocol: maybe\n"
		     "upstreams:\n  app:\n    servers: [127.0.0.1:3000]\nroutes:\n  - upstream: app\n",
		     "t.yaml:3:21: listeners[0].proxy_protocol: expected true or false, got \"maybe\"");
}

/* Several errors of the gatekeeper's keys are all reported, in the order of their positions
 * (the names of rate limits are resolved after the walk, yet come first). */
static void test_errors_together(void **state)
{
	struct moat_conf_errors err;

	(void)state;
	assert_null(load(ROUTE("    rate_limit: [x, y]\n    waf: {mode: foo, paranoia: 9}\n"
			       "rate_limits:\n  a: {rate: 1/x}\nbans: {on: [bar]}\n"),
			 &err));
	assert_int_equal(err.count, 6);
	assert_string_equal(err.buf,
			    "t.yaml:8:17: routes[0].rate_limit: unknown rate limit \"x\"; define it under rate_limits\n"
			    "t.yaml:8:17: routes[0].rate_limit: unknown rate limit \"y\"; define it under rate_limits\n"
			    "t.yaml:9:17: routes[0].waf.mode: expected one of block, detect; got \"foo\"\n"
			    "t.yaml:9:32: routes[0].waf.paranoia: expected an integer between 1 and 4, got \"9\"\n"
			    "t.yaml:11:13: rate_limits.a.rate: expected a rate like \"10/s\", \"600/m\" or \"20/h\" "
			    "(1 to 1000000000), got \"1/x\"\n"
			    "t.yaml:12:13: bans.on: expected one of malformed, rate_limit, waf, acl, 4xx; got \"bar\"\n");
	moat_conf_errors_free(&err);
}

/* ---- address lists: semantics ---------------------------------------------------------- */

static void test_acl_semantics(void **state)
{
	struct moat_conf *c;
	const struct moat_conf_acl *a;
	struct moat_conf_acl empty;
	struct sockaddr_un un;

	(void)state;
	/* an empty list allows everything, any family */
	memset(&empty, 0, sizeof empty);
	assert_true(allows(&empty, "10.0.0.1"));
	assert_true(allows(&empty, "::1"));
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	assert_true(moat_conf_acl_allows(&empty, (const struct sockaddr *)&un));

	/* deny only: the rest is allowed */
	c = load_ok(ROUTE("    deny: [192.0.2.0/24, \"2001:db8::/32\"]\n"));
	a = &c->routes[0].acl;
	assert_int_equal(a->default_deny, 0);
	assert_false(allows(a, "192.0.2.1"));
	assert_false(allows(a, "192.0.2.255"));
	assert_true(allows(a, "192.0.3.1"));
	assert_true(allows(a, "10.0.0.1"));
	assert_false(allows(a, "2001:db8::1"));
	assert_true(allows(a, "2001:db9::1"));
	assert_false(allows(a, "::ffff:192.0.2.7")); /* an IPv4 client on a dual-stack socket */
	assert_true(allows(a, "::ffff:192.0.3.7"));
	moat_conf_free(c);

	/* allow only: the rest is denied */
	c = load_ok(ROUTE("    allow: [127.0.0.1, \"::1\"]\n"));
	a = &c->routes[0].acl;
	assert_int_equal(a->default_deny, 1);
	assert_true(allows(a, "127.0.0.1"));
	assert_false(allows(a, "127.0.0.2"));
	assert_true(allows(a, "::1"));
	assert_false(allows(a, "::2"));
	assert_true(allows(a, "::ffff:127.0.0.1"));
	assert_false(allows(a, "10.0.0.1"));
	/* an address of no IP family matches no block: denied */
	assert_false(moat_conf_acl_allows(a, (const struct sockaddr *)&un));
	moat_conf_free(c);

	/* the longest block decides, in both directions */
	c = load_ok(ROUTE("    allow: [10.0.0.0/8, 10.1.2.0/24, \"2001:db8::/32\"]\n"
			  "    deny: [10.1.0.0/16, \"2001:db8:bad::/48\"]\n"));
	a = &c->routes[0].acl;
	assert_true(allows(a, "10.0.0.1"));
	assert_true(allows(a, "10.255.255.255"));
	assert_false(allows(a, "10.1.0.1"));
	assert_false(allows(a, "10.1.255.1"));
	assert_true(allows(a, "10.1.2.3"));  /* allow /24 inside deny /16 */
	assert_false(allows(a, "11.0.0.1")); /* no match, the list has allow blocks */
	assert_true(allows(a, "::ffff:10.0.0.1"));
	assert_false(allows(a, "::ffff:10.1.0.1"));
	assert_true(allows(a, "::ffff:10.1.2.200"));
	assert_false(allows(a, "::ffff:11.0.0.1"));
	assert_true(allows(a, "2001:db8::1"));
	assert_false(allows(a, "2001:db8:bad::1"));
	assert_true(allows(a, "2001:db8:bad0::1"));
	assert_false(allows(a, "2001:db9::1"));
	moat_conf_free(c);

	/* the same block in both lists denies */
	c = load_ok(ROUTE("    allow: [10.0.0.0/8]\n    deny: [10.0.0.0/8]\n"));
	assert_false(allows(&c->routes[0].acl, "10.0.0.1"));
	moat_conf_free(c);

	/* an IPv4-mapped block written in IPv6 is the IPv4 block */
	c = load_ok(ROUTE("    allow: [\"::ffff:10.0.0.0/104\"]\n"));
	assert_true(allows(&c->routes[0].acl, "10.9.9.9"));
	assert_true(allows(&c->routes[0].acl, "::ffff:10.9.9.9"));
	assert_false(allows(&c->routes[0].acl, "11.0.0.1"));
	moat_conf_free(c);

	/* listeners have their own list; routes and listeners do not mix */
	c = load_ok("listeners:\n  - listen: 127.0.0.1:8080\n    deny: [0.0.0.0/0]\n  - listen: 127.0.0.1:8081\n"
		    "upstreams:\n  app:\n    servers: [127.0.0.1:3000]\nroutes:\n  - upstream: app\n");
	assert_false(allows(&c->listeners[0].acl, "127.0.0.1"));
	assert_true(allows(&c->listeners[0].acl, "::1")); /* ::/0 was not denied */
	assert_null(c->listeners[1].acl.trie);
	assert_true(allows(&c->listeners[1].acl, "127.0.0.1"));
	assert_null(c->routes[0].acl.trie);
	moat_conf_free(c);
}

/* ---- address lists from files ---------------------------------------------------------- */

static void test_list_files(void **state)
{
	char allow[32], deny[32], bad[64], doc[1024], line[512];
	struct moat_conf *c;
	const struct moat_conf_acl *a;

	(void)state;
	write_tmp_str(allow, "# the office\n10.0.0.0/8\n\n  2001:db8::/32   # v6 too\r\n192.0.2.1\n");
	write_tmp_str(deny, "10.1.0.0/16\n\t2001:db8:bad::/48\n");

	/* on a route, files only */
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n    deny_file: %s\n"), allow, deny);
	c = load_ok(doc);
	a = &c->routes[0].acl;
	assert_string_equal(a->allow_file, allow);
	assert_string_equal(a->deny_file, deny);
	assert_int_equal(a->nallow, 0);
	assert_int_equal(a->ndeny, 0);
	assert_int_equal(a->nfile_allow, 3);
	assert_int_equal(a->nfile_deny, 2);
	assert_int_equal(a->default_deny, 1);
	assert_true(allows(a, "10.0.0.1"));
	assert_false(allows(a, "10.1.0.1"));
	assert_true(allows(a, "192.0.2.1"));
	assert_false(allows(a, "192.0.2.2"));
	assert_false(allows(a, "11.0.0.1"));
	assert_true(allows(a, "2001:db8::1"));
	assert_false(allows(a, "2001:db8:bad::1"));
	assert_false(allows(a, "2001:db9::1"));
	assert_true(allows(a, "::ffff:10.2.3.4"));
	assert_false(allows(a, "::ffff:10.1.3.4"));
	moat_conf_free(c);

	/* on a listener, with inline blocks: the longest block wins across both */
	snprintf(doc, sizeof doc,
		 "listeners:\n  - listen: 127.0.0.1:8080\n    allow: [10.1.2.0/24]\n    deny_file: %s\n"
		 "    allow_file: %s\nupstreams:\n  app:\n    servers: [127.0.0.1:3000]\nroutes:\n  - upstream: app\n",
		 deny, allow);
	c = load_ok(doc);
	a = &c->listeners[0].acl;
	assert_int_equal(a->nallow, 1);
	assert_int_equal(a->nfile_allow, 3);
	assert_int_equal(a->nfile_deny, 2);
	assert_true(allows(a, "10.1.2.9"));
	assert_false(allows(a, "10.1.3.9"));
	assert_true(allows(a, "10.2.0.1"));
	moat_conf_free(c);

	/* a deny file alone: the rest is allowed */
	snprintf(doc, sizeof doc, ROUTE("    deny_file: %s\n"), deny);
	c = load_ok(doc);
	assert_int_equal(c->routes[0].acl.default_deny, 0);
	assert_false(allows(&c->routes[0].acl, "10.1.0.1"));
	assert_true(allows(&c->routes[0].acl, "10.2.0.1"));
	moat_conf_free(c);

	/* an allow file with no block still makes the list an allow list: nothing passes */
	write_tmp_str(bad, "# nobody yet\n\n");
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n"), bad);
	c = load_ok(doc);
	assert_int_equal(c->routes[0].acl.nfile_allow, 0);
	assert_int_equal(c->routes[0].acl.default_deny, 1);
	assert_false(allows(&c->routes[0].acl, "10.0.0.1"));
	moat_conf_free(c);
	unlink(bad);

	/* a bad line: the config's position, then the file's own line:col */
	write_tmp_str(bad, "10.0.0.0/8\n\n   10.0.0.300\n::1/200\n10.0.0.1 10.0.0.2\n");
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n"), bad);
	{
		struct moat_conf_errors err;

		assert_null(load(doc, &err));
		assert_int_equal(err.count, 3);
		snprintf(line, sizeof line,
			 "t.yaml:7:5: allow_file: %s:3:4: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got "
			 "\"10.0.0.300\"",
			 bad);
		assert_has_line(&err, line);
		snprintf(line, sizeof line,
			 "t.yaml:7:5: allow_file: %s:4:1: expected a prefix length 0..128 after the IPv6 address, "
			 "got \"::1/200\"",
			 bad);
		assert_has_line(&err, line);
		snprintf(line, sizeof line,
			 "t.yaml:7:5: allow_file: %s:5:1: expected one CIDR per line, got \"10.0.0.1 10.0.0.2\"", bad);
		assert_has_line(&err, line);
		moat_conf_errors_free(&err);
	}
	/* ... on a listener: at its listen address, named deny_file */
	snprintf(doc, sizeof doc,
		 "listeners:\n  - listen: 127.0.0.1:8080\n    deny_file: %s\n"
		 "upstreams:\n  app:\n    servers: [127.0.0.1:3000]\nroutes:\n  - upstream: app\n",
		 bad);
	{
		struct moat_conf_errors err;

		assert_null(load(doc, &err));
		assert_int_equal(err.count, 3);
		snprintf(line, sizeof line,
			 "t.yaml:2:13: deny_file: %s:3:4: expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got "
			 "\"10.0.0.300\"",
			 bad);
		assert_has_line(&err, line);
		moat_conf_errors_free(&err);
	}
	unlink(bad);

	/* at most ten lines of one file are reported */
	{
		char many[32 * 11];
		struct moat_conf_errors err;
		int i;

		many[0] = '\0';
		for (i = 0; i < 25; i++)
			strcat(many, "x\n");
		write_tmp_str(bad, many);
		snprintf(doc, sizeof doc, ROUTE("    deny_file: %s\n"), bad);
		assert_null(load(doc, &err));
		assert_int_equal(err.count, 10);
		moat_conf_errors_free(&err);
		unlink(bad);
	}

	/* a missing file names the path */
	snprintf(bad, sizeof bad, "%s.gone", allow);
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n"), bad);
	snprintf(line, sizeof line, "t.yaml:7:5: allow_file: cannot read %s: No such file or directory", bad);
	expect_error(doc, line);
	/* a directory is not a list */
	snprintf(doc, sizeof doc, ROUTE("    deny_file: /tmp\n"));
	expect_error(doc, "t.yaml:7:5: deny_file: cannot read /tmp: Is a directory");

	unlink(allow);
	unlink(deny);
}

/* The bounds of a list file: MOAT_CONF_MAX_CIDR_FILE blocks are accepted,
 * one more is refused. (The same block a million times: the count is of
 * lines, and the trie stays small.) */
static void test_list_file_max_blocks(void **state)
{
	static const char block[] = "10.0.0.0/8\n";
	const size_t blen = sizeof block - 1;
	char path[32], doc[512], line[512];
	size_t size = (size_t)MOAT_CONF_MAX_CIDR_FILE * blen + blen, i;
	char *data = malloc(size);
	struct moat_conf *c;

	(void)state;
	assert_non_null(data);
	assert_true(size <= MOAT_CONF_MAX_FILE);
	for (i = 0; i < (size_t)MOAT_CONF_MAX_CIDR_FILE + 1; i++)
		memcpy(data + i * blen, block, blen);

	/* exactly the most blocks */
	write_tmp(path, data, size - blen);
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n"), path);
	c = load_ok(doc);
	assert_int_equal(c->routes[0].acl.nfile_allow, MOAT_CONF_MAX_CIDR_FILE);
	assert_true(allows(&c->routes[0].acl, "10.0.0.1"));
	moat_conf_free(c);
	unlink(path);
	/* one more */
	write_tmp(path, data, size);
	snprintf(doc, sizeof doc, ROUTE("    allow_file: %s\n"), path);
	snprintf(line, sizeof line, "t.yaml:7:5: allow_file: %s: more than %u blocks", path, MOAT_CONF_MAX_CIDR_FILE);
	expect_error(doc, line);
	unlink(path);
	free(data);
}

/* ... and MOAT_CONF_MAX_FILE bytes are accepted, one more is refused. */
static void test_list_file_max_size(void **state)
{
	char path[32], doc[512], line[512];
	char *data = malloc(MOAT_CONF_MAX_FILE + 1);
	struct moat_conf *c;

	(void)state;
	assert_non_null(data);
	/* exactly the largest file: one block, then a comment */
	memset(data, ' ', MOAT_CONF_MAX_FILE + 1);
	memcpy(data, "10.0.0.0/8\n#", 12);
	data[MOAT_CONF_MAX_FILE - 1] = '\n';
	write_tmp(path, data, MOAT_CONF_MAX_FILE);
	snprintf(doc, sizeof doc, ROUTE("    deny_file: %s\n"), path);
	c = load_ok(doc);
	assert_int_equal(c->routes[0].acl.nfile_deny, 1);
	assert_false(allows(&c->routes[0].acl, "10.0.0.1"));
	moat_conf_free(c);
	unlink(path);
	/* one byte more */
	data[MOAT_CONF_MAX_FILE] = '\n';
	write_tmp(path, data, MOAT_CONF_MAX_FILE + 1);
	snprintf(doc, sizeof doc, ROUTE("    deny_file: %s\n"), path);
	snprintf(line, sizeof line, "t.yaml:7:5: deny_file: cannot read %s: file too large", path);
	expect_error(doc, line);
	unlink(path);
	free(data);
}

/* ---- rate_limits -------------------------------------------------------------------------- */

static void test_rate_limits(void **state)
{
	struct moat_conf *c;
	const struct moat_conf_ratelimit *rl;

	(void)state;
	c = load_ok(MINIMAL_TAIL "    rate_limit: zeta\n"
				 "  - path: /login\n    upstream: app\n    rate_limit: [mid, alpha]\n"
				 "  - path: /x\n    upstream: app\n    rate_limit: []\n"
				 "rate_limits:\n"
				 "  zeta: {rate: 10/s}\n"
				 "  mid:\n    key: [route, \"header:X-Api-KEY\", \"cookie:SessionID\", client_ip]\n"
				 "    rate: 600/minute\n    burst: 20\n    delay_after: 20\n    status: 503\n"
				 "  alpha: {key: \"header:Authorization\", rate: 5/hour, burst: 0}\n"
				 "  unused: {key: client_ip, rate: 7/second, delay_after: 0}\n");
	assert_int_equal(c->nrate_limits, 4);
	/* sorted by name */
	assert_string_equal(c->rate_limits[0].name, "alpha");
	assert_string_equal(c->rate_limits[1].name, "mid");
	assert_string_equal(c->rate_limits[2].name, "unused");
	assert_string_equal(c->rate_limits[3].name, "zeta");

	rl = &c->rate_limits[0];
	assert_int_equal(rl->nkey, 1);
	assert_int_equal(rl->key[0].kind, MOAT_RL_HEADER);
	assert_string_equal(rl->key[0].name, "authorization");
	assert_int_equal(rl->count, 5);
	assert_int_equal(rl->period_ms, 3600000);
	assert_int_equal(rl->burst, 0);
	assert_int_equal(rl->delay, 0);
	assert_int_equal(rl->status, 429);
	assert_int_equal(rl->used, 1);
	assert_int_equal(rl->pos.line, 23);
	assert_int_equal(rl->pos.col, 3);

	rl = &c->rate_limits[1];
	assert_int_equal(rl->nkey, 4);
	assert_int_equal(rl->key[0].kind, MOAT_RL_ROUTE);
	assert_null(rl->key[0].name);
	assert_int_equal(rl->key[1].kind, MOAT_RL_HEADER);
	assert_string_equal(rl->key[1].name, "x-api-key"); /* header names are lowercased */
	assert_int_equal(rl->key[2].kind, MOAT_RL_COOKIE);
	assert_string_equal(rl->key[2].name, "SessionID"); /* cookie names are not */
	assert_int_equal(rl->key[3].kind, MOAT_RL_CLIENT_IP);
	assert_null(rl->key[3].name);
	assert_int_equal(rl->count, 600);
	assert_int_equal(rl->period_ms, 60000);
	assert_int_equal(rl->burst, 20);
	assert_int_equal(rl->delay, 1);
	assert_int_equal(rl->delay_after, 20); /* equal to burst is fine */
	assert_int_equal(rl->status, 503);
	assert_int_equal(rl->used, 1);

	rl = &c->rate_limits[2];
	assert_int_equal(rl->nkey, 1);
	assert_int_equal(rl->key[0].kind, MOAT_RL_CLIENT_IP);
	assert_int_equal(rl->count, 7);
	assert_int_equal(rl->period_ms, 1000);
	assert_int_equal(rl->delay, 1);
	assert_int_equal(rl->delay_after, 0);
	assert_int_equal(rl->used, 0);

	/* no key: the client address */
	rl = &c->rate_limits[3];
	assert_int_equal(rl->nkey, 1);
	assert_int_equal(rl->key[0].kind, MOAT_RL_CLIENT_IP);
	assert_null(rl->key[0].name);
	assert_int_equal(rl->count, 10);
	assert_int_equal(rl->period_ms, 1000);
	assert_int_equal(rl->burst, 0);
	assert_int_equal(rl->status, 429);

	/* routes: names as written, resolved to indexes in order */
	assert_int_equal(c->routes[0].nrate_limits, 1);
	assert_string_equal(c->routes[0].rate_limit_names[0], "zeta");
	assert_int_equal(c->routes[0].rate_limits[0], 3);
	assert_int_equal(c->routes[0].rate_limit_pos.line, 8);
	assert_int_equal(c->routes[0].rate_limit_pos.col, 17);
	assert_int_equal(c->routes[1].nrate_limits, 2);
	assert_string_equal(c->routes[1].rate_limit_names[0], "mid");
	assert_string_equal(c->routes[1].rate_limit_names[1], "alpha");
	assert_int_equal(c->routes[1].rate_limits[0], 1);
	assert_int_equal(c->routes[1].rate_limits[1], 0);
	assert_int_equal(c->routes[2].nrate_limits, 0);
	assert_null(c->routes[2].rate_limits);
	moat_conf_free(c);

	/* a key as a one-element list is the same as the string; empty rate_limits */
	c = load_ok(MINIMAL_TAIL "rate_limits:\n  a: {key: [\"cookie:sid\"], rate: 1/s}\n  b: {key: \"cookie:sid\", rate: 1/s}\n");
	assert_int_equal(c->rate_limits[0].nkey, 1);
	assert_int_equal(c->rate_limits[1].nkey, 1);
	assert_int_equal(c->rate_limits[0].key[0].kind, c->rate_limits[1].key[0].kind);
	assert_string_equal(c->rate_limits[0].key[0].name, c->rate_limits[1].key[0].name);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "rate_limits:\n");
	assert_int_equal(c->nrate_limits, 0);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "rate_limits: {}\n");
	assert_int_equal(c->nrate_limits, 0);
	moat_conf_free(c);
}

static void test_parse_rate(void **state)
{
	static const struct {
		const char *s;
		uint64_t count, period;
	} ok[] = {
		{ "1/s", 1, 1000 },          { "10/second", 10, 1000 }, { "600/m", 600, 60000 },
		{ "5/minute", 5, 60000 },    { "20/h", 20, 3600000 },   { "3/hour", 3, 3600000 },
		{ "1000000000/s", 1000000000, 1000 },
	};
	static const char *const bad[] = { "", "10", "/s", "10/", "10/d", "0/s", "-1/s", "1000000001/s", "10/S",
					   "10/ s", " 10/s", "10/s ", "1.5/s", "10/sec", "123456789012345678901234/s",
					   "10/s/s" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		uint64_t n = 0, p = 0;

		if (moat_conf_parse_rate(ok[i].s, &n, &p) != 0)
			fail_msg("\"%s\" was refused", ok[i].s);
		assert_int_equal(n, ok[i].count);
		assert_int_equal(p, ok[i].period);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t n, p;

		if (moat_conf_parse_rate(bad[i], &n, &p) == 0)
			fail_msg("\"%s\" was accepted", bad[i]);
	}
}

/* ---- printing, equality ---------------------------------------------------------------- */

/* Uses every key of the gatekeeper; %s: the allow file, then the deny file. */
static const char every_key_fmt[] =
	"log:\n  refusal_rate: 7\n"
	"limits:\n  connections_per_ip: 50\n  connections_total: 5000\n  min_body_rate: 1KiB\n"
	"  min_send_rate: 256\n  rate_limit_keys: 2048\n"
	"proxy:\n  client_ip: forwarded\n  trusted_proxies: [10.0.0.0/8]\n"
	"listeners:\n  - listen: 127.0.0.1:8080\n    allow: [10.0.0.0/8]\n    deny: [10.1.0.0/16]\n"
	"    allow_file: %s\n    deny_file: %s\n    proxy_protocol: true\n"
	"upstreams:\n  app:\n    servers: [127.0.0.1:3000]\n"
	"routes:\n  - path: /api/\n    upstream: app\n    allow: [\"2001:db8::/32\"]\n    deny: [\"2001:db8:bad::/48\"]\n"
	"    body: 1MiB\n    rate_limit: [per_ip, per_key]\n"
	"    waf:\n      mode: detect\n      paranoia: 2\n      anomaly_threshold: 7\n      body_limit: 64KiB\n"
	"      crs: /etc/crs\n"
	"  - upstream: app\n    rate_limit: per_ip\n    waf: on\n    body: 0\n"
	"rate_limits:\n"
	"  per_ip: {key: client_ip, rate: 10/s, burst: 20, delay_after: 5, status: 503}\n"
	"  per_key: {key: [route, \"header:X-Api-Key\", \"cookie:sid\"], rate: 600/m}\n"
	"  slow: {rate: 3/h}\n"
	"bans:\n  threshold: 9\n  window: 2m\n  duration: 5m\n  max_duration: 1h\n  on: [acl, 4xx]\n"
	"  exempt: [192.0.2.0/24, \"::1\"]\n";

static void test_print_roundtrip(void **state)
{
	static const char *const changes[][2] = {
		{ "refusal_rate: 7", "refusal_rate: 8" },
		{ "connections_per_ip: 50", "connections_per_ip: 51" },
		{ "connections_total: 5000", "connections_total: 0" },
		{ "min_body_rate: 1KiB", "min_body_rate: 1000" },
		{ "min_send_rate: 256", "min_send_rate: 0" },
		{ "rate_limit_keys: 2048", "rate_limit_keys: 4096" },
		{ "client_ip: forwarded", "client_ip: none" },
		{ "allow: [10.0.0.0/8]", "allow: [10.0.0.0/9]" },
		{ "deny: [10.1.0.0/16]", "deny: [10.1.0.0/16, 10.2.0.0/16]" },
		{ "proxy_protocol: true", "proxy_protocol: false" },
		{ "allow: [\"2001:db8::/32\"]", "allow: [\"2001:db8::/33\"]" },
		{ "deny: [\"2001:db8:bad::/48\"]", "deny: []" },
		{ "body: 1MiB", "body: 2MiB" },
		{ "body: 0", "body: 1" },
		{ "rate_limit: [per_ip, per_key]", "rate_limit: [per_key, per_ip]" },
		{ "rate_limit: per_ip", "rate_limit: [per_ip, slow]" },
		{ "mode: detect", "mode: block" },
		{ "paranoia: 2", "paranoia: 3" },
		{ "anomaly_threshold: 7", "anomaly_threshold: 6" },
		{ "body_limit: 64KiB", "body_limit: 65KiB" },
		{ "crs: /etc/crs", "crs: /etc/crs2" },
		{ "waf: on", "waf: off" },
		{ "rate: 10/s", "rate: 10/m" },
		{ "burst: 20", "burst: 21" },
		{ "delay_after: 5,", "delay_after: 6," },
		{ "status: 503", "status: 429" },
		{ "key: client_ip, rate: 10/s", "key: route, rate: 10/s" },
		{ "\"header:X-Api-Key\"", "\"header:X-Api-Keys\"" },
		{ "\"cookie:sid\"", "\"header:sid\"" },
		{ "slow: {rate: 3/h}", "slower: {rate: 3/h}" },
		{ "threshold: 9", "threshold: 10" },
		{ "window: 2m", "window: 3m" },
		{ "duration: 5m", "duration: 6m" },
		{ "max_duration: 1h", "max_duration: 2h" },
		{ "on: [acl, 4xx]", "on: [acl]" },
		{ "exempt: [192.0.2.0/24, \"::1\"]", "exempt: [192.0.2.0/24]" },
	};
	char allow[32], deny[32], doc[2048];
	struct moat_conf *c, *d;
	char *text = NULL;
	size_t len = 0, i;
	FILE *f;

	(void)state;
	write_tmp_str(allow, "192.0.2.0/25\n");
	write_tmp_str(deny, "192.0.2.128/25\n");
	snprintf(doc, sizeof doc, every_key_fmt, allow, deny);
	c = load_ok(doc);
	roundtrip(c);

	/* what the printed text says */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "\n  refusal_rate: 7\n"));
	assert_non_null(strstr(text, "\n  connections_per_ip: 50\n"));
	assert_non_null(strstr(text, "\n  client_ip: forwarded\n"));
	assert_non_null(strstr(text, "\n    proxy_protocol: true\n"));
	assert_non_null(strstr(text, "\n    rate_limit: [per_ip, per_key]\n"));
	assert_non_null(strstr(text, "\n    key: [\"route\", \"header:x-api-key\", \"cookie:sid\"]\n"));
	assert_non_null(strstr(text, "\n    rate: 600/m\n"));
	assert_non_null(strstr(text, "\n  on: [acl, 4xx]\n"));
	assert_non_null(strstr(text, "\n      mode: detect\n"));
	free(text);

	/* one value changed: no longer equal */
	for (i = 0; i < sizeof changes / sizeof changes[0]; i++) {
		char *changed = replace_once(doc, changes[i][0], changes[i][1]);

		/* "slower" is not named by a route; everything else loads as is */
		d = load_ok(changed);
		if (moat_conf_equal(c, d))
			fail_msg("still equal after \"%s\" -> \"%s\"", changes[i][0], changes[i][1]);
		if (moat_conf_equal(d, c))
			fail_msg("still equal (reversed) after \"%s\" -> \"%s\"", changes[i][0], changes[i][1]);
		roundtrip(d);
		moat_conf_free(d);
		free(changed);
	}
	/* the list files by name (a file's contents are read again at each load) */
	snprintf(doc, sizeof doc, every_key_fmt, deny, allow);
	d = load_ok(doc);
	assert_false(moat_conf_equal(c, d));
	moat_conf_free(d);
	/* without bans */
	snprintf(doc, sizeof doc, every_key_fmt, allow, deny);
	*strstr(doc, "bans:\n") = '\0';
	d = load_ok(doc);
	assert_false(moat_conf_equal(c, d));
	roundtrip(d);
	moat_conf_free(d);
	moat_conf_free(c);

	/* defaults print and load back; so do odd corners */
	c = load_ok(MINIMAL_TAIL "bans: {on: []}\n");
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(MINIMAL_TAIL "bans: {duration: 48h}\nrate_limits: {a: {rate: 1/hour, delay_after: 0}}\n");
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(ROUTE("    waf: {crs: \"/a \\\"b\\\" \\\\c\"}\n"));
	assert_string_equal(c->routes[0].waf.crs, "/a \"b\" \\c");
	roundtrip(c);
	moat_conf_free(c);

	unlink(allow);
	unlink(deny);
}

/* ---- trusted proxies ------------------------------------------------------------------------- */

static void test_trusted_trie(void **state)
{
	static const char *const to[] = { "127.0.0.1:3000" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	c = load_ok("proxy:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8, \"::1\", \"fd00::/8\"]\n" MINIMAL_TAIL);
	assert_non_null(c->trusted_trie);
	assert_int_equal(trusted(c, "127.0.0.1"), 1);
	assert_int_equal(trusted(c, "10.200.0.1"), 1);
	assert_int_equal(trusted(c, "::ffff:10.0.0.1"), 1);
	assert_int_equal(trusted(c, "::1"), 1);
	assert_int_equal(trusted(c, "fd12::1"), 1);
	assert_true(trusted(c, "127.0.0.2") < 0);
	assert_true(trusted(c, "11.0.0.1") < 0);
	assert_true(trusted(c, "fe80::1") < 0);
	assert_true(trusted(c, "::2") < 0);
	moat_conf_free(c);

	/* none: no trie */
	c = load_ok("proxy: {trusted_proxies: []}\n" MINIMAL_TAIL);
	assert_null(c->trusted_trie);
	moat_conf_free(c);

	/* the one-line mode trusts nobody */
	c = moat_conf_from_proxy_args("127.0.0.1:8080", to, 1, 1, &err);
	assert_non_null(c);
	assert_int_equal(c->ntrusted_proxies, 0);
	assert_null(c->trusted_trie);
	moat_conf_free(c);
	moat_conf_errors_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ban_defaults),
		cmocka_unit_test(test_waf_values),
		cmocka_unit_test(test_accepted_values),
		cmocka_unit_test(test_refused_values),
		cmocka_unit_test(test_errors_together),
		cmocka_unit_test(test_acl_semantics),
		cmocka_unit_test_teardown(test_list_files, remove_tmp_files),
		cmocka_unit_test_teardown(test_list_file_max_blocks, remove_tmp_files),
		cmocka_unit_test_teardown(test_list_file_max_size, remove_tmp_files),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_parse_rate),
		cmocka_unit_test_teardown(test_print_roundtrip, remove_tmp_files),
		cmocka_unit_test(test_trusted_trie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
