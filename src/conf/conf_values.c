/*
 * conf_values.c - the scalar values of the configuration: durations, sizes,
 * CIDR blocks, listen and server addresses, names.
 *
 * Everything here is pure (input -> result, no globals) except the name
 * lookup of moat_conf_parse_server, which calls getaddrinfo unless
 * moat_conf_no_resolve is set. The YAML loader and the one-line proxy mode
 * both use these, so both accept exactly the same spellings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "core/limits.h"

int moat_conf_no_resolve;

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_alnum(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Reads the digits at *p into *out, advancing *p; at least one digit and no
 * overflow, else -1. */
static int take_digits(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int moat_conf_parse_uint(const char *s, uint64_t *out)
{
	uint64_t v;

	if (take_digits(&s, &v) < 0 || *s != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Multiplies and adds without wrapping; -1 on overflow. */
static int mul_add(uint64_t *acc, uint64_t n, uint64_t mult)
{
	if (mult != 0 && n > UINT64_MAX / mult)
		return -1;
	if (*acc > UINT64_MAX - n * mult)
		return -1;
	*acc += n * mult;
	return 0;
}

/*
 * A duration is a bare number of seconds ("30"), or one or more
 * number+unit parts ("250ms", "1h30m"), units ms, s, m, h.
 */
int moat_conf_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t total = 0, n;
	const char *p = s;

	if (s == NULL || *s == '\0')
		return -1;
	if (moat_conf_parse_uint(s, &n) == 0) {
		if (mul_add(&total, n, MOAT_SECOND_MS) < 0)
			return -1;
		*ms = total;
		return 0;
	}
	while (*p != '\0') {
		uint64_t mult;

		if (take_digits(&p, &n) < 0)
			return -1;
		if (p[0] == 'm' && p[1] == 's') {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = MOAT_SECOND_MS;
			p++;
		} else if (*p == 'm') {
			mult = MOAT_MINUTE_MS;
			p++;
		} else if (*p == 'h') {
			mult = MOAT_HOUR_MS;
			p++;
		} else {
			return -1;
		}
		if (mul_add(&total, n, mult) < 0)
			return -1;
	}
	*ms = total;
	return 0;
}

static const struct {
	const char *unit;
	uint64_t mult;
} size_units[] = {
	{ "", 1 },           { "B", 1 },          { "kB", 1000 },
	{ "KB", 1000 },      { "MB", 1000000 },   { "GB", 1000000000 },
	{ "KiB", MOAT_KIB }, { "MiB", MOAT_MIB }, { "GiB", MOAT_GIB },
};

int moat_conf_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n, v = 0;
	size_t i;

	if (s == NULL || take_digits(&s, &n) < 0)
		return -1;
	for (i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
		if (strcmp(s, size_units[i].unit) == 0) {
			if (mul_add(&v, n, size_units[i].mult) < 0)
				return -1;
			*bytes = v;
			return 0;
		}
	}
	return -1;
}

void moat_conf_format_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / MOAT_SECOND_MS;

	/* "60s" reads better than "1m"; "2m" better than "120s" */
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % MOAT_SECOND_MS != 0)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s % 3600 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
	else if (s % 60 == 0 && s > 60)
		snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
}

void moat_conf_format_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes != 0 && bytes % MOAT_GIB == 0)
		snprintf(buf, len, "%lluGiB", (unsigned long long)(bytes / MOAT_GIB));
	else if (bytes != 0 && bytes % MOAT_MIB == 0)
		snprintf(buf, len, "%lluMiB", (unsigned long long)(bytes / MOAT_MIB));
	else if (bytes != 0 && bytes % MOAT_KIB == 0)
		snprintf(buf, len, "%lluKiB", (unsigned long long)(bytes / MOAT_KIB));
	else
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* Clears every bit of `addr` past the first `prefix`. */
static void mask_bits(unsigned char *addr, size_t alen, unsigned prefix)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		unsigned keep = prefix > 8 * i ? prefix - 8 * (unsigned)i : 0;
		if (keep >= 8)
			continue;
		addr[i] &= (unsigned char)(0xffu << (8 - keep));
	}
}

