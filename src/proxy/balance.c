/*
 * balance.c - choosing a server for each try of a txn, and what the try's
 * outcome does to that server (passive health), on top of the pure
 * algorithms of src/upstream/lb*.c.
 *
 * Eligibility, in passes: primaries that are up (active checks), not
 * ejected (passive), not draining, below their max_connections and not
 * yet tried by this txn; else the backups likewise; else (everything
 * ejected) the servers that are up, ejection ignored, rather than refusing
 * traffic that might be served. A server marked down by health checks or
 * draining is never chosen. Effective weights ramp after a server comes
 * back when slow_start is set.
 *
 * Counters live in the shared server state (state.h): requests in flight
 * per server and per group, retries in flight per group (the retry
 * budget), consecutive failures and ejections.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include "core/sock.h"
#include "proxy/proxy.h"

#define WEIGHT_SCALE 16u            /* room for slow-start fractions */
#define CONNECT_EJECT_BASE_MS 1000u /* first ejection after a refused connect */
#define EWMA_TAU_MS 10000u

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static uint64_t sticky_secret;
static pthread_once_t sticky_once = PTHREAD_ONCE_INIT;

static void sticky_init(void)
{
	if (getrandom(&sticky_secret, sizeof(sticky_secret), 0) != (ssize_t)sizeof(sticky_secret))
		sticky_secret = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
}

/* A secret drawn once per process (so sticky cookies re-balance after a
 * restart, not after a reload). */
static uint64_t sticky_key(void)
{
	pthread_once(&sticky_once, sticky_init);
	return sticky_secret;
}

int moat_wup_init(struct moat_wup *wu, const struct moat_conf_upstream *up)
{
	size_t n = up->nservers;
	unsigned *w = calloc(n ? n : 1, sizeof(*w));
	uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));

	memset(wu, 0, sizeof(*wu));
	wu->n = n;
	wu->ops = moat_lb_get((int)up->algorithm);
	wu->weight = calloc(n ? n : 1, sizeof(*wu->weight));
	wu->active = calloc(n ? n : 1, sizeof(*wu->active));
	wu->latency = calloc(n ? n : 1, sizeof(*wu->latency));
	wu->sticky_id = calloc(n ? n : 1, sizeof(*wu->sticky_id));
	if (!w || !ids || !wu->weight || !wu->active || !wu->latency || !wu->sticky_id) {
		free(w);
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = up->servers[i].addr.text;
		char keyed[300];
		int kl = snprintf(keyed, sizeof(keyed), "%016llx%s", (unsigned long long)sticky_key(), a);

		w[i] = (up->servers[i].weight ? up->servers[i].weight : 1) * WEIGHT_SCALE;
		ids[i] = moat_lb_hash_bytes(a, strlen(a));
		/* The cookie's id is keyed with a per-process secret: it cannot
		 * be computed back from the address. */
		wu->sticky_id[i] = moat_lb_hash_bytes(keyed, kl > 0 ? (size_t)kl : 0) & 0xffffffffffffull;
	}
	/* Servers are known to the algorithms by their address as written,
	 * so a reload that adds or removes one moves only its share. */
	wu->lb = wu->ops->create(w, ids, n);
	free(ids);
	free(w);
	wu->rand = (uint64_t)(uintptr_t)wu ^ 0x9e3779b97f4a7c15ull;
	return wu->lb ? 0 : -ENOMEM;
}

void moat_wup_free(struct moat_wup *wu)
{
	if (wu->lb)
		wu->ops->destroy(wu->lb);
	free(wu->weight);
	free(wu->active);
	free(wu->latency);
	free(wu->sticky_id);
	memset(wu, 0, sizeof(*wu));
}

static struct moat_upstream_rt *rt_of(const struct moat_txn *t)
{
	return &t->wc->ref->ups[t->up_idx];
}

static unsigned effective_weight(const struct moat_conf_upstream *up, const struct moat_conf_server *cs,
				 struct moat_srv_state *s, uint64_t now)
{
	unsigned w = (cs->weight ? cs->weight : 1) * WEIGHT_SCALE;
	uint64_t since;

	if (!up->slow_start_ms)
		return w;
	since = atomic_load_explicit(&s->back_since, memory_order_relaxed);
	if (since == 0 || now >= since + up->slow_start_ms)
		return w;
	if (now <= since)
		return 1;
	{
		uint64_t e = (uint64_t)w * (now - since) / up->slow_start_ms;

		return e ? (unsigned)e : 1u;
	}
}

