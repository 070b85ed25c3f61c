/*
 * health_test.c - unit tests of the pure parts of src/upstream/health.c:
 * moat_health_judge (one probe's outcome) and moat_health_count (rise /
 * fall counting).
 *
 * Checked: status ranges (bounds inclusive, single status, status 0 = no
 * valid answer), the body substring (present anywhere, absent, cut short,
 * empty expectation, binary bodies); counting from up and from down, a
 * streak broken by one opposite result, flapping that never reaches the
 * threshold, thresholds of 1, a zero threshold acting as 1, and a long
 * random sequence against a reference model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/health.h"

static struct moat_conf_health hc_range(unsigned lo, unsigned hi, const char *body)
{
	struct moat_conf_health hc;

	memset(&hc, 0, sizeof(hc));
	hc.enabled = 1;
	hc.status_min = lo;
	hc.status_max = hi;
	hc.body = (char *)(uintptr_t)body;
	hc.rise = 2;
	hc.fall = 3;
	return hc;
}

static void judge_default_range(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, NULL);

	(void)state;
	assert_int_equal(moat_health_judge(&hc, 200, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 204, "", 0), 1);
	assert_int_equal(moat_health_judge(&hc, 301, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 399, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 199, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 400, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 404, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 500, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 503, "OK", 2), 0);
}

static void judge_single_status(void **state)
{
	struct moat_conf_health hc = hc_range(204, 204, NULL);

	(void)state;
	assert_int_equal(moat_health_judge(&hc, 204, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 200, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 205, NULL, 0), 0);
}

static void judge_other_ranges(void **state)
{
	struct moat_conf_health hc = hc_range(100, 599, NULL);
	struct moat_conf_health err = hc_range(500, 599, NULL);

	(void)state;
	/* A range that takes anything still needs an answer. */
	assert_int_equal(moat_health_judge(&hc, 100, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 599, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 600, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&err, 503, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&err, 200, NULL, 0), 0);
}

static void judge_status_zero(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, NULL);
	struct moat_conf_health all = hc_range(0, 999, NULL);
	struct moat_conf_health body = hc_range(200, 399, "ok");

	(void)state;
	/* 0: no valid response (refused, timed out, garbage). Never healthy,
	 * even for a range that starts at 0 and a body that matches. */
	assert_int_equal(moat_health_judge(&hc, 0, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&all, 0, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&body, 0, "ok", 2), 0);
	assert_int_equal(moat_health_judge(&all, -1, NULL, 0), 0);
}

static void judge_body_present(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, "\"status\":\"ok\"");
	const char *exact = "\"status\":\"ok\"";
	const char *inside = "{\"db\":1,\"status\":\"ok\",\"cache\":true}";
	const char *at_end = "{\"db\":1,\"status\":\"ok\"";

	(void)state;
	assert_int_equal(moat_health_judge(&hc, 200, exact, strlen(exact)), 1);
	assert_int_equal(moat_health_judge(&hc, 200, inside, strlen(inside)), 1);
	assert_int_equal(moat_health_judge(&hc, 200, at_end, strlen(at_end)), 1);
	/* Body right, status wrong. */
	assert_int_equal(moat_health_judge(&hc, 500, inside, strlen(inside)), 0);
}

static void judge_body_absent(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, "healthy");
	const char *other = "status: degraded";
	const char *cut = "I am health";
	const char *cased = "HEALTHY";

	(void)state;
	assert_int_equal(moat_health_judge(&hc, 200, other, strlen(other)), 0);
	assert_int_equal(moat_health_judge(&hc, 200, cut, strlen(cut)), 0);
	/* Case matters. */
	assert_int_equal(moat_health_judge(&hc, 200, cased, strlen(cased)), 0);
	/* No body at all, or an empty one. */
	assert_int_equal(moat_health_judge(&hc, 200, NULL, 0), 0);
	assert_int_equal(moat_health_judge(&hc, 200, "", 0), 0);
	/* Only `len` bytes count, not what lies beyond. */
	assert_int_equal(moat_health_judge(&hc, 200, "healthy", 6), 0);
	assert_int_equal(moat_health_judge(&hc, 200, "healthy", 7), 1);
}