int moat_conf_parse_cidr(const char *s, struct moat_conf_cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash;
	size_t hlen, alen;
	unsigned maxp;
	uint64_t prefix;
	struct moat_conf_cidr b;

	if (s == NULL)
		return -1;
	slash = strchr(s, '/');
	hlen = slash ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(&b, 0, sizeof b);
	if (memchr(host, ':', hlen) != NULL) {
		b.family = AF_INET6;
		alen = 16;
	} else {
		b.family = AF_INET;
		alen = 4;
	}
	if (inet_pton(b.family, host, b.addr) != 1)
		return -1;
	maxp = (unsigned)alen * 8;
	if (slash == NULL) {
		prefix = maxp;
	} else {
		/* at most three digits, so "/0000000032" is not a prefix */
		if (strlen(slash + 1) > 3 || moat_conf_parse_uint(slash + 1, &prefix) < 0 || prefix > maxp)
			return -1;
	}
	b.prefix = (unsigned)prefix;
	mask_bits(b.addr, alen, b.prefix);
	*out = b;
	return 0;
}

void moat_conf_format_cidr(const struct moat_conf_cidr *b, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(b->family, b->addr, host, sizeof host) == NULL)
		snprintf(host, sizeof host, "?");
	snprintf(buf, len, "%s/%u", host, b->prefix);
}

/* Compares the first `prefix` bits of a and b. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	unsigned char m;

	if (full != 0 && memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	m = (unsigned char)(0xffu << (8 - rest));
	return (a[full] & m) == (b[full] & m);
}

int moat_conf_cidr_match(const struct moat_conf_cidr *list, size_t n, const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const unsigned char *v4 = NULL, *v6 = NULL;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		v4 = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		v6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(v6, v4mapped, sizeof v4mapped) == 0)
			v4 = v6 + 12;
	} else {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (list[i].family == AF_INET && v4 != NULL && prefix_equal(v4, list[i].addr, list[i].prefix))
			return 1;
		if (list[i].family == AF_INET6 && v6 != NULL && prefix_equal(v6, list[i].addr, list[i].prefix))
			return 1;
	}
	return 0;
}

int moat_conf_header_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || (!is_alnum(s[i]) && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL))
			return 0;
	return 1;
}

int moat_conf_hostname_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 253 || s[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (i > 0 && s[i - 1] == '.')
				return 0;
		} else if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_') {
			return 0;
		}
	}
	return 1;
}

int moat_conf_upstream_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return 0;
	return 1;
}

/* A name whose last label is all digits, or that starts with "0x", is what
 * getaddrinfo would read as an old-style IPv4 address ("127.1", "0x7f000001"):
 * refused rather than guessed. */
static int looks_numeric(const char *s)
{
	size_t len = strlen(s);
	size_t end = len, start;

	if (len > 0 && s[len - 1] == '.')
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == end)
		return 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return 1;
	for (; start < end; start++)
		if (!is_digit(s[start]))
			return 0;
	return 1;
}

/*
 * Splits "host:port" / "[v6]:port" / "host" (`len` bytes at `s`) into the
 * host (copied into `host`, brackets removed) and the port text (`*port`,
 * pointing into `s`, NULL when there is no ':').
 */
static int split_hostport(const char *s, size_t len, char *host, size_t hostlen, int *bracketed,
			  const char **port, size_t *portlen, char *why, size_t whylen)
{
	const char *stop = s + len, *hbegin = s, *hend, *colon;

	*bracketed = 0;
	*port = NULL;
	*portlen = 0;
	if (len > 0 && s[0] == '[') {
		hend = memchr(s, ']', len);
		if (hend == NULL) {
			snprintf(why, whylen, "missing ']'");
			return MOAT_CONF_ESYNTAX;
		}
		*bracketed = 1;
		hbegin = s + 1;
		colon = hend + 1;
		if (colon == stop) {
			colon = NULL;
		} else if (*colon != ':') {
			snprintf(why, whylen, "unexpected text after ']'");
			return MOAT_CONF_ESYNTAX;
		}
	} else {
		colon = memchr(s, ':', len);
		if (colon != NULL && memchr(colon + 1, ':', (size_t)(stop - colon - 1)) != NULL) {
			snprintf(why, whylen, "an IPv6 address goes in brackets, like [::1]:8080");
			return MOAT_CONF_ESYNTAX;
		}
		hend = colon != NULL ? colon : stop;
	}
	if ((size_t)(hend - hbegin) >= hostlen) {
		snprintf(why, whylen, "host too long");
		return MOAT_CONF_ESYNTAX;
	}
	memcpy(host, hbegin, (size_t)(hend - hbegin));
	host[hend - hbegin] = '\0';
	if (colon != NULL) {
		*port = colon + 1;
		*portlen = (size_t)(stop - colon - 1);
	}
	return 0;
}

