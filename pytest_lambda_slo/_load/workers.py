"""Fan one load shape out over N worker processes and merge their results exactly.

Each worker is a fresh interpreter (``python -m pytest_lambda_slo._load.workers``, the "spawn"
model) with its own event loop. Why not ``multiprocessing``: its spawn and forkserver
contexts start a resource-tracker process that lives on for the rest of the session, and
spawn re-imports the caller's ``__main__``; a plain subprocess leaves nothing behind.

Protocol, parent -> worker on stdin: an 8-byte length and a pickled job, later one byte
``g`` (the release). Worker -> parent on its original stdout (user code's prints go to
stderr): JSON lines ``{"ready": ...}`` once its connections are open, then ``{"result":
...}``. The parent closing the worker's stdin (Ctrl-C, cancellation, the parent dying)
stops the worker's run; it still sends what it measured. Workers ignore SIGINT: only the
parent decides when they stop, so a terminal's Ctrl-C (sent to the whole process group)
cannot lose a worker's partial results.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from .._results.recorder import Measurements
from ..errors import AuthRefused, ConfigError, LambdaSLOError, LoadAborted, UserCallableError
from ..procs import reap
from ..units import parse_count

# Most workers we start: more than this on one machine only adds scheduling noise.
MAX_WORKERS = 256
# How long workers may take to import, connect and report ready.
STARTUP_TIMEOUT_S = 60.0
# After a stop request: how long workers get to send their partial results.
STOP_WAIT_S = 5.0
# Beyond the run's own deadline, how long the parent waits for results before giving up.
RESULT_GRACE_S = 30.0
_POLL_S = 0.05
_LEN = struct.Struct("!Q")
# A worker's run that stopped itself: the parent stops the others and raises the same error.
_STOPS: dict[str, type[LoadAborted]] = {
    cls.__name__: cls for cls in (UserCallableError, AuthRefused)
}


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (the exception stayed there)."""

    def __str__(self) -> str:
        return str(self.args[0])


def parse_workers(value: object) -> int:
    """``N`` (1..256) or "auto" (one per CPU); ConfigError naming the value otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    try:
        n = parse_count(value, name="workers", minimum=1)
    except ConfigError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise ConfigError(
            f"workers={value!r} is not valid; use a whole number from 1 to {MAX_WORKERS} "
            "or 'auto' (one per CPU)"
        )
    return n


class _Worker:
    """One worker process and the parent's ends of its pipes."""

    def __init__(self, index: int) -> None:
        self.index = index
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_lambda_slo._load.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
        )
        self.messages: dict[str, Any] = {}
        self._buffer = b""
        self.eof = False

    def send_job(self, job: bytes) -> None:
        if not self.send(_LEN.pack(len(job)) + job):
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
    workers: list[_Worker], key: str, timeout_s: float, handle: Any, *, stopping: bool = False
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


def run_workers(target: Any, params: Any, n: int, handle: Any = None) -> tuple[Measurements, Any]:
    """Run ``params`` split over ``n`` worker processes; one merged (Measurements, RunInfo).

    The workers connect, report ready, and are released together; their Measurements are
    merged through to_dict()/from_dict()/merge() (HDR histograms added exactly). Ctrl-C (or
    ``handle.stop()``) stops every worker and raises with the merged partial results,
    exactly as a single-process run does.
    """
    from .engine import aborted_with

    try:
        target_bytes = pickle.dumps(target)
    except Exception as exc:
        raise ConfigError(
            f"workers={n} needs a target that can be sent to worker processes, and "
            f"{target.describe()} cannot be pickled ({type(exc).__name__}); use workers=1 "
            "or a target without lambdas or open clients"
        ) from None
    jobs = [
        pickle.dumps(
            {"sys_path": list(sys.path), "target": target_bytes, "params": params.share(i, n)}
        )
        for i in range(n)
    ]
    workers: list[_Worker] = []
    stopped: str | None = None
    try:
        try:
            for index, job in enumerate(jobs):
                worker = _Worker(index)
                workers.append(worker)  # tracked before anything else can go wrong
                worker.send_job(job)
            _collect(workers, "ready", STARTUP_TIMEOUT_S, handle)
            for worker in workers:
                worker.send(b"g")  # the release: every worker starts within microseconds
            _collect(workers, "result", params.deadline_s + RESULT_GRACE_S, handle)
        except KeyboardInterrupt:
            stopped = "interrupted"
        except _Stop:
            stopped = "cancelled"
        if stopped is not None:
            for worker in workers:
                worker.stop()
            _collect(workers, "result", STOP_WAIT_S, None, stopping=True)
        measurements, info = merge_results(params, n, workers, cancelled=stopped is not None)
    finally:
        for worker in workers:
            worker.close()
    if stopped == "interrupted":
        raise KeyboardInterrupt("load run interrupted") from aborted_with(
            "Ctrl-C", measurements, info
        )
    if stopped == "cancelled":
        raise aborted_with("load run cancelled", measurements, info)
    for worker in workers:
        stop = _stop_of(worker)
        if stop:
            error = aborted_with(stop["reason"], measurements, info, _STOPS[stop["kind"]])
            raise error from RemoteTraceback(stop["traceback"])
    return measurements, info


