"""Peak memory of a 10,000-request burst vs a 1,000,000-request rate run (each a fresh process).

The engine keeps no per-request list (HDR histograms and counters only), so the peak RSS of
a run should not grow with its request count. Both runs go against the emulator (a function
with duration=0, in its own process) with the same number of connections, so what differs
is only how many requests passed through.

    python benchmarks/memory.py                       # 10,000 burst vs 1,000,000 at 7,500/s
    python benchmarks/memory.py --rate-requests 100000 --rps 5000   # a quicker look

Prints one line per run and the ratio; --json PATH writes the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One run in this (fresh) process; print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from pytest_lambda_slo._load.api import run_burst, run_rate

    baseline = _peak_rss_mb()  # after imports, before any load
    t0 = time.perf_counter()
    if args.child == "burst":
        measurements, info = run_burst(
            args.url, requests=args.burst_requests, concurrency=args.connections, timeout=30
        )
    else:
        duration = args.rate_requests / args.rps
        measurements, info = run_rate(
            args.url,
            rps=args.rps,
            duration=duration,
            timeout=30,
            max_in_flight=args.connections,
            connections=args.connections,
        )
    wall = time.perf_counter() - t0
    hist = measurements.hist("all")
    print(
        json.dumps(
            {
                "shape": args.child,
                "requests": measurements.count,
                "ok": measurements.ok,
                "errors": dict(measurements.error_kinds),
                "late_starts": measurements.late_starts,
                "unsent": measurements.unsent,
                "p99_ms": (hist.percentile_us(99) or 0) / 1000,
                "wall_s": round(wall, 2),
                "achieved_rps": info.achieved_rps,
                "connections": info.connections,
                "cpu_s": round(info.cpu_s, 2),
                "loop_lag_p99_ms": info.loop_lag_p99_ms,
                "rss_baseline_mb": round(baseline, 1),
                "rss_peak_mb": round(_peak_rss_mb(), 1),
            }
        ),
        flush=True,
    )


def run_child(kind: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--url",
        url,
        "--burst-requests",
        str(args.burst_requests),
        "--rate-requests",
        str(args.rate_requests),
        "--rps",
        str(args.rps),
        "--connections",
        str(args.connections),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst-requests", type=int, default=10_000)
    parser.add_argument("--rate-requests", type=int, default=1_000_000)
    parser.add_argument("--rps", type=float, default=7500.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--json", default=None, help="write the figures to this path")
    parser.add_argument("--child", choices=("burst", "rate"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path.insert(0, str(ROOT))
    from pytest_lambda_slo.emulator import Emulator

    with Emulator(["zero:duration=0"]) as emu:
        url = emu.function_url("zero")
        burst = run_child("burst", url, args)
        print("burst", json.dumps(burst), flush=True)
        rate = run_child("rate", url, args)
        print("rate ", json.dumps(rate), flush=True)
    ratio = rate["rss_peak_mb"] / burst["rss_peak_mb"]
    print(
        f"peak RSS: burst of {burst['requests']:,} = {burst['rss_peak_mb']:.1f} MB, "
        f"rate run of {rate['requests']:,} = {rate['rss_peak_mb']:.1f} MB, "
        f"ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": f"{platform.processor() or platform.machine()}, "
                    f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
                    "burst": burst,
                    "rate": rate,
                    "ratio": ratio,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
