/*
 * codec.c - the gzip, br and zstd encoders behind struct moat_codec_ops
 * (see codec.h), and the calls that drive them.
 *
 * The library state hangs off struct moat_encoder. zlib and brotli
 * allocate through counting allocators, so moat_encoder_mem() is exact;
 * zstd's workspace is fixed by its parameters before the first byte and
 * is read with ZSTD_sizeof_CCtx(). Memory is bounded by the parameters
 * (level range, window), not by refusing allocations.
 */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "mod/compress/codec.h"

enum { OPEN = 0, FINISHED, FAILED };

/* Owned by the txn that compresses one response (codec.h). */
struct moat_encoder {
	const struct moat_codec_ops *ops;
	int state;               /* OPEN, FINISHED, FAILED */
	size_t lib_mem;          /* bytes the library holds (counted or measured) */
	size_t lib_peak;
	uint64_t in_total, out_total;
	union {
		struct {
			z_stream z;
			/* A flush into less than ZSPILL bytes of room goes here
			 * first: zlib adds a flush marker at every call that starts
			 * with its output drained, so room under ~6 bytes would
			 * never complete a flush. */
			unsigned char spill[64];
			size_t spill_off, spill_len;
			int spill_done;   /* the op completed into the spill */
		} gz;
		BrotliEncoderState *br;
		ZSTD_CCtx *zstd;
	} u;
};

/* ---- counting allocator (zlib, brotli) ---------------------------------
 * Each block carries its size in front, so the free callbacks, which get
 * only the pointer, can count it back. The header keeps malloc's
 * alignment. */

union blk_hdr {
	max_align_t align;
	size_t size;
};

static void *acct_alloc(struct moat_encoder *e, size_t n)
{
	union blk_hdr *h = malloc(sizeof *h + n);

	if (h == NULL)
		return NULL;
	h->size = n;
	e->lib_mem += n;
	if (e->lib_mem > e->lib_peak)
		e->lib_peak = e->lib_mem;
	return h + 1;
}

static void acct_free(struct moat_encoder *e, void *p)
{
	union blk_hdr *h;

	if (p == NULL)
		return;
	h = (union blk_hdr *)p - 1;
	e->lib_mem -= h->size;
	free(h);
}

static void note_mem(struct moat_encoder *e, size_t now)
{
	e->lib_mem = now;
	if (now > e->lib_peak)
		e->lib_peak = now;
}

/* The smallest b in [lo, hi] with 2^b >= n + slack; hi when n is 0 (unknown). */
static int fit_log2(uint64_t n, uint64_t slack, int lo, int hi)
{
	int b = lo;

	if (n == 0)
		return hi;
	while (b < hi && ((uint64_t)1 << b) < n + slack)
		b++;
	return b;
}

/* ---- gzip (zlib) -------------------------------------------------------- */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	if (size != 0 && items > SIZE_MAX / size)
		return Z_NULL;
	return acct_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
	acct_free(opaque, p);
}

static int gzip_init(struct moat_encoder *e, int level, uint64_t body_len)
{
	/* deflate needs the window to hold the body plus its look-ahead (262
	 * bytes); memLevel shrinks with the window, as the hash table need not
	 * outgrow it. windowBits 8 is refused by zlib for gzip: 9 at least. */
	int wbits = fit_log2(body_len, 262, 9, MOAT_CODEC_GZIP_WBITS);
	int memlevel = 8 - (MOAT_CODEC_GZIP_WBITS - wbits);
	z_stream *z = &e->u.gz.z;

	if (memlevel < 1)
		memlevel = 1;
	memset(&e->u.gz, 0, sizeof e->u.gz);
	z->zalloc = z_alloc;
	z->zfree = z_free;
	z->opaque = e;
	/* +16: a gzip header and trailer (mtime 0, no name) instead of zlib's */
	if (deflateInit2(z, level, Z_DEFLATED, wbits + 16, memlevel, Z_DEFAULT_STRATEGY) != Z_OK)
		return MOAT_CODEC_EFAIL;
	return 0;
}

