"""Runs that stop themselves: a user's callable raised, or the first wave was all refusals.

Either way what was measured is kept (the error carries it, the report shows it) and what
was not sent is unsent, never an error; the server's own counts say what arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import HttpServer

from pytest_lambda_slo import HttpTarget, InvokeTarget
from pytest_lambda_slo._load.api import run_burst, run_ramp, run_rate
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import AuthRefused, UserCallableError

pytestmark = pytest.mark.filterwarnings("error")
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")
ACCESS_KEY = "AKIDSTOPSEXAMPLE"
SECRET = "theEmulatorsOwnSecretKey0123456789abcdefgh"
WRONG_SECRET = "aWrongSecretThatMustNeverBeShown0123456789"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(["fast:duration=1ms,init=0ms"], require_sigv4=(ACCESS_KEY, SECRET)) as e:
        yield e


@pytest.fixture
def signed(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Emulator:
    """The signing emulator, reset, and credentials only from the environment."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    emu.reset(environments=True)
    return emu


# -- a user's callable raised ------------------------------------------------------------

RAISING_COLD_START = """
import os
from pytest_lambda_slo import HttpTarget

CALLS = [0]

def cold(response):  # module level: workers=2 pickles it by reference
    CALLS[0] += 1
    if CALLS[0] == 18:
        raise ValueError("no cold-start header on this response")
    return False

def test_burst(lambda_slo):
    target = HttpTarget(os.environ["FAST_URL"], cold_start=cold)
    lambda_slo.burst(target, requests=200, concurrency=4, workers=int(os.environ["WORKERS"]))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_raising_cold_start_callable_keeps_and_reports_the_partial_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    with Emulator(["fast:duration=1ms,init=0ms"]) as plain:
        monkeypatch.setenv("FAST_URL", plain.function_url("fast"))
        monkeypatch.setenv("WORKERS", str(workers))
        pytester.makepyfile(test_inner=RAISING_COLD_START)
        result = pytester.runpytest_subprocess(*ISOLATED)
        arrived = plain.function_stats("fast")["invocations"]
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # The user's exception and its traceback, then the error saying what it did to the run.
    assert "ValueError: no cold-start header on this response" in out
    assert "CALLS[0] == 18" in out or "raise ValueError" in out, out
    found = re.search(
        r"UserCallableError: the cold_start= callable raised ValueError: no cold-start header "
        r"on this response on response 18 \(status 200\); the run stopped: (\d+) requests "
        r"measured, (\d+) not sent",
        out,
    )
    assert found, out
    measured, unsent = int(found[1]), int(found[2])
    assert measured + unsent == 200 and 18 <= measured < 200
    # The report shows the partial run (without --lambda-slo-report: it was cut short).
    result.stdout.fnmatch_lines(
        [
            "*= lambda-slo report =*",
            "  INTERRUPTED: the cold_start= callable raised ValueError: *",
            f"  requests: {measured}, *",
            f"  not sent (deadline or cap): {unsent}",
        ]
    )
    assert "no load was fired" not in out
    assert 18 <= arrived <= measured  # the server saw what was measured, at most


def test_the_engine_raises_the_users_exception_as_the_cause() -> None:
    def cold(response: Any) -> bool:
        raise KeyError("x-cold")

    with HttpServer() as server:
        target = HttpTarget(server.url(), cold_start=cold)
        with pytest.raises(UserCallableError) as caught:
            run_burst(target, requests=20, concurrency=2, timeout=10)
    assert isinstance(caught.value.__cause__, KeyError)
    measurements = caught.value.measurements  # type: ignore[attr-defined]
    assert caught.value.run_info.stopped == "callable_error"  # type: ignore[attr-defined]
    assert measurements.count + measurements.unsent == 20
    assert measurements.ok >= 1  # the response it raised on is kept (its cold start unknown)
    assert server.requests <= measurements.count


# -- the first wave was all authentication refusals ------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_wrong_secret_stops_after_the_first_wave(
    signed: Emulator, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    target = InvokeTarget("fast", region="us-east-1", endpoint_url=signed.url)
    measurements, _ = run_burst(target, requests=20, concurrency=10, timeout=10)
    assert measurements.ok == 20  # the right secret: nothing stops
    signed.reset()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    with pytest.raises(AuthRefused) as caught:
        run_burst(target, requests=500, concurrency=10, timeout=10, workers=workers)
    message = str(caught.value)
    assert f"signed with AWS access key id {ACCESS_KEY}" in message
    assert "(InvalidSignatureException: " in message
    assert WRONG_SECRET not in message and SECRET not in message
    measurements = caught.value.measurements  # type: ignore[attr-defined]
    assert caught.value.run_info.stopped == "auth_refused"  # type: ignore[attr-defined]
    refused = signed.stats()["emulator"]["sigv4_refusals"]  # what arrived, says the server
    assert measurements.count + measurements.unsent == 500
    if workers == 1:
        assert dict(measurements.error_kinds) == {"InvalidSignatureException": 10}
        assert (measurements.count, refused) == (10, 10)  # only the first wave arrived
    else:
        # Each worker judges its own first wave (5 of the 10); the first to be refused
        # stops the other, whose requests still in flight count as cancelled.
        assert set(measurements.error_kinds) <= {"InvalidSignatureException", "cancelled"}
        assert measurements.error_kinds["InvalidSignatureException"] >= 5
        assert 5 <= refused <= measurements.count <= 10


def test_a_front_door_refusing_the_first_wave_stops_every_shape() -> None:
    with HttpServer() as server:
        url = server.url("/status/403")
        with pytest.raises(AuthRefused, match=r"front door refused every request of the first "
                           r"wave \(8\) with 401/403 \(HTTP 403: 8\)"):  # fmt: skip
            run_burst(url, requests=400, concurrency=8, timeout=10)
        assert server.requests == 8
        with pytest.raises(AuthRefused, match=r"first wave \(2\)"):
            run_ramp(url, users=8, spawn_rate=8, duration="5s", timeout=10)
        assert server.requests == 8 + 2
        with pytest.raises(AuthRefused, match=r"first wave \(25\)") as caught:
            run_rate(url, rps=100, duration="5s", timeout=10)
        # The open model does not wait for answers: it stops once the wave is in, long
        # before its 500 requests.
        assert caught.value.measurements.count < 500  # type: ignore[attr-defined]
        assert server.requests - 10 < 500


def test_a_first_wave_with_one_answer_that_is_no_refusal_runs_on() -> None:
    with HttpServer() as server:
        measurements, info = run_burst(server.url("/status/404"), requests=30, concurrency=5)
    assert info.stopped is None and measurements.count == 30 and server.requests == 30
