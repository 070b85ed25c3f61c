/*
 * disk.c - the cache's disk store (disk.h): one file per object, written
 * by one background thread, checked whenever it is read.
 *
 * Layout: <dir>/<xx>/<id>.mc, xx the id's low byte in two hex digits,
 * id in sixteen; the 256 subdirectories are made at open. A write goes to
 * <dir>/<xx>/<id>.tmp, then is renamed over <id>.mc. No fsync: a file a
 * crash tore is caught by the length and checksum checks (at scan for
 * the metadata, at read_body for the body) and removed, never served.
 *
 * File format (little-endian, no padding, HDR_LEN bytes of header):
 *
 *   off size
 *     0   8  magic "MOATC\0\1\0"
 *     8   4  version (1)
 *    12   4  key_len        each string < 1 MiB
 *    16   4  vkey_len
 *    20   4  head_len
 *    24   4  tags_len
 *    28   8  body_len       < 1 TiB
 *    36   8  request_time   (signed)
 *    44   8  response_time  (signed)
 *    52   4  meta_crc       zlib crc32 of bytes 0..52 then key, vkey, head, tags
 *    56   4  body_crc       zlib crc32 of the body
 *    60      key, vkey, head, tags, body
 *
 * Owns: the directory's fd, the writer thread and its queue of jobs (the
 * jobs borrow the caller's strings and body until done() is called).
 * Threads: write and remove from any thread; read_body from any thread
 * (an fd per call, no shared file state); scan before any write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"
#include "mod/cache/disk.h"

#define HDR_LEN         60
#define OFF_VERSION     8
#define OFF_KEY_LEN     12
#define OFF_VKEY_LEN    16
#define OFF_HEAD_LEN    20
#define OFF_TAGS_LEN    24
#define OFF_BODY_LEN    28
#define OFF_REQ_TIME    36
#define OFF_RESP_TIME   44
#define OFF_META_CRC    52
#define OFF_BODY_CRC    56
#define FORMAT_VERSION  1u
#define MAX_STRING      ((uint64_t)1 << 20)   /* each string is shorter */
#define MAX_BODY        ((uint64_t)1 << 40)   /* the body is shorter */
#define QUEUE_JOBS      4096
#define QUEUE_BYTES     ((uint64_t)256 << 20)
#define CRC_CHUNK       ((size_t)1 << 30)     /* crc32 takes a uInt length */
#define IO_CHUNK        ((size_t)1 << 30)

static const unsigned char magic[8] = { 'M', 'O', 'A', 'T', 'C', 0, 1, 0 };

/* One queued write. Owner: the queue until the writer takes it; then the
 * writer, which frees it after done(). */
struct job {
	struct job *next;
	uint64_t id;
	struct moat_cache_disk_rec rec;   /* borrowed strings */
	const void *body;                 /* borrowed */
	void (*done)(void *ctx, uint64_t id, int ok);
	void *ctx;
	int cancelled;                    /* remove() came first: no file remains */
};

struct moat_cache_disk {
	char *dir;                        /* for messages */
	int dfd;                          /* the directory, O_DIRECTORY */
	_Atomic uint64_t next_id;         /* the last id given (0: none yet) */
	pthread_t thread;
	pthread_mutex_t mu;               /* guards everything below */
	pthread_cond_t cv;                /* the writer waits here for jobs */
	struct job *head, *tail;          /* queued, oldest first */
	struct job *busy;                 /* the job being written, or NULL */
	size_t njobs;
	uint64_t nbytes;                  /* body bytes queued */
	size_t max_jobs;
	uint64_t max_bytes;
	int stop;
	uint64_t failures;                /* writes that failed (logged sparsely) */
};

/* ---- little-endian encoding ---- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* The decoded header. */
struct hdr {
	uint32_t key_len, vkey_len, head_len, tags_len;
	uint64_t body_len;
	int64_t request_time, response_time;
	uint32_t meta_crc, body_crc;
};

static uint64_t strings_len(const struct hdr *h)
{
	return (uint64_t)h->key_len + h->vkey_len + h->head_len + h->tags_len;
}

/* Decodes and checks what the header alone can tell: magic, version and
 * limits. Returns 0 or -1. */
