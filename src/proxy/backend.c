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

#include <arpa/inet.h>

#include "core/log.h"
#include "core/sock.h"
#include "proxy/proxy.h"
#include "tls/tls.h"

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

static uint64_t fnv(uint64_t h, const char *s)
{
	if (!s)
		return h * 1099511628211ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= 0xff; /* a separator: ("ab", "c") differs from ("a", "bc") */
	return h * 1099511628211ull;
}

/* What a pooled connection was made for beyond its address: the scheme
 * and, with TLS, the name sent and verified, the verification and the
 * client certificate. An idle conn serves only a request of the same kind
 * (two upstreams may name one address with different TLS settings). 0:
 * plain http. */
static uint64_t conn_kind(const struct moat_conf_upstream *up, const struct moat_conf_server *sv)
{
	uint64_t h = 14695981039346656037ull;

	if (sv->scheme == MOAT_SCHEME_HTTP)
		return 0;
	h ^= (uint64_t)sv->scheme;
	h *= 1099511628211ull;
	if (sv->scheme == MOAT_SCHEME_HTTPS || sv->scheme == MOAT_SCHEME_H2) {
		h = fnv(h, up->tls.sni ? up->tls.sni : sv->host);
		h = fnv(h, up->tls.verify ? "v" : "-");
		h = fnv(h, up->tls.ca);
		h = fnv(h, up->tls.cert);
		h = fnv(h, up->tls.key);
	}
	return h ? h : 1;
}

struct moat_bconn *moat_bconn_get(struct moat_worker *w, const struct sockaddr *sa, socklen_t len,
				  const struct moat_conf_upstream *up, const struct moat_conf_server *sv,
				  struct moat_tls_client *tc, int fresh, int *err)
{
	struct moat_bpool *p = pool_for(w, sa, len);
	const struct moat_conf *conf = w->conf->ref->conf;
	uint64_t kind = conn_kind(up, sv);
	struct moat_bconn *b;
	int fd;

	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	for (b = fresh ? NULL : p->idle; b && b->kind != kind; b = b->next)
		;
	if (b) {
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
	b->scheme = (uint8_t)sv->scheme;
	b->kind = kind;
	b->sv = sv;
	b->tc = tc;
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
	moat_h2up_free(b);
	if (b->tls) {
		moat_tls_conn_free(b->tls);
		b->tls = NULL;
	}
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

	if (!reusable || up->keepalive == 0 || w->stopping || (b->h2 && !moat_h2up_reusable(b))) {
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

/* TCP is up (and TLS when there is one): HTTP/2 set up, the txn told. */
static void connected(struct moat_bconn *b)
{
	if (b->scheme == MOAT_SCHEME_H2C || b->scheme == MOAT_SCHEME_H2) {
		if (moat_h2up_start(b, b->scheme == MOAT_SCHEME_H2) < 0) {
			moat_client_backend_connected(b->c, -ENOMEM);
			return;
		}
	}
	b->state = MOAT_B_ACTIVE;
	b->sv = NULL;
	b->tc = NULL;
	moat_client_backend_connected(b->c, 0);
}

static int is_ip_literal(const char *h)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

static int start_tls(struct moat_bconn *b)
{
	const struct moat_conf_upstream *up = b->c ? b->c->txn->up : NULL;
	const struct moat_conf_server *sv = b->sv;
	const char *sni = up && up->tls.sni ? up->tls.sni : sv->host;
	char ip[64];

	if (!b->tc)
		return -1;
	moat_sock_ntop((const struct sockaddr *)&b->pool->addr, ip, sizeof(ip));
	if (sni && is_ip_literal(sni))
		sni = NULL;
	b->tls = moat_tls_connect(b->tc, b->ev.fd, sni, ip, sv->addr.text);
	if (!b->tls)
		return -1;
	b->handshaking = 1;
	b->io.can_read = 1;
	b->io.can_write = 1;
	return 0;
}

static void handshake(struct moat_bconn *b)
{
	int rc = moat_tls_handshake(b->tls);
	char why[256];

	if (rc == MOAT_TLS_WANT_READ || rc == MOAT_TLS_WANT_WRITE)
		return;
	b->handshaking = 0;
	if (rc < 0) {
		MOAT_WARN("backend %s: TLS handshake failed: %s", b->sv ? b->sv->addr.text : "?",
			  moat_tls_error(b->tls, why, sizeof(why)));
		moat_client_backend_connected(b->c, -ECONNREFUSED);
		return;
	}
	if (b->scheme == MOAT_SCHEME_HTTPS) {
		b->io.xp = &moat_tls_xport;
		b->io.xa = b->tls;
	}
	b->io.can_read = 1;
	b->io.can_write = 1;
	connected(b);
}

/*
 * Nothing is expected from an idle backend but EOF or junk, which close it
 * (HTTP/2: frames are taken; EOF or GOAWAY closes it). An edge alone is no
 * proof: one queued while the last response was read, or a TLS 1.3
 * session ticket, carries nothing for the client; so look before closing.
 * Returns -1 when the conn must go.
 */
static int idle_check(struct moat_bconn *b)
{
	char c;
	ssize_t r;

	if (b->h2)
		return moat_h2up_idle(b);
	if (!b->io.can_read)
		return 0;
	if (b->tls)
		r = moat_tls_read(b->tls, &c, 1) == MOAT_TLS_WANT_READ ? -EAGAIN : -1;
	else
		r = recv(b->ev.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EINTR) ?
			    -EAGAIN : -1;
	if (r != -EAGAIN)
		return -1;
	b->io.can_read = 0;
	return 0;
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
		if (idle_check(b) < 0)
			moat_bconn_close(b);
		return;
	case MOAT_B_CONNECTING:
		if (b->handshaking) {
			handshake(b);
			return;
		}
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
			if (b->scheme == MOAT_SCHEME_HTTPS || b->scheme == MOAT_SCHEME_H2) {
				if (start_tls(b) < 0) {
					moat_client_backend_connected(b->c, -ENOMEM);
					return;
				}
				handshake(b);
				return;
			}
			connected(b);
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
