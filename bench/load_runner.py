"""Loads qmalloc-bench (a script with no .py ending, configured into the build tree) as a module, so
that the runner's tests (test-runner.py, test-plan.py) can call its functions."""
import sys


def load_runner(path):
    module = type(sys)("qmalloc_bench")
    module.__file__ = path
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), module.__dict__)
    return module
