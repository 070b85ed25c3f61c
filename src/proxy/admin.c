/*
 * admin.c - the admin listener's thread (see admin.h): its own moat_loop,
 * one listening socket (TCP or unix), at most MOAT_ADMIN_CONNS_MAX
 * connections speaking HTTP/1.1 with keep-alive, the peer and token
 * checks, and the dispatch to the JSON API (admin_api.c), /metrics
 * (metrics.c) and the dashboard page.
 *
 * A connection, one request at a time (pipelined ones wait in its input):
 *
 *   accept --> READ head (+ body) --complete--> check peer, token --> answer
 *     ^                                                                |
 *     +------------- flushed, keep-alive ------- WRITE <---------------+
 *                                                  | flushed, close
 *                                                  v
 *                                                closed
 *
 * Every connection has one deadline, MOAT_ADMIN_TIMEOUT_MS after its
 * accept and after each answer is flushed: a request must arrive and its
 * answer leave within it, and an idle keep-alive connection closes at it.
 * Handlers run to completion on this thread (a reload blocks the admin
 * listener, never a worker).
 *
 * Ownership: struct moat_admin belongs to the control thread that started
 * it; while the thread runs, everything in it (connections, buffers) is
 * the admin thread's. Connections are freed at the end of the loop
 * iteration that closed them (deferred, as workers do).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "http/h1_parse.h"
#include "proxy/admin_int.h"

/* Built from src/proxy/dashboard.html when it exists (the Makefile embeds
 * it); weak so that the binary links without it. */
extern const char moat_dashboard_html[] __attribute__((weak));
extern const size_t moat_dashboard_html_len __attribute__((weak));

#define IN_MAX (MOAT_ADMIN_HEAD_MAX + MOAT_ADMIN_BODY_MAX)
#define ADMIN_BACKLOG 128
#define ACCEPT_RETRY_MS 100u

struct aconn {
	struct moat_ev ev;              /* first: the event callback casts back */
	struct moat_admin *a;
	struct aconn *prev, *next;      /* the admin's list */
	struct moat_timer timer;
	struct sockaddr_storage ss;
	int tcp;                        /* a TCP peer: the peer check applies */
	char peer[96];                  /* for log lines */
	char *in;                       /* IN_MAX bytes */
	size_t inlen;
	struct moat_text out;
	size_t outoff;
	unsigned can_read : 1, eof : 1, close_after : 1, dead : 1, sent_100 : 1;
	struct aconn *dead_next;
};

struct moat_admin {
	struct moat_loop loop;
	struct moat_runtime *rt;
	const char *version;
	pthread_t thread;
	atomic_int stop;
	struct moat_ev lev;             /* the listening socket */
	char *listen_text;              /* as written: "127.0.0.1:9901", "unix:/path" */
	char *unix_path;                /* the socket file we made (removed at stop) */
	dev_t unix_dev;
	ino_t unix_ino;
	struct moat_conf_admin boot;    /* token and allow at start: kept while a later
					 * generation has no admin section */
	uint64_t seen_gen;              /* generation whose admin section was last looked at */
	struct aconn *conns;
	unsigned nconns;
	struct aconn *dead;
	struct moat_defer reap;
	struct moat_timer accept_retry;
	uint64_t busy_logged;           /* ms of the last "too many connections" line */
	struct moat_text body;          /* scratch: the answer being built */
};

/* ---- pure checks ------------------------------------------------------------------ */

int moat_admin_peer_allowed(const struct sockaddr *sa, const struct moat_conf_cidr *allow, size_t n)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!sa)
		return 0;
	if (sa->sa_family == AF_UNIX)
		return 1;
	if (sa->sa_family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;

		if (b[0] == 127)
			return 1;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a6))
			return 1;
		if (memcmp(a6->s6_addr, v4mapped, sizeof(v4mapped)) == 0 && a6->s6_addr[12] == 127)
			return 1;
	} else {
		return 0;
	}
	return moat_conf_cidr_match(allow, n, sa);
}

