/*
 * client.c - the client side of HTTP/1.x: accepting, reading request heads,
 * closing well.
 *
 * A client conn alternates between reading a request head (HEAD) and
 * running a txn (TXN, see txn.c); CLOSING flushes a last response,
 * half-closes and drains what the client still sends before closing, so
 * the client reads the response instead of a reset.
 *
 *   HEAD --head parsed--> TXN --response sent, keep-alive--> HEAD
 *     |                    |
 *     +--bad head---> CLOSING <--error / close--+
 *
 * Every event on either socket of a conn runs moat_client_run, which
 * advances it as far as it can.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/sock.h"
#include "http/h2s.h"
#include "http/proxyproto.h"
#include "proxy/errpage.h"
#include "proxy/io.h"
#include "proxy/proxy.h"
#include "tls/tls.h"

#define BODY_IN_EXTRA     (64u * 1024u)        /* input buffer room past the head limit */
#define CLIENT_OUT_MAX    (512u * 1024u)
#define LINGER_MS         2000u                /* drain after half-close, then close */

static const struct moat_conf *cur_conf(const struct moat_client *c)
{
	return c->w->conf->ref->conf;
}

static const struct moat_conf *txn_conf(const struct moat_txn *t)
{
	return t->wc->ref->conf;
}

static void client_event(struct moat_ev *ev, uint32_t events);
static void client_timeout(struct moat_timer *tm);

/* ---- lifetime ---- */

void moat_client_close(struct moat_client *c)
{
	struct moat_worker *w = c->w;

	if (c->dead)
		return;
	c->dead = 1;
	if (c->txn) {
		struct moat_txn *t = c->txn;

		if (t->b) {
			t->b->c = NULL;
			moat_bconn_close(t->b);
			t->b = NULL;
		}
		moat_txn_finish(c);
	}
	moat_timer_stop(&w->loop.timers, &c->timer);
	moat_buf_release(&c->in);
	moat_buf_release(&c->out);
	if (c->virt) {
		/* an HTTP/2 stream: no socket, not counted as a connection */
		moat_h2stream_gone(c);
		c->dead_next = w->dead_clients;
		w->dead_clients = c;
		moat_loop_defer(&w->loop, &w->reap);
		return;
	}
	if (c->state == MOAT_C_H2)
		moat_h2conn_close(c);
	moat_phase_gone(c);
	atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
	if (c->tls) {
		moat_tls_conn_free(c->tls);
		c->tls = NULL;
	}
	close(c->ev.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nclients--;
	MOAT_STAT_INC(w->stats.conns_closed);
	c->dead_next = w->dead_clients;
	w->dead_clients = c;
	moat_loop_defer(&w->loop, &w->reap);
	moat_worker_client_gone(w);
}

void moat_client_free(struct moat_client *c)
{
	free(c);
}

struct moat_client *moat_client_virtual(struct moat_client *parent)
{
	struct moat_worker *w = parent->w;
	const struct moat_conf *conf = w->conf->ref->conf;
	struct moat_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = w;
	c->id = ++w->next_id;
	memcpy(&c->peer, &parent->peer, parent->peerlen);
	c->peerlen = parent->peerlen;
	moat_buf_init(&c->in, &w->bufpool, conf->limits.header_size_max + BODY_IN_EXTRA);
	moat_buf_init(&c->out, &w->bufpool, CLIENT_OUT_MAX);
	c->ev.fd = -1;
	c->timer.cb = client_timeout;
	c->state = MOAT_C_HEAD;
	c->virt = 1;
	c->admitted = parent->admitted;
	c->nodelay = 1;
	c->tls = parent->tls;
	c->lst = parent->lst;
	c->io.can_read = 1;
	c->io.can_write = 1;
	c->head_deadline = w->loop.now_ms + conf->timeouts.client_header;
	c->head_deadline_set = 1;
	return c;
}

/* Half-close after the last response, then drain until EOF or LINGER_MS. */
void moat_client_closing(struct moat_client *c)
{
	c->state = MOAT_C_CLOSING;
	c->close_deadline = c->w->loop.now_ms + LINGER_MS;
}

static int run_closing(struct moat_client *c)
{
	char sink[4096];

	if (moat_buf_len(&c->out)) {
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return 0;
		}
		if (moat_buf_len(&c->out))
			return 0;
	}
	if (!c->io.wr_shut) {
		moat_io_shutdown(c->ev.fd, &c->io);
		moat_buf_release(&c->in);
	}
	if (c->virt) {
		moat_client_close(c);
		return 0;
	}
	while (c->io.can_read && !c->io.eof) {
		ssize_t r = read(c->ev.fd, sink, sizeof(sink));

		if (r > 0)
			continue;
		if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->io.eof = 1;
			break;
		}
		if (errno == EAGAIN)
			c->io.can_read = 0;
	}
	if (c->io.eof)
		moat_client_close(c);
	return 0;
}

