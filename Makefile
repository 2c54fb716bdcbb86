# Shortcuts from the repository root; the build itself is CMake's, in $(BUILD_DIR) (default build/).
# Runner options for the bench targets: make bench QMALLOC_BENCH_ARGS="--reps=3 --allocators=qmalloc,glibc"
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: build test bench bench-quick bench-fastpath bench-smoke

# build: configure (first time) and build the library, tests and benchmarks into $(BUILD_DIR)/
build:
	cmake -S . -B $(BUILD_DIR)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# test: the whole test suite with warnings as errors (./scripts/test.sh)
test:
	BUILD_DIR=$(BUILD_DIR) ./scripts/test.sh

# bench: the full benchmark suite, about half an hour; results in $(BUILD_DIR)/bench-results/
bench: build
	cmake --build $(BUILD_DIR) --target bench

# bench-quick: the suite at the quick size, a few minutes
bench-quick: build
	cmake --build $(BUILD_DIR) --target bench-quick

# bench-fastpath: instructions per malloc and free under callgrind (needs valgrind)
bench-fastpath: build
	cmake --build $(BUILD_DIR) --target bench-fastpath

# bench-smoke: every workload once at the tiny size under every allocator found (the ctest entry)
bench-smoke: build
	cd $(BUILD_DIR) && ctest -R '^bench\.smoke$$' --output-on-failure
