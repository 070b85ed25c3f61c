/*
 * sock.c - socket helpers (see sock.h).
 */
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

int moat_sock_listen(const struct sockaddr *sa, socklen_t len, int backlog)
{
	int one = 1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	{
		int e = -errno;

		close(fd);
		return e;
	}
}

int moat_sock_connect(const struct sockaddr *sa, socklen_t len)
{
	int one = 1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Dotted quad without printf (glibc's inet_ntop formats IPv4 with
 * sprintf: ~1,700 instructions, on every request for X-Forwarded-For). */
static size_t ntop4(const unsigned char *b, char *out, size_t outlen)
{
	char tmp[16];
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (v >= 100)
			tmp[n++] = (char)('0' + v / 100);
		if (v >= 10)
			tmp[n++] = (char)('0' + v / 10 % 10);
		tmp[n++] = (char)('0' + v % 10);
		tmp[n++] = i < 3 ? '.' : '\0';
	}
	if (n > outlen) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	memcpy(out, tmp, n);
	return n - 1;
}

size_t moat_sock_ntop(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		return ntop4((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, out, outlen);
	if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		a = NULL;
	if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)outlen)) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	return strlen(out);
}

unsigned moat_sock_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int moat_sock_addr_eq(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}