/* Fills wu->weight for one pass; returns how many are eligible, and sets
 * *busy when a candidate was left out only for its connection limit. */
static size_t fill(struct moat_wup *wu, struct moat_txn *t, uint64_t now, int pass, int *busy)
{
	const struct moat_conf_upstream *up = t->up;
	struct moat_upstream_rt *u = rt_of(t);
	size_t any = 0;

	for (size_t i = 0; i < wu->n; i++) {
		const struct moat_conf_server *cs = &up->servers[i];
		struct moat_srv_state *s = u->srv[i];
		unsigned act = atomic_load_explicit(&s->active, memory_order_relaxed);
		int ok;

		wu->active[i] = act;
		wu->latency[i] = atomic_load_explicit(&s->ewma_us, memory_order_relaxed);
		wu->weight[i] = 0;
		if (pass == 1 ? !cs->backup : (pass == 0 ? cs->backup : 0))
			continue;
		ok = !cs->drain && atomic_load_explicit(&s->up, memory_order_relaxed) &&
		     !atomic_load_explicit(&s->admin_drain, memory_order_relaxed);
		if (ok && pass != 2 && atomic_load_explicit(&s->ejected_until, memory_order_relaxed) > now)
			ok = 0;
		if (ok && i < 64 && (t->tried & (1ull << i)))
			ok = 0;
		if (ok && cs->max_connections && act >= cs->max_connections) {
			*busy = 1;
			ok = 0;
		}
		if (!ok)
			continue;
		wu->weight[i] = effective_weight(up, cs, s, now);
		any++;
	}
	return any;
}

