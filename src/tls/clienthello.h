/*
 * clienthello.h - the TLS ClientHello, read from the raw bytes the client
 * sent (RFC 8446 §4.1.2 and §4.2, the record layer of RFC 5246 §6.2 /
 * RFC 8446 §5.1, GREASE from RFC 8701, ALPN from RFC 7301, SNI from
 * RFC 6066 §3), pure.
 *
 * Sits at the start of a TLS connection, before OpenSSL sees it: the TLS
 * transport peeks at (or buffers) the first bytes of the connection and
 * hands them here, so that fingerprints (JA4) and SNI routing see the
 * ClientHello exactly as sent. OpenSSL 3.0's ClientHello callback is no
 * substitute: it reports only the extensions OpenSSL knows, and a
 * fingerprint needs all of them, in order. The parser performs no I/O and
 * no allocation and keeps no state between calls: call it again with the
 * same (grown) buffer after MOAT_AGAIN. What it returns is copied into
 * the caller's struct moat_tls_ch; nothing points into the buffer.
 *
 * For any prefix of an input the result is MOAT_AGAIN or the result for
 * the whole input: an error is reported as soon as the bytes seen prove
 * it, and a valid ClientHello never yields an error on one of its
 * prefixes. Every input is decided within MOAT_TLS_CH_MAX bytes.
 *
 * Strict about lengths, tolerant about content:
 *   - records: each one a handshake record (type 22) with version 3.x and
 *     a length of 1..2^14; the ClientHello may span several records (down
 *     to one byte each), and must end where its last record ends (a
 *     ClientHello that shares a record with what follows is refused:
 *     RFC 8446 §5.1, handshake messages must not span a key change);
 *   - the first handshake message must be a ClientHello (type 1);
 *   - every vector's length fits its container: session id <= 32 bytes,
 *     cipher suites an even, non-zero length, one or more compression
 *     methods, extensions ending exactly at the end of the message (or
 *     absent altogether, as RFC 5246 §7.4.1.2 allows), each extension
 *     inside the block, and the extensions read below ending exactly where
 *     their extension ends (trailing bytes are an error);
 *   - no extension type twice (RFC 8446 §4.2), pre_shared_key last
 *     (RFC 8446 §4.2.11);
 *   - unknown versions, cipher suites, extensions, groups and algorithms
 *     are kept in order, GREASE values included (and noted in `grease`).
 * Extensions read: server_name (0), supported_groups (10),
 * ec_point_formats (11), signature_algorithms (13), ALPN (16),
 * supported_versions (43). The others are kept as types only.
 *
 * Use (the TLS transport): before SSL_accept, read the hello without
 * taking it out of OpenSSL's way, by either
 *   - recv(fd, buf, MOAT_TLS_CH_MAX, MSG_PEEK) on each readable event: the
 *     bytes stay in the socket for OpenSSL to read as usual. This relies
 *     on moat's edge-triggered loop: peeked bytes keep a level-triggered
 *     fd readable, an edge comes only with new bytes; or
 *   - read(2) into a conn buffer of MOAT_TLS_CH_MAX bytes, then hand
 *     OpenSSL a read BIO that yields that buffer first and the socket
 *     after it (the write BIO stays the socket's).
 * Parse the whole buffer each time; on MOAT_AGAIN wait for more, and for
 * at least out->need bytes (under the handshake timeout; MOAT_TLS_CH_MAX
 * bytes always get an answer); on success keep the struct with the conn
 * and go on with SSL_accept; on an error close (or, as policy, hand the
 * connection to OpenSSL without a fingerprint: it refuses what is
 * malformed by its own rules).
 */
#ifndef MOAT_TLS_CLIENTHELLO_H
#define MOAT_TLS_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

/* Errors (all negative, below the errno range). Each closes the
 * connection, or (policy of the caller) hands it to OpenSSL without a
 * fingerprint. */
#define MOAT_TLS_CH_ENOTTLS (-6001) /* the first bytes are no TLS handshake record (plain HTTP on a TLS port...) */
#define MOAT_TLS_CH_ESSLV2  (-6002) /* an SSL 2.0 (or SSLv2-compatible) CLIENT-HELLO: refused everywhere since RFC 6176 */
#define MOAT_TLS_CH_ENOTCH  (-6003) /* a handshake record whose first message is not a ClientHello */
#define MOAT_TLS_CH_EBAD    (-6004) /* malformed: a length that does not fit, a duplicate extension, ... */
#define MOAT_TLS_CH_ETOOBIG (-6005) /* no whole ClientHello within MOAT_TLS_CH_MAX bytes */

/*
 * The most bytes of records (headers included) a ClientHello may take:
 * 16 KiB, the most one record may carry (2^14 bytes, RFC 8446 §5.1).
 * Real ClientHellos take 200 bytes to 2 KiB (Chromium's, with a
 * post-quantum key share and GREASE ECH: 2 KiB), so this leaves room for
 * large PSK identities and for a hello cut into small records (a 2 KiB
 * hello in 64-byte records takes ~2.2 KiB, in 1-byte records 12 KiB).
 * The caller holds these bytes before any handshake work is done, from a
 * peer not yet authenticated, so the limit bounds what each new
 * connection can pin: with MSG_PEEK the kernel must hold it all in the
 * socket's receive buffer, which by default holds well over 16 KiB.
 * OpenSSL itself would take a hello of up to ~128 KiB; nothing legitimate
 * sends one.
 */
#define MOAT_TLS_CH_MAX 16384u

