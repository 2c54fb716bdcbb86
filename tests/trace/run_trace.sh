#!/bin/sh
# run_trace.sh MODE QMALLOC_RUN QMALLOC_REPLAY TRACE_PROGRAM
# Tests of the trace variant and qmalloc-replay, by MODE:
#   program         records tests/trace/trace_program.c: --info must show its known calls, and the
#                   trace must replay (threaded and --serial, under glibc and under qmalloc);
#   python          records a Python one-liner (PYTHONMALLOC=malloc) and replays it (77: no python3);
#   bad_file        files that are not traces (wrong magic, empty, truncated, corrupt) get one
#                   clear error line and exit status 1, not a crash;
#   exec_child      a program started by the traced one writes FILE.<pid>, leaving FILE whole;
#   option_warning  QMALLOC_TRACE with the default library warns that it has no effect.
set -u
mode=$1
run=$2
replay=$3
program=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-trace.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*"
  for f in "$tmp"/out "$tmp"/err "$tmp"/info; do
    [ -f "$f" ] && { echo "--- $(basename "$f"):"; cat "$f"; }
  done
  exit 1
}

# count NAME: the count of calls NAME in $tmp/info ("  NAME   N").
count() {
  awk -v name="$1" '$1 == name && NF == 2 { print $2 }' "$tmp/info"
}
# figure TEXT: the number after "TEXT: " in $tmp/info.
figure() {
  sed -n "s/^$1: \([0-9]*\).*/\1/p" "$tmp/info"
}
expect() { # expect NAME OP VALUE (OP: -eq, -ge)
  value=$2
  [ -n "$value" ] || fail "no figure for $1 in the summary"
  [ "$value" "$3" "$4" ] || fail "$1 is $value, expected $3 $4"
}

replays() { # replays TRACE: threaded and serial, under glibc and under qmalloc
  for how in "" "--serial"; do
    # shellcheck disable=SC2086
    env -u LD_PRELOAD "$replay" $how "$1" >"$tmp/out" 2>"$tmp/err" || fail "qmalloc-replay $how $1 failed"
    grep -q 'calls/s' "$tmp/out" && grep -q 'peak RSS' "$tmp/out" || fail "no time or RSS in the replay's report"
    cat "$tmp/out"
    # shellcheck disable=SC2086
    "$run" "$replay" $how "$1" >"$tmp/out" 2>"$tmp/err" || fail "qmalloc-replay $how $1 under qmalloc failed"
    grep -q 'calls/s' "$tmp/out" || fail "no report from the replay under qmalloc"
  done
  "$replay" --json "$1" >"$tmp/out" 2>"$tmp/err" || fail "qmalloc-replay --json failed"
  grep -q '"ops": [1-9]' "$tmp/out" || fail "no ops in the JSON line"
}

case $mode in
program)
  "$run" --trace "$tmp/t" "$program" >"$tmp/out" 2>"$tmp/err" || fail "the traced program failed"
  "$replay" --info "$tmp/t" >"$tmp/info" 2>"$tmp/err" || fail "qmalloc-replay --info failed"
  cat "$tmp/info"
  expect malloc "$(count malloc)" -ge 1000
  expect calloc "$(count calloc)" -ge 11
  expect realloc "$(count realloc)" -ge 4
  expect "moved reallocs" "$(figure 'reallocs that moved the block')" -ge 3
  expect aligned_alloc "$(count aligned_alloc)" -eq 7
  expect posix_memalign "$(count posix_memalign)" -eq 5
  expect memalign "$(count memalign)" -eq 3
  expect pvalloc "$(count pvalloc)" -eq 2
  expect "valloc (the fork child's)" "$(count valloc)" -eq 0
  expect free_sized "$(count free_sized)" -eq 4
  expect free_aligned_sized "$(count free_aligned_sized)" -eq 2
  expect free "$(count free)" -ge 1360
  expect threads "$(figure threads)" -eq 2
  expect "cross-thread frees" "$(figure 'cross-thread frees')" -ge 350
  expect "peak live bytes" "$(figure 'peak live bytes')" -ge 8388608
  expect "lost calls" "$(figure 'lost calls')" -eq 0
  for f in "$tmp"/t.*; do
    [ ! -e "$f" ] || fail "the fork child wrote a trace of its own: $f"
  done
  replays "$tmp/t"
  ;;
