"""Confidence verdicts on constructed runs: each state of each budget kind, the split over
budgets, clustered slowness, zero requests, the samples needed, the JSON, the policies."""

from __future__ import annotations

import json
import random

import pytest

from pytest_lambda_slo import Emulator
from pytest_lambda_slo._results.budgets import BUDGET_NAMES, BUDGETS, parse_budgets
from pytest_lambda_slo._results.gate import raise_for
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo._results.result import BurstResult
from pytest_lambda_slo._results.sequential import SequentialState, judge_sequential
from pytest_lambda_slo._results.verdict import Verdict, VerdictPolicy, parse_policy
from pytest_lambda_slo._results.verdicts import judge_all, split_of
from pytest_lambda_slo._stats.binomial import judge_rate, lower_bound
from pytest_lambda_slo.errors import (
    ConfigError,
    SLOInconclusive,
    SLOInconclusiveWarning,
    SLOViolation,
)

ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")


def run(
    per_second: list[list[float]],
    *,
    throttles_per_second: int = 0,
    errors: dict[int, int] | None = None,
    cold_per_second: dict[int, int] | None = None,
) -> BurstResult:
    """A run whose second ``i`` completed requests of the latencies ``per_second[i]`` (ms).

    ``errors``/``cold_per_second``: how many of a second's requests failed / were cold.
    """
    m = Measurements(highest_us=60_000_000)
    m.mark_release(0, 1_764_625_000.0)
    errors, cold = errors or {}, cold_per_second or {}
    for second, values in enumerate(per_second):
        k = len(values) + throttles_per_second
        for j, ms in enumerate(values):
            done = int((second + j / max(k, 1)) * 1e9)
            if j < errors.get(second, 0):
                m.record(Outcome("error", int(ms * 1e6), status=502, error_kind="http_5xx",
                                 done_ns=done, cold=False))  # fmt: skip
            else:
                is_cold = j < cold.get(second, 0)
                m.record(Outcome("ok", int(ms * 1e6), status=200, cold=is_cold, done_ns=done))
        for t in range(throttles_per_second):
            done = int((second + (len(values) + t) / k) * 1e9)
            m.record(Outcome("throttle", 1_000_000, status=429, done_ns=done))
    return BurstResult(
        measurements=m,
        run={"duration_s": float(len(per_second))},
        target="GET http://127.0.0.1/",
        cold_start_detection=m.cold_known > 0,
    )


def steady(n_per_second: int, seconds: int, ms: float = 10.0, slow: int = 0) -> BurstResult:
    """``seconds`` seconds of ``n_per_second`` requests at ``ms``; ``slow`` of them 900 ms,
    spread evenly over the seconds."""
    rng = random.Random(7)
    order = sorted(range(n_per_second * seconds), key=lambda _: rng.random())
    slow_ids = set(order[:slow])
    return run(
        [
            [900.0 if s * n_per_second + j in slow_ids else ms for j in range(n_per_second)]
            for s in range(seconds)
        ]
    )


def judge(result: BurstResult, **budgets: object) -> dict[str, Verdict]:
    verdicts = judge_all(result, [(k, v, "check") for k, v in parse_budgets(budgets).items()])
    return {v.budget: v for v in verdicts}


# -- percentile budgets ---------------------------------------------------------------------


def test_a_percentile_passes_fails_and_is_inconclusive_on_its_exceedance_share() -> None:
    ok = judge(steady(100, 10), p99="100ms", throttle_rate="off")["p99"]
    assert ok.state == "pass" and ok.n_min == 299
    assert ok.upper is not None and ok.upper <= 0.1  # the upper bound is within the budget
    assert ok.share is not None and ok.share.upper < 0.01  # ... because the share's is
    broken = judge(steady(100, 10, slow=50), p99="100ms", throttle_rate="off")["p99"]
    assert broken.state == "fail" and broken.lower is not None and broken.lower > 0.1
    assert broken.share is not None and broken.share.lower > 0.01
    unsure = judge(steady(100, 10, slow=10), p99="100ms", throttle_rate="off")["p99"]
    assert unsure.state == "inconclusive"
    assert unsure.needed_n is not None and unsure.needed_n > 1000
    assert unsure.lower is not None and unsure.upper is not None
    assert unsure.lower <= 0.1 < unsure.upper
    assert "p99 needs at least 299 requests to pass at 95%; about 3,700 to decide a p99 10% " \
        "from its budget" in unsure.describe()  # fmt: skip


