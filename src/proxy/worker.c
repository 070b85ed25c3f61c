/*
 * worker.c - one worker thread: its loop, its SO_REUSEPORT listeners, its
 * client conns, its pins on config generations, and its part of a
 * graceful stop.
 *
 * Config generations: the runtime publishes a confref; a worker adopts it
 * when woken (moat_worker_adopt), keeps the previous one pinned while txns
 * started under it still run (wconf->users), and drops its reference to a
 * generation when the last such txn ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/sock.h"
#include "proxy/proxy.h"

#define ACCEPT_BATCH 64
#define HDRS_CAP 1024

/* ---- config pins ---- */

static void wup_free_all(struct moat_wup *wup, size_t n)
{
	if (!wup)
		return;
	for (size_t i = 0; i < n; i++)
		moat_wup_free(&wup[i]);
	free(wup);
}

static struct moat_wconf *wconf_new(struct moat_confref *ref)
{
	const struct moat_conf *c = ref->conf;
	struct moat_wconf *wc = calloc(1, sizeof(*wc));

	if (!wc)
		return NULL;
	wc->ref = ref;
	wc->wup = calloc(c->nupstreams ? c->nupstreams : 1, sizeof(*wc->wup));
	if (!wc->wup) {
		free(wc);
		return NULL;
	}
	for (size_t i = 0; i < c->nupstreams; i++) {
		if (moat_wup_init(&wc->wup[i], &c->upstreams[i]) < 0) {
			wup_free_all(wc->wup, c->nupstreams);
			free(wc);
			return NULL;
		}
	}
	return wc;
}

static void wconf_free(struct moat_wconf *wc)
{
	wup_free_all(wc->wup, wc->ref->conf->nupstreams);
	moat_confref_put(wc->ref);
	free(wc);
}

void moat_wconf_put(struct moat_worker *w, struct moat_wconf *wc)
{
	wc->users--;
	if (wc->users == 0 && wc != w->conf) {
		for (struct moat_wconf **pp = &w->old; *pp; pp = &(*pp)->next) {
			if (*pp == wc) {
				*pp = wc->next;
				break;
			}
		}
		wconf_free(wc);
	}
}

/* ---- txns waiting for a server slot (max_connections / max_pending) ---- */

void moat_pending_add(struct moat_worker *w, struct moat_client *c)
{
	if (c->on_pending)
		return;
	c->on_pending = 1;
	c->pprev = NULL;
	c->pnext = w->pending;
	if (c->pnext)
		c->pnext->pprev = c;
	w->pending = c;
	if (!w->pending_timer.pprev)
		moat_timer_set(&w->loop.timers, &w->pending_timer, w->loop.now_ms + 5);
}

void moat_pending_del(struct moat_worker *w, struct moat_client *c)
{
	if (!c->on_pending)
		return;
	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		w->pending = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	c->pnext = c->pprev = NULL;
	c->on_pending = 0;
}

/* Every few ms while txns wait: retry them (a slot may have freed in
 * another worker, which cannot wake this one). */
static void pending_timer_cb(struct moat_timer *tm)
{
	struct moat_worker *w = (struct moat_worker *)((char *)tm - offsetof(struct moat_worker, pending_timer));
	struct moat_client *c, *next;

	for (c = w->pending; c; c = next) {
		next = c->pnext;
		moat_txn_pending_retry(c);
	}
	if (w->pending)
		moat_timer_set(&w->loop.timers, &w->pending_timer, w->loop.now_ms + 5);
}

/* ---- listeners ---- */

static void accept_ready(struct moat_listener *l);

static void listener_event(struct moat_ev *ev, uint32_t events)
{
	struct moat_listener *l = (struct moat_listener *)ev;

	(void)events;
	if (!l->dead)
		accept_ready(l);
}

static void accept_ready(struct moat_listener *l)
{
	struct moat_worker *w = l->w;
	const struct moat_conf *conf = w->conf->ref->conf;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (w->nclients >= conf->limits.conns_max) {
			w->accept_paused = 1;
			return;
		}
		/* A place in the process's count is taken before accepting, so
		 * that workers accepting at once never pass connections_total;
		 * given back when nothing is accepted. */
		if (atomic_fetch_add_explicit(&w->rt->nclients, 1, memory_order_relaxed) >= conf->limits.conns_total &&
		    conf->limits.conns_total) {
			/* The process is full: connections wait in the listen
			 * queue; any worker's close may make room, so look
			 * again soon. */
			atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
			w->accept_paused = 1;
			moat_timer_set(&w->loop.timers, &w->accept_timer, w->loop.now_ms + 20);
			return;
		}
		fd = accept4(l->ev.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: back off instead of spinning. */
				MOAT_WARN("w%u: accept: %s; pausing accepts for 100 ms", w->id, strerror(errno));
				w->accept_paused = 1;
				moat_timer_set(&w->loop.timers, &w->accept_timer, w->loop.now_ms + 100);
			}
			return;
		}
		moat_client_accept(w, l, fd, (struct sockaddr *)&ss, len);
	}
	/* Batch used up: more may wait; come back after this iteration's
	 * other events (edge-triggered: no new edge would come). */
	moat_loop_defer(&w->loop, &w->reap);
	w->accept_paused = 1;
}

