/*
 * upgrade.c - binary upgrade (see upgrade.h for the sequence): the
 * registry of this process's listening sockets, starting the new binary
 * with them, and, in the new process, the pool of inherited sockets the
 * workers adopt.
 *
 * The control thread forks with the registry locked, so no worker can
 * close (and the kernel reuse) a descriptor between the copy of the list
 * and the fork; the child only calls async-signal-safe functions before
 * execve.
 */
#include "proxy/upgrade.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sdnotify.h"
#include "core/sock.h"

extern char **environ;

/* "127.0.0.1:8080" or "[::1]:8080". */
static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[64];

	moat_sock_ntop(sa, ip, sizeof(ip));
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, moat_sock_port(sa));
}

/* ---- the registry of listening sockets ---- */

void moat_lfds_init(struct moat_lfds *r)
{
	pthread_mutex_init(&r->lock, NULL);
	r->v = NULL;
	r->n = r->cap = 0;
}

void moat_lfds_destroy(struct moat_lfds *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
	pthread_mutex_destroy(&r->lock);
}

int moat_lfds_add(struct moat_lfds *r, int fd, const struct sockaddr *sa, socklen_t len)
{
	int e = 0;

	if (len > sizeof(r->v[0].addr))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct moat_lfd *v = cap <= MOAT_UPGRADE_MAX_FDS ? realloc(r->v, cap * sizeof(*v)) : NULL;

		if (!v) {
			e = -ENOMEM;
			goto out;
		}
		r->v = v;
		r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
	r->v[r->n].fd = fd;
	memcpy(&r->v[r->n].addr, sa, len);
	r->v[r->n].len = len;
	r->n++;
out:
	pthread_mutex_unlock(&r->lock);
	return e;
}

void moat_lfds_del(struct moat_lfds *r, int fd)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].fd == fd) {
			r->v[i] = r->v[--r->n];
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

/* ---- MOAT_INHERIT's value ---- */

int moat_upgrade_format(const struct moat_lfd *v, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char a[96];
		int k;

		addr_text((const struct sockaddr *)&v[i].addr, a, sizeof(a));
		k = snprintf(buf + o, len - o, "%s%d:%s", i ? ";" : "", v[i].fd, a);
		if (k < 0 || (size_t)k >= len - o)
			return -ENOSPC;
		o += (size_t)k;
	}
	return (int)o;
}

/* Digits only, at most `maxv`; -1 otherwise. Advances *s past them. */
static long parse_num(const char **s, long maxv)
{
	const char *p = *s;
	long v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > maxv)
			return -1;
		p++;
	}
	*s = p;
	return v;
}

/* One "ADDR" of `n` bytes: "a.b.c.d:port" or "[v6]:port". */
static int parse_addr(const char *s, size_t n, struct moat_lfd *out)
{
	char ip[64], num[8];
	const char *colon, *p;
	size_t iplen;
	long port;

	if (n >= 2 && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close || close + 1 >= s + n || close[1] != ':')
			return -1;
		iplen = (size_t)(close - s - 1);
		if (iplen == 0 || iplen >= sizeof(ip))
			return -1;
		memcpy(ip, s + 1, iplen);
		colon = close + 1;
	} else {
		colon = NULL;
		for (size_t i = 0; i < n; i++)
			if (s[i] == ':')
				colon = s + i;
		if (!colon)
			return -1;
		iplen = (size_t)(colon - s);
		if (iplen == 0 || iplen >= sizeof(ip))
			return -1;
		memcpy(ip, s, iplen);
	}
	ip[iplen] = '\0';
	if ((size_t)(s + n - colon - 1) == 0 || (size_t)(s + n - colon - 1) >= sizeof(num))
		return -1;
	memcpy(num, colon + 1, (size_t)(s + n - colon - 1));
	num[s + n - colon - 1] = '\0';
	p = num;
	port = parse_num(&p, 65535);
	if (port < 0 || *p != '\0')
		return -1;
	memset(&out->addr, 0, sizeof(out->addr));
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->addr;

		if (inet_pton(AF_INET6, ip, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&out->addr;

		if (inet_pton(AF_INET, ip, &a4->sin_addr) != 1)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*a4);
	}
	return 0;
}

