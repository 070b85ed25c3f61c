/*
 * sock.h - socket helpers: listening sockets (one per worker, with
 * SO_REUSEPORT), non-blocking connects, address text.
 */
#ifndef MOAT_CORE_SOCK_H
#define MOAT_CORE_SOCK_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address and port: what a client connection holds (28
 * bytes where a sockaddr_storage takes 128, on every idle connection). */
union moat_sa_ip {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* Opens a non-blocking listening TCP socket on `sa` with SO_REUSEADDR and
 * SO_REUSEPORT. Returns the fd or -errno. */
int moat_sock_listen(const struct sockaddr *sa, socklen_t len, int backlog);

/* Starts a non-blocking connect to `sa` (TCP_NODELAY set). Returns the fd
 * (connection possibly in progress) or -errno. */
int moat_sock_connect(const struct sockaddr *sa, socklen_t len);

/* Writes the address without port ("192.0.2.1", "2001:db8::1") into out;
 * returns its length. */
size_t moat_sock_ntop(const struct sockaddr *sa, char *out, size_t outlen);

/* Port in host order, 0 for other families. */
unsigned moat_sock_port(const struct sockaddr *sa);

/* Nonzero when the two addresses (family, address, port) are equal. */
int moat_sock_addr_eq(const struct sockaddr *a, const struct sockaddr *b);

#endif
