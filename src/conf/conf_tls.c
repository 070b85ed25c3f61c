/*
 * conf_tls.c - TLS and HTTP/2 in the configuration: a listener's "tls"
 * block (certificates, versions, ciphers, ALPN h2, tickets, client
 * certificates, HSTS), its "h2c" and "redirect_https", an upstream's "tls"
 * block (verification, CA, SNI, client certificate), and the one-line
 * mode's --cert / --key (moat_conf_set_tls). The URL schemes of servers
 * (https://, h2c://, h2://) are parsed with the other server address
 * forms in conf_values.c.
 *
 * Part of the loader: conf_schema.c and conf_upstream.c name the setters
 * below in their tables. Every string set here is owned by the snapshot
 * and freed by moat_conf_tls_free. Files named here are opened (and closed
 * at once) so that a missing or unreadable one fails `moat -t`; what they
 * hold is read only by the runtime (src/tls), which reports a broken
 * certificate at the position kept in the structs. Relative paths are
 * relative to the directory moat was started in, as for every other file
 * key. Documented for users in docs/configuration.md ("TLS and HTTP/2"):
 * keep both in step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_tls.h"
#include "conf/conf_yaml.h"

/* ---- shared pieces ---------------------------------------------------------- */

const char *moat_conf_scheme_prefix(enum moat_conf_scheme s)
{
	switch (s) {
	case MOAT_SCHEME_HTTPS:
		return "https://";
	case MOAT_SCHEME_H2C:
		return "h2c://";
	case MOAT_SCHEME_H2:
		return "h2://";
	case MOAT_SCHEME_HTTP:
		break;
	}
	return "http://";
}

/* 0 when `path` can be opened for reading and is not a directory, else an
 * errno value. Never blocks (a FIFO is opened non-blocking) and reads
 * nothing. */
static int file_readable(const char *path)
{
	struct stat st;
	int fd, e = 0;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno != 0 ? errno : EIO;
	if (fstat(fd, &st) < 0)
		e = errno != 0 ? errno : EIO;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	close(fd);
	return e;
}

/* A file key: non-empty text, stored in *field, then checked readable (an
 * unreadable file is reported but kept, so that checks on other keys do
 * not fail too). */
static void set_path(struct moat_conf_loader *ld, yaml_node_t *val, char **field)
{
	const char *v = moat_conf_yaml_text(ld, val, "a file path");
	int e;

	if (v == NULL)
		return;
	if (v[0] == '\0') {
		moat_conf_yaml_error(ld, val, "expected a file path, got an empty value");
		return;
	}
	moat_conf_yaml_set_string(ld, val, field, v);
	e = file_readable(v);
	if (e != 0)
		moat_conf_yaml_error(ld, val, "cannot read %s: %s", v, strerror(e));
}

/* Reports "PATH.KEY: message" at `pos`, for checks across keys once a
 * block is walked. */
static void key_error(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *key, const char *msg)
{
	moat_conf_yaml_error_at(ld, pos, "%s.%s: %s", ld->path, key, msg);
}

static int bool_word(const char *v)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	for (i = 0; i < MOAT_CONF_NELEM(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

static void free_cert(struct moat_conf_tls_cert *k)
{
	free(k->cert);
	free(k->key);
	free(k->ocsp);
	k->cert = k->key = k->ocsp = NULL;
}

/* ---- a listener's certificates ----------------------------------------------- */

static void set_cert_cert(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_tls_cert *k = obj;

	k->pos = moat_conf_yaml_pos(val);
	set_path(ld, val, &k->cert);
}

static void set_cert_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct moat_conf_tls_cert *)obj)->key);
}

static void set_cert_ocsp(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct moat_conf_tls_cert *)obj)->ocsp);
}

enum { CRT_CERT, CRT_KEY, CRT_OCSP };

static const struct moat_conf_key cert_keys[] = {
	[CRT_CERT] = { "cert", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_cert_cert, NULL, 0 },
	[CRT_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_cert_key, NULL, 0 },
	[CRT_OCSP] = { "ocsp", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_cert_ocsp, NULL, 0 },
};

