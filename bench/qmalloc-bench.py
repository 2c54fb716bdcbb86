#!/usr/bin/env python3
"""qmalloc-bench: runs qmalloc's benchmark workloads under qmalloc, glibc, jemalloc, tcmalloc and
mimalloc, and writes tables and charts comparing them.

    qmalloc-bench                 full suite, 5 repetitions, every allocator found
    qmalloc-bench --quick         the same at --size=quick (also: QUICK=1 in the environment)
    qmalloc-bench --smoke         CI check: tiny size, 1 repetition; exits 1 unless every run
                                  exited 0 and printed one valid JSON line
    qmalloc-bench --fastpath      instructions per malloc and free, counted by callgrind
    qmalloc-bench --from=DIR      the report and charts of an earlier run, made again
    qmalloc-bench --trace=FILE    adds the workload replay:<name>: qmalloc-replay replaying FILE,
                                  a trace recorded with `qmalloc-run --trace FILE` (repeatable)

Each workload program qmb-<name> prints one JSON line on stdout. Three more workloads are real
programs (programs/ beside this script): `python` runs an allocation-heavy Python script with
Python's own small-object allocator, `python-malloc` the same with PYTHONMALLOC=malloc, `cc`
compiles qmalloc's own sources with gcc, one file after another; their time is the wall time of the
whole program, and they are skipped, with a note, where python3 or gcc is missing. Every run is also
measured from the outside: wall time around the process, and its peak RSS and minor page faults from
wait4. The allocator comes in with LD_PRELOAD (glibc: nothing preloaded). Runs are interleaved: each
repetition runs every workload under every allocator, in an allocator order rotated from one
repetition to the next, so slow drifts of the machine spread over all allocators alike. Reported
values are medians over the repetitions, with min and max; a ratio compares a median with the best
median of its row.

Outputs go to --out (default bench-results/<timestamp>): results.json (machine, configuration,
every run, medians/min/max), results.md (tables) and PNG charts (gnuplot, else matplotlib).
QMALLOC_BENCH_ARGS in the environment adds options. The run ends with exit status 1 when any run
failed.

Sections, in order: locating programs and libraries, facts about the machine, running one
program, the suite, statistics, the markdown report, charts, fast-path counts, main.
"""

import argparse
import datetime
import glob
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

# Relative paths from the installed script (bin/) to the workload programs and to libqmalloc.so,
# filled in by CMake (bench/runner.cmake) in the build-tree and installed copies. In the source tree
# they stay unfilled, and the script looks for a build in <source>/build.
CONFIGURED_BENCH_DIR = "@QMB_REL_BENCH_DIR@"
CONFIGURED_LIB_DIR = "@QMB_REL_LIB_DIR@"
# The qmalloc source tree the build was made from, whose sources the cc workload compiles.
CONFIGURED_SOURCE_DIR = "@QMB_SOURCE_DIR@"

WORKLOADS = ("churn", "tight", "larson", "prodcons", "cache-thrash", "cache-scratch", "lifetimes",
             "realloc", "large", "frag")
# Real programs measured like the workloads (see program_runs); their scripts live in programs/.
PROGRAMS = ("python", "python-malloc", "cc")
PYTHON_SCRIPT, CC_SCRIPT = "python-objects.py", "cc-build.sh"
# cc: (optimisation, how many of the library's sources, in the order of CMakeLists.txt) per size.
CC_PLAN = {"tiny": ("-O0", 1), "quick": ("-O2", 2), "full": ("-O2", None)}
# The sources the `cc` workload compiles: qmalloc's library as of this commit, taken with
# `git archive`, so that the work stays the same while the library's sources change. Compiling the
# working tree made the workload follow every edit: one function added to src/validate.c made that
# file the largest compile of the build and moved its peak RSS by 1.2 MiB under qmalloc and 0.5 MiB
# under glibc (2026-12-06). --cc-sources=tree compiles the working tree instead.
CC_SOURCE_REVISION = "5728a8c52f9024fa20fb50b2050f15c20d4daeb6"
CC_OPTIONS = ("-fPIC", "-fvisibility=hidden", "-DQM_OVERRIDE=1", "-Iinclude", "-Isrc")
SCALING_WORKLOAD, SCALING_THREADS = "larson", (1, 2, 4, 8)
MAIN_THREADS = 2  # the main table's larson row, which is also the 2-thread point of the scaling
ALLOCATORS = ("qmalloc", "glibc", "jemalloc", "tcmalloc", "mimalloc")
PEER_SONAMES = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4",
                "mimalloc": "libmimalloc.so.2"}
PEER_PACKAGES = {"jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4", "mimalloc": "libmimalloc2.0"}
FASTPATH_SIZES = (16, 64, 256, 1024, 8192)
# (mode argument of qmb-fastpath, measured function, what one counted call is, its JSON count field)
FASTPATH_MEASURES = (("own", "fastpath_pairs", "pair", "pairs"), ("cross", "fastpath_mallocs", "malloc", "mallocs"),
                     ("cross", "fastpath_frees", "free", "frees"))
FASTPATH_DEFAULT_COUNT = 64000
COLOURS = {"qmalloc": "#d62728", "glibc": "#7f7f7f", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c",
           "mimalloc": "#9467bd", "live data": "#222222"}
CHART_SIZE = (800, 450)
RATIO_CAP = 4.0  # ratio charts stop here; a taller bar is cut and labelled with its value


def note(message):
    print(f"qmalloc-bench: {message}", file=sys.stderr)


def die(message):
    note(message)
    sys.exit(2)


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text if isinstance(text, str) else json.dumps(text, indent=1) + "\n")


# ---- Locating the workload programs and the allocator libraries ----

def script_dir():
    return os.path.dirname(os.path.realpath(__file__))


def relative_to_script(*paths):
    """The paths joined to the script's directory, leaving out those CMake did not fill in (the
    source copy keeps its @...@ placeholders)."""
    return [os.path.join(script_dir(), p) for p in paths if not p.startswith("@")]


def find_bench_dir(args):
    """--bench-dir, else the script's own directory (build tree), the configured libexec directory
    (installed) or <source>/build/bench (source tree): the first holding qmb-* programs."""
    candidates = [args.bench_dir] if args.bench_dir else \
        relative_to_script(".", CONFIGURED_BENCH_DIR, os.path.join("..", "build", "bench"))
    for directory in candidates:
        if any(os.path.exists(os.path.join(directory, f"qmb-{w}")) for w in WORKLOADS + ("fastpath",)):
            return os.path.realpath(directory)
    die("cannot find the workload programs (qmb-*) in " + ", ".join(map(os.path.normpath, candidates)) +
        "; build them or name their directory with --bench-dir")


def find_replay(bench_dir):
    """qmalloc-replay: beside libqmalloc.so in the build tree, beside this script when installed,
    else on the PATH."""
    for candidate in [os.path.join(bench_dir, "..", "qmalloc-replay")] + relative_to_script("qmalloc-replay"):
        if os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return shutil.which("qmalloc-replay") or die("--trace: cannot find qmalloc-replay; build it (it is built "
                                                 "with the library) or put it on the PATH")


