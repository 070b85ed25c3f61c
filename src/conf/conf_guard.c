/*
 * conf_guard.c - the gatekeeper's configuration: address lists (listeners
 * and routes), PROXY protocol, per-route body limits, named rate-limit
 * policies, automatic bans, the WAF of a route, and where the client
 * address comes from.
 *
 *   listeners: [{listen: ..., allow: [...], deny: [...], allow_file: F,
 *                deny_file: F, proxy_protocol: true}]
 *   routes:    [{..., allow/deny/allow_file/deny_file, body: 1MiB,
 *                rate_limit: per_ip | [a, b], waf: on | {mode, paranoia,
 *                anomaly_threshold, body_limit, crs}}]
 *   rate_limits: {per_ip: {key: client_ip | [...], rate: 10/s, burst: 20,
 *                delay_after: 5, status: 429}}
 *   bans: {threshold, window, duration, max_duration, on: [...], exempt: [...]}
 *
 * Everything here fills members of the snapshot (conf.h), which owns them;
 * after the walk moat_conf_guard_finish reads the list files, builds the
 * prefix tries and resolves the routes' policy names. Control thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_guard.h"
#include "conf/conf_int.h"
#include "conf/conf_yaml.h"
#include "core/cidr.h"
#include "core/limits.h"

const char *const moat_conf_offense_names[MOAT_OFFENSE_COUNT] = {
	[MOAT_OFFENSE_MALFORMED] = "malformed", [MOAT_OFFENSE_RATE_LIMIT] = "rate_limit",
	[MOAT_OFFENSE_WAF] = "waf",             [MOAT_OFFENSE_ACL] = "acl",
	[MOAT_OFFENSE_4XX] = "4xx",
};

#define DEFAULT_BAN_ON \
	((1u << MOAT_OFFENSE_MALFORMED) | (1u << MOAT_OFFENSE_RATE_LIMIT) | (1u << MOAT_OFFENSE_WAF))

void moat_conf_guard_defaults(struct moat_conf *c)
{
	c->limits.conns_per_ip = MOAT_DEFAULT_CONNS_PER_IP;
	c->limits.conns_total = MOAT_DEFAULT_CONNS_TOTAL;
	c->limits.min_body_rate = MOAT_DEFAULT_MIN_BODY_RATE;
	c->limits.min_send_rate = MOAT_DEFAULT_MIN_SEND_RATE;
	c->limits.rate_limit_keys = MOAT_DEFAULT_RATE_LIMIT_KEYS;
	c->client_ip = MOAT_CLIENT_IP_XFF;
	c->refusal_log_rate = MOAT_DEFAULT_REFUSAL_LOG_RATE;
	c->bans.threshold = MOAT_DEFAULT_BAN_THRESHOLD;
	c->bans.window_ms = MOAT_DEFAULT_BAN_WINDOW_MS;
	c->bans.duration_ms = MOAT_DEFAULT_BAN_DURATION_MS;
	c->bans.max_duration_ms = MOAT_DEFAULT_BAN_MAX_MS;
	c->bans.on = DEFAULT_BAN_ON;
}

static void waf_defaults(struct moat_conf_waf *w)
{
	w->paranoia = MOAT_DEFAULT_WAF_PARANOIA;
	w->anomaly_threshold = MOAT_DEFAULT_WAF_THRESHOLD;
	w->body_limit = MOAT_DEFAULT_WAF_BODY_LIMIT;
}

void moat_conf_guard_route_init(struct moat_conf_route *r)
{
	waf_defaults(&r->waf);
}

static void acl_free(struct moat_conf_acl *a)
{
	free(a->allow);
	free(a->deny);
	free(a->allow_file);
	free(a->deny_file);
	moat_cidr_trie_free(a->trie);
	memset(a, 0, sizeof(*a));
}

void moat_conf_guard_free(struct moat_conf *c)
{
	size_t i, j;

	for (i = 0; i < c->nlisteners; i++)
		acl_free(&c->listeners[i].acl);
	for (i = 0; i < c->nroutes; i++) {
		struct moat_conf_route *r = &c->routes[i];

		acl_free(&r->acl);
		for (j = 0; r->rate_limit_names && j < r->nrate_limits; j++)
			free(r->rate_limit_names[j]);
		free(r->rate_limit_names);
		free(r->rate_limits);
		free(r->waf.crs);
	}
	for (i = 0; i < c->nrate_limits; i++) {
		struct moat_conf_ratelimit *rl = &c->rate_limits[i];

		for (j = 0; j < rl->nkey; j++)
			free(rl->key[j].name);
		free(rl->key);
		free(rl->name);
	}
	free(c->rate_limits);
	free(c->bans.exempt);
	moat_cidr_trie_free(c->trusted_trie);
}

int moat_conf_acl_allows(const struct moat_conf_acl *acl, const struct sockaddr *sa)
{
	int v;

	if (acl->trie == NULL)
		return 1;
	v = moat_cidr_trie_lookup(acl->trie, sa);
	if (v < 0)
		return !acl->default_deny;
	return v == 1;
}

/* ---- address lists ---------------------------------------------------------- */