/* The listener's part of the config: by address, as listeners outlive
 * generations. */
static const struct moat_conf_listener *listener_conf(const struct moat_conf *conf, const struct moat_listener *l)
{
	for (size_t i = 0; i < conf->nlisteners; i++)
		if (conf->listeners[i].addr.len == l->addrlen &&
		    memcmp(&conf->listeners[i].addr.ss, &l->addr, l->addrlen) == 0)
			return &conf->listeners[i];
	return NULL;
}

void moat_client_accept(struct moat_worker *w, struct moat_listener *l, int fd, const struct sockaddr *sa,
			socklen_t len)
{
	struct moat_client *c = calloc(1, sizeof(*c));
	const struct moat_conf *conf = w->conf->ref->conf;
	const struct moat_conf_listener *lc = listener_conf(conf, l);

	if (!c) {
		close(fd);
		atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
		return;
	}
	c->w = w;
	c->id = ++w->next_id;
	if (len > sizeof(c->peer))
		len = sizeof(c->peer); /* listeners are IPv4 / IPv6 only */
	memcpy(&c->peer, sa, len);
	c->peerlen = len;
	moat_buf_init(&c->in, &w->bufpool, conf->limits.header_size_max + BODY_IN_EXTRA);
	moat_buf_init(&c->out, &w->bufpool, CLIENT_OUT_MAX);
	c->ev.fd = fd;
	c->ev.cb = client_event;
	c->timer.cb = client_timeout;
	c->state = MOAT_C_HEAD;
	c->lst = l;
	if (lc && lc->tls.on) {
		struct moat_tls_server *ts = w->conf->ref->tls_srv ?
						     w->conf->ref->tls_srv[lc - conf->listeners] : NULL;

		c->tls = ts ? moat_tls_accept(ts, fd) : NULL;
		if (!c->tls) {
			close(fd);
			free(c);
			atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
			return;
		}
		c->state = MOAT_C_TLS;
	} else if (lc) {
		c->h2c_ok = lc->h2c ? 1 : 0;
	}
	if (moat_loop_add(&w->loop, &c->ev, 1) < 0) {
		if (c->tls)
			moat_tls_conn_free(c->tls);
		close(fd);
		free(c);
		atomic_fetch_sub_explicit(&w->rt->nclients, 1, memory_order_relaxed);
		return;
	}
	c->next = w->clients;
	if (c->next)
		c->next->prev = c;
	w->clients = c;
	w->nclients++; /* the process's count was taken by the accepting worker */
	MOAT_STAT_INC(w->stats.conns_accepted);
	/* The listener defers accept until data arrives: read at once. */
	c->io.can_read = 1;
	c->io.can_write = 1;
	c->head_deadline = w->loop.now_ms + conf->timeouts.client_header;
	c->head_deadline_set = 1;
	if (lc && lc->proxy_protocol) {
		/* Only a trusted proxy may say who the client is. */
		if (moat_cidr_trie_lookup(conf->trusted_trie, sa) != 1) {
			MOAT_STAT_INC(w->stats.refusals[MOAT_REFUSE_PROXY_PROTOCOL]);
			moat_client_log_refusal(c, 0, "PROXY header from a peer not in proxy.trusted_proxies");
			moat_client_close(c);
			return;
		}
		c->state = MOAT_C_PROXY_HDR;
	} else if (moat_phase_admit(c, lc) < 0) {
		return;
	}
	moat_client_run(c);
}

static int proxy_hdr_done(struct moat_client *c, const struct moat_proxyproto *pp);

/* Before TLS, the PROXY header is peeked at, then exactly its bytes are
 * read: what follows is the TLS library's to read. */
#define PROXY_PEEK_MAX 4096

