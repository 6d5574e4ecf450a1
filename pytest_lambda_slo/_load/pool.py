"""The parent side of a fanned-out run: start N worker processes, release them, merge exactly.

Each worker is a fresh interpreter (``python -m pytest_lambda_slo._load.workerproc``, the
"spawn" model; the protocol is in its docstring) running one slice with its own event
loop. Why not ``multiprocessing``: its spawn and forkserver contexts start a
resource-tracker process that lives on for the rest of the session, and spawn re-imports
the caller's ``__main__``; a plain subprocess leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .._procs import reap
from .._results.recorder import Measurements
from .._targets.base import Target
from ..errors import ConfigError, LambdaSLOError, LoadAborted
from .runinfo import Marks, RunInfo, merge_run_infos
from .runner import RunHandle
from .shapes import Shape
from .worker import STOPS
from .workerproc import JOB_LENGTH

# How long workers may take to import, connect and report ready.
STARTUP_TIMEOUT_S = 60.0
# After a stop request: how long workers get to send their partial results.
STOP_WAIT_S = 5.0
# Beyond the run's own deadline, how long the parent waits for results before giving up.
RESULT_GRACE_S = 30.0
_POLL_S = 0.05


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (the exception stayed there)."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Worker:
    """One worker process and the parent's ends of its pipes."""

    def __init__(self, index: int) -> None:
        self.index = index
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_lambda_slo._load.workerproc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
        )
        self.messages: dict[str, Any] = {}
        self._buffer = b""
        self.eof = False

    def send_job(self, job: bytes) -> None:
        if not self.send(JOB_LENGTH.pack(len(job)) + job):
            self.eof = True  # it died already: its stderr tells why

    @property
    def fd(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def send(self, data: bytes) -> bool:
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def stop(self) -> None:
        """Ask the worker to stop: it sees EOF on stdin, cancels its run, sends its results."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass

    def read(self) -> None:
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            self.messages.update(message)

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read()[-3000:].decode("utf-8", "replace").strip()
        return text

    def close(self) -> None:
        """Make sure the process is gone and reaped and every pipe is closed."""
        self.stop()
        proc = self.proc
        try:
            proc.wait(timeout=STOP_WAIT_S)  # it was asked to stop: give it time to finish
        except subprocess.TimeoutExpired:
            pass
        reap(proc, grace_s=2.0)
        self.stderr.close()


def _stop_of(worker: _Worker) -> dict[str, str] | None:
    """Why this worker's run stopped itself (a user's callable, refusals), if it did."""
    result = worker.messages.get("result")
    return result.get("stop") if isinstance(result, dict) else None


class _Stop(Exception):
    """The run was asked to stop (Ctrl-C in the parent or a cancelled async caller)."""


def _has(worker: _Worker, key: str) -> bool:
    # A worker whose run ended before the release (its deadline passed while connecting)
    # sends its result without "ready": it has nothing more to say either way.
    return key in worker.messages or "result" in worker.messages or "error" in worker.messages


def _collect(
    workers: list[_Worker],
    key: str,
    timeout_s: float,
    handle: RunHandle | None,
    *,
    stopping: bool = False,
) -> None:
    """Read messages until every live worker sent ``key``; raise on a dead worker or timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = [w for w in workers if not w.eof and not _has(w, key)]
        if not waiting:
            break
        if not stopping and handle is not None and handle.stop_requested:
            raise _Stop
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if stopping:
                return
            raise LambdaSLOError(
                f"worker process {waiting[0].index} sent no {key!r} within {timeout_s:.0f}s"
            )
        readable, _, _ = select.select([w.fd for w in waiting], [], [], min(remaining, _POLL_S))
        for worker in waiting:
            if worker.fd in readable:
                worker.read()
                if not stopping and _stop_of(worker):
                    for other in workers:  # one worker stopped itself: so does the run
                        other.stop()
    if stopping:
        return
    for worker in workers:
        if "error" in worker.messages:
            raise LambdaSLOError(
                f"worker process {worker.index} failed:\n{worker.messages['error']}"
            )
        if not _has(worker, key):
            raise LambdaSLOError(
                f"worker process {worker.index} exited (code {worker.proc.wait()}) "
                f"before sending {key!r}: {worker.stderr_tail()[-1000:]}"
            )


# The distinct failure messages kept per error kind, over every process of a run.
MESSAGES_KEPT = 5


