/*
 * conf_schema.c - what moat's configuration file holds: the tables of keys
 * of every section, the setters that check and store each value, the
 * checks across values (duplicate listeners, routes naming an upstream,
 * header_size >= request_line), and moat_conf_load_buffer, which runs it all.
 * The "upstreams" section has a file of its own, conf_upstream.c.
 *
 * The snapshot under construction goes to the caller, or is freed when any
 * error was found. The schema itself is documented for users in
 * docs/configuration.md: keep both in step.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_cache.h"
#include "conf/conf_guard.h"
#include "conf/conf_int.h"
#include "conf/conf_tls.h"
#include "conf/conf_yaml.h"
#include "core/limits.h"

/* ---- the keys ------------------------------------------------------------ */

static void set_workers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	char what[96], got_buf[128];
	const char *v;
	uint64_t n;

	snprintf(what, sizeof what, "\"auto\" or an integer between 1 and %u", MOAT_MAX_WORKERS);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return;
	if (strcmp(v, "auto") == 0) {
		c->workers = 0;
		return;
	}
	if (moat_conf_parse_uint(v, &n) < 0 || n < 1 || n > MOAT_MAX_WORKERS) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	c->workers = (unsigned)n;
}

/* user, group, pid_file: what the process does at start (src/main.c).
 * Names are looked up now, so that a typo fails `moat -t` rather than the
 * start (unless lookups are off: moat_conf_no_resolve, for the fuzzer). */

static void set_user(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_text(ld, val, "a user name like \"www-data\"");

	if (v == NULL)
		return;
	if (!moat_conf_no_resolve && getpwnam(v) == NULL) {
		moat_conf_yaml_error(ld, val, "unknown user %s (not in the user database)", MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &c->user, v);
}

static void set_group(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_text(ld, val, "a group name like \"www-data\"");

	if (v == NULL)
		return;
	if (!moat_conf_no_resolve && getgrnam(v) == NULL) {
		moat_conf_yaml_error(ld, val, "unknown group %s (not in the group database)", MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &c->group, v);
}

static void set_pid_file(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	const char *v = moat_conf_yaml_text(ld, val, "a file path like \"/run/moat/moat.pid\"");

	if (v != NULL)
		moat_conf_yaml_set_string(ld, val, &c->pid_file, v);
}

static void set_log_level(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "error", "warn", "info", "debug" };
	static const enum moat_conf_log_level levels[] = { MOAT_LOG_ERROR, MOAT_LOG_WARN, MOAT_LOG_INFO,
							   MOAT_LOG_DEBUG };
	struct moat_conf *c = obj;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		c->log_level = levels[i];
}

static void set_log_format(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "json", "combined", "common" };
	static const enum moat_conf_log_format formats[] = { MOAT_LOG_FMT_JSON, MOAT_LOG_FMT_COMBINED,
							     MOAT_LOG_FMT_COMMON };
	struct moat_conf *c = obj;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		c->access_format = formats[i];
}

static void set_error_log(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	const char *v = moat_conf_yaml_text(ld, val, "a file path or \"stderr\"");

	if (v == NULL)
		return;
	if (strcmp(v, "stdout") == 0) {
		moat_conf_yaml_error(
		    ld, val,
		    "the error log goes to \"stderr\" or a file, not \"stdout\" (write \"./stdout\" for a file of that name)");
		return;
	}
	moat_conf_yaml_set_string(ld, val, &c->error_log, strcmp(v, "stderr") == 0 ? NULL : v);
}

static void set_access_log(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	const char *v = moat_conf_yaml_text(ld, val, "a file path, \"stdout\" or \"off\"");

	if (v == NULL)
		return;
	if (strcmp(v, "stderr") == 0) {
		moat_conf_yaml_error(
		    ld, val,
		    "the access log goes to \"stdout\", a file or \"off\", not \"stderr\" (write \"./stderr\" for a file of that name)");
		return;
	}
	moat_conf_yaml_set_string(ld, val, &c->access_log, strcmp(v, "off") == 0 ? NULL : v);
}