/* key defaults to cert: one PEM file holding both. */
static void cert_default_key(struct moat_conf_loader *ld, yaml_node_t *at, struct moat_conf_tls_cert *k)
{
	if (k->key == NULL && k->cert != NULL)
		moat_conf_yaml_set_string(ld, at, &k->key, k->cert);
}

/* The walk of a listener's "tls" mapping: the block itself, and the one
 * certificate of the cert/key/ocsp shorthand until it is known whether
 * "certs" was given too. */
struct tls_walk {
	struct moat_conf_tls tls;
	struct moat_conf_tls_cert one;
};

static void set_tls_cert(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_cert_cert(ld, val, &((struct tls_walk *)obj)->one);
}

static void set_tls_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_cert_key(ld, val, &((struct tls_walk *)obj)->one);
}

static void set_tls_ocsp(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_cert_ocsp(ld, val, &((struct tls_walk *)obj)->one);
}

static void set_tls_certs(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_tls *t = &((struct tls_walk *)obj)->tls;
	yaml_node_item_t *items;
	size_t count, i, old;

	items = moat_conf_yaml_list(ld, val, MOAT_CONF_TLS_MAX_CERTS, "certificates", &count);
	if (items == NULL)
		return;
	if (count == 0) {
		moat_conf_yaml_error(ld, val,
				     "at least one certificate is required, like \"- { cert: site.pem, key: site.key }\"");
		return;
	}
	t->certs = moat_conf_yaml_alloc(ld, val, count, sizeof *t->certs);
	if (t->certs == NULL)
		return;
	t->ncerts = count;
	for (i = 0; i < count && !ld->stop; i++) {
		yaml_node_t *it = moat_conf_yaml_node(ld, items[i]);

		if (it == NULL || moat_conf_yaml_over_budget(ld, it))
			break;
		t->certs[i].pos = moat_conf_yaml_pos(it);
		old = moat_conf_yaml_push_index(ld, i);
		moat_conf_yaml_walk_entry(ld, it, cert_keys, MOAT_CONF_NELEM(cert_keys), &t->certs[i], CRT_CERT,
					  "{ cert: site.pem, key: site.key }", NULL);
		cert_default_key(ld, it, &t->certs[i]);
		moat_conf_yaml_pop(ld, old);
	}
}

/* ---- a listener's other TLS keys ------------------------------------------------ */

static void set_tls_min_version(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_tls *t = &((struct tls_walk *)obj)->tls;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "\"1.2\" or \"1.3\"");

	if (v == NULL)
		return;
	if (strcmp(v, "1.2") == 0)
		t->min_version = MOAT_CONF_TLS_V12;
	else if (strcmp(v, "1.3") == 0)
		t->min_version = MOAT_CONF_TLS_V13;
	else if (strcmp(v, "1.0") == 0 || strcmp(v, "1.1") == 0 || strcmp(v, "1") == 0)
		moat_conf_yaml_error(ld, val, "expected \"1.2\" or \"1.3\", got %s (TLS 1.0 and 1.1 are not offered)",
				     MOAT_CONF_GOT(val));
	else
		moat_conf_yaml_error(ld, val, "expected \"1.2\" or \"1.3\", got %s", MOAT_CONF_GOT(val));
}

/* ciphers, ciphersuites, groups: OpenSSL's syntax, checked by the runtime
 * when it builds the context; here only non-empty printable text. */
static void set_openssl_list(struct moat_conf_loader *ld, yaml_node_t *val, char **field, const char *like)
{
	char what[128];
	const char *v;
	size_t i;

	snprintf(what, sizeof what, "an OpenSSL list like \"%s\"", like);
	v = moat_conf_yaml_text(ld, val, what);
	if (v == NULL)
		return;
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			break;
	if (v[0] == '\0' || v[i] != '\0') {
		char got_buf[128];
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, field, v);
}

