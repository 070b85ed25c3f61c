/*
 * timer_test.c - unit tests of src/core/timer.c, the hashed timer wheel.
 *
 * What the wheel promises, checked from the outside: a timer fires at or
 * after its deadline, never early, and at most one tick
 * (MOAT_TIMER_TICK_MS) after it when moat_timer_run is called every
 * millisecond; moving a deadline (lazily or not) makes it fire at the new
 * time; callbacks may set or stop any timer, the firing one included;
 * deadlines past the wheel's span fire on time too; moat_timer_next never
 * sleeps past the next due timer. The last test drives 10,000 timers with
 * random operations against a reference model (a sorted list).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/timer.h"

#define TICK ((uint64_t)MOAT_TIMER_TICK_MS)
#define SPAN ((uint64_t)MOAT_TIMER_SLOTS * TICK)

/* A timer under test: the wheel's timer first, so the callback can cast. */
struct tt {
	struct moat_timer t;
	unsigned id;
	unsigned fired;        /* how many times the callback ran */
	uint64_t fired_at;     /* g_now when it last ran */
	uint64_t want;         /* the deadline it was last set to */
	void (*action)(struct tt *self);
};

static uint64_t g_now;                 /* the now_ms of the run in progress */
static struct moat_timer_wheel *g_w;   /* the wheel the callbacks act on */

static void on_fire(struct moat_timer *t)
{
	struct tt *x = (struct tt *)t;

	x->fired++;
	x->fired_at = g_now;
	if (x->action)
		x->action(x);
}

static void tt_init(struct tt *x, unsigned id)
{
	memset(x, 0, sizeof(*x));
	x->id = id;
	x->t.cb = on_fire;
}

static void tt_set(struct moat_timer_wheel *w, struct tt *x, uint64_t deadline)
{
	x->want = deadline;
	moat_timer_set(w, &x->t, deadline);
}

/* Runs the wheel at every millisecond of (from, to]; returns the count fired. */
static size_t run_each_ms(struct moat_timer_wheel *w, uint64_t from, uint64_t to)
{
	size_t fired = 0;

	for (uint64_t now = from + 1; now <= to; now++) {
		g_now = now;
		fired += moat_timer_run(w, now);
	}
	return fired;
}

static uint64_t round_up_tick(uint64_t ms)
{
	return (ms + TICK - 1) / TICK * TICK;
}

/* ---- firing time ------------------------------------------------------ */

static void test_fires_within_one_tick_never_early(void **state)
{
	static const uint64_t starts[] = { 0, 1, 5, 7, 8, 1003, 123456789 };

	(void)state;
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		for (uint64_t delay = 1; delay <= 3 * TICK + 1; delay++) {
			struct moat_timer_wheel w;
			struct tt x;
			uint64_t t0 = starts[s], d = t0 + delay;

			moat_timer_wheel_init(&w, t0);
			g_w = &w;
			tt_init(&x, 0);
			tt_set(&w, &x, d);
			assert_int_equal(w.count, 1);
			assert_int_equal(run_each_ms(&w, t0, d - 1), 0);
			assert_int_equal(x.fired, 0);
			run_each_ms(&w, d - 1, d + TICK);
			assert_int_equal(x.fired, 1);
			if (x.fired_at < d || x.fired_at >= d + TICK)
				fail_msg("start %llu deadline %llu fired at %llu",
					 (unsigned long long)t0, (unsigned long long)d,
					 (unsigned long long)x.fired_at);
			assert_int_equal(x.t.deadline, 0);   /* disarmed once fired */
			assert_null(x.t.pprev);
			assert_int_equal(w.count, 0);
			assert_int_equal(moat_timer_next(&w, x.fired_at), -1);
		}
	}
}

/* A deadline on a tick boundary fires exactly then. */
static void test_fires_exactly_on_tick_boundary(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_set(&w, &x, 10 * TICK);
	g_now = 10 * TICK - 1;
	assert_int_equal(moat_timer_run(&w, g_now), 0);
	g_now = 10 * TICK;
	assert_int_equal(moat_timer_run(&w, g_now), 1);
	assert_int_equal(x.fired_at, 10 * TICK);
}

