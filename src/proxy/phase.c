/*
 * phase.c - runs the modules' hooks (phase.h) at their points of a
 * connection's and a request's way, and turns what they ask for into
 * moat's answers, holds and body reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sock.h"
#include "proxy/errpage.h"
#include "proxy/phase.h"
#include "proxy/proxy.h"

static const struct moat_mod *const *mods;
static size_t nmods;

void moat_phase_set(const struct moat_mod *const *m, size_t n)
{
	mods = m;
	nmods = n < MOAT_MOD_MAX ? n : MOAT_MOD_MAX;
}

size_t moat_phase_count(void)
{
	return nmods;
}

const struct moat_mod *moat_phase_mod(size_t i)
{
	return i < nmods ? mods[i] : NULL;
}

int moat_phase_start(struct moat_runtime *rt, const struct moat_conf *conf)
{
	for (size_t i = 0; i < nmods; i++)
		if (mods[i]->start && mods[i]->start(conf, &rt->mod_state[i]) < 0) {
			MOAT_ERR("module %s: cannot start", mods[i]->name);
			return -ENOMEM;
		}
	return 0;
}

void moat_phase_stop(struct moat_runtime *rt)
{
	for (size_t i = nmods; i-- > 0;)
		if (mods[i]->stop && rt->mod_state[i])
			mods[i]->stop(rt->mod_state[i]);
}

int moat_phase_gen_build(struct moat_runtime *rt, struct moat_confref *r, char **why)
{
	r->mod_state = rt->mod_state;
	r->route_mods = r->conf->nroutes ? malloc(r->conf->nroutes) : NULL;
	for (size_t k = 0; r->route_mods && k < r->conf->nroutes; k++) {
		uint8_t m = 0;

		for (size_t i = 0; i < nmods; i++)
			if (mods[i]->request && (!mods[i]->route_on || mods[i]->route_on(&r->conf->routes[k])))
				m |= (uint8_t)(1u << i);
		r->route_mods[k] = m;
	}
	for (size_t i = 0; i < nmods; i++) {
		if (!mods[i]->gen_build)
			continue;
		if (mods[i]->gen_build(rt->mod_state[i], r->conf, &r->mod_gen[i], why) < 0) {
			moat_phase_gen_free(r);
			return -1;
		}
	}
	return 0;
}

void moat_phase_gen_free(struct moat_confref *r)
{
	free(r->route_mods);
	r->route_mods = NULL;
	for (size_t i = 0; i < nmods; i++)
		if (mods[i]->gen_free && r->mod_gen[i]) {
			mods[i]->gen_free(r->mod_state ? r->mod_state[i] : NULL, r->mod_gen[i]);
			r->mod_gen[i] = NULL;
		}
}

/* Readies the reply for one hook: the fields a hook reads or may leave
 * alone (not the text buffers: ~900 bytes, five times a request). */
static void reply_init(struct moat_mod_reply *r)
{
	r->status = 0;
	r->refusal = MOAT_REFUSE_BAD_REQUEST;
	r->offense = -1;
	r->why = NULL;
	r->detail[0] = '\0';
	r->headers_len = 0;
	r->id[0] = '\0';
	r->delay_ms = 0;
	r->body_want = 0;
}

static void log_refusal(const struct moat_client *c, const struct moat_mod_reply *r, const char *client)
{
	const struct moat_txn *t = client ? c->txn : NULL;
	char line[640], where[160] = "";

	if (t && t->route) {
		const struct moat_conf_route *rt = t->route;

		snprintf(where, sizeof(where), " on routes[%zu] (%s%s)",
			 (size_t)(rt - t->wc->ref->conf->routes), rt->host ? rt->host : "",
			 rt->path_prefix ? rt->path_prefix : "/");
	}
	snprintf(line, sizeof(line), "%s%s%s%s%s%s%s", r->why ? r->why : "refused", where, r->detail[0] ? " (" : "",
		 r->detail, r->detail[0] ? ")" : "", r->id[0] ? " id=" : "", r->id);
	moat_client_log_refusal_as(c, client, r->status, line);
}

int moat_phase_admit(struct moat_client *c, const struct moat_conf_listener *l)
{
	struct moat_worker *w = c->w;
	const struct moat_conf *conf = w->conf->ref->conf;
	struct moat_mod_reply r;

	c->gone_mask = 0;
	for (size_t i = 0; i < nmods; i++) {
		int rc;

		if (!mods[i]->admit)
			continue;
		reply_init(&r);
		rc = mods[i]->admit(w->rt->mod_state[i], conf, l, (const struct sockaddr *)&c->peer, w->loop.now_ms,
				    &r);
		if (rc > 0)
			c->gone_mask |= (uint8_t)(1u << i);
		if (rc < 0) {
			/* undo the modules that counted it */
			for (size_t j = 0; j < i; j++)
				if (mods[j]->gone && (c->gone_mask & (1u << j)))
					mods[j]->gone(w->rt->mod_state[j], conf, (const struct sockaddr *)&c->peer);
			c->gone_mask = 0;
			MOAT_STAT_INC(w->stats.refusals[r.refusal]);
			log_refusal(c, &r, NULL);
			moat_client_close(c);
			return -1;
		}
	}
	c->admitted = 1;
	return 0;
}

