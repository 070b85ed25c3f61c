/*
 * buf.c - bounded buffers over a per-worker chunk pool (see buf.h).
 */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *pool_get(struct moat_buf_pool *pool)
{
	if (pool && pool->free) {
		char *p = pool->free;

		pool->free = *(void **)p;
		pool->nfree--;
		return p;
	}
	return malloc(MOAT_BUF_CHUNK);
}

static void pool_put(struct moat_buf_pool *pool, char *p)
{
	if (pool && pool->nfree < pool->max_free) {
		*(void **)p = pool->free;
		pool->free = p;
		pool->nfree++;
		return;
	}
	free(p);
}

void moat_buf_init(struct moat_buf *b, struct moat_buf_pool *pool, size_t max)
{
	b->data = NULL;
	b->start = b->end = b->cap = 0;
	b->max = max;
	b->pool = pool;
}

void moat_buf_release(struct moat_buf *b)
{
	if (b->data) {
		if (b->cap == MOAT_BUF_CHUNK)
			pool_put(b->pool, b->data);
		else
			free(b->data);
	}
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}

static size_t room(const struct moat_buf *b)
{
	size_t len = b->end - b->start;
	size_t r = b->cap - b->end;

	if (len >= b->max)
		return 0;
	return r < b->max - len ? r : b->max - len;
}

size_t moat_buf_reserve(struct moat_buf *b, size_t want)
{
	size_t len = b->end - b->start;
	size_t need;

	if (!b->data) {
		b->data = pool_get(b->pool);
		if (!b->data)
			return 0;
		b->cap = MOAT_BUF_CHUNK;
		b->start = b->end = 0;
	}
	if (b->cap - b->end >= want)
		return room(b);
	if (b->start > 0) {
		memmove(b->data, b->data + b->start, len);
		b->start = 0;
		b->end = len;
		if (b->cap - b->end >= want)
			return room(b);
	}
	need = len + want;
	if (need > b->max)
		need = b->max;
	if (need > b->cap) {
		size_t ncap = b->cap;
		char *p;

		while (ncap < need)
			ncap *= 2;
		if (ncap > b->max)
			ncap = b->max;
		p = malloc(ncap);
		if (!p)
			return room(b);
		memcpy(p, b->data, len);
		if (b->cap == MOAT_BUF_CHUNK)
			pool_put(b->pool, b->data);
		else
			free(b->data);
		b->data = p;
		b->cap = ncap;
	}
	return room(b);
}

int moat_buf_append_slow(struct moat_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (moat_buf_len(b) + n > b->max || moat_buf_reserve(b, n) < n)
		return -ENOBUFS;
	memcpy(b->data + b->end, p, n);
	b->end += n;
	return 0;
}

void moat_buf_consume(struct moat_buf *b, size_t n)
{
	b->start += n;
	if (b->start >= b->end)
		moat_buf_release(b);
}

void moat_buf_pool_drain(struct moat_buf_pool *pool)
{
	while (pool->free) {
		void *p = pool->free;

		pool->free = *(void **)p;
		free(p);
	}
	pool->nfree = 0;
}
