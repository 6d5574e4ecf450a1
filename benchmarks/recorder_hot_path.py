"""Cost of Measurements.record per call, with the per-interval data and without it.

"Before" is the recorder as it was before the per-interval data (read from git at
``--before``, default the last commit that did not have it); "after" is the working tree's.
Both run in the same process on the same outcomes, interleaved over several rounds, and the
best round of each (process CPU time) is printed in microseconds per call. Also prints the
memory the per-interval data holds for a dense run.

    python benchmarks/recorder_hot_path.py [--calls 200000] [--rounds 5] [--before REV]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import tracemalloc
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_lambda_slo import recorder as after  # noqa: E402

BEFORE_REV = "1ea2a31"  # _stats only: recorder.py still without per-interval data


def _load_before(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:pytest_lambda_slo/recorder.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("recorder_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "recorder_before.py", "exec"), module.__dict__)
    return module


def _outcomes(module: types.ModuleType, calls: int, span_s: float) -> list[object]:
    rng = random.Random(1)
    start = time.perf_counter_ns()
    out = []
    for i in range(calls):
        kwargs = {"status": 200, "cold": i % 100 == 0}
        if module is after:
            kwargs.update(done_ns=start + int(i / calls * span_s * 1e9), in_flight=i % 30)
        latency = int(rng.lognormvariate(18.4, 0.5))
        out.append(module.Outcome("ok", latency, **kwargs))
    return out


def _time(module: types.ModuleType, outcomes: list[object]) -> float:
    measurements = module.Measurements(highest_us=31_000_000)
    record = measurements.record
    t0 = time.process_time()  # CPU time: other processes on the machine do not count
    for outcome in outcomes:
        record(outcome)
    return (time.process_time() - t0) / len(outcomes) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=BEFORE_REV)
    args = parser.parse_args()
    before = _load_before(args.before)
    modules = (("before", before), ("after", after))
    # 200,000 requests over 200 s: 1,000 a second, 200 intervals
    sets = {name: _outcomes(module, args.calls, 200) for name, module in modules}
    best = {"before": float("inf"), "after": float("inf")}
    for _ in range(args.rounds):
        for name, module in modules:
            best[name] = min(best[name], _time(module, sets[name]))
    print(f"Measurements.record, best of {args.rounds} rounds of {args.calls:,} calls (measured)")
    for name in ("before", "after"):
        print(f"  {name:6s} {best[name]:.3f} us/call")
    print(f"  added  {best['after'] - best['before']:.3f} us/call")
    alone = float("inf")
    for _ in range(args.rounds):
        series = after.Timeseries(31_000_000)
        series.start(sets["after"][0].done_ns, 0.0)
        record = series.record
        t0 = time.process_time()
        for outcome in sets["after"]:
            record(outcome)
        alone = min(alone, (time.process_time() - t0) / args.calls * 1e6)
    print(f"  Timeseries.record alone {alone:.3f} us/call")
    # memory of the per-interval data alone, for the same dense run
    tracemalloc.start()
    series = after.Timeseries(31_000_000)
    for outcome in sets["after"]:
        series.record(outcome)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  per-interval data: {len(series)} intervals of {series.interval_s:g}s, "
        f"{current / 1e6:.1f} MB for {args.calls:,} requests (measured)"
    )


if __name__ == "__main__":
    main()
