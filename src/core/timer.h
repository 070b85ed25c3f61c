/*
 * timer.h - a hashed timer wheel with lazy re-arming, pure (time is passed
 * in).
 *
 * Connections move their deadline on every read or write; doing list
 * surgery each time would cost more than the I/O. So moat_timer_set only
 * records the new deadline when the timer is already linked in a slot that
 * comes no later than the new deadline; when that slot is visited, a timer
 * whose deadline has moved is re-linked instead of fired.
 *
 * Owned by one loop; not thread-safe.
 */
#ifndef MOAT_CORE_TIMER_H
#define MOAT_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define MOAT_TIMER_SLOTS   1024u       /* power of two */
#define MOAT_TIMER_TICK_MS 8u          /* slot granularity */

struct moat_timer {
	struct moat_timer *next, **pprev; /* slot list; pprev NULL when unlinked */
	uint64_t deadline;                /* 0: disarmed */
	uint64_t slot_time;               /* tick the timer is linked under */
	void (*cb)(struct moat_timer *t);
};

struct moat_timer_wheel {
	struct moat_timer *slots[MOAT_TIMER_SLOTS];
	uint64_t bitmap[MOAT_TIMER_SLOTS / 64];
	uint64_t cur_tick;                /* next tick to process */
	size_t count;                     /* linked timers */
};

void moat_timer_wheel_init(struct moat_timer_wheel *w, uint64_t now_ms);

/* Arms (or moves) `t` to fire at `deadline_ms` (absolute). */
void moat_timer_set(struct moat_timer_wheel *w, struct moat_timer *t, uint64_t deadline_ms);

/* Disarms `t`; safe on a disarmed timer. */
void moat_timer_stop(struct moat_timer_wheel *w, struct moat_timer *t);

/* Fires every timer whose deadline is <= now_ms; callbacks may set or stop
 * any timer, including the one firing. Returns the number fired. */
size_t moat_timer_run(struct moat_timer_wheel *w, uint64_t now_ms);

/* Milliseconds until the next linked slot is due (may be a lazy re-link),
 * or -1 when no timer is armed. */
int moat_timer_next(const struct moat_timer_wheel *w, uint64_t now_ms);

#endif
