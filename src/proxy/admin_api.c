/*
 * admin_api.c - the JSON endpoints of the admin listener (see
 * docs/operations.md for every answer's shape):
 *
 *   GET  /api/health        liveness, version, pid, uptime, workers
 *   GET  /api/config        generation, when it was loaded, from which file
 *   GET  /api/listeners     traffic listeners of the current generation
 *   GET  /api/routes        routes with their counters
 *   GET  /api/upstreams     upstreams, their servers, state and counters
 *   GET  /api/connections   client and idle backend connections per worker
 *   GET  /api/stats         process-wide counters, refusals by reason
 *   POST /api/reload        reload the config file
 *   POST /api/upstreams/NAME/servers/ADDRESS/drain | undrain
 *
 * Counters are per worker and summed here, read with relaxed loads while
 * workers write them: each figure is a recent value, not a snapshot taken
 * at one instant across all of them. Runs on the admin thread; the only
 * things written are a server's admin_drain and, by reloading, a new
 * generation.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "proxy/admin_int.h"

static const char *const class_names[MOAT_STATUS_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

static const char *const algo_names[] = {
	[MOAT_LB_ROUND_ROBIN] = "round_robin", [MOAT_LB_LEAST_CONN] = "least_connections",
	[MOAT_LB_RANDOM_TWO] = "random_two",   [MOAT_LB_EWMA] = "ewma",
	[MOAT_LB_HASH] = "hash",
};

void moat_admin_error(struct moat_admin_resp *r, int status, const char *msg)
{
	struct moat_json j;

	moat_text_reset(r->body);
	r->status = status;
	r->content_type = "application/json";
	moat_json_init(&j, r->body);
	moat_json_obj(&j);
	moat_json_key(&j, "error");
	moat_json_str(&j, msg);
	moat_json_obj_end(&j);
	moat_text_add(r->body, "\n", 1);
}

const char *moat_admin_server_state(const struct moat_conf_upstream *up, const struct moat_conf_server *cs,
				    struct moat_srv_state *s, uint64_t now_ms)
{
	uint64_t since;

	if (cs->drain || atomic_load_explicit(&s->admin_drain, memory_order_relaxed))
		return "draining";
	if (!atomic_load_explicit(&s->up, memory_order_relaxed))
		return "down";
	if (atomic_load_explicit(&s->ejected_until, memory_order_relaxed) > now_ms)
		return "ejected";
	since = atomic_load_explicit(&s->back_since, memory_order_relaxed);
	if (up->slow_start_ms && since && now_ms < since + up->slow_start_ms)
		return "slow_start";
	return "up";
}

/* ---- sums over workers ---------------------------------------------------------------- */

static unsigned stat_workers(const struct moat_admin_ctx *x)
{
	return moat_srv_nworkers(x->cur->reg);
}

struct rsum {
	uint64_t cls[MOAT_STATUS_CLASSES];
	uint64_t bytes_in, bytes_out;
};

static void route_sum(const struct moat_rstats *rs, unsigned nw, struct rsum *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < nw; w++) {
		for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++)
			out->cls[k] += MOAT_STAT_GET(rs[w].requests[k]);
		out->bytes_in += MOAT_STAT_GET(rs[w].bytes_in);
		out->bytes_out += MOAT_STAT_GET(rs[w].bytes_out);
	}
}

static void put_classes(struct moat_json *j, const uint64_t cls[MOAT_STATUS_CLASSES])
{
	uint64_t total = 0;

	for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++)
		total += cls[k];
	moat_json_obj(j);
	moat_json_key(j, "total");
	moat_json_u64(j, total);
	for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++) {
		moat_json_key(j, class_names[k]);
		moat_json_u64(j, cls[k]);
	}
	moat_json_obj_end(j);
}

static void json_start(struct moat_admin_resp *r, struct moat_json *j)
{
	moat_text_reset(r->body);
	r->status = 200;
	r->content_type = "application/json";
	moat_json_init(j, r->body);
	moat_json_obj(j);
}

static void json_finish(struct moat_admin_resp *r, struct moat_json *j)
{
	moat_json_obj_end(j);
	moat_text_add(r->body, "\n", 1);
}

/* ---- GET endpoints ---------------------------------------------------------------------- */

