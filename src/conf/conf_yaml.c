/*
 * conf_yaml.c - the YAML walker: reports, scalars, paths, and the generic
 * walk of a mapping by a table of keys (see conf_yaml.h). What the keys
 * are, and what each means, is conf_schema.c.
 *
 * libyaml's document API loads the whole file into a node tree whose nodes
 * carry their start position; the schema walks that tree the way its
 * tables say, never deeper, so an alias that points back at its own anchor
 * cannot make it loop. Aliases are followed: each use counts towards
 * MOAT_CONF_MAX_NODES, which bounds the work a small document can cause.
 *
 * The walk never stops at the first error: a bad value leaves the default
 * in place and the walk goes on, so one run reports every problem (up to
 * MOAT_CONF_MAX_ERRORS).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_yaml.h"
#include "core/limits.h"

/* ---- errors ------------------------------------------------------------- */

struct moat_conf_pos moat_conf_yaml_pos(const yaml_node_t *n)
{
	struct moat_conf_pos p;

	p.line = (unsigned)n->start_mark.line + 1;
	p.col = (unsigned)n->start_mark.column + 1;
	return p;
}

static int error_cmp(const void *a, const void *b)
{
	const struct moat_conf_found_error *x = a, *y = b;

	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	if (x->pos.col != y->pos.col)
		return x->pos.col < y->pos.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq; /* found first, listed first */
}

/* Appends the errors kept so far to ld->err, sorted by position. The count
 * (ld->nerr) stays. */
void moat_conf_yaml_flush_errors(struct moat_conf_loader *ld)
{
	unsigned i, n = 0;

	for (i = 0; i < ld->nerr; i++)
		if (ld->errors[i].msg != NULL)
			ld->errors[n++] = ld->errors[i];
	qsort(ld->errors, n, sizeof ld->errors[0], error_cmp);
	for (i = 0; i < n; i++) {
		moat_conf_errorf(ld->err, "%s:%u:%u: %s", ld->name, ld->errors[i].pos.line,
				 ld->errors[i].pos.col, ld->errors[i].msg);
		free(ld->errors[i].msg);
		ld->errors[i].msg = NULL;
	}
}

static void verr_at(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *fmt, va_list ap)
	MOAT_CONF_PRINTF(3, 0);

static void verr_at(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *fmt, va_list ap)
{
	char msg[2048];
	struct moat_conf_found_error *e;

	if (ld->stop)
		return;
	if (ld->nerr == MOAT_CONF_MAX_ERRORS) {
		moat_conf_yaml_flush_errors(ld);
		moat_conf_errorf(ld->err, "%s:%u:%u: too many errors, stopping here", ld->name, pos.line,
				 pos.col);
		ld->stop = 1;
		return;
	}
	vsnprintf(msg, sizeof msg, fmt, ap);
	e = &ld->errors[ld->nerr];
	e->seq = ld->nerr++;
	e->pos = pos;
	e->msg = strdup(msg);
	if (e->msg == NULL) /* keep the message anyway, out of order */
		moat_conf_errorf(ld->err, "%s:%u:%u: %s", ld->name, pos.line, pos.col, msg);
}

/* Reports "NAME:LINE:COL: message" at `pos`. */
void moat_conf_yaml_error_at(struct moat_conf_loader *ld, struct moat_conf_pos pos, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(ld, pos, fmt, ap);
	va_end(ap);
}

/* Reports "NAME:LINE:COL: PATH: message" at node `n`, PATH being where the walk is. */
void moat_conf_yaml_error(struct moat_conf_loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ld->pathlen == 0)
		moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(n), "%s", msg);
	else
		moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(n), "%s: %s", ld->path, msg);
}

void moat_conf_yaml_oom(struct moat_conf_loader *ld, const yaml_node_t *n)
{
	moat_conf_yaml_error(ld, n, "out of memory");
}

/* Describes a value for "got ..." in messages. */
const char *moat_conf_yaml_describe(const yaml_node_t *n, char *buf, size_t len)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (n->type != YAML_SCALAR_NODE)
		return "nothing";
	if (is_null(n))
		return "an empty value";
	moat_conf_quote(sval(n), slen(n), 48, buf, len);
	return buf;
}

