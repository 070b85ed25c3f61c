/*
 * client.c - the benchmark's small HTTP/1.1 client (wrk does the load).
 *
 *   client probe PORT PATH TIMEOUT_S
 *       one GET until it gets a complete 200 or TIMEOUT_S passes; exit 0 on
 *       success. Used to wait until a server is ready and proxies correctly.
 *   client hold PORT N TIMEOUT_S
 *       opens N keep-alive connections, sends one GET /1k on each and reads
 *       the whole response, then keeps them idle. Prints "held H failed F"
 *       once all are done, then waits for SIGTERM/SIGINT (or TIMEOUT_S from
 *       start), prints "alive A" (connections the server has not closed)
 *       and exits, resetting the connections (no TIME_WAIT left behind).
 *   client run PORT N CONNS PATH [KEYS]
 *       N GETs in total over CONNS keep-alive connections, one outstanding
 *       request per connection; prints "done N in S s". For the fixed-count
 *       runs under callgrind and strace. With KEYS, request i (counted over
 *       all connections) carries X-Client: client-NNNNN, NNNNN = i mod KEYS,
 *       as bench/guard.lua sends them (Host: bench.example too).
 *   client statuses PORT N PATH HEADER TIMEOUT_S
 *       N GETs one after the other on one keep-alive connection (a new one
 *       when the server closes it), each carrying HEADER ("Name: value";
 *       "" for none); any status is accepted. Prints "STATUS COUNT" for
 *       each status seen, then "failed F" (requests that got no complete
 *       response: two tries each). Stops at TIMEOUT_S. For the sanity
 *       checks of bench/guard.sh (is a client over its limit refused?).
 *
 * Every response is checked: status 200 (any status for `statuses`) and
 * exactly Content-Length body bytes. All sockets are on 127.0.0.1. Owns everything it allocates; exits
 * without freeing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096
#define INFLIGHT_MAX 256   /* connections being set up at once in hold mode */

enum state { S_CONNECTING, S_SENDING, S_READING, S_IDLE, S_FAILED };

/* One client connection and the response being read on it. */
struct conn {
	int fd;
	enum state st;
	size_t sent;
	const char *req;          /* the request to send: `request`, or keyed[] */
	size_t reqlen;
	size_t headlen;           /* bytes in head[] */
	long long body_left;      /* -1 until the head is complete */
	int status;
	char head[HEAD_MAX];
};

static struct sockaddr_in server;
static char request[1024];
static size_t request_len;
static char scratch[65536];
static int any_status;     /* statuses: a complete non-200 response counts as done */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The GET sent on every connection; `hdr` ("Name: value") is added when
 * not empty. Exits when it does not fit. */
static void set_request_hdr(const char *path, const char *hdr)
{
	int n = snprintf(request, sizeof request,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-client\r\n%s%s\r\n",
			 path, hdr, *hdr ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof request) {
		fprintf(stderr, "client: request too long\n");
		exit(2);
	}
	request_len = (size_t)n;
}

static void set_request(const char *path)
{
	set_request_hdr(path, "");
}

static int conn_open(struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->req = request;
	c->reqlen = request_len;
	c->body_left = -1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->st = S_CONNECTING;
	return 0;
}

static void start_request(struct conn *c)
{
	c->st = S_SENDING;
	c->sent = 0;
	c->headlen = 0;
	c->body_left = -1;
	c->status = 0;
}

/* Consumes response bytes in `p`. Returns 1 when the response is complete,
 * 0 when more is needed, -1 on a malformed or non-200 response. */
static int feed(struct conn *c, const char *p, size_t n)
{
	if (c->body_left < 0) {
		size_t room = HEAD_MAX - c->headlen;
		size_t take = n < room ? n : room;
		memcpy(c->head + c->headlen, p, take);
		char *eoh = memmem(c->head, c->headlen + take, "\r\n\r\n", 4);
		if (!eoh) {
			c->headlen += take;
			return c->headlen == HEAD_MAX ? -1 : 0;
		}
		size_t hl = (size_t)(eoh + 4 - c->head);
		size_t used = hl - c->headlen; /* bytes of p that belonged to the head */
		c->headlen = hl;
		if (hl < 12 || memcmp(c->head, "HTTP/1.", 7) != 0)
			return -1;
		c->status = atoi(c->head + 9);
		c->body_left = 0;
		for (char *h = c->head; h && h < eoh; h = memchr(h, '\n', (size_t)(eoh - h))) {
			h++;
			if (strncasecmp(h, "content-length:", 15) == 0)
				c->body_left = atoll(h + 15);
		}
		p += used;
		n -= used;
	}
	if ((long long)n > c->body_left)
		return -1; /* bytes past the response: not expected, one request in flight */
	c->body_left -= (long long)n;
	if (c->body_left > 0)
		return 0;
	return c->status == 200 || (any_status && c->status > 0) ? 1 : -1;
}

/*
 * Advances `c` by one readiness event. Returns 1 when a response completed
 * (connection now idle), 0 to keep waiting, -1 on failure.
 */
