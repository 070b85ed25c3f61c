/*
 * lb.h - load-balancing algorithms behind one table, pure.
 *
 * Each algorithm picks one server index out of n from what the caller
 * gives it: the effective weights (0 = not eligible: down, ejected,
 * draining, at its connection limit, or already tried), the requests in
 * flight per server, a latency estimate per server, a request hash and a
 * random number. It keeps its own per-worker state (created from the
 * configured weights) and touches nothing else: no clock, no globals, no
 * I/O, so every algorithm is unit-tested as a function.
 *
 * Servers are identified by their index, 0..n-1, in the order of the
 * config: the caller passes the arrays of moat_lb_input in that order, the
 * same order as the weights given to create. The hash algorithm's table is
 * built from the indexes, so an index must keep naming the same server for
 * as long as a state lives (appending a server at the end of the list keeps
 * the others' keys; inserting or removing one in the middle shifts the
 * indexes after it and moves many keys).
 *
 * Weights are relative: only their ratios matter (weights 1,2 and 16,32,
 * configured and effective alike, give the same picks).
 *
 * Shares under no load: with every server idle (active all 0) and equal
 * latencies, every algorithm except hash gives server i a share
 * weight[i] / sum(weight) of the picks; round robin and least connections
 * do so exactly over each sum(weight) picks, the others on average. Under load the weight
 * divides the requests in flight (a server of weight 2 is "as loaded" as
 * one of weight 1 when it carries twice the requests).
 *
 * Cost: a pick allocates nothing and takes no lock. Round robin and least
 * connections scan the n servers once or twice; random two scans them up
 * to three times, ewma four (measured, -O2, one core: n = 3: 8-20 ns;
 * n = 10: 25-45 ns; n = 64: 90-265 ns); hash is one table lookup (a walk
 * only when the server found is not eligible), about 3 ns.
 *
 * Owner: the worker that created the state; not thread-safe. Exception:
 * the hash state is never written after create, so one state may be
 * shared read-only by every worker of a config generation.
 */
#ifndef MOAT_UPSTREAM_LB_H
#define MOAT_UPSTREAM_LB_H

#include <stddef.h>
#include <stdint.h>

/* Most servers a state can be created for (hash keeps 16-bit indexes). */
#define MOAT_LB_MAX_SERVERS 65535u

/* One pick's input. Every array has n entries, indexed like the weights
 * given to create, and is borrowed for the call only. */
struct moat_lb_input {
	size_t n;                   /* servers; the n given to create */
	const unsigned *weight;     /* effective weight per server; 0 = not eligible */
	const unsigned *active;     /* requests in flight per server (all workers); read by
				     * least_conn, random_two and ewma (NULL allowed for the others) */
	const uint64_t *latency_us; /* peak-EWMA latency per server, microseconds (0 = unknown);
				     * read by ewma only (NULL allowed for the others) */
	uint64_t hash;              /* request key hash (algorithm "hash"), from moat_lb_hash_bytes */
	uint64_t rand;              /* a fresh random 64-bit value per pick (random_two, ewma) */
};

struct moat_lb_ops {
	const char *name;           /* as written in the config */
	/* Creates per-worker state for n servers (n <= MOAT_LB_MAX_SERVERS)
	 * with these configured weights (all > 0; a 0 is taken as 1). The
	 * weights are copied where needed, not kept. `id` (may be NULL:
	 * the index is the id) names each server stably across configs --
	 * the hash algorithm places servers by it, so removing a server from
	 * the middle of a list moves only that server's keys. Returns NULL on
	 * allocation failure or when n is too large. */
	void *(*create)(const unsigned *weight, const uint64_t *id, size_t n);
	/* Returns the chosen index, always one with in->weight[i] > 0, or
	 * in->n when no server is eligible (the state is then unchanged).
	 * in->n must be the n given to create. */
	size_t (*pick)(void *state, const struct moat_lb_input *in);
	/* Frees the state; NULL is allowed. */
	void (*destroy)(void *state);
};

/* Smooth weighted round robin (nginx's): over any sum(weight) consecutive
 * picks each server is chosen exactly weight times, interleaved rather
 * than in bursts. Ignores active, latency, hash and rand. */
extern const struct moat_lb_ops moat_lb_round_robin;

/* Weighted least requests in flight: the lowest active/weight (compared
 * by cross-multiplication, no division). Ties, such as every server idle,
 * are shared by smooth weighted round robin among the tied servers, so
 * they rotate in proportion to weight instead of always going to the
 * first. */
extern const struct moat_lb_ops moat_lb_least_conn;

/* Power of two choices: draws two distinct eligible servers from in->rand,
 * each with a probability proportional to its weight, and takes the one
 * with the lower active/weight (the first drawn on a tie). With one
 * eligible server, that one. The most loaded server is never chosen while
 * another eligible one carries less load per weight. */
extern const struct moat_lb_ops moat_lb_random_two;

/* Peak-EWMA: two candidates drawn as by random_two, then the lower cost
 *	latency_us * (1 + active * max_weight / weight)
 * max_weight the largest configured weight: the server of that weight
 * counts its requests in flight as in the classic latency x (active + 1),
 * one of half that weight counts each of them twice. Only the ratios of
 * the weights matter. With no load the cost is the latency alone, so
 * equal latencies tie and the weighted draw keeps the shares proportional
 * to weight. An unknown latency (0) counts as the lowest known latency
 * among the eligible servers, or 1 when none is known, so that a new
 * server gets tried. */
extern const struct moat_lb_ops moat_lb_ewma;

/* Maglev consistent hashing, weighted: a lookup table of M entries (M the
 * prime 65537 for n <= 655, else the first prime >= 100 * n) in which
 * each server owns a share of entries proportional to its configured
 * weight, filled from a permutation seeded by the server's index. The pick
 * is table[in->hash % M]; when that server is not eligible, the next
 * entries are walked until one is (so only the keys of servers that
 * became ineligible move, and they spread over the others in proportion
 * to their shares). Effective weights only matter as 0 / not 0: a weight
 * change (slow start) does not move keys. Adding a server at the end of
 * the list (a new state) moves about 1/(n+1) of the keys. Memory: 2 * M
 * bytes per state; create takes about 4 ms (M log n). Ignores active,
 * latency and rand. */
extern const struct moat_lb_ops moat_lb_hash;

/* The ops for an algorithm (an enum moat_lb_algo value); never NULL: a
 * value out of range gives round robin. */
const struct moat_lb_ops *moat_lb_get(int algo);

/* 64-bit hash of a byte string (for hash keys and sticky ids): fast, well
 * mixed in every bit, not keyed (it does not resist an attacker choosing
 * keys to collide). Stable: the same bytes give the same value on every
 * machine, build and run. p may be NULL when n is 0. Any thread. */
uint64_t moat_lb_hash_bytes(const void *p, size_t n);

/* Peak EWMA update: returns the new estimate from the old one, a new
 * sample, and the time since the last update (decay constant tau_ms).
 *   old 0 (unknown), tau 0, or sample >= old: the sample (a sample above
 *       the estimate replaces it at once: the "peak");
 *   else old * w + sample * (1 - w), w = exp(-dt/tau), rounded, and at
 *       least 1 below old when dt > 0 (so that frequent updates cannot
 *       hold it in place by rounding).
 * The estimate is weighted by time, not by samples: with dt 0 a lower
 * sample changes nothing. No libm. Any thread. */
uint64_t moat_lb_ewma_update(uint64_t old_us, uint64_t sample_us, uint64_t dt_ms, uint64_t tau_ms);

#endif
