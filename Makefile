# rerank -- one Makefile for the library, the CLI, tests, sanitizers and benchmarks.
#
#   make               build/librerank.a and build/rerank
#   make test          build, generate test models, run every suite (prints "N passed, N failed")
#   make asan          the same suites under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make python        the Python package in place (python/rerank/_rerank*.so), over build/pic/librerank.a
#   make pic           build/pic/librerank.a: the library compiled -fPIC, for the Python extension
#   make bench         build/bench_kernels (kernel GFLOP/s next to oneDNN's; run it by hand)
#   make fuzz          libFuzzer targets (clang) in build-fuzz/; run e.g. build-fuzz/fuzz_tokenizer -max_total_time=600
#   make clean
#
# Sources are found by wildcard: every src/<module>/*.c except src/cli goes into the library, every
# tests/*.c into the test runner. ISA kernels get their -m flags from ISA_<file stem> below, so the
# rest of the code stays portable and the kernel table is chosen at run time.

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
SAN     ?=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  := -std=gnu11 $(OPT) -g $(WARN) -Iinclude -Isrc -pthread -fno-strict-aliasing $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SAN) $(EXTRA_LDFLAGS)
LIBS    := -lcjson -lutf8proc -lonig -lcurl -lmicrohttpd -ldnnl -lm

# Per-file ISA flags (file stem -> flags).
ISA_x86_avx2      := -mavx2 -mfma -mf16c
ISA_x86_avx512    := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
ISA_x86_avx512bf16:= -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c
ISA_x86_amx       := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mamx-tile -mamx-bf16 -mamx-int8 -mfma -mf16c

LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all test asan clean bench fuzz pic python
all: $(BUILD)/rerank $(BUILD)/run_tests

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_$(notdir $*)) -MMD -MP -c $< -o $@

$(BUILD)/librerank.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rerank: $(CLI_OBJ) $(BUILD)/librerank.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/librerank.a $(LIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/librerank.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/librerank.a $(LIBS)

$(BUILD)/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(BUILD)/librerank.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/librerank.a $(LIBS) -lgomp

bench: $(BUILD)/bench_kernels

# The Python extension is a shared object, so it links a second copy of the library built with -fPIC
# (the CLI keeps the position-dependent one). python/setup.py names what it links (RERANK_ARCHIVES);
# PIC_ARCHIVES must build the same archives.
PIC_ARCHIVES := librerank.a
pic:
	$(MAKE) BUILD=$(BUILD)/pic EXTRA_CFLAGS="-fPIC $(EXTRA_CFLAGS)" $(addprefix $(BUILD)/pic/,$(PIC_ARCHIVES))

PYTHON ?= /usr/bin/python3
python: pic
	cd python && RERANK_BUILD=$(abspath $(BUILD)) $(PYTHON) setup.py -q build_ext --inplace

test: all
	bash tests/run_all.sh $(BUILD)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# Fuzz targets: tests/fuzz/fuzz_<name>.c, linked with the sources they exercise (core + tokenize),
# built with clang's libFuzzer, ASan and UBSan.
FUZZ_SRC := $(sort $(wildcard src/core/*.c src/tokenize/*.c))
fuzz: build-fuzz/fuzz_tokenizer
build-fuzz/fuzz_tokenizer: tests/fuzz/fuzz_tokenizer.c $(FUZZ_SRC) $(wildcard src/*/*.h include/*.h)
	@mkdir -p build-fuzz
	clang -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc -pthread \
	    $< $(FUZZ_SRC) -o $@ -lcjson -lutf8proc -lonig -lm

clean:
	rm -rf build build-asan build-fuzz
	rm -rf python/build python/rerank.egg-info python/rerank/_rerank*.so

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
