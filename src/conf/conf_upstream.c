/*
 * conf_upstream.c - the "upstreams" section of the configuration: each
 * group of servers, and how requests are spread over it (algorithm, hash,
 * sticky), how its servers are judged (health_check, outlier), retried
 * (retry) and queued for (max_connections, max_pending).
 *
 * Part of the loader: conf_schema.c hands it the "upstreams" value
 * (moat_conf_schema_upstreams). It fills c->upstreams of the snapshot under
 * construction, which owns every string and array set here. The checks
 * across keys (hash only with algorithm: hash, sticky never with it, a group
 * that is all backups, timeout <= interval, base <= max ejection) run once
 * a block has been walked whole, so the keys may come in any order.
 * Documented for users in docs/configuration.md: keep both in step.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_tls.h"
#include "conf/conf_yaml.h"
#include "core/limits.h"

const char *const moat_conf_lb_algo_names[MOAT_CONF_NLB_ALGOS] = {
	[MOAT_LB_ROUND_ROBIN] = "round_robin",
	[MOAT_LB_LEAST_CONN] = "least_connections",
	[MOAT_LB_RANDOM_TWO] = "random_two",
	[MOAT_LB_EWMA] = "ewma",
	[MOAT_LB_HASH] = "hash",
};

const char *const moat_conf_hash_key_names[MOAT_CONF_NHASH_KEYS] = {
	[MOAT_HASH_CLIENT_IP] = "client_ip",
	[MOAT_HASH_HEADER] = "header",
	[MOAT_HASH_COOKIE] = "cookie",
	[MOAT_HASH_URI] = "uri",
};

/* A token (RFC 9110 5.6.2): header names, cookie names (RFC 6265), methods. */
#define TOKEN_CHARS "letters, digits and !#$%&'*+-.^_`|~"

/* Reports "PATH.KEY: message" at `pos`, PATH being where the walk is: for
 * checks that run after a block was walked, about one of its keys. */
static void key_error(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *key, const char *msg)
{
	moat_conf_yaml_error_at(ld, pos, "%s.%s: %s", ld->path, key, msg);
}

/* servers ------------------------------------------------------------------ */

static void set_server_address(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_server *s = obj;
	char why[256], got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, MOAT_CONF_SERVER_FORM);
	int rc;

	if (v == NULL)
		return;
	free(s->addr.text);
	free(s->host);
	rc = moat_conf_parse_server(v, s, why, sizeof why);
	if (rc == MOAT_CONF_ESYNTAX)
		moat_conf_yaml_error(ld, val, "expected %s, got %s (%s)", MOAT_CONF_SERVER_FORM,
				     MOAT_CONF_GOT(val), why);
	else if (rc == MOAT_CONF_EVALUE)
		moat_conf_yaml_error(ld, val, "%s", why);
	else if (rc < 0)
		moat_conf_yaml_oom(ld, val);
	s->addr.pos = moat_conf_yaml_pos(val);
}

enum { SRV_ADDRESS, SRV_WEIGHT, SRV_BACKUP, SRV_DRAIN, SRV_MAX_CONNECTIONS };

static const struct moat_conf_key server_keys[] = {
	[SRV_ADDRESS] = { "address", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_server_address, NULL, 0 },
	[SRV_WEIGHT] = { "weight", MOAT_CONF_K_UINT, offsetof(struct moat_conf_server, weight),
			 MOAT_MIN_SERVER_WEIGHT, MOAT_MAX_SERVER_WEIGHT, NULL, NULL, 0 },
	[SRV_BACKUP] = { "backup", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_server, backup), 0, 1, NULL, NULL,
			 0 },
	[SRV_DRAIN] = { "drain", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_server, drain), 0, 1, NULL, NULL, 0 },
	[SRV_MAX_CONNECTIONS] = { "max_connections", MOAT_CONF_K_UINT,
				  offsetof(struct moat_conf_server, max_connections), 0,
				  MOAT_MAX_SERVER_MAX_CONNECTIONS, NULL, NULL, 0 },
};

