# payspoa — build, run, test, bench.
#   make            build ./payspoa, the bench programs and the payapi fixture
#   make payapi     the emulated payment API alone (tests/payapi/; also payspoa-sim)
#   make run        demo on loopback: emulated payment API + HAProxy + payspoa
#   make haproxy-config  regenerate the policy's block in haproxy/haproxy.cfg, snippet.cfg
#   make test       install missing Debian packages (as root), build, run every test layer
#   make test-matrix  the integration layer against HAProxy 2.6, 3.0 and 3.x (Debian's builds)
#   make test-long  the long runs kept out of `make test` (1 M-key pin flood, 200 SIGKILLs during snapshot writes, make run's story in tmux)
#   make asan       unit + protocol tests under AddressSanitizer + UBSan
#   make tsan       threaded tests under ThreadSanitizer
#   make fuzz       build the libFuzzer targets and run each briefly (FUZZ_SECONDS)
#   make bench      build and run the benchmark programs
# Variants build into build/<variant>/, so sanitizer objects never mix with release ones.

CC       ?= cc
VARIANT  ?= release
BUILD    := build/$(VARIANT)
PKGS     := libconfig msgpack libcurl openssl hiredis
OPT      ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 \
            -Wmissing-prototypes -Wno-unused-parameter
WERROR   ?= -Werror
SAN      ?=
# Invariant checks (BUG_ON, *_verify: policy/bug.h): on in sanitizer and VARIANT=debug
# builds; CHECKS=1 turns them on elsewhere (give it its own VARIANT), CHECKS= off.
CHECKS   ?= $(if $(or $(SAN),$(filter debug,$(VARIANT))),1)
CPPFLAGS += -D_GNU_SOURCE $(if $(CHECKS),-DPOL_CHECKS)
CFLAGS   += $(OPT) $(WARN) $(WERROR) $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all) \
            -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += -pthread $(if $(SAN),-fsanitize=$(SAN))