static void get_health(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	struct moat_json j;
	int64_t up = (int64_t)time(NULL) - x->rt->started_at;

	json_start(r, &j);
	moat_json_key(&j, "status");
	moat_json_str(&j, atomic_load(&x->rt->stopping) ? "stopping" : "ok");
	moat_json_key(&j, "version");
	moat_json_str(&j, x->version);
	moat_json_key(&j, "pid");
	moat_json_i64(&j, (int64_t)getpid());
	moat_json_key(&j, "uptime_seconds");
	moat_json_i64(&j, up > 0 ? up : 0);
	moat_json_key(&j, "workers");
	moat_json_u64(&j, x->rt->nworkers);
	moat_json_key(&j, "generation");
	moat_json_u64(&j, x->cur->generation);
	json_finish(r, &j);
}

static void get_config(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_conf *c = x->cur->conf;
	struct moat_json j;
	char iso[32];

	moat_admin_iso8601(x->cur->loaded_at, iso, sizeof(iso));
	json_start(r, &j);
	moat_json_key(&j, "generation");
	moat_json_u64(&j, x->cur->generation);
	moat_json_key(&j, "loaded_at");
	moat_json_str(&j, iso);
	moat_json_key(&j, "loaded_at_unix");
	moat_json_i64(&j, x->cur->loaded_at);
	moat_json_key(&j, "file");
	moat_json_str(&j, c->file);
	moat_json_key(&j, "listeners");
	moat_json_u64(&j, c->nlisteners);
	moat_json_key(&j, "upstreams");
	moat_json_u64(&j, c->nupstreams);
	moat_json_key(&j, "routes");
	moat_json_u64(&j, c->nroutes);
	json_finish(r, &j);
}

static void get_listeners(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_conf *c = x->cur->conf;
	struct moat_json j;

	json_start(r, &j);
	moat_json_key(&j, "listeners");
	moat_json_arr(&j);
	for (size_t i = 0; i < c->nlisteners; i++) {
		moat_json_obj(&j);
		moat_json_key(&j, "address");
		moat_json_str(&j, c->listeners[i].addr.text);
		moat_json_key(&j, "backlog");
		moat_json_u64(&j, c->listeners[i].backlog);
		moat_json_obj_end(&j);
	}
	moat_json_arr_end(&j);
	json_finish(r, &j);
}

static void put_route_host(struct moat_json *j, const struct moat_conf_route *ro)
{
	if (!ro->host) {
		moat_json_null(j);
		return;
	}
	if (ro->host_wildcard) {
		/* stored as ".example.com" */
		size_t n = strlen(ro->host);
		char *w = malloc(n + 2);

		if (!w) {
			j->t->full = 1;
			return;
		}
		w[0] = '*';
		memcpy(w + 1, ro->host, n + 1);
		moat_json_str(j, w);
		free(w);
		return;
	}
	moat_json_str(j, ro->host);
}

static void get_routes(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_conf *c = x->cur->conf;
	unsigned nw = stat_workers(x);
	struct moat_json j;

	json_start(r, &j);
	moat_json_key(&j, "generation");
	moat_json_u64(&j, x->cur->generation);
	moat_json_key(&j, "routes");
	moat_json_arr(&j);
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct moat_conf_route *ro = &c->routes[i];
		struct rsum s;

		route_sum(x->cur->routes[i].stats, nw, &s);
		moat_json_obj(&j);
		moat_json_key(&j, "index");
		moat_json_u64(&j, i);
		moat_json_key(&j, "host");
		put_route_host(&j, ro);
		moat_json_key(&j, "path");
		moat_json_str(&j, ro->path_prefix ? ro->path_prefix : "/");
		moat_json_key(&j, "upstream");
		moat_json_str(&j, ro->upstream < c->nupstreams ? c->upstreams[ro->upstream].name : NULL);
		moat_json_key(&j, "label");
		moat_json_str(&j, x->cur->routes[i].label);
		moat_json_key(&j, "requests");
		put_classes(&j, s.cls);
		moat_json_key(&j, "bytes_in");
		moat_json_u64(&j, s.bytes_in);
		moat_json_key(&j, "bytes_out");
		moat_json_u64(&j, s.bytes_out);
		moat_json_obj_end(&j);
	}
	moat_json_arr_end(&j);
	json_finish(r, &j);
}

static void put_server(struct moat_json *j, const struct moat_conf_upstream *up, size_t k,
		       struct moat_srv_state *s, uint64_t now)
{
	const struct moat_conf_server *cs = &up->servers[k];