static void set_allow(struct moat_conf_loader *ld, yaml_node_t *val, struct moat_conf_acl *a)
{
	moat_conf_set_cidrs(ld, val, &a->allow, &a->nallow);
}

static void set_deny(struct moat_conf_loader *ld, yaml_node_t *val, struct moat_conf_acl *a)
{
	moat_conf_set_cidrs(ld, val, &a->deny, &a->ndeny);
}

static void set_file(struct moat_conf_loader *ld, yaml_node_t *val, char **field)
{
	const char *v = moat_conf_yaml_text(ld, val, "a file path");

	if (v == NULL)
		return;
	if (v[0] == '\0') {
		moat_conf_yaml_error(ld, val, "expected a file path, got an empty value");
		return;
	}
	moat_conf_yaml_set_string(ld, val, field, v);
}

/* The same four keys on listeners and routes: one setter each per owner. */
#define ACL_SETTERS(owner, type)                                                                      \
	void moat_conf_guard_##owner##_allow(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)        \
	{                                                                                          \
		set_allow(ld, val, &((type *)obj)->acl);                                           \
	}                                                                                          \
	void moat_conf_guard_##owner##_deny(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)         \
	{                                                                                          \
		set_deny(ld, val, &((type *)obj)->acl);                                            \
	}                                                                                          \
	void moat_conf_guard_##owner##_allow_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)   \
	{                                                                                          \
		set_file(ld, val, &((type *)obj)->acl.allow_file);                                 \
	}                                                                                          \
	void moat_conf_guard_##owner##_deny_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)    \
	{                                                                                          \
		set_file(ld, val, &((type *)obj)->acl.deny_file);                                  \
	}

ACL_SETTERS(listener, struct moat_conf_listener)
ACL_SETTERS(route, struct moat_conf_route)

/* ---- routes: body, rate_limit, waf ------------------------------------------ */

void moat_conf_guard_route_body(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "a size like \"1MiB\"");
	uint64_t n;

	if (v == NULL)
		return;
	if (moat_conf_parse_size(v, &n) < 0) {
		moat_conf_yaml_error(ld, val, "expected a size like \"1MiB\" or 0 for unlimited, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	r->has_body_max = 1;
	r->body_max = n;
}

void moat_conf_guard_route_rate_limit(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	yaml_node_item_t *items = NULL;
	size_t count = 1, i;
	char got_buf[128];

	r->rate_limit_pos = moat_conf_yaml_pos(val);
	if (val->type == YAML_SEQUENCE_NODE) {
		items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_RATE_LIMITS, "rate limit names", &count);
		if (items == NULL)
			return;
	}
	if (count == 0)
		return;
	r->rate_limit_names = moat_conf_yaml_alloc(ld, val, count, sizeof(char *));
	if (r->rate_limit_names == NULL)
		return;
	for (i = 0; i < count; i++) {
		yaml_node_t *it = items ? moat_conf_yaml_node(ld, items[i]) : val;
		const char *v;

		if (it == NULL)
			break;
		v = moat_conf_yaml_text(ld, it, "the name of a rate_limits entry");
		if (v == NULL)
			continue;
		if (!moat_conf_upstream_name_ok(v, strlen(v))) {
			moat_conf_yaml_error(ld, it, "expected the name of a rate_limits entry, got %s",
					     MOAT_CONF_GOT(it));
			continue;
		}
		r->rate_limit_names[r->nrate_limits] = strdup(v);
		if (r->rate_limit_names[r->nrate_limits] == NULL) {
			moat_conf_yaml_oom(ld, it);
			return;
		}
		r->nrate_limits++;
	}
}

static void waf_mode(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "block", "detect" };
	struct moat_conf_waf *w = obj;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		w->detect_only = i == 1;
}

static void waf_crs(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_file(ld, val, &((struct moat_conf_waf *)obj)->crs);
}

