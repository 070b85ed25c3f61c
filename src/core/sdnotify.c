/*
 * sdnotify.c - systemd's notification and socket activation protocols
 * (see sdnotify.h). The wire format is plain text, "KEY=VALUE" lines, one
 * datagram per message; see sd_notify(3) and sd_listen_fds(3).
 */
#include "core/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set once by moat_sd_init, read-only afterwards. */
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int moat_sd_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n;

	if (name == NULL || (name[0] != '/' && name[0] != '@'))
		return -EINVAL;
	n = strlen(name);
	if (n < 2 || n > sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';     /* abstract namespace: the length tells where it ends */
	else if (n == sizeof(sa->sun_path))
		return -EINVAL;             /* a path needs room for its NUL */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	return 0;
}

int moat_sd_init(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	int r;

	notify_len = 0;
	if (name == NULL || name[0] == '\0')
		return 0;
	r = moat_sd_addr(name, &notify_addr, &notify_len);
	if (r < 0) {
		notify_len = 0;
		return r;
	}
	return 1;
}

int moat_sd_notify(const char *state)
{
	ssize_t n;
	int fd, e = 0;

	if (notify_len == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&notify_addr, notify_len);
	if (n < 0)
		e = -errno;
	close(fd);
	return e < 0 ? e : 1;
}

int moat_sd_notifyf(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (notify_len == 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return moat_sd_notify(msg);
}

/* A decimal number of at most 9 digits (no sign, no spaces), or -1. */
static long small_number(const char *s)
{
	long v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 9)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int moat_sd_listen_count(const char *listen_pid, const char *listen_fds, pid_t self, int max)
{
	long pid, n;

	if (listen_pid == NULL && listen_fds == NULL)
		return 0;
	if (listen_pid == NULL || listen_fds == NULL)
		return -EINVAL;
	pid = small_number(listen_pid);
	n = small_number(listen_fds);
	if (pid <= 0 || n < 0)
		return -EINVAL;
	if ((pid_t)pid != self)
		return 0;               /* meant for another process (our parent, say) */
	if (n > max)
		return -EINVAL;
	return (int)n;
}
