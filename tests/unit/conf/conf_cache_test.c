/*
 * conf_cache_test.c - unit tests of the cache's and compression's
 * configuration (src/conf/conf_cache.c and its schema keys): the defaults
 * of every key, `true`/`false` and mapping forms, the store turned on by a
 * route, the key lists (sorted, lowercased, without repeats), each refusal
 * at its exact file:line:column, the print round trip and equality, the
 * one-line mode's --cache and --compress, and the media type check.
 *
 * No DNS: every address is numeric.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/conf_cache.h" /* moat_conf_media_type_ok */
#include "conf/conf_int.h"   /* moat_conf_format_cidr */
#include "core/limits.h"

#include "conf_test_util.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* The routes part of MINIMAL_TAIL ends with "  - upstream: app\n": these
 * keys go right after it, on the route (line 8 onwards). */
#define ROUTE(keys) MINIMAL_TAIL keys

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

static void assert_route_cache_defaults(const struct moat_conf_route_cache *k)
{
	assert_int_equal(k->key, MOAT_CONF_CACHE_KEY_HOST | MOAT_CONF_CACHE_KEY_PATH | MOAT_CONF_CACHE_KEY_QUERY);
	assert_null(k->key_query);
	assert_int_equal(k->nkey_query, 0);
	assert_null(k->key_headers);
	assert_int_equal(k->nkey_headers, 0);
	assert_int_equal(k->allow_set_cookie, 0);
	assert_int_equal(k->client_no_cache, 1);
	assert_int_equal(k->default_ttl_ms, 0);
	assert_int_equal(k->heuristic_max_ms, 86400000ull);
	assert_int_equal(k->heuristic_percent, 10);
	assert_int_equal(k->stale_grace_ms, 0);
	assert_int_equal(k->coalesce, 1);
	assert_int_equal(k->coalesce_wait_ms, 10000);
}

static void assert_route_compress_defaults(const struct moat_conf_route_compress *z)
{
	assert_null(z->types);
	assert_int_equal(z->ntypes, 0);
	assert_int_equal(z->min_size, 256);
	assert_int_equal(z->codings, MOAT_CONF_CODING_GZIP | MOAT_CONF_CODING_BR | MOAT_CONF_CODING_ZSTD);
	assert_int_equal(z->gzip_level, 0);
	assert_int_equal(z->br_level, 0);
	assert_int_equal(z->zstd_level, 0);
}

static void assert_store_defaults(const struct moat_conf_cache *s)
{
	char b[64];

	assert_int_equal(s->memory, 256 * MIB);
	assert_null(s->disk);
	assert_int_equal(s->disk_size, GIB);
	assert_int_equal(s->max_object, 16 * MIB);
	assert_int_equal(s->npurge_from, 2);
	assert_int_equal(s->purge_from[0].family, AF_INET);
	moat_conf_format_cidr(&s->purge_from[0], b, sizeof b);
	assert_string_equal(b, "127.0.0.0/8");
	assert_int_equal(s->purge_from[1].family, AF_INET6);
	moat_conf_format_cidr(&s->purge_from[1], b, sizeof b);
	assert_string_equal(b, "::1/128");
}

/* ---- defaults ---------------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct moat_conf *c = load_ok(MINIMAL_TAIL);

	(void)state;
	/* everything off, every value at its default */
	assert_int_equal(c->cache.on, 0);
	assert_store_defaults(&c->cache);
	assert_int_equal(c->routes[0].cache.on, 0);
	assert_route_cache_defaults(&c->routes[0].cache);
	assert_int_equal(c->routes[0].compress.on, 0);
	assert_route_compress_defaults(&c->routes[0].compress);
	moat_conf_free(c);

	/* the store: present means on, whatever the block holds */
	c = load_ok(MINIMAL_TAIL "cache:\n");
	assert_int_equal(c->cache.on, 1);
	assert_int_equal(c->cache.pos.line, 8);
	assert_store_defaults(&c->cache);
	assert_int_equal(c->routes[0].cache.on, 0);
	moat_conf_free(c);
	c = load_ok("cache: {}\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.on, 1);
	assert_store_defaults(&c->cache);
	moat_conf_free(c);
}

