/*
 * cache_mod.c - the "cache" module: moat's shared HTTP cache (RFC 9111,
 * RFC 5861, RFC 9211) on the routes whose config turns it on.
 *
 * The decisions are policy.c's (pure); the objects are store.c's (shared
 * by every worker, memory and disk). This file is the glue on the
 * request's way (phase.h):
 *
 *   request ── GET / HEAD: key, lookup ──┬─ usable: SERVE the stored response
 *            │                           │   (Age, Cache-Status, 304 / 206 / HEAD)
 *            │                           ├─ stale-while-revalidate: SERVE it and
 *            │                           │   refresh in the background (one fetch)
 *            │                           ├─ another request fetches it: WAIT, look again
 *            │                           └─ miss / must revalidate: forward (whole
 *            │                               response, conditional when a stored one
 *            │                               has validators)
 *            ├─ PURGE from purge_from: SERVE {"purged": N} (by URL or Cache-Tag)
 *            └─ other methods: forward; a 2xx / 3xx invalidates the URL
 *   resp_head ── 304 to our conditional: merge its fields, SERVE the stored one
 *             ── 5xx with a stale one allowed: SERVE it (stale-if-error)
 *             ── storable: WATCH (resp_sent builds the stored head, resp_body
 *                fills the object, inserted at the end)
 *   resp_fail ── no answer: a stale one allowed by stale-if-error / stale_grace
 *   txn_end ─── releases what the txn held (a fill lock, a half-filled object)
 *
 * Per-txn state is a malloc'd slot, only on routes with a cache.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/cachecontrol.h"
#include "mod/cache/cache_mod.h"
#include "mod/cache/policy.h"
#include "mod/cache/store.h"
#include "proxy/phase.h"

#define HFM_MS        5000u     /* an uncacheable fetch: no coalescing on that URL for this long */
#define LOCK_MS       30000u    /* a fill lock not released in this long is taken over */
#define WAIT_FIRST_MS 2u        /* a coalesced request looks again after this, doubling ... */
#define WAIT_MAX_MS   50u       /* ... up to this */
#define KEY_MAX       8192u

struct cache_state {
	pthread_mutex_t lock;           /* store creation / resize (control thread vs admin) */
	struct moat_cache_store *store; /* NULL until a config turns the cache on */
	atomic_ullong hits, misses, stale, revalidated, stored, purged;
	atomic_ullong filling;          /* body bytes of objects being filled, all workers: at
					 * most cache.memory (past it a response is streamed,
					 * not stored) */
};

enum slot_kind {
	K_LOOKUP = 0,   /* GET / HEAD */
	K_UNSAFE,       /* may invalidate */
	K_OTHER,
};

