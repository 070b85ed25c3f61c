/*
 * health.c - active health checks and DNS re-resolution (see health.h).
 *
 * Two threads of our own, so that N workers do not multiply the probes and
 * nothing here ever runs on a request's way:
 *
 *   the probe thread runs one moat_loop. It owns the generation it was
 *   handed (config + bindings), one `track` per distinct server state of
 *   that generation, and every probe in flight. It is the only thread that
 *   writes a server's `up` and, through moat_srv_set_addr, its address.
 *
 *   the resolver thread only calls getaddrinfo, which blocks. The probe
 *   thread queues a job (host copied, port, generation id, track index);
 *   the resolver fills in the answer, puts the job on the answer list and
 *   wakes the probe loop, which applies it if the generation is still the
 *   current one. The resolver never sees a server state or the config.
 *
 * A probe, one per checked server at a time (the track's timer is either
 * the next start or the deadline of the probe in flight):
 *
 *   IDLE --timer--> CONNECTING --writable--> SENDING --all sent--> READING
 *     ^                                                               |
 *     +------ judged, failed or timed out: count, schedule next ------+
 *
 * Ownership: struct moat_health is the caller's handle, created by
 * moat_health_start and freed by moat_health_stop. The tracks array and
 * each probe's request and response buffers belong to the probe thread;
 * strings of the config are borrowed from the current generation, which is
 * released (its release(arg) called) only after every track of it is gone.
 * Resolver jobs belong to whichever list holds them, and to the resolver
 * thread while it works on one.
 */
#include "upstream/health.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "http/chunked.h"
#include "http/h1_parse.h"

/* The most of a body read to look for health_check.body (conf.h). */
#define HEALTH_BODY_MAX (64 * MOAT_KIB)
/* Room past the body for an undecoded chunk-size or trailer line. */
#define HEALTH_RAW_SLACK (32 * MOAT_KIB)
/* Header fields a probe answer may have (more: invalid answer). */
#define HEALTH_HEADERS_MAX 128u
/* First probes of successive servers start this far apart... */
#define HEALTH_SPREAD_MS 10u
/* ... wrapping around after this much, so that a long list still starts soon. */
#define HEALTH_SPREAD_MAX_MS 1000u

enum probe_state {
	P_IDLE = 0,
	P_CONNECTING,
	P_SENDING,
	P_READING,
};

/* One distinct server state of the current generation. Owned by the probe
 * thread; `up`, `srv`, `req` point into / are built from the generation. */
struct track {
	struct moat_ev ev;                  /* probe socket; fd -1 when none */
	struct moat_timer timer;            /* next probe, or deadline of the one in flight */
	struct moat_timer dns_timer;        /* next re-resolution */
	struct moat_health *h;
	struct moat_srv_state *s;
	const struct moat_conf_upstream *up;
	const struct moat_conf_server *srv;
	int checked;                        /* the upstream has health_check */
	int resolved;                       /* a DNS name re-resolved every resolve_interval */

	/* rise / fall counting (moat_health_count), carried across generations */
	int is_up;
	unsigned streak;

	/* the probe in flight */
	enum probe_state st;
	uint64_t started;                   /* ms when it started */
	char *req;                          /* the request, built once per generation */
	size_t req_len, req_off;
	char *buf;                          /* response: head, then the body (decoded) */
	size_t cap, len;
	size_t head_len;                    /* 0 until the head is parsed */
	int status;
	enum moat_h1_framing framing;
	uint64_t content_length;
	size_t body_len;                    /* body bytes at buf + head_len */
	size_t raw_off;                     /* chunked: first undecoded byte */
	struct moat_chunked ck;

	/* re-resolution */
	int dns_pending;                    /* a job is queued or being resolved */
	int dns_failing;                    /* the last lookup failed (warned once) */
};

/* A lookup handed to the resolver thread, and its answer. */
struct res_job {
	struct res_job *next;
	uint64_t gen;                       /* generation id of the track */
	size_t idx;                         /* index of the track */
	char *host;                         /* owned copy */
	unsigned port;                      /* host order */
	int rc;                             /* 0, or a getaddrinfo error */
	char why[128];                      /* the error as text */
	struct sockaddr_storage ss;
	socklen_t len;
};