/* ---- a route's cache -------------------------------------------------------------- */

static void test_route_cache(void **state)
{
	struct moat_conf *c;
	const struct moat_conf_route_cache *k;

	(void)state;
	/* true, false, the other boolean words, an empty mapping */
	c = load_ok(ROUTE("    cache: true\n  - {upstream: app, cache: false}\n  - {upstream: app, cache: {}}\n"
			  "  - {upstream: app, cache: \"on\"}\n  - {upstream: app, cache: NO}\n"));
	assert_int_equal(c->routes[0].cache.on, 1);
	assert_int_equal(c->routes[0].cache.pos.line, 8);
	assert_int_equal(c->routes[0].cache.pos.col, 12);
	assert_route_cache_defaults(&c->routes[0].cache);
	assert_int_equal(c->routes[1].cache.on, 0);
	assert_int_equal(c->routes[2].cache.on, 1);
	assert_route_cache_defaults(&c->routes[2].cache);
	assert_int_equal(c->routes[3].cache.on, 1);
	assert_int_equal(c->routes[4].cache.on, 0);
	/* a route's cache turns the store on with its defaults */
	assert_int_equal(c->cache.on, 1);
	assert_store_defaults(&c->cache);
	moat_conf_free(c);

	c = load_ok(ROUTE("    cache: false\n"));
	assert_int_equal(c->cache.on, 0);
	moat_conf_free(c);

	/* every key */
	c = load_ok(ROUTE("    cache:\n"
			  "      key: [path, query]\n"
			  "      key_query: [page, id, page, Id]\n"
			  "      key_headers: [X-Tenant, Accept-Language, x-tenant]\n"
			  "      allow_set_cookie: true\n"
			  "      client_no_cache: false\n"
			  "      default_ttl: 1m\n"
			  "      heuristic_max: 12h\n"
			  "      heuristic_percent: 0\n"
			  "      stale_grace: 30s\n"
			  "      coalesce: false\n"
			  "      coalesce_wait: 1ms\n"));
	k = &c->routes[0].cache;
	assert_int_equal(k->on, 1);
	assert_int_equal(k->key, MOAT_CONF_CACHE_KEY_PATH | MOAT_CONF_CACHE_KEY_QUERY);
	/* sorted (byte order), without repeats; case kept */
	assert_int_equal(k->nkey_query, 3);
	assert_string_equal(k->key_query[0], "Id");
	assert_string_equal(k->key_query[1], "id");
	assert_string_equal(k->key_query[2], "page");
	/* lowercased, without repeats, in the order written */
	assert_int_equal(k->nkey_headers, 2);
	assert_string_equal(k->key_headers[0], "x-tenant");
	assert_string_equal(k->key_headers[1], "accept-language");
	assert_int_equal(k->allow_set_cookie, 1);
	assert_int_equal(k->client_no_cache, 0);
	assert_int_equal(k->default_ttl_ms, 60000);
	assert_int_equal(k->heuristic_max_ms, 12 * 3600000ull);
	assert_int_equal(k->heuristic_percent, 0);
	assert_int_equal(k->stale_grace_ms, 30000);
	assert_int_equal(k->coalesce, 0);
	assert_int_equal(k->coalesce_wait_ms, 1);
	assert_int_equal(c->cache.on, 1);
	moat_conf_free(c);

	/* the edges of the ranges; the key's parts in any order, repeats folded */
	c = load_ok(ROUTE("    cache: {key: [path, host, path], heuristic_percent: 100, coalesce_wait: 10m,"
			  " default_ttl: 8760h, heuristic_max: 0, key_headers: []}\n"));
	k = &c->routes[0].cache;
	assert_int_equal(k->key, MOAT_CONF_CACHE_KEY_PATH | MOAT_CONF_CACHE_KEY_HOST);
	assert_int_equal(k->heuristic_percent, 100);
	assert_int_equal(k->coalesce_wait_ms, 600000);
	assert_int_equal(k->default_ttl_ms, 8760 * 3600000ull);
	assert_int_equal(k->heuristic_max_ms, 0);
	assert_int_equal(k->nkey_headers, 0);
	moat_conf_free(c);

	/* key_query with the default key (which holds query) */
	c = load_ok(ROUTE("    cache: {key_query: [q]}\n"));
	assert_int_equal(c->routes[0].cache.nkey_query, 1);
	assert_string_equal(c->routes[0].cache.key_query[0], "q");
	moat_conf_free(c);
}

