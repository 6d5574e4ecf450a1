"""The load engine: one run on its own event loop; bursts (closed model, like ``hey -n -c``).

One run owns one event loop (uvloop when importable). ``Engine.send_one`` is the single
place where a request is sent, timed, classified and recorded; ``Engine.drive`` is the load
shape. The open model and ramps (shapes.py) subclass Engine with their own ``drive``, and
workers.py fans any shape out over processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, NoReturn

from .._http.transport import Dialer, HttpConnection, Result, TransportError
from .._results.recorder import Measurements, Outcome
from .._targets.http import PreparedTarget, as_target
from ..errors import AuthRefused, ConfigError, LoadAborted, UserCallableError
from ..units import parse_count, parse_duration
from .firstwave import FirstWave
from .loops import LagSampler, new_event_loop

perf_counter_ns = time.perf_counter_ns
# Added to the default overall deadline: room for connection set-up and a slow tail.
DEADLINE_SLACK_S = 5.0
# How long closing connections at the end of a run may wait for TLS close_notify.
CLOSE_GRACE_S = 0.5
# arun_burst: how often the awaiting task checks the engine thread, and how long it waits
# for the engine to stop after a cancellation.
_POLL_S = 0.005
_STOP_WAIT_S = 5.0
# Errors that still have a latency: the response was cut at the cap, or it never came.
_TIMED_ERRORS = ("body_too_large", "timeout")


def split(total: int, index: int, parts: int) -> int:
    """Part ``index`` of ``total`` cut into ``parts`` near-equal whole parts (they sum to it)."""
    return total // parts + (1 if index < total % parts else 0)


def split_cap(cap: int | None, index: int, parts: int) -> int | None:
    """Part ``index`` of a request cap (None: no cap), so the parts never sum past it."""
    return None if cap is None else split(cap, index, parts)


def highest_us_for(timeout_s: float, deadline_s: float) -> int:
    """A shape's histogram range: latencies reach the timeout, in-flight time the deadline."""
    return int((max(timeout_s, deadline_s) + 1.0) * 1_000_000)


@dataclass
class RunInfo:
    """How a run went: its clock, its stop reason and the engine's own health figures."""

    started_at: float  # time.time() at release
    duration_s: float  # release -> last completion
    requests: int | None
    concurrency: int
    timeout_s: float
    deadline_s: float
    duration_limit_s: float | None
    # None, "deadline", "cancelled", "request_cap" (Engine.take), "callable_error" (a user's
    # callable raised) or "auth_refused" (the first wave was all refusals: firstwave.py)
    stopped: str | None
    event_loop: str  # "uvloop" or "asyncio"
    loop_lag_max_ms: float
    loop_lag_p99_ms: float
    cpu_s: float  # CPU time (user+sys) the run used, summed over worker processes
    shape: str = "burst"  # "burst", "rate" or "ramp"
    workers: int = 1
    connections: int = 0  # connections opened (dials that succeeded)
    peak_in_flight: int = 0  # most requests in flight at once (summed over workers)
    intended_rps: float | None = None  # rate: the schedule
    achieved_rps: float | None = None  # rate: requests started / (last start - release + 1/rps)
    max_in_flight: int | None = None  # rate: the in-flight cap
    users: int | None = None  # ramp
    spawn_rate: float | None = None  # ramp: users started per second
    users_started: int | None = None  # ramp: users that started before the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BurstParams:
    """A validated burst shape."""

    requests: int | None
    concurrency: int
    timeout_s: float
    deadline_s: float
    duration_s: float | None
    # Most requests the run may send (what the session's request cap left for a run of
    # unknown size); None: no bound beyond the shape.
    request_cap: int | None = None

    kind = "burst"

    @property
    def preconnect(self) -> int:
        """Connections opened before the release."""
        return self.concurrency

    @property
    def engine_class(self) -> type[Engine]:
        return Engine

    @property
    def first_wave(self) -> int:
        """Responses judged for authentication refusals before the rest may be sent."""
        return min(self.concurrency, self.request_cap or self.concurrency)

    def check_workers(self, workers: int) -> None:
        if workers > self.concurrency:
            raise ConfigError(
                f"workers={workers} is more than concurrency={self.concurrency}; every worker "
                "process needs at least one connection: use workers <= concurrency"
            )

    def share(self, index: int, workers: int) -> BurstParams:
        """Worker ``index``'s part: requests and concurrency split as evenly as they go."""
        return replace(
            self,
            requests=None if self.requests is None else split(self.requests, index, workers),
            concurrency=split(self.concurrency, index, workers),
            request_cap=split_cap(self.request_cap, index, workers),
        )

    @property
    def highest_us(self) -> int:
        return highest_us_for(self.timeout_s, self.deadline_s)


