/*
 * forwarder.c - the floor: a TCP byte forwarder with no HTTP in it.
 *
 * One thread, one epoll loop. Each accepted client connection gets its own
 * connection to the backend (no pooling, no parsing); bytes are moved with
 * read()/send() through one shared 64 KiB buffer. What a write could not
 * take is copied into a buffer owned by the destination side, and reading
 * from the source stops until it drains (that is the whole flow control).
 * An HTTP proxy must do at least this much work per request, so its CPU
 * time per request should not be far above this program's.
 *
 * Half-close is propagated: EOF read on one side becomes shutdown(SHUT_WR)
 * on the other once its pending bytes are written; the pair is closed when
 * both directions are done, or at once on an error.
 *
 * Owns: the listening socket and one struct pair per client connection.
 * Pairs closed during an epoll batch are freed after the batch, because the
 * same batch may still hold an event for the other side of the pair.
 *
 * Usage: forwarder LISTEN_PORT BACKEND_PORT   (both on 127.0.0.1)
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct pair;

/* One socket of a pair. `pend` holds bytes read from the peer that this
 * socket has not accepted yet (owned here, freed when written). */
struct side {
	int fd;
	uint32_t events;          /* what epoll is asked for; 0: not in the set */
	int connecting;           /* backend side until connect() completes */
	int eof;                  /* read returned 0: no more input from here */
	int shut;                 /* shutdown(SHUT_WR) done on this socket */
	char *pend;
	size_t pend_len, pend_off;
	struct side *peer;
	struct pair *pair;
};

struct pair {
	struct side s[2];         /* [0] client, [1] backend */
	int dead;
	struct pair *next_dead;
};

static int epfd;
static struct sockaddr_in backend_sa;
static struct pair *dead_list;
static char shared_buf[65536];

static void pair_kill(struct pair *p)
{
	if (p->dead)
		return;
	p->dead = 1;
	for (int i = 0; i < 2; i++) {
		if (p->s[i].fd >= 0)
			close(p->s[i].fd);
		free(p->s[i].pend);
		p->s[i].pend = NULL;
	}
	p->next_dead = dead_list;
	dead_list = p;
}

/*
 * Asks epoll for what `s` can use now. A side that wants nothing is taken
 * out of the set (events == 0 means "not registered"): a fully shut socket
 * reports EPOLLHUP whatever the mask, and would spin while its peer is full.
 */
static void set_events(struct side *s)
{
	uint32_t want = 0;
	if (!s->eof && !s->connecting && !s->peer->connecting && s->peer->pend_len == 0)
		want |= EPOLLIN;
	if (s->connecting || s->pend_len)
		want |= EPOLLOUT;
	if (want == s->events)
		return;
	int op = want == 0 ? EPOLL_CTL_DEL : s->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	struct epoll_event ev = { .events = want, .data.ptr = s };
	if (epoll_ctl(epfd, op, s->fd, &ev) == 0)
		s->events = want;
	else
		pair_kill(s->pair);
}

/* Sends what `s` has pending. Returns -1 on a fatal error. */
static int drain(struct side *s)
{
	while (s->pend_len) {
		ssize_t w = send(s->fd, s->pend + s->pend_off, s->pend_len, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		s->pend_off += (size_t)w;
		s->pend_len -= (size_t)w;
	}
	free(s->pend);
	s->pend = NULL;
	s->pend_off = 0;
	if (s->peer->eof && !s->shut) {
		shutdown(s->fd, SHUT_WR);
		s->shut = 1;
	}
	return 0;
}

/* Moves one buffer's worth from `s` to its peer. Returns -1 on error. */
static int pump(struct side *s)
{
	struct side *d = s->peer;
	ssize_t n = recv(s->fd, shared_buf, sizeof shared_buf, 0);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	if (n == 0) {
		s->eof = 1;
		if (d->pend_len == 0 && !d->shut) {
			shutdown(d->fd, SHUT_WR);
			d->shut = 1;
		}
		return 0;
	}
	ssize_t w = send(d->fd, shared_buf, (size_t)n, MSG_NOSIGNAL);
	if (w < 0) {
		if (errno != EAGAIN)
			return -1;
		w = 0;
	}
	if (w < n) {
		d->pend_len = (size_t)(n - w);
		d->pend_off = 0;
		d->pend = malloc(d->pend_len);
		if (!d->pend)
			return -1;
		memcpy(d->pend, shared_buf + w, d->pend_len);
	}
	return 0;
}

static void on_side(struct side *s, uint32_t ev)
{
	struct pair *p = s->pair;
	if (p->dead)
		return;
	if (ev & EPOLLERR) {
		pair_kill(p);
		return;
	}
	if (ev & EPOLLOUT) {
		if (s->connecting) {
			int err = 0;
			socklen_t len = sizeof err;
			if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
				pair_kill(p);
				return;
			}
			s->connecting = 0;
		}
		if (drain(s) < 0) {
			pair_kill(p);
			return;
		}
	}
	if (ev & (EPOLLIN | EPOLLHUP) && !s->eof && !s->connecting && s->peer->pend_len == 0) {
		if (pump(s) < 0) {
			pair_kill(p);
			return;
		}
	}
	if (p->s[0].eof && p->s[1].eof && !p->s[0].pend_len && !p->s[1].pend_len) {
		pair_kill(p);
		return;
	}
	set_events(&p->s[0]);
	set_events(&p->s[1]);
}

static void on_accept(int lfd)
{
	int one = 1;
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("forwarder: accept4");
			return;
		}
		int bfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pair *p = calloc(1, sizeof *p);
		if (bfd < 0 || !p) {
			perror("forwarder: socket");
			close(cfd);
			if (bfd >= 0)
				close(bfd);
			free(p);
			continue;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		p->s[0].fd = cfd;
		p->s[1].fd = bfd;
		for (int i = 0; i < 2; i++) {
			p->s[i].peer = &p->s[1 - i];
			p->s[i].pair = p;
		}
		if (connect(bfd, (struct sockaddr *)&backend_sa, sizeof backend_sa) < 0) {
			if (errno != EINPROGRESS) {
				perror("forwarder: connect");
				pair_kill(p);
				continue;
			}
			p->s[1].connecting = 1;
		}
		set_events(&p->s[0]);
		if (!p->dead)
			set_events(&p->s[1]);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: forwarder LISTEN_PORT BACKEND_PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct sockaddr_in la = { .sin_family = AF_INET };
	la.sin_port = htons((unsigned short)atoi(argv[1]));
	la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	backend_sa.sin_family = AF_INET;
	backend_sa.sin_port = htons((unsigned short)atoi(argv[2]));
	backend_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 4096) < 0) {
		perror("forwarder: listen");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("forwarder: epoll");
		return 1;
	}
	fprintf(stderr, "forwarder: ready on 127.0.0.1:%s -> 127.0.0.1:%s\n", argv[1], argv[2]);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("forwarder: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_accept(lfd);
			else
				on_side(evs[i].data.ptr, evs[i].events);
		}
		while (dead_list) {
			struct pair *p = dead_list;
			dead_list = p->next_dead;
			free(p);
		}
	}
}