static int run_proxy_hdr_peek(struct moat_client *c)
{
	char buf[PROXY_PEEK_MAX];
	struct moat_proxyproto pp;
	ssize_t n;
	int rc;

	n = recv(c->ev.fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->io.can_read = 0;
		return 0;
	}
	if (n <= 0) {
		moat_client_close(c);
		return -1;
	}
	rc = moat_proxyproto_parse(buf, (size_t)n, &pp);
	if (rc == MOAT_AGAIN && (size_t)n < sizeof(buf)) {
		c->io.can_read = 0;
		return 0;
	}
	if (rc < 0) {
		MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_PROXY_PROTOCOL]);
		moat_client_log_refusal(c, 0, "missing or malformed PROXY protocol header");
		moat_client_close(c);
		return -1;
	}
	if (recv(c->ev.fd, buf, (size_t)rc, 0) != rc) {
		moat_client_close(c);
		return -1;
	}
	c->io.can_read = 1;
	return proxy_hdr_done(c, &pp);
}

/* PROXY protocol v1/v2 header: the client's address, then admission. */
static int run_proxy_hdr(struct moat_client *c)
{
	struct moat_proxyproto pp;
	ssize_t r;
	int rc;

	if (c->tls)
		return run_proxy_hdr_peek(c);
	if (c->io.can_read) {
		r = moat_io_read(c->ev.fd, &c->io, &c->in);
		if (r < 0) {
			moat_client_close(c);
			return -1;
		}
	}
	rc = moat_proxyproto_parse(moat_buf_head(&c->in), moat_buf_len(&c->in), &pp);
	if (rc == MOAT_AGAIN) {
		if (c->io.eof) {
			moat_client_close(c);
			return -1;
		}
		return c->io.can_read ? 1 : 0;
	}
	if (rc < 0) {
		MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_PROXY_PROTOCOL]);
		moat_client_log_refusal(c, 0, "missing or malformed PROXY protocol header");
		moat_client_close(c);
		return -1;
	}
	moat_buf_consume(&c->in, (size_t)rc);
	return proxy_hdr_done(c, &pp);
}

static int proxy_hdr_done(struct moat_client *c, const struct moat_proxyproto *pp)
{
	const struct moat_conf *conf = cur_conf(c);
	const struct moat_conf_listener *lc = NULL;

	if (!pp->local && pp->srclen > 0 && pp->srclen <= sizeof(c->peer)) {
		memcpy(&c->peer, &pp->src, pp->srclen);
		c->peerlen = pp->srclen;
	}
	c->state = c->tls ? MOAT_C_TLS : MOAT_C_HEAD;
	/* the listener it came through, if still open (compared, not followed) */
	for (size_t i = 0; i < c->w->nlisteners; i++)
		if (c->w->listeners[i] == c->lst)
			lc = listener_conf(conf, c->lst);
	return moat_phase_admit(c, lc) < 0 ? -1 : 1;
}

/* ---- errors ---- */

static int parse_status(int rc)
{
	switch (rc) {
	case MOAT_H1_EURI_TOO_LONG: return 414;
	case MOAT_H1_EHDR_TOO_BIG: return 431;
	case MOAT_H1_ETE_UNKNOWN: return 501;
	case MOAT_H1_EVERSION: return 505;
	default: return 400;
	}
}

void moat_worker_refusal_summary(struct moat_timer *tm)
{
	struct moat_worker *w = (struct moat_worker *)((char *)tm - offsetof(struct moat_worker, refusal_timer));

	if (w->refusal_log_dropped) {
		moat_log(MOAT_LOGL_INFO, "w%u: %llu refusals not logged (log.refusal_rate %u/s)", w->id,
			 w->refusal_log_dropped, w->conf->ref->conf->refusal_log_rate);
		w->refusal_log_dropped = 0;
	}
}

void moat_client_log_refusal(const struct moat_client *c, int status, const char *why)
{
	moat_client_log_refusal_as(c, NULL, status, why);
}

void moat_client_log_refusal_as(const struct moat_client *c, const char *client, int status, const char *why)
{
	struct moat_worker *w = c->w;
	unsigned rate = w->conf->ref->conf->refusal_log_rate;
	uint64_t sec = w->loop.now_ms / 1000;
	char ip[64];

	if (!moat_log_enabled(MOAT_LOGL_INFO))
		return;
	/* An attacker must not be able to flood the error log: at most
	 * `rate` lines a second; what is left out is counted and said. */
	if (sec != w->refusal_log_sec) {
		w->refusal_log_sec = sec;
		w->refusal_log_n = 0;
	}
	if (rate && w->refusal_log_n >= rate) {
		/* said at the next second even if no refusal follows */
		if (w->refusal_log_dropped++ == 0)
			moat_timer_set(&w->loop.timers, &w->refusal_timer, (sec + 1) * 1000);
		return;
	}
	w->refusal_log_n++;
	if (w->refusal_log_dropped) {
		moat_log(MOAT_LOGL_INFO, "w%u: %llu refusals not logged (log.refusal_rate %u/s)", w->id,
			 w->refusal_log_dropped, rate);
		w->refusal_log_dropped = 0;
	}
	if (client == NULL) {
		moat_sock_ntop((const struct sockaddr *)&c->peer, ip, sizeof(ip));
		client = ip;
	}
	if (status == 0)
		moat_log(MOAT_LOGL_INFO, "w%u c%llu %s: closed: %s", w->id, (unsigned long long)c->id, client, why);
	else
		moat_log(MOAT_LOGL_INFO, "w%u c%llu %s: %d %s", w->id, (unsigned long long)c->id, client, status,
			 why);
}

