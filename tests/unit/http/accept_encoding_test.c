/*
 * accept_encoding_test.c - unit tests of src/http/accept_encoding.c.
 *
 * Tables of Accept-Encoding values and what moat picks for them with every
 * coding offered and with fewer: q-values (0, fractions, the 1.000 forms,
 * invalid ones), "*", "identity;q=0", upper case, spaces and tabs, empty
 * elements, other parameters, quoted strings, garbage elements next to
 * good ones, several fields, and the variant string for the cache, which
 * must decide the choice for every subset of the offered codings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/accept_encoding.h"

#define GZ MOAT_AE_GZIP
#define BR MOAT_AE_BR
#define ZS MOAT_AE_ZSTD
#define ID MOAT_AE_IDENTITY
#define NA MOAT_AE_NOT_ACCEPTABLE
#define ALL MOAT_AE_OFFER_ALL
#define B(c) MOAT_AE_BIT(c)

static int choose(const char *v, unsigned offered)
{
	struct moat_ae ae;

	moat_ae_init(&ae);
	moat_ae_parse(&ae, v, strlen(v));
	return moat_ae_choose(&ae, offered);
}

static const char *norm(const char *v, unsigned offered)
{
	static char out[MOAT_AE_NORM_MAX];
	struct moat_ae ae;

	moat_ae_init(&ae);
	moat_ae_parse(&ae, v, strlen(v));
	assert_true(moat_ae_normalise(&ae, offered, out, sizeof out) < sizeof out);
	return out;
}

struct row {
	const char *value;
	unsigned offered;
	int want;
};

static void run_rows(const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = choose(rows[i].value, rows[i].offered);

		if (got != rows[i].want)
			print_error("row %zu: \"%s\" offered %#x: got %d want %d\n", i, rows[i].value,
				    rows[i].offered, got, rows[i].want);
		assert_int_equal(got, rows[i].want);
	}
}

static void test_basic(void **state)
{
	static const struct row rows[] = {
		{ "gzip", ALL, GZ },
		{ "br", ALL, BR },
		{ "zstd", ALL, ZS },
		{ "gzip, deflate, br", ALL, BR },          /* a browser */
		{ "gzip, deflate, br, zstd", ALL, BR },    /* equal q: br, zstd, gzip */
		{ "gzip, zstd", ALL, ZS },
		{ "deflate", ALL, ID },                    /* not produced: identity */
		{ "compress, deflate", ALL, ID },
		{ "x-gzip", ALL, GZ },                     /* alias */
		{ "identity", ALL, ID },
		{ "", ALL, ID },                           /* empty value: no coding wanted */
		{ "gzip, br", B(GZ), GZ },                 /* only gzip offered */
		{ "gzip, br", B(ZS), ID },
		{ "gzip, br", 0, ID },
		{ "br", B(GZ) | B(ZS), ID },
	};

	(void)state;
	run_rows(rows, sizeof rows / sizeof rows[0]);
}

static void test_qvalues(void **state)
{
	static const struct row rows[] = {
		{ "gzip;q=1.0, br;q=0.5", ALL, GZ },
		{ "gzip;q=0.5, br;q=0.8", ALL, BR },
		{ "gzip;q=0.8, br;q=0.8, zstd;q=0.8", ALL, BR },
		{ "gzip;q=0.9, br;q=0.8, zstd;q=0.8", ALL, GZ },
		{ "gzip;q=0.001, br;q=0", ALL, GZ },
		{ "br;q=0", ALL, ID },
		{ "br;q=0.0", ALL, ID },
		{ "br;q=0.000", ALL, ID },
		{ "br;q=0., gzip;q=0.", ALL, ID },         /* "0." is a valid qvalue */
		{ "br;q=1., gzip;q=0.999", ALL, BR },
		{ "br;q=1.000, gzip", ALL, BR },
		{ "gzip;q=0.123, zstd;q=0.124", ALL, ZS },
		/* invalid q: the element is ignored */
		{ "br;q=1.5, gzip", ALL, GZ },
		{ "br;q=1.001, gzip", ALL, GZ },
		{ "br;q=.5, gzip", ALL, GZ },
		{ "br;q=0.1234, gzip", ALL, GZ },
		{ "br;q=2, gzip", ALL, GZ },
		{ "br;q=-1, gzip", ALL, GZ },
		{ "br;q=, gzip", ALL, GZ },
		{ "br;q, gzip", ALL, GZ },
		{ "br;q=abc", ALL, ID },
		{ "br;q=\"0.5\", gzip;q=0.1", ALL, GZ },   /* quoted q: invalid */
		{ "br;q=0.5;q=0.6, gzip;q=0.1", ALL, GZ }, /* q twice: invalid */
		{ "br;q=0.5 0, gzip;q=0.1", ALL, GZ },
		/* a coding listed twice keeps its lowest q */
		{ "br, br;q=0", ALL, ID },
		{ "br;q=0.2, gzip;q=0.5, br", ALL, GZ },
	};

	(void)state;
	run_rows(rows, sizeof rows / sizeof rows[0]);
}

