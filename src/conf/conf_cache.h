/*
 * conf_cache.h - the cache's and compression's part of the configuration
 * (conf_cache.c), internal to src/conf: the top-level "cache:" store, a
 * route's "cache:" and "compress:", their defaults, the setters the schema
 * tables of conf_schema.c name, the step after the walk, and printing /
 * equality / freeing of the members conf.h declares for them. Control
 * thread.
 */
#ifndef MOAT_CONF_CONF_CACHE_H
#define MOAT_CONF_CONF_CACHE_H

#include <stdio.h>
#include <yaml.h>

#include "conf/conf.h"
#include "core/limits.h"

struct moat_conf_loader;

/* Defaults and ranges of the keys (docs/configuration.md, "Caching and
 * compression"). */
#define MOAT_CONF_CACHE_DEFAULT_MEMORY     (256 * MOAT_MIB)
#define MOAT_CONF_CACHE_MIN_MEMORY         MOAT_MIB
#define MOAT_CONF_CACHE_MAX_MEMORY         (1024 * MOAT_GIB)
#define MOAT_CONF_CACHE_DEFAULT_DISK_SIZE  MOAT_GIB
#define MOAT_CONF_CACHE_MIN_DISK_SIZE      MOAT_MIB
#define MOAT_CONF_CACHE_MAX_DISK_SIZE      (64 * 1024 * MOAT_GIB)
#define MOAT_CONF_CACHE_DEFAULT_MAX_OBJECT (16 * MOAT_MIB)
#define MOAT_CONF_CACHE_DEFAULT_HEURISTIC_MAX_MS (24 * MOAT_HOUR_MS)
#define MOAT_CONF_CACHE_DEFAULT_HEURISTIC_PERCENT 10u
#define MOAT_CONF_CACHE_DEFAULT_COALESCE_WAIT_MS  (10 * MOAT_SECOND_MS)
#define MOAT_CONF_CACHE_MAX_COALESCE_WAIT_MS      (10 * MOAT_MINUTE_MS)
#define MOAT_CONF_CACHE_MAX_TTL_MS         (365 * 24 * MOAT_HOUR_MS) /* default_ttl, heuristic_max, stale_grace */
#define MOAT_CONF_CACHE_MAX_KEY_PARTS      64u  /* key_query, key_headers */
#define MOAT_CONF_COMPRESS_DEFAULT_MIN_SIZE 256u
#define MOAT_CONF_COMPRESS_MAX_MIN_SIZE    MOAT_GIB
#define MOAT_CONF_COMPRESS_MAX_TYPES       256u
#define MOAT_CONF_COMPRESS_MAX_GZIP_LEVEL  9
/* br and zstd stop at 6: the codecs clamp there (memory per stream, see
 * mod/compress/codec.h), so a higher level would be a promise not kept. */
#define MOAT_CONF_COMPRESS_MAX_BR_LEVEL    6
#define MOAT_CONF_COMPRESS_MAX_ZSTD_LEVEL  6
#define MOAT_CONF_CODINGS_ALL (MOAT_CONF_CODING_GZIP | MOAT_CONF_CODING_BR | MOAT_CONF_CODING_ZSTD)
#define MOAT_CONF_CACHE_KEY_ALL \
	(MOAT_CONF_CACHE_KEY_HOST | MOAT_CONF_CACHE_KEY_PATH | MOAT_CONF_CACHE_KEY_QUERY)

/* Fills the store's defaults into a new snapshot (it stays off); allocates
 * purge_from (127.0.0.0/8, ::1/128). Returns 0, or -1 when out of memory. */
int moat_conf_cache_defaults(struct moat_conf *c);
/* Fills a route's cache and compress defaults (both stay off); allocates nothing. */
void moat_conf_cache_route_init(struct moat_conf_route *r);
/* Frees what conf_cache.c allocated in `c` (not `c` itself). */
void moat_conf_cache_free(struct moat_conf *c);

/* The top-level "cache" mapping (obj: the snapshot); routes[].cache and
 * routes[].compress (obj: the route): `true`, `false` or a mapping. */
void moat_conf_schema_cache(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_cache_route_cache(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_cache_route_compress(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* After the walk: a route with its cache on turns the store on. */
void moat_conf_cache_finish(struct moat_conf_loader *ld);

/* --print-config pieces (the store block only when on; a route's blocks
 * only when on, every key written) and moat_conf_equal's part (the store's
 * keys when on, a route's when on). */
void moat_conf_cache_print(const struct moat_conf *c, FILE *out);
void moat_conf_cache_print_route(const struct moat_conf_route *r, FILE *out);
int moat_conf_cache_equal(const struct moat_conf *a, const struct moat_conf *b);

/* Returns 1 when `s` is a media type range of the "compress.types" form:
 * "type/subtype", "type/" "*" or "*" "/" "*", each part an RFC 9110 token
 * (no parameters). Pure. */
int moat_conf_media_type_ok(const char *s);

#endif
