#!/bin/sh
# run_sort.sh QMALLOC_RUN
# Sorts a generated 200,000-line file with and without qmalloc and compares the results; with GNU
# sort also with a small buffer and two threads, which makes it merge temporary files.
set -u
run=$1
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable"; exit 1; }
command -v sort >/dev/null 2>&1 || { echo "SKIP: sort not found"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-sort.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
LC_ALL=C
export LC_ALL

awk 'BEGIN {
  s = 12345
  for (i = 0; i < 200000; i++) {
    s = (s * 69069 + 1) % 4294967296
    printf "%010d %s line %d %s\n", s % 1000000007, substr("qwertyuiopasdfghjklzxcvbnm", s % 26 + 1, s % 13 + 1), i, \
      substr("0123456789abcdef0123456789abcdef", s % 7 + 1, s % 17)
  }
}' >"$tmp/in" || { echo "FAIL: cannot generate the input"; exit 1; }
[ "$(wc -l <"$tmp/in")" -eq 200000 ] || { echo "FAIL: the input does not have 200000 lines"; exit 1; }

check() {
  name=$1
  shift
  env -u LD_PRELOAD sort "$@" "$tmp/in" >"$tmp/want" || { echo "FAIL: sort $* alone failed"; exit 1; }
  "$run" sort "$@" "$tmp/in" >"$tmp/got"
  rc=$?
  [ "$rc" -eq 0 ] || { echo "FAIL: sort $* under qmalloc-run: status $rc"; exit 1; }
  cmp -s "$tmp/want" "$tmp/got" || { echo "FAIL: sort $* under qmalloc-run: output differs"; exit 1; }
  echo "ok: $name"
}

check "sort"
check "sort -k3,3 -k1,1n" -k3,3 -k1,1n
check "sort -r -u" -r -u
if sort --version 2>/dev/null | grep -q GNU; then
  check "sort -S 1M --parallel=2 (temporary files, threads)" -S 1M --parallel=2 -T "$tmp"
fi
echo PASS
