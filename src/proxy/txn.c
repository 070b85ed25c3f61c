/*
 * txn.c - one request carried to a backend and its response carried back.
 *
 * Phases: CONNECT (backend connection in progress) -> EXCHANGE (request
 * body and response flowing, each direction bounded: a side is read only
 * while the other side's queue is below OUT_LOW) -> FINISHING (response
 * complete, flushing) or TUNNEL (after a 101).
 *
 *   start -> CONNECT -> EXCHANGE -> FINISHING -> (client HEAD or CLOSING)
 *                 \________/  \-> TUNNEL -> close
 *                  retry / next server
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/sock.h"
#include "proxy/access.h"
#include "proxy/errpage.h"
#include "proxy/forward.h"
#include "proxy/io.h"
#include "proxy/proxy.h"
#include "tls/tls.h"
#include "proxy/route.h"
#include "core/cidr.h"
#include "http/path.h"
#include "http/xff.h"

#define OUT_LOW           (64u * 1024u)        /* pump into a queue only below this */
#define MAX_TRIES_EXTRA   1u                   /* retries beyond one per server */
#define REPLAY_MAX        (64u * 1024u)        /* request bytes kept to resend on a retry */

static const struct moat_conf *cur_conf(const struct moat_client *c)
{
	return c->w->conf->ref->conf;
}

static const struct moat_conf *txn_conf(const struct moat_txn *t)
{
	return t->wc->ref->conf;
}

static void txn_try(struct moat_client *c);
static void serve_start(struct moat_client *c);
static int run_local(struct moat_client *c, struct moat_txn *t);
static void upstream_error(struct moat_client *c, int status);
static int find_client(struct moat_client *c, struct moat_txn *t, const struct moat_h1_head *h,
		       const struct moat_conf *conf);

void moat_txn_error(struct moat_client *c, int status)
{
	moat_txn_answer_ex(c, status, NULL, 0, NULL, 1);
}

void moat_txn_answer(struct moat_client *c, int status, const char *extra, size_t extra_len, const char *id)
{
	moat_txn_answer_ex(c, status, extra, extra_len, id, 0);
}

static size_t hsts_line(struct moat_client *c, const struct moat_conf *conf, char *buf, size_t cap);

void moat_txn_answer_ex(struct moat_client *c, int status, const char *extra, size_t extra_len, const char *id,
			int count)
{
	struct moat_txn *t = c->txn;
	char buf[2048];             /* HSTS + extra lines (TLS) */

	moat_balance_release(t);
	if (t->b) {
		t->b->c = NULL;
		moat_bconn_close(t->b);
		t->b = NULL;
	}
	if (t->sink) {
		/* a background fetch failed: the client has its answer */
		t->resp_done = 1;
		t->phase = MOAT_TXN_FINISHING;
		return;
	}
	if (t->resp_started) {
		moat_client_close(c);
		return;
	}
	t->status = status;
	if (count)
		MOAT_STAT_INC(c->w->stats.refusals[t->overload ? MOAT_REFUSE_OVERLOAD :
						   moat_refusal_of_status(status)]);
	if (!t->req_done || !t->keepalive)
		t->keepalive = 0;
	moat_buf_release(&t->reqhead);
	if (c->tls) {
		/* HSTS on moat's own answers too */
		size_t hl = hsts_line(c, txn_conf(t), buf, sizeof(buf));

		if (hl && hl + extra_len <= sizeof(buf)) {
			if (extra_len)
				memcpy(buf + hl, extra, extra_len);
			extra = buf;
			extra_len += hl;
		}
	}
	moat_errpage_write_ex(&c->out, status, t->keepalive, t->is_head, extra, extra_len, id);
	t->resp_started = 1;
	t->resp_done = 1;
	t->phase = MOAT_TXN_FINISHING;
}

/* ---- access log ---- */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void capture_log(struct moat_txn *t, const struct moat_h1_head *h)
{
	size_t off = 0, cap = sizeof(t->logv);
	const struct moat_h1_header *ua = NULL, *ref = NULL;

#define CAP(dst, p, n)                                                          \
	do {                                                                    \
		size_t l_ = (n) < 512 ? (n) : 512;                              \
		if (l_ > cap - off)                                             \
			l_ = cap - off;                                         \
		memcpy(t->logv + off, (p), l_);                                 \
		off += l_;                                                      \
		(dst) = (unsigned short)l_;                                     \
	} while (0)

	for (size_t i = 0; i < h->nheaders; i++) {
		if (!ua && moat_h1_name_is(&h->headers[i], "user-agent", 10))
			ua = &h->headers[i];
		else if (!ref && moat_h1_name_is(&h->headers[i], "referer", 7))
			ref = &h->headers[i];
	}
	CAP(t->lv_method, h->method, h->method_len);
	CAP(t->lv_uri, h->target, h->target_len);
	CAP(t->lv_host, h->host ? h->host : "", h->host ? h->host_len : 0);
	CAP(t->lv_ua, ua ? ua->value : "", ua ? ua->value_len : 0);
	CAP(t->lv_ref, ref ? ref->value : "", ref ? ref->value_len : 0);
#undef CAP
}

static void write_access(struct moat_client *c, struct moat_txn *t)
{
	const struct moat_conf *conf = txn_conf(t);
	struct moat_access_rec r;
	char line[4096], ip[64], iso[32], clf[32];
	const char *p = t->logv;
	size_t n;

	if (!c->w->alog || !moat_alog_enabled())
		return;
	moat_sock_ntop((const struct sockaddr *)&c->peer, ip, sizeof(ip));
	memset(&r, 0, sizeof(r));
	if (conf->access_format == MOAT_LOG_FMT_JSON)
		moat_log_time_iso(iso);
	else
		moat_log_time_clf(clf);
	r.time_iso = iso;
	r.time_clf = clf;
	r.client = ip;
	r.method = p; r.method_len = t->lv_method; p += t->lv_method;
	r.uri = p; r.uri_len = t->lv_uri; p += t->lv_uri;
	r.host = p; r.host_len = t->lv_host; p += t->lv_host;
	r.ua = p; r.ua_len = t->lv_ua; p += t->lv_ua;
	r.referer = p; r.referer_len = t->lv_ref;
	r.minor = t->minor;
	r.h2 = c->virt;
	r.status = t->status;
	r.bytes_in = t->bytes_in;
	r.bytes_out = t->bytes_out;
	r.duration_us = (now_us() - t->start_us);
	r.upstream = t->up ? t->up->name : NULL;
	r.server = t->server_text;
	r.conn_id = c->id;
	r.conn_requests = c->requests;
	n = moat_access_format(line, sizeof(line),
			       conf->access_format == MOAT_LOG_FMT_JSON ? MOAT_ACCESS_JSON :
			       conf->access_format == MOAT_LOG_FMT_COMBINED ? MOAT_ACCESS_COMBINED :
			       MOAT_ACCESS_COMMON, &r);
	moat_alog_write(c->w->alog, line, n);
}

/* ---- txn start ---- */

static struct moat_txn *txn_alloc(struct moat_worker *w)
{
	struct moat_txn *t = w->free_txns;

	if (t)
		w->free_txns = t->free_next;
	else
		t = malloc(sizeof(*t));
	if (!t)
		return NULL;
	memset(t, 0, offsetof(struct moat_txn, fwd));
	t->fwd.strip_cond = 0;
	t->fwd.extra_len = 0;
	t->server_text[0] = '\0';
	t->lv_method = t->lv_uri = t->lv_host = t->lv_ua = t->lv_ref = 0;
	return t;
}


/* Splits an absolute-form target "http://authority/path?q" (RFC 9112
 * §3.2.2); returns 0 when the target is not absolute-form. */
