/*
 * loop.c - epoll loop of one worker (see loop.h).
 *
 * One iteration: wait (bounded by the next timer), dispatch events, run
 * timers, run deferred tasks (where connections are freed, so that no
 * callback ever sees its object vanish under it).
 */
#include "core/loop.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 256

uint64_t moat_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake_cb(struct moat_ev *ev, uint32_t events)
{
	struct moat_loop *loop = (struct moat_loop *)((char *)ev - offsetof(struct moat_loop, wake_ev));
	uint64_t v;

	(void)events;
	while (read(loop->wakefd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
	if (loop->on_wake)
		loop->on_wake(loop);
}

int moat_loop_init(struct moat_loop *loop)
{
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->wakefd < 0) {
		int e = -errno;

		close(loop->epfd);
		return e;
	}
	loop->now_ms = moat_clock_ms();
	moat_timer_wheel_init(&loop->timers, loop->now_ms);
	loop->defer_head = NULL;
	loop->defer_tail = &loop->defer_head;
	loop->stop = 0;
	loop->wake_ev.fd = loop->wakefd;
	loop->wake_ev.cb = wake_cb;
	return moat_loop_add(loop, &loop->wake_ev, 0);
}

void moat_loop_destroy(struct moat_loop *loop)
{
	close(loop->wakefd);
	close(loop->epfd);
}

int moat_loop_add(struct moat_loop *loop, struct moat_ev *ev, int out)
{
	struct epoll_event e = {
		.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0u),
		.data.ptr = ev,
	};

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, ev->fd, &e) < 0)
		return -errno;
	return 0;
}

void moat_loop_del(struct moat_loop *loop, struct moat_ev *ev)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}

void moat_loop_defer(struct moat_loop *loop, struct moat_defer *d)
{
	if (d->queued)
		return;
	d->queued = 1;
	d->next = NULL;
	*loop->defer_tail = d;
	loop->defer_tail = &d->next;
}

static void run_deferred(struct moat_loop *loop)
{
	while (loop->defer_head) {
		struct moat_defer *d = loop->defer_head;

		loop->defer_head = d->next;
		if (!loop->defer_head)
			loop->defer_tail = &loop->defer_head;
		d->queued = 0;
		d->cb(d);
	}
}

void moat_loop_wake(struct moat_loop *loop)
{
	uint64_t one = 1;
	ssize_t r = write(loop->wakefd, &one, sizeof(one));

	(void)r;
}

void moat_loop_run(struct moat_loop *loop)
{
	struct epoll_event events[EVENTS_PER_WAIT];

	while (!loop->stop) {
		int timeout = loop->defer_head ? 0 : moat_timer_next(&loop->timers, loop->now_ms);
		int n = epoll_wait(loop->epfd, events, EVENTS_PER_WAIT, timeout);

		loop->now_ms = moat_clock_ms();
		for (int i = 0; i < n; i++) {
			struct moat_ev *ev = events[i].data.ptr;

			ev->cb(ev, events[i].events);
		}
		moat_timer_run(&loop->timers, loop->now_ms);
		run_deferred(loop);
	}
}
