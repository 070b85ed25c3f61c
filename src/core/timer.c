/*
 * timer.c - hashed timer wheel with lazy re-arming (see timer.h).
 *
 * A timer linked under tick T has deadline <= T * TICK, so visiting slot T
 * once `now` has reached T * TICK either fires it or finds its deadline
 * moved later and re-links it. Ticks further away than the wheel spans are
 * parked in the farthest slot and re-linked when visited.
 */
#include "core/timer.h"

#define MASK (MOAT_TIMER_SLOTS - 1u)

static uint64_t tick_of(uint64_t ms)
{
	return (ms + MOAT_TIMER_TICK_MS - 1) / MOAT_TIMER_TICK_MS;
}

void moat_timer_wheel_init(struct moat_timer_wheel *w, uint64_t now_ms)
{
	for (size_t i = 0; i < MOAT_TIMER_SLOTS; i++)
		w->slots[i] = NULL;
	for (size_t i = 0; i < MOAT_TIMER_SLOTS / 64; i++)
		w->bitmap[i] = 0;
	w->cur_tick = now_ms / MOAT_TIMER_TICK_MS;
	w->count = 0;
}

static void unlink_timer(struct moat_timer_wheel *w, struct moat_timer *t)
{
	size_t slot = t->slot_time & MASK;

	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
	w->count--;
	if (!w->slots[slot])
		w->bitmap[slot / 64] &= ~(1ull << (slot % 64));
}

static void link_timer(struct moat_timer_wheel *w, struct moat_timer *t)
{
	uint64_t tick = tick_of(t->deadline);
	size_t slot;

	if (tick < w->cur_tick)
		tick = w->cur_tick;
	if (tick >= w->cur_tick + MOAT_TIMER_SLOTS)
		tick = w->cur_tick + MOAT_TIMER_SLOTS - 1;
	slot = tick & MASK;
	t->slot_time = tick;
	t->next = w->slots[slot];
	if (t->next)
		t->next->pprev = &t->next;
	w->slots[slot] = t;
	t->pprev = &w->slots[slot];
	w->bitmap[slot / 64] |= 1ull << (slot % 64);
	w->count++;
}

void moat_timer_set(struct moat_timer_wheel *w, struct moat_timer *t, uint64_t deadline_ms)
{
	if (deadline_ms == 0)
		deadline_ms = 1;
	if (t->pprev) {
		/* Lazy: the slot it waits in comes first; re-link on visit. */
		if (t->slot_time <= tick_of(deadline_ms)) {
			t->deadline = deadline_ms;
			return;
		}
		unlink_timer(w, t);
	}
	t->deadline = deadline_ms;
	link_timer(w, t);
}

void moat_timer_stop(struct moat_timer_wheel *w, struct moat_timer *t)
{
	if (t->pprev)
		unlink_timer(w, t);
	t->deadline = 0;
}

size_t moat_timer_run(struct moat_timer_wheel *w, uint64_t now_ms)
{
	uint64_t target = now_ms / MOAT_TIMER_TICK_MS;
	size_t fired = 0;

	while (w->cur_tick <= target) {
		size_t slot = w->cur_tick & MASK;
		struct moat_timer *list;

		if (w->count == 0) {
			w->cur_tick = target + 1;
			break;
		}
		list = w->slots[slot];
		w->cur_tick++;
		if (!list)
			continue;
		/* Detach the whole slot; callbacks may link into any slot. */
		w->slots[slot] = NULL;
		w->bitmap[slot / 64] &= ~(1ull << (slot % 64));
		list->pprev = &list;
		while (list) {
			struct moat_timer *t = list;

			list = t->next;
			if (list)
				list->pprev = &list;
			t->next = NULL;
			t->pprev = NULL;
			w->count--;
			if (t->deadline <= now_ms) {
				t->deadline = 0;
				fired++;
				t->cb(t);
			} else {
				link_timer(w, t);
			}
		}
	}
	return fired;
}

int moat_timer_next(const struct moat_timer_wheel *w, uint64_t now_ms)
{
	size_t start = w->cur_tick & MASK;

	if (w->count == 0)
		return -1;
	for (size_t d = 0; d < MOAT_TIMER_SLOTS; ) {
		size_t slot = (start + d) & MASK;
		uint64_t word = w->bitmap[slot / 64] >> (slot % 64);

		if (word == 0) {
			/* Skip the rest of this 64-bit word. */
			d += 64 - slot % 64;
			continue;
		}
		d += (size_t)__builtin_ctzll(word);
		if (d >= MOAT_TIMER_SLOTS)
			break;
		{
			uint64_t due = (w->cur_tick + d) * MOAT_TIMER_TICK_MS;

			return due <= now_ms ? 0 : (int)(due - now_ms);
		}
	}
	return (int)(MOAT_TIMER_SLOTS * MOAT_TIMER_TICK_MS);
}
