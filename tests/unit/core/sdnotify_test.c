/*
 * sdnotify_test.c - unit tests of src/core/sdnotify.c (the notification
 * socket's address, $LISTEN_PID/$LISTEN_FDS, and a datagram really sent to
 * a socket this test binds, by path and in the abstract namespace) and of
 * src/core/daemon.c's pid file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/sdnotify.h"

static void test_addr(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;
	char longname[200];

	(void)state;
	assert_int_equal(moat_sd_addr("/run/systemd/notify", &sa, &len), 0);
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);

	assert_int_equal(moat_sd_addr("@moat/notify", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "moat/notify", 11);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);

	assert_int_equal(moat_sd_addr(NULL, &sa, &len), -EINVAL);
	assert_int_equal(moat_sd_addr("", &sa, &len), -EINVAL);
	assert_int_equal(moat_sd_addr("relative/notify", &sa, &len), -EINVAL);
	assert_int_equal(moat_sd_addr("@", &sa, &len), -EINVAL);
	assert_int_equal(moat_sd_addr("/", &sa, &len), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(moat_sd_addr(longname, &sa, &len), -EINVAL);
	/* a path needs its NUL inside sun_path; an abstract name does not */
	longname[sizeof(sa.sun_path)] = '\0';
	assert_int_equal(moat_sd_addr(longname, &sa, &len), -EINVAL);
	longname[0] = '@';
	assert_int_equal(moat_sd_addr(longname, &sa, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
}

static void test_listen_count(void **state)
{
	(void)state;
	assert_int_equal(moat_sd_listen_count(NULL, NULL, 42, 100), 0);
	assert_int_equal(moat_sd_listen_count("42", "2", 42, 100), 2);
	assert_int_equal(moat_sd_listen_count("42", "0", 42, 100), 0);
	assert_int_equal(moat_sd_listen_count("41", "2", 42, 100), 0);  /* not ours */
	assert_int_equal(moat_sd_listen_count("42", NULL, 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count(NULL, "2", 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count("42", "x", 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count("42", "-1", 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count("0", "1", 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count("42", "101", 42, 100), -EINVAL);
	assert_int_equal(moat_sd_listen_count("42", "9999999999", 42, 100), -EINVAL);
}

/* Binds a datagram socket at `name` ("/path" or "@abstract"), points
 * NOTIFY_SOCKET at it and checks what moat_sd_notify sends. */
static void roundtrip(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	char got[256];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(moat_sd_addr(name, &sa, &len), 0);
	if (name[0] == '/')
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_int_equal(moat_sd_init(), 1);
	assert_int_equal(moat_sd_notify("READY=1"), 1);
	n = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);
	assert_int_equal(n, 7);
	got[n] = '\0';
	assert_string_equal(got, "READY=1");
	assert_int_equal(moat_sd_notifyf("MAINPID=%d\nREADY=1", 1234), 1);
	n = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	got[n] = '\0';
	assert_string_equal(got, "MAINPID=1234\nREADY=1");
	close(fd);
	if (name[0] == '/')
		unlink(name);
}

static void test_notify(void **state)
{
	char path[64], abstract[64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/moat-sdnotify-test-%d.sock", (int)getpid());
	snprintf(abstract, sizeof(abstract), "@moat-sdnotify-test-%d", (int)getpid());
	roundtrip(path);
	roundtrip(abstract);
	/* nobody listens any more: an error, not a crash */
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(moat_sd_init(), 1);
	assert_true(moat_sd_notify("STOPPING=1") < 0);
	/* unset: a no-op */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(moat_sd_init(), 0);
	assert_int_equal(moat_sd_notify("READY=1"), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "relative", 1), 0);
	assert_int_equal(moat_sd_init(), -EINVAL);
	assert_int_equal(moat_sd_notify("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_pidfile(void **state)
{
	char path[64], tmp[96];
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/moat-pidfile-test-%d.pid", (int)getpid());
	unlink(path);
	assert_int_equal(moat_pidfile_read(path), -ENOENT);
	assert_int_equal(moat_pidfile_remove(path, 77), 0);
	assert_int_equal(moat_pidfile_write(path, 77), 0);
	assert_int_equal(moat_pidfile_read(path), 77);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	snprintf(tmp, sizeof(tmp), "%s.77.tmp", path);
	assert_int_not_equal(stat(tmp, &st), 0); /* renamed, not left behind */
	/* another process's pid (a binary upgrade rewrote it): left alone */
	assert_int_equal(moat_pidfile_write(path, 78), 0);
	assert_int_equal(moat_pidfile_remove(path, 77), 0);
	assert_int_equal(moat_pidfile_read(path), 78);
	assert_int_equal(moat_pidfile_remove(path, 78), 1);
	assert_int_equal(moat_pidfile_read(path), -ENOENT);
	/* not a pid */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello\n", f);
	fclose(f);
	assert_int_equal(moat_pidfile_read(path), -EINVAL);
	unlink(path);
	/* a directory that does not exist */
	assert_int_equal(moat_pidfile_write("/nonexistent-moat-dir/x.pid", 1), -ENOENT);
}

static void test_privs_lookup(void **state)
{
	char why[128];
	uid_t uid = 1;
	gid_t gid = 1;

	(void)state;
	assert_int_equal(moat_privs_lookup("root", NULL, &uid, &gid, why, sizeof(why)), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_int_equal(moat_privs_lookup("root", "12345", &uid, &gid, why, sizeof(why)), 0);
	assert_int_equal(gid, 12345);
	assert_int_equal(moat_privs_lookup("no-such-user-moat-test", NULL, &uid, &gid, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "unknown user \"no-such-user-moat-test\" (not in the user database)");
	assert_int_equal(moat_privs_lookup("root", "no-such-group-moat-test", &uid, &gid, why, sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "unknown group \"no-such-group-moat-test\" (not in the group database)");
	/* running as them already: nothing to do (a binary upgrade after a drop) */
	if (getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0)
		assert_int_equal(moat_privs_check("root", NULL, why, sizeof(why)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_listen_count),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_privs_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