/* The runtime keeps a server's state (requests in flight, health,
 * ejection, slow start) by its address, so two entries with one address
 * would share it and count twice: an error. Raise the weight instead. */
static void check_duplicate_servers(struct moat_conf_loader *ld, const struct moat_conf_upstream *u)
{
	size_t i, j;

	for (i = 1; i < u->nservers && !ld->stop; i++) {
		const struct moat_conf_server *s = &u->servers[i];

		for (j = 0; s->addr.text != NULL && j < i; j++) {
			const struct moat_conf_server *t = &u->servers[j];

			if (t->addr.text == NULL || !moat_conf_addr_equal(&s->addr, &t->addr))
				continue;
			moat_conf_yaml_error_at(
			    ld, s->addr.pos,
			    "%s[%zu]: duplicate server address \"%s\" (servers[%zu] \"%s\" at line %u, column %u has "
			    "the same address); servers are told apart by address: give one a higher weight instead",
			    ld->path, i, s->addr.text, j, t->addr.text, t->addr.pos.line, t->addr.pos.col);
			break;
		}
	}
}

static void set_servers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;
	char got_buf[128];
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_SERVERS, "servers", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(ld, val, "at least one server is required, like \"- 127.0.0.1:3000\"");
		return;
	}
	u->servers = moat_conf_yaml_alloc(ld, val, count, sizeof *u->servers);
	if (u->servers == NULL)
		return;
	u->nservers = count;
	for (i = 0; i < count; i++)
		moat_conf_server_init(&u->servers[i]);
	for (i = 0; i < count && !ld->stop; i++) {
		struct moat_conf_server *s = &u->servers[i];
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		if (it->type == YAML_SCALAR_NODE && !is_null(it))
			set_server_address(ld, it, s);
		else if (it->type != YAML_MAPPING_NODE)
			moat_conf_yaml_error(ld, it, "expected %s or { address: ..., weight: ... }, got %s",
					     MOAT_CONF_SERVER_FORM, MOAT_CONF_GOT(it));
		else
			moat_conf_yaml_walk_entry(ld, it, server_keys, MOAT_CONF_NELEM(server_keys), s,
						  SRV_ADDRESS, "", NULL);
		moat_conf_yaml_pop(ld, old);
	}
	check_duplicate_servers(ld, u);
}

/* algorithm, hash, sticky ------------------------------------------------------ */

static void set_algorithm(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;
	int i = moat_conf_yaml_word(ld, val, moat_conf_lb_algo_names, MOAT_CONF_NLB_ALGOS);

	if (i < 0)
		ld->bad_algorithm = 1;
	else
		u->algorithm = (enum moat_lb_algo)i;
}

static void set_hash_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;
	int i = moat_conf_yaml_word(ld, val, moat_conf_hash_key_names, MOAT_CONF_NHASH_KEYS);

	if (i >= 0)
		u->hash_key = (enum moat_lb_hash_key)i;
}