static int step(struct conn *c, uint32_t ev)
{
	if (c->st == S_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if ((ev & EPOLLERR) || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
			return -1;
		if (!(ev & EPOLLOUT))
			return 0;
		start_request(c);
	}
	if (c->st == S_SENDING) {
		ssize_t w = send(c->fd, c->req + c->sent, c->reqlen - c->sent, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->sent += (size_t)w;
		if (c->sent < c->reqlen)
			return 0;
		c->st = S_READING;
	}
	if (c->st == S_READING) {
		for (;;) {
			ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
			if (n == 0)
				return -1;
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			int r = feed(c, scratch, (size_t)n);
			if (r != 0) {
				if (r == 1)
					c->st = S_IDLE;
				return r;
			}
		}
	}
	return 0;
}

static void ep_set(int ep, struct conn *c, uint32_t events, int op)
{
	struct epoll_event e = { .events = events, .data.ptr = c };
	if (epoll_ctl(ep, op, c->fd, &e) < 0) {
		perror("client: epoll_ctl");
		exit(1);
	}
}

static uint32_t want_of(const struct conn *c)
{
	return c->st == S_READING ? EPOLLIN : EPOLLOUT;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* One blocking-style request with a deadline; 0 on a complete 200. */
static int probe_once(double deadline)
{
	struct conn c;
	if (conn_open(&c) < 0)
		return -1;
	int r = 0;
	while (r == 0) {
		struct pollfd pfd = { .fd = c.fd, .events = c.st == S_READING ? POLLIN : POLLOUT };
		int ms = (int)((deadline - now_s()) * 1000);
		if (ms <= 0 || poll(&pfd, 1, ms) <= 0) {
			r = -1;
			break;
		}
		uint32_t ev = (pfd.revents & POLLIN ? EPOLLIN : 0) | (pfd.revents & POLLOUT ? EPOLLOUT : 0) |
		     (pfd.revents & POLLERR ? EPOLLERR : 0);
		r = step(&c, ev);
	}
	close(c.fd);
	return r == 1 ? 0 : -1;
}

static int cmd_probe(const char *path, double timeout)
{
	set_request(path);
	double deadline = now_s() + timeout;
	while (now_s() < deadline) {
		double d = now_s() + 2;
		if (probe_once(d < deadline ? d : deadline) == 0)
			return 0;
		usleep(100 * 1000);
	}
	fprintf(stderr, "client: no complete 200 for %s on port %d within %.0f s\n", path,
		ntohs(server.sin_port), timeout);
	return 1;
}

static int cmd_statuses(long n, const char *path, const char *hdr, double timeout)
{
	static long count[1000]; /* by status; [0]: out of range */
	long failed = 0, i = 0;
	int tries = 0;
	struct conn c;

	c.fd = -1;
	set_request_hdr(path, hdr);
	any_status = 1;
	double deadline = now_s() + timeout;
	while (i < n && now_s() < deadline) {
		if (c.fd >= 0) {
			start_request(&c); /* the next request on the same connection */
		} else if (conn_open(&c) < 0) {
			perror("client: connect");
			break;
		}
		int r = 0;
		while (r == 0) {
			struct pollfd pfd = { .fd = c.fd, .events = c.st == S_READING ? POLLIN : POLLOUT };
			int ms = (int)((deadline - now_s()) * 1000);
			if (ms <= 0 || poll(&pfd, 1, ms) <= 0) {
				r = -1;
				break;
			}
			uint32_t ev = (pfd.revents & POLLIN ? EPOLLIN : 0) | (pfd.revents & POLLOUT ? EPOLLOUT : 0) |
				      (pfd.revents & POLLERR ? EPOLLERR : 0);
			r = step(&c, ev);
		}
		if (r == 1) {
			count[c.status < 1000 ? c.status : 0]++;
			i++;
			tries = 0;
			continue;
		}
		/* closed by the server (after a refusal, say): once more on a new one */
		close(c.fd);
		c.fd = -1;
		if (++tries == 2) {
			failed++;
			i++;
			tries = 0;
		}
	}
	if (c.fd >= 0)
		close(c.fd);
	for (int s = 0; s < 1000; s++)
		if (count[s])
			printf("%d %ld\n", s, count[s]);
	printf("failed %ld\n", failed + (n - i));
	return 0;
}

static int cmd_hold(long n, double timeout)
{
	set_request("/1k");
	double deadline = now_s() + timeout;
	struct conn *cs = calloc((size_t)n, sizeof *cs);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || ep < 0) {
		perror("client");
		return 1;
	}
	long next = 0, inflight = 0, held = 0, failed = 0;
	struct epoll_event evs[256];
	while (held + failed < n && now_s() < deadline) {
		while (next < n && inflight < INFLIGHT_MAX) {
			struct conn *c = &cs[next++];
			if (conn_open(c) < 0) {
				c->st = S_FAILED;
				failed++;
				continue;
			}
			ep_set(ep, c, EPOLLOUT, EPOLL_CTL_ADD);
			inflight++;
		}
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			enum state before = c->st;
			int r = step(c, evs[i].events);
			if (r == 0) {
				if (want_of(c) != (before == S_READING ? EPOLLIN : EPOLLOUT))
					ep_set(ep, c, want_of(c), EPOLL_CTL_MOD);
				continue;
			}
			ep_set(ep, c, 0, EPOLL_CTL_DEL);
			inflight--;
			if (r == 1) {
				held++;
			} else {
				c->st = S_FAILED;
				close(c->fd);
				c->fd = -1;
				failed++;
			}
		}
	}
	printf("held %ld failed %ld\n", held, failed);
	fflush(stdout);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	double left = deadline - now_s();
	if (left > 0) {
		struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
		sigtimedwait(&set, NULL, &ts);
	}

	long alive = 0;
	struct linger lg = { 1, 0 };
	for (long i = 0; i < n; i++) {
		struct conn *c = &cs[i];
		if (c->fd < 0 || c->st == S_FAILED)
			continue;
		if (c->st == S_IDLE) {
			char b;
			ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
			if (r < 0 && errno == EAGAIN)
				alive++;
		}
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(c->fd);
	}
	printf("alive %ld\n", alive);
	return failed ? 1 : 0;
}

/* Points c at its own request for key number `i` (cmd_run with KEYS). */
static void keyed_request(struct conn *c, char *buf, size_t size, const char *path, long i, long keys)
{
	int n = snprintf(buf, size,
			 "GET %s HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench-client\r\n"
			 "X-Client: client-%05ld\r\n\r\n",
			 path, i % keys);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "client: request too long\n");
		exit(2);
	}
	c->req = buf;
	c->reqlen = (size_t)n;
}

