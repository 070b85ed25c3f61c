/*
 * conf_admin.c - the "admin" section: where the admin listener (JSON API,
 * /metrics, dashboard) listens, its optional bearer token, and which peers
 * besides loopback may use it; the check that it does not take a traffic
 * listener's address; and --admin of the one-line mode.
 *
 *   admin:
 *     listen: 127.0.0.1:9901            # or "unix:/run/moat/admin.sock"
 *     token: s3cret                     # optional
 *     allow: [10.0.0.0/8]               # optional, besides loopback
 *
 * Everything here fills the snapshot's `admin` member (conf.h), which the
 * snapshot owns; printing, equality and freeing are in conf.c with the
 * rest of the snapshot.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_yaml.h"
#include "core/limits.h"

#define ADMIN_LISTEN_FORM \
	"an address like \"127.0.0.1:9901\", \"[::1]:9901\" or \"unix:/run/moat/admin.sock\""
#define ADMIN_UNIX_PREFIX "unix:"
/* Longest token accepted: far more than any sane secret, short enough to
 * fit a request head. */
#define ADMIN_TOKEN_MAX 1024u

/* ---- pure parts, shared with the one-line mode ------------------------------ */

int moat_conf_admin_parse_listen(const char *s, struct moat_conf_admin *a, char *why, size_t whylen)
{
	struct sockaddr_un sun;
	size_t plen = strlen(ADMIN_UNIX_PREFIX), i, n;

	free(a->addr.text);
	free(a->unix_path);
	memset(&a->addr, 0, sizeof a->addr);
	a->unix_path = NULL;
	if (strncmp(s, ADMIN_UNIX_PREFIX, plen) != 0)
		return moat_conf_parse_listen(s, &a->addr, why, whylen);
	s += plen;
	n = strlen(s);
	if (n == 0) {
		snprintf(why, whylen, "a unix socket needs a path after \"unix:\"");
		return MOAT_CONF_ESYNTAX;
	}
	if (n >= sizeof sun.sun_path) {
		snprintf(why, whylen, "a unix socket path has at most %zu bytes, got %zu",
			 sizeof sun.sun_path - 1, n);
		return MOAT_CONF_EVALUE;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(why, whylen, "a unix socket path cannot hold control characters");
			return MOAT_CONF_EVALUE;
		}
	}
	if (s[n - 1] == '/') {
		snprintf(why, whylen, "a unix socket path names a file, not a directory");
		return MOAT_CONF_EVALUE;
	}
	a->unix_path = strdup(s);
	a->addr.text = malloc(plen + n + 1);
	if (a->unix_path == NULL || a->addr.text == NULL) {
		free(a->unix_path);
		free(a->addr.text);
		a->unix_path = NULL;
		a->addr.text = NULL;
		return MOAT_CONF_ENOMEM;
	}
	memcpy(a->addr.text, ADMIN_UNIX_PREFIX, plen);
	memcpy(a->addr.text + plen, s, n + 1);
	return 0;
}

