/*
 * buf_test.c - unit tests of src/core/buf.c, bounded buffers over a chunk
 * pool.
 *
 * Checked: bytes in and out in order; the maximum is never passed (an
 * append that would pass it fails with -ENOBUFS and appends nothing,
 * moat_buf_reserve never offers room past it); an emptied or released
 * buffer gives its chunk back to the pool, which keeps at most max_free;
 * growth past MOAT_BUF_CHUNK (with or without a consumed front) keeps the
 * contents. Every room reserve reports is written to, so ASan checks that
 * it exists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"

#define CHUNK ((size_t)MOAT_BUF_CHUNK)

/* Byte i of the test stream: not periodic in any power of two. */
static char pat(size_t i)
{
	return (char)((i * 131u + i / 251u) & 0xff);
}

static void append_pattern(struct moat_buf *b, size_t *pos, size_t n)
{
	char tmp[997];

	while (n) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);

		for (size_t i = 0; i < k; i++)
			tmp[i] = pat(*pos + i);
		assert_int_equal(moat_buf_append(b, tmp, k), 0);
		*pos += k;
		n -= k;
	}
}

/* The buffer holds exactly the stream bytes [from, to). */
static void check_pattern(const struct moat_buf *b, size_t from, size_t to)
{
	const char *h = moat_buf_head(b);

	assert_int_equal(moat_buf_len(b), to - from);
	for (size_t i = from; i < to; i++)
		if (h[i - from] != pat(i))
			fail_msg("byte %zu of the stream differs", i);
}

static void check_invariants(const struct moat_buf *b)
{
	assert_true(b->start <= b->end);
	assert_true(b->end <= b->cap);
	assert_true(moat_buf_len(b) <= b->max);
	if (!b->data)
		assert_int_equal(moat_buf_len(b), 0);
}

static void test_append_consume(void **state)
{
	struct moat_buf_pool pool = { NULL, 0, 4 };
	struct moat_buf b;

	(void)state;
	moat_buf_init(&b, &pool, 1024);
	assert_null(b.data);
	assert_int_equal(moat_buf_len(&b), 0);
	assert_int_equal(moat_buf_append(&b, "hello", 5), 0);
	assert_int_equal(moat_buf_append(&b, ", world", 7), 0);
	assert_int_equal(moat_buf_len(&b), 12);
	assert_memory_equal(moat_buf_head(&b), "hello, world", 12);
	moat_buf_consume(&b, 7);
	assert_int_equal(moat_buf_len(&b), 5);
	assert_memory_equal(moat_buf_head(&b), "world", 5);
	assert_int_equal(moat_buf_append(&b, "!", 1), 0);
	assert_memory_equal(moat_buf_head(&b), "world!", 6);
	check_invariants(&b);
	moat_buf_consume(&b, 0);
	assert_int_equal(moat_buf_len(&b), 6);
	moat_buf_consume(&b, 6);               /* empty: memory goes back */
	assert_null(b.data);
	assert_int_equal(moat_buf_len(&b), 0);
	assert_int_equal(pool.nfree, 1);
	assert_int_equal(moat_buf_append(&b, "again", 5), 0);
	assert_memory_equal(moat_buf_head(&b), "again", 5);
	assert_int_equal(pool.nfree, 0);
	moat_buf_release(&b);
	moat_buf_pool_drain(&pool);
}

static void test_append_zero_allocates_nothing(void **state)
{
	struct moat_buf b;

	(void)state;
	moat_buf_init(&b, NULL, 16);
	assert_int_equal(moat_buf_append(&b, "", 0), 0);
	assert_null(b.data);
	moat_buf_consume(&b, 0);
	assert_null(b.data);
	moat_buf_release(&b);
	moat_buf_release(&b);                   /* twice: fine */
	assert_null(b.data);
}