/* Lists of struct moat_tls_ch, as bits of `truncated` and `grease`. */
#define MOAT_TLS_CH_L_VERSIONS  0x001u /* supported_versions */
#define MOAT_TLS_CH_L_CIPHERS   0x002u /* cipher_suites */
#define MOAT_TLS_CH_L_EXTS      0x004u /* extension types */
#define MOAT_TLS_CH_L_GROUPS    0x008u /* supported_groups */
#define MOAT_TLS_CH_L_SIGALGS   0x010u /* signature_algorithms */
#define MOAT_TLS_CH_L_ECPF      0x020u /* ec_point_formats (never GREASE) */
#define MOAT_TLS_CH_L_ALPN      0x040u /* ALPN: more than 8 names / a GREASE name (2 bytes 0x?A?A) */
#define MOAT_TLS_CH_L_ALPN_NAME 0x080u /* ALPN (truncated only): a name kept was over 31 bytes */

/* Flags (`flags`). */
#define MOAT_TLS_CH_F_SNI         0x01u /* the server_name extension was present */
#define MOAT_TLS_CH_F_SNI_INVALID 0x02u /* ... but its host_name is no DNS name (sni is empty) */
#define MOAT_TLS_CH_F_ALPN        0x04u /* the ALPN extension was present */
#define MOAT_TLS_CH_F_VERSIONS    0x08u /* the supported_versions extension was present */
#define MOAT_TLS_CH_F_EXTENSIONS  0x10u /* the hello had an extensions block (even empty) */

#define MOAT_TLS_CH_ALPN_MAX      8u
#define MOAT_TLS_CH_ALPN_NAME_MAX 31u /* bytes kept of each name (plus a NUL) */

/*
 * A parsed ClientHello. Owned by the caller (the conn, for as long as it
 * wants its fingerprint); holds copies, no pointer into the input. Each
 * list keeps at most its array's size of entries, in the order sent; a
 * longer list sets its bit in `truncated` and its entries past the array
 * are checked but not kept. Each n* counts the entries kept.
 */
struct moat_tls_ch {
	uint16_t record_version;  /* of the first record, as sent (0x0301 from most clients) */
	uint16_t legacy_version;  /* ClientHello.legacy_version, as sent (0x0303 from TLS 1.2 / 1.3 clients) */
	uint8_t session_id_len;   /* legacy_session_id: 0..32 bytes */
	uint16_t versions[16];    /* supported_versions, GREASE kept */
	unsigned nversions;
	uint16_t ciphers[128];    /* cipher_suites, GREASE kept */
	unsigned nciphers;
	uint16_t exts[64];        /* extension types in the order sent, unknown ones and GREASE kept */
	unsigned nexts;
	uint16_t groups[32];      /* supported_groups, GREASE kept */
	unsigned ngroups;
	uint16_t sigalgs[64];     /* signature_algorithms, GREASE kept */
	unsigned nsigalgs;
	uint8_t ec_point_formats[8];
	unsigned necpf;
	char sni[256];            /* server_name's host_name, as sent (case kept), NUL-terminated; "" when
				   * absent or invalid (see flags). Valid: 1..253 bytes of labels of 1..63
				   * letters, digits, '-' or '_' (seen in real host names) joined by single
				   * dots, no trailing dot, the last label not all digits (an IPv4 literal,
				   * which RFC 6066 forbids) */
	unsigned sni_len;
	char alpn[8][32];         /* ALPN protocol names in order, the first 31 bytes of each as sent (any
				   * byte, NUL included: read alpn_len, not strlen) followed by a NUL */
	uint8_t alpn_len[8];      /* each name's whole length as sent (1..255) */
	uint8_t alpn_last[8];     /* each name's last byte, even when the name was cut (JA4 reads it) */
	unsigned nalpn;
	unsigned flags;           /* MOAT_TLS_CH_F_* */
	unsigned grease;          /* MOAT_TLS_CH_L_* of the lists that held a GREASE value */
	unsigned truncated;       /* MOAT_TLS_CH_L_* of the lists longer than their array */
	unsigned need;            /* after MOAT_AGAIN only: no input shorter than this holds the whole
				   * ClientHello (<= MOAT_TLS_CH_MAX; see moat_tls_ch_parse) */
};

/* Nonzero when v is one of the 16 GREASE values 0x0A0A, 0x1A1A, ...
 * 0xFAFA (RFC 8701 §2) that clients advertise as cipher suites,
 * extensions, groups, signature algorithms and versions. */
int moat_tls_ch_is_grease(uint16_t v);

/*
 * Parses a ClientHello from the TLS records at buf[0..len). Returns the
 * bytes of records it takes (> 0: whole records, the ClientHello ending
 * with the last one) once the whole ClientHello is read, MOAT_AGAIN when
 * buf is empty or a proper prefix of a valid one (with less than
 * MOAT_TLS_CH_MAX bytes), or one of MOAT_TLS_CH_E*. `out` is reset at each
 * call; after MOAT_AGAIN only out->need is meaningful, after an error
 * nothing is. A caller that waits for out->need bytes before calling
 * again parses about once per record rather than once per read (a client
 * sending a byte at a time would otherwise cost a parse per byte), and
 * hears of an error in those bytes once they have all come (or at its
 * handshake timeout). Never reads past buf[len - 1] nor past
 * buf[MOAT_TLS_CH_MAX - 1]. No allocation; thread-safe; uses ~8 KiB of
 * stack (a bitmap of the extension types seen).
 */
int moat_tls_ch_parse(const uint8_t *buf, size_t len, struct moat_tls_ch *out);

#endif
