#!/bin/sh
# run_programs.sh QMALLOC_RUN WORKLOAD.PY
# Real programs under `qmalloc-run --debug`: the Python workload (Python's own allocator serves
# objects up to 512 bytes, malloc the rest) and sort must give the output they give without it,
# exit 0, and report no heap bug. Exits 77 (skip) when python3 is missing.
set -u
run=$1
script=$2
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-debug-programs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
PYTHONHASHSEED=0
LC_ALL=C
QMALLOC_LEAK_REPORT=0
export PYTHONHASHSEED LC_ALL QMALLOC_LEAK_REPORT
# The interpreter itself, not a wrapper script that would run under the debug library too.
python=$(env -u LD_PRELOAD python3 -c 'import sys; print(sys.executable)') || { echo "FAIL: python3"; exit 1; }

check() {
  name=$1
  shift
  "$run" --debug "$@" >"$tmp/got" 2>"$tmp/err"
  rc=$?
  if [ "$rc" -ne 0 ] || grep -q '^qmalloc: ' "$tmp/err" || ! cmp -s "$tmp/want" "$tmp/got"; then
    echo "FAIL: $name under qmalloc-run --debug: status $rc"
    head -n 40 "$tmp/err"
    exit 1
  fi
  echo "ok: $name"
}

env -u LD_PRELOAD "$python" "$script" >"$tmp/want" || { echo "FAIL: python3 alone failed"; exit 1; }
check "python3 $(basename "$script")" "$python" "$script"

awk 'BEGIN { s = 7; for (i = 0; i < 50000; i++) { s = (s * 69069 + 1) % 4294967296; print s % 1000003, "line", i } }' \
  >"$tmp/in"
env -u LD_PRELOAD sort -k1,1n "$tmp/in" >"$tmp/want" || { echo "FAIL: sort alone failed"; exit 1; }
check "sort -k1,1n" sort -k1,1n "$tmp/in"
echo PASS
