/*
 * metrics.c - GET /metrics: every counter moat keeps, in the Prometheus
 * text exposition format 0.0.4, summed over workers at scrape time.
 *
 * Families, each with HELP and TYPE and its samples together:
 *   moat_http_requests_total{route,upstream,code}            counter (route stats)
 *   moat_http_request_duration_seconds{route}                histogram
 *   moat_http_request_bytes_total / _response_bytes_total{route}  counters
 *   moat_upstream_response_duration_seconds{upstream}        histogram
 *   moat_upstream_retries_total{upstream}                    counter
 *   moat_upstream_failures_total{upstream,kind}              counter
 *   moat_upstream_ejections_total{upstream,server}           counter
 *   moat_upstream_health_transitions_total{upstream,server,to} counter
 *   moat_upstream_server_up / _active_requests{upstream,server} gauges
 *   moat_upstream_server_requests_total{upstream,server}     counter
 *   moat_connections_active, moat_connections_accepted_total
 *   moat_refusals_total{reason}
 *   moat_config_generation, moat_config_loaded_timestamp_seconds,
 *   moat_build_info{version}, moat_uptime_seconds
 *
 * Series come from the current generation's routes, upstreams and
 * servers; counters live in the registry by name, so they survive reloads
 * and never go backwards. A histogram's buckets are made cumulative here
 * and its _count is the +Inf bucket, so one scrape is always consistent
 * even while workers add observations. Admin thread only.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/stats.h"
#include "proxy/admin_int.h"

static const char *const class_names[MOAT_STATUS_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

/* A label, name and value (escaped when written). */
struct lbl {
	const char *k, *v;
};

