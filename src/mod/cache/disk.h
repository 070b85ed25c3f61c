/*
 * disk.h - the cache's disk store: one file per object under a directory,
 * written by a background thread, checked on every read.
 *
 * Used by store.c only. A file holds a fixed header (magic, version,
 * lengths, times, body length, CRC-32C/zlib crc32 of the metadata and of
 * the body), then key, vkey, head, tags and the body. At start-up
 * moat_cache_disk_scan() reads every file's metadata (not the body) and
 * reports the valid ones; a file that is short, of another version, or
 * whose metadata checksum fails is removed. A body is read only when an
 * object is served (moat_cache_disk_read_body), and checked: a mismatch
 * removes the file and fails the read, so a corrupt entry is never
 * served. Writes go to a temporary name, then rename(2): a crash leaves
 * either the old state or a whole file (temporary names are removed at
 * scan). Ids are unique for the directory (greater than any found).
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

/* Opens (creating it, mode 0700) the directory. Returns NULL with *why. */
struct moat_cache_disk *moat_cache_disk_open(const char *dir, char **why);
/* Finishes the queued writes, stops the writer thread, frees. */
void moat_cache_disk_close(struct moat_cache_disk *d);

/* Calls cb for every valid file (in no order); removes invalid ones and
 * leftover temporary files. cb returns 0 to keep the file, -1 to have it
 * removed. Returns the number of files kept. Call before any write. */
size_t moat_cache_disk_scan(struct moat_cache_disk *d,
			    int (*cb)(void *ctx, const struct moat_cache_disk_rec *r), void *ctx);

/*
 * Queues a write of one object; returns its id (never 0). Nothing is
 * copied: rec's strings and body must stay valid until done(ctx, id, ok)
 * is called from the writer thread (ok 0 when the write failed: the file
 * does not exist). Returns 0 when the queue is full (the caller skips
 * the disk for this object; done is not called).
 */
uint64_t moat_cache_disk_write(struct moat_cache_disk *d, const struct moat_cache_disk_rec *rec,
			       const void *body, void (*done)(void *ctx, uint64_t id, int ok), void *ctx);

/* Reads the body of object `id` (len bytes, as recorded) into buf and
 * checks it. Returns 0, or -1 (missing, short, or checksum mismatch: the
 * file is removed). Any thread. */
int moat_cache_disk_read_body(struct moat_cache_disk *d, uint64_t id, void *buf, uint64_t len);

/* Removes object id's file (now, or after its queued write). */
void moat_cache_disk_remove(struct moat_cache_disk *d, uint64_t id);

/* Bytes a file for rec takes (header + strings + body). */
uint64_t moat_cache_disk_size(const struct moat_cache_disk_rec *rec);

#endif
