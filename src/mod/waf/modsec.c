/*
 * modsec.c - the WAF engine: libmodsecurity 3 running the OWASP CRS on one
 * request at a time (see modsec.h).
 *
 * Loading. What owasp-crs.load does, in the same order, with moat's
 * settings around it (each file through msc_rules_add_file so that its
 * data files resolve beside it and errors name it):
 *   crs-setup.conf                   SecDefaultAction (anomaly scoring), 900990
 *   moat's head                      paranoia and threshold (setvar, as
 *                                    crs-setup.conf.example's 900000/900110 do,
 *                                    numbered 20001x so that a crs-setup that
 *                                    sets them too does not clash; loaded
 *                                    after it, so moat's values win), the
 *                                    XML and JSON body processors, body
 *                                    parse errors
 *   REQUEST-900-...BEFORE-CRS.conf   optional: the admin's exclusions
 *   rules/REQUEST-*.conf             in name order; RESPONSE-* are left out
 *                                    (moat does not hand response bodies to
 *                                    the WAF)
 *   RESPONSE-999-...AFTER-CRS.conf   optional: the admin's exclusions
 *   moat's tail                      engine settings (below), rules removed
 *                                    (below), and rule 200090 that reports the
 *                                    inbound score when it stays under the
 *                                    threshold
 * Engine settings: SecRuleEngine On or DetectionOnly, SecRequestBodyAccess
 * On, SecRequestBodyLimit body_limit with ProcessPartial, SecAuditEngine
 * Off, SecResponseBodyAccess Off, no uploaded file kept or saved, no XML
 * external entity loaded. Nothing is written to disk, at load or per
 * request: no audit or debug log, no temporary files, and no persistent
 * collection (this build of libmodsecurity has no LMDB; its collections
 * live in memory).
 *
 * What moat changes in the CRS, and why (SecRuleRemoveById):
 *   901318, 901321  initcol of the per-client IP and GLOBAL collections.
 *                   They are process-wide maps that in 3.0.9 grow without
 *                   bound (expirevar is not implemented) and are not safe
 *                   to read while another thread writes (below).
 *   910xxx, 912xxx  IP reputation (GeoIP, DNS block lists: I/O on the
 *                   request path) and DoS counting: both live in the IP
 *                   collection. moat's ratelimit and acl modules do this.
 *   949100          blocks on IP:REPUT_BLOCK_FLAG (the IP collection again).
 *   905100, 905110  Apache's "internal dummy connection" exceptions: they
 *                   turn the engine off for some requests from 127.0.0.1 or
 *                   ::1. moat has no such connections, and behind a local
 *                   TLS terminator every client comes from 127.0.0.1.
 *   920350          "Host header is a numeric IP address" (PL1, warning, 3
 *                   points): false positives on health checks, probes,
 *                   internal services and loopback (curl 127.0.0.1:8080). It
 *                   cannot block alone, but it lifts the score of every
 *                   such request towards the threshold.
 * Changed: tx.allowed_methods (911100) adds PUT PATCH DELETE to the CRS's
 * GET HEAD POST OPTIONS, as crs-setup.conf.example's 900200 suggests for
 * REST APIs: JSON APIs behind moat use them.
 * The rest of the CRS protocol policy stays as shipped and is part of the
 * rule set's contract: other methods score 5 (CONNECT, TRACE), request content
 * types form, multipart, XML and JSON (920420: a text/plain POST scores
 * 5), no restricted extensions or headers, Host present (920280).
 * Added (ModSecurity's range, as modsecurity.conf-recommended numbers them;
 * the CRS 3.3 leaves body processors to the engine's configuration):
 *   200000  Content-Type text/xml, application/xml or application/soap+xml
 *           -> XML body processor (the CRS reads XML bodies through the
 *           XML collection only: without it they would go unread)
 *   200001  Content-Type application/json (or +json) -> JSON body processor
 *   200002  a body that does not parse (REQBODY_ERROR) -> 400
 *   200003  a multipart body failing strict checks -> 400
 *   Both skip a body cut at body_limit (INBOUND_DATA_ERROR), as a prefix of
 *   a JSON, XML or multipart body never parses. What a cut body leaves to
 *   inspect: the fields of a form and the values of a JSON or XML body up
 *   to the cut; of a multipart body, nothing (ModSecurity keeps no part of
 *   one it cannot parse whole). That is what ProcessPartial means: past
 *   body_limit, and in a multipart body cut there, a client can put
 *   anything.
 *
 * Thread safety (libmodsecurity 3.0.9, as installed by Debian 12):
 *   - Loading rules is not thread-safe: the seclang parser keeps state in
 *     globals (ModSecurity issues #2536, #3138). Loads and frees are
 *     serialised by load_lock, and happen on the control thread.
 *   - Once loaded, one RulesSet shared by concurrent transactions on other
 *     threads is the supported model (maintainers in #2144, #2536; summary
 *     in #3215; the library's reading_logs_via_rule_message example runs
 *     100 threads on one RulesSet). A transaction owns its own state (TX
 *     collection, variables, body); operators keep none: @pm's Aho-Corasick
 *     tree is built at load (the optional --enable-mutex-on-pm lock is not
 *     needed, #1954, #3227) and PCRE2 match data is allocated per call.
 *   - The persistent collections (GLOBAL, IP, RESOURCE, SESSION, USER) are
 *     process-wide in-memory maps. In 3.0.9 their writes take a mutex but
 *     their reads do not (#3054, fixed in 3.0.13 by #3216; checked on the
 *     installed library: InMemoryPerProcess::storeOrUpdateFirst calls
 *     pthread_mutex_lock, resolveFirst and resolveMultiMatches call
 *     nothing), so a read racing a write is undefined. Hence the removals
 *     above: no rule left reads them. The only writes left are 913xxx's
 *     setvar:ip.reput_block_* (scanner detection), done under the library's
 *     mutex into one fixed key, and never read.
 *   - ModSecurity's destructor runs process-wide teardowns (libxml2's
 *     xmlCleanupParser(), curl_global_cleanup(), GeoIP's): with one
 *     instance per struct moat_waf, freeing the old rule set after a reload
 *     would pull libxml2's state from under workers parsing XML on the new
 *     one. So the process has one instance (shared_ms), made with the first
 *     rule set and destroyed with the last.
 *   - The log callback is set once on that instance and is handed the
 *     pointer given to msc_new_transaction_with_id(): each check passes its
 *     own stack context, so capturing needs no lock.
 *   - moat_waf_check() touches the struct moat_waf only to read it, and to
 *     bump an atomic counter for transaction ids.
 *
 * ModSecurity's messages. Every rule that logs calls the log callback with
 * one text line, "ModSecurity: Warning. <what matched> [file "..."] [line
 * "..."] [id "..."] [rev ""] [msg "..."] [data "..."] ... [uri "..."]
 * [unique_id "..."] [ref "..."]"; the rule that refuses reports the same
 * line through msc_intervention() instead. Nothing is printed. The line
 * quotes client text unescaped in <what matched> (the matched value) and
 * in [uri] (the decoded path, at most 200 bytes and a count), so a client
 * can write fake fields into it. The parser takes the first [file ...]
 * from which the fields follow in order up to [uri], the uri field ends
 * within its length limit, and [unique_id] is this transaction's id: a
 * 64-bit value from a keyed mix of a counter, which clients never see. A
 * fake planted in the matched value would have to carry the rule's real
 * fields inside its [uri], past the limit (a CRS rule's fields, from its
 * file name to its tags, run longer); one planted in [uri] comes after the
 * real fields and is never reached. Rules whose line quotes no client
 * text before [file] (949110, 200090) cannot be misread at all.
 *
 * Outside the request path, msc_init() opens a UDP socket once per process
 * (an ioctl for MAC addresses, for its own unique ids; no traffic).
 */
