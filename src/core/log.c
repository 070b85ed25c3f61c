/*
 * log.c - error log lines and the access-log logger thread (see log.h).
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int moat_log_level = MOAT_LOGL_INFO;
static _Atomic int error_fd = 2;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void moat_log_time_iso(char out[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
		 (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
		 (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

void moat_log_time_clf(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reloads come from the control thread or the admin thread: opens are
 * serialised. A line written meanwhile goes to the old or the new file. */
int moat_log_open(const char *path, int level)
{
	int fd = 2, old;

	if (path) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	pthread_mutex_lock(&open_lock);
	moat_log_level = level;
	old = atomic_exchange(&error_fd, fd);
	pthread_mutex_unlock(&open_lock);
	if (old != 2 && old != fd)
		close(old);
	return 0;
}

void moat_log(int level, const char *fmt, ...)
{
	char line[2048];
	char ts[32];
	va_list ap;
	int n, m;

	if (level > moat_log_level)
		return;
	moat_log_time_iso(ts);
	n = snprintf(line, sizeof(line), "%s [%s] ", ts, level_names[level & 3]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(error_fd, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}

/* ---- access log ---- */

struct moat_alog_ring {
	char *data;
	size_t mask;
	_Atomic size_t head;       /* producer position */
	_Atomic size_t tail;       /* consumer position */
	_Atomic uint64_t dropped;
	struct moat_alog_ring *next;
};

static pthread_mutex_t rings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct moat_alog_ring *rings;
static pthread_t logger;
static int logger_running;
static _Atomic int logger_stop;
static _Atomic int alog_fd = -1;
static int wake_fd = -1;

int moat_alog_enabled(void)
{
	return atomic_load_explicit(&alog_fd, memory_order_relaxed) >= 0;
}

struct moat_alog_ring *moat_alog_ring_new(size_t size)
{
	struct moat_alog_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->data = malloc(size);
	if (!r->data) {
		free(r);
		return NULL;
	}
	r->mask = size - 1;
	return r;
}

int moat_alog_write(struct moat_alog_ring *r, const char *line, size_t len)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	size_t used = head - tail;
	size_t size = r->mask + 1;
	size_t off, first;

	if (len > size - used) {
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return -ENOBUFS;
	}
	off = head & r->mask;
	first = size - off < len ? size - off : len;
	memcpy(r->data + off, line, first);
	memcpy(r->data, line + first, len - first);
	atomic_store_explicit(&r->head, head + len, memory_order_release);
	/* Nudge the logger when the ring passes half full. */
	if (used + len > size / 2 && used <= size / 2 && wake_fd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(wake_fd, &one, sizeof(one));

		(void)w;
	}
	return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* a broken destination loses lines, never blocks workers */
		}
		p += w;
		n -= (size_t)w;
	}
}

static void drain_ring(struct moat_alog_ring *r, int fd)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	while (tail != head) {
		size_t off = tail & r->mask;
		size_t n = head - tail;

		if (n > r->mask + 1 - off)
			n = r->mask + 1 - off;
		if (fd >= 0)
			write_all(fd, r->data + off, n);
		tail += n;
	}
	atomic_store_explicit(&r->tail, tail, memory_order_release);
}

static void drain_all(void)
{
	int fd;

	pthread_mutex_lock(&rings_lock);
	fd = atomic_load(&alog_fd);
	for (struct moat_alog_ring *r = rings; r; r = r->next)
		drain_ring(r, fd);
	pthread_mutex_unlock(&rings_lock);
}

static void *logger_main(void *arg)
{
	struct pollfd p = { .fd = wake_fd, .events = POLLIN };

	(void)arg;
	while (!atomic_load(&logger_stop)) {
		uint64_t v;

		if (poll(&p, 1, 100) > 0) {
			ssize_t r = read(wake_fd, &v, sizeof(v));

			(void)r;
		}
		drain_all();
	}
	drain_all();
	return NULL;
}

static int alog_open_locked(const char *dest)
{
	int fd = -1, old;

	if (dest && strcmp(dest, "stdout") == 0) {
		fd = dup(1);
		if (fd < 0)
			return -errno;
	} else if (dest) {
		fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	if (!logger_running) {
		wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (wake_fd < 0 || pthread_create(&logger, NULL, logger_main, NULL) != 0) {
			if (fd >= 0)
				close(fd);
			return -EAGAIN;
		}
		logger_running = 1;
	}
	/* Lines already queued go to the old destination. */
	pthread_mutex_lock(&rings_lock);
	old = atomic_load(&alog_fd);
	for (struct moat_alog_ring *r = rings; r; r = r->next)
		drain_ring(r, old);
	atomic_store(&alog_fd, fd);
	pthread_mutex_unlock(&rings_lock);
	if (old >= 0)
		close(old);
	return 0;
}

int moat_alog_open(const char *dest)
{
	int r;

	pthread_mutex_lock(&open_lock);
	r = alog_open_locked(dest);
	pthread_mutex_unlock(&open_lock);
	return r;
}

void moat_alog_attach(struct moat_alog_ring *r)
{
	pthread_mutex_lock(&rings_lock);
	r->next = rings;
	rings = r;
	pthread_mutex_unlock(&rings_lock);
}

void moat_alog_detach(struct moat_alog_ring *r)
{
	pthread_mutex_lock(&rings_lock);
	drain_ring(r, atomic_load(&alog_fd));
	for (struct moat_alog_ring **pp = &rings; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&rings_lock);
	free(r->data);
	free(r);
}

void moat_alog_shutdown(void)
{
	if (logger_running) {
		uint64_t one = 1;
		ssize_t w;

		atomic_store(&logger_stop, 1);
		w = write(wake_fd, &one, sizeof(one));
		(void)w;
		pthread_join(logger, NULL);
		logger_running = 0;
		close(wake_fd);
		wake_fd = -1;
	}
	drain_all();
	pthread_mutex_lock(&rings_lock);
	{
		int fd = atomic_exchange(&alog_fd, -1);

		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&rings_lock);
}
