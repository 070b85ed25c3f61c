/*
 * modsec.h - moat's WAF engine: ModSecurity v3 (libmodsecurity) running the
 * OWASP Core Rule Set on a request's head and (the first body_limit bytes
 * of) its body.
 *
 * Where it sits: the waf module calls moat_waf_check() once per request,
 * synchronously on the worker thread, when the head and the inspected part
 * of the body are in; the verdict says whether to refuse the request. No
 * I/O happens on that path: no sockets, no files, no clock.
 *
 * What it owns: a struct moat_waf is one loaded rule set (a ModSecurity
 * instance and its RulesSet). The control thread builds it, the config
 * snapshot owns it, every worker shares it read-only, and the control
 * thread frees it after the last worker has let go of the snapshot.
 *
 * Only the request rules (REQUEST-9xx) are loaded: moat does not hand
 * response bodies to the WAF, so the RESPONSE-95x data-leakage rules, the
 * outbound score (959) and the correlation rules (980) would never run.
 * modsec.c's opening comment lists what moat changes in the CRS and why,
 * and what is and is not thread-safe in libmodsecurity 3.0.9.
 */
#ifndef MOAT_MOD_WAF_MODSEC_H
#define MOAT_MOD_WAF_MODSEC_H

#include <stddef.h>

/* Rule ids of moat's own rules (ModSecurity's 200000 range, as in
 * modsecurity.conf-recommended; the CRS keeps 900000-999999). */
#define MOAT_WAF_RULE_JSON      200001u /* application/json bodies: JSON processor */
#define MOAT_WAF_RULE_REQBODY   200002u /* body that fails to parse: 400 */
#define MOAT_WAF_RULE_MULTIPART 200003u /* multipart body failing strict checks: 400 */
#define MOAT_WAF_RULE_SCORE     200090u /* internal: reports the inbound score */

/* CRS 949110: the inbound anomaly score reached the threshold. */
#define MOAT_WAF_RULE_CRS_BLOCK 949110u

/* What to load and how strict to be. Borrowed by moat_waf_new() for the
 * length of the call only. */
struct moat_waf_conf {
	int detect_only;            /* 1: log, never block (SecRuleEngine DetectionOnly) */
	unsigned paranoia;          /* CRS paranoia level 1..4 */
	unsigned anomaly_threshold; /* inbound anomaly score that blocks (CRS default 5); >= 1 */
	size_t body_limit;          /* request body bytes inspected; more is passed
	                             * uninspected (ProcessPartial); 0: bodies are
	                             * not inspected at all */
	const char *crs_dir;        /* NULL: Debian's /usr/share/modsecurity-crs (rules/)
	                             * with /etc/modsecurity/crs/crs-setup.conf and the
	                             * optional exclusion files beside it; else a CRS
	                             * tree: crs_dir/crs-setup.conf (or its .example)
	                             * and crs_dir/rules/REQUEST-*.conf */
};

/* A loaded rule set: built once on the control thread, then shared
 * read-only by workers. Opaque. */
struct moat_waf;

/*
 * Loads the CRS as owasp-crs.load does (crs-setup, the optional
 * REQUEST-900 exclusions, rules/REQUEST-*.conf in name order, the optional
 * RESPONSE-999 exclusions) with moat's settings from c around it.
 * Reads files; writes none; needs no privileges. Returns the rule set, or
 * NULL with *err a malloc'd message the caller frees ("cannot load CRS
 * rules from <file>: <ModSecurity's message>", or what was wrong with c).
 * Control thread only: ModSecurity's rule parser is not thread-safe, so
 * loads (and frees) are serialised by a process-wide lock anyway. Takes
 * some 50 ms for the CRS 3.3. Rule sets may coexist (a reload builds the
 * new one before freeing the old).
 */
struct moat_waf *moat_waf_new(const struct moat_waf_conf *c, char **err);

/* Frees a rule set (NULL is a no-op). No moat_waf_check() may be running
 * on it or start on it. Control thread. */
void moat_waf_free(struct moat_waf *w);

/* One request header, borrowed: name and value point into the caller's
 * request head, not NUL-terminated. */
struct moat_waf_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * One request, borrowed for the length of moat_waf_check(). Strings with a
 * length point into the caller's request head and need no NUL; the others
 * are C strings. HTTP/2 requests give :authority as a Host header.
 */
struct moat_waf_req {
	const char *client_ip;      /* "192.0.2.1" (REMOTE_ADDR); NULL: "0.0.0.0" */
	unsigned client_port;
	const char *server_ip;      /* the address the request came in on; NULL: "0.0.0.0" */
	unsigned server_port;
	const char *method;
	size_t method_len;
	const char *uri;            /* raw request target, as received */
	size_t uri_len;
	const char *version;        /* "1.1", "1.0", "2.0" */
	const struct moat_waf_header *headers;
	size_t nheaders;
	const char *body;           /* at most body_limit bytes (more is cut off) */
	size_t body_len;
	int body_complete;          /* 1: body is the whole body. 0: the body went on
	                             * past body_len; the caller stopped at
	                             * body_limit, and the rest is not inspected */
};

/* The outcome of one check, filled by moat_waf_check(); owned by the caller. */
struct moat_waf_verdict {
	int block;                  /* 1: refuse (never in detect_only) */
	int status;                 /* status to answer with when blocking (403;
	                             * 400 for a body that does not parse); 0 when
	                             * not blocking */
	unsigned rule_id;           /* the rule that decided: the one that refused,
	                             * else 949110 if the score reached the threshold
	                             * (detect_only), else the first rule that
	                             * matched; 0 if none */
	unsigned score;             /* inbound anomaly score (0 if nothing matched) */
	char msg[256];              /* short human text: the message of the first
	                             * attack rule that matched ("SQL Injection
	                             * Attack Detected via libinjection"), else of
	                             * the rule that decided; "" if none */
	char matched[512];          /* ids of the rules that matched, in order, each
	                             * once: "942100,949110" (ids that do not fit are
	                             * left out whole) */
};

/*
 * Runs the request rules (phases 1 and 2) on r and fills v. Returns 0 (v
 * says whether to refuse), or a negative errno on an internal failure
 * (-ENOMEM; -EINVAL for a NULL argument): then v says nothing and the
 * caller must fail closed, answering 500 (in detect_only it may let the
 * request through and count the failure instead).
 *
 * A target or method holding a NUL byte cannot be handed to ModSecurity
 * whole; such a request is refused with 400 (rule_id 0) without running
 * the rules (detect_only: only reported in msg).
 *
 * rule_id, msg and matched come from ModSecurity's log lines, which also
 * quote client-controlled text; the parser anchors on a per-transaction id
 * that clients never see, but a crafted request may still at worst change
 * which id or text is reported (or overstate the score). block and status
 * never depend on that text: they come from ModSecurity's intervention.
 *
 * Thread-safe: any number of workers may check requests on the same w at
 * once. Pure of I/O; allocates (libmodsecurity does, a lot). Costly, and
 * the cost grows with what the client sends: on one core of the test
 * machine, paranoia 1, about 1.5 ms for a GET with a browser's headers,
 * 45 ms for a 16 KiB form of 400 fields, 300 ms for 16 KiB of 2,000
 * empty fields. body_limit bounds it; keep it to what forms need.
 */
int moat_waf_check(struct moat_waf *w, const struct moat_waf_req *r, struct moat_waf_verdict *v);

#endif