static const struct moat_conf_key waf_keys[] = {
	{ "mode", MOAT_CONF_K_CUSTOM, 0, 0, 0, waf_mode, NULL, 0 },
	{ "paranoia", MOAT_CONF_K_UINT, offsetof(struct moat_conf_waf, paranoia), 1, MOAT_MAX_WAF_PARANOIA, NULL,
	  NULL, 0 },
	{ "anomaly_threshold", MOAT_CONF_K_UINT, offsetof(struct moat_conf_waf, anomaly_threshold), 1,
	  MOAT_MAX_WAF_THRESHOLD, NULL, NULL, 0 },
	{ "body_limit", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_waf, body_limit), 0,
	  MOAT_MAX_WAF_BODY_LIMIT, NULL, NULL, 0 },
	{ "crs", MOAT_CONF_K_CUSTOM, 0, 0, 0, waf_crs, NULL, 0 },
};

static int bool_word(const yaml_node_t *n)
{
	static const char *const yes[] = { "on", "true", "yes", "On", "True", "Yes", "ON", "TRUE", "YES" };
	static const char *const no[] = { "off", "false", "no", "Off", "False", "No", "OFF", "FALSE", "NO" };
	size_t i;

	/* quoted too: a generated file may well write "on" */
	if (n->type != YAML_SCALAR_NODE)
		return -1;
	for (i = 0; i < MOAT_CONF_NELEM(yes); i++)
		if (strcmp(sval(n), yes[i]) == 0)
			return 1;
	for (i = 0; i < MOAT_CONF_NELEM(no); i++)
		if (strcmp(sval(n), no[i]) == 0)
			return 0;
	return -1;
}

void moat_conf_guard_route_waf(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	char got_buf[128];
	int b;

	if (val->type == YAML_MAPPING_NODE) {
		r->waf.enabled = 1;
		moat_conf_yaml_walk_map(ld, val, waf_keys, MOAT_CONF_NELEM(waf_keys), &r->waf, NULL);
		return;
	}
	b = bool_word(val);
	if (b < 0) {
		moat_conf_yaml_error(ld, val,
				     "expected on, off or a mapping like {mode: block, paranoia: 1}, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	r->waf.enabled = b;
}

/* ---- rate_limits ------------------------------------------------------------ */

#define RL_KEY_FORM "client_ip, route, \"header:NAME\" or \"cookie:NAME\""

static int parse_part(const char *v, struct moat_conf_rl_part *p)
{
	size_t i, n;

	if (strcmp(v, "client_ip") == 0) {
		p->kind = MOAT_RL_CLIENT_IP;
		return 0;
	}
	if (strcmp(v, "route") == 0) {
		p->kind = MOAT_RL_ROUTE;
		return 0;
	}
	if (strncmp(v, "header:", 7) == 0) {
		p->kind = MOAT_RL_HEADER;
		v += 7;
	} else if (strncmp(v, "cookie:", 7) == 0) {
		p->kind = MOAT_RL_COOKIE;
		v += 7;
	} else {
		return -1;
	}
	n = strlen(v);
	if (!moat_conf_header_name_ok(v, n))
		return -1;
	p->name = strdup(v);
	if (p->name == NULL)
		return -ENOMEM;
	if (p->kind == MOAT_RL_HEADER)
		for (i = 0; i < n; i++)
			if (p->name[i] >= 'A' && p->name[i] <= 'Z')
				p->name[i] = (char)(p->name[i] + 32);
	return 0;
}

static void rl_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_ratelimit *rl = obj;
	yaml_node_item_t *items = NULL;
	size_t count = 1, i;
	char got_buf[128];

	if (val->type == YAML_SEQUENCE_NODE) {
		items = moat_conf_yaml_list(ld, val, 8, "key parts", &count);
		if (items == NULL)
			return;
		if (count == 0) {
			moat_conf_yaml_error(ld, val, "expected at least one of %s", RL_KEY_FORM);
			return;
		}
	}
	for (i = 0; i < rl->nkey; i++)
		free(rl->key[i].name);
	free(rl->key);
	rl->nkey = 0;
	rl->key = moat_conf_yaml_alloc(ld, val, count, sizeof(*rl->key));
	if (rl->key == NULL)
		return;
	for (i = 0; i < count; i++) {
		yaml_node_t *it = items ? moat_conf_yaml_node(ld, items[i]) : val;
		const char *v;
		int rc;

		if (it == NULL)
			break;
		v = moat_conf_yaml_text(ld, it, RL_KEY_FORM);
		if (v == NULL)
			continue;
		rc = parse_part(v, &rl->key[rl->nkey]);
		if (rc == -ENOMEM) {
			moat_conf_yaml_oom(ld, it);
			return;
		}
		if (rc < 0) {
			moat_conf_yaml_error(ld, it, "expected %s, got %s", RL_KEY_FORM, MOAT_CONF_GOT(it));
			continue;
		}
		rl->nkey++;
	}
}

/* "10/s", "600/m", "5/h" (also "/second", "/minute", "/hour"). */
int moat_conf_parse_rate(const char *s, uint64_t *count, uint64_t *period_ms)
{
	const char *slash = strchr(s, '/');
	char num[24];
	size_t n;

	if (slash == NULL || (n = (size_t)(slash - s)) == 0 || n >= sizeof num)
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (moat_conf_parse_uint(num, count) < 0 || *count == 0 || *count > MOAT_MAX_RATE_COUNT)
		return -1;
	slash++;
	if (strcmp(slash, "s") == 0 || strcmp(slash, "second") == 0)
		*period_ms = MOAT_SECOND_MS;
	else if (strcmp(slash, "m") == 0 || strcmp(slash, "minute") == 0)
		*period_ms = MOAT_MINUTE_MS;
	else if (strcmp(slash, "h") == 0 || strcmp(slash, "hour") == 0)
		*period_ms = MOAT_HOUR_MS;
	else
		return -1;
	return 0;
}

static void rl_rate(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_ratelimit *rl = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "a rate like \"10/s\", \"600/m\" or \"20/h\"");

	if (v != NULL && moat_conf_parse_rate(v, &rl->count, &rl->period_ms) < 0)
		moat_conf_yaml_error(ld, val, "expected a rate like \"10/s\", \"600/m\" or \"20/h\" (1 to %llu), got %s",
				     (unsigned long long)MOAT_MAX_RATE_COUNT, MOAT_CONF_GOT(val));
}

