# The two quick-start commands (`make demo`, `make test`) live here, with
# `make install`. Each one first installs any missing Debian package, then
# configures and builds with CMake (one rule, `build`, which every other
# target uses). Nothing here needs network access beyond Debian's archive.

MAKEFLAGS += --no-print-directory
BUILD     ?= build
CMAKE_ARGS ?=
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

# Debian packages the build, the tests and the tools need (tmux, man-db,
# bsdextrautils' col and bash-completion for the tests of the tool in a
# terminal, its man page and its completion; libnats-dev for `snapbridge
# export`, nats-server for its tests and benchmark row).
DEB_PACKAGES = build-essential cmake pkg-config liburcu-dev libck-dev \
               libmsgpack-dev libcriterion-dev libjansson-dev \
               tmux man-db bsdextrautils bash-completion libnats-dev nats-server
# Optional, for `make bench` only: the plot, and the iceoryx baseline (RouDi
# and the C binding). Without them the benchmark skips what needs them.
BENCH_PACKAGES = gnuplot-nox iceoryx libiceoryx-binding-c-dev
DEPS_PACKAGES ?= $(DEB_PACKAGES)

.PHONY: all deps build demo install test test-asan test-tsan fuzz bench-deps bench bench-serve \
	model format clean

all: build

# Installs only what is missing, and says nothing when everything is there.
deps:
	@missing=""; for p in $(DEPS_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The one configure-and-build rule: $(BUILD) with $(CMAKE_ARGS), the targets
# $(BUILD_TARGETS) (empty: all). Configuring every time is cheap and makes
# CMAKE_ARGS take effect on an existing build. The configure log is shown
# when it fails; the build shows one line of progress and every warning
# (cmake/quiet-build.sh; the whole log is in $(BUILD)/build.log).
BUILD_TARGETS ?=
BUILD_WHAT ?=
build: deps
	@mkdir -p $(BUILD)
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) > $(BUILD)/configure.log 2>&1 \
	  || { cat $(BUILD)/configure.log; exit 1; }
	@JOBS=$(JOBS) BUILD_WHAT="$(BUILD_WHAT)" sh cmake/quiet-build.sh $(BUILD) $(BUILD_TARGETS)

# Only what the demo needs: the tool (build/bin/snapbridge is what installs).
demo:
	@$(MAKE) build BUILD_TARGETS=snapbridge_tool_installed BUILD_WHAT="the snapbridge tool"
	@./$(BUILD)/bin/snapbridge demo

# The library, headers, snapbridge.pc, the CMake package, the tool, its man
# page and bash completion, under PREFIX (DESTDIR stages them elsewhere).
# A real install as root ends with ldconfig: the dynamic linker finds
# /usr/local/lib only through its cache, so without it a program built
# against the new library cannot start (libsnapbridge.so.0 not found).
PREFIX ?= /usr/local
install:
	@$(MAKE) build CMAKE_ARGS="-DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)" \
	  BUILD_TARGETS="snapbridge snapbridge_tool_installed snapbridge_man"
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then \
	  PATH="$$PATH:/sbin:/usr/sbin" ldconfig; fi

# A suite that could not run here (test_export without nats-server) says why.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@cat $(BUILD)/tests/*.skipped 2>/dev/null || true

# The same suite under ASan+UBSan. (Criterion cannot start under TSan, so
# a TSan run needs a harness of its own; -DSNAPBRIDGE_SANITIZE=thread builds.)
test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_ARGS="-DSNAPBRIDGE_SANITIZE=address $(CMAKE_ARGS)"

# The concurrency harness under ThreadSanitizer (tests/tsan/; Criterion
# cannot start under TSan). Any report fails with exit code 66; first a
# planted race must be reported, or TSan is not really on. A small and a
# larger log, TSAN_STORES stores per writer thread.
TSAN_STORES ?= 3000
TSAN_ENV = TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(CURDIR)/tests/tsan/tsan.supp"
test-tsan:
	@$(MAKE) build BUILD=build-tsan CMAKE_ARGS="-DSNAPBRIDGE_SANITIZE=thread $(CMAKE_ARGS)" \
	  BUILD_TARGETS=sb_tsan_stress
	@$(TSAN_ENV) ./build-tsan/tests/tsan/sb_tsan_stress --planted-race > build-tsan/planted.log 2>&1; \
	  rc=$$?; if [ $$rc -ne 66 ]; then cat build-tsan/planted.log; \
	  echo "test-tsan: the planted race exited $$rc, not 66: TSan is not working"; exit 1; fi
	$(TSAN_ENV) ./build-tsan/tests/tsan/sb_tsan_stress $(TSAN_STORES) 64
	$(TSAN_ENV) ./build-tsan/tests/tsan/sb_tsan_stress $(TSAN_STORES) 256

# The serving benchmark (docs/BENCHMARKS.md), in an optimised build of its own.
# BENCH_ARGS=--quick for a 5-second run.
BENCH_ARGS ?=
bench-serve:
	$(MAKE) build BUILD=build-bench CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DSNAPBRIDGE_TESTS=OFF $(CMAKE_ARGS)"
	./build-bench/bench/snapbridge-bench-serve $(BENCH_ARGS)

# libFuzzer targets (tests/fuzz/), built with clang in build-fuzz/ and run
# FUZZ_SECONDS each; any finding fails. llvm-14 gives readable stacks.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES = clang libclang-rt-14-dev llvm-14
fuzz:
	@$(MAKE) deps DEB_PACKAGES="$(DEB_PACKAGES) $(FUZZ_PACKAGES)"
	@$(MAKE) build BUILD=build-fuzz BUILD_TARGETS=fuzz_all \
	  CMAKE_ARGS="-DCMAKE_C_COMPILER=clang -DSNAPBRIDGE_FUZZ=ON -DSNAPBRIDGE_TESTS=OFF $(CMAKE_ARGS)"
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# SPIN model checks of the record log, the slot seqlock, the tag index and the wake
# protocol (ring/model/):
# exhaustive runs that must pass, and planted bugs that SPIN must catch.
model:
	@$(MAKE) deps DEB_PACKAGES="spin gcc"
	ring/model/check.sh build-model

bench-deps:
	@$(MAKE) deps DEPS_PACKAGES="$(BENCH_PACKAGES)"

# The full benchmark (docs/BENCHMARKS.md) in the optimised build, results into
# $(BENCH_RESULTS): bench.json, bench.svg and the table in bench.txt. A few minutes;
# BENCH_ARGS=--quick for under a minute. A missing optional package is skipped.
BENCH_RESULTS ?= bench/results
bench: deps
	-@$(MAKE) bench-deps
	$(MAKE) build BUILD=build-bench CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DSNAPBRIDGE_TESTS=OFF $(CMAKE_ARGS)"
	@mkdir -p $(BENCH_RESULTS)
	@./build-bench/consumers/snapbridge bench --json $(BENCH_RESULTS)/bench.json \
	  --svg $(BENCH_RESULTS)/bench.svg $(BENCH_ARGS) > $(BENCH_RESULTS)/bench.txt; \
	  rc=$$?; cat $(BENCH_RESULTS)/bench.txt; exit $$rc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-bench build-model build-fuzz
