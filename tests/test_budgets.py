"""Budgets: parsing, evaluation against a result, the SLOViolation message."""

from __future__ import annotations

import pytest

from pytest_lambda_slo.budgets import parse_budget, parse_budgets
from pytest_lambda_slo.errors import ConfigError, SLOViolation
from pytest_lambda_slo.recorder import Measurements, Outcome
from pytest_lambda_slo.result import BurstResult


def make_result(latencies_ms: list[float], *, cold_every: int | None = None, throttles: int = 0,
                errors: int = 0, duration_s: float = 1.0) -> BurstResult:  # fmt: skip
    measurements = Measurements(highest_us=60_000_000)
    for i, ms in enumerate(latencies_ms):
        cold = None if cold_every is None else i % cold_every == 0
        measurements.record(Outcome("ok", int(ms * 1e6), status=200, cold=cold))
    for _ in range(throttles):
        measurements.record(Outcome("throttle", 1_000_000, status=429))
    for _ in range(errors):
        measurements.record(Outcome("error", None, error_kind="connection_reset"))
    return BurstResult(
        measurements=measurements,
        run={"duration_s": duration_s},
        target="GET http://127.0.0.1/",
        cold_start_detection=measurements.cold_known > 0,
    )


def test_passing_budgets_return_the_result() -> None:
    result = make_result([10.0] * 99 + [50.0])
    assert result.check(p99="60ms", max=0.06, error_rate="0%", min_rps=50) is result
    assert all(v.passed for v in result.verdicts)


def test_every_broken_budget_is_one_line_with_value_and_samples() -> None:
    result = make_result([10.0] * 90 + [900.0] * 10, throttles=5, errors=5)
    with pytest.raises(SLOViolation) as info:
        result.check(p99="800ms", p50="5ms", throttle_rate="1%", error_rate=0.01, max="2s")
    lines = str(info.value).splitlines()
    assert lines[0] == "4 SLO budget(s) broken for GET http://127.0.0.1/:"
    assert any(line.strip().startswith("p99: measured 9") and "> budget 800.0ms (n=105)" in line
               for line in lines)  # fmt: skip
    assert any("throttle_rate: measured 4.55% > budget 1.00% (n=110)" in line for line in lines)
    assert any("p50: measured 10.0ms > budget 5.0ms" in line for line in lines)
    assert len(info.value.verdicts) == 4
    assert lines[-1] == ("  (110 requests: 100 ok, 5 throttled, 5 errors (connection_reset 5))"), (
        "the failure names what the requests came to, by kind and count"
    )
    assert isinstance(info.value, AssertionError)


def test_cold_budgets_need_cold_start_detection() -> None:
    result = make_result([10.0] * 10)
    with pytest.raises(SLOViolation, match="does not say which requests were cold starts"):
        result.check(cold_start_p99="1s")


def test_cold_and_warm_views() -> None:
    result = make_result([500.0 if i % 10 == 0 else 20.0 for i in range(100)], cold_every=10)
    assert result.cold_starts == 10
    assert result.cold.count == 10 and result.warm.count == 90
    assert result.warm.p99 == pytest.approx(0.020, rel=0.01)
    assert result.cold.p99 == pytest.approx(0.500, rel=0.01)
    result.check(warm_p99="25ms", cold_start_p99="600ms", cold_start_rate="10%")
    with pytest.raises(SLOViolation, match="cold_start_max: measured 500"):
        result.check(cold_start_max="400ms")


def test_no_samples_cannot_pass_a_latency_budget() -> None:
    result = make_result([], errors=3)
    with pytest.raises(SLOViolation, match="no samples to judge"):
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
    result = make_result([10.0] * 10)
    result.run.update(saturated=True, saturation_note="the load generator was saturated")
    with pytest.raises(SLOViolation, match="saturated"):
        result.check(p99="1s")
    result.check(error_rate="0%", throttle_count=0)  # counts are still trustworthy
    result.saturation_policy = "warn"
    result.check(p99="1s")


def test_result_json_round_trip() -> None:
    result = make_result([10.0, 20.0, 30.0], cold_every=2)
    result.check(p99="1s")
    copy = BurstResult.from_dict(result.to_dict())
    assert copy.to_dict() == result.to_dict()
    assert copy.p50 == result.p50
