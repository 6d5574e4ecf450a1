"""Budgets: parsing, evaluation against a result, the SLOViolation message.

The confidence verdicts themselves (each state of each budget kind, the split, the
policies, clustering) are pinned in test_verdicts.py; here the gate's wording and hints.
"""

from __future__ import annotations

import pytest

from pytest_lambda_slo._results.budgets import (
    parse_budget,
    parse_budgets,
    parse_default_throttle_rate,
)
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo._results.result import BurstResult
from pytest_lambda_slo.errors import ConfigError, SLOInconclusive, SLOViolation


def make_result(latencies_ms: list[float], *, cold_every: int | None = None, throttles: int = 0,
                errors: int = 0, duration_s: float = 1.0) -> BurstResult:  # fmt: skip
    """Requests completing evenly over ``duration_s`` seconds (so per-second batches exist)."""
    measurements = Measurements(highest_us=60_000_000)
    measurements.mark_release(0, 1_764_625_000.0)
    total = len(latencies_ms) + throttles + errors
    done = iter(int(i * duration_s * 1e9 / max(total, 1)) for i in range(total))
    for i, ms in enumerate(latencies_ms):
        cold = None if cold_every is None else i % cold_every == 0
        measurements.record(Outcome("ok", int(ms * 1e6), status=200, cold=cold, done_ns=next(done)))
    for _ in range(throttles):
        measurements.record(Outcome("throttle", 1_000_000, status=429, done_ns=next(done)))
    for _ in range(errors):
        measurements.record(Outcome("error", None, error_kind="connection_reset",
                                    done_ns=next(done)))  # fmt: skip
    return BurstResult(
        measurements=measurements,
        run={"duration_s": duration_s},
        target="GET http://127.0.0.1/",
        cold_start_detection=measurements.cold_known > 0,
    )


def test_passing_budgets_return_the_result() -> None:
    # 300 requests over 10 s: enough for a p99 to pass at 95% with none over its budget.
    result = make_result([10.0] * 299 + [50.0], duration_s=10.0)
    assert result.check(p99="60ms", max=0.06, error_rate="0%", min_rps=20) is result
    assert all(v.passed for v in result.verdicts)


def test_every_broken_budget_is_one_line_with_value_and_samples() -> None:
    result = make_result([10.0] * 90 + [900.0] * 10, throttles=10, errors=10)
    with pytest.raises(SLOViolation) as info:
        result.check(p99="800ms", p50="5ms", throttle_rate="1%", error_rate=0.01, max="2s")
    lines = str(info.value).splitlines()
    assert lines[0] == "4 SLO budget(s) broken for GET http://127.0.0.1/:"
    # Latency is judged over the 100 requests served; the 10 throttles are judged apart.
    # Four budgets share the 1% false-FAIL level (max is literal): each lower bound at 99.75%.
    assert any(line.strip().startswith("p99: measured 9") and "over budget 800.0ms (n=100;" in line
               and "lower at 99.75%, upper at 95%" in line
               and "10 throttled not included" in line for line in lines)  # fmt: skip
    assert any("throttle_rate: measured 8.33%, bounds [" in line
               and "over budget 1.00% (n=120;" in line for line in lines)  # fmt: skip
    assert any("p50: measured 10.0ms, bounds [10.0ms, 10.0ms] over budget 5.0ms" in line
               for line in lines)  # fmt: skip
    assert len(info.value.verdicts) == 4
    outcome = "  (120 requests: 100 ok, 10 throttled, 10 errors (connection_reset 10))"
    assert lines[-1] == outcome, "the failure names what the requests came to, by kind and count"
    assert isinstance(info.value, AssertionError)


def test_cold_budgets_need_cold_start_detection() -> None:
    result = make_result([10.0] * 10)
    with pytest.raises(SLOViolation, match="does not say which requests were cold starts"):
        result.check(cold_start_p99="1s")