struct gen {
	const struct moat_conf *c;
	struct moat_upstream_rt *ups;
	void (*release)(void *arg);
	void *arg;
};

struct moat_health {
	struct moat_loop loop;
	struct moat_defer work;
	pthread_t thread;
	pthread_t resolver;
	int resolver_started;

	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;                /* the resolver waits on it */
	struct gen next;                    /* handed by moat_health_set, not yet taken */
	int has_next;
	int stopping;
	int rstop;                          /* the resolver must return */
	struct res_job *jobs;               /* queued lookups, FIFO */
	struct res_job **jobs_tail;
	struct res_job *answers;            /* done lookups, any order */

	/* probe thread only */
	struct gen cur;
	int has_cur;
	uint64_t gen_id;
	struct track *tracks;
	size_t ntracks;
};

static void probe_event(struct moat_ev *ev, uint32_t events);
static void probe_timer(struct moat_timer *tm);
static void dns_due(struct moat_timer *tm);

/* ---- pure parts ---------------------------------------------------------- */

int moat_health_judge(const struct moat_conf_health *hc, int status, const char *body, size_t len)
{
	size_t nlen;

	if (status <= 0 || (unsigned)status < hc->status_min || (unsigned)status > hc->status_max)
		return 0;
	if (!hc->body || hc->body[0] == '\0')
		return 1;
	nlen = strlen(hc->body);
	if (!body || len < nlen)
		return 0;
	return memmem(body, len, hc->body, nlen) != NULL;
}

int moat_health_count(int *up, unsigned *streak, int ok, unsigned rise, unsigned fall)
{
	unsigned need = *up ? fall : rise;

	if (need == 0)
		need = 1;
	if ((ok != 0) == (*up != 0)) {
		/* Agrees with the current state: any opposite run is broken. */
		*streak = 0;
		return 0;
	}
	if (++*streak < need)
		return 0;
	*up = !*up;
	*streak = 0;
	return 1;
}

/* ---- helpers --------------------------------------------------------------- */

static uint64_t interval_of(const struct moat_conf_health *hc)
{
	return hc->interval_ms ? hc->interval_ms : 5 * MOAT_SECOND_MS;
}

static uint64_t timeout_of(const struct moat_conf_health *hc)
{
	uint64_t iv = interval_of(hc);

	return hc->timeout_ms && hc->timeout_ms <= iv ? hc->timeout_ms : iv;
}

static int want_body(const struct track *t)
{
	const struct moat_conf_health *hc = &t->up->health;

	return hc->body && hc->body[0] != '\0';
}

/* "connection refused" for ECONNREFUSED: strerror, first letter lowered. */
static void errno_text(int err, char *out, size_t outlen)
{
	char tmp[128];
	const char *m = strerror_r(err, tmp, sizeof(tmp));

	snprintf(out, outlen, "%s", m);
	if (out[0] >= 'A' && out[0] <= 'Z' && (out[1] < 'A' || out[1] > 'Z'))
		out[0] = (char)(out[0] - 'A' + 'a');
}

static char *build_request(const struct moat_conf_upstream *up, const struct moat_conf_server *srv,
			   size_t *len)
{
	const struct moat_conf_health *hc = &up->health;
	const char *method = hc->method && hc->method[0] ? hc->method : "GET";
	const char *path = hc->path && hc->path[0] ? hc->path : "/";
	const char *host = hc->host && hc->host[0] ? hc->host : srv->addr.text;
	int n = snprintf(NULL, 0,
			 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: moat-health\r\n"
			 "Connection: close\r\n\r\n",
			 method, path, host ? host : "");
	char *req;

	if (n < 0)
		return NULL;
	req = malloc((size_t)n + 1);
	if (!req)
		return NULL;
	snprintf(req, (size_t)n + 1,
		 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: moat-health\r\n"
		 "Connection: close\r\n\r\n",
		 method, path, host ? host : "");
	*len = (size_t)n;
	return req;
}