def add_messages(messages: dict[str, list[str]], kind: str, new: Iterable[str]) -> None:
    """Add ``new`` to ``messages[kind]``: distinct, the first :data:`MESSAGES_KEPT`."""
    kept = messages.setdefault(kind, [])
    for message in new:
        if message not in kept and len(kept) < MESSAGES_KEPT:
            kept.append(message)
    if not kept:
        del messages[kind]


def run_workers(
    target: Target,
    shape: Shape,
    n: int,
    handle: RunHandle | None = None,
    request_cap: int | None = None,
    messages: dict[str, list[str]] | None = None,
) -> tuple[Measurements, RunInfo]:
    """Run ``shape`` split over ``n`` worker processes; one merged (Measurements, RunInfo).

    ``messages`` receives the workers' first distinct failure messages per error kind
    (``check_failed``, ``auth_denied``).

    The workers connect, report ready, and are released together; their Measurements are
    merged through to_dict()/from_dict()/merge() (HDR histograms added exactly). Ctrl-C (or
    ``handle.stop()``) stops every worker and raises with the merged partial results,
    exactly as a single-process run does.
    """
    # lazy: cloudpickle is needed only when targets go to worker processes. It pickles the
    # lambdas and closures users give per-request data, checks and labels by value.
    import cloudpickle

    try:
        target_bytes = cloudpickle.dumps(target)
    except Exception as exc:
        raise ConfigError(
            f"workers={n} needs a target that can be sent to worker processes, and "
            f"{target.describe()} cannot be pickled ({type(exc).__name__}: {exc}); use "
            "workers=1, or callables and credentials without open clients, locks or files"
        ) from None
    job = {"sys_path": list(sys.path), "target": target_bytes, "shape": shape, "count": n,
           "request_cap": request_cap}  # fmt: skip
    jobs = [pickle.dumps({**job, "index": i}) for i in range(n)]
    workers: list[_Worker] = []
    stopped: str | None = None
    try:
        try:
            for index, job_bytes in enumerate(jobs):
                worker = _Worker(index)
                workers.append(worker)  # tracked before anything else can go wrong
                worker.send_job(job_bytes)
            _collect(workers, "ready", STARTUP_TIMEOUT_S, handle)
            for worker in workers:
                worker.send(b"g")  # the release: every worker starts within microseconds
            _collect(workers, "result", shape.deadline_s + RESULT_GRACE_S, handle)
        except KeyboardInterrupt:
            stopped = "interrupted"
        except _Stop:
            stopped = "cancelled"
        if stopped is not None:
            for worker in workers:
                worker.stop()
            _collect(workers, "result", STOP_WAIT_S, None, stopping=True)
        measurements, info = merge_results(
            shape, n, workers, request_cap, cancelled=stopped is not None, messages=messages
        )
    finally:
        for worker in workers:
            worker.close()
    if stopped == "interrupted":
        raise KeyboardInterrupt("load run interrupted") from LoadAborted(
            "Ctrl-C", measurements, info
        )
    if stopped == "cancelled":
        raise LoadAborted("load run cancelled", measurements, info)
    for worker in workers:
        stop = _stop_of(worker)
        if stop:
            error = STOPS[stop["kind"]](stop["reason"], measurements, info)
            raise error from RemoteTraceback(stop["traceback"])
    return measurements, info


def merge_results(
    shape: Shape,
    n: int,
    workers: list[_Worker],
    request_cap: int | None,
    *,
    cancelled: bool,
    messages: dict[str, list[str]] | None = None,
) -> tuple[Measurements, RunInfo]:
    """One Measurements and one RunInfo from every worker's result (partial ones included);
    ``messages`` receives their failure messages."""
    merged = Measurements(highest_us=shape.part(0, n, request_cap).highest_us)
    infos: list[RunInfo] = []
    marks: list[Marks] = []
    for worker in workers:
        result = worker.messages.get("result")
        if result is None:
            # A worker lost before it reported: everything it was to send is unsent.
            merged.unsent += shape.part(worker.index, n, request_cap).requests or 0
            continue
        merged.merge(Measurements.from_dict(result["measurements"]))
        if messages is not None:
            add_messages(messages, "check_failed", result.get("check_messages", ()))
            add_messages(messages, "auth_denied", result.get("auth_messages", ()))
        infos.append(RunInfo.from_dict(result["run_info"]))
        marks.append(Marks.from_dict(result["marks"]))
    if len(workers) < n:  # cancelled while starting them
        for index in range(len(workers), n):
            merged.unsent += shape.part(index, n, request_cap).requests or 0
    info = merge_run_infos(shape, n, infos, marks, cancelled=cancelled)
    return merged, info