int moat_balance_pick(struct moat_worker *w, struct moat_txn *t)
{
	struct moat_wup *wu = &t->wc->wup[t->up_idx];
	struct moat_upstream_rt *u = rt_of(t);
	const struct moat_conf_upstream *up = t->up;
	uint64_t now = w->loop.now_ms;
	struct moat_lb_input in;
	int busy = 0;
	size_t idx, any = 0;

	if (up->max_connections &&
	    atomic_load_explicit(u->group_active, memory_order_relaxed) >= up->max_connections)
		return MOAT_PICK_BUSY;
	/* A retry goes to a server this txn has not tried: none left, no
	 * retry (hammering one slow server twice helps nobody). */
	for (int pass = 0; pass < 3 && !any; pass++)
		any = fill(wu, t, now, pass, &busy);
	if (!any)
		return busy ? MOAT_PICK_BUSY : MOAT_PICK_NONE;
	if (t->sticky_idx >= 0 && (size_t)t->sticky_idx < wu->n && wu->weight[t->sticky_idx]) {
		idx = (size_t)t->sticky_idx;
	} else {
		in.n = wu->n;
		in.weight = wu->weight;
		in.active = wu->active;
		in.latency_us = wu->latency;
		in.hash = t->hash;
		in.rand = xorshift(&wu->rand);
		idx = wu->ops->pick(wu->lb, &in);
		if (idx >= wu->n)
			return MOAT_PICK_NONE;
	}
	t->set_sticky = up->sticky_cookie && (int)idx != t->sticky_idx;
	t->server_idx = idx;
	if (idx < 64)
		t->tried |= 1ull << idx;
	t->srv = u->srv[idx];
	atomic_fetch_add_explicit(&t->srv->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->srv->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(u->group_active, 1, memory_order_relaxed);
	return (int)idx;
}

void moat_balance_release(struct moat_txn *t)
{
	if (!t->srv)
		return;
	atomic_fetch_sub_explicit(&t->srv->active, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(rt_of(t)->group_active, 1, memory_order_relaxed);
	t->srv = NULL;
}

void moat_balance_txn_end(struct moat_txn *t)
{
	moat_balance_release(t);
	if (t->retry_counted) {
		atomic_fetch_sub_explicit(rt_of(t)->group_retries, 1, memory_order_relaxed);
		t->retry_counted = 0;
	}
	if (t->pending_counted) {
		atomic_fetch_sub_explicit(rt_of(t)->group_pending, 1, memory_order_relaxed);
		t->pending_counted = 0;
	}
}

static size_t ejected_count(struct moat_upstream_rt *u, size_t n, uint64_t now)
{
	size_t e = 0;

	for (size_t i = 0; i < n; i++)
		if (atomic_load_explicit(&u->srv[i]->ejected_until, memory_order_relaxed) > now)
			e++;
	return e;
}

void moat_balance_outcome(struct moat_worker *w, struct moat_txn *t, int ok, int connect_fail)
{
	const struct moat_conf_upstream *up = t->up;
	struct moat_srv_state *s = t->srv;
	struct moat_upstream_rt *u = rt_of(t);
	uint64_t now = w->loop.now_ms;
	unsigned f, threshold;

	if (!s)
		return;
	if (ok) {
		if (atomic_load_explicit(&s->failures, memory_order_relaxed))
			atomic_store_explicit(&s->failures, 0, memory_order_relaxed);
		if (atomic_load_explicit(&s->ejections, memory_order_relaxed) &&
		    atomic_load_explicit(&s->ejected_until, memory_order_relaxed) <= now)
			atomic_store_explicit(&s->ejections, 0, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&s->fails_total, 1, memory_order_relaxed);
	if (connect_fail)
		MOAT_STAT_INC(u->stats[w->id].connect_failures);
	else
		MOAT_STAT_INC(u->stats[w->id].failures);
	f = atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed) + 1;
	threshold = connect_fail ? 1u : up->outlier.consecutive_failures;
	if (!threshold || f < threshold || up->nservers < 2)
		return;
	if (atomic_load_explicit(&s->ejected_until, memory_order_relaxed) > now)
		return;
	if (ejected_count(u, up->nservers, now) + 1 > up->nservers * up->outlier.max_ejected_percent / 100)
		return;
	{
		unsigned k = atomic_fetch_add_explicit(&s->ejections, 1, memory_order_relaxed);
		uint64_t base = connect_fail && up->outlier.base_ejection_ms > CONNECT_EJECT_BASE_MS ?
				CONNECT_EJECT_BASE_MS : up->outlier.base_ejection_ms;
		uint64_t dur = base << (k < 20 ? k : 20);

		if (dur > up->outlier.max_ejection_ms)
			dur = up->outlier.max_ejection_ms;
		if (dur == 0)
			dur = 1;
		atomic_store_explicit(&s->ejected_until, now + dur, memory_order_relaxed);
		atomic_store_explicit(&s->back_since, now + dur, memory_order_relaxed);
		atomic_store_explicit(&s->failures, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->ejections_total, 1, memory_order_relaxed);
		MOAT_STAT_INC(u->stats[w->id].ejections);
		MOAT_WARN("upstream %s: server %s ejected for %llu ms (%s)", up->name,
			  up->servers[t->server_idx].addr.text, (unsigned long long)dur,
			  connect_fail ? "connection failed" : "consecutive failures");
	}
}

void moat_balance_latency(struct moat_worker *w, struct moat_txn *t, uint64_t us)
{
	struct moat_srv_state *s = t->srv;
	uint64_t now = w->loop.now_ms, old, stamp, nv;

	if (!s)
		return;
	old = atomic_load_explicit(&s->ewma_us, memory_order_relaxed);
	stamp = atomic_load_explicit(&s->ewma_stamp, memory_order_relaxed);
	nv = moat_lb_ewma_update(old, us ? us : 1, now > stamp ? now - stamp : 0, EWMA_TAU_MS);
	/* A lost race only drops one sample. */
	atomic_compare_exchange_strong_explicit(&s->ewma_us, &old, nv, memory_order_relaxed,
						memory_order_relaxed);
	atomic_store_explicit(&s->ewma_stamp, now, memory_order_relaxed);
}

/* The value of cookie `name` in the request's Cookie fields. */
static int cookie_value(const struct moat_h1_head *h, const char *name, const char **v, size_t *vl)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < h->nheaders; i++) {
		const char *p, *end;

		if (!moat_h1_name_is(&h->headers[i], "cookie", 6))
			continue;
		p = h->headers[i].value;
		end = p + h->headers[i].value_len;
		while (p < end) {
			const char *k, *e;

			while (p < end && (*p == ' ' || *p == ';'))
				p++;
			k = p;
			while (p < end && *p != ';')
				p++;
			e = memchr(k, '=', (size_t)(p - k));
			if (e && (size_t)(e - k) == nl && memcmp(k, name, nl) == 0) {
				*v = e + 1;
				*vl = (size_t)(p - e - 1);
				return 1;
			}
		}
	}
	return 0;
}