static void set_tls_ciphers(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_openssl_list(ld, val, &((struct tls_walk *)obj)->tls.ciphers,
			 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
}

static void set_tls_ciphersuites(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_openssl_list(ld, val, &((struct tls_walk *)obj)->tls.ciphersuites,
			 "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
}

static void set_tls_groups(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_openssl_list(ld, val, &((struct tls_walk *)obj)->tls.groups, "X25519:P-256");
}

static void set_tls_client_ca(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct tls_walk *)obj)->tls.client_ca);
}

static void set_tls_client_verify(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char *const words[] = { "required", "optional" };
	struct moat_conf_tls *t = &((struct tls_walk *)obj)->tls;
	int i = moat_conf_yaml_word(ld, val, words, MOAT_CONF_NELEM(words));

	if (i >= 0)
		t->client_verify = i == 0 ? MOAT_TLS_VERIFY_REQUIRED : MOAT_TLS_VERIFY_OPTIONAL;
}

static void set_tls_client_header(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a header name like \"X-Client-Cert-Subject\"";
	struct moat_conf_tls *t = &((struct tls_walk *)obj)->tls;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);

	if (v == NULL)
		return;
	if (!moat_conf_header_name_ok(v, strlen(v))) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &t->client_header, v);
}

/* ---- HSTS ---------------------------------------------------------------------- */

/* An HSTS max-age: a bare number of seconds, or number+unit parts with the
 * units y (365 days), d, h, m, s ("1y", "180d", "1d12h"). */
static int parse_age(const char *s, uint64_t *secs)
{
	uint64_t total = 0;
	const char *p = s;

	if (*s == '\0')
		return -1;
	if (moat_conf_parse_uint(s, &total) == 0) {
		*secs = total;
		return 0;
	}
	while (*p != '\0') {
		uint64_t n = 0, mult;

		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > (UINT64_MAX - 9) / 10)
				return -1;
			n = n * 10 + (uint64_t)(*p - '0');
		}
		switch (*p) {
		case 'y':
			mult = MOAT_CONF_TLS_YEAR_S;
			break;
		case 'd':
			mult = 86400;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'm':
			mult = 60;
			break;
		case 's':
			mult = 1;
			break;
		default:
			return -1;
		}
		p++;
		if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult)
			return -1;
		total += n * mult;
	}
	*secs = total;
	return 0;
}

/* "1y", "180d", "3600": the shortest of those that parse_age reads back. */
static void format_age(uint64_t s, char *buf, size_t len)
{
	if (s != 0 && s % MOAT_CONF_TLS_YEAR_S == 0)
		snprintf(buf, len, "%lluy", (unsigned long long)(s / MOAT_CONF_TLS_YEAR_S));
	else if (s != 0 && s % 86400 == 0)
		snprintf(buf, len, "%llud", (unsigned long long)(s / 86400));
	else
		snprintf(buf, len, "%llu", (unsigned long long)s);
}

static int get_age(struct moat_conf_loader *ld, yaml_node_t *val, uint64_t *out)
{
	static const char what[] = "a duration like \"1y\", \"180d\" or \"31536000\" (seconds)";
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);
	uint64_t s;

	if (v == NULL)
		return -1;
	if (parse_age(v, &s) < 0) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return -1;
	}
	if (s > MOAT_CONF_TLS_MAX_HSTS) {
		moat_conf_yaml_error(ld, val, "at most 10y, got %s", MOAT_CONF_GOT(val));
		return -1;
	}
	*out = s;
	return 0;
}

struct hsts {
	uint64_t max_age;
	int subdomains, preload;
};

static void set_hsts_max_age(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	get_age(ld, val, &((struct hsts *)obj)->max_age);
}

enum { HSTS_MAX_AGE, HSTS_SUBDOMAINS, HSTS_PRELOAD };