/* A list of header names, added lowercased and without repeats to (*list, *n). */
static void set_headers(struct moat_conf_loader *ld, yaml_node_t *val, char ***list, size_t *n)
{
	char got_buf[128];
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_HEADERS, "header names", &count);
	for (i = 0; items != NULL && i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		const char *v;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		v = moat_conf_yaml_scalar(ld, it, "a header name like \"x-debug\"");
		if (v != NULL && !moat_conf_header_name_ok(v, strlen(v)))
			moat_conf_yaml_error(ld, it, "expected a header name like \"x-debug\", got %s",
					     MOAT_CONF_GOT(it));
		else if (v != NULL && moat_conf_header_add(list, n, v, strlen(v)) < 0)
			moat_conf_yaml_oom(ld, it);
		moat_conf_yaml_pop(ld, old);
	}
}

static void set_hide_headers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;

	set_headers(ld, val, &c->hide_headers, &c->nhide_headers);
}

void moat_conf_set_cidrs(struct moat_conf_loader *ld, yaml_node_t *val, struct moat_conf_cidr **list,
			 size_t *n)
{
	static const char what[] = "an IP address or CIDR block like \"10.0.0.0/8\" or \"::1/128\"";
	char got_buf[128];
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_CIDRS, "CIDR blocks", &count);
	if (items == NULL || count == 0)
		return;
	free(*list);
	*n = 0;
	*list = moat_conf_yaml_alloc(ld, val, count, sizeof **list);
	if (*list == NULL)
		return;
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		const char *v;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		old = moat_conf_yaml_push_index(ld, i);
		v = moat_conf_yaml_scalar(ld, it, what);
		if (v != NULL && moat_conf_parse_cidr(v, &(*list)[*n]) < 0)
			moat_conf_yaml_error(ld, it, "expected %s, got %s", what, MOAT_CONF_GOT(it));
		else if (v != NULL)
			(*n)++;
		moat_conf_yaml_pop(ld, old);
	}
}

static void set_trusted_proxies(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;

	moat_conf_set_cidrs(ld, val, &c->trusted_proxies, &c->ntrusted_proxies);
}

static void set_limits(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

static const struct moat_conf_key log_keys[] = {
	{ "level", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_log_level, NULL, 0 },
	{ "error", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_error_log, NULL, 0 },
	{ "access", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_access_log, NULL, 0 },
	{ "format", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_log_format, NULL, 0 },
	{ "refusal_rate", MOAT_CONF_K_UINT, offsetof(struct moat_conf, refusal_log_rate), 0,
	  MOAT_MAX_REFUSAL_LOG_RATE, NULL, NULL, 0 },
};

enum { LIM_REQUEST_LINE, LIM_HEADER_SIZE, LIM_HEADER_COUNT, LIM_BODY, LIM_CONNECTIONS, LIM_PER_IP, LIM_TOTAL,
       LIM_MIN_BODY_RATE, LIM_MIN_SEND_RATE, LIM_RATE_KEYS, LIM_H2_STREAMS };

static const struct moat_conf_key limits_keys[] = {
	[LIM_REQUEST_LINE] = { "request_line", MOAT_CONF_K_SIZE,
			       offsetof(struct moat_conf_limits, request_line_max), MOAT_MIN_REQUEST_LINE_MAX,
			       MOAT_MAX_REQUEST_LINE_MAX, NULL, NULL, 0 },
	[LIM_HEADER_SIZE] = { "header_size", MOAT_CONF_K_SIZE,
			      offsetof(struct moat_conf_limits, header_size_max), MOAT_MIN_HEADER_SIZE_MAX,
			      MOAT_MAX_HEADER_SIZE_MAX, NULL, NULL, 0 },
	[LIM_HEADER_COUNT] = { "header_count", MOAT_CONF_K_COUNT,
			       offsetof(struct moat_conf_limits, header_count_max), MOAT_MIN_HEADER_COUNT_MAX,
			       MOAT_MAX_HEADER_COUNT_MAX, NULL, NULL, 0 },
	[LIM_BODY] = { "body", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_limits, body_max), 0, UINT64_MAX,
		       NULL, NULL, 0 },
	[LIM_CONNECTIONS] = { "connections", MOAT_CONF_K_UINT, offsetof(struct moat_conf_limits, conns_max),
			      MOAT_MIN_CONNS_MAX, MOAT_MAX_CONNS_MAX, NULL, NULL, 0 },
	[LIM_PER_IP] = { "connections_per_ip", MOAT_CONF_K_UINT, offsetof(struct moat_conf_limits, conns_per_ip), 0,
			 MOAT_MAX_CONNS_MAX, NULL, NULL, 0 },
	[LIM_TOTAL] = { "connections_total", MOAT_CONF_K_UINT, offsetof(struct moat_conf_limits, conns_total), 0,
			MOAT_MAX_CONNS_MAX, NULL, NULL, 0 },
	[LIM_MIN_BODY_RATE] = { "min_body_rate", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_limits, min_body_rate),
				0, MOAT_MAX_MIN_RATE, NULL, NULL, 0 },
	[LIM_MIN_SEND_RATE] = { "min_send_rate", MOAT_CONF_K_SIZE64, offsetof(struct moat_conf_limits, min_send_rate),
				0, MOAT_MAX_MIN_RATE, NULL, NULL, 0 },
	[LIM_RATE_KEYS] = { "rate_limit_keys", MOAT_CONF_K_COUNT, offsetof(struct moat_conf_limits, rate_limit_keys),
			    MOAT_MIN_RATE_LIMIT_KEYS, MOAT_MAX_RATE_LIMIT_KEYS, NULL, NULL, 0 },
	[LIM_H2_STREAMS] = { "h2_streams", MOAT_CONF_K_UINT, offsetof(struct moat_conf_limits, h2_streams), 1,
			     MOAT_MAX_H2_STREAMS, NULL, NULL, 0 },
};