void moat_phase_gone(struct moat_client *c)
{
	struct moat_worker *w = c->w;

	if (!c->admitted)
		return;
	c->admitted = 0;
	for (size_t i = 0; i < nmods; i++)
		if (mods[i]->gone && (c->gone_mask & (1u << i)))
			mods[i]->gone(w->rt->mod_state[i], w->conf->ref->conf, (const struct sockaddr *)&c->peer);
	c->gone_mask = 0;
}

void moat_phase_offense(struct moat_client *c, const struct sockaddr *client, int offense)
{
	struct moat_worker *w = c->w;

	for (size_t i = 0; i < nmods; i++)
		if (mods[i]->offense)
			mods[i]->offense(w->rt->mod_state[i], w->conf->ref->conf,
					 client ? client : (const struct sockaddr *)&c->peer, offense, w->loop.now_ms);
}

/* moat answers for the module: counted, logged (rate-limited), offense
 * counted, and the txn ends with that answer. */
static void refuse(struct moat_client *c, struct moat_mod_reply *r)
{
	struct moat_txn *t = c->txn;

	MOAT_STAT_INC(c->w->stats.refusals[r->refusal]);
	log_refusal(c, r, moat_txn_client_text(t));
	if (r->offense >= 0)
		moat_phase_offense(c, (const struct sockaddr *)&t->client, r->offense);
	moat_txn_answer(c, r->status, r->headers, r->headers_len, r->id);
}

const char *moat_mod_client_text(struct moat_mod_req *q)
{
	return moat_txn_client_text(q->t);
}

static void fill_req(struct moat_mod_req *q, struct moat_client *c, size_t i, struct moat_mod_reply *r)
{
	struct moat_txn *t = c->txn;

	reply_init(r);
	q->w = c->w;
	q->c = c;
	q->t = t;
	q->conf = t->wc->ref->conf;
	q->client = (const struct sockaddr *)&t->client;
	q->route = t->route;
	q->route_idx = (size_t)(t->route - q->conf->routes);
	q->state = c->w->rt->mod_state[i];
	q->gen = t->wc->ref->mod_gen[i];
	q->slot = &t->mod_slot[i];
	q->now_ms = c->w->loop.now_ms;
	q->reply = r;
	q->serve = &t->serve;
	t->serve.out = &c->out;
	q->fwd = &t->fwd;
	q->h = NULL;
	q->local = NULL;
	q->body = NULL;
	q->body_len = 0;
	q->body_complete = 0;
}

/* What a verdict does; 1 go on, 0 wait, -1 refused. */
static int act(struct moat_client *c, enum moat_mod_verdict v, struct moat_mod_reply *r, size_t i)
{
	struct moat_txn *t = c->txn;

	switch (v) {
	case MOAT_MOD_NEXT:
		return 1;
	case MOAT_MOD_REFUSE:
		refuse(c, r);
		return -1;
	case MOAT_MOD_DELAY:
		/* held once every module has seen the request (the head is
		 * gone after a hold): see moat_phase_request */
		if (r->delay_ms && c->w->loop.now_ms + r->delay_ms > t->hold_until)
			t->hold_until = c->w->loop.now_ms + r->delay_ms;
		return 1;
	case MOAT_MOD_SERVE:
		t->served = 1;
		return 2;
	case MOAT_MOD_WAIT:
		/* asked again (no head) once the wait is over */
		t->hold_until = c->w->loop.now_ms + (r->delay_ms ? r->delay_ms : 1);
		t->next_mod = (unsigned)i;
		t->phase = MOAT_TXN_HOLD;
		return 0;
	case MOAT_MOD_BODY: {
		/* room for what the module wants besides a head */
		size_t need = r->body_want + t->wc->ref->conf->limits.header_size_max + 16384;

		if (c->in.max < need) {
			if (!t->in_max_saved)
				t->in_max_saved = c->in.max;
			c->in.max = need;
		}
		t->phase = MOAT_TXN_INSPECT;
		t->inspect_want = r->body_want;
		t->inspect_mod = (unsigned)i;
		return 0;
	}
	}
	return 1;
}

int moat_phase_request(struct moat_client *c, const struct moat_h1_head *h)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply r;

	const uint8_t *rm = t->wc->ref->route_mods;
	unsigned on = rm ? rm[t->route - t->wc->ref->conf->routes] : 0xffu;

	while (t->next_mod < nmods) {
		size_t i = t->next_mod++;
		int rc;

		if (!mods[i]->request || !(on & (1u << i)))
			continue;
		fill_req(&q, c, i, &r);
		q.h = h;
		rc = act(c, mods[i]->request(&q), &r, i);
		if (rc != 1)
			return rc;
	}
	if (t->hold_until > c->w->loop.now_ms) {
		t->phase = MOAT_TXN_HOLD;
		return 0;
	}
	return 1;
}