static const struct moat_conf_key hsts_keys[] = {
	[HSTS_MAX_AGE] = { "max_age", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_hsts_max_age, NULL, 0 },
	[HSTS_SUBDOMAINS] = { "include_subdomains", MOAT_CONF_K_BOOL, offsetof(struct hsts, subdomains), 0, 1, NULL,
			      NULL, 0 },
	[HSTS_PRELOAD] = { "preload", MOAT_CONF_K_BOOL, offsetof(struct hsts, preload), 0, 1, NULL, NULL, 0 },
};

/* hsts: DURATION, or { max_age: DURATION, include_subdomains: bool, preload: bool } */
static void set_tls_hsts(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_tls *t = &((struct tls_walk *)obj)->tls;
	struct moat_conf_pos where[MOAT_CONF_NELEM(hsts_keys)];
	struct hsts h = { 0, 0, 0 };
	unsigned seen;

	if (val->type != YAML_MAPPING_NODE) {
		if (get_age(ld, val, &h.max_age) == 0)
			t->hsts_max_age = h.max_age;
		return;
	}
	seen = moat_conf_yaml_walk_entry(ld, val, hsts_keys, MOAT_CONF_NELEM(hsts_keys), &h, HSTS_MAX_AGE,
					 "{ max_age: 1y, include_subdomains: true }", where);
	if ((seen & (1u << HSTS_PRELOAD)) && h.preload) {
		if (!h.subdomains)
			key_error(ld, where[HSTS_PRELOAD], "preload", "needs include_subdomains: true");
		else if ((seen & (1u << HSTS_MAX_AGE)) && h.max_age < MOAT_CONF_TLS_HSTS_PRELOAD_MIN)
			key_error(ld, where[HSTS_PRELOAD], "preload", "needs a max_age of at least 1y");
	}
	t->hsts_max_age = h.max_age;
	t->hsts_subdomains = h.subdomains;
	t->hsts_preload = h.preload;
}

/* ---- a listener's tls block ------------------------------------------------------ */

enum { TLS_CERT, TLS_KEY, TLS_OCSP, TLS_CERTS, TLS_MIN_VERSION, TLS_CIPHERS, TLS_CIPHERSUITES, TLS_GROUPS, TLS_H2,
       TLS_TICKETS, TLS_CLIENT_CA, TLS_CLIENT_VERIFY, TLS_CLIENT_HEADER, TLS_HSTS };

static const struct moat_conf_key tls_keys[] = {
	[TLS_CERT] = { "cert", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_cert, NULL, 0 },
	[TLS_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_key, NULL, 0 },
	[TLS_OCSP] = { "ocsp", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_ocsp, NULL, 0 },
	[TLS_CERTS] = { "certs", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_certs, NULL, 0 },
	[TLS_MIN_VERSION] = { "min_version", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_min_version, NULL, 0 },
	[TLS_CIPHERS] = { "ciphers", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_ciphers, NULL, 0 },
	[TLS_CIPHERSUITES] = { "ciphersuites", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_ciphersuites, NULL, 0 },
	[TLS_GROUPS] = { "groups", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_groups, NULL, 0 },
	[TLS_H2] = { "h2", MOAT_CONF_K_BOOL, offsetof(struct tls_walk, tls.h2), 0, 1, NULL, NULL, 0 },
	[TLS_TICKETS] = { "session_tickets", MOAT_CONF_K_BOOL, offsetof(struct tls_walk, tls.session_tickets), 0, 1,
			  NULL, NULL, 0 },
	[TLS_CLIENT_CA] = { "client_ca", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_client_ca, NULL, 0 },
	[TLS_CLIENT_VERIFY] = { "client_verify", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_client_verify, NULL, 0 },
	[TLS_CLIENT_HEADER] = { "client_header", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_client_header, NULL, 0 },
	[TLS_HSTS] = { "hsts", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_tls_hsts, NULL, 0 },
};

/* The defaults of a TLS block (on, no certificate yet). */
static void tls_defaults(struct moat_conf_tls *t)
{
	memset(t, 0, sizeof *t);
	t->on = 1;
	t->min_version = MOAT_CONF_TLS_V12;
	t->h2 = 1;
	t->session_tickets = 1;
	t->client_verify = MOAT_TLS_VERIFY_OFF;
}

