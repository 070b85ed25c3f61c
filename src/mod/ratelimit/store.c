/*
 * store.c - the node-local rate-limit store (see store.h) and the keyed
 * hash that names its keys.
 *
 * Layout: up to 128 shards, picked by the key's low bits, each a table of
 * 64-byte buckets of four (key, tat) slots. A key may sit in either of two
 * buckets chosen from other bits of the key (two-choice hashing: eight
 * candidate slots, two cache lines), which keeps tables usable to ~90%
 * full without chains, tombstones or probing past them. A slot is in use
 * when its tat is not 0; it holds information only while tat > now, so
 * a slot whose tat has passed is free to take. No timer sweeps: a shard
 * at its share clears passed slots in one scan when it needs room.
 *
 * Every field of a shard is guarded by its mutex.
 */
#include "core/hash.h"
#include "mod/ratelimit/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

#define SHARDS_MAX   128u
#define SHARD_MIN    64u       /* fewer shards when a share would hold fewer keys */
#define SLOTS        4u        /* per bucket: 4 x 16 bytes, one cache line */
#define BUCKETS_MIN  16u       /* a shard's first table: 1 KiB */
#define SPARE_NUM    9u        /* slots = share * 9 / 8: an eighth spare for placement */
#define SPARE_DEN    8u
#define FILL_NUM     7u        /* a shard below its largest table doubles past 7/8 used */
#define FILL_DEN     8u

struct slot {
	uint64_t key;
	uint64_t tat;          /* 0: empty; <= now: reusable */
};

struct bucket {
	struct slot s[SLOTS];
};

struct shard {
	_Alignas(64) pthread_mutex_t lock;
	struct bucket *b;
	uint32_t nb;           /* buckets now */
	uint32_t maxnb;        /* buckets at most */
	size_t share;          /* keys at most */
	size_t used;           /* slots with tat != 0 */
	size_t since_sweep;    /* new keys placed since the last sweep */
	uint64_t evictions;
};

struct local {
	unsigned nshards;      /* a power of two */
	struct shard *sh;
};

/* ---- keyed hash: SipHash-1-3 (core/hash.h) ----------------------------- */

uint64_t moat_limit_key(uint64_t seed, uint64_t policy, const void *data, size_t len)
{
	return moat_siphash13(seed, policy, data, len);
}

/* ---- placement --------------------------------------------------------- */

/* x in [0, 2^32) -> [0, n) without a division. */
static uint32_t range32(uint32_t x, uint32_t n)
{
	return (uint32_t)(((uint64_t)x * n) >> 32);
}

/* The key's two buckets in a table of nb (>= 2) buckets. The shard took
 * the low bits; these come from the high half and from a remix of all 64. */
static void buckets_of(uint64_t key, uint32_t nb, uint32_t *b1, uint32_t *b2)
{
	*b1 = range32((uint32_t)(key >> 32), nb);
	*b2 = range32((uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32), nb);
	if (*b2 == *b1)
		*b2 = *b1 + 1 == nb ? 0 : *b1 + 1;
}

static size_t buckets_for(size_t keys)
{
	size_t slots = (keys * SPARE_NUM + SPARE_DEN - 1) / SPARE_DEN;
	size_t nb = (slots + SLOTS - 1) / SLOTS;

	return nb < 2 ? 2 : nb;
}

/*
 * Both of a new key's buckets are full: moves one of their entries to its
 * other bucket when that has a slot to give (one step of cuckoo hashing;
 * up to eight more cache lines, only on this rare path). Takes a slot
 * whose tat has passed, or an empty one if `room` (*used counts it).
 * Returns the slot freed for the new key, cleared, or NULL.
 */
static struct slot *displace(struct bucket *tab, uint32_t nb, struct bucket *c[2], uint64_t now,
			     int room, size_t *used)
{
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned j = 0; j < SLOTS; j++) {
			struct slot *x = &c[i]->s[j];
			uint32_t a1, a2;
			struct bucket *alt;

			if (x->tat == 0)
				continue;
			buckets_of(x->key, nb, &a1, &a2);
			alt = &tab[a1] == c[i] ? &tab[a2] : &tab[a1];
			if (alt == c[1 - i])
				continue;
			for (unsigned k = 0; k < SLOTS; k++) {
				struct slot *y = &alt->s[k];

				if (y->tat > now || (y->tat == 0 && !room))
					continue;
				if (y->tat == 0)
					(*used)++;
				*y = *x;
				x->key = 0;
				x->tat = 0;
				(*used)--; /* the caller counts x again when it fills it */
				return x;
			}
		}
	}
	return NULL;
}