static void test_max_enforced_small(void **state)
{
	struct moat_buf b;

	(void)state;
	moat_buf_init(&b, NULL, 10);
	assert_int_equal(moat_buf_append(&b, "12345678", 8), 0);
	assert_int_equal(moat_buf_append(&b, "abc", 3), -ENOBUFS);
	assert_int_equal(moat_buf_len(&b), 8);
	assert_memory_equal(moat_buf_head(&b), "12345678", 8);
	assert_int_equal(moat_buf_append(&b, "ab", 2), 0);
	assert_int_equal(moat_buf_len(&b), 10);
	assert_int_equal(moat_buf_append(&b, "x", 1), -ENOBUFS);
	assert_int_equal(moat_buf_reserve(&b, 1), 0);
	assert_memory_equal(moat_buf_head(&b), "12345678ab", 10);
	/* consuming makes room again, up to max */
	moat_buf_consume(&b, 4);
	assert_int_equal(moat_buf_append(&b, "wxyz", 4), 0);
	assert_int_equal(moat_buf_append(&b, "!", 1), -ENOBUFS);
	assert_memory_equal(moat_buf_head(&b), "5678abwxyz", 10);
	check_invariants(&b);
	moat_buf_release(&b);

	/* max 0: nothing at all */
	moat_buf_init(&b, NULL, 0);
	assert_int_equal(moat_buf_append(&b, "x", 1), -ENOBUFS);
	assert_int_equal(moat_buf_len(&b), 0);
	assert_int_equal(moat_buf_reserve(&b, 1), 0);
	moat_buf_release(&b);
}

/* A max that needs growth past the chunk: exact fill, then one more fails. */
static void test_max_enforced_across_growth(void **state)
{
	static const size_t maxes[] = { CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 4 * CHUNK };

	(void)state;
	for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
		struct moat_buf_pool pool = { NULL, 0, 1 };
		struct moat_buf b;
		size_t pos = 0, max = maxes[k];
		char big[CHUNK + 17];

		memset(big, 'z', sizeof(big));
		moat_buf_init(&b, &pool, max);
		append_pattern(&b, &pos, max - 3);
		assert_int_equal(moat_buf_append(&b, "abcd", 4), -ENOBUFS);
		check_pattern(&b, 0, max - 3);
		assert_int_equal(moat_buf_append(&b, big, sizeof(big)), -ENOBUFS);
		check_pattern(&b, 0, max - 3);
		append_pattern(&b, &pos, 3);
		check_pattern(&b, 0, max);
		assert_int_equal(moat_buf_append(&b, "a", 1), -ENOBUFS);
		assert_int_equal(moat_buf_reserve(&b, 1), 0);
		assert_true(b.cap >= max);
		check_pattern(&b, 0, max);
		check_invariants(&b);
		moat_buf_release(&b);
		moat_buf_pool_drain(&pool);
	}
}

/* An append longer than anything: refused, nothing appended, no overflow
 * in len + n. */
static void test_append_huge_length_refused(void **state)
{
	struct moat_buf b;

	(void)state;
	moat_buf_init(&b, NULL, 4 * CHUNK);
	assert_int_equal(moat_buf_append(&b, "hello", 5), 0);
	assert_int_equal(moat_buf_append(&b, "x", SIZE_MAX), -ENOBUFS);
	assert_int_equal(moat_buf_append(&b, "x", SIZE_MAX - 2), -ENOBUFS);
	assert_int_equal(moat_buf_append(&b, "x", SIZE_MAX - 4), -ENOBUFS);
	assert_int_equal(moat_buf_len(&b), 5);
	assert_memory_equal(moat_buf_head(&b), "hello", 5);
	assert_true(moat_buf_reserve(&b, SIZE_MAX - 4) <= 4 * CHUNK - 5);
	assert_memory_equal(moat_buf_head(&b), "hello", 5);
	moat_buf_release(&b);
}

/* reserve never reports more than max - len, and always at least `want`
 * when max allows it; the room it reports is really there. */
