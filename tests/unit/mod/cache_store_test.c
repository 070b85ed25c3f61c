/*
 * cache_store_test.c - unit tests of src/mod/cache/store.c, the cache's
 * object store (memory index, fill locks, purges, disk tier).
 *
 * Checked: an inserted object is found with its bytes and a reference;
 * Vary variants (Accept-Encoding) are told apart, a request none matches
 * is a vary miss (uri_hit); a new object of the same variant replaces the
 * old one while a reader's reference keeps the old bytes; least recently
 * used eviction within a shard under a small budget, a reference to an
 * evicted object still readable; fill locks (1, then 0 for another
 * caller, takeover after lock_ms, a stale token's unlock ignored, -1 for
 * hfm_ms after an uncacheable fetch, ended early by an insert); purge by
 * key, by tag (exact tokens) and of everything; max_object and the budget
 * refuse; parse_head (Cache-Control lines, Vary lines joined, the first
 * ETag, dates, Age, Set-Cookie); four threads hammering insert / find /
 * purge / lock on a few keys; with a directory: objects survive a close
 * and reopen (index rebuilt from the files, body loaded by find, equal
 * bytes, newest variant wins), a flipped body byte makes find miss and
 * removes the file, an object evicted from memory stays on disk, purges
 * remove files, and the disk budget is kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "mod/cache/store.h"

#define HEAD_OK "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n"
#define HEAD_AE "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nVary: Accept-Encoding\r\n\r\n"

static char dir[256];

static int each_file(void (*fn)(const char *path));

static struct moat_cache_store *open_store(uint64_t memory, uint64_t max_object, const char *disk,
					   uint64_t disk_size)
{
	struct moat_cache_store_cfg cfg = {
		.memory = memory,
		.disk = disk,
		.disk_size = disk_size,
		.max_object = max_object,
		.hfm_ms = 5000,
		.lock_ms = 30000,
	};
	char *why = NULL;
	struct moat_cache_store *s = moat_cache_store_open(&cfg, &why);

	if (s == NULL)
		fprintf(stderr, "open: %s\n", why ? why : "?");
	free(why);
	assert_non_null(s);
	return s;
}

/* Builds, fills and inserts an object; returns it with the caller's
 * reference (NULL when insert refused it). */
static struct moat_cache_obj *add(struct moat_cache_store *s, const char *key, const char *vkey, const char *head,
				  const char *body, size_t body_len, const char *tags)
{
	struct moat_cache_obj *o = moat_cache_obj_new(s, key, strlen(key), vkey, strlen(vkey), head, strlen(head),
						      tags, strlen(tags), 1000, 1001, 0);

	assert_non_null(o);
	assert_int_equal(moat_cache_obj_append(s, o, body, body_len), 0);
	if (moat_cache_insert(s, o) != 0) {
		moat_cache_obj_put(o);
		return NULL;
	}
	return o;
}

static void add_put(struct moat_cache_store *s, const char *key, const char *vkey, const char *head,
		    const char *body, const char *tags)
{
	struct moat_cache_obj *o = add(s, key, vkey, head, body, strlen(body), tags);

	assert_non_null(o);
	moat_cache_obj_put(o);
}

/* The body found for key with no request fields, or NULL; compares it. */
static int found(struct moat_cache_store *s, const char *key, const char *want)
{
	int uri_hit = 7;
	struct moat_cache_obj *o = moat_cache_find(s, key, strlen(key), NULL, 0, &uri_hit);

	if (o == NULL)
		return 0;
	assert_int_equal(uri_hit, 0);
	assert_non_null(o->body);
	assert_int_equal(o->body_len, strlen(want));
	assert_memory_equal(o->body, want, strlen(want));
	moat_cache_obj_put(o);
	return 1;
}