/* ---- server state changes ------------------------------------------------- */

static void set_up(struct track *t, uint64_t now)
{
	struct moat_srv_state *s = t->s;

	/* back_since first: a worker that sees up = 1 reads a fresh ramp start. */
	atomic_store(&s->back_since, now);
	atomic_store(&s->ejected_until, 0);
	atomic_store(&s->ejections, 0);
	atomic_store(&s->failures, 0);
	atomic_store(&s->up, 1);
	atomic_fetch_add(&s->transitions_up, 1);
}

static void counted(struct track *t, int ok, const char *why)
{
	const struct moat_conf_health *hc = &t->up->health;
	unsigned rise = hc->rise ? hc->rise : 1;
	unsigned fall = hc->fall ? hc->fall : 1;

	if (!moat_health_count(&t->is_up, &t->streak, ok, rise, fall)) {
		if (!ok)
			MOAT_DEBUG("upstream %s: server %s: check failed: %s", t->up->name,
				   t->srv->addr.text, why);
		return;
	}
	if (t->is_up) {
		set_up(t, t->h->loop.now_ms);
		MOAT_INFO("upstream %s: server %s is up (%u passed check%s)", t->up->name,
			  t->srv->addr.text, rise, rise == 1 ? "" : "s");
	} else {
		atomic_store(&t->s->up, 0);
		atomic_fetch_add(&t->s->transitions_down, 1);
		MOAT_WARN("upstream %s: server %s is down (%u failed check%s: %s)", t->up->name,
			  t->srv->addr.text, fall, fall == 1 ? "" : "s", why);
	}
}

/* ---- probes ---------------------------------------------------------------- */

/* Drops what the probe in flight holds (socket, buffer); the timer stays. */
static void probe_clear(struct track *t)
{
	if (t->ev.fd >= 0) {
		close(t->ev.fd);        /* also leaves the epoll set */
		t->ev.fd = -1;
	}
	free(t->buf);
	t->buf = NULL;
	t->cap = t->len = 0;
	t->st = P_IDLE;
}

/* Ends the probe in flight with its outcome and schedules the next one. */
static void probe_done(struct track *t, int ok, const char *why)
{
	struct moat_health *h = t->h;
	uint64_t now = h->loop.now_ms;
	uint64_t next = t->started + interval_of(&t->up->health);

	probe_clear(t);
	counted(t, ok, why);
	moat_timer_set(&h->loop.timers, &t->timer, next > now ? next : now + 1);
}

static void probe_fail_errno(struct track *t, const char *what, int err)
{
	char why[160];
	char e[128];

	errno_text(err, e, sizeof(e));
	if (what)
		snprintf(why, sizeof(why), "%s: %s", what, e);
	else
		snprintf(why, sizeof(why), "%s", e);
	probe_done(t, 0, why);
}

static void probe_judge(struct track *t)
{
	const struct moat_conf_health *hc = &t->up->health;
	const char *body = t->buf + t->head_len;
	char why[96];

	if (moat_health_judge(hc, t->status, body, t->body_len)) {
		probe_done(t, 1, NULL);
		return;
	}
	if (t->status < 0 || (unsigned)t->status < hc->status_min ||
	    (unsigned)t->status > hc->status_max)
		snprintf(why, sizeof(why), "status %d", t->status);
	else
		snprintf(why, sizeof(why), "body does not contain the expected text");
	probe_done(t, 0, why);
}

static void probe_start(struct track *t)
{
	struct moat_health *h = t->h;
	struct sockaddr_storage ss;
	socklen_t len = moat_srv_addr(t->s, &ss);
	int fd, err;

	t->started = h->loop.now_ms;
	t->req_off = 0;
	t->head_len = 0;
	t->status = 0;
	t->body_len = 0;
	t->raw_off = 0;
	if (!t->req) {
		probe_done(t, 0, "out of memory");
		return;
	}
	fd = moat_sock_connect((const struct sockaddr *)&ss, len);
	if (fd < 0) {
		probe_fail_errno(t, NULL, -fd);
		return;
	}
	t->ev.fd = fd;
	err = moat_loop_add(&h->loop, &t->ev, 1);
	if (err < 0) {
		probe_fail_errno(t, "epoll", -err);
		return;
	}
	t->st = P_CONNECTING;
	moat_timer_set(&h->loop.timers, &t->timer, t->started + timeout_of(&t->up->health));
}

