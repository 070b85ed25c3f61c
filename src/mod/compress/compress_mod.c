/*
 * compress_mod.c - the "compress" module: a route's responses compressed
 * on the fly (gzip, br, zstd) for the clients that ask for it.
 *
 *   request ..... the route has compress on: the request's Accept-Encoding
 *                 picks the coding among the route's (accept_encoding.h);
 *                 kept in the txn's slot with whether it was HEAD
 *   resp_head ... policy.h decides on the backend's head and names the
 *                 field edits (Content-Encoding, Vary, weak ETag, no
 *                 Content-Length ...); YES: an encoder (codec.h) and
 *                 TRANSFORM; else PASS, with Vary when the answer depended
 *                 on Accept-Encoding
 *   resp_body ... the backend's de-framed bytes through the encoder into
 *                 the sink; the proxy frames them (chunked for HTTP/1.1,
 *                 close-delimited for HTTP/1.0)
 *   txn_end ..... the encoder and the slot are freed
 *
 * A HEAD request gets the fields a GET would get (Content-Encoding, Vary,
 * weak ETag, no Content-Length) and no body, so that the two agree.
 * A response whose edits do not fit the head's room goes uncompressed
 * (with Vary if that fits); so does one whose encoder cannot be made.
 *
 * Owns per txn one small slot and, while a body is compressed, one
 * encoder (its memory per coding: codec.h); both are freed at the end of
 * the body or with the txn. No generation state. The encoders alive in
 * the process are bounded (memory per stream: codec.h): past
 * COMPRESS_HEAVY_MAX br / zstd streams a response that would get one is
 * gzipped instead (when the client takes gzip), past COMPRESS_GZIP_MAX
 * gzip streams it is sent uncompressed -- a flood of slow readers cannot
 * make moat hold gigabytes of compressor state.
 *
 * The encoder runs in RUN mode: output comes out as the codec fills a
 * block, so a slow streamed body reaches the client in bursts. A
 * text/event-stream response (only compressed when a route lists the
 * type) is flushed on every write instead.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/log.h"
#include "http/accept_encoding.h"
#include "mod/compress/codec.h"
#include "mod/compress/compress_mod.h"
#include "mod/compress/policy.h"
#include "proxy/phase.h"

#define COMPRESS_HEAVY_MAX 128u  /* br / zstd streams at once: ~3 / ~2 MiB each */
#define COMPRESS_GZIP_MAX  1024u /* gzip streams at once: ~262 KiB each */

static atomic_uint heavy_live, gzip_live;

_Static_assert(MOAT_CONF_CODING_GZIP == MOAT_AE_BIT(MOAT_AE_GZIP), "conf coding bits are AE bits");
_Static_assert(MOAT_CONF_CODING_BR == MOAT_AE_BIT(MOAT_AE_BR), "conf coding bits are AE bits");
_Static_assert(MOAT_CONF_CODING_ZSTD == MOAT_AE_BIT(MOAT_AE_ZSTD), "conf coding bits are AE bits");

/* One txn's state. Owned by the txn (its module slot) until txn_end. */
struct cz_slot {
	int coding;                 /* moat_ae_choose()'s answer over the route's codings */
	int head;                   /* the request was HEAD */
	int flush;                  /* flush on every write (a stream of events) */
	int gzip_ok;                /* the client takes gzip (the fallback under load) */
	atomic_uint *live;          /* the counter enc is counted in, or NULL */
	struct moat_encoder *enc;   /* while a body is compressed */
};

/* Frees the encoder and gives back its place in the count. */
static void enc_free(struct cz_slot *s)
{
	moat_encoder_free(s->enc);
	s->enc = NULL;
	if (s->live)
		atomic_fetch_sub_explicit(s->live, 1, memory_order_relaxed);
	s->live = NULL;
}

/* A place for a stream of `coding`; the coding to use (gzip for br / zstd
 * past their bound when the client takes it), or 0: none. */