static void test_insert_find(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	struct moat_cache_store_stats st;
	struct moat_cache_obj *o, *f;
	int uri_hit = 7;

	(void)state;
	o = add(s, "example.com/a", "", HEAD_OK, "hello", 5, "");
	assert_non_null(o);
	assert_int_equal(atomic_load(&o->refs), 2); /* ours and the index's */
	f = moat_cache_find(s, "example.com/a", 13, NULL, 0, &uri_hit);
	assert_ptr_equal(f, o);
	assert_int_equal(uri_hit, 0);
	assert_int_equal(atomic_load(&o->refs), 3);
	assert_int_equal(f->resp.status, 200);
	assert_int_equal(f->resp.cc.max_age, 60);
	assert_int_equal(f->resp.request_time, 1000);
	assert_int_equal(f->resp.response_time, 1001);
	moat_cache_obj_put(f);
	moat_cache_obj_put(o);
	/* Keys are compared whole: a prefix, a longer key miss. */
	assert_null(moat_cache_find(s, "example.com/", 12, NULL, 0, &uri_hit));
	assert_int_equal(uri_hit, 0);
	assert_null(moat_cache_find(s, "example.com/ab", 14, NULL, 0, &uri_hit));
	assert_false(found(s, "example.com/b", ""));
	/* An empty body is a body in memory. */
	add_put(s, "example.com/empty", "", HEAD_OK, "", "");
	f = moat_cache_find(s, "example.com/empty", 17, NULL, 0, NULL);
	assert_non_null(f);
	assert_non_null(f->body);
	assert_int_equal(f->body_len, 0);
	moat_cache_obj_put(f);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.inserts, 2);
	assert_true(st.bytes > 0);
	/* Inserting twice, or a head that is not one, is refused. */
	o = moat_cache_find(s, "example.com/a", 13, NULL, 0, NULL);
	assert_int_equal(moat_cache_insert(s, o), -1);
	moat_cache_obj_put(o);
	assert_null(moat_cache_obj_new(s, "k", 1, "", 0, "garbage\r\n\r\n", 11, "", 0, 0, 0, 0));
	assert_null(moat_cache_obj_new(s, "k", 1, "", 0, "HTTP/1.1 200 OK\r\n", 17, "", 0, 0, 0, 0));
	moat_cache_store_close(s);
}

static int vkey_of(const char *vary, const char *ae, char *out, size_t cap)
{
	struct moat_h1_header h = { "Accept-Encoding", 15, ae, ae ? strlen(ae) : 0 };
	int n = moat_cache_vary_key(vary, strlen(vary), &h, ae ? 1 : 0, out, cap - 1);

	assert_true(n >= 0);
	out[n] = '\0';
	return n;
}

static struct moat_cache_obj *find_ae(struct moat_cache_store *s, const char *key, const char *ae, int *uri_hit)
{
	struct moat_h1_header h[2] = {
		{ "Host", 4, "example.com", 11 },
		{ "Accept-Encoding", 15, ae, ae ? strlen(ae) : 0 },
	};

	return moat_cache_find(s, key, strlen(key), h, ae ? 2 : 1, uri_hit);
}

static void test_vary(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	char gz[128], br[128];
	struct moat_cache_obj *o;
	int uri_hit;

	(void)state;
	vkey_of("Accept-Encoding", "gzip", gz, sizeof(gz));
	vkey_of("Accept-Encoding", "br", br, sizeof(br));
	assert_string_not_equal(gz, br);
	add_put(s, "k", gz, HEAD_AE, "GZIP", "");
	add_put(s, "k", br, HEAD_AE, "BROTLI", "");

	o = find_ae(s, "k", "gzip, deflate", &uri_hit);
	assert_non_null(o);
	assert_memory_equal(o->body, "GZIP", 4);
	assert_int_equal(o->resp.vary_len, 15);
	moat_cache_obj_put(o);
	o = find_ae(s, "k", "br", &uri_hit);
	assert_non_null(o);
	assert_memory_equal(o->body, "BROTLI", 6);
	moat_cache_obj_put(o);
	/* A request no variant fits: a vary miss. */
	o = find_ae(s, "k", "zstd", &uri_hit);
	assert_null(o);
	assert_int_equal(uri_hit, 1);
	o = find_ae(s, "k", NULL, &uri_hit);
	assert_null(o);
	assert_int_equal(uri_hit, 1);
	/* A variant without Vary (vkey "") sits beside them; the newest
	 * match wins. */
	add_put(s, "k", "", HEAD_OK, "PLAIN", "");
	o = find_ae(s, "k", "zstd", &uri_hit);
	assert_non_null(o);
	assert_memory_equal(o->body, "PLAIN", 5);
	moat_cache_obj_put(o);
	o = find_ae(s, "k", "gzip", &uri_hit);
	assert_non_null(o);
	assert_memory_equal(o->body, "PLAIN", 5);
	moat_cache_obj_put(o);
	assert_int_equal(moat_cache_purge_key(s, "k", 1), 3);
	assert_null(find_ae(s, "k", "gzip", &uri_hit));
	assert_int_equal(uri_hit, 0);
	moat_cache_store_close(s);
}

