#!/bin/sh
# run_report.sh QMALLOC_RUN PROGRAM WORKDIR - the memory report and the heap profile of a program
# with known allocation sites (report_sites.c: big_site allocates 10x the bytes of small_site).
#   1. `qmalloc-run --report` writes one HTML page with every section and its data;
#   2. qm_profile_dump's folded stacks rank big_site first, well above small_site;
#   3. "%p" in the path becomes the process id;
#   4. the default library warns that QMALLOC_REPORT has no effect, and writes nothing.
set -u
run=$1
program=$2
work=$3
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
rm -rf "$work" && mkdir -p "$work" || fail "cannot make $work"
html=$work/report.html
folded=$work/folded.txt

# 1. The page.
# A stack every 128 KiB instead of the default 2 MiB, so that small_site (6 MiB) gets enough of them.
QMALLOC_PROFILE_SAMPLE=128k "$run" --report "$html" "$program" "$folded" 2>"$work/stderr" || fail "the program failed: $(cat "$work/stderr")"
[ -s "$html" ] || fail "no report at $html"
for needle in '<title>qmalloc memory report</title>' 'id="timeline"' 'id="sizes"' 'id="waste"' 'id="heapmap"' \
  'id="sites"' 'id="options"' 'id="statistics"' '"series": {' '"in_use": [' '"rss": [' '"purged": [' \
  '"heap_map": {' '"segments": [' '"profile": {"enabled": true' 'big_site' 'small_site' '"classes": [' \
  '"options": {' '"profile_sample": 131072' "\"report\": \"$html\"" '"peak_bytes_in_use": '; do
  grep -qF -- "$needle" "$html" || fail "the report lacks $needle"
done
# Nothing in it reaches for the network.
if grep -qiE '(src|href)="(https?:)?//' "$html"; then
  fail "the report loads something from the network"
fi
# The time series has more than the first and last points (the program runs for ~0.4 s).
points=$(sed -n 's/.*"t_ms": \[\([0-9,]*\)\].*/\1/p' "$html" | tr ',' '\n' | wc -l)
[ "$points" -ge 3 ] || fail "only $points points in the time series"
# The request sizes, estimated from size samples (statistics level 1): the 512-byte class (row 23)
# has the program's 132,000 requests of 500 bytes, within sampling noise (about 2,000 samples: 2-3%).
sizes=$(grep -o '"sizes": [][0-9,]*' "$html" | head -n1 | sed 's/^"sizes": //' | sed 's/^\[\[//; s/\]\]$//; s/\],\[/\n/g')
[ "$(printf '%s\n' "$sizes" | wc -l)" -ge 80 ] || fail "no size estimates per class in the profile"
row23=$(printf '%s\n' "$sizes" | sed -n 24p)
requests=${row23%%,*}
bytes=${row23#*,}
[ "$requests" -ge 110000 ] && [ "$requests" -le 155000 ] ||
  fail "estimated requests of the 512-byte class: $requests, not near 132000"
[ "$bytes" -ge 55000000 ] && [ "$bytes" -le 77500000 ] ||
  fail "estimated bytes requested in the 512-byte class: $bytes, not near 66000000"
printf 'size estimate: %s requests, %s bytes in the 512-byte class (132000, 66000000)\n' "$requests" "$bytes"
# The 30 KiB blocks of mid_site (row 70, the 30720-byte class): 1,200 of them. An allocation this
# close to the size interval often spans two sample points; counting one sample as one point gave
# about 830 here (simulated), counting the points gives 1,150-1,260.
row70=$(printf '%s\n' "$sizes" | sed -n 71p)
requests=${row70%%,*}
[ "$requests" -ge 1000 ] && [ "$requests" -le 1400 ] ||
  fail "estimated requests of the 30720-byte class: $requests, not near 1200"
printf 'size estimate: %s requests in the 30720-byte class (1200)\n' "$requests"
# The heap map at the peak: the program holds ~22 MiB (6 segments) at once for 3 x 60 ms; the bound is
# low so that a sampler starved by a loaded machine, which sees less of it, does not fail the test.
segments=$(grep -o '"address": "0x' "$html" | wc -l)
[ "$segments" -ge 2 ] || fail "the heap map has $segments segments"

# 2. The folded profile: "frame;frame;... bytes", largest first.
[ -s "$folded" ] || fail "qm_profile_dump wrote nothing"
if grep -qvE '^[^ ]+ [0-9]+$' "$folded"; then
  fail "a line of $folded is not 'frames bytes': $(grep -vE '^[^ ]+ [0-9]+$' "$folded" | head -n1)"
fi
# One line per stack: stacks that differ only inside the allocator, or in return addresses within one
# function, are one site and are summed.
repeated=$(sed 's/ [0-9]*$//' "$folded" | sort | uniq -d | head -n1)
[ -z "$repeated" ] || fail "a stack has more than one line in $folded: $repeated"
first=$(head -n1 "$folded")
case $first in
*";main;big_site "*) ;;
*) fail "the first folded stack is not main;big_site: $first" ;;
esac
big=$(grep ';big_site ' "$folded" | awk '{s += $NF} END {print s + 0}')
small=$(grep ';small_site ' "$folded" | awk '{s += $NF} END {print s + 0}')
[ "$small" -gt 0 ] || fail "small_site was never sampled"
# 10x by construction; sampling noise at ~12 samples of small_site keeps the estimate well above 3x.
[ "$big" -ge $((3 * small)) ] || fail "big_site $big bytes is not well above small_site $small"
printf 'big_site %s bytes, small_site %s bytes (ratio %s)\n' "$big" "$small" "$(awk "BEGIN {print $big / $small}")"

# 3. %p.
"$run" --report "$work/pid-%p.html" "$program" 2>/dev/null || fail "the program failed with %p"
ls "$work"/pid-[0-9]*.html >/dev/null 2>&1 || fail "no pid-<pid>.html in $work"
# ... with the default sampling interval.
grep -qF '"profile_sample": 2097152' "$work"/pid-[0-9]*.html || fail "the default QMALLOC_PROFILE_SAMPLE is not 2 MiB"

# 4. The default library has no profiler.
QMALLOC_REPORT=$work/none.html "$run" "$program" 2>"$work/stderr-default" || true
grep -q '^qmalloc: warning: QMALLOC_REPORT=.* has no effect' "$work/stderr-default" ||
  fail "the default library did not warn about QMALLOC_REPORT: $(cat "$work/stderr-default")"
[ ! -e "$work/none.html" ] || fail "the default library wrote a report"
echo "report: ok"