void moat_conf_tls_listener_init(struct moat_conf_listener *l)
{
	memset(&l->tls, 0, sizeof l->tls);
	l->h2c = 1;
	l->redirect_https = 0;
}

void moat_conf_tls_listener_tls(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_listener *l = obj;
	struct moat_conf_pos where[MOAT_CONF_NELEM(tls_keys)];
	struct tls_walk w;
	unsigned seen;
	int verify_set;
	char got_buf[128];

	if (val->type != YAML_MAPPING_NODE) {
		moat_conf_yaml_error(ld, val, "expected a mapping like { cert: site.pem, key: site.key }, got %s",
				     MOAT_CONF_GOT(val));
		return;
	}
	memset(&w, 0, sizeof w);
	tls_defaults(&w.tls);
	w.tls.pos = moat_conf_yaml_pos(val);
	seen = moat_conf_yaml_walk_map(ld, val, tls_keys, MOAT_CONF_NELEM(tls_keys), &w, where);
	verify_set = w.tls.client_verify != MOAT_TLS_VERIFY_OFF;

	/* the certificates: the shorthand or the list, never both */
	if (seen & ((1u << TLS_CERT) | (1u << TLS_KEY) | (1u << TLS_OCSP))) {
		if (seen & (1u << TLS_CERTS)) {
			key_error(ld, where[TLS_CERTS], "certs",
				  "not with cert, key or ocsp beside it (write that certificate as an entry of certs)");
			free_cert(&w.one);
		} else if (!(seen & (1u << TLS_CERT))) {
			key_error(ld, where[(seen & (1u << TLS_KEY)) ? TLS_KEY : TLS_OCSP],
				  (seen & (1u << TLS_KEY)) ? "key" : "ocsp", "only with cert");
			free_cert(&w.one);
		} else {
			cert_default_key(ld, val, &w.one);
			w.tls.certs = calloc(1, sizeof *w.tls.certs);
			if (w.tls.certs == NULL) {
				moat_conf_yaml_oom(ld, val);
				free_cert(&w.one);
			} else {
				w.tls.certs[0] = w.one;
				w.tls.ncerts = 1;
			}
		}
	} else if (!(seen & (1u << TLS_CERTS))) {
		moat_conf_yaml_error(ld, val,
				     "at least one certificate is required, like { cert: site.pem, key: site.key }");
	}

	/* client certificates */
	if (w.tls.client_ca != NULL && !verify_set)
		w.tls.client_verify = MOAT_TLS_VERIFY_REQUIRED;
	if ((seen & (1u << TLS_CLIENT_VERIFY)) && !(seen & (1u << TLS_CLIENT_CA)))
		key_error(ld, where[TLS_CLIENT_VERIFY], "client_verify",
			  "only with client_ca (the CA file that client certificates are verified against)");
	if (w.tls.client_header == NULL) {
		w.tls.client_header = strdup(MOAT_CONF_TLS_DEFAULT_CLIENT_HEADER);
		if (w.tls.client_header == NULL)
			moat_conf_yaml_oom(ld, val);
	}

	/* a second tls key is refused by the walker, so l->tls is still empty */
	l->tls = w.tls;
	l->h2c = 0; /* h2 on a TLS listener comes from ALPN (tls.h2) */
}

void moat_conf_tls_listener_redirect(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "true (port 443), false or a port between 1 and 65535";
	struct moat_conf_listener *l = obj;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);
	uint64_t port;
	int b;

	if (v == NULL)
		return;
	b = bool_word(v);
	if (b >= 0) {
		l->redirect_https = b ? 443 : 0;
		return;
	}
	if (moat_conf_parse_uint(v, &port) < 0 || port < 1 || port > 65535) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	l->redirect_https = (unsigned)port;
}

