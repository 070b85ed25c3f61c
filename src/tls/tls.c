/*
 * tls.c - OpenSSL 3 server and client contexts and non-blocking TLS
 * connections (the contract is in tls.h).
 *
 * Sits between the socket and the HTTP codecs of a TLS listener or of a
 * TLS backend connection. Owns: the SSL_CTXs of a server context (one per
 * group of certificates carrying the same names, so that an RSA and an
 * ECDSA certificate for the same names share one SSL_CTX and OpenSSL picks
 * between them), the name index for SNI, the OCSP responses read from
 * disk, the client contexts' session caches, and the process-wide session
 * ticket keys.
 *
 * Lifetimes: a server or client context is reference counted; each
 * connection holds a reference, so moat_tls_server_free() and
 * moat_tls_client_free() only drop the caller's one, and the callbacks a
 * live connection may still run (SNI, OCSP status, new session) never see
 * freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "tls/tls.h"

#define DEFAULT_CIPHERS                                                                        \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_GROUPS "X25519:P-256"

#define TICKET_ROTATE_S   3600   /* a new ticket key every hour */
#define TICKET_KEYS       3      /* the current one and the two previous */
#define OCSP_RECHECK_S    10     /* stat an OCSP file at most this often */
#define OCSP_FILE_MAX     (64 * 1024)
#define CLIENT_CACHE_MAX  256    /* sessions kept per client context */


/* ---------------------------------------------------------------- helpers */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void set_why(char **why, char *msg)
{
	if (why) {
		free(*why);
		*why = msg;
	} else {
		free(msg);
	}
}

/* OpenSSL's reason for the last error of this thread (then clears the
 * queue), or `dflt`. */
static const char *ossl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : dflt;
}

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int is_ip_literal(const char *s)
{
	unsigned char a[16];

	return s && (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1);
}

/* ------------------------------------------------------------ ticket keys */

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

/* Process-wide: every server context of every worker uses these, so a
 * ticket issued by one worker resumes on any other. keys[0] encrypts;
 * all TICKET_KEYS decrypt. */
static struct {
	pthread_mutex_t lock;
	int ready;
	time_t rotated;         /* monotonic seconds of the last rotation */
	struct ticket_key keys[TICKET_KEYS];
} tickets = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int new_ticket_key(struct ticket_key *k)
{
	return RAND_bytes(k->name, sizeof k->name) == 1 && RAND_bytes(k->aes, sizeof k->aes) == 1 &&
	       RAND_bytes(k->hmac, sizeof k->hmac) == 1;
}

/* Under tickets.lock. */
static int rotate_locked(time_t now)
{
	struct ticket_key k;

	if (!new_ticket_key(&k))
		return -1;
	if (!tickets.ready) {
		/* First use: every slot random, so no stale name matches. */
		for (int i = 1; i < TICKET_KEYS; i++)
			if (!new_ticket_key(&tickets.keys[i]))
				return -1;
		tickets.ready = 1;
	} else {
		memmove(&tickets.keys[1], &tickets.keys[0], (TICKET_KEYS - 1) * sizeof k);
	}
	tickets.keys[0] = k;
	tickets.rotated = now;
	OPENSSL_cleanse(&k, sizeof k);
	return 0;
}

void moat_tls_rotate_tickets(void)
{
	pthread_mutex_lock(&tickets.lock);
	if (rotate_locked(mono_now()) < 0)
		MOAT_ERR("tls: cannot make a new session ticket key");
	pthread_mutex_unlock(&tickets.lock);
}

static int ticket_set_keys(EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, const struct ticket_key *k,
			   unsigned char *iv, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(hctx, params))
		return 0;
	if (enc)
		return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1;
	return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 = go on, 2 = ticket decrypted
 * with an old key (issue a new one), 0 = unknown key (full handshake),
 * -1 = error. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_key k;
	time_t now = mono_now();
	int r = 0, found = -1;

	(void)ssl;
	pthread_mutex_lock(&tickets.lock);
	if ((!tickets.ready || now - tickets.rotated >= TICKET_ROTATE_S) && rotate_locked(now) < 0) {
		pthread_mutex_unlock(&tickets.lock);
		return -1;
	}
	if (enc) {
		k = tickets.keys[0];
		found = 0;
	} else {
		for (int i = 0; i < TICKET_KEYS; i++)
			if (memcmp(key_name, tickets.keys[i].name, 16) == 0) {
				k = tickets.keys[i];
				found = i;
				break;
			}
	}
	pthread_mutex_unlock(&tickets.lock);
	if (found < 0)
		return 0;
	if (enc) {
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
			r = -1;
		else {
			memcpy(key_name, k.name, 16);
			r = ticket_set_keys(cctx, hctx, &k, iv, 1) ? 1 : -1;
		}
	} else {
		r = ticket_set_keys(cctx, hctx, &k, iv, 0) ? (found == 0 ? 1 : 2) : -1;
	}
	OPENSSL_cleanse(&k, sizeof k);
	return r;
}

/* ------------------------------------------------------------- server side */

/* An OCSP response file of one certificate. The status callback of any
 * worker reads it; `lock` guards everything below it. */
struct ocsp_file {
	char *path;
	X509 *leaf, *issuer;    /* borrowed from the srv_cert */
	pthread_mutex_t lock;
	time_t checked;         /* monotonic second of the last stat */
	int seen;               /* a stat succeeded once (st_* valid) */
	int missing;            /* the last stat failed (and that was logged) */
	dev_t st_dev;
	ino_t st_ino;
	off_t st_size;
	struct timespec st_mtim;
	unsigned char *der;     /* a valid response, or NULL */
	long derlen;
	time_t this_update, next_update; /* wall clock; next_update 0 = none */
	int warned_expired;
};

