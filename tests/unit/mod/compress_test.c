/*
 * compress_test.c - unit tests of src/mod/compress/ (codec.c, policy.c).
 *
 * Codecs: round trips through each encoder, decoded by the libraries' own
 * decoders (zlib inflate, BrotliDecoderDecompressStream,
 * ZSTD_decompressStream), for empty, small, 1 MiB random and 1 MiB
 * HTML-like inputs written in odd-sized pieces into a small output buffer
 * (so every call runs out of room), with flushes after which everything
 * written so far must decode; the sink call; finish, errors and levels;
 * compression ratio on text; memory per stream (printed) with and without
 * the body length; throughput per codec at the chosen levels (printed).
 * Policy: the matrix of statuses, framings, types, sizes, no-transform,
 * encodings, HEAD and codings, and the header edits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "mod/compress/codec.h"
#include "mod/compress/policy.h"

#define MIB (1024u * 1024u)

static const enum moat_ae_coding codings[] = { MOAT_AE_GZIP, MOAT_AE_BR, MOAT_AE_ZSTD };
#define NCODINGS (sizeof codings / sizeof codings[0])

static unsigned char *random_data, *text_data;

/* ---- inputs ------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* HTML-like text: a page of list items and paragraphs with links, classes
 * and prose from a vocabulary, so that it compresses about as real pages
 * do (gzip 5x to 8x). */
static void make_text(unsigned char *p, size_t n)
{
	static const char *const words[] = {
		"the", "proxy", "request", "response", "backend", "cache", "header", "body",
		"server", "client", "compress", "stream", "window", "latency", "connection",
		"moat", "worker", "buffer", "timeout", "route", "health", "balance", "of", "and",
		"to", "in", "is", "for", "with", "on", "that", "by", "this", "from", "a", "an",
		"configuration", "certificate", "upstream", "retry", "limit", "queue", "pool",
		"each", "when", "which", "every", "before", "after", "between", "without",
	};
	static const char *const classes[] = {
		"item", "item active", "title", "meta", "nav-link", "btn btn-primary", "card-body",
		"text-muted small", "row", "col-md-6",
	};
	size_t len = 0;
	unsigned line = 0;

	while (len < n) {
		char chunk[1024];
		int k;
		int nw = 6 + (int)(next_rand() % 30);

		if (line++ % 40 == 0)
			k = snprintf(chunk, sizeof chunk,
				     "<div class=\"container\">\n  <nav class=\"navbar\"><a href=\"/\">"
				     "Home</a> <a href=\"/docs/\">Docs</a> <a href=\"/blog/\">Blog</a>"
				     "</nav>\n");
		else
			k = snprintf(chunk, sizeof chunk,
				     "  <li class=\"%s\"><a href=\"/articles/%u\">",
				     classes[next_rand() % 10], (unsigned)(next_rand() % 2000));
		for (int i = 0; i < nw && k < 800; i++)
			k += snprintf(chunk + k, sizeof chunk - (size_t)k, "%s%s", i ? " " : "",
				      words[next_rand() % (sizeof words / sizeof words[0])]);
		k += snprintf(chunk + k, sizeof chunk - (size_t)k, "</a></li>\n");
		if ((size_t)k > n - len)
			k = (int)(n - len);
		memcpy(p + len, chunk, (size_t)k);
		len += (size_t)k;
	}
}

static int setup(void **state)
{
	(void)state;
	random_data = malloc(MIB);
	text_data = malloc(MIB);
	assert_non_null(random_data);
	assert_non_null(text_data);
	for (size_t i = 0; i < MIB; i += 8) {
		uint64_t r = next_rand();

		memcpy(random_data + i, &r, 8);
	}
	make_text(text_data, MIB);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(random_data);
	free(text_data);
	return 0;
}

/* ---- growable byte string ------------------------------------------- */

