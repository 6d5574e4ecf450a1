"""The plugin as users meet it, through pytester: budgets, marker, ini, report, JSON."""

from __future__ import annotations

import json

import pytest

from pytest_lambda_slo.emulator import Emulator

pytestmark = pytest.mark.filterwarnings("error")
# Inner runs see only this plugin's behaviour: no cache files, and no unrelated plugins
# (pytest-benchmark, where installed, warns under xdist and warnings are errors here).
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")


@pytest.fixture
def target_env(fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("FAST_URL", fresh_emulator.function_url("fast"))
    monkeypatch.setenv("SLOW_URL", fresh_emulator.function_url("slow"))
    monkeypatch.setenv("TIGHT_URL", fresh_emulator.function_url("tight"))
    return fresh_emulator


USER_TESTS = """
import os
import pytest
from pytest_lambda_slo import HttpTarget

FAST = HttpTarget(os.environ["FAST_URL"], cold_start="x-cold-start")
SLOW = os.environ["SLOW_URL"]

def test_check_loose(lambda_slo):
    # 300 requests: the fewest with which a p99 can pass at 95%. A few cold starts cannot
    # show a cold-start p99, so their budget is the literal maximum.
    result = lambda_slo.burst(FAST, requests=300, concurrency=8)
    result.check(p99="5s", error_rate="0%", throttle_rate="0%", cold_start_max="5s")
    assert result.count == 300 and result.ok == 300

def test_check_tight(lambda_slo):
    result = lambda_slo.burst(SLOW, requests=20, concurrency=4)
    result.check(p99="1ms", p50="2ms")

@pytest.mark.lambda_slo(p50="5s", max="10s")
def test_marker_loose(lambda_slo):
    lambda_slo.burst(SLOW, requests=60, concurrency=20)

@pytest.mark.lambda_slo(p99="1ms")
def test_marker_tight(lambda_slo):
    lambda_slo.burst(SLOW, requests=8, concurrency=4)
"""


def test_new_user_file_passes_loose_and_fails_tight(
    pytester: pytest.Pytester, target_env: Emulator
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*SLOViolation: 2 SLO budget(s) broken for GET http://127.0.0.1:*/url/slow/:",
            "*p99: measured *ms, bounds ?*? over budget 1.0ms (n=20; *",
            "*p50: measured *ms, bounds ?*? over budget 2.0ms (n=20; *",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*1 SLO budget(s) broken*", "*p99: measured *over budget 1.0ms (n=8; *"]
    )
    # A marker violation is a failure of the call phase, never a teardown error.
    assert "error" not in result.parseoutcomes()
    stats = target_env.stats()["functions"]
    assert stats["fast"]["invocations"] == 300
    assert stats["slow"]["invocations"] == 20 + 60 + 8


def test_marker_beats_ini_and_closest_marker_wins(
    pytester: pytest.Pytester, target_env: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_p99 = 1ms\nlambda_slo_error_rate = 0%\n")
    pytester.makepyfile(
        test_prec="""
        import os
        import pytest

        pytestmark = pytest.mark.lambda_slo(p99="2ms")

        def test_ini_and_module(lambda_slo):
            lambda_slo.burst(os.environ["SLOW_URL"], requests=4, concurrency=2)

        @pytest.mark.lambda_slo(p99="10s")
        class TestLoose:
            def test_class_marker(self, lambda_slo):  # 300: enough for a p99 to pass
                lambda_slo.burst(os.environ["SLOW_URL"], requests=300, concurrency=30)

            @pytest.mark.lambda_slo(p99="1us")
            def test_function_marker(self, lambda_slo):
                lambda_slo.burst(os.environ["SLOW_URL"], requests=4, concurrency=2)
        """
    )
    result = pytester.runpytest(*ISOLATED, "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_class_marker PASSED*"])
    result.stdout.fnmatch_lines(["*p99: measured *over budget 2.0ms (n=4; *"])
    result.stdout.fnmatch_lines(["*p99: measured *over budget 1us (n=4; *"])


def test_ini_default_applies_to_every_burst(
    pytester: pytest.Pytester, target_env: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_p50 = 1us\n")
    pytester.makepyfile(
        test_ini="""
        import os

        def test_one(lambda_slo):
            lambda_slo.burst(os.environ["SLOW_URL"], requests=8, concurrency=4)
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(failed=1)
    # 8 of 8 over: enough to show a median broken at 99% confidence (2 of 2 would not be).
    result.stdout.fnmatch_lines(["*p50: measured *over budget 1us (n=8; *"])


def test_report_and_json(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makepyfile(
        test_rep="""
        import os
        import pytest
        from pytest_lambda_slo import HttpTarget

        @pytest.mark.lambda_slo(max="10s", throttle_rate="100%")
        def test_mixed(lambda_slo):
            target = HttpTarget(os.environ["TIGHT_URL"])
            result = lambda_slo.burst(target, requests=30, concurrency=10)
            assert result.throttles > 0

        def test_cold(lambda_slo):
            target = HttpTarget(os.environ["FAST_URL"], cold_start="x-cold-start")
            lambda_slo.burst(target, requests=10, concurrency=5).check(
                cold_start_max="10s", throttle_count=0)
        """
    )
    out = pytester.path / "out" / "slo.json"
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report", f"--lambda-slo-json={out}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= lambda-slo report =*",
            "test_rep.py::test_mixed",
            "  target: GET http://127.0.0.1:*/url/tight/",
            "  shape: burst, 30 requests, 10 concurrent | took *s, * req/s",
            "  latency*min*p50*p90*p99*p99.9*max*n",
            "  all *",
            "  cold starts: not detectable for this target",
            "  requests: 30, ok: *, throttled: *, errors: 0 (0.0%)",
            "  status codes: 200: *, 429: *",
            "  budgets:",
            "    PASS ?marker? max: measured * <= budget 10.000s (n=*, literal)*",
            "    PASS ?marker? throttle_rate: measured * <= budget 100.00% (n=30,",
            "  response time histogram:",
            "*|■*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["test_rep.py::test_cold", "  warm *", "  cold *", "  cold starts: 5 (50.0%), p99 *"]
    )
    report = result.stdout.str().split("lambda-slo report", 1)[1].split("lambda-slo: 2 run(s)")[0]
    report_lines = report.splitlines()[1:]
    assert all(len(line) <= 80 for line in report_lines if not line.startswith("="))
    document = json.loads(out.read_text())
    assert document["format"] == "pytest-lambda-slo/1"
    mixed, cold = document["bursts"]
    assert mixed["test_id"] == "test_rep.py::test_mixed"
    assert mixed["shape"]["requests"] == 30 and mixed["shape"]["concurrency"] == 10
    assert mixed["count"] == 30 and mixed["throttles"] + mixed["ok"] == 30
    assert set(mixed["latency_ms"]["all"]) >= {"min", "mean", "p50", "p90", "p95", "p99", "p999",
                                               "max"}  # fmt: skip
    assert mixed["status_codes"]["429"] == mixed["throttles"]
    assert [v["budget"] for v in mixed["verdicts"]] == ["max", "throttle_rate"]
    assert mixed["measurements"]["histograms"]["all"]["hdr"]
    assert cold["cold_starts"] == 5 and cold["latency_ms"]["cold"]["count"] == 5
    assert cold["verdicts"][0]["source"] == "check"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("@pytest.mark.lambda_slo(p98='1s')", "unknown SLO budget 'p98'; known budgets: p50"),
        ("@pytest.mark.lambda_slo(p99='fast')", "p99='fast' is not a valid duration; use"),
        ("@pytest.mark.lambda_slo('1s')", "takes budgets as keywords only"),
    ],
)
def test_bad_marker_is_a_usage_error(pytester: pytest.Pytester, source: str, message: str) -> None:
    pytester.makepyfile(test_bad=f"import pytest\n\n{source}\ndef test_x():\n    pass\n")
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: test_bad.py::test_x: *{message}*"])


def test_bad_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nlambda_slo_throttle_rate = lots\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini key lambda_slo_throttle_rate='lots' is not a valid*"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("requests=0, concurrency=1", "requests=0 is not valid; use a whole number >= 1"),
        ("requests=5, concurrency=0", "concurrency=0 is not valid; use a whole number >= 1"),
        ("requests=5, concurrency=10", "concurrency=10 is greater than requests=5"),
        ("requests=5, concurrency=1, timeout='-3ms'", "timeout='-3ms' is not a valid duration"),
    ],
)
def test_bad_shape_arguments(pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makepyfile(
        test_shape=f"""
        def test_x(lambda_slo):
            lambda_slo.burst("http://127.0.0.1:9/", {call})
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E * pytest_lambda_slo.errors.ConfigError: {message}*"])
    # The caller's line, not a traceback from inside the plugin.
    assert "pytest_lambda_slo/_pytest/session.py" not in result.stdout.str()


def test_unsupported_scheme(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_scheme="""
        def test_x(lambda_slo):
            lambda_slo.burst("ftp://127.0.0.1/", requests=1, concurrency=1)
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.stdout.fnmatch_lines(["*ConfigError: target URL 'ftp://127.0.0.1/' has unsupported*"])


SKIP_ONLY = """
import os

def test_unit():
    pass

def test_load(lambda_slo):
    lambda_slo.burst(os.environ["FAST_URL"], requests=2, concurrency=1)
"""


def test_skip_and_only(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makepyfile(test_so=SKIP_ONLY)
    pytester.runpytest(*ISOLATED, "--lambda-slo-skip").assert_outcomes(passed=1, skipped=1)
    pytester.runpytest(*ISOLATED, "--lambda-slo-only").assert_outcomes(passed=1, deselected=1)
    assert target_env.stats()["functions"]["fast"]["invocations"] == 2


def test_session_request_cap(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_requests = 5\n")
    pytester.makepyfile(
        test_cap="""
        import os

        def test_first(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests=4, concurrency=2)

        def test_second(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests=4, concurrency=2)
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*LoadAborted: * would send 4 requests but only 1 of the session "
                                 "cap lambda_slo_max_requests=5 remain*"])  # fmt: skip
    assert target_env.stats()["functions"]["fast"]["invocations"] == 4


ASYNC_TESTS = """
import os
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_async_burst(lambda_slo):
    result = await lambda_slo.aburst(os.environ["FAST_URL"], requests=6, concurrency=3)
    assert result.count == 6 and result.ok == 6
    result.check(max="10s", throttle_count=0)
"""


def test_aburst_on_asyncio_and_trio(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makepyfile(test_async=ASYNC_TESTS)
    pytester.runpytest(*ISOLATED).assert_outcomes(passed=2)
    assert target_env.stats()["functions"]["fast"]["invocations"] == 12


def test_xdist_report_and_target_serialisation(
    pytester: pytest.Pytester, target_env: Emulator
) -> None:
    pytester.makepyfile(
        test_x1="""
        import os
        def test_a(lambda_slo):
            lambda_slo.burst(os.environ["TIGHT_URL"], requests=4, concurrency=2).check(
                throttle_count=0)
        """,
        test_x2="""
        import os
        def test_b(lambda_slo):
            lambda_slo.burst(os.environ["TIGHT_URL"], requests=4, concurrency=2).check(
                throttle_count=0)
        """,
    )
    out = pytester.path / "x.json"
    result = pytester.runpytest_subprocess(
        *ISOLATED, "-n", "2", "--lambda-slo-report", f"--lambda-slo-json={out}"
    )
    # reserved=2 and two bursts of concurrency 2: only serialisation keeps them throttle-free.
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*= lambda-slo report =*", "*serialised with other xdist workers*"]
    )
    assert {b["test_id"] for b in json.loads(out.read_text())["bursts"]} == {
        "test_x1.py::test_a", "test_x2.py::test_b"}  # fmt: skip
    stats = target_env.stats()["functions"]["tight"]
    assert stats["invocations"] == 8 and stats["throttles"]["total"] == 0


def test_session_load_time_cap_bounds_a_run(
    pytester: pytest.Pytester, target_env: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_load_time = 500ms\n")
    pytester.makepyfile(
        test_time_cap="""
        import os

        def test_long(lambda_slo):
            # 200 sequential 60 ms requests would take 12 s: the cap stops it at 0.5 s.
            result = lambda_slo.burst(os.environ["SLOW_URL"], requests=200, concurrency=1)
            assert result.run["stopped"] == "deadline"
            assert 0 < result.count < 200
            assert result.count + result.unsent == 200

        def test_after_the_cap(lambda_slo):
            lambda_slo.burst(os.environ["SLOW_URL"], requests=1, concurrency=1)
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*LoadAborted: * would pass the session's load-time cap *"])
    report = pytester.runpytest(*ISOLATED, "--lambda-slo-report", "-k", "test_long")
    report.stdout.fnmatch_lines(
        ["  deadline cut to 0.5s: what was left of lambda_slo_max_load_time"]
    )


SHAPES = """
import os
import pytest

def test_rate(lambda_slo):
    result = lambda_slo.rate(os.environ["FAST_URL"], rps=100, duration="1s")
    assert result.shape["kind"] == "rate" and result.shape["rps"] == 100
    assert 90 <= result.count + result.unsent <= 101
    assert result.uncorrected.count == result.all.count > 0
    result.check(error_rate="0%", p90="5s")  # about 100 requests: enough for a p90

def test_ramp(lambda_slo):
    result = lambda_slo.ramp(os.environ["SLOW_URL"], users=6, spawn_rate=20, duration="1s")
    assert result.shape["kind"] == "ramp" and result.shape["users"] == 6
    assert result.count > 6
    result.check(error_rate="0%")

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_async_rate_and_ramp(lambda_slo):
    rate = await lambda_slo.arate(os.environ["FAST_URL"], rps=50, duration="0.5s")
    ramp = await lambda_slo.aramp(os.environ["FAST_URL"], users=2, spawn_rate=10, duration="0.5s")
    assert rate.count > 0 and ramp.count > 0
"""


def test_rate_and_ramp_shapes(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makepyfile(test_user_shapes=SHAPES)
    out = pytester.path / "shapes.json"
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report", f"--lambda-slo-json={out}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "  shape: rate, 100 req/s target, 1 s | took *",
            "  uncorr. *",
            "  open model: intended 100.0 req/s, sent * req/s, late starts: *",
        ]
    )
    result.stdout.fnmatch_lines(["  shape: ramp, 6 users, 20 users/s spawn rate, 1 s | took *"])
    bursts = json.loads(out.read_text())["bursts"]
    assert [b["shape"]["kind"] for b in bursts] == ["rate", "ramp", "rate", "ramp", "rate", "ramp"]
    assert "uncorrected" in bursts[0]["latency_ms"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("rate(URL, rps=0, duration='1s')", "rps=0 is not valid; use a number greater than zero"),
        ("rate(URL, rps=5, duration='soon')", "duration='soon' is not a valid duration"),
        ("ramp(URL, users=0, spawn_rate=1, duration='1s')", "users=0 is not valid"),
        ("burst(URL, requests=5, concurrency=1, workers=0)", "workers=0 is not valid; use a whole"),
        (
            "ramp(URL, users=100, spawn_rate=1, duration='10s')",
            "users=100 cannot all start: at spawn_rate=1/s only 10 start within duration=10s",
        ),
        (
            "burst('example.com/x', requests=1, concurrency=1)",
            "target URL 'example.com/x' has no scheme; did you mean 'https://example.com/x'?",
        ),
    ],
)
def test_bad_shape_parameters(pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makepyfile(
        test_bad_shape=f"""
        URL = "http://127.0.0.1:9/"

        def test_x(lambda_slo):
            lambda_slo.{call}
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E * pytest_lambda_slo.errors.ConfigError: {message}*"])


def test_workers_option_fans_out(pytester: pytest.Pytester, target_env: Emulator) -> None:
    pytester.makepyfile(
        test_workers="""
        import os

        def test_fanned(lambda_slo):
            result = lambda_slo.burst(os.environ["FAST_URL"], requests=40, concurrency=4)
            assert result.shape["workers"] == 2
            assert result.count == 40 and result.all.count == 40
        """
    )
    # A subprocess: worker processes pickle engine classes, which pytester's in-process
    # runs re-import under new identities.
    result = pytester.runpytest_subprocess(
        *ISOLATED, "--lambda-slo-workers", "2", "--lambda-slo-report"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  shape: burst, 40 requests, 4 concurrent, 2 workers | *"])
    assert target_env.stats()["functions"]["fast"]["invocations"] == 40


def test_a_run_that_cannot_be_judged_is_reported_as_an_error(pytester: pytest.Pytester) -> None:
    # A fan-out shard that failed or started late raises RunInvalid (tests/fanout covers
    # when): the test is neither passed nor failed on a budget, it is an ERROR.
    pytester.makepyfile(
        """
        from pytest_lambda_slo import RunInvalid

        def test_fanned_out():
            raise RunInvalid("shard 2 failed: Unhandled")

        def test_plain_failure():
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rE")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at call of test_fanned_out*", "*RunInvalid: shard 2 failed: Unhandled"]
    )