static int cmd_run(long n, int nconns, const char *path, long keys)
{
	enum { KEYED_MAX = 512 };
	set_request(path);
	struct conn *cs = calloc((size_t)nconns, sizeof *cs);
	char (*keyed)[KEYED_MAX] = keys > 0 ? calloc((size_t)nconns, KEYED_MAX) : NULL;
	if (keys > 0 && !keyed) {
		perror("client");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || ep < 0) {
		perror("client");
		return 1;
	}
	double t0 = now_s();
	long started = 0, done = 0;
	for (int i = 0; i < nconns && started < n; i++, started++) {
		if (conn_open(&cs[i]) < 0) {
			perror("client: connect");
			return 1;
		}
		if (keys > 0)
			keyed_request(&cs[i], keyed[i], KEYED_MAX, path, started, keys);
		ep_set(ep, &cs[i], EPOLLOUT, EPOLL_CTL_ADD);
	}
	struct epoll_event evs[64];
	while (done < n) {
		int k = epoll_wait(ep, evs, 64, 10000);
		if (k <= 0) {
			fprintf(stderr, "client: stalled after %ld responses\n", done);
			return 1;
		}
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			enum state before = c->st;
			int r = step(c, evs[i].events);
			int finished = 0;
			while (r == 1) { /* a response completed: send the next one */
				done++;
				if (started >= n) {
					ep_set(ep, c, 0, EPOLL_CTL_DEL);
					finished = 1;
					break;
				}
				if (keys > 0)
					keyed_request(c, keyed[c - cs], KEYED_MAX, path, started, keys);
				started++;
				start_request(c);
				r = step(c, EPOLLOUT);
			}
			if (r < 0) {
				fprintf(stderr, "client: bad response or connection error after %ld responses\n", done);
				return 1;
			}
			if (finished)
				continue;
			uint32_t was = before == S_READING ? EPOLLIN : EPOLLOUT;
			if (want_of(c) != was)
				ep_set(ep, c, want_of(c), EPOLL_CTL_MOD);
		}
	}
	printf("done %ld in %.3f s\n", done, now_s() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
usage:
		fprintf(stderr, "usage: client probe PORT PATH TIMEOUT_S\n"
				"       client hold PORT N TIMEOUT_S\n"
				"       client run PORT N CONNS PATH [KEYS]\n"
				"       client statuses PORT N PATH HEADER TIMEOUT_S\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	server.sin_family = AF_INET;
	server.sin_port = htons((unsigned short)atoi(argv[2]));
	server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (strcmp(argv[1], "probe") == 0 && argc == 5)
		return cmd_probe(argv[3], atof(argv[4]));
	if (strcmp(argv[1], "hold") == 0 && argc == 5)
		return cmd_hold(atol(argv[3]), atof(argv[4]));
	if (strcmp(argv[1], "run") == 0 && (argc == 6 || argc == 7))
		return cmd_run(atol(argv[3]), atoi(argv[4]), argv[5], argc == 7 ? atol(argv[6]) : 0);
	if (strcmp(argv[1], "statuses") == 0 && argc == 7)
		return cmd_statuses(atol(argv[3]), argv[4], argv[5], atof(argv[6]));
	goto usage;
}
