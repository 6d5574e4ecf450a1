"""Choose the engine's HTTP transport by measuring it next to ``hey`` on this machine.

Two measurements, one run, every client against the same loopback server
(benchmarks/delay_server.py, a separate uvloop process):

(a) client CPU microseconds per request (user+sys of the client process / requests),
    20 requests in flight, server answering at once;
(b) latency the client reports at 500 in flight, server answering after exactly 50 ms:
    p50 / p99 / max, and p99 minus hey's p99 (the aim: within 5 ms).

Clients: the engine (asyncio Protocol + httptools, on uvloop and on the default loop),
httpx with one AsyncClient per in-flight slot, aiohttp (one session, if importable; not a
project dependency, install it in a scratch venv to include it), and hey.

    python benchmarks/transport_choice.py [--cpu-requests 20000] [--p99-requests 10000]
                                          [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CLIENTS = ("engine-uvloop", "engine-asyncio", "httpx-per-worker", "aiohttp-uvloop", "hey")
# Clients so slow that repeating them costs minutes: run them --slow-repeat times only.
SLOW_CLIENTS = ("httpx-per-worker",)


# -- children: one client, one run, JSON on stdout ---------------------------------------------


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child_engine(url: str, n: int, c: int) -> dict[str, Any]:
    from pytest_lambda_slo._load.api import run_burst

    cpu0 = _self_cpu()
    measurements, info = run_burst(url, requests=n, concurrency=c, timeout=30)
    cpu = _self_cpu() - cpu0
    hist = measurements.hist("all")
    return {
        "requests": measurements.count,
        "ok": measurements.ok,
        "errors": dict(measurements.error_kinds or {}),
        "cpu_s": cpu,
        "wall_s": info.duration_s,
        "p50_ms": hist.percentile_us(50) / 1000,
        "p99_ms": hist.percentile_us(99) / 1000,
        "max_ms": hist.max_us() / 1000,
        "loop": info.event_loop,
        "loop_lag_max_ms": info.loop_lag_max_ms,
    }


async def _pool_run(n: int, c: int, one: Any, setup: Any, teardown: Any) -> dict[str, Any]:
    """Closed loop of ``c`` workers sharing ``n`` requests; latencies into an HDR histogram."""
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 60_000_000, 3)
    remaining = n
    errors = 0
    clients = [await setup() for _ in range(c)]

    async def worker(client: Any) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter_ns()
            try:
                await one(client)
            except Exception:
                errors += 1
                continue
            hist.record_value(max(1, (time.perf_counter_ns() - t0) // 1000))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    wall = time.perf_counter() - t0
    for client in clients:
        await teardown(client)
    return {
        "requests": n,
        "ok": int(hist.get_total_count()),
        "errors": {"any": errors} if errors else {},
        "wall_s": wall,
        "p50_ms": hist.get_value_at_percentile(50) / 1000,
        "p99_ms": hist.get_value_at_percentile(99) / 1000,
        "max_ms": hist.get_max_value() / 1000,
    }


def _child_httpx(url: str, n: int, c: int) -> dict[str, Any]:
    import httpx
    import uvloop

    async def setup() -> Any:
        return httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=30)

    async def one(client: Any) -> None:
        response = await client.get(url)
        response.raise_for_status()

    async def teardown(client: Any) -> None:
        await client.aclose()

    cpu0 = _self_cpu()
    result = uvloop.run(_pool_run(n, c, one, setup, teardown))
    result["cpu_s"] = _self_cpu() - cpu0
    result["loop"] = "uvloop"
    return result


def _child_aiohttp(url: str, n: int, c: int) -> dict[str, Any]:
    import aiohttp
    import uvloop

    async def main() -> dict[str, Any]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=c), timeout=aiohttp.ClientTimeout(total=30)
        )

        async def setup() -> Any:
            return session

        async def one(client: Any) -> None:
            async with client.get(url) as response:
                await response.read()
                response.raise_for_status()

        async def teardown(client: Any) -> None:
            if not client.closed:
                await client.close()

        return await _pool_run(n, c, one, setup, teardown)

    cpu0 = _self_cpu()
    result = uvloop.run(main())
    result["cpu_s"] = _self_cpu() - cpu0
    result["loop"] = "uvloop"
    return result


def _child_main(args: argparse.Namespace) -> int:
    if args.child == "engine-asyncio":
        os.environ["LAMBDA_SLO_EVENT_LOOP"] = "asyncio"
    runner = {
        "engine-uvloop": _child_engine,
        "engine-asyncio": _child_engine,
        "httpx-per-worker": _child_httpx,
        "aiohttp-uvloop": _child_aiohttp,
    }[args.child]
    print(json.dumps(runner(args.url, args.n, args.c)))
    return 0


# -- the parent: server, clients, table ------------------------------------------------------------


def _hey(url: str, n: int, c: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        ["hey", "-n", str(n), "-c", str(c), "-t", "30", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()

    def seconds(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else float("nan")

    codes = {int(k): int(v) for k, v in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    return {
        "requests": sum(codes.values()),
        "ok": codes.get(200, 0),
        "errors": {} if "Error distribution" not in out else {"see hey output": 1},
        # hey is a Go binary: its whole-process CPU (start-up is a few ms).
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": seconds(r"Total:\s+([\d.]+) secs"),
        "p50_ms": seconds(r"50%+ in ([\d.]+) secs") * 1000,
        "p99_ms": seconds(r"99%+ in ([\d.]+) secs") * 1000,
        "max_ms": seconds(r"Slowest:\s+([\d.]+) secs") * 1000,
        "loop": "go",
    }


def _run_client(name: str, url: str, n: int, c: int) -> dict[str, Any]:
    if name == "hey":
        return _hey(url, n, c)
    cmd = [sys.executable, __file__, "--child", name, "--url", url, "-n", str(n), "-c", str(c)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available(name: str) -> bool:
    if name == "hey":
        return shutil.which("hey") is not None
    if name == "aiohttp-uvloop":
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            return False
    return True


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _server_cpu(pid: int) -> float:
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except Exception:
        return float("nan")


def _measure(
    clients: list[str], url: str, n: int, c: int, repeat: int, slow_repeat: int, server_pid: int
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    for round_ in range(repeat):
        for name in clients:  # interleaved, so drift on the machine hits every client alike
            if name in SLOW_CLIENTS and round_ >= slow_repeat:
                continue
            s0 = _server_cpu(server_pid)
            result = _run_client(name, url, n, c)
            result["server_cpu_s"] = _server_cpu(server_pid) - s0
            runs[name].append(result)
            print(f"  {name:17} n={n} c={c}: {json.dumps(result)}", file=sys.stderr)
    return runs


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("-n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("-c", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu-requests", type=int, default=20000)
    parser.add_argument("--cpu-concurrency", type=int, default=20)
    parser.add_argument("--p99-requests", type=int, default=10000)
    parser.add_argument("--p99-concurrency", type=int, default=500)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow-repeat", type=int, default=1)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--json", help="also write the raw runs to this file")
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)

    clients = [name for name in args.clients.split(",") if name]
    skipped = [name for name in clients if not _available(name)]
    clients = [name for name in clients if name not in skipped]
    server = subprocess.Popen(
        [sys.executable, str(HERE / "delay_server.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        print(f"machine: {_machine()}", file=sys.stderr)
        cpu_runs = _measure(
            clients,
            f"{base}/d/0",
            args.cpu_requests,
            args.cpu_concurrency,
            args.repeat,
            args.slow_repeat,
            server.pid,
        )
        lat_runs = _measure(
            clients,
            f"{base}/d/{args.delay_ms}",
            args.p99_requests,
            args.p99_concurrency,
            args.repeat,
            args.slow_repeat,
            server.pid,
        )
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()

    machine = _machine()
    lines = [
        f"Machine: {machine}. Server: benchmarks/delay_server.py (uvloop, separate process).",
        f"Median of {args.repeat} interleaved runs per client "
        f"({', '.join(SLOW_CLIENTS)}: {min(args.repeat, args.slow_repeat)} run).",
        "",
        f"(a) CPU per request: {args.cpu_requests} requests, {args.cpu_concurrency} in flight, "
        "immediate answer",
        "",
        "| client | CPU us/request | x hey | requests/s | server CPU % |",
        "|---|---|---|---|---|",
    ]
    hey_cpu = None
    if "hey" in cpu_runs:
        hey_cpu = _median(cpu_runs["hey"], "cpu_s") / args.cpu_requests * 1e6
    for name, runs in cpu_runs.items():
        cpu_us = _median(runs, "cpu_s") / args.cpu_requests * 1e6
        wall = _median(runs, "wall_s")
        server_pct = _median(runs, "server_cpu_s") / wall * 100 if wall else float("nan")
        ratio = f"{cpu_us / hey_cpu:.2f}" if hey_cpu else "-"
        rps = args.cpu_requests / wall if wall else float("nan")
        lines.append(f"| {name} | {cpu_us:.1f} | {ratio} | {rps:,.0f} | {server_pct:.0f} |")
    lines += [
        "",
        f"(b) Reported latency: {args.p99_requests} requests, {args.p99_concurrency} in flight, "
        f"server answers after {args.delay_ms} ms",
        "",
        "| client | p50 ms | p99 ms | max ms | p99 - hey p99 (ms) | errors | server CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    hey_p99 = _median(lat_runs["hey"], "p99_ms") if "hey" in lat_runs else None
    for name, runs in lat_runs.items():
        p99 = _median(runs, "p99_ms")
        delta = f"{p99 - hey_p99:+.1f}" if hey_p99 is not None else "-"
        errors = sum(sum(r["errors"].values()) for r in runs)
        wall = _median(runs, "wall_s")
        server_pct = _median(runs, "server_cpu_s") / wall * 100 if wall else float("nan")
        lines.append(
            f"| {name} | {_median(runs, 'p50_ms'):.1f} | {p99:.1f} | "
            f"{_median(runs, 'max_ms'):.1f} | {delta} | {errors} | {server_pct:.0f} |"
        )
    if skipped:
        lines += ["", f"Skipped (not installed): {', '.join(skipped)}"]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "cpu": cpu_runs, "latency": lat_runs}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
