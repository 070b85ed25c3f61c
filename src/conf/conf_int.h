/*
 * conf_int.h - what the files of src/conf share, and nobody else uses.
 *
 *   conf.c         snapshot lifetime (defaults, free), the error buffer,
 *                  loading a file, the one-line proxy mode, printing, equality
 *   conf_yaml.c    the YAML walker: positions, errors, tables of keys
 *   conf_schema.c  the keys of every section and their checks; the load
 *   conf_upstream.c  the "upstreams" section: servers, balancing, health,
 *                  outlier ejection, retries, queueing
 *   conf_admin.c   the "admin" section and --admin
 *   conf_tls.c     listeners' tls / h2c / redirect_https, upstreams' tls,
 *                  --cert / --key (conf_tls.h)
 *   conf_values.c  the scalar parsers: durations, sizes, CIDRs, listen and
 *                  server addresses, names; and their formatting back
 */
#ifndef MOAT_CONF_CONF_INT_H
#define MOAT_CONF_CONF_INT_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#if defined(__GNUC__) || defined(__clang__)
#define MOAT_CONF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MOAT_CONF_PRINTF(f, a)
/*
 * Reads the whole file at `path` (at most MOAT_CONF_MAX_FILE bytes) into a
 * malloc'd, NUL-terminated *out of *len bytes. Returns 0, or -errno:
 * *opened says whether the open itself succeeded; -EFBIG past the maximum.
 * Control thread.
 */
int moat_conf_read_file(const char *path, char **out, size_t *len, int *opened);

/* `indent` `key`: "s" as a YAML double-quoted scalar that reads back byte
 * for byte (--print-config). */
void moat_conf_put_key_string(FILE *out, const char *indent, const char *key, const char *s);

/* Equality pieces of moat_conf_equal: strings (NULL equals only NULL) and
 * CIDR lists in order. Pure. */
int moat_conf_str_eq(const char *a, const char *b);
int moat_conf_cidrs_eq(const struct moat_conf_cidr *a, size_t na, const struct moat_conf_cidr *b, size_t nb);

#endif

/* The response headers every snapshot hides, before proxy.hide_headers. */
extern const char *const moat_conf_default_hide_headers[];
#define MOAT_CONF_NDEFAULT_HIDE_HEADERS 2

/*
 * Allocates a snapshot holding every default of limits.h (and the default
 * hidden headers); `file` is copied when not NULL. Returns NULL when out of
 * memory. The caller fills listeners, upstreams and routes.
 */
struct moat_conf *moat_conf_new(const char *file);

/* Names of the algorithms and hash keys as written in the file, indexed by
 * enum moat_lb_algo / enum moat_lb_hash_key (conf_upstream.c). */
#define MOAT_CONF_NLB_ALGOS 5
#define MOAT_CONF_NHASH_KEYS 4
extern const char *const moat_conf_lb_algo_names[MOAT_CONF_NLB_ALGOS];
extern const char *const moat_conf_hash_key_names[MOAT_CONF_NHASH_KEYS];

/* What an enabled health_check sends unless told otherwise. */
#define MOAT_CONF_DEFAULT_HEALTH_METHOD "GET"
#define MOAT_CONF_DEFAULT_HEALTH_PATH   "/"

/* Fills a server with the defaults of limits.h (weight 1, not a backup, not
 * draining, no connection limit); the address is left alone. Pure. */
void moat_conf_server_init(struct moat_conf_server *s);

/* Fills an upstream with the defaults of limits.h: round_robin, no sticky
 * cookie, health checks off (their numbers at their defaults; the strings
 * stay NULL until a health_check block enables them), outlier and retry at
 * their defaults. Name and servers are left alone; allocates nothing. Pure. */
void moat_conf_upstream_init(struct moat_conf_upstream *u);

/* Appends one formatted line (a '\n' is added) to `e`; `e` may be NULL.
 * Returns 0, or -ENOMEM (the message is then lost but still counted). */
int moat_conf_errorf(struct moat_conf_errors *e, const char *fmt, ...) MOAT_CONF_PRINTF(2, 3);

/* Adds `name` (any case, length `len`) lowercased to the list (*list, *n)
 * unless already there. Returns 0, 1 when it was already there, -ENOMEM. */
int moat_conf_header_add(char ***list, size_t *n, const char *name, size_t len);

/* Outcome of the address parsers below, besides 0. */
#define MOAT_CONF_ESYNTAX (-4101) /* not of the expected form; `why` says what is off */
#define MOAT_CONF_EVALUE  (-4102) /* of the form but unusable; `why` is the whole message */
#define MOAT_CONF_ENOMEM  (-4103) /* out of memory */

/* What a listen address and a server address look like, for messages. */
#define MOAT_CONF_LISTEN_FORM "an address like \"127.0.0.1:8080\", \"[::1]:8080\" or \":8080\""
#define MOAT_CONF_SERVER_FORM "\"host:port\" or \"http://host:port\""

