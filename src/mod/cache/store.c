/*
 * store.c - the cache's object store (store.h): a sharded index of
 * reference-counted objects, a memory budget kept least recently used
 * first, the fill locks of request coalescing, and the disk tier (disk.h)
 * behind it.
 *
 * Layout. 32 shards chosen by the low bits of the key's SipHash (a seed
 * drawn once per process); each shard has a mutex, a chained hash table of
 * entries (one per primary key: full keys are compared, never the hash
 * alone), and two LRU lists: `mem` holds the objects whose body is in
 * memory (those are charged to the memory budget), `dsk` the objects that
 * have a file (queued or written). An entry lists its variants newest
 * first and carries the fill lock (token, time) and the hit-for-miss
 * deadline; an entry with no variant, no lock and no deadline is freed.
 *
 *   object states (in the index)        memory   disk file
 *     in memory only                    charged  -
 *     in memory and on disk             charged  disk_id
 *     disk-only stand-in (body NULL)    -        disk_id
 *
 * Ownership. The index holds one reference on every object it lists, the
 * disk writer one on every object whose write is queued, each reader one.
 * An object that leaves the index (replaced, evicted, purged) is freed at
 * its last put, so readers keep a body they are sending. Objects are
 * immutable once inserted; the fields store.c changes later (entry,
 * disk_id, on_disk and the links) are only touched under the shard lock.
 * No function holds two shard locks at once, and none calls into the disk
 * store while holding one (the writer's callback takes the shard lock).
 */
#include "mod/cache/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/hash.h"
#include "http/cachecontrol.h"
#include "mod/cache/disk.h"

#define NSHARDS      32u
#define SHARD_BITS   5u
#define BUCKETS_MIN  64u
#define HDR_STACK    128u
#define SWEEP_STEP   2u    /* buckets examined for dead entries per lock / unlock */
#define VKEY_SLOTS   4u    /* distinct Vary strings whose request key find() remembers */
#define APPEND_MIN   4096u /* first allocation of a body of unknown length */

struct link {
	struct link *prev, *next;
};

/* An object with store.c's bookkeeping around it; struct moat_cache_obj
 * comes first so the public pointer converts back. The strings (key,
 * vkey, head, tags, each NUL-terminated) follow in the same allocation. */
struct sobj {
	struct moat_cache_obj o;
	struct moat_cache_store *s;
	struct sobj *vnext;        /* entry's variants; the dead list once unindexed */
	struct link mem, dsk;      /* shard LRU lists (self-linked when not on one) */
	char *vary_own;            /* joined Vary of several field lines, or NULL */
	uint64_t dsize;            /* bytes charged to the disk budget while disk_id != 0 */
	uint64_t rm_id;            /* file to remove once unlocked (dead list) */
	int wstate;                /* disk write: 0 queued / none, 1 written, 2 failed */
	struct moat_cache_disk_rec rec; /* what the writer reads (lives with the object) */
};

struct moat_cache_entry {
	struct moat_cache_entry *next; /* bucket chain */
	uint64_t hash;
	struct sobj *vars;             /* newest first */
	int locked;
	uint64_t lock_token, lock_time;
	uint64_t hfm_until;            /* lock() answers -1 until then; 0: none */
	size_t key_len;
	char key[];
};

struct shard {
	pthread_mutex_t mu;
	struct moat_cache_entry **b;
	size_t nb, n;
	struct link mem, dsk;      /* sentinels: next is the most recently used */
	size_t sweep;
};

struct moat_cache_store {
	struct shard sh[NSHARDS];
	_Atomic uint64_t memory, max_object, disk_size;
	uint64_t hfm_ms, lock_ms;
	struct moat_cache_disk *disk;
	_Atomic uint64_t mem_bytes, mem_objects, disk_bytes, disk_objects;
	_Atomic uint64_t evictions, inserts, disk_errors, tokens;
};

static char empty_body[1]; /* body of an empty object in memory (body NULL means on disk only) */

static struct sobj *SOBJ(struct moat_cache_obj *o)
{
	return (struct sobj *)(void *)o;
}

#define CONTAINER(p, field) ((struct sobj *)(void *)((char *)(p) - offsetof(struct sobj, field)))

/* ---- lists ---- */

static void list_init(struct link *l)
{
	l->prev = l->next = l;
}

static int list_on(const struct link *l)
{
	return l->next != l;
}

static void list_del(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	list_init(l);
}

