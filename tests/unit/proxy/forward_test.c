/*
 * forward_test.c - unit tests of src/proxy/forward.c: the exact bytes of
 * the request head moat sends to a backend and of the response head it
 * sends to the client.
 *
 * Every head is parsed from literal bytes by moat_h1_parse_request /
 * moat_h1_parse_response (from an exactly sized heap copy), written by the
 * function under test into a moat_buf, and compared byte for byte with the
 * expected head.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/forward.h"

#define NHDR 128

static const struct moat_h1_limits lim = {
	.request_line_max = 8192,
	.header_size_max = 65536,
	.header_count_max = NHDR,
};

static struct moat_h1_header hdrs[NHDR];
static struct moat_h1_head head;
static char *inbuf;               /* what `head` points into */
static struct moat_buf out;

static void parse(int response, const char *s, int is_head)
{
	size_t n = strlen(s);
	int r;

	free(inbuf);
	inbuf = malloc(n);
	assert_non_null(inbuf);
	memcpy(inbuf, s, n);
	memset(&head, 0, sizeof(head));
	head.headers = hdrs;
	head.header_cap = NHDR;
	r = response ? moat_h1_parse_response(inbuf, n, &head, &lim, is_head)
		     : moat_h1_parse_request(inbuf, n, &head, &lim);
	if (r != (int)n)
		fail_msg("parse returned %d for a head of %zu bytes:\n%s", r, n, s);
}

static void parse_req(const char *s)
{
	parse(0, s, 0);
}

static void parse_resp(const char *s, int is_head)
{
	parse(1, s, is_head);
}

/* Compares what is in `out` with `want`, showing both on a difference. */
static void expect_out(const char *want)
{
	size_t wl = strlen(want), gl = moat_buf_len(&out);

	if (gl != wl || memcmp(moat_buf_head(&out), want, wl) != 0) {
		size_t i = 0;

		while (i < gl && i < wl && moat_buf_head(&out)[i] == want[i])
			i++;
		fail_msg("head differs at byte %zu\n--- got (%zu bytes):\n%.*s\n--- want (%zu bytes):\n%s",
			 i, gl, (int)gl, moat_buf_head(&out), wl, want);
	}
}

/* An untrusted IPv4 client, target and Host as parsed, framing as parsed. */
static struct moat_fwd_req req_defaults(void)
{
	struct moat_fwd_req f;

	memset(&f, 0, sizeof(f));
	f.target = head.target;
	f.target_len = head.target_len;
	f.host = head.host;
	f.host_len = head.host_len;
	f.client_ip = "192.0.2.1";
	f.framing = head.framing;
	f.content_length = head.content_length;
	return f;
}

static void write_req(const struct moat_fwd_req *f)
{
	moat_buf_release(&out);
	moat_buf_init(&out, NULL, 1 << 20);
	assert_int_equal(moat_fwd_request_head(&out, &head, f), 0);
}

static const char *const default_hide[] = { "server", "x-powered-by" };

static struct moat_fwd_resp resp_defaults(enum moat_fwd_resp_framing fr)
{
	struct moat_fwd_resp f;

	memset(&f, 0, sizeof(f));
	f.framing = fr;
	f.content_length = head.content_length;
	f.keepalive = 1;
	f.client_minor = 1;
	f.hide = default_hide;
	f.nhide = 2;
	return f;
}

static void write_resp(const struct moat_fwd_resp *f)
{
	moat_buf_release(&out);
	moat_buf_init(&out, NULL, 1 << 20);
	assert_int_equal(moat_fwd_response_head(&out, &head, f), 0);
}

static int teardown(void **state)
{
	(void)state;
	moat_buf_release(&out);
	free(inbuf);
	inbuf = NULL;
	return 0;
}

/* ---- request heads ---------------------------------------------------- */

static void test_req_plain_get(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET /index.html?a=1&b=%20 HTTP/1.1\r\n"
		  "Host: example.com\r\n"
		  "User-Agent: curl/8.5.0\r\n"
		  "Accept: */*\r\n"
		  "\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET /index.html?a=1&b=%20 HTTP/1.1\r\n"
		   "Host: example.com\r\n"
		   "User-Agent: curl/8.5.0\r\n"
		   "Accept: */*\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: example.com\r\n"
		   "Forwarded: for=192.0.2.1;host=example.com;proto=http\r\n"
		   "\r\n");
}

