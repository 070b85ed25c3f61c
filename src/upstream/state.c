/*
 * state.c - shared run-time state of backend servers, found again across
 * reloads by identity (see state.h).
 */
#include "upstream/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Group counters are shared by every generation's binding of the same
 * upstream name, so in-flight counts stay right across a reload. */
struct group {
	char *name;
	atomic_uint active;
	atomic_uint retries;
	atomic_uint pending;
	struct moat_ustats *stats;
	unsigned refs;
	struct group *next;
};

/* Route counters, kept by label while any generation has the route and
 * for good after (a reload that brings a route back finds its counts). */
struct rlabel {
	char *label;
	struct moat_rstats *stats;
	struct rlabel *next;
};

struct entry {
	struct moat_srv_state *s;
	struct entry *next;
};

struct moat_srv_registry {
	pthread_mutex_t lock;
	unsigned nworkers;
	struct entry *entries;
	struct group *groups;
	struct rlabel *routes;
};

struct moat_srv_registry *moat_srv_registry_new(unsigned nworkers)
{
	struct moat_srv_registry *r = calloc(1, sizeof(*r));

	if (r) {
		pthread_mutex_init(&r->lock, NULL);
		r->nworkers = nworkers ? nworkers : 1;
	}
	return r;
}

unsigned moat_srv_nworkers(const struct moat_srv_registry *r)
{
	return r->nworkers;
}

void moat_srv_registry_free(struct moat_srv_registry *r)
{
	if (!r)
		return;
	while (r->entries) {
		struct entry *e = r->entries;

		r->entries = e->next;
		free(e->s->key);
		free(e->s);
		free(e);
	}
	while (r->groups) {
		struct group *g = r->groups;

		r->groups = g->next;
		free(g->name);
		free(g->stats);
		free(g);
	}
	while (r->routes) {
		struct rlabel *l = r->routes;

		r->routes = l->next;
		free(l->label);
		free(l->stats);
		free(l);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static struct moat_srv_state *find_or_add(struct moat_srv_registry *r, const char *key,
					  const struct moat_conf_server *cs)
{
	struct entry *e;
	struct moat_srv_state *s;

	for (e = r->entries; e; e = e->next)
		if (strcmp(e->s->key, key) == 0) {
			atomic_fetch_add(&e->s->refs, 1);
			return e->s;
		}
	s = calloc(1, sizeof(*s));
	e = calloc(1, sizeof(*e));
	if (!s || !e || !(s->key = strdup(key))) {
		free(s);
		free(e);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	atomic_init(&s->up, 1);
	atomic_init(&s->back_since, 0);
	memcpy(&s->addr, &cs->addr.ss, cs->addr.len);
	s->addrlen = cs->addr.len;
	e->s = s;
	e->next = r->entries;
	r->entries = e;
	return s;
}

static struct group *group_get(struct moat_srv_registry *r, const char *name)
{
	struct group *g;

	for (g = r->groups; g; g = g->next)
		if (strcmp(g->name, name) == 0) {
			g->refs++;
			return g;
		}
	g = calloc(1, sizeof(*g));
	if (!g || !(g->name = strdup(name)) || !(g->stats = calloc(r->nworkers, sizeof(*g->stats)))) {
		if (g)
			free(g->name);
		free(g);
		return NULL;
	}
	g->refs = 1;
	g->next = r->groups;
	r->groups = g;
	return g;
}

static void group_put(struct moat_srv_registry *r, atomic_uint *active)
{
	for (struct group **pp = &r->groups; *pp; pp = &(*pp)->next) {
		struct group *g = *pp;

		if (&g->active != active)
			continue;
		if (--g->refs == 0) {
			*pp = g->next;
			free(g->name);
			free(g->stats);
			free(g);
		}
		return;
	}
}

static void state_put(struct moat_srv_registry *r, struct moat_srv_state *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (struct entry **pp = &r->entries; *pp; pp = &(*pp)->next) {
		if ((*pp)->s == s) {
			struct entry *e = *pp;

			*pp = e->next;
			free(e);
			break;
		}
	}
	free(s->key);
	free(s);
}

static struct moat_rstats *route_stats(struct moat_srv_registry *r, const char *label)
{
	struct rlabel *l;

	for (l = r->routes; l; l = l->next)
		if (strcmp(l->label, label) == 0)
			return l->stats;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->label = strdup(label)) || !(l->stats = calloc(r->nworkers, sizeof(*l->stats)))) {
		if (l)
			free(l->label);
		free(l);
		return NULL;
	}
	l->next = r->routes;
	r->routes = l;
	return l->stats;
}

static void unbind_locked(struct moat_srv_registry *r, struct moat_upstream_rt *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (u[i].srv) {
			for (size_t j = 0; j < u[i].conf->nservers; j++)
				if (u[i].srv[j])
					state_put(r, u[i].srv[j]);
			free(u[i].srv);
		}
		if (u[i].group_active)
			group_put(r, u[i].group_active);
	}
	free(u);
}