struct srv_cert {
	char *cert_path;
	X509 *leaf;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	int ktype;              /* EVP_PKEY_RSA, EVP_PKEY_EC, ... */
	char **names;           /* lower case, sorted */
	size_t nnames;
	size_t group;           /* index of its SSL_CTX */
	struct ocsp_file *ocsp;
};

struct name_ent {
	const char *name;       /* borrowed from a srv_cert; wildcards without "*." */
	size_t group;
};

struct moat_tls_server {
	int refs;               /* atomic; the owner's plus one per conn */
	SSL_CTX **ctx;          /* per group; ctx[0] holds certs[0] and is the default */
	size_t nctx;
	struct srv_cert *certs;
	size_t ncerts;
	struct name_ent *exact, *wild;
	size_t nexact, nwild;
	unsigned char alpn[16]; /* what ALPN offers, in wire format */
	unsigned alpn_len;
	unsigned char sid_ctx[32]; /* the session id context: see sid_ctx_make */
};

struct session_ent {
	char *key;
	SSL_SESSION *sess;
	unsigned long used;
};

struct moat_tls_client {
	int refs;
	SSL_CTX *ctx;
	int verify;
	pthread_mutex_t lock;   /* guards the cache */
	struct session_ent cache[CLIENT_CACHE_MAX];
	size_t ncache;
	unsigned long tick;
};

struct moat_tls_conn {
	SSL *ssl;
	int fd;
	struct moat_tls_server *srv;    /* one of them: a reference */
	struct moat_tls_client *cl;
	char *reuse_key;
	struct moat_tls_ch *ch;         /* NULL until moat_tls_peek_hello parsed one */
	unsigned ch_need;               /* bytes to wait for before parsing again */
	int ch_done;
	int failed;                     /* a fatal error happened: no shutdown */
	unsigned long err;              /* the OpenSSL error code of the failure */
	int sys_errno;
	long verify_result;
	size_t wpend;                   /* a write came back WANT_WRITE: OpenSSL holds this many
					 * of the caller's bytes encrypted, to finish first */
	size_t wskip;                   /* bytes sent that the caller has not been told of yet:
					 * reported, not sent, when it offers them again */
	int raw_short;                  /* the socket's last read returned less than asked
					 * (or nothing): it holds no more for now */
};

static int ex_conn_idx = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_init(void)
{
	ex_conn_idx = SSL_get_ex_new_index(0, (void *)"moat conn", NULL, NULL, NULL);
}

static void srv_ref(struct moat_tls_server *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

static void ocsp_free(struct ocsp_file *o)
{
	if (!o)
		return;
	pthread_mutex_destroy(&o->lock);
	free(o->path);
	free(o->der);
	free(o);
}

static void srv_unref(struct moat_tls_server *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < s->nctx; i++)
		SSL_CTX_free(s->ctx[i]);
	free(s->ctx);
	for (size_t i = 0; i < s->ncerts; i++) {
		struct srv_cert *c = &s->certs[i];

		free(c->cert_path);
		X509_free(c->leaf);
		sk_X509_pop_free(c->chain, X509_free);
		EVP_PKEY_free(c->key);
		for (size_t j = 0; j < c->nnames; j++)
			free(c->names[j]);
		free(c->names);
		ocsp_free(c->ocsp);
	}
	free(s->certs);
	free(s->exact);
	free(s->wild);
	free(s);
}

void moat_tls_server_free(struct moat_tls_server *s)
{
	srv_unref(s);
}

/* -- loading */

static int load_cert_chain(const char *path, X509 **leaf, STACK_OF(X509) **chain, char **why)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	ERR_clear_error();
	if (!b) {
		set_why(why, fmt("%s: cannot open: %s", path, strerror(errno ? errno : ENOENT)));
		ERR_clear_error();
		return -1;
	}
	*leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!*leaf) {
		set_why(why, fmt("%s: cannot read certificate: %s", path, ossl_reason("no certificate found")));
		BIO_free(b);
		return -1;
	}
	*chain = sk_X509_new_null();
	if (!*chain)
		goto oom;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(*chain, x)) {
			X509_free(x);
			goto oom;
		}
	}
	{
		unsigned long e = ERR_peek_last_error();

		if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
			set_why(why, fmt("%s: cannot read the certificate chain: %s", path, ossl_reason("?")));
			BIO_free(b);
			return -1;
		}
	}
	ERR_clear_error();
	BIO_free(b);
	return 0;
oom:
	BIO_free(b);
	set_why(why, fmt("%s: out of memory", path));
	return -1;
}

/* The password callback of every key read: there is no passphrase to
 * give (OpenSSL's default one asks on the terminal, and moat would hang
 * there at start or at a reload); it notes that one was asked for. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	if (u)
		*(int *)u = 1;
	return -1;
}

#define ENCRYPTED_KEY_WHY "the key is encrypted with a passphrase (moat cannot ask for one: " \
	"store it decrypted, e.g. openssl pkey -in KEY -out KEY.plain, readable by moat only)"

static EVP_PKEY *load_key(const char *path, char **why)
{
	BIO *b;
	EVP_PKEY *k;
	int asked = 0;

	ERR_clear_error();
	b = BIO_new_file(path, "r");
	if (!b) {
		set_why(why, fmt("%s: cannot open: %s", path, strerror(errno ? errno : ENOENT)));
		ERR_clear_error();
		return NULL;
	}
	k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase_cb, &asked);
	BIO_free(b);
	if (!k && asked) {
		ERR_clear_error();
		set_why(why, fmt("%s: cannot read private key: %s", path, ENCRYPTED_KEY_WHY));
	} else if (!k) {
		set_why(why, fmt("%s: cannot read private key: %s", path, ossl_reason("no key found")));
	}
	return k;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_name(struct srv_cert *c, const char *n, size_t len)
{
	char *s, **nn;

	if (len == 0 || memchr(n, 0, len))
		return 0;
	for (size_t i = 0; i < c->nnames; i++)
		if (strlen(c->names[i]) == len && strncasecmp(c->names[i], n, len) == 0)
			return 0;
	nn = realloc(c->names, (c->nnames + 1) * sizeof *nn);
	if (!nn)
		return -1;
	c->names = nn;
	s = malloc(len + 1);
	if (!s)
		return -1;
	for (size_t i = 0; i < len; i++)
		s[i] = (n[i] >= 'A' && n[i] <= 'Z') ? (char)(n[i] + 32) : n[i];
	s[len] = 0;
	c->names[c->nnames++] = s;
	return 0;
}

/* The DNS names of the subjectAltName, or the subject's CN when there are
 * none. */
