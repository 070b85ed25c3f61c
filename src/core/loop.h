/*
 * loop.h - the per-worker event loop: epoll (edge-triggered), a cached
 * clock, a timer wheel and a list of deferred tasks run at the end of each
 * iteration.
 *
 * Owned by exactly one worker thread; none of these functions may be called
 * from another thread, except moat_loop_wake.
 *
 * Each fd is registered once, for input and output, edge-triggered: the
 * owner keeps "can read" / "can write" flags and reads or writes until
 * EAGAIN. No epoll_ctl is needed to pause reading: the owner just stops.
 */
#ifndef MOAT_CORE_LOOP_H
#define MOAT_CORE_LOOP_H

#include <stdint.h>

#include "core/timer.h"

struct moat_loop;

/* An event source, embedded in its owner. `cb` receives the epoll event
 * mask (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR). */
struct moat_ev {
	int fd;
	void (*cb)(struct moat_ev *ev, uint32_t events);
};

/* A deferred task: runs once at the end of the current iteration. */
struct moat_defer {
	struct moat_defer *next;
	void (*cb)(struct moat_defer *d);
	int queued;
};

struct moat_loop {
	int epfd;
	int wakefd;                 /* eventfd: other threads wake this loop */
	struct moat_ev wake_ev;
	void (*on_wake)(struct moat_loop *loop);
	uint64_t now_ms;            /* monotonic milliseconds, updated each iteration */
	struct moat_timer_wheel timers;
	struct moat_defer *defer_head;
	struct moat_defer **defer_tail;
	int stop;
	void *owner;                /* the worker */
};

/* Creates the epoll and wake fds; returns 0 or -errno. */
int moat_loop_init(struct moat_loop *loop);
void moat_loop_destroy(struct moat_loop *loop);

/* Registers `ev->fd` for EPOLLIN|EPOLLOUT|EPOLLRDHUP, edge-triggered
 * (`out` = 0 leaves EPOLLOUT out, e.g. for listeners). Returns 0 or -errno. */
int moat_loop_add(struct moat_loop *loop, struct moat_ev *ev, int out);

/* Removes the fd (needed only when the fd stays open). */
void moat_loop_del(struct moat_loop *loop, struct moat_ev *ev);

/* Queues `d` to run at the end of this iteration (once, even if queued
 * twice). */
void moat_loop_defer(struct moat_loop *loop, struct moat_defer *d);

/* Runs until loop->stop is set. */
void moat_loop_run(struct moat_loop *loop);

/* Any thread: wakes the loop, which then calls loop->on_wake. */
void moat_loop_wake(struct moat_loop *loop);

/* Monotonic clock in ms (a syscall-free vDSO read). */
uint64_t moat_clock_ms(void);

#endif
