#!/bin/sh
# run_valgrind.sh VALGRIND EXPECTED PROGRAM [ARGS...]
#
# Runs PROGRAM under memcheck (full leak check) and passes when memcheck's report contains
# EXPECTED: the planted bug was seen, which memcheck can only do if qmalloc described its blocks.
# memcheck replaces malloc in every library unless told to leave all but libc's alone
# (--soname-synonyms=somalloc=nouserintercepts); the test fails if memcheck's malloc served.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 VALGRIND EXPECTED PROGRAM [ARGS...]" >&2
  exit 2
fi
valgrind=$1
expected=$2
shift 2
log=$(mktemp "${TMPDIR:-/tmp}/qmt-valgrind.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT

"$valgrind" --tool=memcheck --soname-synonyms=somalloc=nouserintercepts --leak-check=full --error-exitcode=0 \
  --log-file="$log" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "FAIL: the program exited with status $rc under valgrind"
  cat "$log"
  exit 1
fi
if grep -q 'malloc (in .*vgpreload_memcheck' "$log"; then
  echo "FAIL: memcheck's own malloc served the program, not qmalloc"
  cat "$log"
  exit 1
fi
if ! grep -q "$expected" "$log"; then
  echo "FAIL: memcheck did not report '$expected'"
  cat "$log"
  exit 1
fi
echo "PASS: memcheck reported '$expected':"
grep -A3 "$expected" "$log" | head -n 8
exit 0