	moat_json_obj(j);
	moat_json_key(j, "address");
	moat_json_str(j, cs->addr.text);
	moat_json_key(j, "weight");
	moat_json_u64(j, cs->weight);
	moat_json_key(j, "backup");
	moat_json_bool(j, cs->backup);
	moat_json_key(j, "state");
	moat_json_str(j, moat_admin_server_state(up, cs, s, now));
	moat_json_key(j, "healthy");
	moat_json_bool(j, atomic_load_explicit(&s->up, memory_order_relaxed) != 0);
	moat_json_key(j, "drain");
	moat_json_bool(j, cs->drain);
	moat_json_key(j, "admin_drain");
	moat_json_bool(j, atomic_load_explicit(&s->admin_drain, memory_order_relaxed) != 0);
	moat_json_key(j, "active");
	moat_json_u64(j, atomic_load_explicit(&s->active, memory_order_relaxed));
	moat_json_key(j, "requests");
	moat_json_u64(j, atomic_load_explicit(&s->requests, memory_order_relaxed));
	moat_json_key(j, "failures");
	moat_json_u64(j, atomic_load_explicit(&s->fails_total, memory_order_relaxed));
	moat_json_key(j, "ejections");
	moat_json_u64(j, atomic_load_explicit(&s->ejections_total, memory_order_relaxed));
	moat_json_key(j, "latency_ms");
	moat_json_milli(j, atomic_load_explicit(&s->ewma_us, memory_order_relaxed));
	moat_json_obj_end(j);
}

static void get_upstreams(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_conf *c = x->cur->conf;
	unsigned nw = stat_workers(x);
	uint64_t now = moat_clock_ms();
	struct moat_json j;

	json_start(r, &j);
	moat_json_key(&j, "generation");
	moat_json_u64(&j, x->cur->generation);
	moat_json_key(&j, "upstreams");
	moat_json_arr(&j);
	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream *up = &c->upstreams[i];
		const struct moat_upstream_rt *u = &x->cur->ups[i];
		uint64_t cls[MOAT_STATUS_CLASSES] = { 0 }, retries = 0, cf = 0, of = 0, ej = 0;

		for (unsigned w = 0; w < nw; w++) {
			for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++)
				cls[k] += MOAT_STAT_GET(u->stats[w].requests[k]);
			retries += MOAT_STAT_GET(u->stats[w].retries);
			cf += MOAT_STAT_GET(u->stats[w].connect_failures);
			of += MOAT_STAT_GET(u->stats[w].failures);
			ej += MOAT_STAT_GET(u->stats[w].ejections);
		}
		moat_json_obj(&j);
		moat_json_key(&j, "name");
		moat_json_str(&j, up->name);
		moat_json_key(&j, "algorithm");
		moat_json_str(&j, (unsigned)up->algorithm < sizeof(algo_names) / sizeof(algo_names[0]) ?
					  algo_names[up->algorithm] : "round_robin");
		moat_json_key(&j, "active");
		moat_json_u64(&j, atomic_load_explicit(u->group_active, memory_order_relaxed));
		moat_json_key(&j, "pending");
		moat_json_u64(&j, atomic_load_explicit(u->group_pending, memory_order_relaxed));
		moat_json_key(&j, "requests");
		put_classes(&j, cls);
		moat_json_key(&j, "retries");
		moat_json_u64(&j, retries);
		moat_json_key(&j, "failures");
		moat_json_obj(&j);
		moat_json_key(&j, "connect");
		moat_json_u64(&j, cf);
		moat_json_key(&j, "other");
		moat_json_u64(&j, of);
		moat_json_obj_end(&j);
		moat_json_key(&j, "ejections");
		moat_json_u64(&j, ej);
		moat_json_key(&j, "servers");
		moat_json_arr(&j);
		for (size_t k = 0; k < up->nservers; k++)
			put_server(&j, up, k, u->srv[k], now);
		moat_json_arr_end(&j);
		moat_json_obj_end(&j);
	}
	moat_json_arr_end(&j);
	json_finish(r, &j);
}

static unsigned nclients_of(const struct moat_worker *w)
{
	/* a plain counter of the worker's: read racily, as a gauge */
	return __atomic_load_n(&w->nclients, __ATOMIC_RELAXED);
}

