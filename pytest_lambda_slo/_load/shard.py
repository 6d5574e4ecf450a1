"""The generator function's Lambda handler (``pytest_lambda_slo._load.shard.handler``).

The event names an operation:

- ``{"op": "probe"}`` answers with this environment's wall clock (for agreeing on a start
  instant on Lambda's clock), its file-descriptor limit, CPU, Python and the build it
  runs; it imports the compiled distributions a shard needs, so a probe proves the zip
  loads on the function's architecture.
- ``{"op": "run", ...}`` runs one slice of a shape with :func:`worker.run_slice`, the
  same function a local worker process runs: the target and shape arrive as JSON
  (spec.py), the slice's connections open, the release waits until the agreed start
  instant on this environment's clock, and the answer is run_slice's blobs plus when the
  slice really started, its peak descriptors and why it stopped early, if it did.

While a slice runs, a watcher thread stops it when the generator's reserved concurrency
becomes 0 (what the dispatcher sets on Ctrl-C: Lambda has no other way to reach a running
invocation) or when the function's own timeout comes near, so what was measured is always
returned. An unknown operation raises, which Lambda reports as a function error.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import platform
import resource
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._aws import auth as aws_auth
from .._fanout.contents import COMPILED_MODULES, ENGINE_DISTRIBUTIONS, MANIFEST
from .runner import RunHandle
from .spec import shape_from_spec, target_from_spec
from .worker import run_slice

OPERATIONS = ("probe", "run")
# Stop this long before the function's timeout, so the answer leaves before Lambda kills it.
RETURN_MARGIN_S = 5.0
# How often the watcher counts this environment's open descriptors.
FD_SAMPLE_S = 0.1
# The busy wait at the end of the sleep to the start instant (asyncio.sleep overshoots).
SPIN_S = 0.002


def handler(event: Any, context: Any) -> dict[str, Any]:
    received_ns = time.time_ns()
    op = event.get("op") if isinstance(event, dict) else None
    if op == "probe":
        if event.get("stop"):
            _stop_client(event["stop"])  # built now, so a run does not wait for botocore
        return probe(received_ns, context)
    if op == "run":
        return run(event, received_ns, context)
    raise ValueError(f"unknown operation {op!r}; this generator knows: {', '.join(OPERATIONS)}")


def probe(received_ns: int, context: Any) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    loaded = {}
    for distribution in ENGINE_DISTRIBUTIONS:
        module = importlib.import_module(COMPILED_MODULES[distribution])
        loaded[distribution] = str(getattr(module, "__file__", ""))
    return {
        "op": "probe",
        "received_ns": received_ns,
        "replied_ns": time.time_ns(),
        "fd_limit": [soft, hard],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_mb": _memory(context),
        "build": _manifest(),
        "compiled_modules": loaded,
    }


def run(event: Mapping[str, Any], received_ns: int, context: Any) -> dict[str, Any]:
    """One slice, released at ``start_at_ns`` (this environment's wall clock)."""
    target = target_from_spec(event["target"])
    shape = shape_from_spec(event["shape"])
    index, count = int(event["index"]), int(event["count"])
    start_at_ns = int(event["start_at_ns"])
    cap = event.get("request_cap")
    marks: dict[str, int] = {}

    async def release() -> None:
        # Every connection of the slice is open: wait for the agreed instant.
        marks["ready_ns"] = time.time_ns()
        wait_s = (start_at_ns - time.time_ns()) / 1e9
        if wait_s > SPIN_S:
            await asyncio.sleep(wait_s - SPIN_S)
        while time.time_ns() < start_at_ns:
            await asyncio.sleep(0)
        marks["started_ns"] = time.time_ns()

    handle = RunHandle()
    watcher = _Watcher(event.get("stop") or {}, context, handle)
    watcher.start()
    try:
        result = run_slice(
            target, shape, index, count, release,
            request_cap=None if cap is None else int(cap), handle=handle,
        )  # fmt: skip
    finally:
        watcher.close()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "op": "run",
        "index": index,
        "received_ns": received_ns,
        "start_at_ns": start_at_ns,
        "ready_ns": marks.get("ready_ns"),
        "started_ns": marks.get("started_ns"),  # None: the run ended before its release
        "replied_ns": time.time_ns(),
        "peak_fds": watcher.peak_fds,
        "fd_limit": soft,
        "stopped_by": watcher.reason,
        **result,
    }


class _Watcher:
    """A thread that stops the slice on the dispatcher's stop or near the function's timeout.

    ``stop`` is ``{"function", "region", "endpoint_url", "poll_s"}``: the generator's
    reserved concurrency is read every ``poll_s`` (GetFunction); 0 means stop.
    """

    def __init__(self, stop: Mapping[str, Any], context: Any, handle: RunHandle) -> None:
        self._stop = stop
        self._context = context
        self._handle = handle
        self._done = threading.Event()
        self.reason: str | None = None
        self.peak_fds = _open_fds()
        self._thread = threading.Thread(target=self._watch, name="lambda-slo-shard-watch")
        self._client = _stop_client(stop) if stop.get("function") else None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        poll_s = float(self._stop.get("poll_s", 1.0))
        next_poll = time.monotonic() + poll_s
        while not self._done.wait(FD_SAMPLE_S):
            self.peak_fds = max(self.peak_fds, _open_fds())
            remaining = _remaining_s(self._context)
            if remaining is not None and remaining < RETURN_MARGIN_S:
                self._stop_run("function timeout near")
                return
            if self._client is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + poll_s
                if self._stopped_by_dispatcher():
                    self._stop_run("generator stopped (reserved concurrency 0)")
                    return

    def _stopped_by_dispatcher(self) -> bool:
        assert self._client is not None
        try:
            answer = self._client.get_function(FunctionName=self._stop["function"])
        except Exception:  # a throttled or failed poll: keep running, ask again next time
            return False
        reserved = (answer.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        return reserved == 0

    def _stop_run(self, reason: str) -> None:
        self.reason = reason
        self._handle.stop()


# The stop poll's Lambda clients, kept for the environment's life like any handler's client:
# creating one loads botocore's service model, which takes about a second of CPU.
_CLIENTS: dict[tuple[str | None, str | None, float], Any] = {}


def _stop_client(stop: Mapping[str, Any]) -> Any:
    from botocore.config import Config  # botocore is imported only where it is used (weight)

    region, endpoint = stop.get("region") or None, stop.get("endpoint_url") or None
    poll_s = float(stop.get("poll_s", 1.0))
    key = (region, endpoint, poll_s)
    if key not in _CLIENTS:
        timeout = max(1.0, poll_s)
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
        )
        session = aws_auth.make_session(None)
        _CLIENTS[key] = session.create_client(
            "lambda", region_name=region, endpoint_url=endpoint, config=config
        )
    return _CLIENTS[key]


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no procfs (macOS): unknown
        return 0


def _remaining_s(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if remaining is not None else None


def _memory(context: Any) -> int | None:
    value = getattr(context, "memory_limit_in_mb", None)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _manifest() -> dict[str, Any]:
    # The zip's root is on sys.path (Lambda's task root); the manifest sits there.
    path = Path(__file__).resolve().parents[2] / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