static void resume_accepts(struct moat_worker *w)
{
	if (!w->accept_paused || w->stopping)
		return;
	w->accept_paused = 0;
	for (size_t i = 0; i < w->nlisteners; i++)
		accept_ready(w->listeners[i]);
}

static void accept_timer_cb(struct moat_timer *tm)
{
	struct moat_worker *w = (struct moat_worker *)((char *)tm - offsetof(struct moat_worker, accept_timer));

	resume_accepts(w);
}

void moat_worker_client_gone(struct moat_worker *w)
{
	if (w->accept_paused)
		moat_loop_defer(&w->loop, &w->reap);
	if (w->stopping && w->nclients == 0)
		w->loop.stop = 1;
}

static void close_listener(struct moat_worker *w, struct moat_listener *l)
{
	/* Take what already waits in the accept queue: closing a
	 * SO_REUSEPORT socket would reset those connections. Not when
	 * another process holds the same socket (binary upgrade): it
	 * accepts them. */
	if (!atomic_load(&w->rt->leave_queues) &&
	    (!w->stopping || w->nclients < w->conf->ref->conf->limits.conns_max))
		accept_ready(l);
	/* The socket may outlive this fd (another worker's or process's
	 * copy), and with it the epoll registration, which would then
	 * report events for a freed listener: remove it first. */
	moat_loop_del(&w->loop, &l->ev);
	/* Out of the upgrade registry before the number can be reused. */
	moat_lfds_del(&w->rt->lfds, l->ev.fd);
	close(l->ev.fd);
	/* An event for it may still wait in this iteration's batch. */
	l->dead = 1;
	l->dead_next = w->dead_listeners;
	w->dead_listeners = l;
	moat_loop_defer(&w->loop, &w->reap);
}

/* A listener on `fd` (bound or inherited) for `cl`, registered with the
 * loop and the upgrade registry. Takes the fd (closed on failure). */
static struct moat_listener *listener_new(struct moat_worker *w, int fd, const struct moat_conf_listener *cl)
{
	struct moat_listener *l;
	int secs = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return NULL;
	}
	l->w = w;
	l->ev.fd = fd;
	l->ev.cb = listener_event;
	memcpy(&l->addr, &cl->addr.ss, cl->addr.len);
	l->addrlen = cl->addr.len;
	if (moat_loop_add(&w->loop, &l->ev, 0) < 0) {
		close(fd);
		free(l);
		return NULL;
	}
	if (moat_lfds_add(&w->rt->lfds, fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0)
		MOAT_WARN("w%u: %s will not be handed over on a binary upgrade (out of memory)", w->id,
			  cl->addr.text);
	return l;
}

/* Appends l to (*v, *n), growing it; 0 or -ENOMEM. */
static int listeners_push(struct moat_listener ***v, size_t *n, size_t *cap, struct moat_listener *l)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct moat_listener **nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = l;
	return 0;
}

/* Opens the worker's sockets for a listener it does not have: those
 * inherited for its address (a binary upgrade's, or systemd's), else a new
 * SO_REUSEPORT socket. Returns 0 or -errno. */
static int open_listener(struct moat_worker *w, const struct moat_conf_listener *cl, struct moat_listener ***v,
			 size_t *n, size_t *cap)
{
	int fds[MOAT_MAX_WORKERS];  /* inherited sockets of one address: at most the old process's workers */
	int k = moat_inherit_take(w->rt->inherit, (const struct sockaddr *)&cl->addr.ss, w->id, w->rt->nworkers, fds,
				  sizeof(fds) / sizeof(fds[0]));
	int err = 0;

	if (k < 0)
		MOAT_ERR("w%u: cannot take the inherited sockets of %s: %s; binding anew", w->id, cl->addr.text,
			 strerror(-k));
	if (k <= 0) {
		int fd = moat_sock_listen((const struct sockaddr *)&cl->addr.ss, cl->addr.len, (int)cl->backlog);

		if (fd < 0) {
			MOAT_ERR("w%u: cannot listen on %s: %s", w->id, cl->addr.text, strerror(-fd));
			return fd;
		}
		fds[0] = fd;
		k = 1;
	} else {
		MOAT_DEBUG("w%u: %s: adopted %d inherited socket%s", w->id, cl->addr.text, k, k > 1 ? "s" : "");
	}
	for (int i = 0; i < k; i++) {
		struct moat_listener *l;

		if (err) {
			close(fds[i]);
			continue;
		}
		/* The new config's backlog applies to an inherited socket too. */
		listen(fds[i], (int)cl->backlog);
		l = listener_new(w, fds[i], cl);
		if (!l) {
			err = -ENOMEM;
		} else if (listeners_push(v, n, cap, l) < 0) {
			moat_loop_del(&w->loop, &l->ev);
			moat_lfds_del(&w->rt->lfds, l->ev.fd);
			close(l->ev.fd);
			free(l);
			err = -ENOMEM;
		}
	}
	if (err)
		MOAT_ERR("w%u: cannot listen on %s: %s", w->id, cl->addr.text, strerror(-err));
	return err;
}

