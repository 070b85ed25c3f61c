/*
 * xff_test.c - unit tests of src/http/xff.c.
 *
 * Trusted proxies are 10.0.0.0/8 and 2001:db8:ffff::/48, in a core/cidr.h
 * trie as the proxy would hold them. Checked: spoofing (a client-written
 * address left of the hop a trusted proxy appended is never the answer),
 * several fields read as one list, spaces, IPv6 and ports, every hop
 * trusted, garbage on either side of the client, and Forwarded's pairs,
 * quoted strings, obfuscated identifiers and broken fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "core/cidr.h"
#include "http/xff.h"

static struct moat_cidr_trie *trusted_nets;
static char calls[1024]; /* addresses `trusted` was asked about, in order */

static int is_trusted(void *ctx, const struct sockaddr *sa)
{
	char text[INET6_ADDRSTRLEN];
	size_t n = strlen(calls);

	assert_ptr_equal(ctx, &trusted_nets);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		assert_int_equal(s4->sin_port, 0);
		inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		assert_int_equal(sa->sa_family, AF_INET6);
		assert_int_equal(s6->sin6_port, 0);
		inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
	}
	snprintf(calls + n, sizeof calls - n, "%s%s", n ? " " : "", text);
	return moat_cidr_trie_lookup(trusted_nets, sa) >= 0;
}

static int setup(void **state)
{
	static const char list[] = "10.0.0.0/8\n2001:db8:ffff::/48\n";
	struct moat_cidr_trie *t = moat_cidr_trie_new();
	unsigned char a[16];
	unsigned p;
	int fam;
	const char *s = list, *nl;

	(void)state;
	assert_non_null(t);
	while ((nl = strchr(s, '\n')) != NULL) {
		assert_int_equal(moat_cidr_parse(s, (size_t)(nl - s), &fam, a, &p), 0);
		assert_int_equal(moat_cidr_trie_add(t, fam, a, p, 1), 0);
		s = nl + 1;
	}
	trusted_nets = t;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	moat_cidr_trie_free(trusted_nets);
	return 0;
}

/*
 * Runs moat_xff_client over a head made of the given fields ("Name: value"
 * strings, NULL-terminated), each value in an exactly sized heap copy.
 * Returns the address found as text, or "-1".
 */
static const char *client(int which, const char *const *fields)
{
	static char out[INET6_ADDRSTRLEN + 8];
	struct moat_h1_header hdrs[16];
	char *copies[16];
	struct moat_h1_head h;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	size_t n = 0, i;
	int r;

	memset(&h, 0, sizeof h);
	for (; fields[n] != NULL; n++) {
		const char *colon = strchr(fields[n], ':');
		size_t vl;

		assert_true(n < 16);
		assert_non_null(colon);
		hdrs[n].name = fields[n];
		hdrs[n].name_len = (size_t)(colon - fields[n]);
		vl = strlen(colon + 1);
		copies[n] = malloc(vl ? vl : 1);
		assert_non_null(copies[n]);
		memcpy(copies[n], colon + 1, vl);
		hdrs[n].value = copies[n];
		hdrs[n].value_len = vl;
	}
	h.headers = hdrs;
	h.header_cap = 16;
	h.nheaders = n;
	calls[0] = '\0';
	memset(&ss, 0x5a, sizeof ss);
	r = moat_xff_client(&h, which, is_trusted, &trusted_nets, &ss, &sl);
	for (i = 0; i < n; i++)
		free(copies[i]);
	if (r != 0) {
		assert_int_equal(r, -1);
		assert_int_equal(sl, 0); /* untouched */
		return "-1";
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		assert_int_equal(sl, sizeof *s4);
		assert_int_equal(s4->sin_port, 0);
		inet_ntop(AF_INET, &s4->sin_addr, out, sizeof out);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		assert_int_equal(ss.ss_family, AF_INET6);
		assert_int_equal(sl, sizeof *s6);
		assert_int_equal(s6->sin6_port, 0);
		inet_ntop(AF_INET6, &s6->sin6_addr, out, sizeof out);
	}
	return out;
}

#define XFF(...) client(MOAT_XFF_X_FORWARDED_FOR, (const char *const[]){ __VA_ARGS__, NULL })
#define FWD(...) client(MOAT_XFF_FORWARDED, (const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })

/* ---- X-Forwarded-For -------------------------------------------------- */

