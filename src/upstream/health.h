/*
 * health.h - active health checks and DNS re-resolution, on their own
 * thread so that N workers do not multiply the probes.
 *
 * The checker is handed each config generation with its server bindings
 * (state.h). For every upstream with a health_check block it probes each
 * server every interval (HTTP request, status range, optional body
 * substring, timeout), counts consecutive results, and flips the server's
 * shared `up` after `fall` failures / `rise` successes, logging the change.
 * For servers named by a DNS name it re-resolves every resolve_interval
 * and stores a changed address (workers connect to the new one from then
 * on). State of servers kept across a reload (same upstream and address as
 * written) carries over.
 *
 * What the checker writes in a server's state (state.h), from its thread
 * only: `up`; when a server comes back up also `back_since` (monotonic ms)
 * and the passive-ejection figures (`ejected_until`, `ejections`,
 * `failures`, cleared); the address, through moat_srv_set_addr. Lookups
 * run on a second thread of the checker, so that a slow resolver never
 * delays a probe; a failed lookup keeps the address.
 */
#ifndef MOAT_UPSTREAM_HEALTH_H
#define MOAT_UPSTREAM_HEALTH_H

#include "conf/conf.h"
#include "upstream/state.h"

struct moat_health;

/* Starts the checker thread (idle until the first moat_health_set).
 * Returns NULL on failure. Control thread. */
struct moat_health *moat_health_start(void);

/* Hands the checker a generation: `c` and its bindings `ups`
 * (c->nupstreams). The checker calls release(arg) once it no longer uses
 * the previous generation it was given (from its own thread), and for the
 * last one at stop. A generation handed while the one before it still
 * waits to be taken replaces it: the replaced one was never used and is
 * released at once, from the calling thread. The checker switches at its
 * next loop iteration: probes in flight are dropped, schedules restart
 * (first probe at once), rise/fall counts carry over for every server
 * state the new bindings share with the old (same pointer); servers of an
 * upstream without health_check are marked up. Control thread. */
void moat_health_set(struct moat_health *h, const struct moat_conf *c, struct moat_upstream_rt *ups,
		     void (*release)(void *arg), void *arg);

/* Stops both threads and releases the generation it holds (and one
 * handed but not yet taken); frees `h`. Waits for a DNS lookup in
 * progress to return (getaddrinfo cannot be interrupted). NULL is
 * allowed. Control thread. */
void moat_health_stop(struct moat_health *h);

/* Pure: the outcome of one probe. `status` the response status (0 when no
 * valid response came), `body`/`len` what was read of the body. Returns 1
 * when healthy under `hc`. */
int moat_health_judge(const struct moat_conf_health *hc, int status, const char *body, size_t len);

/* Pure: rise/fall counting. `*up` the current state, `*streak` the
 * consecutive results opposite to it; `ok` the latest result. Returns 1
 * when *up changed. */
int moat_health_count(int *up, unsigned *streak, int ok, unsigned rise, unsigned fall);

#endif
