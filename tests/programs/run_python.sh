#!/bin/sh
# run_python.sh QMALLOC_RUN WORKLOAD.PY
# Runs an allocation-heavy Python program with and without qmalloc (both with Python's own small
# object allocator and with PYTHONMALLOC=malloc, which sends every allocation to malloc) and
# compares the outputs. Exits 77 (skip) when python3 is missing.
set -u
run=$1
script=$2
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable"; exit 1; }
PYTHONHASHSEED=0
export PYTHONHASHSEED

want=$(env -u LD_PRELOAD python3 "$script") || { echo "FAIL: python3 alone failed"; exit 1; }
echo "without qmalloc: $want"
for mode in pymalloc malloc; do
  got=$(PYTHONMALLOC=$mode "$run" python3 "$script")
  rc=$?
  echo "with qmalloc (PYTHONMALLOC=$mode): $got (status $rc)"
  [ "$rc" -eq 0 ] || { echo "FAIL: status $rc"; exit 1; }
  [ "$got" = "$want" ] || { echo "FAIL: output differs"; exit 1; }
done
echo PASS
