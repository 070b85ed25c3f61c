/*
 * tls_test.c - unit tests of src/tls/tls.c.
 *
 * The certificates are made here, with the OpenSSL API, into a temporary
 * directory: a test CA (RSA), another CA nobody trusts, a default RSA
 * certificate (default.test and 127.0.0.1), an RSA and an ECDSA
 * certificate for a.test and *.wild.test, an ECDSA one for x.wild.test
 * (an exact name beating the wildcard) and a client certificate.
 * Handshakes run over a non-blocking socketpair, both ends driven in turn
 * by one loop: a moat server against a moat client or against a bare
 * OpenSSL client where the test needs what moat's client does not expose
 * (sigalgs, old versions, the server's certificate, the stapled OCSP
 * response).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

static char dir[64];
static char paths[32][128];
static int npaths;
static EVP_PKEY *ca_key;
static X509 *ca_cert, *def_cert;

static const char *path(const char *name)
{
	for (int i = 0; i < npaths; i++)
		if (strcmp(strrchr(paths[i], '/') + 1, name) == 0)
			return paths[i];
	assert_true(npaths < 32);
	snprintf(paths[npaths], sizeof paths[0], "%s/%s", dir, name);
	return paths[npaths++];
}

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *val)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, val);

	assert_non_null(e);
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const char *san, long from,
		       int ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509V3_CTX v;
	X509_NAME *n;

	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&v);
	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, &v, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		add_ext(x, &v, NID_subject_alt_name, san);
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* Writes <name>.pem (the certificate, then the CA unless it is the CA
 * itself) and <name>.key. */
static void write_pair(const char *name, X509 *x, EVP_PKEY *k, X509 *chain)
{
	char fn[64];
	FILE *f;

	snprintf(fn, sizeof fn, "%s.pem", name);
	f = fopen(path(fn), "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	if (chain)
		PEM_write_X509(f, chain);
	fclose(f);
	snprintf(fn, sizeof fn, "%s.key", name);
	f = fopen(path(fn), "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static void write_file(const char *name, const void *p, size_t n)
{
	FILE *f = fopen(path(name), "w");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static size_t write_ocsp(const char *name, X509 *leaf, X509 *issuer, EVP_PKEY *ikey, long thisoff, long nextoff)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, issuer);
	ASN1_TIME *tu = X509_gmtime_adj(NULL, thisoff), *nu = X509_gmtime_adj(NULL, nextoff);
	OCSP_RESPONSE *r;
	unsigned char *der = NULL;
	int len;

	assert_non_null(OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, tu, nu));
	assert_true(OCSP_basic_sign(bs, issuer, ikey, EVP_sha256(), NULL, 0));
	r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	len = i2d_OCSP_RESPONSE(r, &der);
	assert_true(len > 0);
	write_file(name, der, (size_t)len);
	OPENSSL_free(der);
	OCSP_RESPONSE_free(r);
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	return (size_t)len;
}

static int setup(void **state)
{
	EVP_PKEY *ca2_key, *def_key, *rsa_key, *ec_key, *x_key, *cli_key;
	X509 *ca2, *a_rsa, *a_ec, *x, *cli;
	FILE *f;

	(void)state;
	strcpy(dir, "/tmp/moat_tls_XXXXXX");
	assert_non_null(mkdtemp(dir));
	ca_key = EVP_RSA_gen(2048);
	ca2_key = EVP_EC_gen("P-256");
	def_key = EVP_RSA_gen(2048);
	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	x_key = EVP_EC_gen("P-256");
	cli_key = EVP_EC_gen("P-256");
	assert_true(ca_key && ca2_key && def_key && rsa_key && ec_key && x_key && cli_key);
	ca_cert = make_cert("Test CA", ca_key, NULL, NULL, NULL, -3600, 1);
	ca2 = make_cert("Other CA", ca2_key, NULL, NULL, NULL, -3600, 1);
	def_cert = make_cert("default", def_key, ca_cert, ca_key, "DNS:default.test,IP:127.0.0.1", -3600, 0);
	a_rsa = make_cert("a-rsa", rsa_key, ca_cert, ca_key, "DNS:a.test,DNS:*.wild.test", -3600, 0);
	a_ec = make_cert("a-ec", ec_key, ca_cert, ca_key, "DNS:*.wild.test,DNS:A.test", -3600, 0);
	x = make_cert("x-exact", x_key, ca_cert, ca_key, "DNS:x.wild.test", -3600, 0);
	cli = make_cert("client1", cli_key, ca_cert, ca_key, NULL, -3600, 0);

	f = fopen(path("ca.pem"), "w");
	PEM_write_X509(f, ca_cert);
	fclose(f);
	f = fopen(path("def_leaf.pem"), "w");
	PEM_write_X509(f, def_cert);
	fclose(f);
	f = fopen(path("ca2.pem"), "w");
	PEM_write_X509(f, ca2);
	fclose(f);
	write_pair("def", def_cert, def_key, ca_cert);
	write_pair("a_rsa", a_rsa, rsa_key, ca_cert);
	write_pair("a_ec", a_ec, ec_key, ca_cert);
	write_pair("x", x, x_key, ca_cert);
	write_pair("client", cli, cli_key, ca_cert);
	write_file("garbage.pem", "hello\n", 6);
	write_file("garbage.ocsp", "\x30\x03\x0a\x01\x00", 5);
	write_ocsp("good.ocsp", def_cert, ca_cert, ca_key, -60, 3600);
	write_ocsp("expired.ocsp", def_cert, ca_cert, ca_key, -7200, -3600);
	write_ocsp("other.ocsp", a_rsa, ca_cert, ca_key, -60, 3600);

	EVP_PKEY_free(ca2_key);
	EVP_PKEY_free(def_key);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(x_key);
	EVP_PKEY_free(cli_key);
	X509_free(ca2);
	X509_free(a_rsa);
	X509_free(a_ec);
	X509_free(x);
	X509_free(cli);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < npaths; i++)
		unlink(paths[i]);
	rmdir(dir);
	EVP_PKEY_free(ca_key);
	X509_free(ca_cert);
	X509_free(def_cert);
	return 0;
}

