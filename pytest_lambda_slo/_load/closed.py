"""The closed model (a burst, like ``hey -n -c``): each slot sends again on every response.

The next request of a slot is written from the callback that finished the previous one
(:meth:`HttpConnection.start`): no future, task step or loop turn per request. A task
runs only where something must be awaited: the first wave's verdict, dialling a
connection, and sending again after a reused connection turned out closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from functools import partial
from typing import Any

from .._http.response import Response
from .._http.transport import HttpConnection
from ..errors import UserCallableError
from .engine import Engine, Slot, cancel_all
from .shapes import Slice

perf_counter_ns = time.perf_counter_ns


class Lane(Slot):
    """A slot of the closed model: its request in flight and the callback that ends it."""

    __slots__ = ("busy", "done", "head", "ok", "wire")

    def __init__(self) -> None:
        super().__init__()
        self.busy = False  # a request started from a callback is in flight
        self.wire = b""
        self.head = False
        self.done: Any = None
        self.ok: Any = None


class ClosedEngine(Engine[Slice]):
    """``concurrency`` slots, each sending back-to-back until the requests or duration run out."""

    KIND = "burst"

    _remaining: int | None = None  # requests left to claim (None: bounded by time only)

    # Statuses the target calls a plain ok from the status alone (see _done), or None.
    _plain_ok: frozenset[int] | None = None

    # The wire bytes of the target's one fixed request (None: asked per request).
    _fixed_wire: bytes | None = None

    def new_slot(self) -> Slot:
        lane = Lane()
        lane.done = partial(self._done, lane)
        lane.ok = partial(self._ok, lane)
        fixed = getattr(self.prepared, "fixed_request", None)
        if fixed is not None:
            # Every request is this one: its wire bytes, label and HEAD flag are set once
            # (per lane) instead of per request in _start.
            self._fixed_wire = lane.wire = self.dialer.wire(fixed)
            lane.label = fixed.label
            lane.head = fixed.method == "HEAD"
        return lane

    def _claim(self) -> bool:
        """Take the next request to send, if the burst has one left."""
        if self._end_ns is not None and perf_counter_ns() >= self._end_ns:
            return False
        if self._remaining is not None and self._remaining <= 0:
            return False
        if not self.take():
            return False
        if self._remaining is not None:
            self._remaining -= 1
        return True

    async def drive(self) -> None:
        loop = asyncio.get_running_loop()
        self._remaining = self.part.requests
        self._plain_ok = getattr(self.prepared, "plain_ok_statuses", None)
        self._halted = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: asyncio.Future[None] = loop.create_future()
        self._active = len(self.slots)
        try:
            for lane in self.slots:
                self._next(lane)  # type: ignore[arg-type]
            timeout = max(0.0, self._deadline_at - loop.time())
            done, _ = await asyncio.wait([self._finished], timeout=timeout)
            if not done:
                self.stopped = "deadline"
            else:
                self._finished.result()  # a fault raised in a callback is raised here
        finally:
            self._halt()
            await cancel_all(self._tasks)

    # one slot's chain of requests ------------------------------------------------------------
    def _next(self, lane: Lane) -> None:
        """Start the lane's next request: here when it can go at once, else in a task."""
        if self._halted or not self._claim():
            self._active -= 1
            if self._active <= 0 and not self._finished.done():
                self._finished.set_result(None)
            return
        conn = lane.conn
        if (
            conn is None
            or conn.closed
            or lane.pending_error is not None
            or not (self._wave.passed or self._wave.admit_now())
        ):
            self._spawn(self._slow(lane))  # dial first, or wait for the first wave's verdict
            return
        self._start(lane, conn)

    def _start(self, lane: Lane, conn: HttpConnection) -> None:
        if self._fixed_wire is None:
            template = self.prepared.current_request()
            lane.label = template.label
            lane.wire = self.dialer.wire(template)
            lane.head = template.method == "HEAD"
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        lane.busy = True
        # Positional: a call with keywords takes CPython's generic path (about 330 more
        # instructions per request, engine_cycle.py --instructions).
        conn.start(lane.wire, self.part.timeout_s, lane.done, lane.head, lane.ok)

    def _done(
        self,
        lane: Lane,
        error: str | None,
        response: Response | None,
        t_start: int,
        t_end: int,
        reused: bool,
    ) -> None:
        """The lane's request ended (in the connection's callback): record it, send the next."""
        if error is None:  # a full response (headers kept, or a HEAD): as a lean one's
            assert response is not None
            self._ok(
                lane, response.status_code, response.body_bytes, t_start, t_end,
                response.first_byte_ns, response,
            )  # fmt: skip
            return
        lane.busy = False
        self.in_flight -= 1
        try:
            if error == "connection_closed" and reused and not self._halted:
                # The server closed an idle keep-alive connection just as we reused it: the
                # request never reached it, so send it on a fresh connection (as Go's does).
                self._spawn(self._resend(lane))
                return
            self._record(error, response, t_start, t_end, None, lane.label)
            self._next(lane)
        except Exception as exc:  # a classifier bug or a stop: raised by drive()
            self._fail(exc)

    def _ok(
        self,
        lane: Lane,
        status: int,
        body_bytes: int,
        t_start: int,
        t_end: int,
        first_byte_ns: int,
        response: Response | None = None,
    ) -> None:
        """The lane's request got a full response: record it, send the next (in the
        connection's callback). ``response`` None: a lean connection's, built if needed."""
        lane.busy = False
        self.in_flight -= 1
        try:  # Engine._record's work, inlined
            self._last_done_ns = t_end
            plain = self._plain_ok
            latency_ns = t_end - t_start
            slow = self.measurements.slow
            # What classify() would call a plain ok, unlabelled: recorded as
            # Measurements.record would, without classify.
            plain_ok = (
                plain is not None and status in plain and self._wave.decided and lane.label is None
            )
            if plain_ok and (slow is None or latency_ns <= slow.threshold):
                self.measurements.record_ok(
                    status, latency_ns, body_bytes, t_end, self.in_flight + 1,
                    first_byte_ns - t_start,
                )  # fmt: skip
            else:
                if response is None:
                    conn = lane.conn
                    assert conn is not None  # the connection that delivered it
                    response = conn.response()
                if plain_ok:  # it may be among the slowest: kept with its response
                    self.measurements.record_slow_ok(
                        status, latency_ns, body_bytes, t_end, self.in_flight + 1,
                        first_byte_ns - t_start, response,
                    )  # fmt: skip
                else:
                    ttfb_ns = first_byte_ns - t_start
                    self._record_classified(lane, response, latency_ns, t_end, ttfb_ns)
            # _next and _claim's work for a counted burst on an open connection, inlined.
            remaining = self._remaining
            cap = self._cap_left
            conn = lane.conn
            if (
                remaining is not None
                and remaining > 0
                and (cap is None or cap > 0)
                and self._end_ns is None
                and not self._halted
                and conn is not None
                and not conn.closed
                and lane.pending_error is None
                and self._wave.passed
            ):
                self._remaining = remaining - 1
                if cap is not None:
                    self._cap_left = cap - 1  # Engine.take's count
                if self._fixed_wire is None:
                    self._start(lane, conn)
                else:  # _start's work for a fixed request: in flight again, no new peak
                    self.in_flight += 1
                    lane.busy = True
                    conn.start(lane.wire, self.part.timeout_s, lane.done, lane.head, lane.ok)
            else:
                self._next(lane)
        except Exception as exc:  # a classifier bug or a stop: raised by drive()
            self._fail(exc)

    def _record_classified(
        self, lane: Lane, response: Response, latency_ns: int, t_end: int, ttfb_ns: int
    ) -> None:
        """Record a full response through classify (not a plain ok, or the first wave)."""
        try:
            outcome = self.prepared.classify(response, None, latency_ns)
        except UserCallableError as exc:
            self._stop_on_callable(exc, response)
        outcome.done_ns = t_end
        outcome.in_flight = self.in_flight + 1
        outcome.response = response  # its ids are read if it is among the slowest
        outcome.ttfb_ns = ttfb_ns
        outcome.label = lane.label
        self.measurements.record(outcome)
        if not self._wave.decided:
            self._judge_first_wave(outcome)

    async def _slow(self, lane: Lane) -> None:
        try:
            await self.send_one(lane)
            self._next(lane)
        except Exception as exc:
            self._fail(exc)

    async def _resend(self, lane: Lane) -> None:
        try:
            await self.send_wire(lane, lane.wire, lane.head, fresh=True)
            self._next(lane)
        except Exception as exc:
            self._fail(exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, exc: Exception) -> None:
        """The first fault stops the burst; drive() raises it."""
        if not self._halted:
            self._halted = True
            if not self._finished.done():
                self._finished.set_exception(exc)

    def _halt(self) -> None:
        """No new request; those in flight from callbacks count as the run's stop reason."""
        self._halted = True
        kind = self.stopped or "cancelled"
        for lane in self.slots:
            if isinstance(lane, Lane) and lane.busy and lane.conn is not None:
                lane.busy = False
                result = lane.conn.cancel(kind)
                self.in_flight -= 1
                if result is not None:
                    try:
                        self._record_error(result.error or kind, lane.label)
                    except Exception:
                        pass  # a stop is under way: its first error is the one raised