static void test_star_identity(void **state)
{
	static const struct row rows[] = {
		{ "*", ALL, BR },
		{ "*", B(GZ), GZ },
		{ "*", 0, ID },
		{ "*;q=0", ALL, NA },                      /* nothing, not even identity */
		{ "*;q=0", B(GZ), NA },
		{ "*;q=0, identity", ALL, ID },            /* identity named: allowed */
		{ "*;q=0, gzip", ALL, GZ },
		{ "gzip;q=0, *", ALL, BR },
		{ "gzip;q=0, *", B(GZ), ID },
		{ "br;q=0.1, *;q=0.5", ALL, ZS },          /* * covers zstd and gzip at 0.5 */
		{ "identity;q=0", ALL, NA },
		{ "identity;q=0", B(GZ), NA },
		{ "identity;q=0, gzip", ALL, GZ },
		{ "identity;q=0, deflate", ALL, NA },
		{ "identity;q=0, *;q=0, br", ALL, BR },
		/* identity ranked above a coding wins over it; merely allowed, it does not */
		{ "gzip;q=0.5, identity", ALL, ID },
		{ "gzip;q=0.5, identity;q=0.6", ALL, ID },
		{ "gzip;q=0.5, identity;q=0.5", ALL, GZ },
		{ "gzip;q=0.5, br, identity;q=0.6", ALL, BR },
		{ "gzip;q=0.5", ALL, GZ },
		{ "*;q=0.5", ALL, BR },
		{ "*;q=0.5, identity;q=0.9", ALL, ID },
	};

	(void)state;
	run_rows(rows, sizeof rows / sizeof rows[0]);
}

static void test_syntax(void **state)
{
	static const struct row rows[] = {
		{ "GZIP", ALL, GZ },
		{ "Br", ALL, BR },
		{ "ZSTD;Q=0.5, GZIP;Q=0.4", ALL, ZS },     /* parameter names too */
		{ "IDENTITY;Q=0", ALL, NA },
		{ "  gzip  ,  br;q=0.1  ", ALL, GZ },
		{ "gzip ; q=0.2 , br ;q=0.3", ALL, BR },   /* OWS around ';' */
		{ "gzip;q = 0.2, br;q= 0.1", ALL, GZ },    /* and around '=', tolerated */
		{ "\tbr\t;\tq=0.5\t,\tgzip;q=0.4", ALL, BR },
		{ ",,, gzip ,, ", ALL, GZ },               /* empty elements */
		{ "gzip;;q=0.5;, br;q=0.4", ALL, GZ },     /* empty parameters */
		{ "gzip;level=9, br;q=0.1", ALL, GZ },     /* other parameters ignored */
		{ "gzip;x=\"a,b;q=0\", br;q=0.5", ALL, GZ }, /* quoted: its comma and ';' are text */
		{ "gzip;x=\"a\\\"b\", br;q=0.5", ALL, GZ }, /* escaped quote */
		{ "gzip;x=\"open, br", ALL, BR },          /* unterminated: that element only */
		/* garbage elements are skipped, the others still count */
		{ "gz ip, br", ALL, BR },
		{ "@@@, gzip", ALL, GZ },
		{ "gzip/1, zstd", ALL, ZS },
		{ "gzip;, br;q", ALL, GZ },
		{ ";q=1, gzip", ALL, GZ },
		{ "gzip;=1, zstd;q=0.2", ALL, ZS },
		{ "\x80\xff, gzip", ALL, GZ },
		{ "gzip\x01", ALL, ID },
		{ "brotli, gzipx, zst", ALL, ID },         /* near misses */
		{ "x-gzip;q=0.5, br;q=0.4", ALL, GZ },
	};

	(void)state;
	run_rows(rows, sizeof rows / sizeof rows[0]);
}

static void test_q_and_absent(void **state)
{
	struct moat_ae ae;
	const char *v = "gzip;q=0.25, *;q=0.125, identity;q=0.5";

	(void)state;
	moat_ae_init(&ae);
	/* no field: identity only, even though RFC 9110 would allow anything */
	assert_int_equal(moat_ae_q(&ae, ID), 1000);
	assert_int_equal(moat_ae_q(&ae, GZ), 0);
	assert_int_equal(moat_ae_choose(&ae, ALL), ID);
	moat_ae_parse(&ae, v, strlen(v));
	assert_int_equal(moat_ae_q(&ae, GZ), 250);
	assert_int_equal(moat_ae_q(&ae, BR), 125);
	assert_int_equal(moat_ae_q(&ae, ZS), 125);
	assert_int_equal(moat_ae_q(&ae, ID), 500);
	assert_int_equal(moat_ae_q(&ae, (enum moat_ae_coding)7), 0);
	assert_int_equal(moat_ae_choose(&ae, ALL), ID);
	assert_string_equal(moat_ae_name(GZ), "gzip");
	assert_string_equal(moat_ae_name(BR), "br");
	assert_string_equal(moat_ae_name(ZS), "zstd");
	assert_string_equal(moat_ae_name(ID), "identity");
	assert_null(moat_ae_name(NA));
	assert_null(moat_ae_name(4));
}