/* Brings the worker's listeners in line with its current config: keeps
 * sockets whose address stays (all of them: after a binary upgrade a
 * worker may hold several per address), opens the missing ones, closes
 * the rest. Returns 0 or the first -errno. */
static int sync_listeners(struct moat_worker *w)
{
	const struct moat_conf *c = w->conf->ref->conf;
	struct moat_listener **nl = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	for (size_t i = 0; i < w->nlisteners; i++)
		w->listeners[i]->keep = 0;
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct moat_conf_listener *cl = &c->listeners[i];
		size_t found = 0;
		int e;

		for (size_t j = 0; j < w->nlisteners; j++) {
			struct moat_listener *l = w->listeners[j];

			if (l->keep || !moat_sock_addr_eq((const struct sockaddr *)&l->addr,
							  (const struct sockaddr *)&cl->addr.ss))
				continue;
			if (listeners_push(&nl, &n, &cap, l) < 0) {
				err = err ? err : -ENOMEM;
				continue; /* closed below with the others not kept */
			}
			l->keep = 1;
			found++;
		}
		if (found)
			continue;
		e = open_listener(w, cl, &nl, &n, &cap);
		if (e && !err)
			err = e;
	}
	for (size_t j = 0; j < w->nlisteners; j++)
		if (!w->listeners[j]->keep)
			close_listener(w, w->listeners[j]);
	free(w->listeners);
	w->listeners = nl;
	w->nlisteners = n;
	return err;
}

/* Adopts the runtime's current generation if it is newer, and syncs the
 * listeners with it. Returns 0 or the first listener error. */
int moat_worker_adopt(struct moat_worker *w)
{
	struct moat_runtime *rt = w->rt;
	struct moat_confref *ref;
	struct moat_wconf *wc, *prev;

	pthread_mutex_lock(&rt->lock);
	ref = rt->current;
	if (w->conf && w->conf->ref == ref) {
		pthread_mutex_unlock(&rt->lock);
		return 0;
	}
	atomic_fetch_add(&ref->refs, 1);
	pthread_mutex_unlock(&rt->lock);

	wc = wconf_new(ref);
	if (!wc) {
		MOAT_ERR("w%u: out of memory adopting config generation %llu", w->id,
			 (unsigned long long)ref->generation);
		moat_confref_put(ref);
		return -ENOMEM;
	}
	prev = w->conf;
	w->conf = wc;
	if (prev) {
		if (prev->users == 0) {
			wconf_free(prev);
		} else {
			/* Txns under it finish under it, within the drain time. */
			prev->retire_at = w->loop.now_ms + prev->ref->conf->timeouts.drain;
			prev->next = w->old;
			w->old = prev;
			if (!w->retire_timer.pprev)
				moat_timer_set(&w->loop.timers, &w->retire_timer, prev->retire_at);
		}
	}
	return sync_listeners(w);
}

/* An old generation's drain time is over: connections still running a
 * txn under it (a WebSocket tunnel, a slow download) are closed. */
static void retire_timer_cb(struct moat_timer *tm)
{
	struct moat_worker *w = (struct moat_worker *)((char *)tm - offsetof(struct moat_worker, retire_timer));
	uint64_t now = w->loop.now_ms, next = 0;
	struct moat_client *c, *cn;

	for (c = w->clients; c; c = cn) {
		cn = c->next;
		if (c->state == MOAT_C_H2) {
			moat_h2conn_retire(c, now);
			continue;
		}
		if (c->txn && c->txn->wc != w->conf && c->txn->wc->retire_at && c->txn->wc->retire_at <= now) {
			MOAT_INFO("w%u c%llu: closed: its config generation %llu was replaced %llu ms ago",
				  w->id, (unsigned long long)c->id,
				  (unsigned long long)c->txn->wc->ref->generation,
				  (unsigned long long)c->txn->wc->ref->conf->timeouts.drain);
			moat_client_abort(c);
		}
	}
	/* Aborting may have freed generations: look at what is left. */
	for (struct moat_wconf *wc = w->old; wc; wc = wc->next)
		if (wc->retire_at > now && (!next || wc->retire_at < next))
			next = wc->retire_at;
	if (next)
		moat_timer_set(&w->loop.timers, &w->retire_timer, next);
}

