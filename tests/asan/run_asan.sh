#!/bin/sh
# run_asan.sh EXPECTED PROGRAM [ARGS...]
#
# Runs a program built with AddressSanitizer that commits a heap bug on qmalloc's memory, and
# passes when it did not survive (it prints "survived" if it does) and ASan's report on stderr
# contains EXPECTED (for example "use-after-poison").
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 EXPECTED PROGRAM [ARGS...]" >&2
  exit 2
fi
expected=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-asan.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

"$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
fail() {
  echo "FAIL: $*"
  echo "--- exit status: $rc"
  cat "$tmp/out" "$tmp/err"
  exit 1
}
grep -q '^survived' "$tmp/out" && fail "the program survived its bug"
[ "$rc" -ne 0 ] || fail "the program exited with status 0"
grep -q "ERROR: AddressSanitizer: $expected" "$tmp/err" || fail "ASan did not report '$expected'"
target=$(sed -n 's/^target \(0x[0-9a-fA-F]*\).*/\1/p' "$tmp/out")
echo "PASS: $(grep -m 1 'ERROR: AddressSanitizer' "$tmp/err") (block $target)"
exit 0
