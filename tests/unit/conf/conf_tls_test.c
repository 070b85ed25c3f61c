/*
 * conf_tls_test.c - unit tests of TLS and HTTP/2 in the configuration
 * (src/conf/conf_tls.c, the server URL schemes of conf_values.c): a
 * listener's tls block (every key, its defaults, the cert/key shorthand
 * and the certs list, HSTS forms), h2c and redirect_https, an upstream's
 * tls block, https:// h2c:// h2:// servers, each refusal at its exact
 * file:line:column, the print round trip and equality, and the one-line
 * mode's --cert / --key and --to URLs.
 *
 * The files named by the documents are created empty in a fresh directory
 * under /tmp that the tests run in (relative paths; their content is the
 * runtime's business, not the loader's). No DNS: every address is numeric.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/limits.h"

#include "conf_test_util.h"

static char tmpdir[64];
static char olddir[4096];

static const char *const files[] = { "site.pem", "site.key", "rsa.pem", "rsa.key", "rsa.ocsp", "ec.pem",
				     "ec.key",   "ca.pem",   "client.pem", "client.key" };

static int setup(void **state)
{
	size_t i;

	(void)state;
	if (getcwd(olddir, sizeof olddir) == NULL)
		return -1;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/conftls.XXXXXX");
	if (mkdtemp(tmpdir) == NULL || chdir(tmpdir) < 0)
		return -1;
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		FILE *f = fopen(files[i], "w");
		if (f == NULL)
			return -1;
		fclose(f);
	}
	return mkdir("adir", 0700);
}

static int teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(files[i]);
	rmdir("adir");
	if (chdir(olddir) < 0)
		return -1;
	return rmdir(tmpdir);
}

/* A TLS listener whose tls block is `body` (lines from 6 on, indented by 6). */
#define LTLS(body)                                          \
	"upstreams: {app: {servers: [127.0.0.1:3000]}}\n" /* 1 */ \
	"routes: [{upstream: app}]\n"                     /* 2 */ \
	"listeners:\n"                                    /* 3 */ \
	"  - listen: 127.0.0.1:8443\n"                    /* 4 */ \
	"    tls:\n"                                      /* 5 */ \
	body

/* An upstream "app" whose keys are `body` (lines from 5 on, indented by 4). */
#define UPS(body)                                                  \
	"listeners: [{listen: \":80\"}]\n" /* 1 */                     \
	"routes: [{upstream: app}]\n"     /* 2 */                     \
	"upstreams:\n"                    /* 3 */                     \
	"  app:\n"                        /* 4 */                     \
	body

static unsigned port_of(const struct moat_conf_addr *a)
{
	return ntohs(((const struct sockaddr_in *)(const void *)&a->ss)->sin_port);
}

/* ---- listeners --------------------------------------------------------------- */

static void test_shorthand_and_defaults(void **state)
{
	struct moat_conf *c = load_ok(LTLS("      cert: site.pem\n") "  - listen: 127.0.0.1:8080\n");
	const struct moat_conf_listener *l = &c->listeners[0];
	const struct moat_conf_tls *t = &l->tls;

	(void)state;
	assert_int_equal(t->on, 1);
	assert_int_equal(t->ncerts, 1);
	assert_string_equal(t->certs[0].cert, "site.pem");
	assert_string_equal(t->certs[0].key, "site.pem"); /* key defaults to cert */
	assert_null(t->certs[0].ocsp);
	assert_int_equal(t->certs[0].pos.line, 6);
	assert_int_equal(t->certs[0].pos.col, 13);
	assert_int_equal(t->pos.line, 6);
	assert_int_equal(t->pos.col, 7);
	assert_int_equal(t->min_version, 0x0303);
	assert_null(t->ciphers);
	assert_null(t->ciphersuites);
	assert_null(t->groups);
	assert_int_equal(t->h2, 1);
	assert_int_equal(t->session_tickets, 1);
	assert_null(t->client_ca);
	assert_int_equal(t->client_verify, MOAT_TLS_VERIFY_OFF);
	assert_string_equal(t->client_header, "X-Client-Cert-Subject");
	assert_int_equal(t->hsts_max_age, 0);
	assert_int_equal(t->hsts_subdomains, 0);
	assert_int_equal(t->hsts_preload, 0);
	assert_int_equal(l->h2c, 0);
	assert_int_equal(l->redirect_https, 0);

	/* a cleartext listener: h2c on, no redirect, no TLS */
	l = &c->listeners[1];
	assert_int_equal(l->tls.on, 0);
	assert_int_equal(l->tls.ncerts, 0);
	assert_null(l->tls.client_header);
	assert_int_equal(l->h2c, 1);
	assert_int_equal(l->redirect_https, 0);
	roundtrip(c);
	moat_conf_free(c);

	c = load_ok(LTLS("      cert: site.pem\n      key: site.key\n      ocsp: rsa.ocsp\n"));
	t = &c->listeners[0].tls;
	assert_int_equal(t->ncerts, 1);
	assert_string_equal(t->certs[0].key, "site.key");
	assert_string_equal(t->certs[0].ocsp, "rsa.ocsp");
	roundtrip(c);
	moat_conf_free(c);
}

