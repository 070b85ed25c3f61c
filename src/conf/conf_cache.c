/*
 * conf_cache.c - the configuration of HTTP caching and on-the-fly
 * compression: the store shared by every route, and each route's cache and
 * compress blocks.
 *
 *   cache:  {memory: 256MiB, disk: DIR, disk_size: 1GiB, max_object: 16MiB,
 *            purge_from: [127.0.0.0/8, "::1/128"]}
 *   routes: [{..., cache: true | {key: [host, path, query], key_query: [..],
 *             key_headers: [..], allow_set_cookie, client_no_cache,
 *             default_ttl, heuristic_max, heuristic_percent, stale_grace,
 *             coalesce, coalesce_wait},
 *             compress: true | {types: [..], min_size, codings: [..],
 *             gzip_level, br_level, zstd_level}}]
 *
 * Everything here fills members of the snapshot (conf.h, struct
 * moat_conf_cache, moat_conf_route_cache, moat_conf_route_compress), which
 * owns them. mod/cache and mod/compress read them; nothing here knows how
 * they are used. Control thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_cache.h"
#include "conf/conf_int.h"
#include "conf/conf_yaml.h"
#include "core/limits.h"

/* ---- defaults and freeing --------------------------------------------------- */

/* 127.0.0.0/8 and ::1/128 */
static int default_purge_from(struct moat_conf_cidr **list, size_t *n)
{
	struct moat_conf_cidr *l = calloc(2, sizeof *l);

	if (l == NULL)
		return -1;
	l[0].family = AF_INET;
	l[0].addr[0] = 127;
	l[0].prefix = 8;
	l[1].family = AF_INET6;
	l[1].addr[15] = 1;
	l[1].prefix = 128;
	*list = l;
	*n = 2;
	return 0;
}

int moat_conf_cache_defaults(struct moat_conf *c)
{
	struct moat_conf_cache *s = &c->cache;

	s->on = 0;
	s->memory = MOAT_CONF_CACHE_DEFAULT_MEMORY;
	s->disk = NULL;
	s->disk_size = MOAT_CONF_CACHE_DEFAULT_DISK_SIZE;
	s->max_object = MOAT_CONF_CACHE_DEFAULT_MAX_OBJECT;
	return default_purge_from(&s->purge_from, &s->npurge_from);
}

void moat_conf_cache_route_init(struct moat_conf_route *r)
{
	struct moat_conf_route_cache *k = &r->cache;
	struct moat_conf_route_compress *z = &r->compress;

	k->on = 0;
	k->key = MOAT_CONF_CACHE_KEY_ALL;
	k->allow_set_cookie = 0;
	k->client_no_cache = 1;
	k->default_ttl_ms = 0;
	k->heuristic_max_ms = MOAT_CONF_CACHE_DEFAULT_HEURISTIC_MAX_MS;
	k->heuristic_percent = MOAT_CONF_CACHE_DEFAULT_HEURISTIC_PERCENT;
	k->stale_grace_ms = 0;
	k->coalesce = 1;
	k->coalesce_wait_ms = MOAT_CONF_CACHE_DEFAULT_COALESCE_WAIT_MS;
	z->on = 0;
	z->min_size = MOAT_CONF_COMPRESS_DEFAULT_MIN_SIZE;
	z->codings = MOAT_CONF_CODINGS_ALL;
	z->gzip_level = 0;
	z->br_level = 0;
	z->zstd_level = 0;
}

