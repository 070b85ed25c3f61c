/*
 * codec.h - streaming response compression: gzip (zlib), br (brotli) and
 * zstd behind one small table.
 *
 * Sits in the response body filter chain: once policy.h said yes and
 * accept_encoding.h picked the coding, the body bytes from the backend go
 * through one encoder per response, and what comes out is framed (chunked
 * or close-delimited) towards the client. The encoder owns only the
 * library's state, allocated when it is created or as the first part of
 * the body goes through, up to the bounds below; a write allocates
 * nothing else. It performs no I/O.
 *
 * Levels and memory per stream, chosen for on-the-fly use (most of each
 * codec's ratio at 100+ MB/s on real pages). Measured by
 * tests/unit/mod/compress_test.c with moat_encoder_mem(), which counts
 * every byte the library holds, for a 1 MiB body of unknown length in
 * 16 KiB writes (x86-64, Debian 12's zlib 1.2.13, brotli 1.0.9, zstd
 * 1.5.4): "held" stays allocated between calls, "peak" adds what one
 * call allocates and frees (a worker runs one encoder at a time, so only
 * "held" adds up across streams):
 *
 *   coding  level  window                  held           peak     10 KiB body, body_len given
 *   gzip    5      32 KiB (windowBits 15)  262 KiB        262 KiB  134 KiB
 *   br      4      256 KiB (lgwin 18)      2.9-3.4 MiB    3.8 MiB  ~700 KiB (see below)
 *   zstd    3      512 KiB (windowLog 19)  2.0 MiB        2.0 MiB  284 KiB
 *
 * gzip holds its all from creation; zstd from the first write; br grows
 * with the body up to two windows plus a metablock of commands (a body
 * flushed every 16 KiB holds ~1.3 MiB), and allocates its 512 KiB hash
 * table when it encodes its first block, whatever the body length. The
 * highest levels allowed (br 6, zstd 6) hold ~4.5 MiB; gzip's memory does
 * not depend on the level.
 *
 * A known body length (Content-Length) shrinks the windows to the body
 * (see moat_encoder_new).
 *
 * Encoders are not shared between threads: one belongs to one txn and is
 * used by the worker that runs it. The ops table is static and read-only.
 */
#ifndef MOAT_MOD_COMPRESS_CODEC_H
#define MOAT_MOD_COMPRESS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "http/accept_encoding.h"

#define MOAT_CODEC_EFAIL  (-5601) /* the library refused (corrupt state, out of its memory cap) */
#define MOAT_CODEC_ESTATE (-5602) /* write after finish or after an error; or no room given */
#define MOAT_CODEC_ESINK  (-5603) /* moat_encoder_write's sink took less than it was given */

/* Windows (log2 bytes) at most; smaller for a shorter body_len. Past
 * 256 KiB (br) and 512 KiB (zstd) a larger window gains ~1% on real pages
 * and costs a whole window of memory per stream more (br keeps twice its
 * window, plus a metablock of commands). */
#define MOAT_CODEC_GZIP_WBITS   15 /* zlib's maximum: 32 KiB */
#define MOAT_CODEC_BR_LGWIN     18 /* 256 KiB */
#define MOAT_CODEC_ZSTD_WLOG    19 /* 512 KiB (browsers accept up to 8 MiB, RFC 8878 §3.1.1.1.2) */

/* What one call asks of the encoder. */
enum moat_codec_op {
	MOAT_CODEC_RUN = 0,  /* take the input; output comes when the codec has a block */
	MOAT_CODEC_FLUSH,    /* take the input and emit all of it, decodable by the client
			      * now (for streamed responses such as SSE; costs some ratio) */
	MOAT_CODEC_FINISH,   /* take the input and end the stream (the trailer is written) */
};

struct moat_encoder;

