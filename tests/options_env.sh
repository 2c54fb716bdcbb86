#!/bin/sh
# options_env.sh PROGRAM
# Options read from the environment. PROGRAM (tests/options_show.c) prints the value of each option
# named on its command line. A good value is used silently; a value that does not parse, or is out
# of range, gives exactly one warning line naming the option and the value used instead, and the
# program runs on (status 0); an unknown QMALLOC_* variable and a mode of another library variant
# get one warning line each.
set -u
program=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-options.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0

# expect 'VAR=VALUE ...' OPTION EXPECTED_VALUE EXPECTED_STDERR (empty: nothing on stderr)
expect() {
  assignments=$1 option=$2 value=$3 message=$4
  # shellcheck disable=SC2086
  env $(env | sed -n 's/^\(QMALLOC_[A-Z_]*\)=.*/-u \1/p') $assignments "$program" "$option" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  got=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  if [ "$rc" -ne 0 ] || [ "$got" != "$value" ] || [ "$err" != "$message" ]; then
    echo "FAIL: $assignments: status $rc, $option = '$got' (expected '$value')"
    echo "  stderr:   '$err'"
    echo "  expected: '$message'"
    failed=1
  else
    echo "ok: $assignments -> $option = $got${message:+ (warned)}"
  fi
}

expect "QMALLOC_PURGE_DELAY=250ms" purge_delay 250ms ""
expect "QMALLOC_PURGE_DELAY=2s" purge_delay 2s ""
expect "QMALLOC_PURGE_DELAY=0" purge_delay 0ms ""
expect "QMALLOC_PURGE_DELAY=banana" purge_delay 100ms \
  'qmalloc: warning: QMALLOC_PURGE_DELAY="banana" is not a duration (e.g. 100, 100ms, 2s); using 100ms'
expect "QMALLOC_PURGE_DELAY=99999999" purge_delay 100ms \
  'qmalloc: warning: QMALLOC_PURGE_DELAY="99999999" is out of range (0ms..60s); using 100ms'
expect "QMALLOC_PURGE_DELAY=61s" purge_delay 100ms \
  'qmalloc: warning: QMALLOC_PURGE_DELAY="61s" is out of range (0ms..60s); using 100ms'
expect "QMALLOC_PURGE_METHOD=free" purge_method free ""
expect "QMALLOC_PURGE_METHOD=madvise" purge_method dontneed \
  'qmalloc: warning: QMALLOC_PURGE_METHOD="madvise" is not one of dontneed, free; using dontneed'
expect "QMALLOC_SEGMENT_DECAY=5s" segment_decay 5s ""
expect "QMALLOC_ARENA_RESERVE=16m" arena_reserve 16m ""
expect "QMALLOC_ARENA_RESERVE=lots" arena_reserve 0 \
  'qmalloc: warning: QMALLOC_ARENA_RESERVE="lots" is not a size (e.g. 4096, 64k, 16m, 1g); using 0'
expect "QMALLOC_ARENA_RESERVE=2t" arena_reserve 0 \
  'qmalloc: warning: QMALLOC_ARENA_RESERVE="2t" is out of range (0..1t); using 0'
expect "QMALLOC_THP=on" thp 1 ""
expect "QMALLOC_HUGE_THP=off" huge_thp 0 ""
expect "QMALLOC_HUGE_THP=sometimes" huge_thp 1 \
  'qmalloc: warning: QMALLOC_HUGE_THP="sometimes" is not a boolean (1/0, yes/no, true/false, on/off); using 1'
expect "QMALLOC_SHOW_STATS=maybe" show_stats 0 \
  'qmalloc: warning: QMALLOC_SHOW_STATS="maybe" is not a boolean (1/0, yes/no, true/false, on/off); using 0'
expect "QMALLOC_PURGE_DELAY_MS=10" purge_delay 100ms \
  'qmalloc: warning: QMALLOC_PURGE_DELAY_MS is not a qmalloc option; ignored (the README lists them)'
expect "QMALLOC_LIB=/nowhere" purge_delay 100ms ""
expect "QMALLOC_DEBUG=1" debug 0 \
  'qmalloc: warning: QMALLOC_DEBUG=1 has no effect in this library: run the program with `qmalloc-run --debug` (libqmalloc-debug.so)'
expect "QMALLOC_DEBUG=0" debug 0 ""

[ "$failed" -eq 0 ] || exit 1
echo PASS
