"""The terminal report: 80 columns, long lines wrapped (never cut), stops said once."""

from __future__ import annotations

from pytest_lambda_slo._report.terminal import WIDTH, render_burst
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo._results.result import BurstResult


def _result(**extras: object) -> BurstResult:
    measurements = Measurements(highest_us=60_000_000)
    for ms in (5.0, 7.0, 9.0):
        measurements.record(Outcome("ok", int(ms * 1e6), status=200))
    measurements.record(Outcome("throttle", 1_000_000, status=429, throttle_reason="Reserved"))
    measurements.late_starts = 25
    return BurstResult(
        measurements=measurements,
        run={"duration_s": 1.0, "intended_rps": 100.0, "achieved_rps": 97.5},
        target="GET http://127.0.0.1:8080/a/rather/long/path/that/goes/on/and/on/and/on/x",
        shape={"kind": "rate", "rps": 100.0, "duration_s": 1.0},
        extras=dict(extras),
    )


def test_long_lines_wrap_at_80_columns_with_a_hanging_indent() -> None:
    result = _result()
    result.default_throttle_rate = None
    try:
        result.check(p50="1us")
    except AssertionError:
        pass  # the verdicts are kept for the report
    lines = render_burst("test_x.py::test_rate", result)
    assert all(len(line) <= WIDTH for line in lines), [x for x in lines if len(x) > WIDTH]
    assert not any("…" in line for line in lines)
    text = " ".join(" ".join(lines).split())
    # Explanations are whole: wrapped, not cut off.
    assert "late starts: 25 (latency counts from the intended start)" in text
    assert "p50: measured 7.0ms, bounds [" in text
    assert "straddle budget 1us (n=3; lower at 99%, upper at 95%); p50 can never pass" in text
    assert "1 throttled not included" in text
    verdict = next(
        i for i, line in enumerate(lines) if line.startswith("    INCONCLUSIVE [check] p50")
    )
    assert lines[verdict + 1].startswith("      ") and lines[verdict + 1].strip()
    assert any(line.startswith("  served ") for line in lines)  # throttles excluded


def test_an_interrupted_run_says_so_once() -> None:
    lines = render_burst("t", _result(interrupted="interrupted: 10 requests measured, 30 not sent"))
    assert "  INTERRUPTED (Ctrl-C): 10 requests measured, 30 not sent" in lines
    assert not any("interrupted: interrupted" in line.lower() for line in lines)
    other = render_burst("t", _result(interrupted="load run cancelled: 3 requests measured"))
    assert "  INTERRUPTED: load run cancelled: 3 requests measured" in other