static int hdr_decode(const unsigned char *b, struct hdr *h)
{
	if (memcmp(b, magic, sizeof(magic)) != 0 || get32(b + OFF_VERSION) != FORMAT_VERSION)
		return -1;
	h->key_len = get32(b + OFF_KEY_LEN);
	h->vkey_len = get32(b + OFF_VKEY_LEN);
	h->head_len = get32(b + OFF_HEAD_LEN);
	h->tags_len = get32(b + OFF_TAGS_LEN);
	h->body_len = get64(b + OFF_BODY_LEN);
	h->request_time = (int64_t)get64(b + OFF_REQ_TIME);
	h->response_time = (int64_t)get64(b + OFF_RESP_TIME);
	h->meta_crc = get32(b + OFF_META_CRC);
	h->body_crc = get32(b + OFF_BODY_CRC);
	if (h->key_len >= MAX_STRING || h->vkey_len >= MAX_STRING || h->head_len >= MAX_STRING ||
	    h->tags_len >= MAX_STRING || h->body_len >= MAX_BODY)
		return -1;
	return 0;
}

static int rec_valid(const struct moat_cache_disk_rec *r)
{
	return r->key_len < MAX_STRING && r->vkey_len < MAX_STRING && r->head_len < MAX_STRING &&
	       r->tags_len < MAX_STRING && r->body_len < MAX_BODY &&
	       (r->key || !r->key_len) && (r->vkey || !r->vkey_len) && (r->head || !r->head_len) &&
	       (r->tags || !r->tags_len);
}

static uint32_t crc_more(uint32_t crc, const void *p, uint64_t n)
{
	const unsigned char *b = p;

	while (n > 0) {
		size_t k = n > CRC_CHUNK ? CRC_CHUNK : (size_t)n;

		crc = (uint32_t)crc32(crc, b, (uInt)k);
		b += k;
		n -= k;
	}
	return crc;
}

static uint32_t meta_crc(const unsigned char *hdr, const char *key, size_t key_len, const char *vkey,
			 size_t vkey_len, const char *head, size_t head_len, const char *tags, size_t tags_len)
{
	uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);

	c = crc_more(c, hdr, OFF_META_CRC);
	c = crc_more(c, key, key_len);
	c = crc_more(c, vkey, vkey_len);
	c = crc_more(c, head, head_len);
	return crc_more(c, tags, tags_len);
}

uint64_t moat_cache_disk_size(const struct moat_cache_disk_rec *rec)
{
	return HDR_LEN + (uint64_t)rec->key_len + rec->vkey_len + rec->head_len + rec->tags_len +
	       rec->body_len;
}

/* "xx/<id>.mc" or "xx/<id>.tmp" relative to the directory. */
static void name_of(char out[32], uint64_t id, const char *ext)
{
	snprintf(out, 32, "%02x/%016" PRIx64 ".%s", (unsigned)(id & 0xff), id, ext);
}

/* ---- I/O loops ---- */

static int write_all(int fd, const void *p, uint64_t n)
{
	const char *b = p;

	while (n > 0) {
		size_t k = n > IO_CHUNK ? IO_CHUNK : (size_t)n;
		ssize_t w = write(fd, b, k);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		b += w;
		n -= (uint64_t)w;
	}
	return 0;
}