void moat_conf_tls_listener_check(struct moat_conf_loader *ld, const struct moat_conf_listener *l,
				  const struct moat_conf_pos *h2c_at, const struct moat_conf_pos *redirect_at)
{
	if (!l->tls.on)
		return;
	if (h2c_at != NULL)
		key_error(ld, *h2c_at, "h2c",
			  "not on a TLS listener (HTTP/2 over TLS is offered by ALPN: tls.h2)");
	if (redirect_at != NULL)
		key_error(ld, *redirect_at, "redirect_https",
			  "not on a TLS listener (it redirects a cleartext listener to https://)");
}

/* ---- an upstream's tls block ---------------------------------------------------- */

static void set_up_ca(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct moat_conf_upstream_tls *)obj)->ca);
}

static void set_up_cert(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct moat_conf_upstream_tls *)obj)->cert);
}

static void set_up_key(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	set_path(ld, val, &((struct moat_conf_upstream_tls *)obj)->key);
}

static void set_up_sni(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	static const char what[] = "a host name like \"app.internal\"";
	struct moat_conf_upstream_tls *t = obj;
	struct in6_addr a6;
	struct in_addr a4;
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, what);

	if (v == NULL)
		return;
	if (inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s (SNI carries names, not addresses)", what,
				     MOAT_CONF_GOT(val));
		return;
	}
	if (!moat_conf_hostname_ok(v, strlen(v)) || v[0] == '.' || v[0] == '-') {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	moat_conf_yaml_set_string(ld, val, &t->sni, v);
}

enum { UTLS_VERIFY, UTLS_CA, UTLS_SNI, UTLS_CERT, UTLS_KEY };

static const struct moat_conf_key upstream_tls_keys[] = {
	[UTLS_VERIFY] = { "verify", MOAT_CONF_K_BOOL, offsetof(struct moat_conf_upstream_tls, verify), 0, 1, NULL, NULL,
			  0 },
	[UTLS_CA] = { "ca", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_up_ca, NULL, 0 },
	[UTLS_SNI] = { "sni", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_up_sni, NULL, 0 },
	[UTLS_CERT] = { "cert", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_up_cert, NULL, 0 },
	[UTLS_KEY] = { "key", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_up_key, NULL, 0 },
};

void moat_conf_tls_upstream_tls(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_upstream *u = obj;
	struct moat_conf_pos where[MOAT_CONF_NELEM(upstream_tls_keys)];
	unsigned seen;

	u->tls.pos = moat_conf_yaml_pos(val);
	seen = moat_conf_yaml_walk_map(ld, val, upstream_tls_keys, MOAT_CONF_NELEM(upstream_tls_keys), &u->tls,
				       where);
	if ((seen & (1u << UTLS_CERT)) && !(seen & (1u << UTLS_KEY)))
		key_error(ld, where[UTLS_CERT], "cert", "needs key beside it (the client certificate's private key)");
	if ((seen & (1u << UTLS_KEY)) && !(seen & (1u << UTLS_CERT)))
		key_error(ld, where[UTLS_KEY], "key", "only with cert");
}

/* ---- the one-line mode -------------------------------------------------------------- */

static void free_tls(struct moat_conf_tls *t);