#include "mod/waf/modsec.h"

#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <modsecurity/intervention.h>

#define DEBIAN_CRS_RULES "/usr/share/modsecurity-crs/rules"
#define DEBIAN_CRS_ETC   "/etc/modsecurity/crs"

/* Rules removed from the CRS (see the file's opening comment). */
#define REMOVED_RULES "901318 901321 905100 905110 910000-910999 912000-912999 949100 920350"

/* tx.allowed_methods (911100): the CRS's GET HEAD POST OPTIONS and the
 * methods of REST APIs, as crs-setup.conf.example's 900200 suggests for
 * them. Which methods a route accepts is moat's routing's business. */
#define ALLOWED_METHODS "GET HEAD POST OPTIONS PUT PATCH DELETE"

/* The most ids one check remembers for verdict.matched. */
#define MAX_IDS 64
/* [uri "..."] in a log line: at most 200 bytes and " (N characters omitted)". */
#define LOG_URI_MAX 256

struct moat_waf {
	ModSecurity *ms;            /* shared_ms, counted in shared_refs */
	RulesSet *rules;
	int detect_only;
	size_t body_limit;
	uint64_t idkey[2];          /* secret: transaction ids clients cannot guess */
	_Atomic uint64_t seq;       /* transactions begun */
};

/* Serialises rule loading (the parser's globals) and guards the shared
 * ModSecurity instance below. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
/* The process's one ModSecurity instance, shared by every rule set and
 * destroyed with the last (see "Thread safety" above). */