/* Parses the port text; 0 or an error with `why` filled. */
static int parse_port(const char *p, size_t plen, unsigned *port, char *why, size_t whylen)
{
	char buf[8];
	uint64_t v;

	if (plen == 0) {
		snprintf(why, whylen, "missing port");
		return MOAT_CONF_ESYNTAX;
	}
	if (plen >= sizeof buf) {
		snprintf(why, whylen, "port must be between 1 and 65535, got \"%.*s\"",
			 (int)(plen > 16 ? 16 : plen), p);
		return MOAT_CONF_EVALUE;
	}
	memcpy(buf, p, plen);
	buf[plen] = '\0';
	if (moat_conf_parse_uint(buf, &v) < 0) {
		snprintf(why, whylen, "port is not a number");
		return MOAT_CONF_ESYNTAX;
	}
	if (v < 1 || v > 65535) {
		snprintf(why, whylen, "port must be between 1 and 65535, got %s", buf);
		return MOAT_CONF_EVALUE;
	}
	*port = (unsigned)v;
	return 0;
}

/* Fills `ss` with a numeric host (IPv4 unless `bracketed`) and the port;
 * returns 0, or -1 when `host` is not such a literal. */
static int numeric_addr(const char *host, int bracketed, unsigned port, struct sockaddr_storage *ss,
			socklen_t *sslen)
{
	memset(ss, 0, sizeof *ss);
	if (bracketed) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof *s4;
	}
	return 0;
}

int moat_conf_parse_listen(const char *s, struct moat_conf_addr *out, char *why, size_t whylen)
{
	char host[256];
	const char *port_s;
	size_t port_len;
	unsigned port;
	int br, rc;

	memset(out, 0, sizeof *out);
	rc = split_hostport(s, strlen(s), host, sizeof host, &br, &port_s, &port_len, why, whylen);
	if (rc < 0)
		return rc;
	if (port_s == NULL) {
		snprintf(why, whylen, "missing port");
		return MOAT_CONF_ESYNTAX;
	}
	rc = parse_port(port_s, port_len, &port, why, whylen);
	if (rc < 0)
		return rc;
	if (!br && (host[0] == '\0' || strcmp(host, "*") == 0))
		snprintf(host, sizeof host, "0.0.0.0");
	if (numeric_addr(host, br, port, &out->ss, &out->len) < 0) {
		if (br) {
			snprintf(why, whylen, "\"%.64s\" is not an IPv6 address", host);
			return MOAT_CONF_EVALUE;
		}
		if (moat_conf_hostname_ok(host, strlen(host)) && !looks_numeric(host)) {
			snprintf(why, whylen, "listen addresses must be numeric, not a host name (\"%.64s\")",
				 host);
			return MOAT_CONF_EVALUE;
		}
		snprintf(why, whylen, "\"%.64s\" is not an IPv4 address", host);
		return MOAT_CONF_EVALUE;
	}
	out->text = strdup(s);
	if (out->text == NULL)
		return MOAT_CONF_ENOMEM;
	return 0;
}

