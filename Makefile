# silt build. `make` builds build/silt; `make check` runs unit tests (plain and
# ASan+UBSan), the fuzzers briefly, the integration tests, and most of them
# again against build/silt_asan.
CC      ?= cc
CFLAGS_BASE := -std=c17 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough \
	-Wno-unused-parameter -Isrc -D_GNU_SOURCE -pthread -MMD -MP
OPT     ?= -O2
LIBS    := -lisal -lssl -lcrypto -lsqlite3 -lz -lzstd -llz4 -lsnappy -lcurl -lcjson \
	-lexpat -lrdkafka -lnats -lhiredis -lpthread -lm

SRC_ALL := $(sort $(wildcard src/*/*.c))
SRC_MAIN := src/cli/main.c
SRC_LIB := $(filter-out $(SRC_MAIN),$(SRC_ALL))
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

B := build
OBJ_LIB  := $(SRC_LIB:%.c=$(B)/obj/%.o)
OBJ_MAIN := $(SRC_MAIN:%.c=$(B)/obj/%.o)
OBJ_TEST := $(TEST_SRC:%.c=$(B)/obj/%.o)
AOBJ_LIB  := $(SRC_LIB:%.c=$(B)/asan/%.o)
AOBJ_TEST := $(TEST_SRC:%.c=$(B)/asan/%.o)
ASAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all check unit unit-asan fuzz integration integration-asan clean compdb
all: $(B)/silt

Q := @
ifeq ($(V),1)
Q :=
endif

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_BASE) $(OPT) -c $< -o $@

$(B)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC asan $<"
	$(Q)$(CC) $(CFLAGS_BASE) -O1 $(ASAN) -c $< -o $@

$(B)/libsilt.a: $(OBJ_LIB)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/silt: $(OBJ_MAIN) $(B)/libsilt.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_BASE) $(OPT) -o $@ $^ $(LIBS)

# The server with ASan+UBSan, for running integration tests against it.
$(B)/silt_asan: $(SRC_MAIN:%.c=$(B)/asan/%.o) $(AOBJ_LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_BASE) $(ASAN) -o $@ $^ $(LIBS)

$(B)/unit_tests: $(OBJ_TEST) $(B)/libsilt.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_BASE) $(OPT) -o $@ $^ $(LIBS)

$(B)/unit_tests_asan: $(AOBJ_TEST) $(AOBJ_LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_BASE) $(ASAN) -o $@ $^ $(LIBS)

unit: $(B)/unit_tests
	$(B)/unit_tests

unit-asan: $(B)/unit_tests_asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(B)/unit_tests_asan

# libFuzzer targets: the library is built once with fuzzer instrumentation,
# then each tests/fuzz/fuzz_X.c links against it and runs for FUZZ_SECONDS on
# its corpus (tests/fuzz/corpus/fuzz_X plus what it finds in build/corpus/).
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -std=c17 -g -O1 -Isrc -D_GNU_SOURCE -pthread -fsanitize=address,undefined -MMD -MP
FOBJ_LIB := $(SRC_LIB:%.c=$(B)/fuzzobj/%.o)
$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC fuzz $<"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(B)/libsilt_fuzz.a: $(FOBJ_LIB)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/fuzz/%: tests/fuzz/%.c $(B)/libsilt_fuzz.a
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/libsilt_fuzz.a $(LIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
	@for f in $^; do n=$$(basename $$f); mkdir -p $(B)/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $(B)/corpus/$$n tests/fuzz/corpus/$$n \
	    2>$(B)/fuzz/$$n.log || { tail -50 $(B)/fuzz/$$n.log; exit 1; }; done

integration: $(B)/silt
	tests/integration/run_all.sh

# The Kafka tests and the quicker S3 tests again, against the server built
# with ASan+UBSan: a use-after-free or leak makes silt exit non-zero, which
# fails the test that stopped it.
ASAN_IT := test_ kafkajs s3_buckets s3_boto3 s3_jssdk s3_auth s3_bad_input s3_crash s3_s3cmd s3_copy_stall
integration-asan: $(B)/silt_asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  SILT_BIN=$(abspath $(B)/silt_asan) tests/integration/run_all.sh $(ASAN_IT)

check: unit unit-asan fuzz integration integration-asan

compdb:
	bear -- $(MAKE) -B all $(B)/unit_tests

clean:
	rm -rf $(B)

-include $(OBJ_LIB:.o=.d) $(OBJ_MAIN:.o=.d) $(OBJ_TEST:.o=.d) $(AOBJ_LIB:.o=.d) $(AOBJ_TEST:.o=.d) \
	$(FOBJ_LIB:.o=.d) $(SRC_MAIN:%.c=$(B)/asan/%.d)
