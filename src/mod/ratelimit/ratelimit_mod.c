/*
 * ratelimit_mod.c - the "ratelimit" module: the policies a route names
 * (rate_limits:), each a GCRA limit on a key built from the request.
 *
 * The counters live in one store for the whole node (store.h: sharded,
 * bounded, shared by every worker, kept across reloads), behind an
 * interface a cluster-wide store can take over. A key is the keyed hash
 * of the policy's name and the request's parts (client address, route,
 * a header's or a cookie's value); a request that lacks a header or
 * cookie its key needs is not limited by that policy (as nginx does with
 * an empty key). Over the limit: the policy's status (429) with
 * Retry-After, RateLimit-Policy and RateLimit (draft-ietf-httpapi-
 * ratelimit-headers); with delay_after, requests are held instead.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "conf/conf.h"
#include "mod/ratelimit/gcra.h"
#include "mod/ratelimit/ratelimit_mod.h"
#include "mod/ratelimit/store.h"
#include "proxy/phase.h"

struct rl_state {
	struct moat_limit_store store;
	uint64_t seed;
};

static int rl_start(const struct moat_conf *conf, void **state)
{
	struct rl_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	if (getrandom(&st->seed, sizeof(st->seed), 0) != sizeof(st->seed))
		st->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)st;
	if (moat_limit_store_local_init(&st->store, (size_t)conf->limits.rate_limit_keys) < 0) {
		free(st);
		return -ENOMEM;
	}
	*state = st;
	return 0;
}

static void rl_stop(void *state)
{
	struct rl_state *st = state;

	moat_limit_store_destroy(&st->store);
	free(st);
}

/* The value of cookie `name` in the Cookie fields, or NULL. */
static const char *find_cookie(const struct moat_h1_head *h, const char *name, size_t *len)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < h->nheaders; i++) {
		const char *v = h->headers[i].value, *end = v + h->headers[i].value_len;

		if (!moat_h1_name_is(&h->headers[i], "cookie", 6))
			continue;
		while (v < end) {
			const char *semi = memchr(v, ';', (size_t)(end - v)), *eq;

			if (!semi)
				semi = end;
			while (v < semi && (*v == ' ' || *v == '\t'))
				v++;
			eq = memchr(v, '=', (size_t)(semi - v));
			if (eq && (size_t)(eq - v) == n && memcmp(v, name, n) == 0) {
				*len = (size_t)(semi - eq - 1);
				return eq + 1;
			}
			v = semi + 1;
		}
	}
	return NULL;
}

/* The key's bytes: parts joined with their lengths (so that "a"+"bc" and
 * "ab"+"c" differ). Returns the length, or 0 when a part is missing. */
static size_t build_key(const struct moat_conf_ratelimit *rl, const struct moat_mod_req *q, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < rl->nkey; i++) {
		const struct moat_conf_rl_part *p = &rl->key[i];
		const char *v = NULL;
		size_t n = 0;
		char tmp[24];
		uint32_t l32;

		switch (p->kind) {
		case MOAT_RL_CLIENT_IP:
			if (q->client->sa_family == AF_INET) {
				v = (const char *)&((const struct sockaddr_in *)q->client)->sin_addr;
				n = 4;
			} else {
				v = (const char *)&((const struct sockaddr_in6 *)q->client)->sin6_addr;
				n = 16;
			}
			break;
		case MOAT_RL_ROUTE:
			n = (size_t)snprintf(tmp, sizeof(tmp), "%zu", q->route_idx);
			v = tmp;
			break;
		case MOAT_RL_HEADER: {
			const struct moat_h1_header *f = moat_h1_find(q->h, p->name, strlen(p->name));

			if (!f || f->value_len == 0)
				return 0;
			v = f->value;
			n = f->value_len;
			break;
		}
		case MOAT_RL_COOKIE:
			v = find_cookie(q->h, p->name, &n);
			if (!v || n == 0)
				return 0;
			break;
		}
		if (n > 1024)
			n = 1024; /* a longer value keys on its first KiB */
		if (o + 4 + n > cap)
			return 0;
		l32 = (uint32_t)n;
		memcpy(buf + o, &l32, 4);
		memcpy(buf + o + 4, v, n);
		o += 4 + n;
	}
	return o;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static uint64_t ceil_s(uint64_t us)
{
	return (us + 999999) / 1000000;
}

static void refuse(struct moat_mod_req *q, const struct moat_conf_ratelimit *rl,
		   const struct moat_gcra_policy *p, const struct moat_gcra_result *g)
{
	struct moat_mod_reply *r = q->reply;
	uint64_t window = ceil_s(p->interval_us * (p->burst + 1));
	int n;

	r->status = (int)rl->status;
	r->refusal = MOAT_REFUSE_RATE_LIMIT;
	r->offense = MOAT_OFFENSE_RATE_LIMIT;
	r->why = "over its rate limit";
	snprintf(r->detail, sizeof(r->detail), "rate_limit %s", rl->name);
	n = snprintf(r->headers, sizeof(r->headers),
		     "Retry-After: %llu\r\nRateLimit-Policy: \"%s\";q=%llu;w=%llu\r\n"
		     "RateLimit: \"%s\";r=0;t=%llu\r\n",
		     (unsigned long long)(ceil_s(g->wait_us) ? ceil_s(g->wait_us) : 1), rl->name,
		     (unsigned long long)(p->burst + 1), (unsigned long long)(window ? window : 1), rl->name,
		     (unsigned long long)(ceil_s(g->wait_us) ? ceil_s(g->wait_us) : 1));
	r->headers_len = n > 0 && (size_t)n < sizeof(r->headers) ? (size_t)n : 0;
}

static enum moat_mod_verdict rl_request(struct moat_mod_req *q)
{
	struct rl_state *st = q->state;
	const struct moat_conf_route *route = q->route;
	uint64_t now_us, delay_us = 0;
	struct timespec ts;
	char key[2048];

	if (q->h == NULL || route->nrate_limits == 0)
		return MOAT_MOD_NEXT;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	for (size_t i = 0; i < route->nrate_limits; i++) {
		const struct moat_conf_ratelimit *rl = &q->conf->rate_limits[route->rate_limits[i]];
		struct moat_gcra_policy p = {
			.interval_us = rl->period_ms * 1000u / rl->count,
			.burst = rl->burst,
			.delay = rl->delay,
			.delay_after = rl->delay_after,
		};
		struct moat_gcra_result g;
		size_t n = build_key(rl, q, key, sizeof(key));

		if (n == 0)
			continue;
		if (p.interval_us == 0)
			p.interval_us = 1;
		if (moat_limit_store_take(&st->store, moat_limit_key(st->seed, name_hash(rl->name), key, n), &p, now_us,
					  &g) < 0)
			continue; /* the store could not answer: fail open */
		if (g.verdict == MOAT_GCRA_REJECT) {
			refuse(q, rl, &p, &g);
			return MOAT_MOD_REFUSE;
		}
		if (g.verdict == MOAT_GCRA_DELAY && g.wait_us > delay_us)
			delay_us = g.wait_us;
	}
	if (delay_us) {
		q->reply->delay_ms = (delay_us + 999) / 1000;
		return MOAT_MOD_DELAY;
	}
	return MOAT_MOD_NEXT;
}

static int rl_route_on(const struct moat_conf_route *r)
{
	return r->nrate_limits > 0;
}

const struct moat_mod moat_mod_ratelimit = {
	.name = "ratelimit",
	.start = rl_start,
	.stop = rl_stop,
	.route_on = rl_route_on,
	.request = rl_request,
};
