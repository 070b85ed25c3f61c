/*
 * cache_disk_test.c - unit tests of src/mod/cache/disk.c, the cache's
 * disk store.
 *
 * Each test works in its own fresh directory under $TMPDIR (or /tmp).
 * Checked: objects written, then read back after a close and reopen,
 * have the same metadata and body, and files of the size
 * moat_cache_disk_size says; ids after a reopen are above every id found;
 * a flipped body byte fails read_body and removes the file; truncated
 * files, a bad magic, a bad metadata checksum, leftover temporary files
 * and misplaced names are removed at scan, files of other names kept; a
 * scan callback's -1 removes the file; remove() deletes a written file
 * and cancels a queued write; a full queue refuses writes (return 0,
 * done never called); records past the limits are refused; a path that
 * is not a directory is refused with a message naming it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "mod/cache/disk.h"

#define HDR_LEN 60

static char dir[256];

static void rm_tree(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/moat_cache_disk.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_tree(dir);
	return 0;
}

static void path_of(char *out, size_t n, uint64_t id, const char *ext)
{
	snprintf(out, n, "%s/cache/%02x/%016" PRIx64 ".%s", dir, (unsigned)(id & 0xff), id, ext);
}

static int exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static struct moat_cache_disk *open_ok(void)
{
	char sub[300], *why = NULL;
	struct moat_cache_disk *d;

	snprintf(sub, sizeof(sub), "%s/cache", dir);
	d = moat_cache_disk_open(sub, &why);
	if (!d)
		fprintf(stderr, "open: %s\n", why ? why : "?");
	assert_non_null(d);
	assert_null(why);
	return d;
}

/* ---- objects of the tests ---- */

#define NOBJ 40

struct obj {
	char key[64], vkey[32], head[128], tags[32];
	struct moat_cache_disk_rec rec;
	unsigned char *body;
	uint64_t id;
};

static struct obj objs[NOBJ];