void moat_balance_prepare(struct moat_worker *w, struct moat_txn *t, const struct moat_h1_head *h,
			  const struct sockaddr *peer, const char *target, size_t target_len)
{
	const struct moat_conf_upstream *up = t->up;
	struct moat_wup *wu = &t->wc->wup[t->up_idx];
	const char *v = NULL;
	size_t vl = 0;

	(void)w;
	t->sticky_idx = -1;
	t->hash = 0;
	if (up->algorithm == MOAT_LB_HASH) {
		int found = 0;

		switch (up->hash_key) {
		case MOAT_HASH_HEADER:
			for (size_t i = 0; i < h->nheaders && up->hash_name; i++)
				if (moat_h1_name_is(&h->headers[i], up->hash_name, strlen(up->hash_name))) {
					v = h->headers[i].value;
					vl = h->headers[i].value_len;
					found = 1;
					break;
				}
			break;
		case MOAT_HASH_COOKIE:
			found = up->hash_name && cookie_value(h, up->hash_name, &v, &vl);
			break;
		case MOAT_HASH_URI:
			v = target;
			vl = target_len;
			found = 1;
			break;
		case MOAT_HASH_CLIENT_IP:
			break;
		}
		if (!found) {
			/* The client's address: IPv4 or IPv6 bytes. */
			if (peer->sa_family == AF_INET) {
				v = (const char *)&((const struct sockaddr_in *)(const void *)peer)->sin_addr;
				vl = 4;
			} else if (peer->sa_family == AF_INET6) {
				v = (const char *)&((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
				vl = 16;
			}
		}
		t->hash = v ? moat_lb_hash_bytes(v, vl) : 0;
	}
	if (up->sticky_cookie && cookie_value(h, up->sticky_cookie, &v, &vl) && vl && vl <= 16) {
		uint64_t id = 0;
		size_t i;

		for (i = 0; i < vl; i++) {
			char ch = v[i];
			unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') :
				     ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) : 16u;

			if (d == 16)
				break;
			id = id << 4 | d;
		}
		for (size_t j = 0; i == vl && j < wu->n; j++)
			if (wu->sticky_id[j] == id) {
				t->sticky_idx = (int)j;
				break;
			}
	}
	t->idempotent = (h->method_len == 3 && (memcmp(h->method, "GET", 3) == 0 ||
						memcmp(h->method, "PUT", 3) == 0)) ||
			(h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0) ||
			(h->method_len == 5 && memcmp(h->method, "TRACE", 5) == 0) ||
			(h->method_len == 6 && memcmp(h->method, "DELETE", 6) == 0) ||
			(h->method_len == 7 && memcmp(h->method, "OPTIONS", 7) == 0);
	t->deadline_ms = up->retry.timeout_ms ? w->loop.now_ms + up->retry.timeout_ms : 0;
}

int moat_balance_may_retry(struct moat_worker *w, struct moat_txn *t, int connect_fail)
{
	const struct moat_conf_upstream *up = t->up;
	struct moat_upstream_rt *u = rt_of(t);
	unsigned active, retries, allowed;

	if (t->resp_started || t->got_byte || t->replay_lost)
		return 0;
	if (t->deadline_ms && w->loop.now_ms >= t->deadline_ms)
		return 0;
	if (t->stale_retry) {
		/* A reused pooled connection found closed: the request never
		 * reached a live backend; one retry is always due. */
		t->stale_retry = 0;
		return 1;
	}
	if (!connect_fail && !t->idempotent)
		return 0;
	if (t->retries >= up->retry.attempts)
		return 0;
	active = atomic_load_explicit(u->group_active, memory_order_relaxed);
	retries = atomic_load_explicit(u->group_retries, memory_order_relaxed);
	allowed = active * up->retry.budget_percent / 100;
	if (allowed < up->retry.budget_min)
		allowed = up->retry.budget_min;
	if (retries >= allowed) {
		MOAT_DEBUG("upstream %s: retry budget spent (%u retries, %u in flight)", up->name, retries,
			   active);
		return 0;
	}
	t->retries++;
	MOAT_STAT_INC(u->stats[w->id].retries);
	if (!t->retry_counted) {
		atomic_fetch_add_explicit(u->group_retries, 1, memory_order_relaxed);
		t->retry_counted = 1;
	}
	return 1;
}