/* clang-format off */
#define TIMEOUT(f) \
	{ #f, MOAT_CONF_K_DURATION, offsetof(struct moat_conf_timeouts, f), 1, MOAT_MAX_TIMEOUT_MS, NULL, NULL, 0 }

static const struct moat_conf_key timeouts_keys[] = {
	TIMEOUT(client_header),
	TIMEOUT(client_body),
	TIMEOUT(keepalive),
	TIMEOUT(client_send),
	TIMEOUT(backend_connect),
	TIMEOUT(backend_first_byte),
	TIMEOUT(backend_idle),
	TIMEOUT(drain),
};
/* clang-format on */

static const struct moat_conf_key proxy_keys[] = {
	{ "trusted_proxies", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_trusted_proxies, NULL, 0 },
	{ "hide_headers", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_hide_headers, NULL, 0 },
	{ "preserve_host", MOAT_CONF_K_BOOL, offsetof(struct moat_conf, preserve_host), 0, 1, NULL, NULL, 0 },
	{ "client_ip", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_client_ip, NULL, 0 },
};

static void set_limits(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_limits *l = &((struct moat_conf *)obj)->limits;
	struct moat_conf_pos where[MOAT_CONF_NELEM(limits_keys)];
	char a[32], b[32];
	unsigned seen;

	seen = moat_conf_yaml_walk_map(ld, val, limits_keys, MOAT_CONF_NELEM(limits_keys), l, where);
	if (l->header_size_max >= l->request_line_max)
		return;
	/* header_size alone, below the default request_line: the request line
	 * cannot be longer than the head that holds it, so it follows */
	if ((seen & (1u << LIM_HEADER_SIZE)) && !(seen & (1u << LIM_REQUEST_LINE))) {
		l->request_line_max = l->header_size_max;
		return;
	}
	moat_conf_yaml_size_text(l->header_size_max, a, sizeof a);
	moat_conf_yaml_size_text(l->request_line_max, b, sizeof b);
	moat_conf_yaml_error_at(ld,
				where[(seen & (1u << LIM_HEADER_SIZE)) ? LIM_HEADER_SIZE : LIM_REQUEST_LINE],
				"limits.header_size (%s) must be at least limits.request_line (%s)", a, b);
}

/* listeners ---------------------------------------------------------------- */

static void set_listen(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_listener *l = obj;
	char why[256], got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, MOAT_CONF_LISTEN_FORM);
	int rc;

	if (v == NULL)
		return;
	free(l->addr.text);
	rc = moat_conf_parse_listen(v, &l->addr, why, sizeof why);
	if (rc == MOAT_CONF_ESYNTAX)
		moat_conf_yaml_error(ld, val, "expected %s, got %s (%s)", MOAT_CONF_LISTEN_FORM,
				     MOAT_CONF_GOT(val), why);
	else if (rc == MOAT_CONF_EVALUE)
		moat_conf_yaml_error(ld, val, "%s", why);
	else if (rc < 0)
		moat_conf_yaml_oom(ld, val);
	l->addr.pos = moat_conf_yaml_pos(val);
}