def replay_runs(args, bench_dir):
    """One run per --trace FILE: workload replay:<name of FILE>, its JSON line from --json."""
    if not args.trace:
        return []
    replay, runs = find_replay(bench_dir), []
    for path in args.trace:
        if not os.path.isfile(path):
            die(f"--trace: no such file: {path}")
        key = "replay:" + os.path.splitext(os.path.basename(path))[0]
        runs.append({"key": key, "workload": key, "threads": None, "kind": "replay",
                     "cmd": [replay, "--json", os.path.abspath(path)]})
    return runs


def find_program_script(bench_dir, name):
    """A script of programs/: beside the workload programs (build tree, installed), else beside
    this script (source tree)."""
    for directory in [os.path.join(bench_dir, "programs")] + relative_to_script("programs"):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.realpath(os.path.join(directory, name))
    return None


def find_source_dir(args):
    """The qmalloc source tree: --source-dir, else the one the build was configured from, else the
    tree this script lies in. None when none of them holds the library's sources."""
    candidates = [args.source_dir] if args.source_dir else relative_to_script(CONFIGURED_SOURCE_DIR, "..")
    return next((os.path.realpath(d) for d in candidates
                 if os.path.isfile(os.path.join(d, "CMakeLists.txt")) and os.path.isdir(os.path.join(d, "src"))),
                None)


def pinned_sources(source_dir, revision):
    """A directory holding CMakeLists.txt, src/ and include/ as they were at revision in the git
    repository of source_dir, extracted once into the temporary directory and kept for later runs;
    None when git or the revision is not at hand (a tarball, a shallow clone)."""
    target = os.path.join(tempfile.gettempdir(), f"qmb-cc-sources-{revision[:12]}")
    if os.path.isfile(os.path.join(target, ".complete")):
        return target
    if not shutil.which("git"):
        return None
    archive = subprocess.run(["git", "-C", source_dir, "archive", "--format=tar", revision, "CMakeLists.txt",
                              "src", "include"], capture_output=True)
    if archive.returncode != 0:
        return None
    staging = tempfile.mkdtemp(prefix="qmb-cc-sources-")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        # The "data" filter where this Python has it (newer ones warn without a filter).
        tar.extractall(staging, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    write_file(os.path.join(staging, ".complete"), "")
    try:
        os.rename(staging, target)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


def library_sources(source_dir):
    """The C files of the default library, in the order of QM_SOURCES in CMakeLists.txt, with the
    malloc override: the variants' own files (debug, secure, report) need their own definitions."""
    listing = re.search(r"set\(QM_SOURCES\s(.*?)\)", read_file(os.path.join(source_dir, "CMakeLists.txt")), re.S)
    files = listing.group(1).split() if listing else []
    files += [] if "src/override.c" in files else ["src/override.c"]
    return [f for f in files if f.endswith(".c") and os.path.isfile(os.path.join(source_dir, f))]


def program_runs(args, bench_dir, names):
    """The runs of the real programs among names, and a note for each one that cannot run here.

    python: the interpreter that runs this script (its real path, not a wrapper such as a pyenv
    shim, which would run under the allocator too), isolated from the user's site directory, with
    a fixed hash seed so that every run makes the same objects. cc: gcc on the PATH, run by
    cc-build.sh, a shell that waits for each compiler, so that wait4 reports the peak RSS of the
    largest compiler process (see cc-build.sh)."""
    runs, notes = [], []
    for name in names:
        run = {"key": name, "workload": name, "threads": None, "kind": "program"}
        if name.startswith("python"):
            python, script = os.path.realpath(sys.executable), find_program_script(bench_dir, PYTHON_SCRIPT)
            if not script:
                notes.append(f"{name}: {PYTHON_SCRIPT} not found")
                continue
            run.update(cmd=[python, "-s", "-B", script, f"--size={args.size}", f"--name={name}"], seeded=True,
                       env={"PYTHONHASHSEED": "0", "PYTHONMALLOC": "malloc" if name == "python-malloc" else "pymalloc"})
        else:
            compiler, script = shutil.which("gcc"), find_program_script(bench_dir, CC_SCRIPT)
            source_dir = find_source_dir(args)
            run["sources"] = "tree"
            if source_dir and args.cc_sources != "tree":
                pinned = pinned_sources(source_dir, args.cc_sources)
                if pinned:
                    source_dir, run["sources"] = pinned, args.cc_sources
                else:
                    note(f"{name}: revision {args.cc_sources[:12]} is not in the git repository of {source_dir}: "
                         "compiling its working tree instead")
            sources = library_sources(source_dir) if source_dir else []
            if not compiler or not script or not sources:
                notes.append(f"{name}: " + ("gcc is not on the PATH" if not compiler else
                                            f"{CC_SCRIPT} not found" if not script else
                                            "no qmalloc source tree to compile (name it with --source-dir)"))
                continue
            optimisation, count = CC_PLAN[args.size]
            run["cmd"] = ["/bin/sh", script, name, compiler, source_dir, optimisation, *CC_OPTIONS, "--",
                          *sources[:count]]
        runs.append(run)
    return runs, notes


def find_qmalloc_lib(args, bench_dir):
    if args.qmalloc_lib:
        return os.path.realpath(args.qmalloc_lib) if os.path.isfile(args.qmalloc_lib) else None
    # The build tree of the programs (build/bench/qmb-*, build/libqmalloc.so), then relative to the
    # script: build tree, installed, source tree.
    for directory in [os.path.join(bench_dir, "..")] + \
            relative_to_script("..", CONFIGURED_LIB_DIR, "../lib64", "../lib", "../build"):
        for name in ("libqmalloc.so", "libqmalloc.so.0"):
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.realpath(os.path.join(directory, name))
    return None


def elf_machine(path):
    """(class, machine) from an ELF header, to pass over libraries of another architecture."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        head = b""
    return (head[4], head[5], head[18:20]) if len(head) == 20 and head[:4] == b"\x7fELF" else None


def find_peer(soname, machine):
    """The first library named soname that ldconfig knows or that lies in a usual library directory."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    candidates = re.findall(r"^\s*" + re.escape(soname) + r" \(.*\) => (\S+)$", listing, re.M)
    for pattern in ("/usr/lib/*/", "/usr/lib64/", "/usr/local/lib/", "/usr/lib/", "/lib/*/", "/lib64/"):
        candidates += sorted(glob.glob(pattern + soname))
    return next((p for p in candidates if os.path.isfile(p) and machine in (None, elf_machine(p))), None)


def locate_allocators(args, bench_dir):
    """{name: library path, or None for glibc} for the selected allocators found, and the list of
    those not found. Allocators named with --allocators must exist."""
    extra = dict(item.split("=", 1) for item in args.lib)
    requested = args.allocators.split(",") if args.allocators else list(dict.fromkeys(list(ALLOCATORS) + list(extra)))
    probe = os.path.join(bench_dir, f"qmb-{WORKLOADS[0]}")
    machine = elf_machine(probe if os.path.exists(probe) else sys.executable)
    found, missing = {}, []
    for name in requested:
        if name in extra:
            path = os.path.realpath(extra[name])
        elif name == "qmalloc":
            path = find_qmalloc_lib(args, bench_dir)
        elif name in PEER_SONAMES:
            path = find_peer(PEER_SONAMES[name], machine)
        elif name != "glibc":
            die(f"unknown allocator '{name}' (known: {', '.join(ALLOCATORS)}; others with --lib NAME=PATH)")
        if name == "glibc":
            found[name] = None
        elif path and os.path.isfile(path):
            found[name] = path
        else:
            missing.append(name)
    if "qmalloc" in missing:
        die("cannot find libqmalloc.so; build it or name it with --qmalloc-lib")
    if missing and args.allocators:
        die(f"allocators not found: {', '.join(missing)}. {install_hint(missing)}")
    return found, missing


def install_hint(missing):
    packages = " ".join(PEER_PACKAGES[m] for m in missing if m in PEER_PACKAGES)
    script = next((p for p in relative_to_script("install-peers.sh", CONFIGURED_BENCH_DIR + "/install-peers.sh")
                   if os.path.isfile(p)), None)
    return (f"Install them with {os.path.normpath(script)}" if script else "Install them") + \
        f" (Debian, Ubuntu: apt-get install {packages})."


# ---- Facts about the machine, the compiler and the libraries ----

def compiler_of(path):
    """The compiler named in an ELF file's .comment section, found by scanning its bytes."""
    try:
        with open(path, "rb") as f:
            found = re.search(rb"GCC: \([^)]*\) [\w.]+|[\w ]*clang version [\w.]+", f.read())
    except OSError:
        return None
    return found.group(0).decode(errors="replace").strip() if found else None


def library_version(path):
    """The Debian package and version that own path, if dpkg knows it; else the file name's version."""
    if shutil.which("dpkg-query"):
        for candidate in dict.fromkeys([path, os.path.realpath(path), "/usr" + path]):
            owner = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                package = owner.stdout.split(":")[0].strip()
                return package + " " + subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                                      capture_output=True, text=True).stdout.strip()
    suffix = re.search(r"\.so\.([\d.]+)$", os.path.realpath(path))
    return suffix.group(1) if suffix else None