static int split_absolute(const char *t, size_t n, const char **auth, size_t *alen,
			  const char **path, size_t *plen)
{
	size_t skip;
	const char *a, *e, *s;

	if (n > 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return 0;
	a = t + skip;
	e = t + n;
	s = a;
	while (s < e && *s != '/' && *s != '?')
		s++;
	*auth = a;
	*alen = (size_t)(s - a);
	if (s == e) {
		*path = "/";
		*plen = 1;
	} else if (*s == '?') {
		/* "http://h?q": origin-form is "/?q" -- not representable
		 * without copying; refuse as malformed. */
		return -1;
	} else {
		*path = s;
		*plen = (size_t)(e - s);
	}
	return 1;
}

/* A cleartext listener with redirect_https: 308 to the same host and
 * target on https. 1 when answered. */
static int redirect_https(struct moat_client *c, const struct moat_conf *conf, const char *host, size_t host_len,
			  const char *path, size_t path_len)
{
	const struct moat_conf_listener *lc = moat_client_listener(c, conf);
	char loc[8192];
	size_t hl = host_len;
	int n;

	if (!lc || !lc->redirect_https || !host || !host_len)
		return 0;
	/* the host without its port ("[v6]" kept whole) */
	if (host[0] == '[') {
		const char *e = memchr(host, ']', host_len);

		hl = e ? (size_t)(e - host) + 1 : host_len;
	} else {
		const char *colon = memchr(host, ':', host_len);

		if (colon)
			hl = (size_t)(colon - host);
	}
	if (path_len == 0 || path[0] != '/') {
		path = "/";
		path_len = 1;
	}
	if (lc->redirect_https == 443)
		n = snprintf(loc, sizeof(loc), "Location: https://%.*s%.*s\r\n", (int)hl, host, (int)path_len, path);
	else
		n = snprintf(loc, sizeof(loc), "Location: https://%.*s:%u%.*s\r\n", (int)hl, host,
			     lc->redirect_https, (int)path_len, path);
	if (n <= 0 || (size_t)n >= sizeof(loc))
		return 0;
	moat_txn_answer_ex(c, 308, loc, (size_t)n, NULL, 0);
	return 1;
}

/* TLS clients: the verified certificate's field (clients' own fields of
 * that name are dropped for every request, see cert_fields) and https as
 * the forwarded protocol. */
static void tls_fields(struct moat_client *c, const struct moat_conf *conf, struct moat_fwd_req *f, char *line,
		       size_t line_cap)
{
	const struct moat_conf_listener *lc = moat_client_listener(c, conf);
	const char *hn = lc && lc->tls.client_header ? lc->tls.client_header : "X-Client-Cert-Subject";
	size_t nl = strlen(hn), sl;
	char subject[4096];

	f->https = 1;
	sl = moat_tls_peer_subject(c->tls, subject, sizeof(subject));
	if (sl == 0 || nl + sl + 4 > line_cap)
		return;
	memcpy(line, hn, nl);
	line[nl] = ':';
	line[nl + 1] = ' ';
	for (size_t i = 0; i < sl; i++) {
		unsigned char ch = (unsigned char)subject[i];

		line[nl + 2 + i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	memcpy(line + nl + 2 + sl, "\r\n", 2);
	f->tls_line = line;
	f->tls_line_len = nl + sl + 4;
}

/* Strict-Transport-Security of a TLS listener into buf; the length (0: none). */
static size_t hsts_line(struct moat_client *c, const struct moat_conf *conf, char *buf, size_t cap)
{
	const struct moat_conf_listener *lc = moat_client_listener(c, conf);
	int n;

	if (!lc || !lc->tls.hsts_max_age)
		return 0;
	n = snprintf(buf, cap, "Strict-Transport-Security: max-age=%llu%s%s\r\n",
		     (unsigned long long)lc->tls.hsts_max_age, lc->tls.hsts_subdomains ? "; includeSubDomains" : "",
		     lc->tls.hsts_preload ? "; preload" : "");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static int upgrade_is_h2c(const struct moat_h1_head *h)
{
	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], "upgrade", 7) &&
		    moat_h1_list_has(h->headers[i].value, h->headers[i].value_len, "h2c", 3))
			return 1;
	return 0;
}

/* An authority from an absolute-form target must be a plain host[:port]:
 * no userinfo ('@'), nothing a Host header could not carry. */
static int authority_ok(const char *a, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("-._~%!$&'()*+,;=:[]", ch)) || ch == 0)
			return 0;
	}
	return 1;
}

/* Checks the chunked body bytes that arrived with the head, so that a
 * request whose body is already visibly malformed never reaches a backend.
 * Returns 0 or a chunked error. */
static int prescan_chunked(const struct moat_buf *in)
{
	struct moat_chunked d;
	const char *p = moat_buf_head(in);
	size_t len = moat_buf_len(in);

	moat_chunked_init(&d);
	while (len) {
		size_t consumed, off, n;
		int ev = moat_chunked_decode(&d, p, len, &consumed, &off, &n);

		if (ev < 0)
			return ev;
		if (ev == MOAT_CHUNKED_DONE || (ev == MOAT_CHUNKED_NEED && consumed == 0))
			break;
		p += consumed;
		len -= consumed;
	}
	return 0;
}

