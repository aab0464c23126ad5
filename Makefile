# rerank -- one Makefile for the library, the CLI, tests, sanitizers and benchmarks.
#
#   make               the libraries (below) and build/rerank
#   make install       PREFIX=/usr/local DESTDIR= : binary, libraries, public headers, rerank.pc, man page
#   make test          build, generate test models, run every suite (prints "N passed, N failed")
#   make asan          the same suites under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/;
#                      the tokenizer conformance suite on every 20th corpus line, RR_TOK_QUICK=1)
#   make tsan          engine and server tests under ThreadSanitizer (build-tsan/, tests/tsan.sh)
#   make python        the Python package in place (python/rerank/_rerank*.so), over build/librerank{_hub,}.a
#   make pic           only the archives the Python extension links (every object is compiled -fPIC)
#   make bench         build/bench_kernels (kernel GFLOP/s next to oneDNN's; run it by hand)
#   make fuzz          libFuzzer targets (clang) in build-fuzz/; run e.g. build-fuzz/fuzz_tokenizer -max_total_time=600
#   make fuzz-smoke    every fuzz target for FUZZ_SECONDS (60) on its seed corpus; skips without clang
#   make clean
#
# Libraries, one per layer (docs/ARCHITECTURE.md), each with its public header in include/:
#   librerank.a / librerank.so  core, tokenize, model, kernels, decoder, encoder, score rerank.h, rerank_util.h
#   librerank_server.a          engine, server (libmicrohttpd)                   rerank_server.h
#   librerank_hub.a             hub (libcurl)                                    rerank_hub.h
#   librerank_eval.a            eval                                             rerank_eval.h
# The core library never prints and links neither libmicrohttpd nor libcurl. Every object is built
# with -fPIC and -fvisibility=hidden, so librerank.so exports exactly what include/ marks RR_API.
# Sources are found by wildcard (src/<module>/*.c); every tests/*.c goes into the test runner. ISA
# kernels get their -m flags from ISA_<file stem> below, so the rest of the code stays portable
# and the kernel table is chosen at run time.

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  := -std=gnu11 $(OPT) -g $(WARN) -Iinclude -Isrc -I$(BUILD)/gen -pthread -fno-strict-aliasing -fPIC \
           -fvisibility=hidden $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SAN) $(EXTRA_LDFLAGS)
CORE_LIBS   := -lcjson -lutf8proc -lonig -ldnnl -lm
SERVER_LIBS := -lmicrohttpd
HUB_LIBS    := -lcurl
LIBS    := $(SERVER_LIBS) $(HUB_LIBS) $(CORE_LIBS)

# Per-file ISA flags (file stem -> flags).
ISA_x86_avx2      := -mavx2 -mfma -mf16c
ISA_x86_avx512    := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
ISA_x86_avx512bf16:= -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c
ISA_x86_amx       := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mamx-tile -mamx-bf16 -mamx-int8 -mfma -mf16c