/* Every hop-by-hop field goes; the others keep their order, name case
 * and (trimmed) value; Content-Length is re-stated at the end. */
static void test_req_hop_by_hop_removed(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("POST /upload HTTP/1.1\r\n"
		  "host: Example.COM:8080\r\n"
		  "Connection: keep-alive, X-Hop, x-other\r\n"
		  "X-Hop: 1\r\n"
		  "Keep-Alive: timeout=5\r\n"
		  "x-KEEP: yes\r\n"
		  "Proxy-Connection: keep-alive\r\n"
		  "TE: deflate\r\n"
		  "Expect: 100-continue\r\n"
		  "Content-Length: 5\r\n"
		  "Upgrade: websocket\r\n"
		  "X-Other: 2\r\n"
		  "Accept:   text/html  \r\n"
		  "cookie: a=b; c=d\r\n"
		  "\r\n");
	f = req_defaults();
	assert_int_equal(f.framing, MOAT_H1_BODY_LENGTH);
	write_req(&f);
	expect_out("POST /upload HTTP/1.1\r\n"
		   "host: Example.COM:8080\r\n"
		   "x-KEEP: yes\r\n"
		   "Accept: text/html\r\n"
		   "cookie: a=b; c=d\r\n"
		   "Content-Length: 5\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: Example.COM:8080\r\n"
		   "Forwarded: for=192.0.2.1;host=\"Example.COM:8080\";proto=http\r\n"
		   "\r\n");
}

/* Names listed in several Connection fields, in any case and spacing. */
static void test_req_connection_listed_fields_removed(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\n"
		  "Host: a\r\n"
		  "X-A: 1\r\n"
		  "connection: X-A,,  x-b\t,X-C\r\n"
		  "X-B: 2\r\n"
		  "X-Bb: keep\r\n"
		  "CONNECTION: x-d\r\n"
		  "x-c: 3\r\n"
		  "X-D: 4\r\n"
		  "X-E: 5\r\n"
		  "\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "X-Bb: keep\r\n"
		   "X-E: 5\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");
}

/*
 * A Connection field may name any number of fields; every one named must
 * go (RFC 9110 §7.6.1). Here the 33rd name is X-Secret.
 */
static void test_req_connection_lists_many_fields(void **state)
{
	char in[4096];
	struct moat_fwd_req f;
	size_t n;

	(void)state;
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\nConnection: ");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "x-pad%d, ", i);
	n += (size_t)snprintf(in + n, sizeof(in) - n, "X-Secret\r\nX-Secret: s3cr3t\r\nX-Kept: 1\r\n\r\n");
	assert_true(n < sizeof(in));
	parse_req(in);
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "X-Kept: 1\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");
}

static void test_req_te_trailers_kept_alone(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\n"
		  "TE: gzip, Trailers;q=1\r\n"
		  "Host: a\r\n"
		  "\r\n");
	f = req_defaults();
	write_req(&f);
	/* "trailers;q=1" is not the token "trailers": nothing kept */
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");

	parse_req("GET / HTTP/1.1\r\n"
		  "TE: deflate, TRAILERS\r\n"
		  "Host: a\r\n"
		  "Connection: TE\r\n"
		  "\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "TE: trailers\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");
}

static void test_req_chunked_restated(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("POST /p HTTP/1.1\r\n"
		  "Host: a\r\n"
		  "Transfer-Encoding: chunked\r\n"
		  "X-A: 1\r\n"
		  "\r\n");
	f = req_defaults();
	assert_int_equal(f.framing, MOAT_H1_BODY_CHUNKED);
	write_req(&f);
	expect_out("POST /p HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "X-A: 1\r\n"
		   "Transfer-Encoding: chunked\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");

	/* the framing moat chose wins over what the head said */
	f.framing = MOAT_H1_BODY_LENGTH;
	f.content_length = 18446744073709551615ull;
	write_req(&f);
	expect_out("POST /p HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "X-A: 1\r\n"
		   "Content-Length: 18446744073709551615\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");

	/* Content-Length: 0 is a length */
	parse_req("PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("PUT /p HTTP/1.1\r\n"
		   "Host: a\r\n"
		   "Content-Length: 0\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");
}

