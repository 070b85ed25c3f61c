/*
 * conf_fuzz.c - libFuzzer target for the configuration loader.
 *
 * Feeds each input to moat_conf_load_buffer as a YAML document. It must
 * never crash, hang or leak, whatever the bytes. When an input loads, the
 * snapshot is printed with moat_conf_print and loaded again: the result
 * must load and be equal (moat_conf_equal), so the printer's quoting is
 * fuzzed too. Host names are never resolved (moat_conf_no_resolve), so no
 * input causes a DNS query.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *       fuzz/conf_fuzz.c src/conf/conf*.c -lyaml -o conf_fuzz
 *   ./conf_fuzz fuzz/corpus/conf
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	moat_conf_no_resolve = 1;
	return 0;
}

/* Prints c, loads the text back and checks it is the same configuration. */
static void roundtrip(const struct moat_conf *c)
{
	struct moat_conf_errors err = { 0 };
	struct moat_conf *back;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return;
	if (moat_conf_print(c, f) != 0)
		abort();
	fclose(f);
	back = moat_conf_load_buffer("printed", text, len, &err);
	if (back == NULL || !moat_conf_equal(c, back)) {
		fprintf(stderr, "print round trip failed:\n%s---\n%s", err.buf ? err.buf : "(loads, differs)\n", text);
		abort();
	}
	moat_conf_free(back);
	moat_conf_errors_free(&err);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_conf_errors err = { 0 };
	struct moat_conf *c;

	moat_conf_no_resolve = 1;
	c = moat_conf_load_buffer("fuzz.yaml", (const char *)data, size, &err);
	if (c != NULL) {
		if (err.count != 0)
			abort(); /* success never comes with errors */
		roundtrip(c);
		moat_conf_free(c);
	} else if (err.count == 0 || err.buf == NULL) {
		abort(); /* failure always says why */
	}
	moat_conf_errors_free(&err);
	return 0;
}