/* ---- the store ---------------------------------------------------------------------- */

static void test_store(void **state)
{
	struct moat_conf *c;
	char b[64];

	(void)state;
	c = load_ok("cache:\n  memory: 1GiB\n  disk: /var/cache/moat\n  disk_size: 10GiB\n  max_object: 1GiB\n"
		    "  purge_from: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.1]\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.on, 1);
	assert_int_equal(c->cache.memory, GIB);
	assert_string_equal(c->cache.disk, "/var/cache/moat");
	assert_int_equal(c->cache.disk_size, 10 * GIB);
	assert_int_equal(c->cache.max_object, GIB);
	assert_int_equal(c->cache.npurge_from, 3);
	moat_conf_format_cidr(&c->cache.purge_from[1], b, sizeof b);
	assert_string_equal(b, "2001:db8::/32");
	moat_conf_format_cidr(&c->cache.purge_from[2], b, sizeof b);
	assert_string_equal(b, "192.0.2.1/32");
	/* the store on does not turn a route's cache on */
	assert_int_equal(c->routes[0].cache.on, 0);
	moat_conf_free(c);

	/* memory alone, below the default max_object: max_object follows it */
	c = load_ok("cache: {memory: 1MiB}\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.memory, MIB);
	assert_int_equal(c->cache.max_object, MIB);
	moat_conf_free(c);
	c = load_ok("cache: {memory: 4MiB, max_object: 4MiB}\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.max_object, 4 * MIB);
	moat_conf_free(c);
	c = load_ok("cache: {max_object: 1}\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.max_object, 1);
	moat_conf_free(c);

	/* an empty purge_from: nobody may PURGE */
	c = load_ok("cache: {purge_from: []}\n" MINIMAL_TAIL);
	assert_int_equal(c->cache.npurge_from, 0);
	assert_null(c->cache.purge_from);
	moat_conf_free(c);
}

/* ---- a route's compression ------------------------------------------------------ */

static void test_route_compress(void **state)
{
	struct moat_conf *c;
	const struct moat_conf_route_compress *z;

	(void)state;
	c = load_ok(ROUTE("    compress: true\n  - {upstream: app, compress: off}\n  - {upstream: app, compress: {}}\n"));
	assert_int_equal(c->routes[0].compress.on, 1);
	assert_int_equal(c->routes[0].compress.pos.line, 8);
	assert_int_equal(c->routes[0].compress.pos.col, 15);
	assert_route_compress_defaults(&c->routes[0].compress);
	assert_int_equal(c->routes[1].compress.on, 0);
	assert_int_equal(c->routes[2].compress.on, 1);
	assert_route_compress_defaults(&c->routes[2].compress);
	/* compression needs no store */
	assert_int_equal(c->cache.on, 0);
	moat_conf_free(c);

	c = load_ok(ROUTE("    compress:\n"
			  "      types: [Text/HTML, \"text/*\", application/json, text/html, \"*/*\", "
			  "application/vnd.api+json]\n"
			  "      min_size: 1KiB\n"
			  "      codings: [zstd, gzip]\n"
			  "      gzip_level: 9\n"
			  "      br_level: 6\n"
			  "      zstd_level: 1\n"));
	z = &c->routes[0].compress;
	assert_int_equal(z->on, 1);
	assert_int_equal(z->ntypes, 5);
	assert_string_equal(z->types[0], "text/html");
	assert_string_equal(z->types[1], "text/*");
	assert_string_equal(z->types[2], "application/json");
	assert_string_equal(z->types[3], "*/*");
	assert_string_equal(z->types[4], "application/vnd.api+json");
	assert_int_equal(z->min_size, 1024);
	assert_int_equal(z->codings, MOAT_CONF_CODING_ZSTD | MOAT_CONF_CODING_GZIP);
	assert_int_equal(z->gzip_level, 9);
	assert_int_equal(z->br_level, 6);
	assert_int_equal(z->zstd_level, 1);
	moat_conf_free(c);

	c = load_ok(ROUTE("    compress: {codings: [br], min_size: 0, gzip_level: 0}\n"));
	z = &c->routes[0].compress;
	assert_int_equal(z->codings, MOAT_CONF_CODING_BR);
	assert_int_equal(z->min_size, 0);
	assert_int_equal(z->gzip_level, 0);
	moat_conf_free(c);

	/* both on one route */
	c = load_ok(ROUTE("    cache: true\n    compress: true\n"));
	assert_int_equal(c->routes[0].cache.on, 1);
	assert_int_equal(c->routes[0].compress.on, 1);
	moat_conf_free(c);
}

/* ---- refused values, at their exact position ------------------------------------------ */

static void test_refused_values(void **state)
{
	(void)state;
	/* the forms */
	expect_error(ROUTE("    cache: maybe\n"),
		     "t.yaml:8:12: routes[0].cache: expected true, false or a mapping like {key: [host, path, query]}, "
		     "got \"maybe\"");
	expect_error(ROUTE("    cache: [a]\n"),
		     "t.yaml:8:12: routes[0].cache: expected true, false or a mapping like {key: [host, path, query]}, "
		     "got a list");
	expect_error(ROUTE("    compress: 1\n"),
		     "t.yaml:8:15: routes[0].compress: expected true, false or a mapping like {codings: [br, gzip]}, "
		     "got \"1\"");
	expect_error_prefix(ROUTE("    cache: {ttl: 1s}\n"),
			    "t.yaml:8:13: unknown key \"ttl\" in routes[0].cache; expected one of: key, key_query,");
	expect_error_prefix(ROUTE("    compress: {level: 1}\n"),
			    "t.yaml:8:16: unknown key \"level\" in routes[0].compress; expected one of: types,");
	expect_error_prefix("cache: {size: 1GiB}\n" MINIMAL_TAIL,
			    "t.yaml:1:9: unknown key \"size\" in cache; expected one of: memory, disk, disk_size,");
	expect_error("cache: true\n" MINIMAL_TAIL,
		     "t.yaml:1:8: cache: expected a mapping (\"key: value\" lines), got \"true\"");

	/* the key */
	expect_error(ROUTE("    cache: {key: [host, query]}\n"),
		     "t.yaml:8:18: routes[0].cache.key: the key must hold \"path\", like [host, path, query]");
	expect_error(ROUTE("    cache: {key: []}\n"),
		     "t.yaml:8:18: routes[0].cache.key: the key must hold \"path\", like [host, path, query]");
	expect_error(ROUTE("    cache: {key: [path, cookie]}\n"),
		     "t.yaml:8:25: routes[0].cache.key[1]: expected one of host, path, query; got \"cookie\"");
	expect_error(ROUTE("    cache: {key: path}\n"),
		     "t.yaml:8:18: routes[0].cache.key: expected a list of key parts, got \"path\"");
	expect_error(ROUTE("    cache: {key_query: [id], key: [host, path]}\n"),
		     "t.yaml:8:24: routes[0].cache.key_query: needs \"query\" in the key (key: [host, path, query])");
	expect_error(ROUTE("    cache: {key_query: []}\n"),
		     "t.yaml:8:24: routes[0].cache.key_query: expected at least one query parameter name (leave "
		     "\"query\" out of the key to ignore the query)");
	expect_error(ROUTE("    cache: {key_query: [id, \"a=b\"]}\n"),
		     "t.yaml:8:29: routes[0].cache.key_query[1]: expected a query parameter name like \"page\" "
		     "(visible ASCII without & = ; # \" or \\), got \"a=b\"");
	expect_error(ROUTE("    cache: {key_query: [\"\"]}\n"),
		     "t.yaml:8:25: routes[0].cache.key_query[0]: expected a query parameter name like \"page\" "
		     "(visible ASCII without & = ; # \" or \\), got \"\"");
	expect_error(ROUTE("    cache: {key_headers: [\"x tenant\"]}\n"),
		     "t.yaml:8:27: routes[0].cache.key_headers[0]: expected a header name like \"x-tenant\", got "
		     "\"x tenant\"");

	/* ranges */
	expect_error(ROUTE("    cache: {heuristic_percent: 101}\n"),
		     "t.yaml:8:32: routes[0].cache.heuristic_percent: expected an integer between 0 and 100, got \"101\"");
	expect_error(ROUTE("    cache: {coalesce_wait: 0}\n"),
		     "t.yaml:8:28: routes[0].cache.coalesce_wait: expected a duration greater than 0 like \"10s\", "
		     "got \"0\"");
	expect_error(ROUTE("    cache: {coalesce_wait: 11m}\n"),
		     "t.yaml:8:28: routes[0].cache.coalesce_wait: expected a duration of at most 10m, got \"11m\"");
	expect_error(ROUTE("    cache: {stale_grace: 8761h}\n"),
		     "t.yaml:8:26: routes[0].cache.stale_grace: expected a duration of at most 8760h, got \"8761h\"");
	expect_error(ROUTE("    cache: {coalesce: sometimes}\n"),
		     "t.yaml:8:23: routes[0].cache.coalesce: expected true or false, got \"sometimes\"");
	expect_error("cache: {memory: 1000KiB}\n" MINIMAL_TAIL,
		     "t.yaml:1:17: cache.memory: expected a size between 1MiB and 1024GiB, got \"1000KiB\"");
	expect_error("cache: {disk_size: 0}\n" MINIMAL_TAIL,
		     "t.yaml:1:20: cache.disk_size: expected a size between 1MiB and 65536GiB, got \"0\"");
	expect_error("cache: {max_object: 0}\n" MINIMAL_TAIL,
		     "t.yaml:1:21: cache.max_object: expected a size between 1B and 1024GiB, got \"0\"");
	expect_error("cache: {disk: \"\"}\n" MINIMAL_TAIL,
		     "t.yaml:1:15: cache.disk: expected a directory like \"/var/cache/moat\", got an empty value");
	expect_error("cache: {purge_from: [localhost]}\n" MINIMAL_TAIL,
		     "t.yaml:1:22: cache.purge_from[0]: expected an IP address or CIDR block like \"10.0.0.0/8\" or "
		     "\"::1/128\", got \"localhost\"");
	/* max_object above memory, given or by default */
	expect_error("cache:\n  memory: 8MiB\n  max_object: 9MiB\n" MINIMAL_TAIL,
		     "t.yaml:3:15: cache.max_object (9MiB) must be at most cache.memory (8MiB)");
	expect_error("cache: {max_object: 512MiB}\n" MINIMAL_TAIL,
		     "t.yaml:1:21: cache.max_object (512MiB) must be at most cache.memory (256MiB)");

	/* compression */
	expect_error(ROUTE("    compress: {codings: [gzip, deflate]}\n"),
		     "t.yaml:8:32: routes[0].compress.codings[1]: expected one of gzip, br, zstd; got \"deflate\"");
	expect_error(ROUTE("    compress: {codings: []}\n"),
		     "t.yaml:8:25: routes[0].compress.codings: expected at least one of gzip, br, zstd (or compress: "
		     "false)");
	expect_error(ROUTE("    compress: {types: [text]}\n"),
		     "t.yaml:8:24: routes[0].compress.types[0]: expected a media type like \"text/html\", \"text/*\" or "
		     "\"*/*\" (no parameters), got \"text\"");
	expect_error(ROUTE("    compress: {types: [\"text/html; charset=utf-8\"]}\n"),
		     "t.yaml:8:24: routes[0].compress.types[0]: expected a media type like \"text/html\", \"text/*\" or "
		     "\"*/*\" (no parameters), got \"text/html; charset=utf-8\"");
	expect_error(ROUTE("    compress: {types: []}\n"),
		     "t.yaml:8:23: routes[0].compress.types: expected at least one media type (leave types out for the "
		     "built-in list)");
	expect_error(ROUTE("    compress: {gzip_level: 10}\n"),
		     "t.yaml:8:28: routes[0].compress.gzip_level: expected an integer between 0 and 9, got \"10\"");
	expect_error(ROUTE("    compress: {br_level: 7}\n"),
		     "t.yaml:8:26: routes[0].compress.br_level: expected an integer between 0 and 6, got \"7\"");
	expect_error(ROUTE("    compress: {zstd_level: 19}\n"),
		     "t.yaml:8:28: routes[0].compress.zstd_level: expected an integer between 0 and 6, got \"19\"");
	expect_error(ROUTE("    compress: {min_size: 2GiB}\n"),
		     "t.yaml:8:26: routes[0].compress.min_size: expected a size between 0B and 1GiB, got \"2GiB\"");
}

/* Every error of a document comes at once, sorted by position. */
static void test_errors_together(void **state)
{
	struct moat_conf_errors err;
	struct moat_conf *c;

	(void)state;
	c = load("cache: {memory: 2MiB, max_object: 3MiB}\n" MINIMAL_TAIL
		 "    cache: {key: [host], key_query: [a]}\n"
		 "    compress: {codings: [lz4], types: [\"a/b/c\"]}\n",
		 &err);
	assert_null(c);
	assert_int_equal(err.count, 4);
	assert_has_line(&err, "t.yaml:1:35: cache.max_object (3MiB) must be at most cache.memory (2MiB)");
	assert_has_line(&err, "t.yaml:9:18: routes[0].cache.key: the key must hold \"path\", like [host, path, query]");
	assert_has_line(&err, "t.yaml:10:26: routes[0].compress.codings[0]: expected one of gzip, br, zstd; got \"lz4\"");
	assert_has_line(&err,
			"t.yaml:10:40: routes[0].compress.types[0]: expected a media type like \"text/html\", \"text/*\" "
			"or \"*/*\" (no parameters), got \"a/b/c\"");
	/* a key that did not parse keeps its default (which holds query): no second error */
	moat_conf_errors_free(&err);
}

/* ---- printing and equality --------------------------------------------------------- */

static const char every_key[] =
	"cache:\n  memory: 64MiB\n  disk: /var/cache/moat\n  disk_size: 2GiB\n  max_object: 8MiB\n"
	"  purge_from: [10.0.0.0/8, \"::1/128\"]\n"
	"listeners:\n  - listen: 127.0.0.1:8080\n"
	"upstreams:\n  app:\n    servers: [127.0.0.1:3000]\n"
	"routes:\n"
	"  - path: /static/\n    upstream: app\n"
	"    cache:\n      key: [host, path, query]\n      key_query: [id, page]\n      key_headers: [X-Tenant]\n"
	"      allow_set_cookie: false\n      client_no_cache: true\n      default_ttl: 5s\n"
	"      heuristic_max: 2h\n      heuristic_percent: 20\n      stale_grace: 1m\n      coalesce: true\n"
	"      coalesce_wait: 3s\n"
	"    compress:\n      types: [text/html, \"text/*\"]\n      min_size: 512\n      codings: [br, gzip]\n"
	"      gzip_level: 6\n      br_level: 5\n      zstd_level: 2\n"
	"  - upstream: app\n    cache: true\n    compress: on\n";

static void test_print_roundtrip(void **state)
{
	static const char *const changes[][2] = {
		{ "memory: 64MiB", "memory: 65MiB" },
		{ "disk: /var/cache/moat", "disk: /var/cache/moat2" },
		{ "disk_size: 2GiB", "disk_size: 3GiB" },
		{ "max_object: 8MiB", "max_object: 7MiB" },
		{ "purge_from: [10.0.0.0/8, \"::1/128\"]", "purge_from: [10.0.0.0/8]" },
		{ "key: [host, path, query]", "key: [path, query]" },
		{ "key_query: [id, page]", "key_query: [id]" },
		{ "key_headers: [X-Tenant]", "key_headers: [X-Tenant, X-Other]" },
		{ "allow_set_cookie: false", "allow_set_cookie: true" },
		{ "client_no_cache: true", "client_no_cache: false" },
		{ "default_ttl: 5s", "default_ttl: 6s" },
		{ "heuristic_max: 2h", "heuristic_max: 3h" },
		{ "heuristic_percent: 20", "heuristic_percent: 21" },
		{ "stale_grace: 1m", "stale_grace: 2m" },
		{ "coalesce: true", "coalesce: false" },
		{ "coalesce_wait: 3s", "coalesce_wait: 4s" },
		{ "types: [text/html, \"text/*\"]", "types: [text/html]" },
		{ "min_size: 512", "min_size: 513" },
		{ "codings: [br, gzip]", "codings: [br, gzip, zstd]" },
		{ "gzip_level: 6", "gzip_level: 7" },
		{ "br_level: 5", "br_level: 4" },
		{ "zstd_level: 2", "zstd_level: 3" },
		{ "    cache: true\n", "    cache: false\n" },
		{ "compress: on", "compress: off" },
	};
	struct moat_conf *c, *d;
	char *text = NULL, *changed;
	size_t len = 0, i;
	FILE *f;

	(void)state;
	c = load_ok(every_key);
	roundtrip(c);

	/* what the printed text says */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "\ncache:\n  memory: 64MiB\n  disk: \"/var/cache/moat\"\n  disk_size: 2GiB\n"
				     "  max_object: 8MiB\n  purge_from: [\"10.0.0.0/8\", \"::1/128\"]\n"));
	assert_non_null(strstr(text, "\n    cache:\n      key: [host, path, query]\n      key_query: [\"id\", \"page\"]\n"
				     "      key_headers: [\"x-tenant\"]\n"));
	assert_non_null(strstr(text, "\n      heuristic_max: 2h\n"));
	assert_non_null(strstr(text, "\n    compress:\n      types: [\"text/html\", \"text/*\"]\n      min_size: 512\n"
				     "      codings: [gzip, br]\n      gzip_level: 6\n"));
	free(text);

	/* one value changed: no longer equal, and the change prints and loads back */
	for (i = 0; i < sizeof changes / sizeof changes[0]; i++) {
		changed = replace_once(every_key, changes[i][0], changes[i][1]);
		d = load_ok(changed);
		if (moat_conf_equal(c, d))
			fail_msg("still equal after \"%s\" -> \"%s\"", changes[i][0], changes[i][1]);
		if (moat_conf_equal(d, c))
			fail_msg("still equal (reversed) after \"%s\" -> \"%s\"", changes[i][0], changes[i][1]);
		roundtrip(d);
		moat_conf_free(d);
		free(changed);
	}
	moat_conf_free(c);

	/* the store turned on by a route alone prints as a block and loads back equal */
	c = load_ok(ROUTE("    cache: true\n"));
	roundtrip(c);
	d = load_ok("cache: {}\n" ROUTE("    cache: true\n"));
	assert_true(moat_conf_equal(c, d));
	moat_conf_free(d);
	/* ... but a store without any route's cache differs from none */
	d = load_ok(MINIMAL_TAIL);
	assert_false(moat_conf_equal(c, d));
	moat_conf_free(d);
	moat_conf_free(c);

	/* defaults, an empty purge_from, odd corners */
	c = load_ok("cache: {purge_from: []}\n" MINIMAL_TAIL);
	roundtrip(c);
	d = load_ok("cache: {}\n" MINIMAL_TAIL);
	assert_false(moat_conf_equal(c, d));
	moat_conf_free(d);
	moat_conf_free(c);
	c = load_ok("cache: {disk: \"/a \\\"b\\\" \\\\c\"}\n" MINIMAL_TAIL);
	assert_string_equal(c->cache.disk, "/a \"b\" \\c");
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(ROUTE("    cache: {key: [path], key_headers: [a]}\n    compress: {codings: [zstd]}\n"));
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(ROUTE("    cache: {key_query: [\"p~!$'()*+,/:?@\"]}\n"));
	roundtrip(c);
	moat_conf_free(c);
}

/* ---- the one-line mode ------------------------------------------------------------ */

static void test_proxy_args(void **state)
{
	static const char *const to[] = { "127.0.0.1:3000" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	(void)state;
	/* nothing asked: everything off, at its defaults */
	c = moat_conf_from_proxy_args("127.0.0.1:8080", to, 1, 1, &err);
	assert_non_null(c);
	assert_int_equal(c->cache.on, 0);
	assert_store_defaults(&c->cache);
	assert_int_equal(c->routes[0].cache.on, 0);
	assert_route_cache_defaults(&c->routes[0].cache);
	assert_int_equal(c->routes[0].compress.on, 0);
	assert_route_compress_defaults(&c->routes[0].compress);

	/* --cache 64MiB --compress */
	assert_int_equal(moat_conf_set_cache(c, "64MiB", &err), 0);
	moat_conf_set_compress(c);
	assert_int_equal(c->cache.on, 1);
	assert_int_equal(c->cache.memory, 64 * MIB);
	assert_int_equal(c->cache.max_object, 16 * MIB);
	assert_int_equal(c->routes[0].cache.on, 1);
	assert_route_cache_defaults(&c->routes[0].cache);
	assert_int_equal(c->routes[0].compress.on, 1);
	assert_route_compress_defaults(&c->routes[0].compress);
	assert_int_equal(err.count, 0);
	roundtrip(c);

	/* a small store: the largest object follows it down */
	assert_int_equal(moat_conf_set_cache(c, "2MiB", &err), 0);
	assert_int_equal(c->cache.memory, 2 * MIB);
	assert_int_equal(c->cache.max_object, 2 * MIB);

	/* refused */
	assert_int_equal(moat_conf_set_cache(c, "lots", &err), -1);
	assert_int_equal(moat_conf_set_cache(c, "1000KiB", &err), -1);
	assert_int_equal(err.count, 2);
	assert_has_line(&err, "--cache: expected a size like \"256MiB\", got \"lots\"");
	assert_has_line(&err, "--cache: expected a size between 1MiB and 1024GiB, got \"1000KiB\"");
	assert_int_equal(c->cache.memory, 2 * MIB);
	moat_conf_free(c);
	moat_conf_errors_free(&err);
}

/* ---- media types ------------------------------------------------------------------- */

static void test_media_type(void **state)
{
	(void)state;
	assert_true(moat_conf_media_type_ok("text/html"));
	assert_true(moat_conf_media_type_ok("text/*"));
	assert_true(moat_conf_media_type_ok("*/*"));
	assert_true(moat_conf_media_type_ok("application/vnd.api+json"));
	assert_true(moat_conf_media_type_ok("Image/SVG+XML"));
	assert_false(moat_conf_media_type_ok(""));
	assert_false(moat_conf_media_type_ok("text"));
	assert_false(moat_conf_media_type_ok("/html"));
	assert_false(moat_conf_media_type_ok("text/"));
	assert_false(moat_conf_media_type_ok("*/html"));
	assert_false(moat_conf_media_type_ok("*"));
	assert_false(moat_conf_media_type_ok("te*t/html"));
	assert_false(moat_conf_media_type_ok("text/ht*"));
	assert_false(moat_conf_media_type_ok("text/html/x"));
	assert_false(moat_conf_media_type_ok("text/html;q=1"));
	assert_false(moat_conf_media_type_ok("text /html"));
	assert_false(moat_conf_media_type_ok("text/\"html\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_route_cache),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_route_compress),
		cmocka_unit_test(test_refused_values),
		cmocka_unit_test(test_errors_together),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_proxy_args),
		cmocka_unit_test(test_media_type),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
