/*
 * acl_mod.c - the "acl" module: allow / deny lists by address.
 *
 * A listener's list is checked when a connection is admitted (its address
 * known, after a PROXY header): a denied client is closed before anything
 * is read. A route's list is checked against the client address of each
 * request (trusted proxies applied): 403. The lists are compiled into
 * prefix tries by the configuration (conf/conf_guard.c); the most
 * specific block decides.
 */
#include <string.h>

#include "conf/conf.h"
#include "mod/acl/acl_mod.h"
#include "proxy/phase.h"

static int acl_admit(void *state, const struct moat_conf *conf, const struct moat_conf_listener *l,
		     const struct sockaddr *client, uint64_t now_ms, struct moat_mod_reply *r)
{
	(void)state;
	(void)conf;
	(void)now_ms;
	if (l == NULL || moat_conf_acl_allows(&l->acl, client))
		return 0;
	r->refusal = MOAT_REFUSE_ACL;
	r->why = "denied by the listener's address list";
	return -1;
}

static enum moat_mod_verdict acl_request(struct moat_mod_req *q)
{
	struct moat_mod_reply *r = q->reply;

	if (q->h == NULL || moat_conf_acl_allows(&q->route->acl, q->client))
		return MOAT_MOD_NEXT;
	r->status = 403;
	r->refusal = MOAT_REFUSE_ACL;
	r->offense = MOAT_OFFENSE_ACL;
	r->why = "denied by the route's address list";
	return MOAT_MOD_REFUSE;
}

/* A route without allow/deny blocks allows everyone. */
static int acl_route_on(const struct moat_conf_route *r)
{
	return r->acl.trie != NULL;
}

const struct moat_mod moat_mod_acl = {
	.name = "acl",
	.admit = acl_admit,
	.route_on = acl_route_on,
	.request = acl_request,
};