static void judge_body_binary(void **state)
{
	struct moat_conf_health hc = hc_range(200, 200, "OK");
	static const char bin[] = { 'x', '\0', '\0', 'O', '\0', 'O', 'K', '\0', 'z' };
	static const char nul_only[] = { 'O', '\0', 'K' };

	(void)state;
	/* A NUL in the body does not end it. */
	assert_int_equal(moat_health_judge(&hc, 200, bin, sizeof(bin)), 1);
	assert_int_equal(moat_health_judge(&hc, 200, nul_only, sizeof(nul_only)), 0);
}

static void judge_body_empty_expectation(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, "");

	(void)state;
	/* body: "" asks for nothing. */
	assert_int_equal(moat_health_judge(&hc, 200, NULL, 0), 1);
	assert_int_equal(moat_health_judge(&hc, 200, "x", 1), 1);
}

static void judge_body_large(void **state)
{
	struct moat_conf_health hc = hc_range(200, 399, "needle");
	size_t len = 64 * 1024;
	char *b = malloc(len);

	(void)state;
	assert_non_null(b);
	memset(b, 'n', len);
	assert_int_equal(moat_health_judge(&hc, 200, b, len), 0);
	memcpy(b + len - 6, "needle", 6);
	assert_int_equal(moat_health_judge(&hc, 200, b, len), 1);
	assert_int_equal(moat_health_judge(&hc, 200, b, len - 1), 0);
	free(b);
}

/* Feeds a string of results ('+' success, '-' failure) and returns the
 * string of *up after each, plus how many times the state changed. */
static void feed(int *up, unsigned *streak, const char *results, unsigned rise, unsigned fall,
		 char *ups, unsigned *changes)
{
	size_t i;

	*changes = 0;
	for (i = 0; results[i]; i++) {
		int before = *up;
		int r = moat_health_count(up, streak, results[i] == '+', rise, fall);

		assert_int_equal(r, before != *up);
		*changes += (unsigned)r;
		ups[i] = *up ? 'U' : 'D';
	}
	ups[i] = '\0';
}

static void count_fall_from_up(void **state)
{
	int up = 1;
	unsigned streak = 0;

	(void)state;
	assert_int_equal(moat_health_count(&up, &streak, 0, 2, 3), 0);
	assert_int_equal(up, 1);
	assert_int_equal(streak, 1);
	assert_int_equal(moat_health_count(&up, &streak, 0, 2, 3), 0);
	assert_int_equal(up, 1);
	assert_int_equal(streak, 2);
	assert_int_equal(moat_health_count(&up, &streak, 0, 2, 3), 1);
	assert_int_equal(up, 0);
	assert_int_equal(streak, 0);
	/* Further failures keep it down and change nothing. */
	assert_int_equal(moat_health_count(&up, &streak, 0, 2, 3), 0);
	assert_int_equal(up, 0);
	assert_int_equal(streak, 0);
}

static void count_rise_from_down(void **state)
{
	int up = 0;
	unsigned streak = 0;

	(void)state;
	assert_int_equal(moat_health_count(&up, &streak, 1, 2, 3), 0);
	assert_int_equal(up, 0);
	assert_int_equal(streak, 1);
	assert_int_equal(moat_health_count(&up, &streak, 1, 2, 3), 1);
	assert_int_equal(up, 1);
	assert_int_equal(streak, 0);
	assert_int_equal(moat_health_count(&up, &streak, 1, 2, 3), 0);
	assert_int_equal(up, 1);
	assert_int_equal(streak, 0);
}

static void count_streak_broken(void **state)
{
	int up = 1;
	unsigned streak = 0, changes;
	char ups[64];

	(void)state;
	/* Two failures, a success: the run starts over. */
	feed(&up, &streak, "--+--+--", 2, 3, ups, &changes);
	assert_string_equal(ups, "UUUUUUUU");
	assert_int_equal(changes, 0);
	assert_int_equal(streak, 2);
	feed(&up, &streak, "-", 2, 3, ups, &changes);
	assert_string_equal(ups, "D");
	assert_int_equal(changes, 1);

	/* Down: one success, a failure, resets the rise run. */
	feed(&up, &streak, "+-+-+-++", 2, 3, ups, &changes);
	assert_string_equal(ups, "DDDDDDDU");
	assert_int_equal(changes, 1);
}

