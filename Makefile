# cai - one build for the library, the `cai` binary, tests, fuzzers.
#
#   make                 build/cai (-O2, _FORTIFY_SOURCE=2, stack protector, PIE,
#                        full RELRO; -Werror)
#   make SANITIZE=1      build-asan/cai with ASan+UBSan
#   make tests           unit test binaries
#   make fuzz            libFuzzer targets (clang, the same warnings)
#
# Every src/<module>/*.c is part of libcai except src/cli (the program).

CC       ?= cc
SANITIZE ?= 0
WERROR   ?= 1

ifeq ($(SANITIZE),1)
  BUILD  ?= build-asan
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  SANLD  := -fsanitize=address,undefined
else
  BUILD  ?= build
  OPT    := -O2 -g -D_FORTIFY_SOURCE=2
  SANLD  :=
endif

# Hardening for every build (release, ASan, tests): stack canaries, a
# position-independent executable, the GOT read-only after relocation.
# _FORTIFY_SOURCE is in the -O2 OPT only: it needs optimisation and the ASan
# build's -O1 interceptors do the same checks.
HARDEN   := -fstack-protector-strong -fPIE
HARDENLD := -pie -Wl,-z,relro,-z,now

WARN := -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wno-missing-field-initializers
ifeq ($(WERROR),1)
  WARN += -Werror
endif

CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(HARDEN) $(WARN) -Isrc -MMD -MP $(CFLAGS)
LDLIBS_ALL := -levent_openssl -levent_pthreads -levent -lcurl -lssl -lcrypto -ljansson -lsqlite3 -lpq -lpthread -lmvec -lm $(LDLIBS)
LDFLAGS_ALL := -pthread $(SANLD) $(HARDENLD) $(LDFLAGS)
# libpq's header (Debian's libpq-dev) is outside the default path: only the
# PostgreSQL backend of the key broker includes it.
PQ_CFLAGS   := -I/usr/include/postgresql

LIB_SRC   := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))

WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

.PHONY: all tests fuzz clean FORCE
all: $(BUILD)/cai

# Objects depend on the flags they were built with: the stamp is rewritten
# (and everything rebuilt) only when a flag changes, e.g. after this
# Makefile's hardening or warnings did.
FLAGS_LINE  := $(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL)
FLAGS_STAMP := $(BUILD)/flags.stamp
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(FLAGS_LINE)' | cmp -s - $@ || echo '$(FLAGS_LINE)' > $@

$(BUILD)/src/kbs/store_pg.o: OBJ_CFLAGS := $(PQ_CFLAGS)
$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(OBJ_CFLAGS) -c $< -o $@

# The web chat, embedded in the binary.
$(BUILD)/gen/web_assets.c: $(WEB_FILES) tools/embed_web.sh
	@mkdir -p $(dir $@)
	tools/embed_web.sh $(WEB_FILES) > $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libcai.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cai: $(CLI_OBJ) $(BUILD)/libcai.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

tests: $(BUILD)/cai $(TEST_BIN)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h tests/unit/expected.h tests/unit/vocab_cases.h $(BUILD)/libcai.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libcai.a $(LDLIBS_ALL)

# libFuzzer targets: the library rebuilt once with clang, coverage and sanitizers,
# under the same warnings (and -Werror) as the other builds.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -O1 -g -Isrc $(WARN) \
               -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ    := $(LIB_SRC:%.c=build-fuzz/obj/%.o) build-fuzz/gen/web_assets.o
FUZZ_STAMP  := build-fuzz/flags.stamp
fuzz: $(FUZZ_BIN)
$(FUZZ_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CFLAGS)' > $@
build-fuzz/obj/src/kbs/store_pg.o: OBJ_CFLAGS := $(PQ_CFLAGS)
# The SIMD kernels read no untrusted bytes, and clang takes over a quarter of an
# hour on their unrolled code with sanitizers and coverage: here they are built
# without either (build-asan checks them, with gcc's sanitizers).
FUZZ_COV := -fsanitize=fuzzer-no-link
build-fuzz/obj/src/llm/kernels.o: FUZZ_COV := -fno-sanitize=all
build-fuzz/obj/%.o: %.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(OBJ_CFLAGS) $(FUZZ_COV) -MMD -MP -c $< -o $@
build-fuzz/gen/web_assets.c: $(WEB_FILES) tools/embed_web.sh
	@mkdir -p $(dir $@)
	tools/embed_web.sh $(WEB_FILES) > $@
build-fuzz/gen/web_assets.o: build-fuzz/gen/web_assets.c $(FUZZ_STAMP)
	clang $(FUZZ_CFLAGS) -c $< -o $@
build-fuzz/libcai.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) build-fuzz/libcai.a $(FUZZ_STAMP)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libcai.a $(LDLIBS_ALL)

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