static void get_connections(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_runtime *rt = x->rt;
	uint64_t clients = 0, idle = 0, accepted = 0, closed = 0;
	struct moat_json j;

	json_start(r, &j);
	moat_json_key(&j, "workers");
	moat_json_arr(&j);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		const struct moat_worker *w = &rt->workers[i];
		unsigned nc = nclients_of(w);
		uint64_t ni = MOAT_STAT_GET(w->bconns_idle);

		clients += nc;
		idle += ni;
		accepted += MOAT_STAT_GET(w->stats.conns_accepted);
		closed += MOAT_STAT_GET(w->stats.conns_closed);
		moat_json_obj(&j);
		moat_json_key(&j, "worker");
		moat_json_u64(&j, i);
		moat_json_key(&j, "clients");
		moat_json_u64(&j, nc);
		moat_json_key(&j, "idle_backend");
		moat_json_u64(&j, ni);
		moat_json_obj_end(&j);
	}
	moat_json_arr_end(&j);
	moat_json_key(&j, "clients");
	moat_json_u64(&j, clients);
	moat_json_key(&j, "idle_backend");
	moat_json_u64(&j, idle);
	moat_json_key(&j, "accepted");
	moat_json_u64(&j, accepted);
	moat_json_key(&j, "closed");
	moat_json_u64(&j, closed);
	json_finish(r, &j);
}

static int ptr_cmp(const void *a, const void *b)
{
	const void *x = *(const void *const *)a, *y = *(const void *const *)b;

	return x < y ? -1 : x > y;
}