void moat_txn_start(struct moat_client *c, struct moat_h1_head *h, size_t headlen)
{
	struct moat_worker *w = c->w;
	const struct moat_conf *conf = cur_conf(c);
	struct moat_txn *t = txn_alloc(w);
	const char *host = h->host, *path = h->target;
	size_t host_len = h->host_len, path_len = h->target_len;
	struct moat_fwd_req f;
	char ip[64];
	uint64_t body_max;
	char *fwd_path = NULL;
	char tls_line[4352];
	int abs, hooks, rc;

	if (!t) {
		moat_client_head_error(c, 503, "out of memory");
		return;
	}
	c->txn = t;
	c->state = MOAT_C_TXN;
	c->requests++;
	c->head_deadline_set = 0;
	t->wc = w->conf;
	t->wc->users++;
	t->resp_xform = -1;
	t->start_ms = w->loop.now_ms;
	t->minor = h->minor_version;
	t->is_head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
	t->keepalive = h->minor_version == 1 ? !(h->flags & MOAT_H1_F_CONN_CLOSE) :
		       ((h->flags & MOAT_H1_F_CONN_KEEPALIVE) && !(h->flags & MOAT_H1_F_CONN_CLOSE));
	if (w->stopping)
		t->keepalive = 0;
	if (t->keepalive && !c->nodelay) {
		/* Keep-alive responses must not wait on Nagle; a connection
		 * that closes after one response flushes at close anyway, so
		 * it is spared the syscall (as nginx does). */
		int one = 1;

		setsockopt(c->ev.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->nodelay = 1;
	}
	t->bytes_in = headlen;
	t->req_framing = h->framing;
	t->req_remaining = h->content_length;
	moat_chunked_init(&t->req_chunk);
	t->req_done = h->framing == MOAT_H1_BODY_NONE ||
		      (h->framing == MOAT_H1_BODY_LENGTH && h->content_length == 0);
	/* Upgrades are tunnelled, except h2c: HTTP/2 is moat's to speak,
	 * not to pass through (its HTTP2-Settings is hop-by-hop). */
	t->upgrade = h->minor_version == 1 && (h->flags & MOAT_H1_F_UPGRADE) &&
		     (h->flags & MOAT_H1_F_CONN_UPGRADE) && !upgrade_is_h2c(h);
	/* HTTP/1.0 clients get no 1xx: the expectation is ignored (RFC 9110
	 * 10.1.1). */
	t->expect = h->minor_version == 1 && (h->flags & MOAT_H1_F_EXPECT_100) && !t->req_done;
	t->start_us = now_us();
	if (moat_alog_enabled())
		capture_log(t, h);
	/* the client every refusal below counts against */
	if (find_client(c, t, h, conf) < 0) {
		moat_buf_consume(&c->in, headlen);
		t->keepalive = 0;
		moat_client_log_refusal(c, 400, "unreadable X-Forwarded-For / Forwarded from a trusted proxy");
		moat_txn_error(c, 400);
		return;
	}

	if (h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0) {
		moat_buf_consume(&c->in, headlen);
		t->keepalive = 0;
		moat_txn_error(c, 405);
		return;
	}
	abs = split_absolute(h->target, h->target_len, &host, &host_len, &path, &path_len);
	if (abs < 0 || (abs > 0 && !authority_ok(host, host_len)) ||
	    (abs == 0 && path_len && path[0] != '/' && !(path_len == 1 && path[0] == '*'))) {
		moat_buf_consume(&c->in, headlen);
		t->keepalive = 0;
		moat_txn_error(c, 400);
		return;
	}
	if (w->conf->ref->any_redirect && !c->tls && redirect_https(c, conf, host, host_len, path, path_len)) {
		moat_buf_consume(&c->in, headlen);
		return;
	}
	/* Route on the normalised path: "/public/../admin" is /admin. The
	 * raw target is what the backend gets. */
	if (path_len && path[0] == '/') {
		char small[2048], *np = path_len < sizeof(small) ? small : malloc(path_len + 1);
		int nl = np ? moat_path_normalize(path, path_len, np) : MOAT_PATH_EBAD;

		if (nl < 0) {
			if (np != small)
				free(np);
			moat_buf_consume(&c->in, headlen);
			t->keepalive = 0;
			moat_client_log_refusal(c, 400, "path escapes the root or has a bad %-escape");
			moat_txn_error(c, 400);
			return;
		}
		t->route = moat_route_match(conf, host, host_len, np, (size_t)nl);
		if (np != small)
			free(np);
	} else {
		t->route = moat_route_match(conf, host, host_len, path, path_len);
	}
	if (!t->route) {
		moat_buf_consume(&c->in, headlen);
		moat_txn_error(c, 404);
		return;
	}
	t->up_idx = t->route->upstream;
	t->up = &conf->upstreams[t->up_idx];
	moat_balance_prepare(w, t, h, (const struct sockaddr *)&t->client, path, path_len);
	body_max = t->route->has_body_max ? t->route->body_max : conf->limits.body_max;
	if (body_max && h->framing == MOAT_H1_BODY_LENGTH && h->content_length > body_max) {
		moat_buf_consume(&c->in, headlen);
		t->keepalive = 0;
		moat_client_log_refusal_as(c, moat_txn_client_text(t), 413, "request body over its limit");
		moat_txn_error(c, 413);
		return;
	}
	t->body_max = body_max;
	/* The modules (acl, bans, rate limits, WAF) see the routed head. */
	hooks = moat_phase_request(c, h);
	if (hooks < 0) {
		moat_buf_consume(&c->in, headlen);
		return;
	}
	if (hooks == 2 && t->serve.refresh && !t->req_done) {
		/* A stored answer for a request with a body: no background
		 * fetch (it would forward a body the client may never send,
		 * and an Expect: 100-continue would land inside the head
		 * already queued). The connection closes after the answer. */
		t->serve.refresh = 0;
	}
	if (hooks == 2 && !t->serve.refresh) {
		/* a module answers (cache hit): no backend request to build */
		moat_buf_consume(&c->in, headlen);
		serve_start(c);
		return;
	}

	moat_sock_ntop((const struct sockaddr *)&c->peer, ip, sizeof(ip));
	memset(&f, 0, sizeof(f));
	f.target = path;
	f.target_len = path_len;
	f.host = host;
	f.host_len = host_len;
	if (!host || !conf->preserve_host) {
		/* HTTP/1.0 without Host, or preserve_host off: the backend
		 * gets the upstream's own name -- its one server's address as
		 * written, or the group's name (nginx's $proxy_host). */
		const char *uh = t->up->nservers == 1 ? t->up->servers[0].addr.text : t->up->name;

		f.host = uh;
		f.host_len = strlen(uh);
		f.host_fallback = !host;
		if (host) {
			/* X-Forwarded-Host / Forwarded keep the client's. */
			f.client_host = host;
			f.client_host_len = host_len;
		}
	}
	f.client_ip = ip;
	f.client_ipv6 = c->peer.sa.sa_family == AF_INET6;
	f.peer_trusted = conf->ntrusted_proxies &&
			 moat_conf_cidr_match(conf->trusted_proxies, conf->ntrusted_proxies,
					      (const struct sockaddr *)&c->peer);
	f.upgrade = t->upgrade;
	f.framing = h->framing;
	f.content_length = h->content_length;
	f.strip_cond = t->fwd.strip_cond;
	if (t->fwd.extra_len) {
		f.extra = t->fwd.extra;
		f.extra_len = t->fwd.extra_len;
	}
	/* the client certificate's fields are moat's alone, on every listener */
	f.drop = (const char *const *)t->wc->ref->cert_fields;
	f.drop_len = t->wc->ref->cert_field_len;
	f.ndrop = t->wc->ref->ncert_fields;
	if (c->tls)
		tls_fields(c, conf, &f, tls_line, sizeof(tls_line));
	if (t->route->normalize_path && path_len && path[0] == '/') {
		/* the route forwards the path it was routed on, with the query */
		const char *qm = memchr(path, '?', path_len);
		size_t qlen = qm ? (size_t)(path + path_len - qm) : 0;
		int nl;

		fwd_path = malloc(path_len + 1);
		nl = fwd_path ? moat_path_normalize(path, path_len, fwd_path) : -1;
		if (nl >= 0) {
			memcpy(fwd_path + nl, qm, qlen);
			f.target = fwd_path;
			f.target_len = (size_t)nl + qlen;
		}
	}
	moat_buf_init(&t->reqhead, NULL, conf->limits.header_size_max * 2 + 4096);
	rc = moat_fwd_request_head(&t->reqhead, h, &f);
	free(fwd_path);
	if (rc < 0) {
		moat_buf_consume(&c->in, headlen);
		t->keepalive = 0;
		moat_txn_error(c, 431);
		return;
	}
	/* The head's strings point into c->in: done with them now. */
	moat_buf_consume(&c->in, headlen);
	if (t->req_framing == MOAT_H1_BODY_CHUNKED && prescan_chunked(&c->in) < 0) {
		moat_client_log_refusal(c, 400, "bad chunked request body");
		t->keepalive = 0;
		moat_txn_error(c, 400);
		return;
	}
	if (t->expect && moat_buf_len(&c->in) == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		moat_buf_append(&c->out, cont, sizeof(cont) - 1);
		t->sent_100 = 1;
	}
	if (hooks == 0) /* held or reading the body for a module: moat_txn_run goes on */
		return;
	if (hooks == 2) {
		serve_start(c);
		return;
	}
	txn_try(c);
}

/* The client's address for every rule: the peer (or the PROXY header's
 * source), or, when the peer is a trusted proxy, the rightmost address of
 * X-Forwarded-For / Forwarded that is not itself trusted. */
static int trusted_cb(void *ctx, const struct sockaddr *sa)
{
	const struct moat_conf *conf = ctx;

	return moat_cidr_trie_lookup(conf->trusted_trie, sa) == 1;
}

/* Returns 0, or -1 when a trusted proxy sent a forwarding field that names
 * no client (unreadable): taking the proxy for the client would let the
 * request pass as the proxy through allow lists and limits. */
static int find_client(struct moat_client *c, struct moat_txn *t, const struct moat_h1_head *h,
		       const struct moat_conf *conf)
{
	socklen_t len;
	int fwd = conf->client_ip == MOAT_CLIENT_IP_FORWARDED;

	memcpy(&t->client, &c->peer, c->peerlen);
	t->client_text[0] = '\0'; /* written when first needed (moat_txn_client_text) */
	if (!conf->trusted_trie || conf->client_ip == MOAT_CLIENT_IP_NONE ||
	    moat_cidr_trie_lookup(conf->trusted_trie, (const struct sockaddr *)&c->peer) != 1)
		return 0;
	if (moat_xff_client(h, fwd ? MOAT_XFF_FORWARDED : MOAT_XFF_X_FORWARDED_FOR, trusted_cb, (void *)conf,
			    &t->client, &len) == 0)
		return 0;
	memcpy(&t->client, &c->peer, c->peerlen);
	/* absent: the proxy itself asks (a health check); present but
	 * unreadable: refused */
	return moat_h1_find(h, fwd ? "forwarded" : "x-forwarded-for", fwd ? 9 : 15) ? -1 : 0;
}

const char *moat_txn_client_text(struct moat_txn *t)
{
	if (t->client_text[0] == '\0')
		moat_sock_ntop((const struct sockaddr *)&t->client, t->client_text, sizeof(t->client_text));
	return t->client_text;
}

/* After a hold or a body read for a module: the remaining hooks, then the
 * backend. */
static void resume_hooks(struct moat_client *c, int rc)
{
	if (rc == 2)
		serve_start(c);
	else if (rc > 0)
		txn_try(c);
}

/* The input buffer filled with chunked framing (tiny chunks, long
 * extensions) before it held the body bytes a module asked for: the raw
 * bytes up to `upto` -- just after a DATA event, inside a chunk with
 * `left` data bytes still to come -- become one chunk of the n bytes they
 * carried (the backend gets the body re-encoded anyway). Returns whether
 * that made room. */
static int squeeze_chunked(struct moat_buf *in, size_t upto, const char *data, size_t n, uint64_t left)
{
	char hdr[24], *p = moat_buf_head(in);
	int hl = snprintf(hdr, sizeof(hdr), "%llx\r\n", (unsigned long long)(n + left));
	size_t len = moat_buf_len(in), nl;

	if (hl <= 0 || (size_t)hl + n >= upto)
		return 0;
	nl = (size_t)hl + n;
	memcpy(p, hdr, (size_t)hl);
	memcpy(p + hl, data, n);
	memmove(p + nl, p + upto, len - upto);
	in->end -= upto - nl;
	return 1;
}

/* INSPECT: reads the request body until the module has what it asked for
 * (or all of it, or the input buffer is full), then gives it to the
 * module. 1 progress, 0 waiting. */
static int run_inspect(struct moat_client *c, struct moat_txn *t)
{
	size_t have, want = t->inspect_want;
	int complete = 0;

	if (c->io.can_read && !c->io.eof) {
		ssize_t r = moat_io_read(c->ev.fd, &c->io, &c->in);

		if (r < 0) {
			moat_client_close(c);
			return 0;
		}
		t->bytes_in += (uint64_t)r;
	}
	have = moat_buf_len(&c->in);
	if (t->req_framing == MOAT_H1_BODY_LENGTH) {
		if (have >= t->req_remaining) {
			have = (size_t)t->req_remaining;
			complete = 1;
		}
		if (!complete && have < want && !c->io.eof && moat_buf_reserve(&c->in, 1) > 0)
			return c->io.can_read ? 1 : 0; /* more may wait: read again (edge-triggered) */
		if (have > want)
			have = want;
		resume_hooks(c, moat_phase_body(c, moat_buf_head(&c->in), have, complete));
		return 1;
	}
	if (t->req_framing == MOAT_H1_BODY_CHUNKED) {
		/* de-chunk a copy of what is there; the raw bytes stay for the backend */
		struct moat_chunked d;
		const char *in = moat_buf_head(&c->in);
		size_t off = 0, used, doff, dlen, n = 0, upto = 0;
		uint64_t left = 0;
		char *body = malloc(want ? want : 1);
		int ev = MOAT_CHUNKED_NEED;

		if (body == NULL) {
			moat_txn_error(c, 500);
			return 1;
		}
		moat_chunked_init(&d);
		while (off < have && n < want) {
			ev = moat_chunked_decode(&d, in + off, have - off, &used, &doff, &dlen);
			if (ev < 0)
				break;
			if (ev == MOAT_CHUNKED_DATA) {
				size_t k = dlen < want - n ? dlen : want - n;

				memcpy(body + n, in + off + doff, k);
				n += k;
				upto = off + used;
				left = d.remaining;
			}
			off += used;
			if (ev == MOAT_CHUNKED_DONE || ev == MOAT_CHUNKED_NEED)
				break;
		}
		complete = ev == MOAT_CHUNKED_DONE;
		if (ev >= 0 && !complete && n < want && !c->io.eof &&
		    (moat_buf_reserve(&c->in, 1) > 0 || squeeze_chunked(&c->in, upto, body, n, left))) {
			free(body);
			return c->io.can_read ? 1 : 0;
		}
		resume_hooks(c, moat_phase_body(c, body, n, complete));
		free(body);
		return 1;
	}
	resume_hooks(c, moat_phase_body(c, NULL, 0, 1));
	return 1;
}

/* ---- backend choice and connection ---- */

/* When the current try must have its response head: per_try_timeout (or
 * backend_first_byte), and never past the retry.timeout of the whole txn. */
static uint64_t first_byte_deadline(const struct moat_txn *t, uint64_t now)
{
	uint64_t d = now + (t->up->retry.per_try_timeout_ms ? t->up->retry.per_try_timeout_ms :
						      txn_conf(t)->timeouts.backend_first_byte);

	return t->deadline_ms && t->deadline_ms < d ? t->deadline_ms : d;
}

/* Ends a try that failed before anything reached the client: retries on
 * another server when allowed, else answers `status`. */
static void try_failed(struct moat_client *c, int status, int connect_fail)
{
	struct moat_txn *t = c->txn;

	if (t->b) {
		t->b->c = NULL;
		moat_bconn_close(t->b);
		t->b = NULL;
	}
	moat_balance_outcome(c->w, t, 0, connect_fail);
	moat_balance_release(t);
	t->fail_status = (short)status;
	if (moat_balance_may_retry(c->w, t, connect_fail)) {
		txn_try(c);
		return;
	}
	upstream_error(c, status);
}

/* Waiting for a slot (max_connections): the worker's pending timer calls
 * this again. */
static void park(struct moat_client *c)
{
	struct moat_txn *t = c->txn;
	struct moat_upstream_rt *u = &t->wc->ref->ups[t->up_idx];

	if (t->phase != MOAT_TXN_PENDING) {
		if (!t->up->max_pending ||
		    atomic_load_explicit(u->group_pending, memory_order_relaxed) >= t->up->max_pending) {
			t->overload = 1;
			upstream_error(c, 503);
			return;
		}
		atomic_fetch_add_explicit(u->group_pending, 1, memory_order_relaxed);
		t->pending_counted = 1;
		t->pending_until = c->w->loop.now_ms + t->up->pending_timeout_ms;
		t->phase = MOAT_TXN_PENDING;
		moat_pending_add(c->w, c);
	}
}

/* Starts one try: picks a server, takes a pooled connection or connects. */
static void txn_try(struct moat_client *c)
{
	struct moat_txn *t = c->txn;
	struct moat_worker *w = c->w;
	struct sockaddr_storage ss;
	socklen_t len;
	struct moat_bconn *b;
	int idx, err = 0;

	for (;;) {
		idx = moat_balance_pick(w, t);
		if (idx == MOAT_PICK_BUSY) {
			park(c);
			return;
		}
		if (idx < 0) {
			/* Nothing to try: 503 when nothing was available at
			 * all, else what the last failure calls for. */
			upstream_error(c, t->tries == 0 ? 503 : t->fail_status ? t->fail_status : 502);
			return;
		}
		t->tries++;
		len = moat_srv_addr(t->srv, &ss);
		b = moat_bconn_get(w, (const struct sockaddr *)&ss, len, t->up, &t->up->servers[idx],
				   t->wc->ref->tls_cli ? t->wc->ref->tls_cli[t->up_idx] : NULL, t->tries > 1, &err);
		if (b)
			break;
		/* Immediate connect failure (no route, no fd...). */
		moat_balance_outcome(w, t, 0, 1);
		moat_balance_release(t);
		t->fail_status = 502;
		if (!moat_balance_may_retry(w, t, 1)) {
			upstream_error(c, 502);
			return;
		}
	}
	{
		const char *st = t->up->servers[idx].addr.text;
		size_t sl = strnlen(st, sizeof(t->server_text) - 1);

		memcpy(t->server_text, st, sl);
		t->server_text[sl] = '\0';
	}
	b->c = c;
	t->b = b;
	t->try_start_us = now_us();
	if (moat_buf_append(&b->out, moat_buf_head(&t->reqhead), moat_buf_len(&t->reqhead)) < 0) {
		upstream_error(c, 502);
		return;
	}
	if (b->state == MOAT_B_CONNECTING) {
		t->phase = MOAT_TXN_CONNECT;
		moat_bconn_set_timer(b, w->loop.now_ms + txn_conf(t)->timeouts.backend_connect);
	} else {
		t->phase = MOAT_TXN_EXCHANGE;
		moat_bconn_set_timer(b, first_byte_deadline(t, w->loop.now_ms));
	}
}

/* Called by the worker's pending timer for each waiting txn. Returns 1
 * when the txn left the pending state. */
int moat_txn_pending_retry(struct moat_client *c)
{
	struct moat_txn *t = c->txn;

	if (c->w->loop.now_ms >= t->pending_until) {
		moat_pending_del(c->w, c);
		t->overload = 1;
		upstream_error(c, 503);
		moat_client_run(c);
		return 1;
	}
	t->phase = MOAT_TXN_NONE; /* so that park() would queue it afresh */
	{
		int idx = moat_balance_pick(c->w, t);

		if (idx == MOAT_PICK_BUSY) {
			t->phase = MOAT_TXN_PENDING;
			return 0;
		}
		moat_balance_release(t);
		if (t->pending_counted) {
			atomic_fetch_sub_explicit(t->wc->ref->ups[t->up_idx].group_pending, 1,
						  memory_order_relaxed);
			t->pending_counted = 0;
		}
		if (idx >= 0 && idx < 64)
			t->tried &= ~(1ull << idx);
	}
	moat_pending_del(c->w, c);
	txn_try(c);
	moat_client_run(c);
	return 1;
}

/* Called by backend.c when a connect finishes (err == 0) or fails. */
void moat_client_backend_connected(struct moat_client *c, int err)
{
	struct moat_txn *t = c->txn;

	if (!err) {
		t->phase = MOAT_TXN_EXCHANGE;
		moat_bconn_set_timer(t->b, first_byte_deadline(t, c->w->loop.now_ms));
		moat_client_run(c);
		return;
	}
	try_failed(c, err == -ETIMEDOUT ? 504 : 502, 1);
	moat_client_run(c);
}

/* The backend failed (reset, EOF, timeout, garbage) while the txn was in
 * EXCHANGE. A reused pooled connection found closed is retried on a fresh
 * one; other failures are retried when the request is idempotent. */
static void backend_failed(struct moat_client *c, int status)
{
	struct moat_txn *t = c->txn;
	struct moat_bconn *b = t->b;

	if (b && b->reused && !t->got_byte && !t->replay_lost && status != 504 && !t->stale_retry &&
	    !t->resp_started) {
		/* Not the server's fault: no ejection, and a fresh connection. */
		t->stale_retry = 1;
		b->c = NULL;
		moat_bconn_close(b);
		t->b = NULL;
		moat_balance_release(t);
		if (t->server_idx < 64)
			t->tried &= ~(1ull << t->server_idx);
		if (moat_balance_may_retry(c->w, t, 0)) {
			txn_try(c);
			return;
		}
		upstream_error(c, status);
		return;
	}
	if (t->resp_started || t->got_byte) {
		if (b) {
			b->c = NULL;
			moat_bconn_close(b);
			t->b = NULL;
		}
		moat_balance_outcome(c->w, t, 0, 0);
		upstream_error(c, status);
		return;
	}
	try_failed(c, status, 0);
}

/* Called by backend.c on a backend timer expiry. */
void moat_client_backend_timeout(struct moat_client *c)
{
	struct moat_txn *t = c->txn;

	if (t->phase == MOAT_TXN_CONNECT) {
		moat_client_backend_connected(c, -ETIMEDOUT);
		return;
	}
	if (t->phase == MOAT_TXN_TUNNEL) {
		moat_client_close(c);
		return;
	}
	backend_failed(c, 504);
	moat_client_run(c);
}

/* ---- request body: client -> backend ---- */

/* Frames n data bytes as one chunk: v[0..3) = size line, data, CRLF;
 * hdr (24 bytes) holds the size line. */
static void chunk_iov(struct iovec v[3], char hdr[24], const char *data, size_t n)
{
	v[0].iov_base = hdr;
	v[0].iov_len = (size_t)snprintf(hdr, 24, "%llx\r\n", (unsigned long long)n);
	v[1].iov_base = (char *)data;
	v[1].iov_len = n;
	v[2].iov_base = "\r\n";
	v[2].iov_len = 2;
}

/* Trailer fields that must not travel in a trailer section (RFC 9110
 * §6.5.1): framing, routing, connection and forwarding fields. A trailer
 * line is "name: value". */
static int trailer_allowed(const char *line, size_t len)
{
	static const char *const deny[] = {
		"content-length", "transfer-encoding", "host", "connection", "keep-alive",
		"te", "trailer", "upgrade", "proxy-connection", "expect", "content-type",
		"content-encoding", "content-range", "authorization", "set-cookie", "cookie",
		"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
	};
	const char *colon = memchr(line, ':', len);
	size_t n = colon ? (size_t)(colon - line) : len;

	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		if (strlen(deny[i]) == n && strncasecmp(line, deny[i], n) == 0)
			return 0;
	return 1;
}

/* Keeps a copy of request bytes sent to the backend while they fit in
 * REPLAY_MAX, so that a stale pooled connection can be retried with the
 * whole request; past that, no retry. */
static void keep_for_replay(struct moat_txn *t, const struct iovec *v, int n)
{
	size_t total = 0;

	if (t->replay_lost)
		return;
	for (int i = 0; i < n; i++)
		total += v[i].iov_len;
	if (t->got_byte || moat_buf_len(&t->reqhead) + total > REPLAY_MAX) {
		t->replay_lost = 1;
		moat_buf_release(&t->reqhead);
		return;
	}
	for (int i = 0; i < n; i++)
		moat_buf_append(&t->reqhead, v[i].iov_base, v[i].iov_len);
}

/* Returns 1 on progress, 0 when blocked, -1 when the txn ended. */
static int pump_request(struct moat_client *c, struct moat_txn *t, struct moat_bconn *b)
{
	int progress = 0;

	while (!t->req_done && moat_buf_len(&b->out) < OUT_LOW) {
		ssize_t r;

		if (moat_buf_len(&c->in) == 0) {
			r = moat_io_read(c->ev.fd, &c->io, &c->in);
			if (r < 0 || (r == 0 && c->io.eof)) {
				/* The client went away in the middle of its body. */
				moat_client_close(c);
				return -1;
			}
			if (r == 0)
				break;
			t->bytes_in += (uint64_t)r;
			progress = 1;
		}
		if (t->req_framing == MOAT_H1_BODY_LENGTH) {
			size_t n = moat_buf_len(&c->in);
			struct iovec v;

			if (n > t->req_remaining)
				n = (size_t)t->req_remaining;
			v.iov_base = moat_buf_head(&c->in);
			v.iov_len = n;
			r = moat_io_sendv(b->ev.fd, &b->io, &b->out, &v, 1, 1);
			if (r < 0) {
				backend_failed(c, 502);
				return -1;
			}
			keep_for_replay(t, &v, 1);
			moat_buf_consume(&c->in, n);
			t->req_remaining -= n;
			t->req_body_bytes += n;
			if (t->req_remaining == 0)
				t->req_done = 1;
			progress = 1;
		} else {
			size_t consumed, off, len;
			const char *in = moat_buf_head(&c->in);
			int ev = moat_chunked_decode(&t->req_chunk, in, moat_buf_len(&c->in), &consumed,
						     &off, &len);
			char hdr[24];

			if (ev < 0) {
				moat_client_log_refusal(c, 400, "bad chunked request body");
				t->keepalive = 0;
				moat_txn_error(c, 400);
				return -1;
			}
			if (ev == MOAT_CHUNKED_DATA) {
				struct iovec v[3];

				t->req_body_bytes += len;
				if (t->body_max && t->req_body_bytes > t->body_max) {
					t->keepalive = 0;
					moat_txn_error(c, 413);
					return -1;
				}
				chunk_iov(v, hdr, in + off, len);
				r = moat_io_sendv(b->ev.fd, &b->io, &b->out, v, 3, 1);
				if (r >= 0)
					keep_for_replay(t, v, 3);
			} else if (ev == MOAT_CHUNKED_TRAILER && !trailer_allowed(in + off, len)) {
				r = 0; /* dropped */
			} else if (ev == MOAT_CHUNKED_TRAILER) {
				struct iovec v[3];
				int nv = 0;

				if (!t->req_trailers) {
					v[nv].iov_base = "0\r\n";
					v[nv++].iov_len = 3;
					t->req_trailers = 1;
				}
				v[nv].iov_base = (char *)in + off;
				v[nv++].iov_len = len;
				v[nv].iov_base = "\r\n";
				v[nv++].iov_len = 2;
				r = moat_io_sendv(b->ev.fd, &b->io, &b->out, v, nv, 1);
				if (r >= 0)
					keep_for_replay(t, v, nv);
			} else if (ev == MOAT_CHUNKED_DONE) {
				struct iovec v = { t->req_trailers ? "\r\n" : "0\r\n\r\n",
						   t->req_trailers ? 2u : 5u };

				r = moat_io_sendv(b->ev.fd, &b->io, &b->out, &v, 1, 1);
				if (r >= 0)
					keep_for_replay(t, &v, 1);
				t->req_done = 1;
			} else {
				r = 0; /* NEED */
			}
			if (r < 0) {
				backend_failed(c, 502);
				return -1;
			}
			moat_buf_consume(&c->in, consumed);
			if (consumed)
				progress = 1;
			if (ev == MOAT_CHUNKED_NEED && moat_buf_len(&c->in) > 0) {
				/* A partial trailer line waits for more bytes. */
				if (moat_buf_reserve(&c->in, 1) == 0) {
					t->keepalive = 0;
					moat_txn_error(c, 431);
					return -1;
				}
				r = moat_io_read(c->ev.fd, &c->io, &c->in);
				if (r <= 0) {
					if (r < 0 || c->io.eof) {
						moat_client_close(c);
						return -1;
					}
					break;
				}
				t->bytes_in += (uint64_t)r;
			}
		}
	}
	return progress;
}

/* ---- response: backend -> client ---- */

static void release_backend(struct moat_client *c, struct moat_txn *t)
{
	struct moat_bconn *b = t->b;
	int reusable = t->backend_reusable && t->req_done && moat_buf_len(&b->out) == 0 &&
		       moat_buf_len(&b->in) == 0 && !b->io.eof;

	b->c = NULL;
	t->b = NULL;
	moat_balance_release(t);
	moat_bconn_release(b, reusable, t->up);
}

/* ---- responses through the modules (phase.h): watchers see the bytes as
 * the client gets them; a transformer rewrites them ---- */

/* Bytes for the client: to the watchers, then framed into the client's
 * queue (nowhere for a background fetch). */
static int emit(struct moat_client *c, struct moat_txn *t, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (t->resp_watch)
		moat_phase_resp_watch(c, p, n, 0);
	if (t->sink)
		return 0;
	t->bytes_out += n;
	if (t->out_chunked) {
		char hdr[24];
		int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);

		if (moat_buf_append(&c->out, hdr, (size_t)hl) < 0 || moat_buf_append(&c->out, p, n) < 0 ||
		    moat_buf_append(&c->out, "\r\n", 2) < 0)
			return -1;
		return 0;
	}
	return moat_buf_append(&c->out, p, n) < 0 ? -1 : 0;
}