static void family(struct moat_text *t, const char *name, const char *type, const char *help)
{
	/* help texts are constants without '\\' or newlines: nothing to escape */
	moat_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void series(struct moat_text *t, const char *name, const char *suffix, const struct lbl *l, size_t n)
{
	moat_text_str(t, name);
	moat_text_str(t, suffix);
	if (n == 0)
		return;
	moat_text_add(t, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			moat_text_add(t, ",", 1);
		moat_text_str(t, l[i].k);
		moat_text_add(t, "=\"", 2);
		moat_prom_escape(t, l[i].v ? l[i].v : "");
		moat_text_add(t, "\"", 1);
	}
	moat_text_add(t, "}", 1);
}

static void sample(struct moat_text *t, const char *name, const struct lbl *l, size_t n, uint64_t v)
{
	series(t, name, "", l, n);
	moat_text_printf(t, " %" PRIu64 "\n", v);
}

/* A histogram's series: `bucket` non-cumulative (MOAT_HIST_BUCKETS, the
 * last +Inf), `sum_us` in microseconds. `l` has room for one more label. */
static void histogram(struct moat_text *t, const char *name, struct lbl *l, size_t n,
		      const uint64_t bucket[MOAT_HIST_BUCKETS], uint64_t sum_us)
{
	uint64_t cum = 0;
	char le[32];

	for (unsigned i = 0; i < MOAT_HIST_BUCKETS; i++) {
		cum += bucket[i];
		if (i < MOAT_HIST_BUCKETS - 1)
			moat_admin_seconds(moat_hist_bounds_us[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		l[n].k = "le";
		l[n].v = le;
		series(t, name, "_bucket", l, n + 1);
		moat_text_printf(t, " %" PRIu64 "\n", cum);
	}
	moat_admin_seconds(sum_us, le, sizeof(le));
	series(t, name, "_sum", l, n);
	moat_text_printf(t, " %s\n", le);
	series(t, name, "_count", l, n);
	moat_text_printf(t, " %" PRIu64 "\n", cum);
}

static void hist_sum(const struct moat_hist *h, uint64_t bucket[MOAT_HIST_BUCKETS], uint64_t *sum_us)
{
	for (unsigned i = 0; i < MOAT_HIST_BUCKETS; i++)
		bucket[i] += MOAT_STAT_GET(h->bucket[i]);
	*sum_us += MOAT_STAT_GET(h->sum_us);
}

/* Marks in first[i] whether ptrs[i] is the first of its value: routes with
 * the same host and path share counters, and a server listed twice shares
 * its state; their series are written once. Returns 0 or -1 (no memory). */
struct pidx {
	const void *p;
	size_t i;
};

static int pidx_cmp(const void *a, const void *b)
{
	const struct pidx *x = a, *y = b;

	if (x->p != y->p)
		return (uintptr_t)x->p < (uintptr_t)y->p ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static unsigned char *firsts(const void *(*get)(const void *arr, size_t i), const void *arr, size_t n)
{
	struct pidx *v = calloc(n ? n : 1, sizeof(*v));
	unsigned char *first = calloc(n ? n : 1, 1);

	if (!v || !first) {
		free(v);
		free(first);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].p = get(arr, i);
		v[i].i = i;
	}
	qsort(v, n, sizeof(*v), pidx_cmp);
	for (size_t i = 0; i < n; i++)
		first[v[i].i] = i == 0 || v[i].p != v[i - 1].p;
	free(v);
	return first;
}

static const void *route_stats_of(const void *arr, size_t i)
{
	return ((const struct moat_route_rt *)arr)[i].stats;
}

static const void *server_state_of(const void *arr, size_t i)
{
	return ((struct moat_srv_state *const *)arr)[i];
}

static void routes(const struct moat_admin_ctx *x, struct moat_text *t, unsigned nw, const unsigned char *first)
{
	const struct moat_confref *cur = x->cur;
	const struct moat_conf *c = cur->conf;
	struct lbl l[4];

	family(t, "moat_http_requests_total", "counter",
	       "Requests answered, by route, its upstream and status class.");
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct moat_rstats *rs = cur->routes[i].stats;

		if (!first[i])
			continue;
		l[0] = (struct lbl){ "route", cur->routes[i].label };
		l[1] = (struct lbl){ "upstream", c->upstreams[c->routes[i].upstream].name };
		for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++) {
			uint64_t v = 0;

			for (unsigned w = 0; w < nw; w++)
				v += MOAT_STAT_GET(rs[w].requests[k]);
			l[2] = (struct lbl){ "code", class_names[k] };
			sample(t, "moat_http_requests_total", l, 3, v);
		}
	}

	family(t, "moat_http_request_duration_seconds", "histogram",
	       "Time from a complete request head to the last byte of the response, by route.");
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct moat_rstats *rs = cur->routes[i].stats;
		uint64_t b[MOAT_HIST_BUCKETS] = { 0 }, sum = 0;

		if (!first[i])
			continue;
		for (unsigned w = 0; w < nw; w++)
			hist_sum(&rs[w].latency, b, &sum);
		l[0] = (struct lbl){ "route", cur->routes[i].label };
		histogram(t, "moat_http_request_duration_seconds", l, 1, b, sum);
	}

	family(t, "moat_http_request_bytes_total", "counter", "Request bytes received from clients, by route.");
	for (size_t i = 0; i < c->nroutes; i++) {
		uint64_t v = 0;

		if (!first[i])
			continue;
		for (unsigned w = 0; w < nw; w++)
			v += MOAT_STAT_GET(cur->routes[i].stats[w].bytes_in);
		l[0] = (struct lbl){ "route", cur->routes[i].label };
		sample(t, "moat_http_request_bytes_total", l, 1, v);
	}
	family(t, "moat_http_response_bytes_total", "counter", "Response body bytes sent to clients, by route.");
	for (size_t i = 0; i < c->nroutes; i++) {
		uint64_t v = 0;

		if (!first[i])
			continue;
		for (unsigned w = 0; w < nw; w++)
			v += MOAT_STAT_GET(cur->routes[i].stats[w].bytes_out);
		l[0] = (struct lbl){ "route", cur->routes[i].label };
		sample(t, "moat_http_response_bytes_total", l, 1, v);
	}
}

