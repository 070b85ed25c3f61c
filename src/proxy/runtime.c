/*
 * runtime.c - the control thread's side of the proxy: starting workers,
 * publishing a new config generation on reload, and stopping.
 *
 * The published generation (rt->current) is read by workers under
 * rt->lock only when they adopt it (on a wake-up), never on a request's
 * way. Each holder of a confref (the runtime while it is current, each
 * worker pin) owns one reference; the last put frees the snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/sdnotify.h"
#include "core/sock.h"
#include "proxy/proxy.h"
#include "upstream/health.h"

void moat_confref_put(struct moat_confref *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		moat_phase_gen_free(r);
		moat_tls_gen_free(r);
		moat_srv_unbind(r->reg, r->ups, r->conf->nupstreams, r->routes, r->conf->nroutes);
		moat_conf_free(r->conf);
		free(r);
	}
}

static void confref_release(void *arg)
{
	moat_confref_put(arg);
}

/* A new generation, its servers bound to their shared states (kept from
 * the previous generation where the same server stays). */
static struct moat_confref *confref_new(struct moat_runtime *rt, struct moat_conf *conf, char **why)
{
	struct moat_confref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conf = conf;
	if (moat_tls_gen_build(r, why) < 0) {
		free(r);
		return NULL;
	}
	if (moat_phase_gen_build(rt, r, why) < 0) {
		moat_tls_gen_free(r);
		free(r);
		return NULL;
	}
	r->reg = rt->reg;
	r->ups = moat_srv_bind(rt->reg, conf, &r->routes);
	if (!r->ups) {
		moat_phase_gen_free(r);
		moat_tls_gen_free(r);
		free(r);
		return NULL;
	}
	r->conf = conf;
	atomic_init(&r->refs, 1);
	r->generation = ++rt->generation;
	r->loaded_at = (int64_t)time(NULL);
	return r;
}

/* Hands the generation to the health checker, which holds a reference
 * until it moves on. */
static void health_follow(struct moat_runtime *rt, struct moat_confref *r)
{
	if (!rt->health)
		return;
	atomic_fetch_add(&r->refs, 1);
	moat_health_set(rt->health, r->conf, r->ups, confref_release, r);
}

int moat_runtime_start(struct moat_runtime *rt, struct moat_conf *conf, unsigned nworkers)
{
	int err = 0;

	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->reload_lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	rt->started_at = (int64_t)time(NULL);
	atomic_init(&rt->stopping, 0);
	atomic_init(&rt->leave_queues, 0);
	moat_lfds_init(&rt->lfds);
	rt->reg = moat_srv_registry_new(nworkers);
	if (!rt->reg)
		return -ENOMEM;
	if (moat_phase_start(rt, conf) < 0)
		return -ENOMEM;
	{
		char *why = NULL;

		rt->current = confref_new(rt, conf, &why);
		if (!rt->current) {
			if (why) {
				MOAT_ERR("%s", why);
				free(why);
				return -EINVAL;
			}
			return -ENOMEM;
		}
	}
	rt->health = moat_health_start();
	if (!rt->health)
		return -ENOMEM;
	health_follow(rt, rt->current);
	rt->nworkers = nworkers;
	rt->workers = calloc(nworkers, sizeof(*rt->workers));
	if (!rt->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < nworkers; i++) {
		rt->workers[i].id = i;
		rt->workers[i].rt = rt;
		if (pthread_create(&rt->workers[i].thread, NULL, moat_worker_main, &rt->workers[i]) != 0) {
			rt->nworkers = i;
			err = -EAGAIN;
			break;
		}
	}
	pthread_mutex_lock(&rt->lock);
	while (rt->started < rt->nworkers)
		pthread_cond_wait(&rt->cond, &rt->lock);
	pthread_mutex_unlock(&rt->lock);
	for (unsigned i = 0; i < rt->nworkers && !err; i++)
		if (rt->workers[i].start_error)
			err = rt->workers[i].start_error;
	if (err)
		atomic_store(&rt->leave_queues, 1);
	return err;
}

/* A listener address that no worker has yet must be bindable: probe it
 * here so that a reload with a bad address is refused as a whole. */