#define ZSPILL 16

static void spill_out(struct moat_encoder *e, uint8_t **out, size_t *out_room)
{
	size_t n = e->u.gz.spill_len < *out_room ? e->u.gz.spill_len : *out_room;

	memcpy(*out, e->u.gz.spill + e->u.gz.spill_off, n);
	e->u.gz.spill_off += n;
	e->u.gz.spill_len -= n;
	*out += n;
	*out_room -= n;
}

static int gzip_step(struct moat_encoder *e, const uint8_t **in, size_t *in_len, uint8_t **out,
		     size_t *out_room, enum moat_codec_op op)
{
	z_stream *z = &e->u.gz.z;
	uInt ain = *in_len > UINT_MAX ? UINT_MAX : (uInt)*in_len;
	int spill = *out_room < ZSPILL && op != MOAT_CODEC_RUN;
	uint8_t *dst = spill ? e->u.gz.spill : *out;
	uInt aout;
	int flush, rc, done;

	if (e->u.gz.spill_len > 0) {
		spill_out(e, out, out_room);
		if (e->u.gz.spill_len > 0 || !e->u.gz.spill_done)
			return 0; /* out of room, or the caller calls again */
		e->u.gz.spill_done = 0;
		return 1;
	}
	aout = spill ? (uInt)sizeof e->u.gz.spill : *out_room > UINT_MAX ? UINT_MAX : (uInt)*out_room;
	/* A length above UINT_MAX goes in slices: only the last one may carry
	 * the flush or finish. */
	flush = ain < *in_len ? Z_NO_FLUSH : op == MOAT_CODEC_FLUSH ? Z_SYNC_FLUSH
		: op == MOAT_CODEC_FINISH ? Z_FINISH : Z_NO_FLUSH;
	z->next_in = (Bytef *)(uintptr_t)*in;
	z->avail_in = ain;
	z->next_out = dst;
	z->avail_out = aout;
	rc = deflate(z, flush);
	*in += ain - z->avail_in;
	*in_len -= ain - z->avail_in;
	if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
		return MOAT_CODEC_EFAIL; /* Z_BUF_ERROR: nothing to do, not fatal */
	/* Complete: a finish that ended the stream, or a flush or run whose
	 * input is all taken with output room to spare. */
	done = rc == Z_STREAM_END || (op != MOAT_CODEC_FINISH && *in_len == 0 && z->avail_out > 0);
	if (spill) {
		e->u.gz.spill_off = 0;
		e->u.gz.spill_len = aout - z->avail_out;
		e->u.gz.spill_done = done;
		spill_out(e, out, out_room);
		if (e->u.gz.spill_len > 0)
			return 0;
		e->u.gz.spill_done = 0;
		return done;
	}
	*out += aout - z->avail_out;
	*out_room -= aout - z->avail_out;
	return done;
}

static void gzip_fini(struct moat_encoder *e)
{
	deflateEnd(&e->u.gz.z);
}

/* ---- br (brotli) -------------------------------------------------------- */

/* Brotli (built with its default BROTLI_ENCODER_EXIT_ON_OOM) calls exit()
 * when an allocation fails, so it must never be refused one: its memory
 * is bounded by the level and lgwin instead. */
static void *br_alloc(void *opaque, size_t n)
{
	return acct_alloc(opaque, n);
}

static void br_free(void *opaque, void *p)
{
	acct_free(opaque, p);
}