static void test_xff_spoofing(void **state)
{
	(void)state;
	/* the client wrote 1.2.3.4; the trusted proxy (our peer) appended the
	 * address it saw, 198.51.100.7: that is the client */
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4, 198.51.100.7"), "198.51.100.7");
	/* the client also wrote a trusted-looking hop: still left of the truth */
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4, 10.0.0.9, 198.51.100.7"), "198.51.100.7");
	/* the same in a field of its own, then the proxy's */
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4", "X-Forwarded-For: 198.51.100.7"), "198.51.100.7");
	/* two trusted proxies in a row */
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4, 198.51.100.7, 10.0.0.2"), "198.51.100.7");
	/* only the hops needed were asked about, from the right */
	assert_string_equal(calls, "10.0.0.2 198.51.100.7");
	/* a single untrusted hop */
	assert_string_equal(XFF("X-Forwarded-For: 198.51.100.7"), "198.51.100.7");
}

static void test_xff_fields(void **state)
{
	(void)state;
	/* fields in order form one list */
	assert_string_equal(XFF("X-Forwarded-For: 198.51.100.7", "X-Forwarded-For: 10.0.0.2, 10.0.0.3"),
			    "198.51.100.7");
	assert_string_equal(XFF("X-Forwarded-For: 10.0.0.2", "Host: a", "x-forwarded-for: 198.51.100.8",
				"X-FORWARDED-FOR: 10.0.0.3"),
			    "198.51.100.8");
	/* other names do not count */
	assert_string_equal(XFF("X-Forwarded-Fort: 198.51.100.7", "X-Real-IP: 198.51.100.9"), "-1");
	assert_string_equal(XFF("Forwarded: for=198.51.100.7"), "-1");
	/* absent, empty, only empty elements */
	assert_string_equal(client(MOAT_XFF_X_FORWARDED_FOR, NONE), "-1");
	assert_string_equal(XFF("X-Forwarded-For:"), "-1");
	assert_string_equal(XFF("X-Forwarded-For: , ,\t,"), "-1");
	/* empty elements and fields are skipped */
	assert_string_equal(XFF("X-Forwarded-For: 198.51.100.7,,", "X-Forwarded-For:", "X-Forwarded-For: ,10.0.0.1"),
			    "198.51.100.7");
}

static void test_xff_all_trusted(void **state)
{
	(void)state;
	assert_string_equal(XFF("X-Forwarded-For: 10.0.0.3, 10.0.0.2"), "10.0.0.3");
	assert_string_equal(XFF("X-Forwarded-For: 10.0.0.3", "X-Forwarded-For: 10.0.0.2"), "10.0.0.3");
	assert_string_equal(XFF("X-Forwarded-For: 10.0.0.4"), "10.0.0.4");
}

static void test_xff_forms(void **state)
{
	(void)state;
	assert_string_equal(XFF("X-Forwarded-For:  198.51.100.7 ,\t10.0.0.2\t"), "198.51.100.7");
	assert_string_equal(XFF("X-Forwarded-For: 198.51.100.7:8080, 10.0.0.2:443"), "198.51.100.7");
	assert_string_equal(XFF("X-Forwarded-For: 2001:db8::1"), "2001:db8::1");
	assert_string_equal(XFF("X-Forwarded-For: [2001:db8::1]"), "2001:db8::1");
	assert_string_equal(XFF("X-Forwarded-For: [2001:db8::1]:443, 2001:db8:ffff::5"), "2001:db8::1");
	assert_string_equal(XFF("X-Forwarded-For: 2001:db8::1, [2001:db8:ffff::5]:80"), "2001:db8::1");
	/* a bare IPv6 is read whole: a trailing group is not a port */
	assert_string_equal(XFF("X-Forwarded-For: 2001:db8::1:443"), "2001:db8::1:443");
	/* IPv4-mapped stays IPv6, and is trusted as the IPv4 it maps */
	assert_string_equal(XFF("X-Forwarded-For: ::ffff:198.51.100.7, ::ffff:10.0.0.2"), "::ffff:198.51.100.7");
	assert_string_equal(calls, "::ffff:10.0.0.2 ::ffff:198.51.100.7");
	assert_string_equal(XFF("X-Forwarded-For: 0:0:0:0:0:0:0:1"), "::1");
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4:0"), "1.2.3.4");
	assert_string_equal(XFF("X-Forwarded-For: 1.2.3.4:65535"), "1.2.3.4");
}