int moat_upgrade_parse(const char *s, struct moat_lfd *v, size_t max)
{
	size_t n = 0;

	if (s == NULL)
		return -EINVAL;
	while (*s) {
		const char *end;
		long fd = parse_num(&s, INT_MAX);
		size_t len;

		if (fd < 0 || *s != ':' || n == max)
			return -EINVAL;
		s++;
		end = strchr(s, ';');
		len = end ? (size_t)(end - s) : strlen(s);
		memset(&v[n], 0, sizeof(v[n]));
		v[n].fd = (int)fd;
		if (parse_addr(s, len, &v[n]) < 0)
			return -EINVAL;
		n++;
		s += len;
		if (*s == ';') {
			s++;
			if (*s == '\0')
				return -EINVAL;
		}
	}
	return (int)n;
}

/* ---- the new process: the pool of inherited sockets ---- */

/* 0 when fd is an open listening TCP socket (its address into *out when
 * `out_len` is not NULL); -ENOTSOCK when it is not a socket at all (left
 * alone: it may be anything); -EINVAL for another kind of socket. */
static int check_listening(int fd, struct sockaddr_storage *out, socklen_t *out_len)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int v = 0;
	socklen_t vl = sizeof(v);

	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -EINVAL;
	if (!v)
		return -EINVAL;
	vl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM)
		return -EINVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return -EINVAL;
	if (out) {
		*out = ss;
		*out_len = len;
	}
	return 0;
}

/* Keeps v[i] if it checks out; `described`: the address was given and
 * must match. Returns 1 kept, 0 dropped. */
static int adopt_one(struct moat_lfd *e, int described, const char *source)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char a[96];
	int r = check_listening(e->fd, &ss, &len);

	if (r == 0 && described && !moat_sock_addr_eq((const struct sockaddr *)&ss, (const struct sockaddr *)&e->addr))
		r = -EADDRNOTAVAIL;
	if (r < 0) {
		addr_text(described ? (const struct sockaddr *)&e->addr : (const struct sockaddr *)&ss, a, sizeof(a));
		MOAT_ERR("%s: fd %d is not the listening socket expected (%s): %s; ignored", source, e->fd,
			 described ? a : "any", r == -EADDRNOTAVAIL ? "bound to another address" :
			 r == -EBADF ? "not open" : r == -ENOTSOCK ? "not a socket" : "not a listening TCP socket");
		if (r != -EBADF && r != -ENOTSOCK && e->fd > 2)
			close(e->fd);
		return 0;
	}
	if (!described) {
		e->addr = ss;
		e->len = len;
	}
	fcntl(e->fd, F_SETFD, FD_CLOEXEC);
	r = fcntl(e->fd, F_GETFL);
	if (r >= 0 && !(r & O_NONBLOCK))
		fcntl(e->fd, F_SETFL, r | O_NONBLOCK);
	addr_text((const struct sockaddr *)&e->addr, a, sizeof(a));
	MOAT_INFO("%s: inherited listening socket fd %d (%s)", source, e->fd, a);
	return 1;
}

