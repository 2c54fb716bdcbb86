#!/bin/sh
# run_verbose.sh QMALLOC_RUN VERSION
# With QMALLOC_VERBOSE=1, a program run under qmalloc-run says on stderr that qmalloc serves it (a
# line "qmalloc VERSION..." at start and another at exit); without it, qmalloc prints nothing.
set -u
run=$1
version=$2
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-verbose.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

QMALLOC_VERBOSE=1 "$run" true 2>"$tmp/err"
rc=$?
echo "--- stderr of 'QMALLOC_VERBOSE=1 qmalloc-run true' (status $rc):"
cat "$tmp/err"
[ "$rc" -eq 0 ] || { echo "FAIL: status $rc"; exit 1; }
lines=$(grep -c '^qmalloc ' "$tmp/err")
[ "$lines" -ge 2 ] || { echo "FAIL: expected a 'qmalloc ' line at start and at exit, got $lines"; exit 1; }
grep '^qmalloc ' "$tmp/err" | head -n 1 | grep -qF "$version" ||
  { echo "FAIL: the first line does not name version $version"; exit 1; }

env -u QMALLOC_VERBOSE "$run" true 2>"$tmp/err2"
rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: status $rc without QMALLOC_VERBOSE"; exit 1; }
if grep -q 'qmalloc' "$tmp/err2"; then
  echo "FAIL: qmalloc printed something without QMALLOC_VERBOSE:"
  cat "$tmp/err2"
  exit 1
fi
echo PASS
