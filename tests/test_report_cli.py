"""The lambda-slo command line: merge, report and their exit codes (0 ok, 1 broken, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import reportdata as rd

from pytest_lambda_slo._cli.main import main
from pytest_lambda_slo._report import hdr
from pytest_lambda_slo._results.recorder import Measurements


def _shards(tmp_path: Path) -> tuple[str, str, Measurements]:
    a = rd.measurements(rd.latencies(11, 400), cold_every=25)
    b = rd.measurements(rd.latencies(12, 600, median_ms=90), throttle_every=30)
    expected = Measurements.from_dict(a.to_dict())
    expected.merge(Measurements.from_dict(b.to_dict()))
    return (
        rd.write(str(tmp_path / "a.json"), [("t::api", rd.result(a))]),
        rd.write(str(tmp_path / "b.json"), [("t::api", rd.result(b))]),
        expected,
    )


def test_merge_then_report_gates_on_the_merged_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, expected = _shards(tmp_path)
    merged = str(tmp_path / "merged.json")
    assert main(["merge", a, b, "-o", merged]) == 0
    assert "merged 2 files: 1 runs, 1000 requests" in capsys.readouterr().out
    [run] = json.loads(Path(merged).read_text())["bursts"]
    for name, histogram in expected.histograms.items():  # type: ignore[union-attr]
        got = hdr.decode(run["measurements"]["histograms"][name]["hdr"])
        want = hdr.decode(histogram.encode())
        assert (hdr.buckets(got) if got else []) == (hdr.buckets(want) if want else [])
    served = expected.hist("all")
    p90 = served.percentile_us(90) / 1e6  # type: ignore[operator]
    p99 = served.percentile_us(99) / 1e6  # type: ignore[operator]
    slowest = served.max_us() / 1e6  # type: ignore[operator]
    # Exit 1 when a budget given on the command line is broken, 0 when it holds: a p99
    # budget at the p90 is surely broken, one above the slowest request surely met.
    assert main(["report", merged, "--budgets", f"p99={p90:.4f}s,error_rate=1%"]) == 1
    out = capsys.readouterr().out
    assert "FAIL [cli] p99: measured" in out and "PASS [cli] error_rate" in out
    # p99 and error_rate, and the implied throttle_rate budget none of them replaces.
    assert "1 runs, 3 verdicts: 1 broken, 0 inconclusive" in out
    # A p99 budget 10% under the measured p99: 1,000 requests cannot tell. Inconclusive
    # exits 1 as it fails a test, unless --inconclusive warn.
    close = ["report", merged, "--budgets", f"p99={p99 * 0.9:.4f}s", "--html", str(tmp_path / "x")]
    assert main(close) == 1
    out = capsys.readouterr().out
    assert "INCONCLUSIVE [cli] p99: measured" in out
    assert "1 runs, 2 verdicts: 0 broken, 1 inconclusive" in out
    assert main([*close, "--inconclusive", "warn"]) == 0
    capsys.readouterr()
    html = tmp_path / "out.html"
    hlogs = tmp_path / "hlog"
    argv = ["report", merged, "--budgets", f"p99={slowest * 1.01:.4f}s", "--html", str(html)]
    assert main([*argv, "--hlog", str(hlogs)]) == 0
    out = capsys.readouterr().out
    assert "PASS [cli] p99" in out and "HdrHistogram logs: 1 files in" in out
    assert len(list(hlogs.glob("*.hlog"))) == 1
    assert html.read_text().count('<span class="pass">PASS</span>') >= 1


def test_report_fails_on_a_stored_broken_verdict(tmp_path: Path) -> None:
    result = rd.result(rd.measurements([900_000] * 10))
    result.judge({"p99": "800ms"})
    path = rd.write(str(tmp_path / "r.json"), [("t::slow", result)])
    assert main(["report", path]) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["report", "{path}", "--budgets", "p99"],
            "--budgets='p99': 'p99' is not valid; use NAME=",
        ),
        (["report", "{path}", "--budgets", "p98=1s"], "unknown SLO budget 'p98'"),
        (["report", "{path}", "--budgets", "p99=fast"], "p99='fast' is not a valid duration"),
        (["report", "{missing}"], "missing.json: cannot be read"),
        (["merge", "{path}"], "the following arguments are required: -o/--output"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = rd.write(str(tmp_path / "r.json"), [("t::x", rd.result(rd.measurements([1000])))])
    filled = [a.format(path=path, missing=tmp_path / "missing.json") for a in argv]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("lambda-slo: error: ")


def test_console_script_runs(tmp_path: Path) -> None:
    a, b, _ = _shards(tmp_path)
    merged = tmp_path / "m.json"
    code = "from pytest_lambda_slo._cli.main import main; raise SystemExit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "merge", a, b, "-o", str(merged)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(merged.read_text())["bursts"][0]["count"] == 1000