def validate_burst(
    *,
    requests: object,
    concurrency: object,
    timeout: object = 30.0,
    deadline: object = None,
    duration: object = None,
) -> BurstParams:
    """Check a burst's parameters; raise ConfigError naming the bad value and accepted forms."""
    duration_s = None
    if duration is not None:
        duration_s = parse_duration(duration, name="duration", allow_zero=False)
    if requests is None:
        if duration_s is None:
            raise ConfigError(
                "requests=None is only valid with duration=; use a whole number >= 1 "
                "or give duration='30s'"
            )
        n_requests = None
    else:
        n_requests = parse_count(requests, name="requests", minimum=1)
    n_concurrency = parse_count(concurrency, name="concurrency", minimum=1)
    if n_requests is not None and n_concurrency > n_requests:
        raise ConfigError(
            f"concurrency={concurrency!r} is greater than requests={requests!r}; "
            "use concurrency <= requests"
        )
    timeout_s = parse_duration(timeout, name="timeout", allow_zero=False)
    if deadline is not None:
        deadline_s = parse_duration(deadline, name="deadline", allow_zero=False)
    elif duration_s is not None:
        deadline_s = duration_s + timeout_s + DEADLINE_SLACK_S
    else:
        assert n_requests is not None
        deadline_s = timeout_s * math.ceil(n_requests / n_concurrency) + DEADLINE_SLACK_S
    return BurstParams(n_requests, n_concurrency, timeout_s, deadline_s, duration_s)


class Slot:
    """One in-flight position: it owns one keep-alive connection, like a hey worker."""

    __slots__ = ("conn", "pending_error")

    def __init__(self) -> None:
        self.conn: HttpConnection | None = None
        self.pending_error: TransportError | None = None