CORE_MODS   := core tokenize model kernels decoder encoder score
CORE_SRC    := $(sort $(foreach m,$(CORE_MODS),$(wildcard src/$(m)/*.c)))
SERVER_SRC  := $(sort $(wildcard src/engine/*.c src/server/*.c))
HUB_SRC     := $(sort $(wildcard src/hub/*.c))
EVAL_SRC    := $(sort $(wildcard src/eval/*.c))
CLI_SRC     := $(sort $(wildcard src/cli/*.c))
TEST_SRC    := $(sort $(wildcard tests/*.c))
CORE_OBJ    := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ  := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
HUB_OBJ     := $(HUB_SRC:%.c=$(BUILD)/obj/%.o)
EVAL_OBJ    := $(EVAL_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ     := $(CORE_OBJ) $(SERVER_OBJ) $(HUB_OBJ) $(EVAL_OBJ)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ    := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
# static libraries in link order (upper layers first)
STATIC_LIBS := $(BUILD)/librerank_server.a $(BUILD)/librerank_hub.a $(BUILD)/librerank_eval.a $(BUILD)/librerank.a

.PHONY: all libs test asan clean bench fuzz fuzz-smoke tsan install uninstall print-core-libs pic python
all: libs $(BUILD)/rerank $(BUILD)/run_tests
libs: $(STATIC_LIBS) $(BUILD)/librerank.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_$(notdir $*)) -MMD -MP -c $< -o $@

# Files the server embeds (the OpenAPI document, the /docs page) become C byte lists, so the binary
# serves them without reading anything at run time.
EMBED := openapi.json docs.html
EMBED_CMD = od -An -v -tu1 $< | sed -e 's/  */,/g' -e 's/^,//' -e 's/$$/,/' -e 's/^,$$//' > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/%.inc: src/server/%
	@mkdir -p $(dir $@)
	$(EMBED_CMD)
$(BUILD)/obj/src/server/deploy.o: $(EMBED:%=$(BUILD)/gen/%.inc)
# the fuzz build compiles the server too, with its own copy of the generated lists
build-fuzz/gen/%.inc: src/server/%
	@mkdir -p $(dir $@)
	$(EMBED_CMD)
build-fuzz/obj/src/server/deploy.o: $(EMBED:%=build-fuzz/gen/%.inc)

$(BUILD)/librerank.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/librerank_server.a: $(SERVER_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/librerank_hub.a: $(HUB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/librerank_eval.a: $(EVAL_OBJ)
	@rm -f $@
	ar rcs $@ $^

SONAME := librerank.so.0
$(BUILD)/$(SONAME): $(CORE_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(CORE_LIBS)
$(BUILD)/librerank.so: $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/rerank: $(CLI_OBJ) $(STATIC_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIBS) $(LIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(STATIC_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC_LIBS) $(LIBS)

$(BUILD)/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(BUILD)/librerank.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/librerank.a $(CORE_LIBS) -lgomp

bench: $(BUILD)/bench_kernels

# The Python extension is a shared object; every object is compiled -fPIC already, so it links the same
# archives as the CLI. python/setup.py names what it links (RERANK_ARCHIVES); PY_ARCHIVES must match.
PY_ARCHIVES := librerank_hub.a librerank.a
pic: $(addprefix $(BUILD)/,$(PY_ARCHIVES))

PYTHON ?= /usr/bin/python3
python: pic
	cd python && RERANK_BUILD=$(abspath $(BUILD)) $(PYTHON) setup.py -q build_ext --inplace

test: all
	bash tests/run_all.sh $(BUILD)

# The tokenizer conformance suite runs on every 20th corpus line here: the whole corpus (`make test`)
# took 7 minutes unsanitized on an AMD EPYC Zen 3 and over 10 under the sanitizers, which pushed CI's
# whole run toward its time limit; every 20th line took about a minute unsanitized.
asan:
	RR_TOK_QUICK=1 $(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# ThreadSanitizer build of the library, CLI and tests in build-tsan/, then the engine and server
# unit tests and the server suite under it (tests/tsan.sh; suppressions with reasons in tests/tsan.supp).
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread -fno-omit-frame-pointer" all
	bash tests/tsan.sh build-tsan

# Fuzz targets: tests/fuzz/fuzz_<name>.c, each linked with the whole library (plus the CLI's JSONL
# reader) built by clang with libFuzzer's coverage, ASan and UBSan in build-fuzz/. `make fuzz-smoke`
# runs each for FUZZ_SECONDS (60) on its seed corpus tests/fuzz/corpus/<name>/ (tests/fuzz/smoke.sh).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -Iinclude -Isrc -Ibuild-fuzz/gen -pthread -fno-strict-aliasing
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_OBJ     := $(patsubst %.c,build-fuzz/obj/%.o,$(CORE_SRC) $(SERVER_SRC) $(HUB_SRC) $(EVAL_SRC)) build-fuzz/obj/src/cli/jsonl.o
fuzz: $(FUZZ_TARGETS)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(ISA_$(notdir $*)) -MMD -MP -c $< -o $@
build-fuzz/librerank.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h build-fuzz/librerank.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< build-fuzz/librerank.a -o $@ $(LIBS)
fuzz-smoke:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) bash tests/fuzz/smoke.sh

# ------------------------------------------------------------------ install
# make install PREFIX=/usr/local DESTDIR=  -- the program, the libraries (static, and librerank.so with its
# soname link), the public headers, pkg-config files (rerank.pc for the core library; rerank-server,
# rerank-hub and rerank-eval for the static upper layers, each requiring rerank) and the man page.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PCDIR      ?= $(LIBDIR)/pkgconfig
VERSION    := $(shell sed -n 's/^\#define RR_VERSION "\(.*\)"/\1/p' include/rerank.h)
HEADERS    := $(sort $(wildcard include/*.h))
# upper layers: static only (they use core internals that librerank.so does not export), so their
# pkg-config files name the archives and every library below them
PC_UPPER   := server:-lmicrohttpd hub:-lcurl eval:
PC_CORE_PRIVATE := $(CORE_LIBS) -pthread

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(PCDIR)
	install -m 755 $(BUILD)/rerank $(DESTDIR)$(BINDIR)/rerank
	install -m 644 $(STATIC_LIBS) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/librerank.so
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 man/rerank.1 $(DESTDIR)$(MANDIR)/man1/rerank.1
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@PRIVATE@|$(PC_CORE_PRIVATE)|' rerank.pc.in >$(DESTDIR)$(PCDIR)/rerank.pc
	for u in $(PC_UPPER); do n=$${u%%:*} dep=$${u#*:}; \
	    { echo "prefix=$(PREFIX)"; echo "libdir=$(LIBDIR)"; echo "includedir=$(INCLUDEDIR)"; echo; \
	      echo "Name: rerank-$$n"; echo "Description: rerank $$n layer (static; include/rerank_$$n.h)"; \
	      echo "Version: $(VERSION)"; echo 'Cflags: -I$${includedir}'; \
	      echo "Libs: -L\$${libdir} -l:librerank_$$n.a -l:librerank.a $$dep $(PC_CORE_PRIVATE)"; \
	    } >$(DESTDIR)$(PCDIR)/rerank-$$n.pc; done

# what a program linking librerank.a needs besides it (tests/suite_corelib.sh asks here)
print-core-libs:
	@echo $(PC_CORE_PRIVATE)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/rerank $(DESTDIR)$(MANDIR)/man1/rerank.1
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(STATIC_LIBS)) $(SONAME) librerank.so)
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(HEADERS)))
	rm -f $(addprefix $(DESTDIR)$(PCDIR)/,rerank.pc rerank-server.pc rerank-hub.pc rerank-eval.pc)

clean:
	rm -rf build build-asan build-fuzz build-tsan
	rm -rf python/build python/rerank.egg-info python/rerank/_rerank*.so

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(wildcard build-fuzz/obj/src/*/*.d)
