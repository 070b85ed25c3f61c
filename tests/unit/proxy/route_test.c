/*
 * route_test.c - unit tests of src/proxy/route.c, first-match routing.
 *
 * The snapshot is built by hand the way the loader leaves it (hosts
 * lowercase, "*.example.com" stored as ".example.com" with host_wildcard,
 * IPv6 literals with their brackets). Checked: the first matching route
 * wins, in order; hosts compare case-insensitively with ":port" and a
 * trailing dot ignored; a wildcard needs at least one more label (not the
 * bare suffix); path prefixes compare bytes up to '?' only; no Host at all
 * matches only host-less routes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/route.h"

struct rdef {
	const char *host;     /* as written in the config; NULL: any */
	const char *path;     /* NULL: any */
};

static struct moat_conf_route routes[16];
static struct moat_conf conf;

/* Fills `conf` with the routes, as the loader would store them. */
static void build(const struct rdef *defs, size_t n)
{
	assert_true(n <= sizeof(routes) / sizeof(routes[0]));
	memset(&conf, 0, sizeof(conf));
	memset(routes, 0, sizeof(routes));
	for (size_t i = 0; i < n; i++) {
		struct moat_conf_route *r = &routes[i];
		const char *h = defs[i].host;

		if (h && h[0] == '*' && h[1] == '.') {
			r->host = (char *)(uintptr_t)(h + 1);
			r->host_wildcard = 1;
		} else {
			r->host = (char *)(uintptr_t)h;
		}
		r->path_prefix = (char *)(uintptr_t)defs[i].path;
		r->path_prefix_len = defs[i].path ? strlen(defs[i].path) : 0;
		r->upstream = i;
	}
	conf.routes = routes;
	conf.nroutes = n;
}

/* Index of the route chosen for host/path (C strings; host NULL: none),
 * or -1 when none matches. */
static int pick(const char *host, const char *path)
{
	const struct moat_conf_route *r;
	char *h = NULL, *p;
	size_t plen = strlen(path);
	int i;

	/* exactly sized heap copies: any read past the end is caught */
	if (host) {
		size_t hlen = strlen(host);

		h = malloc(hlen ? hlen : 1);
		assert_non_null(h);
		memcpy(h, host, hlen);
		p = malloc(plen ? plen : 1);
		assert_non_null(p);
		memcpy(p, path, plen);
		r = moat_route_match(&conf, h, hlen, p, plen);
	} else {
		p = malloc(plen ? plen : 1);
		assert_non_null(p);
		memcpy(p, path, plen);
		r = moat_route_match(&conf, NULL, 0, p, plen);
	}
	free(h);
	free(p);
	if (!r)
		return -1;
	i = (int)(r - routes);
	assert_true(i >= 0 && (size_t)i < conf.nroutes);
	return i;
}

#define EXPECT(host, path, want) do {                                           \
	int got_ = pick((host), (path));                                        \
	if (got_ != (want))                                                     \
		fail_msg("host %s path \"%s\": route %d, want %d",               \
			 (host) ? (host) : "(none)", (path), got_, (want));     \
} while (0)

static const struct rdef typical[] = {
	/* 0 */ { "api.example.com", "/v1/" },
	/* 1 */ { "api.example.com", NULL },
	/* 2 */ { "*.example.com", "/static/" },
	/* 3 */ { "*.example.com", NULL },
	/* 4 */ { "[::1]", NULL },
	/* 5 */ { "example.com", "/" },
	/* 6 */ { "127.0.0.1", NULL },
	/* 7 */ { NULL, "/health" },
	/* 8 */ { NULL, NULL },
};

static int setup_typical(void **state)
{
	(void)state;
	build(typical, sizeof(typical) / sizeof(typical[0]));
	return 0;
}

static void test_exact_host_and_path_prefix(void **state)
{
	(void)state;
	EXPECT("api.example.com", "/v1/users", 0);
	EXPECT("api.example.com", "/v1/", 0);
	EXPECT("api.example.com", "/v1", 1);          /* shorter than the prefix */
	EXPECT("api.example.com", "/v2/users", 1);
	EXPECT("api.example.com", "/", 1);
	EXPECT("api.example.com", "/V1/users", 1);    /* paths are case-sensitive */
	EXPECT("example.com", "/anything", 5);        /* prefix "/" is any path */
	EXPECT("example.com", "", 5);
	EXPECT("127.0.0.1", "/x", 6);
	EXPECT("127.0.0.1:8080", "/x", 6);
	EXPECT("127.0.0.2", "/x", 8);
}

static void test_first_match_in_order(void **state)
{
	static const struct rdef catch_all_first[] = {
		{ NULL, NULL },
		{ "api.example.com", NULL },
	};
	static const struct rdef wildcard_first[] = {
		{ "*.example.com", NULL },
		{ "api.example.com", "/v1/" },
		{ NULL, "/v1/" },
	};

	(void)state;
	/* api.example.com matches 0, 1 and 3 (wildcard) and 8: 0 or 1 wins */
	EXPECT("api.example.com", "/static/x", 1);
	EXPECT("cdn.example.com", "/static/x", 2);

	build(catch_all_first, 2);
	EXPECT("api.example.com", "/", 0);
	EXPECT("other", "/", 0);

	build(wildcard_first, 3);
	EXPECT("api.example.com", "/v1/x", 0);
	EXPECT("example.com", "/v1/x", 2);
	EXPECT("example.com", "/v2/x", -1);           /* no catch-all: NULL */
	setup_typical(NULL);
}

