#!/bin/sh
# options_readme.sh [--update] README GENERATOR
# The README's option table (between the lines <!-- options:begin --> and <!-- options:end -->) must
# be what GENERATOR (tests/options_markdown.c) prints from the option table in src/options.c, so
# that the two cannot drift apart. With --update, rewrites the README's table instead of checking
# it (the build target options_readme_update does that).
set -u
update=0
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi
readme=$1
generator=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmt-readme.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

begin='<!-- options:begin -->'
end='<!-- options:end -->'
[ "$(grep -cxF "$begin" "$readme")" -eq 1 ] && [ "$(grep -cxF "$end" "$readme")" -eq 1 ] ||
  { echo "FAIL: $readme needs one line '$begin' and one line '$end'"; exit 1; }
"$generator" >"$tmp/generated" || { echo "FAIL: $generator failed"; exit 1; }
awk -v b="$begin" -v e="$end" '$0 == e { inside = 0 } inside { print } $0 == b { inside = 1 }' "$readme" \
  >"$tmp/current"

if [ "$update" -eq 1 ]; then
  awk -v b="$begin" -v e="$end" -v table="$tmp/generated" '
    $0 == b { print; while ((getline line < table) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$readme" >"$tmp/readme" && cat "$tmp/readme" >"$readme"
  echo "updated the option table of $readme"
  exit 0
fi
if ! diff -u "$tmp/current" "$tmp/generated"; then
  echo "FAIL: the option table of $readme differs from src/options.c (above: - README, + generated);"
  echo "      rebuild with 'cmake --build BUILD --target options_readme_update' to refresh it"
  exit 1
fi
echo PASS
