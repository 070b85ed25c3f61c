/*
 * h2up.c - HTTP/2 towards a backend (h2c:// and h2:// servers): the
 * transport under a backend conn's moat_io that turns the txn's HTTP/1.1
 * request into a stream and the stream's response back into HTTP/1.1
 * (http/h2c.h), over the socket or TLS.
 *
 * One exchange at a time per connection, as with HTTP/1.1; the connection
 * goes back to the idle pool after it (its next request is the next
 * stream). While idle, frames the server sends (a late WINDOW_UPDATE, a
 * PING) are taken; EOF, an error or a GOAWAY closes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/h2c.h"
#include "proxy/io.h"
#include "proxy/proxy.h"
#include "tls/tls.h"

#define WIRE_MAX (256u * 1024u)

struct h2up {
	struct moat_h2c *h;
	struct moat_bconn *b;
	struct moat_buf win, wout;   /* frames read, frames to send */
	unsigned sock_blocked : 1;   /* the last socket write would block */
};

/* The socket (or TLS) under the session. */
static ssize_t raw_read(struct h2up *u, struct moat_io *io)
{
	struct moat_bconn *b = u->b;
	size_t room = moat_buf_reserve(&u->win, 16384);
	ssize_t r;

	if (room == 0 || !io->can_read || io->eof)
		return 0;
	if (b->tls) {
		r = moat_tls_read(b->tls, u->win.data + u->win.end, room);
		if (r > 0) {
			u->win.end += (size_t)r;
			return r;
		}
		if (r == 0) {
			io->eof = 1;
			return 0;
		}
		if (r == MOAT_TLS_WANT_READ || r == MOAT_TLS_WANT_WRITE) {
			io->can_read = 0;
			return 0;
		}
		return -EIO;
	}
	r = read(b->ev.fd, u->win.data + u->win.end, room);
	if (r > 0) {
		u->win.end += (size_t)r;
		if ((size_t)r < room && !io->hup)
			io->can_read = 0;
		return r;
	}
	if (r == 0) {
		io->eof = 1;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR) {
		io->can_read = 0;
		return 0;
	}
	return -errno;
}

/*
 * Sends the session's frames. io->can_write is the core's flag: it also
 * goes to 0 when the session's buffer is full (flow control), while the
 * socket may take more; so the socket is always tried here (EAGAIN is
 * cheap), or frames a WINDOW_UPDATE let go would wait for an EPOLLOUT
 * that never comes.
 */
static int raw_flush(struct h2up *u, struct moat_io *io)
{
	struct moat_bconn *b = u->b;

	for (;;) {
		size_t n;
		ssize_t w;

		if (moat_buf_len(&u->wout) < 16384 && moat_h2c_flush(u->h, &u->wout) < 0)
			return -EIO;
		n = moat_buf_len(&u->wout);
		if (n == 0) {
			u->sock_blocked = 0;
			return 0;
		}
		if (b->tls) {
			w = moat_tls_write(b->tls, moat_buf_head(&u->wout), n);
			if (w == MOAT_TLS_WANT_WRITE || w == MOAT_TLS_WANT_READ) {
				u->sock_blocked = 1;
				io->can_write = 0;
				return 0;
			}
			if (w < 0)
				return -EPIPE;
		} else {
			w = write(b->ev.fd, moat_buf_head(&u->wout), n);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					u->sock_blocked = 1;
					io->can_write = 0;
					return 0;
				}
				return -errno;
			}
		}
		u->sock_blocked = 0;
		moat_buf_consume(&u->wout, (size_t)w);
	}
}

/* Reads and feeds what the socket has. Returns 1 when frames were fed
 * (a WINDOW_UPDATE may have opened a window), 0 when none, -errno on a
 * failed connection. */
static int pump_in(struct h2up *u, struct moat_io *io)
{
	int fed = 0;

	for (int i = 0; i < 64; i++) {
		ssize_t r = raw_read(u, io);

		if (r < 0)
			return (int)r;
		if (moat_buf_len(&u->win)) {
			ssize_t n = moat_h2c_feed(u->h, (const uint8_t *)moat_buf_head(&u->win), moat_buf_len(&u->win));

			if (n < 0)
				return -EPROTO;
			moat_buf_consume(&u->win, moat_buf_len(&u->win));
			fed = 1;
		}
		if (r == 0)
			break;
	}
	if (io->eof)
		moat_h2c_feed(u->h, NULL, 0);
	return fed;
}

static ssize_t up_read(void *x, struct moat_io *io, char *p, size_t n)
{
	struct h2up *u = x;
	int eof = 0, rc;
	ssize_t r;

	r = moat_h2c_read(u->h, p, n, &eof);
	if (r == 0 && !eof) {
		rc = pump_in(u, io);
		if (rc < 0)
			return rc;
		/* a window may have opened for request bytes the core holds */
		if (rc > 0 && !u->sock_blocked)
			io->can_write = 1;
		r = moat_h2c_read(u->h, p, n, &eof);
	}
	if (raw_flush(u, io) < 0)
		return -EPIPE;
	if (r < 0)
		return -EIO;
	if (r > 0) {
		io->can_read = 1; /* more may wait decoded */
		return r;
	}
	if (eof)
		io->eof = 1;
	io->can_read = 0;
	return 0;
}

static ssize_t up_write(void *x, struct moat_io *io, const char *p, size_t n)
{
	struct h2up *u = x;
	ssize_t r;

	size_t done = 0;

	for (;;) {
		int fed;

		if (raw_flush(u, io) < 0)
			return -EPIPE;
		r = moat_h2c_write(u->h, p + done, n - done);
		if (r < 0)
			return -EPIPE;
		done += (size_t)r;
		if (raw_flush(u, io) < 0)
			return -EPIPE;
		if (done == n)
			return (ssize_t)done;
		/* flow control: what the server's WINDOW_UPDATEs let go; while
		 * they open the window, go on (no event would say so later) */
		fed = pump_in(u, io);
		if (fed < 0)
			return -EPIPE;
		io->can_read = 1; /* the frames read may hold response bytes */
		if (!fed || u->sock_blocked)
			break;
	}
	io->can_write = 0;
	return (ssize_t)done;
}

static const struct moat_xport h2up_xport = {
	.read = up_read,
	.write = up_write,
	.shutdown = NULL,
};

int moat_h2up_start(struct moat_bconn *b, int tls)
{
	struct h2up *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->h = moat_h2c_new(tls ? "https" : "http");
	if (!u->h) {
		free(u);
		return -ENOMEM;
	}
	u->b = b;
	moat_buf_init(&u->win, &b->w->bufpool, WIRE_MAX);
	moat_buf_init(&u->wout, &b->w->bufpool, WIRE_MAX);
	b->h2 = u;
	b->io.xp = &h2up_xport;
	b->io.xa = u;
	return 0;
}

void moat_h2up_free(struct moat_bconn *b)
{
	struct h2up *u = b->h2;

	if (!u)
		return;
	moat_h2c_free(u->h);
	moat_buf_release(&u->win);
	moat_buf_release(&u->wout);
	free(u);
	b->h2 = NULL;
}

int moat_h2up_idle(struct moat_bconn *b)
{
	struct h2up *u = b->h2;

	if (pump_in(u, &b->io) < 0 || b->io.eof || raw_flush(u, &b->io) < 0)
		return -1;
	return moat_h2c_reusable(u->h) ? 0 : -1;
}

int moat_h2up_reusable(const struct moat_bconn *b)
{
	const struct h2up *u = b->h2;

	return moat_h2c_reusable(u->h);
}
