/*
 * waf_mod.c - the "waf" module: routes with `waf:` have each request
 * inspected by ModSecurity v3 with the OWASP Core Rule Set (modsec.c).
 *
 * Rule sets are loaded on the control thread when a config generation is
 * built, one per distinct setting (mode, paranoia, threshold, body limit,
 * CRS directory), and kept in the process state with a reference count,
 * so a reload that keeps the settings does not load the CRS again. A
 * request without a body is inspected at once; one with a body first has
 * up to waf.body_limit bytes of it read (the rest passes uninspected),
 * while its head is kept in the txn's slot. Blocked: 403 with a reference
 * "waf-<hex>" that the error-log line carries with the rule and score.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "conf/conf.h"
#include "core/log.h"
#include "mod/waf/modsec.h"
#include "mod/waf/waf_mod.h"
#include "proxy/phase.h"

/* One loaded rule set, shared by the generations that use it. */
struct ruleset {
	struct moat_waf *waf;
	int detect_only;
	unsigned paranoia, threshold;
	uint64_t body_limit;
	char *crs;
	unsigned refs;
	struct ruleset *next;
};

struct waf_state {
	pthread_mutex_t lock;
	struct ruleset *sets;
	uint64_t ids;               /* reference numbers: random start, then counted */
	pthread_mutex_t id_lock;
};

/* A generation: the rule set of each route (NULL: no WAF). */
struct waf_gen {
	size_t n;
	struct ruleset *route[];
};

/* What the body hook needs of the head, copied (the head is gone by then). */
struct waf_slot {
	struct moat_waf_header *headers;
	size_t nheaders;
	char *method, *uri;
	size_t method_len, uri_len;
	char version[4];
	struct moat_waf_header hdrs[]; /* then the strings */
};

static int str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static int waf_start(const struct moat_conf *conf, void **state)
{
	struct waf_state *st = calloc(1, sizeof(*st));

	(void)conf;
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->id_lock, NULL);
	if (getrandom(&st->ids, sizeof(st->ids), 0) != sizeof(st->ids))
		st->ids = (uint64_t)(uintptr_t)st;
	*state = st;
	return 0;
}

static void waf_stop(void *state)
{
	struct waf_state *st = state;

	while (st->sets) {
		struct ruleset *s = st->sets;

		st->sets = s->next;
		moat_waf_free(s->waf);
		free(s->crs);
		free(s);
	}
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->id_lock);
	free(st);
}

static void put_set(struct waf_state *st, struct ruleset *s)
{
	struct ruleset **p;

	pthread_mutex_lock(&st->lock);
	if (--s->refs == 0) {
		for (p = &st->sets; *p; p = &(*p)->next)
			if (*p == s) {
				*p = s->next;
				break;
			}
	} else {
		s = NULL;
	}
	pthread_mutex_unlock(&st->lock);
	if (s) {
		moat_waf_free(s->waf);
		free(s->crs);
		free(s);
	}
}

/* The rule set for `w`, loaded or shared. Control thread. */
static struct ruleset *get_set(struct waf_state *st, const struct moat_conf_waf *w, char **why)
{
	struct moat_waf_conf wc = {
		.detect_only = w->detect_only,
		.paranoia = w->paranoia,
		.anomaly_threshold = w->anomaly_threshold,
		.body_limit = (size_t)w->body_limit,
		.crs_dir = w->crs,
	};
	struct ruleset *s;

	pthread_mutex_lock(&st->lock);
	for (s = st->sets; s; s = s->next)
		if (s->detect_only == w->detect_only && s->paranoia == w->paranoia && s->threshold == w->anomaly_threshold &&
		    s->body_limit == w->body_limit && str_eq(s->crs, w->crs)) {
			s->refs++;
			pthread_mutex_unlock(&st->lock);
			return s;
		}
	pthread_mutex_unlock(&st->lock);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->waf = moat_waf_new(&wc, why);
	if (!s->waf) {
		free(s);
		return NULL;
	}
	s->detect_only = w->detect_only;
	s->paranoia = w->paranoia;
	s->threshold = w->anomaly_threshold;
	s->body_limit = w->body_limit;
	s->crs = w->crs ? strdup(w->crs) : NULL;
	s->refs = 1;
	pthread_mutex_lock(&st->lock);
	s->next = st->sets;
	st->sets = s;
	pthread_mutex_unlock(&st->lock);
	return s;
}

static void waf_gen_free(void *state, void *gen)
{
	struct waf_gen *g = gen;

	for (size_t i = 0; i < g->n; i++)
		if (g->route[i])
			put_set(state, g->route[i]);
	free(g);
}

static int waf_gen_build(void *state, const struct moat_conf *conf, void **gen, char **why)
{
	struct waf_gen *g;
	size_t i, any = 0;

	for (i = 0; i < conf->nroutes; i++)
		any |= (size_t)conf->routes[i].waf.enabled;
	if (!any)
		return 0;
	g = calloc(1, sizeof(*g) + conf->nroutes * sizeof(g->route[0]));
	if (!g)
		return -1;
	g->n = conf->nroutes;
	for (i = 0; i < conf->nroutes; i++) {
		char *err = NULL;

		if (!conf->routes[i].waf.enabled)
			continue;
		g->route[i] = get_set(state, &conf->routes[i].waf, &err);
		if (!g->route[i]) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s:%u:%u: routes[%zu].waf: %s", conf->file ? conf->file : "config",
				 conf->routes[i].pos.line, conf->routes[i].pos.col, i, err ? err : "out of memory");
			free(err);
			*why = strdup(msg);
			waf_gen_free(state, g);
			return -1;
		}
	}
	*gen = g;
	return 0;
}

static void slot_free(void *state, void *slot)
{
	(void)state;
	free(slot);
}

