"""The emulator's server-side series in a run's JSON and on the HTML report's chart.

A run against an emulator this process started carries the emulator's own per-second
counts for the run's window; a run against any other address carries none, and that
address is never asked for them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

import pytest_lambda_slo
from pytest_lambda_slo import Burst, Emulator, HttpTarget, InvokeTarget, RunResult
from pytest_lambda_slo._pytest.server_series import server_series, window
from pytest_lambda_slo._report.charts import requests_over_time

SESSION = """
import json, os

def test_throttled_burst(lambda_emulator, lambda_slo):
    emu = lambda_emulator("capped:duration=40ms,reserved=2")
    emu.reset()
    lambda_slo.burst(emu.function_url("capped"), requests=60, concurrency=6)
    # No reset: the second run's first second may hold the end of the first.
    lambda_slo.burst(emu.function_url("capped"), requests=30, concurrency=3)
    with open(os.environ["EMULATOR_STATS"], "w") as f:
        json.dump(emu.function_stats("capped"), f)
"""


def test_a_run_against_the_emulator_carries_its_server_series(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_server_series_session=SESSION)
    stats_path = pytester.path / "stats.json"
    monkeypatch.setenv("EMULATOR_STATS", str(stats_path))
    outcome = pytester.runpytest(
        "-p", "no:cacheprovider", "--lambda-slo-json=out.json", "--lambda-slo-html=out.html"
    )  # fmt: skip
    outcome.assert_outcomes(passed=1)
    stats = json.loads(stats_path.read_text())
    runs = json.loads((pytester.path / "out.json").read_text())["bursts"]
    assert len(runs) == 2
    for run in runs:
        series = run["extras"]["server_timeseries"]
        assert series["source"] == "emulator" and series["function"] == "capped"
        # Each run's server counts are its own: what the client saw answered and throttled.
        assert sum(series["invocations"]) == run["ok"]
        assert sum(series["throttles"]) == run["throttles"]
        assert max(series["concurrency_peak"]) <= 2  # the reserved concurrency
        assert series["start_epoch_s"] == run["timeseries"]["start_epoch_s"]
        assert all(-1.0 < t < run["duration_s"] for t in series["t_s"])
    # The emulator was reset just before the first run: together they are its whole count.
    totals = {key: sum(sum(r["extras"]["server_timeseries"][key]) for r in runs)
              for key in ("invocations", "throttles", "cold_starts")}  # fmt: skip
    assert totals["invocations"] == stats["invocations"]
    assert totals["throttles"] == stats["throttles"]["total"] > 0
    assert totals["cold_starts"] == stats["cold_starts"]
    assert max(max(r["extras"]["server_timeseries"]["concurrency_peak"]) for r in runs) == 2
    html = (pytester.path / "out.html").read_text()
    for label in ("server: invocations", "server: throttles", "server: concurrency (peak)"):
        assert f'class="lg">{label}</text>' in html
    assert 'stroke="#e377c2" class="s" stroke-dasharray' in html  # the server concurrency line


def test_an_invoke_api_run_at_the_emulator_gets_its_series(
    fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x" * 40)
    target = InvokeTarget("tight", region="us-east-1", endpoint_url=fresh_emulator.url)
    result = pytest_lambda_slo.run(target, Burst(requests=40, concurrency=4))
    series = server_series(target, result, lambda: [fresh_emulator.url], {})
    stats = fresh_emulator.function_stats("tight")
    assert series is not None and series["function"] == "tight"
    assert sum(series["invocations"]) == stats["invocations"] == result.ok
    assert sum(series["throttles"]) == stats["throttles"]["total"] == result.throttles
    # The same run, its emulator unknown to the session: no series.
    assert server_series(target, result, lambda: [], {}) is None


def _result(start_epoch_s: float, duration_s: float) -> RunResult:
    result = RunResult.__new__(RunResult)
    result.run = {"started_at": start_epoch_s, "duration_s": duration_s}
    result.measurements = type("M", (), {"timeseries": None})()  # type: ignore[assignment]
    return result


def test_the_window_keeps_the_seconds_overlapping_the_run_placed_from_its_release() -> None:
    block = {
        "interval_s": 1,
        "start_unix": 1000.0,
        "second": [0, 1, 2, 3, 4, 5],
        "invocations": [9, 1, 2, 3, 4, 9],
        "throttles": [9, 0, 1, 0, 0, 9],
        "cold_starts": [9, 1, 0, 0, 0, 9],
        "concurrency_peak": [9, 2, 2, 2, 1, 9],
    }
    # Released at 1001.6 for 2.5 s: seconds 1 (1001-1002) to 4 (1004-1005) overlap it.
    found = window(block, _result(1001.6, 2.5), "f")
    assert found is not None
    out, last = found
    assert out["t_s"] == [-0.6, 0.4, 1.4, 2.4]
    assert out["invocations"] == [1, 2, 3, 4]
    assert out["throttles"] == [0, 1, 0, 0]
    assert out["concurrency_peak"] == [2, 2, 2, 1]
    assert last == (1000.0, 5, [9, 9, 9])  # the last second fetched, whatever the window
    # A run released within that second: the earlier run's counts there are taken off.
    found = window(block, _result(1005.2, 0.5), "f", earlier=(1000.0, 5, [7, 9, 9]))
    assert found is not None
    assert found[0]["invocations"] == [2] and found[0]["throttles"] == [0]
    assert found[0]["concurrency_peak"] == [9]  # a peak cannot be split; kept
    found = window(block, _result(1005.2, 0.5), "f", earlier=(999.0, 5, [7, 9, 9]))
    assert found is not None and found[0]["invocations"] == [9]  # after a reset: not subtracted
    assert window(block, _result(2000.0, 1.0), "f") is None  # after the series: nothing
    assert window({**block, "throttles": [0]}, _result(1001.6, 2.5), "f") is None  # malformed


def test_the_chart_puts_server_seconds_on_the_client_intervals() -> None:
    run: dict[str, Any] = {
        "timeseries": {
            "interval_s": 2.0,
            "t_s": [0.0, 2.0],
            "sent": [10, 10],
            "in_flight_max": [3, 3],
        },
        "extras": {
            "server_timeseries": {
                "interval_s": 1,
                "t_s": [-0.6, 0.4, 1.4, 2.4],
                "invocations": [1, 2, 3, 4],
                "throttles": [0, 1, 0, 0],
                "concurrency_peak": [2, 3, 2, 1],
            }
        },
    }
    chart = requests_over_time(run)
    assert chart is not None
    by_label = {s.label: s.points for s in chart.series}
    # Seconds centred at -0.1 and 0.9 fall in [0, 2), 1.9 too; 2.9 in [2, 4).
    assert by_label["server: invocations"] == ((2.0, 6.0), (4.0, 4.0))
    assert by_label["server: throttles"] == ((2.0, 1.0), (4.0, 0.0))
    assert by_label["server: concurrency (peak)"] == ((2.0, 3.0), (4.0, 1.0))
    del run["extras"]
    chart = requests_over_time(run)
    assert chart is not None and not any(s.label.startswith("server") for s in chart.series)


def test_no_other_address_is_asked_for_a_server_series(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        target = HttpTarget(f"http://127.0.0.1:{port}/url/hello/")
        # An emulator elsewhere, or none at all: the target's address is not one.
        assert server_series(target, _result(0.0, 1.0), lambda: ["http://127.0.0.1:1"], {}) is None
        assert server_series(target, _result(0.0, 1.0), lambda: [], {}) is None
        assert server_series(target, _result(0.0, 1.0), None, {}) is None
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
        # A registered address that does not answer like an emulator: no series, no error.
        url = f"http://127.0.0.1:{port}"
        assert server_series(target, _result(0.0, 1.0), lambda: [url], {}) is None