static void rl_delay_after(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_ratelimit *rl = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "a number of requests");
	uint64_t n;

	if (v == NULL)
		return;
	if (moat_conf_parse_uint(v, &n) < 0 || n > MOAT_MAX_RATE_COUNT) {
		moat_conf_yaml_error(ld, val, "expected a number of requests, got %s", MOAT_CONF_GOT(val));
		return;
	}
	rl->delay = 1;
	rl->delay_after = n;
}

static void rl_status(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "429", "503" };
	struct moat_conf_ratelimit *rl = obj;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		rl->status = i == 0 ? 429 : 503;
}

static void rl_burst(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_ratelimit *rl = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "a number of requests");

	if (v != NULL && (moat_conf_parse_uint(v, &rl->burst) < 0 || rl->burst > MOAT_MAX_RATE_COUNT))
		moat_conf_yaml_error(ld, val, "expected a number of requests (0 to %llu), got %s",
				     (unsigned long long)MOAT_MAX_RATE_COUNT, MOAT_CONF_GOT(val));
}

enum { RL_KEY, RL_RATE, RL_BURST, RL_DELAY_AFTER, RL_STATUS };

static const struct moat_conf_key rl_keys[] = {
	[RL_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, rl_key, NULL, 0 },
	[RL_RATE] = { "rate", MOAT_CONF_K_CUSTOM, 0, 0, 0, rl_rate, NULL, 0 },
	[RL_BURST] = { "burst", MOAT_CONF_K_CUSTOM, 0, 0, 0, rl_burst, NULL, 0 },
	[RL_DELAY_AFTER] = { "delay_after", MOAT_CONF_K_CUSTOM, 0, 0, 0, rl_delay_after, NULL, 0 },
	[RL_STATUS] = { "status", MOAT_CONF_K_CUSTOM, 0, 0, 0, rl_status, NULL, 0 },
};

static int rl_cmp(const void *a, const void *b)
{
	return strcmp(((const struct moat_conf_ratelimit *)a)->name, ((const struct moat_conf_ratelimit *)b)->name);
}