/* Reads exactly n bytes at off; -1 on error or end of file. */
static int pread_all(int fd, void *p, uint64_t n, uint64_t off)
{
	char *b = p;

	while (n > 0) {
		size_t k = n > IO_CHUNK ? IO_CHUNK : (size_t)n;
		ssize_t r = pread(fd, b, k, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		b += r;
		n -= (uint64_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* ---- open / close ---- */

static char *why_fmt(const char *what, const char *path, int err)
{
	char *s = NULL;

	if (asprintf(&s, "cache directory %s: %s%s", path, what, strerror(err)) < 0)
		return NULL;
	return s;
}

/* mkdir -p, each missing component mode 0700. Returns 0 or -1 (errno). */
static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static void *writer_main(void *arg);

struct moat_cache_disk *moat_cache_disk_open(const char *dir, char **why)
{
	struct moat_cache_disk *d;
	struct stat st;
	int err;

	*why = NULL;
	if (!dir || !*dir) {
		*why = strdup("cache directory: empty path");
		return NULL;
	}
	if (mkdir_p(dir) < 0 && errno != ENOTDIR) {
		*why = why_fmt("", dir, errno);
		return NULL;
	}
	if (stat(dir, &st) < 0) {
		*why = why_fmt("", dir, errno);
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = why_fmt("", dir, ENOTDIR);
		return NULL;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		*why = why_fmt("", dir, errno);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->dir = strdup(dir))) {
		free(d);
		*why = why_fmt("", dir, ENOMEM);
		return NULL;
	}
	d->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0) {
		*why = why_fmt("", dir, errno);
		goto fail;
	}
	for (unsigned i = 0; i < 256; i++) {
		char sub[4];

		snprintf(sub, sizeof(sub), "%02x", i);
		struct stat sst;

		if (mkdirat(d->dfd, sub, 0700) < 0 && errno != EEXIST) {
			*why = why_fmt("creating a subdirectory: ", dir, errno);
			goto fail;
		}
		if (fstatat(d->dfd, sub, &sst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sst.st_mode)) {
			*why = why_fmt("subdirectory ", dir, ENOTDIR);
			goto fail;
		}
	}
	d->max_jobs = QUEUE_JOBS;
	d->max_bytes = QUEUE_BYTES;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	err = pthread_create(&d->thread, NULL, writer_main, d);
	if (err != 0) {
		*why = why_fmt("starting the writer thread: ", dir, err);
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
		goto fail;
	}
	return d;
fail:
	if (d->dfd >= 0)
		close(d->dfd);
	free(d->dir);
	free(d);
	return NULL;
}

void moat_cache_disk_close(struct moat_cache_disk *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	close(d->dfd);
	free(d->dir);
	free(d);
}

void moat_cache_disk_set_queue_max(struct moat_cache_disk *d, size_t jobs, uint64_t bytes)
{
	pthread_mutex_lock(&d->mu);
	d->max_jobs = jobs;
	d->max_bytes = bytes;
	pthread_mutex_unlock(&d->mu);
}

/* ---- scan ---- */

/* Parses "<16 hex>.mc" or "<16 hex>.tmp": 1 for .mc, 2 for .tmp, 0 for
 * any other name. */
static int parse_name(const char *s, uint64_t *id)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		char c = s[i];
		unsigned x;

		if (c >= '0' && c <= '9')
			x = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = (unsigned)(c - 'a' + 10);
		else
			return 0;
		v = (v << 4) | x;
	}
	*id = v;
	if (strcmp(s + 16, ".mc") == 0)
		return 1;
	if (strcmp(s + 16, ".tmp") == 0)
		return 2;
	return 0;
}

int moat_cache_disk_parse(const void *buf, size_t len, uint64_t file_size, struct moat_cache_disk_rec *out)
{
	const unsigned char *b = buf;
	const char *str;
	struct hdr h;
	uint64_t slen;

	if (len > file_size || file_size < HDR_LEN)
		return -1;
	if (len < HDR_LEN)
		return HDR_LEN;
	if (hdr_decode(b, &h) < 0)
		return -1;
	slen = strings_len(&h);
	/* slen < 4 MiB, body_len < 1 TiB: no overflow. */
	if (HDR_LEN + slen + h.body_len != file_size)
		return -1;
	if (len - HDR_LEN < slen)
		return (int)(HDR_LEN + slen);
	str = (const char *)b + HDR_LEN;
	memset(out, 0, sizeof(*out));
	out->key = str;
	out->key_len = h.key_len;
	out->vkey = out->key + out->key_len;
	out->vkey_len = h.vkey_len;
	out->head = out->vkey + out->vkey_len;
	out->head_len = h.head_len;
	out->tags = out->head + out->head_len;
	out->tags_len = h.tags_len;
	if (meta_crc(b, out->key, out->key_len, out->vkey, out->vkey_len, out->head, out->head_len, out->tags,
		     out->tags_len) != h.meta_crc)
		return -1;
	out->request_time = h.request_time;
	out->response_time = h.response_time;
	out->body_len = h.body_len;
	out->file_size = file_size;
	return 0;
}

/* Reads and checks one file's metadata (moat_cache_disk_parse); when
 * valid, calls cb. Returns 1 kept, 0 removed (invalid, or cb returned -1). */