int moat_admin_token_eq(const char *given, size_t given_len, const char *want)
{
	size_t n = strlen(want);
	volatile unsigned char d = (unsigned char)(given_len != n);

	for (size_t i = 0; i < n; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;

		d |= (unsigned char)(g ^ (unsigned char)want[i]);
	}
	return d == 0;
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_event(struct moat_ev *ev, uint32_t events);
static void conn_close(struct aconn *k);

static void conn_timeout(struct moat_timer *tm)
{
	struct aconn *k = (struct aconn *)((char *)tm - offsetof(struct aconn, timer));

	MOAT_DEBUG("admin: %s: timed out", k->peer);
	conn_close(k);
}

static void conn_close(struct aconn *k)
{
	struct moat_admin *a = k->a;

	if (k->dead)
		return;
	k->dead = 1;
	moat_timer_stop(&a->loop.timers, &k->timer);
	close(k->ev.fd);
	if (k->prev)
		k->prev->next = k->next;
	else
		a->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	a->nconns--;
	k->dead_next = a->dead;
	a->dead = k;
	moat_loop_defer(&a->loop, &a->reap);
}

static void conn_free(struct aconn *k)
{
	free(k->in);
	moat_text_free(&k->out);
	free(k);
}

static void reap(struct moat_defer *d)
{
	struct moat_admin *a = (struct moat_admin *)((char *)d - offsetof(struct moat_admin, reap));

	while (a->dead) {
		struct aconn *k = a->dead;

		a->dead = k->dead_next;
		conn_free(k);
	}
}

static void peer_text(struct aconn *k, int fd, socklen_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&k->ss;
	char ip[64];

	if (!k->tcp || len == 0 || sa->sa_family == AF_UNIX) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
			snprintf(k->peer, sizeof(k->peer), "unix pid=%d uid=%u", (int)cr.pid, (unsigned)cr.uid);
		else
			snprintf(k->peer, sizeof(k->peer), "unix");
		return;
	}
	moat_sock_ntop(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET6)
		snprintf(k->peer, sizeof(k->peer), "[%s]:%u", ip, moat_sock_port(sa));
	else
		snprintf(k->peer, sizeof(k->peer), "%s:%u", ip, moat_sock_port(sa));
}

/* Past MOAT_ADMIN_CONNS_MAX: a short 503, best effort, and close. */
static void refuse_busy(struct moat_admin *a, int fd)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
				  "Content-Length: 39\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
				  "{\"error\":\"too many admin connections\"}\n";
	uint64_t now = moat_clock_ms();
	ssize_t r = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)r;
	shutdown(fd, SHUT_WR);
	close(fd);
	if (now - a->busy_logged >= 1000u) {
		a->busy_logged = now;
		MOAT_WARN("admin: %u connections open, the most allowed: refusing more (503)", a->nconns);
	}
}

static void conn_new(struct moat_admin *a, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	struct aconn *k = calloc(1, sizeof(*k));

	if (!k || !(k->in = malloc(IN_MAX))) {
		free(k);
		close(fd);
		MOAT_ERR("admin: out of memory: connection dropped");
		return;
	}
	k->a = a;
	k->ev.fd = fd;
	k->ev.cb = conn_event;
	k->timer.cb = conn_timeout;
	memcpy(&k->ss, ss, sizeof(k->ss));
	k->tcp = a->unix_path == NULL;
	peer_text(k, fd, len);
	moat_text_init(&k->out, MOAT_ADMIN_OUT_MAX + 4096);
	if (moat_loop_add(&a->loop, &k->ev, 1) < 0) {
		MOAT_ERR("admin: %s: epoll: %s", k->peer, strerror(errno));
		close(fd);
		conn_free(k);
		return;
	}
	k->next = a->conns;
	if (k->next)
		k->next->prev = k;
	a->conns = k;
	a->nconns++;
	moat_timer_set(&a->loop.timers, &k->timer, moat_clock_ms() + MOAT_ADMIN_TIMEOUT_MS);
	MOAT_DEBUG("admin: %s: connected", k->peer);
}

static void accept_all(struct moat_admin *a)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		memset(&ss, 0, sizeof(ss));
		fd = accept4(a->lev.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* out of fds or memory: the queue waits; try again soon */
			MOAT_WARN("admin: accept: %s", strerror(errno));
			moat_timer_set(&a->loop.timers, &a->accept_retry, moat_clock_ms() + ACCEPT_RETRY_MS);
			return;
		}
		if (a->nconns >= MOAT_ADMIN_CONNS_MAX) {
			refuse_busy(a, fd);
			continue;
		}
		conn_new(a, fd, &ss, len);
	}
}

