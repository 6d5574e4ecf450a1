"""Figures behind docs/fanout.md that can be measured on one machine.

1. The generator zip: size zipped and unzipped, with and without botocore, build time.
2. One shard's result: the JSON size of a Measurements that recorded N requests over a
   14-minute run (Lambda's synchronous response limit is 6 MB).
3. Dispatch: how long N synchronous invokes take to leave a thread pool through the
   plugin's shard client (retries off), as DryRun invokes against the emulator on loopback
   (no handler runs: what is timed is the caller's side).

    python benchmarks/fanout_figures.py [--requests 1000000] [--dispatch 100 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_lambda_slo._fanout.config import LambdaFanout
from pytest_lambda_slo._fanout.deploy import invoke_client
from pytest_lambda_slo._fanout.package import build_package
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo.emulator import Emulator


def zip_figures() -> list[dict[str, Any]]:
    rows = []
    for bundle in (True, False):
        started = time.perf_counter()
        package = build_package(LambdaFanout(1, bundle_botocore=bundle))
        rows.append(
            {
                "bundle_botocore": bundle,
                "zipped_bytes": package.size,
                "unzipped_bytes": package.unzipped_bytes,
                "build_s": round(time.perf_counter() - started, 2),
                "sources": {d.name: d.source for d in package.distributions if d.compiled},
            }
        )
    return rows


def result_size(requests: int, seconds: float = 840.0) -> dict[str, Any]:
    rng = random.Random(7)
    measurements = Measurements(highest_us=60_000_000)
    start = time.perf_counter_ns()
    measurements.mark_release(start, time.time())
    step = int(seconds * 1e9 / requests)
    for i in range(requests):
        latency_ns = int(rng.lognormvariate(3.9, 0.5) * 1e6)  # median ~50 ms
        kind = "throttle" if i % 997 == 0 else "ok"
        measurements.record(
            Outcome(
                kind,
                latency_ns,
                status=429 if kind == "throttle" else 200,
                cold=i < 900,
                done_ns=start + i * step,
                in_flight=900,
            )
        )
    text = json.dumps(measurements.to_dict())
    return {"requests": requests, "run_s": seconds, "json_bytes": len(text)}


def dispatch(shards: int) -> dict[str, Any]:
    with Emulator(functions=["gen:duration=0ms"], max_handler_processes=8) as emu:
        client = invoke_client(LambdaFanout(shards, endpoint_url=emu.url, timeout="1m"))
        client.invoke(FunctionName="gen", InvocationType="DryRun", Payload=b"{}")  # connect

        def one(_: int) -> float:
            client.invoke(FunctionName="gen", InvocationType="DryRun", Payload=b"{}")
            return time.perf_counter()

        with ThreadPoolExecutor(max_workers=shards) as pool:
            started = time.perf_counter()
            done = list(pool.map(one, range(shards)))
        return {"shards": shards, "all_answered_s": round(max(done) - started, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--dispatch", type=int, nargs="*", default=[100, 1000])
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")  # the emulator does not check them
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "zip": zip_figures(),
        "result": result_size(args.requests),
        "dispatch": [dispatch(n) for n in args.dispatch],
    }
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
