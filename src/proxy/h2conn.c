/*
 * h2conn.c - HTTP/2 client connections (ALPN h2 over TLS, or cleartext
 * prior knowledge).
 *
 * The connection is a client conn in state MOAT_C_H2 owning an HTTP/2
 * session (http/h2s.h). Each stream runs as a virtual client conn: a
 * struct moat_client with no socket whose transport (struct moat_xport) is
 * the stream. Its request arrives as HTTP/1.1 bytes the session made from
 * the frames, and the response the txn writes goes back to the session,
 * which frames it. So routing, modules, balancing, retries, caching and
 * compression, logs and limits are the same code for HTTP/1 and HTTP/2.
 *
 *   socket <-> (TLS) <-> parent conn: moat_h2s_feed / moat_h2s_flush
 *                              |
 *            stream 1 <-> virtual client -> txn -> backend pools
 *            stream 3 <-> virtual client -> txn -> ...
 *
 * The session's callbacks only queue a stream (ready list); the parent
 * runs queued streams after the session call returns. A stream's writes
 * mark the parent dirty; dirty parents flush at the end of the loop
 * iteration (one deferred task per worker), so the frames of every stream
 * that moved in an iteration go out in one write.
 *
 * Lifetimes: a stream record (struct h2stream) lives until the session
 * says the stream closed, or the parent closes; its virtual client may go
 * first (the txn ended): the record then forgets it. A reset stream closes
 * its virtual client, which cancels its txn and backend connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/h2s.h"
#include "proxy/io.h"
#include "proxy/proxy.h"
#include "tls/tls.h"

#define H2_OUT_LOW (64u * 1024u)   /* produce frames while the output holds less */

struct h2stream {
	struct moat_h2conn *hc;
	struct moat_client *vc;        /* NULL once the virtual client closed */
	struct h2stream *next, *prev;  /* the connection's streams */
	struct h2stream *rnext;        /* ready list */
	unsigned queued : 1, closed : 1;
	int32_t id;
};

struct moat_h2conn {
	struct moat_client *c;
	struct moat_h2s *s;
	struct h2stream *streams;
	struct h2stream *ready;
	struct moat_h2conn *dirty_next;
	unsigned nstreams;
	unsigned dirty : 1, failed : 1;
};

static void mark_dirty(struct moat_h2conn *hc)
{
	struct moat_worker *w = hc->c->w;

	if (hc->dirty)
		return;
	hc->dirty = 1;
	hc->dirty_next = w->h2_dirty;
	w->h2_dirty = hc;
	moat_loop_defer(&w->loop, &w->h2_flush);
}

void moat_h2conn_flush_dirty(struct moat_defer *d)
{
	struct moat_worker *w = (struct moat_worker *)((char *)d - offsetof(struct moat_worker, h2_flush));

	while (w->h2_dirty) {
		struct moat_h2conn *hc = w->h2_dirty;

		w->h2_dirty = hc->dirty_next;
		hc->dirty = 0;
		if (!hc->c->dead)
			moat_client_run(hc->c);
	}
}

static void queue(struct h2stream *st)
{
	if (st->queued)
		return;
	st->queued = 1;
	st->rnext = st->hc->ready;
	st->hc->ready = st;
}

/* ---- the stream transport ---- */

static ssize_t st_read(void *x, struct moat_io *io, char *p, size_t n)
{
	struct h2stream *st = x;
	int ended = 0;
	ssize_t r;

	if (!st || st->closed) {
		io->eof = 1;
		io->can_read = 0;
		return 0;
	}
	r = moat_h2s_req_read(st->hc->s, st, p, n, &ended);
	if (r > 0) {
		mark_dirty(st->hc); /* WINDOW_UPDATE */
		return r;
	}
	io->can_read = 0;
	if (r < 0 || ended)
		io->eof = 1;
	return 0;
}

static ssize_t st_write(void *x, struct moat_io *io, const char *p, size_t n)
{
	struct h2stream *st = x;
	ssize_t r;

	if (!st || st->closed)
		return -EPIPE;
	r = moat_h2s_resp_write(st->hc->s, st, p, n);
	if (r < 0)
		return -EPIPE;
	if ((size_t)r < n)
		io->can_write = 0;
	if (r > 0)
		mark_dirty(st->hc);
	return r;
}

static const struct moat_xport stream_xport = {
	.read = st_read,
	.write = st_write,
	.shutdown = NULL,
};