/* Looks at what was read. Returns 1 when the probe ended (judged or
 * failed), 0 when more bytes are needed. `eof`: the server closed. */
static int probe_advance(struct track *t, int eof)
{
	if (t->head_len == 0) {
		const struct moat_conf *c = t->h->cur.c;
		struct moat_h1_header hdrs[HEALTH_HEADERS_MAX];
		struct moat_h1_head hd;
		struct moat_h1_limits lim = {
			.request_line_max = c->limits.header_size_max,
			.header_size_max = c->limits.header_size_max,
			.header_count_max = c->limits.header_count_max < HEALTH_HEADERS_MAX ?
					    c->limits.header_count_max : HEALTH_HEADERS_MAX,
		};
		int head_req = strcmp(t->up->health.method ? t->up->health.method : "GET", "HEAD") == 0;
		int r;

		for (;;) {
			memset(&hd, 0, sizeof(hd));
			hd.headers = hdrs;
			hd.header_cap = HEALTH_HEADERS_MAX;
			r = moat_h1_parse_response(t->buf, t->len, &hd, &lim, head_req);
			if (r == MOAT_AGAIN) {
				if (eof) {
					probe_done(t, 0, "connection closed before a complete response head");
					return 1;
				}
				return 0;
			}
			if (r < 0) {
				probe_done(t, 0, "invalid response head");
				return 1;
			}
			if (hd.status >= 100 && hd.status < 200 && hd.status != 101) {
				/* Interim answer (100, 103): the final one follows. */
				memmove(t->buf, t->buf + r, t->len - (size_t)r);
				t->len -= (size_t)r;
				continue;
			}
			break;
		}
		t->head_len = (size_t)r;
		t->status = hd.status;
		t->framing = hd.framing;
		t->content_length = hd.content_length;
		t->raw_off = t->head_len;
		moat_chunked_init(&t->ck);
		if (!want_body(t)) {
			t->body_len = 0;
			probe_judge(t);
			return 1;
		}
	}

	switch (t->framing) {
	case MOAT_H1_BODY_NONE:
		t->body_len = 0;
		probe_judge(t);
		return 1;
	case MOAT_H1_BODY_LENGTH: {
		uint64_t want = t->content_length < HEALTH_BODY_MAX ? t->content_length : HEALTH_BODY_MAX;
		size_t have = t->len - t->head_len;

		t->body_len = have < want ? have : (size_t)want;
		if (t->body_len >= want) {
			probe_judge(t);
			return 1;
		}
		if (eof) {
			probe_done(t, 0, "connection closed in the middle of the body");
			return 1;
		}
		return 0;
	}
	case MOAT_H1_BODY_CLOSE: {
		size_t have = t->len - t->head_len;

		t->body_len = have < HEALTH_BODY_MAX ? have : HEALTH_BODY_MAX;
		if (eof || t->body_len >= HEALTH_BODY_MAX) {
			probe_judge(t);
			return 1;
		}
		return 0;
	}
	case MOAT_H1_BODY_CHUNKED:
		while (t->raw_off < t->len) {
			size_t used = 0, off = 0, dlen = 0;
			int r = moat_chunked_decode(&t->ck, t->buf + t->raw_off, t->len - t->raw_off, &used,
						    &off, &dlen);

			if (r < 0) {
				probe_done(t, 0, "invalid chunked body");
				return 1;
			}
			if (r == MOAT_CHUNKED_DONE) {
				probe_judge(t);
				return 1;
			}
			if (r == MOAT_CHUNKED_DATA) {
				size_t room = HEALTH_BODY_MAX - t->body_len;
				size_t n = dlen < room ? dlen : room;

				/* Decoded bytes never run ahead of the raw ones. */
				memmove(t->buf + t->head_len + t->body_len, t->buf + t->raw_off + off, n);
				t->body_len += n;
				if (t->body_len >= HEALTH_BODY_MAX) {
					probe_judge(t);
					return 1;
				}
			}
			t->raw_off += used;
			if (r == MOAT_CHUNKED_NEED)
				break;
		}
		{
			/* Keep an incomplete line right after the body. */
			size_t keep = t->len - t->raw_off;
			size_t at = t->head_len + t->body_len;

			memmove(t->buf + at, t->buf + t->raw_off, keep);
			t->raw_off = at;
			t->len = at + keep;
		}
		if (eof) {
			probe_done(t, 0, "connection closed in the middle of the body");
			return 1;
		}
		return 0;
	}
	probe_done(t, 0, "invalid response framing");
	return 1;
}

