"""How a run went (RunInfo), the clock marks of one slice, and merging slices' figures into one.

One RunInfo serves every shape: the shape's own fields (``intended_rps`` of a rate,
``users_started`` of a ramp) are typed and None where they do not apply, so the JSON has
the same keys for every run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from .shapes import Ramp, Rate, Shape

# Why a run stopped, the most telling first (a merged run names the first any slice had).
# An auto run's own reasons ("decided", "certain_fail", "max_requests", "max_duration") are
# set by its wave loop (waves.py).
STOP_REASONS = ("callable_error", "auth_refused", "cancelled", "deadline", "request_cap")


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
    # callable raised) or "auth_refused" (the first wave was all refusals: firstwave.py);
    # an auto run: "decided", "certain_fail", "max_requests" or "max_duration" (waves.py)
    stopped: str | None
    event_loop: str  # "uvloop" or "asyncio"
    loop_lag_max_ms: float
    loop_lag_p99_ms: float
    cpu_s: float  # CPU time (user+sys) the run used, summed over worker processes
    shape: str = "burst"  # the shape's kind: "burst", "rate" or "ramp"
    workers: int = 1
    connections: int = 0  # connections opened (dials that succeeded)
    peak_in_flight: int = 0  # most requests in flight at once (summed over workers)
    intended_rps: float | None = None  # rate: the schedule
    achieved_rps: float | None = None  # rate: requests started / (last start - release + 1/rps)
    max_in_flight: int | None = None  # rate: the in-flight cap
    users: int | None = None  # ramp
    spawn_rate: float | None = None  # ramp: users started per second
    users_started: int | None = None  # ramp: users that started before the end
    # An auto burst or rate (fired until decided, waves.py): its waves, and the sequential
    # record the verdicts read (why it stopped, each budget's sequential step).
    waves: int | None = None
    sequential: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        # What asdict gives, without its recursive deep copy of every field (a third of a
        # millisecond per run): only the sequential record holds containers.
        data = {name: getattr(self, name) for name in _RUN_INFO_FIELDS}
        if self.sequential is not None:
            data["sequential"] = copy.deepcopy(self.sequential)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


_RUN_INFO_FIELDS = tuple(f.name for f in fields(RunInfo))


@dataclass(frozen=True)
class Marks:
    """One slice's clock marks (perf_counter_ns: CLOCK_MONOTONIC, shared by processes)."""

    released_ns: int
    last_done_ns: int
    started: int = 0  # rate: requests started
    last_start_ns: int = 0  # rate: when the last one started

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> Marks:
        return cls(**data)


def achieved_rate(started: int, released_ns: int, last_start_ns: int, rps: float) -> float:
    """Requests started per second: started / (last start - release + one intended interval)."""
    if not started or not released_ns:
        return 0.0
    span = (last_start_ns - released_ns) / 1e9 + 1.0 / rps
    return started / span if span > 0 else 0.0


def _concurrency(shape: Shape) -> int:
    """Most requests the whole run has in flight: its concurrency, in-flight cap or users."""
    if isinstance(shape, Rate):
        return shape.in_flight_cap
    if isinstance(shape, Ramp):
        return shape.users
    return shape.concurrency


def merge_run_infos(
    shape: Shape,
    workers: int,
    infos: Sequence[RunInfo],
    marks: Sequence[Marks],
    *,
    cancelled: bool,
) -> RunInfo:
    """One RunInfo for the whole run from its slices' (lost slices simply missing)."""
    released = min((m.released_ns for m in marks if m.released_ns), default=0)
    last_done = max((m.last_done_ns for m in marks), default=0)
    stops = {info.stopped for info in infos}
    stopped = "cancelled" if cancelled else None
    for reason in STOP_REASONS:
        if stopped is None and reason in stops:
            stopped = reason
    info = RunInfo(
        started_at=min((i.started_at for i in infos), default=time.time()),
        duration_s=(last_done - released) / 1e9 if released and last_done > released else 0.0,
        requests=shape.planned_requests,
        concurrency=_concurrency(shape),
        timeout_s=shape.timeout_s,
        deadline_s=shape.deadline_s,
        duration_limit_s=shape.duration_s,
        stopped=stopped,
        event_loop=infos[0].event_loop if infos else "",
        loop_lag_max_ms=max((i.loop_lag_max_ms for i in infos), default=0.0),
        loop_lag_p99_ms=max((i.loop_lag_p99_ms for i in infos), default=0.0),
        cpu_s=sum(i.cpu_s for i in infos),
        shape=shape.kind,
        workers=workers,
        connections=sum(i.connections for i in infos),
        peak_in_flight=sum(i.peak_in_flight for i in infos),
    )
    if isinstance(shape, Rate):
        info.intended_rps = shape.rps
        info.max_in_flight = shape.in_flight_cap
        started = sum(m.started for m in marks)
        last_start = max((m.last_start_ns for m in marks), default=0)
        info.achieved_rps = achieved_rate(started, released, last_start, shape.rps)
    elif isinstance(shape, Ramp):
        info.users = shape.users
        info.spawn_rate = shape.spawn_rate
        info.users_started = sum(i.users_started or 0 for i in infos)
    return info