static void upstreams(const struct moat_admin_ctx *x, struct moat_text *t, unsigned nw)
{
	const struct moat_confref *cur = x->cur;
	const struct moat_conf *c = cur->conf;
	struct lbl l[4];

	family(t, "moat_upstream_response_duration_seconds", "histogram",
	       "Time from the request sent to a server to its complete response head, by upstream.");
	for (size_t i = 0; i < c->nupstreams; i++) {
		uint64_t b[MOAT_HIST_BUCKETS] = { 0 }, sum = 0;

		for (unsigned w = 0; w < nw; w++)
			hist_sum(&cur->ups[i].stats[w].latency, b, &sum);
		l[0] = (struct lbl){ "upstream", c->upstreams[i].name };
		histogram(t, "moat_upstream_response_duration_seconds", l, 1, b, sum);
	}

	family(t, "moat_upstream_retries_total", "counter", "Tries of a request on another server, by upstream.");
	for (size_t i = 0; i < c->nupstreams; i++) {
		uint64_t v = 0;

		for (unsigned w = 0; w < nw; w++)
			v += MOAT_STAT_GET(cur->ups[i].stats[w].retries);
		l[0] = (struct lbl){ "upstream", c->upstreams[i].name };
		sample(t, "moat_upstream_retries_total", l, 1, v);
	}

	family(t, "moat_upstream_failures_total", "counter",
	       "Failed tries, by upstream and kind: connect (refused, unreachable, timed out) or other "
	       "(reset, timeout, bad answer).");
	for (size_t i = 0; i < c->nupstreams; i++) {
		uint64_t cf = 0, of = 0;

		for (unsigned w = 0; w < nw; w++) {
			cf += MOAT_STAT_GET(cur->ups[i].stats[w].connect_failures);
			of += MOAT_STAT_GET(cur->ups[i].stats[w].failures);
		}
		l[0] = (struct lbl){ "upstream", c->upstreams[i].name };
		l[1] = (struct lbl){ "kind", "connect" };
		sample(t, "moat_upstream_failures_total", l, 2, cf);
		l[1] = (struct lbl){ "kind", "other" };
		sample(t, "moat_upstream_failures_total", l, 2, of);
	}
}

/* The per-server families; `which` picks one. */
enum srv_metric { S_EJECTIONS, S_TRANSITIONS, S_UP, S_ACTIVE, S_REQUESTS };

static void servers(const struct moat_admin_ctx *x, struct moat_text *t, enum srv_metric which)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		[S_EJECTIONS] = { "moat_upstream_ejections_total", "counter",
				  "Passive ejections of a server (outlier detection)." },
		[S_TRANSITIONS] = { "moat_upstream_health_transitions_total", "counter",
				    "Changes of a server's health-check state, by the state it went to." },
		[S_UP] = { "moat_upstream_server_up", "gauge",
			   "1 when the server passes its health checks (or has none), else 0." },
		[S_ACTIVE] = { "moat_upstream_server_active_requests", "gauge",
			       "Requests in flight to the server, all workers." },
		[S_REQUESTS] = { "moat_upstream_server_requests_total", "counter",
				 "Tries sent to the server (a retried request counts on each server tried)." },
	};
	const struct moat_confref *cur = x->cur;
	const struct moat_conf *c = cur->conf;
	struct lbl l[4];

	family(t, fam[which].name, fam[which].type, fam[which].help);
	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream *up = &c->upstreams[i];

		unsigned char *first = firsts(server_state_of, cur->ups[i].srv, up->nservers);

		if (!first) {
			t->full = 1;
			return;
		}
		for (size_t k = 0; k < up->nservers; k++) {
			struct moat_srv_state *s = cur->ups[i].srv[k];

			if (!first[k])
				continue;
			l[0] = (struct lbl){ "upstream", up->name };
			l[1] = (struct lbl){ "server", up->servers[k].addr.text };
			switch (which) {
			case S_EJECTIONS:
				sample(t, fam[which].name, l, 2,
				       atomic_load_explicit(&s->ejections_total, memory_order_relaxed));
				break;
			case S_TRANSITIONS:
				l[2] = (struct lbl){ "to", "up" };
				sample(t, fam[which].name, l, 3,
				       atomic_load_explicit(&s->transitions_up, memory_order_relaxed));
				l[2] = (struct lbl){ "to", "down" };
				sample(t, fam[which].name, l, 3,
				       atomic_load_explicit(&s->transitions_down, memory_order_relaxed));
				break;
			case S_UP:
				sample(t, fam[which].name, l, 2,
				       atomic_load_explicit(&s->up, memory_order_relaxed) ? 1u : 0u);
				break;
			case S_ACTIVE:
				sample(t, fam[which].name, l, 2,
				       atomic_load_explicit(&s->active, memory_order_relaxed));
				break;
			case S_REQUESTS:
				sample(t, fam[which].name, l, 2,
				       atomic_load_explicit(&s->requests, memory_order_relaxed));
				break;
			}
		}
		free(first);
	}
}