size_t moat_inherit_load(struct moat_inherit *in)
{
	const char *inherit = getenv(MOAT_UPGRADE_ENV_INHERIT);
	const char *parent = getenv(MOAT_UPGRADE_ENV_PARENT);
	size_t kept = 0;
	int n;

	pthread_mutex_init(&in->lock, NULL);
	in->v = NULL;
	in->n = 0;
	in->parent = 0;
	in->source = NULL;
	if (inherit) {
		size_t cap = 1;

		for (const char *p = inherit; *p; p++)
			cap += *p == ';';
		if (cap > MOAT_UPGRADE_MAX_FDS)
			cap = MOAT_UPGRADE_MAX_FDS;
		in->source = "upgrade";
		in->v = calloc(cap, sizeof(*in->v));
		n = in->v ? moat_upgrade_parse(inherit, in->v, cap) : -ENOMEM;
		if (n < 0) {
			MOAT_ERR("upgrade: cannot read %s=\"%.200s\"; binding every listener anew",
				 MOAT_UPGRADE_ENV_INHERIT, inherit);
			n = 0;
		}
		if (parent) {
			const char *p = parent;
			long pid = parse_num(&p, INT_MAX);

			if (pid > 0 && *p == '\0' && (pid_t)pid == getppid())
				in->parent = (pid_t)pid;
			else
				MOAT_WARN("upgrade: %s=%s is not this process's parent (%d); it will not be told to stop",
					  MOAT_UPGRADE_ENV_PARENT, parent, (int)getppid());
		}
		for (int i = 0; i < n; i++)
			if (adopt_one(&in->v[i], 1, in->source))
				in->v[kept++] = in->v[i];
	} else {
		n = moat_sd_listen_count(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getpid(), MOAT_UPGRADE_MAX_FDS);
		if (n < 0)
			MOAT_ERR("socket activation: cannot read LISTEN_PID/LISTEN_FDS; ignored");
		if (n > 0) {
			in->source = "socket activation";
			in->v = calloc((size_t)n, sizeof(*in->v));
			for (int i = 0; in->v && i < n; i++) {
				in->v[kept].fd = MOAT_SD_LISTEN_FDS_START + i;
				kept += (size_t)adopt_one(&in->v[kept], 0, in->source);
			}
		}
	}
	in->n = kept;
	unsetenv(MOAT_UPGRADE_ENV_INHERIT);
	unsetenv(MOAT_UPGRADE_ENV_PARENT);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return kept;
}

int moat_inherit_takes(size_t k, size_t count, unsigned worker, unsigned nworkers)
{
	if (count == 0 || nworkers == 0 || k >= count)
		return 0;
	if (k % nworkers == worker)
		return 1;
	/* more workers than sockets: worker w shares socket w % count */
	return worker >= count && k == worker % count;
}

int moat_inherit_take(struct moat_inherit *in, const struct sockaddr *sa, unsigned worker, unsigned nworkers,
		      int *fds, size_t max)
{
	size_t count = 0, k = 0;
	int got = 0;

	if (!in)
		return 0;
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n; i++)
		count += moat_sock_addr_eq((const struct sockaddr *)&in->v[i].addr, sa) != 0;
	for (size_t i = 0; i < in->n && (size_t)got < max; i++) {
		int fd;

		if (!moat_sock_addr_eq((const struct sockaddr *)&in->v[i].addr, sa))
			continue;
		if (!moat_inherit_takes(k++, count, worker, nworkers))
			continue;
		fd = fcntl(in->v[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			int e = -errno;

			while (got > 0)
				close(fds[--got]);
			pthread_mutex_unlock(&in->lock);
			return e;
		}
		in->v[i].taken = 1;
		fds[got++] = fd;
	}
	pthread_mutex_unlock(&in->lock);
	return got;
}

void moat_inherit_close(struct moat_inherit *in)
{
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < in->n; i++) {
		if (!in->v[i].taken) {
			char a[96];

			addr_text((const struct sockaddr *)&in->v[i].addr, a, sizeof(a));
			MOAT_INFO("%s: closing inherited socket fd %d (%s): not a listener in the config", in->source,
				  in->v[i].fd, a);
		}
		close(in->v[i].fd);
	}
	free(in->v);
	in->v = NULL;
	in->n = 0;
	pthread_mutex_unlock(&in->lock);
}

/* ---- the old process: starting the new one ---- */