enum { LST_LISTEN, LST_BACKLOG, LST_ALLOW, LST_DENY, LST_ALLOW_FILE, LST_DENY_FILE, LST_PROXY_PROTOCOL, LST_TLS,
       LST_H2C, LST_REDIRECT_HTTPS };

static const struct moat_conf_key listener_keys[] = {
	[LST_LISTEN] = { "listen", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_listen, NULL, 0 },
	[LST_BACKLOG] = { "backlog", MOAT_CONF_K_UINT, offsetof(struct moat_conf_listener, backlog),
			  MOAT_MIN_BACKLOG, MOAT_MAX_BACKLOG, NULL, NULL, 0 },
	[LST_ALLOW] = { "allow", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_listener_allow, NULL, 0 },
	[LST_DENY] = { "deny", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_listener_deny, NULL, 0 },
	[LST_ALLOW_FILE] = { "allow_file", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_listener_allow_file, NULL,
			     0 },
	[LST_DENY_FILE] = { "deny_file", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_listener_deny_file, NULL, 0 },
	[LST_PROXY_PROTOCOL] = { "proxy_protocol", MOAT_CONF_K_BOOL,
				 offsetof(struct moat_conf_listener, proxy_protocol), 0, 1, NULL, NULL, 0 },
	[LST_TLS] = { "tls", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_tls_listener_tls, NULL, 0 },
	[LST_H2C] = { "h2c", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_listener, h2c), 0, 1, NULL, NULL, 0 },
	[LST_REDIRECT_HTTPS] = { "redirect_https", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_tls_listener_redirect,
				 NULL, 0 },
};

static void set_listeners(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	yaml_node_item_t *items;
	size_t count, i, j, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_LISTENERS, "listeners", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(ld, val,
				     "at least one listener is required, like \"- listen: 127.0.0.1:8080\"");
		return;
	}
	c->listeners = moat_conf_yaml_alloc(ld, val, count, sizeof *c->listeners);
	if (c->listeners == NULL)
		return;
	c->nlisteners = count;
	for (i = 0; i < count && !ld->stop; i++) {
		struct moat_conf_listener *l = &c->listeners[i];
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);
		struct moat_conf_pos where[MOAT_CONF_NELEM(listener_keys)];
		unsigned seen;

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		l->backlog = MOAT_DEFAULT_BACKLOG;
		moat_conf_tls_listener_init(l);
		old = moat_conf_yaml_push_index(ld, i);
		seen = moat_conf_yaml_walk_entry(ld, it, listener_keys, MOAT_CONF_NELEM(listener_keys), l, LST_LISTEN,
						 "\"listen: 127.0.0.1:8080\"", where);
		moat_conf_tls_listener_check(ld, l, (seen & (1u << LST_H2C)) ? &where[LST_H2C] : NULL,
					     (seen & (1u << LST_REDIRECT_HTTPS)) ? &where[LST_REDIRECT_HTTPS] : NULL);
		moat_conf_yaml_pop(ld, old);
		if (l->addr.text == NULL)
			continue;
		for (j = 0; j < i; j++) {
			if (c->listeners[j].addr.text != NULL &&
			    moat_conf_addr_equal(&c->listeners[j].addr, &l->addr)) {
				moat_conf_yaml_error_at(
				    ld, l->addr.pos,
				    "listeners[%zu].listen: duplicate listener address \"%s\" (listeners[%zu] at line %u, column %u)",
				    i, l->addr.text, j, c->listeners[j].addr.pos.line,
				    c->listeners[j].addr.pos.col);
				break;
			}
		}
	}
}