/* A token (a header or cookie name) into *field; `like` is an example. */
static void set_token(struct moat_conf_loader *ld, yaml_node_t *val, char **field, const char *what,
		      const char *like)
{
	char msg[160], got_buf[128];
	const char *v;

	snprintf(msg, sizeof msg, "a %s like \"%s\"", what, like);
	v = moat_conf_yaml_scalar(ld, val, msg);
	if (v == NULL)
		return;
	if (!moat_conf_header_name_ok(v, strlen(v))) {
		moat_conf_yaml_error(ld, val, "expected %s (%s), got %s", msg, TOKEN_CHARS, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, field, v);
}

static void set_hash_name(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;

	set_token(ld, val, &u->hash_name, "header or cookie name", "x-user");
}

enum { HASH_KEY, HASH_NAME };

static const struct moat_conf_key hash_keys[] = {
	[HASH_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_hash_key, NULL, 0 },
	[HASH_NAME] = { "name", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_hash_name, NULL, 0 },
};

static void set_hash(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;
	struct moat_conf_pos where[MOAT_CONF_NELEM(hash_keys)] = { { 0, 0 } };
	unsigned before = ld->nerr, seen;
	int named;
	size_t i;

	seen = moat_conf_yaml_walk_map(ld, val, hash_keys, MOAT_CONF_NELEM(hash_keys), u, where);
	if (ld->nerr != before)
		return; /* a bad key or name: what follows would only repeat it */
	named = u->hash_key == MOAT_HASH_HEADER || u->hash_key == MOAT_HASH_COOKIE;
	if (named && !(seen & (1u << HASH_NAME))) {
		moat_conf_yaml_error(ld, val, "missing required key \"name\" (the %s name for key: %s)",
				     u->hash_key == MOAT_HASH_HEADER ? "header" : "cookie",
				     moat_conf_hash_key_names[u->hash_key]);
		return;
	}
	if (!named && (seen & (1u << HASH_NAME))) {
		key_error(ld, where[HASH_NAME], "name", "only with key: header or key: cookie");
		return;
	}
	/* header names are matched in lowercase; cookie names as written */
	if (u->hash_key == MOAT_HASH_HEADER && u->hash_name != NULL)
		for (i = 0; u->hash_name[i] != '\0'; i++)
			if (u->hash_name[i] >= 'A' && u->hash_name[i] <= 'Z')
				u->hash_name[i] = (char)(u->hash_name[i] - 'A' + 'a');
}

static void set_sticky_cookie(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;

	set_token(ld, val, &u->sticky_cookie, "cookie name", "srv");
}

enum { STK_COOKIE, STK_TTL };

static const struct moat_conf_key sticky_keys[] = {
	[STK_COOKIE] = { "cookie", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_sticky_cookie, NULL, 0 },
	[STK_TTL] = { "ttl", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_upstream, sticky_ttl_ms), 0,
		      MOAT_MAX_STICKY_TTL_MS, NULL, NULL, 0 },
};

static void set_sticky(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	moat_conf_yaml_walk_entry(ld, val, sticky_keys, MOAT_CONF_NELEM(sticky_keys), obj, STK_COOKIE,
				  "{ cookie: srv, ttl: 1h }", NULL);
}

/* health_check ----------------------------------------------------------------- */

static void set_health_method(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_health *h = obj;

	set_token(ld, val, &h->method, "method", "GET");
}

static void set_health_path(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a path starting with \"/\" like \"/healthz\"";
	struct moat_conf_health *h = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);
	size_t i;

	if (v == NULL)
		return;
	/* it goes on the wire as the request target: visible ASCII, no fragment */
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f || v[i] == '#')
			break;
	if (v[0] != '/' || v[i] != '\0') {
		moat_conf_yaml_error(ld, val, "expected %s (visible ASCII, no '#'), got %s", what,
				     MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &h->path, v);
}

/* "name", "name:port", "[v6]" or "[v6]:port": what a Host header holds. */
static int host_header_ok(const char *v)
{
	const char *end = v + strlen(v), *port = NULL;
	uint64_t n;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		struct in6_addr a6;
		char inner[INET6_ADDRSTRLEN];

		if (close == NULL || (size_t)(close - v - 1) >= sizeof inner)
			return 0;
		memcpy(inner, v + 1, (size_t)(close - v - 1));
		inner[close - v - 1] = '\0';
		if (inet_pton(AF_INET6, inner, &a6) != 1)
			return 0;
		if (close[1] != '\0' && close[1] != ':')
			return 0;
		port = close[1] == ':' ? close + 2 : NULL;
	} else {
		const char *colon = strchr(v, ':');

		if (!moat_conf_hostname_ok(v, colon != NULL ? (size_t)(colon - v) : (size_t)(end - v)))
			return 0;
		port = colon != NULL ? colon + 1 : NULL;
	}
	if (port == NULL)
		return 1;
	return end - port <= 5 && moat_conf_parse_uint(port, &n) == 0 && n >= 1 && n <= 65535;
}