void moat_h2stream_gone(struct moat_client *vc)
{
	struct h2stream *st = vc->io.xa;

	vc->io.xa = NULL;
	if (!st)
		return;
	st->vc = NULL;
	if (!st->closed) {
		moat_h2s_resp_end(st->hc->s, st);
		mark_dirty(st->hc);
	}
}

static void stream_free(struct h2stream *st)
{
	struct moat_h2conn *hc = st->hc;

	if (st->prev)
		st->prev->next = st->next;
	else
		hc->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	hc->nstreams--;
	free(st);
}

/* Detaches and closes a stream's virtual client. */
static void stream_drop_vc(struct h2stream *st)
{
	struct moat_client *vc = st->vc;

	if (!vc)
		return;
	st->vc = NULL;
	vc->io.xa = NULL;
	moat_client_close(vc);
}

/* ---- the session's callbacks: they only queue ---- */

static void *cb_open(void *ud, int32_t id, const char *head, size_t len)
{
	struct moat_h2conn *hc = ud;
	struct h2stream *st;
	struct moat_client *vc;

	if (hc->c->w->stopping)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	vc = moat_client_virtual(hc->c);
	if (!vc) {
		free(st);
		return NULL;
	}
	if (moat_buf_append(&vc->in, head, len) < 0) {
		moat_client_close(vc);
		free(st);
		return NULL;
	}
	st->hc = hc;
	st->vc = vc;
	st->id = id;
	st->next = hc->streams;
	if (st->next)
		st->next->prev = st;
	hc->streams = st;
	hc->nstreams++;
	vc->io.xp = &stream_xport;
	vc->io.xa = st;
	MOAT_STAT_INC(hc->c->w->stats.h2_streams);
	queue(st);
	return st;
}

static void cb_readable(void *ud, void *sp)
{
	struct h2stream *st = sp;

	if (st->vc)
		st->vc->io.can_read = 1;
	queue(st);
}

static void cb_writable(void *ud, void *sp)
{
	struct h2stream *st = sp;

	if (st->vc)
		st->vc->io.can_write = 1;
	queue(st);
}

static void cb_closed(void *ud, void *sp, uint32_t error_code)
{
	struct h2stream *st = sp;

	st->closed = 1;
	queue(st);
}

static const struct moat_h2s_ops h2_ops = {
	.open = cb_open,
	.readable = cb_readable,
	.writable = cb_writable,
	.closed = cb_closed,
};

/* Runs the queued streams; closed ones are dropped. */
static int run_ready(struct moat_h2conn *hc)
{
	int progress = 0;

	while (hc->ready && !hc->c->dead) {
		struct h2stream *st = hc->ready;

		hc->ready = st->rnext;
		st->queued = 0;
		progress = 1;
		if (st->closed) {
			stream_drop_vc(st);
			stream_free(st);
			continue;
		}
		if (st->vc && !st->vc->dead)
			moat_client_run(st->vc);
	}
	return progress;
}

/* ---- the connection ---- */

