# Gregor build.
#
#   make            build bin/gregor-broker, bin/gregor-controller, bin/gregorctl
#   make run        build and start a local broker in the foreground (Ctrl-C stops it)
#   make test       unit tests, integration tests, fuzz smoke run, unit tests under ASan+UBSan
#   make deps       install build and test dependencies (apt-get, as root)
#   make fuzz       a longer libFuzzer run over the request decoder
#
# BUILD names the object directory and BIN the binary directory, so a sanitizer
# build (make test does one in build-asan/) never mixes with the normal one.

BUILD ?= build
BIN ?= bin
CC ?= cc
PYTHON ?= /usr/bin/python3
SAN ?=

CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -pthread \
               -I. -I$(BUILD)/gen -MMD -MP
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS_ALL := $(CFLAGS_BASE) $(CFLAGS)

.DEFAULT_GOAL := all

LIBS_EVENT := $(shell pkg-config --libs libevent_core libevent_pthreads 2>/dev/null || echo -levent_core -levent_pthreads)
LIBS_CHECK := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)
LIBS := -lz -llz4 -lsnappy -lzstd -pthread -lm

# ---- the protocol codec, generated from proto/schema ----
SCHEMAS := $(sort $(wildcard proto/schema/*.def))
GEN_C := $(BUILD)/gen/proto/messages.c
GEN_H := $(BUILD)/gen/proto/messages.h
# Test support (random messages, a table of every type): unit tests only.
GEN_TEST_C := $(BUILD)/gen/proto/messages_test.c

# One run of the generator writes all three files (a grouped target).
$(GEN_C) $(GEN_H) $(GEN_TEST_C) &: proto/gen.py $(SCHEMAS)
	@mkdir -p $(dir $@)
	$(PYTHON) proto/gen.py --out-dir $(BUILD)/gen/proto $(SCHEMAS)

# ---- sources ----
COMMON_SRC := $(wildcard common/*.c) $(wildcard proto/*.c)
BROKER_SRC := $(wildcard broker/*.c)
CONTROLLER_SRC := $(wildcard controller/*.c)
CTL_SRC := tools/gregorctl.c tools/offset_reset.c
UNIT_SRC := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(BUILD)/obj/gen/messages.o
LIBGREGOR := $(BUILD)/libgregor.a

all: $(BIN)/gregor-broker $(BIN)/gregor-controller $(BIN)/gregorctl $(BIN)/gregor-perf

$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/gen/messages.o: $(GEN_C) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/gen/messages_test.o: $(GEN_TEST_C) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIBGREGOR): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/gregor-broker: $(call obj,$(BROKER_SRC)) $(LIBGREGOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS)

$(BIN)/gregor-controller: $(call obj,$(CONTROLLER_SRC)) $(LIBGREGOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS)

$(BIN)/gregorctl: $(call obj,$(CTL_SRC)) $(LIBGREGOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS)

$(BIN)/gregor-perf: $(call obj,tools/perf.c) $(LIBGREGOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS)

# The unit tests link the binaries' modules too (all but their main()).
BROKER_LIB_OBJ := $(call obj,$(filter-out broker/main.c,$(BROKER_SRC)))
CONTROLLER_LIB_OBJ := $(call obj,$(filter-out controller/main.c,$(CONTROLLER_SRC)))
$(BUILD)/unit-tests: $(call obj,$(UNIT_SRC)) $(BROKER_LIB_OBJ) $(CONTROLLER_LIB_OBJ) \
                     $(call obj,tools/offset_reset.c) \
                     $(BUILD)/obj/gen/messages_test.o \
                     $(BUILD)/obj/tests/sim/memlog.o $(LIBGREGOR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CHECK) $(LIBS_EVENT) $(LIBS)

# ---- deterministic simulation of the Raft quorum ----
SIM_SRC := $(wildcard tests/sim/*.c)
SIM_SEEDS ?= 10000
SIM_JOBS ?= 2

$(BUILD)/raft-sim: $(call obj,$(SIM_SRC)) $(LIBGREGOR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Programs that exercise the library from outside the unit runner.
$(BUILD)/log-crash: $(BUILD)/obj/tests/crash/log_crash.o $(LIBGREGOR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/log-bench: $(BUILD)/obj/tests/bench/log_bench.o $(LIBGREGOR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# ---- tests ----
.PHONY: all run test deps deps-check unit unit-asan integration crash-test sim sim-soak fuzz \
        fuzz-smoke clean bench

deps:
	@tools/deps.sh install

deps-check:
	@tools/deps.sh check

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

# The same unit tests, built and run under AddressSanitizer + UndefinedBehaviorSanitizer.
unit-asan:
	$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin SAN=1 unit

# Raft under loss, duplication, reordering, partitions and crash-restarts;
# a failing seed prints the command that replays it.
sim: $(BUILD)/raft-sim
	$(BUILD)/raft-sim --seeds $(SIM_SEEDS) --jobs $(SIM_JOBS)

sim-soak: $(BUILD)/raft-sim
	$(BUILD)/raft-sim --soak --jobs $(SIM_JOBS)

# A writer appends and is SIGKILLed at random moments; every restart must
# recover a log holding everything fsynced, with no partial batch.
CRASH_KILLS ?= 50
crash-test: $(BUILD)/log-crash
	$(BUILD)/log-crash $(CRASH_KILLS)

# Benchmarks print figures beside a baseline measured in the same run.
BENCH_MIB ?= 1024
bench: $(BUILD)/log-bench all
	$(BUILD)/log-bench $(BENCH_MIB)
	BIN=$(BIN) tests/bench/data_bench.sh

integration: all
	GREGOR_BIN=$(CURDIR)/$(BIN) $(PYTHON) -m pytest -q tests/integration

# libFuzzer needs clang. Each harness fuzzes one decoder of hostile bytes:
# fuzz_request the request codec, fuzz_batch the record batch validator.
# fuzz-smoke is the short bounded run make test does; make fuzz runs longer.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_DIR := build-fuzz
FUZZERS := request batch
FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -I. -I$(BUILD)/gen \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC_request := common/buf.c $(wildcard proto/*.c) $(GEN_C)
FUZZ_SRC_batch := common/buf.c common/batch.c common/crc32c.c common/compress.c
FUZZ_SEEDS_request := tests/fuzz/seeds
FUZZ_SEEDS_batch := tests/data/batches

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(GEN_C) $(GEN_H) $(COMMON_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) $(LIBS)

fuzz-smoke: $(addprefix fuzz-smoke-,$(FUZZERS))
fuzz: $(addprefix fuzz-long-,$(FUZZERS))

fuzz-smoke-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus-$*
	@echo "fuzz_$*: $(FUZZ_SMOKE_SECONDS) s"
	@$< -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=0 -artifact_prefix=$(FUZZ_DIR)/ \
	    $(FUZZ_DIR)/corpus-$* \
	    $(FUZZ_SEEDS_$*) > $(FUZZ_DIR)/$*.log 2>&1 || { cat $(FUZZ_DIR)/$*.log; exit 1; }
	@tail -n 1 $(FUZZ_DIR)/$*.log

fuzz-long-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus-$*
	$< -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-$* \
	    $(FUZZ_SEEDS_$*)

test: deps-check
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory sim
	$(MAKE) --no-print-directory crash-test
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory unit-asan

run: deps-check all
	BIN=$(BIN) deploy/run-local.sh

clean:
	rm -rf build build-asan build-fuzz bin

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