static int cert_names(struct srv_cert *c)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	if (gens) {
		for (int i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == GEN_DNS)
				rc = add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
					      (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(gens);
	}
	if (rc == 0 && c->nnames == 0) {
		X509_NAME *sn = X509_get_subject_name(c->leaf);
		int i = X509_NAME_get_index_by_NID(sn, NID_commonName, -1);

		if (i >= 0) {
			ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sn, i));

			rc = add_name(c, (const char *)ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d));
		}
	}
	if (c->nnames > 1)
		qsort(c->names, c->nnames, sizeof *c->names, cmp_str);
	ERR_clear_error();
	return rc;
}

static int same_names(const struct srv_cert *a, const struct srv_cert *b)
{
	if (a->nnames != b->nnames)
		return 0;
	for (size_t i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

/* -- OCSP */

static time_t asn1_to_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return (time_t)-1;
	return timegm(&tm);
}

/* Checks a DER OCSPResponse against the leaf; 0 and the validity window
 * when it may be stapled, else -1 and *why (static text). */
static int ocsp_check(const struct ocsp_file *o, const unsigned char *der, long len, time_t *thisu,
		      time_t *nextu, const char **why)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, len);
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL, *rev = NULL;
	int status = 0, reason = 0, rc = -1;

	if (!rsp || p != der + len) {
		*why = "not a DER OCSP response";
		goto out;
	}
	if (OCSP_response_status(rsp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		*why = "the response status is not successful";
		goto out;
	}
	bs = OCSP_response_get1_basic(rsp);
	if (!bs) {
		*why = "no basic response";
		goto out;
	}
	if (!o->issuer) {
		*why = "the issuer of the certificate is not in its chain file";
		goto out;
	}
	id = OCSP_cert_to_id(NULL, o->leaf, o->issuer);
	if (!id || !OCSP_resp_find_status(bs, id, &status, &reason, &rev, &tu, &nu)) {
		*why = "no response for this certificate";
		goto out;
	}
	if (status == V_OCSP_CERTSTATUS_UNKNOWN) {
		*why = "the certificate's status is unknown";
		goto out;
	}
	*thisu = asn1_to_time(tu);
	*nextu = nu ? asn1_to_time(nu) : 0;
	if (*thisu == (time_t)-1 || *nextu == (time_t)-1) {
		*why = "bad thisUpdate or nextUpdate";
		goto out;
	}
	rc = 0;
out:
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(rsp);
	ERR_clear_error();
	return rc;
}

static int ocsp_in_window(const struct ocsp_file *o, time_t now)
{
	return o->der && o->this_update <= now && (o->next_update == 0 || now <= o->next_update);
}