static ModSecurity *shared_ms;
static unsigned shared_refs;

/* One moat_waf_check(): lives on the worker's stack, reached from the log
 * callback through the transaction. */
struct check {
	char uid[17];               /* this transaction's unique_id */
	char anchor[64];            /* "\"] [unique_id \"<uid>\"] [ref \"" */
	size_t anchor_len;
	unsigned ids[MAX_IDS];
	size_t nids;
	unsigned score;
	int saw_threshold;          /* 949110 logged */
	int disrupted;
	int status;
	unsigned decided_id;
	char first_msg[256];        /* first attack rule's message */
	char decided_msg[256];      /* the refusing rule's, or 949110's */
};

static char *errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *errf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* ModSecurity's parser messages end in a newline or two. */
static char *errf_msc(const char *what, const char *path, const char *e)
{
	size_t n = e ? strlen(e) : 0;

	while (n && (e[n - 1] == '\n' || e[n - 1] == '\r' || e[n - 1] == ' '))
		n--;
	if (!n)
		return errf("%s%s: unknown error", what, path);
	return errf("%s%s: %.*s", what, path, (int)n, e);
}

/* Loads one rule file; an optional one may be missing. */
static int add_file(struct moat_waf *w, const char *path, int optional, char **err)
{
	const char *e = NULL;

	if (optional && access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (msc_rules_add_file(w->rules, path, &e) < 0) {
		*err = errf_msc("cannot load CRS rules from ", path, e);
		free((void *)e);
		return -1;
	}
	return 0;
}

static int add_text(struct moat_waf *w, const char *what, const char *text, char **err)
{
	const char *e = NULL;

	if (msc_rules_add(w->rules, text, &e) < 0) {
		*err = errf_msc("cannot load ", what, e);
		free((void *)e);
		return -1;
	}
	return 0;
}

/* rules/REQUEST-*.conf in name order (glob sorts). */
static int add_request_rules(struct moat_waf *w, const char *dir, char **err)
{
	char pat[4096];
	glob_t g;
	int rc;

	if ((size_t)snprintf(pat, sizeof(pat), "%s/REQUEST-*.conf", dir) >= sizeof(pat)) {
		*err = errf("cannot load CRS rules from %s: path too long", dir);
		return -1;
	}
	rc = glob(pat, GLOB_ERR, NULL, &g);
	if (rc != 0) {
		*err = errf("cannot load CRS rules from %s: %s", dir,
			    rc == GLOB_NOMATCH ? "no REQUEST-*.conf file there" : "cannot read the directory");
		if (rc != GLOB_NOMATCH)
			globfree(&g);
		return -1;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		if (add_file(w, g.gl_pathv[i], 0, err) < 0) {
			globfree(&g);
			return -1;
		}
	}
	globfree(&g);
	return 0;
}

static int load(struct moat_waf *w, const struct moat_waf_conf *c, char **err)
{
	char setup[4096], rules[4096], before[4096], after[4096], text[2048];
	const char *dir = c->crs_dir;
	int n;

	/* Debian's own tree, named: the same as the default (its setup
	 * lives in /etc/modsecurity/crs) */
	if (dir && (strcmp(dir, "/usr/share/modsecurity-crs") == 0 || strcmp(dir, "/usr/share/modsecurity-crs/") == 0))
		dir = NULL;
	if (dir) {
		if ((size_t)snprintf(setup, sizeof(setup), "%s/crs-setup.conf", dir) >= sizeof(setup) ||
		    (size_t)snprintf(rules, sizeof(rules), "%s/rules", dir) >= sizeof(rules) ||
		    (size_t)snprintf(after, sizeof(after), "%s/rules/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf",
				     dir) >= sizeof(after)) {
			*err = errf("cannot load CRS rules from %s: path too long", dir);
			return -1;
		}
		/* A CRS tree as released ships the setup as an example only;
		 * its REQUEST-900 exclusions, once renamed, are one of rules/. */
		if (access(setup, F_OK) != 0 &&
		    (size_t)snprintf(setup, sizeof(setup), "%s/crs-setup.conf.example", dir) >= sizeof(setup)) {
			*err = errf("cannot load CRS rules from %s: path too long", dir);
			return -1;
		}
		before[0] = '\0';
	} else {
		snprintf(setup, sizeof(setup), "%s", DEBIAN_CRS_ETC "/crs-setup.conf");
		snprintf(rules, sizeof(rules), "%s", DEBIAN_CRS_RULES);
		snprintf(before, sizeof(before), "%s", DEBIAN_CRS_ETC "/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf");
		snprintf(after, sizeof(after), "%s", DEBIAN_CRS_ETC "/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf");
	}

	if (add_file(w, setup, 0, err) < 0)
		return -1;

	/* Phase 1 runs these in load order: after crs-setup's SecActions,
	 * before the CRS's 901 defaults (set only when unset) and before
	 * 901340, which checks whether a body processor is chosen. */
	n = snprintf(text, sizeof(text),
		     "SecAction \"id:200010,phase:1,pass,nolog,t:none,"
		     "setvar:tx.paranoia_level=%u,setvar:tx.executing_paranoia_level=%u\"\n"
		     "SecAction \"id:200011,phase:1,pass,nolog,t:none,"
		     "setvar:tx.inbound_anomaly_score_threshold=%u,"
		     "setvar:'tx.allowed_methods=" ALLOWED_METHODS "'\"\n",
		     c->paranoia, c->paranoia, c->anomaly_threshold);
	if (n < 0 || (size_t)n >= sizeof(text) || add_text(w, "moat's WAF settings", text, err) < 0)
		return -1;
	/* Without body inspection ModSecurity sees every body as empty: no
	 * body processor then, or an empty XML or multipart body would be a
	 * parse error. (SecRequestBodyAccess stays On: Off would skip phase 2,
	 * where most of the CRS runs.) */
	n = !c->body_limit ? 0 : snprintf(text, sizeof(text),
		     "SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" "
		     "\"id:200000,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=XML\"\n"
		     "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/(?:[a-z0-9.+-]+\\+)?json\" "
		     "\"id:200001,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=JSON\"\n"
		     "SecRule REQBODY_ERROR \"!@eq 0\" "
		     "\"id:200002,phase:2,deny,status:400,log,t:none,"
		     "msg:'Request body does not parse',logdata:'%%{reqbody_error_msg}',chain\"\n"
		     "  SecRule INBOUND_DATA_ERROR \"@eq 0\" \"t:none\"\n"
		     "SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" "
		     "\"id:200003,phase:2,deny,status:400,log,t:none,"
		     "msg:'Multipart request body failed strict validation',chain\"\n"
		     "  SecRule INBOUND_DATA_ERROR \"@eq 0\" \"t:none\"\n");
	if (n < 0 || (size_t)n >= sizeof(text) || (n > 0 && add_text(w, "moat's WAF settings", text, err) < 0))
		return -1;

	if (before[0] && add_file(w, before, 1, err) < 0)
		return -1;
	if (add_request_rules(w, rules, err) < 0)
		return -1;
	if (add_file(w, after, 1, err) < 0)
		return -1;

	/* 200090 must not say noauditlog: in 3.0.9 that silences the log
	 * callback too. */
	n = snprintf(text, sizeof(text),
		     "SecRuleEngine %s\n"
		     "SecRequestBodyAccess On\n"
		     "SecRequestBodyLimit %zu\n"
		     "SecRequestBodyNoFilesLimit %zu\n"
		     "SecRequestBodyLimitAction ProcessPartial\n"
		     "SecResponseBodyAccess Off\n"
		     "SecAuditEngine Off\n"
		     "SecUploadKeepFiles Off\n"
		     "SecXmlExternalEntity Off\n"
		     "SecTmpSaveUploadedFiles Off\n"
		     "SecRuleRemoveById " REMOVED_RULES "\n"
		     "SecRule TX:ANOMALY_SCORE \"@gt 0\" "
		     "\"id:200090,phase:2,pass,log,t:none,"
		     "msg:'moat: inbound anomaly score %%{tx.anomaly_score}'\"\n",
		     c->detect_only ? "DetectionOnly" : "On",
		     c->body_limit ? c->body_limit : (size_t)1,
		     c->body_limit ? c->body_limit : (size_t)1);
	if (n < 0 || (size_t)n >= sizeof(text) || add_text(w, "moat's WAF settings", text, err) < 0)
		return -1;
	return 0;
}

/* A 64-bit mixer (splitmix64's finaliser). */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void seed(struct moat_waf *w)
{
	struct timespec ts;

	if (getrandom(w->idkey, sizeof(w->idkey), GRND_NONBLOCK) == (ssize_t)sizeof(w->idkey))
		return;
	/* No entropy yet (early boot): ids are then only hard to guess. */
	clock_gettime(CLOCK_REALTIME, &ts);
	w->idkey[0] = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)w);
	w->idkey[1] = mix64(w->idkey[0] ^ (uint64_t)getpid());
}