/* ------------------------------------------------------------ harness */

static struct moat_tls_server *server(const char *ocsp, int h2, const char *client_ca,
				      enum moat_tls_verify_mode v)
{
	struct moat_tls_cert_opts certs[4] = {
		{ path("def.pem"), path("def.key"), ocsp },
		{ path("a_rsa.pem"), path("a_rsa.key"), NULL },
		{ path("x.pem"), path("x.key"), NULL },
		{ path("a_ec.pem"), path("a_ec.key"), NULL },
	};
	struct moat_tls_server_opts o = {
		.certs = certs, .ncerts = 4, .h2 = h2, .session_tickets = 1,
		.client_ca = client_ca, .client_verify = v,
	};
	char *why = NULL;
	struct moat_tls_server *s = moat_tls_server_new(&o, &why);

	if (!s)
		fail_msg("server: %s", why);
	return s;
}

static struct moat_tls_client *client(const char *ca, int h2, int with_cert)
{
	struct moat_tls_client_opts o = {
		.verify = 1, .ca = path(ca), .h2 = h2,
		.cert = with_cert ? path("client.pem") : NULL, .key = with_cert ? path("client.key") : NULL,
	};
	char *why = NULL;
	struct moat_tls_client *c = moat_tls_client_new(&o, &why);

	if (!c)
		fail_msg("client: %s", why);
	return c;
}

struct pair {
	int fd[2];                      /* [0] server, [1] client */
	struct moat_tls_conn *s, *c;    /* c NULL: raw is the client */
	SSL *raw;
	SSL_CTX *raw_ctx;
};

static void pair_open(struct pair *p)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
}