/*
 * Parses a listen address: "IPv4:port", "[IPv6]:port", "*:port" or ":port"
 * (any IPv4 address). Numeric only: no lookups. Fills out->ss, out->len and
 * out->text (a copy of `s`, owned by `out`). On failure returns
 * MOAT_CONF_ESYNTAX or MOAT_CONF_EVALUE with `why` filled, or MOAT_CONF_ENOMEM,
 * and leaves nothing allocated in `out`.
 */
int moat_conf_parse_listen(const char *s, struct moat_conf_addr *out, char *why, size_t whylen);

/*
 * Parses a server address: "host:port", "[IPv6]:port", or a URL
 * "SCHEME://host[:port][/]" with the schemes http:// and h2c:// (port 80 by
 * default), https:// and h2:// (port 443 by default), any case. A host name
 * is resolved with getaddrinfo (first result) unless moat_conf_no_resolve
 * is set. Fills out->addr (ss, len, text: "host:port" without the scheme,
 * the default port added), out->host (both owned by `out`), out->scheme
 * (MOAT_SCHEME_HTTP without a URL) and out->is_name (1 when the host is a
 * name rather than a numeric literal);
 * weight, backup, drain and max_connections are not touched. Failure as for
 * moat_conf_parse_listen.
 */
int moat_conf_parse_server(const char *s, struct moat_conf_server *out, char *why, size_t whylen);

/* Writes `ms` as the shortest exact text moat_conf_parse_duration reads
 * back ("75s", "500ms", "2h", "0"); `buf` of at least 32 bytes. Pure. */
void moat_conf_format_duration(uint64_t ms, char *buf, size_t len);

/* Same for sizes ("8KiB", "1MiB", "300"). Pure. */
void moat_conf_format_size(uint64_t bytes, char *buf, size_t len);

/* Writes the CIDR block as "10.0.0.0/8" or "::1/128"; `buf` of at least 64 bytes. Pure. */
void moat_conf_format_cidr(const struct moat_conf_cidr *b, char *buf, size_t len);

/* Returns 1 when `s` (length `len`) is a non-empty HTTP field name (RFC 9110 token). Pure. */
int moat_conf_header_name_ok(const char *s, size_t len);

/* Returns 1 when `s` (length `len`) is a non-empty DNS-style name of at most
 * 253 characters: letters, digits, '-', '_' and '.'. Pure. */
int moat_conf_hostname_ok(const char *s, size_t len);

/* Returns 1 when `s` is a non-empty name of [A-Za-z0-9_.-]. Pure. */
int moat_conf_upstream_name_ok(const char *s, size_t len);

/* Writes `s` (`len` bytes) double-quoted for a message: '"' and '\\'
 * escaped, control characters as \xNN, cut with "..." after about `max`
 * characters (never inside a UTF-8 sequence); `buf` of at least 16 bytes. Pure. */
void moat_conf_quote(const char *s, size_t len, size_t max, char *buf, size_t buflen);

/* Returns 1 when both hold the same socket address (family, address, port,
 * IPv6 scope); the text is not compared. Pure. */
int moat_conf_addr_equal(const struct moat_conf_addr *a, const struct moat_conf_addr *b);

/* Parses a decimal integer of digits only (no sign, no spaces); returns 0 or -1. Pure. */
int moat_conf_parse_uint(const char *s, uint64_t *out);

/*
 * Parses an admin listen address (conf_admin.c): a listen address as
 * above, or "unix:PATH" (a path of at most 107 bytes, no control
 * characters). Replaces a->addr (text "unix:PATH" for a unix socket, ss
 * unused) and a->unix_path; failure as for moat_conf_parse_listen.
 */
int moat_conf_admin_parse_listen(const char *s, struct moat_conf_admin *a, char *why, size_t whylen);

/* The index of the listener whose address the admin listener of `c` would
 * take (same address, or the same port with a wildcard address on either
 * side), or -1. Pure. */
long moat_conf_admin_conflict(const struct moat_conf *c);

/*
 * Reads the whole file at `path` (at most MOAT_CONF_MAX_FILE bytes) into a
 * malloc'd, NUL-terminated *out of *len bytes. Returns 0, or -errno:
 * *opened says whether the open itself succeeded; -EFBIG past the maximum.
 * Control thread.
 */
int moat_conf_read_file(const char *path, char **out, size_t *len, int *opened);

/* `indent` `key`: "s" as a YAML double-quoted scalar that reads back byte
 * for byte (--print-config). */
void moat_conf_put_key_string(FILE *out, const char *indent, const char *key, const char *s);

/* Equality pieces of moat_conf_equal: strings (NULL equals only NULL) and
 * CIDR lists in order. Pure. */
int moat_conf_str_eq(const char *a, const char *b);
int moat_conf_cidrs_eq(const struct moat_conf_cidr *a, size_t na, const struct moat_conf_cidr *b, size_t nb);

#endif
