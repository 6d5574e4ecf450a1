"""The burst engine: counts, the start barrier, deadline, duration, async twin, cancellation."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from servers import HttpServer

from pytest_lambda_slo._load.api import arun_burst, run_burst
from pytest_lambda_slo._load.runinfo import RunInfo
from pytest_lambda_slo._load.shapes import Burst
from pytest_lambda_slo._targets.http import HttpTarget
from pytest_lambda_slo.errors import ConfigError, LoadAborted

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LAMBDA_SLO_EVENT_LOOP", raising=False)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as srv:
        yield srv


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


# -- counts ----------------------------------------------------------------------------------------


def test_counts_and_status_codes_are_exact(server: HttpServer) -> None:
    measurements, info = run_burst(server.url("/"), requests=101, concurrency=7, timeout=10)
    assert (measurements.count, measurements.ok, measurements.errors) == (101, 101, 0)
    assert dict(measurements.status_codes) == {200: 101}
    assert measurements.unsent == 0
    assert server.requests == 101
    assert server.max_in_flight <= 7
    assert info.stopped is None and info.requests == 101 and info.concurrency == 7
    assert info.event_loop in ("uvloop", "asyncio")
    assert info.cpu_s > 0
    assert info.duration_s > 0


def test_throttles_and_errors_are_classified(server: HttpServer) -> None:
    measurements, _ = run_burst(server.url("/status/429"), requests=5, concurrency=5)
    assert measurements.throttles == 5 and measurements.ok == 0
    assert dict(measurements.status_codes) == {429: 5}
    target = HttpTarget(server.url("/status/500"), throttle_statuses=[500])
    measurements, _ = run_burst(target, requests=4, concurrency=2)
    assert measurements.throttles == 4
    measurements, _ = run_burst(server.url("/status/503"), requests=3, concurrency=1)
    assert dict(measurements.error_kinds) == {"http_5xx": 3}


def test_histogram_range_covers_timeout_and_deadline(server: HttpServer) -> None:
    measurements, info = run_burst(
        server.url("/"), requests=2, concurrency=1, timeout="90s", deadline="2m"
    )
    assert measurements.highest_us >= 120 * 1_000_000
    assert info.timeout_s == 90 and info.deadline_s == 120
    assert measurements.hist("all").overflows == 0


def test_default_deadline_follows_the_shape() -> None:
    shape = Burst(requests=10, concurrency=3, timeout=2)
    assert shape.deadline_s == 2 * 4 + 5  # timeout x ceil(10/3) + 5 s
    shape = Burst(requests=None, concurrency=3, timeout="500ms", duration="10s")
    assert shape.deadline_s == 10 + 0.5 + 5


# -- the start barrier -----------------------------------------------------------------------------


def test_connections_are_opened_before_the_first_request(server: HttpServer) -> None:
    run_burst(server.url("/"), requests=40, concurrency=20, timeout=10)
    assert server.connections_at_first_request == 20
    assert server.connections == 20


def test_first_wave_is_in_flight_at_once(server: HttpServer) -> None:
    # /gate/N answers only when N requests wait at the same time (504 after 5 s otherwise).
    measurements, _ = run_burst(server.url("/gate/25"), requests=25, concurrency=25, timeout=10)
    assert dict(measurements.status_codes) == {200: 25}
    assert server.max_in_flight == 25


# -- deadline and duration -------------------------------------------------------------------------


def test_deadline_stops_a_burst_against_a_silent_server(server: HttpServer) -> None:
    measurements, info = run_burst(
        server.url("/never"), requests=30, concurrency=5, timeout=60, deadline=0.3
    )
    assert info.stopped == "deadline"
    assert dict(measurements.error_kinds) == {"deadline": 5}
    assert measurements.unsent == 25
    assert measurements.count == 5


def test_duration_mode_keeps_sending_until_the_end(server: HttpServer) -> None:
    measurements, info = run_burst(
        server.url("/delay/5"), requests=None, concurrency=4, duration="300ms", timeout=5
    )
    assert info.stopped is None and info.requests is None and info.duration_limit_s == 0.3
    assert measurements.count == server.requests
    assert measurements.count > 4  # more than one wave
    assert measurements.ok == measurements.count and measurements.unsent == 0


def test_duration_with_a_request_cap_stops_at_the_cap(server: HttpServer) -> None:
    measurements, _ = run_burst(
        server.url("/"), requests=10, concurrency=2, duration="30s", timeout=5
    )
    assert measurements.count == 10


# -- engine health ---------------------------------------------------------------------------------


def test_run_info_to_dict_and_the_default_loop_switch(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_SLO_EVENT_LOOP", "asyncio")
    _, info = run_burst(server.url("/"), requests=3, concurrency=1)
    data = info.to_dict()
    assert data["event_loop"] == "asyncio"
    assert set(data) == set(RunInfo.__dataclass_fields__)
    assert data["loop_lag_max_ms"] >= data["loop_lag_p99_ms"] >= 0


def _break_the_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the plugin's own classifier (a user's callable raising is a stop instead)."""

    def broken(*args: object) -> None:
        raise ZeroDivisionError("classifier bug")

    monkeypatch.setattr("pytest_lambda_slo._targets.http._PreparedHttpTarget.classify", broken)


