#!/bin/sh
# run_death.sh EXPECTED PROGRAM [ARGS...]
#
# Runs a death-test program and passes when it was killed by SIGABRT and the first line of its
# stderr that starts with "qmalloc: " contains EXPECTED and names the address the program printed
# ("target 0x...") before committing its bug.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 EXPECTED PROGRAM [ARGS...]" >&2
  exit 2
fi
expected=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-death.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
# No core files (dash and bash both know ulimit -c).
# shellcheck disable=SC3045
ulimit -c 0 2>/dev/null || true

"$@" >"$tmp/out" 2>"$tmp/err"
rc=$?

fail() {
  echo "FAIL: $*"
  echo "--- exit status: $rc"
  echo "--- stdout:"
  cat "$tmp/out"
  echo "--- stderr:"
  cat "$tmp/err"
  exit 1
}

[ "$rc" -ne 3 ] || fail "qmalloc is not the malloc in use"
grep -q '^survived' "$tmp/out" && fail "the program survived its bug"
# A shell reports death by signal N as 128 + N; SIGABRT is 6.
[ "$rc" -eq 134 ] || fail "expected death by SIGABRT (status 134)"

line=$(grep -m 1 '^qmalloc: ' "$tmp/err")
[ -n "$line" ] || fail "no line starting with 'qmalloc: ' on stderr"
case $line in
*"$expected"*) ;;
*) fail "the report does not say '$expected'" ;;
esac

target=$(sed -n 's/^target \(0x[0-9a-fA-F]*\).*/\1/p' "$tmp/out" | head -n 1)
[ -n "$target" ] || fail "the program did not print its target address"
# Compared as text (lower case, no leading zeros): a report may also name a value above 2^63,
# which shell arithmetic cannot hold.
norm() {
  printf '%s' "$1" | tr 'A-F' 'a-f' | sed 's/^0x0*/0x/'
}
found=0
for addr in $(printf '%s\n' "$line" | grep -o '0x[0-9a-fA-F]*'); do
  if [ "$(norm "$addr")" = "$(norm "$target")" ]; then
    found=1
  fi
done
[ "$found" -eq 1 ] || fail "the report does not name the address $target"

echo "PASS: died by SIGABRT; report: $line"
exit 0
