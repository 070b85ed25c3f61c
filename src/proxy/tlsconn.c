/*
 * tlsconn.c - TLS in the proxy: the contexts of a config generation, the
 * TLS transport under a conn's moat_io, and the client side's handshake
 * state (MOAT_C_TLS).
 *
 * Contexts are built with the generation (a reload with a broken
 * certificate is refused at the certificate's config position, and the
 * running generation keeps serving); a connection holds a reference to the
 * context it was accepted with, so retiring a generation never cuts a
 * handshake or a session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/io.h"
#include "proxy/proxy.h"
#include "tls/tls.h"

/* ---- the transport ---- */

static ssize_t tls_x_read(void *x, struct moat_io *io, char *p, size_t n)
{
	ssize_t r = moat_tls_read(x, p, n);

	if (r > 0) {
		/* the socket was drained by this read: its next edge says
		 * when more comes (unless the FIN was reported already) */
		if ((size_t)r < n && !io->hup && moat_tls_drained(x))
			io->can_read = 0;
		return r;
	}
	if (r == 0) {
		io->eof = 1;
		io->can_read = 0;
		return 0;
	}
	if (r == MOAT_TLS_WANT_READ) {
		io->can_read = 0;
		return 0;
	}
	if (r == MOAT_TLS_WANT_WRITE) {
		/* a record to send first (a key update): wait for writable */
		io->can_read = 0;
		io->rd_wants_wr = 1;
		return 0;
	}
	return -EIO;
}

static ssize_t tls_x_write(void *x, struct moat_io *io, const char *p, size_t n)
{
	ssize_t r = moat_tls_write(x, p, n);

	if (r > 0)
		return r;
	if (r == MOAT_TLS_WANT_WRITE || r == MOAT_TLS_WANT_READ) {
		io->can_write = 0;
		return 0;
	}
	return -EPIPE;
}

static void tls_x_shutdown(void *x, struct moat_io *io)
{
	moat_tls_shutdown(x);
}

const struct moat_xport moat_tls_xport = {
	.read = tls_x_read,
	.write = tls_x_write,
	.shutdown = tls_x_shutdown,
};

/* ---- contexts per generation ---- */

static char *pos_error(const struct moat_conf *conf, struct moat_conf_pos pos, const char *what, char *why)
{
	size_t n = strlen(why) + strlen(what) + 256 + (conf->file ? strlen(conf->file) : 1);
	char *m = malloc(n);

	if (m)
		snprintf(m, n, "%s:%u:%u: %s: %s", conf->file ? conf->file : "-", pos.line, pos.col, what, why);
	free(why);
	return m;
}

static struct moat_tls_server *build_server(const struct moat_conf *conf, const struct moat_conf_tls *tc, char **why)
{
	struct moat_tls_cert_opts certs[64];
	struct moat_tls_server_opts o;
	struct moat_tls_server *s;
	size_t n = tc->ncerts < 64 ? tc->ncerts : 64;

	memset(&o, 0, sizeof(o));
	for (size_t i = 0; i < n; i++) {
		certs[i].cert = tc->certs[i].cert;
		certs[i].key = tc->certs[i].key;
		certs[i].ocsp = tc->certs[i].ocsp;
	}
	o.certs = certs;
	o.ncerts = n;
	o.min_version = tc->min_version;
	o.ciphers = tc->ciphers;
	o.ciphersuites = tc->ciphersuites;
	o.groups = tc->groups;
	o.h2 = tc->h2;
	o.session_tickets = tc->session_tickets;
	o.client_ca = tc->client_ca;
	o.client_verify = tc->client_verify == MOAT_TLS_VERIFY_OPTIONAL ? MOAT_TLS_CLIENT_OPTIONAL :
			  tc->client_verify == MOAT_TLS_VERIFY_REQUIRED ? MOAT_TLS_CLIENT_REQUIRED :
									  MOAT_TLS_CLIENT_OFF;
	if (!tc->client_ca)
		o.client_verify = MOAT_TLS_CLIENT_OFF;
	s = moat_tls_server_new(&o, why);
	if (!s && *why)
		*why = pos_error(conf, tc->pos, "tls", *why);
	return s;
}

static int upstream_needs_tls(const struct moat_conf_upstream *u)
{
	for (size_t i = 0; i < u->nservers; i++)
		if (u->servers[i].scheme == MOAT_SCHEME_HTTPS || u->servers[i].scheme == MOAT_SCHEME_H2)
			return 1;
	return 0;
}

static int upstream_h2_only(const struct moat_conf_upstream *u)
{
	for (size_t i = 0; i < u->nservers; i++)
		if (u->servers[i].scheme == MOAT_SCHEME_HTTPS)
			return 0;
	return 1;
}

#define CERT_FIELD_DEFAULT "X-Client-Cert-Subject"

/* Adds `name` lowercased to the generation's client-certificate fields
 * unless there; -1 when out of memory. */