def test_a_bucket_that_straddles_the_budget_counts_against_each_side() -> None:
    # 100,010 us shares a 64 us bucket with 100,000 us (the budget): maybe slower, maybe
    # not. The PASS side counts it slower, the FAIL side does not: neither can be shown.
    result = run([[100.010] * 400])
    verdict = judge(result, p99="100ms", throttle_rate="off")["p99"]
    assert verdict.state == "inconclusive"
    assert verdict.share is not None
    assert verdict.share.lower == 0.0 and verdict.share.upper == 1.0
    clear = judge(run([[99.9] * 400]), p99="100ms", throttle_rate="off")["p99"]
    assert clear.state == "pass"


@pytest.mark.parametrize("slow", [0, 3, 6, 12, 20, 40])
def test_the_latency_bounds_give_the_same_verdict_as_the_share(slow: int) -> None:
    verdict = judge(steady(100, 10, slow=slow), p99="100ms", throttle_rate="off")["p99"]
    upper_within = verdict.upper is not None and verdict.upper <= 0.1
    lower_over = verdict.lower is not None and verdict.lower > 0.1
    assert (verdict.state == "pass") == upper_within
    assert (verdict.state == "fail") == lower_over


@pytest.mark.parametrize("n", [1, 100, 298])
def test_a_p99_with_fewer_than_299_requests_never_passes(n: int) -> None:
    verdict = judge(run([[1.0] * n]), p99="10s", throttle_rate="off")["p99"]
    assert verdict.state == "inconclusive" and verdict.upper is None
    assert f"p99 can never pass with {n} requests: it needs at least 299 requests to pass " \
        "at 95%" in verdict.describe()  # fmt: skip
    assert judge(run([[1.0] * 299]), p99="10s", throttle_rate="off")["p99"].state == "pass"


def test_fifty_cold_starts_can_never_show_a_cold_p99_but_can_a_p90() -> None:
    result = run([[500.0] * 100 for _ in range(5)], cold_per_second={0: 50})
    assert result.cold_starts == 50
    verdicts = judge(result, cold_start_p99="1s", cold_start_p90="1s", cold_start_max="1s")
    assert verdicts["cold_start_p99"].state == "inconclusive"
    text = verdicts["cold_start_p99"].describe()
    assert "cold_start_p99 can never pass with 50 cold starts: it needs at least 299 cold " \
        "starts to pass at 95%" in text  # fmt: skip
    assert "cold_start_max or cold_start_p90 can be decided on fewer" in text
    assert verdicts["cold_start_p90"].state == "pass"
    assert verdicts["cold_start_max"].state == "pass" and verdicts["cold_start_max"].method == (
        "literal"
    )


# -- rates ----------------------------------------------------------------------------------


