#!/usr/bin/env bash
# Draws docs/purge-timeline.png: RSS over time of bench/timeline.c (a program that changes phases)
# under qmalloc with two purge delays, glibc and jemalloc (when installed). Needs gnuplot.
# Usage: scripts/purge-timeline.sh [BUILD_DIR]   (default build/; libqmalloc.so must be built there)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build=${1:-$root/build}
lib=$build/libqmalloc.so
[ -f "$lib" ] || { echo "purge-timeline: $lib not found; build qmalloc first" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "purge-timeline: gnuplot is needed (apt-get install gnuplot-nox)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -fno-builtin -pthread -o "$work/timeline" "$root/bench/timeline.c"

run() { # name, then env assignments
  local name=$1
  shift
  echo "running under $name" >&2
  env "$@" "$work/timeline" >"$work/$name.dat"
}
run qmalloc-100ms LD_PRELOAD="$lib" QMALLOC_PURGE_DELAY=100
run qmalloc-1s LD_PRELOAD="$lib" QMALLOC_PURGE_DELAY=1000
run glibc
plots=("'$work/qmalloc-100ms.dat' using 1:2 with lines lw 2 title 'qmalloc, purge delay 100 ms (default)'"
  "'$work/qmalloc-1s.dat' using 1:2 with lines lw 2 title 'qmalloc, purge delay 1 s'"
  "'$work/glibc.dat' using 1:2 with lines lw 2 title 'glibc'")
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n1 || true)
if [ -n "$jemalloc" ]; then
  run jemalloc LD_PRELOAD="$jemalloc"
  plots+=("'$work/jemalloc.dat' using 1:2 with lines lw 2 title 'jemalloc'")
fi
plot=$(IFS=,; echo "${plots[*]}")
mkdir -p "$root/docs"
gnuplot <<GNUPLOT
set terminal pngcairo size 900,450 font 'sans,10'
set output '$root/docs/purge-timeline.png'
set title 'RSS of a phase-changing program (small objects, large objects, mixed; 1 s quiet between)'
set xlabel 'time (ms)'
set ylabel 'RSS (MiB)'
set key top right
set grid
plot $plot
GNUPLOT
for f in "$work"/*.dat; do
  awk -v name="$(basename "$f" .dat)" '{ if ($2 > peak) peak = $2; last = $2 } END { printf "%-16s peak %6.1f MiB, at the end %6.1f MiB\n", name, peak, last }' "$f"
done
echo "wrote docs/purge-timeline.png" >&2