def test_a_bug_in_a_classifier_is_raised_not_swallowed(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_the_classifier(monkeypatch)
    target = HttpTarget(server.url("/"))
    with pytest.raises(ZeroDivisionError, match="classifier bug"):
        run_burst(target, requests=10, concurrency=2, timeout=5)


def test_a_classifier_bug_is_reported_once(
    server: HttpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every slot hits the same bug: the first is raised, the others are not logged again
    # as "Task exception was never retrieved" when their tasks are collected.
    _break_the_classifier(monkeypatch)
    target = HttpTarget(server.url("/"))
    for _ in range(3):
        with pytest.raises(ZeroDivisionError, match="classifier bug"):
            run_burst(target, requests=8, concurrency=4, timeout=5)
        gc.collect()
    assert "never retrieved" not in caplog.text


def test_run_burst_inside_a_running_loop_points_to_arun_burst(server: HttpServer) -> None:
    async def inside() -> None:
        run_burst(server.url("/"), requests=1, concurrency=1)

    with pytest.raises(ConfigError, match="arun_burst"):
        asyncio.run(inside())
    import trio

    with pytest.raises(ConfigError, match="arun_burst"):
        trio.run(inside)


# -- the async twin --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_arun_burst_on_both_backends(server: HttpServer, anyio_backend: str) -> None:
    measurements, info = await arun_burst(server.url("/"), requests=30, concurrency=3, timeout=10)
    assert measurements.ok == 30
    assert server.connections == 3
    assert info.stopped is None


@pytest.mark.anyio
async def test_cancelling_arun_burst_stops_the_engine(
    server: HttpServer, anyio_backend: str
) -> None:
    with anyio.move_on_after(0.3) as scope:
        await arun_burst(server.url("/never"), requests=8, concurrency=4, timeout=60)
    assert scope.cancelled_caught
    assert server.requests == 4
    # The engine closed its sockets before the cancellation reached us.
    for _ in range(200):
        if server.in_flight == 0:
            break
        await anyio.sleep(0.01)
    assert server.in_flight == 0


class _CountingTarget:
    """Counts prepare() calls: every entry point prepares its target once, in the caller."""

    def __init__(self, url: str) -> None:
        self.inner = HttpTarget(url)
        self.prepared = 0

    def describe(self) -> str:
        return self.inner.describe()

    def shape_info(self) -> dict:
        return self.inner.shape_info()

    def prepare(self) -> object:
        self.prepared += 1
        return self.inner.prepare()


@pytest.mark.anyio
async def test_arun_burst_prepares_its_target_once(server: HttpServer, anyio_backend: str) -> None:
    target = _CountingTarget(server.url("/"))
    measurements, _ = await arun_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4
    assert target.prepared == 1


def test_run_burst_prepares_its_target_once(server: HttpServer) -> None:
    target = _CountingTarget(server.url("/"))
    measurements, _ = run_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4
    assert target.prepared == 1


# -- Ctrl-C ----------------------------------------------------------------------------------------

CTRL_C_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    sys.path.insert(0, {tests!r})
    from servers import HttpServer
    from pytest_lambda_slo._load.api import run_burst

    with HttpServer() as server:
        def announce():
            for _ in range(1000):
                if server.requests >= 3:
                    print("in flight", flush=True)
                    return
                time.sleep(0.01)
        threading.Thread(target=announce, daemon=True).start()
        try:
            run_burst(server.url("/never"), requests=9, concurrency=3, timeout=60)
        except KeyboardInterrupt as exc:
            m = exc.__cause__.measurements
            info = exc.__cause__.run_info
            print("interrupted", type(exc.__cause__).__name__, m.count, m.unsent,
                  dict(m.error_kinds), info.stopped, flush=True)
        for _ in range(500):
            if server.in_flight == 0:
                break
            time.sleep(0.01)
        print("server in flight", server.in_flight, flush=True)
    """
)


def test_ctrl_c_stops_the_run_and_reraises_with_the_measurements() -> None:
    code = CTRL_C_CHILD.format(tests=str(TESTS))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "in flight"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "interrupted LoadAborted 3 6 {'cancelled': 3} cancelled"
    assert lines[1] == "server in flight 0"
    assert "ResourceWarning" not in err


def test_load_aborted_carries_partial_results_when_cancelled_from_a_thread(
    server: HttpServer,
) -> None:
    from pytest_lambda_slo._load.drivers import engine_for
    from pytest_lambda_slo._load.runner import RunHandle, run_on_own_loop
    from pytest_lambda_slo._targets.resolve import as_target

    prepared = as_target(server.url("/never")).prepare()
    engine = engine_for(Burst(requests=4, concurrency=2, timeout=60), prepared)
    handle = RunHandle()
    handle.stop()  # stop requested before the run even starts
    with pytest.raises(LoadAborted) as caught:
        run_on_own_loop(engine, handle)
    assert caught.value.run_info is not None and caught.value.measurements is not None
    assert caught.value.run_info.stopped == "cancelled"
    assert caught.value.measurements.unsent == 4


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 0, "concurrency": 1}, r"requests=0 is not valid; use a whole number >= 1"),
        ({"requests": 5, "concurrency": 0}, r"concurrency=0 is not valid; use a whole number >= 1"),
        ({"requests": 2, "concurrency": 5}, r"concurrency=5 is greater than requests=2"),
        ({"requests": "ten", "concurrency": 1}, r"requests='ten' is not valid"),
        ({"requests": None, "concurrency": 1}, r"requests=None is only valid with duration="),
        (
            {"requests": 5, "concurrency": 1, "timeout": "fast"},
            r"timeout='fast' is not a valid duration; use .*'800ms'",
        ),
        ({"requests": 5, "concurrency": 1, "timeout": 0}, r"timeout=0 must be greater than zero"),
        (
            {"requests": 5, "concurrency": 1, "deadline": "-3ms"},
            r"deadline='-3ms' is not a valid duration",
        ),
        (
            {"requests": None, "concurrency": 1, "duration": "0s"},
            r"duration='0s' must be greater than zero",
        ),
    ],
)
def test_bad_burst_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        run_burst("http://127.0.0.1:9/", **kwargs)
    assert "\n" not in str(caught.value)


def test_bad_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unsupported scheme 'ftp'"):
        run_burst("ftp://example.test/", requests=1, concurrency=1)


# -- saturation watch ------------------------------------------------------------------------------


class _BlockingTarget:
    """Wraps a target whose classify() blocks the event loop: a generator starved of CPU."""

    def __init__(self, url: str, block_s: float) -> None:
        self.inner = HttpTarget(url)
        self.block_s = block_s

    def describe(self) -> str:
        return self.inner.describe()

    def shape_info(self) -> dict:
        return self.inner.shape_info()

    def prepare(self) -> _BlockingPrepared:
        return _BlockingPrepared(self.inner.prepare(), self.block_s)


class _BlockingPrepared:
    def __init__(self, inner: object, block_s: float) -> None:
        self.inner = inner
        self.block_s = block_s
        self.url = inner.url  # type: ignore[attr-defined]
        self.verify = inner.verify  # type: ignore[attr-defined]
        self.max_body_bytes = inner.max_body_bytes  # type: ignore[attr-defined]
        self.access_key_id = None

    def current_request(self) -> object:
        return self.inner.current_request()  # type: ignore[attr-defined]

    def classify(self, response: object, error_kind: object, latency_ns: object) -> object:
        time.sleep(self.block_s)  # deliberately blocks the loop, as a CPU-bound generator would
        return self.inner.classify(response, error_kind, latency_ns)  # type: ignore[attr-defined]


def test_a_starved_event_loop_shows_in_the_lag_figures(server: HttpServer) -> None:
    from pytest_lambda_slo._results.saturation import assess_saturation

    url = server.url("/delay/5")
    _, normal = run_burst(url, requests=None, concurrency=10, duration="500ms", timeout=5)
    # Over a second, so the session judges the lag (it needs enough 50 ms samples).
    _, starved = run_burst(
        _BlockingTarget(url, 0.03), requests=None, concurrency=10, duration="1200ms", timeout=5
    )
    # Ten responses arrive together and each blocks the loop 30 ms: the sampler's timer
    # fires hundreds of ms late, against a few ms when nothing blocks.
    assert starved.loop_lag_p99_ms > 25.0  # lambda_slo_max_loop_lag's default
    assert starved.loop_lag_p99_ms > 4 * normal.loop_lag_p99_ms
    assert starved.loop_lag_max_ms >= starved.loop_lag_p99_ms
    verdict = assess_saturation(starved.to_dict())
    assert verdict.saturated is True and "event-loop lag p99" in verdict.note
    assert verdict.run_fields()["saturation_note"] == verdict.note


def test_rate_and_ramp_report_the_engine_health_figures(server: HttpServer) -> None:
    from pytest_lambda_slo._load.api import run_ramp, run_rate

    url = server.url("/delay/5")
    _, starved = run_rate(_BlockingTarget(url, 0.03), rps=100, duration="500ms", timeout=5)
    assert starved.loop_lag_p99_ms > 25.0 and starved.cpu_s > 0
    _, ramp = run_ramp(_BlockingTarget(url, 0.03), users=5, spawn_rate=50, duration="500ms")
    assert ramp.loop_lag_p99_ms > 25.0 and ramp.shape == "ramp"