struct cslot {
	enum slot_kind kind;
	int head;                       /* HEAD request */
	/* method, key and host live in the slot's own allocation, after it */
	char *key;
	size_t key_len;
	char *host;                     /* the request's Host (for Location invalidation) */
	size_t host_len;
	char *method;
	size_t method_len;
	struct moat_cache_req req;
	/* the request's fields, copied when they are needed after the head is
	 * gone (vary key of the response, a look after waiting) */
	char *fbuf;
	struct moat_h1_header *fields;
	size_t nfields;
	struct moat_cache_obj *obj;     /* a stored one (revalidated, stale stand-in) */
	struct moat_cache_obj *fill;    /* being filled from the backend */
	int fill_bad;
	uint64_t fill_bytes;            /* counted in cache_state.filling */
	uint64_t token;
	int locked;
	uint64_t wait_until, wait_ms;
	int waited;
	int cond_sent;                  /* our validators went to the backend */
	int64_t request_time;
	enum moat_cache_fwd fwd;        /* why it was forwarded */
	int64_t resp_time;
	char tags[512];
	size_t tags_len;
	char *purge_body;
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* ---- module lifecycle ---- */

static int cm_start(const struct moat_conf *conf, void **state)
{
	struct cache_state *st = calloc(1, sizeof(*st));

	(void)conf;
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	*state = st;
	return 0;
}

static void cm_stop(void *state)
{
	struct cache_state *st = state;

	if (st->store)
		moat_cache_store_close(st->store);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* The store is opened by the first config that turns the cache on and
 * kept across reloads (a new budget resizes it; the disk directory is
 * the one of that first config). */
static int cm_gen_build(void *state, const struct moat_conf *conf, void **gen, char **why)
{
	struct cache_state *st = state;
	int rc = 0;

	*gen = NULL;
	if (!conf->cache.on)
		return 0;
	pthread_mutex_lock(&st->lock);
	if (!st->store) {
		struct moat_cache_store_cfg cfg = {
			.memory = conf->cache.memory,
			.disk = conf->cache.disk,
			.disk_size = conf->cache.disk_size,
			.max_object = conf->cache.max_object,
			.hfm_ms = HFM_MS,
			.lock_ms = LOCK_MS,
		};

		st->store = moat_cache_store_open(&cfg, why);
		if (!st->store)
			rc = -1;
	} else {
		moat_cache_store_resize(st->store, conf->cache.memory, conf->cache.max_object);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static void cm_gen_free(void *state, void *gen)
{
	(void)state;
	(void)gen;
}

/* ---- helpers ---- */

static void cfg_of(const struct moat_conf_route_cache *rc, struct moat_cache_cfg *cfg)
{
	moat_cache_cfg_default(cfg);
	cfg->allow_set_cookie = rc->allow_set_cookie;
	cfg->honour_client_no_cache = rc->client_no_cache;
	cfg->honour_client_max_age = rc->client_no_cache;
	cfg->heuristic_percent = rc->heuristic_percent; /* the config holds the defaults */
	cfg->heuristic_max = (int64_t)(rc->heuristic_max_ms / 1000);
	cfg->default_ttl = (int64_t)(rc->default_ttl_ms / 1000);
}

/* The joined value of every line of a field into buf (',' between). */
static size_t joined(const struct moat_h1_header *f, size_t n, const char *lower, size_t len, char *buf, size_t cap,
		     int *found)
{
	size_t o = 0;

	*found = 0;
	for (size_t i = 0; i < n; i++) {
		if (!moat_h1_name_is(&f[i], lower, len))
			continue;
		if (*found && o < cap)
			buf[o++] = ',';
		*found = 1;
		for (size_t k = 0; k < f[i].value_len && o < cap; k++)
			buf[o++] = f[i].value[k];
	}
	return o;
}

struct kbuf {
	char *p;
	size_t len, cap;
};

static void kput(struct kbuf *k, const char *s, size_t n)
{
	if (k->len + n > k->cap) {
		k->len = k->cap + 1; /* too long: marked */
		return;
	}
	memcpy(k->p + k->len, s, n);
	k->len += n;
}

/* Whether query parameter p[0..n) ("name" or "name=value") is one of the
 * key's. */
static int param_kept(const struct moat_conf_route_cache *rc, const char *p, size_t n)
{
	const char *eq = memchr(p, '=', n);
	size_t nl = eq ? (size_t)(eq - p) : n;

	for (size_t i = 0; i < rc->nkey_query; i++)
		if (strlen(rc->key_query[i]) == nl && memcmp(rc->key_query[i], p, nl) == 0)
			return 1;
	return 0;
}

/*
 * The primary key: "<host>\n<path>[?<query>]" then "\n<name>:<value>" per
 * key header, as the route's key says. Host lowercased. With key_query,
 * only those parameters, in their sorted order (stable within a name).
 */
static int build_key(const struct moat_conf_route_cache *rc, const char *host, size_t host_len, const char *target,
		     size_t target_len, const struct moat_h1_header *f, size_t nf, struct kbuf *k)
{
	const char *q = memchr(target, '?', target_len);
	size_t plen = q ? (size_t)(q - target) : target_len;

	if ((rc->key & MOAT_CONF_CACHE_KEY_HOST) && host) {
		for (size_t i = 0; i < host_len && k->len < k->cap; i++) {
			char ch = host[i];

			k->p[k->len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
	}
	kput(k, "\n", 1);
	if (rc->key & MOAT_CONF_CACHE_KEY_PATH)
		kput(k, target, plen);
	if (q && (rc->key & MOAT_CONF_CACHE_KEY_QUERY)) {
		const char *qs = q + 1, *end = target + target_len;

		if (!rc->nkey_query) {
			kput(k, "?", 1);
			kput(k, qs, (size_t)(end - qs));
		} else {
			/* the kept parameters, in the order of the sorted names */
			int first = 1;

			for (size_t i = 0; i < rc->nkey_query; i++) {
				size_t nl = strlen(rc->key_query[i]);
				const char *p = qs;

				while (p < end) {
					const char *amp = memchr(p, '&', (size_t)(end - p));
					size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);

					if (param_kept(rc, p, n) && (n == nl || (n > nl && p[nl] == '=')) &&
					    memcmp(p, rc->key_query[i], nl) == 0) {
						kput(k, first ? "?" : "&", 1);
						kput(k, p, n);
						first = 0;
					}
					p += n + (amp ? 1 : 0);
				}
			}
		}
	}
	for (size_t i = 0; i < rc->nkey_headers; i++) {
		size_t nl = strlen(rc->key_headers[i]);
		int found = 0;

		/* whole values, never cut: values that share a prefix are
		 * other entries (a key too long for KEY_MAX is no key) */
		kput(k, "\n", 1);
		kput(k, rc->key_headers[i], nl);
		for (size_t j = 0; j < nf; j++) {
			if (!moat_h1_name_is(&f[j], rc->key_headers[i], nl))
				continue;
			kput(k, found ? "," : ":", 1);
			kput(k, f[j].value, f[j].value_len);
			found = 1;
		}
	}
	return k->len <= k->cap ? 0 : -1;
}

/* Copies the request's fields into the slot (for after the head is gone). */
static int copy_fields(struct cslot *s, const struct moat_h1_head *h)
{
	size_t total = 0, o = 0;

	if (s->fbuf)
		return 0;
	for (size_t i = 0; i < h->nheaders; i++)
		total += h->headers[i].name_len + h->headers[i].value_len;
	s->fbuf = malloc(total ? total : 1);
	s->fields = calloc(h->nheaders ? h->nheaders : 1, sizeof(*s->fields));
	if (!s->fbuf || !s->fields)
		return -1;
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];

		memcpy(s->fbuf + o, x->name, x->name_len);
		s->fields[i].name = s->fbuf + o;
		s->fields[i].name_len = x->name_len;
		o += x->name_len;
		memcpy(s->fbuf + o, x->value, x->value_len);
		s->fields[i].value = s->fbuf + o;
		s->fields[i].value_len = x->value_len;
		o += x->value_len;
	}
	s->nfields = h->nheaders;
	return 0;
}

static void slot_free(void *state, void *p)
{
	struct cache_state *st = state;
	struct cslot *s = p;

	if (!s)
		return;
	if (s->locked && st && st->store)
		moat_cache_unlock(st->store, s->key, s->key_len, s->token, 0, moat_clock_ms());
	if (s->fill_bytes && st)
		atomic_fetch_sub(&st->filling, s->fill_bytes);
	moat_cache_obj_put(s->obj);
	moat_cache_obj_put(s->fill);
	free(s->fbuf);
	free(s->fields);
	free(s->purge_body);
	free(s);
}

static void obj_release(void *ref)
{
	moat_cache_obj_put(ref);
}

static void no_release(void *ref)
{
	(void)ref;
}

/* Appends printf-formatted text to the client's queue. */
static void outf(struct moat_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct moat_buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		moat_buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void put_status_field(struct moat_buf *out, const struct moat_cache_status *cs)
{
	char v[256];

	if (moat_cache_status_format(cs, v, sizeof(v)) > 0)
		outf(out, "Cache-Status: %s\r\n", v);
}

/* Whether the field name p[0..nn) is in names (NULL-terminated). */
static int name_in_list(const char *p, size_t nn, const char *const *names)
{
	for (size_t i = 0; names && names[i]; i++)
		if (strlen(names[i]) == nn && strncasecmp(p, names[i], nn) == 0)
			return 1;
	return 0;
}

/* Writes the stored head's fields to out, less Age and the fields `skip`
 * names, or (with `only`) just the fields `only` names (lowercase,
 * NULL-terminated lists). */
static void put_stored_fields_ex(struct moat_buf *out, const struct moat_cache_obj *o, const char *const *skip,
				 const char *const *only)
{
	const char *p = memchr(o->head, '\n', o->head_len), *end = o->head + o->head_len;

	if (!p)
		return;
	p++;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *colon = memchr(p, ':', n);
		int drop = 0;

		if (n <= 2)
			break; /* the empty line */
		if (colon) {
			size_t nn = (size_t)(colon - p);

			drop = (nn == 3 && strncasecmp(p, "age", 3) == 0) || name_in_list(p, nn, skip) ||
			       (only && !name_in_list(p, nn, only));
		}
		if (!drop)
			moat_buf_append(out, p, n);
		p += n;
	}
}

static void put_stored_fields(struct moat_buf *out, const struct moat_cache_obj *o, const char *const *skip)
{
	put_stored_fields_ex(out, o, skip, NULL);
}

/*
 * Answers the request from stored object o (a reference the serve takes
 * over): 304 for a matching conditional, 206 / 416 for a range, else the
 * stored status; Age and Cache-Status added.
 */
static void serve_obj(struct moat_mod_req *q, struct cslot *s, struct moat_cache_obj *o,
		      const struct moat_cache_verdict *v, struct moat_cache_status *cs)
{
	struct moat_mod_serve *sv = q->serve;
	struct moat_buf *out = sv->out;
	const struct moat_h1_header *f = s->fields;
	size_t nf = s->nfields;
	char inm[1024], ims[128], range[256], ifr[256];
	int has_inm, has_ims, has_range, has_ifr;
	size_t inm_len, ims_len, range_len, ifr_len;
	int64_t age = v->age;

	if (q->h) {
		f = q->h->headers;
		nf = q->h->nheaders;
	}
	inm_len = joined(f, nf, "if-none-match", 13, inm, sizeof(inm), &has_inm);
	ims_len = joined(f, nf, "if-modified-since", 17, ims, sizeof(ims), &has_ims);
	range_len = joined(f, nf, "range", 5, range, sizeof(range), &has_range);
	ifr_len = joined(f, nf, "if-range", 8, ifr, sizeof(ifr), &has_ifr);
	cs->has_ttl = 1;
	cs->ttl = v->ttl;
	sv->ref = o;
	sv->release = obj_release;
	sv->body = o->body;
	sv->body_len = o->body_len;
	/* a 204 has no Content-Length (RFC 9110 §8.6) */
	sv->content_length = o->resp.status == 204 ? -1 : (int64_t)o->body_len;
	sv->status = o->resp.status;
	if (o->resp.status == 200 && (has_inm || has_ims) &&
	    moat_cache_not_modified(&o->resp, has_inm ? inm : NULL, inm_len, has_ims ? ims : NULL, ims_len)) {
		/* RFC 9110 15.4.5: the fields a 200 would have that guide
		 * caches, no other representation metadata */
		static const char *const only[] = { "cache-control", "content-location", "date", "etag",
						    "expires", "vary", "last-modified", NULL };

		outf(out, "HTTP/1.1 304 Not Modified\r\n");
		put_stored_fields_ex(out, o, NULL, only);
		sv->status = 304;
		sv->content_length = -1;
		sv->body_len = 0;
	} else if (o->resp.status == 200 && has_range && !s->head) {
		uint64_t first = 0, last = 0;
		enum moat_cache_range r = moat_cache_range(range, range_len, has_ifr ? ifr : NULL, ifr_len, &o->resp,
							   o->body_len, &first, &last);

		if (r == MOAT_CACHE_RANGE_PARTIAL) {
			outf(out, "HTTP/1.1 206 Partial Content\r\n");
			put_stored_fields(out, o, NULL);
			outf(out, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)first,
			     (unsigned long long)last, (unsigned long long)o->body_len);
			sv->status = 206;
			sv->body = o->body + first;
			sv->body_len = last - first + 1;
			sv->content_length = (int64_t)sv->body_len;
		} else if (r == MOAT_CACHE_RANGE_UNSATISFIABLE) {
			static const char *const skip[] = { "content-type", "etag", "last-modified", NULL };

			outf(out, "HTTP/1.1 416 Range Not Satisfiable\r\n");
			put_stored_fields(out, o, skip);
			outf(out, "Content-Range: bytes */%llu\r\n", (unsigned long long)o->body_len);
			sv->status = 416;
			sv->body_len = 0;
			sv->content_length = 0;
		} else {
			const char *nl = memchr(o->head, '\n', o->head_len);

			moat_buf_append(out, o->head, nl ? (size_t)(nl - o->head) + 1 : 0);
			put_stored_fields(out, o, NULL);
		}
	} else {
		const char *nl = memchr(o->head, '\n', o->head_len);

		moat_buf_append(out, o->head, nl ? (size_t)(nl - o->head) + 1 : 0);
		put_stored_fields(out, o, NULL);
	}
	outf(out, "Age: %lld\r\n", (long long)(age < 0 ? 0 : age));
	put_status_field(out, cs);
}

/* moat's own small answer (PURGE result, only-if-cached 504). */
static enum moat_mod_verdict serve_text(struct moat_mod_req *q, struct cslot *s, int status, const char *reason,
					const char *ctype, char *body, const struct moat_cache_status *cs)
{
	struct moat_mod_serve *sv = q->serve;

	outf(sv->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n", status, reason, ctype);
	if (cs)
		put_status_field(sv->out, cs);
	free(s->purge_body);
	s->purge_body = body;
	sv->status = status;
	sv->body = body;
	sv->body_len = body ? strlen(body) : 0;
	sv->content_length = (int64_t)sv->body_len;
	sv->release = no_release;
	sv->ref = NULL;
	return MOAT_MOD_SERVE;
}

/* ---- request ---- */

/* PURGE is for cache.purge_from (the config's default: loopback; an
 * empty list: nobody). */
static int addr_allowed(const struct moat_conf *conf, const struct sockaddr *sa)
{
	return conf->cache.npurge_from && moat_conf_cidr_match(conf->cache.purge_from, conf->cache.npurge_from, sa);
}

/* The next tag of a Cache-Tag / Surrogate-Key value (tags separated by
 * spaces, tabs or commas), or NULL at the end. */
static const char *next_tag(const char **p, const char *end, size_t *n)
{
	const char *t;

	while (*p < end && (**p == ' ' || **p == ',' || **p == '\t'))
		(*p)++;
	t = *p;
	while (*p < end && **p != ' ' && **p != ',' && **p != '\t')
		(*p)++;
	*n = (size_t)(*p - t);
	return *n ? t : NULL;
}

static enum moat_mod_verdict do_purge(struct moat_mod_req *q, struct cache_state *st, struct cslot *s)
{
	const struct moat_h1_header *tagf;
	size_t n = 0;
	char *body;

	if (!addr_allowed(q->conf, q->client)) {
		q->reply->status = 403;
		q->reply->refusal = MOAT_REFUSE_ACL;
		q->reply->why = "PURGE from an address not in cache.purge_from";
		return MOAT_MOD_REFUSE;
	}
	tagf = moat_h1_find(q->h, "cache-tag", 9);
	if (!tagf)
		tagf = moat_h1_find(q->h, "surrogate-key", 13);
	if (tagf) {
		const char *p = tagf->value, *end = p + tagf->value_len, *t;
		size_t tn;

		while ((t = next_tag(&p, end, &tn)) != NULL)
			n += moat_cache_purge_tag(st->store, t, tn);
	} else if (s->key) {
		n = moat_cache_purge_key(st->store, s->key, s->key_len);
	}
	atomic_fetch_add(&st->purged, n);
	body = malloc(48);
	if (body)
		snprintf(body, 48, "{\"purged\": %zu}\n", n);
	return serve_text(q, s, 200, "OK", "application/json", body, NULL);
}

/* If-None-Match / If-Modified-Since from the stored response s->obj, for
 * the backend. */
static void add_validators(struct moat_mod_req *q, struct cslot *s)
{
	const struct moat_cache_obj *so = s->obj;
	struct moat_mod_fwd *fw = q->fwd;

	if (so->resp.etag && so->resp.etag_len < 256) {
		int n = snprintf(fw->extra + fw->extra_len, sizeof(fw->extra) - fw->extra_len,
				 "If-None-Match: %.*s\r\n", (int)so->resp.etag_len, so->resp.etag);

		if (n > 0 && (size_t)n < sizeof(fw->extra) - fw->extra_len) {
			fw->extra_len += (size_t)n;
			s->cond_sent = 1;
		}
	}
	if (so->resp.last_modified != MOAT_CACHE_TIME_NONE && so->resp.last_modified != MOAT_CACHE_TIME_INVALID) {
		char d[30];
		size_t dl = moat_http_date_format(so->resp.last_modified, d);
		int n = snprintf(fw->extra + fw->extra_len, sizeof(fw->extra) - fw->extra_len,
				 "If-Modified-Since: %.*s\r\n", (int)dl, d);

		if (n > 0 && (size_t)n < sizeof(fw->extra) - fw->extra_len) {
			fw->extra_len += (size_t)n;
			s->cond_sent = 1;
		}
	}
}

/* Looks the request up (first call, or after a wait). */
static enum moat_mod_verdict lookup(struct moat_mod_req *q, struct cache_state *st, struct cslot *s)
{
	const struct moat_conf_route_cache *rc = &q->route->cache;
	struct moat_cache_cfg cfg;
	struct moat_cache_verdict v;
	struct moat_cache_status cs = { 0 };
	const struct moat_h1_header *f = q->h ? q->h->headers : s->fields;
	size_t nf = q->h ? q->h->nheaders : s->nfields;
	int uri_hit = 0, lk;
	int64_t now = wall_now();
	struct moat_cache_obj *o = moat_cache_find(st->store, s->key, s->key_len, f, nf, &uri_hit);

	cfg_of(rc, &cfg);
	s->fwd = uri_hit ? MOAT_CACHE_FWD_VARY_MISS : MOAT_CACHE_FWD_URI_MISS;
	if (o) {
		moat_cache_usable(&cfg, &s->req, &o->resp, now, MOAT_CACHE_BACKEND_OK, &v);
		switch (v.use) {
		case MOAT_CACHE_USE_FRESH:
		case MOAT_CACHE_USE_STALE:
			atomic_fetch_add(&st->hits, 1);
			cs.hit = 1;
			cs.detail = v.use == MOAT_CACHE_USE_STALE ? "max-stale" : NULL;
			if (s->waited)
				cs.detail = "collapsed";
			serve_obj(q, s, o, &v, &cs);
			return MOAT_MOD_SERVE;
		case MOAT_CACHE_USE_STALE_REFRESH:
			atomic_fetch_add(&st->stale, 1);
			cs.hit = 1;
			cs.detail = "stale-while-revalidate";
			if (q->h && !s->head && moat_cache_lock(st->store, s->key, s->key_len, q->now_ms, &s->token) == 1) {
				/* one background refresh, conditional when it can be */
				s->locked = 1;
				moat_cache_obj_ref(o);
				s->obj = o;
				if (copy_fields(s, q->h) == 0) {
					q->serve->refresh = 1;
					s->fwd = MOAT_CACHE_FWD_STALE;
					add_validators(q, s);
				}
			}
			serve_obj(q, s, o, &v, &cs);
			return MOAT_MOD_SERVE;
		case MOAT_CACHE_USE_ONLY_IF_CACHED:
			moat_cache_obj_put(o);
			cs.fwd = MOAT_CACHE_FWD_STALE;
			cs.detail = "only-if-cached";
			return serve_text(q, s, 504, "Gateway Timeout", "text/plain", strdup("only-if-cached\n"), &cs);
		case MOAT_CACHE_USE_STALE_ERROR:
		case MOAT_CACHE_USE_REVALIDATE:
			break;
		}
		s->fwd = v.fwd ? v.fwd : MOAT_CACHE_FWD_STALE;
		/* keep it: validators for the backend, stand-in if it fails */
		moat_cache_obj_put(s->obj);
		s->obj = o;
	} else if (s->req.cc.flags & MOAT_CC_ONLY_IF_CACHED) {
		cs.fwd = s->fwd;
		cs.detail = "only-if-cached";
		return serve_text(q, s, 504, "Gateway Timeout", "text/plain", strdup("only-if-cached\n"), &cs);
	}
	if (s->head) {
		atomic_fetch_add(&st->misses, 1);
		return MOAT_MOD_NEXT; /* a HEAD miss is forwarded, not stored */
	}
	if (rc->coalesce && !s->locked) {
		lk = moat_cache_lock(st->store, s->key, s->key_len, q->now_ms, &s->token);
		if (lk == 1) {
			s->locked = 1;
		} else if (lk == 0 && q->now_ms < s->wait_until) {
			if (q->h && copy_fields(s, q->h) < 0)
				return MOAT_MOD_NEXT;
			s->waited = 1;
			s->wait_ms = s->wait_ms ? s->wait_ms * 2 : WAIT_FIRST_MS;
			if (s->wait_ms > WAIT_MAX_MS)
				s->wait_ms = WAIT_MAX_MS;
			q->reply->delay_ms = s->wait_ms;
			return MOAT_MOD_WAIT;
		}
	}
	atomic_fetch_add(&st->misses, 1); /* counted once, when it goes to the backend */
	if (q->h && copy_fields(s, q->h) < 0)
		return MOAT_MOD_NEXT;
	if (q->h && s->obj)
		add_validators(q, s); /* conditional, with the stored validators */
	return MOAT_MOD_NEXT;
}

/* An absolute-form target "http[s]://authority[/path]": *target becomes
 * the path ("/" when there is none) and *host the authority. Other
 * targets are left alone. */
static void absolute_split(const char **target, size_t *tlen, const char **host, size_t *host_len)
{
	const char *t = *target, *a, *e = *target + *tlen, *p;
	size_t skip;

	if (*tlen > 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (*tlen > 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return;
	a = t + skip;
	for (p = a; p < e && *p != '/' && *p != '?'; p++)
		;
	*host = a;
	*host_len = (size_t)(p - a);
	if (p == e) {
		*target = "/";
		*tlen = 1;
	} else {
		*target = p; /* "http://h?q" stays unkeyed: moat refuses it anyway */
		*tlen = (size_t)(e - p);
	}
}

static enum moat_mod_verdict cm_request(struct moat_mod_req *q)
{
	struct cache_state *st = q->state;
	const struct moat_conf_route_cache *rc = &q->route->cache;
	const struct moat_h1_head *h = q->h;
	struct cslot *s = *q->slot;

	if (!rc->on || !st->store)
		return MOAT_MOD_NEXT;
	if (!h) {
		/* asked again after a wait (or the head went to another module) */
		if (!s || s->kind != K_LOOKUP || !s->key)
			return MOAT_MOD_NEXT;
		return lookup(q, st, s);
	}
	{
		char kb[KEY_MAX];
		struct kbuf k = { kb, 0, sizeof(kb) };
		const char *target = h->target, *host = h->host;
		size_t tlen = h->target_len, host_len = h->host_len;
		int keyed;
		char *p;

		/* absolute-form: the authority is the host (RFC 9112 §3.2.2),
		 * as moat routed it; the key and PURGE see the same request
		 * as in origin-form */
		absolute_split(&target, &tlen, &host, &host_len);
		keyed = tlen && target[0] == '/' &&
			build_key(rc, host, host_len, target, tlen, h->headers, h->nheaders, &k) == 0;
		if (!keyed || !host)
			host_len = 0;
		/* one allocation: the slot, then method, key and host */
		s = calloc(1, sizeof(*s) + h->method_len + 1 + (keyed ? k.len : 0) + host_len + 1);
		if (!s)
			return MOAT_MOD_NEXT;
		*q->slot = s;
		s->request_time = wall_now();
		p = (char *)(s + 1);
		s->method = p;
		memcpy(p, h->method, h->method_len);
		s->method_len = h->method_len;
		p += h->method_len + 1;
		if (!keyed) {
			s->kind = K_OTHER;
			/* a PURGE is never forwarded ("PURGE *", a key too
			 * long): refused, or answered by its tags alone */
			if (h->method_len == 5 && memcmp(h->method, "PURGE", 5) == 0)
				return do_purge(q, st, s);
			return MOAT_MOD_NEXT;
		}
		s->key = p;
		memcpy(p, kb, k.len);
		s->key_len = k.len;
		p += k.len;
		if (host) {
			s->host = p;
			memcpy(p, host, host_len);
			s->host_len = host_len;
		}
	}
	if (h->method_len == 5 && memcmp(h->method, "PURGE", 5) == 0)
		return do_purge(q, st, s);
	if (!((h->method_len == 3 && memcmp(h->method, "GET", 3) == 0) ||
	      (h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0))) {
		s->kind = moat_cache_invalidates(h->method, h->method_len, 200) ? K_UNSAFE : K_OTHER;
		s->fwd = MOAT_CACHE_FWD_METHOD;
		return MOAT_MOD_NEXT;
	}
	s->kind = K_LOOKUP;
	s->head = h->method_len == 4;
	s->req.method = s->method;
	s->req.method_len = s->method_len;
	moat_cc_init(&s->req.cc);
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];

		if (moat_h1_name_is(x, "cache-control", 13))
			moat_cc_parse(x->value, x->value_len, &s->req.cc);
		else if (moat_h1_name_is(x, "authorization", 13))
			s->req.has_authorization = 1;
	}
	if (!rc->client_no_cache)
		s->req.cc.flags &= ~(MOAT_CC_NO_CACHE | MOAT_CC_MAX_AGE | MOAT_CC_MIN_FRESH);
	s->wait_until = q->now_ms + rc->coalesce_wait_ms;
	/* the whole response is fetched for the store: the client's own
	 * conditionals and ranges are answered from it */
	q->fwd->strip_cond = !s->head;
	return lookup(q, st, s);
}

/* ---- response ---- */

static void fwd_status(struct moat_mod_resp *r, const struct cslot *s, int status, const char *detail, int stored)
{
	struct moat_cache_status cs = { 0 };
	char v[256];
	int n;

	cs.fwd = s->fwd ? s->fwd : MOAT_CACHE_FWD_URI_MISS;
	cs.fwd_status = status;
	cs.stored = stored;
	cs.detail = detail;
	if (moat_cache_status_format(&cs, v, sizeof(v)) <= 0)
		return;
	n = snprintf(r->extra + r->extra_len, sizeof(r->extra) - r->extra_len, "Cache-Status: %s\r\n", v);
	if (n > 0 && (size_t)n < sizeof(r->extra) - r->extra_len)
		r->extra_len += (size_t)n;
}

static void hide(struct moat_mod_resp *r, const char *name)
{
	if (r->nhide < MOAT_MOD_RESP_HIDE_MAX)
		r->hide[r->nhide++] = name;
}

/* Tags of the response: Cache-Tag (comma separated) and Surrogate-Key
 * (space separated), each followed by '\n'. */
static void collect_tags(struct cslot *s, const struct moat_h1_head *h)
{
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];
		const char *p, *end, *t;
		size_t tn;

		if (!moat_h1_name_is(x, "cache-tag", 9) && !moat_h1_name_is(x, "surrogate-key", 13))
			continue;
		p = x->value;
		end = p + x->value_len;
		while ((t = next_tag(&p, end, &tn)) != NULL)
			if (s->tags_len + tn + 1 <= sizeof(s->tags)) {
				memcpy(s->tags + s->tags_len, t, tn);
				s->tags_len += tn;
				s->tags[s->tags_len++] = '\n';
			}
	}
}

/* Unsafe methods: the URL, and Location / Content-Location on the same
 * origin, are invalidated. */
static void invalidate(struct moat_mod_req *q, struct cache_state *st, struct cslot *s, const struct moat_h1_head *h)
{
	static const char *const names[2] = { "location", "content-location" };

	atomic_fetch_add(&st->purged, moat_cache_purge_key(st->store, s->key, s->key_len));
	if (!s->host)
		return;
	for (unsigned i = 0; i < 2; i++) {
		const struct moat_h1_header *x = moat_h1_find(h, names[i], strlen(names[i]));
		struct moat_cache_target tg;
		const char *nl = memchr(s->key, '\n', s->key_len);
		char path[2048], kb[KEY_MAX];
		struct kbuf k = { kb, 0, sizeof(kb) };
		int n;

		if (!x || !nl)
			continue;
		tg.scheme = "http";
		tg.scheme_len = 4;
		tg.authority = s->host;
		tg.authority_len = s->host_len;
		tg.path = nl + 1;
		tg.path_len = s->key_len - (size_t)(nl + 1 - s->key);
		n = moat_cache_invalidate_ref(&tg, x->value, x->value_len, path, sizeof(path));
		if (n <= 0)
			continue;
		if (build_key(&q->route->cache, s->host, s->host_len, path, (size_t)n, NULL, 0, &k) == 0)
			atomic_fetch_add(&st->purged, moat_cache_purge_key(st->store, kb, k.len));
	}
}

/* Merges a 304's fields into the stored head: the stored fields the 304
 * does not carry, then the 304's (RFC 9111 §3.2), less framing. */
static int name_listed(const struct moat_h1_header *x, char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (moat_h1_name_is(x, names[i], strlen(names[i])))
			return 1;
	return 0;
}

/* A 304 field that is not merged: what the client's head never carries,
 * and Content-Encoding (the stored body keeps its own coding). The
 * stored field of the same name stays. */
static int merge_skip(const struct moat_mod_req *q, const struct moat_h1_header *x)
{
	return moat_h1_name_is(x, "content-length", 14) || moat_h1_name_is(x, "transfer-encoding", 17) ||
	       moat_h1_name_is(x, "connection", 10) || moat_h1_name_is(x, "keep-alive", 10) ||
	       moat_h1_name_is(x, "set-cookie", 10) || moat_h1_name_is(x, "content-encoding", 16) ||
	       moat_h1_name_is(x, "cache-tag", 9) || moat_h1_name_is(x, "surrogate-key", 13) ||
	       moat_h1_name_is(x, "proxy-connection", 16) || moat_h1_name_is(x, "upgrade", 7) ||
	       moat_h1_name_is(x, "te", 2) || name_listed(x, q->conf->hide_headers, q->conf->nhide_headers) ||
	       name_listed(x, q->route->strip_headers, q->route->nstrip_headers);
}

static struct moat_cache_obj *merge_304(struct moat_mod_req *q, struct cache_state *st, struct cslot *s,
					const struct moat_h1_head *h)
{
	const struct moat_cache_obj *o = s->obj;
	const char *p = memchr(o->head, '\n', o->head_len), *end = o->head + o->head_len;
	struct moat_cache_obj *n;
	char *head;
	size_t cap = o->head_len + 4096, len;
	/* a variant moat compressed has a weak tag where the backend's is
	 * strong: the 304's tag is weakened the same way (a backend's own
	 * encoding keeps its strong tag) */
	int weak = o->resp.etag && o->resp.etag_len > 2 && o->resp.etag[0] == 'W' && o->resp.etag[1] == '/';

	if (!p)
		return NULL;
	for (size_t i = 0; i < h->nheaders; i++)
		cap += h->headers[i].name_len + h->headers[i].value_len + 4;
	head = malloc(cap);
	if (!head)
		return NULL;
	len = (size_t)(p + 1 - o->head);
	memcpy(head, o->head, len);
	for (p++; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ln = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *colon = memchr(p, ':', ln);
		int replaced = 0;

		if (ln <= 2)
			break;
		for (size_t i = 0; colon && i < h->nheaders && !replaced; i++)
			if (h->headers[i].name_len == (size_t)(colon - p) &&
			    strncasecmp(h->headers[i].name, p, h->headers[i].name_len) == 0 &&
			    !merge_skip(q, &h->headers[i]))
				replaced = 1;
		if (!replaced) {
			memcpy(head + len, p, ln);
			len += ln;
		}
		p += ln;
	}
	for (size_t i = 0; i < h->nheaders; i++) {
		const struct moat_h1_header *x = &h->headers[i];

		if (merge_skip(q, x))
			continue;
		memcpy(head + len, x->name, x->name_len);
		len += x->name_len;
		memcpy(head + len, ": ", 2);
		len += 2;
		if (weak && moat_h1_name_is(x, "etag", 4) && !(x->value_len > 2 && x->value[0] == 'W')) {
			/* the stored variant is compressed by moat: its tag is weak */
			memcpy(head + len, "W/", 2);
			len += 2;
		}
		memcpy(head + len, x->value, x->value_len);
		len += x->value_len;
		memcpy(head + len, "\r\n", 2);
		len += 2;
	}
	memcpy(head + len, "\r\n", 2);
	len += 2;
	n = moat_cache_obj_new(st->store, o->key, o->key_len, o->vkey, o->vkey_len, head, len, o->tags, o->tags_len,
			       s->request_time, wall_now(), o->body_len);
	free(head);
	if (!n)
		return NULL;
	if (o->body_len && moat_cache_obj_append(st->store, n, o->body, (size_t)o->body_len) < 0) {
		moat_cache_obj_put(n);
		return NULL;
	}
	{
		/* the 304 may have made it unstorable (private, no-store):
		 * this client gets it, the store forgets the URL */
		struct moat_cache_cfg cfg;

		cfg_of(&q->route->cache, &cfg);
		if (moat_cache_storable(&cfg, &s->req, &n->resp) != MOAT_CACHE_STORE_OK) {
			atomic_fetch_add(&st->purged, moat_cache_purge_key(st->store, o->key, o->key_len));
			return n;
		}
	}
	if (moat_cache_insert(st->store, n) < 0) {
		moat_cache_obj_put(n);
		return NULL;
	}
	return n;
}

/* A stale stored response instead of the backend's failure, when RFC 5861
 * stale-if-error or the route's stale_grace allow it. */
static int stand_in(struct moat_mod_req *q, struct cache_state *st, struct cslot *s, int status)
{
	struct moat_cache_cfg cfg;
	struct moat_cache_verdict v;
	struct moat_cache_status cs = { 0 };
	int64_t now = wall_now();
	struct moat_cache_obj *o = s->obj;
	int ok;

	if (!o)
		return 0;
	cfg_of(&q->route->cache, &cfg);
	moat_cache_usable(&cfg, &s->req, &o->resp, now, MOAT_CACHE_BACKEND_FAILED, &v);
	ok = v.use == MOAT_CACHE_USE_STALE_ERROR || v.use == MOAT_CACHE_USE_STALE ||
	     v.use == MOAT_CACHE_USE_FRESH;
	if (!ok && q->route->cache.stale_grace_ms && v.use == MOAT_CACHE_USE_REVALIDATE &&
	    !(o->resp.cc.flags & (MOAT_CC_MUST_REVALIDATE | MOAT_CC_PROXY_REVALIDATE | MOAT_CC_NO_CACHE)) &&
	    -v.ttl <= (int64_t)(q->route->cache.stale_grace_ms / 1000))
		ok = 1;
	if (!ok)
		return 0;
	atomic_fetch_add(&st->stale, 1);
	cs.fwd = MOAT_CACHE_FWD_STALE;
	cs.fwd_status = status;
	cs.detail = "stale-if-error";
	s->obj = NULL;
	serve_obj(q, s, o, &v, &cs);
	return 1;
}

static enum moat_mod_rverdict cm_resp_head(struct moat_mod_req *q, struct moat_mod_resp *r)
{
	struct cache_state *st = q->state;
	struct cslot *s = *q->slot;
	const struct moat_h1_head *h = r->h;
	struct moat_cache_cfg cfg;
	struct moat_cache_resp cr;
	enum moat_cache_storable why;
	char vary[1024];
	size_t vneed;