int moat_conf_set_tls(struct moat_conf *c, const char *cert, const char *key, struct moat_conf_errors *err)
{
	struct moat_conf_listener *l;
	struct moat_conf_tls t;
	int e, nerr = 0;

	if (cert == NULL) {
		moat_conf_errorf(err, "--key: only with --cert");
		return -1;
	}
	if (key == NULL)
		key = cert;
	e = cert[0] != '\0' ? file_readable(cert) : ENOENT;
	if (e != 0) {
		moat_conf_errorf(err, "--cert: cannot read %s: %s", cert, strerror(e));
		nerr++;
	}
	e = key == cert ? 0 : key[0] != '\0' ? file_readable(key) : ENOENT;
	if (e != 0) {
		moat_conf_errorf(err, "--key: cannot read %s: %s", key, strerror(e));
		nerr++;
	}
	if (nerr != 0)
		return -1;
	if (c->nlisteners == 0)
		return -1;
	l = &c->listeners[0];
	tls_defaults(&t);
	t.certs = calloc(1, sizeof *t.certs);
	t.client_header = strdup(MOAT_CONF_TLS_DEFAULT_CLIENT_HEADER);
	if (t.certs != NULL) {
		t.ncerts = 1;
		t.certs[0].cert = strdup(cert);
		t.certs[0].key = strdup(key);
	}
	if (t.certs == NULL || t.client_header == NULL || t.certs[0].cert == NULL || t.certs[0].key == NULL) {
		if (t.certs != NULL)
			free_cert(&t.certs[0]);
		free(t.certs);
		free(t.client_header);
		moat_conf_errorf(err, "out of memory");
		return -1;
	}
	free_tls(&l->tls);
	l->tls = t;
	l->h2c = 0;
	l->redirect_https = 0;
	return 0;
}

/* ---- freeing, printing, equality ------------------------------------------------------- */

static void free_tls(struct moat_conf_tls *t)
{
	size_t i;

	for (i = 0; i < t->ncerts; i++)
		free_cert(&t->certs[i]);
	free(t->certs);
	free(t->ciphers);
	free(t->ciphersuites);
	free(t->groups);
	free(t->client_ca);
	free(t->client_header);
	memset(t, 0, sizeof *t);
}

void moat_conf_tls_free(struct moat_conf *c)
{
	size_t i;

	for (i = 0; c->listeners != NULL && i < c->nlisteners; i++)
		free_tls(&c->listeners[i].tls);
	for (i = 0; c->upstreams != NULL && i < c->nupstreams; i++) {
		struct moat_conf_upstream_tls *t = &c->upstreams[i].tls;

		free(t->ca);
		free(t->sni);
		free(t->cert);
		free(t->key);
		t->ca = t->sni = t->cert = t->key = NULL;
	}
}

void moat_conf_tls_print_listener(const struct moat_conf_listener *l, FILE *out)
{
	const struct moat_conf_tls *t = &l->tls;
	char b[32];
	size_t i;

	if (!t->on) {
		fprintf(out, "    h2c: %s\n", l->h2c ? "true" : "false");
		if (l->redirect_https != 0)
			fprintf(out, "    redirect_https: %u\n", l->redirect_https);
		return;
	}
	fprintf(out, "    tls:\n      certs:\n");
	for (i = 0; i < t->ncerts; i++) {
		moat_conf_put_key_string(out, "        - ", "cert", t->certs[i].cert ? t->certs[i].cert : "");
		if (t->certs[i].key != NULL)
			moat_conf_put_key_string(out, "          ", "key", t->certs[i].key);
		if (t->certs[i].ocsp != NULL)
			moat_conf_put_key_string(out, "          ", "ocsp", t->certs[i].ocsp);
	}
	fprintf(out, "      min_version: \"%s\"\n", t->min_version == MOAT_CONF_TLS_V13 ? "1.3" : "1.2");
	if (t->ciphers != NULL)
		moat_conf_put_key_string(out, "      ", "ciphers", t->ciphers);
	if (t->ciphersuites != NULL)
		moat_conf_put_key_string(out, "      ", "ciphersuites", t->ciphersuites);
	if (t->groups != NULL)
		moat_conf_put_key_string(out, "      ", "groups", t->groups);
	fprintf(out, "      h2: %s\n      session_tickets: %s\n", t->h2 ? "true" : "false",
		t->session_tickets ? "true" : "false");
	if (t->client_ca != NULL) {
		moat_conf_put_key_string(out, "      ", "client_ca", t->client_ca);
		fprintf(out, "      client_verify: %s\n",
			t->client_verify == MOAT_TLS_VERIFY_OPTIONAL ? "optional" : "required");
	}
	if (t->client_header != NULL)
		moat_conf_put_key_string(out, "      ", "client_header", t->client_header);
	if (t->hsts_max_age != 0) {
		format_age(t->hsts_max_age, b, sizeof b);
		fprintf(out, "      hsts: { max_age: %s, include_subdomains: %s, preload: %s }\n", b,
			t->hsts_subdomains ? "true" : "false", t->hsts_preload ? "true" : "false");
	}
}