static void get_stats(const struct moat_admin_ctx *x, struct moat_admin_resp *r)
{
	const struct moat_runtime *rt = x->rt;
	const struct moat_conf *c = x->cur->conf;
	uint64_t requests = 0, bin = 0, bout = 0, acc = 0, clo = 0, act = 0, lcount = 0, lsum = 0;
	uint64_t refusals[MOAT_REFUSE_COUNT] = { 0 }, cls[MOAT_STATUS_CLASSES] = { 0 };
	unsigned nw = stat_workers(x);
	const struct moat_rstats **seen;
	size_t nseen = 0;
	struct moat_json j;

	for (unsigned i = 0; i < rt->nworkers; i++) {
		const struct moat_wstats *s = &rt->workers[i].stats;

		requests += MOAT_STAT_GET(s->requests);
		bin += MOAT_STAT_GET(s->bytes_in);
		bout += MOAT_STAT_GET(s->bytes_out);
		acc += MOAT_STAT_GET(s->conns_accepted);
		clo += MOAT_STAT_GET(s->conns_closed);
		act += nclients_of(&rt->workers[i]);
		for (unsigned k = 0; k < MOAT_HIST_BUCKETS; k++)
			lcount += MOAT_STAT_GET(s->latency.bucket[k]);
		lsum += MOAT_STAT_GET(s->latency.sum_us);
		for (unsigned k = 0; k < MOAT_REFUSE_COUNT; k++)
			refusals[k] += MOAT_STAT_GET(s->refusals[k]);
	}
	/* status classes: over the routes of this generation, each counter set once */
	seen = calloc(c->nroutes ? c->nroutes : 1, sizeof(*seen));
	if (!seen) {
		moat_admin_error(r, 500, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->nroutes; i++)
		seen[nseen++] = x->cur->routes[i].stats;
	qsort(seen, nseen, sizeof(*seen), ptr_cmp);
	for (size_t i = 0; i < nseen; i++) {
		struct rsum s;

		if (i > 0 && seen[i] == seen[i - 1])
			continue;
		route_sum(seen[i], nw, &s);
		for (unsigned k = 0; k < MOAT_STATUS_CLASSES; k++)
			cls[k] += s.cls[k];
	}
	free(seen);

	json_start(r, &j);
	moat_json_key(&j, "requests");
	moat_json_u64(&j, requests);
	moat_json_key(&j, "routed");
	put_classes(&j, cls);
	moat_json_key(&j, "bytes_in");
	moat_json_u64(&j, bin);
	moat_json_key(&j, "bytes_out");
	moat_json_u64(&j, bout);
	moat_json_key(&j, "connections");
	moat_json_obj(&j);
	moat_json_key(&j, "active");
	moat_json_u64(&j, act);
	moat_json_key(&j, "accepted");
	moat_json_u64(&j, acc);
	moat_json_key(&j, "closed");
	moat_json_u64(&j, clo);
	moat_json_obj_end(&j);
	moat_json_key(&j, "refusals");
	moat_json_obj(&j);
	for (unsigned k = 0; k < MOAT_REFUSE_COUNT; k++) {
		moat_json_key(&j, moat_refusal_name((enum moat_refusal)k));
		moat_json_u64(&j, refusals[k]);
	}
	moat_json_obj_end(&j);
	moat_json_key(&j, "latency");
	moat_json_obj(&j);
	moat_json_key(&j, "count");
	moat_json_u64(&j, lcount);
	moat_json_key(&j, "sum_ms");
	moat_json_milli(&j, lsum);
	moat_json_obj_end(&j);
	json_finish(r, &j);
}

/* ---- POST endpoints ------------------------------------------------------------------------ */

static void post_reload(const struct moat_admin_ctx *x, const struct moat_admin_req *q, struct moat_admin_resp *r)
{
	struct moat_json j;
	char *why = NULL;
	int64_t gen;

	if (!x->rt->path) {
		MOAT_INFO("admin: %s: reload refused: started without a config file", q->peer);
		moat_admin_error(r, 409, "started without a config file (one-line mode): nothing to reload");
		return;
	}
	MOAT_INFO("admin: %s: reload requested", q->peer);
	gen = moat_runtime_reload_file(x->rt, &why);
	if (gen > 0) {
		MOAT_INFO("admin: %s: reload done (generation %lld)", q->peer, (long long)gen);
		json_start(r, &j);
		moat_json_key(&j, "generation");
		moat_json_i64(&j, gen);
		json_finish(r, &j);
	} else if (why) {
		size_t n = strlen(why);

		while (n > 0 && why[n - 1] == '\n')
			why[--n] = '\0';
		MOAT_INFO("admin: %s: reload refused", q->peer);
		moat_admin_error(r, 422, why);
	} else {
		MOAT_INFO("admin: %s: reload failed: out of memory", q->peer);
		moat_admin_error(r, 500, "reload failed: out of memory");
	}
	free(why);
}

/* /api/upstreams/NAME/servers/ADDRESS/drain, with `rest` after "/api/upstreams/". */
static void post_drain(const struct moat_admin_ctx *x, const struct moat_admin_req *q, struct moat_admin_resp *r,
		       const char *rest, size_t len)
{
	const struct moat_conf *c = x->cur->conf;
	const char *seg[4];
	size_t seglen[4], nseg = 0, i;
	char name[256], addr[256], msg[600];
	const struct moat_conf_upstream *up = NULL;
	struct moat_srv_state *s = NULL;
	struct moat_json j;
	int drain;

	for (const char *p = rest, *end = rest + len;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));

		if (nseg == 4) {
			nseg++; /* more segments than the pattern has */
			break;
		}
		seg[nseg] = p;
		seglen[nseg++] = slash ? (size_t)(slash - p) : (size_t)(end - p);
		if (!slash)
			break;
		p = slash + 1;
	}
	if (nseg != 4 || seglen[0] == 0 || seglen[2] == 0 || seglen[1] != 7 || memcmp(seg[1], "servers", 7) != 0 ||
	    !((seglen[3] == 5 && memcmp(seg[3], "drain", 5) == 0) ||
	      (seglen[3] == 7 && memcmp(seg[3], "undrain", 7) == 0))) {
		moat_admin_error(r, 404, "not found");
		return;
	}
	if (q->method_len != 4 || memcmp(q->method, "POST", 4) != 0) {
		r->allow = "POST";
		moat_admin_error(r, 405, "method not allowed: use POST");
		return;
	}
	drain = seglen[3] == 5;
	if (moat_admin_unescape(seg[0], seglen[0], name, sizeof(name)) < 0 ||
	    moat_admin_unescape(seg[2], seglen[2], addr, sizeof(addr)) < 0) {
		moat_admin_error(r, 400, "bad percent-encoding in the path");
		return;
	}
	for (i = 0; i < c->nupstreams && !up; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			up = &c->upstreams[i];
	if (!up) {
		snprintf(msg, sizeof(msg), "no upstream named \"%.200s\"", name);
		moat_admin_error(r, 404, msg);
		return;
	}
	i = (size_t)(up - c->upstreams);
	for (size_t k = 0; k < up->nservers && !s; k++) {
		if (up->servers[k].addr.text && strcmp(up->servers[k].addr.text, addr) == 0) {
			s = x->cur->ups[i].srv[k];
			atomic_store(&s->admin_drain, drain);
			MOAT_INFO("admin: %s: upstream %s: server %s %s", q->peer, up->name, addr,
				  drain ? "drained (no new requests)" : "undrained");
			json_start(r, &j);
			moat_json_key(&j, "upstream");
			moat_json_str(&j, up->name);
			moat_json_key(&j, "server");
			moat_json_str(&j, up->servers[k].addr.text);
			moat_json_key(&j, "admin_drain");
			moat_json_bool(&j, drain);
			moat_json_key(&j, "state");
			moat_json_str(&j, moat_admin_server_state(up, &up->servers[k], s, moat_clock_ms()));
			moat_json_key(&j, "active");
			moat_json_u64(&j, atomic_load_explicit(&s->active, memory_order_relaxed));
			json_finish(r, &j);
		}
	}
	if (!s) {
		snprintf(msg, sizeof(msg), "upstream \"%.200s\" has no server \"%.200s\"", up->name, addr);
		moat_admin_error(r, 404, msg);
	}
}

