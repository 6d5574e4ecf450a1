"""One engine burst in its own process (for benchmarks/harness.py): JSON result on stdout."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

# The harness may point at a snapshot of the package (--rev) instead of the working tree.
sys.path.insert(0, os.environ.get("BENCH_CODE") or str(Path(__file__).resolve().parent.parent))


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def _engine() -> tuple[str, Any]:
    """The engine of whichever layout the package on sys.path has, and its name.

    ``run(target, Burst(...))`` (public, since the layered restructure),
    ``pytest_lambda_slo._load.engine.run_burst`` (the modules moved into private packages)
    or ``pytest_lambda_slo.engine.run_burst`` (the first, flat layout): the same revision
    comparison can span all three.
    """
    import pytest_lambda_slo

    if hasattr(pytest_lambda_slo, "Burst"):
        return "run", pytest_lambda_slo.run
    try:
        from pytest_lambda_slo._load.engine import run_burst
    except ImportError:
        from pytest_lambda_slo.engine import run_burst  # type: ignore[no-redef]
    return "run_burst", run_burst


def run(url: str, requests: int, concurrency: int, workers: int) -> dict[str, Any]:
    import pytest_lambda_slo

    api, engine = _engine()
    kwargs: dict[str, Any] = {}
    if workers != 1:
        if api == "run_burst" and "workers" not in inspect.signature(engine).parameters:
            raise SystemExit("run_burst() has no workers= parameter yet")
        kwargs["workers"] = workers
    target = pytest_lambda_slo.HttpTarget(url)
    cpu0 = _self_cpu()
    t0 = time.perf_counter()
    # CLOCK_MONOTONIC on Linux: a profiler's samples can be cut to this window.
    call_start_ns = time.perf_counter_ns()
    if api == "run":
        shape = pytest_lambda_slo.Burst(requests=requests, concurrency=concurrency, timeout=30.0)
        result = engine(target, shape, **kwargs)
        measurements, info = result.measurements, dict(result.run)
    else:
        measurements, run_info = engine(
            target, requests=requests, concurrency=concurrency, timeout=30.0, **kwargs
        )
        info = run_info.to_dict()
    call_end_ns = time.perf_counter_ns()
    wall = time.perf_counter() - t0
    # Our own and (for workers=N) the reaped worker processes' CPU around the run call.
    cpu = _self_cpu() - cpu0
    hist = measurements.hist("all")
    connect = measurements.hist("connect")
    return {
        "requests": measurements.count,
        "ok": measurements.ok,
        "errors": dict(measurements.error_kinds or {}),
        "status_codes": {str(k): v for k, v in (measurements.status_codes or {}).items()},
        "run_cpu_s": cpu,
        "engine_cpu_s": info["cpu_s"],
        "run_wall_s": info["duration_s"],
        "call_wall_s": wall,
        "call_start_ns": call_start_ns,
        "call_end_ns": call_end_ns,
        "p50_ms": (hist.percentile_us(50) or 0) / 1000,
        "p99_ms": (hist.percentile_us(99) or 0) / 1000,
        "max_ms": (hist.max_us() or 0) / 1000,
        "connects": connect.count,
        "connect_max_ms": (connect.max_us() or 0) / 1000,
        "event_loop": info["event_loop"],
        "loop_lag_max_ms": info["loop_lag_max_ms"],
        "loop_lag_p99_ms": info["loop_lag_p99_ms"],
        "engine_api": api,
        "package": str(Path(pytest_lambda_slo.__file__).parent),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("-c", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.n, args.c, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