static void free_strings(char ***list, size_t *n)
{
	size_t i;

	for (i = 0; *list != NULL && i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

void moat_conf_cache_free(struct moat_conf *c)
{
	size_t i;

	for (i = 0; c->routes != NULL && i < c->nroutes; i++) {
		struct moat_conf_route *r = &c->routes[i];

		free_strings(&r->cache.key_query, &r->cache.nkey_query);
		free_strings(&r->cache.key_headers, &r->cache.nkey_headers);
		free_strings(&r->compress.types, &r->compress.ntypes);
	}
	free(c->cache.disk);
	c->cache.disk = NULL;
	free(c->cache.purge_from);
	c->cache.purge_from = NULL;
	c->cache.npurge_from = 0;
}

/* ---- the store: "cache:" at the top ----------------------------------------- */

static void cache_disk(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_cache *s = obj;
	const char *v = moat_conf_yaml_text(ld, val, "a directory like \"/var/cache/moat\"");

	if (v == NULL)
		return;
	if (v[0] == '\0') {
		moat_conf_yaml_error(ld, val, "expected a directory like \"/var/cache/moat\", got an empty value");
		return;
	}
	moat_conf_yaml_set_string(ld, val, &s->disk, v);
}

/* An empty list is allowed, and means nobody may PURGE (moat_conf_set_cidrs
 * would keep the default). */
static void cache_purge_from(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_cache *s = obj;
	size_t n;

	if (moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_CIDRS, "CIDR blocks", &n) == NULL)
		return;
	if (n == 0) {
		free(s->purge_from);
		s->purge_from = NULL;
		s->npurge_from = 0;
		return;
	}
	moat_conf_set_cidrs(ld, val, &s->purge_from, &s->npurge_from);
}

enum { CS_MEMORY, CS_DISK, CS_DISK_SIZE, CS_MAX_OBJECT, CS_PURGE_FROM };

static const struct moat_conf_key store_keys[] = {
	[CS_MEMORY] = { "memory", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_cache, memory),
			MOAT_CONF_CACHE_MIN_MEMORY, MOAT_CONF_CACHE_MAX_MEMORY, NULL, NULL, 0 },
	[CS_DISK] = { "disk", MOAT_CONF_K_CUSTOM, 0, 0, 0, cache_disk, NULL, 0 },
	[CS_DISK_SIZE] = { "disk_size", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_cache, disk_size),
			   MOAT_CONF_CACHE_MIN_DISK_SIZE, MOAT_CONF_CACHE_MAX_DISK_SIZE, NULL, NULL, 0 },
	[CS_MAX_OBJECT] = { "max_object", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_cache, max_object), 1,
			    MOAT_CONF_CACHE_MAX_MEMORY, NULL, NULL, 0 },
	[CS_PURGE_FROM] = { "purge_from", MOAT_CONF_K_CUSTOM, 0, 0, 0, cache_purge_from, NULL, 0 },
};

void moat_conf_schema_cache(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	struct moat_conf_cache *s = &c->cache;
	struct moat_conf_pos where[MOAT_CONF_NELEM(store_keys)];
	char a[32], b[32];
	unsigned seen;

	s->on = 1;
	s->pos = moat_conf_yaml_pos(val);
	seen = moat_conf_yaml_walk_map(ld, val, store_keys, MOAT_CONF_NELEM(store_keys), s, where);
	if (s->max_object <= s->memory)
		return;
	/* memory alone, below the default max_object: the largest object
	 * follows it down (as limits.request_line follows header_size) */
	if (!(seen & (1u << CS_MAX_OBJECT))) {
		s->max_object = s->memory;
		return;
	}
	moat_conf_yaml_size_text(s->max_object, a, sizeof a);
	moat_conf_yaml_size_text(s->memory, b, sizeof b);
	moat_conf_yaml_error_at(ld, where[CS_MAX_OBJECT], "cache.max_object (%s) must be at most cache.memory (%s)",
				a, b);
}

/* ---- a route's cache ---------------------------------------------------------- */

/* Nonzero for a scalar true/on/yes (1) or false/off/no (0), any case,
 * quoted or not; -1 otherwise. */
static int bool_word(const yaml_node_t *n)
{
	static const char *const yes[] = { "true", "on", "yes" };
	static const char *const no[] = { "false", "off", "no" };
	size_t i;

	if (n->type != YAML_SCALAR_NODE)
		return -1;
	for (i = 0; i < MOAT_CONF_NELEM(yes); i++) {
		if (strcasecmp(sval(n), yes[i]) == 0)
			return 1;
		if (strcasecmp(sval(n), no[i]) == 0)
			return 0;
	}
	return -1;
}

static const char *const key_part_names[] = { "host", "path", "query" };
static const unsigned key_part_bits[] = { MOAT_CONF_CACHE_KEY_HOST, MOAT_CONF_CACHE_KEY_PATH,
					  MOAT_CONF_CACHE_KEY_QUERY };

