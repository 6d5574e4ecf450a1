"""The anytime-valid sequential test: its verdicts and, by seeded simulation, its error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_lambda_slo._stats.sequential import SequentialTest, log_mixture

TB = 0.01
WAVE = 100
N_MAX = 5000
RUNS = 2000


def _simulate(theta: float, seed: int) -> dict[str, int]:
    """RUNS bursts of binomial waves at share ``theta``; how each ended."""
    rng = np.random.default_rng(seed)
    cumulative = rng.binomial(WAVE, theta, size=(RUNS, N_MAX // WAVE)).cumsum(axis=1)
    ended = {"pass": 0, "fail": 0, "inconclusive": 0}
    for row in cumulative:
        test = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=N_MAX)
        step = "continue"
        for wave, m in enumerate(row, start=1):
            step = test.update(wave * WAVE, int(m))
            if step != "continue":
                break
        assert step != "continue"  # n_max always ends it
        ended[step] += 1
    return ended


@pytest.mark.parametrize(
    ("factor", "seed", "max_false_fail", "max_false_pass"),
    [
        (0.9, 11, 0.01, None),  # under the budget: a FAIL is false
        (1.0, 12, 0.01, 0.05),  # at the budget: both guarantees hold (share <= and >= tb)
        (1.1, 13, None, 0.01),  # over the budget: a PASS is false
    ],
)
def test_error_rates_by_simulation(
    factor: float, seed: int, max_false_fail: float | None, max_false_pass: float | None
) -> None:
    ended = _simulate(TB * factor, seed)
    assert sum(ended.values()) == RUNS
    if max_false_fail is not None:
        assert ended["fail"] / RUNS <= max_false_fail, ended
    if max_false_pass is not None:
        assert ended["pass"] / RUNS <= max_false_pass, ended


def test_far_from_the_limit_it_stops_early() -> None:
    far_over = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=N_MAX)
    assert far_over.update(100, 5) == "continue"
    assert far_over.update(200, 12) == "fail"  # 6% against 1%: decided long before n_max
    assert far_over.update(300, 12) == "fail"  # and it keeps its verdict
    clean = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=20_000)
    steps = [clean.update(n, 0) for n in range(500, 20_001, 500)]
    assert "pass" in steps and steps.index("pass") < len(steps) - 1


def test_fallback_at_n_max_uses_clopper_pearson_at_the_final_share() -> None:
    test = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=1000)
    assert test.update(1000, 10) == "inconclusive"
    test = SequentialTest(0.5, pass_confidence=0.95, fail_confidence=0.99, n_max=10)
    assert test.update(10, 0) == "pass"  # 0 of 10 against 50%: upper bound 0.41 at 99.5%


def test_percentile_counts_each_side_least_favourably() -> None:
    lo_only = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=10**6)
    lo_only.update(1000, 5, 30)
    assert lo_only.log_e_fail == pytest.approx(log_mixture(1000, 5, TB, lo_only.fail_grid))
    assert lo_only.log_e_pass == pytest.approx(log_mixture(1000, 30, TB, lo_only.pass_grid))


def test_design_effect_only_makes_it_more_cautious() -> None:
    iid = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=10**6)
    clustered = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=10**6)
    assert iid.update(1000, 40) == "fail"
    assert clustered.update(1000, 40, design_effect=6.0) == "continue"
    assert clustered.log_e_fail < iid.log_e_fail


def test_large_limits_keep_valid_alternatives_and_bad_input_is_refused() -> None:
    half = SequentialTest(0.5, pass_confidence=0.95, fail_confidence=0.99, n_max=100)
    assert all(r * 0.5 < 1 for r in half.fail_grid)
    assert math.isfinite(log_mixture(100, 90, 0.5, half.fail_grid))
    with pytest.raises(ValueError, match="cumulative"):
        half.update(50, 60)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        SequentialTest(0.0, pass_confidence=0.95, fail_confidence=0.99, n_max=10)