def test_cold_and_warm_views() -> None:
    result = make_result([500.0 if i % 10 == 0 else 20.0 for i in range(3000)], cold_every=10)
    assert result.cold_starts == 300
    assert result.cold.count == 300 and result.warm.count == 2700
    assert result.warm.p99 == pytest.approx(0.020, rel=0.01)
    assert result.cold.p99 == pytest.approx(0.500, rel=0.01)
    result.check(warm_p99="25ms", cold_start_p99="600ms", cold_start_rate="12%")
    with pytest.raises(SLOViolation, match=r"cold_start_max: measured 500.*literal"):
        result.check(cold_start_max="400ms")


def test_no_samples_cannot_pass_a_latency_budget() -> None:
    result = make_result([], errors=3)
    with pytest.raises(SLOInconclusive, match="no samples to judge"):
        result.check(p99="1s")


def test_server_side_budget_without_report_lines_fails_clearly() -> None:
    result = make_result([10.0])
    with pytest.raises(SLOViolation, match="no server-side REPORT figures"):
        result.check(init_p99="1s")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("p99", "fast", "p99='fast' is not a valid duration"),
        ("p99", "-3ms", "p99='-3ms' is not a valid duration"),
        ("throttle_rate", "2", "throttle_rate='2' is not a valid rate"),
        ("throttle_count", 1.5, "throttle_count=1.5 is not valid; use a whole number"),
        ("min_rps", "many", "min_rps='many' is not valid"),
        ("p98", "1s", "unknown SLO budget 'p98'; known budgets: p50, p90"),
    ],
)
def test_bad_budgets(name: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_budget(name, value)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_budgets_all_checked() -> None:
    assert parse_budgets({"p99": "800ms", "throttle_rate": "1%"}) == {
        "p99": pytest.approx(0.8), "throttle_rate": pytest.approx(0.01)}  # fmt: skip


def test_saturated_result_cannot_pass() -> None:
    result = make_result([10.0] * 300)
    result.run.update(saturated=True, saturation_note="the load generator was saturated")
    with pytest.raises(SLOViolation, match="saturated"):
        result.check(p99="1s")
    result.check(error_rate="0%", throttle_count=0)  # counts are still trustworthy
    result.saturation_policy = "warn"
    result.check(p99="1s")


def test_result_json_round_trip() -> None:
    result = make_result([10.0, 20.0, 30.0], cold_every=2)
    result.judge({"p99": "1s", "max": "1s"})  # an inconclusive and a literal verdict
    copy = BurstResult.from_dict(result.to_dict())
    assert copy.to_dict() == result.to_dict()
    assert copy.p50 == result.p50
    assert [v.describe() for v in copy.verdicts] == [v.describe() for v in result.verdicts]


# -- percentiles over the requests served; the implied throttle budget ----------------------


def test_percentile_budgets_are_judged_over_the_requests_served() -> None:
    # 10 served at 100 ms, 90 fast throttles at 1 ms: over all requests p50 would be 1 ms.
    result = make_result([100.0] * 10, throttles=90)
    assert result.all.p50 == pytest.approx(0.001, rel=0.01)
    assert result.served.count == 10 and result.served.overflows == 0
    assert result.p50 == pytest.approx(0.100, rel=0.01)
    assert result.p99 == result.served.p99 and result.max == result.served.max
    assert result.throttled.count == 90
    with pytest.raises(SLOViolation) as info:
        result.check(p50="50ms", throttle_rate="off")
    assert "p50: measured 100.0ms, bounds [" in str(info.value)
    assert "over budget 50.0ms (n=10; lower at 99%, upper at 95%); 90 throttled not included" in (
        str(info.value)
    )


def test_served_view_is_all_minus_throttled_bucket_by_bucket() -> None:
    measurements = Measurements(highest_us=60_000_000)
    for ms in (1.0, 1.0, 2.5, 40.0, 700.0):
        measurements.record(Outcome("ok", int(ms * 1e6), status=200))
    for ms in (1.0, 2.5, 2.5):
        measurements.record(Outcome("throttle", int(ms * 1e6), status=429))
    result = BurstResult(measurements=measurements, run={"duration_s": 1.0}, target="t")
    served = result.served
    assert served.count == 5
    assert served.min == pytest.approx(0.001, rel=0.01)
    assert served.max == pytest.approx(0.700, rel=0.01)
    assert result.to_dict()["latency_ms"]["served"]["count"] == 5


def test_a_mostly_throttled_run_fails_a_latency_and_error_gate() -> None:
    result = make_result([10.0] * 5, throttles=95)
    with pytest.raises(SLOViolation) as info:
        result.check(p99="1s", error_rate="1%")
    message = str(info.value)
    assert "throttle_rate: measured 95.00%, bounds [" in message
    assert "over budget 5.00% (n=100;" in message
    assert "implied, as no throttle budget was set" in message
    assert "95 throttled" in message
    verdicts = {v.budget: v for v in result.verdicts}
    assert verdicts["throttle_rate"].source == "default"
    # Five served requests cannot show a p99, nor 100 an error rate under 1%: neither is
    # broken; the throttles are what fail the gate.
    assert not verdicts["p99"].failed and not verdicts["error_rate"].failed


OVERRIDES = [{"throttle_rate": "off"}, {"throttle_rate": None}, {"throttle_rate": "96%"},
             {"throttle_count": 95}]  # fmt: skip


@pytest.mark.parametrize("override", OVERRIDES)
def test_an_explicit_throttle_budget_replaces_the_implied_one(override: dict) -> None:
    result = make_result([10.0] * 5, throttles=95)
    result.judge({"p99": "1s", **override})
    assert result.verdicts and not any(v.source == "default" for v in result.verdicts)


def test_the_implied_throttle_budget_is_judged_once_and_can_be_turned_off() -> None:
    result = make_result([10.0] * 400, throttles=1)
    result.check(p99="1s")
    result.check(p50="1s")
    defaults = [v for v in result.verdicts if v.source == "default"]
    assert len(defaults) == 1 and defaults[0].passed
    assert result.check() is result  # no budget, nothing implied
    off = make_result([10.0] * 5, throttles=95)
    off.default_throttle_rate = None  # lambda_slo_default_throttle_rate = off
    off.judge({"p99": "1s"})
    assert [v.budget for v in off.verdicts] == ["p99"]


def test_default_throttle_rate_setting() -> None:
    assert parse_default_throttle_rate("2%") == pytest.approx(0.02)
    assert parse_default_throttle_rate("off") is None
    with pytest.raises(ConfigError, match=r"lambda_slo_default_throttle_rate='lots'.*'off'"):
        parse_default_throttle_rate("lots")


# -- bare numbers for latencies ------------------------------------------------------------


@pytest.mark.parametrize("value", [800, 800.0, "800", " 61 "])
def test_a_bare_number_above_a_minute_is_refused_for_a_latency(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_budget("p99", value)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"p99={value!r} has no unit")
    assert "'800ms' or '800s'" in message or "'61ms' or '61s'" in message


@pytest.mark.parametrize(("value", "seconds"), [("800s", 800.0), (60, 60.0), (0.8, 0.8),
                                               ("800ms", 0.8), ("15m", 900.0)])  # fmt: skip
def test_latencies_with_a_unit_or_up_to_a_minute_stay_allowed(value: object, seconds: float):
    assert parse_budget("cold_start_p99", value) == pytest.approx(seconds)


# -- hints that fit the target -------------------------------------------------------------


def test_an_invoke_target_with_no_success_says_no_report_line_was_seen() -> None:
    result = make_result([], errors=4)
    result.target_info = {"kind": "lambda_invoke"}
    with pytest.raises(SLOViolation) as info:
        result.check(cold_start_p99="2s", init_p99="1s", throttle_rate="off")
    message = str(info.value)
    assert message.count("no request succeeded, so Lambda sent no REPORT line") == 2
    assert "HttpTarget" not in message and "use InvokeTarget" not in message


def test_an_http_target_with_a_cold_start_header_is_told_no_response_carried_it() -> None:
    result = make_result([10.0] * 3)
    result.target_info = {"kind": "http", "cold_start": "x-cold-start"}
    with pytest.raises(SLOViolation, match="none carried the cold_start header"):
        result.check(cold_start_rate="10%")