void moat_conf_schema_rate_limits(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	char got_buf[128];
	size_t count, i, old;

	if (!is_null(val) && val->type != YAML_MAPPING_NODE) {
		moat_conf_yaml_error(ld, val, "expected a mapping of names to { key: client_ip, rate: 10/s }, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	count = is_null(val) ? 0 : (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
	if (count > MOAT_CONF_MAX_RATE_LIMITS) {
		moat_conf_yaml_error(ld, val, "too many rate limits: %zu, at most %u", count, MOAT_CONF_MAX_RATE_LIMITS);
		return;
	}
	if (count == 0)
		return;
	c->rate_limits = moat_conf_yaml_alloc(ld, val, count, sizeof *c->rate_limits);
	if (c->rate_limits == NULL)
		return;
	for (i = 0; i < count && !ld->stop; i++) {
		struct moat_conf_ratelimit *rl = &c->rate_limits[c->nrate_limits];
		struct moat_conf_pos where[MOAT_CONF_NELEM(rl_keys)];
		yaml_node_t *k, *v;
		unsigned seen;

		if (moat_conf_yaml_over_budget(ld, val))
			break;
		k = moat_conf_yaml_check_key(ld, val, i);
		v = moat_conf_yaml_node(ld, val->data.mapping.pairs.start[i].value);
		if (k == NULL || v == NULL)
			continue;
		if (strlen(sval(k)) != slen(k) || !moat_conf_upstream_name_ok(sval(k), slen(k))) {
			moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(k),
						"rate_limits: invalid name %s; use letters, digits, '_', '.' and '-'",
						MOAT_CONF_GOT(k));
			continue;
		}
		rl->name = strdup(sval(k));
		if (rl->name == NULL) {
			moat_conf_yaml_oom(ld, k);
			break;
		}
		c->nrate_limits++;
		rl->pos = moat_conf_yaml_pos(k);
		rl->status = MOAT_DEFAULT_RATE_STATUS;
		old = moat_conf_yaml_push_key(ld, sval(k), slen(k));
		seen = moat_conf_yaml_walk_entry(ld, v, rl_keys, MOAT_CONF_NELEM(rl_keys), rl, RL_RATE,
						 "\"{key: client_ip, rate: 10/s, burst: 20}\"", where);
		if (seen && !(seen & (1u << RL_KEY))) {
			/* the key defaults to the client address */
			rl->key = calloc(1, sizeof(*rl->key));
			if (rl->key == NULL)
				moat_conf_yaml_oom(ld, v);
			else
				rl->nkey = 1;
		}
		if (rl->delay && rl->delay_after > rl->burst)
			moat_conf_yaml_error_at(ld, where[RL_DELAY_AFTER],
						"delay_after (%llu) must not be above burst (%llu)",
						(unsigned long long)rl->delay_after, (unsigned long long)rl->burst);
		moat_conf_yaml_pop(ld, old);
	}
	qsort(c->rate_limits, c->nrate_limits, sizeof *c->rate_limits, rl_cmp);
}

/* ---- bans ------------------------------------------------------------------- */

static void bans_on(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_bans *b = obj;
	yaml_node_item_t *items;
	size_t count, i;

	items = moat_conf_yaml_list(ld, val, 16, "offense kinds", &count);
	if (items == NULL && count)
		return;
	b->on = 0;
	for (i = 0; i < count; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		int k;

		if (it == NULL)
			break;
		k = moat_conf_yaml_word(ld, it, moat_conf_offense_names, MOAT_OFFENSE_COUNT);
		if (k >= 0)
			b->on |= 1u << k;
	}
}

static void bans_exempt(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_bans *b = obj;

	moat_conf_set_cidrs(ld, val, &b->exempt, &b->nexempt);
}

enum { BAN_THRESHOLD, BAN_WINDOW, BAN_DURATION, BAN_MAX, BAN_ON, BAN_EXEMPT };

static const struct moat_conf_key ban_keys[] = {
	[BAN_THRESHOLD] = { "threshold", MOAT_CONF_K_UINT, offsetof(struct moat_conf_bans, threshold), 1,
			    MOAT_MAX_BAN_THRESHOLD, NULL, NULL, 0 },
	[BAN_WINDOW] = { "window", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_bans, window_ms), 1,
			 MOAT_MAX_BAN_MS, NULL, NULL, 0 },
	[BAN_DURATION] = { "duration", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_bans, duration_ms), 1,
			   MOAT_MAX_BAN_MS, NULL, NULL, 0 },
	[BAN_MAX] = { "max_duration", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_bans, max_duration_ms), 1,
		      MOAT_MAX_BAN_MS, NULL, NULL, 0 },
	[BAN_ON] = { "on", MOAT_CONF_K_CUSTOM, 0, 0, 0, bans_on, NULL, 0 },
	[BAN_EXEMPT] = { "exempt", MOAT_CONF_K_CUSTOM, 0, 0, 0, bans_exempt, NULL, 0 },
};

void moat_conf_schema_bans(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	struct moat_conf_pos where[MOAT_CONF_NELEM(ban_keys)];
	unsigned seen;

	c->bans.enabled = 1;
	seen = moat_conf_yaml_walk_map(ld, val, ban_keys, MOAT_CONF_NELEM(ban_keys), &c->bans, where);
	if (c->bans.max_duration_ms < c->bans.duration_ms) {
		if (seen & (1u << BAN_MAX))
			moat_conf_yaml_error_at(ld, where[BAN_MAX], "max_duration must be at least duration");
		else
			c->bans.max_duration_ms = c->bans.duration_ms;
	}
}

void moat_conf_guard_client_ip(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "x-forwarded-for", "forwarded", "none" };
	struct moat_conf *c = obj;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		c->client_ip = (enum moat_client_ip_from)i;
}

/* ---- after the walk: files, tries, names ------------------------------------ */