def allocator_info(allocators):
    info = {}
    for name, path in allocators.items():
        if path is None:
            info[name] = {"path": None, "version": os.confstr("CS_GNU_LIBC_VERSION")}
        elif name == "qmalloc":
            suffix = re.search(r"\.so\.([\d.]+)$", os.path.realpath(path))
            info[name] = {"path": path, "version": suffix and suffix.group(1), "compiler": compiler_of(path)}
        else:
            info[name] = {"path": path, "version": library_version(path)}
    return info


def machine_info(bench_dir, source_dir):
    model = re.search(r"^model name\s*:\s*(.+)$", read_file("/proc/cpuinfo"), re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", read_file("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]*)', read_file("/etc/os-release"), re.M)
    info = {"cpu": model.group(1).strip() if model else platform.machine(), "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)), "memory_bytes": int(memory.group(1)) * 1024 if memory else 0,
            "kernel": platform.release(), "os": os_name.group(1) if os_name else platform.system(),
            "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
            "compiler": compiler_of(os.path.join(bench_dir, f"qmb-{WORKLOADS[0]}"))
            or compiler_of(os.path.join(bench_dir, "qmb-fastpath")),
            "cpu_governor": read_file("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or None,
            "python": platform.python_version()}
    if source_dir and shutil.which("git"):
        rev = subprocess.run(["git", "-C", source_dir, "describe", "--always", "--dirty"], capture_output=True,
                             text=True)
        info["qmalloc_revision"] = rev.stdout.strip() if rev.returncode == 0 else None
    return info


def machine_line(machine):
    return (f"{machine['cpu']} ({machine['cores']} cores), {machine['memory_bytes'] / 2**30:.1f} GiB, "
            f"{machine['os']}, Linux {machine['kernel']}, {machine['glibc']}, "
            f"{machine.get('compiler') or 'unknown compiler'}")


# ---- Running one program ----

PR_SET_CHILD_SUBREAPER = 36
SUBREAPER = False  # set by main(): whether start_program may go through a shell


def become_subreaper():
    """Makes this process the reaper of its orphaned descendants (Linux 3.4 and later).

    Why: a forked child starts with a copy of the runner's resident set, and the kernel carries that
    high-water mark into ru_maxrss across exec, so a program started directly would never show a
    peak below the runner's own ~20 MiB. A program started by a small shell that exits at once
    starts from the shell's ~1 MiB instead; as subreaper, the runner still waits for it itself."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def start_program(cmd, library, out, err, extra_env=None):
    """Starts cmd in a new process group with library preloaded (None: nothing) and extra_env added
    to its environment. Returns the program's pid and its process group."""
    env = dict({k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}, **(extra_env or {}))
    if not SUBREAPER:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                                env=dict(env, LD_PRELOAD=library) if library else env)
        proc.returncode = 0  # the caller reaps it with wait4: keep Popen from waiting again
        return proc.pid, proc.pid
    # The program waits on `go` until the shell has exited and been reaped: a program that ended
    # while the shell still ran could otherwise be reaped by the shell, and wait4 would find no child.
    read_end, write_end = os.pipe()
    go_read, go_write = os.pipe()
    script = (f'lib=$1; shift; {{ read _ <&{go_read}; if [ -n "$lib" ]; then export LD_PRELOAD="$lib"; fi; '
              f'exec "$@" {go_read}<&-; }} {write_end}>&- & echo $! >&{write_end}')
    try:
        shell = subprocess.Popen(["/bin/sh", "-c", script, "sh", library or ""] + cmd, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, env=env, start_new_session=True,
                                 pass_fds=(write_end, go_read))
    finally:
        os.close(write_end)
        os.close(go_read)
    with os.fdopen(read_end, "rb") as pipe:
        pid = int(pipe.read())
    shell.wait()
    os.close(go_write)
    return pid, shell.pid


def run_program(cmd, library, timeout, extra_env=None):
    """Runs cmd with library preloaded; kills its process group after timeout seconds. Returns the
    exit status (negative: signal), wall time, the program's own rusage and its output. The rusage
    of wait4 also covers the children the program waited for: ru_maxrss is the largest resident
    set of any process of the tree, the page faults are their sum."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        pid, group = start_program(cmd, library, out, err, extra_env)
        expired = threading.Event()

        def kill_group():
            expired.set()
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(timeout, kill_group)
        timer.start()
        try:
            _, status, usage = os.wait4(pid, 0)
        except BaseException:
            kill_group()
            os.waitpid(pid, 0)
            raise
        finally:
            timer.cancel()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return {"exit": -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status),
                "timed_out": expired.is_set(), "wall_s": wall, "maxrss_kib": usage.ru_maxrss,
                "minflt": usage.ru_minflt, "majflt": usage.ru_majflt,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def parse_json_line(stdout, workload=None, required=("ops", "seconds")):
    """(the one JSON object a program printed, None) or (None, what is wrong with its output).
    With workload, the object must name it and hold a number in each of the required fields."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        return None, f"expected one JSON line on stdout, got {len(lines)} lines"
    try:
        result = json.loads(lines[0])
    except ValueError as e:
        return None, f"invalid JSON on stdout: {e}"
    if not isinstance(result, dict):
        return None, "the JSON on stdout is not an object"
    if workload and result.get("workload") != workload:
        return None, f"the JSON names workload {result.get('workload')!r}, expected {workload!r}"
    missing = [f for f in required if workload and not isinstance(result.get(f), (int, float))]
    return (None, f"the JSON lacks a numeric '{missing[0]}'") if missing else (result, None)


