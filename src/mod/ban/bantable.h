/*
 * bantable.h - automatic bans by client address: offenses counted in a
 * window, a ban when they cross a threshold, longer bans for repeat
 * offenders, and the check every accepted connection makes.
 *
 * Where it sits: a worker calls moat_bans_check right after accept (and
 * may drop the connection); modules that see bad behaviour (rate limit
 * refusals, WAF hits, failed logins...) call moat_bans_offend; the admin
 * thread adds, lifts and lists. Nothing here reads a clock: callers pass
 * now_ms from one monotonic millisecond clock.
 *
 * Process-wide: made once, kept across config reloads by the caller (so
 * bans and repeat counts survive them), freed at exit. Every function
 * but moat_bans_new and moat_bans_free may be called from any thread at
 * once: the table is sharded by a keyed hash of the address, each shard
 * its own mutex; the active-ban count is one atomic, so while nobody is
 * banned a check costs one relaxed atomic load and nothing else.
 *
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d).
 * They are taken as given: a caller that wants to ban an IPv6 client's
 * whole /64 masks the address first.
 *
 * Bounded: at most max_entries addresses are tracked. When a shard is
 * full, the tracked address least recently active (offense or ban end)
 * that is not banned now loses its counters first; an active ban is
 * never dropped to make room. A shard full of active bans tracks no new
 * offender until one ends (offend returns 0, add -ENOSPC).
 *
 * Per address:
 *
 *            offense (count < threshold)
 *             +----+
 *             v    |   count reaches threshold           until <= now
 *   (none) -> COUNTING ----------------------------> BANNED ---------> COUNTING
 *              ^  |    until = now + duration * 2^bans     (bans kept for
 *              |  |    (capped), bans += 1                  max_duration)
 *              +--+ window over: count restarts at this offense
 */
#ifndef MOAT_MOD_BAN_BANTABLE_H
#define MOAT_MOD_BAN_BANTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* When offenses make a ban. Owned by the config snapshot; read-only. */
struct moat_ban_policy {
	unsigned threshold;        /* offenses within window_ms that ban (0 acts as 1) */
	uint64_t window_ms;        /* the window: fixed, opened by the first offense counted
				    * in it; 0: offenses never expire */
	uint64_t duration_ms;      /* first ban (0 acts as 1 ms) */
	uint64_t max_duration_ms;  /* repeat bans double up to this (below duration_ms: no
				    * growth); the repeat count is forgotten once this long has
				    * passed since the last ban ended */
};

struct moat_bans;

/* Writes sa's address in 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d;
 * any other family (a unix socket) as all zeros. Pure. */
void moat_ban_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16]);

/* A table tracking at most max_entries addresses (at least 1, at most
 * 2^36; memory grows by doubling to about 72 bytes an address). The hash key comes
 * from getrandom. Returns NULL when out of memory or max_entries is 0.
 * Owned by the caller, for the life of the process. */
struct moat_bans *moat_bans_new(size_t max_entries);

/* Frees b (NULL is fine); no other call may be running or follow. */
void moat_bans_free(struct moat_bans *b);

/*
 * Counts one offense of addr at now_ms under policy p, `reason` being the
 * caller's code for what it did (kept with the ban). Returns 1 when this
 * offense crosses the threshold and bans the address, 0 otherwise. While
 * the address is banned, offenses are ignored: they neither count nor
 * extend the ban. *until_ms gets the end of the address's ban when it is
 * banned after the call (by this offense or an earlier one), else 0.
 * Does not allocate except when its shard grows. Any thread.
 */
int moat_bans_offend(struct moat_bans *b, const struct moat_ban_policy *p,
		     const unsigned char addr[16], unsigned reason, uint64_t now_ms,
		     uint64_t *until_ms);

/* 1 when addr is banned at now_ms, else 0. One relaxed atomic load while
 * no ban is active; otherwise a hash, a shard lock and a short chain.
 * Also retires bans that have ended when one is due. Any thread. */
int moat_bans_check(struct moat_bans *b, const unsigned char addr[16], uint64_t now_ms);

/* Bans addr from now_ms for duration_ms (an operator's ban), whatever its
 * offenses; replaces the end of a ban it already has (so may shorten it)
 * and leaves its repeat count as it was. Returns 0, -EINVAL when
 * duration_ms is 0, -ENOSPC when its shard is full of active bans,
 * -ENOMEM. Any thread. */
int moat_bans_add(struct moat_bans *b, const unsigned char addr[16], uint64_t now_ms,
		  uint64_t duration_ms, unsigned reason);

/* Forgets addr altogether: its ban, offenses and repeat count. Returns 1
 * if it held a ban (one past its end that no call has retired yet counts),
 * 0 if not. Any thread. */
int moat_bans_lift(struct moat_bans *b, const unsigned char addr[16]);

/*
 * Calls cb once for each address banned at now_ms, with the ban's end,
 * the address's count of automatic bans (its repeat count: this ban
 * included if automatic; a manual ban does not count) and the reason kept
 * with the ban; returns how many. cb runs with a shard lock held: it must be
 * quick and must not call moat_bans_* itself. Order is unspecified. Any
 * thread (the admin thread).
 */
size_t moat_bans_list(struct moat_bans *b, uint64_t now_ms,
		      void (*cb)(void *ctx, const unsigned char addr[16], uint64_t until_ms,
				 unsigned count, unsigned reason),
		      void *ctx);

/* Bans not yet retired: every active ban, and ended ones until a call
 * with a later now_ms retires them (check, offend, add and list do when
 * one is due). Any thread; one relaxed load. */
size_t moat_bans_active(const struct moat_bans *b);

#endif
