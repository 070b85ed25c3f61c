/*
 * access.h - formatting one access-log line, pure.
 */
#ifndef MOAT_PROXY_ACCESS_H
#define MOAT_PROXY_ACCESS_H

#include <stddef.h>
#include <stdint.h>

struct moat_access_rec {
	const char *time_iso;      /* "2026-11-27T12:00:00.123Z" */
	const char *time_clf;      /* "27/Nov/2026:12:00:00 +0000" */
	const char *client;        /* client address text */
	const char *method; size_t method_len;
	const char *uri; size_t uri_len;
	const char *host; size_t host_len;
	const char *ua; size_t ua_len;
	const char *referer; size_t referer_len;
	int minor;                 /* HTTP/1.minor */
	int h2;                    /* the request came over HTTP/2: "HTTP/2.0" */
	int status;
	uint64_t bytes_in;         /* request bytes read (head + body) */
	uint64_t bytes_out;        /* response body bytes sent */
	uint64_t duration_us;
	const char *upstream;      /* NULL when none */
	const char *server;        /* backend address; "" when none */
	uint64_t conn_id;
	unsigned conn_requests;
};

#define MOAT_ACCESS_JSON     0
#define MOAT_ACCESS_COMBINED 1
#define MOAT_ACCESS_COMMON   2

/* Writes one line ending in '\n' into out (truncating long fields);
 * returns its length (< cap). JSON strings are escaped; in the text
 * formats, quotes, backslashes and control bytes are escaped as \xHH. */
size_t moat_access_format(char *out, size_t cap, int format, const struct moat_access_rec *r);

#endif