/* Under o->lock: stats the file and rereads it when it changed. */
static void ocsp_refresh(struct ocsp_file *o, time_t mono)
{
	struct stat st;
	unsigned char *buf = NULL;
	const char *why = NULL;
	time_t tu = 0, nu = 0;
	ssize_t n = 0;
	int fd;

	o->checked = mono;
	if (stat(o->path, &st) < 0) {
		if (!o->missing) {
			MOAT_WARN("tls: %s: %s; no OCSP stapling", o->path, strerror(errno));
			o->missing = 1;
		}
		o->seen = 0;
		free(o->der);
		o->der = NULL;
		return;
	}
	o->missing = 0;
	if (o->seen && st.st_dev == o->st_dev && st.st_ino == o->st_ino && st.st_size == o->st_size &&
	    st.st_mtim.tv_sec == o->st_mtim.tv_sec && st.st_mtim.tv_nsec == o->st_mtim.tv_nsec)
		return;
	o->seen = 1;
	o->st_dev = st.st_dev;
	o->st_ino = st.st_ino;
	o->st_size = st.st_size;
	o->st_mtim = st.st_mtim;
	free(o->der);
	o->der = NULL;
	o->warned_expired = 0;
	if (st.st_size <= 0 || st.st_size > OCSP_FILE_MAX) {
		MOAT_WARN("tls: %s: size %lld is not that of an OCSP response; no OCSP stapling", o->path,
			  (long long)st.st_size);
		return;
	}
	fd = open(o->path, O_RDONLY | O_CLOEXEC);
	buf = fd >= 0 ? malloc((size_t)st.st_size) : NULL;
	if (buf) {
		size_t got = 0;

		while (got < (size_t)st.st_size) {
			n = read(fd, buf + got, (size_t)st.st_size - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		n = (ssize_t)got;
	}
	if (fd >= 0)
		close(fd);
	if (!buf || n != st.st_size) {
		MOAT_WARN("tls: %s: cannot read: %s; no OCSP stapling", o->path, strerror(errno ? errno : EIO));
		free(buf);
		return;
	}
	if (ocsp_check(o, buf, (long)n, &tu, &nu, &why) < 0) {
		MOAT_WARN("tls: %s: %s; no OCSP stapling", o->path, why);
		free(buf);
		return;
	}
	o->der = buf;
	o->derlen = (long)n;
	o->this_update = tu;
	o->next_update = nu;
	if (!ocsp_in_window(o, time(NULL))) {
		MOAT_WARN("tls: %s: outside its thisUpdate..nextUpdate window; not stapled", o->path);
		o->warned_expired = 1;
	}
}

static int status_cb(SSL *ssl, void *arg)
{
	struct moat_tls_server *s = arg;
	X509 *leaf = SSL_get_certificate(ssl);
	struct ocsp_file *o = NULL;
	unsigned char *copy = NULL;
	long len = 0;
	time_t now;

	for (size_t i = 0; i < s->ncerts; i++)
		if (s->certs[i].leaf == leaf) {
			o = s->certs[i].ocsp;
			break;
		}
	if (!o)
		return SSL_TLSEXT_ERR_NOACK;
	now = mono_now();
	pthread_mutex_lock(&o->lock);
	if (now - o->checked >= OCSP_RECHECK_S)
		ocsp_refresh(o, now);
	if (ocsp_in_window(o, time(NULL))) {
		copy = OPENSSL_memdup(o->der, (size_t)o->derlen);
		len = o->derlen;
	} else if (o->der && !o->warned_expired) {
		o->warned_expired = 1;
		MOAT_WARN("tls: %s: outside its thisUpdate..nextUpdate window; not stapled", o->path);
	}
	pthread_mutex_unlock(&o->lock);
	if (!copy)
		return SSL_TLSEXT_ERR_NOACK;
	if (!SSL_set_tlsext_status_ocsp_resp(ssl, copy, len)) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

static struct ocsp_file *ocsp_new(const char *path, struct srv_cert *c)
{
	struct ocsp_file *o = calloc(1, sizeof *o);

	if (!o)
		return NULL;
	o->path = strdup(path);
	if (!o->path) {
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->lock, NULL);
	o->leaf = c->leaf;
	for (int i = 0; i < sk_X509_num(c->chain); i++) {
		X509 *x = sk_X509_value(c->chain, i);

		if (X509_check_issued(x, c->leaf) == X509_V_OK) {
			o->issuer = x;
			break;
		}
	}
	ERR_clear_error();
	ocsp_refresh(o, mono_now());
	return o;
}

/* -- SNI and ALPN */

static int cmp_ent(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->group < y->group ? -1 : x->group > y->group;
}

/* Keeps the first entry of each name in a sorted vector (that of the
 * lowest group: the certificate listed first). */
static size_t dedupe(struct name_ent *v, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		if (w == 0 || strcmp(v[i].name, v[w - 1].name) != 0)
			v[w++] = v[i];
	return w;
}

static const struct name_ent *find_name(const struct name_ent *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, v[mid].name);

		if (c == 0)
			return &v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct moat_tls_server *s = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct name_ent *e;
	const char *dot;
	char low[256];
	size_t len;

	(void)alert;
	if (!sni || s->nctx == 1)
		return SSL_TLSEXT_ERR_OK;
	len = strlen(sni);
	if (len == 0 || len >= sizeof low)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i <= len; i++)
		low[i] = (sni[i] >= 'A' && sni[i] <= 'Z') ? (char)(sni[i] + 32) : sni[i];
	if (len > 0 && low[len - 1] == '.')
		low[--len] = 0;
	e = find_name(s->exact, s->nexact, low);
	if (!e && (dot = strchr(low, '.')) != NULL && dot != low)
		e = find_name(s->wild, s->nwild, dot + 1);
	if (e && e->group != 0 && !SSL_set_SSL_CTX(ssl, s->ctx[e->group]))
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		   unsigned int inlen, void *arg)
{
	struct moat_tls_server *s = arg;
	unsigned char *o = NULL;

	(void)ssl;
	if (SSL_select_next_proto(&o, outlen, s->alpn, s->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

/* -- building */

static int set_versions(SSL_CTX *ctx, int min_version, char **why)
{
	int v = min_version == 0 ? TLS1_2_VERSION : min_version;

	if (v != TLS1_2_VERSION && v != TLS1_3_VERSION) {
		set_why(why, fmt("min_version 0x%04x: only TLS 1.2 (0x0303) or 1.3 (0x0304)", (unsigned)min_version));
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, v) || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		set_why(why, fmt("cannot set the TLS versions: %s", ossl_reason("?")));
		return -1;
	}
	return 0;
}

/*
 * The session id context: a session (ticket) resumes only where it was
 * made under the same client certificate policy. Ticket keys are
 * process-wide, so without this a ticket from a listener that asks for no
 * client certificate would resume on one that requires them (and skip
 * the certificate), and a session holding a verified client certificate
 * would carry it to a listener trusting another CA, or none. The context
 * is a SHA-256 of the mode and the client CA file's bytes: a reload that
 * keeps them keeps the sessions resumable, one that changes the CA file
 * does not. 0, or -1 with *why.
 */
static int sid_ctx_make(struct moat_tls_server *s, const struct moat_tls_server_opts *o, char **why)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char tag[16];
	unsigned int len = 0;
	int ok;

	memset(tag, 0, sizeof tag);
	snprintf((char *)tag, sizeof tag, "moat/%d", (int)o->client_verify);
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, tag, sizeof tag) == 1;
	if (ok && o->client_verify != MOAT_TLS_CLIENT_OFF) {
		char buf[4096];
		size_t n;
		FILE *f = fopen(o->client_ca, "rb");

		if (!f) {
			set_why(why, fmt("%s: cannot open: %s", o->client_ca, strerror(errno)));
			EVP_MD_CTX_free(md);
			return -1;
		}
		while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
			ok = EVP_DigestUpdate(md, buf, n) == 1;
		if (ferror(f))
			ok = 0;
		fclose(f);
	}
	ok = ok && EVP_DigestFinal_ex(md, s->sid_ctx, &len) == 1 && len == sizeof s->sid_ctx;
	EVP_MD_CTX_free(md);
	if (!ok) {
		set_why(why, fmt("cannot hash the session id context: %s", ossl_reason("?")));
		return -1;
	}
	return 0;
}

static SSL_CTX *server_ctx(struct moat_tls_server *s, const struct moat_tls_server_opts *o, char **why)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;

	if (!ctx) {
		set_why(why, fmt("cannot create a TLS context: %s", ossl_reason("out of memory")));
		return NULL;
	}
	if (set_versions(ctx, o->min_version, why) < 0)
		goto fail;
	if (!SSL_CTX_set_cipher_list(ctx, o->ciphers ? o->ciphers : DEFAULT_CIPHERS)) {
		set_why(why, fmt("ciphers \"%s\": %s", o->ciphers ? o->ciphers : DEFAULT_CIPHERS,
				 ossl_reason("no cipher matches")));
		goto fail;
	}
	if (o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites)) {
		set_why(why, fmt("ciphersuites \"%s\": %s", o->ciphersuites, ossl_reason("no cipher suite matches")));
		goto fail;
	}
	if (!SSL_CTX_set1_groups_list(ctx, o->groups ? o->groups : DEFAULT_GROUPS)) {
		set_why(why, fmt("groups \"%s\": %s", o->groups ? o->groups : DEFAULT_GROUPS,
				 ossl_reason("unknown group")));
		goto fail;
	}
	if (!o->session_tickets) {
		opts |= SSL_OP_NO_TICKET;
		SSL_CTX_set_num_tickets(ctx, 0);
	} else {
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	}
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_max_early_data(ctx, 0);
	SSL_CTX_set_recv_max_early_data(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, s->sid_ctx, sizeof s->sid_ctx);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, s);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
	SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
	SSL_CTX_set_tlsext_status_arg(ctx, s);
	if (o->client_verify != MOAT_TLS_CLIENT_OFF) {
		STACK_OF(X509_NAME) *names;

		if (!SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL)) {
			set_why(why, fmt("%s: cannot load CA file: %s", o->client_ca, ossl_reason("?")));
			goto fail;
		}
		names = SSL_load_client_CA_file(o->client_ca);
		if (!names) {
			set_why(why, fmt("%s: cannot load CA file: %s", o->client_ca,
					 ossl_reason("no certificate found")));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx,
				   SSL_VERIFY_PEER | (o->client_verify == MOAT_TLS_CLIENT_REQUIRED
							      ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
							      : 0),
				   NULL);
	}
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct moat_tls_server *moat_tls_server_new(const struct moat_tls_server_opts *o, char **why)
{
	struct moat_tls_server *s;
	size_t nn = 0;

	pthread_once(&ex_once, ex_init);
	if (!o || !o->certs || o->ncerts == 0) {
		set_why(why, fmt("TLS needs at least one certificate"));
		return NULL;
	}
	if (o->client_verify != MOAT_TLS_CLIENT_OFF && !o->client_ca) {
		set_why(why, fmt("client certificate verification needs a client CA file"));
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s || !(s->certs = calloc(o->ncerts, sizeof *s->certs)) ||
	    !(s->ctx = calloc(o->ncerts, sizeof *s->ctx))) {
		free(s ? s->certs : NULL);
		free(s);
		set_why(why, fmt("out of memory"));
		return NULL;
	}
	s->refs = 1;
	if (o->h2) {
		memcpy(s->alpn, "\x02h2\x08http/1.1", 12);
		s->alpn_len = 12;
	} else {
		memcpy(s->alpn, "\x08http/1.1", 9);
		s->alpn_len = 9;
	}
	if (sid_ctx_make(s, o, why) < 0)
		goto fail;
	/* Load every pair and group them by their set of names. */
	for (size_t i = 0; i < o->ncerts; i++) {
		const struct moat_tls_cert_opts *co = &o->certs[i];
		struct srv_cert *c = &s->certs[i];
		size_t g;

		s->ncerts = i + 1;
		if (!co->cert || !co->key) {
			set_why(why, fmt("certificate %zu: needs both a certificate and a key file", i + 1));
			goto fail;
		}
		c->cert_path = strdup(co->cert);
		if (!c->cert_path) {
			set_why(why, fmt("out of memory"));
			goto fail;
		}
		if (load_cert_chain(co->cert, &c->leaf, &c->chain, why) < 0)
			goto fail;
		if (!(c->key = load_key(co->key, why)))
			goto fail;
		if (!X509_check_private_key(c->leaf, c->key)) {
			int later = 0;

			for (int j = 0; j < sk_X509_num(c->chain) && !later; j++)
				later = X509_check_private_key(sk_X509_value(c->chain, j), c->key);
			ERR_clear_error();
			set_why(why, later ? fmt("%s: the certificate of the key %s is not the first one in the file "
						 "(the order must be: the server's certificate, then its issuers)",
						 co->cert, co->key)
					   : fmt("%s: does not match the certificate in %s", co->key, co->cert));
			goto fail;
		}
		c->ktype = EVP_PKEY_get_base_id(c->key);
		if (cert_names(c) < 0) {
			set_why(why, fmt("out of memory"));
			goto fail;
		}
		nn += c->nnames;
		for (g = 0; g < i; g++)
			if (same_names(&s->certs[g], c))
				break;
		if (g < i) {
			c->group = s->certs[g].group;
			for (size_t j = 0; j < i; j++)
				if (s->certs[j].group == c->group && s->certs[j].ktype == c->ktype) {
					set_why(why, fmt("%s: same names and key type as %s", co->cert,
							 s->certs[j].cert_path));
					goto fail;
				}
		} else {
			c->group = s->nctx;
			s->ctx[s->nctx] = server_ctx(s, o, why);
			if (!s->ctx[s->nctx])
				goto fail;
			s->nctx++;
		}
		if (!SSL_CTX_use_cert_and_key(s->ctx[c->group], c->leaf, c->key, c->chain, 1)) {
			set_why(why, fmt("%s: cannot use the certificate: %s", co->cert, ossl_reason("?")));
			goto fail;
		}
		if (co->ocsp && !(c->ocsp = ocsp_new(co->ocsp, c))) {
			set_why(why, fmt("out of memory"));
			goto fail;
		}
	}
	/* The name index: exact names and wildcards apart, sorted; for a name
	 * claimed twice the first certificate's group wins. */
	s->exact = calloc(nn ? nn : 1, sizeof *s->exact);
	s->wild = calloc(nn ? nn : 1, sizeof *s->wild);
	if (!s->exact || !s->wild) {
		set_why(why, fmt("out of memory"));
		goto fail;
	}
	for (size_t i = 0; i < s->ncerts; i++)
		for (size_t j = 0; j < s->certs[i].nnames; j++) {
			const char *n = s->certs[i].names[j];

			if (n[0] == '*' && n[1] == '.' && n[2])
				s->wild[s->nwild++] = (struct name_ent){ n + 2, s->certs[i].group };
			else if (!strchr(n, '*'))
				s->exact[s->nexact++] = (struct name_ent){ n, s->certs[i].group };
		}
	qsort(s->exact, s->nexact, sizeof *s->exact, cmp_ent);
	qsort(s->wild, s->nwild, sizeof *s->wild, cmp_ent);
	s->nexact = dedupe(s->exact, s->nexact);
	s->nwild = dedupe(s->wild, s->nwild);
	ERR_clear_error();
	return s;
fail:
	ERR_clear_error();
	srv_unref(s);
	return NULL;
}

