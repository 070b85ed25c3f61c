/*
 * io.h - reads and writes of one non-blocking, edge-triggered socket,
 * keeping its moat_io flags true.
 *
 * A short read or write clears the readiness flag: with edge-triggered
 * epoll the kernel reports the next change, so the EAGAIN round trip is
 * saved.
 */
#ifndef MOAT_PROXY_IO_H
#define MOAT_PROXY_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "proxy/proxy.h"

/* Reads once into `b`. Returns bytes read, 0 when nothing was read (would
 * block, no room, or EOF: io->eof then set) or -errno. */
ssize_t moat_io_read(int fd, struct moat_io *io, struct moat_buf *b);

/*
 * Writes `out`'s pending bytes, then iov[0..n). Returns how many bytes of
 * the iov were written, or -errno on a fatal error. With `copy_rest` the
 * unwritten iov bytes are appended to `out` (-ENOBUFS if they do not fit);
 * otherwise they stay the caller's to send later.
 */
ssize_t moat_io_sendv(int fd, struct moat_io *io, struct moat_buf *out, const struct iovec *iov,
		      int n, int copy_rest);

/* Writes what `out` holds; returns the bytes written or -errno. */
ssize_t moat_io_flush(int fd, struct moat_io *io, struct moat_buf *out);

/* Ends the write side: the transport's (TLS close_notify), then the
 * socket's (fd < 0: none). Once. */
void moat_io_shutdown(int fd, struct moat_io *io);

#endif
