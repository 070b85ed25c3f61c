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

#define MOAT_CHUNKED_EBAD     (-5101) /* malformed size, extension, CRLF or trailer: 400 / 502, close */
#define MOAT_CHUNKED_ETOOBIG  (-5102) /* size line, extension or trailer section over its limit */

/* Decoder state. Zero-initialise (or call moat_chunked_init) before use. */
struct moat_chunked {
	int state;
	uint64_t remaining;   /* data bytes left in the current chunk */
	size_t line_len;      /* bytes of the current size line / trailer line seen */
	size_t trailer_total; /* bytes of trailer section seen */
	int size_digits;
	unsigned ext_state;   /* sub-state while scanning a chunk extension */
	size_t max_line;      /* max size-line (with extensions) length; default 4096 */
	size_t max_trailer;   /* max trailer section bytes; default 16384 */
};

void moat_chunked_init(struct moat_chunked *d);

/*
 * Advances the decoder over in[0..len).
 * Sets *consumed to how many bytes of `in` were used by this call and
 * returns an event (> 0) or an error (< 0). On DATA and TRAILER, the
 * reported span lies within the consumed bytes; the caller forwards it and
 * calls again with in + *consumed. A TRAILER line can only be reported
 * whole, so when a trailer line is incomplete the decoder returns NEED with
 * *consumed set to the start of that line: the caller must keep those bytes
 * and present them again with more. Chunk sizes over 2^62 are refused.
 * Chunk extensions are validated (token [= token / quoted-string]) and
 * dropped. Bare LF and bare CR are refused.
 */
int moat_chunked_decode(struct moat_chunked *d, const char *in, size_t len, size_t *consumed,
			size_t *out_off, size_t *out_len);

#endif