static int take_place(struct cz_slot *s, int coding)
{
	if (coding == MOAT_AE_BR || coding == MOAT_AE_ZSTD) {
		if (atomic_fetch_add_explicit(&heavy_live, 1, memory_order_relaxed) < COMPRESS_HEAVY_MAX) {
			s->live = &heavy_live;
			return coding;
		}
		atomic_fetch_sub_explicit(&heavy_live, 1, memory_order_relaxed);
		if (!s->gzip_ok)
			return 0;
		coding = MOAT_AE_GZIP;
	}
	if (atomic_fetch_add_explicit(&gzip_live, 1, memory_order_relaxed) < COMPRESS_GZIP_MAX) {
		s->live = &gzip_live;
		return coding;
	}
	atomic_fetch_sub_explicit(&gzip_live, 1, memory_order_relaxed);
	return 0;
}

static void route_conf(const struct moat_conf_route_compress *rc, struct moat_compress_conf *cf)
{
	cf->types = (const char *const *)rc->types;
	cf->ntypes = rc->types ? rc->ntypes : 0;
	cf->min_size = rc->min_size;
	cf->offered = rc->codings & MOAT_AE_OFFER_ALL;
}

static int level_of(const struct moat_conf_route_compress *rc, int coding)
{
	switch (coding) {
	case MOAT_AE_GZIP:
		return rc->gzip_level;
	case MOAT_AE_BR:
		return rc->br_level;
	case MOAT_AE_ZSTD:
		return rc->zstd_level;
	default:
		return 0;
	}
}

static enum moat_mod_verdict cz_request(struct moat_mod_req *q)
{
	struct moat_compress_conf cf;
	struct moat_ae ae;
	struct cz_slot *s;

	if (!q->h || !q->route || !q->route->compress.on)
		return MOAT_MOD_NEXT;
	s = *q->slot;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return MOAT_MOD_NEXT; /* sent as the backend sends it */
		*q->slot = s;
	}
	route_conf(&q->route->compress, &cf);
	moat_ae_from_head(&ae, q->h);
	s->coding = moat_ae_choose(&ae, cf.offered);
	s->gzip_ok = (cf.offered & MOAT_AE_BIT(MOAT_AE_GZIP)) && moat_ae_q(&ae, MOAT_AE_GZIP) > 0;
	s->head = q->h->method_len == 4 && memcmp(q->h->method, "HEAD", 4) == 0;
	return MOAT_MOD_NEXT;
}

static int has_name(const struct moat_mod_resp *r, const char *name)
{
	for (size_t i = 0; i < r->nhide; i++)
		if (r->hide[i] == name || strcmp(r->hide[i], name) == 0)
			return 1;
	return 0;
}

/* Appends d's edits to r's; 0, or -ENOBUFS (r unchanged) when they do
 * not fit. */
static int add_edits(struct moat_mod_resp *r, const struct moat_compress_decision *d)
{
	const char *const *hide;
	size_t nhide, len, fresh = 0;

	if (r->extra_len > sizeof(r->extra) ||
	    moat_compress_edits(r->h, d, &hide, &nhide, r->extra + r->extra_len, sizeof(r->extra) - r->extra_len,
				&len) < 0)
		return -ENOBUFS;
	for (size_t i = 0; i < nhide; i++)
		if (!has_name(r, hide[i]))
			fresh++;
	if (r->nhide + fresh > MOAT_MOD_RESP_HIDE_MAX)
		return -ENOBUFS;
	for (size_t i = 0; i < nhide; i++)
		if (!has_name(r, hide[i]))
			r->hide[r->nhide++] = hide[i];
	r->extra_len += len;
	return 0;
}

/* Nonzero when the response is a stream of events (flushed as it comes). */
static int is_event_stream(const struct moat_h1_head *h)
{
	static const char *const sse[] = { "text/event-stream" };

	for (size_t i = 0; i < h->nheaders; i++)
		if (moat_h1_name_is(&h->headers[i], "content-type", 12))
			return moat_compress_type_ok(sse, 1, h->headers[i].value, h->headers[i].value_len);
	return 0;
}