static void pair_close(struct pair *p)
{
	moat_tls_conn_free(p->s);
	moat_tls_conn_free(p->c);
	if (p->raw)     /* else OpenSSL marks its session not resumable */
		SSL_set_shutdown(p->raw, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(p->raw);
	SSL_CTX_free(p->raw_ctx);
	close(p->fd[0]);
	close(p->fd[1]);
	ERR_clear_error();
}

/* A bare OpenSSL client on p->fd[1]; `max` 0 = TLS 1.3. */
static SSL *raw_client(struct pair *p, const char *sni, int max, const char *sigalgs)
{
	p->raw_ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->raw_ctx);
	if (max) {
		SSL_CTX_set_security_level(p->raw_ctx, 0);
		SSL_CTX_set_cipher_list(p->raw_ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(p->raw_ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(p->raw_ctx, max);
	}
	p->raw = SSL_new(p->raw_ctx);
	SSL_set_fd(p->raw, p->fd[1]);
	SSL_set_connect_state(p->raw);
	if (sni)
		SSL_set_tlsext_host_name(p->raw, sni);
	if (sigalgs)
		assert_true(SSL_set1_sigalgs_list(p->raw, sigalgs));
	return p->raw;
}

static int raw_step(SSL *s)
{
	int r = SSL_do_handshake(s);

	if (r == 1)
		return 1;
	r = SSL_get_error(s, r);
	if (r == SSL_ERROR_WANT_READ)
		return MOAT_TLS_WANT_READ;
	if (r == SSL_ERROR_WANT_WRITE)
		return MOAT_TLS_WANT_WRITE;
	return MOAT_TLS_ERROR;
}

/* Runs both handshakes: 0 when both are done, -1 when either failed (sr,
 * cr: each side's last result). */
static int drive(struct pair *p, int *sr, int *cr)
{
	int s = 0, c = 0;

	for (int i = 0; i < 200; i++) {
		if (s != 1)
			s = moat_tls_handshake(p->s);
		if (c != 1)
			c = p->c ? moat_tls_handshake(p->c) : raw_step(p->raw);
		if (s == MOAT_TLS_ERROR || c == MOAT_TLS_ERROR)
			break;
		if (s == 1 && c == 1)
			break;
	}
	if (sr)
		*sr = s;
	if (cr)
		*cr = c;
	return s == 1 && c == 1 ? 0 : -1;
}

/* A moat client against a moat server: handshake. */
static int connect_pair(struct pair *p, struct moat_tls_server *srv, struct moat_tls_client *cl,
			const char *sni, const char *ip, const char *key)
{
	pair_open(p);
	p->s = moat_tls_accept(srv, p->fd[0]);
	p->c = moat_tls_connect(cl, p->fd[1], sni, ip, key);
	assert_non_null(p->s);
	assert_non_null(p->c);
	return drive(p, NULL, NULL);
}

/* Reads exactly n bytes from `from` while `other` keeps being driven. */
static void read_all(struct moat_tls_conn *from, char *buf, size_t n)
{
	size_t got = 0;

	for (int i = 0; got < n && i < 100000; i++) {
		ssize_t r = moat_tls_read(from, buf + got, n - got);

		if (r > 0)
			got += (size_t)r;
		else
			assert_true(r == MOAT_TLS_WANT_READ || r == MOAT_TLS_WANT_WRITE);
	}
	assert_int_equal(got, n);
}

/* A byte each way (the client takes in the session tickets on its way). */
static void ping(struct pair *p)
{
	char c = 0;

	assert_int_equal(moat_tls_write(p->s, "s", 1), 1);
	read_all(p->c, &c, 1);
	assert_int_equal(c, 's');
	assert_int_equal(moat_tls_write(p->c, "c", 1), 1);
	read_all(p->s, &c, 1);
	assert_int_equal(c, 'c');
}

static void peer_cn(SSL *s, char *buf, int cap)
{
	X509 *x = SSL_get0_peer_certificate(s);

	buf[0] = 0;
	assert_non_null(x);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, cap);
}

/* The CN of the certificate a raw client gets for `sni`. */
static void cn_for(struct moat_tls_server *srv, const char *sni, int max, const char *sigalgs, char *cn)
{
	struct pair p;

	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, sni, max, sigalgs);
	assert_int_equal(drive(&p, NULL, NULL), 0);
	peer_cn(p.raw, cn, 64);
	if (sni)
		assert_string_equal(moat_tls_sni(p.s), sni);
	else
		assert_null(moat_tls_sni(p.s));
	pair_close(&p);
}

/* -------------------------------------------------------------- tests */

static void test_sni(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	char cn[64];

	(void)state;
	cn_for(srv, "a.test", 0, NULL, cn);
	assert_string_equal(cn, "a-ec");
	cn_for(srv, "A.Test", 0, NULL, cn);
	assert_string_equal(cn, "a-ec");
	cn_for(srv, "y.wild.test", 0, NULL, cn);
	assert_string_equal(cn, "a-ec");
	cn_for(srv, "x.wild.test", 0, NULL, cn);      /* exact beats the wildcard */
	assert_string_equal(cn, "x-exact");
	cn_for(srv, "a.b.wild.test", 0, NULL, cn);    /* a wildcard covers one label */
	assert_string_equal(cn, "default");
	cn_for(srv, "wild.test", 0, NULL, cn);
	assert_string_equal(cn, "default");
	cn_for(srv, "nothing.test", 0, NULL, cn);
	assert_string_equal(cn, "default");
	cn_for(srv, NULL, 0, NULL, cn);
	assert_string_equal(cn, "default");
	moat_tls_server_free(srv);
}