static void test_xff_garbage(void **state)
{
	static const char *const bad[] = {
		"garbage", "unknown", "_hidden", "localhost", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:123456",
		"1.2.3.4:http", "[1.2.3.4]", "[::1]:", "[::1", "::1]", "[::1]x", "[::1]:80:80", "\"1.2.3.4\"",
		"1.2.3.4 5.6.7.8", "::1%eth0", "[fe80::1%25eth0]", "010.0.0.1", "1.2.3", "1.2.3.4/32",
		"for=1.2.3.4", "1.2.3.4;", "\x01", "1.2.3.4\x7f",
	};
	char field[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* right of the client: the walk cannot go past it */
		snprintf(field, sizeof field, "X-Forwarded-For: 198.51.100.7, %s, 10.0.0.2", bad[i]);
		if (strcmp(XFF(field), "-1") != 0)
			fail_msg("accepted \"%s\"", bad[i]);
		/* alone */
		snprintf(field, sizeof field, "X-Forwarded-For: %s", bad[i]);
		assert_string_equal(XFF(field), "-1");
		/* left of the client: never read */
		snprintf(field, sizeof field, "X-Forwarded-For: %s, 198.51.100.7, 10.0.0.2", bad[i]);
		assert_string_equal(XFF(field), "198.51.100.7");
	}
	/* a NUL inside the value (the parser refuses it, but not our business) */
	{
		struct moat_h1_header hd = { "X-Forwarded-For", 15, "1.2.3.4\0, 10.0.0.2", 18 };
		struct moat_h1_head h;
		struct sockaddr_storage ss;
		socklen_t sl;

		memset(&h, 0, sizeof h);
		h.headers = &hd;
		h.nheaders = 1;
		assert_int_equal(moat_xff_client(&h, MOAT_XFF_X_FORWARDED_FOR, is_trusted, &trusted_nets, &ss, &sl), -1);
	}
}

static void test_xff_args(void **state)
{
	struct moat_h1_header hd = { "X-Forwarded-For", 15, "198.51.100.7, 10.0.0.2", 22 };
	struct moat_h1_head h;
	struct sockaddr_storage ss;
	socklen_t sl = 0;

	(void)state;
	memset(&h, 0, sizeof h);
	h.headers = &hd;
	h.nheaders = 1;
	/* no `trusted`: nobody is trusted, the rightmost is the client */
	assert_int_equal(moat_xff_client(&h, MOAT_XFF_X_FORWARDED_FOR, NULL, NULL, &ss, &sl), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0x0a000002));
	assert_int_equal(moat_xff_client(&h, 0, NULL, NULL, &ss, &sl), -1);
	assert_int_equal(moat_xff_client(&h, 3, NULL, NULL, &ss, &sl), -1);
	assert_int_equal(moat_xff_client(NULL, MOAT_XFF_X_FORWARDED_FOR, NULL, NULL, &ss, &sl), -1);
}

/* ---- Forwarded -------------------------------------------------------- */

