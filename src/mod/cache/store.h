/*
 * store.h - the cache's object store: complete responses held in memory
 * (a byte budget, evicted least recently used first) and, when a
 * directory is configured, on disk (disk.h) where they survive a restart.
 * Shared by every worker thread: the index is sharded by key hash, each
 * shard under its own mutex; objects are reference counted.
 *
 * Where it sits: the cache module (cache_mod.c) builds the keys and makes
 * every RFC 9111 decision (policy.h); the store only keeps, finds and
 * forgets objects, and arbitrates who fetches a missing key (the fill
 * lock, for request coalescing).
 *
 *   find(key, request fields) ── variant whose Vary matches ──> obj (ref'd)
 *   lock(key) ── 1: you fetch; 0: another worker fetches (poll again);
 *               -1: a recent fetch was uncacheable (go, no coalescing)
 *   obj_new + obj_append... + insert ── published (replaces the same variant),
 *               written to disk in the background
 *   purge_key / purge_tag / purge_all / invalidate
 *
 * An object is immutable once inserted (readers never see a partial one);
 * updating a stored response (a 304's fields) inserts a new object.
 */
#ifndef MOAT_MOD_CACHE_STORE_H
#define MOAT_MOD_CACHE_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_parse.h"
#include "mod/cache/policy.h"

struct moat_cache_store;
struct moat_cache_entry;    /* store.c's index record */

struct moat_cache_obj {
	uint64_t hash;              /* moat_hash of key (set by obj_new) */
	char *key;                  /* primary key (the module's bytes: method-less URL key) */
	size_t key_len;
	char *vkey;                 /* variant key (moat_cache_vary_key of the request that
				     * fetched it, for the response's Vary); "" when no Vary */
	size_t vkey_len;
	char *head;                 /* stored head: status line and field lines, each CRLF, then
				     * the empty line's CRLF; no framing, Connection, Age or
				     * Set-Cookie fields (the module strips them) */
	size_t head_len;
	char *body;                 /* the content; NULL while it is only on disk (find loads it) */
	uint64_t body_len;
	char *tags;                 /* purge tags, each followed by '\n'; "" when none */
	size_t tags_len;
	struct moat_cache_resp resp;/* parsed from head by obj_new / at load (strings point into
				     * head); request_time / response_time set from the arguments */
	uint64_t size;              /* bytes charged to the memory budget */
	atomic_uint refs;
	/* store.c's own */
	uint64_t body_cap;
	int complete;               /* inserted (or loaded): immutable */
	int on_disk;
	uint64_t disk_id;
	struct moat_cache_entry *entry;
};

struct moat_cache_store_cfg {
	uint64_t memory;            /* budget in bytes for objects in memory */
	const char *disk;           /* directory, or NULL */
	uint64_t disk_size;         /* budget in bytes on disk */
	uint64_t max_object;        /* body bytes an object may have */
	uint64_t hfm_ms;            /* how long an uncacheable fetch turns lock() into -1 (5000) */
	uint64_t lock_ms;           /* a fill lock not released in this long is taken over (30000) */
};

/* Opens the store; with a disk directory, creates it if missing and
 * rebuilds the index from its files (a file that fails its checks is
 * removed, never served). Returns NULL with *why (malloc'd). */
struct moat_cache_store *moat_cache_store_open(const struct moat_cache_store_cfg *cfg, char **why);
/* Waits for queued disk writes, frees everything (no object may be in use).
 * NULL: no-op. */
void moat_cache_store_close(struct moat_cache_store *s);
/* A new budget (reload): memory shrinks by evicting. */
void moat_cache_store_resize(struct moat_cache_store *s, uint64_t memory, uint64_t max_object);

/*
 * The stored variant of `key` for a request with fields hdrs[0..nhdrs):
 * the newest object whose vkey equals moat_cache_vary_key(obj's Vary,
 * hdrs). Returns it with a reference (moat_cache_obj_put), its body in
 * memory (loaded from disk here when needed: a body that fails its
 * checksum drops the object and counts as a miss), and marks it recently
 * used; or NULL, with *uri_hit set when the key has objects but none
 * matched (a vary miss).
 */
struct moat_cache_obj *moat_cache_find(struct moat_cache_store *s, const char *key, size_t key_len,
				       const struct moat_h1_header *hdrs, size_t nhdrs, int *uri_hit);

/*
 * The fill lock of `key` (coalescing): 1 the caller holds it and must
 * call moat_cache_unlock; 0 another holds it (ask again later: find may
 * then hit); -1 a fetch of the key was found uncacheable less than hfm_ms
 * ago (go to the backend without waiting). A lock held past lock_ms is
 * given to the next caller. now_ms: a monotonic clock. `*token` names
 * the holder for unlock.
 */