	if (!s)
		return MOAT_MOD_R_PASS;
	hide(r, "cache-tag");
	hide(r, "surrogate-key");
	if (s->kind != K_LOOKUP) {
		if (s->kind == K_UNSAFE && moat_cache_invalidates(s->method, s->method_len, h->status))
			invalidate(q, st, s, h);
		if (s->key)
			fwd_status(r, s, h->status, NULL, 0);
		return MOAT_MOD_R_PASS;
	}
	if (h->status == 304 && s->obj && s->cond_sent) {
		/* our validators matched: the stored one, refreshed */
		struct moat_cache_obj *n = merge_304(q, st, s, h);
		struct moat_cache_verdict v;
		struct moat_cache_status cs = { 0 };

		if (s->locked) {
			moat_cache_unlock(st->store, s->key, s->key_len, s->token, 0, q->now_ms);
			s->locked = 0;
		}
		atomic_fetch_add(&st->revalidated, 1);
		if (!n) {
			n = s->obj;
			s->obj = NULL;
		}
		if (q->t && q->serve->refresh) {
			/* a background refresh: nothing to send */
			moat_cache_obj_put(n);
			return MOAT_MOD_R_PASS;
		}
		cfg_of(&q->route->cache, &cfg);
		moat_cache_usable(&cfg, &s->req, &n->resp, wall_now(), MOAT_CACHE_BACKEND_OK, &v);
		cs.fwd = s->fwd ? s->fwd : MOAT_CACHE_FWD_STALE;
		cs.fwd_status = 304;
		serve_obj(q, s, n, &v, &cs);
		return MOAT_MOD_R_SERVE;
	}
	if ((h->status == 500 || h->status == 502 || h->status == 503 || h->status == 504) && s->obj &&
	    !q->serve->refresh && stand_in(q, st, s, h->status))
		return MOAT_MOD_R_SERVE;
	if (s->head) {
		fwd_status(r, s, h->status, NULL, 0);
		return MOAT_MOD_R_PASS;
	}
	moat_cache_resp_from_h1(h, &cr, vary, sizeof(vary), &vneed);
	if (vneed > sizeof(vary)) {
		cr.vary = "*"; /* too long to join: never matches (not stored) */
		cr.vary_len = 1;
	}
	cr.request_time = s->request_time;
	cr.response_time = wall_now();
	s->resp_time = cr.response_time;
	cfg_of(&q->route->cache, &cfg);
	why = moat_cache_storable(&cfg, &s->req, &cr);
	if (why == MOAT_CACHE_STORE_OK && r->has_length && r->body_len > q->conf->cache.max_object) {
		if (s->locked) {
			moat_cache_unlock(st->store, s->key, s->key_len, s->token, 1, q->now_ms);
			s->locked = 0;
		}
		fwd_status(r, s, h->status, "too-large", 0);
		return MOAT_MOD_R_PASS;
	}
	if (why != MOAT_CACHE_STORE_OK) {
		if (s->locked) {
			moat_cache_unlock(st->store, s->key, s->key_len, s->token, 1, q->now_ms);
			s->locked = 0;
		}
		fwd_status(r, s, h->status, moat_cache_store_text(why), 0);
		return MOAT_MOD_R_PASS;
	}
	collect_tags(s, h);
	fwd_status(r, s, h->status, NULL, 1);
	return MOAT_MOD_R_WATCH;
}

/* The head as the client got it: what is stored, less the fields that
 * belong to one connection or one client. */
static void cm_resp_sent(struct moat_mod_req *q, const char *head, size_t len)
{
	static const char *const drop[] = { "connection", "keep-alive", "transfer-encoding", "content-length",
					    "set-cookie", "cache-status", "proxy-connection", NULL };
	struct cache_state *st = q->state;
	struct cslot *s = *q->slot;
	const char *p = head, *end = head + len;
	char *sh = malloc(len + 2);
	size_t sl = 0;
	struct moat_cache_resp cr;
	char vkey[2048];
	int vk;

	if (!s || !sh) {
		free(sh);
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ln = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *colon = p == head ? NULL : memchr(p, ':', ln);
		int keep = 1;

		if (ln <= 2)
			break;
		for (size_t i = 0; colon && drop[i] && keep; i++)
			if (strlen(drop[i]) == (size_t)(colon - p) && strncasecmp(p, drop[i], (size_t)(colon - p)) == 0)
				keep = 0;
		if (keep) {
			memcpy(sh + sl, p, ln);
			sl += ln;
		}
		p += ln;
	}
	memcpy(sh + sl, "\r\n", 2);
	sl += 2;
	if (moat_cache_parse_head(sh, sl, &cr) < 0) {
		free(sh);
		s->fill_bad = 1;
		return;
	}
	vk = moat_cache_vary_key(cr.vary, cr.vary_len, s->fields, s->nfields, vkey, sizeof(vkey));
	if (vk < 0) {
		free(sh);
		s->fill_bad = 1;
		return;
	}
	s->fill = moat_cache_obj_new(st->store, s->key, s->key_len, vkey, (size_t)vk, sh, sl, s->tags, s->tags_len,
				     s->request_time, s->resp_time, 0);
	free(sh);
	if (!s->fill)
		s->fill_bad = 1;
}

static int cm_resp_body(struct moat_mod_req *q, const char *data, size_t len, int end, struct moat_mod_sink *sink)
{
	struct cache_state *st = q->state;
	struct cslot *s = *q->slot;

	(void)sink;
	if (!s || !s->fill || s->fill_bad)
		return -1;
	if (len) {
		/* objects being filled are bounded together by the memory budget */
		uint64_t was = atomic_fetch_add(&st->filling, len);

		s->fill_bytes += len;
		if (was + len > q->conf->cache.memory)
			s->fill_bad = 1;
	}
	if (s->fill_bad || (len && moat_cache_obj_append(st->store, s->fill, data, len) < 0)) {
		/* streamed on, not stored: its share of the bound goes back now */
		atomic_fetch_sub(&st->filling, s->fill_bytes);
		s->fill_bytes = 0;
		s->fill_bad = 1;
		moat_cache_obj_put(s->fill);
		s->fill = NULL;
		if (s->locked) {
			moat_cache_unlock(st->store, s->key, s->key_len, s->token, 1, q->now_ms);
			s->locked = 0;
		}
		return -1;
	}
	if (end) {
		atomic_fetch_sub(&st->filling, s->fill_bytes);
		s->fill_bytes = 0;
		if (moat_cache_insert(st->store, s->fill) == 0)
			atomic_fetch_add(&st->stored, 1);
		moat_cache_obj_put(s->fill);
		s->fill = NULL;
		if (s->locked) {
			moat_cache_unlock(st->store, s->key, s->key_len, s->token, 0, q->now_ms);
			s->locked = 0;
		}
	}
	return 0;
}

static enum moat_mod_verdict cm_resp_fail(struct moat_mod_req *q, int status)
{
	struct cache_state *st = q->state;
	struct cslot *s = *q->slot;