/* Answers a request that never reached a txn and closes. */
void moat_client_head_error(struct moat_client *c, int status, const char *why)
{
	moat_client_log_refusal(c, status, why);
	MOAT_STAT_INC(c->w->stats.refusals[moat_refusal_of_status(status)]);
	if (status != 408)
		moat_phase_offense(c, NULL, MOAT_OFFENSE_MALFORMED);
	if (status >= 400 && status < 500)
		moat_phase_offense(c, NULL, MOAT_OFFENSE_4XX);
	moat_buf_release(&c->in);
	moat_errpage_write(&c->out, status, 0, 0);
	moat_client_closing(c);
}

/* Ends a txn with moat's own response, or by closing when the response
 * has started already. */
static int run_head(struct moat_client *c)
{
	const struct moat_conf *conf = cur_conf(c);
	struct moat_worker *w = c->w;
	struct moat_h1_limits lim = {
		.request_line_max = conf->limits.request_line_max,
		.header_size_max = conf->limits.header_size_max,
		.header_count_max = conf->limits.header_count_max,
	};
	struct moat_h1_head h;
	ssize_t r;
	int rc;

	if (w->stopping && moat_buf_len(&c->in) == 0) {
		moat_client_close(c);
		return -1;
	}
	if (moat_buf_len(&c->in) == 0 || c->io.can_read) {
		r = moat_io_read(c->ev.fd, &c->io, &c->in);
		if (r < 0) {
			moat_client_close(c);
			return -1;
		}
		if (moat_buf_len(&c->in) == 0) {
			if (c->io.eof) {
				moat_client_close(c);
				return -1;
			}
			return 0;
		}
	}
	if (!c->head_deadline_set) {
		c->head_deadline = w->loop.now_ms + conf->timeouts.client_header;
		c->head_deadline_set = 1;
	}
	if (c->h2c_ok && c->requests == 0 && moat_buf_head(&c->in)[0] == 'P') {
		/* HTTP/2 with prior knowledge: the connection preface */
		size_t n = moat_buf_len(&c->in);

		if (n > MOAT_H2_PREFACE_LEN)
			n = MOAT_H2_PREFACE_LEN;
		if (memcmp(moat_buf_head(&c->in), MOAT_H2_PREFACE, n) == 0) {
			if (n < MOAT_H2_PREFACE_LEN)
				return c->io.can_read && !c->io.eof ? 1 : 0;
			return moat_h2conn_start(c) < 0 ? -1 : 1;
		}
	}
	memset(&h, 0, sizeof(h));
	h.headers = w->hdrs;
	h.header_cap = w->hdrs_cap;
	rc = moat_h1_parse_request(moat_buf_head(&c->in), moat_buf_len(&c->in), &h, &lim);
	if (rc == MOAT_AGAIN) {
		if (c->io.eof) {
			moat_client_close(c);
			return -1;
		}
		if (c->io.can_read && moat_buf_reserve(&c->in, 1) > 0)
			return 1; /* more may be waiting */
		return 0;
	}
	if (rc < 0) {
		moat_client_head_error(c, parse_status(rc), "malformed request head");
		return 1;
	}
	c->last_read_ms = c->last_write_ms = w->loop.now_ms;
	moat_txn_start(c, &h, (size_t)rc);
	return 1;
}

/* Bytes written to the socket that the peer has not taken yet. */
static uint64_t unsent(int fd)
{
	int n = 0;

	if (ioctl(fd, SIOCOUTQ, &n) < 0 || n < 0)
		return 0;
	return (uint64_t)n;
}

/* The earlier of the idle deadline and the one the minimum rate sets: a
 * transfer that started at `start` and moved `bytes` must end its grace
 * (`grace` ms) plus one second per `rate` bytes. Marks the conn slow when
 * the rate's deadline is the one that counts. */