/* routes ---------------------------------------------------------------------- */

static void set_route_host(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a host name like \"example.com\" or \"*.example.com\"";
	struct moat_conf_route *r = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);
	char *copy;
	size_t i, len;
	int wild = 0, ok;

	if (v == NULL)
		return;
	len = strlen(v);
	if (v[0] == '*' && v[1] == '.') {
		wild = 1;
		v++;
		len--;
	}
	if (v[0] == '[' && !wild) {
		struct in6_addr a6;
		char inner[64];
		ok = len >= 3 && len - 2 < sizeof inner && v[len - 1] == ']';
		if (ok) {
			memcpy(inner, v + 1, len - 2);
			inner[len - 2] = '\0';
			ok = inet_pton(AF_INET6, inner, &a6) == 1;
		}
	} else {
		ok = moat_conf_hostname_ok(wild ? v + 1 : v, wild ? len - 1 : len);
	}
	if (!ok) {
		if (strchr(v, ':') != NULL && v[0] != '[')
			moat_conf_yaml_error(
			    ld, val, "a route's host has no port (ports in requests are ignored), got %s",
			    MOAT_CONF_GOT(val));
		else
			moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	copy = strdup(v);
	if (copy == NULL) {
		moat_conf_yaml_oom(ld, val);
		return;
	}
	for (i = 0; copy[i] != '\0'; i++)
		if (copy[i] >= 'A' && copy[i] <= 'Z')
			copy[i] = (char)(copy[i] - 'A' + 'a');
	free(r->host);
	r->host = copy;
	r->host_wildcard = wild;
}

static void set_route_path(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a path prefix starting with \"/\" like \"/api/\"";
	struct moat_conf_route *r = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f || v[i] == '?' || v[i] == '#')
			break;
	if (v[0] != '/' || v[i] != '\0') {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &r->path_prefix, v);
	r->path_prefix_len = r->path_prefix != NULL ? strlen(r->path_prefix) : 0;
}

static void set_route_upstream(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;
	const char *v = moat_conf_yaml_scalar(ld, val, "the name of an upstream");

	if (v == NULL)
		return;
	ld->pending[r - ld->c->routes].name = v;
	ld->pending[r - ld->c->routes].pos = moat_conf_yaml_pos(val);
}

static void set_strip_headers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_route *r = obj;

	set_headers(ld, val, &r->strip_headers, &r->nstrip_headers);
}

enum { RT_HOST, RT_PATH, RT_UPSTREAM, RT_STRIP_HEADERS, RT_ALLOW, RT_DENY, RT_ALLOW_FILE, RT_DENY_FILE, RT_BODY,
       RT_RATE_LIMIT, RT_WAF, RT_NORMALIZE_PATH, RT_CACHE, RT_COMPRESS };

static const struct moat_conf_key route_keys[] = {
	[RT_HOST] = { "host", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_route_host, NULL, 0 },
	[RT_PATH] = { "path", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_route_path, NULL, 0 },
	[RT_UPSTREAM] = { "upstream", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_route_upstream, NULL, 0 },
	[RT_STRIP_HEADERS] = { "strip_headers", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_strip_headers, NULL, 0 },
	[RT_ALLOW] = { "allow", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_allow, NULL, 0 },
	[RT_DENY] = { "deny", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_deny, NULL, 0 },
	[RT_ALLOW_FILE] = { "allow_file", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_allow_file, NULL, 0 },
	[RT_DENY_FILE] = { "deny_file", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_deny_file, NULL, 0 },
	[RT_BODY] = { "body", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_body, NULL, 0 },
	[RT_RATE_LIMIT] = { "rate_limit", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_rate_limit, NULL, 0 },
	[RT_WAF] = { "waf", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_guard_route_waf, NULL, 0 },
	[RT_NORMALIZE_PATH] = { "normalize_path", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_route, normalize_path), 0,
				1, NULL, NULL, 0 },
	[RT_CACHE] = { "cache", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_cache_route_cache, NULL, 0 },
	[RT_COMPRESS] = { "compress", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_cache_route_compress, NULL, 0 },
};

