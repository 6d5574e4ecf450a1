"""Run one load generator once and return its figures (benchmarks/harness.py).

Tools: the engine, hey, Locust, wrk (one thread, or several), autocannon, and the floor
client (``floor_client.c``, or ``floor_client.py`` without a C compiler). Every tool runs as
a child process; its CPU is the child's user+sys from ``os.wait4`` (which includes the
child's own reaped children, e.g. engine workers). Tools that can, also report the CPU of
their load phase alone (imports and start-up excluded).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "bench_locustfile.py"
ENGINE_CHILD = HERE / "bench_engine_child.py"
AUTOCANNON_CHILD = HERE / "bench_autocannon.js"
FLOOR_C = HERE / "floor_client.c"
FLOOR_PY = HERE / "floor_client.py"

INSTALL_HINTS = {
    "hey": "hey not found: install it with 'apt-get install hey' (Debian/Ubuntu)",
    "locust": "locust not found: install it with 'pip install locust'",
    "wrk": "wrk not found: install it with 'apt-get install wrk' (Debian/Ubuntu)",
    "autocannon": (
        "autocannon not found: install it with 'npm install -g autocannon' (or "
        "'npm install --prefix benchmarks autocannon'; needs node and npm)"
    ),
}
_WRK_TOOL = re.compile(r"^wrk-t([1-9][0-9]*)$")


def wrk_threads(tool: str) -> int | None:
    """The thread count of a wrk tool name ("wrk-t1", "wrk-t2", ...), None for other tools."""
    match = _WRK_TOOL.match(tool)
    return int(match.group(1)) if match else None


def known_tool(tool: str) -> bool:
    fixed = ("engine", "hey", "locust", "autocannon", "floor")
    engine = tool.startswith("engine-w") or tool.startswith("engine@")
    return tool in fixed or engine or wrk_threads(tool) is not None


def missing_tool(tool: str) -> str | None:
    """Why ``tool`` cannot run here (with how to install it), or None when it can."""
    if tool.startswith("engine") or tool == "floor":
        return None  # the floor falls back to its Python version without a C compiler
    if wrk_threads(tool) is not None:
        return INSTALL_HINTS["wrk"] if shutil.which("wrk") is None else None
    if tool == "autocannon":
        return None if _autocannon_node_path() is not None else INSTALL_HINTS["autocannon"]
    if shutil.which(tool) is None:
        return INSTALL_HINTS[tool]
    return None


@functools.lru_cache(maxsize=1)
def _autocannon_node_path() -> str | None:
    """NODE_PATH under which ``require('autocannon')`` works (local prefix, then global)."""
    if shutil.which("node") is None:
        return None
    candidates = [str(HERE / "node_modules")]
    if shutil.which("npm"):
        done = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(done.stdout.strip())
    for path in candidates:
        check = subprocess.run(
            ["node", "-e", "require.resolve('autocannon')"],
            env=dict(os.environ, NODE_PATH=path),
            capture_output=True,
        )
        if check.returncode == 0:
            return path
    return None


def tool_version(tool: str) -> str:
    if tool == "hey":
        # hey has no --version; report the Debian package version when there is one.
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "hey"], capture_output=True, text=True
        )
        return done.stdout.strip() or "unknown"
    if tool == "locust":
        done = subprocess.run(["locust", "--version"], capture_output=True, text=True)
        return done.stdout.split(" from ")[0].replace("locust ", "").strip()
    if tool == "wrk":
        # `wrk --version` prints e.g. "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." (exit 1).
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        words = (done.stdout or done.stderr).split()
        return words[1] if len(words) > 1 else "unknown"
    if tool == "autocannon":
        node_path = _autocannon_node_path()
        script = "console.log(require('autocannon/package.json').version)"
        done = subprocess.run(
            ["node", "-e", script], env=dict(os.environ, NODE_PATH=node_path or ""),
            capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip() or "unknown"
    if tool == "node":
        done = subprocess.run(["node", "--version"], capture_output=True, text=True)
        return done.stdout.strip() or "unknown"
    if tool == "floor":
        return floor_implementation()
    raise ValueError(tool)


def _spawn_and_reap(
    cmd: list[str], env: dict[str, str] | None, timeout_s: float
) -> tuple[int, str, str, float, float]:
    """Run ``cmd``; return (exit code, stdout, stderr, wall seconds, CPU seconds via wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), wall, usage.ru_utime + usage.ru_stime


