/*
 * conf_lint.c - warnings about a valid configuration that probably does
 * not do what its author meant (`moat -t`): a route that can never match
 * because an earlier one takes all its requests, an upstream no route
 * uses, a group without a user.
 *
 * Works on a loaded snapshot, which it only reads; the messages go to the
 * caller's buffer as "FILE:LINE:COL: warning: ...". Pure apart from that.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_int.h"

/* Does every host that route b matches also match route a? (route.c:
 * NULL matches any host; "*.s" is stored as ".s" and matches names that
 * end with it and are longer.) Hosts are stored lowercase. */
static int host_covers(const struct moat_conf_route *a, const struct moat_conf_route *b)
{
	size_t al, bl;

	if (a->host == NULL)
		return 1;
	if (b->host == NULL)
		return 0;
	al = strlen(a->host);
	bl = strlen(b->host);
	if (!a->host_wildcard)
		return !b->host_wildcard && strcmp(a->host, b->host) == 0;
	/* a is ".s": b's names must all end with ".s" */
	if (b->host_wildcard)
		return bl >= al && strcmp(b->host + bl - al, a->host) == 0;
	return bl > al && strcmp(b->host + bl - al, a->host) == 0;
}

/* Does every path that route b matches also match route a? */
static int path_covers(const struct moat_conf_route *a, const struct moat_conf_route *b)
{
	if (a->path_prefix == NULL || a->path_prefix_len <= 1)
		return 1;
	if (b->path_prefix == NULL || b->path_prefix_len <= 1)
		return 0;
	return b->path_prefix_len >= a->path_prefix_len &&
	       memcmp(b->path_prefix, a->path_prefix, a->path_prefix_len) == 0;
}

/* What a route matches, for messages: "host example.com, path /api/". */
static void route_text(const struct moat_conf_route *r, char *buf, size_t len)
{
	char h[160], p[160];

	if (r->host == NULL)
		snprintf(h, sizeof(h), "any host");
	else
		snprintf(h, sizeof(h), "host \"%s%s\"", r->host_wildcard ? "*" : "", r->host);
	if (r->path_prefix == NULL || r->path_prefix_len <= 1)
		snprintf(p, sizeof(p), "any path");
	else
		moat_conf_quote(r->path_prefix, r->path_prefix_len, 100, p, sizeof(p));
	snprintf(buf, len, "%s, %s%s", h, r->path_prefix && r->path_prefix_len > 1 ? "path " : "", p);
}

int moat_conf_lint(const struct moat_conf *c, struct moat_conf_errors *out)
{
	const char *file = c->file ? c->file : "-";
	unsigned n = 0;
	size_t i, j;

	for (i = 1; i < c->nroutes; i++) {
		const struct moat_conf_route *b = &c->routes[i];

		for (j = 0; j < i; j++) {
			const struct moat_conf_route *a = &c->routes[j];
			char ta[400];

			if (!host_covers(a, b) || !path_covers(a, b))
				continue;
			route_text(a, ta, sizeof(ta));
			moat_conf_errorf(out,
					 "%s:%u:%u: warning: routes[%zu] can never match: routes[%zu] (line %u, column "
					 "%u; %s) comes first and takes every request it would",
					 file, b->pos.line, b->pos.col, i, j, a->pos.line, a->pos.col, ta);
			n++;
			break;
		}
	}
	for (i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream *u = &c->upstreams[i];

		if (u->used)
			continue;
		moat_conf_errorf(out, "%s:%u:%u: warning: upstream \"%s\" is not used by any route", file, u->pos.line,
				 u->pos.col, u->name);
		n++;
	}
	if (c->group != NULL && c->user == NULL) {
		moat_conf_errorf(out, "%s: warning: group \"%s\" is ignored without user (privileges are dropped "
				 "only when user is set)", file, c->group);
		n++;
	}
	return (int)n;
}