/* ---- stop ---- */

static void stop_timer_cb(struct moat_timer *tm)
{
	struct moat_worker *w = (struct moat_worker *)((char *)tm - offsetof(struct moat_worker, stop_timer));

	MOAT_WARN("w%u: drain time over, closing %u connections", w->id, w->nclients);
	while (w->clients)
		moat_client_abort(w->clients); /* unlinks it */
	w->loop.stop = 1;
}

static void begin_stop(struct moat_worker *w)
{
	struct moat_client *c, *next;

	if (w->stopping)
		return;
	/* Listeners first, before `stopping` is set: the conns taken from
	 * their queues are then read and served (a stopping worker closes a
	 * conn that has nothing read yet). */
	for (size_t i = 0; i < w->nlisteners; i++)
		close_listener(w, w->listeners[i]);
	w->nlisteners = 0;
	w->stopping = 1;
	for (c = w->clients; c; c = next) {
		next = c->next;
		moat_client_stop_idle(c);
	}
	if (w->nclients == 0) {
		w->loop.stop = 1;
		return;
	}
	moat_timer_set(&w->loop.timers, &w->stop_timer,
		       w->loop.now_ms + w->conf->ref->conf->timeouts.drain);
}

static void on_wake(struct moat_loop *loop)
{
	struct moat_worker *w = loop->owner;

	if (atomic_load(&w->rt->stopping)) {
		begin_stop(w);
		return;
	}
	moat_worker_adopt(w);
}

/* End of each loop iteration: free what was closed, resume accepts. */
static void reap(struct moat_defer *d)
{
	struct moat_worker *w = (struct moat_worker *)((char *)d - offsetof(struct moat_worker, reap));

	while (w->dead_clients) {
		struct moat_client *c = w->dead_clients;

		w->dead_clients = c->dead_next;
		moat_client_free(c);
	}
	while (w->dead_bconns) {
		struct moat_bconn *b = w->dead_bconns;

		w->dead_bconns = b->dead_next;
		moat_bconn_free(b);
	}
	while (w->dead_listeners) {
		struct moat_listener *l = w->dead_listeners;

		w->dead_listeners = l->dead_next;
		free(l);
	}
	resume_accepts(w);
}

static void worker_cleanup(struct moat_worker *w)
{
	while (w->pools) {
		struct moat_bpool *p = w->pools;

		while (p->idle)
			moat_bconn_close(p->idle);
		w->pools = p->next;
		free(p);
	}
	reap(&w->reap);
	for (size_t i = 0; i < w->nlisteners; i++) {
		moat_lfds_del(&w->rt->lfds, w->listeners[i]->ev.fd);
		close(w->listeners[i]->ev.fd);
		free(w->listeners[i]);
	}
	free(w->listeners);
	w->listeners = NULL;
	w->nlisteners = 0;
	while (w->free_txns) {
		struct moat_txn *t = w->free_txns;

		w->free_txns = t->free_next;
		free(t);
	}
	while (w->old) {
		struct moat_wconf *wc = w->old;

		w->old = wc->next;
		wconf_free(wc);
	}
	if (w->conf)
		wconf_free(w->conf);
	w->conf = NULL;
	free(w->hdrs);
	moat_buf_pool_drain(&w->bufpool);
	if (w->alog)
		moat_alog_detach(w->alog);
	moat_loop_destroy(&w->loop);
}

void *moat_worker_main(void *arg)
{
	struct moat_worker *w = arg;
	struct moat_runtime *rt = w->rt;
	int err;

	err = moat_loop_init(&w->loop);
	w->loop.owner = w;
	w->loop.on_wake = on_wake;
	w->reap.cb = reap;
	w->h2_flush.cb = moat_h2conn_flush_dirty;
	w->stop_timer.cb = stop_timer_cb;
	w->accept_timer.cb = accept_timer_cb;
	w->refusal_timer.cb = moat_worker_refusal_summary;
	w->pending_timer.cb = pending_timer_cb;
	w->retire_timer.cb = retire_timer_cb;
	w->bufpool.max_free = 256;
	w->hdrs_cap = HDRS_CAP;
	w->hdrs = calloc(HDRS_CAP, sizeof(*w->hdrs));
	w->alog = moat_alog_ring_new(1u << 20);
	if (!w->hdrs || !w->alog)
		err = -ENOMEM;
	if (w->alog)
		moat_alog_attach(w->alog);
	if (!err)
		err = moat_worker_adopt(w);
	pthread_mutex_lock(&rt->lock);
	w->start_error = err;
	rt->started++;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (!err) {
		if (atomic_load(&rt->stopping))
			begin_stop(w);
		moat_loop_run(&w->loop);
	}
	worker_cleanup(w);
	return NULL;
}
