/*
 * tls.h - TLS with OpenSSL 3 for listeners (servers) and for backends
 * (clients), over non-blocking sockets driven by edge-triggered epoll.
 *
 * Layer "tls": depends on core only; knows nothing of HTTP or of the
 * config's structs (the caller copies what it needs into the option
 * structs below), so it can be unit tested over a socketpair.
 *
 * Server contexts (struct moat_tls_server) are built from a listener's
 * options once per config generation (a reload builds new ones; a broken
 * certificate fails the build with a message naming the file and the
 * OpenSSL reason, and the caller keeps the old generation). A connection
 * holds its own reference to what it uses (OpenSSL's SSL_CTX refcount),
 * so freeing a server context while connections use it is safe.
 *
 * Safe defaults with no options set: TLS 1.2 and 1.3 only; TLS 1.2 ciphers
 * ECDHE + AEAD only (AES-GCM, ChaCha20-Poly1305) with the server's
 * preference; groups X25519 and P-256; no compression, no renegotiation,
 * no 0-RTT (early data off); session tickets on, their keys process-wide
 * (every worker thread of the process shares them, so a session resumes
 * whichever worker accepts the connection) and rotated every hour, the
 * two previous keys still decrypting (a ticket lives at most 2 hours);
 * the stateful session cache off (tickets only). A session resumes only
 * on a listener with the same client certificate policy (mode and client
 * CA file bytes: the session id context), so a ticket never skips a
 * client certificate nor carries one to a listener trusting another CA.
 *
 * Key files are read without a passphrase: an encrypted key is a build
 * error saying so (never a prompt on the terminal).
 *
 * SNI: every certificate's names are indexed (subjectAltName DNS entries,
 * or the subject CN when there is none; "*.example.com" matches one label);
 * an exact name wins over a wildcard; no match (or no SNI) gets the first
 * certificate. Several certificates with the same names but different key
 * types (RSA, ECDSA) are one entry holding both: OpenSSL picks the one the
 * client's signature algorithms allow, ECDSA first.
 *
 * OCSP stapling: a certificate's `ocsp` file (DER OCSPResponse) is read at
 * build and looked at again (stat, at most once every 10 s, from the
 * status callback) so a cron job may refresh it; a response is stapled
 * only while it is successful, its single response matches the leaf (by
 * issuer and serial, the issuer taken from the chain) and it is within
 * thisUpdate..nextUpdate; otherwise nothing is stapled (and a warning is
 * logged once per file change).
 *
 * A chain file without the leaf's issuer: nothing is stapled.
 * An OCSP file that is missing or unreadable at build is not an error (a
 * warning; the status callback keeps looking). The response's signature
 * is not verified here (the client does that); a "revoked" status is
 * stapled as it is, an "unknown" one is not.
 *
 * Client contexts: with `verify`, a name in `sni` is checked against the
 * certificate (no partial wildcards), else the `ip` (or an IP literal in
 * `sni`) is; with neither, only the chain is verified. The session cache
 * hands each connection a copy of the cached session (OpenSSL marks a
 * TLS 1.3 session it resumed as not resumable, and the next connection to
 * the same server must still resume), and caches at most 256 keys (the
 * least recently used one goes).
 *
 * moat_tls_conn_free() of a connection whose handshake finished and that
 * saw no fatal error keeps its session resumable even without a
 * close_notify (OpenSSL would otherwise forget it).
 *
 * Thread safety: a server or client context may be used by every worker
 * at once; a connection (struct moat_tls_conn) by one thread at a time.
 */
#ifndef MOAT_TLS_TLS_H
#define MOAT_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls/clienthello.h"

struct moat_tls_server;
struct moat_tls_client;
struct moat_tls_conn;

/* Results of the connection calls (beside byte counts and 0). */
#define MOAT_TLS_WANT_READ  (-2)    /* wait for the socket to be readable */
#define MOAT_TLS_WANT_WRITE (-3)    /* wait for it to be writable */
#define MOAT_TLS_ERROR      (-1)    /* fatal: close the connection (reason: moat_tls_error) */

struct moat_tls_cert_opts {
	const char *cert;           /* PEM chain file */
	const char *key;            /* PEM key file */
	const char *ocsp;           /* DER OCSP response file or NULL */
};

enum moat_tls_verify_mode {
	MOAT_TLS_CLIENT_OFF = 0,
	MOAT_TLS_CLIENT_OPTIONAL,
	MOAT_TLS_CLIENT_REQUIRED,
};

struct moat_tls_server_opts {
	const struct moat_tls_cert_opts *certs;
	size_t ncerts;              /* >= 1; certs[0] is the default */
	int min_version;            /* 0 = TLS 1.2; else 0x0303 or 0x0304 */
	const char *ciphers;        /* NULL = the safe default above */
	const char *ciphersuites;   /* NULL = OpenSSL's TLS 1.3 default */
	const char *groups;         /* NULL = "X25519:P-256" */
	int h2;                     /* ALPN offers "h2" (then "http/1.1"); else "http/1.1" only */
	int session_tickets;        /* 1 = on */
	const char *client_ca;      /* NULL = no client certificates */
	enum moat_tls_verify_mode client_verify; /* OFF: client_ca is ignored; OPTIONAL or
				     * REQUIRED without client_ca: a build error */
};

