/*
 * access.c - access-log lines (see access.h). One line per txn, written by
 * the worker into its ring; the logger thread writes it out.
 */
#include "proxy/access.h"

#include <stdio.h>
#include <string.h>

/* Writing stops at `lim`, which stays below cap - 1 so the closing '\n'
 * always fits and the length stays < cap. String fields get a budget each
 * (`field`) so one long field cannot push the ones after it out. */
struct w {
	char *p;
	size_t n, lim;
	size_t field;
};

static void put(struct w *w, const char *s, size_t n)
{
	if (w->n + n > w->lim)
		n = w->lim - w->n;
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void puts_(struct w *w, const char *s)
{
	put(w, s, strlen(s));
}

static void putu(struct w *w, uint64_t v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%llu", (unsigned long long)v);

	put(w, t, (size_t)n);
}

static const char hexd[] = "0123456789abcdef";

/* JSON string body (no quotes): escapes ", \, control bytes; bytes >= 0x80
 * are written as \u00XX so the line stays valid UTF-8 whatever came in. */
static void put_json(struct w *w, const char *s, size_t n)
{
	size_t end = w->n + w->field < w->lim ? w->n + w->field : w->lim;

	for (size_t i = 0; i < n && w->n + 6 <= end; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };

			put(w, e, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hexd[ch >> 4], hexd[ch & 15] };

			put(w, e, 6);
		} else {
			w->p[w->n++] = (char)ch;
		}
	}
}

static void put_text(struct w *w, const char *s, size_t n)
{
	size_t end = w->n + w->field < w->lim ? w->n + w->field : w->lim;

	for (size_t i = 0; i < n && w->n + 4 <= end; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
			char e[4] = { '\\', 'x', hexd[ch >> 4], hexd[ch & 15] };

			put(w, e, 4);
		} else {
			w->p[w->n++] = (char)ch;
		}
	}
}

static void json_field(struct w *w, const char *name, const char *v, size_t n)
{
	puts_(w, ",\"");
	puts_(w, name);
	puts_(w, "\":\"");
	put_json(w, v, n);
	puts_(w, "\"");
}

size_t moat_access_format(char *out, size_t cap, int format, const struct moat_access_rec *r)
{
	struct w w = { out, 0, 0, 0 };
	char tmp[64];

	if (cap < 2) {
		if (cap)
			out[0] = '\0';
		return 0;
	}
	w.lim = cap - 2;
	/* The fixed parts of a line take under 320 bytes; the nine string
	 * fields share the rest. */
	w.field = cap > 320 ? (cap - 320) / 9 : 0;

	if (format == MOAT_ACCESS_JSON) {
		puts_(&w, "{\"time\":\"");
		puts_(&w, r->time_iso);
		puts_(&w, "\"");
		json_field(&w, "client", r->client, strlen(r->client));
		json_field(&w, "method", r->method, r->method_len);
		json_field(&w, "uri", r->uri, r->uri_len);
		if (r->h2)
			snprintf(tmp, sizeof(tmp), "HTTP/2.0");
		else
			snprintf(tmp, sizeof(tmp), "HTTP/1.%d", r->minor);
		json_field(&w, "proto", tmp, strlen(tmp));
		json_field(&w, "host", r->host, r->host_len);
		puts_(&w, ",\"status\":");
		putu(&w, (uint64_t)r->status);
		puts_(&w, ",\"bytes_in\":");
		putu(&w, r->bytes_in);
		puts_(&w, ",\"bytes_out\":");
		putu(&w, r->bytes_out);
		snprintf(tmp, sizeof(tmp), ",\"duration_ms\":%.3f", (double)r->duration_us / 1000.0);
		puts_(&w, tmp);
		if (r->upstream)
			json_field(&w, "upstream", r->upstream, strlen(r->upstream));
		if (r->server && r->server[0])
			json_field(&w, "server", r->server, strlen(r->server));
		json_field(&w, "user_agent", r->ua, r->ua_len);
		json_field(&w, "referer", r->referer, r->referer_len);
		puts_(&w, ",\"conn\":");
		putu(&w, r->conn_id);
		puts_(&w, ",\"conn_requests\":");
		putu(&w, r->conn_requests);
		puts_(&w, "}");
	} else {
		/* host - - [time] "METHOD uri HTTP/1.x" status bytes ["referer" "ua"] */
		puts_(&w, r->client);
		puts_(&w, " - - [");
		puts_(&w, r->time_clf);
		puts_(&w, "] \"");
		put_text(&w, r->method, r->method_len);
		puts_(&w, " ");
		put_text(&w, r->uri, r->uri_len);
		if (r->h2)
			snprintf(tmp, sizeof(tmp), " HTTP/2.0\" %d ", r->status);
		else
			snprintf(tmp, sizeof(tmp), " HTTP/1.%d\" %d ", r->minor, r->status);
		puts_(&w, tmp);
		if (r->bytes_out)
			putu(&w, r->bytes_out);
		else
			puts_(&w, "-");
		if (format == MOAT_ACCESS_COMBINED) {
			puts_(&w, " \"");
			if (r->referer_len)
				put_text(&w, r->referer, r->referer_len);
			else
				puts_(&w, "-");
			puts_(&w, "\" \"");
			if (r->ua_len)
				put_text(&w, r->ua, r->ua_len);
			else
				puts_(&w, "-");
			puts_(&w, "\"");
		}
	}
	w.p[w.n++] = '\n';
	return w.n;
}