static void test_req_upgrade(void **state)
{
	static const char in[] =
		"GET /chat HTTP/1.1\r\n"
		"Host: ws.example\r\n"
		"Connection: keep-alive, Upgrade\r\n"
		"Upgrade: websocket\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"\r\n";
	struct moat_fwd_req f;

	(void)state;
	parse_req(in);
	f = req_defaults();
	f.upgrade = 1;
	write_req(&f);
	expect_out("GET /chat HTTP/1.1\r\n"
		   "Host: ws.example\r\n"
		   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		   "Sec-WebSocket-Version: 13\r\n"
		   "Connection: upgrade\r\n"
		   "Upgrade: websocket\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: ws.example\r\n"
		   "Forwarded: for=192.0.2.1;host=ws.example;proto=http\r\n"
		   "\r\n");

	/* not tunnelling: Upgrade is dropped like any hop-by-hop field */
	f.upgrade = 0;
	write_req(&f);
	expect_out("GET /chat HTTP/1.1\r\n"
		   "Host: ws.example\r\n"
		   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		   "Sec-WebSocket-Version: 13\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: ws.example\r\n"
		   "Forwarded: for=192.0.2.1;host=ws.example;proto=http\r\n"
		   "\r\n");
}

/* From an untrusted peer, incoming forwarding fields are replaced. */
static void test_req_forwarding_untrusted_replaced(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\n"
		  "X-Forwarded-For: 6.6.6.6\r\n"
		  "Host: shop.example\r\n"
		  "x-forwarded-proto: https\r\n"
		  "X-Forwarded-Host: evil.example\r\n"
		  "Forwarded: for=6.6.6.6;proto=https\r\n"
		  "X-Real: 1\r\n"
		  "X-Forwarded-For: 7.7.7.7\r\n"
		  "\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: shop.example\r\n"
		   "X-Real: 1\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: shop.example\r\n"
		   "Forwarded: for=192.0.2.1;host=shop.example;proto=http\r\n"
		   "\r\n");
}

/* From a trusted proxy, the chain is extended. */
static void test_req_forwarding_trusted_appended(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\n"
		  "X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"
		  "Host: shop.example\r\n"
		  "X-Forwarded-Proto: https\r\n"
		  "X-Forwarded-Host: public.example\r\n"
		  "Forwarded: for=203.0.113.9;proto=https\r\n"
		  "X-Forwarded-For: 10.0.0.2\r\n"
		  "Forwarded: for=10.0.0.1\r\n"
		  "\r\n");
	f = req_defaults();
	f.client_ip = "10.0.0.3";
	f.peer_trusted = 1;
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: shop.example\r\n"
		   "X-Forwarded-For: 203.0.113.9, 10.0.0.1, 10.0.0.2, 10.0.0.3\r\n"
		   "X-Forwarded-Proto: https\r\n"
		   "X-Forwarded-Host: public.example\r\n"
		   "Forwarded: for=203.0.113.9;proto=https, for=10.0.0.1, "
		   "for=10.0.0.3;host=shop.example;proto=http\r\n"
		   "\r\n");

	/* trusted, but nothing incoming: the same as untrusted */
	parse_req("GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n");
	f = req_defaults();
	f.client_ip = "10.0.0.3";
	f.peer_trusted = 1;
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: shop.example\r\n"
		   "X-Forwarded-For: 10.0.0.3\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: shop.example\r\n"
		   "Forwarded: for=10.0.0.3;host=shop.example;proto=http\r\n"
		   "\r\n");
}

static void test_req_ipv6_client_and_host(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
	f = req_defaults();
	f.client_ip = "2001:db8::1";
	f.client_ipv6 = 1;
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: [::1]:8080\r\n"
		   "X-Forwarded-For: 2001:db8::1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: [::1]:8080\r\n"
		   "Forwarded: for=\"[2001:db8::1]\";host=\"[::1]:8080\";proto=http\r\n"
		   "\r\n");

	parse_req("GET / HTTP/1.1\r\nHost: [2001:db8::2]\r\n\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: [2001:db8::2]\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: [2001:db8::2]\r\n"
		   "Forwarded: for=192.0.2.1;host=\"[2001:db8::2]\";proto=http\r\n"
		   "\r\n");
}

/*
 * Forwarded (RFC 7239 §4) values are tokens or quoted-strings. The Host
 * grammar admits ',', ';' and '=' (sub-delims of reg-name), which are not
 * token characters: unquoted, "a.example,for=6.6.6.6" would add a
 * forwarded-element claiming the client was 6.6.6.6.
 */
