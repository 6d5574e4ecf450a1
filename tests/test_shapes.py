"""Open model (rate) and ramps against the emulator: schedules, corrected latency, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from servers import HttpServer

from pytest_lambda_slo._load.api import arun_rate, run_ramp, run_rate
from pytest_lambda_slo._load.runinfo import RunInfo
from pytest_lambda_slo._load.shapes import MAX_IN_FLIGHT_BOUND, Rate
from pytest_lambda_slo._targets.http import HttpTarget
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import ConfigError

FUNCTIONS = (
    "quick:duration=2ms",
    "slow:duration=300ms",
    "steady:duration=50ms",
)


pytestmark = pytest.mark.usefixtures("no_proxy_env")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(list(FUNCTIONS)) as emulator:
        yield emulator


@pytest.fixture
def fresh(emu: Emulator) -> Emulator:
    emu.reset(environments=True)
    return emu


# -- the open model ------------------------------------------------------------------------------


def test_rate_sends_the_scheduled_count_and_records_both_latencies(fresh: Emulator) -> None:
    measurements, info = run_rate(fresh.function_url("quick"), rps=200, duration="500ms")
    assert (measurements.count, measurements.ok, measurements.unsent) == (100, 100, 0)
    assert dict(measurements.status_codes) == {200: 100}
    assert fresh.function_stats("quick")["invocations"] == 100
    corrected, uncorrected = measurements.hist("all"), measurements.hist("uncorrected")
    assert corrected.count == uncorrected.count == 100
    # Measured from the intended start, a request can only look slower, never faster.
    assert corrected.max_us() >= uncorrected.max_us()
    assert corrected.min_us() >= uncorrected.min_us()
    assert info.shape == "rate" and info.stopped is None and info.workers == 1
    assert info.requests == 100 and info.intended_rps == 200
    assert info.max_in_flight == min(200 * 30, MAX_IN_FLIGHT_BOUND)
    assert info.achieved_rps is not None and info.achieved_rps > 0
    assert info.connections >= 1 and info.cpu_s > 0


def test_rate_starts_requests_whatever_the_responses_do(fresh: Emulator) -> None:
    # 40 requests over 400 ms at a 300 ms function: a closed loop on one connection would
    # manage two; the open model starts all of them on schedule, many in flight at once.
    measurements, info = run_rate(
        fresh.function_url("slow"), rps=100, duration="400ms", connections=1
    )
    assert measurements.count == measurements.ok == 40
    assert fresh.function_stats("slow")["peak_concurrency"] > 1
    assert info.peak_in_flight > 1
    # Only one connection was open at the release: every extra one was dialled on demand.
    assert measurements.late_starts == info.connections - 1
    assert measurements.late_starts >= 1


def test_corrected_latency_exposes_a_stall_the_uncorrected_hides(
    lambda_emulator: object,
) -> None:
    # A cold start of 600 ms stalls the only connection (max_in_flight=1), like wrk's fixed
    # connections. Requests due during the stall queue behind it: measured from their
    # intended start they show the stall; measured from their actual send they do not.
    emu = lambda_emulator("stall:duration=2ms,init=600ms")  # type: ignore[operator]
    measurements, info = run_rate(
        emu.function_url("stall"), rps=100, duration="1s", max_in_flight=1
    )
    assert measurements.count == measurements.ok == 100
    assert emu.function_stats("stall")["cold_starts"] == 1
    corrected_p99 = measurements.hist("all").percentile_us(99)
    uncorrected_p99 = measurements.hist("uncorrected").percentile_us(99)
    assert corrected_p99 is not None and uncorrected_p99 is not None
    assert corrected_p99 >= 300_000  # half the stall, at least, for the worst 1%
    assert corrected_p99 > 3 * uncorrected_p99
    # The requests due during the stall could not start on time, and are counted.
    assert measurements.late_starts >= 30
    assert info.max_in_flight == 1 and info.peak_in_flight == 1


@pytest.mark.anyio
async def test_arun_rate_on_both_backends(fresh: Emulator, anyio_backend: str) -> None:
    measurements, info = await arun_rate(fresh.function_url("quick"), rps=100, duration=0.2)
    assert measurements.count == measurements.ok == 20
    assert info.shape == "rate"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_rate_defaults() -> None:
    shape = Rate(rps=50, duration="2s", timeout="1s")
    assert shape.total_requests == 100
    assert shape.in_flight_cap == 50  # rps x timeout
    assert shape.connections_opened == 5  # rps x 100 ms
    assert shape.deadline_s == 2 + 1 + 5
    assert Rate(rps=5000, duration=1).in_flight_cap == MAX_IN_FLIGHT_BOUND
    assert Rate(rps=1, duration=1, timeout=0.1).in_flight_cap == 1


# -- ramps -----------------------------------------------------------------------------------------


def test_ramp_adds_users_at_the_spawn_rate_until_all_run(fresh: Emulator) -> None:
    measurements, info = run_ramp(
        fresh.function_url("steady"), users=10, spawn_rate=40, duration="600ms", timeout=5
    )
    assert info.shape == "ramp" and info.stopped is None
    assert info.users == 10 and info.users_started == 10 and info.spawn_rate == 40
    assert info.connections == 10  # one connection per user
    assert info.peak_in_flight == 10  # the last user joined while the others still ran
    assert measurements.count == measurements.ok == fresh.function_stats("steady")["invocations"]
    assert measurements.count > 10  # users loop back-to-back
    assert measurements.unsent == 0 and measurements.hist("uncorrected").count == 0
    assert info.cpu_s > 0 and info.loop_lag_max_ms >= info.loop_lag_p99_ms >= 0


def test_ramp_users_due_after_the_end_never_start(fresh: Emulator) -> None:
    # User j starts at j/5 s: only users 0..2 start within 600 ms.
    measurements, info = run_ramp(
        fresh.function_url("quick"), users=10, spawn_rate=5, duration="600ms"
    )
    assert info.users_started == 3 and info.connections == 3
    assert measurements.count == fresh.function_stats("quick")["invocations"]


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rps": 0, "duration": 1}, r"rps=0 is not valid"),
        ({"rps": -5, "duration": 1}, r"rps=-5 is not valid"),
        ({"rps": "fast", "duration": 1}, r"rps='fast' is not valid"),
        ({"rps": 10, "duration": 0}, r"duration=0 must be greater than zero"),
        ({"rps": 0.5, "duration": "1s"}, r"schedules no request; use rps x duration >= 1"),
        ({"rps": 10, "duration": 1, "max_in_flight": 0}, r"max_in_flight=0 is not valid"),
        (
            {"rps": 10, "duration": 1, "max_in_flight": 2, "connections": 3},
            r"connections=3 is more than max_in_flight=2",
        ),
        ({"rps": 10, "duration": 1, "timeout": "soon"}, r"timeout='soon' is not a valid"),
        ({"rps": 10, "duration": 1, "workers": 0}, r"workers=0 is not valid; .*'auto'"),
        ({"rps": 10, "duration": 1, "workers": "many"}, r"workers='many' is not valid"),
        ({"rps": 2, "duration": 1, "workers": 3}, r"workers=3 is more than the run's 2"),
    ],
)
def test_bad_rate_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        run_rate("http://127.0.0.1:9/", **kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0, "spawn_rate": 1, "duration": 1}, r"users=0 is not valid"),
        ({"users": 5, "spawn_rate": 0, "duration": 1}, r"spawn_rate=0 is not valid"),
        ({"users": 5, "spawn_rate": 1, "duration": "-1s"}, r"duration='-1s' is not a valid"),
        ({"users": 2, "spawn_rate": 1, "duration": 1, "workers": 3}, r"workers=3 is more than"),
    ],
)
def test_bad_ramp_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        run_ramp("http://127.0.0.1:9/", **kwargs)
    assert "\n" not in str(caught.value)


def test_run_info_has_every_shape_field() -> None:
    fields = set(RunInfo.__dataclass_fields__)
    assert {"shape", "workers", "intended_rps", "achieved_rps", "users_started"} <= fields


# -- deadline and cancellation ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as srv:
        yield srv


def test_a_bug_in_a_classifier_is_raised_from_rate_and_ramp(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("classifier bug")

    monkeypatch.setattr("pytest_lambda_slo._targets.http._PreparedHttpTarget.classify", broken)
    target = HttpTarget(server.url("/"))
    with pytest.raises(ZeroDivisionError, match="classifier bug"):
        run_rate(target, rps=50, duration="200ms", timeout=5)
    with pytest.raises(ZeroDivisionError, match="classifier bug"):
        run_ramp(target, users=2, spawn_rate=50, duration="200ms", timeout=5)


def test_rate_deadline_counts_every_request_still_in_flight(server: HttpServer) -> None:
    measurements, info = run_rate(
        server.url("/never"), rps=20, duration="500ms", timeout=60, deadline="1s"
    )
    assert info.stopped == "deadline"
    assert dict(measurements.error_kinds) == {"deadline": 10}
    assert measurements.unsent == 0 and server.requests == 10


def test_ramp_deadline_stops_users_waiting_on_a_silent_server(server: HttpServer) -> None:
    measurements, info = run_ramp(
        server.url("/never"), users=3, spawn_rate=100, duration="200ms", timeout=60, deadline=0.5
    )
    assert info.stopped == "deadline" and info.users_started == 3
    assert dict(measurements.error_kinds) == {"deadline": 3}


@pytest.mark.anyio
async def test_cancelling_arun_rate_closes_every_connection(
    server: HttpServer, anyio_backend: str
) -> None:
    with anyio.move_on_after(60) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(_rate_forever, server.url("/never"))
            for _ in range(3000):  # bounded: cancel once load flows
                if server.requests >= 5:
                    break
                await anyio.sleep(0.01)
            scope.deadline = anyio.current_time()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    for _ in range(500):
        if server.in_flight == 0:
            break
        await anyio.sleep(0.01)
    assert server.in_flight == 0


async def _rate_forever(url: str) -> None:
    await arun_rate(url, rps=50, duration="60s", timeout=60)


def test_run_info_to_dict_is_asdict_and_copies_the_sequential_record() -> None:
    from dataclasses import asdict

    info = RunInfo(
        started_at=1.0, duration_s=2.0, requests=3, concurrency=4, timeout_s=5.0,
        deadline_s=6.0, duration_limit_s=None, stopped="decided", event_loop="uvloop",
        loop_lag_max_ms=0.1, loop_lag_p99_ms=0.2, cpu_s=0.3, waves=2,
        sequential={"stopped": "decided", "steps": [{"budget": "p99", "n": 250}]},
    )  # fmt: skip
    data = info.to_dict()
    assert data == asdict(info) and list(data) == list(asdict(info))
    data["sequential"]["steps"].append({"budget": "p50"})
    assert info.sequential == {"stopped": "decided", "steps": [{"budget": "p99", "n": 250}]}
    assert RunInfo.from_dict(info.to_dict()) == info
