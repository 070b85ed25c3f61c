/*
 * conf.c - the configuration snapshot: creation with defaults, freeing,
 * the error buffer, loading a file, the one-line proxy mode, printing the
 * effective configuration back as YAML, and comparing two snapshots.
 *
 * Runs on the control thread; the snapshots it returns are immutable and
 * owned by the caller (see conf.h). The YAML walk is in conf_yaml.c, the
 * scalar parsers in conf_values.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_cache.h"
#include "conf/conf_guard.h"
#include "conf/conf_int.h"
#include "conf/conf_tls.h"
#include "core/limits.h"

const char *const moat_conf_default_hide_headers[MOAT_CONF_NDEFAULT_HIDE_HEADERS] = {
	"server",
	"x-powered-by",
};

/* ---- errors --------------------------------------------------------------- */

int moat_conf_errorf(struct moat_conf_errors *e, const char *fmt, ...)
{
	va_list ap;
	char *nbuf;
	int n;

	if (e == NULL)
		return 0;
	e->count++;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	nbuf = realloc(e->buf, e->len + (size_t)n + 2);
	if (nbuf == NULL)
		return -ENOMEM;
	e->buf = nbuf;
	va_start(ap, fmt);
	vsnprintf(e->buf + e->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	e->len += (size_t)n;
	e->buf[e->len++] = '\n';
	e->buf[e->len] = '\0';
	return 0;
}

void moat_conf_errors_free(struct moat_conf_errors *e)
{
	if (e == NULL)
		return;
	free(e->buf);
	e->buf = NULL;
	e->len = 0;
	e->count = 0;
}

/* ---- snapshot lifetime ------------------------------------------------------ */

int moat_conf_header_add(char ***list, size_t *n, const char *name, size_t len)
{
	char **nl, *copy;
	size_t i;

	copy = malloc(len + 1);
	if (copy == NULL)
		return -ENOMEM;
	for (i = 0; i < len; i++)
		copy[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	copy[len] = '\0';
	for (i = 0; i < *n; i++) {
		if (strcmp((*list)[i], copy) == 0) {
			free(copy);
			return 1;
		}
	}
	nl = realloc(*list, (*n + 1) * sizeof *nl);
	if (nl == NULL) {
		free(copy);
		return -ENOMEM;
	}
	nl[*n] = copy;
	*list = nl;
	(*n)++;
	return 0;
}

struct moat_conf *moat_conf_new(const char *file)
{
	struct moat_conf *c = calloc(1, sizeof *c);
	size_t i;

	if (c == NULL)
		return NULL;
	c->workers = MOAT_DEFAULT_WORKERS;
	c->log_level = MOAT_LOG_INFO;
	c->error_log = NULL;
	c->access_format = MOAT_LOG_FMT_JSON;
	c->limits.request_line_max = MOAT_DEFAULT_REQUEST_LINE_MAX;
	c->limits.header_size_max = MOAT_DEFAULT_HEADER_SIZE_MAX;
	c->limits.header_count_max = MOAT_DEFAULT_HEADER_COUNT_MAX;
	c->limits.body_max = MOAT_DEFAULT_BODY_MAX;
	c->limits.conns_max = MOAT_DEFAULT_CONNS_MAX;
	c->limits.h2_streams = MOAT_DEFAULT_H2_STREAMS;
	c->timeouts.client_header = MOAT_DEFAULT_TIMEOUT_CLIENT_HEADER_MS;
	c->timeouts.client_body = MOAT_DEFAULT_TIMEOUT_CLIENT_BODY_MS;
	c->timeouts.keepalive = MOAT_DEFAULT_TIMEOUT_KEEPALIVE_MS;
	c->timeouts.client_send = MOAT_DEFAULT_TIMEOUT_CLIENT_SEND_MS;
	c->timeouts.backend_connect = MOAT_DEFAULT_TIMEOUT_BACKEND_CONNECT_MS;
	c->timeouts.backend_first_byte = MOAT_DEFAULT_TIMEOUT_BACKEND_FIRST_BYTE_MS;
	c->timeouts.backend_idle = MOAT_DEFAULT_TIMEOUT_BACKEND_IDLE_MS;
	c->timeouts.drain = MOAT_DEFAULT_TIMEOUT_DRAIN_MS;
	c->preserve_host = 1;
	moat_conf_guard_defaults(c);
	c->access_log = strdup("stdout");
	if (c->access_log == NULL || moat_conf_cache_defaults(c) < 0 || (file != NULL && (c->file = strdup(file)) == NULL))
		goto fail;
	for (i = 0; i < MOAT_CONF_NDEFAULT_HIDE_HEADERS; i++) {
		const char *h = moat_conf_default_hide_headers[i];
		if (moat_conf_header_add(&c->hide_headers, &c->nhide_headers, h, strlen(h)) < 0)
			goto fail;
	}
	return c;
fail:
	moat_conf_free(c);
	return NULL;
}

void moat_conf_server_init(struct moat_conf_server *s)
{
	s->weight = MOAT_DEFAULT_SERVER_WEIGHT;
	s->backup = 0;
	s->drain = 0;
	s->max_connections = MOAT_DEFAULT_SERVER_MAX_CONNECTIONS;
}

void moat_conf_upstream_init(struct moat_conf_upstream *u)
{
	u->keepalive = MOAT_DEFAULT_UPSTREAM_KEEPALIVE;
	u->keepalive_timeout_ms = MOAT_DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_MS;
	u->algorithm = MOAT_LB_ROUND_ROBIN;
	u->hash_key = MOAT_HASH_CLIENT_IP;
	u->sticky_ttl_ms = MOAT_DEFAULT_STICKY_TTL_MS;
	u->health.enabled = 0;
	u->health.status_min = MOAT_DEFAULT_HEALTH_STATUS_MIN;
	u->health.status_max = MOAT_DEFAULT_HEALTH_STATUS_MAX;
	u->health.interval_ms = MOAT_DEFAULT_HEALTH_INTERVAL_MS;
	u->health.timeout_ms = MOAT_DEFAULT_HEALTH_TIMEOUT_MS;
	u->health.rise = MOAT_DEFAULT_HEALTH_RISE;
	u->health.fall = MOAT_DEFAULT_HEALTH_FALL;
	u->outlier.consecutive_failures = MOAT_DEFAULT_OUTLIER_CONSECUTIVE_FAILURES;
	u->outlier.on_5xx = MOAT_DEFAULT_OUTLIER_ON_5XX;
	u->outlier.base_ejection_ms = MOAT_DEFAULT_OUTLIER_BASE_EJECTION_MS;
	u->outlier.max_ejection_ms = MOAT_DEFAULT_OUTLIER_MAX_EJECTION_MS;
	u->outlier.max_ejected_percent = MOAT_DEFAULT_OUTLIER_MAX_EJECTED_PERCENT;
	u->retry.attempts = MOAT_DEFAULT_RETRY_ATTEMPTS;
	u->retry.budget_percent = MOAT_DEFAULT_RETRY_BUDGET_PERCENT;
	u->retry.budget_min = MOAT_DEFAULT_RETRY_BUDGET_MIN;
	u->retry.per_try_timeout_ms = MOAT_DEFAULT_RETRY_PER_TRY_TIMEOUT_MS;
	u->retry.timeout_ms = MOAT_DEFAULT_RETRY_TIMEOUT_MS;
	u->slow_start_ms = MOAT_DEFAULT_UPSTREAM_SLOW_START_MS;
	u->max_connections = MOAT_DEFAULT_UPSTREAM_MAX_CONNECTIONS;
	u->max_pending = MOAT_DEFAULT_UPSTREAM_MAX_PENDING;
	u->pending_timeout_ms = MOAT_DEFAULT_UPSTREAM_PENDING_TIMEOUT_MS;
	u->resolve_interval_ms = MOAT_DEFAULT_UPSTREAM_RESOLVE_INTERVAL_MS;
	u->tls.verify = 1;
}

static void free_strings(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void moat_conf_free(struct moat_conf *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	moat_conf_guard_free(c);
	moat_conf_cache_free(c);
	moat_conf_tls_free(c);
	for (i = 0; i < c->nlisteners; i++)
		free(c->listeners[i].addr.text);
	free(c->listeners);
	for (i = 0; i < c->nupstreams; i++) {
		struct moat_conf_upstream *u = &c->upstreams[i];
		for (j = 0; j < u->nservers; j++) {
			free(u->servers[j].addr.text);
			free(u->servers[j].host);
		}
		free(u->servers);
		free(u->name);
		free(u->hash_name);
		free(u->sticky_cookie);
		free(u->health.method);
		free(u->health.path);
		free(u->health.host);
		free(u->health.body);
	}
	free(c->upstreams);
	for (i = 0; i < c->nroutes; i++) {
		free(c->routes[i].host);
		free(c->routes[i].path_prefix);
		free_strings(c->routes[i].strip_headers, c->routes[i].nstrip_headers);
	}
	free(c->routes);
	free(c->trusted_proxies);
	free_strings(c->hide_headers, c->nhide_headers);
	free(c->admin.addr.text);
	free(c->admin.unix_path);
	free(c->admin.token);
	free(c->admin.allow);
	free(c->user);
	free(c->group);
	free(c->pid_file);
	free(c->error_log);
	free(c->access_log);
	free(c->file);
	free(c);
}

/* ---- loading ---------------------------------------------------------------- */

int moat_conf_read_file(const char *path, char **out, size_t *lenp, int *opened)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, got;
	int rc = 0;

	*out = NULL;
	*lenp = 0;
	*opened = f != NULL;
	if (f == NULL)
		return -errno;
	for (;;) {
		if (len == cap) {
			/* MOAT_CONF_MAX_FILE bytes are allowed, one more is not */
			if (cap > MOAT_CONF_MAX_FILE) {
				rc = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 16384;
			if (cap > MOAT_CONF_MAX_FILE + 1)
				cap = MOAT_CONF_MAX_FILE + 1;
			nbuf = realloc(buf, cap + 1);
			if (nbuf == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = nbuf;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				rc = errno ? -errno : -EIO; /* EISDIR for a directory */
			break;
		}
	}
	fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return -ENOMEM;
	buf[len] = '\0';
	*out = buf;
	*lenp = len;
	return 0;
}

struct moat_conf *moat_conf_load_file(const char *path, struct moat_conf_errors *err)
{
	struct moat_conf *c;
	char *buf;
	size_t len;
	int opened, rc = moat_conf_read_file(path, &buf, &len, &opened);

	if (rc == 0) {
		c = moat_conf_load_buffer(path, buf, len, err);
		free(buf);
		return c;
	}
	if (!opened)
		moat_conf_errorf(err, "%s: cannot open: %s", path, strerror(-rc));
	else if (rc == -EFBIG)
		moat_conf_errorf(err, "%s: file too large (more than %llu MiB)", path,
				 (unsigned long long)(MOAT_CONF_MAX_FILE / MOAT_MIB));
	else if (rc == -ENOMEM)
		moat_conf_errorf(err, "%s: out of memory", path);
	else
		moat_conf_errorf(err, "%s: cannot read: %s", path, strerror(-rc));
	return NULL;
}

struct moat_conf *moat_conf_from_proxy_args(const char *from, const char *const *to, size_t nto,
					    unsigned workers, struct moat_conf_errors *err)
{
	struct moat_conf *c = moat_conf_new(NULL);
	struct moat_conf_upstream *u;
	char why[256], q[128];
	unsigned nerr = 0;
	size_t i;
	int rc;

	if (c == NULL)
		goto oom;
	if (workers > MOAT_MAX_WORKERS) {
		moat_conf_errorf(err, "--workers: expected an integer between 1 and %u, got %u",
				 MOAT_MAX_WORKERS, workers);
		nerr++;
	}
	c->workers = workers;

	c->listeners = calloc(1, sizeof *c->listeners);
	if (c->listeners == NULL)
		goto oom;
	c->nlisteners = 1;
	c->listeners[0].backlog = MOAT_DEFAULT_BACKLOG;
	moat_conf_tls_listener_init(&c->listeners[0]);
	if (from == NULL)
		from = "";
	rc = moat_conf_parse_listen(from, &c->listeners[0].addr, why, sizeof why);
	moat_conf_quote(from, strlen(from), 64, q, sizeof q);
	if (rc == MOAT_CONF_ENOMEM)
		goto oom;
	if (rc == MOAT_CONF_ESYNTAX)
		moat_conf_errorf(err, "--from: expected %s, got %s (%s)", MOAT_CONF_LISTEN_FORM, q, why);
	else if (rc < 0)
		moat_conf_errorf(err, "--from: %s", why);
	nerr += rc < 0;

	c->upstreams = calloc(1, sizeof *c->upstreams);
	if (c->upstreams == NULL)
		goto oom;
	c->nupstreams = 1;
	u = &c->upstreams[0];
	u->used = 1;
	moat_conf_upstream_init(u);
	u->name = strdup("default");
	if (u->name == NULL)
		goto oom;
	if (nto == 0 || nto > MOAT_CONF_MAX_SERVERS) {
		moat_conf_errorf(err,
				 "--to: between 1 and %u backends are needed, like --to http://127.0.0.1:3000",
				 MOAT_CONF_MAX_SERVERS);
		nerr++;
	} else {
		u->servers = calloc(nto, sizeof *u->servers);
		if (u->servers == NULL)
			goto oom;
		u->nservers = nto;
	}
	for (i = 0; i < u->nservers; i++) {
		const char *t = to[i] != NULL ? to[i] : "";

		moat_conf_server_init(&u->servers[i]);
		rc = moat_conf_parse_server(t, &u->servers[i], why, sizeof why);
		moat_conf_quote(t, strlen(t), 64, q, sizeof q);
		if (rc == MOAT_CONF_ENOMEM)
			goto oom;
		if (rc == MOAT_CONF_ESYNTAX)
			moat_conf_errorf(err, "--to: expected http://host:port, got %s (%s)", q, why);
		else if (rc < 0)
			moat_conf_errorf(err, "--to: %s (in %s)", why, q);
		nerr += rc < 0;
	}

	c->routes = calloc(1, sizeof *c->routes);
	if (c->routes == NULL)
		goto oom;
	c->nroutes = 1;
	c->routes[0].upstream = 0;
	moat_conf_guard_route_init(&c->routes[0]);
	moat_conf_cache_route_init(&c->routes[0]);
	if (nerr == 0)
		return c;
	moat_conf_free(c);
	return NULL;
oom:
	moat_conf_errorf(err, "out of memory");
	moat_conf_free(c);
	return NULL;
}

/* ---- printing ----------------------------------------------------------------- */

/* YAML's printable characters (YAML 1.1, 5.1), less those a reader would
 * not give back as they are: the line breaks NEL, LS and PS (folded inside
 * a quoted scalar) and the byte order mark. */
static int yaml_printable(uint32_t cp)
{
	return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 && cp != 0x2029) ||
	       (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/* Decodes the UTF-8 sequence at s (bytes left: len); returns its length, or
 * 0 when it is not well formed (the byte is then escaped on its own). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n, i;
	uint32_t v;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		v = s[0] & 0x1fu;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		v = s[0] & 0x0fu;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		v = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3fu);
	}
	if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Writes `s` as a YAML double-quoted scalar that reads back byte for byte. */
static void put_quoted(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n;
	uint32_t cp;

	fputc('"', out);
	while (i < len) {
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			/* cannot come from a loaded file (libyaml checks UTF-8) */
			fprintf(out, "\\x%02x", p[i]);
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\')
			fprintf(out, "\\%c", (int)cp);
		else if (yaml_printable(cp))
			fwrite(p + i, 1, n, out);
		else if (cp <= 0xff)
			fprintf(out, "\\x%02x", (unsigned)cp);
		else if (cp <= 0xffff)
			fprintf(out, "\\u%04x", (unsigned)cp);
		else
			fprintf(out, "\\U%08x", (unsigned)cp);
		i += n;
	}
	fputc('"', out);
}

void moat_conf_put_key_string(FILE *out, const char *indent, const char *key, const char *s)
{
	fprintf(out, "%s%s: ", indent, key);
	put_quoted(out, s);
	fputc('\n', out);
}

static void put_duration(FILE *out, const char *key, uint64_t ms)
{
	char b[32];

	moat_conf_format_duration(ms, b, sizeof b);
	fprintf(out, "  %s: %s\n", key, b);
}

static void put_size(FILE *out, const char *key, uint64_t bytes)
{
	char b[32];

	moat_conf_format_size(bytes, b, sizeof b);
	fprintf(out, "  %s: %s\n", key, b);
}

/* A flow list of quoted strings: ["a", "b"]. */
static void put_list(FILE *out, char *const *list, size_t n, int skip_defaults)
{
	size_t i, j, k = 0;

	fputc('[', out);
	for (i = 0; i < n; i++) {
		for (j = 0; skip_defaults && j < MOAT_CONF_NDEFAULT_HIDE_HEADERS; j++)
			if (strcmp(list[i], moat_conf_default_hide_headers[j]) == 0)
				break;
		if (skip_defaults && j < MOAT_CONF_NDEFAULT_HIDE_HEADERS)
			continue;
		fputs(k++ ? ", " : "", out);
		put_quoted(out, list[i]);
	}
	fputs("]\n", out);
}

/* "NAME: VALUE" of a duration, after `indent`. */
static void put_ms(FILE *out, const char *indent, const char *key, uint64_t ms)
{
	char b[32];

	moat_conf_format_duration(ms, b, sizeof b);
	fprintf(out, "%s%s: %s\n", indent, key, b);
}

static const char *word(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : names[0];
}

/* One upstream, every key written out (health_check, hash and sticky only
 * when in use: their presence is what turns them on). */
static void print_upstream(const struct moat_conf_upstream *u, FILE *out)
{
	const struct moat_conf_health *h = &u->health;
	const struct moat_conf_outlier *o = &u->outlier;
	const struct moat_conf_retry *r = &u->retry;
	char b1[32], b2[32];
	size_t j;

	fputs("  ", out);
	put_quoted(out, u->name);
	fprintf(out, ":\n    algorithm: %s\n",
		word(moat_conf_lb_algo_names, MOAT_CONF_NLB_ALGOS, (unsigned)u->algorithm));
	if (u->algorithm == MOAT_LB_HASH) {
		fprintf(out, "    hash: { key: %s",
			word(moat_conf_hash_key_names, MOAT_CONF_NHASH_KEYS, (unsigned)u->hash_key));
		if (u->hash_name != NULL) {
			fputs(", name: ", out);
			put_quoted(out, u->hash_name);
		}
		fputs(" }\n", out);
	}
	if (u->sticky_cookie != NULL) {
		moat_conf_format_duration(u->sticky_ttl_ms, b1, sizeof b1);
		fputs("    sticky: { cookie: ", out);
		put_quoted(out, u->sticky_cookie);
		fprintf(out, ", ttl: %s }\n", b1);
	}
	fprintf(out, "    servers:\n");
	for (j = 0; j < u->nservers; j++) {
		const struct moat_conf_server *s = &u->servers[j];
		char url[320];

		snprintf(url, sizeof url, "%s%s", s->scheme == MOAT_SCHEME_HTTP ? "" : moat_conf_scheme_prefix(s->scheme),
			 s->addr.text ? s->addr.text : "");
		fputs("      - { address: ", out);
		put_quoted(out, url);
		fprintf(out, ", weight: %u, backup: %s, drain: %s, max_connections: %u }\n", s->weight,
			s->backup ? "true" : "false", s->drain ? "true" : "false", s->max_connections);
	}
	fprintf(out, "    keepalive: %u\n", u->keepalive);
	put_ms(out, "    ", "keepalive_timeout", u->keepalive_timeout_ms);
	if (h->enabled) {
		fprintf(out, "    health_check:\n");
		moat_conf_put_key_string(out, "      ", "method", h->method ? h->method : MOAT_CONF_DEFAULT_HEALTH_METHOD);
		moat_conf_put_key_string(out, "      ", "path", h->path ? h->path : MOAT_CONF_DEFAULT_HEALTH_PATH);
		if (h->host != NULL)
			moat_conf_put_key_string(out, "      ", "host", h->host);
		if (h->status_min == h->status_max)
			fprintf(out, "      status: \"%u\"\n", h->status_min);
		else
			fprintf(out, "      status: \"%u-%u\"\n", h->status_min, h->status_max);
		if (h->body != NULL)
			moat_conf_put_key_string(out, "      ", "body", h->body);
		put_ms(out, "      ", "interval", h->interval_ms);
		put_ms(out, "      ", "timeout", h->timeout_ms);
		fprintf(out, "      rise: %u\n      fall: %u\n", h->rise, h->fall);
	}
	moat_conf_format_duration(o->base_ejection_ms, b1, sizeof b1);
	moat_conf_format_duration(o->max_ejection_ms, b2, sizeof b2);
	fprintf(out,
		"    outlier: { consecutive_failures: %u, on_5xx: %s, base_ejection: %s, max_ejection: %s, "
		"max_ejected_percent: %u }\n",
		o->consecutive_failures, o->on_5xx ? "true" : "false", b1, b2, o->max_ejected_percent);
	moat_conf_format_duration(r->per_try_timeout_ms, b1, sizeof b1);
	moat_conf_format_duration(r->timeout_ms, b2, sizeof b2);
	fprintf(out,
		"    retry: { attempts: %u, budget_percent: %u, budget_min: %u, per_try_timeout: %s, timeout: %s }\n",
		r->attempts, r->budget_percent, r->budget_min, b1, b2);
	put_ms(out, "    ", "slow_start", u->slow_start_ms);
	fprintf(out, "    max_connections: %u\n    max_pending: %u\n", u->max_connections, u->max_pending);
	put_ms(out, "    ", "pending_timeout", u->pending_timeout_ms);
	put_ms(out, "    ", "resolve_interval", u->resolve_interval_ms);
	moat_conf_tls_print_upstream(u, out);
}

/* The admin section, only when enabled: its presence is what turns it on. */
static void print_admin(const struct moat_conf_admin *a, FILE *out)
{
	char b[64];
	size_t i;

	if (!a->enabled)
		return;
	fprintf(out, "admin:\n");
	moat_conf_put_key_string(out, "  ", "listen", a->addr.text ? a->addr.text : "");
	if (a->token != NULL)
		moat_conf_put_key_string(out, "  ", "token", a->token);
	fprintf(out, "  allow: [");
	for (i = 0; i < a->nallow; i++) {
		moat_conf_format_cidr(&a->allow[i], b, sizeof b);
		fprintf(out, "%s\"%s\"", i ? ", " : "", b);
	}
	fprintf(out, "]\n");
}

int moat_conf_print(const struct moat_conf *c, FILE *out)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const char *const formats[] = { "json", "combined", "common" };
	const struct moat_conf_timeouts *t = &c->timeouts;
	char b[64];
	size_t i;

	fprintf(out, "# moat: the effective configuration, every default filled in\n");
	if (c->workers == 0)
		fprintf(out, "workers: auto\n");
	else
		fprintf(out, "workers: %u\n", c->workers);
	if (c->user != NULL)
		moat_conf_put_key_string(out, "", "user", c->user);
	if (c->group != NULL)
		moat_conf_put_key_string(out, "", "group", c->group);
	if (c->pid_file != NULL)
		moat_conf_put_key_string(out, "", "pid_file", c->pid_file);

	fprintf(out, "log:\n  level: %s\n", (unsigned)c->log_level < 4 ? levels[c->log_level] : "info");
	if (c->error_log == NULL)
		fprintf(out, "  error: stderr\n");
	else
		moat_conf_put_key_string(out, "  ", "error", c->error_log);
	if (c->access_log == NULL)
		fprintf(out, "  access: off\n");
	else if (strcmp(c->access_log, "stdout") == 0)
		fprintf(out, "  access: stdout\n");
	else
		moat_conf_put_key_string(out, "  ", "access", c->access_log);
	fprintf(out, "  format: %s\n", (unsigned)c->access_format < 3 ? formats[c->access_format] : "json");
	fprintf(out, "  refusal_rate: %u\n", c->refusal_log_rate);

	fprintf(out, "limits:\n");
	put_size(out, "request_line", c->limits.request_line_max);
	put_size(out, "header_size", c->limits.header_size_max);
	fprintf(out, "  header_count: %zu\n", c->limits.header_count_max);
	put_size(out, "body", c->limits.body_max);
	fprintf(out, "  connections: %u\n", c->limits.conns_max);
	fprintf(out, "  h2_streams: %u\n", c->limits.h2_streams);
	fprintf(out, "  connections_per_ip: %u\n", c->limits.conns_per_ip);
	fprintf(out, "  connections_total: %u\n", c->limits.conns_total);
	put_size(out, "min_body_rate", c->limits.min_body_rate);
	put_size(out, "min_send_rate", c->limits.min_send_rate);
	fprintf(out, "  rate_limit_keys: %zu\n", c->limits.rate_limit_keys);

	fprintf(out, "timeouts:\n");
	put_duration(out, "client_header", t->client_header);
	put_duration(out, "client_body", t->client_body);
	put_duration(out, "keepalive", t->keepalive);
	put_duration(out, "client_send", t->client_send);
	put_duration(out, "backend_connect", t->backend_connect);
	put_duration(out, "backend_first_byte", t->backend_first_byte);
	put_duration(out, "backend_idle", t->backend_idle);
	put_duration(out, "drain", t->drain);

	fprintf(out, "proxy:\n  trusted_proxies: [");
	for (i = 0; i < c->ntrusted_proxies; i++) {
		moat_conf_format_cidr(&c->trusted_proxies[i], b, sizeof b);
		fprintf(out, "%s\"%s\"", i ? ", " : "", b);
	}
	fprintf(out, "]\n  # hidden in every response besides \"server\" and \"x-powered-by\":\n");
	fprintf(out, "  hide_headers: ");
	put_list(out, c->hide_headers, c->nhide_headers, 1);
	fprintf(out, "  preserve_host: %s\n", c->preserve_host ? "true" : "false");
	fprintf(out, "  client_ip: %s\n", c->client_ip == MOAT_CLIENT_IP_XFF ? "x-forwarded-for" :
					      c->client_ip == MOAT_CLIENT_IP_FORWARDED ? "forwarded" : "none");

	fprintf(out, "listeners:\n");
	for (i = 0; i < c->nlisteners; i++) {
		moat_conf_put_key_string(out, "  - ", "listen",
			       c->listeners[i].addr.text ? c->listeners[i].addr.text : "");
		fprintf(out, "    backlog: %u\n", c->listeners[i].backlog);
		moat_conf_guard_print_listener(&c->listeners[i], out);
		moat_conf_tls_print_listener(&c->listeners[i], out);
	}

	fprintf(out, "upstreams:\n");
	for (i = 0; i < c->nupstreams; i++)
		print_upstream(&c->upstreams[i], out);

	fprintf(out, "routes:\n");
	for (i = 0; i < c->nroutes; i++) {
		const struct moat_conf_route *r = &c->routes[i];
		moat_conf_put_key_string(out, "  - ", "upstream",
			       r->upstream < c->nupstreams ? c->upstreams[r->upstream].name : "");
		if (r->host != NULL) {
			fputs("    host: ", out);
			if (r->host_wildcard) {
				/* stored as ".suffix" */
				fputs("\"*", out);
				fputs(r->host, out);
				fputs("\"\n", out);
			} else {
				put_quoted(out, r->host);
				fputc('\n', out);
			}
		}
		if (r->path_prefix != NULL)
			moat_conf_put_key_string(out, "    ", "path", r->path_prefix);
		if (r->nstrip_headers > 0) {
			fprintf(out, "    strip_headers: ");
			put_list(out, r->strip_headers, r->nstrip_headers, 0);
		}
		moat_conf_guard_print_route(r, out);
		moat_conf_cache_print_route(r, out);
	}
	moat_conf_guard_print(c, out);
	moat_conf_cache_print(c, out);
	print_admin(&c->admin, out);
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

/* ---- equality ------------------------------------------------------------------ */

int moat_conf_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int strings_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!moat_conf_str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int addr_eq(const struct moat_conf_addr *a, const struct moat_conf_addr *b)
{
	return moat_conf_addr_equal(a, b) && moat_conf_str_eq(a->text, b->text);
}

static int server_eq(const struct moat_conf_server *a, const struct moat_conf_server *b)
{
	return addr_eq(&a->addr, &b->addr) && moat_conf_str_eq(a->host, b->host) && a->weight == b->weight &&
	       a->backup == b->backup && a->drain == b->drain && a->max_connections == b->max_connections &&
	       a->is_name == b->is_name;
}

static int health_eq(const struct moat_conf_health *a, const struct moat_conf_health *b)
{
	return a->enabled == b->enabled && moat_conf_str_eq(a->method, b->method) && moat_conf_str_eq(a->path, b->path) &&
	       moat_conf_str_eq(a->host, b->host) && a->status_min == b->status_min && a->status_max == b->status_max &&
	       moat_conf_str_eq(a->body, b->body) && a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
	       a->rise == b->rise && a->fall == b->fall;
}

static int outlier_eq(const struct moat_conf_outlier *a, const struct moat_conf_outlier *b)
{
	return a->consecutive_failures == b->consecutive_failures && a->on_5xx == b->on_5xx &&
	       a->base_ejection_ms == b->base_ejection_ms && a->max_ejection_ms == b->max_ejection_ms &&
	       a->max_ejected_percent == b->max_ejected_percent;
}

static int retry_eq(const struct moat_conf_retry *a, const struct moat_conf_retry *b)
{
	return a->attempts == b->attempts && a->budget_percent == b->budget_percent &&
	       a->budget_min == b->budget_min && a->per_try_timeout_ms == b->per_try_timeout_ms &&
	       a->timeout_ms == b->timeout_ms;
}

static int upstream_eq(const struct moat_conf_upstream *a, const struct moat_conf_upstream *b)
{
	size_t i;

	if (!moat_conf_str_eq(a->name, b->name) || a->nservers != b->nservers || a->keepalive != b->keepalive ||
	    a->keepalive_timeout_ms != b->keepalive_timeout_ms || a->used != b->used)
		return 0;
	if (a->algorithm != b->algorithm || a->hash_key != b->hash_key || !moat_conf_str_eq(a->hash_name, b->hash_name) ||
	    !moat_conf_str_eq(a->sticky_cookie, b->sticky_cookie) || a->sticky_ttl_ms != b->sticky_ttl_ms ||
	    !health_eq(&a->health, &b->health) || !outlier_eq(&a->outlier, &b->outlier) ||
	    !retry_eq(&a->retry, &b->retry))
		return 0;
	if (a->slow_start_ms != b->slow_start_ms || a->max_connections != b->max_connections ||
	    a->max_pending != b->max_pending || a->pending_timeout_ms != b->pending_timeout_ms ||
	    a->resolve_interval_ms != b->resolve_interval_ms)
		return 0;
	for (i = 0; i < a->nservers; i++)
		if (!server_eq(&a->servers[i], &b->servers[i]))
			return 0;
	return 1;
}

static int route_eq(const struct moat_conf_route *a, const struct moat_conf_route *b)
{
	return moat_conf_str_eq(a->host, b->host) && a->host_wildcard == b->host_wildcard &&
	       moat_conf_str_eq(a->path_prefix, b->path_prefix) && a->path_prefix_len == b->path_prefix_len &&
	       a->upstream == b->upstream &&
	       strings_eq(a->strip_headers, a->nstrip_headers, b->strip_headers, b->nstrip_headers);
}

int moat_conf_cidrs_eq(const struct moat_conf_cidr *a, size_t na, const struct moat_conf_cidr *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (a[i].family != b[i].family || a[i].prefix != b[i].prefix ||
		    memcmp(a[i].addr, b[i].addr, sizeof a[i].addr) != 0)
			return 0;
	return 1;
}

static int admin_eq(const struct moat_conf_admin *a, const struct moat_conf_admin *b)
{
	if (a->enabled != b->enabled)
		return 0;
	if (!a->enabled)
		return 1;
	if (!moat_conf_str_eq(a->unix_path, b->unix_path) || !moat_conf_str_eq(a->addr.text, b->addr.text) ||
	    !moat_conf_str_eq(a->token, b->token) || !moat_conf_cidrs_eq(a->allow, a->nallow, b->allow, b->nallow))
		return 0;
	return a->unix_path != NULL || moat_conf_addr_equal(&a->addr, &b->addr);
}

int moat_conf_equal(const struct moat_conf *a, const struct moat_conf *b)
{
	const struct moat_conf_timeouts *ta = &a->timeouts, *tb = &b->timeouts;
	size_t i;

	if (a->workers != b->workers || a->log_level != b->log_level || !moat_conf_str_eq(a->error_log, b->error_log) ||
	    !moat_conf_str_eq(a->access_log, b->access_log) || a->access_format != b->access_format)
		return 0;
	if (!moat_conf_str_eq(a->user, b->user) || !moat_conf_str_eq(a->group, b->group) || !moat_conf_str_eq(a->pid_file, b->pid_file))
		return 0;
	if (a->limits.request_line_max != b->limits.request_line_max ||
	    a->limits.header_size_max != b->limits.header_size_max ||
	    a->limits.header_count_max != b->limits.header_count_max ||
	    a->limits.body_max != b->limits.body_max || a->limits.conns_max != b->limits.conns_max ||
	    a->limits.h2_streams != b->limits.h2_streams)
		return 0;
	if (ta->client_header != tb->client_header || ta->client_body != tb->client_body ||
	    ta->keepalive != tb->keepalive || ta->client_send != tb->client_send ||
	    ta->backend_connect != tb->backend_connect || ta->backend_first_byte != tb->backend_first_byte ||
	    ta->backend_idle != tb->backend_idle || ta->drain != tb->drain)
		return 0;
	if (a->nlisteners != b->nlisteners || a->nupstreams != b->nupstreams || a->nroutes != b->nroutes ||
	    a->ntrusted_proxies != b->ntrusted_proxies || a->preserve_host != b->preserve_host ||
	    !strings_eq(a->hide_headers, a->nhide_headers, b->hide_headers, b->nhide_headers))
		return 0;
	for (i = 0; i < a->nlisteners; i++)
		if (!addr_eq(&a->listeners[i].addr, &b->listeners[i].addr) ||
		    a->listeners[i].backlog != b->listeners[i].backlog)
			return 0;
	for (i = 0; i < a->nupstreams; i++)
		if (!upstream_eq(&a->upstreams[i], &b->upstreams[i]))
			return 0;
	for (i = 0; i < a->nroutes; i++)
		if (!route_eq(&a->routes[i], &b->routes[i]))
			return 0;
	for (i = 0; i < a->ntrusted_proxies; i++)
		if (a->trusted_proxies[i].family != b->trusted_proxies[i].family ||
		    a->trusted_proxies[i].prefix != b->trusted_proxies[i].prefix ||
		    memcmp(a->trusted_proxies[i].addr, b->trusted_proxies[i].addr, 16) != 0)
			return 0;
	if (!admin_eq(&a->admin, &b->admin))
		return 0;
	return moat_conf_guard_equal(a, b) && moat_conf_cache_equal(a, b) && moat_conf_tls_equal(a, b);
}