LDLIBS   += -lev $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# Sources: the folder is the architecture, and dependencies go one way: spoa/ uses
# policy/; tests/ and bench/ use both; bench/ may use the test library; the product uses
# neither. Each folder sees only the headers it may use (INC_<folder>), and
# tests/check-layers proves what -I cannot (a system header such as <ev.h> in policy/).
INC_policy := -Ipolicy
INC_spoa   := -Ispoa -Ipolicy
INC_tests  := -Itests/lib -Ispoa -Ipolicy
INC_bench  := -Itests/lib -Ispoa -Ipolicy
POLICY_SRC := $(sort $(wildcard policy/*.c))
SPOA_SRC   := $(sort $(filter-out spoa/main.c,$(wildcard spoa/*.c)))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(POLICY_SRC) $(SPOA_SRC))
TLIB_SRC   := $(sort $(wildcard tests/lib/*.c))
TLIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(TLIB_SRC))
# Single-file programs: one .c, one program of the same name.
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c tests/unit/*/test-*.c))
PROTO_SRC  := $(sort $(wildcard tests/proto/test-*.c))
BENCH_SRC  := $(sort $(wildcard bench/*.c))
FUZZ_SRC   := $(sort $(filter-out tests/fuzz/fuzz-check.c,$(wildcard tests/fuzz/fuzz-*.c)))
UNIT_BIN   := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
PROTO_BIN  := $(patsubst %.c,$(BUILD)/%,$(PROTO_SRC))
BENCH_BIN  := $(patsubst %.c,$(BUILD)/%,$(BENCH_SRC))
# Folder programs (FOLDER:NAME): every .c of FOLDER links into $(BUILD)/FOLDER/NAME, with
# a link NAME in bench/ for the commands users type. Add a folder here to add a program.
FOLDER_PROGS := tests/payapi:payapi bench/sim:payspoa-sim \
                tests/loadgen:loadgen
FOLDER_BIN   := $(foreach p,$(FOLDER_PROGS),$(BUILD)/$(subst :,/,$(p)))
# The test library: libtest.a after the product (it uses spop.c) and after the C library,
# so that its malloc interposer (alloc-count.o) is taken only by the programs that name
# its counters, not by every program that calls malloc.
TEST_LIBS  := $(BUILD)/libpayspoa.a -lc $(BUILD)/libtest.a $(BUILD)/libpayspoa.a

.PHONY: haproxy-config all run test test-long test-matrix deps deps-bench deps-hap3 unit proto integ asan tsan fuzz bench bench-bin clean check-config unit-bin threaded-unit-bin proto-bin
all: payspoa bench-bin

payspoa: $(BUILD)/payspoa
	@ln -sf $(BUILD)/payspoa payspoa

$(BUILD)/payspoa: $(BUILD)/spoa/main.o $(BUILD)/libpayspoa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libpayspoa.a: $(LIB_OBJ) $(BUILD)/layers.ok
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(BUILD)/libtest.a: $(TLIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The layering check runs again whenever a product object is rebuilt (same flags as the
# compile, without the ones that write .d files).
CHECK_CFLAGS = $(filter-out -MMD -MP,$(CFLAGS))
$(BUILD)/layers.ok: $(LIB_OBJ) $(BUILD)/spoa/main.o tests/check-layers
	@CC="$(CC)" tests/check-layers policy "$(CPPFLAGS) $(INC_policy) $(CHECK_CFLAGS)" $(POLICY_SRC)
	@CC="$(CC)" tests/check-layers spoa "$(CPPFLAGS) $(INC_spoa) $(CHECK_CFLAGS)" $(SPOA_SRC) spoa/main.c
	@touch $@

# The include path of an object is its top folder's (a folder program also sees its own).
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_$(firstword $(subst /, ,$<))) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libpayspoa.a $(BUILD)/libtest.a
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libpayspoa.a $(BUILD)/libtest.a
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIBS) $(LDLIBS)

# The emulated payment API (tests/payapi/) is a self-contained fixture: its objects see no
# project header, so an include of spoa/ or policy/ code fails to compile.
$(BUILD)/tests/payapi/%.o: INC_tests :=

# prog_folder FOLDER NAME: every .c of FOLDER links into $(BUILD)/FOLDER/NAME; `make NAME`
# builds it alone (and its link in bench/).
define prog_folder
$$(BUILD)/$(1)/$(2): $$(patsubst %.c,$$(BUILD)/%.o,$$(sort $$(wildcard $(1)/*.c))) \
                     $$(BUILD)/libpayspoa.a $$(BUILD)/libtest.a
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(TEST_LIBS) $$(LDLIBS)
.PHONY: $(2)
$(2): $$(BUILD)/$(1)/$(2)
	@ln -sf ../$$< bench/$(2)
endef
$(foreach p,$(FOLDER_PROGS),$(eval $(call prog_folder,$(word 1,$(subst :, ,$(p))),$(word 2,$(subst :, ,$(p))))))

# bench/NAME links to every bench program and folder program, so the commands of the
# READMEs (bench/payapi, bench/payspoa-sim, bench/spop-load, ...) keep working.
bench-bin: $(BENCH_BIN) $(FOLDER_BIN)
	@for b in $(BENCH_BIN) $(FOLDER_BIN); do ln -sf ../$$b bench/$$(basename $$b); done

# --- running ----------------------------------------------------------------------
run: deps all
	bench/demo

check-config: payspoa
	./payspoa -c -f conf/payspoa.conf --haproxy haproxy/haproxy.cfg

# haproxy/haproxy.cfg and snippet.cfg: the block between their BEGIN/END markers is
# `payspoa haproxy-snippet -f conf/payspoa.conf`, rewritten here (its one writer);
# tests/unit/spoa/test-hapcfg fails when they differ.
haproxy-config: payspoa
	@for f in haproxy/haproxy.cfg haproxy/snippet.cfg; do \
		./payspoa haproxy-snippet -f conf/payspoa.conf >$$f.block || exit 1; \
		awk -v blk=$$f.block '/^# ==== BEGIN payspoa haproxy-snippet/ { while ((getline l < blk) > 0) print l; skip = 1; next } \
			skip && /^# ==== END payspoa haproxy-snippet/ { skip = 0; next } !skip' $$f >$$f.new && \
		mv $$f.new $$f && rm -f $$f.block && echo "$$f: block regenerated"; \
	done

# --- tests ------------------------------------------------------------------------
# deps: install what the tests need from Debian (root) or say exactly what to install.
DEBS := build-essential pkg-config libev-dev libconfig-dev libmsgpack-dev \
        libcurl4-openssl-dev libssl-dev haproxy clang libclang-rt-14-dev curl socat jq prometheus tmux \
        python3 openssl systemd util-linux libhiredis-dev redis-server
# Node.js and npm for tests/integ/test-sdk-node.sh (Stripe's Node SDK from the npm
# registry; a Node.js from elsewhere that brings its own npm is kept), Python's venv for
# test-sdk-python.sh (Stripe's Python SDK from PyPI).
deps:
	@tests/deps $(DEBS)
	@tests/host-settings
	@command -v node >/dev/null && command -v npm >/dev/null || tests/deps nodejs npm
	@python3 -c 'import ensurepip, venv' 2>/dev/null || tests/deps python3-venv

test: deps
	$(MAKE) all unit-bin proto-bin
	tests/run all

# The integration layer against each HAProxy users run: Debian 12's 2.6, 13's 3.0 and
# unstable's 3.x (tests/hap-root installs the last two into build/hap-roots).
test-matrix: deps all
	tests/run matrix $(BUILD)

# Long runs: the same programs with larger counts (tests/run long), then every fuzz
# target for FUZZ_LONG_SECONDS (make test gives each 5 s).
FUZZ_LONG_SECONDS ?= 30
test-long: all proto-bin $(FUZZ_BIN)
	tests/run long $(BUILD); rc=$$?; tests/run fuzz build/fuzz $(FUZZ_LONG_SECONDS) && exit $$rc

unit-bin: $(UNIT_BIN)
# the unit programs with cases that start threads (RUN_THREADED, tests/lib/test.h): all
# that the TSan layer runs of the unit tests
threaded-unit-bin: $(patsubst %.c,$(BUILD)/%,$(shell grep -l RUN_THREADED $(UNIT_SRC)))
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
	$(MAKE) CC=clang VARIANT=tsan SAN=thread OPT="-O1 -g" threaded-unit-bin proto-bin
	tests/run tsan build/tsan

FUZZ_SECONDS ?= 20
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
fuzz: $(FUZZ_BIN)
	tests/run fuzz build/fuzz $(FUZZ_SECONDS)

# A fuzz target is one file of tests/fuzz/ linked with the checks they share, the
# product's sources and the test library. Those are compiled once, for every target, into
# build/fuzz/obj/ (coverage and sanitizers: -fsanitize=fuzzer-no-link,...), and each target
# only links (-fsanitize=fuzzer brings libFuzzer's main).
FUZZ_SAN  := address,undefined
FUZZ_INC  := $(INC_tests)
FUZZ_CFLAGS = $(CPPFLAGS) -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION $(FUZZ_INC) -std=c11 -g -O1 \
              -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -MMD -MP $(shell pkg-config --cflags $(PKGS))
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,tests/fuzz/fuzz-check.c $(POLICY_SRC) $(SPOA_SRC) $(TLIB_SRC))
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_BIN): build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJ)
	clang -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $^ -lev $(shell pkg-config --libs $(PKGS)) -lm -pthread

# The simulator's scenario loader is fuzzed too: its object joins that target, and its
# include path that target's own objects (set on the objects: a target's variables would
# pass to the shared ones it builds).
build/fuzz/fuzz-scenario: build/fuzz/obj/bench/sim/scenario.o
build/fuzz/obj/bench/sim/scenario.o build/fuzz/obj/tests/fuzz/fuzz-scenario.o: FUZZ_INC += -Ibench/sim

# vegeta drives bench/run-http (bench/run-e2e DRIVER=vegeta). It is not packaged by
# Debian: installed with go install when Go (>= 1.24) is present; else tests/loadgen drives.
deps-bench: deps
	@command -v vegeta >/dev/null || ! command -v go >/dev/null || go install github.com/tsenart/vegeta/v12@v12.13.0

# Debian's own HAProxy 3.0 (trixie) and 3.x (sid) in private roots under build/hap-roots;
# prints the wrappers to use as HAPROXY_BIN (tests/hap-root).
deps-hap3:
	@tests/hap-root trixie && tests/hap-root sid

bench: deps-bench all
	bench/run

clean:
	rm -rf build payspoa $(patsubst %.c,%,$(BENCH_SRC)) \
		$(foreach p,$(FOLDER_PROGS),bench/$(word 2,$(subst :, ,$(p))))

# Keep the objects of single-file programs (make would delete them as intermediates).
.SECONDARY:

-include $(shell find build -path build/hap-roots -prune -o -type f -name '*.d' -print 2>/dev/null)