/* A list of words, each one of names[0..n), as the OR of their bits in
 * *out; 0, or -1 after an error at its position. `empty` is the message
 * for an empty list (NULL: allowed). */
static int word_bits(struct moat_conf_loader *ld, yaml_node_t *val, const char *what, const char *empty,
		     const char *const *names, const unsigned *bits, size_t n, unsigned *out)
{
	yaml_node_item_t *items;
	size_t count, i, old;
	unsigned acc = 0;
	int bad = 0;

	items = moat_conf_yaml_list(ld, val, 8, what, &count);
	if (items == NULL)
		return -1;
	if (count == 0 && empty) {
		moat_conf_yaml_error(ld, val, "%s", empty);
		return -1;
	}
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		int w;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			return -1;
		old = moat_conf_yaml_push_index(ld, i);
		w = moat_conf_yaml_word(ld, it, names, n);
		moat_conf_yaml_pop(ld, old);
		if (w < 0)
			bad = 1;
		else
			acc |= bits[w];
	}
	if (bad || ld->stop)
		return -1;
	*out = acc;
	return 0;
}

static void rc_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route_cache *k = obj;
	unsigned bits = 0;

	if (word_bits(ld, val, "key parts", NULL, key_part_names, key_part_bits, MOAT_CONF_NELEM(key_part_names),
		      &bits) < 0)
		return;
	if (!(bits & MOAT_CONF_CACHE_KEY_PATH)) {
		moat_conf_yaml_error(ld, val, "the key must hold \"path\", like [host, path, query]");
		return;
	}
	k->key = bits;
}

/* A query parameter name as it appears in a request target before '=':
 * visible ASCII (anything else is sent %-encoded) without the separators
 * '&', '=', ';', '#' and without '"' and '\\' (not in a URI either). */
static int param_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '&' || ch == '=' || ch == '#' || ch == ';' || ch == '"' ||
		    ch == '\\')
			return 0;
	}
	return i > 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rc_key_query(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a query parameter name like \"page\"";
	struct moat_conf_route_cache *k = obj;
	char got_buf[128];
	yaml_node_item_t *items;
	char **list;
	size_t count, i, j, n = 0, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_CACHE_MAX_KEY_PARTS, "query parameter names", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(
		    ld, val,
		    "expected at least one query parameter name (leave \"query\" out of the key to ignore the query)");
		return;
	}
	list = moat_conf_yaml_alloc(ld, val, count, sizeof *list);
	if (list == NULL)
		return;
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		const char *v;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		v = moat_conf_yaml_scalar(ld, it, what);
		if (v != NULL && !param_name_ok(v))
			moat_conf_yaml_error(ld, it, "expected %s (visible ASCII without & = ; # \" or \\), got %s", what,
					     MOAT_CONF_GOT(it));
		else if (v != NULL && (list[n] = strdup(v)) == NULL)
			moat_conf_yaml_oom(ld, it);
		else if (v != NULL)
			n++;
		moat_conf_yaml_pop(ld, old);
	}
	/* sorted and without repeats: the key is built in this order */
	qsort(list, n, sizeof *list, str_cmp);
	for (i = 0, j = 0; i < n; i++) {
		if (j > 0 && strcmp(list[j - 1], list[i]) == 0)
			free(list[i]);
		else
			list[j++] = list[i];
	}
	free_strings(&k->key_query, &k->nkey_query);
	k->key_query = list;
	k->nkey_query = j;
}

static void rc_key_headers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route_cache *k = obj;
	char got_buf[128];
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_CACHE_MAX_KEY_PARTS, "header names", &count);
	if (items == NULL)
		return;
	free_strings(&k->key_headers, &k->nkey_headers);
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		const char *v;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		v = moat_conf_yaml_scalar(ld, it, "a header name like \"x-tenant\"");
		if (v != NULL && !moat_conf_header_name_ok(v, strlen(v)))
			moat_conf_yaml_error(ld, it, "expected a header name like \"x-tenant\", got %s",
					     MOAT_CONF_GOT(it));
		else if (v != NULL && moat_conf_header_add(&k->key_headers, &k->nkey_headers, v, strlen(v)) < 0)
			moat_conf_yaml_oom(ld, it);
		moat_conf_yaml_pop(ld, old);
	}
}

