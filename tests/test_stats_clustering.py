"""The design effect: clustered exceedances widen the bounds, independent ones do not."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_lambda_slo._stats.binomial import judge_rate
from pytest_lambda_slo._stats.clustering import (
    clustered_design_effect,
    design_effect,
    dispersion_line,
    merge_batches,
)

LEVELS = {"limit": 0.01, "pass_confidence": 0.95, "fail_confidence": 0.99}


def _one_slow_period(total_m: int) -> list[tuple[int, int]]:
    """30 seconds of 100 requests; every exceedance in seconds 10 and 11."""
    return [(100, total_m // 2 if i in (10, 11) else 0) for i in range(30)]


@pytest.mark.parametrize(("total_m", "iid_state"), [(14, "pass"), (50, "fail")])
def test_one_slow_period_is_not_decided_where_the_iid_bound_would_be(
    total_m: int, iid_state: str
) -> None:
    batches = _one_slow_period(total_m)
    n = sum(b for b, _ in batches)
    d = clustered_design_effect(batches)
    assert d > 5
    iid = judge_rate(n, total_m, **LEVELS)
    corrected = judge_rate(n, total_m, design_effect=d, **LEVELS)
    assert iid.state == iid_state
    assert corrected.state == "inconclusive"
    assert corrected.upper > iid.upper and corrected.lower < iid.lower


def test_independent_requests_give_a_design_effect_near_one() -> None:
    rng = np.random.default_rng(5)
    effects = [
        design_effect([(200, int(m)) for m in rng.binomial(200, 0.02, size=30)]) for _ in range(400)
    ]
    assert 0.9 < float(np.mean(effects)) < 1.1
    # uneven batch sizes too: the weighting keeps its expectation at 1
    sizes = rng.integers(50, 400, size=30)
    effects = [
        design_effect([(int(s), int(rng.binomial(s, 0.02))) for s in sizes]) for _ in range(400)
    ]
    assert 0.9 < float(np.mean(effects)) < 1.1


def test_design_effect_definition_on_known_counts() -> None:
    # p = 0.1; shares 0 and 0.2 of 10 each: sum n_i (p_i - p)^2 = 0.2, over K-1 = 1,
    # divided by p(1-p) = 0.09
    assert design_effect([(10, 0), (10, 2)]) == pytest.approx(0.2 / 0.09)
    assert design_effect([(10, 0), (10, 0)]) == 1.0  # no exceedance: nothing to measure
    assert design_effect([(10, 1)]) == 1.0  # one batch
    assert design_effect([(0, 0), (10, 1)]) == 1.0  # empty batches are skipped
    assert clustered_design_effect([(100, 1)] * 30) == 1.0  # floored at 1


def test_merge_batches_keeps_totals_and_neighbours() -> None:
    intervals = [(i + 1, i % 3) for i in range(95)]
    merged = merge_batches(intervals)
    assert len(merged) == 30
    assert sum(n for n, _ in merged) == sum(n for n, _ in intervals)
    assert sum(m for _, m in merged) == sum(m for _, m in intervals)
    assert merged[0] == (1 + 2 + 3, 0 + 1 + 2)  # intervals 0..2, in order
    assert merge_batches(intervals[:7]) == [(float(n), float(m)) for n, m in intervals[:7]]


def test_chance_scatter_of_independent_requests_does_not_widen_the_bounds() -> None:
    # Three or four seconds of independent requests (a short run): the raw estimate is above
    # 1 in about half the runs, and flooring it at 1 would widen their bounds on average;
    # the dispersion test lets through only the 5% a chance scatter exceeds.
    rng = np.random.default_rng(11)
    raw, used = [], []
    for _ in range(2000):
        batches = [(1400, int(m)) for m in rng.binomial(1400, 0.006, size=int(rng.integers(3, 5)))]
        raw.append(design_effect(batches))
        used.append(clustered_design_effect(batches))
    assert 0.35 < float(np.mean(np.array(raw) > 1.0)) < 0.65
    assert float(np.mean(np.maximum(raw, 1.0))) > 1.15  # what flooring alone would cost
    widened = float(np.mean(np.array(used) > 1.0))
    assert 0.02 < widened < 0.08  # the dispersion test's 5%, within sampling error
    # and where it applies, d is the estimate itself, not a shrunken one
    assert all(u == r for u, r in zip(used, raw, strict=True) if u > 1.0)


def test_dispersion_line_is_the_chi_squared_point() -> None:
    # 30 batches: d above 42.557 / 29 is what independent batches give 5 times in 100.
    assert dispersion_line(30) == pytest.approx(42.5570 / 29, rel=1e-4)
    # Spread 1.37 times the binomial one: within what 30 independent batches give.
    mild = [(100, 1)] * 10 + [(100, 3)] * 10 + [(100, 5)] * 5 + [(100, 0)] * 5
    assert 1.0 < design_effect(mild) < dispersion_line(30)
    assert clustered_design_effect(mild) == 1.0
    # Every slow request in five of the thirty seconds: far above it, d applies in full.
    clustered = [(100, 0)] * 25 + [(100, 6)] * 5
    assert clustered_design_effect(clustered) == design_effect(clustered) > 5
