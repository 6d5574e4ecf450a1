"""A fanned-out run end to end on loopback: the generator deployed into the emulator, whose
processes run the zip's handler (one per shard), firing at another emulator function.

Bounded for a 2-core machine: at most 8 shards of 2,500 requests at 100 connections each,
against a function that answers in 1 ms. With ten busy processes on two cores the event
loops lag more than on a machine of their own, so the runs here judge saturation at 250 ms
of loop lag and the start spread at 500 ms; the figures themselves are printed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hdrh.histogram import HdrHistogram

from pytest_lambda_slo import Burst, HttpTarget, LambdaFanout, LoadAborted, Ramp, Rate, run
from pytest_lambda_slo._fanout import cli as fanout_cli
from pytest_lambda_slo._fanout.deploy import cleanup
from pytest_lambda_slo._fanout.guards import FanoutRefused, FanoutWarning
from pytest_lambda_slo._load import remote, shard, worker
from pytest_lambda_slo._load.fanin import FanoutError
from pytest_lambda_slo._load.spec import (
    shape_from_spec,
    shape_to_spec,
    target_from_spec,
    target_to_spec,
)
from pytest_lambda_slo._pytest.ledger import Ledger
from pytest_lambda_slo._results.recorder import SIGNIFICANT_FIGURES
from pytest_lambda_slo._targets.invoke import InvokeTarget
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import ConfigError

LOOSE = {"max_loop_lag_s": 0.25}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator with the target (1 ms); the generator is deployed into it by the runs."""
    with Emulator(functions=["target:duration=1ms"], update_delay=0.2) as emulator:
        yield emulator


def _fanout(emu: Emulator, shards: int, **options: Any) -> LambdaFanout:
    return LambdaFanout(shards, endpoint_url=emu.url, start_tolerance="500ms", **options)


def _generator_stats(emu: Emulator) -> dict[str, Any]:
    found = {k: v for k, v in emu.stats()["functions"].items() if k.startswith("lambda-slo-gen")}
    return next(iter(found.values()), {"invocations": 0})


def _counts(encoded: str, highest_us: int) -> list[int]:
    """Bucket counts of an encoded HDR histogram, read with hdrhistogram itself."""
    histogram = HdrHistogram(1, highest_us, SIGNIFICANT_FIGURES)
    histogram.decode_and_add(encoded.encode("ascii"))
    return [histogram.get_count_at_index(i) for i in range(histogram.counts_len)]


def test_spec_round_trips_targets_and_shapes() -> None:
    http = HttpTarget(
        "http://127.0.0.1:9/x", method="post", headers={"X-A": "1"}, json={"k": [1, 2]},
        throttle_statuses=(429, 503), cold_start="x-cold", verify=False,
    )  # fmt: skip
    back = target_from_spec(json.loads(json.dumps(target_to_spec(http))))
    assert isinstance(back, HttpTarget)
    assert back.prepare().current_request() == http.prepare().current_request()
    assert (back.throttle_statuses, back.cold_start, back.verify) == ((429, 503), "x-cold", False)
    raw = HttpTarget("http://127.0.0.1:9/", method="PUT", body=b"\x00\xff")
    back_raw = target_from_spec(json.loads(json.dumps(target_to_spec(raw))))
    assert back_raw.prepare().current_request() == raw.prepare().current_request()
    invoke = InvokeTarget("fn", region="eu-west-1", payload={"a": 1}, endpoint_url="http://h:1")
    back_invoke = target_from_spec(json.loads(json.dumps(target_to_spec(invoke))))
    assert isinstance(back_invoke, InvokeTarget)
    assert (back_invoke.function, back_invoke.region, back_invoke.payload) == (
        "fn", "eu-west-1", {"a": 1},
    )  # fmt: skip
    for shape in (
        Burst(requests=10, concurrency=2, timeout="2s"),
        Rate(rps=5, duration="3s", max_in_flight=4),
        Ramp(users=4, spawn_rate=2, duration="3s", think_time="10ms"),
    ):
        assert shape_from_spec(json.loads(json.dumps(shape_to_spec(shape)))) == shape
    with pytest.raises(ConfigError, match=r"cold_start= a callable cannot be sent"):
        target_to_spec(HttpTarget("http://127.0.0.1:9/", cold_start=lambda response: True))
    with pytest.raises(ConfigError, match=r"profile='dev' cannot be used by a Lambda shard"):
        target_to_spec(InvokeTarget("fn", region="eu-west-1", profile="dev"))


