#!/bin/sh
# run_chromium.sh QMALLOC_RUN PROGRAM WORKDIR - the memory report rendered by a headless Chromium:
# its script ran (<html data-qm-rendered="ok">), the charts hold data points, the site tables name
# the program's functions; a screenshot is saved as WORKDIR/report.png. Skipped (77) without
# chromium.
set -u
run=$1
program=$2
work=$3
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
browser=
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser=$candidate
    break
  fi
done
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (apt-get install chromium); the report's rendering is not checked"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work/profile" || fail "cannot make $work"
html=$work/report.html
"$run" --report "$html" "$program" 2>"$work/stderr" || fail "the program failed: $(cat "$work/stderr")"
[ -s "$html" ] || fail "no report at $html"

# A profile directory of its own, so that no other browser session is joined.
flags="--headless --disable-gpu --no-sandbox --no-first-run --hide-scrollbars --user-data-dir=$work/profile"
timeout 90 "$browser" $flags --virtual-time-budget=5000 --dump-dom "file://$html" >"$work/dom.html" 2>"$work/browser.log" ||
  fail "$browser --dump-dom failed: $(tail -n 5 "$work/browser.log")"
grep -q 'data-qm-rendered="ok"' "$work/dom.html" || fail "the page's script did not finish (no data-qm-rendered)"
# data-points of each chart: the number of points, bars or rectangles it drew.
points() {
  sed -n "s/.*<svg[^>]*id=\"$1\"[^>]*data-points=\"\([0-9]*\)\".*/\1/p" "$work/dom.html" | head -n1
}
for chart in timeline-svg:3 sizes-chart-svg:1 waste-chart-svg:1 heapmap-svg:2; do
  id=${chart%%:*}
  least=${chart#*:}
  n=$(points "$id")
  [ -n "$n" ] || fail "no <svg id=$id> with data-points in the rendered page"
  [ "$n" -ge "$least" ] || fail "$id drew $n points (at least $least expected)"
  printf '%s: %s points\n' "$id" "$n"
done
lines=$(grep -o '<polyline[^>]*class="series"' "$work/dom.html" | wc -l)
[ "$lines" -eq 4 ] || fail "the timeline has $lines lines, not 4"
grep -q 'big_site' "$work/dom.html" || fail "the site tables do not name big_site"

timeout 90 "$browser" $flags --virtual-time-budget=5000 --screenshot="$work/report.png" --window-size=1240,2400 \
  "file://$html" >/dev/null 2>>"$work/browser.log" || fail "$browser --screenshot failed"
[ -s "$work/report.png" ] || fail "no screenshot"
printf 'screenshot: %s\n' "$work/report.png"
echo "chromium: ok"