static void log_cb(void *data, const void *line);

struct moat_waf *moat_waf_new(const struct moat_waf_conf *c, char **err)
{
	struct moat_waf *w;

	*err = NULL;
	if (!c || c->paranoia < 1 || c->paranoia > 4) {
		*err = errf("waf: paranoia level must be 1 to 4");
		return NULL;
	}
	if (c->anomaly_threshold < 1) {
		*err = errf("waf: the anomaly threshold must be at least 1");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		*err = errf("waf: out of memory");
		return NULL;
	}
	w->detect_only = c->detect_only ? 1 : 0;
	w->body_limit = c->body_limit;
	atomic_init(&w->seq, 0);
	seed(w);

	pthread_mutex_lock(&load_lock);
	if (!shared_ms && (shared_ms = msc_init()) != NULL) {
		msc_set_connector_info(shared_ms, "moat");
		msc_set_log_cb(shared_ms, log_cb);
	}
	if (shared_ms) {
		w->ms = shared_ms;
		shared_refs++;
	}
	w->rules = w->ms ? msc_create_rules_set() : NULL;
	if (!w->rules)
		*err = errf("waf: out of memory");
	else if (load(w, c, err) < 0 && !*err)
		*err = errf("waf: out of memory");
	pthread_mutex_unlock(&load_lock);
	if (*err) {
		moat_waf_free(w);
		return NULL;
	}
	return w;
}