static void probe_read(struct track *t)
{
	for (;;) {
		ssize_t n;

		if (t->len >= t->cap) {
			probe_done(t, 0, "response too large");
			return;
		}
		n = recv(t->ev.fd, t->buf + t->len, t->cap - t->len, 0);
		if (n > 0) {
			t->len += (size_t)n;
			if (probe_advance(t, 0))
				return;
			continue;
		}
		if (n == 0) {
			probe_advance(t, 1);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		probe_fail_errno(t, "read", errno);
		return;
	}
}

static void probe_send(struct track *t)
{
	while (t->req_off < t->req_len) {
		ssize_t n = send(t->ev.fd, t->req + t->req_off, t->req_len - t->req_off, MSG_NOSIGNAL);

		if (n >= 0) {
			t->req_off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		probe_fail_errno(t, "send", errno);
		return;
	}
	t->cap = t->h->cur.c->limits.header_size_max + 1;
	if (want_body(t))
		t->cap += HEALTH_BODY_MAX + HEALTH_RAW_SLACK;
	t->buf = malloc(t->cap);
	if (!t->buf) {
		probe_done(t, 0, "out of memory");
		return;
	}
	t->len = 0;
	t->st = P_READING;
	probe_read(t);
}

static void probe_event(struct moat_ev *ev, uint32_t events)
{
	struct track *t = (struct track *)ev;

	switch (t->st) {
	case P_IDLE:
		return;
	case P_CONNECTING: {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(t->ev.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err == 0 && (events & (EPOLLERR | EPOLLHUP)))
			err = ECONNREFUSED;
		if (err) {
			probe_fail_errno(t, NULL, err);
			return;
		}
		t->st = P_SENDING;
		probe_send(t);
		return;
	}
	case P_SENDING:
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			probe_send(t);
		return;
	case P_READING:
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			probe_read(t);
		return;
	}
}

static void probe_timer(struct moat_timer *tm)
{
	struct track *t = (struct track *)((char *)tm - offsetof(struct track, timer));
	char why[64];

	if (t->st == P_IDLE) {
		probe_start(t);
		return;
	}
	snprintf(why, sizeof(why), "timed out after %llu ms",
		 (unsigned long long)timeout_of(&t->up->health));
	probe_done(t, 0, why);
}

/* ---- re-resolution ----------------------------------------------------------- */

static void dns_due(struct moat_timer *tm)
{
	struct track *t = (struct track *)((char *)tm - offsetof(struct track, dns_timer));
	struct moat_health *h = t->h;

	moat_timer_set(&h->loop.timers, &t->dns_timer, h->loop.now_ms + t->up->resolve_interval_ms);
	if (t->dns_pending)
		return;         /* the previous lookup is still running */
	{
		struct res_job *j = calloc(1, sizeof(*j));

		if (!j || !(j->host = strdup(t->srv->host))) {
			free(j);
			return;         /* try again next interval */
		}
		j->gen = h->gen_id;
		j->idx = (size_t)(t - h->tracks);
		j->port = moat_sock_port((const struct sockaddr *)&t->srv->addr.ss);
		pthread_mutex_lock(&h->mu);
		*h->jobs_tail = j;
		h->jobs_tail = &j->next;
		pthread_cond_signal(&h->cond);
		pthread_mutex_unlock(&h->mu);
		t->dns_pending = 1;
	}
}

static void resolve(struct res_job *j)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(j->host, NULL, &hints, &res);
	if (rc != 0) {
		j->rc = rc;
		if (rc == EAI_SYSTEM)
			errno_text(errno, j->why, sizeof(j->why));
		else
			snprintf(j->why, sizeof(j->why), "%s", gai_strerror(rc));
		return;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(j->ss))
			break;
	if (!ai) {
		freeaddrinfo(res);
		j->rc = EAI_NONAME;
		snprintf(j->why, sizeof(j->why), "no IPv4 or IPv6 address");
		return;
	}
	memset(&j->ss, 0, sizeof(j->ss));
	memcpy(&j->ss, ai->ai_addr, ai->ai_addrlen);
	j->len = ai->ai_addrlen;
	if (ai->ai_family == AF_INET)
		((struct sockaddr_in *)(void *)&j->ss)->sin_port = htons((uint16_t)j->port);
	else
		((struct sockaddr_in6 *)(void *)&j->ss)->sin6_port = htons((uint16_t)j->port);
	freeaddrinfo(res);
	j->rc = 0;
}

static void block_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void *resolver_main(void *arg)
{
	struct moat_health *h = arg;

	block_signals();
	pthread_mutex_lock(&h->mu);
	while (!h->rstop) {
		struct res_job *j = h->jobs;

		if (!j) {
			pthread_cond_wait(&h->cond, &h->mu);
			continue;
		}
		h->jobs = j->next;
		if (!h->jobs)
			h->jobs_tail = &h->jobs;
		pthread_mutex_unlock(&h->mu);

		resolve(j);

		pthread_mutex_lock(&h->mu);
		j->next = h->answers;
		h->answers = j;
		moat_loop_wake(&h->loop);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void free_jobs(struct res_job *j)
{
	while (j) {
		struct res_job *next = j->next;

		free(j->host);
		free(j);
		j = next;
	}
}

static void dns_answer(struct moat_health *h, struct res_job *j)
{
	struct track *t;
	struct sockaddr_storage cur;
	socklen_t len;
	char text[64];

	if (j->gen != h->gen_id || j->idx >= h->ntracks)
		return;         /* asked for a generation since replaced */
	t = &h->tracks[j->idx];
	t->dns_pending = 0;
	len = moat_srv_addr(t->s, &cur);
	moat_sock_ntop((const struct sockaddr *)&cur, text, sizeof(text));
	if (j->rc != 0) {
		if (!t->dns_failing)
			MOAT_WARN("upstream %s: server %s: cannot resolve %s: %s (keeping %s)",
				  t->up->name, t->srv->addr.text, t->srv->host, j->why, text);
		t->dns_failing = 1;
		return;
	}
	if (t->dns_failing)
		MOAT_INFO("upstream %s: server %s: %s resolves again", t->up->name, t->srv->addr.text,
			  t->srv->host);
	t->dns_failing = 0;
	if (len == j->len && moat_sock_addr_eq((const struct sockaddr *)&cur,
					       (const struct sockaddr *)&j->ss))
		return;
	moat_srv_set_addr(t->s, (const struct sockaddr *)&j->ss, j->len);
	moat_sock_ntop((const struct sockaddr *)&j->ss, text, sizeof(text));
	MOAT_INFO("upstream %s: server %s now resolves to %s", t->up->name, t->srv->addr.text, text);
}

/* ---- generations ------------------------------------------------------------- */

static void release_gen(struct gen *g)
{
	if (g->release)
		g->release(g->arg);
	memset(g, 0, sizeof(*g));
}

static void tracks_free(struct moat_health *h, struct track *tr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		probe_clear(&tr[i]);
		moat_timer_stop(&h->loop.timers, &tr[i].timer);
		moat_timer_stop(&h->loop.timers, &tr[i].dns_timer);
		free(tr[i].req);
	}
	free(tr);
}

static struct track *track_find(struct track *tr, size_t n, const struct moat_srv_state *s)
{
	for (size_t i = 0; i < n; i++)
		if (tr[i].s == s)
			return &tr[i];
	return NULL;
}

/* Builds the tracks of `g`, counters carried over from the current ones
 * for a state kept. Returns 0, or -ENOMEM (nothing built). */
static int tracks_build(struct moat_health *h, const struct gen *g, struct track **out, size_t *nout)
{
	size_t total = 0, n = 0;
	struct track *tr;

	for (size_t i = 0; i < g->c->nupstreams; i++)
		total += g->c->upstreams[i].nservers;
	tr = calloc(total ? total : 1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	for (size_t i = 0; i < g->c->nupstreams; i++) {
		const struct moat_conf_upstream *up = &g->c->upstreams[i];

		for (size_t j = 0; j < up->nservers; j++) {
			const struct moat_conf_server *srv = &up->servers[j];
			struct moat_srv_state *s = g->ups[i].srv ? g->ups[i].srv[j] : NULL;
			int checked = up->health.enabled;
			int resolved = srv->is_name && srv->host && up->resolve_interval_ms > 0;
			struct track *t, *old;

			if (!s || (!checked && !resolved) || track_find(tr, n, s))
				continue;
			t = &tr[n++];
			t->ev.fd = -1;
			t->ev.cb = probe_event;
			t->timer.cb = probe_timer;
			t->dns_timer.cb = dns_due;
			t->h = h;
			t->s = s;
			t->up = up;
			t->srv = srv;
			t->checked = checked;
			t->resolved = resolved;
			t->is_up = atomic_load(&s->up) != 0;
			old = track_find(h->tracks, h->ntracks, s);
			if (old) {
				if (old->checked && checked)
					t->streak = old->streak;
				t->dns_failing = old->dns_failing;
			}
			if (checked) {
				t->req = build_request(up, srv, &t->req_len);
				if (!t->req) {
					tracks_free(h, tr, n);
					return -ENOMEM;
				}
			}
		}
	}
	*out = tr;
	*nout = n;
	return 0;
}

/* Servers of upstreams without health checks count as up: one that an
 * earlier generation's checks left down would otherwise stay down. */
static void unchecked_up(struct moat_health *h)
{
	const struct moat_conf *c = h->cur.c;

	for (size_t i = 0; i < c->nupstreams; i++) {
		const struct moat_conf_upstream *up = &c->upstreams[i];

		if (up->health.enabled || !h->cur.ups[i].srv)
			continue;
		for (size_t j = 0; j < up->nservers; j++) {
			struct moat_srv_state *s = h->cur.ups[i].srv[j];

			if (!s || atomic_load(&s->up))
				continue;
			atomic_store(&s->back_since, h->loop.now_ms);
			atomic_store(&s->up, 1);
			MOAT_INFO("upstream %s: server %s is up (health checks are off)", up->name,
				  up->servers[j].addr.text);
		}
	}
}

static void swap_to(struct moat_health *h, struct gen *g)
{
	struct track *tr = NULL;
	size_t n = 0, k = 0;
	uint64_t now = h->loop.now_ms;

	if (tracks_build(h, g, &tr, &n) < 0) {
		MOAT_ERR("health checks: out of memory; the new configuration's checks do not start");
		release_gen(g);
		return;
	}
	tracks_free(h, h->tracks, h->ntracks);
	h->tracks = tr;
	h->ntracks = n;
	h->gen_id++;
	/* Lookups queued for the old tracks are moot. */
	pthread_mutex_lock(&h->mu);
	free_jobs(h->jobs);
	h->jobs = NULL;
	h->jobs_tail = &h->jobs;
	pthread_mutex_unlock(&h->mu);
	if (h->has_cur)
		release_gen(&h->cur);
	h->cur = *g;
	h->has_cur = 1;
	memset(g, 0, sizeof(*g));

	unchecked_up(h);
	for (size_t i = 0; i < n; i++) {
		struct track *t = &tr[i];
		uint64_t spread = (uint64_t)k * HEALTH_SPREAD_MS % HEALTH_SPREAD_MAX_MS;

		if (t->checked) {
			uint64_t iv = interval_of(&t->up->health);

			k++;
			moat_timer_set(&h->loop.timers, &t->timer, now + (spread < iv ? spread : 0) + 1);
		}
		if (t->resolved)
			moat_timer_set(&h->loop.timers, &t->dns_timer,
				       now + t->up->resolve_interval_ms + spread);
	}
}

/* Runs at the end of a loop iteration after a wake: no probe event of
 * this iteration is left to see a track we free here. */
static void work(struct moat_defer *d)
{
	struct moat_health *h = (struct moat_health *)((char *)d - offsetof(struct moat_health, work));
	struct gen g = { 0 };
	int has_g, stop;
	struct res_job *answers;

	pthread_mutex_lock(&h->mu);
	has_g = h->has_next;
	if (has_g)
		g = h->next;
	h->has_next = 0;
	memset(&h->next, 0, sizeof(h->next));
	stop = h->stopping;
	answers = h->answers;
	h->answers = NULL;
	pthread_mutex_unlock(&h->mu);

	if (stop) {
		free_jobs(answers);
		tracks_free(h, h->tracks, h->ntracks);
		h->tracks = NULL;
		h->ntracks = 0;
		if (has_g)
			release_gen(&g);
		if (h->has_cur)
			release_gen(&h->cur);
		h->has_cur = 0;
		h->loop.stop = 1;
		return;
	}
	if (has_g)
		swap_to(h, &g);
	for (struct res_job *j = answers; j; j = j->next)
		dns_answer(h, j);
	free_jobs(answers);
}

static void on_wake(struct moat_loop *loop)
{
	struct moat_health *h = loop->owner;

	moat_loop_defer(loop, &h->work);
}

static void *probe_main(void *arg)
{
	struct moat_health *h = arg;

	block_signals();
	h->loop.now_ms = moat_clock_ms();
	moat_loop_run(&h->loop);
	return NULL;
}

/* ---- control thread --------------------------------------------------------- */

struct moat_health *moat_health_start(void)
{
	struct moat_health *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	if (moat_loop_init(&h->loop) < 0) {
		free(h);
		return NULL;
	}
	h->loop.owner = h;
	h->loop.on_wake = on_wake;
	h->work.cb = work;
	h->jobs_tail = &h->jobs;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cond, NULL);
	err = pthread_create(&h->resolver, NULL, resolver_main, h);
	if (err == 0) {
		h->resolver_started = 1;
		err = pthread_create(&h->thread, NULL, probe_main, h);
	}
	if (err != 0) {
		MOAT_ERR("health checks: cannot start a thread: %s", strerror(err));
		if (h->resolver_started) {
			pthread_mutex_lock(&h->mu);
			h->rstop = 1;
			pthread_cond_signal(&h->cond);
			pthread_mutex_unlock(&h->mu);
			pthread_join(h->resolver, NULL);
		}
		pthread_cond_destroy(&h->cond);
		pthread_mutex_destroy(&h->mu);
		moat_loop_destroy(&h->loop);
		free(h);
		return NULL;
	}
	return h;
}

void moat_health_set(struct moat_health *h, const struct moat_conf *c, struct moat_upstream_rt *ups,
		     void (*release)(void *arg), void *arg)
{
	struct gen dropped = { 0 };
	int has_dropped;

	pthread_mutex_lock(&h->mu);
	has_dropped = h->has_next;
	dropped = h->next;
	h->next.c = c;
	h->next.ups = ups;
	h->next.release = release;
	h->next.arg = arg;
	h->has_next = 1;
	pthread_mutex_unlock(&h->mu);
	moat_loop_wake(&h->loop);
	/* Handed but never taken by the checker: nobody else will release it. */
	if (has_dropped)
		release_gen(&dropped);
}

void moat_health_stop(struct moat_health *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	pthread_mutex_unlock(&h->mu);
	moat_loop_wake(&h->loop);
	pthread_join(h->thread, NULL);

	pthread_mutex_lock(&h->mu);
	h->rstop = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->resolver, NULL);   /* waits for a lookup in progress */

	free_jobs(h->jobs);
	free_jobs(h->answers);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->mu);
	moat_loop_destroy(&h->loop);
	free(h);
}
