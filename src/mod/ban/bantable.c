/*
 * bantable.c - automatic bans by client address (see bantable.h).
 *
 * Layout: up to 64 shards picked by a keyed hash (SipHash-1-3) of the
 * address. A shard holds an array of entries (growing by doubling up to
 * its share of max_entries), hash chains through them, and three lists
 * threaded through the same entries by index: free, counting (in order of
 * last activity: the head is dropped first when the shard is full) and
 * banned. Every field of a shard is guarded by its mutex.
 *
 * Ends of bans are retired lazily: the table keeps the earliest end among
 * the bans still counted (next_end, per shard and overall); the first
 * call that sees a now past it walks the banned lists of the shards that
 * are due, moves the ended bans to the counting list and lowers the
 * active count. One thread retires at a time; the others go on (an ended
 * ban still fails the until > now test of a lookup).
 */
#include "core/hash.h"
#include "mod/ban/bantable.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/errors.h"

#define SHARDS_MAX  64u
#define SHARD_MIN   16u       /* fewer shards when a share would hold fewer addresses */
#define CAP_MIN     16u       /* a shard's first array */
#define NIL         UINT32_MAX

enum { FREE, COUNTING, BANNED };

struct entry {
	unsigned char addr[16];
	uint64_t window_start;    /* ms: first offense counted in the window */
	uint64_t until;           /* ms: end of the last ban; 0 none */
	uint32_t prev, next;      /* on the list of its state */
	uint32_t hnext;           /* hash chain */
	unsigned count;           /* offenses in the window */
	unsigned bans;            /* automatic bans so far (repeat count) */
	unsigned reason;
	unsigned char state;
};

struct list {
	uint32_t head, tail;
};

struct bshard {
	_Alignas(64) pthread_mutex_t lock;
	struct entry *e;          /* [cap]; [0, used) have been handed out */
	uint32_t *chain;          /* [nchain] heads, a power of two >= cap */
	uint32_t cap, used, share, nchain;
	struct list free, counting, banned;
	atomic_uint_fast64_t next_end; /* earliest until on the banned list, or
					* earlier; UINT64_MAX none. Written under
					* the lock, read by the retirer without */
};

struct moat_bans {
	atomic_size_t active;          /* entries on banned lists */
	atomic_uint_fast64_t next_end; /* <= every shard's next_end */
	atomic_flag retiring;
	uint64_t k0, k1;               /* hash key */
	unsigned nshards;              /* a power of two */
	struct bshard *sh;
};

/* ---- addresses ----------------------------------------------------------- */

void moat_ban_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		out[10] = 0xff;
		out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	}
}

static uint64_t addr_hash(const struct moat_bans *b, const unsigned char a[16])
{
	return moat_siphash13(b->k0, b->k1, a, 16);
}

/* ---- one shard (its lock held) ------------------------------------------ */

static void list_del(struct bshard *sh, struct list *l, uint32_t i)
{
	struct entry *e = &sh->e[i];

	if (e->prev == NIL)
		l->head = e->next;
	else
		sh->e[e->prev].next = e->next;
	if (e->next == NIL)
		l->tail = e->prev;
	else
		sh->e[e->next].prev = e->prev;
}

static void list_add_tail(struct bshard *sh, struct list *l, uint32_t i)
{
	struct entry *e = &sh->e[i];

	e->next = NIL;
	e->prev = l->tail;
	if (l->tail == NIL)
		l->head = i;
	else
		sh->e[l->tail].next = i;
	l->tail = i;
}

static struct list *list_of(struct bshard *sh, const struct entry *e)
{
	return e->state == BANNED ? &sh->banned : e->state == COUNTING ? &sh->counting : &sh->free;
}

static void set_state(struct bshard *sh, uint32_t i, unsigned char state)
{
	list_del(sh, list_of(sh, &sh->e[i]), i);
	sh->e[i].state = state;
	list_add_tail(sh, list_of(sh, &sh->e[i]), i);
}

static uint32_t *chain_of(struct bshard *sh, uint64_t h)
{
	return &sh->chain[(h >> 32) & (sh->nchain - 1)];
}

static uint32_t lookup(struct bshard *sh, uint64_t h, const unsigned char a[16])
{
	for (uint32_t i = *chain_of(sh, h); i != NIL; i = sh->e[i].hnext)
		if (memcmp(sh->e[i].addr, a, 16) == 0)
			return i;
	return NIL;
}

static void unchain(struct moat_bans *b, struct bshard *sh, uint32_t i)
{
	uint32_t *pp = chain_of(sh, addr_hash(b, sh->e[i].addr));

	while (*pp != i)
		pp = &sh->e[*pp].hnext;
	*pp = sh->e[i].hnext;
}