def merge_results(
    params: Any, n: int, workers: list[_Worker], *, cancelled: bool
) -> tuple[Measurements, Any]:
    """One Measurements and one RunInfo from every worker's result (partial ones included)."""
    from .engine import RunInfo
    from .scheduled import achieved_rate

    merged = Measurements(highest_us=params.highest_us)
    infos: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    for worker in workers:
        result = worker.messages.get("result")
        if result is None:
            # A worker lost before it reported: everything it was to send is unsent.
            share = params.share(worker.index, n)
            merged.unsent += share.requests or 0
            continue
        merged.merge(Measurements.from_dict(result["measurements"]))
        infos.append(result["run_info"])
        marks.append(result["marks"])
    if len(workers) < n:  # cancelled while starting them
        for index in range(len(workers), n):
            merged.unsent += params.share(index, n).requests or 0
    released = min((m["released_ns"] for m in marks if m["released_ns"]), default=0)
    last_done = max((m["last_done_ns"] for m in marks), default=0)
    stops = {info["stopped"] for info in infos}
    # The most telling reason first: a cancellation, then the deadline, then the cap.
    stopped = "cancelled" if cancelled else None
    for reason in ("callable_error", "auth_refused", "cancelled", "deadline", "request_cap"):
        if stopped is None and reason in stops:
            stopped = reason
    info = RunInfo(
        started_at=min((i["started_at"] for i in infos), default=time.time()),
        duration_s=(last_done - released) / 1e9 if released and last_done > released else 0.0,
        requests=getattr(params, "total_requests", params.requests),
        concurrency=getattr(params, "total_users", params.concurrency),
        timeout_s=params.timeout_s,
        deadline_s=params.deadline_s,
        duration_limit_s=params.duration_s,
        stopped=stopped,
        event_loop=infos[0]["event_loop"] if infos else "",
        loop_lag_max_ms=max((i["loop_lag_max_ms"] for i in infos), default=0.0),
        loop_lag_p99_ms=max((i["loop_lag_p99_ms"] for i in infos), default=0.0),
        cpu_s=sum(i["cpu_s"] for i in infos),
        shape=params.kind,
        workers=n,
        connections=sum(i["connections"] for i in infos),
        peak_in_flight=sum(i["peak_in_flight"] for i in infos),
    )
    if params.kind == "rate":
        info.intended_rps = params.rps
        info.max_in_flight = params.max_in_flight
        started = sum(m.get("started", 0) for m in marks)
        last_start = max((m.get("last_start_ns", 0) for m in marks), default=0)
        info.achieved_rps = achieved_rate(started, released, last_start, params.rps)
    elif params.kind == "ramp":
        info.users = params.total_users
        info.spawn_rate = params.spawn_rate
        info.users_started = sum(i["users_started"] or 0 for i in infos)
    return merged, info


# -- the worker side -----------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the parent closed the job pipe")
        data += chunk
    return data


def worker_main() -> int:
    """Entry point of a worker process (see the module docstring for the protocol)."""
    from .._http.transport import Dialer
    from .engine import _Handle, _run_on_own_loop

    # Our messages keep the original stdout; anything user code prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    try:
        (size,) = _LEN.unpack(_read_exact(0, _LEN.size))
        job = pickle.loads(_read_exact(0, size))
        sys.path[:] = job["sys_path"]
        target = pickle.loads(job["target"])
        params = job["params"]
        prepared = target.prepare()
        dialer = Dialer(prepared.url, prepared.verify, prepared.max_body_bytes)
    except BaseException:
        import traceback

        send({"error": traceback.format_exc()})
        return 1

    handle = _Handle()
    lock = threading.Lock()
    state: dict[str, Any] = {"go": False, "loop": None, "future": None}

    def release() -> None:
        with lock:
            state["go"] = True
            loop, future = state["loop"], state["future"]
        if loop is not None:
            try:
                loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))
            except RuntimeError:
                pass  # the loop is gone: the run already ended

    def watch_parent() -> None:
        # "g" releases the run; EOF (stop request, or the parent died) cancels it.
        try:
            if os.read(0, 1) == b"g":
                release()
                while os.read(0, 1024):
                    pass
        except OSError:
            pass
        handle.stop()

    async def before_release() -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        with lock:
            future = loop.create_future()
            state["loop"], state["future"] = loop, future
            go = state["go"]
        send({"ready": True})
        if not go:
            await future

    threading.Thread(target=watch_parent, name="lambda-slo-parent", daemon=True).start()
    engines: list[Any] = []
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(
                _run_on_own_loop(prepared, params, dialer, handle, before_release, engines)
            )
        except BaseException as exc:
            outcome.append(exc)

    # The engine runs off the main thread so it installs no SIGINT handler (see the top).
    runner = threading.Thread(target=run, name="lambda-slo-worker")
    runner.start()
    runner.join()
    status = "ok"
    result = outcome[0]
    stop: dict[str, str] | None = None
    if isinstance(result, LoadAborted):
        measurements, info = result.measurements, result.run_info  # type: ignore[attr-defined]
        status = "cancelled"
        if type(result).__name__ in _STOPS:
            import traceback

            cause = result.__cause__
            stop = {
                "kind": type(result).__name__,
                "reason": result.reason,  # type: ignore[attr-defined]
                "traceback": "".join(traceback.format_exception(cause)) if cause else "",
            }
    elif isinstance(result, BaseException):
        import traceback

        send({"error": "".join(traceback.format_exception(result))})
        return 1
    else:
        measurements, info = result
    engine = engines[0]
    marks = {
        "released_ns": engine.released_ns,
        "last_done_ns": engine.last_done_ns,
        "started": getattr(engine, "started", 0),
        "last_start_ns": getattr(engine, "last_start_ns", 0),
    }
    send(
        {
            "result": {
                "status": status,
                "measurements": measurements.to_dict(),
                "run_info": info.to_dict(),
                "marks": marks,
                "stop": stop,
            }
        }
    )
    return 0


if __name__ == "__main__":
    # Only the parent stops a worker (by closing its stdin): a terminal's Ctrl-C reaches the
    # whole process group, and the parent needs every worker's partial results.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(worker_main())
