"""Exceedances counted from HdrHistogram bucket edges, both ways."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from pytest_lambda_slo._stats.exceedances import count_exceedances, percentile_tail


def _hdr(values: list[int]) -> HdrHistogram:
    hdr = HdrHistogram(1, 31_000_000, 3)
    for value in values:
        hdr.record_value(value)
    return hdr


def test_a_value_straddling_the_threshold_is_in_m_hi_not_m_lo() -> None:
    hdr = _hdr([100, 5001, 9000])
    # 5001 shares the bucket 5000..5003 (3 significant figures)
    assert hdr.get_lowest_equivalent_value(5001) == 5000
    assert hdr.get_highest_equivalent_value(5001) == 5003
    assert count_exceedances(hdr, 5001) == (3, 1, 2)  # 9000 surely; 5001 maybe
    assert count_exceedances(hdr, 5003) == (3, 1, 1)  # the bucket ends at 5003: not above
    assert count_exceedances(hdr, 4999) == (3, 2, 2)  # the bucket starts above 4999


def test_agrees_with_brute_force_on_bucket_edges() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(11.5, 0.5)) for _ in range(5000)]
    hdr = _hdr(values)
    for threshold in (50_000, 99_999, 100_000, 123_456.7, 250_000, 10**8):
        lo = sum(1 for v in values if hdr.get_lowest_equivalent_value(v) > threshold)
        hi = sum(1 for v in values if hdr.get_highest_equivalent_value(v) > threshold)
        assert count_exceedances(hdr, threshold) == (5000, lo, hi)
        assert lo <= sum(1 for v in values if v > threshold) <= hi


def test_decoded_histogram_and_overflows() -> None:
    hdr = _hdr([10, 20_000, 30_000])
    decoded = HdrHistogram.decode(hdr.encode())
    assert count_exceedances(decoded, 15_000) == count_exceedances(hdr, 15_000)
    assert count_exceedances(hdr, 15_000, overflows=2) == (5, 4, 4)
    assert count_exceedances(HdrHistogram(1, 1000, 3), 5, overflows=1) == (1, 1, 1)


def test_percentile_tail() -> None:
    assert percentile_tail(99) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile_tail(100)