struct bytes {
	unsigned char *p;
	size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* ---- decoders: incremental, so a flush can be checked at once --------- */

struct dec {
	enum moat_ae_coding coding;
	z_stream z;
	BrotliDecoderState *br;
	ZSTD_DStream *zs;
	struct bytes out;
	int ended;
};

static void dec_init(struct dec *d, enum moat_ae_coding c)
{
	memset(d, 0, sizeof *d);
	d->coding = c;
	if (c == MOAT_AE_GZIP) {
		assert_int_equal(inflateInit2(&d->z, 16 + MAX_WBITS), Z_OK); /* gzip only */
	} else if (c == MOAT_AE_BR) {
		d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
		assert_non_null(d->br);
	} else {
		d->zs = ZSTD_createDStream();
		assert_non_null(d->zs);
	}
}

/* Feeds in[0..n) to the decoder; everything it can produce is appended. */
static void dec_feed(struct dec *d, const unsigned char *in, size_t n)
{
	unsigned char buf[16384];

	if (d->coding == MOAT_AE_GZIP) {
		d->z.next_in = (Bytef *)(uintptr_t)in;
		d->z.avail_in = (uInt)n;
		for (;;) {
			int rc;

			d->z.next_out = buf;
			d->z.avail_out = sizeof buf;
			rc = inflate(&d->z, Z_SYNC_FLUSH);
			bytes_add(&d->out, buf, sizeof buf - d->z.avail_out);
			if (rc == Z_STREAM_END) {
				d->ended = 1;
				assert_int_equal(d->z.avail_in, 0); /* nothing after the trailer */
				break;
			}
			assert_true(rc == Z_OK || rc == Z_BUF_ERROR);
			if (d->z.avail_out != 0)
				break;
		}
	} else if (d->coding == MOAT_AE_BR) {
		size_t ain = n;
		const uint8_t *nin = in;

		for (;;) {
			size_t aout = sizeof buf;
			uint8_t *nout = buf;
			BrotliDecoderResult r = BrotliDecoderDecompressStream(d->br, &ain, &nin, &aout,
									      &nout, NULL);

			bytes_add(&d->out, buf, sizeof buf - aout);
			assert_int_not_equal(r, BROTLI_DECODER_RESULT_ERROR);
			if (r == BROTLI_DECODER_RESULT_SUCCESS) {
				d->ended = 1;
				assert_int_equal(ain, 0);
				break;
			}
			if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
				break;
		}
	} else {
		ZSTD_inBuffer ib = { in, n, 0 };

		for (;;) {
			ZSTD_outBuffer ob = { buf, sizeof buf, 0 };
			size_t r = ZSTD_decompressStream(d->zs, &ob, &ib);

			assert_false(ZSTD_isError(r));
			bytes_add(&d->out, buf, ob.pos);
			if (r == 0) {
				d->ended = 1;
				assert_int_equal(ib.pos, ib.size); /* one frame, nothing after */
				break;
			}
			if (ib.pos == ib.size && ob.pos < ob.size)
				break;
		}
	}
}

static void dec_free(struct dec *d)
{
	if (d->coding == MOAT_AE_GZIP)
		inflateEnd(&d->z);
	else if (d->coding == MOAT_AE_BR)
		BrotliDecoderDestroyInstance(d->br);
	else
		ZSTD_freeDStream(d->zs);
	free(d->out.p);
}

/* ---- round trips --------------------------------------------------------- */

/* Piece sizes written in turn: odd, some tiny, some past a codec block. */
static const size_t pieces[] = { 1, 7, 1000, 4093, 65537, 3, 131071, 17, 32768, 99991 };

/*
 * Encodes in[0..n) with moat_encoder_step in pieces, into an output buffer
 * of out_cap bytes, flushing after every flush_every-th piece (0: never);
 * decodes as it goes, and after every flush checks that all the input so
 * far came out. Returns the compressed size.
 */
static size_t round_trip(enum moat_ae_coding c, const unsigned char *in, size_t n, size_t out_cap,
			 unsigned flush_every, uint64_t body_len)
{
	struct moat_encoder *e = moat_encoder_new(c, 0, body_len);
	unsigned char *out = malloc(out_cap);
	struct dec d;
	size_t pos = 0, total = 0;
	unsigned k = 0;

	assert_non_null(e);
	assert_non_null(out);
	dec_init(&d, c);
	for (;;) {
		size_t len = pieces[k % (sizeof pieces / sizeof pieces[0])];
		enum moat_codec_op op;
		const void *p = in + pos;
		int r;

		if (len > n - pos)
			len = n - pos;
		op = pos + len == n ? MOAT_CODEC_FINISH
			: flush_every && (k + 1) % flush_every == 0 ? MOAT_CODEC_FLUSH : MOAT_CODEC_RUN;
		do {
			size_t got = 0;

			r = moat_encoder_step(e, &p, &len, out, out_cap, &got, op);
			assert_true(r == 0 || r == MOAT_AGAIN);
			if (r == MOAT_AGAIN)
				assert_int_equal(got, out_cap);
			dec_feed(&d, out, got);
			total += got;
		} while (r == MOAT_AGAIN);
		assert_int_equal(len, 0);
		pos = (size_t)((const unsigned char *)p - in);
		k++;
		if (op == MOAT_CODEC_FLUSH) {
			/* all that was written is decodable now */
			assert_int_equal(d.out.len, pos);
			assert_memory_equal(d.out.p, in, pos);
			assert_false(d.ended);
		}
		if (op == MOAT_CODEC_FINISH)
			break;
	}
	assert_true(d.ended);
	assert_int_equal(d.out.len, n);
	if (n)
		assert_memory_equal(d.out.p, in, n);
	assert_int_equal(moat_encoder_in(e), n);
	assert_int_equal(moat_encoder_out(e), total);
	dec_free(&d);
	moat_encoder_free(e);
	free(out);
	return total;
}

static void test_round_trip_empty_small(void **state)
{
	static const char small[] = "hello, hello, hello, world\n";

	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		size_t z = round_trip(codings[i], (const unsigned char *)"", 0, 64, 0, 0);

		assert_true(z > 0 && z < 64); /* a header and an empty stream */
		round_trip(codings[i], (const unsigned char *)small, sizeof small - 1, 5, 0, 0);
		round_trip(codings[i], (const unsigned char *)small, sizeof small - 1, 1, 1, 0);
		round_trip(codings[i], (const unsigned char *)small, sizeof small - 1, 4096, 1,
			   sizeof small - 1);
	}
}