static void set_routes(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_MAX_ROUTES, "routes", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(ld, val, "at least one route is required, like \"- upstream: app\"");
		return;
	}
	c->routes = moat_conf_yaml_alloc(ld, val, count, sizeof *c->routes);
	ld->pending = moat_conf_yaml_alloc(ld, val, count, sizeof *ld->pending);
	if (c->routes == NULL || ld->pending == NULL)
		return;
	c->nroutes = count;
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		c->routes[i].pos = moat_conf_yaml_pos(it);
		moat_conf_guard_route_init(&c->routes[i]);
		moat_conf_cache_route_init(&c->routes[i]);
		old = moat_conf_yaml_push_index(ld, i);
		moat_conf_yaml_walk_entry(ld, it, route_keys, MOAT_CONF_NELEM(route_keys), &c->routes[i],
					  RT_UPSTREAM, "\"upstream: app\"", NULL);
		moat_conf_yaml_pop(ld, old);
	}
}

/* The top level. */
enum { TOP_WORKERS, TOP_LOG, TOP_LIMITS, TOP_TIMEOUTS, TOP_PROXY, TOP_LISTENERS, TOP_UPSTREAMS, TOP_ROUTES,
       TOP_ADMIN, TOP_USER, TOP_GROUP, TOP_PID_FILE, TOP_RATE_LIMITS, TOP_BANS, TOP_CACHE };

static const struct moat_conf_key top_keys[] = {
	[TOP_WORKERS] = { "workers", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_workers, NULL, 0 },
	[TOP_LOG] = { "log", MOAT_CONF_K_SECTION, 0, 0, 0, NULL, log_keys, MOAT_CONF_NELEM(log_keys) },
	[TOP_LIMITS] = { "limits", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_limits, NULL, 0 },
	[TOP_TIMEOUTS] = { "timeouts", MOAT_CONF_K_SECTION, offsetof(struct moat_conf, timeouts), 0, 0, NULL,
			   timeouts_keys, MOAT_CONF_NELEM(timeouts_keys) },
	[TOP_PROXY] = { "proxy", MOAT_CONF_K_SECTION, 0, 0, 0, NULL, proxy_keys, MOAT_CONF_NELEM(proxy_keys) },
	[TOP_LISTENERS] = { "listeners", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_listeners, NULL, 0 },
	[TOP_UPSTREAMS] = { "upstreams", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_schema_upstreams, NULL, 0 },
	[TOP_ROUTES] = { "routes", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_routes, NULL, 0 },
	[TOP_ADMIN] = { "admin", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_schema_admin, NULL, 0 },
	[TOP_USER] = { "user", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_user, NULL, 0 },
	[TOP_GROUP] = { "group", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_group, NULL, 0 },
	[TOP_PID_FILE] = { "pid_file", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_pid_file, NULL, 0 },
	[TOP_RATE_LIMITS] = { "rate_limits", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_schema_rate_limits, NULL, 0 },
	[TOP_BANS] = { "bans", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_schema_bans, NULL, 0 },
	[TOP_CACHE] = { "cache", MOAT_CONF_K_CUSTOM, 0, 0, 0, moat_conf_schema_cache, NULL, 0 },
};