static int is_any(const struct sockaddr_storage *ss)
{
	static const unsigned char zero[16];

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)ss)->sin_addr.s_addr == 0;
	if (ss->ss_family == AF_INET6)
		return memcmp(((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr.s6_addr, zero, 16) == 0;
	return 0;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
	return 0;
}

long moat_conf_admin_conflict(const struct moat_conf *c)
{
	const struct moat_conf_admin *a = &c->admin;
	size_t i;

	if (!a->enabled || a->unix_path != NULL || a->addr.text == NULL)
		return -1;
	for (i = 0; i < c->nlisteners; i++) {
		const struct moat_conf_addr *l = &c->listeners[i].addr;

		if (l->text == NULL || l->ss.ss_family != a->addr.ss.ss_family)
			continue;
		if (moat_conf_addr_equal(l, &a->addr))
			return (long)i;
		/* a wildcard on either side takes the port on every address */
		if (port_of(&l->ss) == port_of(&a->addr.ss) && (is_any(&l->ss) || is_any(&a->addr.ss)))
			return (long)i;
	}
	return -1;
}

int moat_conf_set_admin(struct moat_conf *c, const char *listen, struct moat_conf_errors *err)
{
	char why[256], q[128];
	long li;
	int rc;

	if (listen == NULL)
		listen = "";
	rc = moat_conf_admin_parse_listen(listen, &c->admin, why, sizeof why);
	moat_conf_quote(listen, strlen(listen), 64, q, sizeof q);
	if (rc == MOAT_CONF_ESYNTAX) {
		moat_conf_errorf(err, "--admin: expected %s, got %s (%s)", ADMIN_LISTEN_FORM, q, why);
		return -1;
	}
	if (rc == MOAT_CONF_ENOMEM) {
		moat_conf_errorf(err, "--admin: out of memory");
		return -1;
	}
	if (rc < 0) {
		moat_conf_errorf(err, "--admin: %s", why);
		return -1;
	}
	c->admin.enabled = 1;
	li = moat_conf_admin_conflict(c);
	if (li >= 0) {
		moat_conf_errorf(err, "--admin: %s is also the address of --from; the admin listener needs one of its own",
				 q);
		return -1;
	}
	return 0;
}

/* ---- the keys ---------------------------------------------------------------- */

static void set_admin_listen(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_admin *a = obj;
	char why[256], got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, ADMIN_LISTEN_FORM);
	int rc;

	if (v == NULL)
		return;
	rc = moat_conf_admin_parse_listen(v, a, why, sizeof why);
	if (rc == MOAT_CONF_ESYNTAX)
		moat_conf_yaml_error(ld, val, "expected %s, got %s (%s)", ADMIN_LISTEN_FORM, MOAT_CONF_GOT(val),
				     why);
	else if (rc == MOAT_CONF_EVALUE)
		moat_conf_yaml_error(ld, val, "%s", why);
	else if (rc < 0)
		moat_conf_yaml_oom(ld, val);
	a->addr.pos = moat_conf_yaml_pos(val);
}

static void set_admin_token(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_admin *a = obj;
	const char *v = moat_conf_yaml_scalar(ld, val, "a token of visible ASCII characters");
	size_t i, n;

	if (v == NULL)
		return;
	n = strlen(v);
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			break;
	/* the value is a secret: never echoed in a message */
	if (n == 0 || n > ADMIN_TOKEN_MAX || i < n) {
		moat_conf_yaml_error(ld, val,
				     "expected a token of 1 to %u visible ASCII characters (no spaces), as sent in "
				     "\"Authorization: Bearer TOKEN\"",
				     ADMIN_TOKEN_MAX);
		return;
	}
	moat_conf_yaml_set_string(ld, val, &a->token, v);
}

static void set_admin_allow(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf_admin *a = obj;

	moat_conf_set_cidrs(ld, val, &a->allow, &a->nallow);
}

enum { ADM_LISTEN, ADM_TOKEN, ADM_ALLOW };

static const struct moat_conf_key admin_keys[] = {
	[ADM_LISTEN] = { "listen", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_admin_listen, NULL, 0 },
	[ADM_TOKEN] = { "token", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_admin_token, NULL, 0 },
	[ADM_ALLOW] = { "allow", MOAT_CONF_K_CUSTOM, 0, 0, 0, set_admin_allow, NULL, 0 },
};

void moat_conf_schema_admin(struct moat_conf_loader *ld, yaml_node_t *val, void *obj)
{
	struct moat_conf *c = obj;

	c->admin.enabled = 1;
	moat_conf_yaml_walk_entry(ld, val, admin_keys, MOAT_CONF_NELEM(admin_keys), &c->admin, ADM_LISTEN,
				  "\"listen: 127.0.0.1:9901\"", NULL);
}

void moat_conf_schema_admin_check(struct moat_conf_loader *ld)
{
	const struct moat_conf *c = ld->c;
	const struct moat_conf_addr *l;
	long i = moat_conf_admin_conflict(c);

	if (i < 0)
		return;
	l = &c->listeners[i].addr;
	moat_conf_yaml_error_at(
	    ld, c->admin.addr.pos,
	    "admin.listen: \"%s\" takes the address of listeners[%ld] (\"%s\" at line %u, column %u); the admin "
	    "listener needs an address of its own",
	    c->admin.addr.text, i, l->text, l->pos.line, l->pos.col);
}