static void test_round_trip_random(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		size_t z = round_trip(codings[i], random_data, MIB, 777, 3, 0);

		/* incompressible: stored blocks, a small overhead */
		assert_true(z < MIB + MIB / 100 + 1024);
		round_trip(codings[i], random_data, MIB, 65536, 0, MIB);
	}
}

static void test_round_trip_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		size_t zf = round_trip(codings[i], text_data, MIB, 777, 2, 0);
		size_t z = round_trip(codings[i], text_data, MIB, 4096, 0, 0);
		size_t zh = round_trip(codings[i], text_data, MIB, 100000, 0, MIB);

		print_message("compress: %-4s 1 MiB of HTML-like text -> %zu bytes (%.1fx); "
			      "flushed every 2nd piece: %zu; with body_len: %zu\n",
			      moat_codec_ops(codings[i])->name, z, (double)MIB / (double)z, zf, zh);
		assert_true(z < MIB / 4);   /* ratio sanity: better than 4x */
		assert_true(zf < MIB / 3);  /* flushes cost a little */
		assert_true(zh < MIB / 4);
	}
}

static size_t sink_bytes(void *ctx, const void *p, size_t n)
{
	bytes_add(ctx, p, n);
	return n;
}

static size_t sink_short(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	(void)p;
	return n - 1;
}

static void test_sink(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		struct moat_encoder *e = moat_encoder_new(codings[i], 0, 0);
		struct bytes b = { 0 };
		struct dec d;
		size_t pos = 0;

		assert_non_null(e);
		assert_string_equal(moat_encoder_name(e), moat_codec_ops(codings[i])->name);
		while (pos < MIB) {
			size_t len = pieces[pos % 7];

			if (len > MIB - pos)
				len = MIB - pos;
			assert_int_equal(moat_encoder_write(e, text_data + pos, len, MOAT_CODEC_RUN,
							    sink_bytes, &b), 0);
			pos += len;
		}
		assert_int_equal(moat_encoder_write(e, NULL, 0, MOAT_CODEC_FINISH, sink_bytes, &b), 0);
		dec_init(&d, codings[i]);
		dec_feed(&d, b.p, b.len);
		assert_true(d.ended);
		assert_int_equal(d.out.len, MIB);
		assert_memory_equal(d.out.p, text_data, MIB);
		dec_free(&d);
		free(b.p);
		moat_encoder_free(e);

		/* a sink that takes less fails the stream */
		e = moat_encoder_new(codings[i], 0, 0);
		assert_int_equal(moat_encoder_write(e, text_data, 1000, MOAT_CODEC_FINISH, sink_short,
						    NULL), MOAT_CODEC_ESINK);
		assert_int_equal(moat_encoder_write(e, NULL, 0, MOAT_CODEC_FINISH, sink_bytes, &b),
				 MOAT_CODEC_ESTATE);
		moat_encoder_free(e);
	}
}