int moat_cache_lock(struct moat_cache_store *s, const char *key, size_t key_len, uint64_t now_ms,
		    uint64_t *token);
/* Releases the lock (when token still holds it); uncacheable: remember
 * for hfm_ms that the key is not cacheable (lock() then returns -1). */
void moat_cache_unlock(struct moat_cache_store *s, const char *key, size_t key_len, uint64_t token,
		       int uncacheable, uint64_t now_ms);

/* A new object to fill: copies key, vkey, head (parsed into obj->resp;
 * -1 / NULL when it is not a response head), tags. body_hint: the
 * expected body length when known (allocated at once), else 0. Returns it
 * with one reference (the caller's), or NULL (also when body_hint passes
 * max_object: it could not be stored). Any thread; the object is the
 * caller's alone until insert. */
struct moat_cache_obj *moat_cache_obj_new(struct moat_cache_store *s, const char *key, size_t key_len,
					  const char *vkey, size_t vkey_len, const char *head, size_t head_len,
					  const char *tags, size_t tags_len, int64_t request_time,
					  int64_t response_time, uint64_t body_hint);
/* Appends body bytes; -1 when it would pass max_object or the memory
 * budget (or malloc fails): the caller drops the object. The buffer grows
 * by doubling (capped at max_object); insert trims it to the length. */
int moat_cache_obj_append(struct moat_cache_store *s, struct moat_cache_obj *o, const void *data, size_t n);
/* Publishes a filled object: it replaces the object of the same key and
 * vkey, is charged to the memory budget (evicting others) and queued for
 * the disk. The caller keeps its reference (put it when done). Returns 0,
 * or -1 when it cannot be stored (larger than the whole budget, inserted
 * before, or out of memory). A successful insert also ends the key's
 * hit-for-miss period (the key proved cacheable); it does not release the
 * fill lock (moat_cache_unlock does). */
int moat_cache_insert(struct moat_cache_store *s, struct moat_cache_obj *o);
/* Drops a reference; the last one frees it. NULL: no-op. */
void moat_cache_obj_put(struct moat_cache_obj *o);
/* Takes another reference. */
void moat_cache_obj_ref(struct moat_cache_obj *o);

/* Removes every variant of key (memory and disk); returns how many.
 * Readers holding an object keep it until their put. */
size_t moat_cache_purge_key(struct moat_cache_store *s, const char *key, size_t key_len);
/* Removes every object carrying tag (exact, case-sensitive); returns how many. */
size_t moat_cache_purge_tag(struct moat_cache_store *s, const char *tag, size_t tag_len);
/* Removes everything; returns how many. */
size_t moat_cache_purge_all(struct moat_cache_store *s);

struct moat_cache_store_stats {
	uint64_t objects, bytes;          /* bodies in memory (disk-only objects are not counted) */
	uint64_t disk_objects, disk_bytes;/* files written or queued */
	uint64_t evictions, inserts, disk_errors; /* evictions: from memory (an object with a file
					   * stays as a disk-only stand-in); disk_errors: failed
					   * writes, bodies that failed their check */
};
void moat_cache_store_stats(struct moat_cache_store *s, struct moat_cache_store_stats *st);

/* Fills r from a parsed response head (the fields moat_cache_parse_head
 * reads; strings point into h's fields). Several Vary lines are joined
 * into vbuf when their *vneed bytes fit in vcap, else r->vary is NULL. */
void moat_cache_resp_from_h1(const struct moat_h1_head *h, struct moat_cache_resp *r, char *vbuf, size_t vcap,
			     size_t *vneed);

/* Parses a stored head (status line, fields, empty line) into r: status,
 * Cache-Control, Date, Expires, Last-Modified, Age, ETag, Vary, Set-Cookie
 * (strings point into head). The first Date / Expires / Last-Modified /
 * Age / ETag line counts; request_time / response_time are set to 0.
 * Several Vary lines are joined with ',' into a buffer of the calling
 * thread (r->vary then stays valid until this thread's next call; objects
 * keep their own copy); a joined Vary over 4 KiB reads as "*" (never
 * matched, not storable). Returns 0, or -1 when it is not one. */
int moat_cache_parse_head(const char *head, size_t head_len, struct moat_cache_resp *r);

/* The shard (0..31) that holds key: for tests of the per-shard LRU order
 * and for diagnostics. */
unsigned moat_cache_store_shard(const struct moat_cache_store *s, const char *key, size_t key_len);

#endif