static void test_replace(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	struct moat_cache_store_stats st;
	struct moat_cache_obj *old, *o;

	(void)state;
	add_put(s, "k", "", HEAD_OK, "first", "");
	old = moat_cache_find(s, "k", 1, NULL, 0, NULL);
	assert_non_null(old);
	add_put(s, "k", "", HEAD_OK, "second!", "");
	assert_true(found(s, "k", "second!"));
	/* The reader of the old one still has it; it left the index. */
	assert_memory_equal(old->body, "first", 5);
	assert_null(old->entry);
	assert_int_equal(atomic_load(&old->refs), 1);
	moat_cache_obj_put(old);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 1);
	o = moat_cache_find(s, "k", 1, NULL, 0, NULL);
	assert_int_equal(st.bytes, o->size);
	moat_cache_obj_put(o);
	moat_cache_store_close(s);
}

/* n keys that share key0's shard, written into keys[i] (16 bytes each). */
static void same_shard(struct moat_cache_store *s, char keys[][16], int n)
{
	unsigned want = moat_cache_store_shard(s, "lru0", 4);
	int have = 1;

	snprintf(keys[0], 16, "lru0");
	for (int i = 1; have < n; i++) {
		char k[16];

		snprintf(k, sizeof(k), "lru%d", i);
		if (moat_cache_store_shard(s, k, strlen(k)) == want)
			memcpy(keys[have++], k, sizeof(k));
	}
}

static void test_lru(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	struct moat_cache_store_stats st;
	struct moat_cache_obj *o, *held;
	char keys[3][16], body[1000];
	uint64_t size;

	(void)state;
	memset(body, 'x', sizeof(body));
	same_shard(s, keys, 3);
	o = add(s, keys[0], "", HEAD_OK, body, sizeof(body), "");
	size = o->size;
	moat_cache_obj_put(o);
	/* Room for two objects, not three. */
	moat_cache_store_resize(s, 2 * size + size / 2, 1 << 16);
	held = add(s, keys[1], "", HEAD_OK, body, sizeof(body), "");
	assert_non_null(held);
	o = moat_cache_find(s, keys[0], strlen(keys[0]), NULL, 0, NULL); /* keys[0] now most recent */
	assert_non_null(o);
	moat_cache_obj_put(o);
	moat_cache_obj_put(add(s, keys[2], "", HEAD_OK, body, sizeof(body), ""));
	/* keys[1] was the least recently used. */
	o = moat_cache_find(s, keys[1], strlen(keys[1]), NULL, 0, NULL);
	assert_null(o);
	o = moat_cache_find(s, keys[0], strlen(keys[0]), NULL, 0, NULL);
	assert_non_null(o);
	moat_cache_obj_put(o);
	o = moat_cache_find(s, keys[2], strlen(keys[2]), NULL, 0, NULL);
	assert_non_null(o);
	moat_cache_obj_put(o);
	/* The evicted object's reader still has its bytes. */
	assert_null(held->entry);
	assert_memory_equal(held->body, body, sizeof(body));
	moat_cache_obj_put(held);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.objects, 2);
	assert_true(st.bytes <= 2 * size + size / 2);
	/* Many keys over all shards: the budget holds, the newest stays. */
	for (int i = 0; i < 200; i++) {
		char k[32];

		snprintf(k, sizeof(k), "many%d", i);
		moat_cache_obj_put(add(s, k, "", HEAD_OK, body, sizeof(body), ""));
		moat_cache_store_stats(s, &st);
		assert_true(st.bytes <= 2 * size + size / 2);
		o = moat_cache_find(s, k, strlen(k), NULL, 0, NULL);
		assert_non_null(o);
		moat_cache_obj_put(o);
	}
	/* A smaller budget evicts at once; an object over the whole budget
	 * is refused. */
	moat_cache_store_resize(s, size, 1 << 16);
	moat_cache_store_stats(s, &st);
	assert_true(st.bytes <= size);
	moat_cache_store_resize(s, size / 2, 1 << 16);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	assert_null(add(s, "big", "", HEAD_OK, body, 600, ""));
	moat_cache_store_close(s);
}