static void test_states_levels(void **state)
{
	unsigned char out[256];

	(void)state;
	assert_null(moat_encoder_new(MOAT_AE_IDENTITY, 0, 0));
	assert_null(moat_encoder_new((enum moat_ae_coding)9, 0, 0));
	assert_null(moat_codec_ops(MOAT_AE_IDENTITY));
	assert_int_equal(moat_codec_ops(MOAT_AE_GZIP)->level_default, 5);
	assert_int_equal(moat_codec_ops(MOAT_AE_BR)->level_default, 4);
	assert_int_equal(moat_codec_ops(MOAT_AE_ZSTD)->level_default, 3);
	moat_encoder_free(NULL);
	for (size_t i = 0; i < NCODINGS; i++) {
		static const int levels[] = { -100, 1, 9, 100 }; /* clamped */

		for (size_t l = 0; l < 4; l++) {
			struct moat_encoder *e = moat_encoder_new(codings[i], levels[l], 0);
			const void *p = text_data;
			size_t len = 50000, got;
			struct dec d;

			assert_non_null(e);
			assert_int_equal(moat_encoder_step(e, &p, &len, out, sizeof out, &got,
							   MOAT_CODEC_RUN) == MOAT_AGAIN || len == 0, 1);
			moat_encoder_free(e);
			/* and it decodes */
			e = moat_encoder_new(codings[i], levels[l], 0);
			{
				struct bytes b = { 0 };

				assert_int_equal(moat_encoder_write(e, text_data, 50000, MOAT_CODEC_FINISH,
								    sink_bytes, &b), 0);
				dec_init(&d, codings[i]);
				dec_feed(&d, b.p, b.len);
				assert_true(d.ended);
				assert_int_equal(d.out.len, 50000);
				dec_free(&d);
				free(b.p);
			}
			moat_encoder_free(e);
		}
		/* after FINISH: FINISH with nothing is 0, anything else ESTATE */
		{
			struct moat_encoder *e = moat_encoder_new(codings[i], 0, 0);
			const void *p = "abc";
			size_t len = 3, got;

			assert_int_equal(moat_encoder_step(e, &p, &len, out, sizeof out, &got,
							   MOAT_CODEC_FINISH), 0);
			assert_true(got > 0);
			assert_int_equal(moat_encoder_step(e, &p, &len, out, sizeof out, &got,
							   MOAT_CODEC_FINISH), 0);
			assert_int_equal(got, 0);
			p = "d";
			len = 1;
			assert_int_equal(moat_encoder_step(e, &p, &len, out, sizeof out, &got,
							   MOAT_CODEC_RUN), MOAT_CODEC_ESTATE);
			moat_encoder_free(e);
			/* no room is a caller's fault */
			e = moat_encoder_new(codings[i], 0, 0);
			assert_int_equal(moat_encoder_step(e, &p, &len, out, 0, &got, MOAT_CODEC_RUN),
					 MOAT_CODEC_ESTATE);
			moat_encoder_free(e);
		}
		/* repeated flushes with nothing new add (almost) nothing */
		{
			struct moat_encoder *e = moat_encoder_new(codings[i], 0, 0);
			struct bytes b = { 0 };
			size_t after_first;

			assert_int_equal(moat_encoder_write(e, "data: 1\n\n", 9, MOAT_CODEC_FLUSH,
							    sink_bytes, &b), 0);
			after_first = b.len;
			for (int k = 0; k < 10; k++)
				assert_int_equal(moat_encoder_write(e, NULL, 0, MOAT_CODEC_FLUSH,
								    sink_bytes, &b), 0);
			print_message("compress: %-4s first flush %zu bytes, 10 empty flushes +%zu\n",
				      moat_encoder_name(e), after_first, b.len - after_first);
			assert_true(b.len - after_first <= 10 * 8);
			free(b.p);
			moat_encoder_free(e);
		}
	}
}

/* body_len must be exact: zstd pledges it (a different length fails the
 * stream), gzip and br only size their windows by it. */
static void test_body_len(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		static const size_t lens[] = { 5000, 20000 }; /* shorter, longer than 10000 */

		for (size_t k = 0; k < 2; k++) {
			struct moat_encoder *e = moat_encoder_new(codings[i], 0, 10000);
			struct bytes b = { 0 };
			int r1, r2;

			r1 = moat_encoder_write(e, text_data, lens[k], MOAT_CODEC_RUN, sink_bytes, &b);
			r2 = r1 ? r1 : moat_encoder_write(e, NULL, 0, MOAT_CODEC_FINISH, sink_bytes, &b);
			if (codings[i] == MOAT_AE_ZSTD) {
				assert_int_equal(r1 ? r1 : r2, MOAT_CODEC_EFAIL);
			} else {
				struct dec d;

				assert_int_equal(r1, 0);
				assert_int_equal(r2, 0);
				dec_init(&d, codings[i]);
				dec_feed(&d, b.p, b.len);
				assert_true(d.ended);
				assert_int_equal(d.out.len, lens[k]);
				assert_memory_equal(d.out.p, text_data, lens[k]);
				dec_free(&d);
			}
			free(b.p);
			moat_encoder_free(e);
		}
		/* the exact length, in pieces with a flush: fine for all, and zstd
		 * says so in its frame header */
		round_trip(codings[i], text_data, 10000, 333, 2, 10000);
	}
	{
		struct moat_encoder *e = moat_encoder_new(MOAT_AE_ZSTD, 0, 10000);
		struct bytes b = { 0 };

		assert_int_equal(moat_encoder_write(e, text_data, 10000, MOAT_CODEC_FINISH, sink_bytes,
						    &b), 0);
		assert_int_equal(ZSTD_getFrameContentSize(b.p, b.len), 10000);
		free(b.p);
		moat_encoder_free(e);
	}
}

