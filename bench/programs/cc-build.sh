#!/bin/sh
# cc-build.sh - the program of qmalloc-bench's `cc` workload: a serial build of a C project.
#
#   cc-build.sh NAME COMPILER SOURCE_DIR OPTION... -- FILE...
#
# Compiles each FILE (relative to SOURCE_DIR) with `COMPILER OPTION... -c`, one after the other,
# into a temporary directory that is removed at the end, and prints one JSON line:
# {"workload": NAME, "ops": files compiled, "object_bytes": their total size}. The object files
# depend on the compiler and its options only, so object_bytes is the same under every allocator.
#
# The runner preloads the allocator into this shell, and the compiler processes (driver, cc1, as)
# inherit it. This shell waits for every compiler, and the compiler driver for its own children,
# so the ru_maxrss that wait4 reports for this shell is the largest resident set of any process
# of the build, and its page faults are those of all of them.
set -eu

name=$1
compiler=$2
source_dir=$3
shift 3

options=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  options="$options $1"
  shift
done
[ $# -gt 0 ] && shift # the --

objects=$(mktemp -d "${TMPDIR:-/tmp}/qmb-cc.XXXXXX")
trap 'rm -rf "$objects"' EXIT
cd "$source_dir"

count=0
for file in "$@"; do
  count=$((count + 1))
  # Options are plain words (-O2, -Iinclude): splitting them on spaces is intended.
  # shellcheck disable=SC2086
  "$compiler" $options -c -o "$objects/$count.o" "$file"
done

bytes=$(cat "$objects"/*.o 2>/dev/null | wc -c)
printf '{"workload": "%s", "ops": %d, "object_bytes": %d}\n' "$name" "$count" "$bytes"