def test_the_handler_runs_the_same_run_slice_as_local_workers(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No second implementation: the handler's run op is worker.run_slice itself.
    assert shard.run_slice is worker.run_slice
    calls: list[tuple[int, int]] = []

    def spy(target: Any, shape: Any, index: int, count: int, *args: Any, **kw: Any) -> Any:
        calls.append((index, count))
        return worker.run_slice(target, shape, index, count, *args, **kw)

    monkeypatch.setattr(shard, "run_slice", spy)
    event = remote.shard_event(
        target_to_spec(HttpTarget(emu.function_url("target"))),
        shape_to_spec(Burst(requests=30, concurrency=6)),
        1, 3, time.time_ns() + 50_000_000, None, {},
    )  # fmt: skip
    answer = shard.handler(json.loads(json.dumps(event)), None)
    assert calls == [(1, 3)]
    assert answer["measurements"]["count"] == 10  # its third of 30
    assert answer["started_ns"] >= answer["start_at_ns"]
    assert answer["peak_fds"] > 0 and answer["stopped_by"] is None


def test_burst_over_8_shards_merges_exactly_reuses_the_generator_and_cleans_up(
    emu: Emulator, aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fanout = _fanout(emu, 8)
    cleanup(fanout)
    emu.reset()
    merged_from: list[list[dict[str, Any]]] = []
    real_merge = remote.merge_shards

    def spy_merge(shape: Any, n: int, shards: Any, *args: Any, **kw: Any) -> Any:
        merged_from.append([s.answer for s in shards])
        return real_merge(shape, n, shards, *args, **kw)

    actions: list[str] = []
    real_ensure = remote.ensure_generator

    def spy_ensure(*args: Any, **kw: Any) -> Any:
        made = real_ensure(*args, **kw)
        actions.append(made.action)
        return made

    monkeypatch.setattr(remote, "merge_shards", spy_merge)
    monkeypatch.setattr(remote, "ensure_generator", spy_ensure)
    lines: list[str] = []
    extras: dict[str, Any] = {}
    target = HttpTarget(emu.function_url("target"))
    shape = Burst(requests=20000, concurrency=800)
    measurements, info = remote.run_fanout(
        target, shape, fanout, extras=extras, log=lines.append, **LOOSE
    )
    assert measurements.count == measurements.ok == 20000 and info.requests == 20000
    assert measurements.unsent == 0 and info.workers == 8
    # Exact: every bucket of the merged histogram is the sum of the shards' buckets.
    (answers,) = merged_from
    assert sorted(a["index"] for a in answers) == list(range(8))
    assert [a["measurements"]["count"] for a in answers] == [2500] * 8
    for name in ("all", "warm", "uncorrected"):
        merged = _counts(measurements.hist(name).encode(), measurements.highest_us)
        per_shard = [
            _counts(a["measurements"]["histograms"][name]["hdr"], measurements.highest_us)
            for a in answers
        ]
        assert merged == [sum(column) for column in zip(*per_shard, strict=True)], name
    report = extras["fanout"]
    assert report["generator"] == "created" and actions == ["created"]
    assert len(report["rows"]) == 8 and all(r["requests"] == 2500 for r in report["rows"])
    assert 0 <= report["start_spread_ms"] <= 500 and report["dispatch_s"] > 0
    assert report["probe"]["invocations"] == 16
    assert lines[0] == report["cost"] and lines[0].startswith("lambda-slo fanout: estimated")
    assert lines.index(report["cost"]) < next(
        i for i, line in enumerate(lines) if "dispatching 8 shards" in line
    )
    stats = emu.stats()["functions"]
    assert stats["target"]["invocations"] == 20000
    # 8 run invocations and two waves of 8 clock probes; nothing else was invoked.
    assert stats[report["function"]]["invocations"] == 8 + 16
    assert stats[report["function"]]["errors"] == {"Handled": 0, "Unhandled": 0}
    with capsys.disabled():  # the figures docs/fanout.md quotes
        print(
            f"\nmeasured: start spread {report['start_spread_ms']} ms, dispatch "
            f"{report['dispatch_s']} s, probe {report['probe']}, duration {info.duration_s:.2f} s"
        )

    # A second run (the public run()) reuses the generator: no CreateFunction.
    lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=emu.url)
    before = lam.get_function(FunctionName=report["function"])["Configuration"]
    result = run(
        target,
        Burst(requests=2000, concurrency=80),
        fanout=LambdaFanout(8, endpoint_url=emu.url, start_tolerance="500ms"),
    )
    assert result.count == 2000 and actions == ["created", "reused"]
    assert result.extras["fanout"]["generator"] == "reused"
    assert "estimated cost USD" in capsys.readouterr().err  # shown by run() on stderr
    after = lam.get_function(FunctionName=report["function"])["Configuration"]
    assert (after["CodeSha256"], after["LastModified"]) == (
        before["CodeSha256"], before["LastModified"],
    )  # fmt: skip

    # lambda-slo fanout cleanup removes it, and nothing else.
    code = fanout_cli.run(["fanout", "cleanup", "--endpoint-url", emu.url])
    assert code == 0
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.close()
    assert report["function"] not in names and "target" in names


def _rewrite_shard(monkeypatch: pytest.MonkeyPatch, index: int, change: dict[str, Any]) -> None:
    real = remote.shard_event

    def rewritten(*args: Any) -> dict[str, Any]:
        event = real(*args)
        if event["index"] == index:
            event.update({k: v(event) if callable(v) else v for k, v in change.items()})
        return event

    monkeypatch.setattr(remote, "shard_event", rewritten)


def test_a_failing_shard_makes_the_run_an_error_naming_it(
    emu: Emulator, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rewrite_shard(monkeypatch, 2, {"shape": {"kind": "nonsense"}})
    with pytest.raises(
        FanoutError,
        match=r"1 of 4 shards failed.*shard 2 of 4: function "
        r"error \(Unhandled\): ConfigError: shape kind='nonsense'",
    ) as caught:
        remote.run_fanout(
            HttpTarget(emu.function_url("target")), Burst(requests=400, concurrency=40),
            _fanout(emu, 4), **LOOSE,
        )  # fmt: skip
    assert caught.value.shard == 2
    rows = caught.value.table["rows"]
    assert [r["requests"] for r in rows if r["shard"] != 2] == [100, 100, 100]


def test_a_late_shard_makes_the_run_an_error_naming_it(
    emu: Emulator, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rewrite_shard(monkeypatch, 1, {"start_at_ns": lambda e: e["start_at_ns"] + 1_500_000_000})
    with pytest.raises(
        FanoutError, match=r"above start_tolerance=500 ms: shard 1 of 4 started 1[45]\d\d\.\d ms"
    ) as caught:
        remote.run_fanout(
            HttpTarget(emu.function_url("target")), Burst(requests=400, concurrency=40),
            _fanout(emu, 4), **LOOSE,
        )  # fmt: skip
    assert caught.value.shard == 1


def test_a_saturated_shard_makes_the_run_invalid_naming_it(emu: Emulator, aws_env: None) -> None:
    # Any loop lag is over a limit of 1 us: every shard's own watch calls it saturated.
    with pytest.raises(
        FanoutError, match=r"shard [01] of 2 was saturated: .*event-loop lag p99 .* over"
    ) as caught:
        remote.run_fanout(
            HttpTarget(emu.function_url("target")),
            Burst(requests=20_000, duration="1.5s", concurrency=8),
            _fanout(emu, 2), max_loop_lag_s=1e-6,
        )  # fmt: skip
    rows = caught.value.table["rows"]
    assert [r["saturated"] for r in rows] == [True, True]
    assert all(r["requests"] > 0 for r in rows)  # they ran: the verdict is refused, not lost


def test_a_throttled_shard_makes_the_run_an_error_saying_so(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the clock probe and the dispatch the generator's reserved concurrency drops to
    # 3 (another user's change, say): of 4 shards that all wait for their start instant,
    # the emulator runs 3 and throttles one with a 429. Its own emulator: the next test
    # finds the generator it deploys unreserved.
    real_probe = remote._probe

    def probe_then_reserve(client: Any, generator: Any, n: int, *args: Any) -> Any:
        found = real_probe(client, generator, n, *args)
        client.put_function_concurrency(
            FunctionName=generator.name, ReservedConcurrentExecutions=n - 1
        )
        return found

    monkeypatch.setattr(remote, "_probe", probe_then_reserve)
    with Emulator(["target:duration=1ms"], update_delay=0.2) as own:
        with pytest.raises(
            FanoutError,
            match=r"1 of 4 shards failed, the run is invalid: shard \d of 4: throttled at "
            r"dispatch \(TooManyRequestsException\): Lambda refused the invocation",
        ) as caught:
            remote.run_fanout(
                HttpTarget(own.function_url("target")), Burst(requests=400, concurrency=40),
                _fanout(own, 4), **LOOSE,
            )  # fmt: skip
        assert _generator_stats(own)["throttles"]["total"] == 1  # the emulator's own count
    rows = caught.value.table["rows"]
    assert sorted(r["requests"] for r in rows if "requests" in r) == [100, 100, 100]


def test_a_shard_that_never_answers_stops_the_run_at_the_hard_deadline(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shard 1 waits 60 s for its start instant; the run's hard deadline (the shape's 2 s
    # deadline plus a grace cut to 0.5 s here) passes first. Its own emulator: a handler
    # still waiting ends with it, not in the next test.
    monkeypatch.setattr(remote, "RESULT_GRACE_S", 0.5)
    monkeypatch.setattr(remote, "STOP_WAIT_S", 1.0)
    _rewrite_shard(monkeypatch, 1, {"start_at_ns": lambda e: e["start_at_ns"] + 60_000_000_000})
    lines: list[str] = []
    with Emulator(["target:duration=1ms"], update_delay=0.2) as own:
        with pytest.raises(
            FanoutError,
            match=r"hard deadline passed before every shard answered \(shards still running "
            r"at the deadline: 1; they were stopped\)",
        ) as caught:
            remote.run_fanout(
                HttpTarget(own.function_url("target")),
                Burst(requests=200, concurrency=10, deadline="2s"),
                _fanout(own, 2), log=lines.append, **LOOSE,
            )  # fmt: skip
    assert caught.value.shard == 1
    report = caught.value.table
    assert report["late_shards"] == [1]
    first, late = report["rows"]
    assert first["requests"] == 100 and first["stopped_by"] is None  # measured and kept
    # The late shard was still waiting for its start instant: the stop reached it there.
    assert late["requests"] == 0
    assert late["stopped_by"] == "generator stopped (reserved concurrency 0)"
    assert any("stopping every shard (deadline)" in line for line in lines)


def test_ctrl_c_stops_every_shard_and_reports_what_was_measured(
    emu: Emulator, aws_env: None
) -> None:
    extras: dict[str, Any] = {}
    lines: list[str] = []
    fired: list[float] = []

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("dispatching" in x for x in lines):
            time.sleep(0.05)
        time.sleep(4.0)  # the start margin, then some load
        fired.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt) as caught:
        remote.run_fanout(
            HttpTarget(emu.function_url("target")), Burst(duration="60s", concurrency=16),
            _fanout(emu, 4), extras=extras, log=lines.append, **LOOSE,
        )  # fmt: skip
    stopped_in = time.monotonic() - fired[0]
    aborted = caught.value.__cause__
    assert isinstance(aborted, LoadAborted) and aborted.measurements is not None
    assert aborted.measurements.count > 0
    assert aborted.run_info is not None and aborted.run_info.stopped == "cancelled"
    rows = extras["fanout"]["rows"]
    assert [r["stopped_by"] for r in rows] == ["generator stopped (reserved concurrency 0)"] * 4
    assert sum(r["requests"] for r in rows) == aborted.measurements.count
    assert aborted.run_info.duration_s < 30  # far short of the 60 s asked: it was stopped
    print(f"\nmeasured: Ctrl-C to every shard's partial results in {stopped_in:.2f} s")


def test_the_cost_line_comes_first_and_max_cost_refuses(emu: Emulator, aws_env: None) -> None:
    invoked = _generator_stats(emu)["invocations"]
    lines: list[str] = []
    with pytest.raises(FanoutRefused, match=r"above max_cost=USD 0\.0001"):
        remote.run_fanout(
            HttpTarget(emu.function_url("target")), Burst(requests=400, concurrency=40),
            _fanout(emu, 4, max_cost=0.0001), log=lines.append,
        )  # fmt: skip
    assert len(lines) == 1 and lines[0].startswith("lambda-slo fanout: estimated cost USD")
    assert _generator_stats(emu)["invocations"] == invoked  # nothing was fired
    # The session's cap: the ledger takes the estimate once max_cost passed, or refuses it.
    ledger = Ledger(100_000, 60.0, max_fanout_cost_usd=0.01)
    ledger.spend_fanout(0.0099, "an earlier run")
    with pytest.raises(FanoutRefused, match=r"above the session cap lambda_slo_max_fanout_cost"):
        remote.run_fanout(
            HttpTarget(emu.function_url("target")), Burst(requests=400, concurrency=40),
            _fanout(emu, 4), spend=lambda usd: ledger.spend_fanout(usd, "this run"),
        )  # fmt: skip
    assert ledger.fanout_spent() == pytest.approx(0.0099)  # a refused run adds nothing
    assert _generator_stats(emu)["invocations"] == invoked


def test_an_invoke_target_sharing_the_generators_pool(emu: Emulator, aws_env: None) -> None:
    target = InvokeTarget("target", endpoint_url=emu.url, region="us-east-1")
    shape = Burst(requests=40, concurrency=4)
    with pytest.raises(FanoutRefused, match=r"share the unreserved concurrency pool"):
        remote.run_fanout(target, shape, _fanout(emu, 2), **LOOSE)
    with pytest.warns(FanoutWarning, match=r"share the unreserved concurrency pool"):
        measurements, _info = remote.run_fanout(
            target, shape, _fanout(emu, 2, shared_pool="warn"), **LOOSE
        )
    assert measurements.count == measurements.ok == 40


def test_bad_plans_are_refused_before_anything_happens(emu: Emulator) -> None:
    target = HttpTarget(emu.function_url("target"))
    with pytest.raises(ConfigError, match=r"fanout=8 shards is more than the run's 4 in flight"):
        remote.run_fanout(target, Burst(requests=40, concurrency=4), _fanout(emu, 8))
    with pytest.raises(FanoutRefused, match=r"use at least 2 shards"):
        remote.run_fanout(target, Burst(requests=2000, concurrency=1000), _fanout(emu, 1))
    with pytest.raises(ConfigError, match=r"do not fit in the generator's timeout \(60s\)"):
        remote.run_fanout(target, Burst(duration="55s", concurrency=4), _fanout(emu, 2,
                          timeout="60s"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"workers=2 with fanout= is not valid"):
        run(target, Burst(requests=40, concurrency=4), workers=2, fanout=2)
    with pytest.raises(ConfigError, match=r"fanout='many' is not valid"):
        run(target, Burst(requests=40, concurrency=4), fanout="many")


def test_the_fixture_and_the_session_option_fan_out(
    emu: Emulator, aws_env: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --lambda-slo-fanout N sets the shard count; where the generator runs comes from the
    # AWS config chain (here botocore's AWS_ENDPOINT_URL_LAMBDA: the emulator).
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", emu.url)
    monkeypatch.setenv("SLO_URL", emu.function_url("target"))
    pytester.makeini("[pytest]\nlambda_slo_max_loop_lag = 250ms\n")
    pytester.makepyfile(
        """
        import os
        from pytest_lambda_slo import LambdaFanout

        def test_session_option(lambda_slo):
            result = lambda_slo.burst(os.environ["SLO_URL"], requests=300, concurrency=30)
            assert result.count == 300
            assert result.extras["fanout"]["shards"] == 3
            assert len(result.extras["fanout"]["rows"]) == 3

        def test_per_call(lambda_slo):
            fanout = LambdaFanout(2, start_tolerance="500ms")
            result = lambda_slo.rate(os.environ["SLO_URL"], rps=100, duration="2s",
                                     fanout=fanout)
            assert result.count == 200
            assert [row["requests"] for row in result.extras["fanout"]["rows"]] == [100, 100]
        """
    )
    outcome = pytester.runpytest_subprocess("--lambda-slo-fanout", "3", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=2)
    bad = pytester.runpytest_subprocess("--lambda-slo-fanout", "lots")
    assert "--lambda-slo-fanout='lots' (or ini lambda_slo_fanout) is not valid" in str(bad.stderr)
    # The session's cost cap (ini lambda_slo_max_fanout_cost): the first run's estimate
    # (USD 0.0315) fits, with the second's (USD 0.0031) it does not: refused before it fires.
    pytester.makeini(
        "[pytest]\nlambda_slo_max_loop_lag = 250ms\nlambda_slo_max_fanout_cost = 0.033\n"
    )
    capped = pytester.runpytest_subprocess("--lambda-slo-fanout", "3", "-p", "no:cacheprovider")
    capped.assert_outcomes(passed=1, failed=1)
    capped.stdout.fnmatch_lines(
        ["*FanoutRefused: * would bring this session's fan-out estimates to USD 0.0346, above "
         "the session cap lambda_slo_max_fanout_cost=0.033 (USD)*"]
    )  # fmt: skip
