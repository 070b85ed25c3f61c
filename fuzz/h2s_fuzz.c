/*
 * h2s_fuzz.c - libFuzzer target for the HTTP/2 server translator (h2s.c).
 *
 * The input is what a client sends after the connection preface. It is
 * fed in pieces (the first byte says where to cut), and after each piece
 * the driver plays the proxy core as the contract says it may: it reads
 * the request bodies of the streams opened so far, writes a response for
 * each (a different kind per stream: content-length, chunked with
 * trailers, close-delimited, 1xx first, 101, invalid), ends some, and
 * flushes into a small buffer. Nothing may crash, leak or read out of
 * bounds; a stream pointer must never come back after `closed`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 16

struct slot {
	int used;
	int32_t id;
	size_t written;   /* response bytes taken */
	int ended;        /* resp_end called */
};

struct drv {
	struct slot s[SLOTS];
	int open_calls;
};

static void *op_open(void *ud, int32_t id, const char *head, size_t len)
{
	struct drv *d = ud;
	int i;

	if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
		abort();
	d->open_calls++;
	if (d->open_calls % 7 == 0)
		return NULL; /* refused by the core */
	for (i = 0; i < SLOTS; i++)
		if (!d->s[i].used) {
			memset(&d->s[i], 0, sizeof(d->s[i]));
			d->s[i].used = 1;
			d->s[i].id = id;
			return &d->s[i];
		}
	return NULL;
}

static void op_readable(void *ud, void *sp)
{
	if (!((struct slot *)sp)->used)
		abort();
}

static void op_writable(void *ud, void *sp)
{
	if (!((struct slot *)sp)->used)
		abort();
}

static void op_closed(void *ud, void *sp, uint32_t code)
{
	struct slot *s = sp;

	if (!s->used)
		abort();
	s->used = 0;
}

static const struct moat_h2s_ops ops = { op_open, op_readable, op_writable, op_closed };

static const char *const responses[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited body",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Field\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
};

/* The core's turn: read bodies, write responses, end some. */
static void core_turn(struct moat_h2s *h, struct drv *d, int round)
{
	static char big[4096];
	int i;

	for (i = 0; i < SLOTS; i++) {
		struct slot *s = &d->s[i];
		const char *r;
		char buf[512];
		int ended = 0;
		ssize_t n;
		size_t len;

		if (!s->used)
			continue;
		while ((n = moat_h2s_req_read(h, s, buf, sizeof(buf), &ended)) > 0)
			;
		if (!s->used)
			continue;
		r = responses[(size_t)s->id / 2 % (sizeof(responses) / sizeof(responses[0]))];
		len = strlen(r);
		if (s->written < len) {
			n = moat_h2s_resp_write(h, s, r + s->written, len - s->written);
			if (n > 0)
				s->written += (size_t)n;
		} else if (strstr(r, "100000") != NULL) {
			/* a long body, until the stream's buffer or the window stops it */
			n = moat_h2s_resp_write(h, s, big, sizeof(big));
			if (n > 0)
				s->written += (size_t)n;
		}
		if (!s->ended && ((unsigned)round + (unsigned)s->id) % 3 == 0 && s->written >= len) {
			s->ended = 1;
			moat_h2s_resp_end(h, s);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_h2s_limits lim = { .max_streams = 8, .stream_window = 4096, .stream_out_max = 2048,
				       .header_list_max = 4096, .header_count_max = 32, .continuation_max = 4,
				       .ctrl_burst = 64, .reset_burst = 16 };
	struct drv d;
	struct moat_h2s *h;
	struct moat_buf out;
	size_t cut = size ? (size_t)data[0] * size / 256 + 1 : 0, off;
	int round = 0;

	memset(&d, 0, sizeof(d));
	h = moat_h2s_new(&ops, &d, &lim);
	if (h == NULL)
		return 0;
	moat_buf_init(&out, NULL, 1500);
	if (moat_h2s_feed(h, (const uint8_t *)MOAT_H2_PREFACE, MOAT_H2_PREFACE_LEN) != (ssize_t)MOAT_H2_PREFACE_LEN)
		abort();
	for (off = size ? 1 : 0; off < size && !moat_h2s_done(h); round++) {
		size_t n = cut < size - off ? cut : size - off;
		ssize_t r;
		int i;

		r = moat_h2s_feed(h, data + off, n);
		if (r < 0)
			break;
		if ((size_t)r > n)
			abort();
		off += n;
		for (i = 0; i < 4; i++) {
			core_turn(h, &d, round);
			if (moat_h2s_flush(h, &out) < 0)
				break;
			moat_buf_consume(&out, moat_buf_len(&out));
		}
		if (round == 2)
			moat_h2s_shutdown(h);
	}
	while (moat_h2s_want_write(h) && moat_h2s_flush(h, &out) > 0)
		moat_buf_consume(&out, moat_buf_len(&out));
	moat_buf_release(&out);
	moat_h2s_free(h);
	return 0;
}
