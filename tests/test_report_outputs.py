"""CI outputs: .hlog files read back with hdrh, JUnit properties, the GitHub summary table."""

from __future__ import annotations

import os
from pathlib import Path

import reportdata as rd
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from pytest_lambda_slo._report.ci import github_summary_markdown, junit_properties
from pytest_lambda_slo._report.compare import compare_runs, parse_threshold
from pytest_lambda_slo._report.document import as_records
from pytest_lambda_slo._report.hlog import write_hlogs


def _read_back(path: str) -> tuple[list[HdrHistogram], float]:
    reader = HistogramLogReader(path, HdrHistogram(1, rd.HIGHEST_US, 3))
    intervals = []
    try:
        while (h := reader.get_next_interval_histogram()) is not None:
            intervals.append(h)
        return intervals, reader.get_start_time_sec()
    finally:
        reader.close()


def test_hlog_of_a_run_with_timeseries_reads_back_with_its_served_count(tmp_path: Path) -> None:
    per_interval = [rd.latencies(i, 50 + 10 * i) for i in range(5)]
    served = [v for values in per_interval for v in values]
    m = rd.measurements(served)
    block = rd.timeseries(1_764_625_000.25, per_interval)
    [(test_id, run)] = as_records([("t::test_a", rd.result(m))])
    run["timeseries"] = block
    [path] = write_hlogs(str(tmp_path / "hlog"), [(test_id, run)])
    intervals, start = _read_back(path)
    assert len(intervals) == 5
    assert sum(h.get_total_count() for h in intervals) == m.hist("all").count == len(served)
    assert start == 1_764_625_000.25
    # Interval timestamps are absolute (BaseTime + offset), one second apart.
    stamps = [h.get_start_time_stamp() / 1000 - start for h in intervals]
    assert [round(s, 6) for s in stamps] == [0.0, 1.0, 2.0, 3.0, 4.0]
    text = Path(path).read_text()
    assert text.startswith("#[Histogram log format version 1.2]\n")
    assert "#[BaseTime: 1764625000.250" in text and "#[StartTime: 1764625000.250000" in text
    assert (
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"' in text
    )
    # Interval_Max is in milliseconds: the first interval's maximum / 1000, floored.
    first = next(line for line in text.splitlines() if line[:1].isdigit())
    assert float(first.split(",")[2]) == intervals[0].get_max_value() // 1000


def test_hlog_without_timeseries_is_one_interval_of_the_served_requests(tmp_path: Path) -> None:
    m = rd.measurements(rd.latencies(7, 400), throttle_every=10)
    records = as_records([("t::x[a|b]", rd.result(m)), ("t::x[a|b]", rd.result(m))])
    paths = write_hlogs(str(tmp_path), records)
    assert len(set(paths)) == 2 and all(os.path.basename(p).endswith(".hlog") for p in paths)
    intervals, _ = _read_back(paths[0])
    assert len(intervals) == 1
    assert intervals[0].get_total_count() == 400 - 40 == m.ok


def test_junit_properties_carry_figures_and_verdicts() -> None:
    m = rd.measurements(rd.latencies(1, 500), cold_every=7, throttle_every=50)
    result = rd.result(m)
    result.judge({"p99": "800ms", "error_rate": "0%"})
    [(_, run)] = as_records([("t::x", result)])
    props = dict(junit_properties(run))
    assert props["lambda_slo.requests"] == "500"
    assert m.cold_starts > 0 and props["lambda_slo.cold_starts"] == str(m.cold_starts)
    assert props["lambda_slo.throttles"] == "10"
    assert float(props["lambda_slo.p99_ms"]) == run["latency_ms"]["all"]["p99"]
    assert props["lambda_slo.verdict.p99"] == "PASS"
    assert props["lambda_slo.verdict.p99.limit_ms"] == "800"
    assert props["lambda_slo.verdict.error_rate"] == "PASS"
    assert all(isinstance(v, str) for v in props.values())


def test_github_summary_table_has_a_row_per_run_with_the_baseline_delta() -> None:
    fast = rd.result(rd.measurements(rd.latencies(1, 3000)))
    slow = rd.result(rd.measurements([int(v * 1.3) for v in rd.latencies(2, 3000)]))
    slow.judge({"p99": "100ms", "throttle_rate": "off"})
    base = as_records([("t::test_api|x", fast)])
    new = as_records([("t::test_api|x", slow), ("t::only_new", fast)])
    comparisons = compare_runs(base, new, [parse_threshold("p99:10%")])
    text = github_summary_markdown(new, comparisons)
    lines = text.splitlines()
    assert (
        lines[2] == "| test | verdicts | p99 | cold starts | throttle share | baseline p99 delta |"
    )
    assert len([line for line in lines if line.startswith("| t::")]) == 2
    row = next(line for line in lines if line.startswith("| t::test_api"))
    assert row.startswith("| t::test_api\\|x | FAIL: p99 (0/1 pass) | ")
    assert "REGRESSED +" in row and "significant" in row
    assert "no baseline run for this test" in text
