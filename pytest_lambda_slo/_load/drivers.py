"""Which driver runs which shape: one engine for one slice of a shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._http.dialer import Dialer
from .._targets.base import PreparedTarget
from .closed import ClosedEngine
from .engine import Engine
from .scheduled import RampEngine, RateEngine
from .shapes import Burst, Ramp, Rate, Shape


def dialer_for(prepared: PreparedTarget) -> Dialer:
    """The dialer that opens the prepared target's connections.

    A target that reads neither the headers nor the body of a response (an HttpTarget
    without a cold-start detector) says so with ``needs_headers`` and ``needs_body``
    False: its connections then keep neither.
    """
    lean = not (getattr(prepared, "needs_headers", True) or getattr(prepared, "needs_body", True))
    return Dialer(prepared.url, prepared.verify, prepared.max_body_bytes, lean=lean)


def engine_for(
    shape: Shape,
    prepared: PreparedTarget,
    *,
    index: int = 0,
    count: int = 1,
    request_cap: int | None = None,
    before_release: Callable[[], Awaitable[None]] | None = None,
) -> Engine[Any]:
    """The engine of slice ``index`` of ``count`` of ``shape`` (within ``request_cap``)."""
    dialer = dialer_for(prepared)
    if isinstance(shape, Rate):
        return RateEngine(prepared, shape.part(index, count, request_cap), dialer, before_release)
    if isinstance(shape, Ramp):
        return RampEngine(prepared, shape.part(index, count, request_cap), dialer, before_release)
    assert isinstance(shape, Burst)
    return ClosedEngine(prepared, shape.part(index, count, request_cap), dialer, before_release)