/* One run that jumps far ahead fires everything due, once each. */
static void test_run_jumping_ahead_fires_all_due(void **state)
{
	struct moat_timer_wheel w;
	struct tt x[50];

	(void)state;
	moat_timer_wheel_init(&w, 100);
	for (unsigned i = 0; i < 50; i++) {
		tt_init(&x[i], i);
		tt_set(&w, &x[i], 101 + i * 37);
	}
	/* x[0..25] due by 1026, x[26] at 1063; a run at the next tick
	 * boundary fires the 26 (not earlier: a deadline fires up to a tick
	 * late, see test_fires_within_one_tick_never_early) */
	g_now = round_up_tick(101 + 25 * 37);
	assert_int_equal(moat_timer_run(&w, g_now), 26);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(x[i].fired, i <= 25 ? 1 : 0);
	g_now = 1000000;
	assert_int_equal(moat_timer_run(&w, g_now), 24);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(x[i].fired, 1);
	assert_int_equal(w.count, 0);
}

/* A deadline that has already passed when set fires within a tick of now. */
static void test_past_deadline_fires_at_next_tick(void **state)
{
	struct moat_timer_wheel w;
	struct tt x, y;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	g_now = 1000;
	moat_timer_run(&w, g_now);
	tt_init(&x, 0);
	tt_init(&y, 1);
	tt_set(&w, &x, 1000);               /* now */
	tt_set(&w, &y, 500);                /* in the past */
	run_each_ms(&w, 1000, 1000 + TICK);
	assert_int_equal(x.fired, 1);
	assert_int_equal(y.fired, 1);
	assert_true(x.fired_at >= 1000 && x.fired_at <= 1000 + TICK);
	assert_true(y.fired_at >= 1000 && y.fired_at <= 1000 + TICK);
}

/* ---- re-arming -------------------------------------------------------- */

static void test_rearm_later_fires_at_new_time(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_set(&w, &x, 100);
	run_each_ms(&w, 0, 50);
	tt_set(&w, &x, 300);                /* lazy: stays in its slot */
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 50, 299), 0);
	assert_int_equal(x.fired, 0);
	run_each_ms(&w, 299, 300 + TICK);
	assert_int_equal(x.fired, 1);
	assert_true(x.fired_at >= 300 && x.fired_at < 300 + TICK);
}

static void test_rearm_earlier_fires_at_earlier_time(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_set(&w, &x, 3000);
	run_each_ms(&w, 0, 50);
	tt_set(&w, &x, 101);
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 50, 100), 0);
	run_each_ms(&w, 100, 101 + TICK);
	assert_int_equal(x.fired, 1);
	assert_true(x.fired_at >= 101 && x.fired_at < 101 + TICK);
	assert_int_equal(run_each_ms(&w, 101 + TICK, 4000), 0);
	assert_int_equal(x.fired, 1);
}

/* Earlier within the same tick, then later again, many times. */
static void test_rearm_back_and_forth(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_set(&w, &x, 8000);
	tt_set(&w, &x, 81);
	tt_set(&w, &x, 17);
	tt_set(&w, &x, 20000);
	tt_set(&w, &x, 18);
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 0, 17), 0);
	run_each_ms(&w, 17, 18 + TICK);
	assert_int_equal(x.fired, 1);
	assert_true(x.fired_at >= 18 && x.fired_at < 18 + TICK);
	assert_int_equal(run_each_ms(&w, 18 + TICK, 30000), 0);
}

/* A connection moving its idle deadline on every read never fires until
 * the reads stop. */
static void test_rearm_on_every_step_like_io(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;
	uint64_t now;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	for (now = 1; now <= 20000; now++) {
		tt_set(&w, &x, now + 1000);
		g_now = now;
		moat_timer_run(&w, now);
		assert_int_equal(x.fired, 0);
	}
	assert_int_equal(w.count, 1);
	run_each_ms(&w, 20000, 21000 + TICK);
	assert_int_equal(x.fired, 1);
	assert_true(x.fired_at >= 21000 && x.fired_at < 21000 + TICK);
}

