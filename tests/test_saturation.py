"""The saturation watch: a budget never passes silently on data from a starved generator."""

from __future__ import annotations

import pytest

from pytest_lambda_slo.emulator import Emulator

STARVED = """
import os
import time
from pytest_lambda_slo import HttpTarget

def starving_detector(response):
    time.sleep(0.03)  # blocks the engine's event loop on every response
    return False

def test_starved(lambda_slo):
    target = HttpTarget(os.environ["FAST_URL"], cold_start=starving_detector)
    result = lambda_slo.burst(target, requests=60, concurrency=20)
    assert result.saturated
    assert result.run["loop_lag_p99_ms"] > 25
    result.check(p90="60s")  # a loose budget that would pass on trustworthy data

def test_healthy(lambda_slo):
    result = lambda_slo.burst(os.environ["FAST_URL"], requests=60, concurrency=4)
    assert not result.saturated
    result.check(p90="60s")
"""


@pytest.fixture
def fast_url(fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_emulator.function_url("fast")
    monkeypatch.setenv("FAST_URL", url)
    return url


def test_starved_generator_fails_the_budget_with_an_explanation(
    pytester: pytest.Pytester, fast_url: str
) -> None:
    pytester.makepyfile(test_sat=STARVED)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "--lambda-slo-report"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SLOViolation: 1 SLO budget(s) broken for GET *",
            "*p90: measured *, bounds ?*? within budget 60.000s (n=60; *); the load generator "
            "was saturated (event-loop lag p99 *",
        ]
    )
    result.stdout.fnmatch_lines(["  LOAD GENERATOR SATURATED: the load generator was saturated*"])


def test_warn_policy_judges_anyway_but_reports_it(pytester: pytest.Pytester, fast_url: str) -> None:
    pytester.makeini("[pytest]\nlambda_slo_saturation = warn\n")
    pytester.makepyfile(test_sat=STARVED)
    # A subprocess: this suite turns warnings into errors, a user's does not.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "--lambda-slo-report"
    )
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        ["*SaturationWarning: the load generator was saturated*", "  LOAD GENERATOR SATURATED: *"]
    )
