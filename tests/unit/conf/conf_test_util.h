/*
 * conf_test_util.h - what the tests of src/conf share: loading a document
 * from a string, expecting its exact errors, and the print round trip.
 * Included by conf_test.c and conf_upstream_test.c after cmocka.h; each
 * test binary gets its own copy (static inline).
 */
#ifndef MOAT_TESTS_CONF_TEST_UTIL_H
#define MOAT_TESTS_CONF_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/* ---- helpers ---------------------------------------------------------- */

static inline struct moat_conf *load(const char *yaml, struct moat_conf_errors *err)
{
	memset(err, 0, sizeof *err);
	return moat_conf_load_buffer("t.yaml", yaml, strlen(yaml), err);
}

/* Loads `yaml`, which must succeed. */
static inline struct moat_conf *load_ok(const char *yaml)
{
	struct moat_conf_errors err;
	struct moat_conf *c = load(yaml, &err);

	if (c == NULL)
		fail_msg("unexpected errors:\n%s", err.buf ? err.buf : "(none)");
	assert_int_equal(err.count, 0);
	moat_conf_errors_free(&err);
	return c;
}

/* Asserts that the buffer holds `line` as one whole line. */
static inline void assert_has_line(const struct moat_conf_errors *err, const char *line)
{
	const char *p = err->buf;
	size_t n = strlen(line);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, line, n) == 0 && p[n] == '\n')
			return;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	fail_msg("missing error line:\n  %s\ngot:\n%s", line, err->buf ? err->buf : "(nothing)");
}

/* Loads `yaml`, which must fail with exactly one error: `line`. */
static inline void expect_error(const char *yaml, const char *line)
{
	struct moat_conf_errors err;
	struct moat_conf *c = load(yaml, &err);

	assert_null(c);
	assert_has_line(&err, line);
	if (err.count != 1)
		fail_msg("expected one error, got %u:\n%s", err.count, err.buf);
	moat_conf_errors_free(&err);
}

/* Loads `yaml`, which must fail with an error line starting with `prefix`. */
static inline void expect_error_prefix(const char *yaml, const char *prefix)
{
	struct moat_conf_errors err;
	struct moat_conf *c = load(yaml, &err);

	assert_null(c);
	assert_non_null(err.buf);
	if (strncmp(err.buf, prefix, strlen(prefix)) != 0)
		fail_msg("expected an error starting with\n  %s\ngot:\n%s", prefix, err.buf);
	moat_conf_errors_free(&err);
}

/* The smallest valid document, after `extra` lines of top-level keys. */
#define MINIMAL_TAIL \
	"listeners:\n" \
	"  - listen: 127.0.0.1:8080\n" \
	"upstreams:\n" \
	"  app:\n" \
	"    servers: [127.0.0.1:3000]\n" \
	"routes:\n" \
	"  - upstream: app\n"

/* Prints c, loads the text back: it must load, be equal, and print the same. */
static inline void roundtrip(const struct moat_conf *c)
{
	struct moat_conf_errors err = { 0 };
	struct moat_conf *back;
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(moat_conf_print(c, f), 0);
	fclose(f);
	back = moat_conf_load_buffer("printed", text, len, &err);
	if (back == NULL)
		fail_msg("printed config does not load:\n%s\n---\n%s", err.buf, text);
	assert_true(moat_conf_equal(c, back));
	/* and printing is stable */
	f = open_memstream(&text2, &len2);
	assert_non_null(f);
	assert_int_equal(moat_conf_print(back, f), 0);
	fclose(f);
	assert_string_equal(text, text2);
	moat_conf_free(back);
	free(text);
	free(text2);
}

#endif