static enum moat_mod_rverdict cz_resp_head(struct moat_mod_req *q, struct moat_mod_resp *r)
{
	struct cz_slot *s = *q->slot;
	const struct moat_conf_route_compress *rc;
	struct moat_compress_conf cf;
	struct moat_compress_decision d;
	int head;

	if (!s || !q->route)
		return MOAT_MOD_R_PASS;
	rc = &q->route->compress;
	enc_free(s); /* a head seen before (none expected) */
	route_conf(rc, &cf);
	head = s->head || r->request_was_head;
	moat_compress_decide(&cf, r->h, head, s->coding, &d);
	if (d.verdict == MOAT_COMPRESS_NO_HEAD && s->coding > 0 && (cf.offered & MOAT_AE_BIT(s->coding))) {
		/* HEAD: the fields the GET would get, no body */
		d.verdict = MOAT_COMPRESS_YES;
		d.coding = s->coding;
	}
	if (!d.vary)
		return MOAT_MOD_R_PASS;
	if (d.verdict == MOAT_COMPRESS_YES && !head) {
		int coding = take_place(s, d.coding);

		if (coding) {
			d.coding = coding;
			s->enc = moat_encoder_new((enum moat_ae_coding)coding, level_of(rc, coding), d.body_len);
			if (!s->enc)
				MOAT_WARN("%s: compress: no memory for a %s encoder; sent uncompressed",
					  moat_mod_client_text(q), moat_ae_name(coding));
		}
	}
	if ((d.verdict == MOAT_COMPRESS_YES && !head && !s->enc) || add_edits(r, &d) < 0) {
		/* uncompressed, saying it depends on Accept-Encoding if it can */
		enc_free(s);
		d.verdict = MOAT_COMPRESS_NO_ACCEPT;
		d.coding = 0;
		d.body_len = 0;
		(void)add_edits(r, &d);
		return MOAT_MOD_R_PASS;
	}
	if (!s->enc)
		return MOAT_MOD_R_PASS;
	s->flush = is_event_stream(r->h);
	return MOAT_MOD_R_TRANSFORM;
}

static size_t to_sink(void *ctx, const void *p, size_t n)
{
	struct moat_mod_sink *k = ctx;

	return k->put(k, p, n) == 0 ? n : 0;
}

static int cz_resp_body(struct moat_mod_req *q, const char *data, size_t len, int end, struct moat_mod_sink *sink)
{
	struct cz_slot *s = *q->slot;
	enum moat_codec_op op = end ? MOAT_CODEC_FINISH : s && s->flush ? MOAT_CODEC_FLUSH : MOAT_CODEC_RUN;
	int rc;

	if (!s || !s->enc || !sink)
		return -1;
	if (len == 0 && !end)
		return 0;
	rc = moat_encoder_write(s->enc, data ? data : "", len, op, to_sink, sink);
	if (rc < 0) {
		if (rc != MOAT_CODEC_ESINK)
			MOAT_WARN("%s: compress: %s encoder failed (%d); response cut", moat_mod_client_text(q),
				  moat_encoder_name(s->enc), rc);
		return -1;
	}
	if (end) {
		MOAT_DEBUG("%s: compress: %s %llu -> %llu bytes, %zu bytes held at most", moat_mod_client_text(q),
			   moat_encoder_name(s->enc), (unsigned long long)moat_encoder_in(s->enc),
			   (unsigned long long)moat_encoder_out(s->enc), moat_encoder_mem_peak(s->enc));
		/* the library's memory goes now, not when the txn is logged */
		enc_free(s);
	}
	return 0;
}

static void cz_txn_end(void *state, void *slot)
{
	struct cz_slot *s = slot;

	(void)state;
	if (!s)
		return;
	enc_free(s);
	free(s);
}

static int cz_route_on(const struct moat_conf_route *r)
{
	return r->compress.on;
}

const struct moat_mod moat_mod_compress = {
	.name = "compress",
	.route_on = cz_route_on,
	.request = cz_request,
	.resp_head = cz_resp_head,
	.resp_body = cz_resp_body,
	.txn_end = cz_txn_end,
};