/* dir + "/" + name into out; 0 or -ENAMETOOLONG. */
static int join_path(char *out, size_t len, const char *dir, size_t dlen, const char *name)
{
	int n = snprintf(out, len, "%.*s/%s", (int)dlen, dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int moat_upgrade_init(struct moat_upgrade *u, char *const *argv)
{
	const char *a0 = argv && argv[0] ? argv[0] : "";
	ssize_t n;

	u->argv = argv;
	u->child = 0;
	u->exe[0] = '\0';
	if (a0[0] == '/') {
		snprintf(u->exe, sizeof(u->exe), "%s", a0);
	} else if (strchr(a0, '/')) {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) && join_path(u->exe, sizeof(u->exe), cwd, strlen(cwd), a0) < 0)
			u->exe[0] = '\0';
	} else if (a0[0]) {
		const char *path = getenv("PATH");

		for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
			const char *end = strchr(p, ':');
			size_t len = end ? (size_t)(end - p) : strlen(p);

			if (len > 0 && p[0] == '/' && join_path(u->exe, sizeof(u->exe), p, len, a0) == 0 &&
			    access(u->exe, X_OK) == 0)
				break;
			u->exe[0] = '\0';
			p += len + (end != NULL);
		}
	}
	if (u->exe[0] && access(u->exe, X_OK) == 0)
		return 0;
	n = readlink("/proc/self/exe", u->exe, sizeof(u->exe) - 1);
	if (n <= 0) {
		u->exe[0] = '\0';
		return -ENOENT;
	}
	u->exe[n] = '\0';
	return 0;
}

static int env_skip(const char *e)
{
	static const char *const names[] = { MOAT_UPGRADE_ENV_INHERIT "=", MOAT_UPGRADE_ENV_PARENT "=",
					     "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

/*
 * Starting the new process without copying this process's descriptors.
 *
 * fork() would copy the whole descriptor table into the child until its
 * execve closes the FD_CLOEXEC ones; meanwhile a worker (or the health
 * checker, or any thread with an epoll set) closing a connection would
 * not remove it from its epoll set (that happens when the last copy
 * goes), and a later event would name a freed connection. So the child
 * is made with clone(CLONE_VM | CLONE_VFORK | CLONE_FILES): it shares the
 * table, copies nothing, and trades it for a private one holding only fds
 * 0..2 (close_range(3, ~0, CLOSE_RANGE_UNSHARE), Linux 5.9). The listening
 * sockets reach it over a socketpair (SCM_RIGHTS), put in flight by the
 * parent before the clone; received into an otherwise empty table, they
 * land on fds 3, 4, ... in order, which is what MOAT_INHERIT says. The
 * socket is the child's fd 0 until then (the parent's stdin, saved, comes
 * last and goes back to fd 0); fds 0..2 are always open (main calls
 * moat_std_fds_open first), so no other thread can be handed fd 0
 * meanwhile.
 */

#define SPAWN_FDS_PER_MSG 250   /* below SCM_MAX_FD (253) */
#define SPAWN_STACK (64 * 1024)

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Shared with the clone child (CLONE_VM): filled by the parent, read by
 * the child, which writes back only err and stage. */
struct spawn {
	const char *exe;
	char *const *argv;
	char *const *envp;
	int sock;                   /* the child's end of the socketpair */
	size_t nfds;                /* listening sockets; the saved stdin follows them */
	unsigned nmsgs;             /* messages carrying the nfds + 1 descriptors */
	int err;                    /* errno of the step that failed, 0 if execve ran */
	const char *stage;          /* which step */
};

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define MOAT_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define MOAT_NO_SANITIZE
#endif

/* The child, on its own small stack, in the parent's memory: raw system
 * calls only (no libc state, no sanitizer interceptors). Never returns. */
MOAT_NO_SANITIZE static int spawn_child(void *arg)
{
	struct spawn *s = arg;
	unsigned long long none = 0;
	size_t got = 0;

	s->stage = "dup3";
	if (syscall(SYS_dup3, s->sock, 0, 0) < 0)
		goto fail;
	s->stage = "close_range(CLOSE_RANGE_UNSHARE)";
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_UNSHARE) < 0)
		goto fail;
	s->stage = "recvmsg";
	for (unsigned m = 0; m < s->nmsgs; m++) {
		union {
			char buf[CMSG_SPACE(SPAWN_FDS_PER_MSG * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		char byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { 0 };
		struct cmsghdr *cm;
		size_t k;

		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		if (syscall(SYS_recvmsg, 0, &msg, 0) < 0)
			goto fail;
		cm = CMSG_FIRSTHDR(&msg);
		if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    (msg.msg_flags & MSG_CTRUNC)) {
			s->err = EPROTO;
			goto out;
		}
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd != (int)(3 + got + i)) {
				s->err = EBADFD;
				goto out;
			}
		}
		got += k;
	}
	if (got != s->nfds + 1) {
		s->err = EPROTO;
		goto out;
	}
	s->stage = "dup3 (stdin)";
	if (syscall(SYS_dup3, (int)(3 + s->nfds), 0, 0) < 0)
		goto fail;
	syscall(SYS_close, (int)(3 + s->nfds));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	s->stage = "execve";
	syscall(SYS_execve, s->exe, s->argv, s->envp);
fail:
	s->err = errno;
out:
	syscall(SYS_exit, 127);
	return 127;
}