def test_a_rate_passes_fails_and_is_inconclusive_on_its_counts() -> None:
    def with_errors(count: int) -> BurstResult:
        return run([[10.0] * 100 for _ in range(10)], errors={s: count // 10 for s in range(10)})

    assert judge(with_errors(0), error_rate="1%")["error_rate"].state == "pass"
    assert judge(with_errors(50), error_rate="1%")["error_rate"].state == "fail"
    unsure = judge(with_errors(10), error_rate="1%")["error_rate"]
    assert unsure.state == "inconclusive" and unsure.measured == pytest.approx(0.01)
    assert "error_rate needs at least 299 requests to pass at 95%" in unsure.describe()
    # The implied throttle budget is judged the same way: 0 of 1,000 shows under 5%.
    implied = judge(with_errors(0), error_rate="1%")["throttle_rate"]
    assert (implied.source, implied.state) == ("default", "pass")


def test_the_implied_throttle_budget_is_a_confidence_verdict() -> None:
    few = run([[10.0] * 20])
    verdicts = judge_all(few, [("p50", 1.0, "check")])
    implied = next(v for v in verdicts if v.source == "default")
    assert implied.state == "inconclusive"  # 0 of 20 cannot show a share under 5%
    assert "throttle_rate needs at least 59 requests to pass at 95%" in implied.describe()
    assert "implied, as no throttle budget was set" in implied.note


def test_a_rate_of_zero_is_literal() -> None:
    clean = run([[10.0] * 10])
    verdict = judge(clean, error_rate="0%")["error_rate"]
    assert verdict.state == "pass" and verdict.method == "literal"
    assert "literal" in verdict.describe()
    one = run([[10.0] * 10], errors={0: 1})
    assert judge(one, error_rate="0%")["error_rate"].state == "fail"


# -- literal max and counts -------------------------------------------------------------------


def test_max_and_counts_are_literal_pass_or_fail() -> None:
    result = run([[10.0] * 5 + [900.0]], throttles_per_second=2)
    verdicts = judge(result, max="1s", throttle_count=2)
    assert {v.state for v in verdicts.values()} == {"pass"}
    assert all(v.method == "literal" and v.lower is None for v in verdicts.values())
    verdicts = judge(result, max="800ms", throttle_count=1)
    assert {v.state for v in verdicts.values()} == {"fail"}
    assert "max: measured 900.1ms > budget 800.0ms (n=6, literal)" in verdicts["max"].describe()
    assert split_of([("max", 1.0, "check"), ("throttle_count", 1.0, "check")]) == 1


# -- mean and min_rps over per-second batches -------------------------------------------------


def test_mean_and_min_rps_pass_fail_and_need_batches() -> None:
    rng = random.Random(3)
    noisy = run([[rng.uniform(8.0, 12.0) for _ in range(100)] for _ in range(12)])
    verdicts = judge(noisy, mean="20ms", min_rps=50, throttle_rate="off")
    assert verdicts["mean"].state == "pass" and verdicts["min_rps"].state == "pass"
    assert verdicts["mean"].upper is not None and verdicts["mean"].upper < 0.020
    verdicts = judge(noisy, mean="5ms", min_rps=200, throttle_rate="off")
    assert verdicts["mean"].state == "fail" and verdicts["min_rps"].state == "fail"
    one_second = run([[10.0] * 100])
    verdicts = judge(one_second, mean="20ms", min_rps=50, throttle_rate="off")
    assert verdicts["mean"].state == "inconclusive" == verdicts["min_rps"].state
    assert "needs at least 2 (a run of 2s or more" in verdicts["mean"].describe()


def test_the_ramp_up_second_is_left_out_of_a_mean() -> None:
    # The first second is slow (connections, cold starts); the eleven after it are not.
    rng = random.Random(5)
    seconds = [[1000.0] * 100] + [[rng.uniform(9.0, 11.0) for _ in range(100)] for _ in range(11)]
    verdict = judge(run(seconds), mean="20ms", throttle_rate="off")["mean"]
    assert verdict.state == "pass"
    assert verdict.measured is not None and verdict.measured > 0.020  # the pooled mean is not


# -- several budgets share the false-FAIL level -----------------------------------------------


def test_five_budgets_each_fail_at_a_fifth_of_the_level() -> None:
    n = 1000
    # The fewest slow requests that FAIL a p99 at 99% confidence alone, but not at 99.8%.
    m = next(k for k in range(n) if lower_bound(k, n, 0.99) > 0.01)
    assert lower_bound(m, n, 1 - 0.01 / 5) <= 0.01
    result = steady(100, 10, slow=m)
    alone = judge(result, p99="100ms", throttle_rate="off")["p99"]
    assert alone.state == "fail" and alone.fail_confidence == pytest.approx(0.99)
    five = judge(result, p99="100ms", p50="1s", p90="1s", error_rate="5%", throttle_rate="5%")
    assert [v.fail_confidence for v in five.values()] == [pytest.approx(1 - 0.01 / 5)] * 5
    assert {v.split for v in five.values()} == {5}
    assert five["p99"].state == "inconclusive"  # the same data, one of five budgets
    assert "lower at 99.8%" in five["p99"].describe()


# -- clustered slowness --------------------------------------------------------------------------


def test_slowness_in_one_period_does_not_pass_where_the_iid_bound_would() -> None:
    seconds = 30
    # 30 of 6,000 requests over the budget (0.5%): all in second 7, or one in each second.
    clustered = run([[900.0 if s == 7 and j < 30 else 10.0 for j in range(200)]
                     for s in range(seconds)])  # fmt: skip
    spread = run([[900.0 if j == 0 else 10.0 for j in range(200)] for s in range(seconds)])
    iid = judge_rate(6000, 30, 30, limit=0.01, pass_confidence=0.95, fail_confidence=0.99)
    assert iid.state == "pass"  # what the bound says if requests were independent
    assert judge(spread, p99="100ms", throttle_rate="off")["p99"].state == "pass"
    verdict = judge(clustered, p99="100ms", throttle_rate="off")["p99"]
    assert verdict.design_effect > 10
    assert verdict.state == "inconclusive"
    assert "clustered in time: counted as" in verdict.describe()


def test_errors_in_one_period_widen_an_error_rate() -> None:
    clustered = run([[10.0] * 200 for _ in range(30)], errors={12: 30})
    spread = run([[10.0] * 200 for _ in range(30)], errors={s: 1 for s in range(30)})
    assert judge(spread, error_rate="1%")["error_rate"].state == "pass"
    verdict = judge(clustered, error_rate="1%")["error_rate"]
    assert verdict.design_effect > 10 and verdict.state == "inconclusive"


# -- zero requests, point estimates ------------------------------------------------------------


@pytest.mark.parametrize("method", ["confidence", "point"])
def test_zero_requests_pass_no_budget(method: str) -> None:
    empty = BurstResult(measurements=Measurements(highest_us=60_000_000), run={}, target="t")
    limits = {name: ("1s" if BUDGETS[name].unit == "duration" else
                     "10" if BUDGETS[name].unit in ("count", "number") else "50%")
              for name in BUDGET_NAMES}  # fmt: skip
    policy = VerdictPolicy(method=method)
    verdicts = judge_all(empty, [(k, v, "check") for k, v in parse_budgets(limits).items()], policy)
    assert len(verdicts) == len(BUDGET_NAMES)
    assert all(v.state == "fail" for v in verdicts), [v.budget for v in verdicts if v.passed]


def test_point_estimates_are_labelled_and_judge_as_before() -> None:
    few = run([[10.0] * 20])
    verdicts = judge_all(few, [("p99", 0.06, "check")], VerdictPolicy(method="point"))
    (p99, implied) = verdicts
    assert p99.state == "pass" and p99.method == "point" and p99.lower is None
    assert p99.describe() == "p99: measured 10.0ms <= budget 60.0ms (n=20, point estimate)"
    assert implied.to_dict()["method"] == "point" and implied.to_dict()["confidence"] is None


# -- the gate and its policies ------------------------------------------------------------------


def test_check_raises_inconclusive_only_when_nothing_failed() -> None:
    few = run([[10.0] * 20, [900.0] * 20])
    with pytest.raises(SLOViolation) as info:
        few.check(p50="1ms", p99="1s", throttle_rate="off")  # p50 broken, p99 undecided
    assert "1 SLO budget(s) broken" in str(info.value)
    assert "1 SLO budget(s) inconclusive" in str(info.value)
    with pytest.raises(SLOInconclusive) as unsure:
        few.check(p99="1s", throttle_rate="off")
    assert not isinstance(unsure.value, SLOViolation) and isinstance(unsure.value, AssertionError)
    assert [v.budget for v in unsure.value.verdicts] == ["p99"]
    few.verdict_policy = VerdictPolicy(inconclusive="warn")
    with pytest.warns(SLOInconclusiveWarning, match="p99 can never pass with 40 requests"):
        assert few.check(p99="1s", throttle_rate="off") is few
    raise_for([], few)  # nothing judged: nothing to say


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("fail_confidence", "99%", "lambda_slo_fail_confidence must be a number between 0 and 1"),
        ("pass_confidence", "1", "lambda_slo_pass_confidence must be a number between 0 and 1"),
        ("inconclusive", "ignore", "lambda_slo_inconclusive='ignore' is not valid; use 'fail' or"),
        ("verdict", "exact", "lambda_slo_verdict='exact' is not valid; use 'confidence' or"),
    ],
)
def test_bad_policy_settings_are_one_line_errors(key: str, value: str, fragment: str) -> None:
    settings = {"pass_confidence": 0.95, "fail_confidence": 0.99, "inconclusive": "fail",
                "verdict": "confidence", key: value}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_policy(*settings.values())
    assert fragment in str(info.value) and "\n" not in str(info.value)


