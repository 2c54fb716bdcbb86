#!/usr/bin/env bash
# Builds qmalloc into build/ (or $BUILD_DIR) and runs a real program, Python, with qmalloc as its
# malloc. qmalloc's banner and exit summary on stderr show that it served the program.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

qm_ensure_tools "${QM_BUILD_TOOLS[@]}"
cd "$QM_ROOT"
build=${BUILD_DIR:-build}

qm_note "configuring qmalloc in $build"
cmake -S . -B "$build"
qm_note "building libqmalloc.so"
cmake --build "$build" --target qmalloc -j "$(qm_jobs)"

# PYTHONMALLOC=malloc sends all of Python's allocations, small ones included, to malloc.
program='
import json, threading
def work(n):
    rows = [{"id": i, "name": "row-%d" % i, "tags": [str(j) for j in range(i % 7)]} for i in range(n)]
    return len(json.loads(json.dumps(rows)))
threads = [threading.Thread(target=work, args=(50000,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("python: %d rows built, serialised and parsed again in each of 4 threads" % work(50000))
'
# The interpreter itself, not a wrapper script that would start other programs first.
python=$(python3 -c 'import sys; print(sys.executable)')
qm_note "running: PYTHONMALLOC=malloc $build/qmalloc-run -v $python -c '<allocation-heavy program>'"
PYTHONMALLOC=malloc "$build/qmalloc-run" -v "$python" -c "$program"
qm_note "done: the qmalloc lines above come from the library inside python3"
