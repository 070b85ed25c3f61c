/*
 * chunked.h - strict incremental decoder of the chunked transfer coding
 * (RFC 9112 §7.1), pure.
 *
 * Used for request bodies from clients and response bodies from backends:
 * moat decodes and re-encodes instead of passing chunked bytes through, so
 * what the next hop receives is always canonical. The decoder owns no
 * memory and never copies: it reports where the data bytes are inside the
 * input it is given.
 *
 * States:  SIZE -> (EXT) -> SIZE_LF -> DATA -> DATA_CR -> DATA_LF -> SIZE ...
 *          SIZE "0" ... -> TRAILER lines -> final CRLF -> DONE
 */
#ifndef MOAT_HTTP_CHUNKED_H
#define MOAT_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

enum moat_chunked_event {
	MOAT_CHUNKED_NEED = 1,   /* all of the input was consumed; give more */
	MOAT_CHUNKED_DATA,       /* data bytes at in[*out_off .. *out_off + *out_len) */
	MOAT_CHUNKED_TRAILER,    /* one trailer field line at in[*out_off..+*out_len), without its CRLF */
	MOAT_CHUNKED_DONE,       /* the last chunk and trailer section ended; *consumed is where the next message starts */
};

#define MOAT_CHUNKED_EBAD     (-5101) /* malformed size (or over 16 digits / 2^62), extension, CRLF or trailer: 400 / 502, close */
#define MOAT_CHUNKED_ETOOBIG  (-5102) /* size line (with extensions) or trailer section over its limit */

/* Decoder state, owned by whoever decodes one body (one per message).
 * Zero-initialise (or call moat_chunked_init) before use; a max_* left at
 * 0 means its default. */
struct moat_chunked {
	int state;
	uint64_t remaining;   /* data bytes left in the current chunk */
	size_t line_len;      /* bytes of the current size line / trailer line seen */
	size_t trailer_total; /* bytes of trailer section seen */
	int size_digits;
	unsigned ext_state;   /* sub-state while scanning a chunk extension */
	size_t max_line;      /* max size-line length with extensions, without CRLF; default 4096 */
	size_t max_trailer;   /* max trailer section bytes, each line with its CRLF, not counting
			       * the final empty line; default 16384 */
};

void moat_chunked_init(struct moat_chunked *d);

/*
 * Advances the decoder over in[0..len).
 * Sets *consumed to how many bytes of `in` were used by this call and
 * returns an event (> 0) or an error (< 0). One event per call: DATA is
 * returned as soon as data bytes are available (never empty), so a chunk
 * may come in several DATA events. On DATA and TRAILER, the reported span
 * lies within the consumed bytes; the caller forwards it and calls again
 * with in + *consumed. NEED means all of `in` was consumed, except that a
 * TRAILER line can only be reported whole: when a trailer line is
 * incomplete the decoder returns NEED with *consumed set to the start of
 * that line, and the caller must keep those bytes and present them again
 * with more. DONE sets *consumed just past the final CRLF; the bytes after
 * it (a pipelined message) are untouched. Once DONE, calls return DONE and
 * consume nothing; after an error, calls return MOAT_CHUNKED_EBAD.
 * *out_off / *out_len are 0 for events other than DATA and TRAILER.
 *
 * Refused (EBAD): a size that is empty, signed, "0x"-prefixed, longer than
 * 16 hex digits (leading zeros count) or over 2^62; whitespace before the
 * CRLF of a size line (BWS before ";" and around "=" is allowed); chunk
 * extensions outside token [= token / quoted-string] (validated, then
 * dropped); data not followed by CRLF; bare LF and bare CR anywhere;
 * trailer lines that are not a field line (token ":" value of VCHAR /
 * obs-text / SP / HTAB), obs-fold included. Which trailer fields may be
 * forwarded (never framing ones) is the caller's decision.
 * Pure and thread-safe on distinct decoders.
 */
int moat_chunked_decode(struct moat_chunked *d, const char *in, size_t len, size_t *consumed,
			size_t *out_off, size_t *out_len);

#endif