static void test_host_case_insensitive(void **state)
{
	(void)state;
	EXPECT("API.EXAMPLE.COM", "/v1/x", 0);
	EXPECT("Api.Example.Com", "/x", 1);
	EXPECT("CDN.Example.COM", "/static/a.css", 2);
	EXPECT("EXAMPLE.com", "/", 5);
	EXPECT("[::1]", "/", 4);
}

static void test_port_ignored(void **state)
{
	(void)state;
	EXPECT("api.example.com:8443", "/v1/x", 0);
	EXPECT("api.example.com:80", "/x", 1);
	EXPECT("api.example.com:", "/x", 1);
	EXPECT("cdn.example.com:443", "/static/x", 2);
	EXPECT("example.com:1", "/", 5);
	EXPECT("api.example.comx:80", "/x", 8);
}

static void test_trailing_dot_ignored(void **state)
{
	(void)state;
	EXPECT("api.example.com.", "/v1/x", 0);
	EXPECT("api.example.com.:8080", "/x", 1);
	EXPECT("cdn.example.com.", "/static/x", 2);
	EXPECT("example.com.", "/", 5);
	EXPECT("EXAMPLE.COM.:80", "/", 5);
}

static void test_wildcard(void **state)
{
	(void)state;
	EXPECT("cdn.example.com", "/static/app.js", 2);
	EXPECT("cdn.example.com", "/other", 3);
	EXPECT("a.b.example.com", "/other", 3);
	EXPECT("x.example.com", "/", 3);
	/* the bare suffix is not covered by "*.example.com" */
	EXPECT("example.com", "/static/app.js", 5);
	EXPECT(".example.com", "/static/app.js", 8);
	/* a name that merely ends in the same letters is not in the domain */
	EXPECT("badexample.com", "/static/app.js", 8);
	EXPECT("example.com.evil", "/", 8);
	EXPECT("cdn.example.co", "/", 8);
}

static void test_wildcard_does_not_match_bare_suffix_alone(void **state)
{
	static const struct rdef only_wild[] = {
		{ "*.example.com", NULL },
	};

	(void)state;
	build(only_wild, 1);
	EXPECT("example.com", "/", -1);
	EXPECT("example.com.", "/", -1);
	EXPECT("example.com:443", "/", -1);
	EXPECT("EXAMPLE.COM", "/", -1);
	EXPECT("w.example.com", "/", 0);
	EXPECT("w.example.com.:1", "/", 0);
	setup_typical(NULL);
}

static void test_path_prefix_and_query(void **state)
{
	(void)state;
	/* only the part before '?' is the path */
	EXPECT("api.example.com", "/v1/?q=1", 0);
	EXPECT("api.example.com", "/v1?x=/v1/", 1);
	EXPECT("api.example.com", "/?next=/v1/", 1);
	EXPECT("other.test", "/health?probe=1", 7);
	EXPECT("other.test", "/health", 7);
	EXPECT("other.test", "/x?/health", 8);
	EXPECT("other.test", "?/health", 8);
	EXPECT("other.test", "/heal", 8);
	EXPECT("cdn.example.com", "/static?/static/", 3);
	EXPECT("cdn.example.com", "/static/?", 2);
}

static void test_ipv6_literal_host(void **state)
{
	(void)state;
	EXPECT("[::1]:8080", "/", 4);
	EXPECT("[::1]", "/x", 4);
	EXPECT("[::1]:", "/x", 4);
	EXPECT("[::2]:8080", "/", 8);
	EXPECT("[::1:8080]", "/", 8);
	EXPECT("[::10]", "/", 8);
	EXPECT("::1", "/", 8);
}

static void test_no_host(void **state)
{
	(void)state;
	EXPECT(NULL, "/health", 7);
	EXPECT(NULL, "/", 8);
	EXPECT("", "/", 8);
	EXPECT(":8080", "/health", 7);
	{
		static const struct rdef hosts_only[] = {
			{ "example.com", NULL },
			{ "*.example.com", NULL },
		};

		build(hosts_only, 2);
		EXPECT(NULL, "/", -1);
		EXPECT("", "/", -1);
		EXPECT(".", "/", -1);
		setup_typical(NULL);
	}
}

static void test_empty_config(void **state)
{
	(void)state;
	build(NULL, 0);
	EXPECT("example.com", "/", -1);
	EXPECT(NULL, "/", -1);
	setup_typical(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_exact_host_and_path_prefix, setup_typical),
		cmocka_unit_test_setup(test_first_match_in_order, setup_typical),
		cmocka_unit_test_setup(test_host_case_insensitive, setup_typical),
		cmocka_unit_test_setup(test_port_ignored, setup_typical),
		cmocka_unit_test_setup(test_trailing_dot_ignored, setup_typical),
		cmocka_unit_test_setup(test_wildcard, setup_typical),
		cmocka_unit_test_setup(test_wildcard_does_not_match_bare_suffix_alone, setup_typical),
		cmocka_unit_test_setup(test_path_prefix_and_query, setup_typical),
		cmocka_unit_test_setup(test_ipv6_literal_host, setup_typical),
		cmocka_unit_test_setup(test_no_host, setup_typical),
		cmocka_unit_test_setup(test_empty_config, setup_typical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
