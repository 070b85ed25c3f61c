/*
 * xff.h - the client's address behind trusted proxies, from
 * X-Forwarded-For or Forwarded (RFC 7239), pure.
 *
 * When the peer of a connection is a trusted proxy (a load balancer, a
 * CDN), the client is not the peer: each proxy on the way appended the
 * address it received the request from. Everything left of the last
 * untrusted hop was written by the client and proves nothing, so the list
 * is read from the right: trusted hops are skipped, the first untrusted
 * one is the client. The caller decides first whether the peer itself is
 * trusted (if not, the headers are not looked at: the peer is the client).
 *
 *   X-Forwarded-For: 1.2.3.4, 198.51.100.7, 10.0.0.5     (peer 10.0.0.9)
 *                    ^ client-written  ^ client   ^ trusted hop, skipped
 */
#ifndef MOAT_HTTP_XFF_H
#define MOAT_HTTP_XFF_H

#include <sys/socket.h>

#include "http/h1_parse.h"

/* Which header to read. */
#define MOAT_XFF_X_FORWARDED_FOR 1 /* X-Forwarded-For */
#define MOAT_XFF_FORWARDED       2 /* Forwarded (RFC 7239), its for= parameters */

/*
 * Finds the client address in the head `h`: every field of the chosen
 * header, in order, is read as one comma-separated list (empty elements
 * and spaces / tabs around elements ignored), walked from the right.
 * `trusted(ctx, sa)` is called with each hop's address (port 0) and
 * returns nonzero for a trusted proxy (a NULL `trusted` trusts none).
 *
 * Returns 0 with *out / *outlen set (sockaddr_in or sockaddr_in6, port 0,
 * the family as written: an IPv4-mapped IPv6 stays AF_INET6) to:
 *   - the rightmost hop that is not trusted, or
 *   - the leftmost hop when every hop is trusted.
 * Returns -1, out untouched, when the header is absent or holds no
 * element, when `which` is unknown, or when the walk meets, before a hop
 * that settles it, an element that is not a usable address: garbage, a
 * name, "unknown", an obfuscated identifier ("_hidden"), an element of
 * Forwarded without (or with two) for=, or a Forwarded field that stops
 * parsing (unbalanced quote, bad pair): its elements from the fault on
 * count as one unusable element. The caller then keeps the peer address.
 * Elements left of the client are never trusted, so their form does not
 * matter.
 *
 * Element forms. X-Forwarded-For: 192.0.2.1, 192.0.2.1:8080, 2001:db8::1,
 * [2001:db8::1], [2001:db8::1]:8080 (addresses as core/cidr.h reads them,
 * ports 1..5 digits <= 65535); nothing else, no quotes. Forwarded: an
 * element is pairs "name=value" joined by ';' (spaces / tabs around ';'
 * allowed), value a token or a quoted string (with \-escapes); the for=
 * value (name case-insensitive) is an RFC 7239 node: IPv4 (token or
 * quoted), "[IPv6]" quoted, either with ":port" (digits or an obfuscated
 * port) inside quotes.
 *
 * Strings are read from the header values in h (not kept). No allocation;
 * thread-safe. `trusted` runs on the calling thread and must not modify
 * h. For X-Forwarded-For it is called from the right, only until the
 * client is found; Forwarded is read in one pass from the left (quoted
 * strings cannot be split from the right), so there it is called once
 * for every usable element, those left of the client too (the result is
 * the same as from the right).
 */
int moat_xff_client(const struct moat_h1_head *h, int which, int (*trusted)(void *ctx, const struct sockaddr *sa),
		    void *ctx, struct sockaddr_storage *out, socklen_t *outlen);

#endif