def measure(task, allocators, timeout):
    """Runs one task of the plan (see plan_suite) and returns its record."""
    raw = run_program(task["cmd"], allocators[task["allocator"]], timeout, task.get("env"))
    record = {k: task[k] for k in ("key", "workload", "threads", "allocator", "rep")}
    record.update({k: raw[k] for k in ("exit", "wall_s", "maxrss_kib", "minflt", "majflt")})
    result, error = None, None
    if raw["timed_out"]:
        error = f"timed out after {timeout:g} s"
    elif raw["exit"] != 0:
        error = f"exit status {raw['exit']}"
    elif task["kind"] == "program":
        # A real program has no clock of its own around a measured phase: its time is all of it.
        result, error = parse_json_line(raw["stdout"], task["workload"], required=("ops",))
        if result is not None:
            result["seconds"] = raw["wall_s"]
    else:
        result, error = parse_json_line(raw["stdout"], task["workload"] if task["kind"] == "workload" else None)
    record.update({"ok": error is None, "error": error, "result": result})
    if error:
        record["stderr_tail"] = raw["stderr"][-2000:]
    return record


# ---- The suite: plan, progress, execution ----

def select_workloads(args, bench_dir):
    """The workload programs to run, and the runs of the real programs (see program_runs). A real
    program that cannot run here is skipped with a note, even when named with --workloads."""
    names = args.workloads.split(",") if args.workloads else list(WORKLOADS + PROGRAMS)
    programs, notes = program_runs(args, bench_dir, [w for w in names if w in PROGRAMS])
    names = [w for w in names if w not in PROGRAMS]
    present = [w for w in names if os.access(os.path.join(bench_dir, f"qmb-{w}"), os.X_OK)]
    absent = [w for w in names if w not in present]
    if absent and args.workloads:
        die(f"workload programs not found in {bench_dir}: {', '.join('qmb-' + w for w in absent)}")
    if absent:
        note(f"not built, skipped: {', '.join(absent)}")
    if notes:
        note(f"skipped: {'; '.join(notes)}")
    return (present, programs) if present or programs else die(f"no workload program in {bench_dir}")


def plan_suite(args, bench_dir, workloads, allocators, extra_runs=()):
    """Every run in execution order: for each repetition, every workload (then the scaling workload
    at its other thread counts), each under every allocator in an order rotated per repetition.
    A smoke run also checks that qmb-fastpath runs."""
    def workload_run(key, workload, threads):
        options = [f"--size={args.size}"] + ([f"--threads={threads}"] if threads else [])
        return {"key": key, "workload": workload, "threads": threads, "kind": "workload", "seeded": True,
                "cmd": [os.path.join(bench_dir, f"qmb-{workload}")] + options}

    def with_seed(run, rep):
        """The run of repetition rep: a program that takes --seed gets the one given, else the number
        of the repetition, the same under every allocator."""
        if not run.get("seeded"):
            return run
        return dict(run, cmd=run["cmd"] + [f"--seed={args.seed if args.seed is not None else rep}"])

    runs = [workload_run(w, w, MAIN_THREADS if w == SCALING_WORKLOAD else None) for w in workloads]
    if SCALING_WORKLOAD in workloads and not args.no_scaling:
        runs += [workload_run(f"{SCALING_WORKLOAD}-{t}t", SCALING_WORKLOAD, t)
                 for t in SCALING_THREADS if t != MAIN_THREADS]
    runs += list(extra_runs)
    fastpath = os.path.join(bench_dir, "qmb-fastpath")
    if args.smoke and os.access(fastpath, os.X_OK):
        runs += [{"key": f"fastpath-{mode}", "workload": "fastpath", "threads": None, "kind": "fastpath",
                  "cmd": [fastpath, "64", mode]} for mode in ("own", "cross")]
    names, plan = list(allocators), []
    for rep in range(1, args.reps + 1):
        shift = (rep - 1) % len(names)
        plan += [dict(with_seed(run, rep), allocator=a, rep=rep) for run in runs for a in names[shift:] + names[:shift]]
    return plan


class Progress:
    """A status line per run on stderr, rewritten in place on a terminal. The time left is the sum,
    over the remaining runs, of the mean duration of earlier runs with the same key."""

    def __init__(self, total):
        self.total, self.done, self.tty, self.durations = total, 0, sys.stderr.isatty(), {}

    def show(self, label, remaining_keys):
        every = [d for ds in self.durations.values() for d in ds]
        eta = "?"
        if every:
            left = int(sum(statistics.fmean(self.durations.get(k, every)) for k in remaining_keys))
            eta = f"{left // 60}m{left % 60:02d}s" if left >= 60 else f"{left}s"
        line = f"[{self.done + 1:>{len(str(self.total))}}/{self.total}] {label}  ... eta {eta}"
        sys.stderr.write("\r" + line[:200] + "\x1b[K" if self.tty else line + "\n")
        sys.stderr.flush()

    def finished(self, key, seconds, failure=None):
        self.done += 1
        self.durations.setdefault(key, []).append(seconds)
        if failure:
            self.message(f"FAILED: {failure}")

    def message(self, text):
        sys.stderr.write(("\r\x1b[K" if self.tty else "") + text + "\n")

    def close(self):
        sys.stderr.write("\r\x1b[K" if self.tty else "")


def execute(plan, allocators, args):
    """Runs the plan. A failed run is recorded and reported, and the rest goes on; Ctrl-C stops
    after the current run, keeping what was measured."""
    progress, records = Progress(len(plan)), []
    for index, task in enumerate(plan):
        threads = f" (threads {task['threads']})" if task["threads"] else ""
        label = f"{task['key'] if task['kind'] == 'fastpath' else task['workload']}{threads} x " \
                f"{task['allocator']:<8} rep {task['rep']}/{args.reps}"
        progress.show(label, [t["key"] for t in plan[index:]])
        try:
            record = measure(task, allocators, args.timeout)
        except KeyboardInterrupt:
            progress.message("interrupted: writing the results measured so far")
            break
        records.append(record)
        progress.finished(task["key"], record["wall_s"], None if record["ok"] else f"{label}: {record['error']}")
    progress.close()
    return records


# ---- Statistics ----

