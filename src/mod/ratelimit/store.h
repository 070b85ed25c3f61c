/*
 * store.h - where rate-limit state lives: a key -> tat table behind a
 * small function table, so a shared (Redis) store can stand in for the
 * node-local one without the ratelimit module knowing.
 *
 * A request's way: the module builds the key from the policy and the
 * client's identity (moat_limit_key), calls moat_limit_store_take with
 * the policy and the worker's clock, and acts on the verdict. The store
 * serialises the takes of one key, so an allowance is exact across every
 * worker of the process.
 *
 * The local store (moat_limit_store_local_init) is process-wide: created
 * once, kept across config reloads by whoever owns it, freed at exit. It
 * is sharded by key hash, each shard its own mutex held for a lookup and
 * the GCRA math (a few dozen ns); no global lock, and no allocation on
 * the way except when a shard grows (by doubling, up to its share of
 * max_keys).
 */
#ifndef MOAT_MOD_RATELIMIT_STORE_H
#define MOAT_MOD_RATELIMIT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "mod/ratelimit/gcra.h"

struct moat_limit_store_ops {
	/* Measures one request of `key` at now_us against p (moat_gcra_take
	 * on the key's stored tat) and fills r. Returns 0, or a negative
	 * error when the store could not answer (a remote store unreachable:
	 * r is then untouched and the caller chooses to fail open or
	 * closed). Any thread. */
	int (*take)(void *self, uint64_t key, const struct moat_gcra_policy *p, uint64_t now_us,
		    struct moat_gcra_result *r);
	/* Keys held now (an approximate figure for a remote store). Any thread. */
	size_t (*count)(void *self);
	/* Frees the store; no other call may be running or follow. */
	void (*destroy)(void *self);
};

/* A store: its function table and its state. Owned by whoever created it
 * (the process, across reloads); copied by value freely, freed once. */
struct moat_limit_store {
	const struct moat_limit_store_ops *ops;
	void *self;
};

static inline int moat_limit_store_take(struct moat_limit_store *s, uint64_t key,
					const struct moat_gcra_policy *p, uint64_t now_us,
					struct moat_gcra_result *r)
{
	return s->ops->take(s->self, key, p, now_us, r);
}

static inline size_t moat_limit_store_count(struct moat_limit_store *s)
{
	return s->ops->count(s->self);
}

/* Frees s's state (no other call may be running) and clears s; safe on a
 * cleared store. */
static inline void moat_limit_store_destroy(struct moat_limit_store *s)
{
	if (s->ops)
		s->ops->destroy(s->self);
	s->ops = NULL;
	s->self = NULL;
}

/*
 * Makes s the node-local store, holding at most max_keys keys (each
 * shard at most its share). Memory starts small (about 1 KiB per shard)
 * and grows by doubling to at most moat_limit_store_local_max_bytes(
 * max_keys), about 18 bytes per key: 16 for the (key, tat) pair and an
 * eighth of spare slots for placement.
 *
 * Room is found in this order:
 *   1. the key's own entry;
 *   2. an entry whose tat <= now: it carries no information (its key
 *      would be measured exactly as a fresh one), so it is reused for
 *      free and never counts as an eviction;
 *   3. an empty slot, while the shard holds less than its share (the
 *      shard doubles first when it runs short of empty slots); a shard
 *      at its share first clears every entry whose tat <= now (one scan,
 *      at most once per eighth of its share of new keys);
 *   4. forced eviction: the entry with the smallest tat among the eight
 *      slots the new key may occupy is dropped. What that can lose: the
 *      dropped key's next request is measured as a fresh key's, so it
 *      gets at most burst + 1 requests more than its limit allows, once
 *      per eviction; and it had the least debt of the eight, so every
 *      key kept owes at least as much (a hot key at its limit is evicted
 *      last, unless its neighbours have a longer interval). Keys are
 *      hashed with a secret (moat_limit_key), so a client cannot aim new
 *      keys at another's slots; flooding the store past max_keys distinct
 *      keys only raises the eviction rate evenly.
 *
 * Returns 0, -EINVAL when max_keys is 0 or past 2^39, -ENOMEM. Called once, by the
 * thread that creates the process state.
 */
int moat_limit_store_local_init(struct moat_limit_store *s, size_t max_keys);

/* Bytes of memory the local store s holds now (tables, shards, header);
 * 0 when s is not a local store. Any thread (locks each shard in turn). */
size_t moat_limit_store_local_bytes(struct moat_limit_store *s);

/* The most bytes a local store of max_keys keys may ever hold. Pure. */
size_t moat_limit_store_local_max_bytes(size_t max_keys);

/* Live entries the local store s has dropped to make room (step 4
 * above), since it was made; 0 when s is not a local store. Any thread. */
uint64_t moat_limit_store_local_evictions(struct moat_limit_store *s);

/*
 * A 64-bit key for `data` (the client's identity: address bytes, a
 * header's value...) under limit number `policy`, keyed by `seed`:
 * SipHash-1-3 with key (seed, policy), so keys of one identity under two
 * limits are unrelated, and without the seed nobody can compute which
 * identities collide or share a shard. seed is a per-process secret
 * (getrandom at start); keys change with it, so a store's contents are
 * only meaningful under the seed that made them (a shared store needs one
 * seed for every node). Pure; any thread.
 */
uint64_t moat_limit_key(uint64_t seed, uint64_t policy, const void *data, size_t len);

#endif
