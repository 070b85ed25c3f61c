/*
 * ban_mod.c - the "bans" module: clients that offend too often are
 * banned for a while (bans:), and the operator lists, adds and lifts bans
 * through the admin API (/api/bans).
 *
 * The ban table (bantable.c) belongs to the process: bans survive
 * reloads. A banned peer is closed when its connection is admitted,
 * before anything is read; a banned client behind a trusted proxy is
 * answered 403 per request. Offenses are what other modules and the proxy
 * report (malformed heads, rate-limit refusals, WAF blocks, deny lists,
 * 4xx answers), counted when bans.on names them and the client is not in
 * bans.exempt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/cidr.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "mod/ban/ban_mod.h"
#include "mod/ban/bantable.h"
#include "proxy/phase.h"

static int ban_start(const struct moat_conf *conf, void **state)
{
	(void)conf;
	*state = moat_bans_new(MOAT_BAN_TABLE_ENTRIES);
	return *state ? 0 : -ENOMEM;
}

static void ban_stop(void *state)
{
	moat_bans_free(state);
}

static int ban_admit(void *state, const struct moat_conf *conf, const struct moat_conf_listener *l,
		     const struct sockaddr *client, uint64_t now_ms, struct moat_mod_reply *r)
{
	unsigned char a[16];

	(void)conf;
	(void)l;
	if (moat_bans_active(state) == 0)
		return 0;
	moat_ban_addr_from_sockaddr(client, a);
	if (!moat_bans_check(state, a, now_ms))
		return 0;
	r->refusal = MOAT_REFUSE_BANNED;
	r->why = "banned";
	return -1;
}

static enum moat_mod_verdict ban_request(struct moat_mod_req *q)
{
	unsigned char a[16];

	/* the peer was checked at admission; a client behind a trusted
	 * proxy is only known now */
	if (q->h == NULL || moat_bans_active(q->state) == 0)
		return MOAT_MOD_NEXT;
	moat_ban_addr_from_sockaddr(q->client, a);
	if (!moat_bans_check(q->state, a, q->now_ms))
		return MOAT_MOD_NEXT;
	q->reply->status = 403;
	q->reply->refusal = MOAT_REFUSE_BANNED;
	q->reply->why = "banned";
	return MOAT_MOD_REFUSE;
}

static void ban_offense(void *state, const struct moat_conf *conf, const struct sockaddr *client, int offense,
			uint64_t now_ms)
{
	const struct moat_conf_bans *b = &conf->bans;
	struct moat_ban_policy p;
	unsigned char a[16];
	uint64_t until = 0, now = now_ms;
	char ip[INET6_ADDRSTRLEN];

	if (!b->enabled || offense < 0 || offense >= MOAT_OFFENSE_COUNT || !(b->on & (1u << offense)))
		return;
	if (b->nexempt && moat_conf_cidr_match(b->exempt, b->nexempt, client))
		return;
	/* A trusted proxy speaks for many clients: what comes through it
	 * counts against the client it names, never against the proxy
	 * (whose ban would close every client behind it). */
	if (conf->trusted_trie && moat_cidr_trie_lookup(conf->trusted_trie, client) == 1)
		return;
	p.threshold = b->threshold;
	p.window_ms = b->window_ms;
	p.duration_ms = b->duration_ms;
	p.max_duration_ms = b->max_duration_ms;
	moat_ban_addr_from_sockaddr(client, a);
	if (moat_bans_offend(state, &p, a, (unsigned)offense, now, &until) == 1) {
		if (a[0] == 0 && a[10] == 0xff && a[11] == 0xff)
			inet_ntop(AF_INET, a + 12, ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, a, ip, sizeof(ip));
		MOAT_WARN("%s: banned for %llus after %u offenses within %llus (last: %s)", ip,
			  (unsigned long long)((until - now + 999) / 1000), b->threshold,
			  (unsigned long long)(b->window_ms / 1000), moat_conf_offense_names[offense]);
	}
}

/* ---- admin API: /api/bans ---- */

static void put(struct moat_buf *out, const char *s)
{
	moat_buf_append(out, s, strlen(s));
}

struct list_ctx {
	struct moat_buf *out;
	uint64_t now_ms;
	int64_t wall_s;
	unsigned n;
};

static void addr_text(const unsigned char a[16], char *ip, size_t len)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (memcmp(a, mapped, 12) == 0)
		inet_ntop(AF_INET, a + 12, ip, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, ip, (socklen_t)len);
}