def run_metrics(record):
    """The numbers of one successful run, by metric name."""
    result = record.get("result") or {}
    metrics = {"wall_s": record["wall_s"], "peak_rss_bytes": record["maxrss_kib"] * 1024,
               "minor_faults": record["minflt"]}
    for field, metric in (("seconds", "seconds"), ("ops_per_sec", "ops_per_sec"), ("ops", "ops"),
                          ("peak_rss_bytes", "self_peak_rss_bytes"), ("timer_overhead_ns", "timer_overhead_ns")):
        if isinstance(result.get(field), (int, float)):
            metrics[metric] = result[field]
    for op, percentiles in (result.get("latency_ns") or {}).items():
        for q in ("p50", "p99", "p999"):
            if isinstance(percentiles, dict) and isinstance(percentiles.get(q), (int, float)):
                metrics[f"latency.{op}.{q}"] = percentiles[q]
    for phase in result.get("phases") or []:
        for field in ("rss_bytes", "live_bytes"):
            if isinstance(phase.get(field), (int, float)):
                metrics[f"phase.{phase.get('name')}.{field}"] = phase[field]
    return metrics


def summarise(records):
    """{key: {allocator: {metric: {median, min, max, n}}}} over the successful runs; the number of
    failed runs is the pseudo-metric 'failed'."""
    samples = {}
    for record in records:
        slot = samples.setdefault(record["key"], {}).setdefault(record["allocator"], {})
        for metric, value in (run_metrics(record) if record["ok"] else {"failed": 1}).items():
            slot.setdefault(metric, []).append(value)
    return {key: {allocator: {metric: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
                              for metric, v in metrics.items()}
                  for allocator, metrics in by_allocator.items()}
            for key, by_allocator in samples.items()}


def stat(summary, key, allocator, metric):
    return summary.get(key, {}).get(allocator, {}).get(metric)


# ---- The markdown report ----

def fmt_count(n):
    return next((f"{n / scale:.3g}{unit}" for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)) if n >= scale),
                f"{n:.0f}")


FORMATS = {
    "seconds": lambda s: f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.0f} ms" if s >= 0.01 else f"{s * 1e3:.2f} ms",
    "bytes": lambda b: next((f"{b / scale:.{2 if b < 10 * scale else 0}f} {unit}" for unit, scale in
                             (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)) if b >= scale), f"{b:.0f} B"),
    "count": fmt_count,
    "ns": lambda ns: f"{ns:.0f} ns" if ns < 10000 else f"{ns / 1000:.1f} µs",
    "rate": lambda r: f"{fmt_count(r)} ops/s",
}


def ratio_table(rows, allocators, fmt, first_header, higher_is_better=False, geomean=True, extra=None):
    """A markdown table, one row per (label, {allocator: stat}), one column per allocator. A cell
    reads 'median (ratio) ±spread': the ratio is how many times worse than the best median of the
    row it is (1.00x = best, for throughput too), the spread half the min-max range as a percentage
    of the median; the best median is in bold. The last row is the geometric mean of the ratios
    over the rows that every allocator completed. extra: (header, {label: text}), a column after
    the first."""
    fmt, (extra_header, extra_cells) = FORMATS[fmt], extra or (None, {})
    header = [first_header] + ([extra_header] if extra_header else []) + list(allocators)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ratios = {a: [] for a in allocators}
    for label, cells in rows:
        values = {a: cells[a]["median"] for a in allocators if cells.get(a) and cells[a]["median"] > 0}
        best = (max if higher_is_better else min)(values.values(), default=None)
        ratio = {a: best / v if higher_is_better else v / best for a, v in values.items()}
        out = [label] + ([extra_cells.get(label, "")] if extra_header else [])
        for a in allocators:
            st = cells.get(a)
            if a not in values:
                out.append("failed" if cells.get("failed", {}).get(a) else "—")
                continue
            text = f"**{fmt(st['median'])}**" if st["median"] == best else fmt(st["median"])
            spread = f" ±{(st['max'] - st['min']) / 2 / st['median'] * 100:.0f}%" if st["n"] > 1 else ""
            out.append(f"{text} ({ratio[a]:.2f}x){spread}")
        if len(values) == len(allocators):
            for a in allocators:
                ratios[a].append(ratio[a])
        lines.append("| " + " | ".join(out) + " |")
    complete = len(ratios[allocators[0]]) if allocators else 0
    if geomean and complete > 1:
        means = [f"{math.exp(statistics.fmean(map(math.log, ratios[a]))):.2f}x" for a in allocators]
        lines.append("| " + " | ".join([f"geometric mean of ratios ({complete} rows)"] +
                                        ([""] if extra_header else []) + means) + " |")
    return lines + [""]


def metric_rows(summary, keys, allocators, metric, labels=None):
    return [((labels or {}).get(key, key), dict({a: stat(summary, key, a, metric) for a in allocators},
                                                failed={a: stat(summary, key, a, "failed") for a in allocators}))
            for key in keys]


def markdown_report(doc):
    summary, config = doc["summary"], doc["config"]
    allocators, keys = list(config["allocators"]), [w for w in config["workloads"] if w in summary]
    lines = [f"# qmalloc benchmark results ({config['size']} size, {config['reps']} repetitions)", "",
             f"Run {doc['started']} on {machine_line(doc['machine'])}.", ""]
    for name, info in config["allocators"].items():
        lines.append(f"- {name}: {info.get('path') or 'the C library, nothing preloaded'}" +
                     (f" ({info['version']})" if info.get("version") else ""))
    if config.get("missing_allocators"):
        lines.append(f"- not found, not measured: {', '.join(config['missing_allocators'])}")
    lines += ["", "Cells: median over the repetitions (ratio to the best median of the row, 1.00x = best) "
              "±half the min-max range as a percentage of the median; the best median in bold.", ""]
    for title, explanation, metric, fmt in (
            ("Time of the measured phase", "The workload's own clock around its measured work (`seconds`); "
             "for the real programs (python, cc) the wall time of the whole program.", "seconds", "seconds"),
            ("Wall time", "The whole process, from start to exit, timed by the runner.", "wall_s", "seconds"),
            ("Peak RSS", "The largest resident set of the process (`ru_maxrss` from wait4; on Linux 6.2 and later "
             "it can read up to 128 KiB per CPU below the real peak, see BENCHMARKS.md).", "peak_rss_bytes",
             "bytes"),
            ("Minor page faults", "`ru_minflt`: pages touched for the first time, or again after being "
             "given back to the system.", "minor_faults", "count")):
        lines += [f"## {title}", "", explanation, ""]
        lines += ratio_table(metric_rows(summary, keys, allocators, metric), allocators, fmt, "workload")
    lines += latency_section(summary, keys, allocators) + frag_section(summary, allocators)
    lines += scaling_section(summary, allocators)
    failures = [r for r in doc["runs"] if not r["ok"]]
    if failures:
        lines += ["## Failed runs", ""] + [f"- {r['key']} x {r['allocator']} rep {r['rep']}: {r['error']}"
                                           for r in failures] + [""]
    return "\n".join(lines)