static void test_rsa_or_ecdsa(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	const char *rsa_only = "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256";
	char cn[64];

	(void)state;
	cn_for(srv, "a.test", 0, rsa_only, cn);
	assert_string_equal(cn, "a-rsa");
	cn_for(srv, "z.wild.test", TLS1_2_VERSION, NULL, cn);
	assert_string_equal(cn, "a-ec");
	cn_for(srv, "z.wild.test", TLS1_2_VERSION, rsa_only, cn);
	assert_string_equal(cn, "a-rsa");
	moat_tls_server_free(srv);
}

static void test_alpn_and_peek(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_server *srv1 = server(NULL, 0, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_client *h2 = client("ca.pem", 1, 0), *h1 = client("ca.pem", 0, 0);
	const struct moat_tls_ch *ch;
	struct pair p;

	(void)state;
	/* The ClientHello read before OpenSSL reads it. */
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	p.c = moat_tls_connect(h2, p.fd[1], "a.test", NULL, NULL);
	assert_int_equal(moat_tls_peek_hello(p.s), 0);
	assert_null(moat_tls_clienthello(p.s));
	assert_int_equal(moat_tls_handshake(p.c), MOAT_TLS_WANT_READ);
	assert_int_equal(moat_tls_peek_hello(p.s), 1);
	ch = moat_tls_clienthello(p.s);
	assert_non_null(ch);
	assert_string_equal(ch->sni, "a.test");
	assert_int_equal(ch->nalpn, 1);
	assert_string_equal(ch->alpn[0], "h2");
	assert_int_equal(drive(&p, NULL, NULL), 0);
	assert_string_equal(moat_tls_alpn(p.s), "h2");
	assert_string_equal(moat_tls_alpn(p.c), "h2");
	assert_string_equal(moat_tls_version(p.s), "TLSv1.3");
	assert_true(strlen(moat_tls_cipher(p.s)) > 0);
	pair_close(&p);

	assert_int_equal(connect_pair(&p, srv, h1, "a.test", NULL, NULL), 0);
	assert_string_equal(moat_tls_alpn(p.s), "http/1.1");
	assert_string_equal(moat_tls_alpn(p.c), "http/1.1");
	pair_close(&p);

	assert_int_equal(connect_pair(&p, srv1, h1, "a.test", NULL, NULL), 0);
	assert_string_equal(moat_tls_alpn(p.s), "http/1.1");
	pair_close(&p);

	/* An h2-only client on an http/1.1 listener: no ALPN, no failure. */
	assert_int_equal(connect_pair(&p, srv1, h2, "a.test", NULL, NULL), 0);
	assert_string_equal(moat_tls_alpn(p.s), "");
	assert_string_equal(moat_tls_alpn(p.c), "");
	pair_close(&p);

	/* Not TLS at all: peek says so (1), the handshake fails. */
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	assert_int_equal(write(p.fd[1], "GET / HTTP/1.1\r\n\r\n", 18), 18);
	assert_int_equal(moat_tls_peek_hello(p.s), 1);
	assert_null(moat_tls_clienthello(p.s));
	assert_int_equal(moat_tls_handshake(p.s), MOAT_TLS_ERROR);
	pair_close(&p);

	moat_tls_client_free(h2);
	moat_tls_client_free(h1);
	moat_tls_server_free(srv);
	moat_tls_server_free(srv1);
}

static void test_old_versions_refused(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct pair p;
	char err[256];
	int sr = 0;

	(void)state;
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, "a.test", TLS1_1_VERSION, NULL);
	assert_int_equal(drive(&p, &sr, NULL), -1);
	assert_int_equal(sr, MOAT_TLS_ERROR);
	moat_tls_error(p.s, err, sizeof err);
	assert_non_null(strstr(err, "protocol"));
	pair_close(&p);

	/* TLS 1.2 still fine. */
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, "a.test", TLS1_2_VERSION, NULL);
	assert_int_equal(drive(&p, NULL, NULL), 0);
	assert_string_equal(moat_tls_version(p.s), "TLSv1.2");
	pair_close(&p);
	moat_tls_server_free(srv);
}