static void list_push(struct link *head, struct link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

/* l takes old's place in its list (old leaves it). */
static void list_replace(struct link *old, struct link *l)
{
	l->prev = old->prev;
	l->next = old->next;
	l->prev->next = l;
	l->next->prev = l;
	list_init(old);
}

/* ---- head parsing ---- */

static const char *const vary_star = "*";

/* Parses head into r; with several Vary lines joins them into vbuf when
 * *vneed (their joined length) fits vcap, else leaves r->vary NULL.
 * Returns 0 or -1. */
void moat_cache_resp_from_h1(const struct moat_h1_head *h, struct moat_cache_resp *r, char *vbuf, size_t vcap,
			     size_t *vneed)
{
	const struct moat_h1_header *hv = h->headers;
	size_t nvary = 0, need = 0;
	int have_date = 0, have_exp = 0, have_lm = 0, have_age = 0;

	*vneed = 0;
	memset(r, 0, sizeof(*r));
	r->status = h->status;
	moat_cc_init(&r->cc);
	r->date = r->expires = r->last_modified = MOAT_CACHE_TIME_NONE;
	r->age = -1;
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *f = &hv[i];
		int64_t t;
		uint32_t secs;

		if (moat_h1_name_is(f, "cache-control", 13)) {
			(void)moat_cc_parse(f->value, f->value_len, &r->cc);
		} else if (!have_date && moat_h1_name_is(f, "date", 4)) {
			have_date = 1;
			r->date = moat_http_date_parse(f->value, f->value_len, &t) == 0 ? t : MOAT_CACHE_TIME_INVALID;
		} else if (!have_exp && moat_h1_name_is(f, "expires", 7)) {
			have_exp = 1;
			r->expires = moat_http_date_parse(f->value, f->value_len, &t) == 0 ? t : MOAT_CACHE_TIME_INVALID;
		} else if (!have_lm && moat_h1_name_is(f, "last-modified", 13)) {
			have_lm = 1;
			r->last_modified =
				moat_http_date_parse(f->value, f->value_len, &t) == 0 ? t : MOAT_CACHE_TIME_INVALID;
		} else if (!have_age && moat_h1_name_is(f, "age", 3)) {
			have_age = 1;
			r->age = moat_http_age_parse(f->value, f->value_len, &secs) == 0 ? (int64_t)secs : -1;
		} else if (r->etag == NULL && moat_h1_name_is(f, "etag", 4)) {
			r->etag = f->value;
			r->etag_len = f->value_len;
		} else if (moat_h1_name_is(f, "set-cookie", 10)) {
			r->has_set_cookie = 1;
		} else if (moat_h1_name_is(f, "vary", 4)) {
			if (nvary++ == 0) {
				r->vary = f->value;
				r->vary_len = f->value_len;
			}
			need += (nvary > 1) + f->value_len;
		}
	}
	if (nvary > 1) {
		*vneed = need;
		if (vbuf != NULL && need <= vcap) {
			size_t off = 0;

			for (size_t i = 0; i < h->nheaders; i++) {
				if (!moat_h1_name_is(&hv[i], "vary", 4))
					continue;
				if (off > 0)
					vbuf[off++] = ',';
				memcpy(vbuf + off, hv[i].value, hv[i].value_len);
				off += hv[i].value_len;
			}
			r->vary = vbuf;
			r->vary_len = off;
		} else {
			r->vary = NULL;
			r->vary_len = 0;
		}
	}
}

static int parse_head(const char *head, size_t head_len, struct moat_cache_resp *r, char *vbuf, size_t vcap,
		      size_t *vneed)
{
	struct moat_h1_header stack[HDR_STACK], *hv = stack;
	size_t cap = HDR_STACK, lines = 0;
	struct moat_h1_head h;
	struct moat_h1_limits lim;
	int rc;

	*vneed = 0;
	if (head == NULL || head_len == 0 || head_len > (size_t)0x7fffffff)
		return -1;
	for (size_t i = 0; i < head_len; i++)
		lines += head[i] == '\n';
	if (lines > HDR_STACK) {
		hv = malloc(lines * sizeof(*hv));
		if (hv == NULL)
			return -1;
		cap = lines;
	}
	memset(&h, 0, sizeof(h));
	h.headers = hv;
	h.header_cap = cap;
	lim.request_line_max = head_len;
	lim.header_size_max = head_len;
	lim.header_count_max = cap;
	rc = moat_h1_parse_response(head, head_len, &h, &lim, 0);
	if (rc >= 0 && (size_t)rc == head_len)
		moat_cache_resp_from_h1(&h, r, vbuf, vcap, vneed);
	if (hv != stack)
		free(hv);
	return rc >= 0 && (size_t)rc == head_len ? 0 : -1;
}

int moat_cache_parse_head(const char *head, size_t head_len, struct moat_cache_resp *r)
{
	static _Thread_local char vbuf[4096];
	size_t need;

	if (parse_head(head, head_len, r, vbuf, sizeof(vbuf), &need) != 0)
		return -1;
	if (need > sizeof(vbuf)) {
		r->vary = vary_star;
		r->vary_len = 1;
	}
	return 0;
}

/* ---- objects ---- */

/* The hash key: one per process (a store reopened on the same directory,
 * or a new store after a reload, spreads keys the same way). */
static uint64_t seed[2];
static int seed_ok;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	seed_ok = getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed);
}

static uint64_t key_hash(const struct moat_cache_store *s, const char *key, size_t key_len)
{
	(void)s;
	return moat_siphash13(seed[0], seed[1], key, key_len);
}

static struct shard *shard_of(struct moat_cache_store *s, uint64_t hash)
{
	return &s->sh[hash & (NSHARDS - 1)];
}

static void obj_free(struct sobj *x)
{
	if (x->o.body != empty_body)
		free(x->o.body);
	free(x->vary_own);
	free(x);
}

/* A new object (one reference) with copies of the strings and the head
 * parsed; no body. */
static struct sobj *obj_alloc(struct moat_cache_store *s, const char *key, size_t key_len, const char *vkey,
			      size_t vkey_len, const char *head, size_t head_len, const char *tags, size_t tags_len,
			      int64_t request_time, int64_t response_time)
{
	size_t total = sizeof(struct sobj) + key_len + vkey_len + head_len + tags_len + 4, need;
	struct sobj *x;
	char *p;

	if (key == NULL || (vkey == NULL && vkey_len) || (tags == NULL && tags_len) || head == NULL)
		return NULL;
	x = calloc(1, total);
	if (x == NULL)
		return NULL;
	x->s = s;
	list_init(&x->mem);
	list_init(&x->dsk);
	p = (char *)(x + 1);
	x->o.key = p;
	memcpy(p, key, key_len);
	x->o.key_len = key_len;
	p += key_len;
	*p++ = '\0';
	x->o.vkey = p;
	if (vkey_len)
		memcpy(p, vkey, vkey_len);
	x->o.vkey_len = vkey_len;
	p += vkey_len;
	*p++ = '\0';
	x->o.head = p;
	memcpy(p, head, head_len);
	x->o.head_len = head_len;
	p += head_len;
	*p++ = '\0';
	x->o.tags = p;
	if (tags_len)
		memcpy(p, tags, tags_len);
	x->o.tags_len = tags_len;
	p[tags_len] = '\0';
	if (parse_head(x->o.head, head_len, &x->o.resp, NULL, 0, &need) != 0) {
		free(x);
		return NULL;
	}
	if (need > 0) {
		x->vary_own = malloc(need);
		if (x->vary_own == NULL ||
		    parse_head(x->o.head, head_len, &x->o.resp, x->vary_own, need, &need) != 0) {
			free(x->vary_own);
			free(x);
			return NULL;
		}
		total += need;
	}
	x->o.resp.request_time = request_time;
	x->o.resp.response_time = response_time;
	x->o.hash = key_hash(s, key, key_len);
	x->o.size = total;
	atomic_init(&x->o.refs, 1);
	return x;
}

