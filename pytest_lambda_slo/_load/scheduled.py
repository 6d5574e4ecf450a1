"""The drivers of scheduled shapes: the open model (constant arrival rate) and Locust-style ramps.

Both reuse :class:`engine.Engine` (connections, timing, classification, records) and only
decide *when* each request starts. Request ``j`` of a rate run is due at ``release + j/rps``
and user ``j`` of a ramp starts at ``release + j/spawn_rate``; a worker process takes every
``stride``-th index from ``offset``, so N workers together follow the one global schedule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .._http.dialer import Dialer
from .._targets.base import PreparedTarget
from .engine import Engine, Slot, cancel_all
from .runinfo import Marks, RunInfo, achieved_rate
from .shapes import RampSlice, RateSlice, Slice

perf_counter_ns = time.perf_counter_ns
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


P = TypeVar("P", bound=Slice)


class Scheduled(Engine[P]):
    """A shape whose ``schedule()`` starts tasks over time: one per request (rate) or user (ramp).

    The run waits for the schedule, then for the tasks it started, within the deadline; the
    first exception a task raised (a classifier bug) is raised here.
    """

    def __init__(
        self,
        prepared: PreparedTarget,
        part: P,
        dialer: Dialer,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(prepared, part, dialer, before_release)
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
            await cancel_all([scheduler, *tasks])

    def start(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._failure.watch(task)


class RateEngine(Scheduled[RateSlice]):
    """The open model: request j starts at release + j/rps whatever the responses do.

    Latency is measured from the intended start (coordinated omission corrected, like wrk2);
    the latency from the actual send goes to the "uncorrected" histogram. A request that
    had to wait for a connection is a *late start* (``Measurements.late_starts``): either
    ``max_in_flight`` requests were in flight (it waited for one to finish) or every open
    connection was busy (a new one was dialled first). It is still sent, and still measured
    from its intended start.
    """

    HOLDS_FIRST_WAVE = False  # the open model never waits for responses
    KIND = "rate"

    def __init__(
        self,
        prepared: PreparedTarget,
        part: RateSlice,
        dialer: Dialer,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(prepared, part, dialer, before_release)
        self.active = 0  # slots taken (connecting or in flight)
        self.started = 0
        self.last_start_ns = 0
        self._idle: list[Slot] = []
        self._free: asyncio.Future[None] | None = None

    async def schedule(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.part
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

    def marks(self) -> Marks:
        return Marks(self._released_ns, self._last_done_ns, self.started, self.last_start_ns)

    def describe_shape(self, info: RunInfo) -> None:
        p = self.part
        info.intended_rps = p.rps / p.stride
        info.max_in_flight = p.max_in_flight
        info.achieved_rps = achieved_rate(
            self.started, self._released_ns, self.last_start_ns, p.rps / p.stride
        )


class RampEngine(Scheduled[RampSlice]):
    """Users start at ``spawn_rate`` per second; each sends back-to-back until the duration ends.

    The duration counts from the release, spawning included (as in Locust's run time); a
    user whose start time falls after the end never starts (``RunInfo.users_started``).
    A request in flight at the end is waited for (up to the deadline), as hey -z does.
    """

    KIND = "ramp"

    def __init__(
        self,
        prepared: PreparedTarget,
        part: RampSlice,
        dialer: Dialer,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(prepared, part, dialer, before_release)
        self.users_started = 0

    async def schedule(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.part
        end = self._end_ns
        assert end is not None
        start = self._released_ns
        for k in range(p.users):  # one task per user
            at = start + p.start_offset_ns(k)
            if at >= end:
                break
            await _sleep_until(at)
            self._failure.check()
            slot = Slot()
            self.slots.append(slot)
            self.users_started += 1
            self.start(loop, self._user(slot, end))

    async def _user(self, slot: Slot, end_ns: int) -> None:
        think_ns = int(self.part.think_time_s * 1e9)
        while perf_counter_ns() < end_ns and self.take():
            await self.send_one(slot)
            if think_ns:
                # Like a Locust user's wait_time: a throttled user does not spin on 429s.
                await _sleep_until(min(perf_counter_ns() + think_ns, end_ns))

    def describe_shape(self, info: RunInfo) -> None:
        p = self.part
        info.users = p.users
        info.spawn_rate = p.spawn_rate / p.stride
        info.users_started = self.users_started