enum { RC_KEY, RC_KEY_QUERY, RC_KEY_HEADERS, RC_ALLOW_SET_COOKIE, RC_CLIENT_NO_CACHE, RC_DEFAULT_TTL,
       RC_HEURISTIC_MAX, RC_HEURISTIC_PERCENT, RC_STALE_GRACE, RC_COALESCE, RC_COALESCE_WAIT };

static const struct moat_conf_key route_cache_keys[] = {
	[RC_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, rc_key, NULL, 0 },
	[RC_KEY_QUERY] = { "key_query", MOAT_CONF_K_CUSTOM, 0, 0, 0, rc_key_query, NULL, 0 },
	[RC_KEY_HEADERS] = { "key_headers", MOAT_CONF_K_CUSTOM, 0, 0, 0, rc_key_headers, NULL, 0 },
	[RC_ALLOW_SET_COOKIE] = { "allow_set_cookie", MOAT_CONF_K_BOOL,
				  offsetof(struct moat_conf_route_cache, allow_set_cookie), 0, 1, NULL, NULL, 0 },
	[RC_CLIENT_NO_CACHE] = { "client_no_cache", MOAT_CONF_K_BOOL,
				 offsetof(struct moat_conf_route_cache, client_no_cache), 0, 1, NULL, NULL, 0 },
	[RC_DEFAULT_TTL] = { "default_ttl", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_route_cache, default_ttl_ms),
			     0, MOAT_CONF_CACHE_MAX_TTL_MS, NULL, NULL, 0 },
	[RC_HEURISTIC_MAX] = { "heuristic_max", MOAT_CONF_K_DURATION,
			       offsetof(struct moat_conf_route_cache, heuristic_max_ms), 0, MOAT_CONF_CACHE_MAX_TTL_MS,
			       NULL, NULL, 0 },
	[RC_HEURISTIC_PERCENT] = { "heuristic_percent", MOAT_CONF_K_UINT,
				   offsetof(struct moat_conf_route_cache, heuristic_percent), 0, 100, NULL, NULL, 0 },
	[RC_STALE_GRACE] = { "stale_grace", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_route_cache, stale_grace_ms),
			     0, MOAT_CONF_CACHE_MAX_TTL_MS, NULL, NULL, 0 },
	[RC_COALESCE] = { "coalesce", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_route_cache, coalesce), 0, 1, NULL,
			  NULL, 0 },
	[RC_COALESCE_WAIT] = { "coalesce_wait", MOAT_CONF_K_DURATION,
			       offsetof(struct moat_conf_route_cache, coalesce_wait_ms), 1,
			       MOAT_CONF_CACHE_MAX_COALESCE_WAIT_MS, NULL, NULL, 0 },
};