static int br_init(struct moat_encoder *e, int level, uint64_t body_len)
{
	/* The ring buffer is 2^(lgwin+1) + 2^lgblock bytes; the window needs
	 * 16 bytes of gap (BROTLI_WINDOW_GAP) over the body. */
	int lgwin = fit_log2(body_len, 16, BROTLI_MIN_WINDOW_BITS, MOAT_CODEC_BR_LGWIN);
	BrotliEncoderState *s = BrotliEncoderCreateInstance(br_alloc, br_free, e);

	if (s == NULL)
		return MOAT_CODEC_EFAIL;
	e->u.br = s;
	if (!BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
	    !BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, (uint32_t)lgwin))
		return MOAT_CODEC_EFAIL;
	/* No BROTLI_PARAM_SIZE_HINT: at quality 4 a hint of 1 MiB or more
	 * switches to a hasher with a 4 MiB table, and under it the hint
	 * changes nothing that lgwin does not. */
	return 0;
}

static int br_step(struct moat_encoder *e, const uint8_t **in, size_t *in_len, uint8_t **out,
		   size_t *out_room, enum moat_codec_op op)
{
	BrotliEncoderState *s = e->u.br;
	BrotliEncoderOperation bop = op == MOAT_CODEC_FLUSH ? BROTLI_OPERATION_FLUSH
		: op == MOAT_CODEC_FINISH ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS;

	if (!BrotliEncoderCompressStream(s, bop, in_len, in, out_room, out, NULL))
		return MOAT_CODEC_EFAIL;
	switch (op) {
	case MOAT_CODEC_RUN:
		return *in_len == 0;
	case MOAT_CODEC_FLUSH:
		return *in_len == 0 && !BrotliEncoderHasMoreOutput(s);
	case MOAT_CODEC_FINISH:
		return BrotliEncoderIsFinished(s) ? 1 : 0;
	}
	return MOAT_CODEC_EFAIL;
}

static void br_fini(struct moat_encoder *e)
{
	if (e->u.br != NULL)
		BrotliEncoderDestroyInstance(e->u.br);
}

/* ---- zstd --------------------------------------------------------------- */

static int zstd_init(struct moat_encoder *e, int level, uint64_t body_len)
{
	/* A pledged length lets zstd size the window and its hash and chain
	 * tables to the body (ZSTD_adjustCParams trims the tables only for a
	 * known length), and it goes into the frame header. The window is
	 * capped either way. */
	ZSTD_CCtx *c = ZSTD_createCCtx();

	if (c == NULL)
		return MOAT_CODEC_EFAIL;
	e->u.zstd = c;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, MOAT_CODEC_ZSTD_WLOG)))
		return MOAT_CODEC_EFAIL;
	if (body_len > 0 && ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(c, body_len)))
		return MOAT_CODEC_EFAIL;
	note_mem(e, ZSTD_sizeof_CCtx(c));
	return 0;
}

static int zstd_step(struct moat_encoder *e, const uint8_t **in, size_t *in_len, uint8_t **out,
		     size_t *out_room, enum moat_codec_op op)
{
	ZSTD_inBuffer ib = { *in, *in_len, 0 };
	ZSTD_outBuffer ob = { *out, *out_room, 0 };
	ZSTD_EndDirective d = op == MOAT_CODEC_FLUSH ? ZSTD_e_flush
		: op == MOAT_CODEC_FINISH ? ZSTD_e_end : ZSTD_e_continue;
	size_t r = ZSTD_compressStream2(e->u.zstd, &ob, &ib, d);

	*in += ib.pos;
	*in_len -= ib.pos;
	*out += ob.pos;
	*out_room -= ob.pos;
	note_mem(e, ZSTD_sizeof_CCtx(e->u.zstd));
	if (ZSTD_isError(r))
		return MOAT_CODEC_EFAIL;
	if (op == MOAT_CODEC_RUN)
		return *in_len == 0;
	/* flush / end: r is what is still to be written; 0 means done */
	return r == 0 && *in_len == 0;
}

static void zstd_fini(struct moat_encoder *e)
{
	ZSTD_freeCCtx(e->u.zstd);
}

/* ---- the table and the calls ---------------------------------------- */