static int upstream_uses_tls(const struct moat_conf_upstream *u)
{
	size_t i;

	for (i = 0; i < u->nservers; i++)
		if (u->servers[i].scheme == MOAT_SCHEME_HTTPS || u->servers[i].scheme == MOAT_SCHEME_H2)
			return 1;
	return 0;
}

void moat_conf_tls_print_upstream(const struct moat_conf_upstream *u, FILE *out)
{
	const struct moat_conf_upstream_tls *t = &u->tls;

	if (!upstream_uses_tls(u) && t->verify && !t->ca && !t->sni && !t->cert && !t->key)
		return;
	fprintf(out, "    tls:\n      verify: %s\n", t->verify ? "true" : "false");
	if (t->ca != NULL)
		moat_conf_put_key_string(out, "      ", "ca", t->ca);
	if (t->sni != NULL)
		moat_conf_put_key_string(out, "      ", "sni", t->sni);
	if (t->cert != NULL)
		moat_conf_put_key_string(out, "      ", "cert", t->cert);
	if (t->key != NULL)
		moat_conf_put_key_string(out, "      ", "key", t->key);
}

static int tls_eq(const struct moat_conf_tls *a, const struct moat_conf_tls *b)
{
	size_t i;

	if (a->on != b->on || a->ncerts != b->ncerts || a->min_version != b->min_version || a->h2 != b->h2 ||
	    a->session_tickets != b->session_tickets || a->client_verify != b->client_verify ||
	    a->hsts_max_age != b->hsts_max_age || a->hsts_subdomains != b->hsts_subdomains ||
	    a->hsts_preload != b->hsts_preload)
		return 0;
	if (!moat_conf_str_eq(a->ciphers, b->ciphers) || !moat_conf_str_eq(a->ciphersuites, b->ciphersuites) ||
	    !moat_conf_str_eq(a->groups, b->groups) || !moat_conf_str_eq(a->client_ca, b->client_ca) ||
	    !moat_conf_str_eq(a->client_header, b->client_header))
		return 0;
	for (i = 0; i < a->ncerts; i++)
		if (!moat_conf_str_eq(a->certs[i].cert, b->certs[i].cert) ||
		    !moat_conf_str_eq(a->certs[i].key, b->certs[i].key) ||
		    !moat_conf_str_eq(a->certs[i].ocsp, b->certs[i].ocsp))
			return 0;
	return 1;
}

static int upstream_tls_eq(const struct moat_conf_upstream_tls *a, const struct moat_conf_upstream_tls *b)
{
	return a->verify == b->verify && moat_conf_str_eq(a->ca, b->ca) && moat_conf_str_eq(a->sni, b->sni) &&
	       moat_conf_str_eq(a->cert, b->cert) && moat_conf_str_eq(a->key, b->key);
}

int moat_conf_tls_equal(const struct moat_conf *a, const struct moat_conf *b)
{
	size_t i, j;

	for (i = 0; i < a->nlisteners; i++) {
		const struct moat_conf_listener *x = &a->listeners[i], *y = &b->listeners[i];

		if (x->h2c != y->h2c || x->redirect_https != y->redirect_https || !tls_eq(&x->tls, &y->tls))
			return 0;
	}
	for (i = 0; i < a->nupstreams; i++) {
		const struct moat_conf_upstream *x = &a->upstreams[i], *y = &b->upstreams[i];

		if (!upstream_tls_eq(&x->tls, &y->tls))
			return 0;
		for (j = 0; j < x->nservers; j++)
			if (x->servers[j].scheme != y->servers[j].scheme)
				return 0;
	}
	return 1;
}