/* Puts the listening sockets and the saved stdin in flight to `sock`, in
 * messages of SPAWN_FDS_PER_MSG. Returns the message count or -errno. */
static int send_fds(int sock, const int *fds, size_t n)
{
	unsigned msgs = 0;

	for (size_t off = 0; off < n; off += SPAWN_FDS_PER_MSG) {
		size_t k = n - off < SPAWN_FDS_PER_MSG ? n - off : SPAWN_FDS_PER_MSG;
		union {
			char buf[CMSG_SPACE(SPAWN_FDS_PER_MSG * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		char byte = 0;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { 0 };
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(k * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(cm), fds + off, k * sizeof(int));
		if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
			return -errno;
		msgs++;
	}
	return (int)msgs;
}

/* MOAT_INHERIT=... for the registry's sockets as the child will number
 * them (3, 4, ... in order), and their descriptors here, plus the saved
 * stdin last, into fds[]. Registry locked by the caller. */
static char *inherit_env(const struct moat_lfds *lfds, int saved0, int *fds)
{
	size_t n = lfds->n, head = sizeof(MOAT_UPGRADE_ENV_INHERIT), cap = head + 1 + n * 72;
	struct moat_lfd *v = calloc(n ? n : 1, sizeof(*v));
	char *env = malloc(cap);

	if (!v || !env)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		v[i] = lfds->v[i];
		v[i].fd = (int)(3 + i);
		fds[i] = lfds->v[i].fd;
	}
	fds[n] = saved0;
	memcpy(env, MOAT_UPGRADE_ENV_INHERIT "=", head);
	if (moat_upgrade_format(v, n, env + head, cap - head) < 0)
		goto fail;
	free(v);
	return env;
fail:
	free(v);
	free(env);
	return NULL;
}

pid_t moat_upgrade_start(struct moat_upgrade *u, struct moat_lfds *lfds)
{
	char **envp = NULL, *inherit = NULL, parent[48], *stack = NULL;
	int *fds = NULL, sv[2] = { -1, -1 }, saved0 = -1, e = 0, msgs = 0;
	size_t nenv = 0, k = 0, nfds;
	const char *what = NULL;
	struct spawn sp;
	pid_t pid = -1;

	if (u->child > 0) {
		MOAT_WARN("upgrade: already in progress (new process pid %d); SIGUSR2 ignored", (int)u->child);
		return -EBUSY;
	}
	if (!u->exe[0] || access(u->exe, X_OK) < 0) {
		e = u->exe[0] ? -errno : -ENOENT;
		MOAT_ERR("upgrade refused: cannot execute \"%s\": %s; still serving", u->exe, strerror(-e));
		return e;
	}
	while (environ && environ[nenv])
		nenv++;
	envp = calloc(nenv + 3, sizeof(*envp));
	stack = malloc(SPAWN_STACK);
	if (!envp || !stack) {
		e = -ENOMEM;
		what = "out of memory";
		goto out;
	}
	for (size_t i = 0; i < nenv; i++)
		if (!env_skip(environ[i]))
			envp[k++] = environ[i];
	snprintf(parent, sizeof(parent), "%s=%d", MOAT_UPGRADE_ENV_PARENT, (int)getpid());
	envp[k++] = parent;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (saved0 = fcntl(0, F_DUPFD_CLOEXEC, 3)) < 0) {
		e = -errno;
		what = "socketpair";
		goto out;
	}

	/* Copy the list and put the sockets in flight under the registry's
	 * lock: once sent, a worker closing its descriptor changes nothing. */
	pthread_mutex_lock(&lfds->lock);
	nfds = lfds->n;
	fds = calloc(nfds + 1, sizeof(*fds));
	inherit = fds ? inherit_env(lfds, saved0, fds) : NULL;
	msgs = inherit ? send_fds(sv[0], fds, nfds + 1) : -ENOMEM;
	pthread_mutex_unlock(&lfds->lock);
	if (msgs < 0) {
		e = msgs;
		what = "cannot pass the listening sockets";
		goto out;
	}
	envp[k++] = inherit;
	envp[k] = NULL;

	memset(&sp, 0, sizeof(sp));
	sp.exe = u->exe;
	sp.argv = u->argv;
	sp.envp = envp;
	sp.sock = sv[1];
	sp.nfds = nfds;
	sp.nmsgs = (unsigned)msgs;
	/* Returns once the child has exec'd or exited (CLONE_VFORK). */
	pid = clone(spawn_child, stack + SPAWN_STACK, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &sp);
	if (pid < 0) {
		e = -errno;
		what = "clone";
	}
	/* The child borrowed fd 0 of the shared table: give stdin back. */
	if (dup2(saved0, 0) < 0)
		MOAT_ERR("upgrade: cannot restore stdin: %s", strerror(errno));
	if (pid < 0)
		goto out;
	u->child = pid;
	if (sp.err) {
		e = -sp.err;
		MOAT_ERR("upgrade failed: the new process could not start %s: %s: %s%s; still serving", u->exe,
			 sp.stage, strerror(sp.err),
			 strncmp(sp.stage, "close_range", 11) == 0 ? " (binary upgrades need Linux 5.9 or later)" : "");
		moat_upgrade_reap(u);
		goto out;
	}
	MOAT_INFO("upgrade: started %s as pid %d with %zu listening sockets; serving until it is ready", u->exe,
		  (int)pid, nfds);
out:
	if (what)
		MOAT_ERR("upgrade refused: %s: %s; still serving", what, strerror(-e));
	if (saved0 >= 0)
		close(saved0);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(envp);
	free(inherit);
	free(fds);
	free(stack);
	return e ? e : pid;
}

int moat_upgrade_reap(struct moat_upgrade *u)
{
	int status, gone = 0;
	pid_t r;

	/* Reap every child (only the new process should be one). */
	while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
		if (r != u->child)
			continue;
		gone = 1;
		u->child = 0;
		if (WIFEXITED(status))
			MOAT_ERR("upgrade failed: the new process (pid %d) exited with status %d before it was ready; "
				 "pid %d keeps serving",
				 (int)r, WEXITSTATUS(status), (int)getpid());
		else if (WIFSIGNALED(status))
			MOAT_ERR("upgrade failed: the new process (pid %d) was killed by signal %d (%s) before it was "
				 "ready; pid %d keeps serving",
				 (int)r, WTERMSIG(status), strsignal(WTERMSIG(status)), (int)getpid());
	}
	if (r < 0 && errno == ECHILD && u->child > 0) {
		u->child = 0;
		gone = 1;
	}
	return gone;
}

int moat_upgrade_takeover(pid_t parent)
{
	if (parent <= 0)
		return 0;
	if (getppid() != parent) {
		MOAT_WARN("upgrade: the old process (pid %d) is gone; nothing to stop", (int)parent);
		return -ESRCH;
	}
	MOAT_INFO("upgrade: telling the old process (pid %d) to stop; it drains its connections", (int)parent);
	if (kill(parent, SIGTERM) < 0) {
		int e = -errno;

		MOAT_ERR("upgrade: cannot signal the old process (pid %d): %s", (int)parent, strerror(-e));
		return e;
	}
	return 0;
}
