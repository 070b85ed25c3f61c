/*
 * daemon.c - the pid file and the privilege drop (see daemon.h).
 */
#include "core/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define MOAT_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOAT_ASAN_BUILD 1
#endif
#endif

int moat_std_fds_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		int n;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		n = open("/dev/null", O_RDWR);
		if (n < 0)
			return -errno;
		if (n != fd) {
			/* the lowest free fd is this one (those below are open) */
			close(n);
			return -EBADF;
		}
	}
	return 0;
}

/* ---- pid file ---- */

int moat_pidfile_write(const char *path, pid_t pid)
{
	char tmp[PATH_MAX], text[32];
	int fd, n, e = 0;

	n = snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)pid);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	n = snprintf(text, sizeof(text), "%d\n", (int)pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		/* The directory is not ours (root's, and we dropped to a user):
		 * rewrite the file in place, which the privilege drop gave us. */
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -errno;
		if (write(fd, text, (size_t)n) != n)
			e = errno ? -errno : -EIO;
		if (close(fd) < 0 && !e)
			e = -errno;
		return e;
	}
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n)
		e = errno ? -errno : -EIO;
	if (close(fd) < 0 && !e)
		e = -errno;
	if (!e && rename(tmp, path) < 0)
		e = -errno;
	if (e)
		unlink(tmp);
	return e;
}

int moat_pidfile_give(const char *path, const char *user, const char *group)
{
	char why[160];
	uid_t uid;
	gid_t gid;
	int fd, e = 0;

	if (moat_privs_lookup(user, group, &uid, &gid, why, sizeof(why)) < 0)
		return -ENOENT;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fchown(fd, uid, gid) < 0)
		e = -errno;
	close(fd);
	return e;
}

pid_t moat_pidfile_read(const char *path)
{
	char text[32];
	ssize_t n;
	long v = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	for (ssize_t i = 0; i < n && text[i] != '\n'; i++) {
		if (text[i] < '0' || text[i] > '9' || v > 99999999)
			return -EINVAL;
		v = v * 10 + (text[i] - '0');
	}
	return v > 0 ? (pid_t)v : -EINVAL;
}

int moat_pidfile_remove(const char *path, pid_t pid)
{
	if (moat_pidfile_read(path) != pid)
		return 0;
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

/* ---- privileges ---- */

/* A name of digits only, as a number; -1 otherwise. */
static long numeric_id(const char *s)
{
	long v = 0;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 99999999)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int moat_privs_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid, char *why, size_t whylen)
{
	const struct passwd *pw = getpwnam(user);
	long n;

	if (pw != NULL) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	} else if ((n = numeric_id(user)) >= 0 && group != NULL) {
		*uid = (uid_t)n;
	} else {
		snprintf(why, whylen, "unknown user \"%s\" (not in the user database)", user);
		return -ENOENT;
	}
	if (group != NULL) {
		const struct group *gr = getgrnam(group);

		if (gr != NULL) {
			*gid = gr->gr_gid;
		} else if ((n = numeric_id(group)) >= 0) {
			*gid = (gid_t)n;
		} else {
			snprintf(why, whylen, "unknown group \"%s\" (not in the group database)", group);
			return -ENOENT;
		}
	}
	return 0;
}

static int already(uid_t uid, gid_t gid)
{
	return getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid;
}

int moat_privs_check(const char *user, const char *group, char *why, size_t whylen)
{
	uid_t uid;
	gid_t gid;
	int r = moat_privs_lookup(user, group, &uid, &gid, why, whylen);

	if (r < 0)
		return r;
	if (geteuid() == 0)
		return 0;
	if (already(uid, gid))
		return 1;
	snprintf(why, whylen, "user: needs root to switch to \"%s\" (running as uid %u)", user,
		 (unsigned)geteuid());
	return -EPERM;
}

int moat_privs_drop(const char *user, const char *group, char *why, size_t whylen)
{
	uid_t uid;
	gid_t gid;
	int r = moat_privs_check(user, group, why, whylen);

	if (r != 0)
		return r;
	if (moat_privs_lookup(user, group, &uid, &gid, why, whylen) < 0)
		return -ENOENT;
	if (setgroups(1, &gid) < 0) {
		r = -errno;
		snprintf(why, whylen, "setgroups(%u): %s", (unsigned)gid, strerror(-r));
		return r;
	}
	if (setresgid(gid, gid, gid) < 0) {
		r = -errno;
		snprintf(why, whylen, "setresgid(%u): %s", (unsigned)gid, strerror(-r));
		return r;
	}
	if (setresuid(uid, uid, uid) < 0) {
		r = -errno;
		snprintf(why, whylen, "setresuid(%u): %s", (unsigned)uid, strerror(-r));
		return r;
	}
	if (!already(uid, gid) || (uid != 0 && setuid(0) == 0)) {
		snprintf(why, whylen, "the ids did not change as asked (uid %u, gid %u)", (unsigned)geteuid(),
			 (unsigned)getegid());
		return -EPERM;
	}
#ifdef MOAT_ASAN_BUILD
	/* A process that changed its ids is not dumpable, and LeakSanitizer's
	 * exit-time scan (which attaches to the process's own threads) then
	 * fails; sanitizer builds are for tests only. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return 0;
}