/* ---- memory ------------------------------------------------------------- */

/* Encodes the first n bytes of the text in 16 KiB writes; *held is the
 * most the encoder held between calls (what stays allocated per stream
 * while a worker serves others), the return value the most at any time
 * (a worker runs one encoder at a time, so the difference is transient). */
static size_t mem_after(enum moat_ae_coding c, uint64_t hint, size_t n, unsigned flush,
			size_t *held)
{
	struct moat_encoder *e = moat_encoder_new(c, 0, hint);
	struct bytes b = { 0 };
	size_t peak;

	assert_non_null(e);
	*held = moat_encoder_mem(e);
	for (size_t pos = 0; pos < n; pos += 16384) {
		size_t len = n - pos < 16384 ? n - pos : 16384;

		assert_int_equal(moat_encoder_write(e, text_data + pos, len,
						    flush ? MOAT_CODEC_FLUSH : MOAT_CODEC_RUN, sink_bytes,
						    &b), 0);
		if (moat_encoder_mem(e) > *held)
			*held = moat_encoder_mem(e);
	}
	assert_int_equal(moat_encoder_write(e, NULL, 0, MOAT_CODEC_FINISH, sink_bytes, &b), 0);
	peak = moat_encoder_mem_peak(e);
	assert_true(moat_encoder_mem(e) <= peak);
	assert_true(*held <= peak);
	moat_encoder_free(e);
	free(b.p);
	return peak;
}

static void test_memory(void **state)
{
	/* bounds a little over the values measured (codec.h) */
	static const size_t max_1m[] = { 270 * 1024, 4 * MIB, 2200 * 1024 };
	static const size_t max_10k[] = { 140 * 1024, 1 * MIB, 300 * 1024 };
	size_t m1[NCODINGS], mf[NCODINGS], m10[NCODINGS], m10u[NCODINGS];
	size_t h1[NCODINGS], hf[NCODINGS], h10[NCODINGS], h10u[NCODINGS];

	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		m1[i] = mem_after(codings[i], 0, MIB, 0, &h1[i]);
		mf[i] = mem_after(codings[i], 0, MIB, 1, &hf[i]);
		m10[i] = mem_after(codings[i], 10240, 10240, 0, &h10[i]);
		m10u[i] = mem_after(codings[i], 0, 10240, 0, &h10u[i]);
		print_message("compress: %-4s memory per stream, held / peak KiB: 1 MiB body %zu / %zu "
			      "(flushed every 16 KiB: %zu / %zu); 10 KiB body with body_len "
			      "%zu / %zu, without %zu / %zu\n",
			      moat_codec_ops(codings[i])->name, h1[i] / 1024, m1[i] / 1024,
			      hf[i] / 1024, mf[i] / 1024, h10[i] / 1024, m10[i] / 1024,
			      h10u[i] / 1024, m10u[i] / 1024);
	}
	for (size_t i = 0; i < NCODINGS; i++) {
		assert_true(m1[i] <= max_1m[i]);
		assert_true(mf[i] <= max_1m[i]);
		assert_true(m10[i] <= max_10k[i]);
		assert_true(m10[i] <= m1[i]);
	}
}

/* ---- throughput ------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t sink_count(void *ctx, const void *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
	return n;
}

static void test_speed(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCODINGS; i++) {
		double t0 = now_s(), t;
		size_t rounds = 0, out = 0;

		/* 1 MiB of text in 16 KiB reads, as a body arrives, until 0.3 s */
		do {
			struct moat_encoder *e = moat_encoder_new(codings[i], 0, 0);

			for (size_t pos = 0; pos < MIB; pos += 16384)
				assert_int_equal(moat_encoder_write(e, text_data + pos, 16384,
								    MOAT_CODEC_RUN, sink_count, &out), 0);
			assert_int_equal(moat_encoder_write(e, NULL, 0, MOAT_CODEC_FINISH, sink_count,
							    &out), 0);
			moat_encoder_free(e);
			rounds++;
			t = now_s() - t0;
		} while (t < 0.3);
		print_message("compress: %-4s level %d: %.0f MB/s in, ratio %.1fx (1 MiB HTML-like "
			      "text, 16 KiB writes)\n", moat_codec_ops(codings[i])->name,
			      moat_codec_ops(codings[i])->level_default,
			      (double)rounds * MIB / t / 1e6, (double)rounds * MIB / (double)out);
	}
}

/* ---- policy -------------------------------------------------------------- */