/* Builds a server context. NULL on error with *why set (malloc'd, e.g.
 * "/etc/moat/site.pem: no certificate found" or "site.key: key does not
 * match the certificate"); the caller frees *why. */
struct moat_tls_server *moat_tls_server_new(const struct moat_tls_server_opts *o, char **why);
void moat_tls_server_free(struct moat_tls_server *s);

/* Starts a server-side connection on a connected, non-blocking socket.
 * NULL when out of memory. */
struct moat_tls_conn *moat_tls_accept(struct moat_tls_server *s, int fd);

struct moat_tls_client_opts {
	int verify;                 /* 1 = verify chain and name (default in moat) */
	const char *ca;             /* NULL = the system's default store */
	const char *cert, *key;     /* client certificate or NULL */
	int h2;                     /* ALPN "h2" only (h2:// servers); else "http/1.1" */
};

/* A client context for one upstream's servers: verification settings, a
 * client certificate, and a small cache of sessions per server name and
 * address for resumption (the last session of each, shared by workers). */
struct moat_tls_client *moat_tls_client_new(const struct moat_tls_client_opts *o, char **why);
void moat_tls_client_free(struct moat_tls_client *cl);

/* Starts a client-side connection on a connected, non-blocking socket.
 * `sni`: the server name sent (NULL or an IP literal: none sent) and
 * verified; `ip`: the numeric address text, verified instead of a name
 * when sni is NULL or a literal; `reuse_key`: what the session is cached
 * under (e.g. "host:port"); a cached session is offered. NULL: no memory. */
struct moat_tls_conn *moat_tls_connect(struct moat_tls_client *cl, int fd, const char *sni, const char *ip,
				       const char *reuse_key);

void moat_tls_conn_free(struct moat_tls_conn *t);

/*
 * Server side only, before the first moat_tls_handshake: reads (MSG_PEEK,
 * nothing consumed) the first TLS record(s) and parses the ClientHello
 * into the conn (moat_tls_clienthello). Returns 1 parsed (or not TLS at
 * all: the handshake will fail), 0 more bytes needed (wait for readable),
 * MOAT_TLS_ERROR on a socket error or EOF. Cheap; the handshake may
 * start without it (then no ClientHello is kept).
 */
int moat_tls_peek_hello(struct moat_tls_conn *t);
/* The parsed ClientHello, or NULL when none was kept. */
const struct moat_tls_ch *moat_tls_clienthello(const struct moat_tls_conn *t);

/* Advances the handshake: 1 done, WANT_READ / WANT_WRITE, or ERROR. */
int moat_tls_handshake(struct moat_tls_conn *t);

/* Reads decrypted bytes: > 0 bytes, 0 the peer closed (close_notify or
 * EOF), WANT_READ (nothing buffered, the socket has nothing either),
 * WANT_WRITE, ERROR. Call again while it returns > 0: OpenSSL may hold
 * decrypted bytes the socket's edge will not announce. */
ssize_t moat_tls_read(struct moat_tls_conn *t, void *buf, size_t n);

/* After a read that returned bytes: 1 when nothing more waits, neither in
 * OpenSSL nor in the socket (its last read came back short), so the next
 * read would only say WANT_READ: the caller may wait for the socket's
 * next readable edge instead. */
int moat_tls_drained(const struct moat_tls_conn *t);

/* Writes n > 0 bytes: the bytes taken (> 0; all of them or a part once a
 * record did not fit), WANT_WRITE (none taken), WANT_READ, ERROR.
 * After WANT_*, the next calls must offer the same byte stream again from
 * the same point, in pieces of any length (moat keeps unsent bytes first in
 * line, so it does): OpenSSL's "same length" retry rule is met inside,
 * and bytes it sent beyond a shorter piece are reported when offered. */
ssize_t moat_tls_write(struct moat_tls_conn *t, const void *buf, size_t n);

/* Sends close_notify (best effort, never blocks). */
void moat_tls_shutdown(struct moat_tls_conn *t);

/* After the handshake. */
const char *moat_tls_alpn(const struct moat_tls_conn *t);   /* "h2", "http/1.1" or "" */
const char *moat_tls_version(const struct moat_tls_conn *t); /* "TLSv1.3" */
const char *moat_tls_cipher(const struct moat_tls_conn *t);
const char *moat_tls_sni(const struct moat_tls_conn *t);    /* server name sent by the client or NULL */
int moat_tls_resumed(const struct moat_tls_conn *t);
/* The verified client certificate's subject as an RFC 2253 string into
 * buf; 0 (and "") when there is none. */
size_t moat_tls_peer_subject(const struct moat_tls_conn *t, char *buf, size_t cap);

/* Last error of this thread as text (for logs): OpenSSL's reason or
 * "certificate verify failed: <why>". */
const char *moat_tls_error(struct moat_tls_conn *t, char *buf, size_t cap);

/* Rotates the process's ticket keys now (tests; normally hourly). */
void moat_tls_rotate_tickets(void);

#endif