/* ------------------------------------------------------------- client side */

static void cl_unref(struct moat_tls_client *cl)
{
	if (!cl || __atomic_sub_fetch(&cl->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < cl->ncache; i++) {
		free(cl->cache[i].key);
		SSL_SESSION_free(cl->cache[i].sess);
	}
	pthread_mutex_destroy(&cl->lock);
	SSL_CTX_free(cl->ctx);
	free(cl);
}

void moat_tls_client_free(struct moat_tls_client *cl)
{
	cl_unref(cl);
}

/* SSL_CTX_sess_set_new_cb: keeps the last session of each reuse key.
 * Returns 1: the cache took the reference OpenSSL handed over. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct moat_tls_conn *t = SSL_get_ex_data(ssl, ex_conn_idx);
	struct moat_tls_client *cl;
	struct session_ent *e = NULL;
	char *key;

	if (!t || !t->cl || !t->reuse_key || !SSL_SESSION_is_resumable(sess))
		return 0;
	cl = t->cl;
	pthread_mutex_lock(&cl->lock);
	for (size_t i = 0; i < cl->ncache; i++)
		if (strcmp(cl->cache[i].key, t->reuse_key) == 0) {
			e = &cl->cache[i];
			break;
		}
	if (!e) {
		key = strdup(t->reuse_key);
		if (!key) {
			pthread_mutex_unlock(&cl->lock);
			return 0;
		}
		if (cl->ncache < CLIENT_CACHE_MAX) {
			e = &cl->cache[cl->ncache++];
		} else {
			e = &cl->cache[0];
			for (size_t i = 1; i < cl->ncache; i++)
				if (cl->cache[i].used < e->used)
					e = &cl->cache[i];
			free(e->key);
			SSL_SESSION_free(e->sess);
		}
		e->key = key;
		e->sess = NULL;
	}
	SSL_SESSION_free(e->sess);
	e->sess = sess;
	e->used = ++cl->tick;
	pthread_mutex_unlock(&cl->lock);
	return 1;
}

struct moat_tls_client *moat_tls_client_new(const struct moat_tls_client_opts *o, char **why)
{
	struct moat_tls_client *cl;
	SSL_CTX *ctx;

	pthread_once(&ex_once, ex_init);
	cl = calloc(1, sizeof *cl);
	if (!cl) {
		set_why(why, fmt("out of memory"));
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		free(cl);
		set_why(why, fmt("cannot create a TLS context: %s", ossl_reason("out of memory")));
		return NULL;
	}
	cl->refs = 1;
	cl->ctx = ctx;
	cl->verify = o->verify;
	pthread_mutex_init(&cl->lock, NULL);
	if (set_versions(ctx, 0, why) < 0)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (o->verify) {
		if (o->ca) {
			if (!SSL_CTX_load_verify_locations(ctx, o->ca, NULL)) {
				set_why(why, fmt("%s: cannot load CA file: %s", o->ca, ossl_reason("?")));
				goto fail;
			}
		} else if (!SSL_CTX_set_default_verify_paths(ctx)) {
			set_why(why, fmt("cannot load the system's CA store: %s", ossl_reason("?")));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (o->cert || o->key) {
		int asked = 0, kr;

		if (!o->cert || !o->key) {
			set_why(why, fmt("a client certificate needs both a certificate and a key file"));
			goto fail;
		}
		SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
		SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
		if (!SSL_CTX_use_certificate_chain_file(ctx, o->cert)) {
			set_why(why, fmt("%s: cannot read certificate: %s", o->cert, ossl_reason("?")));
			goto fail;
		}
		kr = SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM);
		SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL); /* `asked` goes out of scope */
		if (!kr) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == SSL_R_PRIVATE_KEY_MISMATCH) {
				ERR_clear_error();
				set_why(why, fmt("%s: does not match the certificate in %s", o->key, o->cert));
			} else if (asked) {
				ERR_clear_error();
				set_why(why, fmt("%s: cannot read private key: %s", o->key, ENCRYPTED_KEY_WHY));
			} else {
				set_why(why, fmt("%s: cannot read private key: %s", o->key, ossl_reason("?")));
			}
			goto fail;
		}
		if (!SSL_CTX_check_private_key(ctx)) {
			ERR_clear_error();
			set_why(why, fmt("%s: does not match the certificate in %s", o->key, o->cert));
			goto fail;
		}
	}
	if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)(o->h2 ? "\x02h2" : "\x08http/1.1"),
				    o->h2 ? 3 : 9) != 0) {
		set_why(why, fmt("cannot set ALPN: %s", ossl_reason("?")));
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	ERR_clear_error();
	return cl;
fail:
	ERR_clear_error();
	cl_unref(cl);
	return NULL;
}