struct file_ctx {
	struct moat_conf_loader *ld;
	struct moat_conf_pos at;
	const char *path;
	const char *key;
	struct moat_cidr_trie *trie;
	int value;
	size_t n;
	unsigned errors;
};

static int file_entry(void *ctx, int family, const unsigned char addr[16], unsigned prefix, unsigned line,
		      unsigned col)
{
	struct file_ctx *f = ctx;

	(void)line;
	(void)col;
	if (f->n++ >= MOAT_CONF_MAX_CIDR_FILE)
		return 0; /* counted: one past the bound is refused after the parse */
	return moat_cidr_trie_add(f->trie, family, addr, prefix, f->value);
}

static void file_error(void *ctx, unsigned line, unsigned col, const char *msg)
{
	struct file_ctx *f = ctx;

	if (f->errors++ < 10)
		moat_conf_yaml_error_at(f->ld, f->at, "%s: %s:%u:%u: %s", f->key, f->path, line, col, msg);
}

static void load_list_file(struct moat_conf_loader *ld, struct moat_conf_acl *a, const char *path, int value,
			   const char *key, struct moat_conf_pos at, size_t *count)
{
	struct file_ctx f = { ld, at, path, key, a->trie, value, 0, 0 };
	size_t len;
	char *data;
	int opened, rc = moat_conf_read_file(path, &data, &len, &opened);

	if (rc < 0) {
		moat_conf_yaml_error_at(ld, at, "%s: cannot read %s: %s", key, path,
					rc == -EFBIG ? "file too large" : strerror(-rc));
		return;
	}
	rc = moat_cidr_list_parse(data, len, file_entry, file_error, &f);
	free(data);
	if (rc < 0 && f.errors == 0)
		moat_conf_yaml_error_at(ld, at, "%s: %s: out of memory", key, path);
	if (f.n > MOAT_CONF_MAX_CIDR_FILE)
		moat_conf_yaml_error_at(ld, at, "%s: %s: more than %u blocks", key, path, MOAT_CONF_MAX_CIDR_FILE);
	*count = f.n;
}

static int add_cidrs(struct moat_cidr_trie *t, const struct moat_conf_cidr *l, size_t n, int value)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (moat_cidr_trie_add(t, l[i].family, l[i].addr, l[i].prefix, value) < 0)
			return -1;
	return 0;
}

/* The trie of one list. Inline blocks first, then the files; deny after
 * allow so that the same block in both denies. */
static void build_acl(struct moat_conf_loader *ld, struct moat_conf_acl *a, struct moat_conf_pos at)
{
	if (!a->nallow && !a->ndeny && !a->allow_file && !a->deny_file)
		return;
	a->trie = moat_cidr_trie_new();
	if (a->trie == NULL || add_cidrs(a->trie, a->allow, a->nallow, 1) < 0) {
		moat_conf_yaml_error_at(ld, at, "out of memory");
		return;
	}
	if (a->allow_file)
		load_list_file(ld, a, a->allow_file, 1, "allow_file", at, &a->nfile_allow);
	if (add_cidrs(a->trie, a->deny, a->ndeny, 0) < 0) {
		moat_conf_yaml_error_at(ld, at, "out of memory");
		return;
	}
	if (a->deny_file)
		load_list_file(ld, a, a->deny_file, 0, "deny_file", at, &a->nfile_deny);
	a->default_deny = a->nallow > 0 || a->nfile_allow > 0 || a->allow_file != NULL;
}

static void resolve_rate_limits(struct moat_conf_loader *ld, struct moat_conf_route *r, size_t ri)
{
	struct moat_conf *c = ld->c;
	size_t i;

	if (r->nrate_limits == 0)
		return;
	r->rate_limits = calloc(r->nrate_limits, sizeof(*r->rate_limits));
	if (r->rate_limits == NULL) {
		moat_conf_yaml_error_at(ld, r->rate_limit_pos, "out of memory");
		return;
	}
	for (i = 0; i < r->nrate_limits; i++) {
		struct moat_conf_ratelimit key = { .name = r->rate_limit_names[i] }, *hit;
		char q[128];

		hit = c->nrate_limits ? bsearch(&key, c->rate_limits, c->nrate_limits, sizeof key, rl_cmp) : NULL;
		if (hit == NULL) {
			moat_conf_quote(key.name, strlen(key.name), 64, q, sizeof q);
			moat_conf_yaml_error_at(ld, r->rate_limit_pos,
						"routes[%zu].rate_limit: unknown rate limit %s; define it under rate_limits",
						ri, q);
			continue;
		}
		r->rate_limits[i] = (size_t)(hit - c->rate_limits);
		hit->used = 1;
	}
}

