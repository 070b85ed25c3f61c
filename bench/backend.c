/*
 * backend.c - the origin server every proxy in the benchmark talks to.
 *
 * One thread, one epoll loop, HTTP/1.1 keep-alive. It answers GET /1k with
 * 1024 bytes and GET /64k with 65536 bytes (Content-Length, never chunked),
 * whatever query string follows the path (/1k?k=7 is /1k), anything else
 * with a small 404. It must cost as little CPU as possible so
 * that the load side of the machine (backend + wrk share one core) is not
 * what limits the proxies.
 *
 * Responses are built once at start-up; a connection only queues pointers
 * to them, so pipelined requests are answered with a single writev().
 * "Connection: close" (or HTTP/1.0 without keep-alive) is honoured: the
 * connection stops reading, flushes its queue and closes.
 *
 * Owns: the listening socket, one struct conn per client (freed on close).
 * Usage: backend [ADDR:]PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IN_MAX   8192  /* request head bytes kept per connection: 431 past it */
#define QUEUE_MAX  64  /* pipelined responses queued before reading stops */

struct resp {
	char *buf;
	size_t len;
};

/* Responses: index by route, then [0] keep-alive, [1] close. */
enum { R_1K, R_64K, R_404, R_431, R_COUNT };
static struct resp resps[R_COUNT][2];

/* One client connection; owned by the loop, freed by conn_close(). */
struct conn {
	int fd;
	uint32_t events;              /* what epoll is currently asked for */
	int closing;                  /* a close response is queued: read no more */
	size_t inlen;
	unsigned long long body_left; /* request body bytes still to discard */
	const struct resp *q[QUEUE_MAX];
	unsigned qhead, qlen;         /* ring of queued responses */
	size_t qoff;                  /* bytes of q[qhead] already written */
	char in[IN_MAX];
};

static int epfd;

static void build(int route, int close, int status, size_t body)
{
	const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
			   : "Request Header Fields Too Large";
	char head[256];
	int hl = snprintf(head, sizeof head,
			  "HTTP/1.1 %d %s\r\nServer: bench-backend\r\n"
			  "Content-Type: application/octet-stream\r\n"
			  "Content-Length: %zu\r\n%s\r\n",
			  status, reason, body, close ? "Connection: close\r\n" : "");
	struct resp *r = &resps[route][close];
	r->len = (size_t)hl + body;
	r->buf = malloc(r->len);
	if (!r->buf) {
		perror("malloc");
		exit(1);
	}
	memcpy(r->buf, head, (size_t)hl);
	for (size_t i = 0; i < body; i++)
		r->buf[hl + i] = (char)('a' + i % 26);
}

static void conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c);
}