static void test_lock(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	uint64_t t1, t2, t3;

	(void)state;
	assert_int_equal(moat_cache_lock(s, "k", 1, 100, &t1), 1);
	assert_int_not_equal(t1, 0);
	assert_int_equal(moat_cache_lock(s, "k", 1, 200, &t2), 0);
	assert_int_equal(moat_cache_lock(s, "other", 5, 200, &t3), 1);
	moat_cache_unlock(s, "other", 5, t3, 0, 200);
	/* Not released within lock_ms: the next caller takes it over. */
	assert_int_equal(moat_cache_lock(s, "k", 1, 100 + 29999, &t2), 0);
	assert_int_equal(moat_cache_lock(s, "k", 1, 100 + 30000, &t2), 1);
	assert_int_not_equal(t2, t1);
	/* The first holder's late unlock does not release the new one. */
	moat_cache_unlock(s, "k", 1, t1, 0, 30200);
	assert_int_equal(moat_cache_lock(s, "k", 1, 30300, &t3), 0);
	moat_cache_unlock(s, "k", 1, t2, 0, 30400);
	assert_int_equal(moat_cache_lock(s, "k", 1, 30500, &t3), 1);
	/* Uncacheable: -1 for hfm_ms, then locks again. */
	moat_cache_unlock(s, "k", 1, t3, 1, 40000);
	assert_int_equal(moat_cache_lock(s, "k", 1, 40001, &t1), -1);
	assert_int_equal(moat_cache_lock(s, "k", 1, 44999, &t1), -1);
	assert_int_equal(moat_cache_lock(s, "k", 1, 45000, &t1), 1);
	/* An insert of the key ends the hit-for-miss period. */
	moat_cache_unlock(s, "k", 1, t1, 1, 50000);
	assert_int_equal(moat_cache_lock(s, "k", 1, 50001, &t1), -1);
	add_put(s, "k", "", HEAD_OK, "now cacheable", "");
	assert_int_equal(moat_cache_lock(s, "k", 1, 50002, &t1), 1);
	moat_cache_unlock(s, "k", 1, t1, 0, 50003);
	/* Many keys locked and released, or marked and expired: swept
	 * (nothing to assert but that the store stays sane under ASan). */
	for (int i = 0; i < 5000; i++) {
		char k[16];
		uint64_t t;

		snprintf(k, sizeof(k), "h%d", i);
		assert_int_equal(moat_cache_lock(s, k, strlen(k), 60000 + (uint64_t)i, &t), 1);
		moat_cache_unlock(s, k, strlen(k), t, i % 2, 60000 + (uint64_t)i);
	}
	assert_true(found(s, "k", "now cacheable"));
	moat_cache_store_close(s);
}

static void test_purge(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	struct moat_cache_store_stats st;

	(void)state;
	add_put(s, "a", "", HEAD_OK, "A", "t1\nt2\n");
	add_put(s, "a", "v", HEAD_OK, "A2", "t1\n");
	add_put(s, "b", "", HEAD_OK, "B", "t2\n");
	add_put(s, "c", "", HEAD_OK, "C", "");
	add_put(s, "d", "", HEAD_OK, "D", "t22\nxt2\n");
	assert_int_equal(moat_cache_purge_key(s, "a", 1), 2);
	assert_int_equal(moat_cache_purge_key(s, "a", 1), 0);
	assert_false(found(s, "a", "A"));
	assert_int_equal(moat_cache_purge_tag(s, "t", 1), 0);   /* tags are whole tokens */
	assert_int_equal(moat_cache_purge_tag(s, "T2", 2), 0);  /* case-sensitive */
	assert_int_equal(moat_cache_purge_tag(s, "", 0), 0);
	assert_int_equal(moat_cache_purge_tag(s, "t2", 2), 1);
	assert_false(found(s, "b", "B"));
	assert_true(found(s, "c", "C"));
	assert_true(found(s, "d", "D"));
	assert_int_equal(moat_cache_purge_tag(s, "xt2", 3), 1);
	assert_int_equal(moat_cache_purge_all(s), 1);
	assert_false(found(s, "c", "C"));
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	moat_cache_store_close(s);
}

