#!/bin/sh
# library_pages.sh LIBRARY PACKED BUILD_TYPE COMPILER_ID - the pages of the library that every
# process keeps resident stay few (docs/DESIGN.md, "The library's own resident pages"):
#   1. where the build found packed relocations supported (PACKED=1), the library uses them (DT_RELR)
#      and keeps at most a handful of relative relocations unpacked;
#   2. in an optimised gcc build, its code (the executable load segment) fits in 17 OS pages of 4 KiB,
#      the budget the -Os of the run-once files brought it to. A failure here is not a bug but a
#      cost: every program would keep another page resident. Look at what grew.
set -u
lib=$1
packed=$2
build_type=$3
compiler=$4
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
command -v readelf >/dev/null 2>&1 || {
  echo "skip: no readelf"
  exit 77
}
[ -f "$lib" ] || fail "no library at $lib"
dynamic=$(readelf -dW "$lib") || fail "readelf cannot read $lib"
if [ "$packed" = 1 ]; then
  printf '%s\n' "$dynamic" | grep -q '(RELR)' || fail "the build supports packed relocations, but $lib has no DT_RELR"
  relative=$(readelf -rW "$lib" | grep -c 'R_X86_64_RELATIVE\|R_AARCH64_RELATIVE')
  [ "$relative" -le 16 ] || fail "$lib still has $relative unpacked relative relocations"
  echo "packed relocations: yes ($relative left unpacked)"
else
  echo "packed relocations: not supported here"
fi
case $build_type in
Debug | debug | "")
  echo "text budget: not checked in a ${build_type:-default} build"
  exit 0
  ;;
esac
if [ "$compiler" != GNU ]; then
  echo "text budget: set for gcc's code, not checked for $compiler"
  exit 0
fi
# The executable load segment's size in memory (readelf: LOAD offset vaddr paddr filesz memsz flags).
text=$(readelf -lW "$lib" | awk '$1 == "LOAD" && / R E / { print $6 }' | head -n1)
[ -n "$text" ] || fail "no executable load segment in $lib"
bytes=$((text))
pages=$(((bytes + 4095) / 4096))
echo "text: $bytes bytes, $pages pages of 4 KiB"
[ "$pages" -le 17 ] || fail "the library's code takes $pages pages (budget 17): every process would keep them resident"
echo "library pages: ok"