static void test_tickets(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_client *cl = client("ca.pem", 1, 0);
	struct pair p;

	(void)state;
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k1"), 0);
	assert_false(moat_tls_resumed(p.s));
	ping(&p);
	pair_close(&p);

	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k1"), 0);
	assert_true(moat_tls_resumed(p.s));
	assert_true(moat_tls_resumed(p.c));
	pair_close(&p);

	/* Another key has no session yet. */
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k2"), 0);
	assert_false(moat_tls_resumed(p.c));
	ping(&p);
	pair_close(&p);

	/* One rotation: the previous key still decrypts. */
	moat_tls_rotate_tickets();
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k1"), 0);
	assert_true(moat_tls_resumed(p.s));
	pair_close(&p);

	/* k2's ticket is two keys old after one more: still fine; three: gone. */
	moat_tls_rotate_tickets();
	moat_tls_rotate_tickets();
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k2"), 0);
	assert_false(moat_tls_resumed(p.s));
	assert_false(moat_tls_resumed(p.c));
	pair_close(&p);

	/* A server built later (a reload) shares the keys. */
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k3"), 0);
	ping(&p);
	pair_close(&p);
	moat_tls_server_free(srv);
	srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, "k3"), 0);
	assert_true(moat_tls_resumed(p.s));
	pair_close(&p);

	moat_tls_client_free(cl);
	moat_tls_server_free(srv);
}

static void test_tickets_tls12_and_off(void **state)
{
	struct moat_tls_cert_opts c = { path("def.pem"), path("def.key"), NULL };
	struct moat_tls_server_opts o = { .certs = &c, .ncerts = 1, .session_tickets = 0 };
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF), *off;
	SSL_SESSION *sess;
	struct pair p;
	char *why = NULL;

	(void)state;
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, "a.test", TLS1_2_VERSION, NULL);
	assert_int_equal(drive(&p, NULL, NULL), 0);
	sess = SSL_get1_session(p.raw);
	assert_non_null(sess);
	pair_close(&p);
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, "a.test", TLS1_2_VERSION, NULL);
	SSL_set_session(p.raw, sess);
	assert_int_equal(drive(&p, NULL, NULL), 0);
	assert_true(moat_tls_resumed(p.s));
	pair_close(&p);
	SSL_SESSION_free(sess);
	moat_tls_server_free(srv);

	off = moat_tls_server_new(&o, &why);
	assert_non_null(off);
	for (int i = 0; i < 2; i++) {
		pair_open(&p);
		p.s = moat_tls_accept(off, p.fd[0]);
		raw_client(&p, NULL, TLS1_2_VERSION, NULL);
		if (i == 1)
			SSL_set_session(p.raw, sess);
		assert_int_equal(drive(&p, NULL, NULL), 0);
		assert_false(moat_tls_resumed(p.s));
		if (i == 0)
			sess = SSL_get1_session(p.raw);
		pair_close(&p);
	}
	SSL_SESSION_free(sess);
	moat_tls_server_free(off);
}

static void test_mtls(void **state)
{
	struct moat_tls_server *req = server(NULL, 1, path("ca.pem"), MOAT_TLS_CLIENT_REQUIRED);
	struct moat_tls_server *opt = server(NULL, 1, path("ca.pem"), MOAT_TLS_CLIENT_OPTIONAL);
	struct moat_tls_client *anon = client("ca.pem", 1, 0), *with = client("ca.pem", 1, 1);
	struct pair p;
	char subj[256], err[256];
	char buf[8];
	int sr = 0;

	(void)state;
	/* Required, none given: the server refuses (TLS 1.3: after the
	 * client thinks it is done, which it hears on its first read). */
	pair_open(&p);
	p.s = moat_tls_accept(req, p.fd[0]);
	p.c = moat_tls_connect(anon, p.fd[1], "a.test", NULL, NULL);
	assert_int_equal(drive(&p, &sr, NULL), -1);
	assert_int_equal(sr, MOAT_TLS_ERROR);
	moat_tls_error(p.s, err, sizeof err);
	assert_non_null(strstr(err, "certificate"));
	assert_int_equal(moat_tls_read(p.c, buf, sizeof buf), MOAT_TLS_ERROR);
	pair_close(&p);

	assert_int_equal(connect_pair(&p, req, with, "a.test", NULL, NULL), 0);
	assert_int_equal(moat_tls_peer_subject(p.s, subj, sizeof subj), strlen("CN=client1"));
	assert_string_equal(subj, "CN=client1");
	ping(&p);
	pair_close(&p);

	assert_int_equal(connect_pair(&p, opt, anon, "a.test", NULL, NULL), 0);
	assert_int_equal(moat_tls_peer_subject(p.s, subj, sizeof subj), 0);
	assert_string_equal(subj, "");
	pair_close(&p);
	assert_int_equal(connect_pair(&p, opt, with, "a.test", NULL, NULL), 0);
	moat_tls_peer_subject(p.s, subj, sizeof subj);
	assert_string_equal(subj, "CN=client1");
	pair_close(&p);

	moat_tls_client_free(anon);
	moat_tls_client_free(with);
	moat_tls_server_free(req);
	moat_tls_server_free(opt);
}

