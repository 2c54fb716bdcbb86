# shellcheck shell=bash disable=SC2034
# Shared by the quick-start scripts (sourced, not run): tool checks and set-up on Debian-like systems.

# The repository root (this file lives in scripts/).
QM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

qm_note() { printf '\n==> %s\n' "$*"; }

# qm_ensure_tools CMD=PACKAGE...
# Makes sure each command exists (and that the C compiler can build a program). What is missing is
# installed with apt-get when running as root; otherwise the script says what to install and exits 1.
qm_ensure_tools() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd=${pair%%=*}
    pkg=${pair#*=}
    if ! command -v "$cmd" >/dev/null 2>&1; then
      missing+=("$pkg")
    fi
  done
  # A compiler without the C library headers cannot build anything: build-essential brings both.
  if command -v cc >/dev/null 2>&1 &&
    ! printf '#include <stdio.h>\nint main(void) { return puts("") < 0; }\n' |
    cc -x c - -o /dev/null >/dev/null 2>&1; then
    missing+=(build-essential)
  fi
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  # Each package once, in order.
  local unique=() p u seen
  for p in "${missing[@]}"; do
    seen=0
    for u in "${unique[@]+"${unique[@]}"}"; do
      [ "$u" = "$p" ] && seen=1
    done
    [ $seen = 1 ] || unique+=("$p")
  done

  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    qm_note "installing missing tools: ${unique[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${unique[@]}"
  else
    printf 'Missing tools. Install them first, as root:\n\n  apt-get update && apt-get install -y %s\n\n' "${unique[*]}" >&2
    printf '(or run this script as root and it installs them itself)\n' >&2
    exit 1
  fi
}

# qm_offer_tools CMD=PACKAGE...
# Tools that some tests use but the suite can do without (they skip when it is absent): installed
# with apt-get when running as root, otherwise named in a note.
qm_offer_tools() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd=${pair%%=*}
    pkg=${pair#*=}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    qm_note "installing optional test tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}" || printf 'could not install %s: the tests that need it will be skipped\n' "${missing[*]}" >&2
  else
    printf 'Note: %s not installed; the tests that need it will be skipped (apt-get install -y %s)\n' "${missing[*]}" "${missing[*]}" >&2
  fi
}

# Optional: chromium renders the HTML memory report in its test (tests/report/run_chromium.sh).
QM_OPTIONAL_TEST_TOOLS=(chromium=chromium)

# The tools that building qmalloc and running its test suite need.
QM_BUILD_TOOLS=(cc=build-essential gcc=build-essential make=build-essential cmake=cmake pkg-config=pkg-config
  python3=python3 sort=coreutils timeout=coreutils awk=mawk)

qm_jobs() {
  if [ -n "${JOBS:-}" ]; then
    echo "$JOBS"
  else
    nproc 2>/dev/null || echo 2
  fi
}