static void test_req_forwarded_host_quoted_when_not_token(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\nHost: a.example,for=6.6.6.6\r\n\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a.example,for=6.6.6.6\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a.example,for=6.6.6.6\r\n"
		   "Forwarded: for=192.0.2.1;host=\"a.example,for=6.6.6.6\";proto=http\r\n"
		   "\r\n");

	parse_req("GET / HTTP/1.1\r\nHost: a;for=6.6.6.6\r\n\r\n");
	f = req_defaults();
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "Host: a;for=6.6.6.6\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a;for=6.6.6.6\r\n"
		   "Forwarded: for=192.0.2.1;host=\"a;for=6.6.6.6\";proto=http\r\n"
		   "\r\n");
}

/*
 * Absolute-form target (RFC 9112 §3.2.2): the Host field received is
 * ignored and replaced by the target's authority, in place.
 */
static const char absolute_in[] =
	"GET http://a.example:8080/x?q=1 HTTP/1.1\r\n"
	"User-Agent: t\r\n"
	"Host: b.example\r\n"
	"Accept: */*\r\n"
	"\r\n";

static struct moat_fwd_req absolute_req(void)
{
	struct moat_fwd_req f;

	parse_req(absolute_in);
	f = req_defaults();
	/* what client.c's split_absolute hands over */
	f.target = head.target + strlen("http://a.example:8080");
	f.target_len = strlen("/x?q=1");
	f.host = head.target + strlen("http://");
	f.host_len = strlen("a.example:8080");
	return f;
}

static void test_req_absolute_form_host_replaced(void **state)
{
	static const char want[] =
		"GET /x?q=1 HTTP/1.1\r\n"
		"User-Agent: t\r\n"
		"Host: a.example:8080\r\n"
		"Accept: */*\r\n"
		"X-Forwarded-For: 192.0.2.1\r\n"
		"X-Forwarded-Proto: http\r\n";
	struct moat_fwd_req f;

	(void)state;
	f = absolute_req();
	write_req(&f);
	assert_true(moat_buf_len(&out) > strlen(want));
	if (memcmp(moat_buf_head(&out), want, strlen(want)) != 0)
		fail_msg("got:\n%.*s", (int)moat_buf_len(&out), moat_buf_head(&out));
}

/* ... and the forwarding fields describe the host the request was for,
 * not the Host value the proxy had to ignore. */
static void test_req_absolute_form_forwarded_host(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	f = absolute_req();
	write_req(&f);
	expect_out("GET /x?q=1 HTTP/1.1\r\n"
		   "User-Agent: t\r\n"
		   "Host: a.example:8080\r\n"
		   "Accept: */*\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a.example:8080\r\n"
		   "Forwarded: for=192.0.2.1;host=\"a.example:8080\";proto=http\r\n"
		   "\r\n");
}

/* HTTP/1.0 without Host: the Host given (the upstream's name) comes first;
 * no X-Forwarded-Host and no host= since the client named none. */
static void test_req_http10_without_host(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n");
	f = req_defaults();
	assert_null(f.host);
	f.host = "backend-pool";
	f.host_len = strlen("backend-pool");
	f.host_fallback = 1; /* moat's stand-in: no X-Forwarded-Host / host= */
	write_req(&f);
	expect_out("GET /old HTTP/1.1\r\n"
		   "Host: backend-pool\r\n"
		   "Accept: */*\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "Forwarded: for=192.0.2.1;proto=http\r\n"
		   "\r\n");
}

/* f.host NULL: no Host sent at all. */
static void test_req_no_host_to_send(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n");
	f = req_defaults();
	f.host = NULL;
	f.host_len = 0;
	write_req(&f);
	expect_out("GET / HTTP/1.1\r\n"
		   "X-A: 1\r\n"
		   "X-Forwarded-For: 192.0.2.1\r\n"
		   "X-Forwarded-Proto: http\r\n"
		   "X-Forwarded-Host: a\r\n"
		   "Forwarded: for=192.0.2.1;host=a;proto=http\r\n"
		   "\r\n");
}

static void test_req_buffer_too_small(void **state)
{
	struct moat_fwd_req f;

	(void)state;
	parse_req("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789012345678901234567890123456789\r\n\r\n");
	f = req_defaults();
	moat_buf_release(&out);
	moat_buf_init(&out, NULL, 64);
	assert_int_equal(moat_fwd_request_head(&out, &head, &f), -ENOBUFS);
	assert_true(moat_buf_len(&out) <= 64);
}

/* ---- response heads --------------------------------------------------- */