static int scan_file(struct moat_cache_disk *d, const char *name, uint64_t id,
		     int (*cb)(void *ctx, const struct moat_cache_disk_rec *r), void *ctx)
{
	unsigned char hb[HDR_LEN];
	struct moat_cache_disk_rec rec;
	struct stat st;
	unsigned char *meta = NULL;
	int fd, keep = 0, rc;

	fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto invalid;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < HDR_LEN)
		goto invalid;
	if (pread_all(fd, hb, HDR_LEN, 0) < 0)
		goto invalid;
	/* The header alone: invalid, valid (no strings), or how many bytes
	 * the header and strings take (read them, then parse the whole). */
	rc = moat_cache_disk_parse(hb, HDR_LEN, (uint64_t)st.st_size, &rec);
	if (rc > 0) {
		meta = malloc((size_t)rc);
		if (!meta)
			goto invalid;
		memcpy(meta, hb, HDR_LEN);
		if (pread_all(fd, meta + HDR_LEN, (uint64_t)rc - HDR_LEN, HDR_LEN) < 0)
			goto invalid;
		rc = moat_cache_disk_parse(meta, (size_t)rc, (uint64_t)st.st_size, &rec);
	}
	if (rc != 0)
		goto invalid;
	rec.id = id;
	keep = cb(ctx, &rec) == 0;
	if (!keep)
		unlinkat(d->dfd, name, 0);
	goto out;
invalid:
	MOAT_INFO("cache disk %s: %s is invalid, removed", d->dir, name);
	unlinkat(d->dfd, name, 0);
out:
	free(meta);
	if (fd >= 0)
		close(fd);
	return keep;
}

size_t moat_cache_disk_scan(struct moat_cache_disk *d,
			    int (*cb)(void *ctx, const struct moat_cache_disk_rec *r), void *ctx)
{
	uint64_t max_id = 0;
	size_t kept = 0;

	for (unsigned i = 0; i < 256; i++) {
		char sub[4];
		int sfd;
		DIR *dp;
		struct dirent *e;

		snprintf(sub, sizeof(sub), "%02x", i);
		sfd = openat(d->dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0)
			continue;
		dp = fdopendir(sfd);
		if (!dp) {
			close(sfd);
			continue;
		}
		while ((e = readdir(dp)) != NULL) {
			char name[300];
			uint64_t id;
			int kind;

			if (e->d_name[0] == '.')
				continue;
			kind = parse_name(e->d_name, &id);
			if (kind == 0)
				continue;       /* not ours: leave it */
			if (id > max_id)
				max_id = id;
			snprintf(name, sizeof(name), "%s/%s", sub, e->d_name);
			if (kind == 2 || id == 0 || (id & 0xff) != i) {
				unlinkat(d->dfd, name, 0);
				continue;
			}
			kept += (size_t)scan_file(d, name, id, cb, ctx);
		}
		closedir(dp);
	}
	/* New ids start above every id seen, and above those already given. */
	uint64_t cur = atomic_load(&d->next_id);

	while (cur < max_id && !atomic_compare_exchange_weak(&d->next_id, &cur, max_id))
		;
	return kept;
}

/* ---- writes ---- */

uint64_t moat_cache_disk_write(struct moat_cache_disk *d, const struct moat_cache_disk_rec *rec,
			       const void *body, void (*done)(void *ctx, uint64_t id, int ok), void *ctx)
{
	struct job *j;
	uint64_t id;

	if (!rec_valid(rec) || (!body && rec->body_len))
		return 0;
	j = calloc(1, sizeof(*j));
	if (!j)
		return 0;
	j->rec = *rec;
	j->body = body;
	j->done = done;
	j->ctx = ctx;
	pthread_mutex_lock(&d->mu);
	/* Full: too many jobs, or too many body bytes pinned (one job is
	 * always let in when the queue is empty, whatever its size). */
	if (d->stop || d->njobs >= d->max_jobs ||
	    (d->njobs > 0 && d->nbytes + rec->body_len > d->max_bytes)) {
		pthread_mutex_unlock(&d->mu);
		free(j);
		return 0;
	}
	id = j->id = atomic_fetch_add(&d->next_id, 1) + 1;
	if (d->tail)
		d->tail->next = j;
	else
		d->head = j;
	d->tail = j;
	d->njobs++;
	d->nbytes += rec->body_len;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return id;      /* not j->id: the writer may have freed j already */
}

/* Writes job j's file under its temporary name and renames it. Returns 0
 * or -1 (errno; the temporary file is removed). */