static uint64_t rate_deadline(struct moat_client *c, uint64_t idle, uint64_t start, uint64_t bytes, uint64_t grace,
			      uint64_t rate)
{
	uint64_t d;

	if (!rate)
		return idle;
	d = start + grace + (bytes > UINT64_MAX / 1000 ? UINT64_MAX / 2 : bytes * 1000 / rate);
	if (d < idle) {
		c->slow = 1;
		return d;
	}
	return idle;
}

/* Between requests, the last response may still sit in the kernel's send
 * queue: a response that fit there was written whole, and a slow reader
 * would hold that memory until the keep-alive timeout. While bytes wait
 * there, the client must take them at min_send_rate (after the grace of
 * client_send). Looked at (one ioctl) only once DRAIN_CHECK bytes were
 * written since the queue was last seen empty. */
#define DRAIN_CHECK (16u * 1024u)

static uint64_t drain_deadline(struct moat_client *c, const struct moat_conf *conf, uint64_t now, uint64_t idle)
{
	uint64_t q, took;

	if (!conf->limits.min_send_rate || c->io.nwritten - c->drained_at < DRAIN_CHECK)
		return idle;
	q = unsent(c->ev.fd);
	if (q == 0) {
		c->drained_at = c->io.nwritten;
		c->send_started_ms = 0;
		return idle;
	}
	took = c->io.nwritten - q;
	if (!c->send_started_ms) {
		c->send_started_ms = now;
		c->send_base = took;
	}
	return rate_deadline(c, idle, c->send_started_ms, took > c->send_base ? took - c->send_base : 0,
			     conf->timeouts.client_send, conf->limits.min_send_rate);
}

static void arm_client_timer(struct moat_client *c)
{
	struct moat_worker *w = c->w;
	const struct moat_conf *conf;
	uint64_t deadline = 0, now = w->loop.now_ms;

	if (c->dead)
		return;
	switch (c->state) {
	case MOAT_C_HEAD:
		conf = cur_conf(c);
		if (c->head_deadline_set) {
			deadline = c->head_deadline;
		} else {
			deadline = now + conf->timeouts.keepalive;
			c->slow = 0;
			deadline = drain_deadline(c, conf, now, deadline);
		}
		break;
	case MOAT_C_TXN:
		/* Deadlines run from the last byte that moved, not from the
		 * last event: a backend's events must not keep a client that
		 * neither reads nor sends alive. */
		conf = txn_conf(c->txn);
		if (c->io.nwritten != c->seen_written) {
			c->seen_written = c->io.nwritten;
			c->last_write_ms = now;
		}
		if (c->io.nread != c->seen_read) {
			c->seen_read = c->io.nread;
			c->last_read_ms = now;
		}
		c->slow = 0;
		if (c->txn->phase == MOAT_TXN_TUNNEL) {
			deadline = 0;
		} else if (c->txn->phase == MOAT_TXN_HOLD) {
			deadline = c->txn->hold_until;
		} else if (!c->io.can_write) { /* a write fell short: the client is not reading */
			deadline = c->last_write_ms + conf->timeouts.client_send;
			/* slow read: while it holds us up, it must read at
			 * min_send_rate on average, after a grace of client_send */
			if (conf->limits.min_send_rate) {
				/* what the client took: written, less what still
				 * waits in our socket's send queue */
				uint64_t took = c->io.nwritten - unsent(c->ev.fd);

				if (!c->send_started_ms) {
					c->send_started_ms = now;
					c->send_base = took;
				}
				deadline = rate_deadline(c, deadline, c->send_started_ms,
							 took > c->send_base ? took - c->send_base : 0,
							 conf->timeouts.client_send, conf->limits.min_send_rate);
			}
			/* the client is not reading: the defence against slow
			 * readers fires either way */
			c->slow = 1;
		} else if (!c->txn->req_done &&
			   (c->txn->phase == MOAT_TXN_EXCHANGE || c->txn->phase == MOAT_TXN_INSPECT)) {
			deadline = c->last_read_ms + conf->timeouts.client_body;
			/* slow body: while moat waits for it (not while it
			 * holds the client back), min_body_rate on average */
			if (!c->io.can_read) {
				if (!c->body_started_ms) {
					c->body_started_ms = now;
					c->body_base = c->io.nread;
				}
				deadline = rate_deadline(c, deadline, c->body_started_ms, c->io.nread - c->body_base,
							 conf->timeouts.client_body, conf->limits.min_body_rate);
			} else {
				c->body_started_ms = 0;
			}
		}
		if (c->io.can_write)
			c->send_started_ms = 0;
		break;
	case MOAT_C_PROXY_HDR:
	case MOAT_C_TLS:
		deadline = c->head_deadline;
		break;
	case MOAT_C_CLOSING:
		deadline = c->close_deadline;
		break;
	case MOAT_C_H2:
		deadline = moat_h2conn_deadline(c);
		break;
	}
	if (deadline)
		moat_timer_set(&w->loop.timers, &c->timer, deadline);
	else
		moat_timer_stop(&w->loop.timers, &c->timer);
}

