/*
 * chunked_test.c - unit tests of src/http/chunked.c.
 *
 * Most inputs go through decode_all(): it plays the caller (keeps the bytes
 * a call did not consume and shows them again with more), feeding the input
 * whole, then one byte at a time, then split at every position, and checks
 * that every way yields the same data, trailers, result and end offset.
 * Each call sees an exactly sized heap copy so ASan catches over-reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/chunked.h"

struct outcome {
	int result;        /* DONE, NEED (input exhausted) or an error */
	size_t end;        /* DONE: offset just past the final CRLF */
	char data[4096];
	size_t data_len;
	char trailers[1024]; /* trailer lines, each followed by '\n' */
	size_t trailers_len;
	size_t calls;
};

/*
 * Feeds in[0..n) to a fresh decoder: first `first` bytes are available,
 * then `step` more at a time (step 0: all the rest at once).
 */
static void run(const char *in, size_t n, size_t first, size_t step, size_t max_line,
		size_t max_trailer, struct outcome *o)
{
	struct moat_chunked d;
	size_t base = 0, avail = first < n ? first : n;

	moat_chunked_init(&d);
	if (max_line)
		d.max_line = max_line;
	if (max_trailer)
		d.max_trailer = max_trailer;
	memset(o, 0, sizeof(*o));

	for (;;) {
		size_t consumed, off, len, have = avail - base;
		char *copy = malloc(have ? have : 1);
		int r;

		assert_non_null(copy);
		memcpy(copy, in + base, have);
		r = moat_chunked_decode(&d, copy, have, &consumed, &off, &len);
		free(copy);
		o->calls++;
		assert_true(consumed <= have);
		if (r == MOAT_CHUNKED_DATA || r == MOAT_CHUNKED_TRAILER) {
			assert_true(len > 0 || r == MOAT_CHUNKED_TRAILER);
			assert_true(off + len <= consumed);
		}
		if (r == MOAT_CHUNKED_DATA) {
			assert_true(o->data_len + len <= sizeof(o->data));
			memcpy(o->data + o->data_len, in + base + off, len);
			o->data_len += len;
		} else if (r == MOAT_CHUNKED_TRAILER) {
			assert_true(o->trailers_len + len + 1 <= sizeof(o->trailers));
			memcpy(o->trailers + o->trailers_len, in + base + off, len);
			o->trailers_len += len;
			o->trailers[o->trailers_len++] = '\n';
		}
		base += consumed;
		if (r == MOAT_CHUNKED_DONE) {
			o->result = r;
			o->end = base;
			return;
		}
		if (r < 0) {
			o->result = r;
			return;
		}
		if (r == MOAT_CHUNKED_NEED) {
			if (avail == n) {
				o->result = r;
				return;
			}
			avail = step == 0 || n - avail < step ? n : avail + step;
		}
		assert_true(o->calls < 100000);
	}
}

static void same(const struct outcome *a, const struct outcome *b, const char *how, size_t k)
{
	if (a->result != b->result || a->end != b->end || a->data_len != b->data_len ||
	    memcmp(a->data, b->data, a->data_len) != 0 || a->trailers_len != b->trailers_len ||
	    memcmp(a->trailers, b->trailers, a->trailers_len) != 0)
		fail_msg("%s %zu: result %d/%d end %zu/%zu data %zu/%zu", how, k, a->result,
			 b->result, a->end, b->end, a->data_len, b->data_len);
}

static struct outcome W; /* the whole-input outcome of the last decode_all */

static int decode_lim(const char *in, size_t n, size_t max_line, size_t max_trailer)
{
	struct outcome o;
	size_t k;

	run(in, n, n, 0, max_line, max_trailer, &W);
	run(in, n, 1, 1, max_line, max_trailer, &o);
	same(&W, &o, "bytewise", 0);
	for (k = 0; k < n; k++) {
		run(in, n, k, 0, max_line, max_trailer, &o);
		same(&W, &o, "split at", k);
	}
	return W.result;
}