struct xsink {
	struct moat_mod_sink k;
	struct moat_client *c;
};

static int xsink_put(struct moat_mod_sink *k, const void *p, size_t n)
{
	struct xsink *x = (struct xsink *)k;

	return emit(x->c, x->c->txn, p, n);
}

/* Body bytes from the backend (de-framed); end: the last call. */
static int filter_data(struct moat_client *c, struct moat_txn *t, const char *data, size_t n, int end)
{
	int r = 0;

	if (t->resp_xform >= 0) {
		struct xsink x = { { xsink_put }, c };

		r = moat_phase_resp_xform(c, data, n, end, &x.k);
	} else if (n) {
		r = emit(c, t, data, n);
	}
	if (r < 0)
		return -1;
	if (end) {
		if (t->resp_watch)
			moat_phase_resp_watch(c, NULL, 0, 1);
		if (!t->sink && t->out_chunked && moat_buf_append(&c->out, "0\r\n\r\n", 5) < 0)
			return -1;
	}
	return 0;
}

/* A response that failed mid-way: a background fetch ends quietly, a
 * client's connection is closed (it must see the truncation). */
static int filtered_fail(struct moat_client *c, struct moat_txn *t)
{
	if (t->sink) {
		moat_txn_error(c, 502);
		return 1;
	}
	moat_client_close(c);
	return -1;
}

