/*
 * accept_encoding_fuzz.c - libFuzzer target for moat_ae_parse,
 * moat_ae_choose and moat_ae_normalise.
 *
 * Input: the bytes, split at '\n', are Accept-Encoding field values, each
 * in an exactly sized heap copy (so ASan sees any over-read). Checked for
 * every offered subset: q-values stay in -1..1000; the choice is an
 * offered coding with q > 0 and the highest q among the offered ones,
 * identity, or NOT_ACCEPTABLE only when identity's q is 0; the variant
 * string fits MOAT_AE_NORM_MAX, names only offered codings, and starts
 * with the choice ("identity" when nothing is chosen).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/accept_encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct moat_ae *ae)
{
	for (int i = 0; i < MOAT_AE_NCODINGS; i++)
		if (ae->q[i] < -1 || ae->q[i] > 1000)
			abort();
	if (ae->star < -1 || ae->star > 1000)
		abort();
	for (unsigned offered = 0; offered <= MOAT_AE_OFFER_ALL; offered += 2) {
		int c = moat_ae_choose(ae, offered);
		char key[MOAT_AE_NORM_MAX];
		size_t n = moat_ae_normalise(ae, offered, key, sizeof key);
		const char *want;

		if (n >= sizeof key || strlen(key) != n)
			abort();
		if (c > 0) {
			if (!(offered & MOAT_AE_BIT(c)) || moat_ae_q(ae, c) <= 0)
				abort();
			for (int o = 1; o < MOAT_AE_NCODINGS; o++)
				if ((offered & MOAT_AE_BIT(o)) && moat_ae_q(ae, o) > moat_ae_q(ae, c))
					abort();
		} else if (c == MOAT_AE_NOT_ACCEPTABLE) {
			if (moat_ae_q(ae, MOAT_AE_IDENTITY) != 0)
				abort();
		} else if (c != MOAT_AE_IDENTITY) {
			abort();
		}
		want = c > 0 ? moat_ae_name(c) : "identity";
		if (strncmp(key, want, strlen(want)) != 0)
			abort();
		for (int o = 1; o < MOAT_AE_NCODINGS; o++)
			if (!(offered & MOAT_AE_BIT(o)) && strstr(key, moat_ae_name(o)) != NULL)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_ae ae;
	size_t pos = 0;
	char *whole;

	moat_ae_init(&ae);
	while (pos <= size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;
		char *copy = malloc(end - pos ? end - pos : 1);

		if (copy == NULL)
			abort();
		memcpy(copy, data + pos, end - pos);
		moat_ae_parse(&ae, copy, end - pos);
		free(copy);
		pos = end + 1;
	}
	check(&ae);
	/* the same bytes as one field */
	whole = malloc(size ? size : 1);
	if (whole == NULL)
		abort();
	memcpy(whole, data, size);
	moat_ae_init(&ae);
	moat_ae_parse(&ae, whole, size);
	free(whole);
	check(&ae);
	return 0;
}
