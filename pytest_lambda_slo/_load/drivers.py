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
    """The dialer that opens the prepared target's connections."""
    return Dialer(prepared.url, prepared.verify, prepared.max_body_bytes)


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
