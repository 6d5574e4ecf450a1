"""Where the engine's CPU goes per request: a steady burst profiled with py-spy, by category.

One emulator process on loopback, the engine in its own process (benchmarks/
bench_engine_child.py, a plain ``run(target, Burst(...))``), e.g. 200,000 requests at 500 in flight:

1. a plain run (no profiler): the engine's CPU per request during the load (``getrusage``
   around the ``run`` call, connection set-up included, as in benchmarks/harness.py);
2. the same run under ``py-spy record --native -f raw`` (Python and native frames: uvloop,
   libuv, httptools, libc; a thread inside a system call is sampled with the call's libc
   wrapper as its leaf, so kernel time shows under the call that spent it).

3. the same run under ``perf record -e cpu-clock -g --clockid CLOCK_MONOTONIC`` (when perf
   is installed): on-CPU samples only, kernel stacks included, cut to the ``run``
   call's window; it splits the CPU into kernel time per system call and user time per
   library, and it measures what py-spy cannot: the CPU spent inside ``epoll_wait``.

py-spy samples wall-clock time: a thread inside a system call is sampled whether it runs,
sleeps in ``epoll_pwait`` or waits for a core (measured here: on a shared machine its
samples add up to several times the CPU the run used). So the split is made in two steps:

- perf (on-CPU samples) splits the engine's CPU into kernel time per system call (write,
  read, epoll_wait, other), other kernel time and user-space time;
- the user-space time is split by py-spy's samples whose leaf is not a system call
  (the load phase only: stacks under ``run_on_own_loop``), each put in one category by its
  leaf-most recognised frame (the rules in ``CATEGORIES``).

A row's share of the CPU times the plain run's CPU per request gives its microseconds per
request. The profilers slow the run down; the shares are read from them, the
microseconds from the plain run. Without perf (``--no-perf``) only the py-spy split of
the user-space samples is shown.

    python benchmarks/profile_engine.py [--requests 200000] [--concurrency 500]
        [--function fixed|zero] [--rate 250] [--no-perf] [--json bench-results/profile.json]
    python benchmarks/profile_engine.py --render bench-results/profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
ENGINE_CHILD = HERE / "bench_engine_child.py"
FUNCTIONS = {"fixed": "duration=50ms,idle=1h", "zero": "duration=0,idle=1h"}
LOAD_PHASE = "run_on_own_loop"

# (category, pattern on the frame's function name; libc frames are "name [libc]").
# A sample goes to the category of its leaf-most frame that matches a pattern.
CATEGORIES: list[tuple[str, str]] = [
    ("connection set-up (dial, before the release)",
     r"^(Dialer\.\w+|Engine\.connect|resolve|create_connection|getaddrinfo)$"),
    ("run set-up and tear-down (Engine init, closing connections, imports)",
     r"^(Engine\.__init__|Engine\._close_connections|new_event_loop|_find_and_load)$"),
    ("clock: perf_counter_ns (request start and end)", r"^time_perf_counter_ns$"),
    ("saturation watch (LagSampler)", r"^LagSampler\."),
    ("timers: call_later, TimerHandle cancel, handle close",
     r"(call_later|TimerHandle|UVTimer|uv_timer_\w+|uv__run_timers|heap_\w+|_on_timeout"
     r"|uv__run_closing_handles|loop___uv_close_handle_cb|UVHandle__close|uv_close)"),
    ("recording: Measurements.record, Histogram.record",
     r"^(Measurements|Histogram|HdrHistogram)\.\w+$"),
    ("classification: classify", r"\.classify$"),
    ("writes: transport.write (uvloop, libuv, write syscall)",
     r"^(UVStream_write|UVStream__\w*write\w*|uv__write\w*|uv_try_write|write \[libc\]"
     r"|writev \[libc\]|send \[libc\])$"),
    ("reads: socket read (libuv, read syscall)",
     r"^(read \[libc\]|recv \[libc\]|uv__read|loop___uv_stream_on_read\w*"
     r"|loop___loop_alloc_buffer)$"),
    ("parser callbacks: httptools feed_data, on_* callbacks",
     r"^(HttpConnection\.(data_received|on_\w+|_complete)|feed_data|llhttp\w*|parser_cb_\w+"
     r"|HttpParser\w*|should_keep_alive|get_status_code)$"),
    ("per-request objects: Result, Response, Headers, Outcome",
     r"^(Result|Response|Headers|Outcome)\.\w+$|^HttpConnection\._response$"),
    ("futures and tasks: create_future, set_result, task steps",
     r"(create_future|Loop__new_future|^future_\w+|_asyncio_Future\w*|FutureObj\w*|FutureIter\w*"
     r"|^task_\w+|TaskStepMethWrapper\w*"
     r"|^HttpConnection\._finish$|^call_soon$|Loop__call_soon\w*|loop_new_Handle|loop_Handle)"),
    ("engine Python: send_one, _exchange, _record, _claim, send",
     r"^(Engine\.\w+|HttpConnection\.send|HttpConnection\.\w+)$"),
    ("event loop: epoll, libuv, uvloop callbacks",
     r"(epoll\w* \[libc\]|^uv_run$|^uv__io_poll$|^uv__stream_io$|^uv__run_idle$|^Loop__\w+"
     r"|^Handle__run$|^loop_cb_idle_callback$|^run_forever$|^run_until_complete$)"),
]  # fmt: skip
OTHER = "other"
# py-spy samples wall-clock time: a thread inside a system call is sampled whether it runs,
# sleeps (epoll_pwait) or waits for a core (preempted, common on a shared machine). Samples
# whose leaf is a libc system-call wrapper are set apart; perf gives the kernel's real CPU.
SYSCALL_LEAVES = frozenset(
    f"{name} [libc]"
    for name in ("write", "writev", "send", "sendto", "sendmsg", "read", "readv", "recv",
                 "recvfrom", "recvmsg", "epoll_pwait", "epoll_wait", "close", "connect",
                 "socket", "setsockopt", "getsockopt", "syscall", "__libc_write", "__libc_read")
)  # fmt: skip
# A collection runs inside whatever allocation triggered it: it wins over every rule.
GC = ("garbage collector (cyclic GC passes)", "gc_collect_main")
_RULES = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<where>[^()]*)\)$")


def frame_name(frame: str) -> str:
    """A py-spy frame's function name; native library frames become "name [libc]" etc."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    name, where = match.group("name"), match.group("where")
    if where.startswith("libc.so"):
        return f"{name} [libc]"
    return name