static int probe_listeners(const struct moat_conf *old, const struct moat_conf *c, char *why, size_t whylen)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct moat_conf_listener *l = &c->listeners[i];
		int fd, known = 0;

		for (size_t j = 0; j < old->nlisteners; j++)
			if (moat_sock_addr_eq((const struct sockaddr *)&old->listeners[j].addr.ss,
					      (const struct sockaddr *)&l->addr.ss))
				known = 1;
		if (known)
			continue;
		fd = moat_sock_listen((const struct sockaddr *)&l->addr.ss, l->addr.len, 1);
		if (fd < 0) {
			/* After the privilege drop a port below 1024 is out of reach. */
			int dropped = fd == -EACCES && geteuid() != 0 && old->user != NULL;

			snprintf(why, whylen, "%s:%u:%u: cannot listen on %s: %s%s%s%s", c->file ? c->file : "-",
				 l->addr.pos.line, l->addr.pos.col, l->addr.text, strerror(-fd),
				 dropped ? " (moat runs as user \"" : "", dropped ? old->user : "",
				 dropped ? "\" since start: a new privileged port needs a restart)" : "");
			return fd;
		}
		close(fd);
	}
	return 0;
}

int moat_runtime_reload(struct moat_runtime *rt, struct moat_conf *conf, char **whyp)
{
	struct moat_confref *r, *old;
	char why[512];
	int err;

	pthread_mutex_lock(&rt->lock);
	err = probe_listeners(rt->current->conf, conf, why, sizeof(why));
	pthread_mutex_unlock(&rt->lock);
	if (err) {
		MOAT_ERR("reload refused: %s", why);
		if (whyp)
			*whyp = strdup(why);
		moat_conf_free(conf);
		return err;
	}
	{
		char *mwhy = NULL;

		/* modules build their state first, outside the lock: a WAF
		 * rule set takes a while to load */
		r = confref_new(rt, conf, &mwhy);
		if (!r) {
			if (mwhy) {
				MOAT_ERR("reload refused: %s", mwhy);
				if (whyp)
					*whyp = mwhy;
				else
					free(mwhy);
				moat_conf_free(conf);
				return -EINVAL;
			}
			moat_conf_free(conf);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&rt->lock);
	old = rt->current;
	rt->current = r;
	pthread_mutex_unlock(&rt->lock);
	health_follow(rt, r);
	moat_confref_put(old);
	for (unsigned i = 0; i < rt->nworkers; i++)
		moat_loop_wake(&rt->workers[i].loop);
	MOAT_INFO("config reloaded (generation %llu)", (unsigned long long)r->generation);
	return 0;
}

struct moat_confref *moat_runtime_current(struct moat_runtime *rt)
{
	struct moat_confref *r;

	pthread_mutex_lock(&rt->lock);
	r = rt->current;
	atomic_fetch_add(&r->refs, 1);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

/* systemd: a reload starts (Type=notify-reload also wants the time). */
static void sd_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	moat_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
			(unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* user, group and pid_file act once, at start: say so when a reload
 * changes them. */
static void warn_fixed_at_start(struct moat_runtime *rt, const struct moat_conf *nc)
{
	const struct moat_conf *cur;

	pthread_mutex_lock(&rt->lock);
	cur = rt->current->conf;
	if (str_differs(cur->user, nc->user) || str_differs(cur->group, nc->group))
		MOAT_WARN("user/group: a change takes effect at the next start (a binary upgrade keeps the "
			  "current ids); running as uid %u", (unsigned)geteuid());
	if (str_differs(cur->pid_file, nc->pid_file))
		MOAT_WARN("pid_file: a change takes effect at the next start or binary upgrade");
	if (cur->limits.rate_limit_keys != nc->limits.rate_limit_keys)
		MOAT_WARN("limits.rate_limit_keys: a change takes effect at the next start (the counters are kept)");
	pthread_mutex_unlock(&rt->lock);
}

int64_t moat_runtime_reload_file(struct moat_runtime *rt, char **why)
{
	struct moat_conf_errors e = { 0 };
	struct moat_conf *nc;
	int64_t gen = -EINVAL;

	*why = NULL;
	if (!rt->path) {
		*why = strdup("started without a config file (one-line mode): nothing to reload");
		MOAT_WARN("reload ignored: started without a config file");
		return -EINVAL;
	}
	pthread_mutex_lock(&rt->reload_lock);
	MOAT_INFO("reloading %s", rt->path);
	sd_reloading();
	nc = moat_conf_load_file(rt->path, &e);
	if (!nc) {
		char *copy = e.buf ? strdup(e.buf) : strdup("invalid configuration");
		char *save = NULL, *line = copy ? strtok_r(copy, "\n", &save) : NULL;

		MOAT_ERR("reload refused: %s", line ? line : "invalid configuration");
		while (line && (line = strtok_r(NULL, "\n", &save)) != NULL)
			MOAT_ERR("reload refused: %s", line);
		free(copy);
		*why = e.buf ? strdup(e.buf) : strdup("invalid configuration");
		moat_conf_errors_free(&e);
		moat_sd_notify("READY=1\nSTATUS=reload refused: invalid configuration");
		pthread_mutex_unlock(&rt->reload_lock);
		return -EINVAL;
	}
	moat_conf_errors_free(&e);
	if (nc->workers && nc->workers != rt->nworkers)
		MOAT_WARN("workers: changing the count needs a restart; keeping %u", rt->nworkers);
	warn_fixed_at_start(rt, nc);
	{
		int le = moat_log_open(nc->error_log, (int)nc->log_level);

		if (le < 0)
			MOAT_ERR("reload: cannot open error log: %s", strerror(-le));
		le = moat_alog_open(nc->access_log);
		if (le < 0)
			MOAT_ERR("reload: cannot open access log: %s", strerror(-le));
	}
	if (moat_runtime_reload(rt, nc, why) == 0) {
		pthread_mutex_lock(&rt->lock);
		gen = (int64_t)rt->current->generation;
		pthread_mutex_unlock(&rt->lock);
		moat_sd_notifyf("READY=1\nSTATUS=serving, config generation %lld", (long long)gen);
	} else {
		moat_sd_notify("READY=1\nSTATUS=reload refused");
	}
	pthread_mutex_unlock(&rt->reload_lock);
	return gen;
}

void moat_runtime_stop(struct moat_runtime *rt)
{
	atomic_store(&rt->stopping, 1);
	for (unsigned i = 0; i < rt->nworkers; i++)
		moat_loop_wake(&rt->workers[i].loop);
	for (unsigned i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i].thread, NULL);
	if (rt->health)
		moat_health_stop(rt->health);
	rt->health = NULL;
	if (rt->current)
		moat_confref_put(rt->current);
	rt->current = NULL;
	free(rt->workers);
	rt->workers = NULL;
	moat_srv_registry_free(rt->reg);
	rt->reg = NULL;
	moat_phase_stop(rt);
	moat_lfds_destroy(&rt->lfds);
}

/* FNV-1a (by words) over a file's identity and change time; absent files count too
 * (a file that appears is a change). */
static uint64_t file_sig(uint64_t h, const char *path)
{
	struct stat st;
	uint64_t v[4] = { 0, 0, 0, 0 };

	if (!path)
		return h;
	memset(&st, 0, sizeof(st));
	if (stat(path, &st) == 0) {
		v[0] = (uint64_t)st.st_ino;
		v[1] = (uint64_t)st.st_size;
		v[2] = (uint64_t)st.st_mtim.tv_sec;
		v[3] = (uint64_t)st.st_mtim.tv_nsec ^ (uint64_t)st.st_ctim.tv_nsec;
	}
	for (size_t i = 0; i < 4; i++) {
		h ^= v[i];
		h *= 1099511628211ull;
	}
	return h;
}

uint64_t moat_runtime_tls_files_sig(struct moat_runtime *rt)
{
	struct moat_confref *r = moat_runtime_current(rt);
	const struct moat_conf *c = r->conf;
	uint64_t h = 0;
	int any = 0;

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct moat_conf_tls *t = &c->listeners[i].tls;

		if (!t->on)
			continue;
		any = 1;
		for (size_t k = 0; k < t->ncerts; k++) {
			h = file_sig(h, t->certs[k].cert);
			h = file_sig(h, t->certs[k].key);
		}
		h = file_sig(h, t->client_ca);
	}
	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream_tls *t = &c->upstreams[i].tls;

		if (!t->ca && !t->cert)
			continue;
		any = 1;
		h = file_sig(h, t->ca);
		h = file_sig(h, t->cert);
		h = file_sig(h, t->key);
	}
	moat_confref_put(r);
	return any ? (h ? h : 1) : 0;
}