#define FILTER_SLICE (16u * 1024u)   /* backend bytes given to the modules at once (a
				      * chunk's data: what the decoder gives, up to the
				      * backend buffer) */

/* pump_response for a filtered body. */
static int pump_filtered(struct moat_client *c, struct moat_txn *t, struct moat_bconn *b)
{
	int progress = 0;

	while (!t->resp_done && (t->sink || moat_buf_len(&c->out) < OUT_LOW)) {
		size_t len = moat_buf_len(&b->in);
		ssize_t r;

		if (len == 0) {
			if (b->io.eof) {
				if (t->resp_framing == MOAT_H1_BODY_CLOSE) {
					if (filter_data(c, t, NULL, 0, 1) < 0)
						return filtered_fail(c, t);
					t->resp_done = 1;
					return 1;
				}
				MOAT_WARN("w%u c%llu: backend of upstream %s closed mid-response", c->w->id,
					  (unsigned long long)c->id, t->up->name);
				return filtered_fail(c, t);
			}
			r = moat_io_read(b->ev.fd, &b->io, &b->in);
			if (r < 0)
				return filtered_fail(c, t);
			if (r == 0 && !b->io.eof)
				break;
			progress = 1;
			continue;
		}
		if (t->resp_framing != MOAT_H1_BODY_CHUNKED) {
			size_t n = len < FILTER_SLICE ? len : FILTER_SLICE;

			if (t->resp_framing == MOAT_H1_BODY_LENGTH && n > t->resp_remaining)
				n = (size_t)t->resp_remaining;
			if (filter_data(c, t, moat_buf_head(&b->in), n, 0) < 0)
				return filtered_fail(c, t);
			moat_buf_consume(&b->in, n);
			if (t->resp_framing == MOAT_H1_BODY_LENGTH) {
				t->resp_remaining -= n;
				if (t->resp_remaining == 0) {
					if (filter_data(c, t, NULL, 0, 1) < 0)
						return filtered_fail(c, t);
					t->resp_done = 1;
				}
			}
			progress = 1;
		} else {
			size_t consumed, off, dlen;
			const char *in = moat_buf_head(&b->in);
			int ev = moat_chunked_decode(&t->resp_chunk, in, len, &consumed, &off, &dlen);

			if (ev < 0) {
				MOAT_WARN("w%u c%llu: invalid chunked body from backend of upstream %s",
					  c->w->id, (unsigned long long)c->id, t->up->name);
				return filtered_fail(c, t);
			}
			if (ev == MOAT_CHUNKED_DATA) {
				if (filter_data(c, t, in + off, dlen, 0) < 0)
					return filtered_fail(c, t);
			} else if (ev == MOAT_CHUNKED_DONE) {
				/* trailers are not passed on a filtered body */
				if (filter_data(c, t, NULL, 0, 1) < 0)
					return filtered_fail(c, t);
				t->resp_done = 1;
			} else if (ev != MOAT_CHUNKED_TRAILER && consumed == 0) {
				if (b->io.eof || moat_buf_reserve(&b->in, 1) == 0)
					return filtered_fail(c, t);
				r = moat_io_read(b->ev.fd, &b->io, &b->in);
				if (r < 0)
					return filtered_fail(c, t);
				if (r == 0 && !b->io.eof)
					break;
				progress = 1;
				continue;
			}
			moat_buf_consume(&b->in, consumed);
			progress = 1;
		}
	}
	return progress;
}