/* The text of a scalar, or NULL after reporting "expected WHAT". */
const char *moat_conf_yaml_scalar(struct moat_conf_loader *ld, const yaml_node_t *n, const char *what)
{
	char got_buf[128];

	if (n->type != YAML_SCALAR_NODE || is_null(n)) {
		moat_conf_yaml_error(ld, n, "expected %s, got %s", what, MOAT_CONF_GOT(n));
		return NULL;
	}
	if (strlen(sval(n)) != slen(n)) {
		moat_conf_yaml_error(ld, n, "expected %s, got a string with a NUL character", what);
		return NULL;
	}
	return sval(n);
}

/* Same, for a scalar that must be printable text: no control characters. */
const char *moat_conf_yaml_text(struct moat_conf_loader *ld, const yaml_node_t *n, const char *what)
{
	const char *v = moat_conf_yaml_scalar(ld, n, what);
	char got_buf[128];
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; v[i] != '\0'; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			moat_conf_yaml_error(ld, n, "expected %s, got %s", what, MOAT_CONF_GOT(n));
			return NULL;
		}
	}
	return v;
}

/* ---- the walk ----------------------------------------------------------- */

yaml_node_t *moat_conf_yaml_node(struct moat_conf_loader *ld, int id)
{
	return yaml_document_get_node(ld->doc, id);
}

/* Counts one more value walked; returns 1 (after reporting once) past the budget. */
int moat_conf_yaml_over_budget(struct moat_conf_loader *ld, const yaml_node_t *n)
{
	if (ld->stop)
		return 1;
	if (++ld->nodes <= MOAT_CONF_MAX_NODES)
		return 0;
	moat_conf_yaml_error_at(
	    ld, moat_conf_yaml_pos(n),
	    "the configuration is too large: more than %u values (each use of an alias counts)",
	    MOAT_CONF_MAX_NODES);
	ld->stop = 1;
	return 1;
}

/* Appends ".key" ("key" at the top) or "[i]" to the path; returns the
 * length to give back to path_pop. Non-printable characters become '?'. */
size_t moat_conf_yaml_push_key(struct moat_conf_loader *ld, const char *key, size_t klen)
{
	size_t old = ld->pathlen, o = old, i;

	if (o > 0 && o + 1 < sizeof ld->path)
		ld->path[o++] = '.';
	for (i = 0; i < klen && i < 64 && o + 1 < sizeof ld->path; i++)
		ld->path[o++] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
	ld->path[o] = '\0';
	ld->pathlen = o;
	return old;
}

size_t moat_conf_yaml_push_index(struct moat_conf_loader *ld, size_t i)
{
	size_t old = ld->pathlen;
	int n = snprintf(ld->path + old, sizeof ld->path - old, "[%zu]", i);

	if (n > 0)
		ld->pathlen = old + (size_t)n < sizeof ld->path ? old + (size_t)n : sizeof ld->path - 1;
	return old;
}

void moat_conf_yaml_pop(struct moat_conf_loader *ld, size_t old)
{
	ld->pathlen = old;
	ld->path[old] = '\0';
}

/* "in listeners[0]" or "at the top level", for key errors. */
static const char *where_text(const struct moat_conf_loader *ld, char *buf, size_t len)
{
	if (ld->pathlen == 0)
		return "at the top level";
	snprintf(buf, len, "in %s", ld->path);
	return buf;
}

static int same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE && slen(a) == slen(b) &&
	       memcmp(sval(a), sval(b), slen(a)) == 0;
}

/*
 * Checks key number `i` of mapping `m`: a scalar, not seen before in `m`.
 * Returns the key node, or NULL after reporting the problem.
 */
yaml_node_t *moat_conf_yaml_check_key(struct moat_conf_loader *ld, yaml_node_t *m, size_t i)
{
	yaml_node_pair_t *pairs = m->data.mapping.pairs.start;
	yaml_node_t *k = moat_conf_yaml_node(ld, pairs[i].key);
	char got_buf[128], wbuf[400];
	size_t j;

	if (k == NULL)
		return NULL;
	if (k->type != YAML_SCALAR_NODE) {
		moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(k), "expected a key name %s, got %s",
					where_text(ld, wbuf, sizeof wbuf), MOAT_CONF_GOT(k));
		return NULL;
	}
	for (j = 0; j < i; j++) {
		yaml_node_t *prev = moat_conf_yaml_node(ld, pairs[j].key);
		if (prev != NULL && same_scalar(prev, k)) {
			moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(k),
						"duplicate key %s %s (first at line %u, column %u)",
						MOAT_CONF_GOT(k), where_text(ld, wbuf, sizeof wbuf),
						moat_conf_yaml_pos(prev).line, moat_conf_yaml_pos(prev).col);
			return NULL;
		}
	}
	return k;
}