static int cert_field_add(struct moat_confref *r, const char *name)
{
	size_t n = strlen(name);
	char *l;

	for (size_t i = 0; i < r->ncert_fields; i++)
		if (r->cert_field_len[i] == n && strncasecmp(r->cert_fields[i], name, n) == 0)
			return 0;
	l = malloc(n + 1);
	if (!l)
		return -1;
	for (size_t i = 0; i <= n; i++)
		l[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	r->cert_fields[r->ncert_fields] = l;
	r->cert_field_len[r->ncert_fields++] = n;
	return 0;
}

int moat_tls_gen_build(struct moat_confref *r, char **why)
{
	const struct moat_conf *conf = r->conf;

	*why = NULL;
	r->cert_fields = calloc(conf->nlisteners + 1, sizeof(*r->cert_fields));
	r->cert_field_len = calloc(conf->nlisteners + 1, sizeof(*r->cert_field_len));
	if (!r->cert_fields || !r->cert_field_len || cert_field_add(r, CERT_FIELD_DEFAULT) < 0)
		goto fail;
	for (size_t i = 0; i < conf->nlisteners; i++)
		if (conf->listeners[i].tls.on && conf->listeners[i].tls.client_header &&
		    cert_field_add(r, conf->listeners[i].tls.client_header) < 0)
			goto fail;
	if (conf->nlisteners) {
		r->tls_srv = calloc(conf->nlisteners, sizeof(*r->tls_srv));
		if (!r->tls_srv)
			goto fail;
	}
	for (size_t i = 0; i < conf->nlisteners; i++) {
		const struct moat_conf_listener *l = &conf->listeners[i];

		if (l->redirect_https)
			r->any_redirect = 1;
		if (!l->tls.on)
			continue;
		r->tls_srv[i] = build_server(conf, &l->tls, why);
		if (!r->tls_srv[i])
			goto fail;
	}
	if (conf->nupstreams) {
		r->tls_cli = calloc(conf->nupstreams, sizeof(*r->tls_cli));
		if (!r->tls_cli)
			goto fail;
	}
	for (size_t i = 0; i < conf->nupstreams; i++) {
		const struct moat_conf_upstream *u = &conf->upstreams[i];
		struct moat_tls_client_opts o;

		if (!upstream_needs_tls(u))
			continue;
		memset(&o, 0, sizeof(o));
		o.verify = u->tls.verify;
		o.ca = u->tls.ca;
		o.cert = u->tls.cert;
		o.key = u->tls.key;
		/* one context per upstream: ALPN h2 when every TLS server is h2:// */
		o.h2 = upstream_h2_only(u);
		r->tls_cli[i] = moat_tls_client_new(&o, why);
		if (!r->tls_cli[i]) {
			if (*why)
				*why = pos_error(conf, u->tls.pos.line ? u->tls.pos : u->pos, "upstream tls", *why);
			goto fail;
		}
	}
	return 0;
fail:
	moat_tls_gen_free(r);
	return -1;
}

void moat_tls_gen_free(struct moat_confref *r)
{
	for (size_t i = 0; r->cert_fields && i < r->ncert_fields; i++)
		free(r->cert_fields[i]);
	free(r->cert_fields);
	free(r->cert_field_len);
	r->cert_fields = NULL;
	r->cert_field_len = NULL;
	r->ncert_fields = 0;
	if (r->tls_srv) {
		for (size_t i = 0; i < r->conf->nlisteners; i++)
			if (r->tls_srv[i])
				moat_tls_server_free(r->tls_srv[i]);
		free(r->tls_srv);
		r->tls_srv = NULL;
	}
	if (r->tls_cli) {
		for (size_t i = 0; i < r->conf->nupstreams; i++)
			if (r->tls_cli[i])
				moat_tls_client_free(r->tls_cli[i]);
		free(r->tls_cli);
		r->tls_cli = NULL;
	}
}

/* ---- the client's handshake ---- */

int moat_client_run_tls(struct moat_client *c)
{
	int rc;

	if (!moat_tls_clienthello(c->tls) && c->requests == 0) {
		rc = moat_tls_peek_hello(c->tls);
		/* the rest of the ClientHello: next readable edge; but after
		 * the peer's FIN no edge comes (a peek sees the same bytes
		 * again): the handshake reads them and meets the EOF */
		if (rc == 0 && !c->io.hup)
			return 0;
		if (rc < 0) {
			moat_client_close(c);
			return -1;
		}
	}
	c->requests = 1; /* the hello was looked at (reset below) */
	rc = moat_tls_handshake(c->tls);
	if (rc == MOAT_TLS_WANT_READ) {
		c->io.can_read = 0;
		return 0;
	}
	if (rc == MOAT_TLS_WANT_WRITE) {
		c->io.can_write = 0;
		return 0;
	}
	if (rc < 0) {
		char buf[256];

		MOAT_STAT_INC(c->w->stats.refusals[MOAT_REFUSE_TLS]);
		moat_client_log_refusal(c, 0, moat_tls_error(c->tls, buf, sizeof(buf)));
		moat_client_close(c);
		return -1;
	}
	c->requests = 0;
	MOAT_STAT_INC(c->w->stats.tls_handshakes);
	if (moat_tls_resumed(c->tls))
		MOAT_STAT_INC(c->w->stats.tls_resumed);
	c->io.xp = &moat_tls_xport;
	c->io.xa = c->tls;
	/* OpenSSL may hold application bytes read with the handshake */
	c->io.can_read = 1;
	if (strcmp(moat_tls_alpn(c->tls), "h2") == 0)
		return moat_h2conn_start(c) < 0 ? -1 : 1;
	/* the first request head is due within client_header, as on a
	 * cleartext connection (not keepalive: nothing was asked yet) */
	c->state = MOAT_C_HEAD;
	c->head_deadline = c->w->loop.now_ms + c->w->conf->ref->conf->timeouts.client_header;
	c->head_deadline_set = 1;
	return 1;
}

const struct moat_conf_listener *moat_client_listener(const struct moat_client *c, const struct moat_conf *conf)
{
	const struct moat_worker *w = c->w;
	const struct moat_listener *l = NULL;

	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i] == c->lst)
			l = c->lst;
	if (!l)
		return NULL;
	for (size_t i = 0; i < conf->nlisteners; i++)
		if (conf->listeners[i].addr.len == l->addrlen &&
		    memcmp(&conf->listeners[i].addr.ss, &l->addr, l->addrlen) == 0)
			return &conf->listeners[i];
	return NULL;
}
