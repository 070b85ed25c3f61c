/*
 * backend.c - connections to backend servers and the worker's keep-alive
 * pool of idle ones.
 *
 * A bconn is CONNECTING or ACTIVE while a txn owns it, IDLE while it waits
 * in its pool (most recently used first, bounded by the upstream's
 * keepalive count and keepalive_timeout). An idle bconn that becomes
 * readable has been closed by the backend (or sent bytes nobody asked
 * for): it is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"
#include "proxy/proxy.h"

#define BACKEND_OUT_MAX (512u * 1024u)
#define BACKEND_IN_EXTRA (64u * 1024u)

static void bconn_event(struct moat_ev *ev, uint32_t events);
static void bconn_timeout(struct moat_timer *tm);

static struct moat_bpool *pool_for(struct moat_worker *w, const struct sockaddr *sa, socklen_t len)
{
	struct moat_bpool *p;

	for (p = w->pools; p; p = p->next)
		if (moat_sock_addr_eq((const struct sockaddr *)&p->addr, sa))
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	memcpy(&p->addr, sa, len);
	p->addrlen = len;
	p->next = w->pools;
	w->pools = p;
	return p;
}

static void pool_unlink(struct moat_bconn *b)
{
	struct moat_bpool *p = b->pool;

	if (b->prev)
		b->prev->next = b->next;
	else
		p->idle = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	p->nidle--;
	MOAT_STAT_ADD(b->w->bconns_idle, (uint64_t)-1); /* a gauge: wraps back */
}

void moat_bconn_set_timer(struct moat_bconn *b, uint64_t deadline)
{
	moat_timer_set(&b->w->loop.timers, &b->timer, deadline);
}

struct moat_bconn *moat_bconn_get(struct moat_worker *w, const struct sockaddr *sa, socklen_t len,
				  const struct moat_conf_upstream *up, int fresh, int *err)
{
	struct moat_bpool *p = pool_for(w, sa, len);
	const struct moat_conf *conf = w->conf->ref->conf;
	struct moat_bconn *b;
	int fd;

	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!fresh && p->idle) {
		b = p->idle;
		pool_unlink(b);
		b->state = MOAT_B_ACTIVE;
		b->reused = 1;
		moat_timer_stop(&w->loop.timers, &b->timer);
		return b;
	}
	fd = moat_sock_connect(sa, len);
	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	b->w = w;
	b->pool = p;
	b->ev.fd = fd;
	b->ev.cb = bconn_event;
	b->timer.cb = bconn_timeout;
	b->state = MOAT_B_CONNECTING;
	b->connect_started = w->loop.now_ms;
	moat_buf_init(&b->in, &w->bufpool, conf->limits.header_size_max + BACKEND_IN_EXTRA);
	moat_buf_init(&b->out, &w->bufpool, BACKEND_OUT_MAX);
	if (moat_loop_add(&w->loop, &b->ev, 1) < 0) {
		close(fd);
		free(b);
		*err = -EIO;
		return NULL;
	}
	(void)up;
	return b;
}

void moat_bconn_close(struct moat_bconn *b)
{
	struct moat_worker *w = b->w;

	if (b->dead)
		return;
	if (b->state == MOAT_B_IDLE)
		pool_unlink(b);
	b->dead = 1;
	moat_timer_stop(&w->loop.timers, &b->timer);
	close(b->ev.fd);
	moat_buf_release(&b->in);
	moat_buf_release(&b->out);
	b->dead_next = w->dead_bconns;
	w->dead_bconns = b;
	moat_loop_defer(&w->loop, &w->reap);
}

void moat_bconn_free(struct moat_bconn *b)
{
	free(b);
}

void moat_bconn_release(struct moat_bconn *b, int reusable, const struct moat_conf_upstream *up)
{
	struct moat_bpool *p = b->pool;
	struct moat_worker *w = b->w;

	if (!reusable || up->keepalive == 0 || w->stopping) {
		moat_bconn_close(b);
		return;
	}
	if (p->nidle >= up->keepalive) {
		/* Full: drop the least recently used one. */
		struct moat_bconn *last = p->idle;

		while (last->next)
			last = last->next;
		moat_bconn_close(last);
	}
	b->state = MOAT_B_IDLE;
	b->c = NULL;
	moat_buf_release(&b->in);
	moat_buf_release(&b->out);
	b->prev = NULL;
	b->next = p->idle;
	if (b->next)
		b->next->prev = b;
	p->idle = b;
	p->nidle++;
	MOAT_STAT_INC(w->bconns_idle);
	moat_timer_set(&w->loop.timers, &b->timer, w->loop.now_ms + up->keepalive_timeout_ms);
}

static void bconn_event(struct moat_ev *ev, uint32_t events)
{
	struct moat_bconn *b = (struct moat_bconn *)ev;

	if (b->dead)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		b->io.can_read = 1;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		b->io.hup = 1;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		b->io.can_write = 1;
	switch (b->state) {
	case MOAT_B_IDLE:
		/* Nothing is expected from an idle backend: EOF or junk. */
		if (b->io.can_read)
			moat_bconn_close(b);
		return;
	case MOAT_B_CONNECTING:
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		{
			int err = 0;
			socklen_t l = sizeof(err);

			if (getsockopt(b->ev.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
				err = errno;
			if (err == 0 && (events & (EPOLLERR | EPOLLHUP)))
				err = ECONNREFUSED;
			if (!b->c) {
				moat_bconn_close(b);
				return;
			}
			if (err) {
				moat_client_backend_connected(b->c, -err);
				return;
			}
			b->state = MOAT_B_ACTIVE;
			moat_client_backend_connected(b->c, 0);
		}
		return;
	case MOAT_B_ACTIVE:
		if (b->c)
			moat_client_run(b->c);
		else
			moat_bconn_close(b);
		return;
	}
}

static void bconn_timeout(struct moat_timer *tm)
{
	struct moat_bconn *b = (struct moat_bconn *)((char *)tm - offsetof(struct moat_bconn, timer));

	if (b->dead)
		return;
	if (b->state == MOAT_B_IDLE || !b->c) {
		moat_bconn_close(b);
		return;
	}
	moat_client_backend_timeout(b->c);
}