static void test_resp_length_hidden_and_hop_by_hop(void **state)
{
	static const char *const route_hide[] = { "x-secret" };
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 200 OK\r\n"
		   "Server: nginx/1.25\r\n"
		   "Date: Fri, 27 Nov 2026 12:00:00 GMT\r\n"
		   "X-Powered-By: PHP/8\r\n"
		   "content-type: text/html\r\n"
		   "Content-Length: 12\r\n"
		   "Connection: keep-alive\r\n"
		   "Keep-Alive: timeout=5\r\n"
		   "X-SECRET: 1\r\n"
		   "Proxy-Connection: keep-alive\r\n"
		   "Set-Cookie: a=b\r\n"
		   "Set-Cookie: c=d\r\n"
		   "\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_LENGTH);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	f.hide2 = route_hide;
	f.nhide2 = 1;
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Date: Fri, 27 Nov 2026 12:00:00 GMT\r\n"
		   "content-type: text/html\r\n"
		   "Set-Cookie: a=b\r\n"
		   "Set-Cookie: c=d\r\n"
		   "Content-Length: 12\r\n"
		   "\r\n");

	/* without any names to hide, Server and X-Powered-By pass */
	f.hide = NULL;
	f.nhide = 0;
	f.hide2 = NULL;
	f.nhide2 = 0;
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Server: nginx/1.25\r\n"
		   "Date: Fri, 27 Nov 2026 12:00:00 GMT\r\n"
		   "X-Powered-By: PHP/8\r\n"
		   "content-type: text/html\r\n"
		   "X-SECRET: 1\r\n"
		   "Set-Cookie: a=b\r\n"
		   "Set-Cookie: c=d\r\n"
		   "Content-Length: 12\r\n"
		   "\r\n");
}

static void test_resp_connection_listed_removed(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 404 Not Found\r\n"
		   "X-Hop: 1\r\n"
		   "Connection: x-hop, X-Other\r\n"
		   "x-other: 2\r\n"
		   "X-Hopper: 3\r\n"
		   "Content-Length: 0\r\n"
		   "\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	write_resp(&f);
	expect_out("HTTP/1.1 404 Not Found\r\n"
		   "X-Hopper: 3\r\n"
		   "Content-Length: 0\r\n"
		   "\r\n");
}

static void test_resp_chunked(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 200 OK\r\n"
		   "Transfer-Encoding: chunked\r\n"
		   "Content-Type: text/plain\r\n"
		   "Trailer: X-Sum\r\n"
		   "\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_CHUNKED);
	f = resp_defaults(MOAT_FWD_RESP_CHUNKED);
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Type: text/plain\r\n"
		   "Trailer: X-Sum\r\n"
		   "Transfer-Encoding: chunked\r\n"
		   "\r\n");

	/* a length body re-encoded as chunked: Content-Length goes */
	parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_CHUNKED);
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Transfer-Encoding: chunked\r\n"
		   "\r\n");
}

static void test_resp_close_delimited(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_CLOSE);
	f = resp_defaults(MOAT_FWD_RESP_CLOSE);
	f.keepalive = 0;
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Type: text/plain\r\n"
		   "Connection: close\r\n"
		   "\r\n");

	/* a length response on a connection that closes afterwards */
	parse_resp("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 7\r\nConnection: close\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	f.keepalive = 0;
	write_resp(&f);
	expect_out("HTTP/1.1 500 Internal Server Error\r\n"
		   "Content-Length: 7\r\n"
		   "Connection: close\r\n"
		   "\r\n");
}

static void test_resp_http10_client(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	f.client_minor = 0;
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Length: 2\r\n"
		   "Connection: keep-alive\r\n"
		   "\r\n");

	f.keepalive = 0;
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Length: 2\r\n"
		   "Connection: close\r\n"
		   "\r\n");
}

static void test_resp_tunnel(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 101 Switching Protocols\r\n"
		   "Upgrade: websocket\r\n"
		   "Connection: Upgrade\r\n"
		   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		   "\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_NONE);
	f = resp_defaults(MOAT_FWD_RESP_TUNNEL);
	f.keepalive = 0;                         /* no Connection: close on a tunnel */
	write_resp(&f);
	expect_out("HTTP/1.1 101 Switching Protocols\r\n"
		   "Upgrade: websocket\r\n"
		   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		   "Connection: upgrade\r\n"
		   "\r\n");

	/* an Upgrade on a response that is not a tunnel is dropped */
	parse_resp("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Length: 0\r\n"
		   "\r\n");
}

