"""Deploy gates as users write them: a mostly throttled run fails, bare numbers are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_lambda_slo.emulator import Emulator

ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")
# One environment may run at a time: a burst at 20 concurrent is almost all throttles.
THIN = "thin:duration=30ms,init=0ms,reserved=1"


@pytest.fixture(scope="module")
def thin_emulator() -> Iterator[Emulator]:
    with Emulator(functions=[THIN]) as emu:
        yield emu


@pytest.fixture
def thin_url(thin_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    thin_emulator.reset(environments=True)
    monkeypatch.setenv("THIN_URL", thin_emulator.function_url("thin"))
    return thin_emulator


BURST = """
import os
import pytest

def test_gate(lambda_slo):
    lambda_slo.burst(os.environ["THIN_URL"], requests=200, concurrency=20)
"""


def test_a_mostly_throttled_run_fails_an_ini_p99_and_error_rate_gate(
    pytester: pytest.Pytester, thin_url: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_p99 = 2s\nlambda_slo_error_rate = 1%\n")
    pytester.makepyfile(test_gate=BURST)
    out = pytester.path / "run.json"
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-report", f"--lambda-slo-json={out}")
    result.assert_outcomes(failed=1)
    burst = json.loads(out.read_text())["bursts"][0]
    stats = thin_url.function_stats("thin")
    assert burst["throttles"] == stats["throttles"]["total"]  # the emulator agrees
    assert burst["throttles"] >= 0.9 * burst["count"], "the set-up must be mostly throttled"
    share = f"{burst['throttles'] / burst['count']:.2%}"
    result.stdout.fnmatch_lines(
        [
            "*SLOViolation: 1 SLO budget(s) broken for GET http://127.0.0.1:*/url/thin/:",
            f"*throttle_rate: measured {share}, bounds ?*? over budget 5.00% (n=200; *); "
            "implied, as no throttle budget was set*",
            f"*(200 requests: * ok, {burst['throttles']} throttled, 0 errors)",
        ]
    )
    # The latency and error budgets themselves are not broken (the few requests served
    # cannot show them met either): only the throttles fail the gate.
    verdicts = {v["budget"]: v for v in burst["verdicts"]}
    assert verdicts["p99"]["state"] != "fail" and verdicts["error_rate"]["state"] != "fail"
    assert verdicts["p99"]["n"] == burst["count"] - burst["throttles"]
    assert (verdicts["throttle_rate"]["source"], verdicts["throttle_rate"]["passed"]) == (
        "default",
        False,
    )
    assert "FAIL [default] throttle_rate: measured" in result.stdout.str()


def test_marker_and_check_gates_get_the_implied_throttle_budget_too(
    pytester: pytest.Pytester, thin_url: Emulator
) -> None:
    pytester.makepyfile(
        test_paths="""
        import os
        import pytest
        from pytest_lambda_slo.errors import SLOViolation

        @pytest.mark.lambda_slo(p99="2s", error_rate="1%")
        def test_marker(lambda_slo):
            lambda_slo.burst(os.environ["THIN_URL"], requests=100, concurrency=20)

        def test_check(lambda_slo):
            result = lambda_slo.burst(os.environ["THIN_URL"], requests=100, concurrency=20)
            with pytest.raises(SLOViolation, match="throttle_rate: measured .* over budget 5.00%"):
                result.check(p99="2s", error_rate="1%")

        @pytest.mark.lambda_slo(throttle_rate="off")
        def test_marker_turns_it_off_for_check(lambda_slo):
            # Literal budgets: the few requests served decide them.
            result = lambda_slo.burst(os.environ["THIN_URL"], requests=100, concurrency=20)
            result.check(max="2s", error_rate="0%")
            assert [v.budget for v in result.verdicts] == ["max", "error_rate"]
        """
    )
    result = pytester.runpytest(*ISOLATED, "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_marker FAILED*"])
    result.stdout.fnmatch_lines(["*throttle_rate: measured * over budget 5.00% (n=100; *"])


def test_the_ini_key_changes_or_turns_off_the_implied_budget(
    pytester: pytest.Pytester, thin_url: Emulator
) -> None:
    # A literal max: the few requests a mostly throttled run serves decide it.
    pytester.makeini("[pytest]\nlambda_slo_max = 2s\nlambda_slo_default_throttle_rate = off\n")
    pytester.makepyfile(test_gate=BURST)
    pytester.runpytest(*ISOLATED).assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nlambda_slo_max = 2s\nlambda_slo_default_throttle_rate = 100%\n")
    pytester.runpytest(*ISOLATED).assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nlambda_slo_default_throttle_rate = many\n")
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lambda_slo_default_throttle_rate='many' is not valid*"])


# -- bare numbers ---------------------------------------------------------------------------


def test_a_bare_800_is_refused_in_marker_ini_and_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.lambda_slo(p99=800)
        def test_it():
            pass
        """
    )
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_marker.py::test_it: p99=800 has no unit and would mean 800 seconds; "
            "write '800ms' or '800s'*"
        ]
    )
    pytester.makeini("[pytest]\nlambda_slo_max = 800\n")
    result = pytester.runpytest(*ISOLATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key lambda_slo_max='800' has no unit*'800ms' or '800s'*"])
    pytester.makeini("[pytest]\nlambda_slo_max = 800s\n")
    pytester.makepyfile(
        test_marker="""
        import pytest
        from pytest_lambda_slo.errors import ConfigError
        from pytest_lambda_slo._results.recorder import Measurements
        from pytest_lambda_slo._results.result import BurstResult

        @pytest.mark.lambda_slo(p99="800s")
        def test_it():
            result = BurstResult(Measurements(highest_us=1000), {}, "t")
            with pytest.raises(ConfigError, match="'800ms' or '800s'"):
                result.check(p99=800)
        """
    )
    pytester.runpytest(*ISOLATED).assert_outcomes(passed=1)