static void test_limits(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 100, NULL, 0);
	struct moat_cache_obj *o;
	char body[200];

	(void)state;
	memset(body, 'b', sizeof(body));
	assert_null(moat_cache_obj_new(s, "k", 1, "", 0, HEAD_OK, strlen(HEAD_OK), "", 0, 0, 0, 101));
	o = moat_cache_obj_new(s, "k", 1, "", 0, HEAD_OK, strlen(HEAD_OK), "", 0, 0, 0, 100);
	assert_non_null(o);
	assert_int_equal(moat_cache_obj_append(s, o, body, 60), 0);
	assert_int_equal(moat_cache_obj_append(s, o, body, 40), 0);
	assert_int_equal(moat_cache_obj_append(s, o, body, 1), -1);
	assert_int_equal(o->body_len, 100);
	assert_int_equal(moat_cache_insert(s, o), 0);
	assert_int_equal(moat_cache_obj_append(s, o, body, 1), -1); /* immutable now */
	moat_cache_obj_put(o);
	/* Growth by doubling, trimmed at insert. */
	moat_cache_store_resize(s, 1 << 20, 1 << 20);
	o = moat_cache_obj_new(s, "g", 1, "", 0, HEAD_OK, strlen(HEAD_OK), "", 0, 0, 0, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(moat_cache_obj_append(s, o, body, 200), 0);
	assert_true(o->body_cap >= 20000);
	assert_int_equal(moat_cache_insert(s, o), 0);
	assert_int_equal(o->body_cap, 20000);
	moat_cache_obj_put(o);
	moat_cache_store_close(s);
}

