/*
 * cache_disk_fuzz.c - libFuzzer target for moat_cache_disk_parse(), the
 * check of a cache file's metadata that scan runs on every file found in
 * the cache directory (src/mod/cache/disk.h): a file there is untrusted
 * (torn by a crash, of another version, written by someone else).
 *
 * Input: the whole file image (its size is the file size), parsed from
 * an exactly sized heap copy so ASan sees any over-read. Checked, beyond
 * crashes: the whole image gives 0 or -1 (never "too short"), -1 when
 * shorter than a header; on 0 the strings lie inside the buffer, back to
 * back after the 60-byte header, and header + strings + body make the
 * file size; parsing the way scan does (the header first,
 * then exactly what it asked for: more than the header, at most the
 * file, at most 60 + 4 MiB) gives the same answer and record; a buffer
 * longer than the file is refused.
 *
 * Most random images fail the metadata checksum, so each input is parsed
 * a second time with the checksum at bytes 52..56 recomputed by this
 * driver (when the lengths fit in the image): that reaches the checks
 * past it (file size, the record's fields). Seeds: fuzz/corpus/cache_disk/,
 * made by fuzz/cache_disk_seeds.py.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mod/cache/disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_LEN 60
#define NEED_MAX (HDR_LEN + 4 * ((size_t)1 << 20))

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void inside(const char *s, size_t n, const uint8_t *buf, size_t len)
{
	if (s == NULL || s < (const char *)buf || n > len || s - (const char *)buf > (ptrdiff_t)(len - n))
		abort();
}

static int same_rec(const struct moat_cache_disk_rec *a, const struct moat_cache_disk_rec *b,
		    const uint8_t *abuf, const uint8_t *bbuf)
{
	return a->key - (const char *)abuf == b->key - (const char *)bbuf && a->key_len == b->key_len &&
	       a->vkey_len == b->vkey_len && a->head_len == b->head_len && a->tags_len == b->tags_len &&
	       a->request_time == b->request_time && a->response_time == b->response_time &&
	       a->body_len == b->body_len && a->file_size == b->file_size && a->id == b->id;
}

/* Parses buf[0..size) as a whole file and checks the contract. */
static void one(const uint8_t *buf, size_t size)
{
	struct moat_cache_disk_rec rec, rec2;
	uint8_t *part;
	int r, r2;

	memset(&rec, 0, sizeof(rec));
	r = moat_cache_disk_parse(buf, size, size, &rec);
	if (r != 0 && r != -1)
		abort();   /* the whole file is never too short for itself */
	/* A buffer that claims more bytes than the file has is refused. */
	if (size > 0 && moat_cache_disk_parse(buf, size, size - 1, &rec2) != -1)
		abort();
	if (size < HDR_LEN) {
		if (r != -1)
			abort();
		return;
	}
	if (r == 0) {
		size_t slen = rec.key_len + rec.vkey_len + rec.head_len + rec.tags_len;

		if (rec.file_size != size || rec.id != 0 || HDR_LEN + slen + rec.body_len != size)
			abort();
		if (rec.key != (const char *)buf + HDR_LEN || rec.vkey != rec.key + rec.key_len ||
		    rec.head != rec.vkey + rec.vkey_len || rec.tags != rec.head + rec.head_len)
			abort();
		inside(rec.key, rec.key_len, buf, size);
		inside(rec.vkey, rec.vkey_len, buf, size);
		inside(rec.head, rec.head_len, buf, size);
		inside(rec.tags, rec.tags_len, buf, size);
		if (rec.key_len >= (1u << 20) || rec.vkey_len >= (1u << 20) || rec.head_len >= (1u << 20) ||
		    rec.tags_len >= (1u << 20) || rec.body_len >= ((uint64_t)1 << 40))
			abort();
	}

	/* As scan reads it: the header, then what it asks for, each part in
	 * its own exactly sized copy. */
	memset(&rec2, 0, sizeof(rec2));
	part = malloc(HDR_LEN);
	if (part == NULL)
		abort();
	memcpy(part, buf, HDR_LEN);
	r2 = moat_cache_disk_parse(part, HDR_LEN, size, &rec2);
	if (r2 > 0) {
		if ((size_t)r2 <= HDR_LEN || (size_t)r2 > NEED_MAX || (size_t)r2 > size)
			abort();
		free(part);
		part = malloc((size_t)r2);
		if (part == NULL)
			abort();
		memcpy(part, buf, (size_t)r2);
		r2 = moat_cache_disk_parse(part, (size_t)r2, size, &rec2);
	}
	if (r2 != r || (r == 0 && !same_rec(&rec, &rec2, buf, part)))
		abort();
	free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	uint64_t slen;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	one(buf, size);

	/* Again with a checksum that matches, when the strings fit. */
	if (size >= HDR_LEN) {
		slen = (uint64_t)le32(buf + 12) + le32(buf + 16) + le32(buf + 20) + le32(buf + 24);
		if (HDR_LEN + slen <= size) {
			uLong c = crc32(0L, Z_NULL, 0);

			c = crc32(c, buf, 52);
			c = crc32(c, buf + HDR_LEN, (uInt)slen);
			buf[52] = (uint8_t)c;
			buf[53] = (uint8_t)(c >> 8);
			buf[54] = (uint8_t)(c >> 16);
			buf[55] = (uint8_t)(c >> 24);
			one(buf, size);
		}
	}
	free(buf);
	return 0;
}