static void test_client_verify(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_client *cl = client("ca.pem", 0, 0), *other = client("ca2.pem", 0, 0);
	struct pair p;
	char err[256], subj[128];
	int cr = 0;

	(void)state;
	assert_int_equal(connect_pair(&p, srv, cl, "x.wild.test", NULL, NULL), 0);
	moat_tls_peer_subject(p.c, subj, sizeof subj);
	assert_string_equal(subj, "CN=x-exact");
	assert_string_equal(moat_tls_sni(p.c), "x.wild.test");
	pair_close(&p);

	/* Wrong name: the default certificate does not cover it. */
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	p.c = moat_tls_connect(cl, p.fd[1], "wrong.test", NULL, NULL);
	assert_int_equal(drive(&p, NULL, &cr), -1);
	assert_int_equal(cr, MOAT_TLS_ERROR);
	moat_tls_error(p.c, err, sizeof err);
	assert_non_null(strstr(err, "certificate verify failed: "));
	pair_close(&p);

	/* Unknown CA. */
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	p.c = moat_tls_connect(other, p.fd[1], "a.test", NULL, NULL);
	assert_int_equal(drive(&p, NULL, &cr), -1);
	assert_int_equal(cr, MOAT_TLS_ERROR);
	moat_tls_error(p.c, err, sizeof err);
	assert_non_null(strstr(err, "certificate verify failed: "));
	pair_close(&p);

	/* An address: no SNI, the IP verified. */
	assert_int_equal(connect_pair(&p, srv, cl, NULL, "127.0.0.1", NULL), 0);
	assert_null(moat_tls_sni(p.s));
	pair_close(&p);
	assert_int_equal(connect_pair(&p, srv, cl, "127.0.0.1", "127.0.0.1", NULL), 0);
	assert_null(moat_tls_sni(p.s));
	pair_close(&p);
	assert_int_equal(connect_pair(&p, srv, cl, NULL, "127.0.0.2", NULL), -1);
	pair_close(&p);

	moat_tls_client_free(cl);
	moat_tls_client_free(other);
	moat_tls_server_free(srv);
}

