#!/usr/bin/env bash
# fuzz.sh [SECONDS] [LIBFUZZER-ARGS...] - fuzzes the qm_* API for SECONDS (default 60).
#
# Builds the libFuzzer harness tests/fuzz/fuzz_api.c with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (the library too, with internal checks at level 2) into build-fuzz/
# (or $FUZZ_BUILD_DIR), then runs it over a scratch copy of tests/fuzz/corpus, so the repository is
# not modified. Exits non-zero when the fuzzer finds a crash, and says where the crashing input is
# and how to replay it. FUZZ_KEEP=1 keeps the scratch directory (the grown corpus) after a clean
# run. Installs clang and its runtimes with apt-get when run as root. See docs/FUZZING.md.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds=${1:-60}
shift || true
case $seconds in
'' | *[!0-9]*)
  echo "usage: $0 [SECONDS] [LIBFUZZER-ARGS...]" >&2
  exit 2
  ;;
esac

qm_ensure_tools "${QM_BUILD_TOOLS[@]}" clang=clang
# libFuzzer and the sanitizer runtimes are in libclang-rt-dev, which clang only recommends.
if ! printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n; }\n' |
  clang -x c - -fsanitize=fuzzer,address,undefined -o /dev/null >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    qm_note "installing the clang runtimes (libclang-rt-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends libclang-rt-dev </dev/null
  else
    printf 'clang cannot link libFuzzer. As root: apt-get install -y libclang-rt-dev\n' >&2
    exit 1
  fi
fi

cd "$QM_ROOT"
build=${FUZZ_BUILD_DIR:-build-fuzz}
qm_note "configuring the fuzz build in $build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQMALLOC_OVERRIDE=OFF \
  -DQMALLOC_FUZZ=ON -DQMALLOC_SANITIZE=address,undefined -DQMALLOC_DEBUG_LEVEL=2 -DQMALLOC_WERROR=ON \
  -DQMALLOC_BUILD_BENCH=OFF
qm_note "building"
cmake --build "$build" -j "$(qm_jobs)" --target qmalloc_fuzz_api qmt_fuzz_replay

work=$(mktemp -d "${TMPDIR:-/tmp}/qmalloc-fuzz.XXXXXX")
mkdir "$work/corpus"
cp tests/fuzz/corpus/* "$work/corpus/"
qm_note "fuzzing for ${seconds}s over $(find "$work/corpus" -type f | wc -l) inputs (scratch: $work)"
rc=0
"$build/tests/fuzz/qmalloc_fuzz_api" -max_total_time="$seconds" -artifact_prefix="$work/" \
  -print_final_stats=1 -timeout=60 "$@" "$work/corpus" || rc=$?

crashes=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
  -o -name 'oom-*' \) | sort)
if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
  printf '\nfuzz.sh: the fuzzer failed (exit status %d). Crashing input(s):\n' "$rc" >&2
  for f in $crashes; do
    printf '  %s\n' "$f" >&2
  done
  printf 'Replay one with:\n  %s/tests/fuzz/qmalloc_fuzz_api FILE   (or %s/tests/fuzz/qmt_fuzz_replay FILE)\n' \
    "$build" "$build" >&2
  printf 'and add it to tests/fuzz/corpus/ once the bug is fixed.\n' >&2
  exit 1
fi
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
  qm_note "clean run; the grown corpus is in $work/corpus"
else
  rm -rf "$work"
  qm_note "clean run"
fi
