"""Run one load generator (engine, hey, Locust) once and return its figures (benchmarks/harness.py).

Every tool runs as a child process; its CPU is the child's user+sys from ``os.wait4``
(which includes the child's own reaped children, e.g. engine workers). Tools that can,
also report the CPU of their load phase alone (imports and start-up excluded).
"""

from __future__ import annotations

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

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "bench_locustfile.py"
ENGINE_CHILD = HERE / "bench_engine_child.py"

INSTALL_HINTS = {
    "hey": "hey not found: install it with 'apt-get install hey' (Debian/Ubuntu)",
    "locust": "locust not found: install it with 'pip install locust'",
}


def missing_tool(tool: str) -> str | None:
    """Why ``tool`` cannot run here (with how to install it), or None when it can."""
    if tool.startswith("engine"):
        return None
    if shutil.which(tool) is None:
        return INSTALL_HINTS[tool]
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


def run_engine(url: str, n: int, c: int, workers: int = 1) -> dict[str, Any]:
    cmd = [sys.executable, str(ENGINE_CHILD), "--url", url, "-n", str(n), "-c", str(c)]
    cmd += ["--workers", str(workers)]
    code, out, err, wall, cpu = _spawn_and_reap(cmd, None, 300)
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