/* Looks up `host` (a name); fills ss with its first address and `port`. */
static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *sslen, char *why,
		   size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	if (moat_conf_no_resolve) {
		snprintf(why, whylen, "cannot resolve \"%.64s\": name resolution is disabled", host);
		return MOAT_CONF_EVALUE;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "cannot resolve \"%.64s\": %s", host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return MOAT_CONF_EVALUE;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addrlen <= sizeof *ss)
			break;
	if (ai == NULL) {
		freeaddrinfo(res);
		snprintf(why, whylen, "cannot resolve \"%.64s\": no IPv4 or IPv6 address", host);
		return MOAT_CONF_EVALUE;
	}
	memset(ss, 0, sizeof *ss);
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	if (ai->ai_family == AF_INET)
		((struct sockaddr_in *)(void *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

int moat_conf_parse_server(const char *s, struct moat_conf_server *out, char *why, size_t whylen)
{
	char host[256];
	const char *auth = s, *port_s, *sep;
	size_t alen, port_len;
	unsigned port = 80;
	int url = 0, named = 0, br, rc;
	enum moat_conf_scheme scheme = MOAT_SCHEME_HTTP;

	memset(&out->addr, 0, sizeof out->addr);
	out->host = NULL;
	out->is_name = 0;
	out->scheme = MOAT_SCHEME_HTTP;
	sep = strstr(s, "://");
	if (sep != NULL) {
		size_t slen = (size_t)(sep - s);
		if (slen == 4 && strncasecmp(s, "http", 4) == 0) {
			scheme = MOAT_SCHEME_HTTP;
		} else if (slen == 5 && strncasecmp(s, "https", 5) == 0) {
			scheme = MOAT_SCHEME_HTTPS;
			port = 443;
		} else if (slen == 3 && strncasecmp(s, "h2c", 3) == 0) {
			scheme = MOAT_SCHEME_H2C;
		} else if (slen == 2 && strncasecmp(s, "h2", 2) == 0) {
			scheme = MOAT_SCHEME_H2;
			port = 443;
		} else {
			snprintf(why, whylen,
				 "unsupported scheme \"%.*s\" (expected http://, https://, h2c:// or h2://)",
				 (int)(slen > 16 ? 16 : slen), s);
			return MOAT_CONF_EVALUE;
		}
		url = 1;
		auth = sep + 3;
	}
	alen = strcspn(auth, "/?#");
	if (auth[alen] != '\0') {
		if (!url) {
			snprintf(why, whylen, "unexpected '%c'", auth[alen]);
			return MOAT_CONF_ESYNTAX;
		}
		if (strcmp(auth + alen, "/") != 0) {
			snprintf(why, whylen, "a server URL has no path, query or fragment (got \"%.64s\")",
				 auth + alen);
			return MOAT_CONF_EVALUE;
		}
	}
	if (memchr(auth, '@', alen) != NULL) {
		snprintf(why, whylen, "user names in server addresses are not supported");
		return MOAT_CONF_EVALUE;
	}
	rc = split_hostport(auth, alen, host, sizeof host, &br, &port_s, &port_len, why, whylen);
	if (rc < 0)
		return rc;
	if (port_s != NULL || !url) {
		rc = parse_port(port_s ? port_s : "", port_len, &port, why, whylen);
		if (rc < 0)
			return rc;
	}
	if (host[0] == '\0') {
		snprintf(why, whylen, "missing host");
		return MOAT_CONF_ESYNTAX;
	}
	if (numeric_addr(host, br, port, &out->addr.ss, &out->addr.len) < 0) {
		if (br) {
			snprintf(why, whylen, "\"%.64s\" is not an IPv6 address", host);
			return MOAT_CONF_EVALUE;
		}
		if (!moat_conf_hostname_ok(host, strlen(host))) {
			snprintf(why, whylen, "invalid host name");
			return MOAT_CONF_ESYNTAX;
		}
		if (looks_numeric(host)) {
			snprintf(why, whylen, "\"%.64s\" is not an IPv4 address", host);
			return MOAT_CONF_EVALUE;
		}
		rc = resolve(host, port, &out->addr.ss, &out->addr.len, why, whylen);
		if (rc < 0)
			return rc;
		named = 1;
	}
	out->host = strdup(host);
	out->addr.text = malloc(alen + 5);
	if (out->host == NULL || out->addr.text == NULL) {
		free(out->host);
		free(out->addr.text);
		out->host = NULL;
		out->addr.text = NULL;
		return MOAT_CONF_ENOMEM;
	}
	memcpy(out->addr.text, auth, alen);
	if (port_s == NULL) /* the scheme's default port: 80 or 443 */
		memcpy(out->addr.text + alen, port == 443 ? ":443" : ":80", port == 443 ? 5 : 4);
	else
		out->addr.text[alen] = '\0';
	out->is_name = named;
	out->scheme = scheme;
	return 0;
}

void moat_conf_quote(const char *s, size_t len, size_t max, char *buf, size_t buflen)
{
	size_t i, o = 0;

	if (buflen < 16)
		return;
	buf[o++] = '"';
	for (i = 0; i < len && o + 8 < buflen; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i >= max && (ch & 0xc0) != 0x80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

int moat_conf_addr_equal(const struct moat_conf_addr *a, const struct moat_conf_addr *b)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss, *sb = (const struct sockaddr *)&b->ss;

	if (sa->sa_family != sb->sa_family)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)sa, *y = (const void *)sb;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)sa, *y = (const void *)sb;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	return a->len == b->len;
}