void moat_waf_free(struct moat_waf *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&load_lock);
	if (w->rules)
		msc_rules_cleanup(w->rules);
	if (w->ms && --shared_refs == 0) {
		msc_cleanup(shared_ms);
		shared_ms = NULL;
	}
	pthread_mutex_unlock(&load_lock);
	free(w);
}

/* ---- reading ModSecurity's log lines ---------------------------------- */

struct span {
	const char *p;
	size_t n;
};

/* Each matcher advances *pp past what it matched and returns 0, or leaves
 * *pp alone and returns -1. */
static int lit(const char **pp, const char *end, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(end - *pp) < n || memcmp(*pp, s, n) != 0)
		return -1;
	*pp += n;
	return 0;
}

static int num(const char **pp, const char *end, unsigned long *out)
{
	const char *p = *pp;
	unsigned long x = 0;

	if (p == end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (x > 999999999ul)
			return -1;
		x = x * 10 + (unsigned long)(*p - '0');
	}
	*pp = p;
	if (out)
		*out = x;
	return 0;
}

/* A field ModSecurity writes with its quotes escaped: up to the next '"'. */
static int field(const char **pp, const char *end)
{
	const char *q = memchr(*pp, '"', (size_t)(end - *pp));

	if (!q)
		return -1;
	*pp = q;
	return 0;
}

