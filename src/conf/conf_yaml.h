/*
 * conf_yaml.h - the YAML walker that conf_yaml.c provides and the schema
 * (conf_schema.c, conf_upstream.c) drives; internal to src/conf.
 *
 * A struct moat_conf_loader lives on the stack of one moat_conf_load_buffer
 * call. The walker reads the libyaml document tree along tables of keys
 * (struct moat_conf_key), calls a setter per value and reports every problem
 * as "NAME:LINE:COL: PATH: message", PATH being where the walk is
 * ("upstreams.app.servers[1]"). Errors are kept and come out sorted by
 * position (moat_conf_yaml_flush_errors). Control thread only.
 */
#ifndef MOAT_CONF_CONF_YAML_H
#define MOAT_CONF_CONF_YAML_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "core/limits.h"

/* A route's upstream name, resolved once every upstream is known. Borrows
 * the document's text: valid until the document is deleted. */
struct moat_conf_pending_route {
	const char *name;            /* NULL: no "upstream" key (already reported) */
	struct moat_conf_pos pos;
};

/* One error, kept until the walk ends so that errors come out sorted by
 * position whatever order the checks ran in. */
struct moat_conf_found_error {
	struct moat_conf_pos pos;
	unsigned seq;                /* order found, for a stable sort */
	char *msg;                   /* the message after "NAME:LINE:COL: " */
};

struct moat_conf_loader {
	const char *name;            /* file name used in messages */
	const char *data;            /* the document's bytes, for reader-error positions */
	size_t len;
	yaml_document_t *doc;
	struct moat_conf *c;
	struct moat_conf_errors *err;
	unsigned nerr;
	struct moat_conf_found_error errors[MOAT_CONF_MAX_ERRORS]; /* the first nerr of them */
	int stop;                    /* too many errors or values: walk no further */
	size_t nodes;                /* values walked, see MOAT_CONF_MAX_NODES */
	struct moat_conf_pending_route *pending; /* one per route */
	char path[320];              /* where the walk is, e.g. "upstreams.app.servers[1]" */
	size_t pathlen;
	int bad_algorithm;           /* the upstream being walked has an algorithm that did not
				      * parse: checks that depend on it are skipped */
};

/* ---- scalars: the text of a YAML scalar node (NUL-terminated, owned by the document) ---- */

static inline const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static inline size_t slen(const yaml_node_t *n)
{
	return n->data.scalar.length;
}

/* YAML's null: an unquoted empty value, "~" or "null". */
static inline int is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = sval(n);
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

/* How a key's value is stored (see struct moat_conf_key). */
enum moat_conf_key_kind {
	MOAT_CONF_K_CUSTOM,     /* fn(ld, value, obj) */
	MOAT_CONF_K_SECTION,    /* a mapping walked with `sub`, into obj + offset */
	MOAT_CONF_K_DURATION,   /* uint64_t milliseconds at obj + offset, in [min, max] */
	MOAT_CONF_K_SIZE,       /* size_t bytes */
	MOAT_CONF_K_SIZE64,     /* uint64_t bytes */
	MOAT_CONF_K_UINT,       /* unsigned integer */
	MOAT_CONF_K_COUNT,      /* size_t integer */
	MOAT_CONF_K_BOOL,       /* int 0/1 */
};

/* One key of a mapping: nginx-style tables with generic setters. The value
 * lives at obj + offset; a generic setter stores it only when it is valid,
 * so a bad value leaves the default in place. */
struct moat_conf_key {
	const char *key;
	enum moat_conf_key_kind kind;
	size_t offset;
	uint64_t min, max;
	void (*fn)(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);
	const struct moat_conf_key *sub;
	size_t nsub;
};

#define MOAT_CONF_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* "got ..." text for node n in messages; needs a `char got_buf[128]` in scope. */
#define MOAT_CONF_GOT(n) moat_conf_yaml_describe((n), got_buf, sizeof got_buf)

/* ---- errors ---- */

/* The 1-based position where node n starts. */
struct moat_conf_pos moat_conf_yaml_pos(const yaml_node_t *n);

/* Reports "NAME:LINE:COL: message" at `pos`. After MOAT_CONF_MAX_ERRORS
 * errors the walk is stopped (ld->stop). */
void moat_conf_yaml_error_at(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *fmt, ...)
	MOAT_CONF_PRINTF(3, 4);

/* Reports "NAME:LINE:COL: PATH: message" at node `n`. */
void moat_conf_yaml_error(struct moat_conf_loader *ld, const yaml_node_t *n, const char *fmt, ...)
	MOAT_CONF_PRINTF(3, 4);

/* Reports "out of memory" at node `n`. */
void moat_conf_yaml_oom(struct moat_conf_loader *ld, const yaml_node_t *n);

/* Reports libyaml's parse error (syntax, bad UTF-8...) at its position. */
void moat_conf_yaml_syntax_error(struct moat_conf_loader *ld, const yaml_parser_t *p);