/* A copy of x's metadata (one reference, no body, body_len kept). */
static struct sobj *obj_clone_meta(struct sobj *x)
{
	struct sobj *c = obj_alloc(x->s, x->o.key, x->o.key_len, x->o.vkey, x->o.vkey_len, x->o.head, x->o.head_len,
				   x->o.tags, x->o.tags_len, x->o.resp.request_time, x->o.resp.response_time);

	if (c != NULL)
		c->o.body_len = x->o.body_len;
	return c;
}

struct moat_cache_obj *moat_cache_obj_new(struct moat_cache_store *s, const char *key, size_t key_len,
					  const char *vkey, size_t vkey_len, const char *head, size_t head_len,
					  const char *tags, size_t tags_len, int64_t request_time,
					  int64_t response_time, uint64_t body_hint)
{
	struct sobj *x;

	if (body_hint > atomic_load(&s->max_object))
		return NULL;
	x = obj_alloc(s, key, key_len, vkey, vkey_len, head, head_len, tags, tags_len, request_time,
		      response_time);
	if (x == NULL)
		return NULL;
	if (body_hint > 0) {
		if (body_hint > SIZE_MAX || (x->o.body = malloc((size_t)body_hint)) == NULL) {
			obj_free(x);
			return NULL;
		}
		x->o.body_cap = body_hint;
		x->o.size += body_hint;
	}
	return &x->o;
}

int moat_cache_obj_append(struct moat_cache_store *s, struct moat_cache_obj *o, const void *data, size_t n)
{
	uint64_t need, cap, max = atomic_load(&s->max_object), mem = atomic_load(&s->memory);
	char *nb;

	if (o->complete)
		return -1;
	if (n == 0)
		return 0;
	need = o->body_len + n;
	if (need < o->body_len || need > max || need > mem)
		return -1;
	if (need > o->body_cap) {
		cap = o->body_cap ? o->body_cap * 2 : APPEND_MIN;
		if (cap < need)
			cap = need;
		if (cap > max)
			cap = max;
		if (cap > SIZE_MAX)
			return -1;
		nb = realloc(o->body, (size_t)cap);
		if (nb == NULL)
			return -1;
		o->body = nb;
		o->size += cap - o->body_cap;
		o->body_cap = cap;
	}
	memcpy(o->body + o->body_len, data, n);
	o->body_len = need;
	return 0;
}

void moat_cache_obj_ref(struct moat_cache_obj *o)
{
	atomic_fetch_add(&o->refs, 1);
}

void moat_cache_obj_put(struct moat_cache_obj *o)
{
	if (o != NULL && atomic_fetch_sub(&o->refs, 1) == 1)
		obj_free(SOBJ(o));
}

/* ---- index (shard lock held) ---- */

static struct moat_cache_entry *entry_find(struct shard *sh, uint64_t hash, const char *key, size_t key_len)
{
	struct moat_cache_entry *e = sh->b[(hash >> SHARD_BITS) & (sh->nb - 1)];

	for (; e != NULL; e = e->next)
		if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			return e;
	return NULL;
}

static void table_grow(struct shard *sh)
{
	size_t nb = sh->nb * 2;
	struct moat_cache_entry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < sh->nb; i++) {
		struct moat_cache_entry *e = sh->b[i], *next;

		for (; e != NULL; e = next) {
			size_t j = (e->hash >> SHARD_BITS) & (nb - 1);

			next = e->next;
			e->next = b[j];
			b[j] = e;
		}
	}
	free(sh->b);
	sh->b = b;
	sh->nb = nb;
}

static struct moat_cache_entry *entry_get(struct shard *sh, uint64_t hash, const char *key, size_t key_len)
{
	struct moat_cache_entry *e = entry_find(sh, hash, key, key_len);
	size_t i;

	if (e != NULL)
		return e;
	e = calloc(1, sizeof(*e) + key_len + 1);
	if (e == NULL)
		return NULL;
	e->hash = hash;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	if (sh->n >= sh->nb)
		table_grow(sh);
	i = (hash >> SHARD_BITS) & (sh->nb - 1);
	e->next = sh->b[i];
	sh->b[i] = e;
	sh->n++;
	return e;
}