static void on_accept(struct moat_ev *ev, uint32_t events)
{
	struct moat_admin *a = (struct moat_admin *)((char *)ev - offsetof(struct moat_admin, lev));

	(void)events;
	accept_all(a);
}

static void accept_retry(struct moat_timer *tm)
{
	accept_all((struct moat_admin *)((char *)tm - offsetof(struct moat_admin, accept_retry)));
}

/* ---- answers ------------------------------------------------------------------------------ */

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Content";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* Queues the answer in r on k: head, then the body unless head_only. */
static void queue_answer(struct aconn *k, struct moat_admin_resp *r, int head_only, int keep, int minor)
{
	struct moat_text *o = &k->out;

	if (r->body->full) {
		MOAT_ERR("admin: %s: answer larger than %u bytes or out of memory", k->peer, MOAT_ADMIN_OUT_MAX);
		moat_text_reset(r->body);
		moat_admin_error(r, 500, "answer too large");
	}
	moat_text_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", r->status,
			 reason(r->status), r->content_type ? r->content_type : "application/json",
			 r->body->len);
	moat_text_str(o, "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
	if (r->allow)
		moat_text_printf(o, "Allow: %s\r\n", r->allow);
	if (r->www_auth)
		moat_text_printf(o, "WWW-Authenticate: %s\r\n", r->www_auth);
	if (!keep)
		moat_text_str(o, "Connection: close\r\n");
	else if (minor == 0)
		moat_text_str(o, "Connection: keep-alive\r\n");
	moat_text_str(o, "\r\n");
	if (!head_only)
		moat_text_add(o, r->body->p ? r->body->p : "", r->body->len);
	if (o->full) {
		/* cannot happen (out allows the largest body and a head): close rather than send half */
		moat_text_reset(o);
		keep = 0;
	}
	k->close_after = !keep;
}

static void answer_error(struct aconn *k, int status, const char *msg)
{
	struct moat_admin_resp r = { 0 };

	r.body = &k->a->body;
	moat_admin_error(&r, status, msg);
	MOAT_INFO("admin: %s: %d %s", k->peer, status, msg);
	queue_answer(k, &r, 0, 0, 1);
}

/* ---- request checks ------------------------------------------------------------------------ */

static const struct moat_h1_header *header(const struct moat_h1_head *h, const char *lower, int *count)
{
	const struct moat_h1_header *found = NULL;
	size_t n = strlen(lower);

	*count = 0;
	for (size_t i = 0; i < h->nheaders; i++) {
		if (moat_h1_name_is(&h->headers[i], lower, n)) {
			if (!found)
				found = &h->headers[i];
			(*count)++;
		}
	}
	return found;
}

/* "Authorization: Bearer TOKEN", exactly one such field. */
static int token_ok(const struct moat_h1_head *h, const char *token)
{
	int count;
	const struct moat_h1_header *f = header(h, "authorization", &count);
	const char *v;
	size_t n;

	if (!f || count != 1 || f->value_len < 7 || strncasecmp(f->value, "bearer ", 7) != 0)
		return 0;
	v = f->value + 7;
	n = f->value_len - 7;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	return moat_admin_token_eq(v, n, token);
}

/* A browser's cross-site POST carries an Origin that is not ours: refused,
 * so that a web page cannot drain servers or reload through a browser on
 * the admin host. No Origin (curl, scripts) is fine. */
static int origin_ok(const struct moat_h1_head *h)
{
	int count;
	const struct moat_h1_header *f = header(h, "origin", &count);
	const char *v;
	size_t n;

	if (!f)
		return 1;
	if (count != 1 || !h->host)
		return 0;
	v = f->value;
	n = f->value_len;
	if (n > 7 && strncasecmp(v, "http://", 7) == 0) {
		v += 7;
		n -= 7;
	} else if (n > 8 && strncasecmp(v, "https://", 8) == 0) {
		v += 8;
		n -= 8;
	} else {
		return 0;
	}
	return n == h->host_len && strncasecmp(v, h->host, n) == 0;
}

/* The admin settings that apply now: the current generation's admin
 * section, or those of the start when it has none. Warns once per
 * generation about what a reload cannot change. */