void moat_client_run(struct moat_client *c)
{
	for (int guard = 0; guard < 256 && !c->dead; guard++) {
		int r = 0;

		switch (c->state) {
		case MOAT_C_HEAD:
			r = run_head(c);
			break;
		case MOAT_C_PROXY_HDR:
			r = run_proxy_hdr(c);
			break;
		case MOAT_C_TXN:
			r = moat_txn_run(c);
			break;
		case MOAT_C_CLOSING:
			r = run_closing(c);
			break;
		case MOAT_C_TLS:
			r = moat_client_run_tls(c);
			break;
		case MOAT_C_H2:
			r = moat_h2conn_run(c);
			break;
		}
		if (r == 0)
			break;
	}
	arm_client_timer(c);
}

static void client_event(struct moat_ev *ev, uint32_t events)
{
	struct moat_client *c = (struct moat_client *)ev;

	if (c->dead)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->io.can_read = 1;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->io.hup = 1;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
		c->io.can_write = 1;
		if (c->io.rd_wants_wr) {
			c->io.rd_wants_wr = 0;
			c->io.can_read = 1;
		}
	}
	moat_client_run(c);
}

static void client_timeout(struct moat_timer *tm)
{
	struct moat_client *c = (struct moat_client *)((char *)tm - offsetof(struct moat_client, timer));

	if (c->dead)
		return;
	switch (c->state) {
	case MOAT_C_HEAD:
		if (moat_buf_len(&c->in) && c->head_deadline_set) {
			moat_client_head_error(c, 408, "request head timeout");
			moat_client_run(c);
			return;
		}
		if (c->slow && !c->head_deadline_set) {
			/* the send queue's deadline: still behind? */
			const struct moat_conf *conf = cur_conf(c);
			uint64_t now = c->w->loop.now_ms, idle = c->last_read_ms + conf->timeouts.keepalive;

			c->slow = 0;
			if (drain_deadline(c, conf, now, idle) > now || !c->slow) {
				arm_client_timer(c);
				return;
			}
			MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_SLOW]);
			moat_client_log_refusal(c, 0, "response read slower than limits.min_send_rate");
		}
		moat_client_close(c);
		return;
	case MOAT_C_TXN:
		if (c->txn->phase == MOAT_TXN_HOLD) {
			moat_client_run(c);
			return;
		}
		if (c->slow) {
			MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_SLOW]);
			moat_client_log_refusal_as(c, moat_txn_client_text(c->txn), c->txn->resp_started ? 0 : 408,
						   c->io.can_write ? "request body slower than limits.min_body_rate" :
								     "response read slower than limits.min_send_rate");
		}
		if (!c->txn->resp_started && !c->txn->req_done) {
			c->txn->keepalive = 0;
			if (c->slow)
				moat_txn_answer(c, 408, NULL, 0, NULL);
			else
				moat_txn_error(c, 408);
			moat_client_run(c);
			return;
		}
		moat_client_close(c);
		return;
	case MOAT_C_PROXY_HDR:
		MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_PROXY_PROTOCOL]);
		moat_client_close(c);
		return;
	case MOAT_C_TLS:
		MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_TLS]);
		moat_client_log_refusal(c, 0, "TLS handshake timeout");
		moat_client_close(c);
		return;
	case MOAT_C_CLOSING:
	case MOAT_C_H2:
		moat_client_close(c);
		return;
	}
}

void moat_client_stop_idle(struct moat_client *c)
{
	if (c->state == MOAT_C_H2)
		moat_h2conn_stop(c);
	else if ((c->state == MOAT_C_HEAD && moat_buf_len(&c->in) == 0) || c->state == MOAT_C_TLS)
		moat_client_close(c);
}

void moat_client_abort(struct moat_client *c)
{
	moat_client_close(c);
}

