"""Clopper-Pearson bounds, the rate verdict, the samples needed and their sentences."""

from __future__ import annotations

import pytest
from scipy import stats

from pytest_lambda_slo._stats.binomial import (
    judge_rate,
    lower_bound,
    n_min_to_pass,
    n_to_decide_observed,
    percentile_decide_n,
    upper_bound,
)
from pytest_lambda_slo._stats.levels import split_levels
from pytest_lambda_slo._stats.wording import needed_sentence, observed_sentence
from pytest_lambda_slo.errors import ConfigError


@pytest.mark.parametrize(("q", "expected"), [(50, 5), (90, 29), (95, 59), (99, 299), (99.9, 2995)])
def test_n_min_table(q: float, expected: int) -> None:
    assert n_min_to_pass(1 - q / 100, 0.95) == expected
    # and it is the boundary: one request fewer cannot pass even with no exceedance
    assert upper_bound(0, expected, 0.95) < 1 - q / 100 <= upper_bound(0, expected - 1, 0.95)


@pytest.mark.parametrize(("m", "n"), [(0, 10), (1, 20), (3, 300), (17, 1000), (299, 300)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_bounds_agree_with_scipy_binomtest_exact(m: int, n: int, confidence: float) -> None:
    upper = stats.binomtest(m, n, alternative="less").proportion_ci(confidence, method="exact")
    lower = stats.binomtest(m, n, alternative="greater").proportion_ci(confidence, method="exact")
    assert upper_bound(m, n, confidence) == pytest.approx(upper.high, rel=1e-9, abs=1e-12)
    assert lower_bound(m, n, confidence) == pytest.approx(lower.low, rel=1e-9, abs=1e-12)


def test_bound_edges() -> None:
    assert upper_bound(5, 5, 0.95) == 1.0
    assert lower_bound(0, 5, 0.99) == 0.0
    assert upper_bound(0, 0, 0.95) == 1.0 and lower_bound(0, 0, 0.99) == 0.0


def test_each_state() -> None:
    common = {"limit": 0.01, "pass_confidence": 0.95, "fail_confidence": 0.99}
    passed = judge_rate(1000, 2, 3, **common)
    assert passed.state == "pass" and passed.upper < 0.01 and passed.needed_n is None
    failed = judge_rate(1000, 30, 31, **common)
    assert failed.state == "fail" and failed.lower > 0.01
    unsure = judge_rate(1000, 9, 11, **common)
    assert unsure.state == "inconclusive" and unsure.lower <= 0.01 <= unsure.upper
    assert unsure.estimate == pytest.approx(0.01)
    assert unsure.needed_n is None  # the observed shares straddle the limit: no n decides


def test_p99_under_299_requests_never_passes_and_says_how_many() -> None:
    for n in (20, 100, 298):
        judged = judge_rate(n, 0, limit=0.01, pass_confidence=0.95, fail_confidence=0.99)
        assert judged.state == "inconclusive"
        assert judged.n_min == 299 and judged.needed_n == 299
    assert judge_rate(299, 0, limit=0.01, pass_confidence=0.95, fail_confidence=0.99).state == (
        "pass"
    )


def test_zero_requests_never_pass() -> None:
    for limit in (0.0, 0.01, 0.5, 0.99):
        judged = judge_rate(0, 0, limit=limit, pass_confidence=0.95, fail_confidence=0.99)
        assert judged.state == "inconclusive" and judged.estimate is None


def test_zero_limit_can_never_pass_but_can_fail() -> None:
    never = judge_rate(10_000, 0, limit=0.0, pass_confidence=0.95, fail_confidence=0.99)
    assert never.state == "inconclusive" and never.n_min is None and never.needed_n is None
    broken = judge_rate(100, 1, limit=0.0, pass_confidence=0.95, fail_confidence=0.99)
    assert broken.state == "fail"


def test_needed_n_observed_decides_at_that_n_and_not_one_before() -> None:
    needed = n_to_decide_observed(0.005, 0.005, 0.01, 0.95, 0.99)
    assert needed is not None
    assert upper_bound(0.005 * needed, needed, 0.95) < 0.01
    assert upper_bound(0.005 * (needed - 1), needed - 1, 0.95) >= 0.01
    over = n_to_decide_observed(0.02, 0.02, 0.01, 0.95, 0.99)
    assert over is not None
    assert lower_bound(0.02 * over, over, 0.99) > 0.01
    assert lower_bound(0.02 * (over - 1), over - 1, 0.99) <= 0.01


def test_design_effect_widens_and_scales_needed_n() -> None:
    iid = judge_rate(3000, 15, limit=0.01, pass_confidence=0.95, fail_confidence=0.99)
    wide = judge_rate(
        3000, 15, limit=0.01, pass_confidence=0.95, fail_confidence=0.99, design_effect=8.0
    )
    assert iid.state == "pass" and wide.state == "inconclusive"
    assert wide.upper > iid.upper and wide.lower < iid.lower
    assert wide.needed_n is not None and wide.needed_n > 3000


def test_percentile_decide_n_matches_the_method_sheet() -> None:
    # the sheet: about 3,700 on the PASS side, 2,950 on the FAIL side (p99, sigma 0.5, 95%)
    assert percentile_decide_n(99, side="pass", confidence=0.95) == pytest.approx(3700, rel=0.02)
    assert percentile_decide_n(99, side="fail", confidence=0.95) == pytest.approx(2950, rel=0.02)
    # more confidence or a rarer tail needs more
    assert percentile_decide_n(99, side="fail", confidence=0.99) > 2950
    assert percentile_decide_n(90, side="pass", confidence=0.95) < 3700


def test_sentences() -> None:
    text = needed_sentence(
        "p99",
        n_min=299,
        pass_confidence=0.95,
        decide_n=percentile_decide_n(99, side="pass", confidence=0.95),
        decide_what="a p99 10% from its budget",
    )
    assert text == (
        "p99 needs at least 299 requests to pass at 95%; about 3,700 to decide a p99 10% "
        "from its budget"
    )
    judged = judge_rate(300, 1, 2, limit=0.01, pass_confidence=0.95, fail_confidence=0.99)
    sentence = observed_sentence("p99", judged)
    assert sentence.startswith("p99 needs at least 299 requests to pass at 95%; about ")
    assert "if the observed 0.5% held" in sentence
    assert needed_sentence("error_rate", n_min=None, pass_confidence=0.95) == (
        "error_rate can never pass at 95% (its limit is 0)"
    )


def test_bonferroni_split() -> None:
    one = split_levels(1)
    assert one.fail_alpha == pytest.approx(0.01) and one.pass_alpha == pytest.approx(0.05)
    five = split_levels(5)
    assert five.fail_alpha == pytest.approx(0.002) and five.pass_alpha == pytest.approx(0.05)
    assert five.fail_confidence == pytest.approx(0.998)
    assert split_levels(4, 0.9, 0.95).fail_alpha == pytest.approx(0.0125)
    # K budgets at a/K: a good deploy fails with probability at most a
    assert 1 - (1 - five.fail_alpha) ** 5 <= 0.01


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "high", None])
def test_bad_confidence_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_levels(1, pass_confidence=bad)  # type: ignore[arg-type]


def test_bad_budget_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="whole number >= 1"):
        split_levels(0)