void moat_conf_cache_route_cache(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	struct moat_conf_route_cache *k = &r->cache;
	struct moat_conf_pos where[MOAT_CONF_NELEM(route_cache_keys)];
	char got_buf[128];
	unsigned seen;
	int b;

	k->pos = moat_conf_yaml_pos(val);
	if (val->type == YAML_MAPPING_NODE) {
		k->on = 1;
		seen = moat_conf_yaml_walk_map(ld, val, route_cache_keys, MOAT_CONF_NELEM(route_cache_keys), k,
					       where);
		if ((seen & (1u << RC_KEY_QUERY)) && !(k->key & MOAT_CONF_CACHE_KEY_QUERY))
			moat_conf_yaml_error_at(ld, where[RC_KEY_QUERY],
						"%s.key_query: needs \"query\" in the key (key: [host, path, query])",
						ld->path);
		return;
	}
	b = bool_word(val);
	if (b < 0) {
		moat_conf_yaml_error(ld, val,
				     "expected true, false or a mapping like {key: [host, path, query]}, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	k->on = b;
}

/* ---- a route's compression ------------------------------------------------ */

/* An RFC 9110 token of s[0..len), or "*" when `star` allows it. */
static int type_part_ok(const char *s, size_t len, int star)
{
	if (star && len == 1 && s[0] == '*')
		return 1;
	return moat_conf_header_name_ok(s, len) && memchr(s, '*', len) == NULL;
}

int moat_conf_media_type_ok(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t tlen;

	if (slash == NULL)
		return 0;
	tlen = (size_t)(slash - s);
	if (tlen == 1 && s[0] == '*')
		return strcmp(slash + 1, "*") == 0;
	return type_part_ok(s, tlen, 0) && type_part_ok(slash + 1, strlen(slash + 1), 1);
}

static void rz_types(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a media type like \"text/html\", \"text/*\" or \"*/*\"";
	struct moat_conf_route_compress *z = obj;
	char got_buf[128];
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_COMPRESS_MAX_TYPES, "media types", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(ld, val,
				     "expected at least one media type (leave types out for the built-in list)");
		return;
	}
	free_strings(&z->types, &z->ntypes);
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		const char *v;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		v = moat_conf_yaml_scalar(ld, it, what);
		if (v != NULL && !moat_conf_media_type_ok(v))
			moat_conf_yaml_error(ld, it, "expected %s (no parameters), got %s", what, MOAT_CONF_GOT(it));
		/* lowercased, without repeats (the same helper as header names) */
		else if (v != NULL && moat_conf_header_add(&z->types, &z->ntypes, v, strlen(v)) < 0)
			moat_conf_yaml_oom(ld, it);
		moat_conf_yaml_pop(ld, old);
	}
}

static const char *const coding_names[] = { "gzip", "br", "zstd" };
static const unsigned coding_bits[] = { MOAT_CONF_CODING_GZIP, MOAT_CONF_CODING_BR, MOAT_CONF_CODING_ZSTD };

static void rz_codings(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route_compress *z = obj;
	unsigned bits = 0;

	if (word_bits(ld, val, "codings", "expected at least one of gzip, br, zstd (or compress: false)", coding_names,
		      coding_bits, MOAT_CONF_NELEM(coding_names), &bits) == 0)
		z->codings = bits;
}

static const struct moat_conf_key route_compress_keys[] = {
	{ "types", MOAT_CONF_K_CUSTOM, 0, 0, 0, rz_types, NULL, 0 },
	{ "min_size", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_route_compress, min_size), 0,
	  MOAT_CONF_COMPRESS_MAX_MIN_SIZE, NULL, NULL, 0 },
	{ "codings", MOAT_CONF_K_CUSTOM, 0, 0, 0, rz_codings, NULL, 0 },
	/* K_UINT stores an unsigned into these ints: same size, values 0..11 */
	{ "gzip_level", MOAT_CONF_K_UINT, offsetof(struct moat_conf_route_compress, gzip_level), 0,
	  MOAT_CONF_COMPRESS_MAX_GZIP_LEVEL, NULL, NULL, 0 },
	{ "br_level", MOAT_CONF_K_UINT, offsetof(struct moat_conf_route_compress, br_level), 0,
	  MOAT_CONF_COMPRESS_MAX_BR_LEVEL, NULL, NULL, 0 },
	{ "zstd_level", MOAT_CONF_K_UINT, offsetof(struct moat_conf_route_compress, zstd_level), 0,
	  MOAT_CONF_COMPRESS_MAX_ZSTD_LEVEL, NULL, NULL, 0 },
};

