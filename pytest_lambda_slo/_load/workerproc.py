"""A worker process: ``python -m pytest_lambda_slo._load.workerproc``, one slice per process.

Protocol, parent -> worker on stdin: an 8-byte length and a pickled job, later one byte
``g`` (the release). Worker -> parent on its original stdout (user code's prints go to
stderr): JSON lines ``{"ready": ...}`` once its connections are open, then ``{"result":
...}`` (what :func:`worker.run_slice` returns) or ``{"error": traceback}``. The parent
closing the worker's stdin (Ctrl-C, cancellation, the parent dying) stops the worker's
run; it still sends what it measured. Workers ignore SIGINT: only the parent decides when
they stop, so a terminal's Ctrl-C (sent to the whole process group) cannot lose a worker's
partial results.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from .runner import RunHandle
from .worker import run_slice

JOB_LENGTH = struct.Struct("!Q")  # the job's length prefix on stdin


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the parent closed the job pipe")
        data += chunk
    return data


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Release:
    """The release barrier: ``wait`` (on the engine's loop) returns once the parent says go."""

    def __init__(self, send_ready: Callable[[], None]) -> None:
        self._send_ready = send_ready
        self._lock = threading.Lock()
        self._go = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[None] | None = None

    def go(self) -> None:
        with self._lock:
            self._go = True
            loop, future = self._loop, self._future
        if loop is not None and future is not None:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:
                pass  # the loop is gone: the run already ended

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            future: asyncio.Future[None] = loop.create_future()
            self._loop, self._future = loop, future
            go = self._go
        self._send_ready()
        if not go:
            await future


def main() -> int:
    """Entry point of a worker process (see the module docstring for the protocol)."""
    # Our messages keep the original stdout; anything user code prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    try:
        (size,) = JOB_LENGTH.unpack(_read_exact(0, JOB_LENGTH.size))
        job = pickle.loads(_read_exact(0, size))
        sys.path[:] = job["sys_path"]
        target = pickle.loads(job["target"])
    except BaseException:
        send({"error": traceback.format_exc()})
        return 1

    handle = RunHandle()
    release = _Release(lambda: send({"ready": True}))

    def watch_parent() -> None:
        # "g" releases the run; EOF (stop request, or the parent died) cancels it.
        try:
            if os.read(0, 1) == b"g":
                release.go()
                while os.read(0, 1024):
                    pass
        except OSError:
            pass
        handle.stop()

    threading.Thread(target=watch_parent, name="lambda-slo-parent", daemon=True).start()
    outcome: list[Any] = []

    def run() -> None:
        try:
            shape, index, count = job["shape"], job["index"], job["count"]
            cap = job["request_cap"]
            outcome.append(
                run_slice(target, shape, index, count, release.wait, request_cap=cap, handle=handle)
            )
        except BaseException as exc:
            outcome.append(exc)

    # The engine runs off the main thread so it installs no SIGINT handler (see the top).
    runner = threading.Thread(target=run, name="lambda-slo-worker")
    runner.start()
    runner.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        send({"error": "".join(traceback.format_exception(result))})
        return 1
    send({"result": result})
    return 0


if __name__ == "__main__":
    # Only the parent stops a worker (by closing its stdin): a terminal's Ctrl-C reaches the
    # whole process group, and the parent needs every worker's partial results.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main())
