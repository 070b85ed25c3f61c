/*
 * lb.c - the balancer table (see lb.h) and what the algorithms share: the
 * key hash, the peak-EWMA update and the weighted draw of two candidates.
 * The algorithms themselves are one file each: lb_rr.c, lb_least.c,
 * lb_p2c.c, lb_ewma.c, lb_hash.c. Pure; owns nothing.
 */
#include "upstream/lb.h"
#include "upstream/lb_int.h"

#include "conf/conf.h"

const struct moat_lb_ops *moat_lb_get(int algo)
{
	switch (algo) {
	case MOAT_LB_ROUND_ROBIN:
		return &moat_lb_round_robin;
	case MOAT_LB_LEAST_CONN:
		return &moat_lb_least_conn;
	case MOAT_LB_RANDOM_TWO:
		return &moat_lb_random_two;
	case MOAT_LB_EWMA:
		return &moat_lb_ewma;
	case MOAT_LB_HASH:
		return &moat_lb_hash;
	default:
		return &moat_lb_round_robin;
	}
}

/* ---- key hash ----
 *
 * 16 bytes at a time: the two 8-byte halves, each blinded by a constant,
 * are multiplied into a 128-bit product whose halves are folded together
 * (a multiply mixes every input bit into the middle of the product; the
 * fold brings that into all 64 bits). The state is chained through one
 * factor and kept by the xor, so a factor that happens to be 0 forgets
 * one block, not what came before. The last 1..16 bytes are read as two
 * words that may overlap (the length, mixed in first, tells the cases
 * apart), and the splitmix64 finalizer gives the last avalanche. The
 * constants are the fraction bits of pi, e, sqrt(2) and sqrt(3). Reads are
 * little-endian byte by byte so the value does not depend on the machine
 * (compilers turn them into one load). */

#define K_PI    0x243f6a8885a308d3ull
#define K_E     0xb7e151628aed2a6bull
#define K_SQRT2 0x6a09e667f3bcc908ull
#define K_SQRT3 0xbb67ae8584caa73bull

/* The 128-bit product a * b: returns the low half, stores the high one. */
static uint64_t mul128(uint64_t a, uint64_t b, uint64_t *hi)
{
#ifdef __SIZEOF_INT128__
	__extension__ unsigned __int128 r = (unsigned __int128)a * b;

	*hi = (uint64_t)(r >> 64);
	return (uint64_t)r;
#else
	uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
	uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);

	*hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
	return (ll & 0xffffffffu) | (mid << 32);
#endif
}

static uint64_t fold(uint64_t a, uint64_t b)
{
	uint64_t hi, lo = mul128(a, b, &hi);

	return lo ^ hi;
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static uint64_t rd32(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

uint64_t moat_lb_hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = fold((uint64_t)n ^ K_PI, K_SQRT3);
	uint64_t a, b;

	if (n > 16) {
		size_t left = n;

		while (left > 16) {
			h ^= fold(rd64(s) ^ K_E, rd64(s + 8) ^ K_SQRT2 ^ h);
			s += 16;
			left -= 16;
		}
		/* the last 16 bytes, overlapping what the loop read */
		a = rd64(s + left - 16);
		b = rd64(s + left - 8);
	} else if (n >= 8) {
		a = rd64(s);
		b = rd64(s + n - 8);
	} else if (n >= 4) {
		a = rd32(s);
		b = rd32(s + n - 4);
	} else if (n > 0) {
		a = (uint64_t)s[0] << 16 | (uint64_t)s[n >> 1] << 8 | s[n - 1];
		b = 0;
	} else {
		a = b = 0;
	}
	h ^= fold(a ^ K_E, b ^ K_SQRT2 ^ h);
	return moat_lb_mix64(h ^ K_PI);
}

/* ---- peak EWMA ---- */

/* exp(-x) for x >= 0 without libm: halve x until it is at most 1/16, sum
 * the Taylor series to x^7 (error below 6e-15 there), square back. Each
 * squaring doubles the relative error: at most 2^10 of them below x = 64,
 * so the result is good to about 1e-11. Past 64 it is 0 (e^-64 < 1e-27). */
static double exp_neg(double x)
{
	unsigned k = 0;
	double r;

	if (!(x < 64.0))
		return 0.0;
	while (x > 0.0625) {
		x *= 0.5;
		k++;
	}
	r = 1.0 - x * (1.0 - x / 2 * (1.0 - x / 3 * (1.0 - x / 4 * (1.0 - x / 5 *
		(1.0 - x / 6 * (1.0 - x / 7))))));
	while (k--)
		r *= r;
	return r;
}

uint64_t moat_lb_ewma_update(uint64_t old_us, uint64_t sample_us, uint64_t dt_ms, uint64_t tau_ms)
{
	double w, v;
	uint64_t r;

	if (old_us == 0 || tau_ms == 0 || sample_us >= old_us)
		return sample_us;
	if (dt_ms == 0)
		return old_us;
	w = exp_neg((double)dt_ms / (double)tau_ms);
	v = (double)old_us * w + (double)sample_us * (1.0 - w);
	/* sample < v < old in exact arithmetic; keep it so after rounding,
	 * and move by at least 1 */
	r = v >= (double)old_us ? old_us : (uint64_t)(v + 0.5);
	if (r >= old_us)
		r = old_us - 1;
	if (r < sample_us)
		r = sample_us;
	return r;
}

/* ---- two weighted candidates (random_two, ewma) ----
 *
 * A random point in [0, total) is floor(r * total / 2^64), r uniform in
 * 64 bits: no division, and exact, so the server found depends only on
 * r and the ratios of the weights: with every weight times k the point
 * lands in the same server's span (k * P <= floor(k * r * total / 2^64)
 * exactly when P <= r * total / 2^64). */

static uint64_t below(uint64_t r, uint64_t bound)
{
	uint64_t hi;

	(void)mul128(r, bound, &hi);
	return hi;
}

/* The eligible server that the weight units before `r` run into: the i
 * with sum(weight[0..i)) <= r < sum(weight[0..i]), skipping `skip`.
 * r < the sum of the weights scanned, so the scan always ends on one. */
static size_t find_unit(const unsigned *weight, size_t n, uint64_t r, size_t skip)
{
	for (size_t i = 0; i < n; i++) {
		if (i == skip)
			continue;
		if (r < weight[i])
			return i;
		r -= weight[i];
	}
	return n;
}

size_t moat_lb_draw_two(const struct moat_lb_input *in, size_t *second)
{
	const unsigned *w = in->weight;
	size_t n = in->n, a;
	uint64_t total = 0, rest;

	for (size_t i = 0; i < n; i++)
		total += w[i];
	*second = n;
	if (total == 0)
		return n;
	a = find_unit(w, n, below(in->rand, total), n);
	rest = total - w[a];
	if (rest)
		*second = find_unit(w, n, below(moat_lb_mix64(in->rand ^ K_E), rest), a);
	return a;
}