static const struct moat_codec_ops codecs[] = {
	{ "gzip", MOAT_AE_GZIP, 1, 9, 5, gzip_init, gzip_step, gzip_fini },
	{ "br", MOAT_AE_BR, 0, 6, 4, br_init, br_step, br_fini },
	{ "zstd", MOAT_AE_ZSTD, 1, 6, 3, zstd_init, zstd_step, zstd_fini },
};

const struct moat_codec_ops *moat_codec_ops(enum moat_ae_coding c)
{
	for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
		if (codecs[i].coding == c)
			return &codecs[i];
	return NULL;
}

struct moat_encoder *moat_encoder_new(enum moat_ae_coding c, int level, uint64_t body_len)
{
	const struct moat_codec_ops *ops = moat_codec_ops(c);
	struct moat_encoder *e;

	if (ops == NULL)
		return NULL;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	e->ops = ops;
	if (level == 0)
		level = ops->level_default;
	else if (level < ops->level_min)
		level = ops->level_min;
	else if (level > ops->level_max)
		level = ops->level_max;
	if (ops->init(e, level, body_len) < 0) {
		ops->fini(e);
		free(e);
		return NULL;
	}
	return e;
}

int moat_encoder_step(struct moat_encoder *e, const void **in, size_t *in_len, void *out,
		      size_t out_cap, size_t *out_len, enum moat_codec_op op)
{
	const uint8_t *ip = *in;
	uint8_t *op_out = out;
	size_t room = out_cap;
	int r = 0;

	*out_len = 0;
	if (e->state == FINISHED && op == MOAT_CODEC_FINISH && *in_len == 0)
		return 0;
	if (e->state != OPEN || out_cap == 0 || op > MOAT_CODEC_FINISH) {
		e->state = FAILED;
		return MOAT_CODEC_ESTATE;
	}
	for (;;) {
		size_t before_in = *in_len, before_room = room;

		r = e->ops->step(e, &ip, in_len, &op_out, &room, op);
		e->in_total += before_in - *in_len;
		if (r != 0 || room == 0)
			break;
		if (before_in == *in_len && before_room == room) {
			r = MOAT_CODEC_EFAIL; /* no progress with room to spare: a library fault */
			break;
		}
	}
	*in = ip;
	*out_len = out_cap - room;
	e->out_total += *out_len;
	if (r < 0) {
		e->state = FAILED;
		return r;
	}
	if (r == 0)
		return MOAT_AGAIN;
	if (op == MOAT_CODEC_FINISH)
		e->state = FINISHED;
	return 0;
}

#define SINK_PIECE (16u * 1024u)

int moat_encoder_write(struct moat_encoder *e, const void *in, size_t in_len, enum moat_codec_op op,
		       size_t (*sink)(void *ctx, const void *out, size_t n), void *ctx)
{
	unsigned char piece[SINK_PIECE];
	int r;

	do {
		size_t n = 0;

		r = moat_encoder_step(e, &in, &in_len, piece, sizeof piece, &n, op);
		if (r < 0 && r != MOAT_AGAIN)
			return r;
		if (n > 0 && sink(ctx, piece, n) != n) {
			e->state = FAILED;
			return MOAT_CODEC_ESINK;
		}
	} while (r == MOAT_AGAIN);
	return 0;
}

const char *moat_encoder_name(const struct moat_encoder *e)
{
	return e->ops->name;
}

size_t moat_encoder_mem(const struct moat_encoder *e)
{
	return sizeof *e + e->lib_mem;
}

size_t moat_encoder_mem_peak(const struct moat_encoder *e)
{
	return sizeof *e + e->lib_peak;
}

uint64_t moat_encoder_in(const struct moat_encoder *e)
{
	return e->in_total;
}

uint64_t moat_encoder_out(const struct moat_encoder *e)
{
	return e->out_total;
}

void moat_encoder_free(struct moat_encoder *e)
{
	if (e == NULL)
		return;
	e->ops->fini(e);
	free(e);
}