int moat_phase_body(struct moat_client *c, const char *body, size_t len, int complete)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply r;
	size_t i = t->inspect_mod;
	int rc;

	t->phase = MOAT_TXN_NONE;
	if (i < nmods && mods[i]->body) {
		fill_req(&q, c, i, &r);
		q.body = body;
		q.body_len = len;
		q.body_complete = complete;
		rc = act(c, mods[i]->body(&q), &r, i);
		if (rc != 1)
			return rc;
	}
	/* the head is gone: the remaining hooks see no head */
	return moat_phase_request(c, NULL);
}

int moat_phase_resp_wanted(const struct moat_txn *t)
{
	for (size_t i = 0; i < nmods; i++)
		if (t->mod_slot[i] && (mods[i]->resp_head || mods[i]->resp_fail))
			return 1;
	return 0;
}

enum moat_mod_rverdict moat_phase_resp_head(struct moat_client *c, struct moat_mod_resp *r)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply rep;

	t->resp_watch = 0;
	t->resp_xform = -1;
	for (size_t i = 0; i < nmods; i++) {
		enum moat_mod_rverdict v;

		if (!mods[i]->resp_head || !t->mod_slot[i])
			continue;
		fill_req(&q, c, i, &rep);
		v = mods[i]->resp_head(&q, r);
		if (v == MOAT_MOD_R_SERVE) {
			t->served = 1;
			return v;
		}
		if (v == MOAT_MOD_R_WATCH)
			t->resp_watch |= (uint8_t)(1u << i);
		else if (v == MOAT_MOD_R_TRANSFORM && t->resp_xform < 0)
			t->resp_xform = (int8_t)i;
	}
	return t->resp_xform >= 0 ? MOAT_MOD_R_TRANSFORM : t->resp_watch ? MOAT_MOD_R_WATCH : MOAT_MOD_R_PASS;
}

void moat_phase_resp_sent(struct moat_client *c, const char *head, size_t len)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply rep;

	for (size_t i = 0; i < nmods; i++)
		if ((t->resp_watch & (1u << i)) && mods[i]->resp_sent) {
			fill_req(&q, c, i, &rep);
			mods[i]->resp_sent(&q, head, len);
		}
}

int moat_phase_resp_watch(struct moat_client *c, const char *data, size_t len, int end)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply rep;

	for (size_t i = 0; i < nmods; i++)
		if ((t->resp_watch & (1u << i)) && mods[i]->resp_body) {
			fill_req(&q, c, i, &rep);
			if (mods[i]->resp_body(&q, data, len, end, NULL) < 0)
				t->resp_watch &= (uint8_t)~(1u << i);
		}
	return 0;
}

int moat_phase_resp_xform(struct moat_client *c, const char *data, size_t len, int end, struct moat_mod_sink *k)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply rep;
	size_t i = (size_t)t->resp_xform;

	fill_req(&q, c, i, &rep);
	return mods[i]->resp_body(&q, data, len, end, k);
}

int moat_phase_resp_fail(struct moat_client *c, int status)
{
	struct moat_txn *t = c->txn;
	struct moat_mod_req q;
	struct moat_mod_reply rep;

	if (!t->route)
		return 0;
	for (size_t i = 0; i < nmods; i++) {
		if (!mods[i]->resp_fail || !t->mod_slot[i])
			continue;
		fill_req(&q, c, i, &rep);
		if (mods[i]->resp_fail(&q, status) == MOAT_MOD_SERVE) {
			t->served = 1;
			return 1;
		}
	}
	return 0;
}

void moat_phase_txn_end(struct moat_txn *t)
{
	for (size_t i = 0; i < nmods; i++)
		if (t->mod_slot[i]) {
			if (mods[i]->txn_end)
				mods[i]->txn_end(t->wc ? t->wc->ref->mod_state[i] : NULL, t->mod_slot[i]);
			t->mod_slot[i] = NULL;
		}
}

int moat_phase_admin(struct moat_runtime *rt, const char *method, const char *path, const char *body,
		     size_t body_len, struct moat_buf *out)
{
	for (size_t i = 0; i < nmods; i++) {
		size_t n = strlen(mods[i]->name);

		if (!mods[i]->admin || strncmp(path, "/api/", 5) != 0 || strncmp(path + 5, mods[i]->name, n) != 0 ||
		    (path[5 + n] != '\0' && path[5 + n] != '/' && path[5 + n] != '?'))
			continue;
		return mods[i]->admin(rt->mod_state[i], method, path + 5 + n, body, body_len, out);
	}
	return -1;
}

size_t moat_phase_metrics(struct moat_runtime *rt, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < nmods && n < cap; i++)
		if (mods[i]->metrics)
			n += mods[i]->metrics(rt->mod_state[i], out + n, cap - n);
	return n;
}