/*
 * Finds where `key` goes among its eight candidates: its own slot, else a
 * reusable one (tat <= now, not empty), else an empty one if `room`
 * (in the emptier bucket), else one freed by moving a neighbour away,
 * else NULL. *victim gets the live slot of smallest tat, for eviction.
 * An empty slot returned (tat 0) is not counted in *used yet.
 */
static struct slot *find(struct bucket *tab, uint32_t nb, uint64_t key, uint64_t now, int room,
			 size_t *used, struct slot **victim)
{
	uint32_t b1, b2;
	struct bucket *c[2];
	struct slot *reuse = NULL, *empty[2] = { NULL, NULL }, *min = NULL;
	unsigned nempty[2] = { 0, 0 };

	buckets_of(key, nb, &b1, &b2);
	c[0] = &tab[b1];
	c[1] = &tab[b2];
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned j = 0; j < SLOTS; j++) {
			struct slot *s = &c[i]->s[j];

			if (s->tat == 0) {
				if (!empty[i])
					empty[i] = s;
				nempty[i]++;
				continue;
			}
			if (s->key == key)
				return s;
			if (s->tat <= now) {
				if (!reuse)
					reuse = s;
			} else if (!min || s->tat < min->tat) {
				min = s;
			}
		}
	}
	*victim = min;
	if (reuse)
		return reuse;
	if (room && (empty[0] || empty[1]))
		return nempty[1] > nempty[0] ? empty[1] : empty[0];
	if (!min)
		return NULL;
	return displace(tab, nb, c, now, room, used);
}

/*
 * Rebuilds the shard's table into nb buckets, keeping the entries live at
 * now (the others are the ones it would reuse anyway). Allocates; on
 * failure the table is left as it was. Returns 0 or -ENOMEM.
 */
static int rebuild(struct shard *sh, uint32_t nb, uint64_t now)
{
	struct bucket *nt = calloc(nb, sizeof(*nt));
	size_t used = 0;

	if (!nt)
		return -ENOMEM;
	for (uint32_t i = 0; i < sh->nb; i++) {
		for (unsigned j = 0; j < SLOTS; j++) {
			const struct slot *o = &sh->b[i].s[j];
			struct slot *s, *victim;

			if (o->tat <= now)
				continue;
			s = find(nt, nb, o->key, now, 1, &used, &victim);
			if (!s) {
				/* Both buckets full even in the new table: keep the
				 * larger debt. */
				if (victim->tat >= o->tat) {
					sh->evictions++;
					continue;
				}
				s = victim;
				sh->evictions++;
				used--;
			}
			*s = *o;
			used++;
		}
	}
	free(sh->b);
	sh->b = nt;
	sh->nb = nb;
	sh->used = used;
	sh->since_sweep = 0;
	return 0;
}

/* Makes room in a shard below its largest table: doubles it, or when
 * `must_double` is 0 and most of it is stale, rebuilds it at the same
 * size (which drops the stale entries). Returns whether it changed. */
static int grow(struct shard *sh, uint64_t now, int must_double)
{
	size_t live = 0;
	uint32_t nb = sh->nb;

	if (nb >= sh->maxnb)
		return 0;
	if (!must_double) {
		for (uint32_t i = 0; i < nb; i++)
			for (unsigned j = 0; j < SLOTS; j++)
				live += sh->b[i].s[j].tat > now;
	}
	if (must_double || live * 2 >= (size_t)nb * SLOTS)
		nb = nb > sh->maxnb / 2 ? sh->maxnb : nb * 2;
	return rebuild(sh, nb, now) == 0;
}

/* Empties the slots whose tat has passed, so that they stop counting
 * against the share. A shard at its share sweeps when a new key finds no
 * reusable candidate, at most once per eighth of its share of new keys:
 * the scan costs a few slot reads per new key at worst. Returns whether
 * it swept. */
static int sweep(struct shard *sh, uint64_t now)
{
	if (sh->since_sweep < sh->share / 8)
		return 0;
	for (uint32_t i = 0; i < sh->nb; i++) {
		for (unsigned j = 0; j < SLOTS; j++) {
			struct slot *s = &sh->b[i].s[j];

			if (s->tat && s->tat <= now) {
				s->tat = 0;
				sh->used--;
			}
		}
	}
	sh->since_sweep = 0;
	return 1;
}

static int filling(const struct shard *sh)
{
	return (sh->used + 1) * FILL_DEN > (size_t)sh->nb * SLOTS * FILL_NUM;
}

static int local_take(void *self, uint64_t key, const struct moat_gcra_policy *p, uint64_t now_us,
		      struct moat_gcra_result *r)
{
	struct local *l = self;
	struct shard *sh = &l->sh[key & (l->nshards - 1)];
	struct slot *s, *victim;
	uint64_t tat = 0;

