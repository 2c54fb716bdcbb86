#!/usr/bin/env bash
# Builds qmalloc with warnings as errors into build/ (or $BUILD_DIR) and runs the whole test suite.
# Extra arguments go to the CMake configure step, e.g. ./scripts/test.sh -DCMAKE_BUILD_TYPE=Debug
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

qm_ensure_tools "${QM_BUILD_TOOLS[@]}"
qm_offer_tools "${QM_OPTIONAL_TEST_TOOLS[@]}"
cd "$QM_ROOT"
build=${BUILD_DIR:-build}

qm_note "configuring qmalloc in $build"
cmake -S . -B "$build" -DQMALLOC_WERROR=ON -DQMALLOC_BUILD_TESTS=ON "$@"
qm_note "building"
cmake --build "$build" -j "$(qm_jobs)"
qm_note "running the test suite"
cd "$build"
ctest --output-on-failure -j2