#define DEC(lit) decode_lim(lit, sizeof(lit) - 1, 0, 0)
#define LEN(lit) (sizeof(lit) - 1)

static void assert_data(const char *want)
{
	assert_int_equal(W.data_len, strlen(want));
	assert_memory_equal(W.data, want, W.data_len);
}

static void assert_trailers(const char *want)
{
	assert_int_equal(W.trailers_len, strlen(want));
	assert_memory_equal(W.trailers, want, W.trailers_len);
}

static void test_basic(void **state)
{
	static const char b[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

	(void)state;
	assert_int_equal(DEC(b), MOAT_CHUNKED_DONE);
	assert_data("hello world");
	assert_int_equal(W.end, LEN(b));
	assert_int_equal(W.trailers_len, 0);
}

static void test_events_one_call_each(void **state)
{
	static const char b[] = "3\r\nabc\r\n0\r\nX: 1\r\n\r\nNEXT";
	struct moat_chunked d;
	size_t c, off, len;

	(void)state;
	moat_chunked_init(&d);
	assert_int_equal(moat_chunked_decode(&d, b, LEN(b), &c, &off, &len), MOAT_CHUNKED_DATA);
	assert_int_equal(off, 3);
	assert_int_equal(len, 3);
	assert_int_equal(c, 6);
	assert_int_equal(moat_chunked_decode(&d, b + 6, LEN(b) - 6, &c, &off, &len), MOAT_CHUNKED_TRAILER);
	assert_memory_equal(b + 6 + off, "X: 1", 4);
	assert_int_equal(len, 4);
	assert_int_equal(c, LEN("\r\n0\r\nX: 1\r\n"));
	assert_int_equal(moat_chunked_decode(&d, b + 17, LEN(b) - 17, &c, &off, &len), MOAT_CHUNKED_DONE);
	assert_int_equal(c, 2);
	/* after DONE nothing more is consumed */
	assert_int_equal(moat_chunked_decode(&d, b + 19, LEN(b) - 19, &c, &off, &len), MOAT_CHUNKED_DONE);
	assert_int_equal(c, 0);
}

static void test_pipelined(void **state)
{
	static const char b[] = "4\r\nbody\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";

	(void)state;
	assert_int_equal(DEC(b), MOAT_CHUNKED_DONE);
	assert_data("body");
	assert_int_equal(W.end, LEN("4\r\nbody\r\n0\r\n\r\n"));
}

static void test_hex(void **state)
{
	static const char lower[] = "a\r\n0123456789\r\n0\r\n\r\n";
	static const char upper[] = "A\r\n0123456789\r\n0\r\n\r\n";
	static const char zeros[] = "000000000000000A\r\n0123456789\r\n0000\r\n\r\n";
	static const char big[] = "1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n";

	(void)state;
	assert_int_equal(DEC(lower), MOAT_CHUNKED_DONE);
	assert_data("0123456789");
	assert_int_equal(DEC(upper), MOAT_CHUNKED_DONE);
	assert_data("0123456789");
	assert_int_equal(DEC(zeros), MOAT_CHUNKED_DONE);
	assert_data("0123456789");
	assert_int_equal(DEC(big), MOAT_CHUNKED_DONE);
	assert_int_equal(W.data_len, 31);
}

static void test_size_limits(void **state)
{
	(void)state;
	/* 17 digits, even if the value is small */
	assert_int_equal(DEC("0000000000000000A\r\n0123456789\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	/* 2^62 is accepted (then more data is awaited), 2^62 + 1 is not */
	assert_int_equal(DEC("4000000000000000\r\nabc"), MOAT_CHUNKED_NEED);
	assert_data("abc");
	assert_int_equal(DEC("4000000000000001\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("FFFFFFFFFFFFFFFF\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("10000000000000000\r\n"), MOAT_CHUNKED_EBAD);
}

static void test_bad_size(void **state)
{
	(void)state;
	assert_int_equal(DEC("-5\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("+5\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0x5\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC(" 5\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5 \r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\t\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5 5\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("g\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\rhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\r\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\0\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\n\r\n"), MOAT_CHUNKED_EBAD);
}

static void test_extensions(void **state)
{
	static const char ok[] = "5;a\r\nhello\r\n"
				 "5 ; b=c\r\nhello\r\n"
				 "5\t;d = \"q \\\"x\\\\ ;\\a\"\t;e=f;g\r\n"
				 "hello\r\n"
				 "0;last=\"\xc3\xa9\"\r\n\r\n";

	(void)state;
	assert_int_equal(DEC(ok), MOAT_CHUNKED_DONE);
	assert_data("hellohellohello");
	assert_int_equal(DEC("5;\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;;a\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;=v\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a==b\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=b=c\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a b\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a \r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=b \r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\"b\" \r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\"unterminated\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\"ctl\x01\"\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=\"bs\\\x01\"\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a(b\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a=b(\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5;a\rhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5 x\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
}

static void test_data_crlf(void **state)
{
	(void)state;
	assert_int_equal(DEC("5\r\nhelloX\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_data("hello");
	assert_int_equal(DEC("5\r\nhello\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\r\nhello\r0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("5\r\nhello0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	/* a short chunk: the size line of the next is read as data, then
	 * the missing CRLF shows */
	assert_int_equal(DEC("6\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	/* a long chunk */
	assert_int_equal(DEC("4\r\nhello\r\n0\r\n\r\n"), MOAT_CHUNKED_EBAD);
}

static void test_trailers(void **state)
{
	static const char b[] = "3\r\nabc\r\n0\r\nChecksum: abc\r\nX-Empty:\r\nX-Obs: \xe9\t!\r\n\r\nrest";

	(void)state;
	assert_int_equal(DEC(b), MOAT_CHUNKED_DONE);
	assert_data("abc");
	assert_trailers("Checksum: abc\nX-Empty:\nX-Obs: \xe9\t!\n");
	assert_int_equal(W.end, LEN(b) - 4);
}

static void test_bad_trailers(void **state)
{
	(void)state;
	assert_int_equal(DEC("0\r\nA: b\r\n c\r\n\r\n"), MOAT_CHUNKED_EBAD);   /* obs-fold */
	assert_trailers("A: b\n");
	assert_int_equal(DEC("0\r\n\tA: b\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA : b\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\n: b\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nNoColon\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA: b\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA: b\rc\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA: b\0\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA: b\x7f\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\nA\x80: b\r\n\r\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\n\n"), MOAT_CHUNKED_EBAD);
	assert_int_equal(DEC("0\r\n\rX"), MOAT_CHUNKED_EBAD);
}

/* An incomplete trailer line is handed back whole, later. */
static void test_trailer_partial(void **state)
{
	static const char b[] = "0\r\nAb: cd\r\n\r\n";
	struct moat_chunked d;
	size_t c, off, len;

	(void)state;
	moat_chunked_init(&d);
	assert_int_equal(moat_chunked_decode(&d, b, 7, &c, &off, &len), MOAT_CHUNKED_NEED);
	assert_int_equal(c, 3); /* the start of the line */
	assert_int_equal(moat_chunked_decode(&d, b + 3, 7, &c, &off, &len), MOAT_CHUNKED_NEED);
	assert_int_equal(c, 0);
	assert_int_equal(moat_chunked_decode(&d, b + 3, LEN(b) - 3, &c, &off, &len), MOAT_CHUNKED_TRAILER);
	assert_int_equal(off, 0);
	assert_int_equal(len, 6);
	assert_int_equal(c, 8);
	assert_int_equal(moat_chunked_decode(&d, b + 11, 1, &c, &off, &len), MOAT_CHUNKED_NEED);
	assert_int_equal(c, 1);
	assert_int_equal(moat_chunked_decode(&d, b + 12, 1, &c, &off, &len), MOAT_CHUNKED_DONE);
	assert_int_equal(c, 1);
}

static void test_incomplete(void **state)
{
	(void)state;
	assert_int_equal(DEC(""), MOAT_CHUNKED_NEED);
	assert_int_equal(DEC("5"), MOAT_CHUNKED_NEED);
	assert_int_equal(DEC("5;a=\"x"), MOAT_CHUNKED_NEED);
	assert_int_equal(DEC("5\r\nhel"), MOAT_CHUNKED_NEED);
	assert_data("hel");
	assert_int_equal(DEC("5\r\nhello\r"), MOAT_CHUNKED_NEED);
	assert_int_equal(DEC("0\r\n"), MOAT_CHUNKED_NEED);
	assert_int_equal(DEC("0\r\n\r"), MOAT_CHUNKED_NEED);
}

static void test_line_limit(void **state)
{
	static const char b[] = "5;abcdef\r\nhello\r\n0\r\n\r\n"; /* size line of 8 bytes */

	(void)state;
	assert_int_equal(decode_lim(b, LEN(b), 8, 0), MOAT_CHUNKED_DONE);
	assert_int_equal(decode_lim(b, LEN(b), 7, 0), MOAT_CHUNKED_ETOOBIG);
	/* detected before the line ends */
	assert_int_equal(decode_lim(b, 7, 6, 0), MOAT_CHUNKED_ETOOBIG);
	/* many leading zeros count too */
	assert_int_equal(decode_lim("00000001\r\n", 10, 7, 0), MOAT_CHUNKED_ETOOBIG);
}

static void test_trailer_limit(void **state)
{
	static const char b[] = "0\r\nA: 1\r\nB: 22\r\n\r\n"; /* 6 + 7 = 13 trailer bytes */
	static const char partial[] = "0\r\nA: 1\r\nB: 2222222222222";

	(void)state;
	assert_int_equal(decode_lim(b, LEN(b), 0, 13), MOAT_CHUNKED_DONE);
	assert_trailers("A: 1\nB: 22\n");
	assert_int_equal(decode_lim(b, LEN(b), 0, 12), MOAT_CHUNKED_ETOOBIG);
	assert_trailers("A: 1\n");
	assert_int_equal(decode_lim(partial, LEN(partial), 0, 12), MOAT_CHUNKED_ETOOBIG);
	assert_int_equal(decode_lim(partial, 11, 0, 12), MOAT_CHUNKED_NEED);
}

static void test_zeroed_struct(void **state)
{
	static const char b[] = "2\r\nhi\r\n0\r\n\r\n";
	struct moat_chunked d;
	size_t c, off, len, pos = 0;
	int r;

	(void)state;
	memset(&d, 0, sizeof(d));
	while ((r = moat_chunked_decode(&d, b + pos, LEN(b) - pos, &c, &off, &len)) == MOAT_CHUNKED_DATA)
		pos += c;
	assert_int_equal(r, MOAT_CHUNKED_DONE);
	assert_int_equal(pos + c, LEN(b));
}

static void test_error_is_sticky(void **state)
{
	struct moat_chunked d;
	size_t c, off, len;

	(void)state;
	moat_chunked_init(&d);
	assert_int_equal(moat_chunked_decode(&d, "x", 1, &c, &off, &len), MOAT_CHUNKED_EBAD);
	assert_int_equal(moat_chunked_decode(&d, "5\r\n", 3, &c, &off, &len), MOAT_CHUNKED_EBAD);
	assert_int_equal(c, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_events_one_call_each),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_bad_size),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_data_crlf),
		cmocka_unit_test(test_trailers),
		cmocka_unit_test(test_bad_trailers),
		cmocka_unit_test(test_trailer_partial),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_trailer_limit),
		cmocka_unit_test(test_zeroed_struct),
		cmocka_unit_test(test_error_is_sticky),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