	if (!s || s->kind != K_LOOKUP)
		return MOAT_MOD_NEXT;
	if (s->locked) {
		moat_cache_unlock(st->store, s->key, s->key_len, s->token, 0, q->now_ms);
		s->locked = 0;
	}
	if (s->obj && !q->serve->refresh && stand_in(q, st, s, status))
		return MOAT_MOD_SERVE;
	return MOAT_MOD_NEXT;
}

static void cm_txn_end(void *state, void *slot)
{
	slot_free(state, slot);
}

static int cm_admin(void *state, const char *method, const char *path, const char *body, size_t body_len,
		    struct moat_buf *out)
{
	struct cache_state *st = state;
	struct moat_cache_store_stats ss = { 0 };
	char buf[768];
	int n;

	(void)body;
	(void)body_len;
	if (strcmp(method, "GET") != 0 || (path[0] && strcmp(path, "/") != 0))
		return 404;
	if (st->store)
		moat_cache_store_stats(st->store, &ss);
	n = snprintf(buf, sizeof(buf),
		     "{\"enabled\": %s, \"objects\": %llu, \"bytes\": %llu, \"disk_objects\": %llu, "
		     "\"disk_bytes\": %llu, \"hits\": %llu, \"misses\": %llu, \"stale\": %llu, "
		     "\"revalidated\": %llu, \"stored\": %llu, \"purged\": %llu, \"evictions\": %llu, "
		     "\"disk_errors\": %llu}\n",
		     st->store ? "true" : "false", (unsigned long long)ss.objects, (unsigned long long)ss.bytes,
		     (unsigned long long)ss.disk_objects, (unsigned long long)ss.disk_bytes,
		     (unsigned long long)atomic_load(&st->hits), (unsigned long long)atomic_load(&st->misses),
		     (unsigned long long)atomic_load(&st->stale), (unsigned long long)atomic_load(&st->revalidated),
		     (unsigned long long)atomic_load(&st->stored), (unsigned long long)atomic_load(&st->purged),
		     (unsigned long long)ss.evictions, (unsigned long long)ss.disk_errors);
	if (n > 0)
		moat_buf_append(out, buf, (size_t)n);
	return 200;
}

/* Prometheus series of the store and the lookups. */
static size_t cm_metrics(void *state, char *out, size_t cap)
{
	struct cache_state *st = state;
	struct moat_cache_store_stats ss = { 0 };
	int n;

	if (!st->store)
		return 0;
	moat_cache_store_stats(st->store, &ss);
	n = snprintf(out, cap,
		     "# HELP moat_cache_lookups_total Cache lookups of GET / HEAD requests, by outcome.\n"
		     "# TYPE moat_cache_lookups_total counter\n"
		     "moat_cache_lookups_total{result=\"hit\"} %llu\n"
		     "moat_cache_lookups_total{result=\"miss\"} %llu\n"
		     "moat_cache_lookups_total{result=\"stale\"} %llu\n"
		     "# HELP moat_cache_revalidated_total Stored responses revalidated by a 304 from the backend.\n"
		     "# TYPE moat_cache_revalidated_total counter\n"
		     "moat_cache_revalidated_total %llu\n"
		     "# HELP moat_cache_stored_total Responses stored.\n"
		     "# TYPE moat_cache_stored_total counter\n"
		     "moat_cache_stored_total %llu\n"
		     "# HELP moat_cache_purged_total Objects removed by PURGE or by invalidation.\n"
		     "# TYPE moat_cache_purged_total counter\n"
		     "moat_cache_purged_total %llu\n"
		     "# HELP moat_cache_evictions_total Objects evicted from memory for room.\n"
		     "# TYPE moat_cache_evictions_total counter\n"
		     "moat_cache_evictions_total %llu\n"
		     "# HELP moat_cache_objects Objects held, by tier.\n"
		     "# TYPE moat_cache_objects gauge\n"
		     "moat_cache_objects{tier=\"memory\"} %llu\n"
		     "moat_cache_objects{tier=\"disk\"} %llu\n"
		     "# HELP moat_cache_bytes Bytes held, by tier.\n"
		     "# TYPE moat_cache_bytes gauge\n"
		     "moat_cache_bytes{tier=\"memory\"} %llu\n"
		     "moat_cache_bytes{tier=\"disk\"} %llu\n"
		     "# HELP moat_cache_disk_errors_total Disk writes that failed and entries dropped as corrupt.\n"
		     "# TYPE moat_cache_disk_errors_total counter\n"
		     "moat_cache_disk_errors_total %llu\n",
		     (unsigned long long)atomic_load(&st->hits), (unsigned long long)atomic_load(&st->misses),
		     (unsigned long long)atomic_load(&st->stale), (unsigned long long)atomic_load(&st->revalidated),
		     (unsigned long long)atomic_load(&st->stored), (unsigned long long)atomic_load(&st->purged),
		     (unsigned long long)ss.evictions, (unsigned long long)ss.objects,
		     (unsigned long long)ss.disk_objects, (unsigned long long)ss.bytes,
		     (unsigned long long)ss.disk_bytes, (unsigned long long)ss.disk_errors);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static int cm_route_on(const struct moat_conf_route *r)
{
	return r->cache.on;
}

const struct moat_mod moat_mod_cache = {
	.name = "cache",
	.start = cm_start,
	.stop = cm_stop,
	.gen_build = cm_gen_build,
	.gen_free = cm_gen_free,
	.route_on = cm_route_on,
	.request = cm_request,
	.resp_head = cm_resp_head,
	.resp_sent = cm_resp_sent,
	.resp_body = cm_resp_body,
	.resp_fail = cm_resp_fail,
	.txn_end = cm_txn_end,
	.admin = cm_admin,
	.metrics = cm_metrics,
};
