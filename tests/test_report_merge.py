"""lambda-slo merge: shards' JSON merged equals one Measurements merge, bucket for bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import reportdata as rd
from hdrh.histogram import HdrHistogram

from pytest_lambda_slo._report import hdr
from pytest_lambda_slo._report.document import ResultsFileError, load_document
from pytest_lambda_slo._report.merge import MergeError, merge_documents
from pytest_lambda_slo._results.recorder import (
    HISTOGRAM_NAMES,
    Measurements,
    Outcome,
    Timeseries,
)


def _buckets(encoded: str) -> list[tuple[int, int, int]]:
    histogram = hdr.decode(encoded)
    return [] if histogram is None else hdr.buckets(histogram)


def _shards(tmp_path: Path) -> tuple[list[str], Measurements]:
    a = rd.measurements(rd.latencies(1, 700), cold_every=50, throttle_every=40)
    b = rd.measurements(rd.latencies(2, 500, median_ms=55), cold_every=30, error_every=60)
    expected = Measurements.from_dict(a.to_dict())
    expected.merge(Measurements.from_dict(b.to_dict()))
    paths = [
        rd.write(str(tmp_path / "a.json"), [("t::test_fast", rd.result(a))]),
        rd.write(
            str(tmp_path / "b.json"),
            [
                (
                    "t::test_fast",
                    rd.result(
                        b, target="GET http://127.0.0.1:2/url/fast/", started_at=1_764_625_000.5
                    ),
                )
            ],
        ),
    ]
    return paths, expected


def test_merge_equals_one_measurements_merge_bucket_for_bucket(tmp_path: Path) -> None:
    paths, expected = _shards(tmp_path)
    merged = merge_documents([(p, load_document(p)) for p in paths])
    [run] = merged["bursts"]
    got = run["measurements"]
    want = expected.to_dict()
    for name in HISTOGRAM_NAMES:
        assert _buckets(got["histograms"][name]["hdr"]) == _buckets(
            want["histograms"][name]["hdr"]
        ), name
    for key in (
        "count",
        "ok",
        "errors",
        "throttles",
        "cold_starts",
        "cold_known",
        "status_codes",
        "error_kinds",
        "throttle_reasons",
    ):
        assert got[key] == want[key], key
    assert run["count"] == 1200 and run["throttles"] == 700 // 40
    # Summary figures come from the merged histogram, not from the shards' summaries.
    all_hist = expected.hist("all")
    assert run["latency_ms"]["all"]["p99"] == round(all_hist.percentile_us(99) / 1000, 3)
    assert run["latency_ms"]["all"]["count"] == all_hist.count
    # Both shards ran side by side: the span covers both, and both targets are named.
    assert run["duration_s"] == pytest.approx(4.5)
    assert "127.0.0.1:1" in run["target"] and "127.0.0.1:2" in run["target"]
    assert [m["file"] for m in run["extras"]["merged_from"]] == paths


def test_verdicts_are_judged_again_on_the_merged_data(tmp_path: Path) -> None:
    fast = rd.measurements([10_000] * 300)  # every request 10 ms: enough to pass a p99
    slow = rd.measurements([10_000] * 95 + [900_000] * 5)  # 5% at 900 ms: surely broken
    results = []
    for name, m in (("a", fast), ("b", slow)):
        r = rd.result(m)
        r.judge({"p99": "800ms", "throttle_rate": "off"})
        results.append(rd.write(str(tmp_path / f"{name}.json"), [("t::x", r)]))
    shard_verdicts = [load_document(p)["bursts"][0]["verdicts"][0]["state"] for p in results]
    assert shard_verdicts == ["pass", "fail"]
    merged = merge_documents([(p, load_document(p)) for p in results])
    [verdict] = merged["bursts"][0]["verdicts"]
    # 5 of 400 slower than 800 ms: 1.25%, over the 1% a p99 allows as a point estimate,
    # but 400 requests cannot show it at 99% confidence. Neither shard's verdict is kept.
    assert verdict["budget"] == "p99" and verdict["state"] == "inconclusive"
    assert verdict["n"] == 400 and verdict["passed"] is False
    assert (verdict["confidence"], verdict["fail_confidence"]) == (0.95, 0.99)


def test_label_verdicts_are_judged_again_on_the_merged_data(tmp_path: Path) -> None:
    # The run-level test above, inside a label: shard a's "read" requests pass a p99 of
    # 800 ms, shard b's break it; merged, the label is judged on all 400 of them.
    results = []
    for name, values in (("a", [10_000] * 300), ("b", [10_000] * 95 + [900_000] * 5)):
        m = Measurements(rd.HIGHEST_US)
        for value in values:
            m.record(Outcome("ok", value * 1000, status=200, label="read"))
        m.record(Outcome("ok", 5_000_000, status=200, label="write"))  # no budget of its own
        r = rd.result(m)
        r.by_label["read"].judge({"p99": "800ms", "throttle_rate": "off"})
        results.append(rd.write(str(tmp_path / f"{name}.json"), [("t::x", r)]))
    shard_states = [
        load_document(p)["bursts"][0]["labels"]["read"]["verdicts"][0]["state"] for p in results
    ]
    assert shard_states == ["pass", "fail"]
    merged = merge_documents([(p, load_document(p)) for p in results])
    labels = merged["bursts"][0]["labels"]
    [verdict] = labels["read"]["verdicts"]
    assert verdict["budget"] == "p99" and verdict["state"] == "inconclusive"
    assert verdict["n"] == 400 and labels["read"]["count"] == 400
    assert labels["write"]["verdicts"] == [] and labels["write"]["count"] == 2
    assert merged["bursts"][0]["verdicts"] == []  # the run itself had no budgets


def test_tests_found_in_one_shard_only_are_carried_over(tmp_path: Path) -> None:
    a = rd.write(str(tmp_path / "a.json"), [("t::one", rd.result(rd.measurements([5000] * 3)))])
    b = rd.write(str(tmp_path / "b.json"), [("t::two", rd.result(rd.measurements([7000] * 4)))])
    merged = merge_documents([(p, load_document(p)) for p in (a, b)])
    assert [(r["test_id"], r["count"]) for r in merged["bursts"]] == [("t::one", 3), ("t::two", 4)]


def test_several_runs_of_one_test_merge_by_their_order(tmp_path: Path) -> None:
    def doc(name: str, counts: tuple[int, int]) -> str:
        records = [
            (
                "t::x",
                rd.result(
                    rd.measurements([5000] * n),
                    shape={"kind": "burst", "requests": i, "workers": 1},
                ),
            )
            for i, n in enumerate(counts)
        ]
        return rd.write(str(tmp_path / name), records)

    paths = [doc("a.json", (3, 5)), doc("b.json", (4, 6))]
    merged = merge_documents([(p, load_document(p)) for p in paths])
    assert [r["count"] for r in merged["bursts"]] == [7, 11]


def test_different_shapes_are_refused_naming_the_file(tmp_path: Path) -> None:
    a = rd.write(
        str(tmp_path / "a.json"),
        [
            (
                "t::x",
                rd.result(
                    rd.measurements([5000] * 3),
                    shape={"kind": "burst", "requests": 3, "concurrency": 10},
                ),
            )
        ],
    )
    b = rd.write(
        str(tmp_path / "b.json"),
        [
            (
                "t::x",
                rd.result(
                    rd.measurements([5000] * 3),
                    shape={"kind": "rate", "rps": 3.0, "duration_s": 1.0},
                ),
            )
        ],
    )
    with pytest.raises(MergeError, match=r"b\.json: t::x ran shape .*'rate'.* but .*a\.json ran"):
        merge_documents([(p, load_document(p)) for p in (a, b)])


def test_unreadable_damaged_and_newer_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ResultsFileError, match=r"missing\.json: cannot be read"):
        load_document(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsFileError, match=r"bad\.json: not valid JSON"):
        load_document(str(bad))
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "pytest-lambda-slo/2", "bursts": []}))
    with pytest.raises(
        ResultsFileError,
        match=r"newer\.json: format 'pytest-lambda-slo/2' is "
        "newer than this pytest-lambda-slo reads",
    ):
        load_document(str(newer))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "k6", "bursts": []}))
    with pytest.raises(ResultsFileError, match=r"other\.json: unknown format 'k6'"):
        load_document(str(other))


def test_timeseries_merge_aligns_on_release_instants_and_adds_histograms() -> None:
    a = rd.timeseries(100.0, [[1000, 2000], [3000], [4000]])
    b = rd.timeseries(101.2, [[5000], [6000, 7000]])  # released 1.2 s later: shift 1
    merged = merge_blocks(a, b)
    assert merged["t_s"] == [0.0, 1.0, 2.0]
    assert merged["ok"] == [2, 1 + 1, 1 + 2]
    assert sum(sum(series) for series in merged["error_kinds"].values()) == 0
    counts = [HdrHistogram.decode(e.encode()).get_total_count() for e in merged["histograms"]]
    assert counts == [2, 2, 3]
    assert merged["max_ms"][2] == pytest.approx(7.0, rel=1e-3)


def test_timeseries_merge_uses_the_coarser_interval() -> None:
    fine = rd.timeseries(0.0, [[1000], [2000], [3000], [4000]], interval_s=1.0)
    coarse = rd.timeseries(0.0, [[5000], [6000]], interval_s=2.0)
    merged = merge_blocks(fine, coarse)
    assert merged["interval_s"] == 2.0
    assert merged["ok"] == [3, 3]


def merge_blocks(*blocks: dict[str, Any]) -> dict[str, Any]:
    """Blocks merged the way lambda-slo merge does it: through Measurements.merge."""
    merged = Timeseries.from_dict(blocks[0], rd.HIGHEST_US)
    for block in blocks[1:]:
        merged.merge(Timeseries.from_dict(block, rd.HIGHEST_US))
    return merged.to_dict()