/* Doubles the entry array (up to the share) and rebuilds the chains.
 * Returns 0 or -ENOMEM (the shard is left as it was). */
static int grow(struct moat_bans *b, struct bshard *sh)
{
	uint32_t cap = sh->cap > sh->share / 2 ? sh->share : sh->cap * 2;
	uint32_t nchain = sh->nchain;
	struct entry *e;
	uint32_t *chain;

	while (nchain < cap)
		nchain *= 2;
	e = realloc(sh->e, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	sh->e = e;
	sh->cap = cap;
	if (nchain != sh->nchain) {
		chain = malloc((size_t)nchain * sizeof(*chain));
		if (!chain)
			return 0; /* the entries grew; the chains just stay longer */
		free(sh->chain);
		sh->chain = chain;
		sh->nchain = nchain;
		for (uint32_t i = 0; i < nchain; i++)
			chain[i] = NIL;
		for (uint32_t i = 0; i < sh->used; i++) {
			if (sh->e[i].state != FREE) {
				uint32_t *head = chain_of(sh, addr_hash(b, sh->e[i].addr));

				sh->e[i].hnext = *head;
				*head = i;
			}
		}
	}
	return 0;
}

/* A new COUNTING entry for a, with nothing counted: a free one, a new
 * one, or the least recently active counting one, dropped. NIL when the
 * shard is full of bans or out of memory. */
static uint32_t insert(struct moat_bans *b, struct bshard *sh, uint64_t h,
		       const unsigned char a[16])
{
	uint32_t i;
	uint32_t *head;

	if (sh->free.head != NIL) {
		i = sh->free.head;
		set_state(sh, i, COUNTING);
	} else if (sh->used < sh->cap || (sh->cap < sh->share && grow(b, sh) == 0)) {
		i = sh->used++;
		sh->e[i].state = COUNTING;
		list_add_tail(sh, &sh->counting, i);
	} else if (sh->counting.head != NIL) {
		i = sh->counting.head;
		unchain(b, sh, i);
		list_del(sh, &sh->counting, i);
		list_add_tail(sh, &sh->counting, i);
	} else {
		return NIL;
	}
	memcpy(sh->e[i].addr, a, 16);
	sh->e[i].window_start = 0;
	sh->e[i].until = 0;
	sh->e[i].count = 0;
	sh->e[i].bans = 0;
	sh->e[i].reason = 0;
	head = chain_of(sh, h);
	sh->e[i].hnext = *head;
	*head = i;
	return i;
}

/* Takes entry i off the banned list (its ban ended or was lifted). */
static void unban(struct moat_bans *b, struct bshard *sh, uint32_t i)
{
	set_state(sh, i, COUNTING);
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_relaxed);
}

static void lower(atomic_uint_fast64_t *x, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(x, memory_order_relaxed);

	/* seq_cst (bans are rare): see retire() */
	while (v < cur && !atomic_compare_exchange_weak(x, &cur, v))
		;
}

/* Puts entry i on the banned list until `until`, or moves its end.
 * The caller lowers b->next_end once the lock is released. */
static void ban(struct moat_bans *b, struct bshard *sh, uint32_t i, uint64_t until)
{
	if (sh->e[i].state != BANNED) {
		set_state(sh, i, BANNED);
		atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
	}
	sh->e[i].until = until;
	lower(&sh->next_end, until);
}

/* ---- retiring ended bans ------------------------------------------------- */

static void retire_shard(struct moat_bans *b, struct bshard *sh, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint32_t i = sh->banned.head;

	while (i != NIL) {
		uint32_t n = sh->e[i].next;

		if (sh->e[i].until <= now)
			unban(b, sh, i);
		else if (sh->e[i].until < next)
			next = sh->e[i].until;
		i = n;
	}
	atomic_store_explicit(&sh->next_end, next, memory_order_relaxed);
}

static void retire(struct moat_bans *b, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (now < atomic_load_explicit(&b->next_end, memory_order_relaxed))
		return;
	if (atomic_flag_test_and_set_explicit(&b->retiring, memory_order_acquire))
		return;
	for (unsigned s = 0; s < b->nshards; s++) {
		struct bshard *sh = &b->sh[s];

		if (now >= atomic_load_explicit(&sh->next_end, memory_order_relaxed)) {
			pthread_mutex_lock(&sh->lock);
			retire_shard(b, sh, now);
			pthread_mutex_unlock(&sh->lock);
		}
		if (atomic_load_explicit(&sh->next_end, memory_order_relaxed) < next)
			next = atomic_load_explicit(&sh->next_end, memory_order_relaxed);
	}
	/* A ban made meanwhile in a shard already passed may have lowered
	 * b->next_end just before this raises it again. The exchange reads
	 * that lowering (seq_cst), so the shard's own next_end, written
	 * before it, is visible to the second pass below. */
	atomic_exchange(&b->next_end, next);
	for (unsigned s = 0; s < b->nshards; s++)
		lower(&b->next_end, atomic_load_explicit(&b->sh[s].next_end, memory_order_relaxed));
	atomic_flag_clear_explicit(&b->retiring, memory_order_release);
}

