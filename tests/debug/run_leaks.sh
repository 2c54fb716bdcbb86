#!/bin/sh
# run_leaks.sh LIBRARY PROGRAM
# Runs the leak program with the debug library preloaded and checks the leak report on stderr: the
# exit status stays 0, the program's three allocation sites are listed largest first with their
# sizes and block counts and named by function, and QMALLOC_LEAK_REPORT=0 turns the report off.
set -u
lib=$1
program=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-leaks.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*"
  echo "--- stderr:"
  cat "$tmp/err"
  exit 1
}

LD_PRELOAD=$lib "$program" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc (leaks must not change it)"
grep -q '^qmalloc: leak report: ' "$tmp/err" || fail "no leak report"

# "BYTES BLOCKS FUNCTION" for each site whose stack names one of the program's leak_* functions,
# in the order of the report.
awk '
  /^qmalloc: [0-9]+ bytes in [0-9]+ blocks?:$/ { bytes = $2; blocks = $5; named = 0; next }
  /^qmalloc:     #/ && !named && match($0, / in leak_[a-z]+\+/) {
    name = substr($0, RSTART + 4, RLENGTH - 5)
    print bytes, blocks, name
    named = 1
  }' "$tmp/err" >"$tmp/sites"
printf '10000 2 leak_big\n3000 3 leak_medium\n100 10 leak_small\n' >"$tmp/want"
cmp -s "$tmp/sites" "$tmp/want" || {
  echo "--- sites found:"
  cat "$tmp/sites"
  fail "the report does not list leak_big, leak_medium, leak_small with their sizes, largest first"
}
grep -q 'bytes in 1 block:' "$tmp/err" && grep -A3 'bytes in 1 block:' "$tmp/err" | grep -q '777' &&
  fail "a freed block is reported"

QMALLOC_LEAK_REPORT=0 LD_PRELOAD=$lib "$program" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc with QMALLOC_LEAK_REPORT=0"
grep -q 'leak report' "$tmp/err" && fail "QMALLOC_LEAK_REPORT=0 still prints the report"
echo "PASS: leak report lists the sites largest first; QMALLOC_LEAK_REPORT=0 turns it off"
exit 0