/* ---- stop ------------------------------------------------------------- */

static void test_stop(void **state)
{
	struct moat_timer_wheel w;
	struct tt x, y, never;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_init(&y, 1);
	tt_init(&never, 2);
	moat_timer_stop(&w, &never.t);      /* never armed: a no-op */
	tt_set(&w, &x, 40);
	tt_set(&w, &y, 40);                 /* same slot */
	assert_int_equal(w.count, 2);
	moat_timer_stop(&w, &x.t);
	assert_int_equal(w.count, 1);
	assert_int_equal(x.t.deadline, 0);
	assert_null(x.t.pprev);
	moat_timer_stop(&w, &x.t);          /* twice: still fine */
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 0, 100), 1);
	assert_int_equal(x.fired, 0);
	assert_int_equal(y.fired, 1);
	moat_timer_stop(&w, &y.t);          /* after it fired */
	assert_int_equal(w.count, 0);
	assert_int_equal(moat_timer_next(&w, 100), -1);

	/* stopped, then armed again */
	tt_set(&w, &x, 200);
	moat_timer_stop(&w, &x.t);
	tt_set(&w, &x, 250);
	run_each_ms(&w, 100, 250 + TICK);
	assert_int_equal(x.fired, 1);
	assert_true(x.fired_at >= 250 && x.fired_at < 250 + TICK);
}

/* Stopping a timer that is far away (parked in the farthest slot). */
static void test_stop_far_timer(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	tt_init(&x, 0);
	tt_set(&w, &x, 5 * SPAN);
	run_each_ms(&w, 0, SPAN + 10);      /* re-linked once on the way */
	moat_timer_stop(&w, &x.t);
	assert_int_equal(w.count, 0);
	assert_int_equal(run_each_ms(&w, SPAN + 10, 6 * SPAN), 0);
}

/* ---- callbacks -------------------------------------------------------- */

static unsigned periodic_left;

static void rearm_self(struct tt *self)
{
	if (periodic_left) {
		periodic_left--;
		tt_set(g_w, self, self->want + 50);
	}
}

static void test_callback_rearms_itself(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;
	uint64_t last = 0;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	g_w = &w;
	tt_init(&x, 0);
	x.action = rearm_self;
	periodic_left = 5;
	tt_set(&w, &x, 50);
	for (uint64_t now = 1; now <= 400; now++) {
		unsigned before = x.fired;

		g_now = now;
		moat_timer_run(&w, now);
		if (x.fired != before) {
			uint64_t due = 50 * x.fired;

			assert_int_equal(x.fired, before + 1);
			assert_true(now >= due && now < due + TICK);
			assert_true(now > last);
			last = now;
		}
	}
	assert_int_equal(x.fired, 6);
	assert_int_equal(w.count, 0);
}

/* Re-arming itself at "now" inside the callback fires again on a later
 * run, not in an endless loop within this one. */
static unsigned rearm_now_left;

static void rearm_self_now(struct tt *self)
{
	if (rearm_now_left) {
		rearm_now_left--;
		tt_set(g_w, self, g_now);
	}
}

static void test_callback_rearms_itself_at_now(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	g_w = &w;
	tt_init(&x, 0);
	x.action = rearm_self_now;
	rearm_now_left = 1000;
	tt_set(&w, &x, 16);
	g_now = 16;
	assert_int_equal(moat_timer_run(&w, 16), 1);
	g_now = 16 + TICK;
	assert_int_equal(moat_timer_run(&w, g_now), 1);
	assert_int_equal(x.fired, 2);
	assert_int_equal(w.count, 1);
}

/* Two timers due in the same slot, each stopping the other: exactly one
 * fires; a third one in that slot is not disturbed. */
static struct tt *peer_of[4];