static int upstream_cmp(const void *a, const void *b)
{
	const struct moat_conf_upstream *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Points each route at its upstream, now that all are known. */
static void resolve_routes(struct moat_conf_loader *ld)
{
	struct moat_conf *c = ld->c;
	struct moat_conf_upstream **sorted = NULL;
	char names[200];
	size_t i, o = 0;

	/* with no upstream at all (already reported), every route would fail too */
	if (ld->pending == NULL || c->nupstreams == 0)
		return;
	sorted = calloc(c->nupstreams, sizeof *sorted);
	if (sorted == NULL) {
		moat_conf_yaml_error_at(ld, c->routes[0].pos, "out of memory");
		return;
	}
	for (i = 0; i < c->nupstreams; i++)
		sorted[i] = &c->upstreams[i];
	qsort(sorted, c->nupstreams, sizeof *sorted, upstream_cmp);
	names[0] = '\0';
	for (i = 0; i < c->nupstreams && o < sizeof names; i++)
		o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", c->upstreams[i].name);
	if (o >= sizeof names)
		snprintf(names + sizeof names - 5, 5, "...");
	for (i = 0; i < c->nroutes; i++) {
		struct moat_conf_upstream key, *kp = &key, **hit;
		char q[128];

		if (ld->pending[i].name == NULL)
			continue;
		key.name = (char *)ld->pending[i].name;
		hit = bsearch(&kp, sorted, c->nupstreams, sizeof *sorted, upstream_cmp);
		if (hit == NULL) {
			moat_conf_quote(ld->pending[i].name, strlen(ld->pending[i].name), 64, q, sizeof q);
			moat_conf_yaml_error_at(
			    ld, ld->pending[i].pos,
			    "routes[%zu].upstream: unknown upstream %s; defined upstreams: %s", i, q, names);
			continue;
		}
		c->routes[i].upstream = (size_t)(*hit - c->upstreams);
		(*hit)->used = 1;
	}
	free(sorted);
}

/* Walks the root node into ld->c. */
static void walk_root(struct moat_conf_loader *ld, yaml_node_t *root)
{
	static const unsigned required[] = { TOP_LISTENERS, TOP_UPSTREAMS, TOP_ROUTES };
	unsigned seen;
	size_t i;

	if (root->type != YAML_MAPPING_NODE || is_null(root)) {
		char got_buf[128];
		moat_conf_yaml_error_at(
		    ld, moat_conf_yaml_pos(root),
		    "expected a mapping with listeners, upstreams and routes at the top level, got %s",
		    MOAT_CONF_GOT(root));
		return;
	}
	seen = moat_conf_yaml_walk_map(ld, root, top_keys, MOAT_CONF_NELEM(top_keys), ld->c, NULL);
	for (i = 0; i < MOAT_CONF_NELEM(required); i++)
		if (!(seen & (1u << required[i])))
			moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(root),
						"missing required key \"%s\" at the top level",
						top_keys[required[i]].key);
	resolve_routes(ld);
	moat_conf_schema_admin_check(ld);
	moat_conf_guard_finish(ld);
	moat_conf_cache_finish(ld);
}

struct moat_conf *moat_conf_load_buffer(const char *name, const char *data, size_t len,
					struct moat_conf_errors *err)
{
	struct moat_conf_loader ld;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root;

	memset(&ld, 0, sizeof ld);
	ld.name = name != NULL ? name : "<config>";
	ld.data = data != NULL ? data : "";
	ld.len = data != NULL ? len : 0;
	ld.err = err;
	ld.doc = &doc;
	ld.c = moat_conf_new(name);
	if (ld.c == NULL || !yaml_parser_initialize(&parser)) {
		moat_conf_errorf(err, "%s: out of memory", ld.name);
		moat_conf_free(ld.c);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)ld.data, ld.len);
	if (!yaml_parser_load(&parser, &doc)) {
		moat_conf_yaml_syntax_error(&ld, &parser);
	} else {
		root = yaml_document_get_root_node(&doc);
		if (root == NULL) {
			struct moat_conf_pos start = { 1, 1 };
			moat_conf_yaml_error_at(
			    &ld, start, "the configuration is empty; expected listeners, upstreams and routes");
		} else {
			walk_root(&ld, root);
			if (!yaml_parser_load(&parser, &extra)) {
				moat_conf_yaml_syntax_error(&ld, &parser);
			} else {
				yaml_node_t *r2 = yaml_document_get_root_node(&extra);
				if (r2 != NULL)
					moat_conf_yaml_error_at(
					    &ld, moat_conf_yaml_pos(r2),
					    "only one YAML document is allowed; a second one starts here");
				yaml_document_delete(&extra);
			}
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	free(ld.pending);
	moat_conf_yaml_flush_errors(&ld);
	if (ld.nerr != 0) {
		moat_conf_free(ld.c);
		return NULL;
	}
	return ld.c;
}
