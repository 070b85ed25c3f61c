/*
 * io.c - socket reads and writes with readiness bookkeeping (see io.h).
 */
#include "proxy/io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_WANT (16u * 1024u)
#define MAX_IOV 16

ssize_t moat_io_read(int fd, struct moat_io *io, struct moat_buf *b)
{
	size_t room;
	ssize_t r;

	if (!io->can_read || io->eof)
		return 0;
	room = moat_buf_reserve(b, READ_WANT);
	if (room == 0)
		return 0;
	if (io->xp) {
		r = io->xp->read(io->xa, io, b->data + b->end, room);
		if (r > 0) {
			b->end += (size_t)r;
			io->nread += (uint64_t)r;
		} else if (moat_buf_len(b) == 0) {
			moat_buf_release(b);
		}
		return r;
	}
	r = read(fd, b->data + b->end, room);
	if (r > 0) {
		b->end += (size_t)r;
		io->nread += (uint64_t)r;
		/* A short read drained the socket: the next edge will say
		 * when more comes -- unless the FIN was already reported,
		 * whose edge is spent: then read on to EOF. */
		if ((size_t)r < room && !io->hup)
			io->can_read = 0;
		return r;
	}
	if (moat_buf_len(b) == 0)
		moat_buf_release(b);
	if (r == 0) {
		io->eof = 1;
		io->can_read = 0;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		io->can_read = 0;
		return 0;
	}
	if (errno == EINTR)
		return 0;
	return -errno;
}

/*
 * Writes through a transport: small pieces are gathered into one buffer
 * first (one TLS record, one frame, instead of one per piece). A transport
 * that took nothing must be offered the same bytes again (TLS's rule): the
 * caller keeps them first in line, and the gathering takes the same prefix.
 */
#define GATHER (16u * 1024u)

static ssize_t xport_writev(struct moat_io *io, const struct iovec *v, int nv, size_t total)
{
	char gather[GATHER];
	size_t done = 0;

	while (done < total && io->can_write) {
		const char *p;
		size_t len, skip = done, got = 0;
		int i = 0;
		ssize_t w;

		while (skip >= v[i].iov_len) {
			skip -= v[i].iov_len;
			i++;
		}
		if (v[i].iov_len - skip >= GATHER || i == nv - 1) {
			p = (const char *)v[i].iov_base + skip;
			len = v[i].iov_len - skip;
		} else {
			for (; i < nv && got < GATHER; i++, skip = 0) {
				size_t l = v[i].iov_len - skip;

				if (l > GATHER - got)
					l = GATHER - got;
				memcpy(gather + got, (const char *)v[i].iov_base + skip, l);
				got += l;
			}
			p = gather;
			len = got;
		}
		w = io->xp->write(io->xa, io, p, len);
		if (w < 0)
			return w;
		if (w == 0)
			break;
		done += (size_t)w;
		io->nwritten += (uint64_t)w;
	}
	return (ssize_t)done;
}

ssize_t moat_io_sendv(int fd, struct moat_io *io, struct moat_buf *out, const struct iovec *iov,
		      int n, int copy_rest)
{
	struct iovec v[MAX_IOV + 1];
	size_t pending = moat_buf_len(out), total = 0, iovtot, written_iov;
	ssize_t w = 0;
	int nv = 0;

	if (pending) {
		v[nv].iov_base = moat_buf_head(out);
		v[nv].iov_len = pending;
		nv++;
	}
	for (int i = 0; i < n && i < MAX_IOV; i++) {
		if (iov[i].iov_len == 0)
			continue;
		v[nv++] = iov[i];
	}
	for (int i = 0; i < nv; i++)
		total += v[i].iov_len;
	iovtot = total - pending;
	if (total == 0)
		return 0;
	if (io->can_write && io->xp) {
		w = xport_writev(io, v, nv, total);
		if (w < 0)
			return w;
	} else if (io->can_write) {
		w = writev(fd, v, nv);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				w = 0;
				io->can_write = 0;
			} else {
				return -errno;
			}
		} else {
			io->nwritten += (uint64_t)w;
			if ((size_t)w < total)
				io->can_write = 0;
		}
	}
	if ((size_t)w <= pending) {
		moat_buf_consume(out, (size_t)w);
		written_iov = 0;
	} else {
		moat_buf_consume(out, pending);
		written_iov = (size_t)w - pending;
	}
	if (copy_rest && written_iov < iovtot) {
		size_t skip = written_iov;

		for (int i = 0; i < n && i < MAX_IOV; i++) {
			const char *p = iov[i].iov_base;
			size_t l = iov[i].iov_len;

			if (skip >= l) {
				skip -= l;
				continue;
			}
			if (moat_buf_append(out, p + skip, l - skip) < 0)
				return -ENOBUFS;
			skip = 0;
		}
	}
	return (ssize_t)written_iov;
}

ssize_t moat_io_flush(int fd, struct moat_io *io, struct moat_buf *out)
{
	size_t before = moat_buf_len(out);
	ssize_t r;

	if (before == 0)
		return 0;
	r = moat_io_sendv(fd, io, out, NULL, 0, 0);
	if (r < 0)
		return r;
	return (ssize_t)(before - moat_buf_len(out));
}

void moat_io_shutdown(int fd, struct moat_io *io)
{
	if (io->wr_shut)
		return;
	io->wr_shut = 1;
	if (io->xp && io->xp->shutdown)
		io->xp->shutdown(io->xa, io);
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
}