/* "a size of 256B", "a size of 1MiB": sizes in messages. */
void moat_conf_yaml_size_text(uint64_t v, char *buf, size_t len)
{
	moat_conf_format_size(v, buf, len);
	if (v % MOAT_KIB != 0 || v == 0)
		snprintf(buf + strlen(buf), len - strlen(buf), "B");
}

static void set_duration(struct moat_conf_loader *ld, yaml_node_t *val, uint64_t *field, uint64_t min,
			 uint64_t max)
{
	char ex[32], lim[32], what[96], got_buf[128];
	const char *v;
	uint64_t ms;

	moat_conf_format_duration(*field != 0 ? *field : 30 * MOAT_SECOND_MS, ex, sizeof ex);
	snprintf(what, sizeof what, "a duration like \"%s\" or \"500ms\"", ex);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return;
	if (moat_conf_parse_duration(v, &ms) < 0) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return;
	}
	if (ms < min) {
		moat_conf_yaml_error(ld, val, "expected a duration greater than 0 like \"%s\", got %s", ex,
				     MOAT_CONF_GOT(val));
		return;
	}
	if (ms > max) {
		moat_conf_format_duration(max, lim, sizeof lim);
		moat_conf_yaml_error(ld, val, "expected a duration of at most %s, got %s", lim,
				     MOAT_CONF_GOT(val));
		return;
	}
	*field = ms;
}

/* Parses a size in [min, max]; returns 0 or -1 (reported). */
static int get_size(struct moat_conf_loader *ld, yaml_node_t *val, uint64_t cur, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	char ex[32], lo[32], hi[32], what[96], got_buf[128];
	const char *v;
	uint64_t b;

	moat_conf_format_size(cur != 0 ? cur : 64 * MOAT_KIB, ex, sizeof ex);
	snprintf(what, sizeof what, "a size like \"%s\" or \"1MiB\"", ex);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return -1;
	if (moat_conf_parse_size(v, &b) < 0) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return -1;
	}
	if (b < min || b > max) {
		moat_conf_yaml_size_text(min, lo, sizeof lo);
		moat_conf_yaml_size_text(max, hi, sizeof hi);
		moat_conf_yaml_error(ld, val, "expected a size between %s and %s, got %s", lo, hi,
				     MOAT_CONF_GOT(val));
		return -1;
	}
	*out = b;
	return 0;
}

/* Parses an integer in [min, max]; returns 0 or -1 (reported). */
static int get_uint(struct moat_conf_loader *ld, yaml_node_t *val, uint64_t min, uint64_t max, uint64_t *out)
{
	char what[96], got_buf[128];
	const char *v;
	uint64_t n;

	snprintf(what, sizeof what, "an integer between %llu and %llu", (unsigned long long)min,
		 (unsigned long long)max);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return -1;
	if (moat_conf_parse_uint(v, &n) < 0 || n < min || n > max) {
		moat_conf_yaml_error(ld, val, "expected %s, got %s", what, MOAT_CONF_GOT(val));
		return -1;
	}
	*out = n;
	return 0;
}

static void set_bool(struct moat_conf_loader *ld, yaml_node_t *val, int *field)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	char got_buf[128];
	const char *v = moat_conf_yaml_scalar(ld, val, "true or false");
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < MOAT_CONF_NELEM(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*field = 1;
			return;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*field = 0;
			return;
		}
	}
	moat_conf_yaml_error(ld, val, "expected true or false, got %s", MOAT_CONF_GOT(val));
}

