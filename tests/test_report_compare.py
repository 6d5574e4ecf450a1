"""Baseline comparison: a 30% slower run fails p99:10%, itself passes, noise is not significant."""

from __future__ import annotations

from pathlib import Path

import pytest
import reportdata as rd

from pytest_lambda_slo._cli.main import main
from pytest_lambda_slo._report.compare import (
    compare_runs,
    fingerprint,
    parse_threshold,
    render_comparisons,
)
from pytest_lambda_slo._report.document import as_records
from pytest_lambda_slo.errors import ConfigError

N = 3000


def _records(seed: int, scale: float = 1.0, **kw: object) -> list[tuple[str, dict]]:
    values = [int(v * scale) for v in rd.latencies(seed, N)]
    return as_records([("t::test_api", rd.result(rd.measurements(values, **kw)))])  # type: ignore[arg-type]


def test_a_30_percent_slower_run_fails_p99_10_percent() -> None:
    [comparison] = compare_runs(_records(1), _records(2, scale=1.3), [parse_threshold("p99:10%")])
    shift = comparison.shift("p99")
    assert shift is not None and shift.relative is not None
    assert 0.15 < shift.relative < 0.45 and shift.significant
    assert comparison.failed
    assert comparison.failures[0].startswith("p99:10%: p99 ")
    assert "significant (p < 0.01)" in comparison.failures[0]


def test_the_same_run_compared_with_itself_passes() -> None:
    records = _records(1)
    [comparison] = compare_runs(
        records, records, [parse_threshold("p99:10%"), parse_threshold("p99:+1ms")]
    )
    assert comparison.compared and not comparison.failed
    shift = comparison.shift("p99")
    assert shift is not None and shift.delta == 0 and not shift.significant


def test_a_noise_level_shift_is_not_significant_and_does_not_fail() -> None:
    # Same distribution, another sample: p99 moves by chance, by more than 1 ms.
    base, new = _records(1), _records(3)
    [comparison] = compare_runs(base, new, [parse_threshold("p99:+1ms")])
    shift = comparison.shift("p99")
    assert shift is not None and shift.delta is not None and abs(shift.delta) > 0.001
    assert not shift.significant and not comparison.failed


def test_a_big_absolute_threshold_is_not_broken_by_a_significant_shift() -> None:
    [comparison] = compare_runs(
        _records(1), _records(2, scale=1.3), [parse_threshold("p99:+500ms")]
    )
    assert comparison.shift("p99").significant  # type: ignore[union-attr]
    assert not comparison.failed


def test_rates_are_compared_on_their_counts() -> None:
    base = _records(1, error_every=200)  # 0.5% errors
    new = _records(1, error_every=20)  # 5% errors
    [comparison] = compare_runs(base, new, [parse_threshold("error_rate:+1%")])
    shift = comparison.shift("error_rate")
    assert shift is not None and shift.significant and comparison.failed


def test_a_different_target_is_reported_not_compared() -> None:
    base = _records(1)
    new = as_records(
        [
            (
                "t::test_api",
                rd.result(
                    rd.measurements(rd.latencies(2, N)),
                    target="GET https://abc.lambda-url.eu-west-1.on.aws/",
                ),
            )
        ]
    )
    [comparison] = compare_runs(base, new, [parse_threshold("p99:10%")])
    assert not comparison.compared and not comparison.failed
    assert comparison.note.startswith("not compared: the target differs")
    assert "abc.lambda-url" in comparison.note


def test_a_loopback_port_is_not_part_of_the_fingerprint() -> None:
    a = {
        "target": "GET http://127.0.0.1:4001/url/fast/",
        "target_info": {"url": "http://127.0.0.1:4001/url/fast/"},
    }
    b = {
        "target": "GET http://127.0.0.1:5002/url/fast/",
        "target_info": {"url": "http://127.0.0.1:5002/url/fast/"},
    }
    c = {
        "target": "GET http://127.0.0.1:5002/url/slow/",
        "target_info": {"url": "http://127.0.0.1:5002/url/slow/"},
    }
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_a_test_without_baseline_is_reported() -> None:
    new = as_records([("t::new_test", rd.result(rd.measurements([1000] * 10)))])
    [comparison] = compare_runs(_records(1), new)
    assert not comparison.compared and comparison.note == "no baseline run for this test"
    assert render_comparisons([comparison])[1] == "     no baseline run for this test"


@pytest.mark.parametrize(
    "text",
    ["p99", "p99:10", "p99:+10%", "p98:10%", "error_rate:+1ms", "p99:-5ms", "error_rate:+150%", ""],
)
def test_bad_thresholds_name_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_threshold(text, name="--fail")
    message = str(info.value)
    assert message.startswith(f"--fail={text!r} is not valid; use METRIC:N% (relative")
    assert "\n" not in message


def test_threshold_forms() -> None:
    assert parse_threshold("p99:10%").relative == pytest.approx(0.10)
    assert parse_threshold("p99:+50ms").absolute == pytest.approx(0.05)
    assert parse_threshold("error_rate:+1%").absolute == pytest.approx(0.01)
    assert parse_threshold("throttle_rate:50%").relative == pytest.approx(0.5)


def test_cli_compare_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fast = rd.result(rd.measurements(rd.latencies(1, N)))
    slow = rd.result(rd.measurements([int(v * 1.3) for v in rd.latencies(2, N)]))
    base = rd.write(str(tmp_path / "base.json"), [("t::test_api", fast)])
    new = rd.write(str(tmp_path / "new.json"), [("t::test_api", slow)])
    assert main(["compare", base, new, "--fail", "p99:10%"]) == 1
    out = capsys.readouterr().out
    assert "FAIL t::test_api" in out and "FAILED p99:10%: p99 " in out
    assert "1 runs compared with" in out and "1 regressed" in out
    assert main(["compare", base, base, "--fail", "p99:10%"]) == 0
    assert main(["compare", base, new, "--fail", "p99:ten"]) == 2
    err = capsys.readouterr().err
    assert "lambda-slo: error: --fail='p99:ten' is not valid" in err