static void stop_peer(struct tt *self)
{
	moat_timer_stop(g_w, &peer_of[self->id]->t);
}

static void test_callback_stops_other_due_in_same_slot(void **state)
{
	/* a is due at 44 and c at 45: 41..48 share their slot, 40 is the
	 * slot before and 49 the slot after */
	static const uint64_t deadline[] = { 41, 44, 47, 48, 40, 49 };

	(void)state;
	for (size_t k = 0; k < sizeof(deadline) / sizeof(deadline[0]); k++) {
		struct moat_timer_wheel w;
		struct tt a, b, c;

		moat_timer_wheel_init(&w, 0);
		g_w = &w;
		tt_init(&a, 0);
		tt_init(&b, 1);
		tt_init(&c, 2);
		a.action = stop_peer;
		b.action = stop_peer;
		peer_of[0] = &b;
		peer_of[1] = &a;
		tt_set(&w, &a, 44);
		tt_set(&w, &c, 45);
		tt_set(&w, &b, deadline[k]);
		assert_int_equal(w.count, 3);
		g_now = 100;
		assert_int_equal(moat_timer_run(&w, 100), 2);
		assert_int_equal(a.fired + b.fired, 1);
		assert_int_equal(c.fired, 1);
		assert_int_equal(w.count, 0);
		assert_null(a.t.pprev);
		assert_null(b.t.pprev);
		assert_int_equal(a.t.deadline, 0);
		assert_int_equal(b.t.deadline, 0);
		assert_int_equal(moat_timer_next(&w, 100), -1);
		assert_int_equal(moat_timer_run(&w, 100000), 0);
	}
}

/* A callback pushes back another timer that is due in the same slot: that
 * one does not fire now, but at its new deadline. */
static struct tt *pushed;

static void push_back_peer(struct tt *self)
{
	(void)self;
	if (!pushed->fired)
		tt_set(g_w, pushed, g_now + 500);
}

static void test_callback_rearms_other_due_in_same_slot(void **state)
{
	struct moat_timer_wheel w;
	struct tt a, b;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	g_w = &w;
	tt_init(&a, 0);
	tt_init(&b, 1);
	a.action = push_back_peer;
	b.action = push_back_peer;
	pushed = &b;
	/* whichever of the two the slot list yields first */
	tt_set(&w, &b, 42);
	tt_set(&w, &a, 43);
	run_each_ms(&w, 0, 48);
	assert_int_equal(a.fired, 1);
	if (b.fired) {
		/* b came first: a's callback saw it fired, nothing moved */
		assert_int_equal(w.count, 0);
		return;
	}
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 48, 547), 0);
	run_each_ms(&w, 547, 548 + TICK);
	assert_int_equal(b.fired, 1);
	assert_true(b.fired_at >= 548 && b.fired_at < 548 + TICK);
}

/* A callback that stops itself (already disarmed) and arms a far timer
 * that lands in the slot being visited (tick + SLOTS). */
static struct tt *far_one;

static void arm_far(struct tt *self)
{
	moat_timer_stop(g_w, &self->t);
	tt_set(g_w, far_one, g_now + SPAN);
}

static void test_callback_arms_far_timer_into_visited_slot(void **state)
{
	struct moat_timer_wheel w;
	struct tt a, b, f;

	(void)state;
	moat_timer_wheel_init(&w, 0);
	g_w = &w;
	tt_init(&a, 0);
	tt_init(&b, 1);
	tt_init(&f, 2);
	a.action = arm_far;
	far_one = &f;
	tt_set(&w, &a, 80);
	tt_set(&w, &b, 80);
	run_each_ms(&w, 0, 80);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(w.count, 1);
	assert_int_equal(run_each_ms(&w, 80, 80 + SPAN - 1), 0);
	run_each_ms(&w, 80 + SPAN - 1, 80 + SPAN + TICK);
	assert_int_equal(f.fired, 1);
	assert_true(f.fired_at >= 80 + SPAN && f.fired_at < 80 + SPAN + TICK);
}