/* ------------------------------------------------------------- connections */

/* Watches the socket BIO's reads: one that returned less than OpenSSL
 * asked for (with read-ahead on, it asks for a whole buffer) drained the
 * socket, so the caller need not read again to hear EAGAIN. */
static long rbio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
		    size_t *processed)
{
	struct moat_tls_conn *t = (struct moat_tls_conn *)BIO_get_callback_arg(b);

	(void)argp;
	(void)argi;
	(void)argl;
	if (t && oper == (BIO_CB_READ | BIO_CB_RETURN))
		t->raw_short = ret <= 0 || (processed && *processed < len);
	return ret;
}

static struct moat_tls_conn *conn_new(SSL_CTX *ctx, int fd)
{
	struct moat_tls_conn *t = calloc(1, sizeof *t);
	BIO *rb;

	if (!t)
		return NULL;
	t->fd = fd;
	t->ssl = SSL_new(ctx);
	if (!t->ssl || !SSL_set_fd(t->ssl, fd) || !SSL_set_ex_data(t->ssl, ex_conn_idx, t)) {
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return NULL;
	}
	rb = SSL_get_rbio(t->ssl);
	if (rb) {
		SSL_set_read_ahead(t->ssl, 1);
		BIO_set_callback_arg(rb, (char *)t);
		BIO_set_callback_ex(rb, rbio_cb);
	}
	return t;
}

