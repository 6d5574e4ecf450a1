"""Time to first byte, the slowest requests by id, and the per-label views."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from servers import HttpServer

from pytest_lambda_slo import Burst, HttpTarget, Rate, run
from pytest_lambda_slo._http.response import Headers, Response, final_head, ids_of
from pytest_lambda_slo._report.document import new_document, records_of
from pytest_lambda_slo._report.html import render_html
from pytest_lambda_slo._report.merge import merge_documents
from pytest_lambda_slo._report.terminal import render_burst
from pytest_lambda_slo._results.histogram import Histogram
from pytest_lambda_slo._results.recorder import MAX_LABELS, Measurements, Outcome
from pytest_lambda_slo._results.result import RunResult
from pytest_lambda_slo._results.slowest import SLOWEST_KEPT, logs_insights_query
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import ConfigError, SLOInconclusive, SLOViolation

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


pytestmark = pytest.mark.usefixtures("no_proxy_env")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(["ids:duration=1ms,init=20ms,cold_header=true"]) as emulator:
        yield emulator


class FakeResponse:
    """Stands for a response: the ids it would give, and how often it was asked."""

    content = b""  # no body held, as a lean connection's response

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.asked = 0

    def request_ids(self) -> dict[str, str]:
        self.asked += 1
        return {"request_id": self.request_id}


def _record(m: Measurements, latency_ms: float, *, rid: str = "", done_s: float = 0.0,
            label: str | None = None, cold: bool | None = None,
            ttfb_ms: float | None = None) -> FakeResponse:  # fmt: skip
    response = FakeResponse(rid)
    m.record(Outcome(
        "ok", int(latency_ms * 1e6), status=200, done_ns=int(done_s * 1e9), label=label,
        cold=cold, ttfb_ns=None if ttfb_ms is None else int(ttfb_ms * 1e6), response=response,
    ))  # fmt: skip
    return response


def _result(m: Measurements, **kwargs: Any) -> RunResult:
    return RunResult(measurements=m, run={"duration_s": 10.0}, target="GET http://x/", **kwargs)


# -- time to first byte ------------------------------------------------------------------------


@pytest.mark.parametrize("cold_start", [None, "x-cold-start"], ids=["lean", "headers-parsed"])
def test_a_delayed_body_shows_as_time_to_first_byte_well_under_the_latency(
    cold_start: str | None,
) -> None:
    with HttpServer() as server:
        result = run(
            HttpTarget(server.url("/slowbody/300"), cold_start=cold_start),
            Burst(requests=4, concurrency=1, timeout="10s"),
        )
        handed_out = {f"slowbody-{i:04d}" for i in range(1, server.slowbody_ids + 1)}
    assert result.ok == 4 and result.ttfb.count == 4
    # The body is written 300 ms after the head: every latency is at least that.
    assert result.all.min >= 0.299
    assert result.ttfb.max < result.all.min  # every first byte before any request's end
    assert result.ttfb.max < result.all.min - 0.15  # by most of the 300 ms gap
    for entry in result.slowest:
        assert entry["ttfb_ms"] < entry["latency_ms"]
    # The ids are the ones the server handed out, read from the raw head on a lean connection.
    assert {entry["request_id"] for entry in result.slowest} == handed_out
    assert len(handed_out) == 4


def test_ttfb_never_exceeds_the_latency_of_a_request(emu: Emulator) -> None:
    emu.reset(environments=True)
    result = run(emu.function_url("ids"), Burst(requests=40, concurrency=4))
    assert result.ok == 40 and result.ttfb.count == 40
    assert len(result.slowest) == 40
    assert all(0 < e["ttfb_ms"] <= e["latency_ms"] for e in result.slowest)
    assert result.ttfb.max <= result.all.max


def test_the_open_model_times_the_first_byte_from_the_intended_start(emu: Emulator) -> None:
    emu.reset(environments=True)
    result = run(emu.function_url("ids"), Rate(rps=40, duration="1s"))
    assert result.ok == result.ttfb.count > 0
    for entry in result.slowest:
        assert 0 < entry["ttfb_ms"] <= entry["latency_ms"]
    assert result.uncorrected.count == result.count  # the latency was corrected: its ttfb too


def _ttfb_result(n: int, ttfb_ms: float, latency_ms: float) -> RunResult:
    m = Measurements(highest_us=60_000_000)
    m.mark_release(0, 1_764_625_000.0)
    for i in range(n):
        _record(m, latency_ms, done_s=i * 10.0 / n, ttfb_ms=ttfb_ms)
    return _result(m)


def test_ttfb_budgets_pass_fail_and_stay_inconclusive_like_latency_ones() -> None:
    result = _ttfb_result(1000, ttfb_ms=10.0, latency_ms=500.0)
    assert result.ttfb.p99 == pytest.approx(0.010, rel=0.01)
    result.check(ttfb_p99="50ms", ttfb_p50="20ms")
    assert [v.state for v in result.verdicts[:2]] == ["pass", "pass"]
    with pytest.raises(SLOViolation, match=r"ttfb_p99: measured 10\.\d+ms"):
        result.check(ttfb_p99="5ms")
    with pytest.raises(SLOViolation, match="p99: measured"):
        result.check(p99="50ms", ttfb_p99="50ms")  # the full latency is what breaks
    few = _ttfb_result(50, ttfb_ms=10.0, latency_ms=500.0)
    with pytest.raises(SLOInconclusive, match="ttfb_p99"):
        few.check(ttfb_p99="50ms")  # 50 samples can never show a p99 at 95%


def test_a_ttfb_budget_without_any_success_fails_with_the_reason() -> None:
    m = Measurements(highest_us=60_000_000)
    m.record(Outcome("error", None, error_kind="connection_reset"))
    with pytest.raises(SLOViolation, match="no request succeeded"):
        _result(m).check(ttfb_p99="1s")


# -- request ids -------------------------------------------------------------------------------


def test_ids_are_read_from_parsed_headers_and_from_a_raw_head_alike() -> None:
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-amzn-RequestId: r-1\r\n"
           b"X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
           b"Sampled=1\r\napigw-requestid: Lx2=\r\nContent-Length: 2\r\n\r\nok")  # fmt: skip
    expected = {"request_id": "r-1", "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
                "apigw_request_id": "Lx2="}  # fmt: skip
    lean = Response(200, Headers([]), b"", 2, raw_head=[raw[:30], raw[30:]])
    assert lean.request_ids() == expected
    parsed = Response(200, Headers(final_head(raw)), b"ok")
    assert parsed.request_ids() == expected
    assert ids_of([(b"Content-Type", b"text/plain")]) == {}


def test_the_emulator_front_doors_send_realistic_ids(emu: Emulator) -> None:
    emu.reset(environments=True)
    url = run(emu.function_url("ids"), Burst(requests=5, concurrency=1))
    apigw = run(emu.apigw_url("ids"), Burst(requests=5, concurrency=1))
    for entry in url.slowest:
        assert UUID.match(entry["request_id"]) and TRACE.match(entry["trace_id"])
        assert "apigw_id" not in entry
    for entry in apigw.slowest:
        assert UUID.match(entry["request_id"]) and entry["apigw_id"]
    # Function URL ids are the function's @requestId; behind API Gateway they are not.
    query = url.slow_requests()["logs_insights_query"]
    assert query.startswith("fields @timestamp, @requestId, @duration, @initDuration | filter")
    assert all(e["request_id"] in query for e in url.slowest)
    assert apigw.slow_requests()["logs_insights_query"] is None


def test_invoke_ids_are_those_of_lambdas_report_line(emu: Emulator) -> None:
    """Cross-check against the server side: the REPORT line the emulator wrote."""
    emu.reset(environments=True)
    reported: dict[str, str] = {}

    def from_log(response: Response) -> bool:
        log = base64.b64decode(response.headers["x-amz-log-result"]).decode()
        (rid,) = re.findall(r"REPORT RequestId: (\S+)", log)
        reported[response.headers["x-amzn-requestid"]] = rid
        return "Init Duration" in log

    target = HttpTarget(
        f"{emu.invoke_endpoint}/2015-03-31/functions/ids/invocations", method="POST",
        headers={"X-Amz-Log-Type": "Tail"}, body=b"{}", cold_start=from_log,
    )  # fmt: skip
    result = run(target, Burst(requests=12, concurrency=3))
    assert result.ok == 12 and len(result.slowest) == 12
    for entry in result.slowest:
        assert reported[entry["request_id"]] == entry["request_id"]
    cold = result.slowest_cold_starts
    assert len(cold) == result.cold_starts == 3
    assert result.slow_requests()["cold_starts_query"].count('"') == 2 * 3


def test_only_the_slowest_kept_have_their_ids_read_once_when_read() -> None:
    m = Measurements(highest_us=60_000_000)
    first = [_record(m, 100.0 + i, rid=f"a{i}") for i in range(SLOWEST_KEPT)]
    faster = [_record(m, 50.0, rid=f"b{i}") for i in range(100)]
    slower = _record(m, 500.0, rid="slowest")
    # Nothing is parsed while the run records: the heap keeps the outcomes.
    assert all(r.asked == 0 for r in [*first, *faster, slower])
    kept = _result(m).slowest
    assert len(kept) == SLOWEST_KEPT
    assert kept[0]["request_id"] == "slowest" and kept[0]["latency_ms"] == 500.0
    assert kept[-1]["request_id"] == "a1"  # a0, the fastest of the first 50, was pushed out
    assert first[0].asked == 0 and all(r.asked == 0 for r in faster)  # never kept: never parsed
    assert all(r.asked == 1 for r in first[1:]) and slower.asked == 1
    assert _result(m).slowest == kept and slower.asked == 1  # read again: described once


def test_a_kept_request_holding_its_body_is_described_at_once() -> None:
    m = Measurements(highest_us=60_000_000)
    response = FakeResponse("with-body")
    response.content = b"x" * 1000
    m.record(Outcome("ok", 100_000_000, status=200, done_ns=0, response=response))
    assert response.asked == 1  # the heap does not keep the body alive
    assert _result(m).slowest[0]["request_id"] == "with-body" and response.asked == 1


def test_merging_keeps_the_n_slowest_of_the_union_through_json() -> None:
    one, two = Measurements(highest_us=60_000_000), Measurements(highest_us=60_000_000)
    for i in range(80):
        _record(one, 10.0 + 2 * i, rid=f"one-{i}", done_s=i)
        _record(two, 11.0 + 2 * i, rid=f"two-{i}", done_s=i, cold=i < 60)
    merged = Measurements(highest_us=60_000_000)
    for part in (one, two):
        merged.merge(Measurements.from_dict(json.loads(json.dumps(part.to_dict()))))
    latencies = sorted([10.0 + 2 * i for i in range(80)] + [11.0 + 2 * i for i in range(80)])
    kept = _result(merged).slowest
    assert [e["latency_ms"] for e in kept] == latencies[::-1][:SLOWEST_KEPT]
    cold = _result(merged).slowest_cold_starts
    # The first 50 cold starts (two-0 ... two-49) and the 50 slowest (two-10 ... two-59).
    assert {e["request_id"] for e in cold} == {f"two-{i}" for i in range(60)}


def test_two_workers_report_the_slowest_of_both(emu: Emulator) -> None:
    emu.reset(environments=True)
    result = run(emu.function_url("ids"), Burst(requests=160, concurrency=8), workers=2)
    assert result.count == 160
    assert result.ttfb.count == result.ok == 160  # both workers' ttfb histograms, added
    kept = result.slowest
    assert len(kept) == SLOWEST_KEPT
    assert len({e["request_id"] for e in kept}) == SLOWEST_KEPT
    assert [e["latency_ms"] for e in kept] == sorted((e["latency_ms"] for e in kept), reverse=True)
    # The slowest kept is the slowest of the run (the histogram's max is its bucket's top).
    assert kept[0]["latency_ms"] / 1000 == pytest.approx(result.all.max, rel=2e-3)
    # And the 50th slowest kept is the 111th fastest of the whole run (to a bucket's width).
    assert kept[-1]["latency_ms"] / 1000 >= result.all.percentile(111 / 160 * 100) / 1.002
    document = result.to_dict()
    block = document["slow_requests"]
    assert [e["request_id"] for e in block["slowest"]] == [e["request_id"] for e in kept]
    assert all(0 <= e["t_s"] <= result.duration + 1 for e in block["slowest"])
    again = RunResult.from_dict(json.loads(json.dumps(document)))
    assert [e["request_id"] for e in again.slowest] == [e["request_id"] for e in kept]


def test_the_report_lists_the_five_slowest_with_their_ids_and_a_query(emu: Emulator) -> None:
    emu.reset(environments=True)
    result = run(emu.function_url("ids"), Burst(requests=30, concurrency=3))
    text = "\n".join(render_burst("t::x", result))
    assert "slowest requests (5 of 30 kept; the JSON has them all):" in text
    for entry in result.slowest[:5]:
        assert entry["request_id"] in text
    assert result.slowest[6]["request_id"] not in text
    flat = " ".join(line.strip() for line in text.splitlines())
    assert logs_insights_query(result.slowest[:5]) in flat
    assert "X-Ray trace ids: " + result.slowest[0]["trace_id"] in flat
    assert any(line.startswith("  ttfb ") for line in text.splitlines())
    page = render_html([("t::x", result.to_dict())])
    assert result.slowest[0]["request_id"] in page and "Logs Insights" in page


# -- labels ------------------------------------------------------------------------------------


def _labelled() -> Measurements:
    m = Measurements(highest_us=60_000_000)
    m.mark_release(0, 1_764_625_000.0)
    for i in range(400):
        label = "checkout" if i % 4 == 0 else "search"
        _record(m, 400.0 if label == "checkout" else 20.0, done_s=i / 40, label=label)
    m.record(Outcome("error", None, error_kind="connection_reset", label="checkout"))
    return m


def test_per_label_counts_sum_to_the_total_and_each_is_judged() -> None:
    result = _result(_labelled())
    views = result.by_label
    assert sorted(views) == ["checkout", "search"]
    assert sum(view.count for view in views.values()) == result.count == 401
    assert views["checkout"].count == 101 and views["checkout"].errors == 1
    assert views["checkout"].p99 == pytest.approx(0.4, rel=0.01)
    assert views["search"].p99 == pytest.approx(0.02, rel=0.01)
    views["search"].check(p99="100ms")
    with pytest.raises(SLOViolation, match="p99: measured 40"):
        views["checkout"].check(p99="100ms")
    assert result.by_label["search"].verdicts[0].budget == "p99"  # kept on the label's view
    assert result.verdicts == []  # the run's own verdicts are apart


def test_labels_survive_json_and_merges_and_reach_every_report() -> None:
    result = _result(_labelled())
    result.by_label["search"].check(p99="100ms")
    document = json.loads(json.dumps(result.to_dict()))
    assert document["labels"]["checkout"]["count"] == 101
    assert document["labels"]["search"]["verdicts"][0]["budget"] == "p99"
    again = RunResult.from_dict(document)
    assert again.by_label["checkout"].count == 101
    assert again.by_label["search"].verdicts[0].state == "pass"
    doubled = Measurements(highest_us=60_000_000)
    for _ in range(2):
        doubled.merge(Measurements.from_dict(document["measurements"]))
    assert _result(doubled).by_label["checkout"].count == 202
    text = "\n".join(render_burst("t::x", result))
    assert re.search(r"^  checkout\s+101\s+1\.0%", text, re.MULTILINE)
    assert re.search(r"^  search\s+300\s+0\.0%", text, re.MULTILINE)
    assert "PASS [search] p99" in text
    assert "<td>checkout</td><td>101</td>" in render_html([("t::x", document)])


def test_a_label_past_the_cap_is_a_one_line_error() -> None:
    m = Measurements(highest_us=60_000_000)
    for i in range(MAX_LABELS):
        _record(m, 1.0, label=f"l{i}")
    with pytest.raises(ConfigError) as info:
        _record(m, 1.0, label="one-too-many")
    message = str(info.value)
    assert "\n" not in message and "'one-too-many'" in message
    assert f"number {MAX_LABELS + 1}" in message and f"at most {MAX_LABELS}" in message


def test_an_unused_histogram_allocates_nothing_and_encodes_as_hdrh_does() -> None:
    empty = Histogram(60_000_000)
    assert empty.count == 0 and empty._hdr is None
    text = empty.encode()
    assert empty._hdr is None
    assert Histogram.decode(text, 60_000_000).count == 0
    assert text == Histogram(60_000_000).hdr.encode().decode("ascii")


def test_merging_results_files_keeps_the_slowest_and_the_labels() -> None:
    parts = []
    for shard in range(2):
        m = Measurements(highest_us=60_000_000)
        m.mark_release(0, 1_764_625_000.0)
        for i in range(60):
            _record(m, 10.0 + i + shard * 0.5, rid=f"s{shard}-{i}", done_s=i / 10,
                    label="checkout" if i % 2 else None)  # fmt: skip
        result = _result(m, shape={"kind": "burst", "requests": 60, "concurrency": 1})
        parts.append((f"shard{shard}.json", new_document([("t::x", result.to_dict())])))
    merged = merge_documents(parts)
    (run_dict,) = records_of(merged)
    run_dict = run_dict[1]
    kept = run_dict["slow_requests"]["slowest"]
    assert [e["request_id"] for e in kept[:2]] == ["s1-59", "s0-59"]
    assert len(kept) == SLOWEST_KEPT
    assert run_dict["labels"]["checkout"]["count"] == 60


def test_the_reports_have_a_place_for_an_error_kinds_first_messages() -> None:
    m = Measurements(highest_us=60_000_000)
    m.record(Outcome("error", 5_000_000, status=200, error_kind="check_failed"))
    result = _result(m, extras={"error_messages": {"check_failed": ["'total' missing"]}})
    text = "\n".join(render_burst("t::x", result))
    assert "  first messages by error kind:\n    check_failed: 'total' missing" in text
    assert "<code>check_failed: &#x27;total&#x27; missing</code>" in render_html(
        [("t::x", result.to_dict())]
    )