static void process(const struct moat_admin_ctx *x, struct moat_text *t)
{
	const struct moat_runtime *rt = x->rt;
	uint64_t active = 0, accepted = 0, refusals[MOAT_REFUSE_COUNT] = { 0 };
	uint64_t hs = 0, hsr = 0, h2c = 0, h2s = 0;
	int64_t up = (int64_t)time(NULL) - rt->started_at;
	struct lbl l[1];

	for (unsigned i = 0; i < rt->nworkers; i++) {
		const struct moat_worker *w = &rt->workers[i];

		active += __atomic_load_n(&w->nclients, __ATOMIC_RELAXED);
		accepted += MOAT_STAT_GET(w->stats.conns_accepted);
		hs += MOAT_STAT_GET(w->stats.tls_handshakes);
		hsr += MOAT_STAT_GET(w->stats.tls_resumed);
		h2c += MOAT_STAT_GET(w->stats.h2_conns);
		h2s += MOAT_STAT_GET(w->stats.h2_streams);
		for (unsigned k = 0; k < MOAT_REFUSE_COUNT; k++)
			refusals[k] += MOAT_STAT_GET(w->stats.refusals[k]);
	}
	family(t, "moat_connections_active", "gauge", "Client connections open now.");
	sample(t, "moat_connections_active", NULL, 0, active);
	family(t, "moat_connections_accepted_total", "counter", "Client connections accepted.");
	sample(t, "moat_connections_accepted_total", NULL, 0, accepted);
	family(t, "moat_tls_handshakes_total", "counter", "TLS handshakes completed with clients.");
	sample(t, "moat_tls_handshakes_total", NULL, 0, hs);
	family(t, "moat_tls_resumed_total", "counter", "TLS handshakes that resumed a session (tickets).");
	sample(t, "moat_tls_resumed_total", NULL, 0, hsr);
	family(t, "moat_h2_connections_total", "counter", "Client connections that spoke HTTP/2.");
	sample(t, "moat_h2_connections_total", NULL, 0, h2c);
	family(t, "moat_h2_streams_total", "counter", "Requests received over HTTP/2.");
	sample(t, "moat_h2_streams_total", NULL, 0, h2s);
	family(t, "moat_refusals_total", "counter", "Answers moat gave itself instead of a backend's, by reason.");
	for (unsigned k = 0; k < MOAT_REFUSE_COUNT; k++) {
		l[0] = (struct lbl){ "reason", moat_refusal_name((enum moat_refusal)k) };
		sample(t, "moat_refusals_total", l, 1, refusals[k]);
	}
	family(t, "moat_config_generation", "gauge", "Generation of the configuration in use (1 at start).");
	sample(t, "moat_config_generation", NULL, 0, x->cur->generation);
	family(t, "moat_config_loaded_timestamp_seconds", "gauge",
	       "When the configuration in use was loaded, in Unix seconds.");
	sample(t, "moat_config_loaded_timestamp_seconds", NULL, 0,
	       x->cur->loaded_at > 0 ? (uint64_t)x->cur->loaded_at : 0);
	family(t, "moat_build_info", "gauge", "Always 1; the version is a label.");
	l[0] = (struct lbl){ "version", x->version };
	sample(t, "moat_build_info", l, 1, 1);
	family(t, "moat_uptime_seconds", "gauge", "Seconds since moat started.");
	sample(t, "moat_uptime_seconds", NULL, 0, up > 0 ? (uint64_t)up : 0);
}

void moat_metrics_render(const struct moat_admin_ctx *x, struct moat_text *t)
{
	unsigned nw = moat_srv_nworkers(x->cur->reg);
	unsigned char *rfirst = firsts(route_stats_of, x->cur->routes, x->cur->conf->nroutes);

	if (!rfirst) {
		t->full = 1;
		return;
	}
	routes(x, t, nw, rfirst);
	free(rfirst);
	upstreams(x, t, nw);
	servers(x, t, S_EJECTIONS);
	servers(x, t, S_TRANSITIONS);
	servers(x, t, S_UP);
	servers(x, t, S_ACTIVE);
	servers(x, t, S_REQUESTS);
	process(x, t);
	{
		char mod[8192];
		size_t n = moat_phase_metrics(x->rt, mod, sizeof(mod));

		moat_text_add(t, mod, n);
	}
}
