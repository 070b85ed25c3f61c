/*
 * cidr.c - address and CIDR text, the longest-prefix-match trie and list
 * files (see cidr.h).
 *
 * The trie: every node holds a block (key, plen) and the value of that
 * block, or -1 for a node that only joins two subtrees (a "glue" node).
 * A child's block always lies inside its parent's and extends it by at
 * least one bit; child[b] holds the blocks whose bit number plen is b.
 * Chains of one-child nodes do not exist (path compression), so a tree of
 * n blocks has fewer than 2n nodes, and a lookup visits at most one node
 * per distinct prefix length on its way down: checking each node's block
 * against the address, remembering the last value seen, stopping at the
 * first node that does not match.
 *
 *          10.0.0.0/8 = allow
 *            /             \
 *    (glue 10.0.0.0/14)    10.128.0.0/9 = deny
 *       /          \
 *   10.1.0.0/16   10.2.0.0/16
 *
 * Keys are two 64-bit words in host order (an IPv4 address in the top 32
 * bits of the first), so comparing a block is a mask and a compare. Nodes
 * live in one array addressed by 32-bit indices (0 is "none"), which keeps
 * them dense and frees in one call.
 *
 * A big tree is deep (about log2 of its size), and each level is a cache
 * miss, so once a family holds JUMP_MIN blocks it also gets a table of its
 * 65536 /16s (512 KiB) saying where a lookup in each starts: one load
 * replaces the top 16 levels (100k random IPv4 blocks: ~60 ns a lookup
 * instead of ~400).
 */
#include "core/cidr.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses as text ------------------------------------------------ */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Dotted-quad IPv4 s[0..len) into out[4]; 0 or -1. */
static int parse_v4(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			start = ++i;
		}
		while (i < len && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return -1;
		out[part] = (unsigned char)v;
	}
	return i == len ? 0 : -1;
}

/* RFC 4291 2.2 text IPv6 s[0..len) into out[16]; 0 or -1. */
static int parse_v6(const char *s, size_t len, unsigned char out[16])
{
	unsigned groups[8];
	int n = 0, gap = -1, k;
	size_t i = 0;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (len >= 1 && s[0] == ':') {
		return -1;
	}
	while (i < len) {
		size_t start = i;
		unsigned v = 0;

		while (i < len && hex_val(s[i]) >= 0 && i - start < 5)
			v = v * 16 + (unsigned)hex_val(s[i++]);
		if (i < len && s[i] == '.') {
			/* a dotted IPv4 tail: the last two groups */
			unsigned char v4[4];

			if (n > 6 || parse_v4(s + start, len - start, v4) < 0)
				return -1;
			groups[n++] = (unsigned)v4[0] << 8 | v4[1];
			groups[n++] = (unsigned)v4[2] << 8 | v4[3];
			i = len;
			break;
		}
		if (i == start || i - start > 4 || n == 8)
			return -1;
		groups[n++] = v;
		if (i == len)
			break;
		if (s[i] != ':')
			return -1;
		if (i + 1 < len && s[i + 1] == ':') {
			if (gap >= 0)
				return -1;
			gap = n;
			i += 2;
		} else {
			i++;
			if (i == len) /* a single trailing ':' */
				return -1;
		}
	}
	if (gap < 0 ? n != 8 : n > 7)
		return -1;
	memset(out, 0, 16);
	for (k = 0; k < n; k++) {
		int at = (gap >= 0 && k >= gap) ? k + (8 - n) : k;

		out[2 * at] = (unsigned char)(groups[k] >> 8);
		out[2 * at + 1] = (unsigned char)groups[k];
	}
	return 0;
}

int moat_cidr_parse_addr(const char *s, size_t len, int *family, unsigned char addr[16])
{
	unsigned char a[16];

	if (s == NULL || len == 0)
		return -1;
	memset(a, 0, sizeof a);
	if (memchr(s, ':', len) != NULL) {
		if (parse_v6(s, len, a) < 0)
			return -1;
		*family = AF_INET6;
	} else {
		if (parse_v4(s, len, a) < 0)
			return -1;
		*family = AF_INET;
	}
	memcpy(addr, a, sizeof a);
	return 0;
}