/* ---- a module's own response (cache hit, 304 from cache, stale) ---- */

/* Ends the head the module wrote (framing, connection, empty line) and
 * goes to LOCAL. The backend, if any, is already released. */
static void serve_start(struct moat_client *c)
{
	struct moat_txn *t = c->txn;
	const struct moat_mod_serve *s = &t->serve;
	char line[48];
	int n;

	moat_balance_release(t);
	if (!t->req_done)
		t->keepalive = 0;
	if (s->content_length >= 0) {
		n = snprintf(line, sizeof(line), "Content-Length: %lld\r\n", (long long)s->content_length);
		moat_buf_append(&c->out, line, (size_t)n);
	}
	if (c->tls) {
		char hsts[128];
		size_t hl = hsts_line(c, txn_conf(t), hsts, sizeof(hsts));

		if (hl)
			moat_buf_append(&c->out, hsts, hl);
	}
	if (!t->keepalive)
		moat_buf_append(&c->out, "Connection: close\r\n", 19);
	else if (t->minor == 0)
		moat_buf_append(&c->out, "Connection: keep-alive\r\n", 24);
	if (moat_buf_append(&c->out, "\r\n", 2) < 0) {
		moat_client_close(c);
		return;
	}
	t->status = s->status;
	t->resp_started = 1;
	t->resp_done = 0;
	t->serve_off = 0;
	t->phase = MOAT_TXN_LOCAL;
}

/* LOCAL: the body straight from the module's memory; then, when asked,
 * the background fetch. 1 progress, 0 waiting, -1 closed. */
static int run_local(struct moat_client *c, struct moat_txn *t)
{
	const struct moat_mod_serve *s = &t->serve;
	uint64_t want = t->is_head ? 0 : s->body_len;
	int progress = 0;

	while (t->serve_off < want) {
		uint64_t left = want - t->serve_off;
		struct iovec v = { (char *)s->body + t->serve_off, left < (1u << 20) ? (size_t)left : (1u << 20) };
		ssize_t r = moat_io_sendv(c->ev.fd, &c->io, &c->out, &v, 1, 0);

		if (r < 0) {
			moat_client_close(c);
			return -1;
		}
		if (r == 0)
			return progress;
		t->serve_off += (uint64_t)r;
		t->bytes_out += (uint64_t)r;
		progress = 1;
		if ((size_t)r < v.iov_len)
			return progress;
	}
	if (s->refresh && !t->sink) {
		/* stale-while-revalidate: the client has its answer; fetch
		 * for the cache (the queue flushes as the fetch runs) */
		t->sink = 1;
		t->got_byte = 0;
		t->resp_started = 0; /* the fetch's head is still to come */
		t->phase = MOAT_TXN_NONE;
		txn_try(c);
		return 1;
	}
	t->resp_done = 1;
	t->phase = MOAT_TXN_FINISHING;
	return 1;
}

/* The backend gave no usable answer: a module's stand-in (stale-if-error)
 * or moat's error page. */
static void upstream_error(struct moat_client *c, int status)
{
	struct moat_txn *t = c->txn;

	if (!t->sink && !t->resp_started && moat_phase_resp_fail(c, status)) {
		if (t->b) {
			t->b->c = NULL;
			moat_bconn_close(t->b);
			t->b = NULL;
		}
		serve_start(c);
		return;
	}
	moat_txn_error(c, status);
}