static void entry_unlink(struct shard *sh, struct moat_cache_entry *e)
{
	struct moat_cache_entry **pp = &sh->b[(e->hash >> SHARD_BITS) & (sh->nb - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	sh->n--;
	free(e);
}

/* Frees e when nothing is left in it that lock() could need. */
static void entry_drop_if_empty(struct shard *sh, struct moat_cache_entry *e)
{
	if (e->vars == NULL && !e->locked && e->hfm_until == 0)
		entry_unlink(sh, e);
}

/* on_disk is written under the shard lock; atomically, so that a caller
 * polling it (a test waiting for a write) reads it cleanly. */
static void set_on_disk(struct sobj *x, int v)
{
	__atomic_store_n(&x->o.on_disk, v, __ATOMIC_RELEASE);
}

static void mem_charge(struct moat_cache_store *s, struct shard *sh, struct sobj *x)
{
	list_push(&sh->mem, &x->mem);
	atomic_fetch_add(&s->mem_bytes, x->o.size);
	atomic_fetch_add(&s->mem_objects, 1);
}

static void mem_uncharge(struct moat_cache_store *s, struct sobj *x)
{
	if (!list_on(&x->mem))
		return;
	list_del(&x->mem);
	atomic_fetch_sub(&s->mem_bytes, x->o.size);
	atomic_fetch_sub(&s->mem_objects, 1);
}

static void disk_charge(struct moat_cache_store *s, struct shard *sh, struct sobj *x, uint64_t id, uint64_t dsize)
{
	x->o.disk_id = id;
	x->dsize = dsize;
	list_push(&sh->dsk, &x->dsk);
	atomic_fetch_add(&s->disk_bytes, dsize);
	atomic_fetch_add(&s->disk_objects, 1);
}

/* Forgets x's file in the accounting; returns its id (0: it had none). */
static uint64_t disk_uncharge(struct moat_cache_store *s, struct sobj *x)
{
	uint64_t id = x->o.disk_id;

	if (id == 0)
		return 0;
	list_del(&x->dsk);
	atomic_fetch_sub(&s->disk_bytes, x->dsize);
	atomic_fetch_sub(&s->disk_objects, 1);
	x->o.disk_id = 0;
	set_on_disk(x, 0);
	x->dsize = 0;
	return id;
}

/* Takes x out of its entry's variant list and both budgets; x goes on
 * *dead (with its file to remove) for reap() once the lock is released.
 * Does not free the entry. */
static void unindex(struct moat_cache_store *s, struct sobj *x, struct sobj **dead)
{
	struct moat_cache_entry *e = x->o.entry;
	struct sobj **pp = &e->vars;

	while (*pp != x)
		pp = &(*pp)->vnext;
	*pp = x->vnext;
	mem_uncharge(s, x);
	x->rm_id = disk_uncharge(s, x);
	x->o.entry = NULL;
	x->vnext = *dead;
	*dead = x;
}

/* new takes old's place in the variant list and the disk list (old keeps
 * no file); old goes on *dead without a file to remove. */
static void swap_in(struct moat_cache_store *s, struct sobj *old, struct sobj *new, struct sobj **dead)
{
	struct moat_cache_entry *e = old->o.entry;
	struct sobj **pp = &e->vars;

	while (*pp != old)
		pp = &(*pp)->vnext;
	new->vnext = old->vnext;
	*pp = new;
	new->o.entry = e;
	new->o.complete = 1;
	new->o.disk_id = old->o.disk_id;
	set_on_disk(new, 1);
	new->dsize = old->dsize;
	if (old->o.disk_id != 0)
		list_replace(&old->dsk, &new->dsk);
	old->o.disk_id = 0;
	set_on_disk(old, 0);
	old->dsize = 0;
	mem_uncharge(s, old);
	old->o.entry = NULL;
	old->rm_id = 0;
	old->vnext = *dead;
	*dead = old;
}

/* Removes the files of the dead and drops the index's references. */
static void reap(struct moat_cache_store *s, struct sobj *dead)
{
	struct sobj *next;

	for (; dead != NULL; dead = next) {
		next = dead->vnext;
		dead->vnext = NULL;
		if (dead->rm_id != 0 && s->disk != NULL)
			moat_cache_disk_remove(s->disk, dead->rm_id);
		dead->rm_id = 0;
		moat_cache_obj_put(&dead->o);
	}
}

/* ---- budgets ---- */

/* Evicts x from memory: a disk-only stand-in replaces it when its file
 * is written (and the copy can be made), else it leaves the index (and a
 * queued write is cancelled). */
static void evict_one(struct moat_cache_store *s, struct shard *sh, struct sobj *x, struct sobj **dead)
{
	struct moat_cache_entry *e = x->o.entry;
	struct sobj *st = NULL;

	atomic_fetch_add(&s->evictions, 1);
	if (x->o.disk_id != 0 && x->o.on_disk)
		st = obj_clone_meta(x);
	if (st != NULL) {
		swap_in(s, x, st, dead);
		return;
	}
	unindex(s, x, dead);
	entry_drop_if_empty(sh, e);
}

/* The object to evict from sh: the least recently used one, passing
 * over `keep` and, for a few steps, objects whose disk write is still
 * queued (they would leave no stand-in). NULL when there is none. */
static struct sobj *mem_victim(struct shard *sh, struct sobj *keep)
{
	struct sobj *first = NULL;
	int steps = 0;

	for (struct link *t = sh->mem.prev; t != &sh->mem && steps < 8; t = t->prev) {
		struct sobj *x = CONTAINER(t, mem);

		if (x == keep)
			continue;
		if (x->o.disk_id == 0 || x->o.on_disk)
			return x;
		if (first == NULL)
			first = x;
		steps++;
	}
	return first;
}

/* Brings memory under budget, taking the least recently used object of
 * each shard in turn, from `start` on; `keep` (the object just added or
 * loaded, which fits the budget by itself) is never taken. */
static void enforce_mem(struct moat_cache_store *s, unsigned start, struct sobj *keep)
{
	unsigned i = start, idle = 0;

	while (atomic_load(&s->mem_bytes) > atomic_load(&s->memory) && idle < NSHARDS) {
		struct shard *sh = &s->sh[i];
		struct sobj *dead = NULL, *x;

		i = (i + 1) % NSHARDS;
		pthread_mutex_lock(&sh->mu);
		x = mem_victim(sh, keep);
		if (x != NULL)
			evict_one(s, sh, x, &dead);
		pthread_mutex_unlock(&sh->mu);
		if (x == NULL) {
			idle++;
			continue;
		}
		idle = 0;
		reap(s, dead);
	}
}

/* Brings the disk under its budget, least recently used files first,
 * from shard `start` on; never `keep`'s file (the one just queued). */
static void enforce_disk(struct moat_cache_store *s, unsigned start, struct sobj *keep)
{
	unsigned i = start, idle = 0;

	while (atomic_load(&s->disk_bytes) > atomic_load(&s->disk_size) && idle < NSHARDS) {
		struct shard *sh = &s->sh[i];
		struct sobj *dead = NULL, *x = NULL;
		uint64_t id = 0;
		struct link *t;

		i = (i + 1) % NSHARDS;
		pthread_mutex_lock(&sh->mu);
		t = sh->dsk.prev;
		if (t != &sh->dsk && CONTAINER(t, dsk) == keep)
			t = t->prev;
		if (t != &sh->dsk) {
			x = CONTAINER(t, dsk);
			if (x->o.body == NULL) { /* a stand-in: nothing left of it */
				struct moat_cache_entry *e = x->o.entry;

				unindex(s, x, &dead);
				entry_drop_if_empty(sh, e);
			} else {
				id = disk_uncharge(s, x);
			}
		}
		pthread_mutex_unlock(&sh->mu);
		if (x == NULL) {
			idle++;
			continue;
		}
		idle = 0;
		if (id != 0)
			moat_cache_disk_remove(s->disk, id);
		reap(s, dead);
	}
}

/* ---- the disk writer ---- */

static void write_done(void *ctx, uint64_t id, int ok)
{
	struct sobj *x = ctx;
	struct moat_cache_store *s = x->s;
	struct shard *sh = shard_of(s, x->o.hash);

	int err = 0;

	pthread_mutex_lock(&sh->mu);
	x->wstate = ok ? 1 : 2;
	if (x->o.disk_id == id) {
		if (ok) {
			set_on_disk(x, 1);
		} else {
			(void)disk_uncharge(s, x);
			err = 1; /* not a write cancelled by a purge or an eviction */
		}
	}
	pthread_mutex_unlock(&sh->mu);
	if (err)
		atomic_fetch_add(&s->disk_errors, 1);
	moat_cache_obj_put(&x->o);
}

/* Queues x (just inserted) for the disk and charges the disk budget. */
static void disk_queue(struct moat_cache_store *s, struct sobj *x)
{
	struct shard *sh = shard_of(s, x->o.hash);
	uint64_t id, dsize, rm = 0;

	x->rec.key = x->o.key;
	x->rec.key_len = x->o.key_len;
	x->rec.vkey = x->o.vkey;
	x->rec.vkey_len = x->o.vkey_len;
	x->rec.head = x->o.head;
	x->rec.head_len = x->o.head_len;
	x->rec.tags = x->o.tags;
	x->rec.tags_len = x->o.tags_len;
	x->rec.request_time = x->o.resp.request_time;
	x->rec.response_time = x->o.resp.response_time;
	x->rec.body_len = x->o.body_len;
	dsize = moat_cache_disk_size(&x->rec);
	if (dsize > atomic_load(&s->disk_size))
		return;
	moat_cache_obj_ref(&x->o); /* the writer's */
	id = moat_cache_disk_write(s->disk, &x->rec, x->o.body, write_done, x);
	if (id == 0) {
		moat_cache_obj_put(&x->o);
		return;
	}
	pthread_mutex_lock(&sh->mu);
	if (x->wstate == 2) {
		/* failed already: no file */
	} else if (x->o.entry != NULL && x->o.body != NULL) {
		disk_charge(s, sh, x, id, dsize);
		set_on_disk(x, x->wstate == 1);
	} else {
		rm = id; /* replaced, purged or evicted meanwhile */
	}
	pthread_mutex_unlock(&sh->mu);
	if (rm != 0)
		moat_cache_disk_remove(s->disk, rm);
	enforce_disk(s, (unsigned)(x->o.hash & (NSHARDS - 1)), x);
}

/* ---- open / close ---- */

struct scan_ctx {
	struct moat_cache_store *s;
	struct sobj **v;
	size_t n, cap;
	int oom;
};

static int scan_cb(void *ctx, const struct moat_cache_disk_rec *r)
{
	struct scan_ctx *c = ctx;
	struct sobj *x;

	if (c->oom)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct sobj **v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL) {
			c->oom = 1;
			return 0;
		}
		c->v = v;
		c->cap = cap;
	}
	x = obj_alloc(c->s, r->key, r->key_len, r->vkey, r->vkey_len, r->head, r->head_len, r->tags, r->tags_len,
		      r->request_time, r->response_time);
	if (x == NULL)
		return -1; /* not a response head: never served */
	x->o.body_len = r->body_len;
	x->o.disk_id = r->id;
	x->dsize = r->file_size;
	x->o.complete = 1;
	c->v[c->n++] = x;
	return 0;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = (*(struct sobj *const *)a)->o.disk_id, y = (*(struct sobj *const *)b)->o.disk_id;

	return x < y ? -1 : x > y;
}

