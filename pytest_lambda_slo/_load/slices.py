"""What one engine runs: a :class:`Slice` of a shape for one of ``count`` processes.

A shape (shapes.py) says when requests start for the whole run; its ``part()`` cuts the
slice one process runs, so N slices together follow the one global schedule. The split
helpers keep the parts summing to the whole (requests, caps, users).
"""

from __future__ import annotations

from dataclasses import dataclass


def split(total: int, index: int, parts: int) -> int:
    """Part ``index`` of ``total`` cut into ``parts`` near-equal whole parts (they sum to it)."""
    return total // parts + (1 if index < total % parts else 0)


def split_cap(cap: int | None, index: int, parts: int) -> int | None:
    """Part ``index`` of a request cap (None: no cap), so the parts never sum past it."""
    return None if cap is None else split(cap, index, parts)


def highest_us_for(timeout_s: float, deadline_s: float) -> int:
    """A shape's histogram range: latencies reach the timeout, in-flight time the deadline."""
    return int((max(timeout_s, deadline_s) + 1.0) * 1_000_000)


@dataclass(frozen=True, kw_only=True)
class Slice:
    """What one engine runs: a shape's part for process ``index`` of ``count``.

    ``requests`` is None for a shape bounded by time only; ``request_cap`` is this part of
    the most requests the run may send (what a session cap left), None for no bound.
    """

    requests: int | None
    concurrency: int
    preconnect: int  # connections opened before the release
    first_wave: int  # responses judged for authentication refusals (firstwave.py)
    timeout_s: float
    deadline_s: float
    duration_s: float | None
    highest_us: int
    request_cap: int | None = None
    index: int = 0
    count: int = 1


@dataclass(frozen=True, kw_only=True)
class RateSlice(Slice):
    """A rate shape's part: request ``offset + k * stride`` of the global schedule is its k-th."""

    requests: int  # requests this part starts
    rps: float  # the global schedule, every process together
    max_in_flight: int

    @property
    def offset(self) -> int:
        return self.index

    @property
    def stride(self) -> int:
        return self.count


@dataclass(frozen=True, kw_only=True)
class RampSlice(Slice):
    """A ramp's part: it starts global users ``offset + k * stride``."""

    users: int
    spawn_rate: float  # the global rate, every process together
    think_time_s: float

    @property
    def offset(self) -> int:
        return self.index

    @property
    def stride(self) -> int:
        return self.count

    def start_offset_ns(self, k: int) -> int:
        """When this part's k-th user starts, after the release (Ramp.start_offset_ns)."""
        return start_offset_ns(self.index + k * self.count, self.spawn_rate)


def start_offset_ns(user: int, spawn_rate: float) -> int:
    """When global user ``user`` of a ramp starts, in ns after the release."""
    return int(user * 1e9 / spawn_rate)