def latency_section(summary, keys, allocators):
    lines, names = [], {"p50": "p50", "p99": "p99", "p999": "p99.9"}
    for key in keys:
        metrics = sorted({m for a in allocators for m in summary[key].get(a, {}) if m.startswith("latency.")},
                         key=lambda m: (m.split(".")[1] != "malloc", m.split(".")[1], len(m), m))
        if not metrics:
            continue
        overheads = [s["median"] for a in allocators if (s := stat(summary, key, a, "timer_overhead_ns"))]
        clock = f" Each sample includes the clock's own cost, {statistics.median(overheads):.0f} ns." \
            if overheads else ""
        lines += [f"## Latency of single calls ({key})", "",
                  "Percentiles of sampled calls, timed inside the workload with the monotonic clock." + clock, ""]
        rows = [(f"{m.split('.')[1]} {names.get(m.split('.')[2], m.split('.')[2])}",
                 {a: stat(summary, key, a, m) for a in allocators}) for m in metrics]
        lines += ratio_table(rows, allocators, "ns", "call", geomean=False)
    return lines


def frag_phases(summary, allocators):
    """The phase names of the frag workload, in the order it reports them."""
    names = [m[6:-10] for a in allocators for m in summary.get("frag", {}).get(a, {})
             if m.startswith("phase.") and m.endswith(".rss_bytes")]
    return list(dict.fromkeys(names))


def frag_live_bytes(summary, allocators, phase):
    """The bytes the frag program holds after a phase: the same under every allocator."""
    lives = [s["median"] for a in allocators if (s := stat(summary, "frag", a, f"phase.{phase}.live_bytes"))]
    return statistics.median(lives) if lives else None


def frag_section(summary, allocators):
    phases = frag_phases(summary, allocators)
    if not phases:
        return []
    rows = [(p, {a: stat(summary, "frag", a, f"phase.{p}.rss_bytes") for a in allocators}) for p in phases]
    rows.append(("peak (VmHWM)", {a: stat(summary, "frag", a, "self_peak_rss_bytes") for a in allocators}))
    live = {p: FORMATS["bytes"](frag_live_bytes(summary, allocators, p) or 0) for p in phases}
    return ["## Fragmentation phases (frag)", "",
            "RSS after each phase (VmRSS, read by the workload), beside the bytes the program still holds.", ""] + \
        ratio_table(rows, allocators, "bytes", "phase", geomean=False, extra=("live data", live))


def scaling_keys(summary):
    """{threads: key} of the scaling runs that were made."""
    keys = {t: SCALING_WORKLOAD if t == MAIN_THREADS else f"{SCALING_WORKLOAD}-{t}t" for t in SCALING_THREADS}
    keys = {t: k for t, k in keys.items() if k in summary}
    return keys if len(keys) > 1 else {}


def scaling_section(summary, allocators):
    keys = scaling_keys(summary)
    if not keys:
        return []
    labels = {k: f"{t} thread{'s' * (t > 1)}" for t, k in keys.items()}
    return [f"## Thread scaling ({SCALING_WORKLOAD})", "",
            "Throughput (`ops_per_sec`), the work per thread fixed; the ratio is best / this.", ""] + \
        ratio_table(metric_rows(summary, list(keys.values()), allocators, "ops_per_sec", labels), allocators,
                    "rate", "threads", higher_is_better=True)


# ---- Charts ----

def chart_specs(summary, config):
    """What to draw, whatever draws it: bars grouped by category, or lines over a numeric axis.
    A 'ratio' chart shows medians divided by the best median of their category."""
    allocators, keys = list(config["allocators"]), [w for w in config["workloads"] if w in summary]

    def normalised(metric):
        series = {a: [] for a in allocators}
        for key in keys:
            values = {a: s["median"] for a in allocators if (s := stat(summary, key, a, metric))}
            for a in allocators:
                series[a].append(values[a] / min(values.values()) if a in values else None)
        return series

    specs = [{"name": "time", "kind": "bars", "ratio": True, "categories": keys, "series": normalised("seconds"),
              "title": "Time of the measured phase, relative to the best (lower is better)",
              "ylabel": "median time / best median"},
             {"name": "rss", "kind": "bars", "ratio": True, "categories": keys,
              "series": normalised("peak_rss_bytes"), "title": "Peak RSS, relative to the best (lower is better)",
              "ylabel": "median peak RSS / best median"}]
    threads = scaling_keys(summary)
    if threads:
        specs.append({"name": "scaling", "kind": "lines", "categories": list(threads), "xlabel": "threads",
                      "title": f"Thread scaling ({SCALING_WORKLOAD})", "ylabel": "million ops/s (higher is better)",
                      "series": {a: [s["median"] / 1e6 if (s := stat(summary, k, a, "ops_per_sec")) else None
                                     for k in threads.values()] for a in allocators}})
    phases = frag_phases(summary, allocators)
    if phases:
        series = {a: [s["median"] / 2**20 if (s := stat(summary, "frag", a, f"phase.{p}.rss_bytes")) else None
                      for p in phases] for a in allocators}
        series["live data"] = [(frag_live_bytes(summary, allocators, p) or 0) / 2**20 for p in phases]
        specs.append({"name": "frag", "kind": "bars", "categories": phases, "series": series, "ylabel": "MiB",
                      "title": "frag: RSS after each phase (lower is better)"})
    return specs


def ratio_cap(spec):
    """The top of a ratio chart's y axis, when one bar would flatten all the others."""
    values = [v for vs in spec["series"].values() for v in vs if v is not None]
    return RATIO_CAP if spec.get("ratio") and values and max(values) > RATIO_CAP * 1.25 else None


def bar_offsets(count):
    """x offsets of the bars of a cluster from its centre, as in gnuplot's clustered histograms."""
    return [(i - (count - 1) / 2) / (count + 1) for i in range(count)]


def gnuplot_script(spec):
    names, cap = list(spec["series"]), ratio_cap(spec)
    script = [f"set terminal pngcairo size {CHART_SIZE[0]},{CHART_SIZE[1]} font 'sans,10'",
              f"set output '{spec['name']}.png'", f"set title \"{spec['title']}\"",
              f"set ylabel \"{spec['ylabel']}\"", "set datafile missing '?'", "set key tmargin center horizontal",
              "set grid ytics", f"set yrange [0:{cap or '*'}]"]
    if spec["kind"] == "bars":
        script += ["set style data histograms", "set style histogram clustered gap 1", "set boxwidth 0.9",
                   "set style fill solid 0.9 border -1", "set xtics rotate by -25 nomirror",
                   f"set xrange [-0.6:{len(spec['categories']) - 0.4}]"]
        if spec.get("ratio"):
            script.append("set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#444444'")
        for x in range(len(spec["categories"])):
            for offset, name in zip(bar_offsets(len(names)), names):
                value = spec["series"][name][x]
                if cap and value is not None and value > cap:
                    script.append(f"set label '{value:.3g}x' at {x + offset:.3f}, {cap} rotate by 90 right "
                                  "offset 0, -0.4 font ',7' textcolor rgb 'white' front")
        plots = [f"'{spec['name']}.dat' using {i + 2}:xtic(1) title '{n}' lc rgb '{COLOURS.get(n, '#000000')}'"
                 for i, n in enumerate(names)]
    else:
        low, high = spec["categories"][0], spec["categories"][-1]
        script += [f"set xlabel \"{spec['xlabel']}\"", "set logscale x 2", f"set xrange [{low * 0.9}:{high * 1.1}]",
                   "set xtics (" + ", ".join(map(str, spec["categories"])) + ")"]
        plots = [f"'{spec['name']}.dat' using 1:{i + 2} with linespoints lc rgb '{COLOURS.get(n, '#000000')}' "
                 f"lw 2 pt 7 title '{n}'" for i, n in enumerate(names)]
    return "\n".join(script + ["plot " + ", \\\n     ".join(plots)]) + "\n"