void moat_conf_cache_route_compress(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	struct moat_conf_route_compress *z = &r->compress;
	char got_buf[128];
	int b;

	z->pos = moat_conf_yaml_pos(val);
	if (val->type == YAML_MAPPING_NODE) {
		z->on = 1;
		moat_conf_yaml_walk_map(ld, val, route_compress_keys, MOAT_CONF_NELEM(route_compress_keys), z, NULL);
		return;
	}
	b = bool_word(val);
	if (b < 0) {
		moat_conf_yaml_error(ld, val,
				     "expected true, false or a mapping like {codings: [br, gzip]}, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	z->on = b;
}

/* ---- after the walk ----------------------------------------------------------- */

void moat_conf_cache_finish(struct moat_conf_loader *ld)
{
	struct moat_conf *c = ld->c;
	size_t i;

	/* a route's cache needs the store: without a "cache:" block it runs
	 * with the store's defaults */
	for (i = 0; c->routes != NULL && i < c->nroutes; i++)
		if (c->routes[i].cache.on)
			c->cache.on = 1;
}

/* ---- the one-line mode ------------------------------------------------------- */

int moat_conf_set_cache(struct moat_conf *c, const char *memory, struct moat_conf_errors *err)
{
	char q[128], lo[32], hi[32];
	uint64_t b;
	size_t i;

	if (memory == NULL)
		memory = "";
	if (moat_conf_parse_size(memory, &b) < 0) {
		moat_conf_quote(memory, strlen(memory), 64, q, sizeof q);
		moat_conf_errorf(err, "--cache: expected a size like \"256MiB\", got %s", q);
		return -1;
	}
	if (b < MOAT_CONF_CACHE_MIN_MEMORY || b > MOAT_CONF_CACHE_MAX_MEMORY) {
		moat_conf_quote(memory, strlen(memory), 64, q, sizeof q);
		moat_conf_yaml_size_text(MOAT_CONF_CACHE_MIN_MEMORY, lo, sizeof lo);
		moat_conf_yaml_size_text(MOAT_CONF_CACHE_MAX_MEMORY, hi, sizeof hi);
		moat_conf_errorf(err, "--cache: expected a size between %s and %s, got %s", lo, hi, q);
		return -1;
	}
	c->cache.on = 1;
	c->cache.memory = b;
	if (c->cache.max_object > b)
		c->cache.max_object = b;
	for (i = 0; i < c->nroutes; i++)
		c->routes[i].cache.on = 1;
	return 0;
}

void moat_conf_set_compress(struct moat_conf *c)
{
	size_t i;

	for (i = 0; i < c->nroutes; i++)
		c->routes[i].compress.on = 1;
}

/* ---- printing ------------------------------------------------------------------ */

static void put_size(FILE *out, const char *indent, const char *key, uint64_t v)
{
	char b[32];

	moat_conf_format_size(v, b, sizeof b);
	fprintf(out, "%s%s: %s\n", indent, key, b);
}

static void put_ms(FILE *out, const char *indent, const char *key, uint64_t ms)
{
	char b[32];

	moat_conf_format_duration(ms, b, sizeof b);
	fprintf(out, "%s%s: %s\n", indent, key, b);
}

/* `indent` `key`: ["a", "b"], each a YAML double-quoted scalar. */
static void put_strings(FILE *out, const char *indent, const char *key, char *const *l, size_t n)
{
	size_t i;

	fprintf(out, "%s%s: [", indent, key);
	for (i = 0; i < n; i++) {
		/* names checked at load: tokens and query names hold no '"' or '\\' */
		fprintf(out, "%s\"", i ? ", " : "");
		fputs(l[i], out);
		fputc('"', out);
	}
	fputs("]\n", out);
}

static void put_bits(FILE *out, const char *indent, const char *key, unsigned bits, const char *const *names,
		     const unsigned *vals, size_t n)
{
	size_t i, k = 0;

	fprintf(out, "%s%s: [", indent, key);
	for (i = 0; i < n; i++)
		if (bits & vals[i])
			fprintf(out, "%s%s", k++ ? ", " : "", names[i]);
	fputs("]\n", out);
}

void moat_conf_cache_print(const struct moat_conf *c, FILE *out)
{
	const struct moat_conf_cache *s = &c->cache;
	char b[64];
	size_t i;

	if (!s->on)
		return;
	fprintf(out, "cache:\n");
	put_size(out, "  ", "memory", s->memory);
	if (s->disk != NULL)
		moat_conf_put_key_string(out, "  ", "disk", s->disk);
	put_size(out, "  ", "disk_size", s->disk_size);
	put_size(out, "  ", "max_object", s->max_object);
	fprintf(out, "  purge_from: [");
	for (i = 0; i < s->npurge_from; i++) {
		moat_conf_format_cidr(&s->purge_from[i], b, sizeof b);
		fprintf(out, "%s\"%s\"", i ? ", " : "", b);
	}
	fprintf(out, "]\n");
}

void moat_conf_cache_print_route(const struct moat_conf_route *r, FILE *out)
{
	const struct moat_conf_route_cache *k = &r->cache;
	const struct moat_conf_route_compress *z = &r->compress;

	if (k->on) {
		fprintf(out, "    cache:\n");
		put_bits(out, "      ", "key", k->key, key_part_names, key_part_bits, MOAT_CONF_NELEM(key_part_names));
		if (k->key_query != NULL)
			put_strings(out, "      ", "key_query", k->key_query, k->nkey_query);
		if (k->nkey_headers > 0)
			put_strings(out, "      ", "key_headers", k->key_headers, k->nkey_headers);
		fprintf(out, "      allow_set_cookie: %s\n      client_no_cache: %s\n",
			k->allow_set_cookie ? "true" : "false", k->client_no_cache ? "true" : "false");
		put_ms(out, "      ", "default_ttl", k->default_ttl_ms);
		put_ms(out, "      ", "heuristic_max", k->heuristic_max_ms);
		fprintf(out, "      heuristic_percent: %u\n", k->heuristic_percent);
		put_ms(out, "      ", "stale_grace", k->stale_grace_ms);
		fprintf(out, "      coalesce: %s\n", k->coalesce ? "true" : "false");
		put_ms(out, "      ", "coalesce_wait", k->coalesce_wait_ms);
	}
	if (z->on) {
		fprintf(out, "    compress:\n");
		if (z->types != NULL)
			put_strings(out, "      ", "types", z->types, z->ntypes);
		put_size(out, "      ", "min_size", z->min_size);
		put_bits(out, "      ", "codings", z->codings, coding_names, coding_bits, MOAT_CONF_NELEM(coding_names));
		fprintf(out, "      gzip_level: %d\n      br_level: %d\n      zstd_level: %d\n", z->gzip_level,
			z->br_level, z->zstd_level);
	}
}

/* ---- equality ------------------------------------------------------------------- */

static int strings_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb || (a == NULL) != (b == NULL))
		return 0;
	for (i = 0; i < na; i++)
		if (!moat_conf_str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int route_cache_eq(const struct moat_conf_route_cache *a, const struct moat_conf_route_cache *b)
{
	if (a->on != b->on)
		return 0;
	return !a->on ||
	       (a->key == b->key && strings_eq(a->key_query, a->nkey_query, b->key_query, b->nkey_query) &&
		strings_eq(a->key_headers, a->nkey_headers, b->key_headers, b->nkey_headers) &&
		a->allow_set_cookie == b->allow_set_cookie && a->client_no_cache == b->client_no_cache &&
		a->default_ttl_ms == b->default_ttl_ms && a->heuristic_max_ms == b->heuristic_max_ms &&
		a->heuristic_percent == b->heuristic_percent && a->stale_grace_ms == b->stale_grace_ms &&
		a->coalesce == b->coalesce && a->coalesce_wait_ms == b->coalesce_wait_ms);
}

static int route_compress_eq(const struct moat_conf_route_compress *a, const struct moat_conf_route_compress *b)
{
	if (a->on != b->on)
		return 0;
	return !a->on || (strings_eq(a->types, a->ntypes, b->types, b->ntypes) && a->min_size == b->min_size &&
			  a->codings == b->codings && a->gzip_level == b->gzip_level &&
			  a->br_level == b->br_level && a->zstd_level == b->zstd_level);
}

int moat_conf_cache_equal(const struct moat_conf *a, const struct moat_conf *b)
{
	const struct moat_conf_cache *x = &a->cache, *y = &b->cache;
	size_t i;

	if (x->on != y->on)
		return 0;
	if (x->on && (x->memory != y->memory || !moat_conf_str_eq(x->disk, y->disk) || x->disk_size != y->disk_size ||
		      x->max_object != y->max_object ||
		      !moat_conf_cidrs_eq(x->purge_from, x->npurge_from, y->purge_from, y->npurge_from)))
		return 0;
	for (i = 0; i < a->nroutes && i < b->nroutes; i++)
		if (!route_cache_eq(&a->routes[i].cache, &b->routes[i].cache) ||
		    !route_compress_eq(&a->routes[i].compress, &b->routes[i].compress))
			return 0;
	return 1;
}