static void apply(struct moat_conf_loader *ld, const struct moat_conf_key *d, yaml_node_t *val, void *obj)
{
	char *field = (char *)obj + d->offset;
	uint64_t v;

	switch (d->kind) {
	case MOAT_CONF_K_CUSTOM:
		d->fn(ld, val, obj);
		break;
	case MOAT_CONF_K_SECTION:
		moat_conf_yaml_walk_map(ld, val, d->sub, d->nsub, field, NULL);
		break;
	case MOAT_CONF_K_DURATION:
		set_duration(ld, val, (uint64_t *)(void *)field, d->min, d->max);
		break;
	case MOAT_CONF_K_SIZE:
		if (get_size(ld, val, *(size_t *)(void *)field, d->min, d->max, &v) == 0)
			*(size_t *)(void *)field = (size_t)v;
		break;
	case MOAT_CONF_K_SIZE64:
		if (get_size(ld, val, *(uint64_t *)(void *)field, d->min, d->max, &v) == 0)
			*(uint64_t *)(void *)field = v;
		break;
	case MOAT_CONF_K_UINT:
		if (get_uint(ld, val, d->min, d->max, &v) == 0)
			*(unsigned *)(void *)field = (unsigned)v;
		break;
	case MOAT_CONF_K_COUNT:
		if (get_uint(ld, val, d->min, d->max, &v) == 0)
			*(size_t *)(void *)field = (size_t)v;
		break;
	case MOAT_CONF_K_BOOL:
		set_bool(ld, val, (int *)(void *)field);
		break;
	}
}

/*
 * Walks mapping `m` by the table `t`: unknown and duplicate keys are
 * errors; each known key's value goes to its setter with `obj`. A null
 * value (an empty section) is an empty mapping. Returns the keys seen (bit
 * i for t[i]); fills where[i] with the value's position when `where` is
 * not NULL.
 */
unsigned moat_conf_yaml_walk_map(struct moat_conf_loader *ld, yaml_node_t *m, const struct moat_conf_key *t,
				 size_t nt, void *obj, struct moat_conf_pos *where)
{
	char got_buf[128], wbuf[400], keys[400];
	unsigned seen = 0;
	size_t i, n, j;

	if (is_null(m))
		return 0;
	if (m->type != YAML_MAPPING_NODE) {
		moat_conf_yaml_error(ld, m, "expected a mapping (\"key: value\" lines), got %s",
				     MOAT_CONF_GOT(m));
		return 0;
	}
	n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
	for (i = 0; i < n && !ld->stop; i++) {
		yaml_node_t *k, *v;
		size_t old;

		if (moat_conf_yaml_over_budget(ld, m))
			break;
		k = moat_conf_yaml_check_key(ld, m, i);
		v = moat_conf_yaml_node(ld, m->data.mapping.pairs.start[i].value);
		if (k == NULL || v == NULL)
			continue;
		for (j = 0; j < nt; j++)
			if (strlen(t[j].key) == slen(k) && memcmp(t[j].key, sval(k), slen(k)) == 0)
				break;
		if (j == nt) {
			size_t o = 0;
			for (j = 0; j < nt && o < sizeof keys; j++)
				o += (size_t)snprintf(keys + o, sizeof keys - o, "%s%s", j ? ", " : "",
						      t[j].key);
			moat_conf_yaml_error_at(ld, moat_conf_yaml_pos(k),
						"unknown key %s %s; expected one of: %s", MOAT_CONF_GOT(k),
						where_text(ld, wbuf, sizeof wbuf), keys);
			continue;
		}
		seen |= 1u << j;
		if (where != NULL)
			where[j] = moat_conf_yaml_pos(v);
		old = moat_conf_yaml_push_key(ld, sval(k), slen(k));
		apply(ld, &t[j], v, obj);
		moat_conf_yaml_pop(ld, old);
	}
	return seen;
}

/*
 * A list value: NULL after reporting when it is not a list, or is longer
 * than `max`; `*n` its length. A null value is an empty list.
 */
yaml_node_item_t *moat_conf_yaml_list(struct moat_conf_loader *ld, yaml_node_t *v, size_t max, const char *what,
				      size_t *n)
{
	static yaml_node_item_t none;
	char got_buf[128];

	*n = 0;
	if (is_null(v))
		return &none;
	if (v->type != YAML_SEQUENCE_NODE) {
		moat_conf_yaml_error(ld, v, "expected a list of %s, got %s", what, MOAT_CONF_GOT(v));
		return NULL;
	}
	*n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (*n > max) {
		moat_conf_yaml_error(ld, v, "too many %s: %zu, at most %zu", what, *n, max);
		return NULL;
	}
	return v->data.sequence.items.start;
}