static void list_one(void *ctx, const unsigned char addr[16], uint64_t until_ms, unsigned count, unsigned reason)
{
	struct list_ctx *l = ctx;
	char ip[INET6_ADDRSTRLEN], line[256];
	uint64_t left = until_ms > l->now_ms ? until_ms - l->now_ms : 0;

	addr_text(addr, ip, sizeof(ip));
	snprintf(line, sizeof(line),
		 "%s{\"ip\":\"%s\",\"until\":%lld,\"remaining_s\":%llu,\"count\":%u,\"reason\":\"%s\"}",
		 l->n++ ? "," : "", ip, (long long)(l->wall_s + (int64_t)((left + 999) / 1000)),
		 (unsigned long long)((left + 999) / 1000), count,
		 reason < MOAT_OFFENSE_COUNT ? moat_conf_offense_names[reason] : "manual");
	put(l->out, line);
}

/* "1.2.3.4" or "2001:db8::1" into the table's 16-byte form. */
static int parse_ip(const char *s, size_t n, unsigned char a[16])
{
	char buf[64];
	struct in_addr v4;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(a, 0, 16);
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, buf, a) == 1 ? 0 : -1;
}

/* The string value of "key" in a flat JSON object (no escapes needed for
 * addresses and durations). */
static int json_string(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
	char pat[32];
	const char *p, *end = body + len, *q;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = memmem(body, len, pat, strlen(pat));
	if (!p)
		return -1;
	p += strlen(pat);
	while (p < end && (*p == ' ' || *p == ':' || *p == '\t'))
		p++;
	if (p >= end || *p != '"')
		return -1;
	q = memchr(p + 1, '"', (size_t)(end - p - 1));
	if (!q || (size_t)(q - p - 1) >= outlen)
		return -1;
	memcpy(out, p + 1, (size_t)(q - p - 1));
	out[q - p - 1] = '\0';
	return 0;
}

static int ban_admin(void *state, const char *method, const char *path, const char *body, size_t body_len,
		     struct moat_buf *out)
{
	unsigned char a[16];
	char ip[64], dur[32], line[160];

	if (strcmp(method, "GET") == 0 && (path[0] == '\0' || path[0] == '?')) {
		struct list_ctx l = { out, moat_clock_ms(), (int64_t)time(NULL), 0 };

		put(out, "{\"bans\":[");
		moat_bans_list(state, l.now_ms, list_one, &l);
		put(out, "]}\n");
		return 200;
	}
	if (strcmp(method, "DELETE") == 0 && path[0] == '/') {
		if (parse_ip(path + 1, strlen(path + 1), a) < 0) {
			put(out, "{\"error\":\"expected /api/bans/<IPv4 or IPv6 address>\"}\n");
			return 400;
		}
		if (!moat_bans_lift(state, a)) {
			put(out, "{\"error\":\"not banned\"}\n");
			return 404;
		}
		put(out, "{\"lifted\":true}\n");
		MOAT_INFO("admin: ban of %s lifted", path + 1);
		return 200;
	}
	if (strcmp(method, "POST") == 0 && path[0] == '\0') {
		uint64_t ms = 10 * 60 * 1000;

		if (json_string(body, body_len, "ip", ip, sizeof(ip)) < 0 || parse_ip(ip, strlen(ip), a) < 0) {
			put(out, "{\"error\":\"expected {\\\"ip\\\": \\\"ADDRESS\\\", \\\"duration\\\": \\\"10m\\\"}\"}\n");
			return 400;
		}
		if (json_string(body, body_len, "duration", dur, sizeof(dur)) == 0 &&
		    (moat_conf_parse_duration(dur, &ms) < 0 || ms == 0)) {
			put(out, "{\"error\":\"duration: expected a duration like \\\"10m\\\"\"}\n");
			return 400;
		}
		if (moat_bans_add(state, a, moat_clock_ms(), ms, MOAT_OFFENSE_COUNT) < 0) {
			put(out, "{\"error\":\"the ban table is full\"}\n");
			return 503;
		}
		snprintf(line, sizeof(line), "{\"banned\":\"%s\",\"duration_s\":%llu}\n", ip,
			 (unsigned long long)(ms / 1000));
		put(out, line);
		MOAT_INFO("admin: %s banned for %llus", ip, (unsigned long long)(ms / 1000));
		return 200;
	}
	put(out, "{\"error\":\"use GET /api/bans, POST /api/bans or DELETE /api/bans/ADDRESS\"}\n");
	return 405;
}

const struct moat_mod moat_mod_ban = {
	.name = "bans",
	.start = ban_start,
	.stop = ban_stop,
	.admit = ban_admit,
	.request = ban_request,
	.offense = ban_offense,
	.admin = ban_admin,
};
