# moat - build, run and test.
#
#   make run      install what is missing, build, start moat on moat.yaml
#   make test     install, build, lint (cppcheck, layering), run every test
#                 (unit, integration, ASan+UBSan, short fuzz)
#   make          build build/moat
#
# Sources are discovered: every src/**/*.c is part of the binary; every
# tests/unit/**/*_test.c is a cmocka test linked with src/ (less main.c);
# every fuzz/*_fuzz.c is a libFuzzer target.

CC       ?= cc
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
PKGS     := yaml-0.1 modsecurity zlib libbrotlienc libbrotlidec libzstd openssl libnghttp2
WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
	    -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough -Wundef \
	    -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CPPFLAGS += -Isrc -D_GNU_SOURCE
ALL_CFLAGS = -std=c11 $(WARN) -pthread $(CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lmodsecurity -lz -lbrotlienc -lbrotlidec -lzstd -lssl -lcrypto -lnghttp2) -pthread

SRC      := $(shell find src -name '*.c' | sort)
LIBSRC   := $(filter-out src/main.c,$(SRC))
# Static files served by moat (the admin dashboard) are compiled in:
# src/proxy/dashboard.html -> $(BUILD)/gen/dashboard_html.c defining
# moat_dashboard_html[] and moat_dashboard_html_len.
ASSETS   := $(shell find src -name '*.html' | sort)
GENSRC   := $(foreach a,$(ASSETS),$(BUILD)/gen/$(basename $(notdir $(a)))_html.c)
OBJ      := $(SRC:%.c=$(BUILD)/obj/%.o) $(GENSRC:%.c=%.o)
LIBOBJ   := $(LIBSRC:%.c=$(BUILD)/obj/%.o) $(GENSRC:%.c=%.o)
UNITSRC  := $(shell find tests/unit -name '*_test.c' 2>/dev/null | sort)
UNITBIN  := $(UNITSRC:tests/unit/%.c=$(BUILD)/unit/%)
FUZZSRC  := $(wildcard fuzz/*_fuzz.c)
FUZZBIN  := $(FUZZSRC:fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps run test unit integration asan asan-build fuzz fuzz-short fuzz-long \
	bench bench-guard bench-cache bench-tls testssl lint clean check-layers slowhttp

all: $(BUILD)/moat

$(BUILD)/moat: $(OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/%_html.c: $(ASSETS) scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh $(filter %/$*.html,$(ASSETS)) moat_$*_html > $@

$(BUILD)/gen/%_html.o: $(BUILD)/gen/%_html.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libmoat.a: $(LIBOBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libmoat.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libmoat.a $(LDLIBS) -lcmocka

-include $(OBJ:.o=.d)

deps:
	@sh scripts/deps.sh

run:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	@sh scripts/run-demo.sh

unit: $(UNITBIN)
	@sh scripts/run-unit.sh $(UNITBIN)

integration: all
	MOAT_BIN=$(abspath $(BUILD)/moat) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# The same integration suite against a build with AddressSanitizer and
# UndefinedBehaviorSanitizer; any report fails the test that caused it.
asan-build:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" build/asan/moat

asan: asan-build
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit
	MOAT_BIN=$(abspath build/asan/moat) MOAT_ASAN=1 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# libFuzzer targets (clang). fuzz-short runs each for a few seconds (part of
# `make test`); fuzz-long for FUZZ_SECONDS each.
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc -D_GNU_SOURCE -std=c11
$(BUILD)/fuzz/%: fuzz/%.c $(LIBSRC) $(GENSRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIBSRC) $(GENSRC) $(LDLIBS)

fuzz: $(FUZZBIN)

fuzz-short: $(FUZZBIN)
	@sh scripts/run-fuzz.sh 15 $(FUZZBIN)

FUZZ_SECONDS ?= 600
fuzz-long: $(FUZZBIN)
	@sh scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZBIN)

check-layers:
	@sh scripts/check-layers.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem -Isrc src
	@sh scripts/check-layers.sh

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) integration
	SLOWHTTP_SECONDS=10 $(MAKE) slowhttp
	$(MAKE) asan
	$(MAKE) fuzz-short
	@echo "all test stages passed"

bench: deps all
	@sh bench/run.sh

# The gatekeeping benchmark: rate limits (moat, nginx, HAProxy) and the WAF
# (moat); see docs/benchmark.md, "Gatekeeping".
bench-guard: deps all
	@sh bench/guard.sh

# The caching benchmark: cache hits in moat, nginx and Varnish (installs the
# bench profile, Varnish included, when run as root); see docs/benchmark.md,
# "Caching".
bench-cache: deps all
	@sh scripts/deps.sh bench
	@sh bench/cache.sh

# The TLS and HTTP/2 benchmark: handshakes, HTTPS keep-alive and h2 in moat,
# nginx and HAProxy (installs the bench profile, h2load included, when run
# as root); see docs/tls.md, "Benchmark".
bench-tls: deps all
	@sh scripts/deps.sh bench
	@sh bench/tls.sh

# testssl.sh against moat's TLS listener (protocols, ciphers, server
# defaults, vulnerabilities); fails on a weak protocol or cipher offered or
# a vulnerability found. Not part of `make test`; see docs/tls.md.
testssl: all
	@sh scripts/testssl.sh

# moat under slowhttptest (slowloris, slow body, slow read: 2000 connections
# each) while an ordinary client keeps being served; SLOWHTTP_SECONDS (30)
# bounds it. See docs/testing.md.
slowhttp: all
	@sh scripts/slowhttp.sh

clean:
	rm -rf build