# -- the JSON -----------------------------------------------------------------------------------


def test_json_verdicts_carry_state_bounds_confidence_and_needed_n() -> None:
    result = steady(100, 10, slow=10)
    result.judge({"p99": "100ms", "max": "1s"})
    entries = result.to_dict()["verdicts"]
    p99, max_, implied = entries
    for key in ("budget", "state", "measured", "lower", "upper", "confidence", "n", "needed_n",
                "source", "passed"):  # fmt: skip
        assert key in p99, key
    assert (p99["state"], p99["passed"], p99["unit"], p99["limit"]) == (
        "inconclusive", False, "ms", 100.0)  # fmt: skip
    assert p99["lower"] <= 100.0 < p99["upper"] and p99["confidence"] == 0.95
    assert p99["needed_n"] > p99["n"] == 1000
    assert (max_["state"], max_["method"], max_["confidence"], max_["lower"]) == (
        "pass", "literal", None, None)  # fmt: skip
    assert implied["source"] == "default" and implied["state"] == "pass"
    json.dumps(entries, allow_nan=False)  # plain JSON: no Infinity or NaN
    again = [Verdict.from_dict(e) for e in entries]
    assert [v.to_dict() for v in again] == entries


def test_first_format_verdicts_read_as_point_estimates() -> None:
    old = {"budget": "p99", "unit": "ms", "limit": 800.0, "measured": 120.0, "samples": 50,
           "passed": True, "note": "", "source": "marker"}  # fmt: skip
    verdict = Verdict.from_dict(old)
    assert (verdict.state, verdict.method, verdict.samples) == ("pass", "point", 50)
    assert verdict.limit == pytest.approx(0.8)


