"""Runs with known values for the report tests: Measurements, results files, timeseries.

The timeseries block is built as the recorder's JSON form describes it (per-interval
counts and one encoded HDR histogram per interval), so the report code is tested on the
documented form whether or not the recorder on this branch writes it yet.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from hdrh.histogram import HdrHistogram

from pytest_lambda_slo._report import hdr
from pytest_lambda_slo._report.terminal import write_json
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo._results.result import BurstResult

HIGHEST_US = 31_000_000


def latencies(seed: int, n: int, median_ms: float = 40.0, sigma: float = 0.35) -> list[int]:
    """``n`` lognormal latencies in microseconds, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [max(1, int(rng.lognormvariate(0, sigma) * median_ms * 1000)) for _ in range(n)]


def measurements(
    values_us: list[int], *, cold_every: int = 0, throttle_every: int = 0, error_every: int = 0
) -> Measurements:
    """Measurements holding ``values_us``; every n-th request cold, throttled or failed."""
    m = Measurements(HIGHEST_US)
    for i, value in enumerate(values_us, 1):
        if throttle_every and i % throttle_every == 0:
            m.record(Outcome("throttle", value * 1000, status=429, throttle_reason="concurrency"))
        elif error_every and i % error_every == 0:
            m.record(Outcome("error", value * 1000, status=502, error_kind="http_5xx"))
        else:
            cold = bool(cold_every) and i % cold_every == 0
            m.record(Outcome("ok", value * 1000, status=200, cold=cold))
    return m


def timeseries(
    start_epoch_s: float, per_interval_us: list[list[int]], interval_s: float = 1.0
) -> dict[str, Any]:
    """A timeseries block whose interval ``i`` served ``per_interval_us[i]``."""
    hists = []
    for values in per_interval_us:
        h = HdrHistogram(1, HIGHEST_US, 3)
        for v in values:
            h.record_value(v)
        hists.append(h)

    def pct(h: HdrHistogram, q: float) -> float | None:
        return h.get_value_at_percentile(q) / 1000 if h.get_total_count() else None

    n = len(per_interval_us)
    return {
        "interval_s": interval_s,
        "start_epoch_s": start_epoch_s,
        "t_s": [i * interval_s for i in range(n)],
        "sent": [len(v) + 1 for v in per_interval_us],
        "ok": [len(v) for v in per_interval_us],
        "throttled": [1] * n,
        "errors": [0] * n,
        "cold_starts": [1 if i == 0 else 0 for i in range(n)],
        "in_flight_max": [min(len(v), 10) for v in per_interval_us],
        "error_kinds": {"timeout": [0] * n},
        "p50_ms": [pct(h, 50) for h in hists],
        "p90_ms": [pct(h, 90) for h in hists],
        "p99_ms": [pct(h, 99) for h in hists],
        "max_ms": [h.get_max_value() / 1000 if h.get_total_count() else None for h in hists],
        "histograms": [h.encode().decode("ascii") for h in hists],
    }


def result(
    m: Measurements,
    *,
    target: str = "GET http://127.0.0.1:1/url/fast/",
    started_at: float = 1_764_625_000.0,
    duration_s: float = 4.0,
    shape: dict[str, Any] | None = None,
    cold: bool = True,
) -> BurstResult:
    return BurstResult(
        measurements=m,
        run={
            "started_at": started_at,
            "duration_s": duration_s,
            "concurrency": 10,
            "saturated": False,
        },
        target=target,
        target_info={"kind": "http", "method": "GET", "url": target.split(" ", 1)[-1]},
        shape=shape or {"kind": "burst", "requests": 1000, "concurrency": 10, "workers": 1},
        cold_start_detection=cold,
    )


def write(
    path: str,
    records: list[tuple[str, BurstResult]],
    timeseries_blocks: dict[int, dict[str, Any]] | None = None,
) -> str:
    """Write ``records`` as --lambda-slo-json does, adding timeseries blocks by run index."""
    write_json(path, records)
    if timeseries_blocks:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        for index, block in timeseries_blocks.items():
            data["bursts"][index]["timeseries"] = block
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
    return path


# Four load tests on the shared emulator's functions (tests/conftest.py): a cold-starting
# fast function, a slower one at a constant rate, a throttling one, and a ramp.
SESSION_TESTS = """
import os
import pytest
from pytest_lambda_slo import HttpTarget

FAST = HttpTarget(os.environ["FAST_URL"], cold_start="x-cold-start")

@pytest.mark.lambda_slo(p99="100ms", p50="70ms")
def test_slow_at_a_constant_rate(lambda_slo):
    lambda_slo.rate(os.environ["SLOW_URL"], rps=40, duration="4s")

@pytest.mark.lambda_slo(p99="250ms", cold_start_p99="500ms", error_rate="1%")
def test_fast_burst(lambda_slo):
    lambda_slo.burst(FAST, requests=300, concurrency=12)

@pytest.mark.lambda_slo(throttle_rate="5%")
def test_tight_reserved_concurrency(lambda_slo):
    lambda_slo.burst(os.environ["TIGHT_URL"], requests=120, concurrency=3)

def test_fast_ramp(lambda_slo):
    result = lambda_slo.ramp(FAST, users=6, spawn_rate=6, duration="2s", think_time="20ms")
    result.check(p99="1s")
"""


def timeseries_like(run: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """A timeseries block consistent with a run: its served requests spread over seconds.

    For runs written before the recorder kept per-interval data: the per-interval counts add
    up to the run's, and the interval histograms add up to its served histogram.
    """
    rng = random.Random(seed)
    hists = run["measurements"]["histograms"]
    whole = hdr.add_all([hists["all"]["hdr"]])
    throttled = hdr.add_all([(hists.get("throttled") or {}).get("hdr")])
    values = [
        low
        for low, _high, count in hdr.buckets(hdr.difference(whole, throttled))
        for _ in range(count)
    ]
    rng.shuffle(values)
    n = max(1, math.ceil(float(run.get("duration_s") or 1.0)))
    per_interval = [values[i::n] for i in range(n)]
    block = timeseries(float(run["run"].get("started_at", 0.0)), per_interval)
    block["throttled"] = [
        run["throttles"] // n + (1 if i < run["throttles"] % n else 0) for i in range(n)
    ]
    block["sent"] = [ok + th for ok, th in zip(block["ok"], block["throttled"], strict=True)]
    block["cold_starts"] = [run["cold_starts"] if i == 0 else 0 for i in range(n)]
    return block