static void count_flapping(void **state)
{
	int up = 1;
	unsigned streak = 0, changes;
	char ups[128];

	(void)state;
	/* Alternating results never reach fall 3 (nor rise 2 once down). */
	feed(&up, &streak, "-+-+-+-+-+-+-+-+-+-+", 2, 3, ups, &changes);
	assert_int_equal(changes, 0);
	assert_int_equal(up, 1);
	feed(&up, &streak, "---", 2, 3, ups, &changes);
	assert_int_equal(changes, 1);
	assert_int_equal(up, 0);
	feed(&up, &streak, "+-+-+-+-+-+-+-+-", 2, 3, ups, &changes);
	assert_int_equal(changes, 0);
	assert_int_equal(up, 0);

	/* rise 1 / fall 1: every opposite result flips it. */
	up = 1;
	streak = 0;
	feed(&up, &streak, "-+-+--++", 1, 1, ups, &changes);
	assert_string_equal(ups, "DUDUDDUU");
	assert_int_equal(changes, 6);
	assert_int_equal(streak, 0);
}

static void count_full_cycle(void **state)
{
	int up = 1;
	unsigned streak = 0, changes;
	char ups[64];

	(void)state;
	/* fall 3, rise 2: down on the third failure, up on the second success. */
	feed(&up, &streak, "+++---++", 2, 3, ups, &changes);
	assert_string_equal(ups, "UUUUUDDU");
	assert_int_equal(changes, 2);
	/* rise 5, fall 1. */
	up = 1;
	streak = 0;
	feed(&up, &streak, "-++++-+++++", 5, 1, ups, &changes);
	assert_string_equal(ups, "DDDDDDDDDDU");
	assert_int_equal(changes, 2);
}

static void count_zero_threshold(void **state)
{
	int up = 1;
	unsigned streak = 0;

	(void)state;
	/* A threshold of 0 (never valid in a config) acts as 1, not as never. */
	assert_int_equal(moat_health_count(&up, &streak, 0, 0, 0), 1);
	assert_int_equal(up, 0);
	assert_int_equal(moat_health_count(&up, &streak, 1, 0, 0), 1);
	assert_int_equal(up, 1);
}

static void count_streak_over_threshold(void **state)
{
	int up = 1;
	unsigned streak = 7;

	(void)state;
	/* A streak carried from a config with larger thresholds flips at once. */
	assert_int_equal(moat_health_count(&up, &streak, 0, 2, 3), 1);
	assert_int_equal(up, 0);
	assert_int_equal(streak, 0);
}

static void count_random_against_model(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int up = 1, mup = 1;
	unsigned streak = 0;
	unsigned run = 0;

	(void)state;
	for (unsigned i = 0; i < 100000; i++) {
		unsigned rise = 1 + (unsigned)(i / 10000) % 4;
		unsigned fall = 1 + (unsigned)(i / 20000) % 5;
		int ok, changed, mchanged = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ok = (x & 3u) != 0 ? (i / 5000) % 2 == 0 : (i / 5000) % 2 != 0;
		changed = moat_health_count(&up, &streak, ok, rise, fall);
		/* Model: the length of the current run of results opposite to
		 * the state. */
		if (ok == mup) {
			run = 0;
		} else if (++run >= (mup ? fall : rise)) {
			mup = !mup;
			run = 0;
			mchanged = 1;
		}
		assert_int_equal(changed, mchanged);
		assert_int_equal(up, mup);
		assert_int_equal(streak, run);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(judge_default_range),
		cmocka_unit_test(judge_single_status),
		cmocka_unit_test(judge_other_ranges),
		cmocka_unit_test(judge_status_zero),
		cmocka_unit_test(judge_body_present),
		cmocka_unit_test(judge_body_absent),
		cmocka_unit_test(judge_body_binary),
		cmocka_unit_test(judge_body_empty_expectation),
		cmocka_unit_test(judge_body_large),
		cmocka_unit_test(count_fall_from_up),
		cmocka_unit_test(count_rise_from_down),
		cmocka_unit_test(count_streak_broken),
		cmocka_unit_test(count_flapping),
		cmocka_unit_test(count_full_cycle),
		cmocka_unit_test(count_zero_threshold),
		cmocka_unit_test(count_streak_over_threshold),
		cmocka_unit_test(count_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
