"""Mean and throughput verdicts from batch means with the t-distribution."""

from __future__ import annotations

import pytest
from scipy import stats

from pytest_lambda_slo._stats.batchmeans import batch_means, batch_rates, judge_mean

LEVELS = {"pass_confidence": 0.95, "fail_confidence": 0.99}


def test_t_interval_and_ramp_up_drop() -> None:
    means = [900.0] + [100.0, 110.0, 90.0, 105.0, 95.0] * 6  # a slow first batch
    judged = judge_mean(means, 120.0, at_most=True, **LEVELS)
    assert judged.dropped_ramp_up and judged.batches == 30
    assert judged.estimate == pytest.approx(100.0)
    sd = stats.tstd(means[1:])
    expected_upper = 100.0 + stats.t.ppf(0.95, 29) * sd / 30**0.5
    assert judged.upper == pytest.approx(expected_upper)
    assert judged.state == "pass"
    kept = judge_mean(means, 120.0, at_most=True, drop_ramp_up=False, **LEVELS)
    assert kept.state != "pass"  # the ramp-up batch kept: its 900 ms decides otherwise


def test_each_state_both_directions() -> None:
    values = [100.0, 104.0, 96.0, 102.0, 98.0, 100.0]
    assert judge_mean(values, 90.0, at_most=True, **LEVELS).state == "fail"
    assert judge_mean(values, 100.0, at_most=True, **LEVELS).state == "inconclusive"
    assert judge_mean(values, 90.0, at_most=False, **LEVELS).state == "pass"  # min_rps 90
    assert judge_mean(values, 110.0, at_most=False, **LEVELS).state == "fail"
    assert judge_mean([100.0], 200.0, at_most=True, **LEVELS).state == "inconclusive"
    assert judge_mean([], 200.0, at_most=True, **LEVELS).estimate is None


def test_batch_helpers() -> None:
    assert batch_means([(2, 20.0), (0, 0.0), (4, 80.0)]) == [10.0, 20.0]
    # three full seconds and a last half second: its rate is not halved
    assert batch_rates([10, 10, 10, 5], 1.0, 3.5) == [10.0, 10.0, 10.0, 10.0]
    assert batch_rates([10, 10, 1], 1.0, 2.05) == [10.0, 10.0]  # a sliver is dropped
    assert len(batch_rates([10] * 90, 1.0, 90.0)) == 30
