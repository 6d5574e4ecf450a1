"""Firing until decided: auto bursts and rates stop when their budgets are decided, at a
certain FAIL, or at their maximum, and say why; bad input is a one-line error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import anyio
import pytest

from pytest_lambda_slo import Burst, Emulator, Rate, arun, run
from pytest_lambda_slo._load.runinfo import RunInfo
from pytest_lambda_slo._load.waves import Judging, WavePlan
from pytest_lambda_slo._results.recorder import Measurements, Outcome
from pytest_lambda_slo._results.result import RunResult
from pytest_lambda_slo._results.shares import decide_n
from pytest_lambda_slo._results.verdicts import judge_all
from pytest_lambda_slo.errors import ConfigError, LoadAborted

ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")
# Fast (about 5 ms) and slow (about 20 ms, never under 5 ms) functions, no init time.
FUNCTIONS = [
    "fast:duration=lognormal(5ms,0.3),init=0ms",
    "slow:duration=lognormal(20ms,0.3),init=0ms",
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(functions=FUNCTIONS, seed=10) as e:
        yield e


@pytest.fixture
def urls(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emu.reset(environments=True)
    monkeypatch.setenv("FAST_URL", emu.function_url("fast"))
    monkeypatch.setenv("SLOW_URL", emu.function_url("slow"))
    return emu


def served(emu: Emulator, name: str) -> int:
    return int(emu.function_stats(name)["invocations"])


def verdict_states(result: RunResult) -> dict[str, str]:
    return {v.budget: v.state for v in result.verdicts}


# -- the three endings -------------------------------------------------------------------------


def test_a_good_function_is_decided_pass_before_the_fixed_n(urls: Emulator) -> None:
    shape = Burst(requests="auto", concurrency=50, max_requests=20_000, budgets={"p99": "1s"})
    result = run(urls.function_url("fast"), shape)
    assert result.run["stopped"] == "decided"
    assert verdict_states(result) == {"p99": "pass", "throttle_rate": "pass"}
    # Fewer than the fixed n that decides a p99 10% under its budget 90% of the time.
    fixed_n = decide_n(99.0, 0.95)
    assert fixed_n is not None and result.count < fixed_n < 20_000
    assert result.count == served(urls, "fast")  # the server saw the run stop
    sequential = result.run["sequential"]
    assert sequential["note"] == "every budget decided"
    assert sequential["waves"] == result.run["waves"] == result.count // 250
    p99 = result.verdicts[0]
    assert "fired until decided: decided by the sequential test after" in p99.note
    # The bounds shown are at the test's share of the levels: 90% of 5% (the final bounds
    # at the maximum keep the other 10%).
    assert p99.pass_confidence == pytest.approx(1 - 0.9 * 0.05)


def test_a_function_far_over_its_budget_stops_after_the_first_wave(urls: Emulator) -> None:
    shape = Burst(requests="auto", concurrency=50, max_requests=20_000, budgets={"p99": "5ms"})
    result = run(urls.function_url("slow"), shape)
    assert result.run["stopped"] == "certain_fail"
    assert result.run["waves"] == 1 and result.count == 250
    assert served(urls, "slow") == result.count < 20_000
    assert verdict_states(result)["p99"] == "fail"
    assert result.run["sequential"]["note"] == "p99 certainly broken after 250 requests"


def test_a_budget_the_data_cannot_decide_ends_inconclusive_at_the_maximum(
    urls: Emulator,
) -> None:
    # A p99.9 needs 2,995 requests to pass at 95%: with at most 1,000 it cannot, and no
    # request comes near 2 s, so it cannot fail either.
    shape = Burst(requests="auto", concurrency=20, max_requests=1000, budgets={"p999": "2s"})
    result = run(urls.function_url("fast"), shape)
    assert result.run["stopped"] == "max_requests" and result.count == 1000
    assert served(urls, "fast") == 1000
    assert result.run["sequential"]["note"] == "max_requests=1,000 reached; the final bounds decide"
    p999 = result.verdicts[0]
    assert p999.state == "inconclusive"
    assert "fired until decided: judged by the final bounds at 10% of the levels" in p999.note
    assert p999.needed_n is not None and p999.needed_n > 1000
    assert "p999 can never pass with 1,000 requests" in p999.advice


def test_an_auto_rate_runs_waves_of_seconds_until_decided(urls: Emulator) -> None:
    shape = Rate(rps=300, duration="auto", max_duration="12s", budgets={"p99": "1s"})
    result = run(urls.function_url("fast"), shape)
    assert result.run["stopped"] == "decided"
    assert verdict_states(result) == {"p99": "pass", "throttle_rate": "pass"}
    assert result.count < 3600 and result.count == served(urls, "fast")
    assert result.run["waves"] == round(result.count / 900)  # waves of 3 s at 300/s
    assert result.shape["duration"] == "auto" and result.shape["max_duration_s"] == 12.0


def test_an_awaited_auto_burst_fans_out_and_decides_the_same_way(urls: Emulator) -> None:
    shape = Burst(requests="auto", concurrency=20, budgets={"p99": "1s"})
    result = anyio.run(lambda: arun(urls.function_url("fast"), shape, workers=2))
    assert result.run["stopped"] == "decided" and result.run["workers"] == 2
    assert verdict_states(result) == {"p99": "pass", "throttle_rate": "pass"}
    assert result.count == served(urls, "fast") == 200 * result.run["waves"]


def test_a_certainly_broken_budget_leaves_the_others_undecided(urls: Emulator) -> None:
    budgets = {"p99": "5ms", "p999": "2s"}
    result = run(urls.function_url("slow"), Burst(requests="auto", concurrency=50,
                                                  budgets=budgets))  # fmt: skip
    assert result.run["stopped"] == "certain_fail"
    states = verdict_states(result)
    assert states["p99"] == "fail" and states["p999"] == "inconclusive"
    p999 = next(v for v in result.verdicts if v.budget == "p999")
    assert "undecided by the sequential test when the run stopped" in p999.note


# -- the verdicts read the sequential record ---------------------------------------------------


def test_judging_the_run_again_keeps_the_sequential_states_until_the_data_change(
    urls: Emulator,
) -> None:
    shape = Burst(requests="auto", concurrency=50, budgets={"p99": "1s"})
    result = run(urls.function_url("fast"), shape)
    again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
    again.verdicts.clear()  # judged afresh: the implied throttle budget again included
    first = [(v.budget, v.state, v.note) for v in result.verdicts]
    assert [(v.budget, v.state, v.note) for v in judge_all(again, [("p99", 1.0, "check")])] == first
    # Other data (say shards merged): judged as any fixed-n run, at the full levels.
    again.measurements.merge(result.measurements)
    verdict = judge_all(again, [("p99", 1.0, "check")])[0]
    assert "fired until decided" not in verdict.note and verdict.pass_confidence == 0.95


# -- Ctrl-C: every wave's measurements are kept ----------------------------------------------


def _wave_info(requests: int) -> RunInfo:
    return RunInfo(started_at=time.time(), duration_s=0.5, requests=requests, concurrency=10,
                   timeout_s=30.0, deadline_s=60.0, duration_limit_s=None, stopped=None,
                   event_loop="asyncio", loop_lag_max_ms=0.0, loop_lag_p99_ms=0.0,
                   cpu_s=0.1)  # fmt: skip


def _wave(requests: int) -> Measurements:
    m = Measurements(highest_us=60_000_000)
    for _ in range(requests):
        m.record(Outcome("ok", 5_000_000, status=200))
    return m


def test_an_interrupted_wave_carries_every_waves_measurements() -> None:
    shape = Burst(requests="auto", concurrency=10, budgets={"p99": "1s"})
    plan = WavePlan(shape, Judging(), lambda m, i: RunResult(m, i.to_dict(), "GET x"))
    first = plan.next_wave()
    assert isinstance(first, Burst) and first.requests == 200
    plan.add((_wave(200), _wave_info(200)))
    assert plan.stopped is None  # 200 clean requests: p99 not decided yet
    interrupted = LoadAborted("Ctrl-C", _wave(120), _wave_info(200))
    try:
        raise KeyboardInterrupt("load run interrupted") from interrupted
    except KeyboardInterrupt as exc:
        plan.keep_partial(exc)
    assert interrupted.measurements is not None and interrupted.measurements.count == 320
    assert interrupted.run_info is not None and interrupted.run_info.waves == 2
    assert interrupted.run_info.sequential is not None
    assert plan.next_wave() is None


# -- through pytest: marker budgets decide, budgets= are checked, the report says why ----------

AUTO_TESTS = """
import os
import pytest