struct resp {
	struct moat_h1_head h;
	struct moat_h1_header f[16];
};

/* A response head from "Name: value" strings (NULL-terminated list). */
static void resp_make(struct resp *r, int status, enum moat_h1_framing framing, uint64_t cl,
		      const char *const *fields)
{
	memset(r, 0, sizeof *r);
	r->h.status = status;
	r->h.framing = framing;
	r->h.content_length = cl;
	r->h.headers = r->f;
	r->h.header_cap = 16;
	for (size_t i = 0; fields && fields[i]; i++) {
		const char *colon = strchr(fields[i], ':');

		r->f[i].name = fields[i];
		r->f[i].name_len = (size_t)(colon - fields[i]);
		r->f[i].value = colon + 2;
		r->f[i].value_len = strlen(colon + 2);
		r->h.nheaders++;
	}
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_policy_matrix(void **state)
{
	static const struct moat_compress_conf cf = { NULL, 0, 256, MOAT_AE_OFFER_ALL };
	static const char *const html_only[] = { "text/html" };
	static const struct moat_compress_conf cf_html = { html_only, 1, 0, MOAT_AE_BIT(MOAT_AE_GZIP) };
	const struct {
		const struct moat_compress_conf *cf;
		int status;
		enum moat_h1_framing framing;
		uint64_t cl;
		const char *const *fields;
		int head, coding;
		enum moat_compress_verdict want;
		int vary;
	} rows[] = {
#define HTML "Content-Type: text/html; charset=utf-8"
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_YES, 1 },
		{ &cf, 203, MOAT_H1_BODY_CHUNKED, 0, L(HTML), 0, MOAT_AE_GZIP, MOAT_COMPRESS_YES, 1 },
		{ &cf, 200, MOAT_H1_BODY_CLOSE, 0, L(HTML), 0, MOAT_AE_ZSTD, MOAT_COMPRESS_YES, 1 },
		{ &cf, 206, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 204, MOAT_H1_BODY_NONE, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 304, MOAT_H1_BODY_NONE, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 404, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 500, MOAT_H1_BODY_CHUNKED, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 101, MOAT_H1_BODY_NONE, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_STATUS, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_BODY, 0 },
		{ &cf, 200, MOAT_H1_BODY_NONE, 0, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_BODY, 0 },
		/* already encoded, in any form */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML, "Content-Encoding: gzip"), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_ENCODED, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L("content-encoding: identity", HTML), 0,
		  MOAT_AE_BR, MOAT_COMPRESS_NO_ENCODED, 0 },
		/* no-transform anywhere in Cache-Control */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML, "Cache-Control: public, No-Transform"), 0,
		  MOAT_AE_BR, MOAT_COMPRESS_NO_TRANSFORM, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000,
		  L(HTML, "Cache-Control: max-age=60", "Cache-Control: no-transform"), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_TRANSFORM, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML, "Cache-Control: no-cache, max-age=0"), 0,
		  MOAT_AE_BR, MOAT_COMPRESS_YES, 1 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000,
		  L(HTML, "Cache-Control: private=\"x, no-transform\""), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_YES, 1 }, /* inside a quoted string: not the directive */
		/* types */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L("Content-Type: image/png"), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_TYPE, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, NULL, 0, MOAT_AE_BR, MOAT_COMPRESS_NO_TYPE, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L("Content-Type: APPLICATION/JSON"), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_YES, 1 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L("Content-Type:  text/css ;charset=x"), 0,
		  MOAT_AE_BR, MOAT_COMPRESS_YES, 1 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML, "Content-Type: text/css"), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_TYPE, 0 }, /* two types: ambiguous */
		{ &cf_html, 200, MOAT_H1_BODY_LENGTH, 5000, L("Content-Type: text/css"), 0, MOAT_AE_GZIP,
		  MOAT_COMPRESS_NO_TYPE, 0 },
		/* sizes: min_size applies to known lengths only */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 255, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_NO_SMALL, 0 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 256, L(HTML), 0, MOAT_AE_BR, MOAT_COMPRESS_YES, 1 },
		{ &cf_html, 200, MOAT_H1_BODY_LENGTH, 1, L(HTML), 0, MOAT_AE_GZIP, MOAT_COMPRESS_YES, 1 },
		/* HEAD: nothing to compress, but the answer varies */
		{ &cf, 200, MOAT_H1_BODY_NONE, 0, L(HTML, "Content-Length: 5000"), 1, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_HEAD, 1 },
		{ &cf, 200, MOAT_H1_BODY_NONE, 0, L(HTML, "Content-Length: 100"), 1, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_SMALL, 0 },
		{ &cf, 200, MOAT_H1_BODY_NONE, 0, L(HTML), 1, MOAT_AE_BR, MOAT_COMPRESS_NO_HEAD, 1 },
		/* the coding */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_IDENTITY,
		  MOAT_COMPRESS_NO_ACCEPT, 1 },
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_NOT_ACCEPTABLE,
		  MOAT_COMPRESS_NO_ACCEPT, 1 },
		{ &cf_html, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, MOAT_AE_BR,
		  MOAT_COMPRESS_NO_ACCEPT, 1 }, /* br not offered by this route */
		{ &cf, 200, MOAT_H1_BODY_LENGTH, 5000, L(HTML), 0, 7, MOAT_COMPRESS_NO_ACCEPT, 1 },