static void set_events(struct conn *c)
{
	uint32_t want = 0;
	if (!c->closing && c->qlen < QUEUE_MAX)
		want |= EPOLLIN;
	if (c->qlen)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	struct epoll_event ev = { .events = want, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* Case-insensitive search for `needle` within [p, end). */
static int has_token(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	for (; p + n <= end; p++)
		if (strncasecmp(p, needle, n) == 0)
			return 1;
	return 0;
}

static void push(struct conn *c, int route, int close)
{
	c->q[(c->qhead + c->qlen) % QUEUE_MAX] = &resps[route][close];
	c->qlen++;
	if (close)
		c->closing = 1;
}

/*
 * Parses every complete request head in c->in and queues its response.
 * Stops at an incomplete head, a full queue or a close request.
 */
static void parse(struct conn *c)
{
	size_t pos = 0;
	while (!c->closing && c->qlen < QUEUE_MAX) {
		if (c->body_left) {
			size_t n = c->inlen - pos;
			if (n > c->body_left)
				n = (size_t)c->body_left;
			pos += n;
			c->body_left -= n;
			if (c->body_left)
				break;
		}
		char *p = c->in + pos, *end = c->in + c->inlen;
		char *eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!eoh) {
			if (pos == 0 && c->inlen == IN_MAX)
				push(c, R_431, 1);
			break;
		}
		eoh += 4;
		char *eol = memchr(p, '\n', (size_t)(eoh - p));
		/* request line: METHOD SP TARGET SP HTTP/1.x */
		char *sp1 = memchr(p, ' ', (size_t)(eol - p));
		char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
		int route = R_404;
		int http10 = 0;
		if (sp2) {
			size_t tl = (size_t)(sp2 - sp1 - 1);
			/* the query string does not choose the route: /1k?k=7 is /1k */
			char *qm = memchr(sp1 + 1, '?', tl);
			if (qm)
				tl = (size_t)(qm - sp1 - 1);
			if (tl == 3 && memcmp(sp1 + 1, "/1k", 3) == 0)
				route = R_1K;
			else if (tl == 4 && memcmp(sp1 + 1, "/64k", 4) == 0)
				route = R_64K;
			http10 = eol - sp2 > 9 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
		}
		int close = http10;
		unsigned long long clen = 0;
		for (char *h = eol + 1; h < eoh - 2;) {
			char *hend = memchr(h, '\n', (size_t)(eoh - h));
			if (!hend)
				break;
			if (strncasecmp(h, "connection:", 11) == 0) {
				if (has_token(h + 11, hend, "close"))
					close = 1;
				else if (has_token(h + 11, hend, "keep-alive"))
					close = 0;
			} else if (strncasecmp(h, "content-length:", 15) == 0) {
				clen = strtoull(h + 15, NULL, 10);
			}
			h = hend + 1;
		}
		pos = (size_t)(eoh - c->in);
		c->body_left = clen;
		push(c, route, close);
	}
	if (c->body_left && pos < c->inlen) {
		size_t n = c->inlen - pos;
		if (n > c->body_left)
			n = (size_t)c->body_left;
		pos += n;
		c->body_left -= n;
	}
	memmove(c->in, c->in + pos, c->inlen - pos);
	c->inlen -= pos;
}

/* Writes queued responses. Returns -1 when the connection must be closed. */
static int flush(struct conn *c)
{
	while (c->qlen) {
		struct iovec iov[QUEUE_MAX];
		unsigned n = 0;
		for (unsigned i = 0; i < c->qlen; i++) {
			const struct resp *r = c->q[(c->qhead + i) % QUEUE_MAX];
			size_t off = i == 0 ? c->qoff : 0;
			iov[n].iov_base = r->buf + off;
			iov[n].iov_len = r->len - off;
			n++;
		}
		ssize_t w = writev(c->fd, iov, (int)n);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		size_t left = (size_t)w;
		while (c->qlen && left) {
			const struct resp *r = c->q[c->qhead];
			size_t rest = r->len - c->qoff;
			if (left < rest) {
				c->qoff += left;
				left = 0;
				break;
			}
			left -= rest;
			c->qoff = 0;
			c->qhead = (c->qhead + 1) % QUEUE_MAX;
			c->qlen--;
		}
		if (c->qlen) /* partial write: the socket is full */
			return 0;
	}
	return c->closing ? -1 : 0;
}

static void on_conn(struct conn *c, uint32_t ev)
{
	if (ev & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP) && !c->closing && c->qlen < QUEUE_MAX) {
		ssize_t n = read(c->fd, c->in + c->inlen, IN_MAX - c->inlen);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			conn_close(c);
			return;
		}
		if (n > 0) {
			c->inlen += (size_t)n;
			parse(c);
		}
	}
	if (flush(c) < 0) {
		conn_close(c);
		return;
	}
	parse(c); /* the queue may have room again for pipelined heads */
	if (c->qlen && flush(c) < 0) {
		conn_close(c);
		return;
	}
	set_events(c);
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("backend: accept4");
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		c->closing = 0;
		c->inlen = 0;
		c->body_left = 0;
		c->qhead = c->qlen = 0;
		c->qoff = 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("backend: epoll_ctl");
			conn_close(c);
		}
	}
}

/* Parses "[ADDR:]PORT" (IPv4) into `sa`; returns 0 or -1. */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(s, ':');
	const char *port = s;
	if (colon) {
		size_t hl = (size_t)(colon - s);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = 0;
		port = colon + 1;
	}
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 && sa->sin_port ? 0 : -1;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	if (argc != 2 || parse_addr(argv[1], &sa) < 0) {
		fprintf(stderr, "usage: backend [ADDR:]PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	build(R_1K, 0, 200, 1024);
	build(R_1K, 1, 200, 1024);
	build(R_64K, 0, 200, 65536);
	build(R_64K, 1, 200, 65536);
	build(R_404, 0, 404, 0);
	build(R_404, 1, 404, 0);
	build(R_431, 0, 431, 0);
	build(R_431, 1, 431, 0);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
		perror("backend: listen");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("backend: epoll");
		return 1;
	}
	fprintf(stderr, "backend: ready on %s\n", argv[1]);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("backend: epoll_wait");
			return 1;
		}
		/* One event per fd per batch, and a conn owns only one fd, so a
		 * conn closed here cannot appear later in the same batch. */
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_accept(lfd);
			else
				on_conn(evs[i].data.ptr, evs[i].events);
		}
	}
}
