#!/bin/sh
# stats_output.sh PROGRAM [QMALLOC_RUN]
# PROGRAM (tests/stats_output.c) keeps 1,000 blocks of 100 bytes live and prints the statistics
# table on stderr and the JSON document on stdout. Checks: the table has its header and the row of
# class 112 with 1,000 blocks; the JSON parses (with python3, when there is one) and says the same;
# QMALLOC_SHOW_STATS=1 prints the table once more at exit; with QMALLOC_RUN (the library preloaded),
# `qmalloc-run --stats` prints it at the exit of any command. A library built with QMALLOC_STATS=0
# only has to say so in the table.
set -u
program=$1
run=${2:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-stats.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

"$program" >"$tmp/json" 2>"$tmp/err"
rc=$?
echo "--- stderr (status $rc):"
cat "$tmp/err"
[ "$rc" -eq 0 ] || fail "status $rc"
grep -q '^qmalloc [0-9.]* statistics' "$tmp/err" || fail "no table header on stderr"
if grep -q 'statistics: not built in' "$tmp/err"; then
  level=0
else
  level=1
  grep -Eq '^ +class +blocks +in use +pages +committed' "$tmp/err" || fail "no column headings"
  awk '$1 == "112" && $2 >= 1000 { found = 1 } END { exit !found }' "$tmp/err" ||
    fail "no row for class 112 with at least 1000 blocks"
  grep -Eq '^ +total +[0-9]+ ' "$tmp/err" || fail "no total row"
  grep -q '^in use: ' "$tmp/err" || fail "no in-use line"
fi
grep -q '^mapped: ' "$tmp/err" || fail "no mapped line"
grep -q '^system calls: mmap [0-9]*, munmap [0-9]*, madvise [0-9]*' "$tmp/err" || fail "no system-call line"

if command -v python3 >/dev/null 2>&1; then
  python3 - "$tmp/json" "$level" <<'PY' || fail "the JSON document is not right"
import json, sys
doc = json.load(open(sys.argv[1]))
level = int(sys.argv[2])
for key in ("version", "level", "totals", "process", "classes", "options"):
    assert key in doc, "missing " + key
assert len(doc["classes"]) == 82, len(doc["classes"])
assert doc["options"]["purge_delay_ms"] >= 0 and doc["options"]["purge_method"] in ("dontneed", "free")
if level:
    row = doc["classes"][6]
    assert row["block_size"] == 112 and row["blocks_in_use"] >= 1000, row
    assert doc["totals"]["bytes_in_use"] >= 112000, doc["totals"]
    assert 0 <= doc["totals"]["fragmentation"] <= 1
else:
    assert doc["level"] == 0 and doc["totals"]["bytes_in_use"] is None
print("JSON parsed: level %d, %d bytes in use" % (doc["level"], doc["totals"]["bytes_in_use"] or 0))
PY
else
  echo "(python3 not found: JSON not parsed)"
  grep -q '"classes": \[' "$tmp/json" || fail "no classes array in the JSON"
fi

QMALLOC_SHOW_STATS=1 "$program" >/dev/null 2>"$tmp/err2"
rc=$?
[ "$rc" -eq 0 ] || fail "status $rc with QMALLOC_SHOW_STATS=1"
tables=$(grep -c '^qmalloc [0-9.]* statistics' "$tmp/err2")
[ "$tables" -eq 2 ] || { cat "$tmp/err2"; fail "QMALLOC_SHOW_STATS=1: expected the table twice (call, exit), got $tables"; }
env -u QMALLOC_SHOW_STATS "$program" >/dev/null 2>"$tmp/err3"
tables=$(grep -c '^qmalloc [0-9.]* statistics' "$tmp/err3")
[ "$tables" -eq 1 ] || fail "without QMALLOC_SHOW_STATS: expected the table once, got $tables"

if [ -n "$run" ]; then
  "$run" --stats sort /dev/null 2>"$tmp/err4"
  rc=$?
  echo "--- stderr of 'qmalloc-run --stats sort /dev/null' (status $rc):"
  cat "$tmp/err4"
  [ "$rc" -eq 0 ] || fail "qmalloc-run --stats: status $rc"
  grep -q '^qmalloc [0-9.]* statistics' "$tmp/err4" || fail "qmalloc-run --stats printed no table"
fi
echo PASS