unsigned moat_conf_yaml_walk_entry(struct moat_conf_loader *ld, yaml_node_t *it, const struct moat_conf_key *keys,
				   size_t n, void *obj, unsigned req, const char *like, struct moat_conf_pos *where)
{
	char got_buf[128];
	unsigned seen;

	if (it->type != YAML_MAPPING_NODE) {
		moat_conf_yaml_error(ld, it, "expected a mapping like %s, got %s", like, MOAT_CONF_GOT(it));
		return 0;
	}
	seen = moat_conf_yaml_walk_map(ld, it, keys, n, obj, where);
	if (!(seen & (1u << req)))
		moat_conf_yaml_error(ld, it, "missing required key \"%s\"", keys[req].key);
	return seen;
}

int moat_conf_yaml_word(struct moat_conf_loader *ld, yaml_node_t *val, const char *const *words, size_t n)
{
	char what[160], got_buf[128];
	const char *v;
	size_t i, o;

	o = (size_t)snprintf(what, sizeof what, "one of");
	for (i = 0; i < n && o < sizeof what; i++)
		o += (size_t)snprintf(what + o, sizeof what - o, "%s%s", i ? ", " : " ", words[i]);
	v = moat_conf_yaml_scalar(ld, val, what);
	if (v == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(v, words[i]) == 0)
			return (int)i;
	moat_conf_yaml_error(ld, val, "expected %s; got %s", what, MOAT_CONF_GOT(val));
	return -1;
}

void moat_conf_yaml_set_string(struct moat_conf_loader *ld, yaml_node_t *at, char **field, const char *v)
{
	char *copy = NULL;

	if (v != NULL && (copy = strdup(v)) == NULL) {
		moat_conf_yaml_oom(ld, at);
		return;
	}
	free(*field);
	*field = copy;
}

/* Zeroed array of n elements (at least one byte), NULL after reporting. */
void *moat_conf_yaml_alloc(struct moat_conf_loader *ld, const yaml_node_t *at, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		moat_conf_yaml_oom(ld, at);
	return p;
}

/* Turns a reader error's byte offset into a line and column. */
static struct moat_conf_pos offset_pos(const struct moat_conf_loader *ld, size_t off)
{
	struct moat_conf_pos p = { 1, 1 };
	size_t i;

	for (i = 0; i < off && i < ld->len; i++) {
		if (ld->data[i] == '\n') {
			p.line++;
			p.col = 1;
		} else if (((unsigned char)ld->data[i] & 0xc0) != 0x80) {
			p.col++;
		}
	}
	return p;
}

void moat_conf_yaml_syntax_error(struct moat_conf_loader *ld, const yaml_parser_t *p)
{
	struct moat_conf_pos pos, ctx;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		ld->nerr++;
		moat_conf_errorf(ld->err, "%s: out of memory", ld->name);
		return;
	case YAML_READER_ERROR:
		pos = offset_pos(ld, p->problem_offset);
		if (p->problem_value != -1)
			moat_conf_yaml_error_at(ld, pos, "YAML: %s (byte 0x%02x)",
						p->problem ? p->problem : "cannot read",
						(unsigned)p->problem_value & 0xffu);
		else
			moat_conf_yaml_error_at(ld, pos, "YAML: %s", p->problem ? p->problem : "cannot read");
		return;
	default:
		pos.line = (unsigned)p->problem_mark.line + 1;
		pos.col = (unsigned)p->problem_mark.column + 1;
		ctx.line = (unsigned)p->context_mark.line + 1;
		ctx.col = (unsigned)p->context_mark.column + 1;
		if (p->context != NULL)
			moat_conf_yaml_error_at(ld, pos, "YAML syntax error: %s (%s at line %u, column %u)",
						p->problem ? p->problem : "?", p->context, ctx.line, ctx.col);
		else
			moat_conf_yaml_error_at(ld, pos, "YAML syntax error: %s",
						p->problem ? p->problem : "?");
		return;
	}
}