static void test_bulk(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_client *cl = client("ca.pem", 1, 0);
	const size_t n = 1 << 20;
	char *up = malloc(n), *down = malloc(n), *got_up = malloc(n), *got_down = malloc(n);
	size_t w_up = 0, w_down = 0, r_up = 0, r_down = 0;
	int wants = 0;
	struct pair p;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		up[i] = (char)(i * 7 + 1);
		down[i] = (char)(i * 13 + 5);
	}
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, NULL), 0);
	for (int i = 0, sz = 32768; i < 2; i++)  /* so that writes have to wait */
		assert_int_equal(setsockopt(p.fd[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
	for (int i = 0; i < 1000000 && (r_up < n || r_down < n); i++) {
		ssize_t r = 0;

		/* Each side writes until the socket is full, then reads. */
		while (w_up < n && (r = moat_tls_write(p.c, up + w_up, n - w_up)) > 0)
			w_up += (size_t)r;
		if (w_up < n) {
			assert_true(r == MOAT_TLS_WANT_WRITE || r == MOAT_TLS_WANT_READ);
			wants++;
		}
		while (w_down < n && (r = moat_tls_write(p.s, down + w_down, n - w_down)) > 0)
			w_down += (size_t)r;
		if (w_down < n) {
			assert_true(r == MOAT_TLS_WANT_WRITE || r == MOAT_TLS_WANT_READ);
			wants++;
		}
		while ((r = moat_tls_read(p.s, got_up + r_up, n - r_up)) > 0)
			r_up += (size_t)r;
		assert_true(r == MOAT_TLS_WANT_READ || r_up == n);
		while ((r = moat_tls_read(p.c, got_down + r_down, n - r_down)) > 0)
			r_down += (size_t)r;
		assert_true(r == MOAT_TLS_WANT_READ || r_down == n);
	}
	assert_int_equal(r_up, n);
	assert_int_equal(r_down, n);
	assert_memory_equal(up, got_up, n);
	assert_memory_equal(down, got_down, n);
	assert_true(wants > 0);     /* the socket did fill up */

	/* close_notify: the peer reads 0. */
	moat_tls_shutdown(p.c);
	assert_int_equal(moat_tls_read(p.s, got_up, 16), 0);
	pair_close(&p);

	/* A bare EOF reads as 0 too. */
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, NULL), 0);
	shutdown(p.fd[1], SHUT_WR);
	assert_int_equal(moat_tls_read(p.s, got_up, 16), 0);
	pair_close(&p);

	free(up);
	free(down);
	free(got_up);
	free(got_down);
	moat_tls_client_free(cl);
	moat_tls_server_free(srv);
}

/*
 * OpenSSL's retry rule with a shorter piece: the server offers 16 KiB
 * (a head gathered with body bytes), the socket is full: WANT_WRITE; then
 * the caller offers the first 100 bytes alone (the head, flushed by itself).
 * moat_tls_write must finish OpenSSL's pending record (not fail with "bad
 * length"), report the 100 bytes, then report the rest of what OpenSSL sent
 * when the caller offers it, without sending it twice.
 */