/* Copies method, target and headers of the head into one allocation. */
static struct waf_slot *copy_head(const struct moat_h1_head *h)
{
	size_t bytes = h->method_len + h->target_len + 2, i, o = 0;
	struct waf_slot *s;

	for (i = 0; i < h->nheaders; i++)
		bytes += h->headers[i].name_len + h->headers[i].value_len;
	s = malloc(sizeof(*s) + h->nheaders * sizeof(struct moat_waf_header) + bytes);
	if (!s)
		return NULL;
	s->headers = s->hdrs;
	{
		char *str = (char *)(s->hdrs + h->nheaders);

		s->nheaders = h->nheaders;
		for (i = 0; i < h->nheaders; i++) {
			memcpy(str + o, h->headers[i].name, h->headers[i].name_len);
			s->headers[i].name = str + o;
			s->headers[i].name_len = h->headers[i].name_len;
			o += h->headers[i].name_len;
			memcpy(str + o, h->headers[i].value, h->headers[i].value_len);
			s->headers[i].value = str + o;
			s->headers[i].value_len = h->headers[i].value_len;
			o += h->headers[i].value_len;
		}
		memcpy(str + o, h->method, h->method_len);
		s->method = str + o;
		s->method_len = h->method_len;
		o += h->method_len;
		memcpy(str + o, h->target, h->target_len);
		s->uri = str + o;
		s->uri_len = h->target_len;
	}
	snprintf(s->version, sizeof(s->version), "1.%d", h->minor_version == 0 ? 0 : 1);
	return s;
}

static unsigned port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static enum moat_mod_verdict inspect(struct moat_mod_req *q, struct ruleset *set, const struct waf_slot *s,
				     const char *body, size_t body_len, int complete)
{
	struct waf_state *st = q->state;
	struct moat_waf_req wr = {
		.client_ip = moat_mod_client_text(q),
		.client_port = port_of(q->client),
		.method = s->method,
		.method_len = s->method_len,
		.uri = s->uri,
		.uri_len = s->uri_len,
		.version = s->version,
		.headers = s->headers,
		.nheaders = s->nheaders,
		.body = body,
		.body_len = body_len,
		.body_complete = complete,
	};
	struct moat_waf_verdict v;
	struct moat_mod_reply *r = q->reply;
	uint64_t id;

	memset(&v, 0, sizeof(v));
	if (moat_waf_check(set->waf, &wr, &v) < 0) {
		/* fail closed: a request the WAF could not look at does not pass */
		memset(&v, 0, sizeof(v));
		v.block = 1;
		v.status = 500;
		snprintf(v.msg, sizeof(v.msg), "WAF internal error");
	}
	if (!v.block && v.score == 0 && v.rule_id == 0)
		return MOAT_MOD_NEXT;
	pthread_mutex_lock(&st->id_lock);
	id = st->ids++;
	pthread_mutex_unlock(&st->id_lock);
	snprintf(r->id, sizeof(r->id), "waf-%08llx", (unsigned long long)(id & 0xffffffffull));
	snprintf(r->detail, sizeof(r->detail), "rule %u, score %u: %.120s; matched %.80s", v.rule_id, v.score, v.msg,
		 v.matched);
	if (!v.block) {
		if (v.score > 0)
			MOAT_INFO("%s: waf (detect only) %s on %.*s: %s", moat_mod_client_text(q), r->id, (int)s->uri_len,
				  s->uri, r->detail);
		return MOAT_MOD_NEXT;
	}
	r->status = v.status ? v.status : 403;
	r->refusal = MOAT_REFUSE_WAF;
	r->offense = MOAT_OFFENSE_WAF;
	r->why = "blocked by the WAF";
	return MOAT_MOD_REFUSE;
}

static struct ruleset *route_set(const struct moat_mod_req *q)
{
	const struct waf_gen *g = q->gen;

	return g && q->route_idx < g->n ? g->route[q->route_idx] : NULL;
}

static enum moat_mod_verdict waf_request(struct moat_mod_req *q)
{
	struct ruleset *set = route_set(q);
	const struct moat_h1_head *h = q->h;
	struct waf_slot *s;

	if (!set || !h)
		return MOAT_MOD_NEXT;
	s = copy_head(h);
	if (!s) {
		q->reply->status = 503;
		q->reply->refusal = MOAT_REFUSE_WAF;
		q->reply->why = "out of memory for the WAF";
		return MOAT_MOD_REFUSE;
	}
	if (h->framing == MOAT_H1_BODY_NONE || (h->framing == MOAT_H1_BODY_LENGTH && h->content_length == 0) ||
	    set->body_limit == 0) {
		enum moat_mod_verdict v = inspect(q, set, s, NULL, 0, h->framing == MOAT_H1_BODY_NONE ||
								   h->content_length == 0);

		free(s);
		return v;
	}
	*q->slot = s;
	q->reply->body_want = (size_t)set->body_limit;
	return MOAT_MOD_BODY;
}

static enum moat_mod_verdict waf_body(struct moat_mod_req *q)
{
	struct ruleset *set = route_set(q);
	struct waf_slot *s = *q->slot;
	enum moat_mod_verdict v;

	if (!set || !s)
		return MOAT_MOD_NEXT;
	v = inspect(q, set, s, q->body, q->body_len, q->body_complete);
	free(s);
	*q->slot = NULL;
	return v;
}

static int waf_route_on(const struct moat_conf_route *r)
{
	return r->waf.enabled;
}

const struct moat_mod moat_mod_waf = {
	.name = "waf",
	.start = waf_start,
	.stop = waf_stop,
	.gen_build = waf_gen_build,
	.gen_free = waf_gen_free,
	.route_on = waf_route_on,
	.request = waf_request,
	.body = waf_body,
	.txn_end = slot_free,
};
