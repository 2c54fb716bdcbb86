#!/usr/bin/env python3
"""Checks how qmalloc-bench starts and reaps the programs it measures (the ctest entry bench.runner).

Many short programs are run back to back, as the suite runs its smallest workloads: every one must
be reaped by the runner itself with its own exit status (a program that ended before its starting
shell once made wait4 fail with "No child processes"), see the library it was given in LD_PRELOAD,
inherit no descriptor of the runner, and report a peak RSS well below the runner's own.

Usage: test-runner.py RUNNER [COUNT]"""
import os
import resource
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_runner import load_runner  # noqa: E402 (after the path it needs)


def main(argv):
    runner = load_runner(argv[1])
    count = int(argv[2]) if len(argv) > 2 else 500
    if not runner.become_subreaper():
        print("bench.runner: this kernel has no child subreaper; nothing to check")
        return 0
    runner.SUBREAPER = True
    failures = []
    for i in range(count):
        status = i % 2
        try:
            raw = runner.run_program(["false" if status else "true"], None, 30)
        except ChildProcessError as e:
            failures.append(f"run {i}: the runner could not reap its program: {e}")
            continue
        if raw["exit"] != status:
            failures.append(f"run {i}: exit status {raw['exit']}, expected {status}")
    probe = ("import os; print(os.environ.get('LD_PRELOAD')); "
             "[print('fd', fd, '->', os.readlink('/proc/self/fd/' + fd)) for fd in os.listdir('/proc/self/fd') "
             "if int(fd) > 2 and os.path.exists('/proc/self/fd/' + fd)]")
    raw = runner.run_program([sys.executable, "-c", probe], "/no/such/library.so", 30)
    lines = raw["stdout"].splitlines()
    if not lines or lines[0] != "/no/such/library.so":
        failures.append(f"the program saw LD_PRELOAD={lines[0] if lines else ''!r}, expected /no/such/library.so")
    failures += [f"the program inherited a descriptor: {line}" for line in lines[1:]]
    raw = runner.run_program(["/bin/true"], None, 30)
    own_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if raw["maxrss_kib"] * 2 > own_kib:
        failures.append(f"/bin/true peaked at {raw['maxrss_kib']} KiB, the runner at {own_kib} KiB: "
                        "the program's peak still carries the runner's")
    for failure in failures[:20]:
        print("bench.runner:", failure)
    print(f"bench.runner: {count + 2} programs, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
