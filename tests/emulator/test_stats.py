"""The stats series: per-second buckets, gap filling with running concurrency, bounded length."""

from __future__ import annotations

from pytest_lambda_slo.emulator.stats import SERIES_SECONDS, FunctionStats


def series(stats: FunctionStats) -> dict:
    return stats.to_dict(0, 0, {})["timeseries"]


def test_seconds_without_events_keep_the_running_concurrency():
    stats = FunctionStats(t0=100.0, wall0=0.0)
    stats.bucket(100.2, 0)[1] += 1
    bucket = stats.bucket(100.5, 3)
    bucket[4] = max(bucket[4], 3)
    stats.bucket(103.1, 3)[1] += 1  # seconds 1 and 2 had no event, 3 executions running
    out = series(stats)
    assert out["second"] == [0, 1, 2, 3]
    assert out["invocations"] == [1, 0, 0, 1]
    assert out["concurrency_peak"] == [3, 3, 3, 3]


def test_series_length_is_bounded():
    stats = FunctionStats(t0=0.0, wall0=0.0)
    stats.bucket(0.0, 1)
    stats.bucket(SERIES_SECONDS * 3 + 0.5, 1)
    out = series(stats)
    assert len(out["second"]) == SERIES_SECONDS
    assert out["second"][-1] == SERIES_SECONDS * 3