static void set_health_host(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a host name like \"app.internal\" or \"app.internal:8080\"";
	struct moat_conf_health *h = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);

	if (v == NULL)
		return;
	if (!host_header_ok(v)) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &h->host, v);
}

static void set_health_status(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_health *h = obj;
	char what[128], num[8], got_buf[128];
	const char *v, *dash;
	uint64_t lo, hi;
	size_t n;

	snprintf(what, sizeof what, "a status like \"200\" or a range like \"200-399\", between %u and %u",
		 MOAT_MIN_HEALTH_STATUS, MOAT_MAX_HEALTH_STATUS);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return;
	dash = strchr(v, '-');
	n = dash != NULL ? (size_t)(dash - v) : strlen(v);
	if (n == 0 || n >= sizeof num)
		goto bad;
	memcpy(num, v, n);
	num[n] = '\0';
	if (moat_conf_parse_uint(num, &lo) < 0)
		goto bad;
	hi = lo;
	if (dash != NULL && (strlen(dash + 1) >= sizeof num || moat_conf_parse_uint(dash + 1, &hi) < 0))
		goto bad;
	if (lo < MOAT_MIN_HEALTH_STATUS || hi > MOAT_MAX_HEALTH_STATUS || hi < MOAT_MIN_HEALTH_STATUS ||
	    lo > MOAT_MAX_HEALTH_STATUS)
		goto bad;
	if (lo > hi) {
		moat_conf_yaml_error(ld, val, "the range must go from low to high, got %s", MOAT_CONF_GOT(val));
		return;
	}
	h->status_min = (unsigned)lo;
	h->status_max = (unsigned)hi;
	return;
bad:
	moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
}

static void set_health_body(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_health *h = obj;
	char what[96], got_buf[128];
	const char *v;

	snprintf(what, sizeof what, "a text of 1 to %u bytes to find in the body", MOAT_MAX_HEALTH_BODY_MATCH);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return;
	if (v[0] == '\0' || strlen(v) > MOAT_MAX_HEALTH_BODY_MATCH) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &h->body, v);
}

enum { HC_METHOD, HC_PATH, HC_HOST, HC_STATUS, HC_BODY, HC_INTERVAL, HC_TIMEOUT, HC_RISE, HC_FALL };

static const struct moat_conf_key health_keys[] = {
	[HC_METHOD] = { "method", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_method, NULL, 0 },
	[HC_PATH] = { "path", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_path, NULL, 0 },
	[HC_HOST] = { "host", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_host, NULL, 0 },
	[HC_STATUS] = { "status", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_status, NULL, 0 },
	[HC_BODY] = { "body", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_body, NULL, 0 },
	[HC_INTERVAL] = { "interval", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_health, interval_ms), 1,
			  MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[HC_TIMEOUT] = { "timeout", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_health, timeout_ms), 1,
			 MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[HC_RISE] = { "rise", MOAT_CONF_K_UINT, offsetof(struct moat_conf_health, rise), MOAT_MIN_HEALTH_RISE_FALL,
		      MOAT_MAX_HEALTH_RISE_FALL, NULL, NULL, 0 },
	[HC_FALL] = { "fall", MOAT_CONF_K_UINT, offsetof(struct moat_conf_health, fall), MOAT_MIN_HEALTH_RISE_FALL,
		      MOAT_MAX_HEALTH_RISE_FALL, NULL, NULL, 0 },
};

