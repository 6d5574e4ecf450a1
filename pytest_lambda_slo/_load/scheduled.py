"""Load shapes beyond the burst: the open model (constant arrival rate) and Locust-style ramps.

Both reuse :class:`engine.Engine` (connections, timing, classification, records) and only
decide *when* each request starts. Request ``j`` of a rate run is due at ``release + j/rps``
and user ``j`` of a ramp starts at ``release + j/spawn_rate``; a worker process takes every
``stride``-th index from ``offset``, so N workers together follow the one global schedule.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

from .._results.recorder import Measurements
from ..errors import ConfigError
from ..units import parse_count, parse_duration, parse_positive_number
from .engine import (
    DEADLINE_SLACK_S,
    Engine,
    RunInfo,
    Slot,
    _cancel_all,
    highest_us_for,
    split,
    split_cap,
)
from .firstwave import wave_size

perf_counter_ns = time.perf_counter_ns
# Default in-flight cap of a rate run: rps x timeout (every request may wait its full timeout),
# bounded by AWS's default account concurrency (1,000): more would only be throttled.
MAX_IN_FLIGHT_BOUND = 1000
# Connections a rate run opens before its release, by default: enough for rps x 100 ms.
PRECONNECT_S = 0.1
_TIMER_RESOLUTION_S = 0.001


class _Failure:
    """Holds the first exception a request task raised (a classifier bug), for the scheduler."""

    __slots__ = ("exc",)

    def __init__(self) -> None:
        self.exc: BaseException | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        if self.exc is None and not task.cancelled() and task.exception() is not None:
            self.exc = task.exception()

    def check(self) -> None:
        if self.exc is not None:
            raise self.exc


async def _sleep_until(when_ns: int) -> None:
    """Sleep until perf_counter_ns() >= when_ns, at the loop's millisecond timer resolution.

    uvloop's timers tick in whole milliseconds: a shorter sleep would return at once and
    spin the CPU. So a wait under 1 ms sleeps 1 ms, and a request may start up to about a
    millisecond after its intended time (which its corrected latency includes). Timers may
    also fire early: check the clock and sleep again.
    """
    while True:
        now = perf_counter_ns()
        if now >= when_ns:
            return
        await asyncio.sleep(max((when_ns - now) / 1e9, _TIMER_RESOLUTION_S))


class _Scheduled(Engine):
    """A shape whose ``schedule()`` starts tasks over time: one per request (rate) or user (ramp).

    The run waits for the schedule, then for the tasks it started, within the deadline; the
    first exception a task raised (a classifier bug) is raised here.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure = _Failure()

    async def schedule(self) -> None:
        raise NotImplementedError

    async def drive(self) -> None:
        scheduler = asyncio.get_running_loop().create_task(self.schedule())
        tasks = self._tasks
        try:
            if await self._wait([scheduler], self._deadline_at) and tasks:
                await self._wait(list(tasks), self._deadline_at)  # bounded by the shape
            self._failure.check()
        finally:
            await _cancel_all([scheduler, *tasks])

    def start(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._failure.watch(task)


# -- the open model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateParams:
    """A validated constant-arrival-rate shape (this process's share when ``stride`` > 1)."""

    rps: float  # the global schedule, all workers together
    duration_s: float
    requests: int  # requests this process starts
    total_requests: int  # requests of the whole schedule
    max_in_flight: int
    connections: int  # opened before the release
    timeout_s: float
    deadline_s: float
    offset: int = 0
    stride: int = 1
    request_cap: int | None = None  # see BurstParams.request_cap

    kind = "rate"

    @property
    def concurrency(self) -> int:
        return self.max_in_flight

    @property
    def preconnect(self) -> int:
        return self.connections

    @property
    def highest_us(self) -> int:
        # Latency from the intended start can reach the deadline (a request queued early on).
        return highest_us_for(self.timeout_s, self.deadline_s)

    @property
    def engine_class(self) -> type[Engine]:
        return RateEngine

    @property
    def first_wave(self) -> int:
        return wave_size(self.rps / self.stride, self.requests)

    def check_workers(self, workers: int) -> None:
        if workers > min(self.total_requests, self.max_in_flight):
            raise ConfigError(
                f"workers={workers} is more than the run's {self.total_requests} requests or "
                f"max_in_flight={self.max_in_flight}; use fewer workers"
            )

    def share(self, index: int, workers: int) -> RateParams:
        return replace(
            self,
            requests=split(self.total_requests, index, workers),
            max_in_flight=split(self.max_in_flight, index, workers),
            connections=split(self.connections, index, workers),
            offset=index,
            stride=workers,
            request_cap=split_cap(self.request_cap, index, workers),
        )


def validate_rate(
    *,
    rps: object,
    duration: object,
    timeout: object = 30.0,
    max_in_flight: object = None,
    deadline: object = None,
    connections: object = None,
) -> RateParams:
    """Check a rate shape's parameters; raise ConfigError naming the bad value."""
    rate = parse_positive_number(rps, name="rps")
    duration_s = parse_duration(duration, name="duration", allow_zero=False)
    timeout_s = parse_duration(timeout, name="timeout", allow_zero=False)
    total = round(rate * duration_s)
    if total < 1:
        raise ConfigError(
            f"rps={rps!r} for duration={duration!r} schedules no request; "
            "use rps x duration >= 1 (e.g. rps=10, duration='10s')"
        )
    if max_in_flight is None:
        cap = min(max(math.ceil(rate * timeout_s), 1), MAX_IN_FLIGHT_BOUND)
    else:
        cap = parse_count(max_in_flight, name="max_in_flight", minimum=1)
    if connections is None:
        opened = min(cap, max(1, math.ceil(rate * PRECONNECT_S)), total)
    else:
        opened = parse_count(connections, name="connections")
        if opened > cap:
            raise ConfigError(
                f"connections={connections!r} is more than max_in_flight={cap}; "
                "use connections <= max_in_flight"
            )
    if deadline is not None:
        deadline_s = parse_duration(deadline, name="deadline", allow_zero=False)
    else:
        deadline_s = duration_s + timeout_s + DEADLINE_SLACK_S
    return RateParams(rate, duration_s, total, total, cap, opened, timeout_s, deadline_s)


class RateEngine(_Scheduled):
    """The open model: request j starts at release + j/rps whatever the responses do.

    Latency is measured from the intended start (coordinated omission corrected, like wrk2);
    the latency from the actual send goes to the "uncorrected" histogram. A request that
    had to wait for a connection is a *late start* (``Measurements.late_starts``): either
    ``max_in_flight`` requests were in flight (it waited for one to finish) or every open
    connection was busy (a new one was dialled first). It is still sent, and still measured
    from its intended start.
    """

    HOLDS_FIRST_WAVE = False  # the open model never waits for responses

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0  # slots taken (connecting or in flight)
        self.started = 0
        self.last_start_ns = 0
        self._idle: list[Slot] = []
        self._free: asyncio.Future[None] | None = None

    async def schedule(self) -> None:
        loop = asyncio.get_running_loop()
        p: RateParams = self.params
        interval_ns = 1e9 / p.rps
        start = self._released_ns
        late_cap = p.max_in_flight
        failure = self._failure
        self._idle = list(self.slots)
        for k in range(p.requests):  # at most max_in_flight tasks at a time
            if not self.take():
                break
            intended = start + int((p.offset + k * p.stride) * interval_ns)
            await _sleep_until(intended)
            failure.check()
            late = False
            while self.active >= late_cap:
                late = True
                self._free = loop.create_future()
                await self._free
                failure.check()
            if self._idle:
                slot = self._idle.pop()  # the most recently used: warm, least likely closed
            else:
                slot = Slot()
                self.slots.append(slot)  # bounded: at most max_in_flight slots
                late = True
            if late:
                self.measurements.late_starts += 1
            self.active += 1
            self.started += 1
            self.last_start_ns = perf_counter_ns()
            self.start(loop, self._fire(slot, intended))

    async def _fire(self, slot: Slot, intended_ns: int) -> None:
        try:
            await self.send_one(slot, intended_ns)
        finally:
            self.active -= 1
            self._idle.append(slot)
            free = self._free
            if free is not None and not free.done():
                free.set_result(None)

    def describe_shape(self, info: RunInfo) -> None:
        p: RateParams = self.params
        info.intended_rps = p.rps / p.stride
        info.max_in_flight = p.max_in_flight
        info.achieved_rps = achieved_rate(
            self.started, self._released_ns, self.last_start_ns, p.rps / p.stride
        )


def achieved_rate(started: int, released_ns: int, last_start_ns: int, rps: float) -> float:
    """Requests started per second: started / (last start - release + one intended interval)."""
    if not started or not released_ns:
        return 0.0
    span = (last_start_ns - released_ns) / 1e9 + 1.0 / rps
    return started / span if span > 0 else 0.0


# -- ramps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RampParams:
    """A validated Locust-style ramp (this process's share when ``stride`` > 1)."""

    users: int  # users this process runs
    total_users: int
    spawn_rate: float  # the global rate, all workers together
    duration_s: float
    timeout_s: float
    deadline_s: float
    offset: int = 0
    stride: int = 1
    think_time_s: float = 0.0  # each user's pause after a response (Locust's wait_time)
    request_cap: int | None = None  # see BurstParams.request_cap

    kind = "ramp"
    requests = None  # closed loop for a time: no request count
    preconnect = 0  # each user dials when it starts

    @property
    def concurrency(self) -> int:
        return self.users

    @property
    def highest_us(self) -> int:
        return highest_us_for(self.timeout_s, self.deadline_s)

    @property
    def engine_class(self) -> type[Engine]:
        return RampEngine

    @property
    def first_wave(self) -> int:
        return wave_size(self.spawn_rate / self.stride, self.users)

    def check_workers(self, workers: int) -> None:
        if workers > self.total_users:
            raise ConfigError(
                f"workers={workers} is more than users={self.total_users}; use workers <= users"
            )

    def share(self, index: int, workers: int) -> RampParams:
        return replace(
            self,
            users=split(self.total_users, index, workers),
            offset=index,
            stride=workers,
            request_cap=split_cap(self.request_cap, index, workers),
        )


def validate_ramp(
    *,
    users: object,
    spawn_rate: object,
    duration: object,
    timeout: object = 30.0,
    deadline: object = None,
    think_time: object = 0.0,
) -> RampParams:
    """Check a ramp's parameters; raise ConfigError naming the bad value."""
    n_users = parse_count(users, name="users", minimum=1)
    rate = parse_positive_number(spawn_rate, name="spawn_rate")
    duration_s = parse_duration(duration, name="duration", allow_zero=False)
    timeout_s = parse_duration(timeout, name="timeout", allow_zero=False)
    if deadline is not None:
        deadline_s = parse_duration(deadline, name="deadline", allow_zero=False)
    else:
        deadline_s = duration_s + timeout_s + DEADLINE_SLACK_S
    think_s = parse_duration(think_time, name="think_time")
    return RampParams(
        n_users, n_users, rate, duration_s, timeout_s, deadline_s, think_time_s=think_s
    )


class RampEngine(_Scheduled):
    """Users start at ``spawn_rate`` per second; each sends back-to-back until the duration ends.

    The duration counts from the release, spawning included (as in Locust's run time); a
    user whose start time falls after the end never starts (``RunInfo.users_started``).
    A request in flight at the end is waited for (up to the deadline), as hey -z does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.users_started = 0

    async def schedule(self) -> None:
        loop = asyncio.get_running_loop()
        p: RampParams = self.params
        end = self._end_ns
        assert end is not None
        start = self._released_ns
        for k in range(p.users):  # one task per user
            at = start + int((p.offset + k * p.stride) * 1e9 / p.spawn_rate)
            if at >= end:
                break
            await _sleep_until(at)
            self._failure.check()
            slot = Slot()
            self.slots.append(slot)
            self.users_started += 1
            self.start(loop, self._user(slot, end))

    async def _user(self, slot: Slot, end_ns: int) -> None:
        think_ns = int(self.params.think_time_s * 1e9)
        while perf_counter_ns() < end_ns and self.take():
            await self.send_one(slot)
            if think_ns:
                # Like a Locust user's wait_time: a throttled user does not spin on 429s.
                await _sleep_until(min(perf_counter_ns() + think_ns, end_ns))

    def describe_shape(self, info: RunInfo) -> None:
        p: RampParams = self.params
        info.users = p.users
        info.spawn_rate = p.spawn_rate / p.stride
        info.users_started = self.users_started


# -- public entry points ---------------------------------------------------------------------


def run_rate(
    target: object,
    *,
    rps: float,
    duration: float | str,
    timeout: float | str = 30.0,
    max_in_flight: int | None = None,
    deadline: float | str | None = None,
    workers: int | str = 1,
    connections: int | None = None,
) -> tuple[Measurements, RunInfo]:
    """Open model (like wrk2 -R, k6 constant-arrival-rate): ``rps`` requests/s for ``duration``.

    ``max_in_flight`` caps requests in flight (default rps x timeout, at most 1,000);
    ``connections`` are opened before the release (default rps x 100 ms, within the cap).
    """
    from .engine import execute_sync

    params = validate_rate(
        rps=rps, duration=duration, timeout=timeout, max_in_flight=max_in_flight,
        deadline=deadline, connections=connections,
    )  # fmt: skip
    return execute_sync("run_rate", target, params, workers)


async def arun_rate(
    target: object,
    *,
    rps: float,
    duration: float | str,
    timeout: float | str = 30.0,
    max_in_flight: int | None = None,
    deadline: float | str | None = None,
    workers: int | str = 1,
    connections: int | None = None,
) -> tuple[Measurements, RunInfo]:
    """The async twin of :func:`run_rate`, for asyncio and trio (through anyio)."""
    from .engine import execute_async

    params = validate_rate(
        rps=rps, duration=duration, timeout=timeout, max_in_flight=max_in_flight,
        deadline=deadline, connections=connections,
    )  # fmt: skip
    return await execute_async(target, params, workers)


def run_ramp(
    target: object,
    *,
    users: int,
    spawn_rate: float,
    duration: float | str,
    timeout: float | str = 30.0,
    deadline: float | str | None = None,
    workers: int | str = 1,
    think_time: float | str = 0.0,
) -> tuple[Measurements, RunInfo]:
    """Locust-style ramp: ``users`` closed-loop users started at ``spawn_rate`` per second.

    ``think_time`` is each user's pause after every response (Locust's ``wait_time``).
    """
    from .engine import execute_sync

    params = validate_ramp(
        users=users, spawn_rate=spawn_rate, duration=duration, timeout=timeout,
        deadline=deadline, think_time=think_time,
    )  # fmt: skip
    return execute_sync("run_ramp", target, params, workers)


async def arun_ramp(
    target: object,
    *,
    users: int,
    spawn_rate: float,
    duration: float | str,
    timeout: float | str = 30.0,
    deadline: float | str | None = None,
    workers: int | str = 1,
    think_time: float | str = 0.0,
) -> tuple[Measurements, RunInfo]:
    """The async twin of :func:`run_ramp`, for asyncio and trio (through anyio)."""
    from .engine import execute_async

    params = validate_ramp(
        users=users, spawn_rate=spawn_rate, duration=duration, timeout=timeout,
        deadline=deadline, think_time=think_time,
    )  # fmt: skip
    return await execute_async(target, params, workers)
