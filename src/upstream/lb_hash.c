/*
 * lb_hash.c - Maglev consistent hashing with weights (see lb.h,
 * moat_lb_hash; Eisenbud et al., "Maglev", NSDI 2016, section 3.4).
 *
 * The table has M entries, M prime, each naming a server. Server i has
 * its own permutation of 0..M-1, offset + j * skip (mod M) with offset
 * and skip from two hashes of i (skip in 1..M-1, so with M prime every
 * entry comes up once). Servers take turns; on its turn a server claims
 * the first entry of its permutation not yet claimed. Since each server
 * walks its own fixed order, adding or removing one changes which entries
 * the others claim only here and there: about 1/(n+1) of the table moves
 * when one is added, mostly to the newcomer.
 *
 * Weights: the turns go to the server with the lowest (placed + 1) /
 * weight, the lowest index on a tie, kept in a binary heap (O(M log n) to
 * build, done once per state). Equal weights give plain rotation, as in
 * the paper; otherwise each server ends with weight / sum(weight) of the
 * entries, give or take one.
 *
 * Pick: table[hash % M]; an ineligible server there sends the key to the
 * next entry that names an eligible one, so exactly the keys of
 * ineligible servers move, and they come back when it does.
 *
 * State: n, M and M 16-bit entries (131 KB for n <= 655).
 */
#include <assert.h>
#include <stdlib.h>

#include "upstream/lb.h"
#include "upstream/lb_int.h"

#define EMPTY 0xffffu

struct maglev {
	size_t n;
	uint32_t m;
	uint16_t table[];
};

/* One server while the table is filled. */
struct turn {
	uint32_t pos;       /* next entry of its permutation to try */
	uint32_t skip;
	uint64_t placed;    /* entries claimed so far */
	uint64_t weight;
};

static int is_prime(uint32_t x)
{
	if (x < 2)
		return 0;
	for (uint32_t d = 2; d <= x / d; d++)
		if (x % d == 0)
			return 0;
	return 1;
}

/* 65537 up to 655 servers, then the first prime >= 100 * n: at least 100
 * entries per server keeps the shares within about 1% of the weights. */
static uint32_t table_size(size_t n)
{
	uint32_t m;

	if (n <= 655)
		return 65537;
	for (m = (uint32_t)(100 * n); !is_prime(m); m++)
		;
	return m;
}

/* Whose turn comes first: lower (placed + 1) / weight, then lower index. */
static int before(const struct turn *t, uint32_t a, uint32_t b)
{
	uint64_t ka = (t[a].placed + 1) * t[b].weight, kb = (t[b].placed + 1) * t[a].weight;

	return ka < kb || (ka == kb && a < b);
}

static void sift_down(uint32_t *heap, size_t len, size_t k, const struct turn *t)
{
	for (;;) {
		size_t c = 2 * k + 1, top = k;
		uint32_t tmp;

		if (c < len && before(t, heap[c], heap[top]))
			top = c;
		if (c + 1 < len && before(t, heap[c + 1], heap[top]))
			top = c + 1;
		if (top == k)
			return;
		tmp = heap[k];
		heap[k] = heap[top];
		heap[top] = tmp;
		k = top;
	}
}

static int fill(struct maglev *g, const unsigned *weight, const uint64_t *id)
{
	size_t n = g->n;
	uint32_t m = g->m;
	struct turn *t = malloc(n * sizeof(*t));
	uint32_t *heap = malloc(n * sizeof(*heap));

	if (!t || !heap) {
		free(t);
		free(heap);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key = id ? id[i] : (uint64_t)i;
		uint64_t h1 = moat_lb_mix64((key << 1) + 0x9e3779b97f4a7c15ull);
		uint64_t h2 = moat_lb_mix64((key << 1 | 1) + 0x9e3779b97f4a7c15ull);

		t[i].pos = (uint32_t)(h1 % m);
		t[i].skip = (uint32_t)(h2 % (m - 1)) + 1;
		t[i].placed = 0;
		t[i].weight = weight[i] ? weight[i] : 1;
		heap[i] = (uint32_t)i;
	}
	for (size_t k = n / 2; k-- > 0;)
		sift_down(heap, n, k, t);
	for (uint32_t j = 0; j < m; j++)
		g->table[j] = EMPTY;
	for (uint32_t filled = 0; filled < m; filled++) {
		struct turn *s = &t[heap[0]];
		uint32_t c = s->pos;

		while (g->table[c] != EMPTY) {
			c += s->skip;
			if (c >= m)
				c -= m;
		}
		g->table[c] = (uint16_t)heap[0];
		c += s->skip;
		if (c >= m)
			c -= m;
		s->pos = c;
		s->placed++;
		sift_down(heap, n, 0, t);
	}
	free(t);
	free(heap);
	return 0;
}

static void *maglev_create(const unsigned *weight, const uint64_t *id, size_t n)
{
	struct maglev *g;
	uint32_t m;

	if (n > MOAT_LB_MAX_SERVERS)
		return NULL;
	m = n ? table_size(n) : 0;
	g = malloc(sizeof(*g) + (size_t)m * sizeof(g->table[0]));
	if (!g)
		return NULL;
	g->n = n;
	g->m = m;
	if (n && fill(g, weight, id) < 0) {
		free(g);
		return NULL;
	}
	return g;
}

static size_t maglev_pick(void *state, const struct moat_lb_input *in)
{
	const struct maglev *g = state;
	const unsigned *w = in->weight;
	size_t n = in->n, i, any = 0;
	uint32_t j;

	assert(n == g->n);
	if (n != g->n || n == 0)
		return n;
	j = (uint32_t)(in->hash % g->m);
	i = g->table[j];
	if (w[i])
		return i;
	/* rare: its server is out. Is anyone in? (n is far below M) */
	for (size_t k = 0; k < n && !any; k++)
		any = w[k];
	if (!any)
		return n;
	for (uint32_t step = 1; step < g->m; step++) {
		if (++j == g->m)
			j = 0;
		i = g->table[j];
		if (w[i])
			return i;
	}
	return n;
}

static void maglev_destroy(void *state)
{
	free(state);
}

const struct moat_lb_ops moat_lb_hash = {
	.name = "hash",
	.create = maglev_create,
	.pick = maglev_pick,
	.destroy = maglev_destroy,
};