/* ---- beyond the wheel's span ------------------------------------------ */

static void test_far_deadlines(void **state)
{
	static const uint64_t delays[] = {
		SPAN - TICK - 1, SPAN - TICK, SPAN - 1, SPAN, SPAN + 1, SPAN + TICK,
		2 * SPAN - 3, 2 * SPAN, 3 * SPAN + 5, 10 * SPAN + 77,
	};
	enum { N = sizeof(delays) / sizeof(delays[0]) };
	struct moat_timer_wheel w;
	struct tt x[N];
	uint64_t t0 = 12345;

	(void)state;
	moat_timer_wheel_init(&w, t0);
	g_w = &w;
	for (unsigned i = 0; i < N; i++) {
		tt_init(&x[i], i);
		tt_set(&w, &x[i], t0 + delays[i]);
	}
	run_each_ms(&w, t0, t0 + 11 * SPAN);
	for (unsigned i = 0; i < N; i++) {
		uint64_t d = t0 + delays[i];

		assert_int_equal(x[i].fired, 1);
		if (x[i].fired_at < d || x[i].fired_at >= d + TICK)
			fail_msg("delay %llu: fired at +%llu",
				 (unsigned long long)delays[i],
				 (unsigned long long)(x[i].fired_at - t0));
	}
	assert_int_equal(w.count, 0);
}

/* Far deadlines with an event loop that sleeps what moat_timer_next says. */
static void test_far_deadline_with_loop_sleeping_next(void **state)
{
	struct moat_timer_wheel w;
	struct tt x;
	uint64_t now = 777, d = now + 7 * SPAN + 3;
	unsigned wakeups = 0;

	(void)state;
	moat_timer_wheel_init(&w, now);
	g_w = &w;
	tt_init(&x, 0);
	tt_set(&w, &x, d);
	while (!x.fired) {
		int n = moat_timer_next(&w, now);

		assert_true(n >= 0);
		assert_true(n <= (int)SPAN);
		assert_true(now + (uint64_t)n <= round_up_tick(d));
		now += (uint64_t)n;
		g_now = now;
		moat_timer_run(&w, now);
		assert_true(++wakeups < 100);
	}
	assert_true(x.fired_at >= d && x.fired_at < d + TICK);
	assert_int_equal(moat_timer_next(&w, now), -1);
}

/* ---- moat_timer_next -------------------------------------------------- */

static void test_next_bound(void **state)
{
	struct moat_timer_wheel w;
	struct tt a, b, c;
	int n;

	(void)state;
	moat_timer_wheel_init(&w, 1000);
	g_w = &w;
	assert_int_equal(moat_timer_next(&w, 1000), -1);
	tt_init(&a, 0);
	tt_init(&b, 1);
	tt_init(&c, 2);

	tt_set(&w, &a, 1100);
	n = moat_timer_next(&w, 1000);
	assert_true(n >= 0 && 1000 + (uint64_t)n <= round_up_tick(1100));
	assert_true(1000 + (uint64_t)n + TICK > 1100);   /* not needlessly early */

	tt_set(&w, &b, 1050);                             /* earlier one wins */
	n = moat_timer_next(&w, 1000);
	assert_true(n >= 0 && 1000 + (uint64_t)n <= round_up_tick(1050));

	tt_set(&w, &c, 1000 + 3 * SPAN);                  /* far: does not hide b */
	n = moat_timer_next(&w, 1000);
	assert_true(n >= 0 && 1000 + (uint64_t)n <= round_up_tick(1050));

	/* moving b later lazily may leave an early wake-up, never a late one */
	tt_set(&w, &b, 1090);
	n = moat_timer_next(&w, 1000);
	assert_true(n >= 0 && 1000 + (uint64_t)n <= round_up_tick(1090));

	/* already due: 0 */
	moat_timer_stop(&w, &b.t);
	n = moat_timer_next(&w, 1200);
	assert_int_equal(n, 0);

	moat_timer_stop(&w, &a.t);
	n = moat_timer_next(&w, 1000);
	assert_true(n >= 0 && n <= (int)SPAN);
	moat_timer_stop(&w, &c.t);
	assert_int_equal(moat_timer_next(&w, 1000), -1);
}