static void test_reserve_room_bounded_by_max(void **state)
{
	static const size_t maxes[] = { 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3 };
	static const size_t wants[] = { 0, 1, 7, 99, 100, 4096, CHUNK - 1, CHUNK, CHUNK + 1,
					2 * CHUNK, 6 * CHUNK, SIZE_MAX / 2 };

	(void)state;
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		for (size_t wi = 0; wi < sizeof(wants) / sizeof(wants[0]); wi++) {
			static const size_t fills[] = { 0, 1, 50, CHUNK / 2, CHUNK + 9 };

			for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
				for (int consumed = 0; consumed < 2; consumed++) {
					struct moat_buf b;
					size_t max = maxes[m], want = wants[wi], pos = 0, skip = 0;
					size_t fill = fills[f] < max ? fills[f] : max;
					size_t r, len;

					moat_buf_init(&b, NULL, max);
					append_pattern(&b, &pos, fill);
					if (consumed && fill > 1) {
						skip = fill / 2;
						moat_buf_consume(&b, skip);
					}
					len = moat_buf_len(&b);
					r = moat_buf_reserve(&b, want);
					if (r > max - len)
						fail_msg("max %zu len %zu want %zu: room %zu",
							 max, len, want, r);
					if (want <= max - len && r < want)
						fail_msg("max %zu len %zu want %zu: room only %zu",
							 max, len, want, r);
					if (want > 0 && len < max && r == 0)
						fail_msg("max %zu len %zu: no room at all", max, len);
					check_invariants(&b);
					check_pattern(&b, skip, fill);
					if (r) {
						assert_non_null(b.data);
						assert_true(b.cap - b.end >= r);
						memset(b.data + b.end, 0x5a, r);
						b.end += r;      /* as a reader filling it would */
						assert_true(moat_buf_len(&b) <= max);
					}
					moat_buf_release(&b);
				}
			}
		}
	}
}

static void test_pool_reuse(void **state)
{
	struct moat_buf_pool pool = { NULL, 0, 2 };
	struct moat_buf a, b, c;
	char *pa, *pb, *pc;

	(void)state;
	moat_buf_init(&a, &pool, 4 * CHUNK);
	moat_buf_init(&b, &pool, 4 * CHUNK);
	moat_buf_init(&c, &pool, 4 * CHUNK);
	assert_int_equal(moat_buf_append(&a, "a", 1), 0);
	assert_int_equal(moat_buf_append(&b, "b", 1), 0);
	assert_int_equal(moat_buf_append(&c, "c", 1), 0);
	pa = a.data;
	pb = b.data;
	pc = c.data;
	assert_int_equal(a.cap, CHUNK);
	assert_int_equal(pool.nfree, 0);

	moat_buf_release(&a);                 /* to the pool */
	assert_null(a.data);
	assert_int_equal(pool.nfree, 1);
	assert_ptr_equal(pool.free, pa);
	moat_buf_consume(&b, 1);              /* emptied: to the pool */
	assert_null(b.data);
	assert_int_equal(pool.nfree, 2);
	assert_ptr_equal(pool.free, pb);
	moat_buf_release(&c);                 /* max_free reached: freed */
	assert_int_equal(pool.nfree, 2);
	assert_ptr_not_equal(pool.free, pc);

	/* taken back last in, first out */
	assert_int_equal(moat_buf_append(&a, "x", 1), 0);
	assert_ptr_equal(a.data, pb);
	assert_int_equal(pool.nfree, 1);
	assert_true(moat_buf_reserve(&c, 10) >= 10);
	assert_ptr_equal(c.data, pa);
	assert_int_equal(pool.nfree, 0);
	assert_int_equal(moat_buf_append(&b, "y", 1), 0);   /* pool empty: malloc */
	assert_non_null(b.data);
	assert_int_equal(pool.nfree, 0);

	moat_buf_release(&a);
	moat_buf_release(&b);
	moat_buf_release(&c);
	assert_int_equal(pool.nfree, 2);
	moat_buf_pool_drain(&pool);
	assert_int_equal(pool.nfree, 0);
	assert_null(pool.free);
}