static const struct moat_conf_admin *settings(struct moat_admin *a, const struct moat_confref *cur)
{
	const struct moat_conf_admin *ac = &cur->conf->admin;

	if (cur->generation != a->seen_gen) {
		a->seen_gen = cur->generation;
		if (!ac->enabled)
			MOAT_WARN("admin: generation %llu has no admin section; the admin listener keeps the token "
				  "and allow list it started with until moat restarts",
				  (unsigned long long)cur->generation);
		else if (ac->addr.text && strcmp(ac->addr.text, a->listen_text) != 0)
			MOAT_WARN("admin: admin.listen is now %s: that takes a restart; still listening on %s",
				  ac->addr.text, a->listen_text);
	}
	return ac->enabled ? ac : &a->boot;
}

static int method_is(const struct moat_h1_head *h, const char *m)
{
	size_t n = strlen(m);

	return h->method_len == n && memcmp(h->method, m, n) == 0;
}

static void serve_dashboard(struct moat_admin_resp *r)
{
	static const char placeholder[] =
		"<!doctype html>\n<meta charset=\"utf-8\"><title>moat</title>\n"
		"<p>moat admin: this build has no dashboard. See <a href=\"/api/health\">/api/health</a> "
		"and <a href=\"/metrics\">/metrics</a>.</p>\n";

	moat_text_reset(r->body);
	r->status = 200;
	r->content_type = "text/html; charset=utf-8";
	if (moat_dashboard_html && &moat_dashboard_html_len)
		moat_text_add(r->body, moat_dashboard_html, moat_dashboard_html_len);
	else
		moat_text_add(r->body, placeholder, sizeof(placeholder) - 1);
}

/* Runs one complete request (head h, body of blen bytes). */
static void handle(struct aconn *k, const struct moat_h1_head *h, const char *body, size_t blen,
		   struct moat_admin_resp *r)
{
	struct moat_admin *a = k->a;
	struct moat_confref *cur = moat_runtime_current(a->rt);
	const struct moat_conf_admin *ac = settings(a, cur);
	struct moat_admin_ctx x = { a->rt, cur, a->version };
	struct moat_admin_req q;
	const char *qm = memchr(h->target, '?', h->target_len);
	int get = method_is(h, "GET") || method_is(h, "HEAD");

	memset(&q, 0, sizeof(q));
	q.method = h->method;
	q.method_len = h->method_len;
	q.path = h->target;
	q.path_len = qm ? (size_t)(qm - h->target) : h->target_len;
	q.body = body;
	q.body_len = blen;
	q.peer = k->peer;

	if (k->tcp && !moat_admin_peer_allowed((const struct sockaddr *)&k->ss, ac->allow, ac->nallow)) {
		MOAT_INFO("admin: %s: %.*s %.*s: 403 (not loopback and not in admin.allow)", k->peer,
			  (int)h->method_len, h->method, (int)(q.path_len > 200 ? 200 : q.path_len), q.path);
		moat_admin_error(r, 403, "forbidden: this address may not use the admin API");
		goto out;
	}
	/* The page alone needs no token: it holds no data, and a browser
	 * cannot send a bearer token when it navigates; the page asks for the
	 * token and sends it with every API call. */
	if (ac->token && !(get && q.path_len == 1 && q.path[0] == '/') && !token_ok(h, ac->token)) {
		int count;

		MOAT_INFO("admin: %s: %.*s %.*s: 401 (%s bearer token)", k->peer, (int)h->method_len, h->method,
			  (int)(q.path_len > 200 ? 200 : q.path_len), q.path,
			  header(h, "authorization", &count) ? "wrong" : "no");
		moat_admin_error(r, 401, "unauthorized: send \"Authorization: Bearer TOKEN\"");
		r->www_auth = header(h, "authorization", &count) ? "Bearer realm=\"moat\", error=\"invalid_token\"" :
								   "Bearer realm=\"moat\"";
		goto out;
	}
	if (q.path_len == 0 || q.path[0] != '/') {
		moat_admin_error(r, 400, "the request target must be a path");
		goto out;
	}
	if (!get && !origin_ok(h)) {
		MOAT_INFO("admin: %s: %.*s %.*s: 403 (cross-origin request)", k->peer, (int)h->method_len,
			  h->method, (int)(q.path_len > 200 ? 200 : q.path_len), q.path);
		moat_admin_error(r, 403, "forbidden: cross-origin request");
		goto out;
	}
	if ((q.path_len == 1 && q.path[0] == '/') || (q.path_len == 8 && memcmp(q.path, "/metrics", 8) == 0)) {
		if (!get) {
			r->allow = "GET, HEAD";
			moat_admin_error(r, 405, "method not allowed: use GET");
		} else if (q.path_len == 1) {
			serve_dashboard(r);
		} else {
			moat_text_reset(r->body);
			r->status = 200;
			r->content_type = "text/plain; version=0.0.4; charset=utf-8";
			moat_metrics_render(&x, r->body);
		}
		goto out;
	}
	moat_admin_api(&x, &q, r);
out:
	MOAT_DEBUG("admin: %s: %.*s %.*s: %d", k->peer, (int)h->method_len, h->method,
		   (int)(q.path_len > 200 ? 200 : q.path_len), q.path, r->status);
	moat_confref_put(cur);
}

