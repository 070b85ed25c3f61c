/*
 * proxyproto.h - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2), pure.
 *
 * On a listener that expects it, the PROXY header is the first thing a
 * trusted load balancer sends on a connection, before TLS or HTTP: it
 * tells the client's address and port, which then stand for the peer in
 * logs, ACLs and forwarding headers. The parser performs no I/O and no
 * allocation and keeps no state between calls: call it again with the
 * same (grown) buffer after MOAT_AGAIN. The header is required where it is
 * parsed, so anything that is not one is an error.
 *
 * For any prefix of an input the result is MOAT_AGAIN or the result for
 * the whole input: an error is reported as soon as the bytes seen prove
 * it, and a valid header never yields an error on one of its prefixes.
 * Every header is short (MOAT_PROXYPROTO_V1_MAX / MOAT_PROXYPROTO_V2_MAX),
 * so a caller that has read that much always gets an answer.
 *
 * Version 1 is a text line, read strictly:
 *   "PROXY TCP4 " src SP dst SP sport SP dport CRLF   (IPv4 addresses)
 *   "PROXY TCP6 " src SP dst SP sport SP dport CRLF   (IPv6 addresses)
 *   "PROXY UNKNOWN" [SP *(any byte but CR / LF)] CRLF (the rest ignored)
 * single spaces, addresses as core/cidr.h reads them (no leading zeros,
 * no zone), ports decimal 0..65535 without leading zero (but "0"), at
 * most 107 bytes with the CRLF.
 * Version 2 is binary: the 12-byte signature, version 2, command LOCAL or
 * PROXY, family / protocol, a 16-bit length, then that many bytes of
 * addresses and TLVs; at most MOAT_PROXYPROTO_V2_MAX bytes in all.
 *   LOCAL                  -> local (family, addresses and TLVs ignored)
 *   PROXY TCP4 / TCP6      -> the addresses and ports given
 *   PROXY UNSPEC           -> local (the block is ignored)
 *   PROXY UDP4 / UDP6 /
 *         UNIX STREAM/DGRAM -> local (addresses of no use to a TCP proxy)
 *   any other command, version or family / protocol byte -> error
 * For PROXY with a family other than UNSPEC the block must hold the
 * addresses (12, 36 or 216 bytes), and what follows them must be whole
 * TLVs (type, 16-bit length, value) ending exactly at the block's end;
 * their contents are not interpreted.
 */
#ifndef MOAT_HTTP_PROXYPROTO_H
#define MOAT_HTTP_PROXYPROTO_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/errors.h"

#define MOAT_PROXYPROTO_EBAD    (-5301) /* not a valid PROXY header: close */
#define MOAT_PROXYPROTO_ETOOBIG (-5302) /* v1 line without CRLF in 107 bytes, or v2 over V2_MAX: close */

#define MOAT_PROXYPROTO_V1_MAX 107u  /* bytes of a v1 line with its CRLF (the spec's limit) */
#define MOAT_PROXYPROTO_V2_MAX 4096u /* bytes of a v2 header: 16 + address block + TLVs */

/* What a PROXY header said. Owned by the caller (the conn). */
struct moat_proxyproto {
	int local;                    /* v2 LOCAL (or UNSPEC / UDP / UNIX) or v1 UNKNOWN:
				       * keep the socket's own addresses; src / dst unset */
	int version;                  /* 1 or 2 */
	struct sockaddr_storage src;  /* the client: sockaddr_in or sockaddr_in6, with port */
	struct sockaddr_storage dst;  /* the address the client connected to */
	socklen_t srclen, dstlen;     /* 0 when local */
};

/*
 * Parses a PROXY header (v1 or v2, told apart by the first byte) at the
 * start of buf[0..len). Returns the bytes the header takes (> 0; the
 * caller consumes them, what follows is the client's stream), MOAT_AGAIN
 * when buf is empty or a proper prefix of a valid header, or
 * MOAT_PROXYPROTO_EBAD / MOAT_PROXYPROTO_ETOOBIG. `out` is written only
 * when a header is returned (zeroed first: local headers leave src / dst
 * zero). Never reads past buf[len - 1]. No allocation; thread-safe.
 */
int moat_proxyproto_parse(const char *buf, size_t len, struct moat_proxyproto *out);

#endif