/* Indexes the stand-ins found by the scan, oldest first (so the newest
 * of a key is its first variant, and a duplicate variant's newer file
 * wins). */
static void load_index(struct moat_cache_store *s, struct scan_ctx *c)
{
	if (c->n == 0)
		return;
	qsort(c->v, c->n, sizeof(*c->v), by_id);
	for (size_t i = 0; i < c->n; i++) {
		struct sobj *x = c->v[i], *dead = NULL, *p, *next;
		struct shard *sh = shard_of(s, x->o.hash);
		struct moat_cache_entry *e;
		uint64_t id = x->o.disk_id, dsize = x->dsize;

		x->o.disk_id = 0;
		pthread_mutex_lock(&sh->mu);
		e = entry_get(sh, x->o.hash, x->o.key, x->o.key_len);
		if (e != NULL) {
			for (p = e->vars; p != NULL; p = next) {
				next = p->vnext;
				if (p->o.vkey_len == x->o.vkey_len && memcmp(p->o.vkey, x->o.vkey, x->o.vkey_len) == 0)
					unindex(s, p, &dead);
			}
			x->vnext = e->vars;
			e->vars = x;
			x->o.entry = e;
			disk_charge(s, sh, x, id, dsize);
			set_on_disk(x, 1);
		}
		pthread_mutex_unlock(&sh->mu);
		if (e == NULL) {
			x->rm_id = id;
			x->vnext = dead;
			dead = x;
		}
		reap(s, dead);
	}
}