/* The block's presence turns checks on; an empty one keeps every default. */
static void set_health_check(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_health *h = &((struct moat_conf_upstream *)obj)->health;
	struct moat_conf_pos where[MOAT_CONF_NELEM(health_keys)] = { { 0, 0 } };
	char a[32], b[32];
	unsigned seen;

	h->enabled = 1;
	if (h->method == NULL)
		moat_conf_yaml_set_string(ld, val, &h->method, MOAT_CONF_DEFAULT_HEALTH_METHOD);
	if (h->path == NULL)
		moat_conf_yaml_set_string(ld, val, &h->path, MOAT_CONF_DEFAULT_HEALTH_PATH);
	seen = moat_conf_yaml_walk_map(ld, val, health_keys, MOAT_CONF_NELEM(health_keys), h, where);
	if (h->timeout_ms <= h->interval_ms)
		return;
	/* an interval set alone below the default timeout: the timeout follows it */
	if (!(seen & (1u << HC_TIMEOUT))) {
		h->timeout_ms = h->interval_ms;
		return;
	}
	moat_conf_format_duration(h->timeout_ms, a, sizeof a);
	moat_conf_format_duration(h->interval_ms, b, sizeof b);
	moat_conf_yaml_error_at(ld, where[HC_TIMEOUT], "%s: timeout (%s) must be at most interval (%s)", ld->path,
				a, b);
}

/* outlier, retry ------------------------------------------------------------------ */

enum { OUT_FAILURES, OUT_ON_5XX, OUT_BASE, OUT_MAX, OUT_PERCENT };

static const struct moat_conf_key outlier_keys[] = {
	[OUT_FAILURES] = { "consecutive_failures", MOAT_CONF_K_UINT,
			   offsetof(struct moat_conf_outlier, consecutive_failures), 0,
			   MOAT_MAX_OUTLIER_CONSECUTIVE_FAILURES, NULL, NULL, 0 },
	[OUT_ON_5XX] = { "on_5xx", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_outlier, on_5xx), 0, 1, NULL, NULL,
			 0 },
	[OUT_BASE] = { "base_ejection", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_outlier, base_ejection_ms),
		       1, MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[OUT_MAX] = { "max_ejection", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_outlier, max_ejection_ms), 1,
		      MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[OUT_PERCENT] = { "max_ejected_percent", MOAT_CONF_K_UINT,
			  offsetof(struct moat_conf_outlier, max_ejected_percent), 0, MOAT_MAX_PERCENT, NULL, NULL,
			  0 },
};

static void set_outlier(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_outlier *o = &((struct moat_conf_upstream *)obj)->outlier;
	struct moat_conf_pos where[MOAT_CONF_NELEM(outlier_keys)] = { { 0, 0 } };
	char a[32], b[32];
	unsigned seen;

	seen = moat_conf_yaml_walk_map(ld, val, outlier_keys, MOAT_CONF_NELEM(outlier_keys), o, where);
	if (o->base_ejection_ms <= o->max_ejection_ms)
		return;
	/* max_ejection set alone below the default base_ejection: the base follows it */
	if (!(seen & (1u << OUT_BASE))) {
		o->base_ejection_ms = o->max_ejection_ms;
		return;
	}
	moat_conf_format_duration(o->base_ejection_ms, a, sizeof a);
	moat_conf_format_duration(o->max_ejection_ms, b, sizeof b);
	moat_conf_yaml_error_at(ld, where[OUT_BASE], "%s: base_ejection (%s) must be at most max_ejection (%s)",
				ld->path, a, b);
}

static const struct moat_conf_key retry_keys[] = {
	{ "attempts", MOAT_CONF_K_UINT, offsetof(struct moat_conf_retry, attempts), 0, MOAT_MAX_RETRY_ATTEMPTS, NULL,
	  NULL, 0 },
	{ "budget_percent", MOAT_CONF_K_UINT, offsetof(struct moat_conf_retry, budget_percent), 0, MOAT_MAX_PERCENT,
	  NULL, NULL, 0 },
	{ "budget_min", MOAT_CONF_K_UINT, offsetof(struct moat_conf_retry, budget_min), 0, MOAT_MAX_RETRY_BUDGET_MIN,
	  NULL, NULL, 0 },
	{ "per_try_timeout", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_retry, per_try_timeout_ms), 0,
	  MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	{ "timeout", MOAT_CONF_K_DURATION, offsetof(struct moat_conf_retry, timeout_ms), 0, MOAT_MAX_TIMEOUT_MS, NULL,
	  NULL, 0 },
};