def chart_data(spec):
    rows = ["# category " + " ".join(n.replace(" ", "_") for n in spec["series"])]
    for i, category in enumerate(spec["categories"]):
        values = ["?" if v[i] is None else f"{v[i]:.6g}" for v in spec["series"].values()]
        rows.append((str(category) if spec["kind"] == "lines" else f'"{category}"') + " " + " ".join(values))
    return "\n".join(rows) + "\n"


def render_gnuplot(specs, outdir):
    """Draws each chart with gnuplot; its data and script stay in outdir/charts."""
    workdir, made = os.path.join(outdir, "charts"), []
    os.makedirs(workdir, exist_ok=True)
    for spec in specs:
        write_file(os.path.join(workdir, spec["name"] + ".dat"), chart_data(spec))
        write_file(os.path.join(workdir, spec["name"] + ".gp"), gnuplot_script(spec))
        done = subprocess.run(["gnuplot", spec["name"] + ".gp"], cwd=workdir, capture_output=True, text=True)
        if done.returncode != 0:
            note(f"gnuplot failed on {spec['name']}: {done.stderr.strip()[-500:]}")
            continue
        shutil.move(os.path.join(workdir, spec["name"] + ".png"), os.path.join(outdir, spec["name"] + ".png"))
        made.append(spec["name"] + ".png")
    return made


def render_matplotlib(specs, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for spec in specs:
        fig, ax = plt.subplots(figsize=(CHART_SIZE[0] / 100, CHART_SIZE[1] / 100), dpi=100)
        names, cap = list(spec["series"]), ratio_cap(spec)
        for offset, name in zip(bar_offsets(len(names)), names):
            points = [(j, c, v) for j, (c, v) in enumerate(zip(spec["categories"], spec["series"][name]))
                      if v is not None]
            if spec["kind"] == "bars":
                ax.bar([j + offset for j, _, _ in points], [min(v, cap or v) for _, _, v in points],
                       0.9 / (len(names) + 1), label=name, color=COLOURS.get(name), edgecolor="black", linewidth=0.5)
                for j, _, v in points:
                    if cap and v > cap:
                        ax.annotate(f"{v:.3g}x", (j + offset, cap * 0.98), ha="center", va="top", fontsize=7,
                                    rotation=90, color="white")
            else:
                ax.plot([c for _, c, _ in points], [v for _, _, v in points], marker="o", label=name,
                        color=COLOURS.get(name))
        if spec["kind"] == "bars":
            ax.set_xticks(range(len(spec["categories"])))
            ax.set_xticklabels(spec["categories"], rotation=25, ha="right")
            if spec.get("ratio"):
                ax.axhline(1, linestyle="--", color="#444444", linewidth=0.8)
        else:
            ax.set_xscale("log", base=2)
            ax.set_xticks(spec["categories"])
            ax.set_xticklabels(map(str, spec["categories"]))
            ax.set_xlabel(spec["xlabel"])
        ax.set_ylim(0, cap)
        ax.set_title(spec["title"], fontsize=10, pad=22)
        ax.set_ylabel(spec["ylabel"])
        ax.grid(axis="y", alpha=0.4)
        ax.legend(fontsize=8, ncol=len(names), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, spec["name"] + ".png"))
        plt.close(fig)
    return [spec["name"] + ".png" for spec in specs]


def draw_charts(summary, config, outdir):
    specs = chart_specs(summary, config)
    if shutil.which("gnuplot"):
        return render_gnuplot(specs, outdir)
    try:
        return render_matplotlib(specs, outdir)
    except ImportError:
        note("no charts: neither gnuplot nor python3-matplotlib is installed (install-peers.sh installs gnuplot)")
        return []


# ---- Fast-path instruction counts under callgrind ----

def callgrind_instructions(path):
    """The Ir total of a callgrind output file (its 'totals:' line, else its 'summary:' line)."""
    text = read_file(path)
    events = re.search(r"^events:\s*(.+)$", text, re.M)
    index = events.group(1).split().index("Ir") if events else 0
    found = re.search(r"^totals:\s*(.+)$", text, re.M) or re.search(r"^summary:\s*(.+)$", text, re.M)
    if not found:
        raise ValueError(f"no totals in {path}")
    return int(found.group(1).split()[index])


def run_fastpath(args, allocators, bench_dir, outdir):
    """Instructions per malloc+free pair in one thread, and per malloc and per free of blocks that
    one thread allocates and another frees, for each allocator and size. Returns
    ({allocator: {size: {unit: instructions}}}, [failures])."""
    valgrind, program = shutil.which("valgrind"), os.path.join(bench_dir, "qmb-fastpath")
    if not valgrind:
        die("--fastpath needs valgrind (Debian: apt-get install valgrind, or run install-peers.sh)")
    if not os.access(program, os.X_OK):
        die(f"{program} is not built")
    os.makedirs(os.path.join(outdir, "callgrind"), exist_ok=True)
    tasks = [(a, size, m) for a in allocators for size in FASTPATH_SIZES for m in FASTPATH_MEASURES]
    progress, results, failures = Progress(len(tasks)), {}, []
    for index, (allocator, size, (mode, function, unit, count_field)) in enumerate(tasks):
        progress.show(f"fastpath {size} B {unit} x {allocator}", [t[2][2] for t in tasks[index:]])
        out_file = os.path.join(outdir, "callgrind", f"{allocator}-{size}-{unit}.out")
        cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}", "--collect-atstart=no",
               f"--toggle-collect={function}", program, str(size), mode]
        raw = run_program(cmd, allocators[allocator], args.timeout * 5)
        result, error = parse_json_line(raw["stdout"]) if raw["exit"] == 0 else (None, f"exit status {raw['exit']}")
        value = None
        if result is not None:
            count = next((result[k] for k in (count_field, "pairs") if isinstance(result.get(k), int)),
                         FASTPATH_DEFAULT_COUNT)
            try:
                value = callgrind_instructions(out_file) / count
            except (ValueError, IndexError) as e:
                error = str(e)
        if error:
            failures.append(f"{allocator} {size} B {unit}: {error} {raw['stderr'][-300:]}")
        progress.finished(unit, raw["wall_s"], failures[-1] if error else None)
        results.setdefault(allocator, {}).setdefault(str(size), {})[unit] = value
    progress.close()
    return results, failures