python)
  command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
  PYTHONMALLOC=malloc "$run" --trace "$tmp/py" python3 -c '
import json
rows = [{"id": i, "name": "row%d" % i * (i % 7), "tags": list(range(i % 13))} for i in range(5000)]
text = json.dumps(rows)
print(len(json.loads(text)), len(text))' >"$tmp/out" 2>"$tmp/err" || fail "python3 under qmalloc-run --trace failed"
  "$replay" --info "$tmp/py" >"$tmp/info" 2>"$tmp/err" || fail "qmalloc-replay --info failed"
  cat "$tmp/info"
  expect malloc "$(count malloc)" -ge 5000
  expect free "$(count free)" -ge 5000
  replays "$tmp/py"
  ;;
bad_file)
  "$run" --trace "$tmp/good" "$program" >/dev/null 2>&1 || fail "the traced program failed"
  size=$(wc -c <"$tmp/good")
  printf 'NOTATRACE and some more bytes to fill a header.....' >"$tmp/magic"
  : >"$tmp/empty"
  head -c 20 "$tmp/good" >"$tmp/short_header"
  head -c $((size - 7)) "$tmp/good" >"$tmp/cut_chunk"
  head -c 40 "$tmp/good" >"$tmp/cut_chunk_header"
  { head -c 32 "$tmp/good"; printf 'QTCK\001\000\000\000\040\000\000\000\002\000\000\000'; head -c 48 /dev/zero; } \
    >"$tmp/corrupt"
  for case in magic:'bad magic' empty:truncated short_header:truncated cut_chunk:truncated \
    cut_chunk_header:truncated corrupt:corrupt; do
    file=${case%%:*}
    want=${case#*:}
    for how in --info ""; do
      # shellcheck disable=SC2086
      "$replay" $how "$tmp/$file" >"$tmp/out" 2>"$tmp/err"
      rc=$?
      [ "$rc" -eq 1 ] || fail "$file: exit status $rc, expected 1"
      line=$(head -n 1 "$tmp/err")
      case $line in
      "qmalloc-replay: $tmp/$file: "*"$want"*) echo "ok: $file: $line" ;;
      *) fail "$file: the error does not say '$want': $line" ;;
      esac
    done
  done
  ;;
exec_child)
  "$run" --trace "$tmp/t" sh -c '/bin/true; /bin/true; echo started' >"$tmp/out" 2>"$tmp/err" ||
    fail "the traced shell failed"
  children=$(ls "$tmp"/t.* 2>/dev/null | wc -l)
  [ "$children" -ge 1 ] || fail "no FILE.<pid> from the programs the shell started"
  for f in "$tmp/t" "$tmp"/t.*; do
    "$replay" --info "$f" >"$tmp/info" 2>"$tmp/err" || fail "$f is not a valid trace"
  done
  echo "ok: $children traces of child programs beside the shell's"
  ;;
option_warning)
  QMALLOC_TRACE="$tmp/t" "$run" /bin/true 2>"$tmp/err" || fail "the program failed"
  grep -q '^qmalloc: warning: QMALLOC_TRACE=.*has no effect.*--trace' "$tmp/err" || fail "no warning"
  [ ! -e "$tmp/t" ] || fail "the default library wrote a trace"
  cat "$tmp/err"
  ;;
*)
  echo "usage: $0 program|python|bad_file|exec_child|option_warning QMALLOC_RUN QMALLOC_REPLAY PROGRAM" >&2
  exit 2
  ;;
esac
echo PASS
