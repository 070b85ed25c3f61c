/*
 * chunked_fuzz.c - libFuzzer target for moat_chunked_decode().
 *
 * The input is decoded as a body three ways, as a caller would feed it
 * (keeping bytes a call did not consume and showing them again with more):
 * whole; split in two where the first byte says; and, when the first
 * byte is odd, one byte at a time. Every call sees an exactly sized heap
 * copy, so a read past what it was given hits ASan. All ways must give the
 * same data, trailer lines, result and end offset, or abort().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int result;
	size_t end;
	uint8_t *data;      /* decoded bytes, at most size of them */
	size_t data_len;
	uint8_t *trailers;  /* trailer lines, each followed by '\n' */
	size_t trailers_len;
};

/* Shows in[0..n) to a fresh decoder, `first` bytes first, then `step`
 * more at a time (0: the rest at once). */
static void run(const uint8_t *in, size_t n, size_t first, size_t step, struct outcome *o)
{
	struct moat_chunked d;
	size_t base = 0, avail = first;

	moat_chunked_init(&d);
	d.max_line = 64;     /* small, so the limits are reached */
	d.max_trailer = 256;
	o->result = 0;
	o->end = 0;
	o->data_len = 0;
	o->trailers_len = 0;
	o->data = malloc(n + 1);
	o->trailers = malloc(2 * n + 1);
	if (o->data == NULL || o->trailers == NULL)
		abort();

	for (;;) {
		size_t have = avail - base, consumed, off, len;
		char *copy = malloc(have ? have : 1);
		int r;

		if (copy == NULL)
			abort();
		memcpy(copy, in + base, have);
		r = moat_chunked_decode(&d, copy, have, &consumed, &off, &len);
		free(copy);
		if (consumed > have)
			abort();
		if (r == MOAT_CHUNKED_DATA || r == MOAT_CHUNKED_TRAILER) {
			if (off + len > consumed || (r == MOAT_CHUNKED_DATA && len == 0))
				abort();
			if (r == MOAT_CHUNKED_DATA) {
				memcpy(o->data + o->data_len, in + base + off, len);
				o->data_len += len;
			} else {
				memcpy(o->trailers + o->trailers_len, in + base + off, len);
				o->trailers_len += len;
				o->trailers[o->trailers_len++] = '\n';
			}
		} else if (r == MOAT_CHUNKED_NEED) {
			if (avail == n) {
				o->result = r;
				return;
			}
			avail = step == 0 || n - avail < step ? n : avail + step;
		} else if (r == MOAT_CHUNKED_DONE) {
			o->result = r;
			o->end = base + consumed;
			return;
		} else if (r == MOAT_CHUNKED_EBAD || r == MOAT_CHUNKED_ETOOBIG) {
			o->result = r;
			return;
		} else {
			abort();
		}
		base += consumed;
	}
}

static void release(struct outcome *o)
{
	free(o->data);
	free(o->trailers);
}

static void same(const struct outcome *a, const struct outcome *b)
{
	if (a->result != b->result || a->end != b->end || a->data_len != b->data_len ||
	    a->trailers_len != b->trailers_len || memcmp(a->data, b->data, a->data_len) != 0 ||
	    memcmp(a->trailers, b->trailers, a->trailers_len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split;
	size_t cut = size ? (size_t)data[0] * size / 256 : 0;

	run(data, size, size, 0, &whole);
	run(data, size, cut, 0, &split);
	same(&whole, &split);
	release(&split);
	if (size && (data[0] & 1)) {
		run(data, size, 0, 1, &split);
		same(&whole, &split);
		release(&split);
	}
	release(&whole);
	return 0;
}