static void make_objs(void)
{
	for (unsigned i = 0; i < NOBJ; i++) {
		struct obj *o = &objs[i];
		/* Sizes from empty to over 1 MiB, through odd ones. */
		uint64_t n = i == 0 ? 0 : i == 1 ? (1u << 20) + 7 : (uint64_t)i * 977 + i % 3;

		snprintf(o->key, sizeof(o->key), "GET|example.com|/obj/%u", i);
		snprintf(o->vkey, sizeof(o->vkey), i % 2 ? "accept-encoding=gzip" : "");
		snprintf(o->head, sizeof(o->head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-N: %u\r\n\r\n", i);
		snprintf(o->tags, sizeof(o->tags), i % 3 ? "t%u\nall\n" : "", i);
		o->body = malloc(n ? n : 1);
		assert_non_null(o->body);
		for (uint64_t k = 0; k < n; k++)
			o->body[k] = (unsigned char)(k * 131 + i);
		memset(&o->rec, 0, sizeof(o->rec));
		o->rec.key = o->key;
		o->rec.key_len = strlen(o->key);
		o->rec.vkey = o->vkey;
		o->rec.vkey_len = strlen(o->vkey);
		o->rec.head = o->head;
		o->rec.head_len = strlen(o->head);
		o->rec.tags = o->tags;
		o->rec.tags_len = strlen(o->tags);
		o->rec.request_time = 1700000000 + i;
		o->rec.response_time = i == 5 ? -3 : 1700000001 + (int64_t)i;
		o->rec.body_len = n;
		o->id = 0;
	}
}

static void free_objs(void)
{
	for (unsigned i = 0; i < NOBJ; i++)
		free(objs[i].body);
}

/* done() bookkeeping, written by the writer thread. */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static unsigned done_ok, done_fail;
static uint64_t done_ids[NOBJ * 4];
static int done_oks[NOBJ * 4];
static unsigned ndone;
static int block_in_done;    /* the next done() waits until cleared */
static int in_done;

static void reset_done(void)
{
	done_ok = done_fail = ndone = 0;
	block_in_done = in_done = 0;
}

static void on_done(void *ctx, uint64_t id, int ok)
{
	(void)ctx;
	pthread_mutex_lock(&done_mu);
	if (ndone < sizeof(done_ids) / sizeof(done_ids[0])) {
		done_ids[ndone] = id;
		done_oks[ndone] = ok;
	}
	ndone++;
	if (ok)
		done_ok++;
	else
		done_fail++;
	in_done = 1;
	pthread_cond_broadcast(&done_cv);
	while (block_in_done)
		pthread_cond_wait(&done_cv, &done_mu);
	in_done = 0;
	pthread_mutex_unlock(&done_mu);
}

static int done_ok_of(uint64_t id)
{
	int r = -1;

	pthread_mutex_lock(&done_mu);
	for (unsigned i = 0; i < ndone; i++)
		if (done_ids[i] == id)
			r = done_oks[i];
	pthread_mutex_unlock(&done_mu);
	return r;
}

static void write_all_objs(struct moat_cache_disk *d)
{
	for (unsigned i = 0; i < NOBJ; i++) {
		objs[i].id = moat_cache_disk_write(d, &objs[i].rec, objs[i].body, on_done, &objs[i]);
		assert_int_not_equal(objs[i].id, 0);
		for (unsigned k = 0; k < i; k++)
			assert_int_not_equal(objs[k].id, objs[i].id);
	}
}

/* scan() callback: records what it saw; ctx says whether to drop. */
struct seen {
	unsigned n;
	uint64_t max_id;
	unsigned matched;
	int drop_odd;       /* -1 for objects with an odd index */
};

static int on_scan(void *ctx, const struct moat_cache_disk_rec *r)
{
	struct seen *s = ctx;

	s->n++;
	if (r->id > s->max_id)
		s->max_id = r->id;
	for (unsigned i = 0; i < NOBJ; i++) {
		const struct moat_cache_disk_rec *w = &objs[i].rec;

		if (objs[i].id != r->id)
			continue;
		assert_int_equal(r->key_len, w->key_len);
		assert_memory_equal(r->key, w->key, w->key_len);
		assert_int_equal(r->vkey_len, w->vkey_len);
		if (w->vkey_len)
			assert_memory_equal(r->vkey, w->vkey, w->vkey_len);
		assert_int_equal(r->head_len, w->head_len);
		assert_memory_equal(r->head, w->head, w->head_len);
		assert_int_equal(r->tags_len, w->tags_len);
		if (w->tags_len)
			assert_memory_equal(r->tags, w->tags, w->tags_len);
		assert_true(r->request_time == w->request_time);
		assert_true(r->response_time == w->response_time);
		assert_int_equal(r->body_len, w->body_len);
		assert_int_equal(r->file_size, moat_cache_disk_size(w));
		s->matched++;
		return s->drop_odd && i % 2 ? -1 : 0;
	}
	return 0;
}

static void check_body(struct moat_cache_disk *d, const struct obj *o)
{
	unsigned char *buf = malloc(o->rec.body_len + 1);

	assert_non_null(buf);
	assert_int_equal(moat_cache_disk_read_body(d, o->id, buf, o->rec.body_len), 0);
	if (o->rec.body_len)
		assert_memory_equal(buf, o->body, o->rec.body_len);
	free(buf);
}

/* ---- tests ---- */

static void test_roundtrip(void **state)
{
	struct moat_cache_disk *d;
	struct seen s = { 0 };
	uint64_t max_written = 0;

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	write_all_objs(d);
	moat_cache_disk_close(d);
	assert_int_equal(done_ok, NOBJ);
	assert_int_equal(done_fail, 0);
	for (unsigned i = 0; i < NOBJ; i++) {
		char p[400];
		struct stat st;

		if (objs[i].id > max_written)
			max_written = objs[i].id;
		path_of(p, sizeof(p), objs[i].id, "mc");
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal((uint64_t)st.st_size, moat_cache_disk_size(&objs[i].rec));
		assert_int_equal(moat_cache_disk_size(&objs[i].rec),
				 HDR_LEN + objs[i].rec.key_len + objs[i].rec.vkey_len + objs[i].rec.head_len +
				 objs[i].rec.tags_len + objs[i].rec.body_len);
		assert_int_equal(st.st_mode & 0777, 0600);
		path_of(p, sizeof(p), objs[i].id, "tmp");
		assert_false(exists(p));
	}

	d = open_ok();
	assert_int_equal(moat_cache_disk_scan(d, on_scan, &s), NOBJ);
	assert_int_equal(s.n, NOBJ);
	assert_int_equal(s.matched, NOBJ);
	assert_int_equal(s.max_id, max_written);
	for (unsigned i = 0; i < NOBJ; i++)
		check_body(d, &objs[i]);
	/* A wrong length is a failed read (and the file goes). */
	{
		unsigned char b[8];

		assert_int_equal(moat_cache_disk_read_body(d, objs[3].id, b, 1), -1);
		assert_int_equal(moat_cache_disk_read_body(d, objs[3].id, b, 1), -1);
	}
	/* New ids are above every id on disk. */
	{
		struct obj *o = &objs[2];
		uint64_t id = moat_cache_disk_write(d, &o->rec, o->body, on_done, o);

		assert_true(id > max_written);
		moat_cache_disk_close(d);
		assert_int_equal(done_ok_of(id), 1);
	}
	free_objs();
}

static void test_ids_start_at_one(void **state)
{
	struct moat_cache_disk *d;
	uint64_t a, b;

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	a = moat_cache_disk_write(d, &objs[0].rec, objs[0].body, on_done, NULL);
	b = moat_cache_disk_write(d, &objs[1].rec, objs[1].body, NULL, NULL);
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	moat_cache_disk_close(d);
	assert_int_equal(done_ok, 1);
	free_objs();
}

static void flip_byte(const char *p, long off)
{
	int fd = open(p, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corrupt_body(void **state)
{
	struct moat_cache_disk *d;
	struct seen s = { 0 };
	char p[400];
	unsigned char *buf;
	struct obj *o = &objs[7];

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	write_all_objs(d);
	moat_cache_disk_close(d);

	/* The last byte of the body: metadata still checks at scan. */
	path_of(p, sizeof(p), o->id, "mc");
	flip_byte(p, -1);
	d = open_ok();
	assert_int_equal(moat_cache_disk_scan(d, on_scan, &s), NOBJ);
	buf = malloc(o->rec.body_len);
	assert_non_null(buf);
	assert_int_equal(moat_cache_disk_read_body(d, o->id, buf, o->rec.body_len), -1);
	assert_false(exists(p));
	assert_int_equal(moat_cache_disk_read_body(d, o->id, buf, o->rec.body_len), -1);
	free(buf);
	/* The others still read. */
	check_body(d, &objs[8]);
	/* A missing id is a failed read. */
	{
		unsigned char b;

		assert_int_equal(moat_cache_disk_read_body(d, 999999, &b, 1), -1);
		assert_int_equal(moat_cache_disk_read_body(d, 0, &b, 1), -1);
	}
	moat_cache_disk_close(d);
	free_objs();
}

static void write_file(const char *p, const void *data, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void test_scan_removes_invalid(void **state)
{
	struct moat_cache_disk *d;
	struct seen s = { 0 };
	char p[400], q[400], other[400];
	struct stat st;
	unsigned bad = 0;

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	write_all_objs(d);
	moat_cache_disk_close(d);

	/* truncated (by one byte, and to half the header) */
	path_of(p, sizeof(p), objs[2].id, "mc");
	assert_int_equal(truncate(p, (off_t)moat_cache_disk_size(&objs[2].rec) - 1), 0);
	path_of(p, sizeof(p), objs[3].id, "mc");
	assert_int_equal(truncate(p, 30), 0);
	/* bad magic */
	path_of(p, sizeof(p), objs[4].id, "mc");
	flip_byte(p, 0);
	/* bad version */
	path_of(p, sizeof(p), objs[5].id, "mc");
	flip_byte(p, 8);
	/* a byte of the key: the metadata checksum fails */
	path_of(p, sizeof(p), objs[6].id, "mc");
	flip_byte(p, HDR_LEN + 2);
	/* a byte of the times: covered too */
	path_of(p, sizeof(p), objs[9].id, "mc");
	flip_byte(p, 40);
	/* extra bytes at the end */
	path_of(p, sizeof(p), objs[10].id, "mc");
	{
		int fd = open(p, O_WRONLY | O_APPEND);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
	}
	bad = 7;
	/* a leftover temporary file, and a whole file under a temporary name */
	path_of(p, sizeof(p), 0x1234, "tmp");
	write_file(p, "partial", 7);
	path_of(q, sizeof(q), objs[11].id, "mc");
	path_of(p, sizeof(p), objs[11].id, "tmp");
	assert_int_equal(rename(q, p), 0);
	bad++;
	/* a valid file in the wrong subdirectory */
	path_of(p, sizeof(p), objs[12].id, "mc");
	snprintf(q, sizeof(q), "%s/cache/%02x/%016" PRIx64 ".mc", dir, (unsigned)((objs[12].id + 1) & 0xff),
		 objs[12].id);
	assert_int_equal(rename(p, q), 0);
	bad++;
	/* an empty file */
	path_of(p, sizeof(p), 0x77, "mc");
	write_file(p, "", 0);
	/* a file of another name stays */
	snprintf(other, sizeof(other), "%s/cache/00/README", dir);
	write_file(other, "hi", 2);

	d = open_ok();
	assert_int_equal(moat_cache_disk_scan(d, on_scan, &s), NOBJ - bad);
	assert_int_equal(s.matched, NOBJ - bad);
	for (unsigned i = 2; i <= 12; i++) {
		if (i == 7 || i == 8)
			continue;
		path_of(p, sizeof(p), objs[i].id, "mc");
		assert_false(exists(p));
		path_of(p, sizeof(p), objs[i].id, "tmp");
		assert_false(exists(p));
	}
	assert_false(exists(q));
	path_of(p, sizeof(p), 0x1234, "tmp");
	assert_false(exists(p));
	path_of(p, sizeof(p), 0x77, "mc");
	assert_false(exists(p));
	assert_int_equal(stat(other, &st), 0);
	check_body(d, &objs[7]);
	check_body(d, &objs[13]);
	/* Ids go above those of removed files too. */
	{
		uint64_t id = moat_cache_disk_write(d, &objs[0].rec, objs[0].body, NULL, NULL);

		assert_true(id > 0x1234);
		assert_true(id > objs[NOBJ - 1].id);
	}
	moat_cache_disk_close(d);
	free_objs();
}

static void test_scan_drop(void **state)
{
	struct moat_cache_disk *d;
	struct seen s = { 0 }, s2 = { 0 };
	char p[400];

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	write_all_objs(d);
	moat_cache_disk_close(d);

	d = open_ok();
	s.drop_odd = 1;
	assert_int_equal(moat_cache_disk_scan(d, on_scan, &s), NOBJ / 2);
	assert_int_equal(s.n, NOBJ);
	moat_cache_disk_close(d);
	for (unsigned i = 0; i < NOBJ; i++) {
		path_of(p, sizeof(p), objs[i].id, "mc");
		assert_int_equal(exists(p), i % 2 == 0);
	}
	d = open_ok();
	assert_int_equal(moat_cache_disk_scan(d, on_scan, &s2), NOBJ / 2);
	moat_cache_disk_close(d);
	free_objs();
}

static void test_remove(void **state)
{
	struct moat_cache_disk *d;
	char p[400];
	uint64_t a, b, c, e;

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	a = moat_cache_disk_write(d, &objs[0].rec, objs[0].body, on_done, NULL);
	moat_cache_disk_close(d);
	assert_int_equal(done_ok_of(a), 1);
	path_of(p, sizeof(p), a, "mc");
	assert_true(exists(p));

	d = open_ok();
	moat_cache_disk_scan(d, on_scan, &(struct seen){ 0 });
	moat_cache_disk_remove(d, a);
	assert_false(exists(p));
	moat_cache_disk_remove(d, a);          /* twice: harmless */
	moat_cache_disk_remove(d, 0);

	/* A queued write cancelled: hold the writer inside the first done(). */
	moat_cache_disk_set_queue_max(d, 2, 1u << 30);
	pthread_mutex_lock(&done_mu);
	block_in_done = 1;
	pthread_mutex_unlock(&done_mu);
	b = moat_cache_disk_write(d, &objs[1].rec, objs[1].body, on_done, NULL);
	assert_int_not_equal(b, 0);
	pthread_mutex_lock(&done_mu);
	while (!in_done)
		pthread_cond_wait(&done_cv, &done_mu);
	pthread_mutex_unlock(&done_mu);
	/* The writer is held: the queue is empty, two places. */
	c = moat_cache_disk_write(d, &objs[2].rec, objs[2].body, on_done, NULL);
	e = moat_cache_disk_write(d, &objs[3].rec, objs[3].body, on_done, NULL);
	assert_int_not_equal(c, 0);
	assert_int_not_equal(e, 0);
	/* Full: refused, done never called for it. */
	assert_int_equal(moat_cache_disk_write(d, &objs[4].rec, objs[4].body, on_done, NULL), 0);
	moat_cache_disk_remove(d, c);
	pthread_mutex_lock(&done_mu);
	block_in_done = 0;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
	moat_cache_disk_close(d);

	assert_int_equal(ndone, 4);    /* a, b, c, e */
	assert_int_equal(done_ok_of(b), 1);
	assert_int_equal(done_ok_of(c), 0);
	assert_int_equal(done_ok_of(e), 1);
	path_of(p, sizeof(p), b, "mc");
	assert_true(exists(p));
	path_of(p, sizeof(p), c, "mc");
	assert_false(exists(p));
	path_of(p, sizeof(p), c, "tmp");
	assert_false(exists(p));
	path_of(p, sizeof(p), e, "mc");
	assert_true(exists(p));
	free_objs();
}

static void test_queue_bytes(void **state)
{
	struct moat_cache_disk *d;
	uint64_t a, b;

	(void)state;
	make_objs();
	reset_done();
	d = open_ok();
	/* Byte budget 10000: objs[1] (1 MiB) passes only into an empty queue. */
	moat_cache_disk_set_queue_max(d, 100, 10000);
	pthread_mutex_lock(&done_mu);
	block_in_done = 1;
	pthread_mutex_unlock(&done_mu);
	a = moat_cache_disk_write(d, &objs[0].rec, objs[0].body, on_done, NULL);
	assert_int_not_equal(a, 0);
	pthread_mutex_lock(&done_mu);
	while (!in_done)
		pthread_cond_wait(&done_cv, &done_mu);
	pthread_mutex_unlock(&done_mu);
	b = moat_cache_disk_write(d, &objs[1].rec, objs[1].body, on_done, NULL);
	assert_int_not_equal(b, 0);
	assert_int_equal(moat_cache_disk_write(d, &objs[2].rec, objs[2].body, on_done, NULL), 0);
	pthread_mutex_lock(&done_mu);
	block_in_done = 0;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
	moat_cache_disk_close(d);
	assert_int_equal(done_ok, 2);
	free_objs();
}

static void test_limits(void **state)
{
	struct moat_cache_disk *d;
	struct moat_cache_disk_rec r;
	char *big = calloc(1, 1u << 20);

	(void)state;
	assert_non_null(big);
	d = open_ok();
	memset(&r, 0, sizeof(r));
	r.key = big;
	r.key_len = (1u << 20) - 1;
	r.head = "h";
	r.head_len = 1;
	assert_int_not_equal(moat_cache_disk_write(d, &r, "", NULL, NULL), 0);
	r.key_len = 1u << 20;
	assert_int_equal(moat_cache_disk_write(d, &r, "", NULL, NULL), 0);
	r.key_len = 1;
	r.tags = big;
	r.tags_len = 1u << 20;
	assert_int_equal(moat_cache_disk_write(d, &r, "", NULL, NULL), 0);
	r.tags_len = 0;
	r.body_len = (uint64_t)1 << 40;
	assert_int_equal(moat_cache_disk_write(d, &r, big, NULL, NULL), 0);
	r.body_len = 5;
	assert_int_equal(moat_cache_disk_write(d, &r, NULL, NULL, NULL), 0);
	moat_cache_disk_close(d);
	free(big);
}

static void test_open_refused(void **state)
{
	char p[300], q[300], *why = NULL;
	struct moat_cache_disk *d;

	(void)state;
	snprintf(p, sizeof(p), "%s/afile", dir);
	write_file(p, "x", 1);
	d = moat_cache_disk_open(p, &why);
	assert_null(d);
	assert_non_null(why);
	assert_non_null(strstr(why, p));
	assert_non_null(strstr(why, strerror(ENOTDIR)));
	free(why);
	why = NULL;

	snprintf(q, sizeof(q), "%s/afile/below", dir);
	d = moat_cache_disk_open(q, &why);
	assert_null(d);
	assert_non_null(why);
	assert_non_null(strstr(why, q));
	free(why);
	why = NULL;

	/* A subdirectory's name taken by a file. */
	snprintf(q, sizeof(q), "%s/sub", dir);
	assert_int_equal(mkdir(q, 0700), 0);
	snprintf(q, sizeof(q), "%s/sub/ab", dir);
	write_file(q, "x", 1);
	snprintf(q, sizeof(q), "%s/sub", dir);
	d = moat_cache_disk_open(q, &why);
	assert_null(d);
	assert_non_null(why);
	assert_non_null(strstr(why, q));
	free(why);
	why = NULL;

	d = moat_cache_disk_open("", &why);
	assert_null(d);
	assert_non_null(why);
	free(why);
	why = NULL;

	/* Missing parents are created, mode 0700. */
	snprintf(q, sizeof(q), "%s/a/b/c", dir);
	d = moat_cache_disk_open(q, &why);
	assert_non_null(d);
	assert_null(why);
	moat_cache_disk_close(d);
	{
		struct stat st;

		assert_int_equal(stat(q, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
		snprintf(q, sizeof(q), "%s/a/b/c/ff", dir);
		assert_int_equal(stat(q, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
}

/* Writers racing their own remove()s and the writer thread: after close,
 * a file exists exactly for the writes done() reported ok and nobody
 * removed; done() runs once per accepted write. */
#define NTHREADS 4
#define PER_THREAD 300

struct job_rec {
	uint64_t id;
	_Atomic int done_calls;
	_Atomic int ok;
	int removed;
};

static struct job_rec jobs[NTHREADS][PER_THREAD];

static void on_job_done(void *ctx, uint64_t id, int ok)
{
	struct job_rec *j = ctx;

	(void)id;
	j->ok = ok;
	j->done_calls++;
}

struct worker_arg {
	struct moat_cache_disk *d;
	unsigned t;
};

static void *race_worker(void *arg)
{
	struct worker_arg *a = arg;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct job_rec *j = &jobs[a->t][i];
		const struct obj *o = &objs[2 + (i + a->t) % (NOBJ - 2)];

		j->id = moat_cache_disk_write(a->d, &o->rec, o->body, on_job_done, j);
		if (j->id && i % 3 == 0) {
			moat_cache_disk_remove(a->d, j->id);
			j->removed = 1;
		}
		if (i % 5 == 0 && i >= 5) {
			/* An earlier object: read it if its file is there
			 * (either way the call must be safe). */
			const struct job_rec *e = &jobs[a->t][i - 5];
			const struct obj *eo = &objs[2 + (i - 5 + a->t) % (NOBJ - 2)];
			unsigned char *buf = malloc(eo->rec.body_len + 1);

			if (e->id && !e->removed && e->ok &&
			    moat_cache_disk_read_body(a->d, e->id, buf, eo->rec.body_len) == 0)
				assert_memory_equal(buf, eo->body, eo->rec.body_len);
			free(buf);
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct moat_cache_disk *d;
	pthread_t th[NTHREADS];
	struct worker_arg args[NTHREADS];
	unsigned accepted = 0, present = 0;

	(void)state;
	make_objs();
	memset(jobs, 0, sizeof(jobs));
	d = open_ok();
	moat_cache_disk_scan(d, on_scan, &(struct seen){ 0 });
	for (unsigned t = 0; t < NTHREADS; t++) {
		args[t].d = d;
		args[t].t = t;
		assert_int_equal(pthread_create(&th[t], NULL, race_worker, &args[t]), 0);
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	moat_cache_disk_close(d);
	for (unsigned t = 0; t < NTHREADS; t++) {
		for (unsigned i = 0; i < PER_THREAD; i++) {
			struct job_rec *j = &jobs[t][i];
			char p[400];

			if (!j->id) {
				assert_int_equal(j->done_calls, 0);
				continue;
			}
			accepted++;
			assert_int_equal(j->done_calls, 1);
			path_of(p, sizeof(p), j->id, "mc");
			assert_int_equal(exists(p), !j->removed && j->ok);
			present += (unsigned)exists(p);
			path_of(p, sizeof(p), j->id, "tmp");
			assert_false(exists(p));
		}
	}
	assert_int_equal(accepted, NTHREADS * PER_THREAD);
	assert_true(present > 0);
	free_objs();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_start_at_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_removes_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};

	moat_log_level = MOAT_LOGL_WARN;    /* the removals' info lines are expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