static void test_parse_head(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
				   "Cache-Control: public, max-age=60\r\n"
				   "Vary: Accept-Encoding\r\n"
				   "ETag: \"abc\"\r\n"
				   "Cache-Control: s-maxage=5\r\n"
				   "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
				   "Last-Modified: Sat, 05 Nov 1994 08:49:37 GMT\r\n"
				   "Expires: 0\r\n"
				   "Age: 12\r\n"
				   "ETag: \"second\"\r\n"
				   "Vary: Accept-Language ,  Cookie\r\n"
				   "Set-Cookie: a=b\r\n"
				   "\r\n";
	static const char plain[] = "HTTP/1.1 404 Not Found\r\nVary: Origin\r\n\r\n";
	struct moat_cache_store *s = open_store(1 << 20, 1 << 16, NULL, 0);
	struct moat_cache_resp r;
	struct moat_cache_obj *o;

	(void)state;
	assert_int_equal(moat_cache_parse_head(head, strlen(head), &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.cc.flags & MOAT_CC_PUBLIC);
	assert_true(r.cc.flags & MOAT_CC_MAX_AGE);
	assert_true(r.cc.flags & MOAT_CC_S_MAXAGE);
	assert_int_equal(r.cc.max_age, 60);
	assert_int_equal(r.cc.s_maxage, 5);
	assert_int_equal(r.date, 784111777);
	assert_int_equal(r.last_modified, 784111777 - 86400);
	assert_true(r.expires == MOAT_CACHE_TIME_INVALID);
	assert_int_equal(r.age, 12);
	assert_int_equal(r.etag_len, 5);
	assert_memory_equal(r.etag, "\"abc\"", 5);
	assert_true(r.etag > head && r.etag < head + sizeof(head));
	assert_int_equal(r.has_set_cookie, 1);
	assert_int_equal(r.vary_len, strlen("Accept-Encoding,Accept-Language ,  Cookie"));
	assert_memory_equal(r.vary, "Accept-Encoding,Accept-Language ,  Cookie", r.vary_len);

	assert_int_equal(moat_cache_parse_head(plain, strlen(plain), &r), 0);
	assert_int_equal(r.status, 404);
	assert_true(r.date == MOAT_CACHE_TIME_NONE);
	assert_true(r.expires == MOAT_CACHE_TIME_NONE);
	assert_true(r.last_modified == MOAT_CACHE_TIME_NONE);
	assert_true(r.age < 0);
	assert_null(r.etag);
	assert_int_equal(r.has_set_cookie, 0);
	assert_int_equal(r.cc.flags, 0);
	assert_ptr_equal(r.vary, plain + strlen("HTTP/1.1 404 Not Found\r\nVary: "));
	assert_int_equal(r.vary_len, 6);

	assert_int_equal(moat_cache_parse_head("HTTP/1.1 200 OK\r\n", 17, &r), -1);
	assert_int_equal(moat_cache_parse_head("HTTP/1.1 200 OK\r\n\r\nX", 20, &r), -1);
	assert_int_equal(moat_cache_parse_head("", 0, &r), -1);

	/* An object keeps its own joined Vary, and its strings point into
	 * its own head. */
	o = moat_cache_obj_new(s, "k", 1, "", 0, head, strlen(head), "", 0, 5, 6, 0);
	assert_non_null(o);
	assert_memory_equal(o->resp.vary, "Accept-Encoding,Accept-Language ,  Cookie", o->resp.vary_len);
	assert_true(o->resp.etag > o->head && o->resp.etag < o->head + o->head_len);
	assert_int_equal(o->resp.request_time, 5);
	assert_int_equal(o->resp.response_time, 6);
	assert_int_equal(o->resp.cc.max_age, 60);
	moat_cache_obj_put(o);
	moat_cache_store_close(s);
}

/* ---- threads ---- */

#define NTHREADS 4
#define ITERS    20000
#define NKEYS    8

struct hammer {
	struct moat_cache_store *s;
	unsigned seed;
	unsigned long hits;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	char body[3000];

	for (int i = 0; i < ITERS; i++) {
		unsigned r = rand_r(&h->seed), k = r % NKEYS, op = (r / NKEYS) % 16;
		char key[16];
		struct moat_cache_obj *o;
		uint64_t t;
		int lr;

		snprintf(key, sizeof(key), "key%u", k);
		if (op < 6) {
			size_t len = 100 + (r >> 8) % 2900;

			/* Every body is its key's letter repeated, so a reader
			 * can tell a torn or foreign one. */
			memset(body, 'a' + (int)k, len);
			o = moat_cache_obj_new(h->s, key, strlen(key), "", 0, HEAD_OK, strlen(HEAD_OK),
					       k % 2 ? "odd\n" : "even\n", k % 2 ? 4 : 5, 0, 0, 0);
			assert_non_null(o);
			assert_int_equal(moat_cache_obj_append(h->s, o, body, len), 0);
			(void)moat_cache_insert(h->s, o);
			moat_cache_obj_put(o);
		} else if (op < 13) {
			o = moat_cache_find(h->s, key, strlen(key), NULL, 0, NULL);
			if (o != NULL) {
				for (uint64_t j = 0; j < o->body_len; j++)
					if (o->body[j] != 'a' + (int)k)
						fail_msg("foreign byte in %s", key);
				h->hits++;
				moat_cache_obj_put(o);
			}
		} else if (op == 13) {
			(void)moat_cache_purge_key(h->s, key, strlen(key));
		} else if (op == 14) {
			if ((r >> 20) % 8 == 0)
				(void)moat_cache_purge_tag(h->s, "odd", 3);
			else
				(void)moat_cache_purge_all(h->s);
		} else {
			lr = moat_cache_lock(h->s, key, strlen(key), (uint64_t)i, &t);
			if (lr == 1)
				moat_cache_unlock(h->s, key, strlen(key), t, (r >> 12) % 2, (uint64_t)i);
		}
	}
	return NULL;
}

static void run_hammer(struct moat_cache_store *s)
{
	pthread_t th[NTHREADS];
	struct hammer h[NTHREADS];
	struct moat_cache_store_stats st;
	unsigned long hits = 0;

	for (int i = 0; i < NTHREADS; i++) {
		h[i] = (struct hammer){ .s = s, .seed = 1234u + (unsigned)i };
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		hits += h[i].hits;
	}
	assert_true(hits > 0);
	moat_cache_store_stats(s, &st);
	assert_true(st.objects <= NKEYS);
	assert_true(st.bytes <= 12000);
	moat_cache_purge_all(s);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.disk_objects, 0);
	assert_int_equal(st.disk_bytes, 0);
}

