/*
 * upgrade_test.c - unit tests of src/proxy/upgrade.c's pure parts: the
 * MOAT_INHERIT value (format and parse, round trip, malformed input), the
 * way inherited sockets are shared among workers (every socket taken by a
 * worker, every worker given one), and the registry of listening sockets.
 * The fork/exec itself is covered by tests/integration/test_upgrade_binary.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "proxy/upgrade.h"

static void set4(struct moat_lfd *e, int fd, const char *ip, unsigned port)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&e->addr;

	memset(e, 0, sizeof(*e));
	e->fd = fd;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	e->len = sizeof(*a);
}

static void set6(struct moat_lfd *e, int fd, const char *ip, unsigned port)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&e->addr;

	memset(e, 0, sizeof(*e));
	e->fd = fd;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	e->len = sizeof(*a);
}

static void test_format_parse(void **state)
{
	struct moat_lfd v[4], back[4];
	char buf[512];
	int n;

	(void)state;
	set4(&v[0], 5, "127.0.0.1", 8080);
	set4(&v[1], 6, "127.0.0.1", 8080);
	set6(&v[2], 17, "::1", 443);
	set4(&v[3], 1023, "0.0.0.0", 80);
	n = moat_upgrade_format(v, 4, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "5:127.0.0.1:8080;6:127.0.0.1:8080;17:[::1]:443;1023:0.0.0.0:80");
	assert_int_equal(moat_upgrade_parse(buf, back, 4), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(back[i].fd, v[i].fd);
		assert_int_equal(back[i].len, v[i].len);
		assert_memory_equal(&back[i].addr, &v[i].addr, v[i].len);
		assert_int_equal(back[i].taken, 0);
	}
	/* nothing to hand over */
	assert_int_equal(moat_upgrade_format(v, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(moat_upgrade_parse("", back, 4), 0);
	/* too small a buffer */
	assert_int_equal(moat_upgrade_format(v, 4, buf, 20), -ENOSPC);
	/* more entries than room */
	assert_int_equal(moat_upgrade_parse("5:127.0.0.1:1;6:127.0.0.1:2", back, 1), -EINVAL);
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"5",                    /* no address */
		"5:",                   /* empty address */
		":127.0.0.1:80",        /* no fd */
		"x:127.0.0.1:80",
		"-1:127.0.0.1:80",
		"5:127.0.0.1",          /* no port */
		"5:127.0.0.1:",
		"5:127.0.0.1:65536",
		"5:127.0.0.1:8x",
		"5:localhost:80",       /* numeric only */
		"5:[::1:80",
		"5:[::1]80",
		"5:[]:80",
		"5:::1:80",             /* v6 needs brackets */
		"5:127.0.0.1:80;",      /* trailing separator */
		"5:127.0.0.1:80;;6:127.0.0.1:81",
		"99999999999:127.0.0.1:80",
	};
	struct moat_lfd v[4];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (moat_upgrade_parse(bad[i], v, 4) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(moat_upgrade_parse(NULL, v, 4), -EINVAL);
}

/* Every socket goes to exactly one worker (k % workers); every worker
 * gets at least one (sharing when there are fewer sockets than workers). */
static void test_share(void **state)
{
	(void)state;
	for (size_t count = 1; count <= 9; count++) {
		for (unsigned workers = 1; workers <= 9; workers++) {
			unsigned owners[9] = { 0 };

			for (unsigned w = 0; w < workers; w++) {
				unsigned mine = 0;

				for (size_t k = 0; k < count; k++) {
					if (moat_inherit_takes(k, count, w, workers)) {
						mine++;
						if (k % workers == w)
							owners[k]++;
					}
				}
				if (mine == 0)
					fail_msg("worker %u of %u has none of %zu sockets", w, workers, count);
				if (w < count && mine != (unsigned)((count - w + workers - 1) / workers))
					fail_msg("worker %u of %u took %u of %zu sockets", w, workers, mine, count);
			}
			for (size_t k = 0; k < count; k++)
				if (owners[k] != 1)
					fail_msg("socket %zu of %zu has %u owners among %u workers", k, count, owners[k],
						 workers);
		}
	}
	/* the usual case: as many sockets as workers, one each */
	assert_true(moat_inherit_takes(2, 4, 2, 4));
	assert_false(moat_inherit_takes(1, 4, 2, 4));
	/* 2 sockets, 4 workers: workers 2 and 3 share sockets 0 and 1 */
	assert_true(moat_inherit_takes(0, 2, 2, 4));
	assert_true(moat_inherit_takes(1, 2, 3, 4));
	assert_false(moat_inherit_takes(0, 0, 0, 4));
	assert_false(moat_inherit_takes(5, 2, 0, 4));
}

static void test_registry(void **state)
{
	struct moat_lfds r;
	struct moat_lfd e;

	(void)state;
	moat_lfds_init(&r);
	for (int fd = 10; fd < 50; fd++) {
		set4(&e, fd, "127.0.0.1", 8000 + (unsigned)fd);
		assert_int_equal(moat_lfds_add(&r, fd, (const struct sockaddr *)&e.addr, e.len), 0);
	}
	assert_int_equal(r.n, 40);
	moat_lfds_del(&r, 10);
	moat_lfds_del(&r, 49);
	moat_lfds_del(&r, 7); /* unknown: nothing */
	assert_int_equal(r.n, 38);
	for (size_t i = 0; i < r.n; i++) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&r.v[i].addr;

		assert_true(r.v[i].fd > 10 && r.v[i].fd < 49);
		assert_int_equal(ntohs(a->sin_port), 8000 + r.v[i].fd);
	}
	moat_lfds_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
