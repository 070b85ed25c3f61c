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
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"
#include "proxy/errpage.h"
#include "proxy/io.h"
#include "proxy/proxy.h"

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
	close(c->ev.fd);
	moat_buf_release(&c->in);
	moat_buf_release(&c->out);
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
		shutdown(c->ev.fd, SHUT_WR);
		c->io.wr_shut = 1;
		moat_buf_release(&c->in);
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

void moat_client_accept(struct moat_worker *w, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct moat_client *c = calloc(1, sizeof(*c));
	const struct moat_conf *conf = w->conf->ref->conf;

	if (!c) {
		close(fd);
		return;
	}
	c->w = w;
	c->id = ++w->next_id;
	memcpy(&c->peer, sa, len);
	c->peerlen = len;
	moat_buf_init(&c->in, &w->bufpool, conf->limits.header_size_max + BODY_IN_EXTRA);
	moat_buf_init(&c->out, &w->bufpool, CLIENT_OUT_MAX);
	c->ev.fd = fd;
	c->ev.cb = client_event;
	c->timer.cb = client_timeout;
	c->state = MOAT_C_HEAD;
	if (moat_loop_add(&w->loop, &c->ev, 1) < 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = w->clients;
	if (c->next)
		c->next->prev = c;
	w->clients = c;
	w->nclients++;
	MOAT_STAT_INC(w->stats.conns_accepted);
	/* The listener defers accept until data arrives: read at once. */
	c->io.can_read = 1;
	c->io.can_write = 1;
	c->head_deadline = w->loop.now_ms + conf->timeouts.client_header;
	c->head_deadline_set = 1;
	moat_client_run(c);
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

void moat_client_log_refusal(const struct moat_client *c, int status, const char *why)
{
	char ip[64];

	if (!moat_log_enabled(MOAT_LOGL_INFO))
		return;
	moat_sock_ntop((const struct sockaddr *)&c->peer, ip, sizeof(ip));
	moat_log(MOAT_LOGL_INFO, "w%u c%llu %s: %d %s", c->w->id, (unsigned long long)c->id, ip,
		 status, why);
}

/* Answers a request that never reached a txn and closes. */
void moat_client_head_error(struct moat_client *c, int status, const char *why)
{
	moat_client_log_refusal(c, status, why);
	MOAT_STAT_INC(c->w->stats.refusals[moat_refusal_of_status(status)]);
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
		if (c->head_deadline_set)
			deadline = c->head_deadline;
		else
			deadline = now + conf->timeouts.keepalive;
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
		if (c->txn->phase == MOAT_TXN_TUNNEL)
			deadline = 0;
		else if (!c->io.can_write) /* a write fell short: the client is not reading */
			deadline = c->last_write_ms + conf->timeouts.client_send;
		else if (!c->txn->req_done && c->txn->phase == MOAT_TXN_EXCHANGE)
			deadline = c->last_read_ms + conf->timeouts.client_body;
		break;
	case MOAT_C_CLOSING:
		deadline = c->close_deadline;
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
		case MOAT_C_TXN:
			r = moat_txn_run(c);
			break;
		case MOAT_C_CLOSING:
			r = run_closing(c);
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
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->io.can_write = 1;
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
		} else {
			moat_client_close(c);
		}
		return;
	case MOAT_C_TXN:
		if (!c->txn->resp_started && !c->txn->req_done) {
			c->txn->keepalive = 0;
			moat_txn_error(c, 408);
			moat_client_run(c);
			return;
		}
		moat_client_close(c);
		return;
	case MOAT_C_CLOSING:
		moat_client_close(c);
		return;
	}
}

void moat_client_stop_idle(struct moat_client *c)
{
	if (c->state == MOAT_C_HEAD && moat_buf_len(&c->in) == 0)
		moat_client_close(c);
}

void moat_client_abort(struct moat_client *c)
{
	moat_client_close(c);
}

