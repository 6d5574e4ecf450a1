"""One run on its own event loop: SIGINT, the stop handle, and the sync/async bridge.

:func:`run_on_own_loop` drives one engine on a fresh loop in this thread and hands back
(Measurements, RunInfo) or raises LoadAborted carrying them. :func:`run_blocking` and
:func:`run_in_thread` are the two ways a caller waits for a run: blocking (refused inside
a running event loop) or awaited from asyncio or trio while the run has a thread to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import sniffio

from .._results.recorder import Measurements
from ..errors import ConfigError, LoadAborted
from .engine import Engine
from .loops import new_event_loop
from .runinfo import RunInfo

# run_in_thread: how often the awaiting task checks the engine thread, and how long it waits
# for the engine to stop after a cancellation.
POLL_S = 0.005
STOP_WAIT_S = 5.0

T = TypeVar("T")


class RunHandle:
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


def aborted(engine: Engine[Any], reason: str, kind: type[LoadAborted] = LoadAborted) -> LoadAborted:
    """``kind`` carrying what ``engine`` measured until it stopped."""
    info = engine.run_info()
    return kind(reason, engine.measurements, info)


def run_on_own_loop(
    engine: Engine[Any], handle: RunHandle | None = None
) -> tuple[Measurements, RunInfo]:
    """Run ``engine`` on a fresh loop in this thread; clean everything up before returning.

    Ctrl-C (in the main thread) stops the run within a loop turn, closes every socket and
    raises KeyboardInterrupt whose ``__cause__`` is a LoadAborted with what was measured.
    """
    loop, engine.event_loop = new_event_loop()
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
        raise KeyboardInterrupt("load run interrupted") from aborted(engine, "Ctrl-C")
    if stop is not None:
        raise aborted(engine, stop.reason, type(stop)) from stop.__cause__
    if engine.stopped == "cancelled":
        raise aborted(engine, "load run cancelled")
    return engine.measurements, engine.run_info()


def in_async_context() -> bool:
    """True inside asyncio or trio code in this thread (blocking there would stall its loop)."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
    return True


def run_blocking(name: str, run: Callable[[RunHandle | None], T]) -> T:
    """Run synchronously; refuse to block a running event loop (``name``: what was called)."""
    if in_async_context():
        raise ConfigError(
            f"{name}() was called inside a running event loop; use 'await a{name}(...)'"
        )
    return run(None)


async def run_in_thread(run: Callable[[RunHandle], T]) -> T:
    """Run in a thread of its own, awaited from asyncio or trio (through anyio).

    The engine runs on its own loop in its own thread, so what it measures does not depend
    on the caller's loop. Cancelling the awaiting task stops the engine and waits (briefly)
    for it to close its sockets (and its worker processes) before the cancellation propagates.
    """
    handle = RunHandle()
    outcome: list[T | BaseException] = []

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
            await anyio.sleep(POLL_S)
    except anyio.get_cancelled_exc_class():
        handle.stop()
        with anyio.CancelScope(shield=True):
            # The engine stops within a loop turn or two; bounded so a wedged thread
            # cannot hang the caller forever.
            for _ in range(int(STOP_WAIT_S / POLL_S)):
                if handle.done.is_set():
                    break
                await anyio.sleep(POLL_S)
        raise
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
