/*
 * conf_guard.h - the gatekeeper's part of the configuration (conf_guard.c),
 * internal to src/conf: the setters the schema tables of conf_schema.c
 * name, the step after the walk, and printing / equality / freeing of the
 * members conf.h declares for it. Control thread.
 */
#ifndef MOAT_CONF_CONF_GUARD_H
#define MOAT_CONF_CONF_GUARD_H

#include <stdio.h>
#include <yaml.h>

#include "conf/conf.h"

struct moat_conf_loader;

/* Fills the gatekeeper's defaults of limits.h into a new snapshot. */
void moat_conf_guard_defaults(struct moat_conf *c);
/* Fills a route's WAF defaults (the WAF itself stays off). */
void moat_conf_guard_route_init(struct moat_conf_route *r);
/* Frees what conf_guard.c allocated in `c` (not `c` itself). */
void moat_conf_guard_free(struct moat_conf *c);

/* Setters of listeners[] and routes[] keys: allow, deny, allow_file, deny_file. */
void moat_conf_guard_listener_allow(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_listener_deny(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_listener_allow_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_listener_deny_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_allow(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_deny(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_allow_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_deny_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
/* routes[].body, routes[].rate_limit, routes[].waf */
void moat_conf_guard_route_body(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_rate_limit(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_route_waf(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
/* The top-level "rate_limits" and "bans" sections, and proxy.client_ip
 * (obj: the snapshot). */
void moat_conf_schema_rate_limits(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_schema_bans(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_guard_client_ip(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* After the walk: reads allow_file / deny_file (errors name the list
 * file's own line:col after the config position), builds every prefix
 * trie and resolves routes' rate_limit names. */
void moat_conf_guard_finish(struct moat_conf_loader *ld);
/* Builds c->trusted_trie from c->trusted_proxies when missing (also for the
 * one-line mode). 0, or -1 when out of memory. */
int moat_conf_guard_trust_trie(struct moat_conf *c);

/* "10/s", "600/m", "5/h": 0, or -1. Pure. */
int moat_conf_parse_rate(const char *s, uint64_t *count, uint64_t *period_ms);

/* --print-config pieces and moat_conf_equal's part. */
void moat_conf_guard_print_listener(const struct moat_conf_listener *l, FILE *out);
void moat_conf_guard_print_route(const struct moat_conf_route *r, FILE *out);
void moat_conf_guard_print(const struct moat_conf *c, FILE *out);
int moat_conf_guard_equal(const struct moat_conf *a, const struct moat_conf *b);

#endif