/* The fields from " [file \"" at p to this transaction's unique_id. */
static int parse_from(const char *p, const char *end, const struct check *c, unsigned *id, struct span *msg)
{
	unsigned long n;
	const char *m, *q;

	if (lit(&p, end, " [file \"") || field(&p, end) ||
	    lit(&p, end, "\"] [line \"") || num(&p, end, NULL) ||
	    lit(&p, end, "\"] [id \"") || num(&p, end, &n) ||
	    lit(&p, end, "\"] [rev \"") || field(&p, end) ||
	    lit(&p, end, "\"] [msg \""))
		return -1;
	m = p;
	p = memmem(p, (size_t)(end - p), "\"] [data \"", 10);
	if (!p)
		return -1;
	msg->p = m;
	msg->n = (size_t)(p - m);
	if (lit(&p, end, "\"] [data \"") || field(&p, end) ||
	    lit(&p, end, "\"] [severity \"") || num(&p, end, NULL) ||
	    lit(&p, end, "\"] [ver \"") || field(&p, end) ||
	    lit(&p, end, "\"] [maturity \"") || num(&p, end, NULL) ||
	    lit(&p, end, "\"] [accuracy \"") || num(&p, end, NULL) ||
	    lit(&p, end, "\"]"))
		return -1;
	while (lit(&p, end, " [tag \"") == 0) {
		if (field(&p, end) || lit(&p, end, "\"]"))
			return -1;
	}
	if (lit(&p, end, " [hostname \"") || field(&p, end) || lit(&p, end, "\"] [uri \""))
		return -1;
	q = memmem(p, (size_t)(end - p), c->anchor, c->anchor_len);
	if (!q || q - p > LOG_URI_MAX)
		return -1;
	*id = (unsigned)n;
	return 0;
}

/* Finds the rule id and message in one of ModSecurity's lines. */
static int parse_line(const char *line, size_t len, const struct check *c, unsigned *id, struct span *msg)
{
	const char *end = line + len, *p = line;

	while ((p = memmem(p, (size_t)(end - p), " [file \"", 8)) != NULL) {
		if (parse_from(p, end, c, id, msg) == 0)
			return 0;
		p += 8;
	}
	return -1;
}

/* Copies a message, control bytes made '?', cut to fit. */
static void copy_msg(char *dst, size_t size, struct span s)
{
	size_t n = s.n < size - 1 ? s.n : size - 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		dst[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[n] = '\0';
}

/* The number after `prefix` in s, if s has it. */
static int number_after(struct span s, const char *prefix, unsigned *out)
{
	const char *p, *end = s.p + s.n;
	unsigned long x;

	p = memmem(s.p, s.n, prefix, strlen(prefix));
	if (!p)
		return -1;
	p += strlen(prefix);
	if (num(&p, end, &x) < 0)
		return -1;
	*out = (unsigned)x;
	return 0;
}

static void record(struct check *c, const char *line, int disruptive)
{
	struct span msg;
	unsigned id, score;
	size_t i;

	if (parse_line(line, strlen(line), c, &id, &msg) < 0)
		return;
	if (id == MOAT_WAF_RULE_SCORE) {
		if (number_after(msg, "inbound anomaly score ", &score) == 0 && score > c->score)
			c->score = score;
		return;
	}
	if (id == MOAT_WAF_RULE_CRS_BLOCK) {
		if (number_after(msg, "(Total Score: ", &score) == 0 && score > c->score)
			c->score = score;
		c->saw_threshold = 1;
	}
	if (disruptive) {
		c->decided_id = id;
		copy_msg(c->decided_msg, sizeof(c->decided_msg), msg);
	} else if (id == MOAT_WAF_RULE_CRS_BLOCK && !c->decided_msg[0]) {
		copy_msg(c->decided_msg, sizeof(c->decided_msg), msg);
	}
	if (id != MOAT_WAF_RULE_CRS_BLOCK && !c->first_msg[0])
		copy_msg(c->first_msg, sizeof(c->first_msg), msg);
	for (i = 0; i < c->nids && c->ids[i] != id; i++)
		;
	if (i == c->nids && c->nids < MAX_IDS)
		c->ids[c->nids++] = id;
}

/* ModSecurity's log callback: data is the check of the transaction. */
static void log_cb(void *data, const void *line)
{
	if (data && line)
		record(data, line, 0);
}

/* Takes a disruptive intervention, if any; returns 1 if there was one. */
static int take_intervention(struct check *c, Transaction *t)
{
	ModSecurityIntervention it = { .status = 200, .pause = 0, .url = NULL, .log = NULL, .disruptive = 0 };

	msc_intervention(t, &it);
	if (it.disruptive) {
		c->disrupted = 1;
		c->status = it.status >= 400 && it.status <= 599 ? it.status : 403;
		if (it.log)
			record(c, it.log, 1);
	}
	free(it.log);
	free(it.url);
	return it.disruptive != 0;
}

static void finish(const struct moat_waf *w, const struct check *c, struct moat_waf_verdict *v)
{
	size_t off = 0;

	v->block = c->disrupted && !w->detect_only;
	v->status = v->block ? c->status : 0;
	if (c->disrupted && c->decided_id)
		v->rule_id = c->decided_id;
	else if (c->saw_threshold)
		v->rule_id = MOAT_WAF_RULE_CRS_BLOCK;
	else if (c->nids)
		v->rule_id = c->ids[0];
	v->score = c->score;
	snprintf(v->msg, sizeof(v->msg), "%s", c->first_msg[0] ? c->first_msg : c->decided_msg);
	for (size_t i = 0; i < c->nids; i++) {
		char one[16];
		int n = snprintf(one, sizeof(one), "%s%u", off ? "," : "", c->ids[i]);

		if (n < 0 || off + (size_t)n >= sizeof(v->matched))
			break;
		memcpy(v->matched + off, one, (size_t)n);
		off += (size_t)n;
	}
	v->matched[off] = '\0';
}

static void begin(struct moat_waf *w, struct check *c)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t n = atomic_fetch_add_explicit(&w->seq, 1, memory_order_relaxed);
	uint64_t x = mix64(mix64(n ^ w->idkey[0]) ^ w->idkey[1]);

	memset(c, 0, sizeof(*c));
	for (int i = 15; i >= 0; i--, x >>= 4)
		c->uid[i] = hex[x & 15];
	c->uid[16] = '\0';
	c->anchor_len = (size_t)snprintf(c->anchor, sizeof(c->anchor), "\"] [unique_id \"%s\"] [ref \"", c->uid);
}

