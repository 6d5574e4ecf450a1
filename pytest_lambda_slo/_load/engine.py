"""The engine base: one load run on the current event loop, and the per-request path.

``Engine.send_one`` is the single place where a request is sent, timed, classified and
recorded; ``Engine.run`` opens the first connections, waits at the release barrier, runs the
driver's ``drive`` (closed.py: the closed model; scheduled.py: rate and ramp) and stops at
the deadline. What it runs is one :class:`~.shapes.Slice` of a shape.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, NoReturn, TypeVar

from .._http.dialer import Dialer
from .._http.response import Response, Result
from .._http.transport import HttpConnection, TransportError
from .._results.recorder import Measurements, Outcome
from .._targets.base import PreparedTarget
from ..errors import AuthRefused, UserCallableError
from .firstwave import FirstWave
from .loops import LagSampler
from .runinfo import Marks, RunInfo
from .shapes import Slice

perf_counter_ns = time.perf_counter_ns
# How long closing connections at the end of a run may wait for TLS close_notify.
CLOSE_GRACE_S = 0.5
# Errors that still have a latency: the response was cut at the cap, or it never came.
TIMED_ERRORS = ("body_too_large", "timeout")

S = TypeVar("S", bound=Slice)

# During a run the cyclic GC runs after this many new container objects, not 700: the
# per-request objects are freed by reference counting, so a pass finds nothing to collect
# and only costs CPU. Nothing is frozen (gc.freeze): a freeze at every run would also freeze
# the cycles earlier runs left, and keep them for ever; a full collection first would cost
# a large process (a pytest session) hundreds of milliseconds before every run.
GC_GEN0_DURING_RUN = 50_000


class QuietGC:
    """Rarer cyclic-GC passes while any engine of this process runs; restored after the last."""

    _lock = threading.Lock()
    _runs = 0
    _saved: tuple[int, int, int] = (700, 10, 10)

    @classmethod
    def enter(cls) -> None:
        with cls._lock:
            if cls._runs == 0:
                cls._saved = gc.get_threshold()
                gen0, gen1, gen2 = cls._saved
                if gen0:  # 0: the GC is off; leave it off
                    gc.set_threshold(max(gen0, GC_GEN0_DURING_RUN), gen1, gen2)
            cls._runs += 1

    @classmethod
    def exit(cls) -> None:
        with cls._lock:
            cls._runs -= 1
            if cls._runs == 0:
                gc.set_threshold(*cls._saved)


class Slot:
    """One in-flight position: it owns one keep-alive connection, like a hey worker."""

    __slots__ = ("conn", "label", "pending_error")

    def __init__(self) -> None:
        self.conn: HttpConnection | None = None
        self.pending_error: TransportError | None = None
        self.label: str | None = None  # the label of the request in flight (or failing)


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them; no task outlives the run."""
    tasks = list(tasks)
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        # Shielded so a second cancellation cannot leave half-cancelled workers behind.
        await asyncio.shield(asyncio.wait(pending))
    for task in tasks:
        if task.done() and not task.cancelled():
            # Mark every error retrieved: the caller raises the first one; the others (the
            # same classifier bug hit by other workers) would be logged as "never retrieved".
            task.exception()