static void test_fields(void **state)
{
	struct moat_h1_header hdrs[] = {
		{ "Accept-Encoding", 15, "gzip", 4 },
		{ "Accept", 6, "br", 2 },
		{ "ACCEPT-ENCODING", 15, "br;q=0.5, zstd;q=0", 18 },
	};
	struct moat_h1_head h;
	struct moat_ae ae;

	(void)state;
	memset(&h, 0, sizeof h);
	h.headers = hdrs;
	h.header_cap = h.nheaders = 3;
	moat_ae_from_head(&ae, &h);
	assert_true(ae.present);
	assert_int_equal(moat_ae_choose(&ae, ALL), GZ);
	assert_int_equal(moat_ae_choose(&ae, B(BR) | B(ZS)), BR);
	assert_int_equal(moat_ae_choose(&ae, B(ZS)), ID);
	h.nheaders = 2; /* Accept is not Accept-Encoding */
	moat_ae_from_head(&ae, &h);
	assert_int_equal(moat_ae_choose(&ae, B(BR)), ID);
	h.nheaders = 0;
	moat_ae_from_head(&ae, &h);
	assert_false(ae.present);
}

static void test_normalise(void **state)
{
	static const struct {
		const char *value;
		unsigned offered;
		const char *want;
	} rows[] = {
		{ "gzip, deflate, br", ALL, "br,gzip" },
		{ "GZIP , BR", ALL, "br,gzip" },
		{ "br, gzip", ALL, "br,gzip" },
		{ "gzip;q=1, br;q=0.5", ALL, "gzip,br" },
		{ "*", ALL, "br,zstd,gzip" },
		{ "zstd;q=0.1, *", ALL, "br,gzip,zstd" },
		{ "", ALL, "identity" },
		{ "deflate", ALL, "identity" },
		{ "identity;q=0", ALL, "identity" },        /* not acceptable: identity is sent */
		{ "gzip;q=0.5, br, identity;q=0.6", ALL, "br" }, /* gzip never beats identity */
		{ "gzip, br, zstd", B(GZ), "gzip" },
		{ "gzip, br, zstd", 0, "identity" },
	};
	char small[4];

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *got = norm(rows[i].value, rows[i].offered);

		if (strcmp(got, rows[i].want) != 0)
			print_error("row %zu: \"%s\": got \"%s\"\n", i, rows[i].value, got);
		assert_string_equal(got, rows[i].want);
	}
	/* truncation as snprintf */
	{
		struct moat_ae ae;

		moat_ae_init(&ae);
		moat_ae_parse(&ae, "*", 1);
		assert_int_equal(moat_ae_normalise(&ae, ALL, small, sizeof small), 12);
		assert_string_equal(small, "br,");
		assert_int_equal(moat_ae_normalise(&ae, ALL, NULL, 0), 12);
	}
}

/* The variant string decides the choice: for every value, every offered
 * subset's choice is the first coding of the string inside that subset
 * (identity when none). */
static void test_normalise_decides(void **state)
{
	static const char *const values[] = {
		"gzip", "br;q=0.5, gzip", "*;q=0.3, br;q=0.2", "identity;q=0.4, zstd;q=0.5, gzip;q=0.3",
		"*;q=0", "identity;q=0, br;q=0.1", "zstd, br, gzip", "x-gzip;q=0.7, *;q=0.7",
		"gzip;q=0, br;q=0, zstd;q=0", "", "GZIP;Q=0.999, BR;Q=1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char key[MOAT_AE_NORM_MAX];
		struct moat_ae ae;

		moat_ae_init(&ae);
		moat_ae_parse(&ae, values[i], strlen(values[i]));
		moat_ae_normalise(&ae, ALL, key, sizeof key);
		for (unsigned sub = 0; sub < 16; sub++) {
			unsigned offered = sub & ALL;
			int got = moat_ae_choose(&ae, offered), want = ID;
			char *save = NULL, copy[MOAT_AE_NORM_MAX];

			strcpy(copy, key);
			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				int c = strcmp(t, "gzip") == 0 ? GZ : strcmp(t, "br") == 0 ? BR
					: strcmp(t, "zstd") == 0 ? ZS : -2;

				if (c > 0 && (offered & B(c))) {
					want = c;
					break;
				}
			}
			if (got == NA)
				got = ID;
			if (got != want)
				print_error("\"%s\" key %s offered %#x: got %d want %d\n", values[i], key,
					    offered, got, want);
			assert_int_equal(got, want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_qvalues),
		cmocka_unit_test(test_star_identity),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_q_and_absent),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_normalise_decides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