void moat_conf_guard_finish(struct moat_conf_loader *ld)
{
	struct moat_conf *c = ld->c;
	size_t i;

	for (i = 0; i < c->nlisteners; i++)
		build_acl(ld, &c->listeners[i].acl, c->listeners[i].addr.pos);
	for (i = 0; i < c->nroutes; i++) {
		build_acl(ld, &c->routes[i].acl, c->routes[i].pos);
		resolve_rate_limits(ld, &c->routes[i], i);
	}
	if (moat_conf_guard_trust_trie(c) < 0)
		moat_conf_yaml_error_at(ld, (struct moat_conf_pos){ 1, 1 }, "out of memory");
}

int moat_conf_guard_trust_trie(struct moat_conf *c)
{
	if (c->ntrusted_proxies == 0 || c->trusted_trie != NULL)
		return 0;
	c->trusted_trie = moat_cidr_trie_new();
	if (c->trusted_trie == NULL || add_cidrs(c->trusted_trie, c->trusted_proxies, c->ntrusted_proxies, 1) < 0)
		return -1;
	return 0;
}

/* ---- printing and equality ------------------------------------------------- */

static void put_cidrs(FILE *out, const char *indent, const char *key, const struct moat_conf_cidr *l, size_t n)
{
	char b[64];
	size_t i;

	if (n == 0)
		return;
	fprintf(out, "%s%s: [", indent, key);
	for (i = 0; i < n; i++) {
		moat_conf_format_cidr(&l[i], b, sizeof b);
		fprintf(out, "%s\"%s\"", i ? ", " : "", b);
	}
	fprintf(out, "]\n");
}

static void print_acl(const struct moat_conf_acl *a, FILE *out)
{
	put_cidrs(out, "    ", "allow", a->allow, a->nallow);
	put_cidrs(out, "    ", "deny", a->deny, a->ndeny);
	if (a->allow_file)
		moat_conf_put_key_string(out, "    ", "allow_file", a->allow_file);
	if (a->deny_file)
		moat_conf_put_key_string(out, "    ", "deny_file", a->deny_file);
}

void moat_conf_guard_print_listener(const struct moat_conf_listener *l, FILE *out)
{
	print_acl(&l->acl, out);
	if (l->proxy_protocol)
		fprintf(out, "    proxy_protocol: true\n");
}

void moat_conf_guard_print_route(const struct moat_conf_route *r, FILE *out)
{
	char b[32];
	size_t i;

	print_acl(&r->acl, out);
	if (r->normalize_path)
		fprintf(out, "    normalize_path: true\n");
	if (r->has_body_max) {
		moat_conf_format_size(r->body_max, b, sizeof b);
		fprintf(out, "    body: %s\n", b);
	}
	if (r->nrate_limits) {
		fprintf(out, "    rate_limit: [");
		for (i = 0; i < r->nrate_limits; i++)
			fprintf(out, "%s%s", i ? ", " : "", r->rate_limit_names[i]);
		fprintf(out, "]\n");
	}
	if (r->waf.enabled) {
		moat_conf_format_size(r->waf.body_limit, b, sizeof b);
		fprintf(out, "    waf:\n      mode: %s\n      paranoia: %u\n      anomaly_threshold: %u\n"
			     "      body_limit: %s\n",
			r->waf.detect_only ? "detect" : "block", r->waf.paranoia, r->waf.anomaly_threshold, b);
		if (r->waf.crs)
			moat_conf_put_key_string(out, "      ", "crs", r->waf.crs);
	}
}

void moat_conf_guard_print(const struct moat_conf *c, FILE *out)
{
	char b[32];
	size_t i, j;

	if (c->nrate_limits) {
		fprintf(out, "rate_limits:\n");
		for (i = 0; i < c->nrate_limits; i++) {
			const struct moat_conf_ratelimit *rl = &c->rate_limits[i];

			fprintf(out, "  %s:\n    key: [", rl->name);
			for (j = 0; j < rl->nkey; j++) {
				const struct moat_conf_rl_part *p = &rl->key[j];

				fprintf(out, "%s\"%s%s\"", j ? ", " : "",
					p->kind == MOAT_RL_CLIENT_IP ? "client_ip" :
					p->kind == MOAT_RL_ROUTE    ? "route" :
					p->kind == MOAT_RL_HEADER   ? "header:" :
								      "cookie:",
					p->name ? p->name : "");
			}
			fprintf(out, "]\n    rate: %llu/%s\n    burst: %llu\n", (unsigned long long)rl->count,
				rl->period_ms == MOAT_SECOND_MS ? "s" : rl->period_ms == MOAT_MINUTE_MS ? "m" : "h",
				(unsigned long long)rl->burst);
			if (rl->delay)
				fprintf(out, "    delay_after: %llu\n", (unsigned long long)rl->delay_after);
			fprintf(out, "    status: %u\n", rl->status);
		}
	}
	if (c->bans.enabled) {
		const struct moat_conf_bans *bn = &c->bans;

		fprintf(out, "bans:\n  threshold: %u\n", bn->threshold);
		moat_conf_format_duration(bn->window_ms, b, sizeof b);
		fprintf(out, "  window: %s\n", b);
		moat_conf_format_duration(bn->duration_ms, b, sizeof b);
		fprintf(out, "  duration: %s\n", b);
		moat_conf_format_duration(bn->max_duration_ms, b, sizeof b);
		fprintf(out, "  max_duration: %s\n  on: [", b);
		for (i = 0, j = 0; i < MOAT_OFFENSE_COUNT; i++)
			if (bn->on & (1u << i))
				fprintf(out, "%s%s", j++ ? ", " : "", moat_conf_offense_names[i]);
		fprintf(out, "]\n");
		put_cidrs(out, "  ", "exempt", bn->exempt, bn->nexempt);
	}
}

