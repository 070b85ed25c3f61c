/*
 * conn_mod.c - the "conn" module: open connections per client address,
 * all workers together (limits.connections_per_ip).
 *
 * A table of (address, count) sharded by a keyed hash, one mutex per
 * shard: an accept and a close each take one shard's lock for a few
 * dozen nanoseconds. Entries live while their count is above zero, so the
 * table holds at most as many entries as there are open connections.
 * With the limit at 0 (the default) nothing is counted at all.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "conf/conf.h"
#include "core/cidr.h"
#include "core/hash.h"
#include "mod/conn/conn_mod.h"
#include "proxy/phase.h"

#define SHARDS 64u

struct entry {
	unsigned char addr[16];
	uint64_t hash;
	unsigned count;
	struct entry *next;
};

struct shard {
	pthread_mutex_t lock;
	struct entry **slots;
	size_t nslots, n;
};

struct conn_state {
	uint64_t seed;
	struct shard shards[SHARDS];
};

/* IPv4 as IPv4-mapped IPv6: one key space. */
static int addr_key(const struct sockaddr *sa, unsigned char out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static uint64_t hash_of(const struct conn_state *st, const unsigned char a[16])
{
	return moat_siphash13(st->seed, 0, a, 16);
}

static int grow(struct shard *s)
{
	size_t n = s->nslots ? s->nslots * 2 : 64, i;
	struct entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < s->nslots; i++) {
		struct entry *e = s->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = slots[(e->hash >> 8) & (n - 1)];
			slots[(e->hash >> 8) & (n - 1)] = e;
		}
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	return 0;
}

static int conn_start(const struct moat_conf *conf, void **state)
{
	struct conn_state *st = calloc(1, sizeof(*st));

	(void)conf;
	if (!st)
		return -ENOMEM;
	if (getrandom(&st->seed, sizeof(st->seed), 0) != sizeof(st->seed))
		st->seed = (uint64_t)(uintptr_t)st * 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < SHARDS; i++)
		pthread_mutex_init(&st->shards[i].lock, NULL);
	*state = st;
	return 0;
}

static void conn_stop(void *state)
{
	struct conn_state *st = state;

	for (unsigned i = 0; i < SHARDS; i++) {
		struct shard *s = &st->shards[i];

		for (size_t j = 0; j < s->nslots; j++) {
			struct entry *e = s->slots[j], *next;

			for (; e; e = next) {
				next = e->next;
				free(e);
			}
		}
		free(s->slots);
		pthread_mutex_destroy(&s->lock);
	}
	free(st);
}

static int conn_admit(void *state, const struct moat_conf *conf, const struct moat_conf_listener *l,
		      const struct sockaddr *client, uint64_t now_ms, struct moat_mod_reply *r)
{
	struct conn_state *st = state;
	unsigned limit = conf->limits.conns_per_ip;
	unsigned char a[16];
	struct shard *s;
	struct entry *e;
	uint64_t h;
	int rc = 0;

	(void)l;
	(void)now_ms;
	/* a trusted proxy (a balancer in front, without PROXY protocol)
	 * carries many clients: its own connections are not limited */
	if (limit == 0 || addr_key(client, a) < 0 || moat_cidr_trie_lookup(conf->trusted_trie, client) == 1)
		return 0;
	h = hash_of(st, a);
	s = &st->shards[h % SHARDS];
	pthread_mutex_lock(&s->lock);
	if ((s->nslots == 0 || s->n >= s->nslots) && grow(s) < 0) {
		pthread_mutex_unlock(&s->lock);
		return 0; /* out of memory: fail open, never refuse for our own trouble */
	}
	for (e = s->slots[(h >> 8) & (s->nslots - 1)]; e; e = e->next)
		if (memcmp(e->addr, a, 16) == 0)
			break;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e) {
			size_t i = (h >> 8) & (s->nslots - 1);

			memcpy(e->addr, a, 16);
			e->hash = h;
			e->next = s->slots[i];
			s->slots[i] = e;
			s->n++;
		}
	}
	if (e && e->count >= limit) {
		rc = -1;
	} else if (e) {
		e->count++;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc < 0) {
		r->refusal = MOAT_REFUSE_CONN_LIMIT_IP;
		r->why = "over limits.connections_per_ip";
		return -1;
	}
	return e ? 1 : 0; /* counted: its close must give the count back */
}

/* Called when a conn this module counted closes (admit returned 1). */
static void conn_gone(void *state, const struct moat_conf *conf, const struct sockaddr *client)
{
	struct conn_state *st = state;
	unsigned char a[16];
	struct shard *s;
	struct entry **pe, *e;
	uint64_t h;

	(void)conf;
	if (addr_key(client, a) < 0)
		return;
	h = hash_of(st, a);
	s = &st->shards[h % SHARDS];
	pthread_mutex_lock(&s->lock);
	if (s->nslots) {
		for (pe = &s->slots[(h >> 8) & (s->nslots - 1)]; (e = *pe) != NULL; pe = &e->next) {
			if (memcmp(e->addr, a, 16) != 0)
				continue;
			if (--e->count == 0) {
				*pe = e->next;
				free(e);
				s->n--;
			}
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

const struct moat_mod moat_mod_conn = {
	.name = "conn",
	.start = conn_start,
	.stop = conn_stop,
	.admit = conn_admit,
	.gone = conn_gone,
};