static void test_threads(void **state)
{
	/* A budget of about three objects: eviction runs all the time. */
	struct moat_cache_store *s = open_store(12000, 1 << 16, NULL, 0);

	(void)state;
	run_hammer(s);
	moat_cache_store_close(s);
}

/* ---- disk ---- */

static int setup_dir(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/moat_cache_store.XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Calls fn on every "*.mc" file under dir; returns how many. */
static int each_file(void (*fn)(const char *path))
{
	DIR *d = opendir(dir), *sd;
	struct dirent *e, *f;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char sub[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		sd = opendir(sub);
		if (sd == NULL)
			continue;
		while ((f = readdir(sd)) != NULL) {
			size_t l = strlen(f->d_name);
			char p[800];

			if (l < 3 || strcmp(f->d_name + l - 3, ".mc") != 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", sub, f->d_name);
			if (fn != NULL)
				fn(p);
			n++;
		}
		closedir(sd);
	}
	closedir(d);
	return n;
}

static void flip_last(const char *path)
{
	FILE *f = fopen(path, "r+b");
	int c;

	assert_non_null(f);
	assert_int_equal(fseek(f, -1, SEEK_END), 0);
	c = fgetc(f);
	assert_int_equal(fseek(f, -1, SEEK_END), 0);
	fputc(c ^ 0x5a, f);
	fclose(f);
}

/* Waits (bounded) until o's write has finished. */
static void wait_written(struct moat_cache_obj *o)
{
	for (int i = 0; i < 2000 && !__atomic_load_n(&o->on_disk, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_true(__atomic_load_n(&o->on_disk, __ATOMIC_ACQUIRE));
}

static void test_disk_persist(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 20, dir, 1 << 24);
	struct moat_cache_store_stats st;
	struct moat_cache_obj *o;
	char gz[128], big[70000];
	int uri_hit;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	vkey_of("Accept-Encoding", "gzip", gz, sizeof(gz));
	add_put(s, "a", "", HEAD_OK, "alpha", "t1\n");
	add_put(s, "a", "", HEAD_OK, "alpha v2", "t1\n"); /* replaces: its file goes too */
	add_put(s, "v", gz, HEAD_AE, "GZ", "");
	o = add(s, "big", "", HEAD_OK, big, sizeof(big), "");
	moat_cache_obj_put(o);
	add_put(s, "empty", "", HEAD_OK, "", "");
	moat_cache_store_close(s);
	assert_int_equal(each_file(NULL), 4);

	s = open_store(1 << 20, 1 << 20, dir, 1 << 24);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.disk_objects, 4);
	assert_int_equal(st.objects, 0);
	assert_true(st.disk_bytes > sizeof(big));
	assert_true(found(s, "a", "alpha v2"));
	o = moat_cache_find(s, "big", 3, NULL, 0, NULL);
	assert_non_null(o);
	assert_int_equal(o->body_len, sizeof(big));
	assert_memory_equal(o->body, big, sizeof(big));
	assert_int_equal(o->on_disk, 1);
	moat_cache_obj_put(o);
	o = find_ae(s, "v", "gzip", &uri_hit);
	assert_non_null(o);
	assert_memory_equal(o->body, "GZ", 2);
	assert_int_equal(o->resp.vary_len, 15);
	assert_memory_equal(o->tags, "", 1);
	moat_cache_obj_put(o);
	assert_null(find_ae(s, "v", "br", &uri_hit));
	assert_int_equal(uri_hit, 1);
	assert_true(found(s, "empty", ""));
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 4);
	assert_int_equal(st.disk_objects, 4);
	assert_int_equal(st.disk_errors, 0);
	/* Tags survive too; purges remove the files. */
	assert_int_equal(moat_cache_purge_tag(s, "t1", 2), 1);
	assert_int_equal(each_file(NULL), 3);
	assert_int_equal(moat_cache_purge_key(s, "big", 3), 1);
	assert_int_equal(each_file(NULL), 2);
	assert_int_equal(moat_cache_purge_all(s), 2);
	assert_int_equal(each_file(NULL), 0);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.disk_objects, 0);
	assert_int_equal(st.disk_bytes, 0);
	moat_cache_store_close(s);
}