/* Bodiless answers: the backend's Content-Length describes the
 * representation (HEAD, 304) and passes, in place; never on 204 or 1xx. */
static void test_resp_none_framing_content_length(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n", 1);
	assert_int_equal(head.framing, MOAT_H1_BODY_NONE);
	f = resp_defaults(MOAT_FWD_RESP_NONE);
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "Content-Length: 1234\r\n"
		   "ETag: \"x\"\r\n"
		   "\r\n");

	parse_resp("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_NONE);
	f = resp_defaults(MOAT_FWD_RESP_NONE);
	write_resp(&f);
	expect_out("HTTP/1.1 304 Not Modified\r\n"
		   "ETag: \"x\"\r\n"
		   "Content-Length: 99\r\n"
		   "\r\n");

	parse_resp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n", 0);
	assert_int_equal(head.framing, MOAT_H1_BODY_NONE);
	f = resp_defaults(MOAT_FWD_RESP_NONE);
	write_resp(&f);
	expect_out("HTTP/1.1 204 No Content\r\n"
		   "X-A: 1\r\n"
		   "\r\n");

	parse_resp("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Length: 5\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_NONE);
	write_resp(&f);
	expect_out("HTTP/1.1 103 Early Hints\r\n"
		   "Link: </a.css>; rel=preload\r\n"
		   "\r\n");

	/* HEAD answered with chunked: no framing field at all */
	parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
	f = resp_defaults(MOAT_FWD_RESP_NONE);
	write_resp(&f);
	expect_out("HTTP/1.1 200 OK\r\n"
		   "\r\n");
}

static void test_resp_status_line(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	/* the version is moat's own; status and reason are passed */
	parse_resp("HTTP/1.0 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	write_resp(&f);
	expect_out("HTTP/1.1 418 I'm a teapot\r\n"
		   "Content-Length: 0\r\n"
		   "\r\n");

	parse_resp("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	f.content_length = 0;
	write_resp(&f);
	assert_true(moat_buf_len(&out) > 13);
	assert_memory_equal(moat_buf_head(&out), "HTTP/1.1 599 ", 13);
}

static void test_resp_buffer_too_small(void **state)
{
	struct moat_fwd_resp f;

	(void)state;
	parse_resp("HTTP/1.1 200 OK\r\nX-Long: 0123456789012345678901234567890123456789\r\nContent-Length: 0\r\n\r\n", 0);
	f = resp_defaults(MOAT_FWD_RESP_LENGTH);
	moat_buf_release(&out);
	moat_buf_init(&out, NULL, 40);
	assert_int_equal(moat_fwd_response_head(&out, &head, &f), -ENOBUFS);
	assert_true(moat_buf_len(&out) <= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_plain_get),
		cmocka_unit_test(test_req_hop_by_hop_removed),
		cmocka_unit_test(test_req_connection_listed_fields_removed),
		cmocka_unit_test(test_req_connection_lists_many_fields),
		cmocka_unit_test(test_req_te_trailers_kept_alone),
		cmocka_unit_test(test_req_chunked_restated),
		cmocka_unit_test(test_req_upgrade),
		cmocka_unit_test(test_req_forwarding_untrusted_replaced),
		cmocka_unit_test(test_req_forwarding_trusted_appended),
		cmocka_unit_test(test_req_ipv6_client_and_host),
		cmocka_unit_test(test_req_forwarded_host_quoted_when_not_token),
		cmocka_unit_test(test_req_absolute_form_host_replaced),
		cmocka_unit_test(test_req_absolute_form_forwarded_host),
		cmocka_unit_test(test_req_http10_without_host),
		cmocka_unit_test(test_req_no_host_to_send),
		cmocka_unit_test(test_req_buffer_too_small),
		cmocka_unit_test(test_resp_length_hidden_and_hop_by_hop),
		cmocka_unit_test(test_resp_connection_listed_removed),
		cmocka_unit_test(test_resp_chunked),
		cmocka_unit_test(test_resp_close_delimited),
		cmocka_unit_test(test_resp_http10_client),
		cmocka_unit_test(test_resp_tunnel),
		cmocka_unit_test(test_resp_none_framing_content_length),
		cmocka_unit_test(test_resp_status_line),
		cmocka_unit_test(test_resp_buffer_too_small),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
