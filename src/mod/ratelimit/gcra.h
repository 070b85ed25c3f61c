/*
 * gcra.h - the rate-limit math: GCRA (generic cell rate algorithm), pure.
 *
 * One key's whole state is one number, its theoretical arrival time (tat):
 * the time at which the key would be back to an empty bucket if every
 * request it was allowed so far had gone out exactly at the rate. A
 * request at `now` is measured by how far tat runs ahead of now (the
 * "excess", in microseconds: k intervals ahead = k requests queued above
 * the rate). The semantics are nginx's limit_req:
 *
 *   excess = max(tat, now) - now          (before this request)
 *   excess >  burst * interval            REJECT (tat unchanged)
 *   excess >  delay_after * interval      DELAY by excess - delay_after * interval
 *   otherwise                             PASS
 *   on PASS and DELAY: tat = max(tat, now) + interval
 *
 * So from an empty state burst + 1 requests are accepted at once, then one
 * per interval. With `delay`, the first delay_after + 1 pass at once, the
 * next burst - delay_after are delayed so that they leave at the rate, the
 * rest are rejected. A key whose tat <= now is in the same state as a key
 * never seen (tat 0): that is what lets a store forget it.
 *
 * No clock is read: callers pass now (any monotonic microsecond clock;
 * every caller of one key must use the same one). Integer math only,
 * saturating at UINT64_MAX, so no policy or time value overflows.
 */
#ifndef MOAT_MOD_RATELIMIT_GCRA_H
#define MOAT_MOD_RATELIMIT_GCRA_H

#include <stdint.h>

/* A limit: count requests per period, with a burst. Owned by the config
 * snapshot that declares it; read-only, shared by every worker. */
struct moat_gcra_policy {
	uint64_t interval_us;  /* emission interval: 1e6 * period_s / count, e.g. 10/s -> 100000;
				* 0: no limit (every request passes, no state kept) */
	uint64_t burst;        /* requests above the rate accepted at once */
	int delay;             /* 0: never delay (nginx "nodelay"); else see delay_after */
	uint64_t delay_after;  /* with delay: requests past this many above the rate are
				* delayed, up to burst (values above burst act as burst) */
};

enum moat_gcra_verdict {
	MOAT_GCRA_PASS,        /* go now */
	MOAT_GCRA_DELAY,       /* accepted: hold it wait_us, then go */
	MOAT_GCRA_REJECT       /* refuse (429 or 503, the caller's choice) */
};

struct moat_gcra_result {
	enum moat_gcra_verdict verdict;
	uint64_t wait_us;      /* DELAY: how long to hold this request;
				* REJECT: time until a request would be accepted again (Retry-After;
				* with delay, such a request may itself be DELAYed); PASS: 0 */
	uint64_t remaining;    /* requests that would still be accepted (PASS or DELAY) at this
				* same instant after this one; 0 on REJECT; UINT64_MAX with no limit */
	uint64_t reset_us;     /* time until the key is back to empty (full quota) */
};

/*
 * Measures one request of a key at now_us against policy p and fills r.
 * *tat is the key's state (0 for a key never seen); it is advanced on
 * PASS and DELAY and left as it was on REJECT. Pure: no clock, no
 * globals, no allocation; callers serialise the calls of one key (the
 * store holds its shard lock). A now_us older than one already used for
 * the key (clocks read on different threads, a caller preempted between
 * reading the clock and calling) is safe: the request is measured as if
 * it came at now_us, so the error is at most that skew.
 */
void moat_gcra_take(const struct moat_gcra_policy *p, uint64_t *tat, uint64_t now_us,
		    struct moat_gcra_result *r);

#endif