static void test_disk_corrupt(void **state)
{
	struct moat_cache_store *s = open_store(1 << 20, 1 << 20, dir, 1 << 24);
	struct moat_cache_store_stats st;
	int uri_hit = 7;

	(void)state;
	add_put(s, "k", "", HEAD_OK, "precious bytes", "");
	moat_cache_store_close(s);
	assert_int_equal(each_file(flip_last), 1);

	s = open_store(1 << 20, 1 << 20, dir, 1 << 24);
	assert_null(moat_cache_find(s, "k", 1, NULL, 0, &uri_hit));
	assert_int_equal(uri_hit, 0);
	assert_int_equal(each_file(NULL), 0);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.disk_errors, 1);
	assert_int_equal(st.disk_objects, 0);
	assert_null(moat_cache_find(s, "k", 1, NULL, 0, &uri_hit));
	moat_cache_store_close(s);
}

static void test_disk_evict(void **state)
{
	char body[1000];
	struct moat_cache_store *s = open_store(1 << 20, 1 << 20, dir, 1 << 24);
	struct moat_cache_store_stats st;
	struct moat_cache_obj *o;
	char keys[3][16];
	uint64_t size, fsize;

	(void)state;
	memset(body, 'e', sizeof(body));
	same_shard(s, keys, 3);
	o = add(s, keys[0], "", HEAD_OK, body, sizeof(body), "");
	wait_written(o);
	size = o->size;
	moat_cache_obj_put(o);
	moat_cache_store_resize(s, size + size / 2, 1 << 20);
	o = add(s, keys[1], "", HEAD_OK, body, sizeof(body), "");
	wait_written(o);
	moat_cache_obj_put(o);
	/* keys[0] left memory, stays on disk. */
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.disk_objects, 2);
	assert_int_equal(st.evictions, 1);
	fsize = st.disk_bytes / 2;
	o = moat_cache_find(s, keys[0], strlen(keys[0]), NULL, 0, NULL);
	assert_non_null(o);
	assert_memory_equal(o->body, body, sizeof(body));
	moat_cache_obj_put(o);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.objects, 1); /* keys[1] went to disk in turn */
	assert_int_equal(st.disk_objects, 2);
	assert_int_equal(each_file(NULL), 2);

	/* A disk budget of two files: the least recently used file goes. */
	moat_cache_store_close(s);
	s = open_store(1 << 20, 1 << 20, dir, 2 * fsize + fsize / 2);
	o = moat_cache_find(s, keys[0], strlen(keys[0]), NULL, 0, NULL); /* keys[1] is now the older */
	assert_non_null(o);
	moat_cache_obj_put(o);
	o = add(s, keys[2], "", HEAD_OK, body, sizeof(body), "");
	wait_written(o);
	moat_cache_obj_put(o);
	moat_cache_store_stats(s, &st);
	assert_int_equal(st.disk_objects, 2);
	assert_int_equal(each_file(NULL), 2);
	assert_null(moat_cache_find(s, keys[1], strlen(keys[1]), NULL, 0, NULL));
	assert_non_null((o = moat_cache_find(s, keys[0], strlen(keys[0]), NULL, 0, NULL)));
	moat_cache_obj_put(o);
	moat_cache_store_close(s);
}

static void test_disk_threads(void **state)
{
	struct moat_cache_store *s = open_store(12000, 1 << 16, dir, 40000);

	(void)state;
	run_hammer(s);
	moat_cache_store_close(s);
	assert_int_equal(each_file(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find),
		cmocka_unit_test(test_vary),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_parse_head),
		cmocka_unit_test(test_threads),
		cmocka_unit_test_setup_teardown(test_disk_persist, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_disk_corrupt, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_disk_evict, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_disk_threads, setup_dir, teardown_dir),
	};

	moat_log_level = MOAT_LOGL_WARN; /* the corrupt file's info line is expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