/* upstreams ------------------------------------------------------------------------ */

enum {
	UPS_SERVERS,
	UPS_KEEPALIVE,
	UPS_KEEPALIVE_TIMEOUT,
	UPS_ALGORITHM,
	UPS_HASH,
	UPS_STICKY,
	UPS_HEALTH,
	UPS_OUTLIER,
	UPS_RETRY,
	UPS_SLOW_START,
	UPS_MAX_CONNECTIONS,
	UPS_MAX_PENDING,
	UPS_PENDING_TIMEOUT,
	UPS_RESOLVE_INTERVAL,
	UPS_TLS,
};

#define UPS_OFF(f) offsetof(struct moat_conf_upstream, f)

static const struct moat_conf_key upstream_keys[] = {
	[UPS_SERVERS] = { "servers", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_servers, NULL, 0 },
	[UPS_KEEPALIVE] = { "keepalive", MOAT_CONF_K_UINT, UPS_OFF(keepalive), 0, MOAT_MAX_UPSTREAM_KEEPALIVE, NULL,
			    NULL, 0 },
	[UPS_KEEPALIVE_TIMEOUT] = { "keepalive_timeout", MOAT_CONF_K_DURATION, UPS_OFF(keepalive_timeout_ms), 1,
				    MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[UPS_ALGORITHM] = { "algorithm", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_algorithm, NULL, 0 },
	[UPS_HASH] = { "hash", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_hash, NULL, 0 },
	[UPS_STICKY] = { "sticky", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_sticky, NULL, 0 },
	[UPS_HEALTH] = { "health_check", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_health_check, NULL, 0 },
	[UPS_OUTLIER] = { "outlier", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_outlier, NULL, 0 },
	[UPS_RETRY] = { "retry", MOAT_CONF_K_SECTION, UPS_OFF(retry), 0, 0, NULL, retry_keys,
			MOAT_CONF_NELEM(retry_keys) },
	[UPS_SLOW_START] = { "slow_start", MOAT_CONF_K_DURATION, UPS_OFF(slow_start_ms), 0, MOAT_MAX_TIMEOUT_MS, NULL,
			     NULL, 0 },
	[UPS_MAX_CONNECTIONS] = { "max_connections", MOAT_CONF_K_UINT, UPS_OFF(max_connections), 0,
				  MOAT_MAX_UPSTREAM_MAX_CONNECTIONS, NULL, NULL, 0 },
	[UPS_MAX_PENDING] = { "max_pending", MOAT_CONF_K_UINT, UPS_OFF(max_pending), 0, MOAT_MAX_UPSTREAM_MAX_PENDING,
			      NULL, NULL, 0 },
	[UPS_PENDING_TIMEOUT] = { "pending_timeout", MOAT_CONF_K_DURATION, UPS_OFF(pending_timeout_ms), 1,
				  MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[UPS_RESOLVE_INTERVAL] = { "resolve_interval", MOAT_CONF_K_DURATION, UPS_OFF(resolve_interval_ms), 0,
				   MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 },
	[UPS_TLS] = { "tls", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_tls_upstream_tls, NULL, 0 },
};

/* The checks across the keys of one upstream, once all are walked. */
static void check_upstream(struct moat_conf_loader *ld, const struct moat_conf_upstream *u, unsigned seen,
			   const struct moat_conf_pos *where)
{
	size_t i, backups = 0;

	if ((seen & (1u << UPS_HASH)) && u->algorithm != MOAT_LB_HASH && !ld->bad_algorithm)
		key_error(ld, where[UPS_HASH], "hash", "only with algorithm: hash");
	if ((seen & (1u << UPS_STICKY)) && u->algorithm == MOAT_LB_HASH)
		key_error(ld, where[UPS_STICKY], "sticky",
			  "not with algorithm: hash (the hash already keeps a client on one server)");
	for (i = 0; i < u->nservers; i++)
		backups += u->servers[i].backup != 0;
	if (u->nservers > 0 && backups == u->nservers)
		key_error(ld, where[UPS_SERVERS], "servers",
			  "every server is a backup; at least one must not be (backups serve only when no other server can)");
}

static void walk_upstream(struct moat_conf_loader *ld, yaml_node_t *k, yaml_node_t *v,
			  struct moat_conf_upstream *u)
{
	struct moat_conf_pos where[MOAT_CONF_NELEM(upstream_keys)] = { { 0, 0 } };
	unsigned seen;

	if (is_null(v)) {
		moat_conf_yaml_error(ld, k, "missing required key \"servers\"");
		return;
	}
	ld->bad_algorithm = 0;
	seen = moat_conf_yaml_walk_entry(ld, v, upstream_keys, MOAT_CONF_NELEM(upstream_keys), u, UPS_SERVERS,
					 "\"servers: [127.0.0.1:3000]\"", where);
	if (v->type == YAML_MAPPING_NODE)
		check_upstream(ld, u, seen, where);
}

void moat_conf_schema_upstreams(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	char got_buf[128];
	size_t count, i, old;

	if (!is_null(val) && val->type != YAML_MAPPING_NODE) {
		moat_conf_yaml_error(ld, val,
				     "expected a mapping of upstream names to { servers: [...] }, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	count = is_null(val) ? 0 : (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
	if (count == 0) {
		moat_conf_yaml_error(
		    ld, val, "at least one upstream is required, like \"app: { servers: [127.0.0.1:3000] }\"");
		return;
	}
	if (count > MOAT_CONF_MAX_UPSTREAMS) {
		moat_conf_yaml_error(ld, val, "too many upstreams: %zu, at most %u", count,
				     MOAT_CONF_MAX_UPSTREAMS);
		return;
	}
	c->upstreams = moat_conf_yaml_alloc(ld, val, count, sizeof *c->upstreams);
	if (c->upstreams == NULL)
		return;
	for (i = 0; i < count && !ld->stop; i++) {
		struct moat_conf_upstream *u = &c->upstreams[c->nupstreams];
		yaml_node_t *k, *v;

		if (moat_conf_yaml_over_budget(ld, val))
			break;
		k = moat_conf_yaml_check_key(ld, val, i);
		v = moat_conf_yaml_node(ld, val->data.mapping.pairs.start[i].value);
		if (k == NULL || v == NULL)
			continue;
		if (strlen(sval(k)) != slen(k)) {
			moat_conf_yaml_error_at(
			    ld, moat_conf_yaml_pos(k),
			    "upstreams: invalid upstream name %s; use letters, digits, '_', '.' and '-'",
			    MOAT_CONF_GOT(k));
			continue;
		}
		/* an odd name is reported but kept, so routes naming it do not fail too */
		if (!moat_conf_upstream_name_ok(sval(k), slen(k)))
			moat_conf_yaml_error_at(
			    ld, moat_conf_yaml_pos(k),
			    "upstreams: invalid upstream name %s; use letters, digits, '_', '.' and '-'",
			    MOAT_CONF_GOT(k));
		u->name = strdup(sval(k));
		if (u->name == NULL) {
			moat_conf_yaml_oom(ld, k);
			break;
		}
		c->nupstreams++;
		u->pos = moat_conf_yaml_pos(k);
		moat_conf_upstream_init(u);
		old = moat_conf_yaml_push_key(ld, sval(k), slen(k));
		walk_upstream(ld, k, v, u);
		moat_conf_yaml_pop(ld, old);
	}
}