static char *why_dup(const char *m)
{
	return strdup(m);
}

struct moat_cache_store *moat_cache_store_open(const struct moat_cache_store_cfg *cfg, char **why)
{
	struct moat_cache_store *s;
	unsigned i;

	*why = NULL;
	pthread_once(&seed_once, seed_init);
	if (!seed_ok) {
		*why = why_dup("cache store: no random seed (getrandom failed)");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*why = why_dup("cache store: out of memory");
		return NULL;
	}
	atomic_init(&s->memory, cfg->memory);
	atomic_init(&s->max_object, cfg->max_object);
	atomic_init(&s->disk_size, cfg->disk_size);
	s->hfm_ms = cfg->hfm_ms;
	s->lock_ms = cfg->lock_ms;
	for (i = 0; i < NSHARDS; i++) {
		struct shard *sh = &s->sh[i];

		pthread_mutex_init(&sh->mu, NULL);
		list_init(&sh->mem);
		list_init(&sh->dsk);
		sh->nb = BUCKETS_MIN;
		sh->b = calloc(sh->nb, sizeof(*sh->b));
		if (sh->b == NULL) {
			while (++i < NSHARDS)
				pthread_mutex_init(&s->sh[i].mu, NULL);
			moat_cache_store_close(s);
			*why = why_dup("cache store: out of memory");
			return NULL;
		}
	}
	if (cfg->disk != NULL && cfg->disk[0] != '\0') {
		struct scan_ctx c = { .s = s };

		s->disk = moat_cache_disk_open(cfg->disk, why);
		if (s->disk == NULL) {
			if (*why == NULL)
				*why = why_dup("cache store: cannot open the disk directory");
			moat_cache_store_close(s);
			return NULL;
		}
		(void)moat_cache_disk_scan(s->disk, scan_cb, &c);
		load_index(s, &c);
		free(c.v);
		enforce_disk(s, 0, NULL);
	}
	return s;
}

void moat_cache_store_close(struct moat_cache_store *s)
{
	if (s == NULL)
		return;
	if (s->disk != NULL)
		moat_cache_disk_close(s->disk); /* its callbacks drop the writer's references */
	s->disk = NULL;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *sh = &s->sh[i];

		for (size_t j = 0; sh->b != NULL && j < sh->nb; j++) {
			struct moat_cache_entry *e = sh->b[j], *en;

			for (; e != NULL; e = en) {
				struct sobj *x = e->vars, *xn;

				en = e->next;
				for (; x != NULL; x = xn) {
					xn = x->vnext;
					x->o.entry = NULL;
					moat_cache_obj_put(&x->o);
				}
				free(e);
			}
		}
		free(sh->b);
		pthread_mutex_destroy(&sh->mu);
	}
	free(s);
}

void moat_cache_store_resize(struct moat_cache_store *s, uint64_t memory, uint64_t max_object)
{
	atomic_store(&s->memory, memory);
	atomic_store(&s->max_object, max_object);
	enforce_mem(s, 0, NULL);
}

/* ---- find ---- */

/* The newest variant of e whose vkey is the request's key for its Vary. */
static struct sobj *match(struct moat_cache_entry *e, const struct moat_h1_header *hdrs, size_t nhdrs)
{
	char stackbuf[VKEY_SLOTS * 512], *buf = stackbuf;
	struct {
		const char *vary;
		size_t len;
		int klen;
	} memo[VKEY_SLOTS];
	size_t cap = 512, nm = 0;
	struct sobj *x, *found = NULL;

	for (x = e->vars; x != NULL; x = x->vnext)
		if (x->o.vkey_len + 1 > cap)
			cap = x->o.vkey_len + 1;
	if (cap > 512) {
		buf = malloc(VKEY_SLOTS * cap);
		if (buf == NULL)
			return NULL;
	}
	for (x = e->vars; x != NULL && found == NULL; x = x->vnext) {
		const char *vary = x->o.resp.vary ? x->o.resp.vary : "";
		size_t vlen = x->o.resp.vary ? x->o.resp.vary_len : 0, i;
		int klen = -1;

		for (i = 0; i < nm; i++)
			if (memo[i].len == vlen && memcmp(memo[i].vary, vary, vlen) == 0)
				break;
		if (i == nm) {
			if (nm < VKEY_SLOTS)
				nm++;
			i = nm - 1;
			memo[i].vary = vary;
			memo[i].len = vlen;
			memo[i].klen = moat_cache_vary_key(vary, vlen, hdrs, nhdrs, buf + i * cap, cap);
		}
		klen = memo[i].klen;
		if (klen >= 0 && (size_t)klen == x->o.vkey_len && memcmp(buf + i * cap, x->o.vkey, x->o.vkey_len) == 0)
			found = x;
	}
	if (buf != stackbuf)
		free(buf);
	return found;
}

/* Loads the body of stand-in st (file id; the caller holds a reference)
 * and puts an object with it in st's place. Returns it with a reference
 * (not indexed when it is larger than the memory budget), or NULL: the
 * read failed (st is dropped: a corrupt body is never served), memory is
 * short, or, with *retry set, st left the index meanwhile (look again). */