@pytest.mark.lambda_slo(p99="5ms")
def test_marker_decides(lambda_slo):
    lambda_slo.burst(os.environ["SLOW_URL"], requests="auto", concurrency=50, max_requests=5000)

def test_budgets_pass(lambda_slo):
    result = lambda_slo.burst(os.environ["FAST_URL"], requests="auto", concurrency=50,
                              budgets={"p99": "1s"})
    assert result.run["stopped"] == "decided"

def test_budgets_fail(lambda_slo):
    lambda_slo.burst(os.environ["SLOW_URL"], requests="auto", concurrency=50,
                     budgets={"p99": "5ms"})
"""


def test_auto_runs_through_pytest_stop_and_say_why(
    pytester: pytest.Pytester, urls: Emulator
) -> None:
    pytester.makepyfile(test_inner_auto=AUTO_TESTS)
    out = pytester.path / "slo.json"
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report", f"--lambda-slo-json={out}")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["  stopped after 1 wave (250 requests): p99 certainly broken after 250 requests"]
    )
    result.stdout.fnmatch_lines(["  stopped after * waves (* requests): every budget decided"])
    result.stdout.fnmatch_lines(["*SLOViolation: 1 SLO budget(s) broken*"])
    runs = json.loads(out.read_text())["bursts"]
    by_test = {r["test_id"].split("::")[-1]: r for r in runs}
    marker = by_test["test_marker_decides"]
    assert marker["run"]["stopped"] == "certain_fail" and marker["count"] == 250
    assert [(v["budget"], v["source"], v["state"]) for v in marker["verdicts"]] == [
        ("p99", "marker", "fail"), ("throttle_rate", "default", "pass")]  # fmt: skip
    assert by_test["test_budgets_fail"]["verdicts"][0]["state"] == "fail"
    assert served(urls, "slow") == 500  # two runs of one wave each, nowhere near 5,000


def test_an_auto_run_reserves_its_maximum_of_the_session_cap(
    pytester: pytest.Pytester, urls: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_requests = 1000\n")
    pytester.makepyfile(
        test_cap="""
        import os

        def test_too_big(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests="auto", concurrency=10,
                             budgets={"p99": "1s"})

        def test_fits(lambda_slo):
            result = lambda_slo.burst(os.environ["FAST_URL"], requests="auto", concurrency=10,
                                      max_requests=1000, budgets={"p99": "1s"})
            assert result.count <= 1000
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*would send 20000 requests but only 1000 of the session cap*"])
    assert served(urls, "fast") <= 1000


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Burst(requests="auto", concurrency=50, max_requests=10),
         "max_requests=10 is less than concurrency=50; use max_requests >= concurrency"),
        (lambda: Burst(requests="auto", concurrency=5, max_requests=0),
         "max_requests=0 is not valid; use a whole number >= 1"),
        (lambda: Burst(requests=100, concurrency=5, max_requests=1000),
         "max_requests=1000 only bounds requests='auto'"),
        (lambda: Burst(requests=100, concurrency=5, budgets={"p99": "1s"}),
         "budgets= decides when requests='auto' stops"),
        (lambda: Burst(requests="auto", concurrency=5, budgets={}),
         "budgets={} is not valid; use a dict of budgets"),
        (lambda: Burst(requests="auto", concurrency=5, budgets={"p99": "fast"}),
         "p99='fast' is not a valid duration"),
        (lambda: Burst(requests="auto", concurrency=5, duration="10s"),
         "requests='auto' fires until its budgets are decided and takes no duration="),
        (lambda: Burst(requests="lots", concurrency=5),
         "requests='lots' is not valid; use a whole number >= 1 or 'auto'"),
        (lambda: Rate(rps=10, duration="10s", max_duration="1m"),
         "max_duration='1m' only bounds duration='auto'"),
        (lambda: Rate(rps=10, duration="auto", max_duration="soon"),
         "max_duration='soon' is not a valid duration"),
    ],
)  # fmt: skip
def test_bad_auto_shapes_are_one_line_errors(build: object, fragment: str) -> None:
    assert callable(build)
    with pytest.raises(ConfigError) as info:
        build()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_an_auto_run_without_any_budget_is_refused_before_firing(urls: Emulator) -> None:
    with pytest.raises(ConfigError, match="no budget applies: pass budgets=") as info:
        run(urls.function_url("fast"), Burst(requests="auto", concurrency=5))
    assert "\n" not in str(info.value)
    assert served(urls, "fast") == 0


def test_the_fixture_refuses_an_auto_run_without_budgets(
    pytester: pytest.Pytester, urls: Emulator
) -> None:
    pytester.makepyfile(
        test_none="""
        import os

        def test_none(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests="auto", concurrency=5)
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ConfigError: requests='auto' fires until its budgets are*"])
    assert served(urls, "fast") == 0


def test_an_auto_run_is_not_fanned_out_over_lambda_shards(urls: Emulator) -> None:
    shape = Burst(requests="auto", concurrency=5, budgets={"p99": "1s"})
    with pytest.raises(ConfigError, match="cannot be fanned out over Lambda shards") as info:
        run(urls.function_url("fast"), shape, fanout=2)
    assert "\n" not in str(info.value) and served(urls, "fast") == 0