/* Every slot position relative to the wheel's cursor, so the bitmap scan
 * wraps around at every offset. */
static void test_next_every_slot_offset(void **state)
{
	(void)state;
	for (uint64_t start = 0; start < 2 * MOAT_TIMER_SLOTS; start += 61) {
		for (uint64_t delay = 1; delay < SPAN; delay += 97) {
			struct moat_timer_wheel w;
			struct tt x;
			uint64_t now = start * TICK + 3, d = now + delay;
			int n;

			moat_timer_wheel_init(&w, 0);
			g_now = now;
			moat_timer_run(&w, now);
			tt_init(&x, 0);
			tt_set(&w, &x, d);
			n = moat_timer_next(&w, now);
			if (n < 0 || now + (uint64_t)n > round_up_tick(d) ||
			    now + (uint64_t)n + TICK <= d)
				fail_msg("now %llu deadline %llu: next %d",
					 (unsigned long long)now, (unsigned long long)d, n);
		}
	}
}

/* ---- random operations against a reference model ---------------------- */

#define RN 10000u

struct ref_ent {
	uint64_t d;
	unsigned id;
};

static struct ref_ent ref[RN];      /* armed timers, sorted by (d, id) */
static size_t nref;
static uint64_t ref_d[RN];          /* 0: not armed */
static struct tt rt[RN];
static uint64_t rng_state;
static size_t cb_fired;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static int ref_cmp(uint64_t d, unsigned id, const struct ref_ent *e)
{
	if (d != e->d)
		return d < e->d ? -1 : 1;
	return id < e->id ? -1 : id > e->id ? 1 : 0;
}

