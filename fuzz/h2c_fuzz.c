/*
 * h2c_fuzz.c - libFuzzer target for the HTTP/2 client translator (h2c.c).
 *
 * A fixed GET is written, the client's frames flushed, a valid empty
 * SETTINGS fed as the server's first frame, then the input is fed as the
 * server's frames: one frame at a time (by the length in each frame
 * header) when the input length is 1 more than a multiple of 3, in pieces
 * of 7 bytes when it is a multiple of 3 (frames arrive cut), else in
 * pieces of 1024. After each piece the
 * client's frames are flushed (into a small buffer, so flushes are
 * partial) and the response is read until nothing is left, 512 bytes a
 * call. Whenever the connection is reusable a next request goes out (a
 * chunked POST with trailers, then a HEAD, then GETs, four in all), so
 * request bodies and reuse are reached. At the end EOF is fed and the
 * session freed. Must not crash, leak, or break read()'s contract.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/h2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const requests[] = {
	"GET /f HTTP/1.1\r\nHost: fuzz\r\nTE: trailers\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\nContent-Type: application/grpc\r\n"
	"TE: trailers\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
	"HEAD /h HTTP/1.1\r\nHost: fuzz\r\n\r\n",
	"GET /g HTTP/1.1\r\nHost: fuzz\r\n\r\n",
};

struct req {
	const char *p;
	size_t left;
	size_t next;
};

/* Writes what the current request has left, starts the next one when
 * the connection allows. */
static void write_more(struct moat_h2c *h, struct req *r)
{
	if (r->left == 0 && r->next < sizeof(requests) / sizeof(requests[0]) && moat_h2c_reusable(h)) {
		r->p = requests[r->next++];
		r->left = strlen(r->p);
	}
	while (r->left > 0) {
		ssize_t k = moat_h2c_write(h, r->p, r->left);

		if (k < 0) {
			r->left = 0;
			r->next = sizeof(requests) / sizeof(requests[0]); /* broken: no more */
			return;
		}
		if (k == 0)
			return;
		if ((size_t)k > r->left)
			abort();
		r->p += k;
		r->left -= (size_t)k;
	}
}

static void drain(struct moat_h2c *h, struct moat_buf *out, struct req *r)
{
	char buf[512];
	int eof, rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		ssize_t n;

		write_more(h, r);
		if (moat_h2c_flush(h, out) < 0)
			return;
		moat_buf_consume(out, moat_buf_len(out));
		do {
			n = moat_h2c_read(h, buf, sizeof buf, &eof);
			if (n > (ssize_t)sizeof buf || n < -1 || (n != 0 && eof))
				abort();
		} while (n > 0);
		if (!moat_h2c_want_write(h) && !(r->left == 0 && moat_h2c_reusable(h) &&
						 r->next < sizeof(requests) / sizeof(requests[0])))
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t settings[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	struct moat_h2c *h = moat_h2c_new("http");
	struct req r = { NULL, 0, 0 };
	struct moat_buf out;
	size_t off = 0, step = size % 3 == 0 ? 7 : 1024;
	int frames = size % 3 == 1;

	if (h == NULL)
		return 0;
	moat_buf_init(&out, NULL, 4096);
	write_more(h, &r);
	drain(h, &out, &r);
	if (moat_h2c_feed(h, settings, sizeof settings) == (ssize_t)sizeof settings) {
		drain(h, &out, &r);
		while (off < size) {
			size_t n = step;
			ssize_t k;

			if (frames && size - off >= 3)
				n = 9 + ((size_t)data[off] << 16 | (size_t)data[off + 1] << 8 | data[off + 2]);
			if (n > size - off)
				n = size - off;
			k = moat_h2c_feed(h, data + off, n);

			if (k < 0)
				break;
			if ((size_t)k > n)
				abort();
			off += n;
			drain(h, &out, &r);
		}
	}
	moat_h2c_feed(h, NULL, 0);
	drain(h, &out, &r);
	moat_buf_release(&out);
	moat_h2c_free(h);
	return 0;
}