int moat_tls_drained(const struct moat_tls_conn *t)
{
	return t->raw_short && !SSL_has_pending(t->ssl);
}

struct moat_tls_conn *moat_tls_accept(struct moat_tls_server *s, int fd)
{
	struct moat_tls_conn *t = conn_new(s->ctx[0], fd);

	if (!t)
		return NULL;
	srv_ref(s);
	t->srv = s;
	SSL_set_accept_state(t->ssl);
	return t;
}

struct moat_tls_conn *moat_tls_connect(struct moat_tls_client *cl, int fd, const char *sni, const char *ip,
				       const char *reuse_key)
{
	struct moat_tls_conn *t = conn_new(cl->ctx, fd);
	SSL_SESSION *sess = NULL;
	int name = sni && *sni && !is_ip_literal(sni);

	if (!t)
		return NULL;
	__atomic_add_fetch(&cl->refs, 1, __ATOMIC_RELAXED);
	t->cl = cl;
	SSL_set_connect_state(t->ssl);
	if (reuse_key && !(t->reuse_key = strdup(reuse_key)))
		goto fail;
	if (name && !SSL_set_tlsext_host_name(t->ssl, sni))
		goto fail;
	if (cl->verify) {
		if (name) {
			SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (!SSL_set1_host(t->ssl, sni))
				goto fail;
		} else {
			const char *addr = ip ? ip : sni;

			if (addr && *addr && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), addr))
				goto fail;
		}
	}
	if (t->reuse_key) {
		pthread_mutex_lock(&cl->lock);
		for (size_t i = 0; i < cl->ncache; i++)
			if (strcmp(cl->cache[i].key, t->reuse_key) == 0) {
				/* A copy: OpenSSL marks the session a TLS 1.3
				 * connection resumed as not resumable, and the
				 * entry must stay usable for the next ones. */
				if (SSL_SESSION_is_resumable(cl->cache[i].sess))
					sess = SSL_SESSION_dup(cl->cache[i].sess);
				cl->cache[i].used = ++cl->tick;
				break;
			}
		pthread_mutex_unlock(&cl->lock);
		if (sess) {
			SSL_set_session(t->ssl, sess);
			SSL_SESSION_free(sess);
		}
	}
	ERR_clear_error();
	return t;
fail:
	ERR_clear_error();
	moat_tls_conn_free(t);
	return NULL;
}

void moat_tls_conn_free(struct moat_tls_conn *t)
{
	if (!t)
		return;
	/* OpenSSL marks the session of a connection freed without a
	 * shutdown as not resumable (and the client cache holds that very
	 * session). A connection closed without an error is no reason to
	 * forget its session; after a fatal error OpenSSL has already done so. */
	if (!t->failed && SSL_is_init_finished(t->ssl))
		SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(t->ssl);
	srv_unref(t->srv);
	cl_unref(t->cl);
	free(t->reuse_key);
	free(t->ch);
	free(t);
}

int moat_tls_peek_hello(struct moat_tls_conn *t)
{
	uint8_t buf[MOAT_TLS_CH_MAX];
	struct moat_tls_ch ch;
	ssize_t n;
	int r;

	if (t->ch_done || !t->srv)
		return 1;
	do
		n = recv(t->fd, buf, sizeof buf, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		t->sys_errno = errno;
		return MOAT_TLS_ERROR;
	}
	if (n == 0) {
		t->sys_errno = 0;
		return MOAT_TLS_ERROR;
	}
	if ((size_t)n < t->ch_need)
		return 0;
	r = moat_tls_ch_parse(buf, (size_t)n, &ch);
	if (r == MOAT_AGAIN) {
		t->ch_need = ch.need;
		return 0;
	}
	t->ch_done = 1;
	if (r > 0) {
		t->ch = malloc(sizeof *t->ch);
		if (t->ch)
			memcpy(t->ch, &ch, sizeof ch);
	}
	return 1;
}