# -- the sequential judgement a burst that fires until decided calls ----------------------------


def test_a_certainly_broken_budget_stops_the_sequential_test_early() -> None:
    state = SequentialState(n_max=20_000)
    seconds: list[list[float]] = []
    for _ in range(20):
        seconds.append([900.0] * 5 + [10.0] * 95)  # 5% slow: a p99 far over its budget
        step = judge_sequential(run(seconds), {"p99": 0.1, "throttle_rate": 0.05}, state)
        if step.done:
            break
    assert step.steps["p99"] == "fail" and step.done
    assert step.reason == "p99 certainly broken" and len(seconds) < 20


def test_a_good_run_is_decided_pass_once_every_budget_is() -> None:
    state = SequentialState(n_max=50_000)
    seconds: list[list[float]] = []
    step = None
    while len(seconds) < 200:
        seconds.append([10.0] * 100)
        step = judge_sequential(run(seconds), {"p99": 0.1}, state)
        if step.done:
            break
    assert step is not None and step.done and step.reason == "every budget decided"
    assert step.steps == {"p99": "pass", "throttle_rate": "pass"}


# -- the policies through pytest -----------------------------------------------------------------

POLICY_TESTS = """
import os
import pytest
from pytest_lambda_slo import HttpTarget

FAST = HttpTarget(os.environ["FAST_URL"], cold_start="x-cold-start")

def test_check_few(lambda_slo):
    lambda_slo.burst(FAST, requests=8, concurrency=4).check(p99="5s", throttle_rate="off")

@pytest.mark.lambda_slo(p99="5s", throttle_rate="off")
def test_marker_few(lambda_slo):
    lambda_slo.burst(FAST, requests=8, concurrency=4)
"""


@pytest.fixture
def fast_url(fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("FAST_URL", fresh_emulator.function_url("fast"))
    return fresh_emulator


def test_policy_fail_fails_an_inconclusive_test_and_says_why(
    pytester: pytest.Pytester, fast_url: Emulator
) -> None:
    pytester.makepyfile(test_few=POLICY_TESTS)
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*SLOInconclusive: 1 SLO budget(s) inconclusive for GET http://127.0.0.1:*/url/fast/*",
            "*p99: measured *, bounds ?*, none? straddle budget 5.000s (n=8; *",
        ]
    )
    assert result.stdout.str().count("p99 can never pass with 8 requests: it needs at least") >= 2
    result.stdout.fnmatch_lines(["*INCONCLUSIVE ?check? p99: measured*"])
    result.stdout.fnmatch_lines(["*INCONCLUSIVE ?marker? p99: measured*"])


# In-process, the inner run starts from this suite's "warnings are errors" filter.
@pytest.mark.filterwarnings("default::pytest_lambda_slo.errors.SLOInconclusiveWarning")
def test_policy_warn_passes_an_inconclusive_test_with_a_warning(
    pytester: pytest.Pytester, fast_url: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_inconclusive = warn\n")
    pytester.makepyfile(test_few=POLICY_TESTS)
    out = pytester.path / "slo.json"
    result = pytester.runpytest(*ISOLATED, f"--lambda-slo-json={out}")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(["*SLOInconclusiveWarning: 1 SLO budget(s) inconclusive*"])
    runs = json.loads(out.read_text())["bursts"]
    states = [v["state"] for r in runs for v in r["verdicts"]]
    assert states == ["inconclusive", "inconclusive"]


def test_policy_point_judges_point_estimates_and_labels_them(
    pytester: pytest.Pytester, fast_url: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_verdict = point\n")
    pytester.makepyfile(test_few=POLICY_TESTS)
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*PASS ?check? p99: measured * <= budget 5.000s (n=8, point estimate)",
            "*PASS ?marker? p99: measured * <= budget 5.000s (n=8, point estimate)",
        ]
    )


def test_a_bad_policy_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nlambda_slo_fail_confidence = 99%\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lambda_slo_fail_confidence must be a number between 0 and 1*"])