static struct sobj *load(struct moat_cache_store *s, struct shard *sh, struct sobj *st, uint64_t id, int *retry)
{
	uint64_t len = st->o.body_len;
	struct sobj *n, *dead = NULL;
	char *buf;
	int rc, indexed = 0;

	*retry = 0;
	if (len > SIZE_MAX - 1)
		return NULL;
	buf = malloc(len ? (size_t)len : 1);
	if (buf == NULL)
		return NULL;
	rc = moat_cache_disk_read_body(s->disk, id, buf, len);
	n = rc == 0 ? obj_clone_meta(st) : NULL;
	if (n != NULL) {
		if (len == 0) {
			free(buf);
			buf = empty_body;
		}
		n->o.body = buf;
		n->o.body_cap = len;
		n->o.size += len;
		n->o.complete = 1;
		set_on_disk(n, 1);
		buf = NULL;
	}
	pthread_mutex_lock(&sh->mu);
	if (st->o.entry == NULL || st->o.disk_id != id) {
		*retry = 1; /* loaded, replaced or purged by another thread */
	} else if (rc != 0) {
		struct moat_cache_entry *e = st->o.entry;

		unindex(s, st, &dead); /* its rm_id also cancels a write still queued */
		entry_drop_if_empty(sh, e);
		atomic_fetch_add(&s->disk_errors, 1);
	} else if (n != NULL && n->o.size <= atomic_load(&s->memory)) {
		indexed = 1;
		swap_in(s, st, n, &dead);
		moat_cache_obj_ref(&n->o); /* the index's */
		mem_charge(s, sh, n);
		list_del(&n->dsk);
		list_push(&sh->dsk, &n->dsk);
	}
	/* else: too large for memory (served once, not kept) or no memory */
	pthread_mutex_unlock(&sh->mu);
	if (buf != empty_body)
		free(buf);
	reap(s, dead);
	if (*retry && n != NULL) {
		moat_cache_obj_put(&n->o);
		n = NULL;
	}
	if (indexed)
		enforce_mem(s, (unsigned)(n->o.hash & (NSHARDS - 1)), n);
	return n;
}

struct moat_cache_obj *moat_cache_find(struct moat_cache_store *s, const char *key, size_t key_len,
				       const struct moat_h1_header *hdrs, size_t nhdrs, int *uri_hit)
{
	uint64_t hash = key_hash(s, key, key_len);
	struct shard *sh = shard_of(s, hash);

	if (uri_hit != NULL)
		*uri_hit = 0;
	for (int attempt = 0; attempt < 4; attempt++) {
		struct moat_cache_entry *e;
		struct sobj *x, *n;
		uint64_t id;
		int retry = 0;

		pthread_mutex_lock(&sh->mu);
		e = entry_find(sh, hash, key, key_len);
		if (e == NULL || e->vars == NULL) {
			pthread_mutex_unlock(&sh->mu);
			return NULL;
		}
		x = match(e, hdrs, nhdrs);
		if (x == NULL) {
			pthread_mutex_unlock(&sh->mu);
			if (uri_hit != NULL)
				*uri_hit = 1;
			return NULL;
		}
		moat_cache_obj_ref(&x->o);
		if (x->o.body != NULL) {
			list_del(&x->mem);
			list_push(&sh->mem, &x->mem);
			if (x->o.disk_id != 0) {
				list_del(&x->dsk);
				list_push(&sh->dsk, &x->dsk);
			}
			pthread_mutex_unlock(&sh->mu);
			return &x->o;
		}
		id = x->o.disk_id;
		pthread_mutex_unlock(&sh->mu);
		n = s->disk != NULL ? load(s, sh, x, id, &retry) : NULL;
		moat_cache_obj_put(&x->o);
		if (n != NULL || !retry)
			return n ? &n->o : NULL;
	}
	return NULL;
}

/* ---- insert ---- */

int moat_cache_insert(struct moat_cache_store *s, struct moat_cache_obj *o)
{
	struct sobj *x = SOBJ(o), *dead = NULL, *p, *next;
	struct shard *sh = shard_of(s, o->hash);
	struct moat_cache_entry *e;

	if (o->complete || o->entry != NULL)
		return -1;
	if (o->body == NULL) {
		o->body = empty_body;
	} else if (o->body_cap > o->body_len) {
		if (o->body_len == 0) {
			free(o->body);
			o->body = empty_body;
		} else {
			char *b = realloc(o->body, (size_t)o->body_len);

			if (b != NULL)
				o->body = b;
		}
		if (o->body == empty_body || o->body != NULL) {
			o->size -= o->body_cap - o->body_len;
			o->body_cap = o->body_len;
		}
	}
	if (o->size > atomic_load(&s->memory))
		return -1;
	pthread_mutex_lock(&sh->mu);
	e = entry_get(sh, o->hash, o->key, o->key_len);
	if (e == NULL) {
		pthread_mutex_unlock(&sh->mu);
		return -1;
	}
	for (p = e->vars; p != NULL; p = next) {
		next = p->vnext;
		if (p->o.vkey_len == o->vkey_len && memcmp(p->o.vkey, o->vkey, o->vkey_len) == 0)
			unindex(s, p, &dead);
	}
	o->complete = 1;
	o->entry = e;
	moat_cache_obj_ref(o); /* the index's */
	x->vnext = e->vars;
	e->vars = x;
	e->hfm_until = 0; /* cacheable after all */
	mem_charge(s, sh, x);
	atomic_fetch_add(&s->inserts, 1);
	pthread_mutex_unlock(&sh->mu);
	reap(s, dead);
	if (s->disk != NULL)
		disk_queue(s, x);
	enforce_mem(s, (unsigned)(o->hash & (NSHARDS - 1)), x);
	return 0;
}

