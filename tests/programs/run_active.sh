#!/bin/sh
# run_active.sh QMALLOC_RUN CHECK_ACTIVE
# CHECK_ACTIVE must find qmalloc in use under qmalloc-run, and must not without it.
set -u
run=$1
prog=$2
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable"; exit 1; }

out=$("$run" "$prog")
rc=$?
echo "under qmalloc-run: $out (status $rc)"
[ "$rc" -eq 0 ] || { echo "FAIL: qmalloc is not in use under qmalloc-run"; exit 1; }
case $out in ACTIVE*) ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac

out=$(env -u LD_PRELOAD "$prog")
rc=$?
echo "without it: $out (status $rc)"
[ "$rc" -eq 1 ] || { echo "FAIL: qmalloc reported in use without qmalloc-run"; exit 1; }
case $out in "NOT qmalloc"*) ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac
echo PASS