/* One codec. Static, read-only: the same table serves every worker. */
struct moat_codec_ops {
	const char *name;           /* the Content-Encoding token: "gzip", "br", "zstd" */
	enum moat_ae_coding coding;
	int level_min, level_max;   /* levels accepted by moat_encoder_new (others are clamped) */
	int level_default;          /* what level 0 means: 5, 4, 3 */
	/* Sets up e's library state (e->ops is set). Returns 0 or a negative error. */
	int (*init)(struct moat_encoder *e, int level, uint64_t body_len);
	/* Runs the library once over in[0..*in_len) into out[0..*out_room): advances
	 * *in / *out, decreases *in_len / *out_room. Returns 1 when the op is
	 * complete (RUN: input consumed; FLUSH: input consumed and all of it
	 * out; FINISH: the stream ended and all of it out), 0 when more room is
	 * needed, or a negative error. */
	int (*step)(struct moat_encoder *e, const uint8_t **in, size_t *in_len, uint8_t **out,
		    size_t *out_room, enum moat_codec_op op);
	/* Releases the library state. */
	void (*fini)(struct moat_encoder *e);
};

/* The codec for a coding, or NULL (identity and unknown values). */
const struct moat_codec_ops *moat_codec_ops(enum moat_ae_coding c);

/*
 * Creates an encoder for coding c (gzip, br or zstd) at `level` (0: the
 * codec's default; outside level_min..level_max: clamped). body_len is
 * the exact length of the body to come when it is known (a response
 * framed by Content-Length), else 0: windows and tables are then sized
 * to the body, and zstd records the length in its frame header. A body
 * that turns out longer or shorter than a nonzero body_len fails (zstd:
 * MOAT_CODEC_EFAIL at the byte past it or at FINISH) or costs ratio (gzip,
 * br): pass 0 when unsure. Returns NULL when c is not a codec or memory
 * is short. The caller owns the encoder (the txn, until it is logged) and
 * releases it with moat_encoder_free().
 */
struct moat_encoder *moat_encoder_new(enum moat_ae_coding c, int level, uint64_t body_len);

/*
 * The buffer-pair call: reads from *in (*in_len bytes), writes into
 * out[0..out_cap) (out_cap > 0) and sets *out_len to the bytes written.
 * *in and *in_len are advanced past what was taken.
 *
 * Returns 0 when the op is complete: all the input was taken and, for
 * FLUSH, everything given so far is in the output; for FINISH the stream
 * is ended (further calls: FINISH with no input returns 0 and writes
 * nothing, anything else MOAT_CODEC_ESTATE). Returns MOAT_AGAIN when out
 * is full and the op is not complete: call again with the rest of the
 * input (*in, *in_len as left) and the same op, after making room.
 * A RUN may keep up to a block of output inside the encoder (32 KiB to
 * 128 KiB of input, depending on the codec): it comes out with a later
 * call or with FLUSH / FINISH.
 * Returns a negative error (MOAT_CODEC_EFAIL, MOAT_CODEC_ESTATE) after
 * which the encoder only accepts moat_encoder_free(); the response
 * cannot be completed (the caller aborts it: the head is gone).
 * No allocation past the encoder's own state (see the file comment).
 */
int moat_encoder_step(struct moat_encoder *e, const void **in, size_t *in_len, void *out,
		      size_t out_cap, size_t *out_len, enum moat_codec_op op);

/*
 * The sink call: encodes in[0..in_len) with op and hands every piece of
 * output to sink(ctx, piece, n), in order (pieces of at most 16 KiB,
 * from a buffer on the caller's stack; n > 0). The sink must take all
 * of each piece and return n: any other return fails the call with
 * MOAT_CODEC_ESINK (and the encoder, as for an error above). Returns 0
 * or a negative error. Meant for callers whose output can always grow
 * (a moat_buf with room, a test); one with backpressure uses
 * moat_encoder_step().
 */
int moat_encoder_write(struct moat_encoder *e, const void *in, size_t in_len, enum moat_codec_op op,
		       size_t (*sink)(void *ctx, const void *out, size_t n), void *ctx);

/* The Content-Encoding token of the encoder's coding. */
const char *moat_encoder_name(const struct moat_encoder *e);

/* Bytes of memory the encoder holds now (its struct and the library's
 * state), and the most it held at once. */
size_t moat_encoder_mem(const struct moat_encoder *e);
size_t moat_encoder_mem_peak(const struct moat_encoder *e);

/* Bytes taken in and given out so far (for the access log's ratio). */
uint64_t moat_encoder_in(const struct moat_encoder *e);
uint64_t moat_encoder_out(const struct moat_encoder *e);

/* Releases the encoder and its library state; NULL is a no-op. */
void moat_encoder_free(struct moat_encoder *e);

#endif
