"""HDR recorder: exact counts, overflow counting, lossless encode/merge."""

from __future__ import annotations

import random

import pytest

from pytest_lambda_slo._results.recorder import Histogram, Measurements, Outcome


def test_overflow_is_counted_not_dropped() -> None:
    histogram = Histogram(highest_us=1_000_000)
    histogram.record(500)
    histogram.record(10**12)
    assert histogram.count == 1
    assert histogram.overflows == 1


def test_buffer_folds_many_distinct_values_exactly() -> None:
    histogram = Histogram(highest_us=10_000_000)
    for value in range(1, 20_001):
        histogram.record(value)
    assert histogram.count == 20_000
    assert histogram.min_us() == 1
    assert abs(histogram.percentile_us(50) - 10_000) <= 10  # 3 significant figures


@pytest.mark.parametrize("seed", range(40))
def test_reads_from_the_buffer_equal_reads_after_the_fold(seed: int) -> None:
    # Counts and percentiles of a histogram nothing was folded into yet are read from its
    # buffer; they must be what hdrh gives once the buffer is folded into it.
    rng = random.Random(seed)
    highest = rng.choice([1000, 60_000, 30_000_000])
    buffered, folded = Histogram(highest), Histogram(highest)
    for _ in range(rng.choice([0, 1, 2, 7, 300])):
        value = int(rng.lognormvariate(rng.uniform(0, 12), rng.uniform(0.1, 2)))
        buffered.record(value)
        folded.record(value)
    folded_total = folded.hdr.get_total_count()  # reading hdr folds the buffer
    assert folded._pending == {}
    for q in (0.0, 1, 50, 90, 99, 99.9, 100.0, 150):
        assert buffered.percentile_us(q) == folded.percentile_us(q), q
    assert buffered.count == folded.count == folded_total
    assert buffered.min_us() == folded.min_us()
    assert buffered.max_us() == folded.max_us()


def test_a_buffered_value_past_the_range_is_an_overflow_on_every_read() -> None:
    histogram = Histogram(highest_us=1000)
    histogram.record(10)
    histogram.record(10**9)
    assert histogram.percentile_us(100.0) == 10  # read after the fold: the overflow apart
    assert (histogram.count, histogram.overflows) == (1, 1)


def test_measurements_round_trip_and_merge() -> None:
    first = Measurements(highest_us=5_000_000)
    for i in range(1000):
        first.record(Outcome("ok", (10_000 + i) * 1000, status=200, cold=i < 10))
    first.record(Outcome("throttle", 2_000_000, status=429, throttle_reason="Reserved"))
    first.record(Outcome("error", None, error_kind="connect_refused"))
    copy = Measurements.from_dict(first.to_dict())
    assert copy.to_dict() == first.to_dict()
    copy.merge(first)
    assert copy.count == 2 * 1002
    assert copy.cold_starts == 20
    assert copy.hist("all").count == 2 * 1001
    assert copy.hist("cold").count == 20
    assert copy.throttle_reasons == {"Reserved": 2}
    assert copy.error_kinds == {"connect_refused": 2}
    assert copy.status_codes == {200: 2000, 429: 2}


def test_server_side_figures_and_billing() -> None:
    measurements = Measurements(highest_us=5_000_000)
    server = {"init": 170.13, "duration": 8.4, "billed": 9.0, "memory": 128.0}
    measurements.record(Outcome("ok", 200_000_000, status=200, cold=True, server=server))
    assert measurements.hist("init").count == 1
    assert abs(measurements.hist("billed").max_us() - 9000) <= 9  # 3 significant figures
    assert measurements.billed_mb_ms == 9.0 * 128.0


def test_measurements_keep_per_interval_data_from_the_release() -> None:
    measurements = Measurements(highest_us=5_000_000)
    measurements.mark_release(1_000_000_000, 1_764_625_000.5)
    measurements.record(Outcome("ok", 10_000_000, status=200, done_ns=1_500_000_000))
    measurements.record(Outcome("error", None, error_kind="timeout", done_ns=2_100_000_000))
    timeseries = measurements.timeseries
    assert timeseries is not None
    assert timeseries.sent == [1, 1] and timeseries.ok == [1, 0]
    assert timeseries.error_kinds == {"timeout": [0, 1]}
    assert measurements.to_dict()["timeseries"]["start_epoch_s"] == 1_764_625_000.5
    plain = Outcome("ok", 1000)
    assert plain.done_ns is None and plain.in_flight == 0  # callers that set neither still work
