"""workers=N: the load fanned out over processes, merged exactly; no process outlives a run."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import anyio
import psutil
import pytest
from servers import HttpServer

from pytest_lambda_slo._load.api import run_burst, run_ramp, run_rate
from pytest_lambda_slo._results.recorder import Measurements
from pytest_lambda_slo._targets.http import HttpTarget
from pytest_lambda_slo._units import parse_workers
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import ConfigError

pytestmark = pytest.mark.usefixtures("no_proxy_env")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(["quick:duration=1ms", "steady:duration=40ms"]) as emulator:
        yield emulator


@pytest.fixture
def fresh(emu: Emulator) -> Emulator:
    emu.reset(environments=True)
    return emu


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    left = [p for p in me.children(recursive=True) if p.pid not in before]
    assert left == [], f"processes outlived the run: {left}"


def _same_measurements(a: Measurements, b: Measurements) -> None:
    for name in ("count", "ok", "errors", "throttles", "unsent", "late_starts"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.status_codes == b.status_codes and a.error_kinds == b.error_kinds
    assert a.hist("all").count == b.hist("all").count


def test_a_multi_process_burst_counts_like_a_single_process_one(fresh: Emulator) -> None:
    url = fresh.function_url("quick")
    single, single_info = run_burst(url, requests=301, concurrency=7, timeout=10)
    assert fresh.function_stats("quick")["invocations"] == 301
    fresh.reset()
    multi, info = run_burst(url, requests=301, concurrency=7, timeout=10, workers=3)
    assert fresh.function_stats("quick")["invocations"] == 301
    _same_measurements(single, multi)
    assert (multi.count, multi.ok, dict(multi.status_codes)) == (301, 301, {200: 301})
    # One merged HDR histogram holding every worker's samples.
    assert multi.hist("all").count == 301 and multi.hist("connect").count == 7
    assert multi.hist("all").max_us() >= multi.hist("all").percentile_us(50) > 0
    assert info.workers == 3 and single_info.workers == 1
    assert (info.requests, info.concurrency, info.connections) == (301, 7, 7)
    assert info.stopped is None and info.shape == "burst"
    assert info.cpu_s > 0 and info.duration_s > 0
    assert info.loop_lag_max_ms >= info.loop_lag_p99_ms >= 0
    # The merged result survives the JSON round trip exactly.
    again = Measurements.from_dict(multi.to_dict())
    assert again.to_dict() == multi.to_dict()


def test_workers_split_concurrency_across_processes(server: HttpServer) -> None:
    # /gate/6 answers only while 6 requests wait at once: the workers' slots are released
    # together and add up to the full concurrency.
    measurements, info = run_burst(
        server.url("/gate/6"), requests=6, concurrency=6, timeout=10, workers=2
    )
    assert dict(measurements.status_codes) == {200: 6}
    assert server.max_in_flight == 6 and server.connections == 6
    assert info.peak_in_flight == 6


def test_a_multi_process_rate_follows_one_schedule(fresh: Emulator) -> None:
    measurements, info = run_rate(fresh.function_url("quick"), rps=200, duration="500ms", workers=2)
    assert measurements.count == measurements.ok == 100
    assert measurements.hist("uncorrected").count == 100
    assert fresh.function_stats("quick")["invocations"] == 100
    assert info.workers == 2 and info.intended_rps == 200 and info.requests == 100
    assert info.achieved_rps is not None and info.achieved_rps > 0


def test_a_multi_process_ramp_starts_every_user(fresh: Emulator) -> None:
    measurements, info = run_ramp(
        fresh.function_url("steady"), users=6, spawn_rate=30, duration="500ms", workers=2
    )
    assert info.users == 6 and info.users_started == 6 and info.connections == 6
    assert measurements.count == fresh.function_stats("steady")["invocations"]
    assert measurements.count > 6


def test_the_deadline_holds_in_every_worker(server: HttpServer) -> None:
    measurements, info = run_burst(
        server.url("/never"), requests=20, concurrency=4, timeout=60, deadline=0.5, workers=2
    )
    assert info.stopped == "deadline"
    assert dict(measurements.error_kinds) == {"deadline": 4}
    assert measurements.unsent == 16


@pytest.mark.anyio
async def test_cancelling_a_multi_process_run_stops_the_workers(
    server: HttpServer, anyio_backend: str
) -> None:
    with anyio.move_on_after(60) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run_burst_async, server.url("/never"), 8, 4, 2)
            # Cancel once every slot of both workers has a request in flight (bounded wait).
            for _ in range(3000):
                if server.requests >= 4:
                    break
                await anyio.sleep(0.01)
            scope.deadline = anyio.current_time()  # (cancel() fails on this anyio + trio)
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert server.requests == 4
    for _ in range(500):
        if server.in_flight == 0:
            break
        await anyio.sleep(0.01)
    assert server.in_flight == 0


async def run_burst_async(url: str, requests: int, concurrency: int, workers: int) -> None:
    from pytest_lambda_slo._load.api import arun_burst

    await arun_burst(url, requests=requests, concurrency=concurrency, workers=workers, timeout=60)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as srv:
        yield srv


# -- bad input -------------------------------------------------------------------------------------


def test_parse_workers() -> None:
    assert parse_workers(1) == 1 and parse_workers("3") == 3
    assert parse_workers("auto") == parse_workers(" AUTO ") == (os.cpu_count() or 1)
    for bad in (0, -1, 1.5, "x", True, 10_000):
        with pytest.raises(ConfigError, match=r"workers=.* is not valid; use a whole number"):
            parse_workers(bad)


def test_more_workers_than_connections_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"workers=4 is more than concurrency=2"):
        run_burst("http://127.0.0.1:9/", requests=10, concurrency=2, workers=4)


def test_a_target_that_cannot_be_pickled_is_refused_with_workers() -> None:
    lock = threading.Lock()  # a lambda goes to workers (by value); a lock it holds cannot
    target = HttpTarget("http://127.0.0.1:9/", cold_start=lambda response: lock.locked())
    with pytest.raises(ConfigError, match=r"workers=2 needs a target that can be sent") as caught:
        run_burst(target, requests=4, concurrency=2, workers=2)
    assert "\n" not in str(caught.value)


class _FailsInWorkers:
    """A target that works in the parent and breaks in a worker process."""

    def __init__(self, url: str) -> None:
        self.inner = HttpTarget(url)
        self.parent = os.getpid()

    def describe(self) -> str:
        return self.inner.describe()

    def shape_info(self) -> dict:
        return self.inner.shape_info()

    def prepare(self) -> object:
        if os.getpid() != self.parent:
            raise RuntimeError("broken in the worker")
        return self.inner.prepare()


def test_a_failing_worker_raises_its_error_and_stops_the_others() -> None:
    from pytest_lambda_slo.errors import LambdaSLOError

    with pytest.raises(LambdaSLOError, match=r"worker process \d failed:(.|\n)*broken in the"):
        run_burst(_FailsInWorkers("http://127.0.0.1:9/"), requests=4, concurrency=2, workers=2)
