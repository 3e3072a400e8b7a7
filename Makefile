# payspoa — build, run, test, bench.
#   make            build ./payspoa (and the bench programs)
#   make run        demo on loopback: emulated payment API + HAProxy + payspoa
#   make test       install missing Debian packages (as root), build, run every test layer
#   make asan       unit + protocol tests under AddressSanitizer + UBSan
#   make tsan       threaded tests under ThreadSanitizer
#   make fuzz       build the libFuzzer targets and run each briefly (FUZZ_SECONDS)
#   make bench      build and run the benchmark programs
# Variants build into build/<variant>/, so sanitizer objects never mix with release ones.

CC       ?= cc
VARIANT  ?= release
BUILD    := build/$(VARIANT)
PKGS     := libconfig msgpack libcurl openssl
OPT      ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 \
            -Wmissing-prototypes -Wno-unused-parameter
WERROR   ?= -Werror
SAN      ?=
CPPFLAGS += -D_GNU_SOURCE -Ipolicy -Ispoa -Itests/lib
CFLAGS   += $(OPT) $(WARN) $(WERROR) $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all) \
            -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += -pthread $(if $(SAN),-fsanitize=$(SAN))
LDLIBS   += -lev $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# Sources: the folder is the architecture. policy/ must build without any daemon library.
POLICY_SRC := $(sort $(wildcard policy/*.c))
SPOA_SRC   := $(sort $(filter-out spoa/main.c,$(wildcard spoa/*.c)))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(POLICY_SRC) $(SPOA_SRC))
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c))
PROTO_SRC  := $(sort $(wildcard tests/proto/test-*.c))
BENCH_SRC  := $(sort $(wildcard bench/*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz-*.c))
UNIT_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
PROTO_BIN  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(PROTO_SRC))
BENCH_BIN  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all run test deps deps-bench unit proto integ asan tsan fuzz bench bench-bin clean check-config unit-bin proto-bin
all: payspoa bench-bin

payspoa: $(BUILD)/payspoa
	@ln -sf $(BUILD)/payspoa payspoa

$(BUILD)/payspoa: $(BUILD)/spoa/main.o $(BUILD)/libpayspoa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libpayspoa.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libpayspoa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libpayspoa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The simulator is two files (its scenario reader shares the policy's config helpers).
$(BUILD)/bench/payspoa-sim: $(BUILD)/bench/payspoa-sim.o $(BUILD)/bench/sim/scenario.o $(BUILD)/libpayspoa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-bin: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do ln -sf ../$$b bench/$$(basename $$b); done

# --- running ----------------------------------------------------------------------
run: deps all
	bench/demo

check-config: payspoa
	./payspoa -c -f conf/payspoa.conf

# --- tests ------------------------------------------------------------------------
# deps: install what the tests need from Debian (root) or say exactly what to install.
DEBS := build-essential pkg-config libev-dev libconfig-dev libmsgpack-dev \
        libcurl4-openssl-dev libssl-dev haproxy clang libclang-rt-14-dev curl socat jq
deps:
	@tests/deps $(DEBS)

test: deps
	$(MAKE) all unit-bin proto-bin
	tests/run all

unit-bin: $(UNIT_BIN)
proto-bin: $(BUILD)/payspoa $(PROTO_BIN)
unit: unit-bin
	tests/run unit $(BUILD)
proto: proto-bin
	tests/run proto $(BUILD)
integ: all
	tests/run integ $(BUILD)

asan:
	$(MAKE) VARIANT=asan SAN=address,undefined OPT="-O1 -g" unit-bin proto-bin
	tests/run unit build/asan; rc=$$?; tests/run proto build/asan && exit $$rc

tsan:
	$(MAKE) CC=clang VARIANT=tsan SAN=thread OPT="-O1 -g" unit-bin proto-bin
	tests/run tsan build/tsan

FUZZ_SECONDS ?= 20
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
fuzz: $(FUZZ_BIN)
	tests/run fuzz build/fuzz $(FUZZ_SECONDS)

build/fuzz/%: tests/fuzz/%.c $(POLICY_SRC) $(SPOA_SRC)
	@mkdir -p build/fuzz
	clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
		$(shell pkg-config --cflags $(PKGS)) -o $@ $^ -lev $(shell pkg-config --libs $(PKGS)) -lm -pthread

# h2load drives bench/run-http when vegeta is not installed (vegeta is not packaged).
deps-bench: deps
	@tests/deps nghttp2-client

bench: deps-bench all
	bench/run

clean:
	rm -rf build payspoa $(patsubst bench/%.c,bench/%,$(BENCH_SRC))

-include $(shell find build -name '*.d' 2>/dev/null)