struct moat_upstream_rt *moat_srv_bind(struct moat_srv_registry *r, const struct moat_conf *c,
				       struct moat_route_rt **routes)
{
	struct moat_upstream_rt *u = calloc(c->nupstreams ? c->nupstreams : 1, sizeof(*u));
	struct moat_route_rt *rt = calloc(c->nroutes ? c->nroutes : 1, sizeof(*rt));
	char key[512];

	if (!u || !rt) {
		free(u);
		free(rt);
		return NULL;
	}
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct moat_conf_route *ro = &c->routes[i];

		snprintf(key, sizeof(key), "%s%s%s", ro->host_wildcard ? "*" : "",
			 ro->host ? ro->host : "*", ro->path_prefix ? ro->path_prefix : "/");
		rt[i].stats = route_stats(r, key);
		if (!rt[i].stats)
			goto fail;
		/* The label lives in the registry as long as it does. */
		for (struct rlabel *l = r->routes; l; l = l->next)
			if (l->stats == rt[i].stats)
				rt[i].label = l->label;
	}
	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream *up = &c->upstreams[i];
		struct group *g;

		u[i].conf = up;
		u[i].srv = calloc(up->nservers ? up->nservers : 1, sizeof(*u[i].srv));
		g = group_get(r, up->name);
		if (!u[i].srv || !g)
			goto fail;
		u[i].group_active = &g->active;
		u[i].group_retries = &g->retries;
		u[i].group_pending = &g->pending;
		u[i].stats = g->stats;
		for (size_t j = 0; j < up->nservers; j++) {
			snprintf(key, sizeof(key), "%s/%s", up->name, up->servers[j].addr.text);
			u[i].srv[j] = find_or_add(r, key, &up->servers[j]);
			if (!u[i].srv[j])
				goto fail;
		}
	}
	pthread_mutex_unlock(&r->lock);
	*routes = rt;
	return u;
fail:
	unbind_locked(r, u, c->nupstreams);
	pthread_mutex_unlock(&r->lock);
	free(rt);
	return NULL;
}

void moat_srv_unbind(struct moat_srv_registry *r, struct moat_upstream_rt *u, size_t n,
		     struct moat_route_rt *routes, size_t nroutes)
{
	(void)nroutes; /* route counters stay in the registry for good */
	free(routes);
	if (!u)
		return;
	pthread_mutex_lock(&r->lock);
	unbind_locked(r, u, n);
	pthread_mutex_unlock(&r->lock);
}

socklen_t moat_srv_addr(struct moat_srv_state *s, struct sockaddr_storage *out)
{
	unsigned seq;
	socklen_t len;

	do {
		seq = atomic_load_explicit(&s->addr_seq, memory_order_acquire);
		while (seq & 1u)
			seq = atomic_load_explicit(&s->addr_seq, memory_order_acquire);
		len = s->addrlen;
		memcpy(out, &s->addr, sizeof(*out));
		atomic_thread_fence(memory_order_acquire);
	} while (atomic_load_explicit(&s->addr_seq, memory_order_relaxed) != seq);
	return len;
}

void moat_srv_set_addr(struct moat_srv_state *s, const struct sockaddr *sa, socklen_t len)
{
	atomic_fetch_add_explicit(&s->addr_seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
	memcpy(&s->addr, sa, len);
	s->addrlen = len;
	atomic_fetch_add_explicit(&s->addr_seq, 1, memory_order_release);
}