static size_t ref_lower(uint64_t d, unsigned id)
{
	size_t lo = 0, hi = nref;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ref_cmp(d, id, &ref[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ref_remove(unsigned id)
{
	size_t i;

	if (!ref_d[id])
		return;
	i = ref_lower(ref_d[id], id);
	assert_true(i < nref && ref[i].id == id);
	memmove(&ref[i], &ref[i + 1], (nref - i - 1) * sizeof(ref[0]));
	nref--;
	ref_d[id] = 0;
}

static void ref_insert(unsigned id, uint64_t d)
{
	size_t i;

	ref_remove(id);
	i = ref_lower(d, id);
	memmove(&ref[i + 1], &ref[i], (nref - i) * sizeof(ref[0]));
	ref[i].d = d;
	ref[i].id = id;
	nref++;
	ref_d[id] = d;
}

/* A future deadline: near, within the span, or well past it. */
static uint64_t rand_deadline(uint64_t now)
{
	uint64_t k = rnd() % 100;

	if (k < 40)
		return now + 1 + rnd() % 100;
	if (k < 85)
		return now + 1 + rnd() % SPAN;
	return now + 1 + rnd() % (4 * SPAN);
}

static void r_set(unsigned id, uint64_t d)
{
	moat_timer_set(g_w, &rt[id].t, d);
	ref_insert(id, d);
}

static void r_stop(unsigned id)
{
	moat_timer_stop(g_w, &rt[id].t);
	ref_remove(id);
}

/* Every callback checks it is not early and updates the model; some also
 * re-arm themselves, stop another timer, or move another timer. */
static void r_fire(struct tt *self)
{
	unsigned id = self->id;

	cb_fired++;
	if (!ref_d[id])
		fail_msg("timer %u fired while not armed in the model", id);
	if (ref_d[id] > g_now)
		fail_msg("timer %u fired early: deadline %llu, now %llu", id,
			 (unsigned long long)ref_d[id], (unsigned long long)g_now);
	ref_remove(id);
	if (id % 5 == 0 && rnd() % 2)
		r_set(id, rand_deadline(g_now));
	if (id % 7 == 3)
		r_stop((id + 1) % RN);
	if (id % 11 == 4)
		r_set((id + 2) % RN, rand_deadline(g_now));
}

static void check_next(uint64_t now)
{
	int n = moat_timer_next(g_w, now);

	assert_int_equal(g_w->count, nref);
	if (nref == 0) {
		assert_int_equal(n, -1);
		return;
	}
	if (n < 0 || now + (uint64_t)n > round_up_tick(ref[0].d))
		fail_msg("next(%llu) = %d, but a timer is due at %llu",
			 (unsigned long long)now, n, (unsigned long long)ref[0].d);
}

static void test_random_against_reference(void **state)
{
	struct moat_timer_wheel w;
	uint64_t now = 5000;
	size_t steps = 0, total_fired = 0;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	memset(ref_d, 0, sizeof(ref_d));
	nref = 0;
	cb_fired = 0;
	moat_timer_wheel_init(&w, now);
	g_w = &w;
	g_now = now;
	for (unsigned i = 0; i < RN; i++) {
		tt_init(&rt[i], i);
		rt[i].action = r_fire;
		r_set(i, rand_deadline(now));
	}
	check_next(now);
	for (steps = 0; steps < 40000; steps++) {
		uint64_t k = rnd() % 100;

		if (k < 30) {
			r_set((unsigned)(rnd() % RN), rand_deadline(now));
		} else if (k < 40) {
			r_stop((unsigned)(rnd() % RN));
		} else {
			uint64_t step = rnd() % 100 < 98 ? rnd() % 20 : rnd() % (2 * SPAN);
			size_t before = cb_fired, fired;

			check_next(now);
			now += step;
			g_now = now;
			fired = moat_timer_run(&w, now);
			assert_int_equal(fired, cb_fired - before);
			total_fired += fired;
			/* Everything due a whole tick ago has fired. */
			if (nref && ref[0].d + TICK - 1 <= now)
				fail_msg("step %zu: timer %u due at %llu still armed at %llu",
					 steps, ref[0].id, (unsigned long long)ref[0].d,
					 (unsigned long long)now);
		}
		assert_int_equal(w.count, nref);
	}
	/* drain: everything left fires on time */
	while (nref) {
		check_next(now);
		now += 1 + rnd() % 50;
		g_now = now;
		total_fired += moat_timer_run(&w, now);
		if (nref && ref[0].d + TICK - 1 <= now)
			fail_msg("drain: timer %u due at %llu still armed at %llu", ref[0].id,
				 (unsigned long long)ref[0].d, (unsigned long long)now);
	}
	assert_int_equal(w.count, 0);
	assert_int_equal(moat_timer_next(&w, now), -1);
	assert_true(total_fired > RN);
	print_message("random: %zu steps, %zu fired\n", steps, total_fired);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fires_within_one_tick_never_early),
		cmocka_unit_test(test_fires_exactly_on_tick_boundary),
		cmocka_unit_test(test_run_jumping_ahead_fires_all_due),
		cmocka_unit_test(test_past_deadline_fires_at_next_tick),
		cmocka_unit_test(test_rearm_later_fires_at_new_time),
		cmocka_unit_test(test_rearm_earlier_fires_at_earlier_time),
		cmocka_unit_test(test_rearm_back_and_forth),
		cmocka_unit_test(test_rearm_on_every_step_like_io),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_stop_far_timer),
		cmocka_unit_test(test_callback_rearms_itself),
		cmocka_unit_test(test_callback_rearms_itself_at_now),
		cmocka_unit_test(test_callback_stops_other_due_in_same_slot),
		cmocka_unit_test(test_callback_rearms_other_due_in_same_slot),
		cmocka_unit_test(test_callback_arms_far_timer_into_visited_slot),
		cmocka_unit_test(test_far_deadlines),
		cmocka_unit_test(test_far_deadline_with_loop_sleeping_next),
		cmocka_unit_test(test_next_bound),
		cmocka_unit_test(test_next_every_slot_offset),
		cmocka_unit_test(test_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