/* Appends the errors kept so far to ld->err, sorted by position, and frees
 * them; ld->nerr (the count) stays. */
void moat_conf_yaml_flush_errors(struct moat_conf_loader *ld);

/* ---- values ---- */

/* Describes node n for "got ...": a quoted, escaped, shortened scalar, "a
 * list", "a mapping" or "an empty value". Returns `buf` or a constant. */
const char *moat_conf_yaml_describe(const yaml_node_t *n, char *buf, size_t len);

/* The text of a non-null scalar without NUL characters, or NULL after
 * reporting "expected WHAT, got ...". */
const char *moat_conf_yaml_scalar(struct moat_conf_loader *ld, const yaml_node_t *n, const char *what);

/* Same, and without control characters either. */
const char *moat_conf_yaml_text(struct moat_conf_loader *ld, const yaml_node_t *n, const char *what);

/* "256B", "1MiB": a size in messages. */
void moat_conf_yaml_size_text(uint64_t v, char *buf, size_t len);

/* ---- the walk ---- */

/* The node with that id in the document (NULL for a bad id). */
yaml_node_t *moat_conf_yaml_node(struct moat_conf_loader *ld, int id);

/* Counts one more value walked; returns 1 (after reporting once, and
 * stopping the walk) past MOAT_CONF_MAX_NODES, or when already stopped. */
int moat_conf_yaml_over_budget(struct moat_conf_loader *ld, const yaml_node_t *n);

/* Append ".key" ("key" at the top) or "[i]" to the path; return the length
 * to give back to moat_conf_yaml_pop. */
size_t moat_conf_yaml_push_key(struct moat_conf_loader *ld, const char *key, size_t klen);
size_t moat_conf_yaml_push_index(struct moat_conf_loader *ld, size_t i);
void moat_conf_yaml_pop(struct moat_conf_loader *ld, size_t old);

/* Key number i of mapping m when it is a scalar not seen earlier in m;
 * NULL after reporting otherwise. */
yaml_node_t *moat_conf_yaml_check_key(struct moat_conf_loader *ld, yaml_node_t *m, size_t i);

/*
 * Walks mapping `m` by the table `t`: unknown and duplicate keys are
 * errors; each known key's value goes to its setter with `obj`. A null
 * value (an empty section) is an empty mapping. Returns the keys seen (bit
 * i for t[i]; at most 32 keys); fills where[i] with the value's position
 * when `where` is not NULL.
 */
unsigned moat_conf_yaml_walk_map(struct moat_conf_loader *ld, yaml_node_t *m, const struct moat_conf_key *t,
				 size_t nt, void *obj, struct moat_conf_pos *where);

/* The items of list `v` (*n of them), NULL after reporting when it is not a
 * list or has more than `max` items. A null value is an empty list. */
yaml_node_item_t *moat_conf_yaml_list(struct moat_conf_loader *ld, yaml_node_t *v, size_t max, const char *what,
				      size_t *n);

/* A zeroed array of n elements, NULL after reporting "out of memory". */
void *moat_conf_yaml_alloc(struct moat_conf_loader *ld, const yaml_node_t *at, size_t n, size_t size);

/* Walks `it`, one entry of a list or one block, by `keys` into obj like
 * moat_conf_yaml_walk_map, and reports an entry that is not a mapping (`like`
 * shows one) and a missing keys[req]. Returns the keys seen (0 when `it` is
 * not a mapping). */
unsigned moat_conf_yaml_walk_entry(struct moat_conf_loader *ld, yaml_node_t *it, const struct moat_conf_key *keys,
				   size_t n, void *obj, unsigned req, const char *like, struct moat_conf_pos *where);

/* Index of the scalar `val` in `words` (n of them), or -1 after reporting
 * "expected one of ...; got ...". */
int moat_conf_yaml_word(struct moat_conf_loader *ld, yaml_node_t *val, const char *const *words, size_t n);

/* Sets *field to a copy of `v` (NULL when v is NULL), freeing the old one;
 * on allocation failure reports it at `at` and leaves *field alone. */
void moat_conf_yaml_set_string(struct moat_conf_loader *ld, yaml_node_t *at, char **field, const char *v);

/* Reads a list of IP addresses / CIDR blocks at `val` into *list (*n
 * entries), replacing what was there; each bad entry is an error at its
 * position. Defined in conf_schema.c. */
void moat_conf_set_cidrs(struct moat_conf_loader *ld, yaml_node_t *val, struct moat_conf_cidr **list,
			 size_t *n);

/* ---- sections with a file of their own ---- */

/* The "upstreams" mapping, into the snapshot `obj` (conf_upstream.c). */
void moat_conf_schema_upstreams(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* The "admin" mapping, into the snapshot `obj` (conf_admin.c). */
void moat_conf_schema_admin(struct moat_conf_loader *ld, yaml_node_t *val, void *obj);

/* After the walk: reports an admin listener on a traffic listener's address. */
void moat_conf_schema_admin_check(struct moat_conf_loader *ld);

#endif