/* ---- fill locks ---- */

static int lock_live(const struct moat_cache_store *s, const struct moat_cache_entry *e, uint64_t now)
{
	return e->locked && now - e->lock_time < s->lock_ms && now >= e->lock_time;
}

/* Frees a few entries that only held an expired lock or deadline. */
static void sweep(struct moat_cache_store *s, struct shard *sh, uint64_t now)
{
	for (unsigned k = 0; k < SWEEP_STEP; k++) {
		struct moat_cache_entry *e, *next;

		sh->sweep = (sh->sweep + 1) & (sh->nb - 1);
		for (e = sh->b[sh->sweep]; e != NULL; e = next) {
			next = e->next;
			if (e->vars != NULL || lock_live(s, e, now) || e->hfm_until > now)
				continue;
			e->locked = 0;
			e->hfm_until = 0;
			entry_unlink(sh, e);
		}
	}
}

int moat_cache_lock(struct moat_cache_store *s, const char *key, size_t key_len, uint64_t now_ms,
		    uint64_t *token)
{
	uint64_t hash = key_hash(s, key, key_len);
	struct shard *sh = shard_of(s, hash);
	struct moat_cache_entry *e;
	int rc;

	*token = 0;
	pthread_mutex_lock(&sh->mu);
	sweep(s, sh, now_ms);
	e = entry_get(sh, hash, key, key_len);
	if (e == NULL) {
		rc = -1; /* no memory: no coalescing either */
	} else if (e->hfm_until > now_ms) {
		rc = -1;
	} else if (lock_live(s, e, now_ms)) {
		e->hfm_until = 0;
		rc = 0;
	} else {
		e->hfm_until = 0;
		e->locked = 1;
		e->lock_time = now_ms;
		e->lock_token = atomic_fetch_add(&s->tokens, 1) + 1;
		*token = e->lock_token;
		rc = 1;
	}
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

void moat_cache_unlock(struct moat_cache_store *s, const char *key, size_t key_len, uint64_t token,
		       int uncacheable, uint64_t now_ms)
{
	uint64_t hash = key_hash(s, key, key_len);
	struct shard *sh = shard_of(s, hash);
	struct moat_cache_entry *e;

	pthread_mutex_lock(&sh->mu);
	sweep(s, sh, now_ms);
	e = uncacheable ? entry_get(sh, hash, key, key_len) : entry_find(sh, hash, key, key_len);
	if (e != NULL) {
		if (e->locked && e->lock_token == token)
			e->locked = 0;
		if (uncacheable && s->hfm_ms > 0)
			e->hfm_until = now_ms + s->hfm_ms;
		entry_drop_if_empty(sh, e);
	}
	pthread_mutex_unlock(&sh->mu);
}

/* ---- purge ---- */

size_t moat_cache_purge_key(struct moat_cache_store *s, const char *key, size_t key_len)
{
	uint64_t hash = key_hash(s, key, key_len);
	struct shard *sh = shard_of(s, hash);
	struct moat_cache_entry *e;
	struct sobj *dead = NULL;
	size_t n = 0;

	pthread_mutex_lock(&sh->mu);
	e = entry_find(sh, hash, key, key_len);
	if (e != NULL) {
		while (e->vars != NULL) {
			unindex(s, e->vars, &dead);
			n++;
		}
		entry_drop_if_empty(sh, e);
	}
	pthread_mutex_unlock(&sh->mu);
	reap(s, dead);
	return n;
}

static int has_tag(const struct sobj *x, const char *tag, size_t tag_len)
{
	const char *p = x->o.tags, *end = p + x->o.tags_len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len == tag_len && memcmp(p, tag, len) == 0)
			return 1;
		p += len + 1;
	}
	return 0;
}

/* Removes the objects of every shard that `tag` names (NULL: all). */
static size_t purge_where(struct moat_cache_store *s, const char *tag, size_t tag_len)
{
	size_t n = 0;

	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *sh = &s->sh[i];
		struct sobj *dead = NULL;

		pthread_mutex_lock(&sh->mu);
		for (size_t j = 0; j < sh->nb; j++) {
			struct moat_cache_entry *e = sh->b[j], *en;

			for (; e != NULL; e = en) {
				struct sobj *x = e->vars, *xn;

				en = e->next;
				for (; x != NULL; x = xn) {
					xn = x->vnext;
					if (tag == NULL || has_tag(x, tag, tag_len)) {
						unindex(s, x, &dead);
						n++;
					}
				}
				entry_drop_if_empty(sh, e);
			}
		}
		pthread_mutex_unlock(&sh->mu);
		reap(s, dead);
	}
	return n;
}

size_t moat_cache_purge_tag(struct moat_cache_store *s, const char *tag, size_t tag_len)
{
	if (tag_len == 0 || memchr(tag, '\n', tag_len) != NULL)
		return 0;
	return purge_where(s, tag, tag_len);
}

size_t moat_cache_purge_all(struct moat_cache_store *s)
{
	return purge_where(s, NULL, 0);
}

void moat_cache_store_stats(struct moat_cache_store *s, struct moat_cache_store_stats *st)
{
	st->objects = atomic_load(&s->mem_objects);
	st->bytes = atomic_load(&s->mem_bytes);
	st->disk_objects = atomic_load(&s->disk_objects);
	st->disk_bytes = atomic_load(&s->disk_bytes);
	st->evictions = atomic_load(&s->evictions);
	st->inserts = atomic_load(&s->inserts);
	st->disk_errors = atomic_load(&s->disk_errors);
}

unsigned moat_cache_store_shard(const struct moat_cache_store *s, const char *key, size_t key_len)
{
	return (unsigned)(key_hash(s, key, key_len) & (NSHARDS - 1));
}