const struct moat_tls_ch *moat_tls_clienthello(const struct moat_tls_conn *t)
{
	return t->ch;
}

/* Maps the result of a failed SSL call; records the reason of a failure. */
static int map_err(struct moat_tls_conn *t, int ret)
{
	int e = SSL_get_error(t->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return MOAT_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return MOAT_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		t->sys_errno = errno;
		t->err = ERR_peek_last_error();
		break;
	default:
		t->err = ERR_peek_last_error();
		t->sys_errno = 0;
		break;
	}
	t->failed = 1;
	t->verify_result = SSL_get_verify_result(t->ssl);
	ERR_clear_error();
	return MOAT_TLS_ERROR;
}

int moat_tls_handshake(struct moat_tls_conn *t)
{
	int r;

	if (t->failed)
		return MOAT_TLS_ERROR;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return 1;
	r = map_err(t, r);
	if (r == 0) {       /* close_notify during the handshake */
		t->failed = 1;
		return MOAT_TLS_ERROR;
	}
	return r;
}

ssize_t moat_tls_read(struct moat_tls_conn *t, void *buf, size_t n)
{
	size_t got = 0;
	int r;

	if (t->failed)
		return MOAT_TLS_ERROR;
	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(t->ssl, buf, n, &got) == 1)
		return (ssize_t)got;
	if (SSL_get_error(t->ssl, 0) == SSL_ERROR_SSL) {
		unsigned long e = ERR_peek_last_error();

		/* EOF without close_notify: a peer that closed, as for plain TCP. */
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			t->failed = 1;
			return 0;
		}
	}
	r = map_err(t, 0);
	return r;
}

/*
 * OpenSSL's retry rule: after WANT_WRITE the next SSL_write must ask for
 * at least as many bytes as before (it sends the record it already
 * encrypted from them; with SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER it does not
 * read them again). The caller offers its byte stream again from the same
 * point, but maybe in a shorter piece (a head it gathered with body bytes
 * is flushed alone next time). So the pending write is finished with the
 * length OpenSSL wants, and what it sent beyond the piece offered is
 * reported when the caller offers those bytes (wskip), not sent twice.
 */
ssize_t moat_tls_write(struct moat_tls_conn *t, const void *buf, size_t n)
{
	size_t put = 0, len = n;
	char *pad = NULL;
	int r;

	if (t->failed)
		return MOAT_TLS_ERROR;
	if (t->wskip) {
		size_t k = n < t->wskip ? n : t->wskip;

		t->wskip -= k;
		return (ssize_t)k;
	}
	if (t->wpend > n) {
		/* the stream's bytes are the same: only the length counts */
		pad = calloc(1, t->wpend);
		if (!pad)
			return MOAT_TLS_WANT_WRITE;
		buf = pad;
		len = t->wpend;
	}
	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(t->ssl, buf, len, &put) == 1) {
		free(pad);
		t->wpend = 0;
		if (put > n) {
			t->wskip = put - n;
			put = n;
		}
		return (ssize_t)put;
	}
	free(pad);
	r = map_err(t, 0);
	if (r == 0) {
		t->failed = 1;
		return MOAT_TLS_ERROR;
	}
	if (r == MOAT_TLS_WANT_WRITE || r == MOAT_TLS_WANT_READ) {
		if (len > t->wpend)
			t->wpend = len;
	}
	return r;
}

void moat_tls_shutdown(struct moat_tls_conn *t)
{
	if (t->failed || !SSL_is_init_finished(t->ssl))
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

const char *moat_tls_alpn(const struct moat_tls_conn *t)
{
	const unsigned char *p = NULL;
	unsigned len = 0;

	SSL_get0_alpn_selected(t->ssl, &p, &len);
	if (len == 2 && memcmp(p, "h2", 2) == 0)
		return "h2";
	if (len == 8 && memcmp(p, "http/1.1", 8) == 0)
		return "http/1.1";
	return "";
}

const char *moat_tls_version(const struct moat_tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *moat_tls_cipher(const struct moat_tls_conn *t)
{
	const char *c = SSL_get_cipher_name(t->ssl);

	return c ? c : "";
}

const char *moat_tls_sni(const struct moat_tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int moat_tls_resumed(const struct moat_tls_conn *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

size_t moat_tls_peer_subject(const struct moat_tls_conn *t, char *buf, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(t->ssl);
	BIO *b;
	char *p = NULL;
	long len;
	size_t n = 0;

	if (cap)
		buf[0] = 0;
	if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK || cap == 0)
		return 0;
	b = BIO_new(BIO_s_mem());
	if (!b)
		return 0;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		len = BIO_get_mem_data(b, &p);
		if (len > 0 && (size_t)len < cap) {
			memcpy(buf, p, (size_t)len);
			buf[len] = 0;
			n = (size_t)len;
		}
	}
	BIO_free(b);
	ERR_clear_error();
	return n;
}

const char *moat_tls_error(struct moat_tls_conn *t, char *buf, size_t cap)
{
	unsigned long e = t ? t->err : ERR_peek_last_error();
	long vr = t ? t->verify_result : X509_V_OK;
	const char *r;

	if (cap == 0)
		return "";
	if (vr != X509_V_OK) {
		snprintf(buf, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
	} else if (e) {
		r = ERR_reason_error_string(e);
		if (r)
			snprintf(buf, cap, "%s", r);
		else
			ERR_error_string_n(e, buf, cap);
	} else if (t && t->sys_errno) {
		snprintf(buf, cap, "%s", strerror(t->sys_errno));
	} else if (t && t->failed) {
		snprintf(buf, cap, "connection closed by the peer");
	} else {
		snprintf(buf, cap, "no error");
	}
	return buf;
}