int moat_h2conn_start(struct moat_client *c)
{
	const struct moat_conf *conf = c->w->conf->ref->conf;
	struct moat_h2s_limits lim;
	struct moat_h2conn *hc = calloc(1, sizeof(*hc));
	int one = 1;

	memset(&lim, 0, sizeof(lim));
	lim.header_list_max = conf->limits.header_size_max;
	lim.header_count_max = conf->limits.header_count_max;
	lim.max_streams = conf->limits.h2_streams;
	if (hc)
		hc->s = moat_h2s_new(&h2_ops, hc, &lim);
	if (!hc || !hc->s) {
		free(hc);
		moat_client_close(c);
		return -1;
	}
	hc->c = c;
	c->h2 = hc;
	c->state = MOAT_C_H2;
	c->head_deadline_set = 0;
	c->last_read_ms = c->w->loop.now_ms;
	MOAT_STAT_INC(c->w->stats.h2_conns);
	if (!c->nodelay) {
		setsockopt(c->ev.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->nodelay = 1;
	}
	return 0;
}

int moat_h2conn_run(struct moat_client *c)
{
	struct moat_h2conn *hc = c->h2;

	for (int round = 0; round < 64 && !c->dead; round++) {
		int moved = 0;
		ssize_t r;

		if (c->io.can_read && !c->io.eof && !hc->failed && moat_buf_len(&c->in) == 0) {
			r = moat_io_read(c->ev.fd, &c->io, &c->in);
			if (r < 0) {
				moat_client_close(c);
				return -1;
			}
			if (r > 0) {
				c->last_read_ms = c->w->loop.now_ms;
				moved = 1;
			}
		}
		if (moat_buf_len(&c->in)) {
			r = hc->failed ? -1 :
					 moat_h2s_feed(hc->s, (const uint8_t *)moat_buf_head(&c->in), moat_buf_len(&c->in));
			if (r < 0) {
				if (!hc->failed) {
					MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_H2]);
					moat_client_log_refusal(c, 0, "HTTP/2 protocol error or flood (GOAWAY sent)");
				}
				hc->failed = 1;
				r = (ssize_t)moat_buf_len(&c->in);
			}
			moat_buf_consume(&c->in, (size_t)r);
			moved = 1;
		}
		if (run_ready(hc))
			moved = 1;
		if (c->dead)
			return -1;
		if (moat_buf_len(&c->out) < H2_OUT_LOW) {
			r = moat_h2s_flush(hc->s, &c->out);
			if (r < 0) {
				moat_client_close(c);
				return -1;
			}
			if (r > 0)
				moved = 1;
		}
		if (moat_buf_len(&c->out)) {
			r = moat_io_flush(c->ev.fd, &c->io, &c->out);
			if (r < 0) {
				moat_client_close(c);
				return -1;
			}
			if (r > 0) {
				c->last_write_ms = c->w->loop.now_ms;
				moved = 1;
			}
		}
		if (run_ready(hc))
			moved = 1;
		if (moat_buf_len(&c->out) == 0 && !moat_h2s_want_write(hc->s)) {
			if (c->io.eof && moat_buf_len(&c->in) == 0) {
				moat_client_close(c);
				return -1;
			}
			if (hc->failed || moat_h2s_done(hc->s)) {
				/* GOAWAY sent: half-close and drain what the client
				 * still sends, so no reset overtakes the GOAWAY */
				moat_h2conn_close(c);
				moat_client_closing(c);
				return 1;
			}
		}
		if (!moved)
			break;
	}
	if (moat_buf_len(&c->in) == 0)
		moat_buf_release(&c->in);
	if (moat_buf_len(&c->out) == 0)
		moat_buf_release(&c->out);
	return 0;
}

uint64_t moat_h2conn_deadline(struct moat_client *c)
{
	struct moat_h2conn *hc = c->h2;
	const struct moat_conf *conf = c->w->conf->ref->conf;

	if (moat_buf_len(&c->out) && !c->io.can_write) {
		if (!c->send_started_ms) {
			/* the client stopped reading: client_send from now */
			c->send_started_ms = 1;
			c->last_write_ms = c->w->loop.now_ms;
		}
		return c->last_write_ms + conf->timeouts.client_send;
	}
	c->send_started_ms = 0;
	if (hc->nstreams == 0)
		return c->last_read_ms + conf->timeouts.keepalive;
	return 0;
}

void moat_h2conn_stop(struct moat_client *c)
{
	struct moat_h2conn *hc = c->h2;

	moat_h2s_shutdown(hc->s);
	mark_dirty(hc);
}

void moat_h2conn_close(struct moat_client *c)
{
	struct moat_h2conn *hc = c->h2;
	struct moat_worker *w = c->w;

	if (!hc)
		return;
	if (hc->dirty) {
		for (struct moat_h2conn **p = &w->h2_dirty; *p; p = &(*p)->dirty_next)
			if (*p == hc) {
				*p = hc->dirty_next;
				break;
			}
	}
	while (hc->streams) {
		struct h2stream *st = hc->streams;

		stream_drop_vc(st);
		stream_free(st);
	}
	moat_h2s_free(hc->s);
	free(hc);
	c->h2 = NULL;
}

void moat_h2conn_retire(struct moat_client *c, uint64_t now)
{
	struct moat_h2conn *hc = c->h2;
	struct moat_worker *w = c->w;

	if (!hc)
		return;
	for (struct h2stream *st = hc->streams; st; st = st->next) {
		struct moat_client *vc = st->vc;

		if (!vc || vc->dead || !vc->txn || vc->txn->wc == w->conf || !vc->txn->wc->retire_at ||
		    vc->txn->wc->retire_at > now)
			continue;
		MOAT_INFO("w%u c%llu: stream closed: its config generation %llu was replaced %llu ms ago", w->id,
			  (unsigned long long)c->id, (unsigned long long)vc->txn->wc->ref->generation,
			  (unsigned long long)vc->txn->wc->ref->conf->timeouts.drain);
		/* the record stays until the session says the stream closed */
		moat_client_abort(vc);
	}
}
