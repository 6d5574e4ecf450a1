"""Cost of Measurements.record per call: before and after ttfb, the slowest-by-id and labels.

"Before" is the recorder as it was at ``--before`` (default: the last commit before the
time to first byte, the slowest requests and the labels), read from git and run from its
source; "after" is the working tree's. Both record the same latencies in the same process,
interleaved over several rounds; the best round of each (process CPU time) is printed in
microseconds per call. "After" records outcomes as the engine hands them over: with the
time to first byte and the response (a lean one, its raw head bytes kept), so requests
entering the slowest heap have their ids parsed from those bytes. Also prints how many
requests had their ids read, and the cost of a labelled request.

    python benchmarks/recorder_hot_path.py [--calls 200000] [--rounds 5] [--before REV]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_lambda_slo._http.response import Headers, Response  # noqa: E402
from pytest_lambda_slo._results import recorder as after  # noqa: E402

BEFORE_REV = "98e6424"  # main before ttfb, slowest requests by id and labels


def _load_before(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:pytest_lambda_slo/_results/recorder.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("recorder_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "recorder_before.py", "exec"), module.__dict__)
    return module


_NO_HEADERS = Headers([])


class _Counting(Response):
    """A lean response whose ids parse is counted (how many requests entered the heap)."""

    __slots__ = ()
    parsed = 0

    def request_ids(self) -> dict[str, str]:
        _Counting.parsed += 1
        return super().request_ids()


def _head(i: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nDate: Wed, 02 Dec 2026 03:39:02 GMT\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
        b"x-amzn-requestid: 7da2a4c2-295f-46df-8f02-%012x\r\n"
        b"x-amzn-trace-id: Root=1-6b0f942e-463491b3b138%012x;Sampled=0\r\n\r\nhello" % (i, i)
    )


def _outcomes(module: types.ModuleType, calls: int, span_s: float, labels: int = 0) -> list[Any]:
    rng = random.Random(1)
    start = time.perf_counter_ns()
    out = []
    for i in range(calls):
        latency = int(rng.lognormvariate(18.4, 0.5))
        kwargs: dict[str, Any] = {
            "status": 200,
            "done_ns": start + int(i / calls * span_s * 1e9),
            "in_flight": i % 30,
        }
        if module is after:
            response = _Counting(200, _NO_HEADERS, b"", 5, first_byte_ns=1, raw_head=[_head(i)])
            kwargs.update(ttfb_ns=latency - 20_000, response=response)
            if labels:
                kwargs["label"] = f"route-{i % labels}"
        out.append(module.Outcome("ok", latency, **kwargs))
    return out


def _time(module: types.ModuleType, outcomes: list[Any]) -> float:
    measurements = module.Measurements(highest_us=31_000_000)
    measurements.mark_release(outcomes[0].done_ns, time.time())
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
    # 200,000 requests over 200 s: 1,000 a second, 200 intervals
    sets = {
        "before": (before, _outcomes(before, args.calls, 200)),
        "after": (after, _outcomes(after, args.calls, 200)),
        "after, 10 labels": (after, _outcomes(after, args.calls, 200, labels=10)),
    }
    best = dict.fromkeys(sets, float("inf"))
    parsed = 0
    for _ in range(args.rounds):
        for name, (module, outcomes) in sets.items():
            _Counting.parsed = 0
            best[name] = min(best[name], _time(module, outcomes))
            if name == "after":
                parsed = _Counting.parsed
    print(f"Measurements.record, best of {args.rounds} rounds of {args.calls:,} calls (measured)")
    for name in sets:
        print(f"  {name:16s} {best[name]:.3f} us/call")
    print(f"  added (ttfb, slowest by id)  {best['after'] - best['before']:.3f} us/call")
    print(f"  added by a label             {best['after, 10 labels'] - best['after']:.3f} us/call")
    print(f"  ids parsed: {parsed:,} of {args.calls:,} requests (those entering the heap)")
    response = _Counting(200, _NO_HEADERS, b"", 5, raw_head=[_head(1)])
    t0 = time.process_time()
    for _ in range(20_000):
        response.request_ids()
    print(f"  one ids parse of a raw head: {(time.process_time() - t0) / 20_000 * 1e6:.2f} us")


if __name__ == "__main__":
    main()
