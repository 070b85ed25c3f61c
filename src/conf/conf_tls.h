/*
 * conf_tls.h - the TLS and HTTP/2 part of the configuration (conf_tls.c),
 * internal to src/conf: a listener's "tls", "h2c" and "redirect_https", an
 * upstream's "tls", the URL schemes of servers; the setters the schema
 * tables of conf_schema.c and conf_upstream.c name, the check after a
 * listener is walked, and printing / equality / freeing of the members
 * conf.h declares for them. Control thread.
 *
 * Only the files' presence and readability are checked here: what they
 * hold (PEM, DER) is read by the runtime when it builds the TLS contexts
 * (src/tls), which reports a broken one at the positions kept in the
 * structs.
 */
#ifndef MOAT_CONF_CONF_TLS_H
#define MOAT_CONF_CONF_TLS_H

#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#include "conf/conf.h"

struct moat_conf_loader;

#define MOAT_CONF_TLS_MAX_CERTS        1024u   /* listeners[].tls.certs */
#define MOAT_CONF_TLS_DEFAULT_CLIENT_HEADER "X-Client-Cert-Subject"
#define MOAT_CONF_TLS_YEAR_S           (365ull * 86400ull)
#define MOAT_CONF_TLS_HSTS_PRELOAD_MIN MOAT_CONF_TLS_YEAR_S        /* hsts.preload needs max_age >= 1y */
#define MOAT_CONF_TLS_MAX_HSTS         (10ull * MOAT_CONF_TLS_YEAR_S) /* hsts max_age at most 10y */
#define MOAT_CONF_TLS_V12 0x0303
#define MOAT_CONF_TLS_V13 0x0304

/* Fills a listener's defaults of this part (h2c on, no TLS, no redirect). */
void moat_conf_tls_listener_init(struct moat_conf_listener *l);

/* Setters of listeners[] keys (obj: the listener): "tls" (a mapping) and
 * "redirect_https" (true = 443, false = off, or a port). "h2c" is a plain
 * boolean of the table. */
void moat_conf_tls_listener_tls(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
void moat_conf_tls_listener_redirect(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* After a listener's keys are walked (ld->path is "listeners[i]"): h2c and
 * redirect_https, when given (their value's position, else NULL), are
 * errors on a TLS listener. */
void moat_conf_tls_listener_check(struct moat_conf_loader *ld, const struct moat_conf_listener *l,
				  const struct moat_conf_pos *h2c_at, const struct moat_conf_pos *redirect_at);

/* Setter of upstreams.NAME.tls (obj: the upstream). */
void moat_conf_tls_upstream_tls(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* "http://", "https://", "h2c://" or "h2://". Pure. */
const char *moat_conf_scheme_prefix(enum moat_conf_scheme s);

/* Frees what conf_tls.c allocated in `c` (listeners' and upstreams' TLS
 * members; not the arrays themselves). */
void moat_conf_tls_free(struct moat_conf *c);

/* --print-config pieces: a listener's h2c / redirect_https / tls lines
 * (indented for a listener entry), an upstream's tls line (only when one of
 * its servers uses TLS or the block differs from its defaults). */
void moat_conf_tls_print_listener(const struct moat_conf_listener *l, FILE *out);
void moat_conf_tls_print_upstream(const struct moat_conf_upstream *u, FILE *out);

/* moat_conf_equal's part: every listener's tls, h2c and redirect_https,
 * every upstream's tls and its servers' schemes. `a` and `b` have the same
 * numbers of listeners, upstreams and servers (checked before). Pure. */
int moat_conf_tls_equal(const struct moat_conf *a, const struct moat_conf *b);

#endif