static int parse_response_head(struct moat_client *c, struct moat_txn *t, struct moat_bconn *b)
{
	char sticky[256];
	const struct moat_conf *conf = txn_conf(t);
	char hsts[128];
	struct moat_worker *w = c->w;
	struct moat_h1_limits lim = {
		.request_line_max = conf->limits.header_size_max,
		.header_size_max = conf->limits.header_size_max,
		.header_count_max = w->hdrs_cap,
	};
	struct moat_h1_head h;
	struct moat_fwd_resp f;
	struct moat_mod_resp mr;
	enum moat_mod_rverdict rv;
	int rc;

	if (moat_buf_len(&b->in) == 0) {
		if (b->io.eof) {
			backend_failed(c, 502);
			return -1;
		}
		return 0;
	}
	/* Interim answers queue for the client like any bytes: while the
	 * client is not reading, no more heads are taken from the backend. */
	if (moat_buf_len(&c->out) >= OUT_LOW)
		return 0;
	t->got_byte = 1;
	memset(&h, 0, sizeof(h));
	h.headers = w->hdrs;
	h.header_cap = w->hdrs_cap;
	rc = moat_h1_parse_response(moat_buf_head(&b->in), moat_buf_len(&b->in), &h, &lim, t->is_head);
	if (rc == MOAT_AGAIN) {
		if (b->io.eof || moat_buf_reserve(&b->in, 1) == 0) {
			backend_failed(c, 502);
			return -1;
		}
		return 0;
	}
	if (rc < 0) {
		MOAT_WARN("w%u c%llu: invalid response head from backend of upstream %s", w->id,
			  (unsigned long long)c->id, t->up->name);
		backend_failed(c, 502);
		return -1;
	}
	if (h.status < 200 && h.status != 101) {
		/* Interim: forward to HTTP/1.1 clients, except 100 (moat
		 * answered Expect itself). */
		if (h.status != 100 && t->minor == 1 && !t->sink) {
			memset(&f, 0, sizeof(f));
			f.framing = MOAT_FWD_RESP_NONE;
			f.keepalive = 1;
			f.client_minor = 1;
			f.hide = (const char *const *)conf->hide_headers;
			f.nhide = conf->nhide_headers;
			if (moat_fwd_response_head(&c->out, &h, &f) < 0) {
				/* A head that does not fit must not go out cut:
				 * drop the client rather than corrupt its stream. */
				moat_client_close(c);
				return -1;
			}
		}
		moat_buf_consume(&b->in, (size_t)rc);
		return 1;
	}
	memset(&f, 0, sizeof(f));
	f.client_minor = t->minor;
	f.hide = (const char *const *)conf->hide_headers;
	f.nhide = conf->nhide_headers;
	f.hide2 = (const char *const *)t->route->strip_headers;
	if (c->tls) {
		f.extra3 = hsts;
		f.extra3_len = hsts_line(c, conf, hsts, sizeof(hsts));
		if (!f.extra3_len)
			f.extra3 = NULL;
	}
	f.nhide2 = t->route->nstrip_headers;
	if (!t->sink)
		t->status = h.status;
	t->resp_framing = h.framing;
	t->resp_remaining = h.content_length;
	moat_chunked_init(&t->resp_chunk);
	{
		uint64_t lat = now_us() - t->try_start_us;

		moat_balance_latency(w, t, lat);
		moat_hist_observe(&t->wc->ref->ups[t->up_idx].stats[w->id].latency, lat);
	}
	moat_balance_outcome(w, t, !(h.status >= 500 && t->up->outlier.on_5xx), 0);
	if (t->set_sticky && !t->sink) {
		/* An opaque id of the server, never its address. */
		int n = snprintf(sticky, sizeof(sticky), "Set-Cookie: %s=%llx; Path=/; HttpOnly",
				 t->up->sticky_cookie,
				 (unsigned long long)t->wc->wup[t->up_idx].sticky_id[t->server_idx]);

		if (t->up->sticky_ttl_ms && n > 0 && (size_t)n < sizeof(sticky))
			n += snprintf(sticky + n, sizeof(sticky) - (size_t)n, "; Max-Age=%llu",
				      (unsigned long long)(t->up->sticky_ttl_ms / 1000));
		if (n > 0 && (size_t)n < sizeof(sticky) - 2) {
			sticky[n++] = '\r';
			sticky[n++] = '\n';
			f.extra = sticky;
			f.extra_len = (size_t)n;
		}
	}
	if (h.status == 101) {
		if (!t->upgrade) {
			backend_failed(c, 502);
			return -1;
		}
		f.framing = MOAT_FWD_RESP_TUNNEL;
	} else {
		int nobody = h.framing == MOAT_H1_BODY_NONE ||
			     (h.framing == MOAT_H1_BODY_LENGTH && h.content_length == 0);

		t->backend_reusable = h.framing != MOAT_H1_BODY_CLOSE &&
				      (h.minor_version == 1 ? !(h.flags & MOAT_H1_F_CONN_CLOSE) :
				       !!(h.flags & MOAT_H1_F_CONN_KEEPALIVE));
		if (!t->req_done && !t->sink)
			t->keepalive = 0;
		/* the modules: cache store, compression, a stored answer instead */
		rv = MOAT_MOD_R_PASS;
		mr.nhide = 0;
		mr.extra_len = 0;
		if (t->route && moat_phase_resp_wanted(t)) {
			memset(&mr, 0, offsetof(struct moat_mod_resp, extra));
			mr.h = &h;
			mr.request_was_head = t->is_head;
			mr.has_length = h.framing == MOAT_H1_BODY_LENGTH;
			mr.body_len = mr.has_length ? h.content_length : 0;
			rv = moat_phase_resp_head(c, &mr);
		}
		if (rv == MOAT_MOD_R_SERVE || (t->sink && rv == MOAT_MOD_R_PASS)) {
			/* the backend's body is not wanted: the connection is
			 * kept only when there is none */
			moat_buf_consume(&b->in, (size_t)rc);
			if (nobody && t->req_done) {
				t->resp_done = 1;
				release_backend(c, t);
			} else {
				b->c = NULL;
				t->b = NULL;
				moat_balance_release(t);
				moat_bconn_close(b);
			}
			if (rv == MOAT_MOD_R_SERVE && !t->sink) {
				serve_start(c);
			} else {
				t->resp_done = 1;
				t->phase = MOAT_TXN_FINISHING;
			}
			return -1;
		}
		f.hide3 = mr.hide;
		f.nhide3 = mr.nhide;
		f.extra2 = mr.extra_len ? mr.extra : NULL;
		f.extra2_len = mr.extra_len;
		t->filtered = rv != MOAT_MOD_R_PASS || t->sink;
		switch (h.framing) {
		case MOAT_H1_BODY_NONE:
			f.framing = MOAT_FWD_RESP_NONE;
			break;
		case MOAT_H1_BODY_LENGTH:
			if (rv == MOAT_MOD_R_TRANSFORM && !nobody)
				goto reframe;
			f.framing = MOAT_FWD_RESP_LENGTH;
			f.content_length = h.content_length;
			break;
		case MOAT_H1_BODY_CHUNKED:
		case MOAT_H1_BODY_CLOSE:
		reframe:
			if (t->minor == 1) {
				f.framing = MOAT_FWD_RESP_CHUNKED;
				t->out_chunked = 1;
			} else {
				f.framing = MOAT_FWD_RESP_CLOSE;
				if (!t->sink) {
					t->out_close = 1;
					t->keepalive = 0;
				}
			}
			break;
		}
		f.keepalive = t->keepalive;
	}
	{
		/* a background fetch writes its head nowhere (the modules see it) */
		struct moat_buf scratch, *hout = &c->out;
		size_t before;

		if (t->sink) {
			moat_buf_init(&scratch, NULL, conf->limits.header_size_max * 2 + 4096);
			hout = &scratch;
		}
		before = moat_buf_len(hout);
		if (moat_fwd_response_head(hout, &h, &f) < 0) {
			if (t->sink)
				moat_buf_release(&scratch);
			backend_failed(c, 502);
			return -1;
		}
		if (t->resp_watch)
			moat_phase_resp_sent(c, moat_buf_head(hout) + before, moat_buf_len(hout) - before);
		if (t->sink)
			moat_buf_release(&scratch);
	}
	moat_buf_consume(&b->in, (size_t)rc);
	t->resp_started = 1;
	if (h.status == 101) {
		t->phase = MOAT_TXN_TUNNEL;
		t->keepalive = 0;
		return 1;
	}
	if (h.framing == MOAT_H1_BODY_NONE || (h.framing == MOAT_H1_BODY_LENGTH && h.content_length == 0)) {
		if (t->filtered && filter_data(c, t, NULL, 0, 1) < 0) {
			moat_client_close(c);
			return -1;
		}
		t->resp_done = 1;
	}
	return 1;
}

static int pump_response(struct moat_client *c, struct moat_txn *t, struct moat_bconn *b)
{
	int progress = 0;

	while (!t->resp_done && moat_buf_len(&c->out) < OUT_LOW) {
		size_t len = moat_buf_len(&b->in);
		ssize_t r;

		if (len == 0) {
			if (b->io.eof) {
				if (t->resp_framing == MOAT_H1_BODY_CLOSE) {
					if (t->out_chunked) {
						struct iovec v = { "0\r\n\r\n", 5 };

						if (moat_io_sendv(c->ev.fd, &c->io, &c->out, &v, 1, 1) < 0) {
							moat_client_close(c);
							return -1;
						}
					}
					t->resp_done = 1;
					return 1;
				}
				/* Truncated response: the client must see it. */
				MOAT_WARN("w%u c%llu: backend of upstream %s closed mid-response", c->w->id,
					  (unsigned long long)c->id, t->up->name);
				moat_client_close(c);
				return -1;
			}
			r = moat_io_read(b->ev.fd, &b->io, &b->in);
			if (r < 0) {
				moat_client_close(c);
				return -1;
			}
			if (r == 0 && !b->io.eof)
				break;
			progress = 1;
			continue;
		}
		if (t->resp_framing != MOAT_H1_BODY_CHUNKED) {
			size_t n = len;
			struct iovec v[3];
			char hdr[24];

			if (t->resp_framing == MOAT_H1_BODY_LENGTH && n > t->resp_remaining)
				n = (size_t)t->resp_remaining;
			if (t->out_chunked) {
				chunk_iov(v, hdr, moat_buf_head(&b->in), n);
				r = moat_io_sendv(c->ev.fd, &c->io, &c->out, v, 3, 1);
				if (r >= 0)
					r = (ssize_t)n;
			} else {
				/* Hand-over: written straight from the backend's
				 * buffer; what the client cannot take yet stays there. */
				v[0].iov_base = moat_buf_head(&b->in);
				v[0].iov_len = n;
				r = moat_io_sendv(c->ev.fd, &c->io, &c->out, v, 1, 0);
			}
			if (r < 0) {
				moat_client_close(c);
				return -1;
			}
			if (r == 0)
				break;
			moat_buf_consume(&b->in, (size_t)r);
			t->bytes_out += (uint64_t)r;
			if (t->resp_framing == MOAT_H1_BODY_LENGTH) {
				t->resp_remaining -= (uint64_t)r;
				if (t->resp_remaining == 0)
					t->resp_done = 1;
			}
			progress = 1;
			if ((size_t)r < n)
				break;
		} else {
			size_t consumed, off, dlen;
			const char *in = moat_buf_head(&b->in);
			int ev = moat_chunked_decode(&t->resp_chunk, in, len, &consumed, &off, &dlen);
			struct iovec v[3];
			int nv = 0;
			char hdr[24];

			if (ev < 0) {
				MOAT_WARN("w%u c%llu: invalid chunked body from backend of upstream %s",
					  c->w->id, (unsigned long long)c->id, t->up->name);
				moat_client_close(c);
				return -1;
			}
			if (ev == MOAT_CHUNKED_DATA) {
				if (t->out_chunked) {
					chunk_iov(v, hdr, in + off, dlen);
					nv = 3;
				} else {
					v[0].iov_base = (char *)in + off;
					v[0].iov_len = dlen;
					nv = 1;
				}
				t->bytes_out += dlen;
			} else if (ev == MOAT_CHUNKED_TRAILER) {
				if (t->out_chunked && trailer_allowed(in + off, dlen)) {
					if (!t->resp_trailers) {
						v[nv].iov_base = "0\r\n";
						v[nv++].iov_len = 3;
						t->resp_trailers = 1;
					}
					v[nv].iov_base = (char *)in + off;
					v[nv++].iov_len = dlen;
					v[nv].iov_base = "\r\n";
					v[nv++].iov_len = 2;
				}
			} else if (ev == MOAT_CHUNKED_DONE) {
				if (t->out_chunked) {
					v[nv].iov_base = t->resp_trailers ? "\r\n" : "0\r\n\r\n";
					v[nv++].iov_len = t->resp_trailers ? 2 : 5;
				}
				t->resp_done = 1;
			} else if (consumed == 0) {
				/* NEED: read more (a partial trailer line stays). */
				if (b->io.eof || moat_buf_reserve(&b->in, 1) == 0) {
					moat_client_close(c);
					return -1;
				}
				r = moat_io_read(b->ev.fd, &b->io, &b->in);
				if (r < 0) {
					moat_client_close(c);
					return -1;
				}
				if (r == 0 && !b->io.eof)
					break;
				progress = 1;
				continue;
			}
			if (nv && moat_io_sendv(c->ev.fd, &c->io, &c->out, v, nv, 1) < 0) {
				moat_client_close(c);
				return -1;
			}
			moat_buf_consume(&b->in, consumed);
			progress = 1;
		}
	}
	return progress;
}

