"""The child side of a fanned-out run: one slice of a shape, in, measurement blobs out.

:func:`run_slice` is a plain function: a target, a shape, which slice (``index`` of
``count``) and a release callback in; a JSON-able dict out (the slice's encoded
Measurements, its RunInfo, its clock marks and why it stopped itself, if it did). It
depends on neither pytest nor the parent side (pool.py), so a worker process
(workerproc.py) or a Lambda handler can call it alike.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from .._targets.base import Target
from ..errors import AuthRefused, LoadAborted, UserCallableError
from .drivers import engine_for
from .runner import RunHandle, run_on_own_loop
from .shapes import Shape

# A slice's run that stopped itself: the parent stops the others and raises the same error.
STOPS: dict[str, type[LoadAborted]] = {
    cls.__name__: cls for cls in (UserCallableError, AuthRefused)
}


def run_slice(
    target: Target,
    shape: Shape,
    index: int,
    count: int,
    release: Callable[[], Awaitable[None]] | None = None,
    *,
    request_cap: int | None = None,
    handle: RunHandle | None = None,
) -> dict[str, Any]:
    """Run slice ``index`` of ``count`` of ``shape`` against ``target`` in this thread.

    ``release`` is awaited once the slice's connections are open (every slice waits there
    until all are ready); ``handle.stop()`` from another thread cancels the run, which still
    returns what it measured. A bug (not a LoadAborted) is raised.
    """
    prepared = target.prepare()
    engine = engine_for(
        shape, prepared, index=index, count=count, request_cap=request_cap,
        before_release=release,
    )  # fmt: skip
    status = "ok"
    stop: dict[str, str] | None = None
    try:
        measurements, info = run_on_own_loop(engine, handle)
    except LoadAborted as exc:
        assert exc.measurements is not None and exc.run_info is not None
        measurements, info = exc.measurements, exc.run_info
        status = "cancelled"
        if type(exc).__name__ in STOPS:
            cause = exc.__cause__
            stop = {
                "kind": type(exc).__name__,
                "reason": exc.reason,
                "traceback": "".join(traceback.format_exception(cause)) if cause else "",
            }
    return {
        "status": status,
        "measurements": measurements.to_dict(),
        "run_info": info.to_dict(),
        "marks": engine.marks().to_dict(),
        "stop": stop,
        # What a target kept for the report (the first check failures, who was denied).
        "check_messages": list(getattr(prepared, "check_messages", ())),
        "auth_messages": list(getattr(prepared, "auth_messages", ())),
    }