/* ---- the API ------------------------------------------------------------ */

static struct bshard *shard_of(struct moat_bans *b, uint64_t h)
{
	return &b->sh[h & (b->nshards - 1)];
}

static uint64_t sat_add(uint64_t a, uint64_t x)
{
	return a > UINT64_MAX - x ? UINT64_MAX : a + x;
}

/* The length of ban number `bans` + 1: duration * 2^bans, capped. */
static uint64_t ban_length(const struct moat_ban_policy *p, unsigned bans)
{
	uint64_t d = p->duration_ms ? p->duration_ms : 1;
	uint64_t max = p->max_duration_ms > d ? p->max_duration_ms : d;

	for (unsigned n = 0; n < bans && d < max; n++)
		d = d > max / 2 ? max : d * 2;
	return d;
}

int moat_bans_offend(struct moat_bans *b, const struct moat_ban_policy *p,
		     const unsigned char addr[16], unsigned reason, uint64_t now_ms,
		     uint64_t *until_ms)
{
	uint64_t h = addr_hash(b, addr), until;
	struct bshard *sh = shard_of(b, h);
	unsigned threshold = p->threshold ? p->threshold : 1;
	uint64_t max = p->max_duration_ms > p->duration_ms ? p->max_duration_ms : p->duration_ms;
	struct entry *e;
	uint32_t i;

	*until_ms = 0;
	retire(b, now_ms);
	pthread_mutex_lock(&sh->lock);
	i = lookup(sh, h, addr);
	if (i == NIL)
		i = insert(b, sh, h, addr);
	if (i == NIL) {
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	e = &sh->e[i];
	if (e->state == BANNED) {
		if (e->until > now_ms) {
			*until_ms = e->until;
			pthread_mutex_unlock(&sh->lock);
			return 0;
		}
		unban(b, sh, i);
	}
	/* The repeat count lasts max_duration past the end of the last ban. */
	if (e->bans && now_ms >= e->until && now_ms - e->until >= max)
		e->bans = 0;
	if (e->count == 0 ||
	    (p->window_ms && now_ms >= e->window_start && now_ms - e->window_start >= p->window_ms)) {
		e->count = 0;
		e->window_start = now_ms;
	}
	e->count++;
	e->reason = reason;
	if (e->count < threshold) {
		set_state(sh, i, COUNTING); /* to the tail: most recently active */
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	until = sat_add(now_ms, ban_length(p, e->bans));
	e->count = 0;
	if (e->bans < UINT32_MAX)
		e->bans++;
	ban(b, sh, i, until);
	pthread_mutex_unlock(&sh->lock);
	lower(&b->next_end, until);
	*until_ms = until;
	return 1;
}

int moat_bans_check(struct moat_bans *b, const unsigned char addr[16], uint64_t now_ms)
{
	uint64_t h;
	struct bshard *sh;
	uint32_t i;
	int banned;

	if (atomic_load_explicit(&b->active, memory_order_relaxed) == 0)
		return 0;
	retire(b, now_ms);
	if (atomic_load_explicit(&b->active, memory_order_relaxed) == 0)
		return 0;
	h = addr_hash(b, addr);
	sh = shard_of(b, h);
	pthread_mutex_lock(&sh->lock);
	i = lookup(sh, h, addr);
	banned = i != NIL && sh->e[i].state == BANNED && sh->e[i].until > now_ms;
	pthread_mutex_unlock(&sh->lock);
	return banned;
}

int moat_bans_add(struct moat_bans *b, const unsigned char addr[16], uint64_t now_ms,
		  uint64_t duration_ms, unsigned reason)
{
	uint64_t h = addr_hash(b, addr), until = sat_add(now_ms, duration_ms);
	struct bshard *sh = shard_of(b, h);
	uint32_t i;

	if (duration_ms == 0)
		return -EINVAL;
	retire(b, now_ms);
	pthread_mutex_lock(&sh->lock);
	i = lookup(sh, h, addr);
	if (i == NIL)
		i = insert(b, sh, h, addr);
	if (i == NIL) {
		int full = sh->cap >= sh->share;

		pthread_mutex_unlock(&sh->lock);
		return full ? -ENOSPC : -ENOMEM;
	}
	sh->e[i].reason = reason;
	sh->e[i].count = 0;
	ban(b, sh, i, until);
	pthread_mutex_unlock(&sh->lock);
	lower(&b->next_end, until);
	return MOAT_OK;
}

int moat_bans_lift(struct moat_bans *b, const unsigned char addr[16])
{
	uint64_t h = addr_hash(b, addr);
	struct bshard *sh = shard_of(b, h);
	uint32_t i;
	int was = 0;

	pthread_mutex_lock(&sh->lock);
	i = lookup(sh, h, addr);
	if (i != NIL) {
		if (sh->e[i].state == BANNED) {
			was = 1;
			unban(b, sh, i);
		}
		unchain(b, sh, i);
		set_state(sh, i, FREE);
	}
	pthread_mutex_unlock(&sh->lock);
	return was;
}

size_t moat_bans_list(struct moat_bans *b, uint64_t now_ms,
		      void (*cb)(void *ctx, const unsigned char addr[16], uint64_t until_ms,
				 unsigned count, unsigned reason),
		      void *ctx)
{
	size_t n = 0;

	retire(b, now_ms);
	for (unsigned s = 0; s < b->nshards; s++) {
		struct bshard *sh = &b->sh[s];

		pthread_mutex_lock(&sh->lock);
		for (uint32_t i = sh->banned.head; i != NIL; i = sh->e[i].next) {
			const struct entry *e = &sh->e[i];

			if (e->until > now_ms) {
				cb(ctx, e->addr, e->until, e->bans, e->reason);
				n++;
			}
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return n;
}

size_t moat_bans_active(const struct moat_bans *b)
{
	return atomic_load_explicit(&b->active, memory_order_relaxed);
}

/* ---- life ---------------------------------------------------------------- */

static unsigned shards_for(size_t max_entries)
{
	unsigned n = SHARDS_MAX;

	while (n > 1 && max_entries / n < SHARD_MIN)
		n /= 2;
	return n;
}

static void shard_init(struct bshard *sh, uint32_t share)
{
	sh->share = share;
	sh->cap = 0;
	sh->used = 0;
	sh->e = NULL;
	sh->chain = NULL;
	sh->nchain = 0;
	sh->free.head = sh->free.tail = NIL;
	sh->counting = sh->free;
	sh->banned = sh->free;
	atomic_init(&sh->next_end, UINT64_MAX);
}

struct moat_bans *moat_bans_new(size_t max_entries)
{
	struct moat_bans *b;
	unsigned n;
	uint64_t key[2];

	if (max_entries == 0 || max_entries > ((size_t)1 << 30) * SHARDS_MAX)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	n = shards_for(max_entries);
	b->sh = aligned_alloc(64, n * sizeof(*b->sh));
	if (!b->sh) {
		free(b);
		return NULL;
	}
	/* Without randomness the hash is still a good spread, just one an
	 * attacker could compute: mix in what differs between runs. */
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		key[0] = (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ull;
		key[1] = (uint64_t)(uintptr_t)&key ^ ((uint64_t)getpid() << 32);
	}
	b->k0 = key[0];
	b->k1 = key[1];
	atomic_init(&b->active, 0);
	atomic_init(&b->next_end, UINT64_MAX);
	atomic_flag_clear(&b->retiring);
	b->nshards = n;
	for (unsigned s = 0; s < n; s++) {
		struct bshard *sh = &b->sh[s];
		uint32_t share = (uint32_t)(max_entries / n + (s < max_entries % n));

		shard_init(sh, share);
		pthread_mutex_init(&sh->lock, NULL);
		sh->nchain = 1;
		while (sh->nchain < (share < CAP_MIN ? share : CAP_MIN))
			sh->nchain *= 2;
		sh->chain = malloc(sh->nchain * sizeof(*sh->chain));
		sh->cap = share < CAP_MIN ? share : CAP_MIN;
		sh->e = malloc(sh->cap * sizeof(*sh->e));
		if (!sh->chain || !sh->e) {
			b->nshards = s + 1;
			moat_bans_free(b);
			return NULL;
		}
		for (uint32_t i = 0; i < sh->nchain; i++)
			sh->chain[i] = NIL;
	}
	return b;
}

void moat_bans_free(struct moat_bans *b)
{
	if (!b)
		return;
	for (unsigned s = 0; s < b->nshards; s++) {
		pthread_mutex_destroy(&b->sh[s].lock);
		free(b->sh[s].e);
		free(b->sh[s].chain);
	}
	free(b->sh);
	free(b);
}