/* ---- modules' endpoints (/api/<module>, e.g. /api/bans) ------------------------------------------ */

static int module_api(const struct moat_admin_ctx *x, const struct moat_admin_req *q, struct moat_admin_resp *r)
{
	char path[512], method[16];
	struct moat_buf out;
	int status;

	if (q->path_len >= sizeof(path) || q->method_len >= sizeof(method))
		return 0;
	memcpy(path, q->path, q->path_len);
	path[q->path_len] = '\0';
	memcpy(method, q->method, q->method_len);
	method[q->method_len] = '\0';
	moat_buf_init(&out, NULL, 4u << 20);
	status = moat_phase_admin(x->rt, method, path, q->body, q->body_len, &out);
	if (status < 0) {
		moat_buf_release(&out);
		return 0;
	}
	if (status != 200 && moat_buf_len(&out) == 0) {
		moat_admin_error(r, status, status == 404 ? "not found" : "refused");
	} else {
		moat_text_reset(r->body);
		r->status = status;
		r->content_type = "application/json";
		moat_text_add(r->body, moat_buf_head(&out), moat_buf_len(&out));
		if (status == 200 && strcmp(method, "GET") != 0)
			MOAT_INFO("admin: %s: %s %s", q->peer, method, path);
	}
	moat_buf_release(&out);
	return 1;
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

struct get_ep {
	const char *name;
	void (*fn)(const struct moat_admin_ctx *x, struct moat_admin_resp *r);
};

static const struct get_ep get_eps[] = {
	{ "health", get_health },       { "config", get_config },     { "listeners", get_listeners },
	{ "routes", get_routes },       { "upstreams", get_upstreams }, { "connections", get_connections },
	{ "stats", get_stats },
};

static int method_is(const struct moat_admin_req *q, const char *m)
{
	size_t n = strlen(m);

	return q->method_len == n && memcmp(q->method, m, n) == 0;
}

void moat_admin_api(const struct moat_admin_ctx *x, const struct moat_admin_req *q, struct moat_admin_resp *r)
{
	const char *p;
	size_t n;

	if (q->path_len < 5 || memcmp(q->path, "/api/", 5) != 0) {
		moat_admin_error(r, 404, "not found");
		return;
	}
	p = q->path + 5;
	n = q->path_len - 5;
	for (size_t i = 0; i < sizeof(get_eps) / sizeof(get_eps[0]); i++) {
		if (strlen(get_eps[i].name) != n || memcmp(get_eps[i].name, p, n) != 0)
			continue;
		if (!method_is(q, "GET") && !method_is(q, "HEAD")) {
			r->allow = "GET, HEAD";
			moat_admin_error(r, 405, "method not allowed: use GET");
			return;
		}
		get_eps[i].fn(x, r);
		return;
	}
	if (n == 6 && memcmp(p, "reload", 6) == 0) {
		if (!method_is(q, "POST")) {
			r->allow = "POST";
			moat_admin_error(r, 405, "method not allowed: use POST");
			return;
		}
		post_reload(x, q, r);
		return;
	}
	if (n > 10 && memcmp(p, "upstreams/", 10) == 0) {
		post_drain(x, q, r, p + 10, n - 10);
		return;
	}
	if (module_api(x, q, r))
		return;
	moat_admin_error(r, 404, "not found");
}