def fastpath_markdown(results, allocators):
    lines = ["Instructions (callgrind `Ir`) inside the measured loop function, divided by the number of "
             "calls: malloc and free themselves, plus the PLT jump into each and the few instructions of "
             "the loop around them, the same for every allocator. The fewest of each column in bold.", ""]
    for unit, title in (("pair", "malloc+free pair, one thread (64 mallocs then their 64 frees, repeated)"),
                        ("malloc", "malloc of a block that another thread frees"),
                        ("free", "free of a block that another thread allocated")):
        lines += [f"Per {title}:", "", "| allocator | " + " | ".join(f"{s} B" for s in FASTPATH_SIZES) + " |",
                  "|---|" + "---|" * len(FASTPATH_SIZES)]
        values = {a: [results.get(a, {}).get(str(s), {}).get(unit) for s in FASTPATH_SIZES] for a in allocators}
        best = [min((v[i] for v in values.values() if v[i] is not None), default=None)
                for i in range(len(FASTPATH_SIZES))]
        for a in allocators:
            lines.append(f"| {a} | " + " | ".join("failed" if v is None else f"**{v:.1f}**" if v == b else f"{v:.1f}"
                                                   for v, b in zip(values[a], best)) + " |")
        lines.append("")
    return "\n".join(lines)


# ---- Command line and main ----

def parse_args(argv):
    parser = argparse.ArgumentParser(prog="qmalloc-bench", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:4]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--allocators", help=f"comma-separated subset of {','.join(ALLOCATORS)} (default: all found)")
    add("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS + PROGRAMS)} (default: all built)")
    add("--reps", type=int, help="repetitions (default 5; 1 with --smoke)")
    add("--size", choices=("tiny", "quick", "full"), help="workload size (default full)")
    add("--quick", action="store_true", help="--size=quick (also QUICK=1 in the environment)")
    add("--smoke", action="store_true", help="tiny size, 1 repetition, no charts: checks that every run succeeds")
    add("--fastpath", action="store_true", help="count instructions per malloc and free with callgrind")
    add("--no-scaling", action="store_true", help=f"skip {SCALING_WORKLOAD} at its other thread counts")
    add("--no-charts", action="store_true", help="draw no charts")
    add("--seed", type=int, help="passed on to every workload and the Python program in every repetition "
        "(default: the number of the repetition, see BENCHMARKS.md)")
    add("--trace", action="append", default=[], metavar="FILE",
        help="also replay this trace (qmalloc-run --trace) as workload replay:<name>; repeatable")
    add("--timeout", type=float, default=120, help="seconds before a run is killed (default 120)")
    add("--out", help="output directory (default bench-results/<timestamp>)")
    add("--from", dest="from_dir", metavar="DIR", help="make the report and charts again from DIR/results.json")
    add("--qmalloc-lib", help="the libqmalloc.so to measure (default: found relative to this script)")
    add("--lib", action="append", default=[], metavar="NAME=PATH", help="measure another library as NAME")
    add("--bench-dir", help="the directory of the qmb-* programs (default: found relative to this script)")
    add("--source-dir", help="the qmalloc source tree, whose git revision is recorded")
    add("--cc-sources", default=CC_SOURCE_REVISION, metavar="REV",
        help=f"the git revision of the library sources the cc workload compiles, or 'tree' for the "
             f"working tree (default {CC_SOURCE_REVISION[:12]})")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.reps, args.no_charts = "tiny", args.reps or 1, True
    args.size = args.size or ("quick" if args.quick or os.environ.get("QUICK") == "1" else "full")
    args.reps = args.reps or 5
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def finish_report(doc, outdir, args):
    """Writes results.md and the charts of doc, and prints the tables."""
    markdown = markdown_report(doc)
    write_file(os.path.join(outdir, "results.md"), markdown + "\n")
    charts = [] if args.no_charts else draw_charts(doc["summary"], doc["config"], outdir)
    print(markdown)
    print(f"Results: results.json, results.md{''.join(', ' + c for c in charts)} in {outdir}")


def fastpath_main(args, allocators, bench_dir, outdir, header):
    results, failures = run_fastpath(args, allocators, bench_dir, outdir)
    table = fastpath_markdown(results, list(allocators))
    write_file(os.path.join(outdir, "fastpath.json"), dict(header, sizes=FASTPATH_SIZES, results=results,
                                                           failures=failures))
    write_file(os.path.join(outdir, "fastpath.md"), table + "\n")
    print(table)
    print(f"Results: fastpath.json, fastpath.md, callgrind/ in {outdir}")
    return 1 if failures else 0


def main(argv):
    global SUBREAPER
    args = parse_args(argv + shlex.split(os.environ.get("QMALLOC_BENCH_ARGS", "")))
    if args.from_dir:
        with open(os.path.join(args.from_dir, "results.json")) as f:
            doc = json.load(f)
        doc["summary"] = summarise(doc["runs"])  # with the metrics this version knows
        os.makedirs(args.out or args.from_dir, exist_ok=True)
        finish_report(doc, args.out or args.from_dir, args)
        return 0
    bench_dir = find_bench_dir(args)
    allocators, missing = locate_allocators(args, bench_dir)
    if missing:
        note(f"not found, not measured: {', '.join(missing)}. {install_hint(missing)}")
    mode = "-fastpath" if args.fastpath else "-smoke" if args.smoke else ""
    outdir = os.path.abspath(args.out or os.path.join("bench-results",
                                                      datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + mode))
    os.makedirs(outdir, exist_ok=True)
    SUBREAPER = become_subreaper()
    if not SUBREAPER:
        note("cannot become a subreaper: peak RSS includes the runner's own resident set (~20 MiB)")
    header = {"format": 1, "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": machine_info(bench_dir, args.source_dir),
              "config": {"size": args.size, "reps": args.reps, "allocators": allocator_info(allocators),
                         "missing_allocators": missing, "timeout_s": args.timeout,
                         "seed": args.seed if args.seed is not None else "repetition",
                         "bench_dir": bench_dir, "peak_rss_floor": "shell" if SUBREAPER else "runner"}}
    note(f"measuring {', '.join(allocators)}; results in {outdir}")
    if args.fastpath:
        return fastpath_main(args, allocators, bench_dir, outdir, header)

    header["config"]["workloads"], programs = select_workloads(args, bench_dir)
    extra_runs = programs + replay_runs(args, bench_dir)
    plan = plan_suite(args, bench_dir, header["config"]["workloads"], allocators, extra_runs)
    header["config"]["workloads"] += [run["key"] for run in extra_runs]
    header["config"]["programs"] = {run["key"]: {"cmd": run["cmd"], "env": run.get("env", {}),
                                                 **({"sources": run["sources"]} if "sources" in run else {})}
                                    for run in programs}
    records = execute(plan, allocators, args)
    doc = dict(header, finished=datetime.datetime.now().isoformat(timespec="seconds"), runs=records,
               summary=summarise(records), complete=len(records) == len(plan))
    write_file(os.path.join(outdir, "results.json"), doc)
    finish_report(doc, outdir, args)
    failed = [r for r in records if not r["ok"]]
    if failed:
        note(f"{len(failed)} of {len(records)} runs failed (see 'Failed runs' in results.md)")
    if missing:
        note(f"not measured (not installed): {', '.join(missing)}. {install_hint(missing)}")
    return 1 if failed or len(records) < len(plan) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