def run_engine(
    url: str, n: int, c: int, workers: int = 1, code_dir: str | None = None
) -> dict[str, Any]:
    """The engine child on ``url``; ``code_dir``: run the package found there (a snapshot)."""
    cmd = [sys.executable, str(ENGINE_CHILD), "--url", url, "-n", str(n), "-c", str(c)]
    cmd += ["--workers", str(workers)]
    env = None
    if code_dir is not None:
        env = {**os.environ, "BENCH_CODE": code_dir}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_dir, env.get("PYTHONPATH")]))
    code, out, err, wall, cpu = _spawn_and_reap(cmd, env, 300)
    if code != 0:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"engine exited with {code}: {tail}"}
    result = json.loads(out.strip().splitlines()[-1])
    result.update(process_cpu_s=cpu, process_wall_s=wall)
    return result


def _hey_seconds(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def run_hey(url: str, n: int, c: int) -> dict[str, Any]:
    cmd = ["hey", "-n", str(n), "-c", str(c), "-t", "30", url]
    code, out, err, wall, cpu = _spawn_and_reap(cmd, None, 300)
    if code != 0:
        return {"failed": f"hey exited with {code}: {err.strip()[-200:]}"}
    codes = {k: int(v) for k, v in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = (
        re.findall(r"\[(\d+)\]\s+(.+)", out.split("Error distribution:")[1])
        if ("Error distribution:" in out)
        else []
    )
    total = _hey_seconds(r"Total:\s+([\d.]+) secs", out)
    p50 = _hey_seconds(r"50%+ in ([\d.]+) secs", out)
    p99 = _hey_seconds(r"99%+ in ([\d.]+) secs", out)
    slowest = _hey_seconds(r"Slowest:\s+([\d.]+) secs", out)
    return {
        "requests": sum(codes.values()) + sum(int(k) for k, _ in errors),
        "ok": codes.get("200", 0),
        "status_codes": codes,
        "errors": {msg.strip(): int(k) for k, msg in errors},
        # hey is one Go binary: its whole-process CPU is its load CPU (start-up is ~ms).
        "run_cpu_s": cpu,
        "run_wall_s": total,
        "p50_ms": p50 * 1000 if p50 is not None else None,
        "p99_ms": p99 * 1000 if p99 is not None else None,
        "max_ms": slowest * 1000 if slowest is not None else None,
        "process_cpu_s": cpu,
        "process_wall_s": wall,
    }


def run_locust(base_url: str, path: str, n: int, c: int) -> dict[str, Any]:
    per_user = max(1, n // c)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        env = dict(
            os.environ,
            BENCH_PATH=path,
            BENCH_USERS=str(c),
            BENCH_PER_USER=str(per_user),
            BENCH_RESULT=str(result_file),
        )
        # --run-time only as a safety net: the locustfile quits when the last user is done.
        run_time = 60 + per_user * 2
        cmd = [
            "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(c), "-r", str(c),
            "--host", base_url, "--only-summary", "--run-time", f"{run_time}s",
            "--stop-timeout", "5", "--loglevel", "WARNING",
        ]  # fmt: skip
        code, _, err, wall, cpu = _spawn_and_reap(cmd, env, run_time + 60)
        if not result_file.exists():
            tail = (err.strip().splitlines() or ["no output"])[-1]
            return {"failed": f"locust exited with {code} and no result: {tail}"}
        result = json.loads(result_file.read_text())
    failures = result.pop("failures")
    result.update(
        ok=result["requests"] - failures,
        errors={"failures": failures} if failures else {},
        process_cpu_s=cpu,
        process_wall_s=wall,
        per_user=per_user,
    )
    return result


# -- wrk -------------------------------------------------------------------------------------

_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _wrk_ms(text: str) -> float:
    """A wrk time figure ("812.00us", "51.23ms", "1.02s", "2.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk time: {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def wrk_duration_s(n: int, rate_hint: float) -> int:
    """wrk runs for whole seconds: the duration nearest to ``n`` requests at ``rate_hint``/s."""
    return max(1, round(n / rate_hint))


def parse_wrk(out: str) -> dict[str, Any]:
    """The figures of wrk's ``--latency`` report."""
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+", out)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.MULTILINE))
    if summary is None or latency is None:
        raise ValueError("no request summary in wrk's output")
    requests = int(summary.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors: dict[str, int] = {}
    if sockets:
        kinds = ("connect", "read", "write", "timeout")
        for kind, count in zip(kinds, sockets.groups(), strict=True):
            if int(count):
                errors[kind] = int(count)
    if non_2xx:
        errors["non_2xx_3xx"] = int(non_2xx.group(1))
    return {
        "requests": requests,
        "ok": requests - (int(non_2xx.group(1)) if non_2xx else 0),
        "errors": errors,
        # Requests that got no response (wrk does not count them in its requests).
        "socket_errors": sum(v for k, v in errors.items() if k != "non_2xx_3xx"),
        "run_wall_s": _wrk_ms(summary.group(2) + summary.group(3)) / 1000,
        "p50_ms": _wrk_ms(percentiles["50"]) if "50" in percentiles else None,
        "p99_ms": _wrk_ms(percentiles["99"]) if "99" in percentiles else None,
        "max_ms": _wrk_ms(latency.group(3)),
    }


def run_wrk(url: str, c: int, threads: int, duration_s: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{c}", f"-d{duration_s}s", "--timeout", "30s", "--latency"]
    code, out, err, wall, cpu = _spawn_and_reap([*cmd, url], None, duration_s + 120)
    if code != 0:
        return {"failed": f"wrk exited with {code}: {(err or out).strip()[-200:]}"}
    try:
        result = parse_wrk(out)
    except (ValueError, KeyError) as exc:
        return {"failed": f"wrk's output not understood ({exc}): {out.strip()[-200:]}"}
    result.update(
        # A duration tool: the harness divides CPU by the requests it reports.
        duration_based=True,
        duration_s=duration_s,
        threads=threads,
        # wrk is one C binary (LuaJIT start-up is about a millisecond): process = load.
        run_cpu_s=cpu,
        process_cpu_s=cpu,
        process_wall_s=wall,
    )
    return result


# -- autocannon ------------------------------------------------------------------------------


def run_autocannon(url: str, n: int, c: int) -> dict[str, Any]:
    node_path = _autocannon_node_path()
    env = dict(os.environ, NODE_PATH=node_path or "")
    cmd = ["node", str(AUTOCANNON_CHILD), url, str(c), str(n), "30"]
    code, out, err, wall, cpu = _spawn_and_reap(cmd, env, 300)
    if code != 0 or not out.strip():
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"autocannon exited with {code}: {tail}"}
    data = json.loads(out.strip().splitlines()[-1])
    ac = data["result"]
    errors = {k: ac[k] for k in ("errors", "timeouts", "non2xx", "resets") if ac.get(k)}
    latency = ac["latency"]
    return {
        "requests": ac["requests"]["total"],
        "ok": ac["2xx"],
        "status_codes": {k: v["count"] for k, v in (ac.get("statusCodeStats") or {}).items()},
        "errors": errors,
        "run_cpu_s": data["run_cpu_s"],
        # autocannon's own duration ends on its 1 s sampling tick; the call's wall time
        # (connections opened inside it) is the closer clock.
        "run_wall_s": data["call_wall_s"],
        "autocannon_duration_s": ac["duration"],
        # autocannon reports whole milliseconds.
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "process_cpu_s": cpu,
        "process_wall_s": wall,
    }


# -- the floor -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _floor_binary() -> str | None:
    """floor_client.c compiled with cc -O2 into a temporary directory, or None without cc."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    out_dir = tempfile.mkdtemp(prefix="bench-floor-")
    atexit.register(shutil.rmtree, out_dir, True)
    binary = os.path.join(out_dir, "floor_client")
    done = subprocess.run([cc, "-O2", "-o", binary, str(FLOOR_C)], capture_output=True, text=True)
    if done.returncode != 0:
        why = done.stderr.strip()[-300:]
        print(f"floor_client.c did not compile, using Python: {why}", file=sys.stderr)
        return None
    return binary


def floor_implementation() -> str:
    """Which floor client runs here: "C (cc ...)" or "Python selectors"."""
    if _floor_binary() is None:
        return f"Python {sys.version.split()[0]} selectors (no C compiler)"
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang") or "cc"
    done = subprocess.run([cc, "--version"], capture_output=True, text=True)
    first = (done.stdout.splitlines() or ["cc"])[0]
    return f"C, -O2 ({first})"


def run_floor(url: str, n: int, c: int) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    binary = _floor_binary()
    prefix = [binary] if binary else [sys.executable, str(FLOOR_PY)]
    args = [parts.hostname, str(parts.port), parts.path or "/", str(n), str(c), "60"]
    code, out, err, wall, cpu = _spawn_and_reap([*prefix, *args], None, 300)
    if code != 0 or not out.strip():
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"floor client exited with {code}: {tail}"}
    result = json.loads(out.strip().splitlines()[-1])
    errors = result.pop("errors")
    result.update(
        errors={"errors": errors} if errors else {},
        # No timing: the floor's latency columns stay empty.
        p50_ms=None,
        p99_ms=None,
        max_ms=None,
        process_cpu_s=cpu,
        process_wall_s=wall,
    )
    return result