int moat_waf_check(struct moat_waf *w, const struct moat_waf_req *r, struct moat_waf_verdict *v)
{
	static const unsigned char past_limit = 0;
	struct check c;
	Transaction *t;
	char small[1024], *line;
	size_t need;

	if (!w || !r || !v)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	if ((r->method_len && !r->method) || (r->uri_len && !r->uri) ||
	    (r->nheaders && !r->headers) || (r->body_len && !r->body))
		return -EINVAL;
	/* ModSecurity takes the target and method as C strings. */
	if ((r->uri_len && memchr(r->uri, '\0', r->uri_len)) ||
	    (r->method_len && memchr(r->method, '\0', r->method_len))) {
		v->block = !w->detect_only;
		v->status = v->block ? 400 : 0;
		snprintf(v->msg, sizeof(v->msg), "NUL byte in the request line");
		return 0;
	}
	need = r->method_len + 1 + r->uri_len + 1;
	line = need <= sizeof(small) ? small : malloc(need);
	if (!line)
		return -ENOMEM;
	if (r->method_len)
		memcpy(line, r->method, r->method_len);
	line[r->method_len] = '\0';
	if (r->uri_len)
		memcpy(line + r->method_len + 1, r->uri, r->uri_len);
	line[r->method_len + 1 + r->uri_len] = '\0';

	begin(w, &c);
	t = msc_new_transaction_with_id(w->ms, w->rules, c.uid, &c);
	if (!t) {
		if (line != small)
			free(line);
		return -ENOMEM;
	}
	msc_process_connection(t, r->client_ip ? r->client_ip : "0.0.0.0", (int)r->client_port,
			       r->server_ip ? r->server_ip : "0.0.0.0", (int)r->server_port);
	msc_process_uri(t, line + r->method_len + 1, line, r->version ? r->version : "1.1");
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct moat_waf_header *h = &r->headers[i];

		msc_add_n_request_header(t, (const unsigned char *)(h->name ? h->name : ""), h->name ? h->name_len : 0,
					 (const unsigned char *)(h->value ? h->value : ""), h->value ? h->value_len : 0);
	}
	msc_process_request_headers(t);
	if (!take_intervention(&c, t)) {
		if (w->body_limit && r->body_len) {
			size_t n = r->body_len < w->body_limit ? r->body_len : w->body_limit;
			int complete = r->body_complete && n == r->body_len;

			msc_append_request_body(t, (const unsigned char *)r->body, n);
			/* One byte past the limit: ModSecurity marks the body as
			 * cut (INBOUND_DATA_ERROR) and keeps none of it. */
			if (!complete && n == w->body_limit)
				msc_append_request_body(t, &past_limit, 1);
		}
		msc_process_request_body(t);
		take_intervention(&c, t);
	}
	msc_transaction_cleanup(t);
	if (line != small)
		free(line);
	finish(w, &c, v);
	return 0;
}