/* Parses and runs the request at the start of k->in. Returns 1 when an
 * answer was queued, 0 when more bytes are needed. */
static int try_request(struct aconn *k)
{
	static const struct moat_h1_limits lim = {
		.request_line_max = MOAT_ADMIN_HEAD_MAX,
		.header_size_max = MOAT_ADMIN_HEAD_MAX,
		.header_count_max = MOAT_ADMIN_HEADERS_MAX,
	};
	struct moat_h1_header hdrs[MOAT_ADMIN_HEADERS_MAX];
	struct moat_h1_head h;
	struct moat_admin_resp r = { 0 };
	size_t need;
	int hl, keep;

	if (k->inlen == 0)
		return 0;
	memset(&h, 0, sizeof(h));
	h.headers = hdrs;
	h.header_cap = MOAT_ADMIN_HEADERS_MAX;
	hl = moat_h1_parse_request(k->in, k->inlen, &h, &lim);
	if (hl == MOAT_AGAIN)
		return 0;
	switch (hl) {
	case MOAT_H1_EURI_TOO_LONG:
		answer_error(k, 414, "request target too long");
		return 1;
	case MOAT_H1_EHDR_TOO_BIG:
		answer_error(k, 431, "request head too large");
		return 1;
	case MOAT_H1_EVERSION:
		answer_error(k, 505, "HTTP version not supported");
		return 1;
	default:
		if (hl < 0) {
			answer_error(k, 400, "malformed request");
			return 1;
		}
		break;
	}
	if (h.framing == MOAT_H1_BODY_CHUNKED) {
		answer_error(k, 411, "send the body with a Content-Length");
		return 1;
	}
	if (h.framing == MOAT_H1_BODY_LENGTH && h.content_length > MOAT_ADMIN_BODY_MAX) {
		answer_error(k, 413, "request body too large");
		return 1;
	}
	need = (size_t)hl + (h.framing == MOAT_H1_BODY_LENGTH ? (size_t)h.content_length : 0);
	if (k->inlen < need) {
		if ((h.flags & MOAT_H1_F_EXPECT_100) && h.minor_version == 1 && !k->sent_100) {
			moat_text_str(&k->out, "HTTP/1.1 100 Continue\r\n\r\n");
			k->sent_100 = 1;
		}
		return 0;
	}
	k->sent_100 = 0;
	keep = h.minor_version == 1 ? !(h.flags & MOAT_H1_F_CONN_CLOSE) : !!(h.flags & MOAT_H1_F_CONN_KEEPALIVE);
	if (atomic_load(&k->a->stop))
		keep = 0;
	r.body = &k->a->body;
	handle(k, &h, k->in + hl, need - (size_t)hl, &r);
	queue_answer(k, &r, method_is(&h, "HEAD"), keep, h.minor_version);
	memmove(k->in, k->in + need, k->inlen - need);
	k->inlen -= need;
	return 1;
}

/* ---- I/O ------------------------------------------------------------------------------------ */

static void conn_read(struct aconn *k)
{
	while (k->can_read && k->inlen < IN_MAX) {
		ssize_t n = recv(k->ev.fd, k->in + k->inlen, IN_MAX - k->inlen, 0);

		if (n > 0) {
			k->inlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			k->eof = 1;
			k->can_read = 0;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			k->can_read = 0;
			return;
		}
		MOAT_DEBUG("admin: %s: read: %s", k->peer, strerror(errno));
		conn_close(k);
		return;
	}
}