#undef HTML
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct moat_compress_decision d;
		struct resp r;
		enum moat_compress_verdict v;

		resp_make(&r, rows[i].status, rows[i].framing, rows[i].cl, rows[i].fields);
		v = moat_compress_decide(rows[i].cf, &r.h, rows[i].head, rows[i].coding, &d);
		if (v != rows[i].want || d.vary != rows[i].vary)
			print_error("row %zu: got %s vary %d, want %s vary %d\n", i,
				    moat_compress_verdict_name(v), d.vary,
				    moat_compress_verdict_name(rows[i].want), rows[i].vary);
		assert_int_equal(v, rows[i].want);
		assert_int_equal(d.verdict, v);
		assert_int_equal(d.vary, rows[i].vary);
		if (v == MOAT_COMPRESS_YES) {
			assert_int_equal(d.coding, rows[i].coding);
			assert_int_equal(d.body_len,
					 rows[i].framing == MOAT_H1_BODY_LENGTH ? rows[i].cl : 0);
		} else {
			assert_int_equal(d.coding, 0);
		}
	}
	assert_string_equal(moat_compress_verdict_name(MOAT_COMPRESS_NO_TRANSFORM), "no-transform");
	assert_string_equal(moat_compress_verdict_name((enum moat_compress_verdict)99), "?");
}

static void test_policy_types(void **state)
{
	static const char *const t[] = { "text/*", "application/json" };
	static const char *const any[] = { "*/*" };
	static const struct {
		const char *v;
		int want;
	} rows[] = {
		{ "text/html", 1 }, { "TEXT/Plain; charset=utf-8", 1 }, { "text/event-stream", 1 },
		{ "application/json", 1 }, { "application/json;x=1", 1 }, { "application/jsonx", 0 },
		{ "application/problem+json", 0 }, { "text", 0 }, { "text/", 0 }, { "/html", 0 },
		{ "", 0 }, { "  text/css  ", 1 }, { "textx/html", 0 }, { "image/png", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int got = moat_compress_type_ok(t, 2, rows[i].v, strlen(rows[i].v));

		if (got != rows[i].want)
			print_error("type \"%s\": got %d\n", rows[i].v, got);
		assert_int_equal(got, rows[i].want);
	}
	assert_true(moat_compress_type_ok(any, 1, "image/png", 9));
	assert_false(moat_compress_type_ok(any, 1, "png", 3));
	assert_false(moat_compress_type_ok(t, 0, "text/html", 9));
	assert_true(moat_compress_type_ok(moat_compress_default_types, moat_compress_default_ntypes,
					  "image/svg+xml", 13));
	assert_false(moat_compress_type_ok(moat_compress_default_types, moat_compress_default_ntypes,
					   "image/jpeg", 10));
}

static int hidden(const char *const *hide, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(hide[i], name) == 0)
			return 1;
	return 0;
}

static void edits(const char *const *fields, int coding, const char *want_extra, int hide_vary,
		  int hide_yes)
{
	static const struct moat_compress_conf cf = { NULL, 0, 0, MOAT_AE_OFFER_ALL };
	struct moat_compress_decision d;
	const char *const *hide;
	struct resp r;
	char extra[512];
	size_t nhide, len;

	resp_make(&r, 200, MOAT_H1_BODY_CHUNKED, 0, fields);
	moat_compress_decide(&cf, &r.h, 0, coding, &d);
	assert_int_equal(moat_compress_edits(&r.h, &d, &hide, &nhide, extra, sizeof extra, &len), 0);
	if (len != strlen(want_extra) || memcmp(extra, want_extra, len) != 0)
		print_error("extra: got \"%.*s\"\nwant \"%s\"\n", (int)len, extra, want_extra);
	assert_int_equal(len, strlen(want_extra));
	assert_memory_equal(extra, want_extra, len);
	assert_int_equal(hidden(hide, nhide, "vary"), hide_vary);
	assert_int_equal(hidden(hide, nhide, "content-length"), hide_yes);
	assert_int_equal(hidden(hide, nhide, "accept-ranges"), hide_yes);
	assert_int_equal(hidden(hide, nhide, "etag"), hide_yes);
	assert_int_equal(hidden(hide, nhide, "content-digest"), hide_yes);
	assert_int_equal(hidden(hide, nhide, "repr-digest"), hide_yes);
	assert_int_equal(nhide, (size_t)(hide_yes ? MOAT_COMPRESS_HIDE_MAX - 1 : 0) + (size_t)hide_vary);
}