static int write_file(struct moat_cache_disk *d, const struct job *j)
{
	const struct moat_cache_disk_rec *r = &j->rec;
	unsigned char hb[HDR_LEN];
	char tmp[32], fin[32];
	uint32_t bcrc;
	int fd, err;

	memcpy(hb, magic, sizeof(magic));
	put32(hb + OFF_VERSION, FORMAT_VERSION);
	put32(hb + OFF_KEY_LEN, (uint32_t)r->key_len);
	put32(hb + OFF_VKEY_LEN, (uint32_t)r->vkey_len);
	put32(hb + OFF_HEAD_LEN, (uint32_t)r->head_len);
	put32(hb + OFF_TAGS_LEN, (uint32_t)r->tags_len);
	put64(hb + OFF_BODY_LEN, r->body_len);
	put64(hb + OFF_REQ_TIME, (uint64_t)r->request_time);
	put64(hb + OFF_RESP_TIME, (uint64_t)r->response_time);
	put32(hb + OFF_META_CRC,
	      meta_crc(hb, r->key, r->key_len, r->vkey, r->vkey_len, r->head, r->head_len, r->tags, r->tags_len));
	bcrc = crc_more((uint32_t)crc32(0L, Z_NULL, 0), j->body, r->body_len);
	put32(hb + OFF_BODY_CRC, bcrc);

	name_of(tmp, j->id, "tmp");
	name_of(fin, j->id, "mc");
	fd = openat(d->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, hb, HDR_LEN) < 0 || write_all(fd, r->key, r->key_len) < 0 ||
	    write_all(fd, r->vkey, r->vkey_len) < 0 || write_all(fd, r->head, r->head_len) < 0 ||
	    write_all(fd, r->tags, r->tags_len) < 0 || write_all(fd, j->body, r->body_len) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(d->dfd, tmp, d->dfd, fin) < 0)
		goto fail;
	return 0;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(d->dfd, tmp, 0);
	errno = err;
	return -1;
}

static void *writer_main(void *arg)
{
	struct moat_cache_disk *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct job *j = d->head;
		int ok = 0, cancelled;

		if (!j) {
			if (d->stop)
				break;
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		d->head = j->next;
		if (!d->head)
			d->tail = NULL;
		d->njobs--;
		d->nbytes -= j->rec.body_len;
		d->busy = j;
		cancelled = j->cancelled;
		pthread_mutex_unlock(&d->mu);

		if (!cancelled) {
			if (write_file(d, j) == 0) {
				ok = 1;
			} else {
				int err = errno;

				if (d->failures++ % 1024 == 0)
					MOAT_WARN("cache disk %s: writing object %" PRIu64 ": %s (%" PRIu64
						  " writes failed)", d->dir, j->id, strerror(err), d->failures);
			}
		}

		pthread_mutex_lock(&d->mu);
		d->busy = NULL;
		cancelled = j->cancelled;
		pthread_mutex_unlock(&d->mu);
		if (cancelled && ok) {
			char fin[32];

			name_of(fin, j->id, "mc");
			unlinkat(d->dfd, fin, 0);
			ok = 0;
		}
		if (j->done)
			j->done(j->ctx, j->id, ok);
		free(j);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

void moat_cache_disk_remove(struct moat_cache_disk *d, uint64_t id)
{
	char fin[32];
	int pending = 0;

	if (id == 0)
		return;
	pthread_mutex_lock(&d->mu);
	if (d->busy && d->busy->id == id) {
		d->busy->cancelled = 1;
		pending = 1;
	} else {
		for (struct job *j = d->head; j; j = j->next) {
			if (j->id == id) {
				j->cancelled = 1;
				pending = 1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (pending)
		return;
	name_of(fin, id, "mc");
	unlinkat(d->dfd, fin, 0);
}

/* ---- reads ---- */

int moat_cache_disk_read_body(struct moat_cache_disk *d, uint64_t id, void *buf, uint64_t len)
{
	unsigned char hb[HDR_LEN];
	struct hdr h;
	struct stat st;
	char name[32];
	uint64_t off;
	int fd;

	if (id == 0)
		return -1;
	name_of(name, id, "mc");
	fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pread_all(fd, hb, HDR_LEN, 0) < 0 ||
	    hdr_decode(hb, &h) < 0 || h.body_len != len)
		goto fail;
	off = HDR_LEN + strings_len(&h);
	if (off + h.body_len != (uint64_t)st.st_size)
		goto fail;
	if (pread_all(fd, buf, len, off) < 0)
		goto fail;
	if (crc_more((uint32_t)crc32(0L, Z_NULL, 0), buf, len) != h.body_crc)
		goto fail;
	close(fd);
	return 0;
fail:
	if (fd >= 0) {
		close(fd);
		MOAT_INFO("cache disk %s: %s failed its checks, removed", d->dir, name);
	}
	unlinkat(d->dfd, name, 0);
	return -1;
}