/* Sends what is queued; 1 when all of it left. */
static int conn_flush(struct aconn *k)
{
	while (k->outoff < k->out.len) {
		ssize_t n = send(k->ev.fd, k->out.p + k->outoff, k->out.len - k->outoff, MSG_NOSIGNAL);

		if (n > 0) {
			k->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		MOAT_DEBUG("admin: %s: write: %s", k->peer, n < 0 ? strerror(errno) : "no progress");
		conn_close(k);
		return 0;
	}
	moat_text_reset(&k->out);
	k->outoff = 0;
	moat_timer_set(&k->a->loop.timers, &k->timer, moat_clock_ms() + MOAT_ADMIN_TIMEOUT_MS);
	return 1;
}

static void conn_run(struct aconn *k)
{
	while (!k->dead) {
		if (k->out.len > 0) {
			if (!conn_flush(k))
				return;         /* closed, or waiting until writable */
			if (k->close_after) {
				conn_close(k);
				return;
			}
		}
		conn_read(k);
		if (k->dead)
			return;
		if (!try_request(k)) {
			if (k->out.len > 0)
				continue;       /* a 100 Continue to send */
			if (k->eof)
				conn_close(k);  /* nothing more will come */
			return;
		}
	}
}

static void conn_event(struct moat_ev *ev, uint32_t events)
{
	struct aconn *k = (struct aconn *)ev;

	if (k->dead)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		k->can_read = 1;
	conn_run(k);
}

/* ---- the listener ----------------------------------------------------------------------------- */

static int listen_tcp(const struct moat_conf_addr *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)&addr->ss;
	int one = 1, fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT as the traffic listeners: during a binary upgrade the
	 * new process binds beside the old one, which closes its socket when
	 * it stops (the kernel allows it to processes of the same user only) */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, sa, addr->len) < 0 || listen(fd, ADMIN_BACKLOG) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Whether process `pid` runs the same program as this one (its name, as
 * /proc/PID/comm has it): the old process of a binary upgrade does, a
 * supervisor that happens to listen on the path does not. */
static int same_program(pid_t pid)
{
	char path[64], a[32] = "", b[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(a, sizeof(a), f))
		a[0] = '\0';
	fclose(f);
	f = fopen("/proc/self/comm", "re");
	if (!f)
		return 0;
	if (!fgets(b, sizeof(b), f))
		b[0] = '\0';
	fclose(f);
	return a[0] != '\0' && strcmp(a, b) == 0;
}

static int listen_unix(struct moat_admin *a, const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	struct stat st;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int p;

		if (!S_ISSOCK(st.st_mode)) {
			MOAT_ERR("admin: %s exists and is not a socket: not replacing it", path);
			return -EEXIST;
		}
		/* a socket file: stale unless someone still accepts on it; our
		 * parent, the old process of a binary upgrade, gives it up to us
		 * (it removes the file at stop only while it is still its own) */
		p = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p >= 0) {
			int rc = connect(p, (const struct sockaddr *)&sun, len);
			struct ucred cr;
			socklen_t cl = sizeof(cr);

			e = errno;
			if (rc == 0 && getsockopt(p, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == getppid() &&
			    same_program(cr.pid))
				rc = 1;
			close(p);
			if (rc == 0 || (rc < 0 && e == EAGAIN)) {
				MOAT_ERR("admin: %s: another process listens on it", path);
				return -EADDRINUSE;
			}
			if (rc == 1)
				MOAT_INFO("admin: taking %s over from the parent process (pid %d)", path,
					  (int)getppid());
			else
				MOAT_INFO("admin: removing the stale socket file %s", path);
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)&sun, len) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	/* 0600 before listen(): until then nobody can connect */
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 || listen(fd, ADMIN_BACKLOG) < 0) {
		e = -errno;
		close(fd);
		unlink(path);
		return e;
	}
	a->unix_dev = st.st_dev;
	a->unix_ino = st.st_ino;
	return fd;
}

/* Removes the socket file if it is still the one we made. */
static void unix_cleanup(struct moat_admin *a)
{
	struct stat st;

	if (!a->unix_path)
		return;
	if (lstat(a->unix_path, &st) == 0 && st.st_dev == a->unix_dev && st.st_ino == a->unix_ino)
		unlink(a->unix_path);
}

/* ---- the thread ------------------------------------------------------------------------------- */