def categorise(frames: list[str]) -> tuple[str, str]:
    """The category of one stack (root first) and the frame that decided it.

    The leaf-most frame that a rule knows decides.
    """
    if any(GC[1] in frame for frame in frames):
        return GC[0], GC[1]
    for frame in reversed(frames):
        name = frame_name(frame)
        for category, rule in _RULES:
            if rule.search(name):
                return category, name
    return OTHER, frame_name(frames[-1]) if frames else "?"


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw output: one 'frame;frame;...;frame COUNT' line per distinct stack."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def attribute(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    """Samples of the load phase by category; the rest (start-up, unknown) counted apart."""
    by_category: Counter[str] = Counter()
    deciding: dict[str, Counter[str]] = {}
    in_syscalls: Counter[str] = Counter()
    outside = 0
    for frames, count in stacks:
        names = [frame_name(f) for f in frames]
        if LOAD_PHASE not in names:
            outside += count  # imports, interpreter start and exit, or no Python frames
            continue
        load = frames[names.index(LOAD_PHASE) :]
        leaf = frame_name(load[-1])
        if leaf in SYSCALL_LEAVES:
            in_syscalls[leaf] += count
            continue
        category, frame = categorise(load)
        by_category[category] += count
        deciding.setdefault(category, Counter())[frame] += count
    return {
        "load_samples": sum(by_category.values()),
        "outside_samples": outside,
        "syscall_samples": dict(in_syscalls.most_common()),
        "categories": dict(by_category.most_common()),
        # Per category, the frames that decided its samples (the leaf of 'other' ones).
        "deciding_frames": {k: dict(v.most_common(6)) for k, v in deciding.items()},
    }


# perf: kernel time by the system call it ran under, user time by the library it ran in.
# The syscall's entry frame: x64_sys_call inlines __x64_sys_*, so ksys_write and the like
# are often the first named frame.
_SYSCALL = re.compile(r"^(?:__(?:x64|ia32|arm64)_sys_|__do_sys_|__se_sys_|ksys_|__sys_|do_)(\w+)$")
_SYSCALL_GROUPS = {
    "write": "kernel: write (loopback TCP send, waking the emulator)",
    "writev": "kernel: write (loopback TCP send, waking the emulator)",
    "sendto": "kernel: write (loopback TCP send, waking the emulator)",
    "sendmsg": "kernel: write (loopback TCP send, waking the emulator)",
    "read": "kernel: read (TCP receive)",
    "readv": "kernel: read (TCP receive)",
    "recvfrom": "kernel: read (TCP receive)",
    "recvmsg": "kernel: read (TCP receive)",
    "epoll_wait": "kernel: epoll_wait",
    "epoll_pwait": "kernel: epoll_wait",
    "epoll_pwait2": "kernel: epoll_wait",
}
_LIBRARIES = [
    (re.compile(r"libpython|/python3[.\d]*$"), "user: Python interpreter (engine Python code)"),
    (re.compile(r"_asyncio"), "user: asyncio C module (futures, tasks)"),
    (re.compile(r"uvloop/loop\."), "user: uvloop and libuv"),
    (re.compile(r"httptools/"), "user: httptools (llhttp and its callbacks' glue)"),
    (re.compile(r"_ctypes"), "user: ctypes (hdrh's counts array)"),
    (re.compile(r"libc\.so|libm\.so"), "user: libc (malloc, memcpy, ...)"),
]


def perf_category(frames: list[tuple[str, str]]) -> str:
    """One perf sample (leaf first, (symbol, dso)): kernel by system call, user by library."""
    if not frames:
        return "unknown"
    dso = frames[0][1]
    if "kernel" in dso:
        for frame_sym, frame_dso in frames:
            if "kernel" not in frame_dso:
                break
            match = _SYSCALL.match(frame_sym)
            if match and match.group(1) in _SYSCALL_GROUPS:
                return _SYSCALL_GROUPS[match.group(1)]
            if frame_sym in ("do_syscall_64", "entry_SYSCALL_64_after_hwframe"):
                return "kernel: other system calls"
        return "kernel: page faults, interrupts, scheduling"
    for pattern, category in _LIBRARIES:
        if pattern.search(dso):
            return category
    return "user: other"


def read_perf_script(text: str, start_ns: int, end_ns: int) -> Counter[str]:
    """Categories of the ``perf script`` samples whose time lies in [start_ns, end_ns]."""
    found: Counter[str] = Counter()
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        # The sample's first line: "[comm pid] TIME:" (-F time alone gives "TIME:").
        head = re.search(r"(?:^|\s)(\d+\.\d+):", lines[0])
        if head is None:
            continue
        t_ns = round(float(head.group(1)) * 1e9)
        if not start_ns <= t_ns <= end_ns:
            continue
        frames = []
        for line in lines[1:]:
            match = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
            if match:
                frames.append((match.group(1).split("+0x")[0], match.group(2)))
        found[perf_category(frames)] += 1
    return found


def perf_profile(url: str, n: int, c: int, perf: str) -> dict[str, Any]:
    """The burst under perf (on-CPU samples, kernel stacks), cut to the run call window."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        prefix = [perf, "record", "-e", "cpu-clock", "-F", "999", "-g", "--clockid"]
        prefix += ["CLOCK_MONOTONIC", "-o", str(data), "--"]
        run = engine_run(url, n, c, prefix)
        script = subprocess.run(
            [perf, "script", "-i", str(data), "-F", "time,ip,sym,dso"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    categories = read_perf_script(script.stdout, run["call_start_ns"], run["call_end_ns"])
    return {
        "run": _brief(run, n),
        "samples": sum(categories.values()),
        "categories": dict(categories.most_common()),
    }


def engine_run(url: str, n: int, c: int, prefix: list[str]) -> dict[str, Any]:
    cmd = [*prefix, sys.executable, str(ENGINE_CHILD), "--url", url, "-n", str(n), "-c", str(c)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"engine run failed ({done.returncode}): {tail}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def profile(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_lambda_slo.emulator import Emulator

    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy not found: install it with 'pip install py-spy'")
    n, c = args.requests, args.concurrency
    spec = f"{args.function}:{FUNCTIONS[args.function]}"
    with Emulator([spec], account_concurrency=10_000, seed=5) as emu:
        url = emu.function_url(args.function)
        print(f"warm-up: {c} environments", file=sys.stderr)
        engine_run(url, 2 * c, c, [])
        print(f"plain run: {n:,} requests, {c} in flight", file=sys.stderr)
        load0 = os.getloadavg()
        plain = engine_run(url, n, c, [])
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "profile.txt"
            spy = [py_spy, "record", "--native", "-r", str(args.rate), "-f", "raw"]
            spy += ["-o", str(raw), "--"]
            print(f"profiled run: py-spy at {args.rate} Hz", file=sys.stderr)
            profiled = engine_run(url, n, c, spy)
            stacks = read_raw(raw)
            if args.keep_raw:
                shutil.copy(raw, args.keep_raw)
        perf = shutil.which("perf") if args.perf else None
        perf_result = None
        if perf:
            print("profiled run: perf record -e cpu-clock", file=sys.stderr)
            perf_result = perf_profile(url, n, c, perf)
        load1 = os.getloadavg()
    for run in (plain, profiled):
        if run["requests"] != n or run["ok"] != n:
            raise SystemExit(f"a run did not complete cleanly: {run['requests']} requests, "
                             f"{run['ok']} ok of {n}")  # fmt: skip
    import uvloop

    version = subprocess.run([py_spy, "--version"], capture_output=True, text=True).stdout
    return {
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "kernel": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "uvloop": uvloop.__version__,
            "py_spy": version.strip(),
            "load_average_start": load0,
            "load_average_end": load1,
        },
        "code": _git_commit(),
        "function": spec,
        "requests": n,
        "concurrency": c,
        "rate_hz": args.rate,
        "plain": _brief(plain, n),
        "profiled": _brief(profiled, n),
        "samples": attribute(stacks),
        "perf": perf_result,
    }


def _brief(run: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "cpu_us_per_req": run["run_cpu_s"] / n * 1e6,
        "run_cpu_s": run["run_cpu_s"],
        "run_wall_s": run["run_wall_s"],
        "rps": n / run["run_wall_s"],
        "p99_ms": run["p99_ms"],
        "loop_lag_max_ms": run["loop_lag_max_ms"],
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(HERE.parent), "status", "--porcelain", "pytest_lambda_slo"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip() + (" (package modified)" if dirty else "")


def markdown(result: dict[str, Any]) -> str:
    m, plain, profiled = result["machine"], result["plain"], result["profiled"]
    samples, perf = result["samples"], result.get("perf")
    user_samples = samples["load_samples"]
    us = plain["cpu_us_per_req"]
    rate = result["rate_hz"]
    in_syscalls = sum(samples.get("syscall_samples", {}).values())
    kernel: dict[str, float] = {}
    user_share = 1.0
    if perf and perf["samples"]:
        shares = {k: v / perf["samples"] for k, v in perf["categories"].items()}
        kernel = {k: v for k, v in shares.items() if k.startswith("kernel")}
        user_share = 1.0 - sum(kernel.values())
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['kernel']}, Python {m['python']}, "
        f"uvloop {m['uvloop']}, {m['py_spy']}. Code: git {result['code']}. Load average "
        f"(1 min) {m['load_average_start'][0]:.1f} at the start, "
        f"{m['load_average_end'][0]:.1f} at the end.",
        "",
        f"Burst: {result['requests']:,} requests, {result['concurrency']} in flight, emulator "
        f"function `{result['function']}`. Plain run: **{us:.1f} us of CPU per request** "
        f"({plain['rps']:,.0f} req/s, loop lag max {plain['loop_lag_max_ms']:.0f} ms). "
        f"py-spy run ({rate} Hz, {profiled['cpu_us_per_req']:.1f} us/request): "
        f"{user_samples:,} user-space samples in the load phase, {in_syscalls:,} inside system "
        f"calls set apart (wall-clock samples: {(user_samples + in_syscalls) / rate:.1f} s "
        f"against {profiled['run_cpu_s']:.1f} s of CPU), {samples['outside_samples']:,} "
        "outside the load phase.",
    ]
    if perf and perf["samples"]:
        run = perf["run"]
        lines += [
            f"perf run (`perf record -e cpu-clock -F 999 -g`, on-CPU samples of the run call "
            f"call): {run['cpu_us_per_req']:.1f} us/request, {perf['samples']:,} samples, "
            f"{user_share:.1%} of them in user space.",
        ]
    lines += [
        "",
        "| where the engine's CPU goes | share of CPU | us/request | py-spy samples "
        "| deciding frames (samples) |",
        "|---|---|---|---|---|",
    ]
    deciding = samples.get("deciding_frames", {})
    for category, count in samples["categories"].items():
        share = count / user_samples * user_share if user_samples else 0.0
        frames = ", ".join(f"`{k}` {v}" for k, v in list(deciding.get(category, {}).items())[:3])
        lines.append(f"| {category} | {share:.1%} | {share * us:.1f} | {count:,} | {frames} |")
    for category, share in kernel.items():
        lines.append(f"| {category} (perf) | {share:.1%} | {share * us:.1f} | - | |")
    lines.append(f"| total | 100% | {us:.1f} | {user_samples:,} | |")
    if perf and perf["samples"]:
        lines += [
            "",
            "| perf: kernel / user split | samples | share | us/request |",
            "|---|---|---|---|",
        ]
        for category, count in perf["categories"].items():
            share = count / perf["samples"]
            lines.append(f"| {category} | {count:,} | {share:.1%} | {share * us:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--function", choices=sorted(FUNCTIONS), default="fixed")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--json", default=str(HERE.parent / "bench-results" / "profile.json"))
    parser.add_argument("--keep-raw", help="also keep py-spy's raw stacks in this file")
    parser.add_argument(
        "--no-perf", dest="perf", action="store_false", help="skip the perf run (kernel split)"
    )
    parser.add_argument("--render", help="only print the table of a saved JSON result")
    args = parser.parse_args(argv)
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())), end="")
        return 0
    if args.requests < args.concurrency or args.concurrency < 1:
        parser.error(
            f"--requests {args.requests} --concurrency {args.concurrency}: use "
            "1 <= concurrency <= requests"
        )
    t0 = time.perf_counter()
    result = profile(args)
    result["wall_s"] = time.perf_counter() - t0
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result), end="")
    print(f"JSON: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