static void test_pool_max_free_zero_keeps_nothing(void **state)
{
	struct moat_buf_pool pool = { NULL, 0, 0 };
	struct moat_buf b;

	(void)state;
	moat_buf_init(&b, &pool, 100);
	assert_int_equal(moat_buf_append(&b, "abc", 3), 0);
	moat_buf_release(&b);
	assert_int_equal(pool.nfree, 0);
	assert_null(pool.free);
	moat_buf_pool_drain(&pool);
}

/* Growth moves the bytes to a malloc'd block and gives the chunk back;
 * the big block itself is not pooled. */
static void test_growth_keeps_contents(void **state)
{
	struct moat_buf_pool pool = { NULL, 0, 4 };
	struct moat_buf b;
	size_t pos = 0, from = 0;

	(void)state;
	moat_buf_init(&b, &pool, 64 * CHUNK);
	append_pattern(&b, &pos, CHUNK - 10);
	assert_int_equal(b.cap, CHUNK);
	append_pattern(&b, &pos, 20);          /* past the chunk */
	assert_true(b.cap > CHUNK);
	assert_int_equal(pool.nfree, 1);       /* the chunk went back */
	check_pattern(&b, from, pos);
	append_pattern(&b, &pos, 5 * CHUNK + 123);
	check_pattern(&b, from, pos);
	check_invariants(&b);

	/* consume the front, then grow again: compaction then growth */
	moat_buf_consume(&b, 3 * CHUNK + 7);
	from += 3 * CHUNK + 7;
	check_pattern(&b, from, pos);
	append_pattern(&b, &pos, 9 * CHUNK + 1);
	check_pattern(&b, from, pos);
	check_invariants(&b);

	moat_buf_release(&b);
	assert_int_equal(pool.nfree, 1);       /* the big block was freed */
	moat_buf_pool_drain(&pool);
}

/* Consumed front + append that fits once compacted: no growth needed. */
static void test_compaction_without_growth(void **state)
{
	struct moat_buf b;
	size_t pos = 0, from = 0;
	char *p;

	(void)state;
	moat_buf_init(&b, NULL, 16 * CHUNK);
	append_pattern(&b, &pos, CHUNK - 100);
	p = b.data;
	moat_buf_consume(&b, CHUNK - 200);
	from = CHUNK - 200;
	append_pattern(&b, &pos, 5000);         /* 100 + 5000 fits one chunk */
	check_pattern(&b, from, pos);
	assert_ptr_equal(b.data, p);
	assert_int_equal(b.cap, CHUNK);
	assert_int_equal(b.start, 0);
	moat_buf_release(&b);
}

/* The moat_buf_len + reserve + direct write pattern a reader uses. */
static void test_reserve_then_write(void **state)
{
	struct moat_buf b;
	size_t pos = 0;

	(void)state;
	moat_buf_init(&b, NULL, 3 * CHUNK);
	while (moat_buf_len(&b) < 3 * CHUNK) {
		size_t r = moat_buf_reserve(&b, 1000);

		assert_true(r >= 1 && r <= 3 * CHUNK - moat_buf_len(&b));
		if (r > 777)
			r = 777;
		for (size_t i = 0; i < r; i++)
			b.data[b.end + i] = pat(pos + i);
		b.end += r;
		pos += r;
	}
	check_pattern(&b, 0, 3 * CHUNK);
	assert_int_equal(moat_buf_reserve(&b, 1000), 0);
	moat_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_append_zero_allocates_nothing),
		cmocka_unit_test(test_max_enforced_small),
		cmocka_unit_test(test_max_enforced_across_growth),
		cmocka_unit_test(test_append_huge_length_refused),
		cmocka_unit_test(test_reserve_room_bounded_by_max),
		cmocka_unit_test(test_pool_reuse),
		cmocka_unit_test(test_pool_max_free_zero_keeps_nothing),
		cmocka_unit_test(test_growth_keeps_contents),
		cmocka_unit_test(test_compaction_without_growth),
		cmocka_unit_test(test_reserve_then_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
