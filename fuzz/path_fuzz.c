/*
 * path_fuzz.c - libFuzzer target for moat_path_normalize: never reads or
 * writes out of bounds, output never longer than input, result idempotent
 * and free of dot-segments and "//".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1), *out = malloc(size + 1), *again;
	int n, m;

	if (!in || !out)
		abort();
	memcpy(in, data, size);
	n = moat_path_normalize(in, size, out);
	if (n >= 0) {
		if ((size_t)n > size || out[0] != '/' || strstr(out, "//") || strstr(out, "/./") ||
		    strstr(out, "/../"))
			abort();
		again = malloc((size_t)n + 1);
		if (!again)
			abort();
		m = moat_path_normalize(out, (size_t)n, again);
		if (m != n || memcmp(out, again, (size_t)n) != 0)
			abort();
		free(again);
	}
	free(in);
	free(out);
	return 0;
}
