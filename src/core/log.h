/*
 * log.h - the error log and the access-log sink.
 *
 * Nothing in moat prints except through here. The error log writes one
 * line per call with a single write(2) (lines from threads never
 * interleave); it is rare by design. The access log is on every request's
 * way, so workers never write it themselves: each worker appends lines to
 * its own single-producer ring and the logger thread writes them out, so a
 * slow disk or a full pipe never blocks a worker (when the ring is full the
 * line is dropped and counted).
 */
#ifndef MOAT_CORE_LOG_H
#define MOAT_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MOAT_LOGL_ERROR 0
#define MOAT_LOGL_WARN  1
#define MOAT_LOGL_INFO  2
#define MOAT_LOGL_DEBUG 3

extern int moat_log_level;

/* Opens the error log: `path` NULL means stderr. Returns 0 or -errno (the
 * previous destination stays). Any thread; opens are serialised. */
int moat_log_open(const char *path, int level);

void moat_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define moat_log_enabled(l) ((l) <= moat_log_level)
#define MOAT_ERR(...)   moat_log(MOAT_LOGL_ERROR, __VA_ARGS__)
#define MOAT_WARN(...)  do { if (moat_log_enabled(MOAT_LOGL_WARN)) moat_log(MOAT_LOGL_WARN, __VA_ARGS__); } while (0)
#define MOAT_INFO(...)  do { if (moat_log_enabled(MOAT_LOGL_INFO)) moat_log(MOAT_LOGL_INFO, __VA_ARGS__); } while (0)
#define MOAT_DEBUG(...) do { if (moat_log_enabled(MOAT_LOGL_DEBUG)) moat_log(MOAT_LOGL_DEBUG, __VA_ARGS__); } while (0)

/* One worker's access-log ring (single producer: the worker; single
 * consumer: the logger thread). */
struct moat_alog_ring;

/* Access log destination: "stdout", a file path (appended), or NULL (off).
 * Starts the logger thread on first use. Returns 0 or -errno. Any thread
 * (opens are serialised); may be called again on reload (the new
 * destination applies to lines written after the switch). */
int moat_alog_open(const char *dest);

/* Creates a ring of `size` bytes (a power of two). */
struct moat_alog_ring *moat_alog_ring_new(size_t size);

/* Registers / unregisters a ring with the logger thread. */
void moat_alog_attach(struct moat_alog_ring *r);
void moat_alog_detach(struct moat_alog_ring *r);

/* Worker: copies one complete line (ending in '\n') into the ring;
 * returns 0 or -ENOBUFS (line dropped and counted). */
int moat_alog_write(struct moat_alog_ring *r, const char *line, size_t len);

/* Nonzero when an access log destination is open. */
int moat_alog_enabled(void);

/* Control thread: writes out everything buffered, stops the logger thread. */
void moat_alog_shutdown(void);

/* Formats the wall clock as "2026-11-27T12:00:00.123Z" (24 bytes + NUL)
 * and as the common-log "27/Nov/2026:12:00:00 +0000" (26 bytes + NUL). */
void moat_log_time_iso(char out[32]);
void moat_log_time_clf(char out[32]);

#endif
