/*
 * disk.h - the cache's disk store: one file per object under a directory,
 * written by a background thread, checked on every read.
 *
 * Used by store.c only. A file holds a fixed header (magic, version,
 * lengths, times, body length, zlib crc32 of the metadata and of the
 * body), then key, vkey, head, tags and the body (the byte layout is in
 * disk.c). Files are <dir>/<xx>/<id>.mc, xx the id's low byte in hex.
 * At start-up moat_cache_disk_scan() reads every file's metadata (not the body) and
 * reports the valid ones; a file that is short, of another version, or
 * whose metadata checksum fails is removed. A body is read only when an
 * object is served (moat_cache_disk_read_body), and checked: a mismatch
 * removes the file and fails the read, so a corrupt entry is never
 * served. Writes go to a temporary name, then rename(2): a crash leaves
 * either the old state or a whole file (temporary names are removed at
 * scan). Ids are unique for the directory (greater than any found).
 * Limits: key, vkey, head and tags each under 1 MiB, the body under
 * 1 TiB; a record past them is refused by write and invalid on disk.
 */
#ifndef MOAT_MOD_CACHE_DISK_H
#define MOAT_MOD_CACHE_DISK_H

#include <stddef.h>
#include <stdint.h>

struct moat_cache_disk;

/* One object's metadata (borrowed). */
struct moat_cache_disk_rec {
	const char *key;
	size_t key_len;
	const char *vkey;
	size_t vkey_len;
	const char *head;
	size_t head_len;
	const char *tags;
	size_t tags_len;
	int64_t request_time, response_time;
	uint64_t body_len;
	uint64_t id;                /* set by scan; ignored by write */
	uint64_t file_size;         /* set by scan: bytes the file takes */
};

/* Opens the directory, creating it and its missing parents (mode 0700)
 * and its 256 subdirectories, and starts the writer thread. Returns NULL
 * with *why (malloc'd, names the path and the system's reason) when the
 * path is not a directory moat can write. */
struct moat_cache_disk *moat_cache_disk_open(const char *dir, char **why);
/* Finishes the queued writes (their done() runs), stops the writer
 * thread, frees. Not from inside a done() callback. */
void moat_cache_disk_close(struct moat_cache_disk *d);

/* Calls cb for every valid file (in no order); removes invalid ones and
 * leftover temporary files. cb returns 0 to keep the file, -1 to have it
 * removed. r and its strings are valid during the call only. Returns the
 * number of files kept. Call before any write (it removes temporary
 * files, a queued write's among them); ids written afterwards are greater
 * than every id found. Not thread-safe with itself. */
size_t moat_cache_disk_scan(struct moat_cache_disk *d,
			    int (*cb)(void *ctx, const struct moat_cache_disk_rec *r), void *ctx);

/*
 * Queues a write of one object; returns its id (never 0). Nothing is
 * copied: rec's strings and body must stay valid until done(ctx, id, ok)
 * is called from the writer thread (ok 0 when the write failed: the file
 * does not exist). Returns 0 when the queue is full (the caller skips
 * the disk for this object; done is not called) or rec is past the
 * limits. done may run before write returns (the writer is another
 * thread): have ctx ready first, and expect the id in done's argument.
 * The queue holds at most 4096 jobs and 256 MiB of bodies (a body larger
 * than that is taken when the queue is empty). Any thread; done may call
 * write and remove, not close.
 */
uint64_t moat_cache_disk_write(struct moat_cache_disk *d, const struct moat_cache_disk_rec *rec,
			       const void *body, void (*done)(void *ctx, uint64_t id, int ok), void *ctx);

/* Reads the body of object `id` (len bytes, as recorded) into buf and
 * checks it. Returns 0, or -1 (missing, short, or checksum mismatch: the
 * file is removed). Any thread. */
int moat_cache_disk_read_body(struct moat_cache_disk *d, uint64_t id, void *buf, uint64_t len);

/* Removes object id's file: now, or when id's write is still queued or
 * being written, the write is cancelled (its file removed right after it
 * is written) and its done() gets ok 0. Any thread. */
void moat_cache_disk_remove(struct moat_cache_disk *d, uint64_t id);

/*
 * Checks a file's metadata, the pure core of scan (a file is untrusted
 * input: torn, of another version, or written by someone else).
 * buf[0..len) are the file's first len bytes; file_size its size. Checks
 * the magic, the version, the limits, that header + strings + body make
 * file_size, and the metadata checksum. Returns 0 with *out filled (its
 * strings point into buf; id 0, file_size set); -1 when invalid (also
 * when len > file_size, or file_size is less than a header); or, when
 * buf is too short for the header or the strings, the number of bytes
 * needed (> len, <= file_size, at most 60 + 4 MiB): call again with that
 * many. *out is meaningful only on 0. Any thread.
 */
int moat_cache_disk_parse(const void *buf, size_t len, uint64_t file_size, struct moat_cache_disk_rec *out);

/* Bytes a file for rec takes (header + strings + body). */
uint64_t moat_cache_disk_size(const struct moat_cache_disk_rec *rec);

/* Test hook: the queue's maxima (jobs, body bytes). */
void moat_cache_disk_set_queue_max(struct moat_cache_disk *d, size_t jobs, uint64_t bytes);

#endif