	pthread_mutex_lock(&sh->lock);
	for (int retry = 0;; retry = 1) {
		int room = sh->used < sh->share;

		s = find(sh->b, sh->nb, key, now_us, room, &sh->used, &victim);
		if (s && s->tat && s->key == key) {
			moat_gcra_take(p, &s->tat, now_us, r);
			break;
		}
		/* A key not held is measured as a fresh one; it needs a slot
		 * only if that leaves state behind (not with interval 0). */
		if (!retry) {
			moat_gcra_take(p, &tat, now_us, r);
			if (tat <= now_us)
				break;
			if (room ? (!s || (s->tat == 0 && filling(sh))) && grow(sh, now_us, !s)
				 : !s && sweep(sh, now_us))
				continue;
		}
		sh->since_sweep++;
		if (!s) {
			/* Step 4 of store.h. Without a live candidate (all eight
			 * empty while the shard is at its share: rare), the new
			 * key's state is the one not kept. */
			sh->evictions++;
			if (!victim)
				break;
			s = victim;
		} else if (s->tat == 0) {
			sh->used++;
		}
		s->key = key;
		s->tat = tat;
		break;
	}
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

static size_t local_count(void *self)
{
	struct local *l = self;
	size_t n = 0;

	for (unsigned i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->sh[i].lock);
		n += l->sh[i].used;
		pthread_mutex_unlock(&l->sh[i].lock);
	}
	return n;
}

static void local_destroy(void *self)
{
	struct local *l = self;

	if (!l)
		return;
	for (unsigned i = 0; i < l->nshards; i++) {
		pthread_mutex_destroy(&l->sh[i].lock);
		free(l->sh[i].b);
	}
	free(l->sh);
	free(l);
}

static const struct moat_limit_store_ops local_ops = {
	.take = local_take,
	.count = local_count,
	.destroy = local_destroy,
};

static unsigned shards_for(size_t max_keys)
{
	unsigned n = SHARDS_MAX;

	while (n > 1 && max_keys / n < SHARD_MIN)
		n /= 2;
	return n;
}

int moat_limit_store_local_init(struct moat_limit_store *s, size_t max_keys)
{
	struct local *l;
	pthread_mutexattr_t attr;
	unsigned n;

	s->ops = NULL;
	s->self = NULL;
	/* Bucket indices are 32-bit: 2^32 buckets of 4 per shard is far
	 * beyond any sane limit anyway. */
	if (max_keys == 0 || max_keys > (size_t)UINT32_MAX * SHARDS_MAX)
		return -EINVAL;
	n = shards_for(max_keys);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->sh = aligned_alloc(64, n * sizeof(*l->sh));
	if (!l->sh) {
		free(l);
		return -ENOMEM;
	}
	memset(l->sh, 0, n * sizeof(*l->sh));
	pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	/* spin briefly before sleeping: the lock is held for nanoseconds */
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	for (unsigned i = 0; i < n; i++) {
		struct shard *sh = &l->sh[i];

		sh->share = max_keys / n + (i < max_keys % n);
		sh->maxnb = (uint32_t)buckets_for(sh->share);
		sh->nb = sh->maxnb < BUCKETS_MIN ? sh->maxnb : BUCKETS_MIN;
		sh->b = calloc(sh->nb, sizeof(*sh->b));
		pthread_mutex_init(&sh->lock, &attr);
		l->nshards = i + 1;
		if (!sh->b) {
			pthread_mutexattr_destroy(&attr);
			local_destroy(l);
			return -ENOMEM;
		}
	}
	pthread_mutexattr_destroy(&attr);
	s->ops = &local_ops;
	s->self = l;
	return MOAT_OK;
}

size_t moat_limit_store_local_bytes(struct moat_limit_store *s)
{
	struct local *l = s->self;
	size_t n;

	if (s->ops != &local_ops)
		return 0;
	n = sizeof(*l) + l->nshards * sizeof(*l->sh);
	for (unsigned i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->sh[i].lock);
		n += l->sh[i].nb * sizeof(struct bucket);
		pthread_mutex_unlock(&l->sh[i].lock);
	}
	return n;
}

size_t moat_limit_store_local_max_bytes(size_t max_keys)
{
	unsigned n = shards_for(max_keys);
	size_t bytes = sizeof(struct local) + n * sizeof(struct shard);

	for (unsigned i = 0; i < n; i++)
		bytes += buckets_for(max_keys / n + (i < max_keys % n)) * sizeof(struct bucket);
	return bytes;
}

uint64_t moat_limit_store_local_evictions(struct moat_limit_store *s)
{
	struct local *l = s->self;
	uint64_t n = 0;

	if (s->ops != &local_ops)
		return 0;
	for (unsigned i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->sh[i].lock);
		n += l->sh[i].evictions;
		pthread_mutex_unlock(&l->sh[i].lock);
	}
	return n;
}