/* ---- tunnel (after 101) ---- */

static int pump_dir(int from_fd, struct moat_io *from, struct moat_buf *src, int to_fd,
		    struct moat_io *to, struct moat_buf *to_out, int *err)
{
	int progress = 0;

	for (;;) {
		ssize_t r;

		if (moat_buf_len(src) == 0) {
			r = moat_io_read(from_fd, from, src);
			if (r < 0) {
				*err = 1;
				return progress;
			}
			if (r == 0)
				break;
			progress = 1;
		}
		{
			struct iovec v = { moat_buf_head(src), moat_buf_len(src) };

			r = moat_io_sendv(to_fd, to, to_out, &v, 1, 0);
		}
		if (r < 0) {
			*err = 1;
			return progress;
		}
		if (r == 0)
			break;
		moat_buf_consume(src, (size_t)r);
		progress = 1;
	}
	return progress;
}

static int run_tunnel(struct moat_client *c, struct moat_txn *t, struct moat_bconn *b)
{
	int err = 0, progress = 0;

	if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
		moat_client_close(c);
		return -1;
	}
	if (moat_buf_len(&c->out) == 0)
		progress |= pump_dir(b->ev.fd, &b->io, &b->in, c->ev.fd, &c->io, &c->out, &err);
	if (!err && moat_io_flush(b->ev.fd, &b->io, &b->out) < 0)
		err = 1;
	if (!err && moat_buf_len(&b->out) == 0)
		progress |= pump_dir(c->ev.fd, &c->io, &c->in, b->ev.fd, &b->io, &b->out, &err);
	if (err) {
		moat_client_close(c);
		return -1;
	}
	/* Half-closes travel: EOF on one side, once drained, shuts the other. */
	if (c->io.eof && moat_buf_len(&c->in) == 0 && !b->io.wr_shut) {
		shutdown(b->ev.fd, SHUT_WR);
		b->io.wr_shut = 1;
	}
	if (b->io.eof && moat_buf_len(&b->in) == 0 && moat_buf_len(&c->out) == 0 && !c->io.wr_shut) {
		shutdown(c->ev.fd, SHUT_WR);
		c->io.wr_shut = 1;
	}
	if (c->io.wr_shut && b->io.wr_shut) {
		moat_client_close(c);
		return -1;
	}
	if (progress)
		moat_bconn_set_timer(b, c->w->loop.now_ms + txn_conf(t)->timeouts.backend_idle);
	return progress;
}

/* ---- txn driver ---- */

/* The txn's counters: worker totals, its route's and its upstream's. */
static void count_txn(struct moat_worker *w, struct moat_txn *t)
{
	unsigned cls = t->status >= 100 && t->status < 600 ? (unsigned)t->status / 100 - 1 : 4;
	uint64_t us = now_us() - t->start_us;

	MOAT_STAT_INC(w->stats.requests);
	MOAT_STAT_ADD(w->stats.bytes_in, t->bytes_in);
	MOAT_STAT_ADD(w->stats.bytes_out, t->bytes_out);
	moat_hist_observe(&w->stats.latency, us);
	if (t->route) {
		struct moat_rstats *rs = &t->wc->ref->routes[t->route - t->wc->ref->conf->routes].stats[w->id];

		MOAT_STAT_INC(rs->requests[cls]);
		MOAT_STAT_ADD(rs->bytes_in, t->bytes_in);
		MOAT_STAT_ADD(rs->bytes_out, t->bytes_out);
		moat_hist_observe(&rs->latency, us);
	}
	if (t->up && t->tries)
		MOAT_STAT_INC(t->wc->ref->ups[t->up_idx].stats[w->id].requests[cls]);
}

void moat_txn_finish(struct moat_client *c)
{
	struct moat_txn *t = c->txn;
	struct moat_worker *w = c->w;

	if (!t)
		return;
	if (t->b) {
		t->b->c = NULL;
		moat_bconn_close(t->b);
		t->b = NULL;
	}
	if (t->status == 0)
		t->status = c->dead ? 499 : 502;
	moat_pending_del(w, c);
	moat_balance_txn_end(t);
	count_txn(w, t);
	/* a 4xx answer counts; 499 is none (the client left) */
	if (t->status >= 400 && t->status < 500 && t->status != 499)
		moat_phase_offense(c, t->client.ss_family ? (const struct sockaddr *)&t->client : NULL,
				   MOAT_OFFENSE_4XX);
	if (t->served && t->serve.release)
		t->serve.release(t->serve.ref);
	t->served = 0;
	moat_phase_txn_end(t);
	/* a module's body read raised the input's maximum for this txn only */
	if (t->in_max_saved && moat_buf_len(&c->in) <= t->in_max_saved)
		c->in.max = t->in_max_saved;
	if (t->lv_method || t->lv_uri)
		write_access(c, t);
	moat_buf_release(&t->reqhead);
	moat_wconf_put(w, t->wc);
	t->free_next = w->free_txns;
	w->free_txns = t;
	c->txn = NULL;
}

/* Returns 1 when it made progress, 0 when it waits, -1 when the txn or
 * the conn ended (the caller re-reads c->state). */
int moat_txn_run(struct moat_client *c)
{
	struct moat_txn *t = c->txn;
	struct moat_bconn *b = t->b;
	int progress = 0, r;

	switch (t->phase) {
	case MOAT_TXN_CONNECT:
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return -1;
		}
		return 0;
	case MOAT_TXN_TUNNEL:
		return run_tunnel(c, t, b);
	case MOAT_TXN_LOCAL:
		return run_local(c, t);
	case MOAT_TXN_EXCHANGE: {
		ssize_t n;

		/* Queues first: room made here lets the pumps below move on. */
		n = moat_io_flush(c->ev.fd, &c->io, &c->out);
		if (n < 0) {
			moat_client_close(c);
			return -1;
		}
		progress |= n > 0;
		n = moat_io_flush(b->ev.fd, &b->io, &b->out);
		if (n < 0) {
			backend_failed(c, 502);
			return 1;
		}
		progress |= n > 0;
		r = pump_request(c, t, b);
		if (r < 0)
			return -1;
		progress |= r;
		if (!t->resp_started) {
			/* Read whatever came, also when part of a head (or an
			 * interim response) is already here: a head split over
			 * several reads must not wait for the next event. */
			n = moat_io_read(b->ev.fd, &b->io, &b->in);
			if (n < 0) {
				backend_failed(c, 502);
				return 1;
			}
			progress |= n > 0;
			r = parse_response_head(c, t, b);
			if (r < 0)
				return 1;
			if (r > 0) {
				progress = 1;
				moat_bconn_set_timer(b, c->w->loop.now_ms + txn_conf(t)->timeouts.backend_idle);
			}
		}
		if (t->phase == MOAT_TXN_TUNNEL)
			return 1;
		if (t->resp_started && !t->resp_done && t->b) {
			r = t->filtered ? pump_filtered(c, t, b) : pump_response(c, t, b);
			if (r < 0)
				return -1;
			if (r > 0) {
				progress = 1;
				moat_bconn_set_timer(b, c->w->loop.now_ms + txn_conf(t)->timeouts.backend_idle);
			}
		}
		n = moat_io_flush(c->ev.fd, &c->io, &c->out);
		if (n < 0) {
			moat_client_close(c);
			return -1;
		}
		progress |= n > 0;
		if (t->resp_done) {
			if (t->b)
				release_backend(c, t);
			t->phase = MOAT_TXN_FINISHING;
			progress = 1;
		}
		return progress;
	}
	case MOAT_TXN_FINISHING:
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return -1;
		}
		if (moat_buf_len(&c->out))
			return 0;
		{
			int keep = t->keepalive && t->req_done && !c->io.eof && !t->out_close;
			int clean = t->req_done && moat_buf_len(&c->in) == 0;

			moat_txn_finish(c);
			if (!keep) {
				/* Nothing unread from the client: a plain close
				 * sends FIN, no reset can overtake the response.
				 * Otherwise half-close and drain first. */
				if (clean && !c->io.hup) {
					moat_client_close(c);
					return -1;
				}
				moat_client_closing(c);
				return 1;
			}
			c->state = MOAT_C_HEAD;
			if (moat_buf_len(&c->in) == 0) {
				moat_buf_release(&c->in);
				moat_buf_release(&c->out);
			}
		}
		return 1;
	case MOAT_TXN_HOLD:
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return -1;
		}
		if (c->w->loop.now_ms < t->hold_until)
			return 0; /* the client timer wakes it */
		t->phase = MOAT_TXN_NONE;
		resume_hooks(c, moat_phase_request(c, NULL));
		return 1;
	case MOAT_TXN_INSPECT:
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return -1;
		}
		return run_inspect(c, t);
	case MOAT_TXN_PENDING:
		/* The worker's pending timer moves it on. */
		if (moat_io_flush(c->ev.fd, &c->io, &c->out) < 0) {
			moat_client_close(c);
			return -1;
		}
		return 0;
	case MOAT_TXN_NONE:
		break;
	}
	return 0;
}

