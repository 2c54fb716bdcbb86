#!/usr/bin/env python3
"""Checks the seeds of qmalloc-bench's plan (the ctest entry bench.plan).

Every repetition must give each program that takes --seed the same seed under every allocator, so
that all of them do the same work; by default the seed is the number of the repetition, so that the
medians of the randomised workloads are taken over several layouts, not one (BENCHMARKS.md,
Method); with --seed=N every run gets N. The cc workload takes no seed.

Usage: test-plan.py RUNNER"""
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_runner import load_runner  # noqa: E402 (after the path it needs)


def seeds_of(plan):
    """{(key, rep): {allocator: the seed its command line names, or None}}"""
    seeds = {}
    for run in plan:
        named = [int(m.group(1)) for m in (re.fullmatch(r"--seed=(\d+)", word) for word in run["cmd"]) if m]
        if len(named) > 1:
            raise AssertionError(f"{run['key']} rep {run['rep']}: {len(named)} seeds on one command line")
        seeds.setdefault((run["key"], run["rep"]), {})[run["allocator"]] = named[0] if named else None
    return seeds


def check(runner, argv, expected, failures):
    args = runner.parse_args(argv)
    programs = [{"key": "python", "workload": "python", "threads": None, "kind": "program", "seeded": True,
                 "cmd": ["python3", "python-objects.py"]},
                {"key": "cc", "workload": "cc", "threads": None, "kind": "program", "cmd": ["sh", "cc-build.sh"]}]
    plan = runner.plan_suite(args, "/bench", ["churn", "larson"], ["qmalloc", "glibc", "tcmalloc"], programs)
    for (key, rep), by_allocator in sorted(seeds_of(plan).items()):
        want = None if key == "cc" else expected(rep)
        for allocator, seed in sorted(by_allocator.items()):
            if seed != want:
                failures.append(f"{' '.join(argv)}: {key} rep {rep} under {allocator}: seed {seed}, expected {want}")


def main(argv):
    runner = load_runner(argv[1])
    failures = []
    check(runner, ["--reps=4"], lambda rep: rep, failures)
    check(runner, ["--reps=3", "--seed=7"], lambda rep: 7, failures)
    for line in failures:
        print("bench.plan:", line)
    print("bench.plan:", "FAILED" if failures else "the seeds of every repetition are as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
