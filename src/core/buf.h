/*
 * buf.h - a byte buffer with a maximum, and a per-worker pool of buffer
 * memory.
 *
 * Bytes live in data[start..end). Memory is taken from the worker's pool
 * when needed and given back when the buffer empties, so an idle
 * keep-alive connection holds no buffer at all. Growth past the pool's
 * chunk size uses malloc up to `max`; past `max` appends fail.
 *
 * Owner: the connection that embeds it; not thread-safe.
 */
#ifndef MOAT_CORE_BUF_H
#define MOAT_CORE_BUF_H

#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

#define MOAT_BUF_CHUNK (32u * 1024u)

/* A free list of MOAT_BUF_CHUNK-sized blocks, one per worker. */
struct moat_buf_pool {
	void *free;          /* singly linked through the first word */
	size_t nfree;
	size_t max_free;     /* blocks kept; the rest go back to malloc */
};

struct moat_buf {
	char *data;
	size_t start, end, cap;
	size_t max;          /* bytes this buffer may hold at most */
	struct moat_buf_pool *pool;
};

void moat_buf_init(struct moat_buf *b, struct moat_buf_pool *pool, size_t max);

static inline size_t moat_buf_len(const struct moat_buf *b) { return b->end - b->start; }
static inline char *moat_buf_head(const struct moat_buf *b) { return b->data + b->start; }

/* Ensures at least `want` bytes (capped by max) are writable after end,
 * compacting or growing. Returns the writable room (0 when at max or out
 * of memory). */
size_t moat_buf_reserve(struct moat_buf *b, size_t want);

/* Appends; returns 0, or -ENOBUFS when it would pass max (nothing appended). */
int moat_buf_append_slow(struct moat_buf *b, const void *p, size_t n);
static inline int moat_buf_append(struct moat_buf *b, const void *p, size_t n)
{
	/* the common case inline: a small piece, room after end, within max */
	if (n <= 65536 && b->data && b->cap - b->end >= n && b->end - b->start + n <= b->max) {
		if (n)
			memcpy(b->data + b->end, p, n);
		b->end += n;
		return 0;
	}
	return moat_buf_append_slow(b, p, n);
}

/* Drops n bytes from the front; releases the memory when empty. */
void moat_buf_consume(struct moat_buf *b, size_t n);

/* Releases the memory (contents dropped). */
void moat_buf_release(struct moat_buf *b);

void moat_buf_pool_drain(struct moat_buf_pool *pool);

#endif