class Engine(Generic[S]):
    """One load run on the current event loop: connections, timing, classification, records.

    Subclasses (the drivers) implement ``drive``: when each request starts.
    """

    # A closed model holds requests past the first wave until it is judged (firstwave.py).
    HOLDS_FIRST_WAVE = True
    KIND = "burst"  # RunInfo.shape: the kind of shape the driver runs

    def __init__(
        self,
        prepared: PreparedTarget,
        part: S,
        dialer: Dialer,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.prepared = prepared
        self.part = part
        self.dialer = dialer
        self.event_loop = ""  # the loop's name, set by the runner that owns the loop
        # Awaited after the connections are open and before the release (workers' barrier).
        self.before_release = before_release
        self.measurements = Measurements(highest_us=part.highest_us)
        self.slots: list[Slot] = []
        self.stopped: str | None = None
        self.connections = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._cap_left: int | None = part.request_cap
        self._wave = FirstWave(part.first_wave)
        self._end_ns: int | None = None
        self._released_ns = 0
        self._last_done_ns = 0
        self._started_at = 0.0
        self._cpu_start = 0.0
        self._cpu_end: float | None = None
        self._deadline_at = 0.0
        self._lag = LagSampler()
        self._connect_hist = self.measurements.hist("connect")

    @property
    def released_ns(self) -> int:
        """perf_counter_ns() at the release (0 before it); CLOCK_MONOTONIC, shared by processes."""
        return self._released_ns

    @property
    def last_done_ns(self) -> int:
        return self._last_done_ns

    def marks(self) -> Marks:
        """This run's clock marks, for merging it with other processes' runs."""
        return Marks(self._released_ns, self._last_done_ns)

    async def drive(self) -> None:
        """The load shape, run after the release (the drivers)."""
        raise NotImplementedError

    def new_slot(self) -> Slot:
        """A slot for one of the first connections (a driver may keep more per slot)."""
        return Slot()

    # the shared per-request path ----------------------------------------------------------
    async def connect(self, slot: Slot) -> HttpConnection | None:
        """Open the slot's connection; time it into the "connect" histogram."""
        loop = asyncio.get_running_loop()
        t0 = perf_counter_ns()
        try:
            conn = await self.dialer.connect(loop, self.part.timeout_s)
        except TransportError as exc:
            slot.conn = None
            slot.pending_error = exc
            return None
        self._connect_hist.record((perf_counter_ns() - t0) // 1000)
        self.connections += 1
        slot.conn = conn
        return conn

    async def send_one(self, slot: Slot, intended_ns: int | None = None) -> None:
        """Send one request on ``slot`` and record its outcome (no retries).

        ``intended_ns`` (open model) is when the request should have started: the latency
        is then measured from it and the latency from the actual send is kept as uncorrected.
        """
        if self.HOLDS_FIRST_WAVE and not self._wave.passed:
            await self._wave.admit()
        # Taken before the dial: a request that fails to connect is still this request.
        template = self.prepared.current_request()
        slot.label = template.label
        if slot.pending_error is None and (slot.conn is None or slot.conn.closed):
            await self.connect(slot)
        if slot.pending_error is not None:
            self._record_pending_error(slot)
            return
        await self.send_wire(
            slot, self.dialer.wire(template), template.method == "HEAD", intended_ns
        )

    async def send_wire(
        self,
        slot: Slot,
        wire: bytes,
        head: bool,
        intended_ns: int | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        """Send ``wire`` on ``slot``'s connection, time it and record it.

        ``fresh``: dial a new connection first (the reused one was closed before the request
        reached the server); otherwise a request that meets that case is sent once more.
        """
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        try:
            if fresh and await self.connect(slot) is None:
                self._record_pending_error(slot)
                return
            result = await self._exchange(slot, wire, head)
            if result.error == "connection_closed" and result.reused and not fresh:
                # The server closed an idle keep-alive connection just as we reused it: the
                # request never reached it, so send it on a fresh connection (as Go's does).
                if await self.connect(slot) is None:
                    self._record_pending_error(slot)
                    return
                result = await self._exchange(slot, wire, head)
        finally:
            self.in_flight -= 1
        self._record(
            result.error, result.response, result.t_start, result.t_end, intended_ns, slot.label
        )

    async def _exchange(self, slot: Slot, wire: bytes, head: bool) -> Result:
        conn = slot.conn
        assert conn is not None
        waiter = conn.send(wire, self.part.timeout_s, head=head)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Deadline or cancellation with this request in flight: count it, then stop.
            result = conn.cancel(self.stopped or "cancelled")
            if result is not None:
                self._record_error(result.error or "cancelled", slot.label)
            raise

    def _record(
        self,
        error: str | None,
        response: Response | None,
        t_start: int,
        t_end: int,
        intended_ns: int | None,
        label: str | None = None,
    ) -> None:
        """Classify and record one finished request (``t_end``: when its body ended)."""
        self._last_done_ns = t_end
        latency: int | None = None  # a request that failed without a response has none
        origin = t_start if intended_ns is None else intended_ns
        if error is None or error in TIMED_ERRORS:
            latency = t_end - origin
        # response is None for every error but body_too_large (the capped response).
        try:
            outcome = self.prepared.classify(response, error, latency)
        except UserCallableError as exc:
            self._stop_on_callable(exc, response)
        if intended_ns is not None and outcome.latency_ns is not None:
            outcome.uncorrected_ns = t_end - t_start
        outcome.done_ns = t_end
        outcome.in_flight = self.in_flight + 1  # the caller already counted it out
        if response is not None:  # ids read if it is among the slowest; ttfb from the origin
            outcome.response = response
            if response.first_byte_ns and outcome.latency_ns is not None:
                outcome.ttfb_ns = response.first_byte_ns - origin
        outcome.label = label
        self.measurements.record(outcome)
        self._judge_first_wave(outcome)

    def _stop_on_callable(self, exc: UserCallableError, response: Response | None) -> NoReturn:
        """A user's callable raised on this response: record it as far as it is known, stop."""
        if exc.outcome is not None:  # classified without that callable's verdict
            self.measurements.record(exc.outcome)
        self.stopped = "callable_error"
        status = response.status_code if response is not None else None
        raise UserCallableError(
            f"{exc} on response {self.measurements.count} (status {status}); the run stopped"
        ) from exc.__cause__

    def _judge_first_wave(self, outcome: Outcome) -> None:
        wave = self._wave
        if not wave.decided and wave.judge(outcome):
            self.stopped = "auth_refused"
            raise AuthRefused(wave.message(self.prepared.access_key_id))

    def _record_pending_error(self, slot: Slot) -> None:
        """The request meant for ``slot`` failed to connect: that failure is its outcome."""
        error = slot.pending_error
        slot.pending_error = None
        if error is not None:
            self._record_error(error.kind, slot.label)

    def _record_error(self, kind: str, label: str | None = None) -> None:
        self._last_done_ns = perf_counter_ns()
        outcome: Outcome = self.prepared.classify(None, kind, None)
        outcome.done_ns = self._last_done_ns
        outcome.label = label
        self.measurements.record(outcome)
        if not self._wave.decided:
            self._judge_first_wave(outcome)  # not a refusal: releases a held first wave

    def take(self) -> bool:
        """Count one request against the run's request cap; False (stopped) once it is spent.

        Every driver calls this before each request it starts, so no shape can send past
        what the session's cap left for the run.
        """
        left = self._cap_left
        if left is None:
            return True
        if left <= 0:
            self.stopped = self.stopped or "request_cap"
            return False
        self._cap_left = left - 1
        return True

    # one run --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect the first slots, release them together, drive the shape, stop at the deadline."""
        loop = asyncio.get_running_loop()
        part = self.part
        begin = getattr(self.prepared, "begin", None)
        if begin is not None:  # per-request data of this slice: built before the release
            begin(part.index, part.count, part.requests)
        self._cpu_start = time.process_time()
        self._deadline_at = deadline_at = loop.time() + part.deadline_s
        self._lag.start()
        tasks: list[asyncio.Task[Any]] = []
        QuietGC.enter()
        try:
            # Start barrier: every first connection is set up first (in parallel) ...
            self.slots = [self.new_slot() for _ in range(part.preconnect)]
            tasks = [loop.create_task(self.connect(slot)) for slot in self.slots]
            if tasks and not await self._wait(tasks, deadline_at):
                return
            if self.before_release is not None:
                # Waiting for the other workers is not this run's time: the deadline moves.
                waited_from = loop.time()
                await self.before_release()
                self._deadline_at += loop.time() - waited_from
            # ... then the shape starts; a burst writes its first wave in one loop turn.
            self._started_at = time.time()
            self._released_ns = perf_counter_ns()
            self.measurements.mark_release(self._released_ns, self._started_at)
            if part.duration_s is not None:
                self._end_ns = self._released_ns + int(part.duration_s * 1e9)
            await self.drive()
        except asyncio.CancelledError:
            self.stopped = self.stopped or "cancelled"
            raise
        finally:
            # Whatever happened (deadline, cancellation, a bug): no task outlives the run.
            QuietGC.exit()
            await cancel_all(tasks)
            self._cpu_end = time.process_time()
            await self._lag.stop()
            await self._close_connections()

    async def _close_connections(self) -> None:
        """Close every connection; TLS gets a bounded moment for its close_notify exchange."""
        conns = [slot.conn for slot in self.slots if slot.conn is not None]
        for conn in conns:
            conn.close(graceful=True)
        waited = 0.0
        while waited < CLOSE_GRACE_S and not all(conn.lost for conn in conns):
            await asyncio.sleep(0.005)
            waited += 0.005
        for conn in conns:
            if not conn.lost and conn.transport is not None:
                conn.transport.abort()
        self.dialer.deadlines.stop()
        # Let the transports deliver connection_lost before the loop goes away.
        await asyncio.sleep(0)

    async def _wait(self, tasks: list[asyncio.Task[Any]], deadline_at: float) -> bool:
        """Wait for ``tasks`` until the deadline; False when it hit. A task's bug is raised."""
        loop = asyncio.get_running_loop()
        timeout = max(0.0, deadline_at - loop.time())
        done, pending = await asyncio.wait(
            tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION
        )
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if pending:
            self.stopped = "deadline"
            return False
        return True

    def run_info(self) -> RunInfo:
        part = self.part
        measurements = self.measurements
        if part.requests is not None:
            measurements.unsent = max(0, part.requests - measurements.count)
        released = self._released_ns
        end = self._last_done_ns if self._last_done_ns > released else perf_counter_ns()
        cpu_end = self._cpu_end if self._cpu_end is not None else time.process_time()
        info = RunInfo(
            started_at=self._started_at or time.time(),
            duration_s=(end - released) / 1e9 if released else 0.0,
            requests=part.requests,
            concurrency=part.concurrency,
            timeout_s=part.timeout_s,
            deadline_s=part.deadline_s,
            duration_limit_s=part.duration_s,
            stopped=self.stopped,
            event_loop=self.event_loop,
            loop_lag_max_ms=self._lag.max_ms,
            loop_lag_p99_ms=self._lag.p99_ms,
            cpu_s=cpu_end - self._cpu_start,
            shape=self.KIND,
            connections=self.connections,
            peak_in_flight=self.peak_in_flight,
        )
        self.describe_shape(info)
        return info

    def describe_shape(self, info: RunInfo) -> None:
        """Fill the shape's own RunInfo fields (drivers)."""