static void test_shorter_retry(void **state)
{
	struct moat_tls_server *srv = server(NULL, 1, NULL, MOAT_TLS_CLIENT_OFF);
	struct moat_tls_client *cl = client("ca.pem", 1, 0);
	const size_t n = 4u << 20, piece = 16384;
	char *data = malloc(n), *got = malloc(n);
	size_t w = 0, r = 0;
	int shorter = 0;
	struct pair p;

	(void)state;
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 31 + 7);
	assert_int_equal(connect_pair(&p, srv, cl, "a.test", NULL, NULL), 0);
	for (int i = 0, sz = 16384; i < 2; i++)
		assert_int_equal(setsockopt(p.fd[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
	for (int i = 0, blocked = 0; i < 1000000 && r < n; i++) {
		size_t want = n - w < piece ? n - w : piece;

		/* after a WANT_WRITE, the same stream is offered in a shorter piece */
		if (blocked && want > 100)
			want = 100;
		while (w < n) {          /* write until the socket is full */
			ssize_t k = moat_tls_write(p.s, data + w, want);

			if (k <= 0) {
				assert_true(k == MOAT_TLS_WANT_WRITE || k == MOAT_TLS_WANT_READ);
				blocked = 1;
				break;
			}
			w += (size_t)k;
			if (blocked && want == 100)
				shorter++;
			blocked = 0;
			want = n - w < piece ? n - w : piece;
		}
		{                        /* then take one record off it */
			ssize_t q = moat_tls_read(p.c, got + r, n - r);

			if (q > 0)
				r += (size_t)q;
		}
	}
	assert_int_equal(r, n);
	assert_memory_equal(data, got, n);
	assert_true(shorter > 0);   /* the shorter retry happened */
	pair_close(&p);
	free(data);
	free(got);
	moat_tls_client_free(cl);
	moat_tls_server_free(srv);
}

static void expect_error(const char *cert, const char *key, const char *client_ca, const char *want)
{
	struct moat_tls_cert_opts c = { cert, key, NULL };
	struct moat_tls_server_opts o = {
		.certs = &c, .ncerts = 1, .client_ca = client_ca,
		.client_verify = client_ca ? MOAT_TLS_CLIENT_REQUIRED : MOAT_TLS_CLIENT_OFF,
	};
	char *why = NULL;

	assert_null(moat_tls_server_new(&o, &why));
	assert_non_null(why);
	if (!strstr(why, want))
		fail_msg("\"%s\" does not hold \"%s\"", why, want);
	free(why);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_build_errors(void **state)
{
	char want[256];
	char *why = NULL;
	struct moat_tls_client_opts co = { .verify = 1, .ca = path("nope.pem") };

	(void)state;
	snprintf(want, sizeof want, "%s: does not match the certificate in %s", path("def.key"), path("a_rsa.pem"));
	expect_error(path("a_rsa.pem"), path("def.key"), NULL, want);
	snprintf(want, sizeof want, "%s: cannot read certificate: no start line", path("garbage.pem"));
	expect_error(path("garbage.pem"), path("def.key"), NULL, want);
	snprintf(want, sizeof want, "%s: cannot read private key", path("garbage.pem"));
	expect_error(path("def.pem"), path("garbage.pem"), NULL, want);
	snprintf(want, sizeof want, "%s: cannot open", path("missing.pem"));
	expect_error(path("missing.pem"), path("def.key"), NULL, want);
	snprintf(want, sizeof want, "%s: cannot load CA file", path("garbage.pem"));
	expect_error(path("def.pem"), path("def.key"), path("garbage.pem"), want);

	assert_null(moat_tls_client_new(&co, &why));
	assert_non_null(strstr(why, "nope.pem: cannot load CA file"));
	free(why);
	why = NULL;
	co.ca = path("ca.pem");
	co.cert = path("client.pem");
	co.key = path("def.key");
	assert_null(moat_tls_client_new(&co, &why));
	snprintf(want, sizeof want, "%s: does not match the certificate in %s", path("def.key"), path("client.pem"));
	assert_string_equal(why, want);
	free(why);
}

/* The stapled response a raw client asking for one gets ("" none). */
static long stapled(const char *cert, const char *ocsp, unsigned char *out, size_t cap)
{
	struct moat_tls_cert_opts c = { cert, path("def.key"), ocsp };
	struct moat_tls_server_opts o = { .certs = &c, .ncerts = 1, .session_tickets = 1 };
	struct moat_tls_server *srv;
	const unsigned char *resp = NULL;
	char *why = NULL;
	struct pair p;
	long len;

	srv = moat_tls_server_new(&o, &why);
	if (!srv)
		fail_msg("%s", why);
	pair_open(&p);
	p.s = moat_tls_accept(srv, p.fd[0]);
	raw_client(&p, "default.test", 0, NULL);
	SSL_set_tlsext_status_type(p.raw, TLSEXT_STATUSTYPE_ocsp);
	assert_int_equal(drive(&p, NULL, NULL), 0);
	len = SSL_get_tlsext_status_ocsp_resp(p.raw, &resp);
	if (len > 0 && (size_t)len <= cap)
		memcpy(out, resp, (size_t)len);
	pair_close(&p);
	moat_tls_server_free(srv);
	return len;
}

static void test_ocsp(void **state)
{
	unsigned char got[4096], want[4096];
	FILE *f;
	long len;
	size_t n;

	(void)state;
	assert_true(stapled(path("def.pem"), NULL, got, sizeof got) <= 0);
	assert_true(stapled(path("def.pem"), path("garbage.ocsp"), got, sizeof got) <= 0);
	assert_true(stapled(path("def.pem"), path("expired.ocsp"), got, sizeof got) <= 0);
	assert_true(stapled(path("def.pem"), path("other.ocsp"), got, sizeof got) <= 0);  /* another certificate's */
	assert_true(stapled(path("def.pem"), path("absent.ocsp"), got, sizeof got) <= 0);
	len = stapled(path("def.pem"), path("good.ocsp"), got, sizeof got);
	f = fopen(path("good.ocsp"), "r");
	assert_non_null(f);
	n = fread(want, 1, sizeof want, f);
	fclose(f);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);

	/* A chain file without the issuer: the response cannot be matched. */
	assert_true(stapled(path("def_leaf.pem"), path("good.ocsp"), got, sizeof got) <= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_rsa_or_ecdsa),
		cmocka_unit_test(test_alpn_and_peek),
		cmocka_unit_test(test_old_versions_refused),
		cmocka_unit_test(test_tickets),
		cmocka_unit_test(test_tickets_tls12_and_off),
		cmocka_unit_test(test_mtls),
		cmocka_unit_test(test_client_verify),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_shorter_retry),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_ocsp),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
