/* sock_test.c - moat_sock_ntop: its own IPv4 formatting against inet_ntop. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sock.h"

static void check4(uint32_t host_order)
{
	struct sockaddr_in sin;
	char got[64], want[64];
	size_t n;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(host_order);
	n = moat_sock_ntop((const struct sockaddr *)&sin, got, sizeof(got));
	inet_ntop(AF_INET, &sin.sin_addr, want, sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(n, strlen(want));
}

static void test_ipv4_matches_inet_ntop(void **state)
{
	static const uint32_t fixed[] = { 0, 0xffffffffu, 0x0a000001u, 0x7f000001u, 0xc0a80164u, 0x01020304u,
					  0x09630a64u, 0x636465c7u };
	uint32_t x = 2463534242u;

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check4(fixed[i]);
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		check4(x);
	}
}

static void test_short_buffer_and_ipv6(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char out[64];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xffffffffu);
	assert_int_equal(moat_sock_ntop((const struct sockaddr *)&sin, out, 15), 0); /* needs 16 */
	assert_string_equal(out, "");
	assert_int_equal(moat_sock_ntop((const struct sockaddr *)&sin, out, 16), 15);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	assert_int_equal(moat_sock_ntop((const struct sockaddr *)&sin6, out, sizeof(out)), 11);
	assert_string_equal(out, "2001:db8::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_matches_inet_ntop),
		cmocka_unit_test(test_short_buffer_and_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