static void mask_bytes(unsigned char *a, unsigned nbytes, unsigned prefix)
{
	unsigned i;

	for (i = 0; i < nbytes; i++) {
		if (prefix >= 8 * (i + 1))
			continue;
		if (prefix <= 8 * i)
			a[i] = 0;
		else
			a[i] &= (unsigned char)(0xffu << (8 - (prefix - 8 * i)));
	}
}

/* "/" 1*3DIGIT without leading zero, at most max; 0 or -1. */
static int parse_prefix(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (len < 2 || len > 4 || s[0] != '/' || (len > 2 && s[1] == '0'))
		return -1;
	for (i = 1; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int moat_cidr_parse(const char *s, size_t len, int *family, unsigned char addr[16], unsigned *prefix)
{
	const char *slash;
	size_t alen;
	unsigned char a[16];
	unsigned p, max;
	int fam;

	if (s == NULL)
		return -1;
	slash = memchr(s, '/', len);
	alen = slash ? (size_t)(slash - s) : len;
	if (moat_cidr_parse_addr(s, alen, &fam, a) < 0)
		return -1;
	max = fam == AF_INET ? 32 : 128;
	if (slash == NULL)
		p = max;
	else if (parse_prefix(slash, len - alen, max, &p) < 0)
		return -1;
	mask_bytes(a, 16, p);
	*family = fam;
	memcpy(addr, a, sizeof a);
	*prefix = p;
	return 0;
}

/* ---- the trie --------------------------------------------------------- */

struct node {
	uint64_t key[2];   /* the block's bits, zero past plen */
	uint32_t child[2]; /* indices into nodes[]; 0 = none */
	unsigned plen;     /* 0..128 */
	int value;         /* >= 0, or -1 for a glue node */
};

/* One /16 of the jump table: where a lookup of an address in it starts. */
struct jump {
	uint32_t shorter; /* node of the longest block shorter than /16 covering it, or 0 */
	uint32_t root;    /* the topmost node inside this /16 (the subtree of its blocks), or 0 */
};

#define JUMP_BITS 16
#define JUMP_MIN  256 /* blocks of a family before its jump table is built */

struct moat_cidr_trie {
	struct node *nodes;   /* nodes[0] unused, so index 0 means none */
	uint32_t nnodes, cap;
	uint32_t root[2];     /* [0] IPv4, [1] IPv6 */
	size_t count;         /* blocks holding a value */
	size_t fcount[2];     /* the same per family */
	struct jump *jump[2]; /* 2^JUMP_BITS entries, or NULL (small tree, or out of memory) */
};

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static uint64_t load64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The key of an address: IPv4 (4 bytes) in the top of key[0]. */
static void make_key(int v6, const unsigned char *a, uint64_t key[2])
{
	if (v6) {
		key[0] = load64(a);
		key[1] = load64(a + 8);
	} else {
		key[0] = (uint64_t)a[0] << 56 | (uint64_t)a[1] << 48 | (uint64_t)a[2] << 40 | (uint64_t)a[3] << 32;
		key[1] = 0;
	}
}

/* Mask of the top n bits of a word, n in 0..64. */
static uint64_t top_bits(unsigned n)
{
	return n == 0 ? 0 : ~(uint64_t)0 << (64 - n);
}

static void mask_key(uint64_t key[2], unsigned plen)
{
	if (plen <= 64) {
		key[0] &= top_bits(plen);
		key[1] = 0;
	} else {
		key[1] &= top_bits(plen - 64);
	}
}

/* Nonzero when the first plen bits of a and b are equal. */
static int key_match(const uint64_t a[2], const uint64_t b[2], unsigned plen)
{
	if (plen <= 64)
		return ((a[0] ^ b[0]) & top_bits(plen)) == 0;
	return a[0] == b[0] && ((a[1] ^ b[1]) & top_bits(plen - 64)) == 0;
}

/* Bit number i (0 = most significant) of a key. */
static unsigned key_bit(const uint64_t k[2], unsigned i)
{
	return (unsigned)(k[i / 64] >> (63 - i % 64)) & 1u;
}

/* Length of the common prefix of a and b, at most max. */
static unsigned common_len(const uint64_t a[2], const uint64_t b[2], unsigned max)
{
	uint64_t d = a[0] ^ b[0];
	unsigned n;

	if (d != 0)
		n = (unsigned)__builtin_clzll(d);
	else if ((d = a[1] ^ b[1]) != 0)
		n = 64 + (unsigned)__builtin_clzll(d);
	else
		n = 128;
	return n < max ? n : max;
}

struct moat_cidr_trie *moat_cidr_trie_new(void)
{
	return calloc(1, sizeof(struct moat_cidr_trie));
}

/* Makes room for two more nodes; 0 or -ENOMEM. */
static int reserve(struct moat_cidr_trie *t)
{
	struct node *n;
	uint32_t cap;

	if (t->nnodes + 2 <= t->cap)
		return 0;
	if (t->cap > UINT32_MAX / 2)
		return -ENOMEM;
	cap = t->cap ? t->cap * 2 : 64;
	n = realloc(t->nodes, (size_t)cap * sizeof *n);
	if (n == NULL)
		return -ENOMEM;
	if (t->nnodes == 0)
		t->nnodes = 1; /* index 0 stays unused */
	t->nodes = n;
	t->cap = cap;
	return 0;
}

static uint32_t new_node(struct moat_cidr_trie *t, const uint64_t key[2], unsigned plen, int value)
{
	uint32_t i = t->nnodes++;
	struct node *n = &t->nodes[i];

	n->key[0] = key[0];
	n->key[1] = key[1];
	mask_key(n->key, plen);
	n->plen = plen;
	n->value = value;
	n->child[0] = n->child[1] = 0;
	return i;
}

/*
 * Inserts block key/prefix into tree v6 with `value`; nodes must have room
 * for two more (reserve). Returns the node holding the block; *added is
 * nonzero when the block was not in the tree before.
 */
static uint32_t insert(struct moat_cidr_trie *t, int v6, const uint64_t key[2], unsigned prefix, int value,
		       int *added)
{
	uint32_t *slot = &t->root[v6];

	*added = 1;
	while (*slot != 0) {
		uint32_t at = *slot;
		struct node *n = &t->nodes[at];
		unsigned c = common_len(n->key, key, n->plen < prefix ? n->plen : prefix);

		if (c < n->plen) {
			/* The new block is not inside n: it contains n (c ==
			 * prefix) or they part at bit c under a glue node. */
			uint32_t nw = new_node(t, key, prefix, value);

			if (c == prefix) {
				t->nodes[nw].child[key_bit(t->nodes[at].key, prefix)] = at;
				*slot = nw;
			} else {
				uint32_t glue = new_node(t, key, c, -1);

				t->nodes[glue].child[key_bit(key, c)] = nw;
				t->nodes[glue].child[key_bit(t->nodes[at].key, c)] = at;
				*slot = glue;
			}
			return nw;
		}
		if (n->plen == prefix) {
			*added = n->value < 0;
			n->value = value;
			return at;
		}
		slot = &n->child[key_bit(key, n->plen)];
	}
	*slot = new_node(t, key, prefix, value);
	return *slot;
}

/*
 * The jump table skips the top 16 levels of a big tree: an address's /16
 * gives the longest shorter block covering it and the subtree of the
 * blocks inside that /16 (they form one subtree: the meeting point of two
 * of them is their common prefix, itself inside the /16). It is kept up to
 * date by add, and only ever speeds lookups up: without it (a small tree,
 * or no memory for it) lookups walk from the root.
 */
static unsigned jump_slot(const uint64_t key[2])
{
	return (unsigned)(key[0] >> (64 - JUMP_BITS));
}

/* A new block shorter than /16 at node i: it is the longest shorter block
 * of the /16s it covers unless they have a longer one. */
static void jump_shorter(struct moat_cidr_trie *t, struct jump *j, uint32_t i)
{
	const struct node *n = &t->nodes[i];
	unsigned first = jump_slot(n->key), k, span = 1u << (JUMP_BITS - n->plen);

	for (k = first; k < first + span; k++)
		if (j[k].shorter == 0 || t->nodes[j[k].shorter].plen < n->plen)
			j[k].shorter = i;
}

/* Sets the subtree root of the /16 holding key (after an insert in it). */
static void jump_root(struct moat_cidr_trie *t, struct jump *j, int v6, const uint64_t key[2])
{
	uint32_t i = t->root[v6];

	while (i != 0 && t->nodes[i].plen < JUMP_BITS) {
		if (!key_match(t->nodes[i].key, key, t->nodes[i].plen))
			return; /* cannot happen: the new block is below */
		i = t->nodes[i].child[key_bit(key, t->nodes[i].plen)];
	}
	if (i != 0 && key_match(t->nodes[i].key, key, JUMP_BITS))
		j[jump_slot(key)].root = i;
}

/* Fills a new table from the subtree under node i, whose ancestors are
 * all shorter than /16. */
static void jump_fill(struct moat_cidr_trie *t, struct jump *j, uint32_t i)
{
	const struct node *n = &t->nodes[i];

	if (n->plen >= JUMP_BITS) {
		j[jump_slot(n->key)].root = i;
		return;
	}
	if (n->value >= 0)
		jump_shorter(t, j, i);
	if (n->child[0] != 0)
		jump_fill(t, j, n->child[0]);
	if (n->child[1] != 0)
		jump_fill(t, j, n->child[1]);
}

int moat_cidr_trie_add(struct moat_cidr_trie *t, int family, const unsigned char addr[16], unsigned prefix,
		       int value)
{
	uint64_t key[2];
	uint32_t at;
	int v6, added;

	if (t == NULL || addr == NULL || value < 0)
		return -EINVAL;
	if (family == AF_INET6 && prefix >= 96 && prefix <= 128 && memcmp(addr, v4mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
		prefix -= 96;
	}
	if (family == AF_INET && prefix <= 32)
		v6 = 0;
	else if (family == AF_INET6 && prefix <= 128)
		v6 = 1;
	else
		return -EINVAL;
	/* Both new nodes are reserved first: the slot pointers below point
	 * into the array and must not move. */
	if (reserve(t) < 0)
		return -ENOMEM;
	make_key(v6, addr, key);
	mask_key(key, prefix);
	at = insert(t, v6, key, prefix, value, &added);
	if (!added)
		return 0; /* a new value for a block: nothing else moves */
	t->count++;
	t->fcount[v6]++;
	if (t->jump[v6] != NULL) {
		if (prefix < JUMP_BITS)
			jump_shorter(t, t->jump[v6], at);
		else
			jump_root(t, t->jump[v6], v6, key);
	} else if (t->fcount[v6] >= JUMP_MIN && (t->fcount[v6] & (t->fcount[v6] - 1)) == 0) {
		/* tried at 256, 512, 1024... blocks; without it lookups walk
		 * from the root, still right */
		t->jump[v6] = calloc((size_t)1 << JUMP_BITS, sizeof(struct jump));
		if (t->jump[v6] != NULL)
			jump_fill(t, t->jump[v6], t->root[v6]);
	}
	return 0;
}

static int lookup_key(const struct moat_cidr_trie *t, int v6, const uint64_t key[2])
{
	uint32_t i = t->root[v6];
	int best = -1;

	if (t->jump[v6] != NULL) {
		const struct jump *j = &t->jump[v6][jump_slot(key)];

		if (j->shorter != 0)
			best = t->nodes[j->shorter].value;
		i = j->root;
	}

	while (i != 0) {
		const struct node *n = &t->nodes[i];

		if (!key_match(n->key, key, n->plen))
			break;
		if (n->value >= 0)
			best = n->value;
		if (n->plen == (v6 ? 128u : 32u))
			break;
		i = n->child[key_bit(key, n->plen)];
	}
	return best;
}

int moat_cidr_trie_lookup_raw(const struct moat_cidr_trie *t, int family, const unsigned char *addr)
{
	uint64_t key[2];
	int v6;

	if (t == NULL || addr == NULL)
		return -1;
	if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET)
		v6 = 0;
	else if (family == AF_INET6)
		v6 = 1;
	else
		return -1;
	make_key(v6, addr, key);
	return lookup_key(t, v6, key);
}

int moat_cidr_trie_lookup(const struct moat_cidr_trie *t, const struct sockaddr *sa)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET)
		return moat_cidr_trie_lookup_raw(
			t, AF_INET, (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return moat_cidr_trie_lookup_raw(t, AF_INET6,
						 ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return -1;
}

size_t moat_cidr_trie_count(const struct moat_cidr_trie *t)
{
	return t ? t->count : 0;
}

void moat_cidr_trie_free(struct moat_cidr_trie *t)
{
	if (t == NULL)
		return;
	free(t->jump[0]);
	free(t->jump[1]);
	free(t->nodes);
	free(t);
}

/* ---- list files ------------------------------------------------------- */

#define QUOTE_MAX 64

/* Appends s[0..len) to msg as a quoted string: at most QUOTE_MAX bytes,
 * bytes outside printable ASCII (and '"', '\\') escaped. */
static void quote(char *msg, size_t cap, const char *s, size_t len)
{
	size_t n = strlen(msg), i;

	if (n + 1 < cap)
		msg[n++] = '"';
	for (i = 0; i < len && i < QUOTE_MAX && n + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			n += (size_t)snprintf(msg + n, cap - n, "\\x%02x", c);
		else
			msg[n++] = (char)c;
	}
	if (i < len && n + 4 < cap) {
		memcpy(msg + n, "...", 3);
		n += 3;
	}
	if (n + 1 < cap)
		msg[n++] = '"';
	msg[n] = '\0';
}

/* Writes the message for a bad entry s[0..len) to msg. */
static void explain(char *msg, size_t cap, const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	unsigned char a[16];
	size_t i;
	int fam;

	for (i = 0; i < len; i++)
		if (s[i] == ' ' || s[i] == '\t')
			break;
	if (i < len)
		snprintf(msg, cap, "expected one CIDR per line, got ");
	else if (slash != NULL && moat_cidr_parse_addr(s, (size_t)(slash - s), &fam, a) == 0)
		snprintf(msg, cap, "expected a prefix length 0..%u after the %s address, got ",
			 fam == AF_INET ? 32u : 128u, fam == AF_INET ? "IPv4" : "IPv6");
	else
		snprintf(msg, cap, "expected a CIDR like 10.0.0.0/8 or 2001:db8::/32, got ");
	quote(msg, cap, s, len);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int moat_cidr_list_parse(const char *data, size_t len,
			 int (*entry)(void *ctx, int family, const unsigned char addr[16], unsigned prefix,
				      unsigned line, unsigned col),
			 void (*error)(void *ctx, unsigned line, unsigned col, const char *msg), void *ctx)
{
	size_t pos = 0;
	unsigned line = 0;
	int errors = 0;

	if (data == NULL)
		len = 0;
	while (pos < len) {
		const char *s = data + pos, *nl = memchr(s, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - s) : len - pos, b = 0, e;
		unsigned char addr[16];
		unsigned prefix;
		int fam, rc;
		const char *hash;

		pos += end + (nl != NULL);
		if (line < UINT_MAX)
			line++;
		if (end > 0 && s[end - 1] == '\r')
			end--;
		hash = memchr(s, '#', end);
		e = hash ? (size_t)(hash - s) : end;
		while (b < e && is_blank(s[b]))
			b++;
		while (e > b && is_blank(s[e - 1]))
			e--;
		if (b == e)
			continue;
		if (moat_cidr_parse(s + b, e - b, &fam, addr, &prefix) == 0) {
			if (entry == NULL)
				continue;
			rc = entry(ctx, fam, addr, prefix, line, b < UINT_MAX ? (unsigned)b + 1 : UINT_MAX);
			if (rc < 0)
				return rc;
			continue;
		}
		if (errors < INT_MAX)
			errors++;
		if (error != NULL) {
			char msg[256];

			explain(msg, sizeof msg, s + b, e - b);
			error(ctx, line, b < UINT_MAX ? (unsigned)b + 1 : UINT_MAX, msg);
		}
	}
	return errors;
}