static int acl_eq(const struct moat_conf_acl *a, const struct moat_conf_acl *b)
{
	return moat_conf_cidrs_eq(a->allow, a->nallow, b->allow, b->nallow) && moat_conf_cidrs_eq(a->deny, a->ndeny, b->deny, b->ndeny) &&
	       moat_conf_str_eq(a->allow_file, b->allow_file) && moat_conf_str_eq(a->deny_file, b->deny_file);
}

static int waf_eq(const struct moat_conf_waf *a, const struct moat_conf_waf *b)
{
	if (a->enabled != b->enabled)
		return 0;
	return !a->enabled || (a->detect_only == b->detect_only && a->paranoia == b->paranoia &&
			       a->anomaly_threshold == b->anomaly_threshold && a->body_limit == b->body_limit &&
			       moat_conf_str_eq(a->crs, b->crs));
}

int moat_conf_guard_equal(const struct moat_conf *a, const struct moat_conf *b)
{
	const struct moat_conf_limits *la = &a->limits, *lb = &b->limits;
	size_t i, j;

	if (la->conns_per_ip != lb->conns_per_ip || la->conns_total != lb->conns_total ||
	    la->min_body_rate != lb->min_body_rate || la->min_send_rate != lb->min_send_rate ||
	    la->rate_limit_keys != lb->rate_limit_keys || a->client_ip != b->client_ip ||
	    a->refusal_log_rate != b->refusal_log_rate || a->nrate_limits != b->nrate_limits)
		return 0;
	for (i = 0; i < a->nlisteners && i < b->nlisteners; i++)
		if (!acl_eq(&a->listeners[i].acl, &b->listeners[i].acl) ||
		    a->listeners[i].proxy_protocol != b->listeners[i].proxy_protocol)
			return 0;
	for (i = 0; i < a->nroutes && i < b->nroutes; i++) {
		const struct moat_conf_route *x = &a->routes[i], *y = &b->routes[i];

		if (!acl_eq(&x->acl, &y->acl) || x->has_body_max != y->has_body_max || x->body_max != y->body_max ||
		    x->normalize_path != y->normalize_path ||
		    x->nrate_limits != y->nrate_limits || !waf_eq(&x->waf, &y->waf))
			return 0;
		for (j = 0; j < x->nrate_limits; j++)
			if (!moat_conf_str_eq(x->rate_limit_names[j], y->rate_limit_names[j]))
				return 0;
	}
	for (i = 0; i < a->nrate_limits; i++) {
		const struct moat_conf_ratelimit *x = &a->rate_limits[i], *y = &b->rate_limits[i];

		if (!moat_conf_str_eq(x->name, y->name) || x->nkey != y->nkey || x->count != y->count ||
		    x->period_ms != y->period_ms || x->burst != y->burst || x->delay != y->delay ||
		    x->delay_after != y->delay_after || x->status != y->status)
			return 0;
		for (j = 0; j < x->nkey; j++)
			if (x->key[j].kind != y->key[j].kind || !moat_conf_str_eq(x->key[j].name, y->key[j].name))
				return 0;
	}
	if (a->bans.enabled != b->bans.enabled)
		return 0;
	if (a->bans.enabled &&
	    (a->bans.threshold != b->bans.threshold || a->bans.window_ms != b->bans.window_ms ||
	     a->bans.duration_ms != b->bans.duration_ms || a->bans.max_duration_ms != b->bans.max_duration_ms ||
	     a->bans.on != b->bans.on || !moat_conf_cidrs_eq(a->bans.exempt, a->bans.nexempt, b->bans.exempt, b->bans.nexempt)))
		return 0;
	return 1;
}