class Engine:
    """One load run on the current event loop: connections, timing, classification, records."""

    # A closed model holds requests past the first wave until it is judged (firstwave.py).
    HOLDS_FIRST_WAVE = True

    def __init__(
        self,
        prepared: PreparedTarget,
        params: Any,
        dialer: Dialer,
        event_loop: str,
        before_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.prepared = prepared
        self.params = params
        self.dialer = dialer
        self.event_loop = event_loop
        # Awaited after the connections are open and before the release (workers' barrier).
        self.before_release = before_release
        self.measurements = Measurements(highest_us=params.highest_us)
        self.slots: list[Slot] = []
        self.stopped: str | None = None
        self.connections = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._remaining = params.requests
        self._cap_left: int | None = params.request_cap
        self._wave = FirstWave(params.first_wave)
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

    # the shared per-request path ----------------------------------------------------------
    async def connect(self, slot: Slot) -> HttpConnection | None:
        """Open the slot's connection; time it into the "connect" histogram."""
        loop = asyncio.get_running_loop()
        t0 = perf_counter_ns()
        try:
            conn = await self.dialer.connect(loop, self.params.timeout_s)
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
        if slot.pending_error is None and (slot.conn is None or slot.conn.closed):
            await self.connect(slot)
        if slot.pending_error is not None:
            self._record_pending_error(slot)
            return
        template = self.prepared.current_request()
        wire = self.dialer.wire(template)
        head = template.method == "HEAD"
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        try:
            result = await self._exchange(slot, wire, head)
            if result.error == "connection_closed" and result.reused:
                # The server closed an idle keep-alive connection just as we reused it: the
                # request never reached it, so send it on a fresh connection (as Go's does).
                if await self.connect(slot) is None:
                    self._record_pending_error(slot)
                    return
                result = await self._exchange(slot, wire, head)
        finally:
            self.in_flight -= 1
        self._record(result, intended_ns)

    async def _exchange(self, slot: Slot, wire: bytes, head: bool) -> Result:
        conn = slot.conn
        assert conn is not None
        waiter = conn.send(wire, self.params.timeout_s, head=head)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Deadline or cancellation with this request in flight: count it, then stop.
            result = conn.cancel(self.stopped or "cancelled")
            if result is not None:
                self._record_error(result.error or "cancelled")
            raise

    def _record(self, result: Result, intended_ns: int | None) -> None:
        self._last_done_ns = result.t_end
        error = result.error
        latency: int | None = None  # a request that failed without a response has none
        if error is None or error in _TIMED_ERRORS:
            latency = result.latency_ns if intended_ns is None else result.t_end - intended_ns
        # result.response is None for every error but body_too_large (the capped response).
        try:
            outcome = self.prepared.classify(result.response, error, latency)
        except UserCallableError as exc:
            self._stop_on_callable(exc, result)
        if intended_ns is not None and outcome.latency_ns is not None:
            outcome.uncorrected_ns = result.latency_ns
        outcome.done_ns = result.t_end
        outcome.in_flight = self.in_flight + 1  # send_one already counted it out
        self.measurements.record(outcome)
        self._judge_first_wave(outcome)

    def _stop_on_callable(self, exc: UserCallableError, result: Result) -> NoReturn:
        """A user's callable raised on this response: record it as far as it is known, stop."""
        outcome = getattr(exc, "outcome", None)  # classified without that callable's verdict
        if outcome is not None:
            self.measurements.record(outcome)
        self.stopped = "callable_error"
        status = result.response.status_code if result.response is not None else None
        raise UserCallableError(
            f"{exc} on response {self.measurements.count} (status {status}); the run stopped"
        ) from exc.__cause__

    def _judge_first_wave(self, outcome: Outcome) -> None:
        wave = self._wave
        if not wave.decided and wave.judge(outcome):
            self.stopped = "auth_refused"
            signer = getattr(self.prepared, "signer", None)  # a SigV4-signed target's
            raise AuthRefused(wave.message(getattr(signer, "access_key_id", None)))

    def _record_pending_error(self, slot: Slot) -> None:
        """The request meant for ``slot`` failed to connect: that failure is its outcome."""
        error = slot.pending_error
        slot.pending_error = None
        if error is not None:
            self._record_error(error.kind)

    def _record_error(self, kind: str) -> None:
        self._last_done_ns = perf_counter_ns()
        outcome: Outcome = self.prepared.classify(None, kind, None)
        outcome.done_ns = self._last_done_ns
        self.measurements.record(outcome)
        if not self._wave.decided:
            self._judge_first_wave(outcome)  # not a refusal: releases a held first wave

    def take(self) -> bool:
        """Count one request against the run's request cap; False (stopped) once it is spent.

        Every shape calls this before each request it starts, so no shape can send past
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

    # the closed model ----------------------------------------------------------------------
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

    async def _worker(self, slot: Slot) -> None:
        while self._claim():
            await self.send_one(slot)

    async def drive(self) -> None:
        """The load shape, run after the release: here the closed model of a burst."""
        tasks = [asyncio.get_running_loop().create_task(self._worker(s)) for s in self.slots]
        try:
            await self._wait(tasks, self._deadline_at)
        finally:
            await _cancel_all(tasks)

    async def run(self) -> None:
        """Connect the first slots, release them together, drive the shape, stop at the deadline."""
        loop = asyncio.get_running_loop()
        params = self.params
        self._cpu_start = time.process_time()
        self._deadline_at = deadline_at = loop.time() + params.deadline_s
        self._lag.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            # Start barrier: every first connection is set up first (in parallel) ...
            self.slots = [Slot() for _ in range(params.preconnect)]
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
            if params.duration_s is not None:
                self._end_ns = self._released_ns + int(params.duration_s * 1e9)
            await self.drive()
        except asyncio.CancelledError:
            self.stopped = self.stopped or "cancelled"
            raise
        finally:
            # Whatever happened (deadline, cancellation, a bug): no task outlives the run.
            await _cancel_all(tasks)
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
        params = self.params
        measurements = self.measurements
        if params.requests is not None:
            measurements.unsent = max(0, params.requests - measurements.count)
        released = self._released_ns
        end = self._last_done_ns if self._last_done_ns > released else perf_counter_ns()
        cpu_end = self._cpu_end if self._cpu_end is not None else time.process_time()
        info = RunInfo(
            started_at=self._started_at or time.time(),
            duration_s=(end - released) / 1e9 if released else 0.0,
            requests=params.requests,
            concurrency=params.concurrency,
            timeout_s=params.timeout_s,
            deadline_s=params.deadline_s,
            duration_limit_s=params.duration_s,
            stopped=self.stopped,
            event_loop=self.event_loop,
            loop_lag_max_ms=self._lag.max_ms,
            loop_lag_p99_ms=self._lag.p99_ms,
            cpu_s=cpu_end - self._cpu_start,
            shape=params.kind,
            connections=self.connections,
            peak_in_flight=self.peak_in_flight,
        )
        self.describe_shape(info)
        return info

    def describe_shape(self, info: RunInfo) -> None:
        """Fill the shape's own RunInfo fields (subclasses)."""


async def _cancel_all(tasks: Any) -> None:
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


class _Handle:
    """Lets another thread stop a run that is executing on its own loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self.done = threading.Event()

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._loop, self._task = loop, task
            if self.stop_requested:
                task.cancel()

    def detach(self) -> None:
        with self._lock:
            self._loop = self._task = None

    def stop(self) -> None:
        with self._lock:
            self.stop_requested = True
            if self._loop is not None and self._task is not None:
                try:
                    self._loop.call_soon_threadsafe(self._task.cancel)
                except RuntimeError:
                    pass  # the loop already closed: the run is over


def _aborted(engine: Engine, message: str) -> LoadAborted:
    info = engine.run_info()
    return aborted_with(message, engine.measurements, info)


def aborted_with(
    message: str,
    measurements: Measurements,
    info: RunInfo,
    kind: type[LoadAborted] = LoadAborted,
) -> LoadAborted:
    """A LoadAborted (or ``kind``) carrying the partial ``.measurements`` and ``.run_info``."""
    exc = kind(f"{message}: {measurements.count} requests measured, {measurements.unsent} not sent")
    exc.reason = message  # type: ignore[attr-defined]
    exc.measurements = measurements  # type: ignore[attr-defined]
    exc.run_info = info  # type: ignore[attr-defined]
    return exc


def _run_on_own_loop(
    prepared: PreparedTarget,
    params: Any,
    dialer: Dialer,
    handle: _Handle | None = None,
    before_release: Callable[[], Awaitable[None]] | None = None,
    engines: list[Engine] | None = None,
) -> tuple[Measurements, RunInfo]:
    """Run one engine on a fresh loop in this thread; clean everything up before returning.

    ``params`` picks the shape (its ``engine_class``); ``engines`` receives the engine so a
    worker process can read its clock marks afterwards.
    """
    loop, loop_name = new_event_loop()
    engine: Engine = params.engine_class(prepared, params, dialer, loop_name, before_release)
    if engines is not None:
        engines.append(engine)
    interrupted = False
    stop: LoadAborted | None = None  # the run stopped itself (a user's callable, refusals)
    sigint_installed = False
    previous_sigint: Any = None
    previous_wakeup_fd = -1
    try:
        main = loop.create_task(engine.run())
        if handle is not None:
            handle.attach(loop, main)
        if threading.current_thread() is threading.main_thread():
            previous_sigint = signal.getsignal(signal.SIGINT)
            previous_wakeup_fd = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(previous_wakeup_fd)

            def on_sigint() -> None:
                nonlocal interrupted
                interrupted = True
                main.cancel()

            try:
                loop.add_signal_handler(signal.SIGINT, on_sigint)
                sigint_installed = True
            except (RuntimeError, ValueError, NotImplementedError):
                pass
        try:
            loop.run_until_complete(main)
        except KeyboardInterrupt:
            # Only without our handler: clean up, then report it like the handler would.
            interrupted = True
            main.cancel()
            try:
                loop.run_until_complete(main)
            except asyncio.CancelledError:
                pass
        except asyncio.CancelledError:
            pass
        except LoadAborted as exc:
            stop = exc
    finally:
        if handle is not None:
            handle.detach()
        if sigint_installed:
            loop.remove_signal_handler(signal.SIGINT)
            if previous_sigint is not None:
                signal.signal(signal.SIGINT, previous_sigint)
            if previous_wakeup_fd != -1:
                # remove_signal_handler cleared the wake-up fd another library may rely on.
                with contextlib.suppress(ValueError, OSError):
                    signal.set_wakeup_fd(previous_wakeup_fd)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
    if main.cancelled() and engine.stopped is None:
        engine.stopped = "cancelled"  # cancelled before the run even started
    if interrupted:
        raise KeyboardInterrupt("load run interrupted") from _aborted(engine, "Ctrl-C")
    if stop is not None:
        info = engine.run_info()
        raise aborted_with(str(stop), engine.measurements, info, type(stop)) from stop.__cause__
    if engine.stopped == "cancelled":
        raise _aborted(engine, "load run cancelled")
    return engine.measurements, engine.run_info()


def _in_async_context() -> bool:
    """True inside asyncio or trio code in this thread (blocking there would stall its loop)."""
    try:
        import sniffio

        sniffio.current_async_library()
    except Exception:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
    return True


def _ready(
    target: object, params: Any, workers: object, engines: list[Engine] | None = None
) -> Callable[[_Handle | None], tuple[Measurements, RunInfo]]:
    """Check and prepare everything in the caller (bad input raises here); return the run.

    The run goes in this process (workers=1) or fanned out over processes. ``engines``
    receives a workers=1 run's engine as it starts, so a reader (the progress line) can
    watch its live counters.
    """
    from .workers import parse_workers, run_workers

    n_workers = parse_workers(workers)
    params.check_workers(n_workers)
    resolved = as_target(target)
    prepared = resolved.prepare()  # bad targets fail here, in the caller, for every path
    dialer = Dialer(prepared.url, prepared.verify, prepared.max_body_bytes)
    if n_workers == 1:
        return lambda handle: _run_on_own_loop(prepared, params, dialer, handle, engines=engines)
    return lambda handle: run_workers(resolved, params, n_workers, handle)


def execute_sync(
    name: str, target: object, params: Any, workers: object, engines: list[Engine] | None = None
) -> tuple[Measurements, RunInfo]:
    """The synchronous entry of every shape: refuses to block a running event loop."""
    if _in_async_context():
        raise ConfigError(
            f"{name}() was called inside a running event loop; use 'await a{name}(...)'"
        )
    return _ready(target, params, workers, engines)(None)


async def execute_async(
    target: object, params: Any, workers: object, engines: list[Engine] | None = None
) -> tuple[Measurements, RunInfo]:
    """Run a shape in a thread, awaited from asyncio or trio (through anyio).

    The engine runs on its own loop in its own thread, so what it measures does not depend
    on the caller's loop. Cancelling the awaiting task stops the engine and waits (briefly)
    for it to close its sockets (and its worker processes) before the cancellation propagates.
    """
    import anyio

    run = _ready(target, params, workers, engines)  # bad input raises here, not in the thread
    handle = _Handle()
    outcome: list[Any] = []

    def in_thread() -> None:
        try:
            outcome.append(run(handle))
        except BaseException as exc:  # handed to the awaiting task
            outcome.append(exc)
        finally:
            handle.done.set()

    # A plain thread polled with anyio.sleep: works on asyncio and trio alike and stays
    # cancellable (the poll interval only delays handing back the result, not the timing).
    thread = threading.Thread(target=in_thread, name="lambda-slo-engine", daemon=True)
    thread.start()
    try:
        while not handle.done.is_set():
            await anyio.sleep(_POLL_S)
    except anyio.get_cancelled_exc_class():
        handle.stop()
        with anyio.CancelScope(shield=True):
            # The engine stops within a loop turn or two; bounded so a wedged thread
            # cannot hang the caller forever.
            for _ in range(int(_STOP_WAIT_S / _POLL_S)):
                if handle.done.is_set():
                    break
                await anyio.sleep(_POLL_S)
        raise
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def run_burst(
    target: object,
    *,
    requests: int | None,
    concurrency: int,
    timeout: float | str = 30.0,
    deadline: float | str | None = None,
    duration: float | str | None = None,
    workers: int | str = 1,
) -> tuple[Measurements, RunInfo]:
    """Fire a burst like ``hey -n requests -c concurrency`` (or ``-z duration``); synchronous.

    ``workers=N`` (or "auto": one per CPU) splits requests and concurrency over N processes.
    Ctrl-C stops the run within about a second, closes every socket and re-raises
    KeyboardInterrupt whose ``__cause__`` is a LoadAborted carrying ``.measurements`` and
    ``.run_info`` of what was measured so far.
    """
    params = validate_burst(
        requests=requests, concurrency=concurrency, timeout=timeout, deadline=deadline,
        duration=duration,
    )  # fmt: skip
    return execute_sync("run_burst", target, params, workers)


async def arun_burst(
    target: object,
    *,
    requests: int | None,
    concurrency: int,
    timeout: float | str = 30.0,
    deadline: float | str | None = None,
    duration: float | str | None = None,
    workers: int | str = 1,
) -> tuple[Measurements, RunInfo]:
    """The async twin of :func:`run_burst`, for asyncio and trio (through anyio)."""
    params = validate_burst(
        requests=requests, concurrency=concurrency, timeout=timeout, deadline=deadline,
        duration=duration,
    )  # fmt: skip
    return await execute_async(target, params, workers)


_SHAPES = ("run_rate", "arun_rate", "run_ramp", "arun_ramp")


def __getattr__(name: str) -> Any:
    # The other shapes live in shapes.py (which imports this module): re-exported lazily.
    if name in _SHAPES:
        from . import scheduled as shapes

        return getattr(shapes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
