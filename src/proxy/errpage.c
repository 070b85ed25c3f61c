/*
 * errpage.c - moat's own responses (see errpage.h).
 */
#include "proxy/errpage.h"

#include <stdio.h>
#include <string.h>

#include "http/status.h"

const char *moat_errpage_reason(int status)
{
	const char *r = moat_http_reason(status);

	return r ? r : "Error";
}

int moat_errpage_write(struct moat_buf *out, int status, int keepalive, int head_only)
{
	return moat_errpage_write_ex(out, status, keepalive, head_only, NULL, 0, NULL);
}

int moat_errpage_write_ex(struct moat_buf *out, int status, int keepalive, int head_only, const char *extra,
			  size_t extra_len, const char *id)
{
	char body[384], head[256];
	const char *reason = moat_errpage_reason(status);
	int has_id = id != NULL && id[0] != '\0';
	int bl = snprintf(body, sizeof(body),
			  "<!doctype html>\n<html><head><title>%d %s</title></head>"
			  "<body><h1>%d %s</h1>%s%.64s%s</body></html>\n",
			  status, reason, status, reason, has_id ? "<p>Reference: " : "", has_id ? id : "",
			  has_id ? "</p>" : "");
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
			  "Content-Length: %d\r\nCache-Control: no-store\r\n%s",
			  status, reason, bl, keepalive ? "" : "Connection: close\r\n");

	if (moat_buf_append(out, head, (size_t)hl) < 0)
		return -1;
	if (extra_len && moat_buf_append(out, extra, extra_len) < 0)
		return -1;
	if (moat_buf_append(out, "\r\n", 2) < 0)
		return -1;
	if (!head_only && moat_buf_append(out, body, (size_t)bl) < 0)
		return -1;
	return 0;
}