static void on_wake(struct moat_loop *loop)
{
	struct moat_admin *a = loop->owner;

	if (atomic_load(&a->stop))
		loop->stop = 1;
}

static void *admin_main(void *arg)
{
	struct moat_admin *a = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	a->loop.now_ms = moat_clock_ms();
	moat_loop_run(&a->loop);
	return NULL;
}

static int boot_copy(struct moat_conf_admin *dst, const struct moat_conf_admin *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->enabled = 1;
	if (src->token && !(dst->token = strdup(src->token)))
		return -ENOMEM;
	if (src->nallow) {
		dst->allow = malloc(src->nallow * sizeof(*dst->allow));
		if (!dst->allow)
			return -ENOMEM;
		memcpy(dst->allow, src->allow, src->nallow * sizeof(*dst->allow));
		dst->nallow = src->nallow;
	}
	return 0;
}

/* Frees what admin_new and the listener set up (the thread is not running). */
static void admin_free(struct moat_admin *a)
{
	while (a->conns) {
		struct aconn *k = a->conns;

		a->conns = k->next;
		close(k->ev.fd);
		conn_free(k);
	}
	reap(&a->reap);
	if (a->lev.fd >= 0)
		close(a->lev.fd);
	unix_cleanup(a);
	moat_loop_destroy(&a->loop);
	moat_text_free(&a->body);
	free(a->boot.token);
	free(a->boot.allow);
	free(a->listen_text);
	free(a->unix_path);
	free(a);
}

int moat_admin_start(struct moat_runtime *rt, const char *version, struct moat_admin **out)
{
	struct moat_confref *cur = moat_runtime_current(rt);
	const struct moat_conf_admin *ac = &cur->conf->admin;
	struct moat_admin *a;
	int err, fd;

	*out = NULL;
	if (!ac->enabled) {
		moat_confref_put(cur);
		return 0;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		moat_confref_put(cur);
		return -ENOMEM;
	}
	a->lev.fd = -1;
	err = moat_loop_init(&a->loop);
	if (err < 0) {
		MOAT_ERR("admin: cannot create its event loop: %s", strerror(-err));
		free(a);
		moat_confref_put(cur);
		return err;
	}
	a->rt = rt;
	a->version = version;
	a->loop.owner = a;
	a->loop.on_wake = on_wake;
	a->reap.cb = reap;
	a->accept_retry.cb = accept_retry;
	a->seen_gen = cur->generation;
	atomic_init(&a->stop, 0);
	moat_text_init(&a->body, MOAT_ADMIN_OUT_MAX);
	err = boot_copy(&a->boot, ac);
	if (!err && !(a->listen_text = strdup(ac->addr.text ? ac->addr.text : "")))
		err = -ENOMEM;
	if (!err && ac->unix_path && !(a->unix_path = strdup(ac->unix_path)))
		err = -ENOMEM;
	if (err) {
		MOAT_ERR("admin: out of memory");
		goto fail;
	}
	fd = a->unix_path ? listen_unix(a, a->unix_path) : listen_tcp(&ac->addr);
	if (fd < 0) {
		err = fd;
		MOAT_ERR("admin: cannot listen on %s: %s", a->listen_text, strerror(-fd));
		/* not ours to remove */
		free(a->unix_path);
		a->unix_path = NULL;
		goto fail;
	}
	a->lev.fd = fd;
	a->lev.cb = on_accept;
	err = moat_loop_add(&a->loop, &a->lev, 0);
	if (err < 0) {
		MOAT_ERR("admin: epoll: %s", strerror(-err));
		goto fail;
	}
	err = -pthread_create(&a->thread, NULL, admin_main, a);
	if (err) {
		MOAT_ERR("admin: cannot start its thread: %s", strerror(-err));
		goto fail;
	}
	MOAT_INFO("admin: listening on %s (%s)", a->listen_text,
		  ac->token ? "bearer token required" : "no token");
	moat_confref_put(cur);
	*out = a;
	return 0;
fail:
	moat_confref_put(cur);
	admin_free(a);
	return err;
}

void moat_admin_stop(struct moat_admin *a)
{
	if (!a)
		return;
	atomic_store(&a->stop, 1);
	moat_loop_wake(&a->loop);
	pthread_join(a->thread, NULL);
	admin_free(a);
}