static void test_fwd_basic(void **state)
{
	(void)state;
	assert_string_equal(FWD("Forwarded: for=192.0.2.43"), "192.0.2.43");
	assert_string_equal(FWD("Forwarded: for=192.0.2.43, for=198.51.100.17"), "198.51.100.17");
	assert_string_equal(FWD("Forwarded: for=192.0.2.43, for=198.51.100.17, for=10.0.0.2"), "198.51.100.17");
	assert_string_equal(FWD("Forwarded: for=192.0.2.43", "forwarded: For=10.0.0.2;proto=https"), "192.0.2.43");
	assert_string_equal(FWD("Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60");
	assert_string_equal(FWD("Forwarded: proto=https ; FOR=\"192.0.2.1:80\" ;by=_x"), "192.0.2.1");
	assert_string_equal(FWD("Forwarded: For=\"[2001:db8:cafe::17]:4711\""), "2001:db8:cafe::17");
	assert_string_equal(FWD("Forwarded: for=\"[2001:db8:cafe::17]\", for=\"[2001:db8:ffff::1]\""),
			    "2001:db8:cafe::17");
	assert_string_equal(FWD("Forwarded: for=\"[2001:db8::1]:_port-1\""), "2001:db8::1");
	assert_string_equal(FWD("Forwarded: for=\"192.0.2.1:_p\""), "192.0.2.1");
	assert_string_equal(FWD("Forwarded: for=\"\\1\\9\\2.0.2.1\""), "192.0.2.1"); /* quoted-pairs */
	/* empty elements and pairs */
	assert_string_equal(FWD("Forwarded: for=192.0.2.43,,, for=10.0.0.2 ,"), "192.0.2.43");
	assert_string_equal(FWD("Forwarded: ;for=192.0.2.43;;"), "192.0.2.43");
	/* every hop trusted */
	assert_string_equal(FWD("Forwarded: for=10.0.0.3, for=10.0.0.2"), "10.0.0.3");
	/* absent or empty */
	assert_string_equal(client(MOAT_XFF_FORWARDED, NONE), "-1");
	assert_string_equal(FWD("Forwarded:"), "-1");
	assert_string_equal(FWD("Forwarded: ,"), "-1");
	assert_string_equal(FWD("X-Forwarded-For: 192.0.2.43"), "-1");
}

static void test_fwd_spoofing(void **state)
{
	(void)state;
	/* client-written elements left of the proxy's are not believed */
	assert_string_equal(FWD("Forwarded: for=1.2.3.4, for=198.51.100.7"), "198.51.100.7");
	assert_string_equal(FWD("Forwarded: for=1.2.3.4;by=10.0.0.1, for=10.0.0.9, for=198.51.100.7"), "198.51.100.7");
	/* a comma inside quotes does not split */
	assert_string_equal(FWD("Forwarded: for=\"1.2.3.4, for=10.0.0.1\", for=198.51.100.7"), "198.51.100.7");
	assert_string_equal(FWD("Forwarded: for=198.51.100.7;ext=\"a, for=10.0.0.1\""), "198.51.100.7");
	/* a broken field spoils only itself... */
	assert_string_equal(FWD("Forwarded: for=\"1.2.3.4", "Forwarded: for=198.51.100.7"), "198.51.100.7");
	/* ...but in the same field the walk cannot get past it */
	assert_string_equal(FWD("Forwarded: for=\"1.2.3.4, for=198.51.100.7"), "-1");
	assert_string_equal(FWD("Forwarded: for=198.51.100.7, for=10.0.0.2", "Forwarded: for=\"x"), "-1");
}

static void test_fwd_unusable(void **state)
{
	static const char *const bad[] = {
		"for=unknown",          /* RFC 7239 unknown: no address */
		"for=\"unknown\"",
		"for=_hidden",          /* obfuscated */
		"for=\"_abc:80\"",
		"for=1.2.3.4:80",       /* ':' outside quotes: not a token */
		"for=2001:db8::1",
		"for=\"2001:db8::1\"",  /* IPv6 without brackets */
		"for=[2001:db8::1]",
		"for=\"[1.2.3.4]\"",
		"for=\"1.2.3.4:\"",
		"for=\"1.2.3.4:99999\"",
		"for=\"1.2.3.4:_\"",
		"for=\"1.2.3.4 \"",
		"for=010.0.0.1",
		"for=host.example",
		"proto=http",           /* no for */
		"by=10.0.0.1;host=a",
		"for=1.2.3.4;for=5.6.7.8", /* two */
		"for",                  /* broken pairs */
		"for=",
		"for =1.2.3.4",
		"for= 1.2.3.4",
		"=1.2.3.4",
		"for=\"1.2.3.4\"x",
		"for=1.2.3.4 proto=http",
		"for=\"1.2.3.4",
		"for=\"1.2.3.4\\\"",
		"for=\"\x01\"",
		"for=\"[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:_aaaaaaaaaaaaaaaaaaaaaaa\"", /* 65 bytes */
	};
	char field[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(field, sizeof field, "Forwarded: for=198.51.100.7, %s, for=10.0.0.2", bad[i]);
		if (strcmp(FWD(field), "-1") != 0)
			fail_msg("accepted \"%s\"", bad[i]);
		snprintf(field, sizeof field, "Forwarded: %s", bad[i]);
		assert_string_equal(FWD(field), "-1");
		/* left of the client, in its own field: not in the way */
		snprintf(field, sizeof field, "Forwarded: %s", bad[i]);
		assert_string_equal(FWD(field, "Forwarded: for=198.51.100.7, for=10.0.0.2"), "198.51.100.7");
	}
	/* left of the client in the same field: fine when it still splits */
	assert_string_equal(FWD("Forwarded: for=_hidden, for=unknown, proto=x, for=198.51.100.7"), "198.51.100.7");
	/* 64 bytes of quoted value still fit */
	assert_string_equal(FWD("Forwarded: for=\"[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:_aaaaaaaaaaaaaaaaaaaaaa\""),
			    "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xff_spoofing),
		cmocka_unit_test(test_xff_fields),
		cmocka_unit_test(test_xff_all_trusted),
		cmocka_unit_test(test_xff_forms),
		cmocka_unit_test(test_xff_garbage),
		cmocka_unit_test(test_xff_args),
		cmocka_unit_test(test_fwd_basic),
		cmocka_unit_test(test_fwd_spoofing),
		cmocka_unit_test(test_fwd_unusable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
