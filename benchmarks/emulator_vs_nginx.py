"""Requests per second: the emulator's Function URL path vs nginx serving a static 200 (hey)."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pytest_lambda_slo.emulator import Emulator

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "hello"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User plus system CPU time of the processes."""
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def hey(url: str, requests: int, concurrency: int) -> tuple[float, dict[str, int]]:
    out = subprocess.run(
        ["hey", "-n", str(requests), "-c", str(concurrency), url],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"hey printed no Requests/sec: {out[-300:]!r}")
    rps = float(match.group(1))
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return rps, {k: int(v) for k, v in codes.items()}


async def hold_connections(
    port: int, path: str, count: int, rss: Callable[[], int]
) -> tuple[int, int]:
    """Open ``count`` keep-alive connections, one request each; RSS while open and after."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    streams = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        streams.append(writer)
        writer.write(request)
        await reader.readuntil(b"hello")

    try:
        for start in range(0, count, 500):  # batches stay under the listen backlog
            await asyncio.gather(*(one() for _ in range(min(500, count - start))))
        while_open = rss()
    finally:
        for writer in streams:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in streams), return_exceptions=True)
    await asyncio.sleep(1.0)
    return while_open, rss()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20000, help="requests per run. Default: 20000")
    parser.add_argument("-c", type=int, default=100, help="hey concurrency. Default: 100")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds. Default: 3")
    parser.add_argument(
        "--nginx-workers", default="auto", help="nginx worker_processes. Default: auto"
    )
    parser.add_argument(
        "--connections", type=int, default=10000, help="open connections held. Default: 10000"
    )
    args = parser.parse_args()
    for tool in ("hey", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print("load average before: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"hey -n {args.n} -c {args.c}; nginx worker_processes {args.nginx_workers}")
    with tempfile.TemporaryDirectory() as prefix:
        port = free_port()
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, workers=args.nginx_workers))
        nginx = subprocess.Popen(
            [nginx_bin, "-p", prefix, "-c", str(conf)], stderr=subprocess.DEVNULL
        )
        try:
            wait_listening(port)
            with Emulator(["fast:duration=0,init=0"]) as emu:
                nginx_url = f"http://127.0.0.1:{port}/"
                emu_url = emu.function_url("fast")
                hey(nginx_url, 2000, args.c)  # warm-up both
                hey(emu_url, 2000, args.c)
                emu.reset()
                proc = psutil.Process(emu.pid)
                rss = lambda: proc.memory_info().rss  # noqa: E731
                rss_start = rss()
                nginx_procs = [psutil.Process(nginx.pid), *psutil.Process(nginx.pid).children()]
                nginx_cpu = emu_cpu = 0.0
                nginx_rps: list[float] = []
                emu_rps: list[float] = []
                emu_codes: dict[str, int] = {}
                for _ in range(args.rounds):
                    before = cpu_seconds(nginx_procs)
                    nginx_rps.append(hey(nginx_url, args.n, args.c)[0])
                    nginx_cpu += cpu_seconds(nginx_procs) - before
                    before = cpu_seconds([proc])
                    rps, codes = hey(emu_url, args.n, args.c)
                    emu_cpu += cpu_seconds([proc]) - before
                    emu_rps.append(rps)
                    for code, count in codes.items():
                        emu_codes[code] = emu_codes.get(code, 0) + count
                rss_after_hey = rss()
                stats = emu.function_stats("fast")
                # Twice: the second round shows memory is reused, not grown.
                held = [
                    asyncio.run(hold_connections(emu.port, "/url/fast/", args.connections, rss))
                    for _ in range(2)
                ]
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
    best_nginx, best_emu = max(nginx_rps), max(emu_rps)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"nginx rps per round:    {', '.join(f'{x:.0f}' for x in nginx_rps)}")
    print(f"emulator rps per round: {', '.join(f'{x:.0f}' for x in emu_rps)}")
    print(
        f"median nginx {median(nginx_rps):.0f} rps, emulator {median(emu_rps):.0f} rps, "
        f"ratio {median(emu_rps) / median(nginx_rps):.2f}"
    )
    ratios = [e / n for e, n in zip(emu_rps, nginx_rps, strict=True)]
    print(f"per-round ratios: {', '.join(f'{r:.2f}' for r in ratios)}; median {median(ratios):.2f}")
    print(
        f"best   nginx {best_nginx:.0f} rps, emulator {best_emu:.0f} rps, "
        f"ratio {best_emu / best_nginx:.2f}"
    )
    total = args.rounds * args.n
    print(
        f"server CPU per request: nginx {nginx_cpu / total * 1e6:.1f} us, "
        f"emulator {emu_cpu / total * 1e6:.1f} us"
    )
    latency = stats["histograms"]["latency"]
    print(f"emulator status codes (hey): {emu_codes}; stats responses: {stats['responses']}")
    print(f"emulator server-side latency p50 {latency['p50']} us, p99 {latency['p99']} us")
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    mb = 1024 * 1024
    print(
        f"emulator RSS: {rss_start / mb:.1f} MB after warm-up, {rss_after_hey / mb:.1f} MB after "
        f"{args.rounds * args.n} more requests"
    )
    for i, (held_open, after_close) in enumerate(held, 1):
        print(
            f"emulator RSS, round {i}: {held_open / mb:.1f} MB with {args.connections} "
            f"connections open, {after_close / mb:.1f} MB after they closed"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