static const char every_key_yaml[] = LTLS(
	"      certs:\n"                                                             /* 6 */
	"        - { cert: rsa.pem, key: rsa.key, ocsp: rsa.ocsp }\n"                /* 7 */
	"        - cert: ec.pem\n"                                                   /* 8 */
	"          key: ec.key\n"                                                    /* 9 */
	"        - cert: site.pem\n"                                                 /* 10 */
	"      min_version: \"1.3\"\n"                                               /* 11 */
	"      ciphers: ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256\n" /* 12 */
	"      ciphersuites: TLS_AES_128_GCM_SHA256\n"                               /* 13 */
	"      groups: X25519:P-384\n"                                               /* 14 */
	"      h2: false\n"                                                          /* 15 */
	"      session_tickets: off\n"                                               /* 16 */
	"      client_ca: ca.pem\n"                                                  /* 17 */
	"      client_verify: optional\n"                                            /* 18 */
	"      client_header: X-Client-DN\n"                                         /* 19 */
	"      hsts: { max_age: 2y, include_subdomains: true, preload: true }\n");   /* 20 */

static void test_every_key(void **state)
{
	struct moat_conf *c = load_ok(every_key_yaml);
	const struct moat_conf_tls *t = &c->listeners[0].tls;

	(void)state;
	assert_int_equal(t->ncerts, 3);
	assert_string_equal(t->certs[0].cert, "rsa.pem");
	assert_string_equal(t->certs[0].key, "rsa.key");
	assert_string_equal(t->certs[0].ocsp, "rsa.ocsp");
	assert_int_equal(t->certs[0].pos.line, 7);
	assert_int_equal(t->certs[0].pos.col, 19);
	assert_string_equal(t->certs[1].cert, "ec.pem");
	assert_string_equal(t->certs[1].key, "ec.key");
	assert_null(t->certs[1].ocsp);
	assert_int_equal(t->certs[1].pos.line, 8);
	assert_int_equal(t->certs[1].pos.col, 17);
	assert_string_equal(t->certs[2].cert, "site.pem");
	assert_string_equal(t->certs[2].key, "site.pem");
	assert_int_equal(t->min_version, 0x0304);
	assert_string_equal(t->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
	assert_string_equal(t->ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_string_equal(t->groups, "X25519:P-384");
	assert_int_equal(t->h2, 0);
	assert_int_equal(t->session_tickets, 0);
	assert_string_equal(t->client_ca, "ca.pem");
	assert_int_equal(t->client_verify, MOAT_TLS_VERIFY_OPTIONAL);
	assert_string_equal(t->client_header, "X-Client-DN");
	assert_int_equal(t->hsts_max_age, 2 * 365 * 86400);
	assert_int_equal(t->hsts_subdomains, 1);
	assert_int_equal(t->hsts_preload, 1);
	roundtrip(c);
	moat_conf_free(c);

	/* client_ca alone: required */
	c = load_ok(LTLS("      cert: site.pem\n      client_ca: ca.pem\n"));
	assert_int_equal(c->listeners[0].tls.client_verify, MOAT_TLS_VERIFY_REQUIRED);
	roundtrip(c);
	moat_conf_free(c);
	c = load_ok(LTLS("      cert: site.pem\n      client_verify: required\n      client_ca: ca.pem\n"));
	assert_int_equal(c->listeners[0].tls.client_verify, MOAT_TLS_VERIFY_REQUIRED);
	moat_conf_free(c);
	c = load_ok(LTLS("      cert: site.pem\n      min_version: 1.2\n"));
	assert_int_equal(c->listeners[0].tls.min_version, 0x0303);
	moat_conf_free(c);
}

static void test_hsts_forms(void **state)
{
	static const struct {
		const char *v;
		uint64_t secs;
	} ok[] = {
		{ "1y", 31536000 }, { "180d", 15552000 }, { "3600", 3600 }, { "1d12h", 129600 },
		{ "90m", 5400 },    { "45s", 45 },        { "0", 0 },       { "10y", 315360000 },
	};
	char doc[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct moat_conf *c;

		snprintf(doc, sizeof doc, LTLS("      cert: site.pem\n      hsts: %s\n"), ok[i].v);
		c = load_ok(doc);
		assert_int_equal(c->listeners[0].tls.hsts_max_age, ok[i].secs);
		assert_int_equal(c->listeners[0].tls.hsts_subdomains, 0);
		assert_int_equal(c->listeners[0].tls.hsts_preload, 0);
		roundtrip(c);
		moat_conf_free(c);
	}
	{
		struct moat_conf *c = load_ok(
		    LTLS("      cert: site.pem\n      hsts: { max_age: 180d, include_subdomains: yes }\n"));
		assert_int_equal(c->listeners[0].tls.hsts_max_age, 15552000);
		assert_int_equal(c->listeners[0].tls.hsts_subdomains, 1);
		assert_int_equal(c->listeners[0].tls.hsts_preload, 0);
		roundtrip(c);
		moat_conf_free(c);
		c = load_ok(LTLS("      cert: site.pem\n      hsts: { max_age: 1y, include_subdomains: true, preload: true }\n"));
		assert_int_equal(c->listeners[0].tls.hsts_preload, 1);
		moat_conf_free(c);
	}
}

static void test_h2c_and_redirect(void **state)
{
	struct moat_conf *c;

	(void)state;
	c = load_ok("upstreams: {app: {servers: [127.0.0.1:3000]}}\nroutes: [{upstream: app}]\nlisteners:\n"
		    "  - { listen: 127.0.0.1:80, redirect_https: true }\n"
		    "  - { listen: 127.0.0.1:81, redirect_https: 8443, h2c: false }\n"
		    "  - { listen: 127.0.0.1:82, redirect_https: off, h2c: true }\n");
	assert_int_equal(c->listeners[0].redirect_https, 443);
	assert_int_equal(c->listeners[0].h2c, 1);
	assert_int_equal(c->listeners[1].redirect_https, 8443);
	assert_int_equal(c->listeners[1].h2c, 0);
	assert_int_equal(c->listeners[2].redirect_https, 0);
	assert_int_equal(c->listeners[2].h2c, 1);
	roundtrip(c);
	moat_conf_free(c);
}

/* ---- listener errors --------------------------------------------------------- */

static void test_listener_errors(void **state)
{
	(void)state;
	expect_error(LTLS("      cert: nope.pem\n"),
		     "t.yaml:6:13: listeners[0].tls.cert: cannot read nope.pem: No such file or directory");
	expect_error(LTLS("      cert: adir\n"), "t.yaml:6:13: listeners[0].tls.cert: cannot read adir: Is a directory");
	expect_error(LTLS("      cert: site.pem\n      key: no.key\n"),
		     "t.yaml:7:12: listeners[0].tls.key: cannot read no.key: No such file or directory");
	expect_error(LTLS("      cert: site.pem\n      ocsp: no.der\n"),
		     "t.yaml:7:13: listeners[0].tls.ocsp: cannot read no.der: No such file or directory");
	expect_error(LTLS("      cert: site.pem\n      client_ca: no-ca.pem\n"),
		     "t.yaml:7:18: listeners[0].tls.client_ca: cannot read no-ca.pem: No such file or directory");
	expect_error(LTLS("      certs: [{cert: ec.pem, key: nope.key}]\n"),
		     "t.yaml:6:35: listeners[0].tls.certs[0].key: cannot read nope.key: No such file or directory");
	expect_error(LTLS("      cert: \"\"\n"), "t.yaml:6:13: listeners[0].tls.cert: expected a file path, got an empty value");
	expect_error(LTLS("      key: site.key\n"), "t.yaml:6:12: listeners[0].tls.key: only with cert");
	expect_error(LTLS("      ocsp: rsa.ocsp\n"), "t.yaml:6:13: listeners[0].tls.ocsp: only with cert");
	expect_error(LTLS("      cert: site.pem\n      certs: [{cert: ec.pem}]\n"),
		     "t.yaml:7:14: listeners[0].tls.certs: not with cert, key or ocsp beside it (write that certificate "
		     "as an entry of certs)");
	expect_error(LTLS("      h2: true\n"),
		     "t.yaml:6:7: listeners[0].tls: at least one certificate is required, like { cert: site.pem, key: "
		     "site.key }");
	expect_error(LTLS("      certs: []\n"),
		     "t.yaml:6:14: listeners[0].tls.certs: at least one certificate is required, like \"- { cert: "
		     "site.pem, key: site.key }\"");
	expect_error(LTLS("      certs: [{key: site.key}]\n"),
		     "t.yaml:6:15: listeners[0].tls.certs[0]: missing required key \"cert\"");
	expect_error(LTLS("      certs: [site.pem]\n"),
		     "t.yaml:6:15: listeners[0].tls.certs[0]: expected a mapping like { cert: site.pem, key: site.key }, "
		     "got \"site.pem\"");
	expect_error(LTLS("      certs: [{cert: ec.pem, kye: ec.key}]\n"),
		     "t.yaml:6:30: unknown key \"kye\" in listeners[0].tls.certs[0]; expected one of: cert, key, ocsp");
	expect_error(LTLS("      certs: site.pem\n"),
		     "t.yaml:6:14: listeners[0].tls.certs: expected a list of certificates, got \"site.pem\"");
	expect_error(LTLS("      cert: site.pem\n      crt: site.pem\n"),
		     "t.yaml:7:7: unknown key \"crt\" in listeners[0].tls; expected one of: cert, key, ocsp, certs, "
		     "min_version, ciphers, ciphersuites, groups, h2, session_tickets, client_ca, client_verify, "
		     "client_header, hsts");
	expect_error(LTLS("      cert: site.pem\n      min_version: 1.1\n"),
		     "t.yaml:7:20: listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"1.1\" (TLS 1.0 and "
		     "1.1 are not offered)");
	expect_error(LTLS("      cert: site.pem\n      min_version: \"1.0\"\n"),
		     "t.yaml:7:20: listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"1.0\" (TLS 1.0 and "
		     "1.1 are not offered)");
	expect_error(LTLS("      cert: site.pem\n      min_version: TLSv1.3\n"),
		     "t.yaml:7:20: listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"TLSv1.3\"");
	expect_error(LTLS("      cert: site.pem\n      ciphers: \"\"\n"),
		     "t.yaml:7:16: listeners[0].tls.ciphers: expected an OpenSSL list like "
		     "\"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256\", got \"\"");
	expect_error(LTLS("      cert: site.pem\n      groups: [X25519]\n"),
		     "t.yaml:7:15: listeners[0].tls.groups: expected an OpenSSL list like \"X25519:P-256\", got a list");
	expect_error(LTLS("      cert: site.pem\n      h2: maybe\n"),
		     "t.yaml:7:11: listeners[0].tls.h2: expected true or false, got \"maybe\"");
	expect_error(LTLS("      cert: site.pem\n      session_tickets: 2\n"),
		     "t.yaml:7:24: listeners[0].tls.session_tickets: expected true or false, got \"2\"");
	expect_error(LTLS("      cert: site.pem\n      client_verify: optional\n"),
		     "t.yaml:7:22: listeners[0].tls.client_verify: only with client_ca (the CA file that client "
		     "certificates are verified against)");
	expect_error(LTLS("      cert: site.pem\n      client_ca: ca.pem\n      client_verify: off\n"),
		     "t.yaml:8:22: listeners[0].tls.client_verify: expected one of required, optional; got \"off\"");
	expect_error(LTLS("      cert: site.pem\n      client_header: \"X Client\"\n"),
		     "t.yaml:7:22: listeners[0].tls.client_header: expected a header name like "
		     "\"X-Client-Cert-Subject\", got \"X Client\"");
	expect_error(LTLS("      cert: site.pem\n      hsts: 1w\n"),
		     "t.yaml:7:13: listeners[0].tls.hsts: expected a duration like \"1y\", \"180d\" or \"31536000\" "
		     "(seconds), got \"1w\"");
	expect_error(LTLS("      cert: site.pem\n      hsts: 500ms\n"),
		     "t.yaml:7:13: listeners[0].tls.hsts: expected a duration like \"1y\", \"180d\" or \"31536000\" "
		     "(seconds), got \"500ms\"");
	expect_error(LTLS("      cert: site.pem\n      hsts: 11y\n"),
		     "t.yaml:7:13: listeners[0].tls.hsts: at most 10y, got \"11y\"");
	expect_error(LTLS("      cert: site.pem\n      hsts: { include_subdomains: true }\n"),
		     "t.yaml:7:13: listeners[0].tls.hsts: missing required key \"max_age\"");
	expect_error(LTLS("      cert: site.pem\n      hsts: { max_age: 1y, preload: true }\n"),
		     "t.yaml:7:37: listeners[0].tls.hsts.preload: needs include_subdomains: true");
	expect_error(LTLS("      cert: site.pem\n      hsts: { max_age: 364d, include_subdomains: true, preload: true }\n"),
		     "t.yaml:7:65: listeners[0].tls.hsts.preload: needs a max_age of at least 1y");
	expect_error(LTLS("      cert: site.pem\n      hsts: { max_age: 1y, subdomains: true }\n"),
		     "t.yaml:7:28: unknown key \"subdomains\" in listeners[0].tls.hsts; expected one of: max_age, "
		     "include_subdomains, preload");
	expect_error("upstreams: {app: {servers: [127.0.0.1:3000]}}\nroutes: [{upstream: app}]\n"
		     "listeners: [{listen: 127.0.0.1:443, tls: true}]\n",
		     "t.yaml:3:42: listeners[0].tls: expected a mapping like { cert: site.pem, key: site.key }, got "
		     "\"true\"");
}

static void test_h2c_redirect_errors(void **state)
{
	(void)state;
	expect_error(LTLS("      cert: site.pem\n    h2c: true\n"),
		     "t.yaml:7:10: listeners[0].h2c: not on a TLS listener (HTTP/2 over TLS is offered by ALPN: tls.h2)");
	expect_error(LTLS("      cert: site.pem\n    h2c: false\n"),
		     "t.yaml:7:10: listeners[0].h2c: not on a TLS listener (HTTP/2 over TLS is offered by ALPN: tls.h2)");
	expect_error(LTLS("      cert: site.pem\n    redirect_https: true\n"),
		     "t.yaml:7:21: listeners[0].redirect_https: not on a TLS listener (it redirects a cleartext "
		     "listener to https://)");
	expect_error("upstreams: {app: {servers: [127.0.0.1:3000]}}\nroutes: [{upstream: app}]\n"
		     "listeners: [{listen: 127.0.0.1:80, redirect_https: 0}]\n",
		     "t.yaml:3:52: listeners[0].redirect_https: expected true (port 443), false or a port between 1 and "
		     "65535, got \"0\"");
	expect_error("upstreams: {app: {servers: [127.0.0.1:3000]}}\nroutes: [{upstream: app}]\n"
		     "listeners: [{listen: 127.0.0.1:80, redirect_https: 65536}]\n",
		     "t.yaml:3:52: listeners[0].redirect_https: expected true (port 443), false or a port between 1 and "
		     "65535, got \"65536\"");
	expect_error("upstreams: {app: {servers: [127.0.0.1:3000]}}\nroutes: [{upstream: app}]\n"
		     "listeners: [{listen: 127.0.0.1:80, h2c: sometimes}]\n",
		     "t.yaml:3:41: listeners[0].h2c: expected true or false, got \"sometimes\"");
}

/* ---- upstreams --------------------------------------------------------------- */

static const char schemes_yaml[] = UPS(
	"    servers:\n"                          /* 5 */
	"      - https://10.0.0.1\n"              /* 6 */
	"      - h2c://10.0.0.2\n"                /* 7 */
	"      - h2://10.0.0.3:8443\n"            /* 8 */
	"      - http://10.0.0.4\n"               /* 9 */
	"      - 10.0.0.5:81\n"                   /* 10 */
	"      - { address: HTTPS://10.0.0.6/ }\n" /* 11 */
	"      - \"h2://[::1]\"\n"                /* 12 */
	"    tls:\n"                              /* 13 */
	"      verify: false\n"                   /* 14 */
	"      ca: ca.pem\n"                      /* 15 */
	"      sni: App.Internal\n"               /* 16 */
	"      cert: client.pem\n"                /* 17 */
	"      key: client.key\n");               /* 18 */

static void test_upstream_schemes_and_tls(void **state)
{
	static const enum moat_conf_scheme schemes[] = { MOAT_SCHEME_HTTPS, MOAT_SCHEME_H2C,  MOAT_SCHEME_H2,
							 MOAT_SCHEME_HTTP,  MOAT_SCHEME_HTTP, MOAT_SCHEME_HTTPS,
							 MOAT_SCHEME_H2 };
	static const char *const texts[] = { "10.0.0.1:443", "10.0.0.2:80", "10.0.0.3:8443", "10.0.0.4:80",
					     "10.0.0.5:81",  "10.0.0.6:443", "[::1]:443" };
	static const unsigned ports[] = { 443, 80, 8443, 80, 81, 443, 443 };
	struct moat_conf *c = load_ok(schemes_yaml);
	const struct moat_conf_upstream *u = &c->upstreams[0];
	size_t i;

	(void)state;
	assert_int_equal(u->nservers, 7);
	for (i = 0; i < u->nservers; i++) {
		assert_int_equal(u->servers[i].scheme, schemes[i]);
		assert_string_equal(u->servers[i].addr.text, texts[i]);
		assert_int_equal(port_of(&u->servers[i].addr), ports[i]);
	}
	assert_string_equal(u->servers[6].host, "::1");
	assert_int_equal(u->tls.verify, 0);
	assert_string_equal(u->tls.ca, "ca.pem");
	assert_string_equal(u->tls.sni, "App.Internal");
	assert_string_equal(u->tls.cert, "client.pem");
	assert_string_equal(u->tls.key, "client.key");
	assert_int_equal(u->tls.pos.line, 14);
	assert_int_equal(u->tls.pos.col, 7);
	roundtrip(c);
	moat_conf_free(c);

	/* defaults: verify on, the system store, SNI from the host */
	c = load_ok(UPS("    servers: [https://10.0.0.1, h2c://10.0.0.2:8080]\n"));
	u = &c->upstreams[0];
	assert_int_equal(u->tls.verify, 1);
	assert_null(u->tls.ca);
	assert_null(u->tls.sni);
	assert_null(u->tls.cert);
	assert_null(u->tls.key);
	roundtrip(c);
	moat_conf_free(c);

	/* an empty tls block is the defaults */
	c = load_ok(UPS("    servers: [http://10.0.0.1]\n    tls:\n"));
	assert_int_equal(c->upstreams[0].tls.verify, 1);
	roundtrip(c);
	moat_conf_free(c);
}

static void test_upstream_errors(void **state)
{
	(void)state;
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { sni: 10.0.0.1 }\n"),
		     "t.yaml:6:17: upstreams.app.tls.sni: expected a host name like \"app.internal\", got \"10.0.0.1\" "
		     "(SNI carries names, not addresses)");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { sni: \"bad name\" }\n"),
		     "t.yaml:6:17: upstreams.app.tls.sni: expected a host name like \"app.internal\", got \"bad name\"");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { cert: client.pem }\n"),
		     "t.yaml:6:18: upstreams.app.tls.cert: needs key beside it (the client certificate's private key)");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { key: client.key }\n"),
		     "t.yaml:6:17: upstreams.app.tls.key: only with cert");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { ca: nope.pem }\n"),
		     "t.yaml:6:16: upstreams.app.tls.ca: cannot read nope.pem: No such file or directory");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { verify: maybe }\n"),
		     "t.yaml:6:20: upstreams.app.tls.verify: expected true or false, got \"maybe\"");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: { verfy: false }\n"),
		     "t.yaml:6:12: unknown key \"verfy\" in upstreams.app.tls; expected one of: verify, ca, sni, cert, "
		     "key");
	expect_error(UPS("    servers: [https://10.0.0.1]\n    tls: true\n"),
		     "t.yaml:6:10: upstreams.app.tls: expected a mapping (\"key: value\" lines), got \"true\"");
	expect_error(UPS("    servers: [\"h2s://10.0.0.1\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: unsupported scheme \"h2s\" (expected http://, https://, "
		     "h2c:// or h2://)");
	expect_error(UPS("    servers: [\"https://10.0.0.1/api\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: a server URL has no path, query or fragment (got \"/api\")");
	expect_error(UPS("    servers: [\"h2://10.0.0.1:0\"]\n"),
		     "t.yaml:5:15: upstreams.app.servers[0]: port must be between 1 and 65535, got 0");
	/* the address is what tells servers apart, whatever the scheme */
	expect_error_prefix(UPS("    servers: [https://10.0.0.1, \"http://10.0.0.1:443\"]\n"),
			    "t.yaml:5:33: upstreams.app.servers[1]: duplicate server address \"10.0.0.1:443\"");
}

/* ---- equality and the one-line mode -------------------------------------------- */

static void test_equal(void **state)
{
	static const char *const variants[] = {
		LTLS("      cert: site.pem\n      h2: false\n"),
		LTLS("      cert: site.pem\n      key: site.key\n"),
		LTLS("      cert: site.pem\n      hsts: 1y\n"),
		LTLS("      cert: site.pem\n      client_ca: ca.pem\n"),
		LTLS("      certs: [{cert: site.pem}, {cert: ec.pem}]\n"),
		UPS("    servers: [h2c://127.0.0.1:3000]\n"),
		UPS("    servers: [127.0.0.1:3000]\n    tls: { verify: false }\n"),
	};
	struct moat_conf *base = load_ok(LTLS("      cert: site.pem\n"));
	struct moat_conf *plain = load_ok(UPS("    servers: [127.0.0.1:3000]\n"));
	size_t i;

	(void)state;
	for (i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		struct moat_conf *c = load_ok(variants[i]);

		assert_false(moat_conf_equal(i < 5 ? base : plain, c));
		moat_conf_free(c);
	}
	moat_conf_free(base);
	moat_conf_free(plain);
}

static void test_one_line(void **state)
{
	static const char *const to[] = { "https://127.0.0.1", "h2c://127.0.0.1:9000", "h2://127.0.0.1:9443" };
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;
	const struct moat_conf_listener *l;

	(void)state;
	c = moat_conf_from_proxy_args("127.0.0.1:8443", to, 3, 1, &err);
	assert_non_null(c);
	l = &c->listeners[0];
	assert_int_equal(l->tls.on, 0);
	assert_int_equal(l->h2c, 1);
	assert_int_equal(c->upstreams[0].servers[0].scheme, MOAT_SCHEME_HTTPS);
	assert_string_equal(c->upstreams[0].servers[0].addr.text, "127.0.0.1:443");
	assert_int_equal(c->upstreams[0].servers[1].scheme, MOAT_SCHEME_H2C);
	assert_int_equal(c->upstreams[0].servers[2].scheme, MOAT_SCHEME_H2);
	assert_int_equal(c->upstreams[0].tls.verify, 1);

	assert_int_equal(moat_conf_set_tls(c, "site.pem", NULL, &err), 0);
	assert_null(err.buf);
	assert_int_equal(l->tls.on, 1);
	assert_int_equal(l->tls.ncerts, 1);
	assert_string_equal(l->tls.certs[0].cert, "site.pem");
	assert_string_equal(l->tls.certs[0].key, "site.pem");
	assert_int_equal(l->tls.h2, 1);
	assert_int_equal(l->tls.session_tickets, 1);
	assert_int_equal(l->tls.min_version, 0x0303);
	assert_string_equal(l->tls.client_header, "X-Client-Cert-Subject");
	assert_int_equal(l->h2c, 0);
	roundtrip(c);
	moat_conf_free(c);

	c = moat_conf_from_proxy_args("127.0.0.1:8443", to, 1, 1, &err);
	assert_non_null(c);
	assert_int_equal(moat_conf_set_tls(c, "site.pem", "site.key", &err), 0);
	assert_string_equal(c->listeners[0].tls.certs[0].key, "site.key");
	assert_int_equal(moat_conf_set_tls(c, NULL, "site.key", &err), -1);
	assert_string_equal(err.buf, "--key: only with --cert\n");
	moat_conf_errors_free(&err);
	assert_int_equal(moat_conf_set_tls(c, "nope.pem", "adir", &err), -1);
	assert_string_equal(err.buf, "--cert: cannot read nope.pem: No such file or directory\n"
				     "--key: cannot read adir: Is a directory\n");
	moat_conf_errors_free(&err);
	/* the failed calls left the first certificate in place */
	assert_string_equal(c->listeners[0].tls.certs[0].cert, "site.pem");
	moat_conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shorthand_and_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_hsts_forms),
		cmocka_unit_test(test_h2c_and_redirect),
		cmocka_unit_test(test_listener_errors),
		cmocka_unit_test(test_h2c_redirect_errors),
		cmocka_unit_test(test_upstream_schemes_and_tls),
		cmocka_unit_test(test_upstream_errors),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_one_line),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