static void test_policy_edits(void **state)
{
	(void)state;
	/* the plain case */
	edits(L("Content-Type: text/html", "ETag: \"abc\"", "Accept-Ranges: bytes"), MOAT_AE_BR,
	      "Content-Encoding: br\r\nETag: W/\"abc\"\r\nVary: Accept-Encoding\r\n", 0, 1);
	/* a weak ETag stays weak; Vary merged (several fields, an empty one) */
	edits(L("Content-Type: text/html", "ETag: W/\"x-1\"", "Vary: Cookie", "Vary: ",
		"vary: Origin, User-Agent"), MOAT_AE_GZIP,
	      "Content-Encoding: gzip\r\nETag: W/\"x-1\"\r\nVary: Cookie, Origin, User-Agent, "
	      "Accept-Encoding\r\n", 1, 1);
	/* Vary already names Accept-Encoding (any case) or is "*": left alone */
	edits(L("Content-Type: text/html", "Vary: Origin, accept-encoding"), MOAT_AE_ZSTD,
	      "Content-Encoding: zstd\r\n", 0, 1);
	edits(L("Content-Type: text/html", "Vary: *"), MOAT_AE_ZSTD, "Content-Encoding: zstd\r\n", 0,
	      1);
	/* invalid or repeated ETags are dropped */
	edits(L("Content-Type: text/html", "ETag: abc"), MOAT_AE_BR,
	      "Content-Encoding: br\r\nVary: Accept-Encoding\r\n", 0, 1);
	edits(L("Content-Type: text/html", "ETag: \"a\"", "ETag: \"b\""), MOAT_AE_BR,
	      "Content-Encoding: br\r\nVary: Accept-Encoding\r\n", 0, 1);
	edits(L("Content-Type: text/html", "ETag: \"a b\""), MOAT_AE_BR,
	      "Content-Encoding: br\r\nVary: Accept-Encoding\r\n", 0, 1);
	edits(L("Content-Type: text/html", "ETag: \"\""), MOAT_AE_BR,
	      "Content-Encoding: br\r\nETag: W/\"\"\r\nVary: Accept-Encoding\r\n", 0, 1);
	/* not compressed for this client: only Vary */
	edits(L("Content-Type: text/html", "ETag: \"abc\""), MOAT_AE_IDENTITY,
	      "Vary: Accept-Encoding\r\n", 0, 0);
	edits(L("Content-Type: text/html", "Vary: Cookie"), MOAT_AE_IDENTITY,
	      "Vary: Cookie, Accept-Encoding\r\n", 1, 0);
	edits(L("Content-Type: text/html", "Vary: Accept-Encoding"), MOAT_AE_IDENTITY, "", 0, 0);
	/* not compressible at all: no edits */
	edits(L("Content-Type: image/png", "ETag: \"abc\"", "Vary: Cookie"), MOAT_AE_BR, "", 0, 0);
}

static void test_policy_edits_nobufs(void **state)
{
	static const struct moat_compress_conf cf = { NULL, 0, 0, MOAT_AE_OFFER_ALL };
	struct moat_compress_decision d;
	const char *const *hide;
	struct resp r;
	char extra[64];
	size_t nhide = 99, len = 99;

	(void)state;
	resp_make(&r, 200, MOAT_H1_BODY_CHUNKED, 0,
		  L("Content-Type: text/html", "ETag: \"0123456789012345678901234567890123456789\""));
	assert_int_equal(moat_compress_decide(&cf, &r.h, 0, MOAT_AE_GZIP, &d), MOAT_COMPRESS_YES);
	assert_int_equal(moat_compress_edits(&r.h, &d, &hide, &nhide, extra, sizeof extra, &len),
			 -ENOBUFS);
	assert_int_equal(nhide, 0);
	assert_int_equal(len, 0);
	assert_int_equal(moat_compress_edits(&r.h, &d, &hide, &nhide, extra, 0, &len), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_empty_small),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_round_trip_text),
		cmocka_unit_test(test_sink),
		cmocka_unit_test(test_states_levels),
		cmocka_unit_test(test_body_len),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_speed),
		cmocka_unit_test(test_policy_matrix),
		cmocka_unit_test(test_policy_types),
		cmocka_unit_test(test_policy_edits),
		cmocka_unit_test(test_policy_edits_nobufs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
