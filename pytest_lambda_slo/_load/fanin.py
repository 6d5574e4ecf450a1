"""What the Lambda shards answered: merged exactly, tabled per shard, judged valid or not.

The dispatcher (remote.py) collects one answer (or a failure) per shard; this turns them
into one Measurements and RunInfo (the same merge local workers use), the per-shard table
(start offset, requests, peak descriptors, CPU, loop lag) and the run's validity: a
failed, missing, late, stopped or saturated shard is a :class:`FanoutError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._fanout.config import LambdaFanout
from .._results.recorder import Measurements
from .._results.saturation import assess_saturation
from ..errors import RunInvalid
from .runinfo import Marks, RunInfo, merge_run_infos
from .shapes import Shape

Measured = tuple[Measurements, RunInfo]


class FanoutError(RunInvalid):
    """A fanned-out run is invalid (not a pass, not a fail): a shard failed, was missing,
    throttled, late, saturated, or the hard deadline passed. ``shard`` is the first shard
    named (None: the whole run), ``table`` the per-shard rows of the shards that answered."""

    def __init__(self, message: str, shard: int | None, table: dict[str, Any]) -> None:
        super().__init__(message)
        self.shard = shard
        self.table = table


@dataclass
class ShardCall:
    """One shard: its event, and what came back."""

    index: int
    event: dict[str, Any]
    answer: dict[str, Any] | None = None
    failure: str | None = None
    invoked_ns: int = 0


def _on_lambda_clock(marks: Marks, started_ns: int | None) -> Marks:
    """A shard's marks moved from its own monotonic clock onto its wall clock (Lambda's,
    NTP-synchronised), so marks of different machines can be compared and merged."""
    if not started_ns or not marks.released_ns:
        return marks
    shift = started_ns - marks.released_ns
    return Marks(
        released_ns=marks.released_ns + shift,
        last_done_ns=marks.last_done_ns + shift if marks.last_done_ns else 0,
        started=marks.started,
        last_start_ns=marks.last_start_ns + shift if marks.last_start_ns else 0,
    )


def merge_shards(
    shape: Shape,
    n: int,
    shards: list[ShardCall],
    request_cap: int | None,
    *,
    cancelled: bool,
) -> Measured:
    """One Measurements and one RunInfo from every shard that answered (HDR added exactly);
    a shard that did not answer counts its planned requests as unsent."""
    merged = Measurements(highest_us=shape.part(0, n, request_cap).highest_us)
    infos: list[RunInfo] = []
    marks: list[Marks] = []
    for shard in shards:
        answer = shard.answer
        if answer is None:
            merged.unsent += shape.part(shard.index, n, request_cap).requests or 0
            continue
        merged.merge(Measurements.from_dict(answer["measurements"]))
        infos.append(RunInfo.from_dict(answer["run_info"]))
        marks.append(_on_lambda_clock(Marks.from_dict(answer["marks"]), answer.get("started_ns")))
    return merged, merge_run_infos(shape, n, infos, marks, cancelled=cancelled)


def describe_shards(
    shards: list[ShardCall],
    offset_ns: int,
    dispatch_started_ns: int,
    report: dict[str, Any],
    max_loop_lag_s: float,
) -> None:
    """The per-shard table, the start spread and the dispatch time, into ``report``."""
    rows = []
    starts = [s.answer["started_ns"] for s in shards if s.answer and s.answer.get("started_ns")]
    first = min(starts) if starts else 0
    for shard in shards:
        answer = shard.answer
        if answer is None:
            rows.append({"shard": shard.index, "failure": shard.failure})
            continue
        info = answer["run_info"]
        started = answer.get("started_ns")
        saturation = assess_saturation(info, max_loop_lag_s)
        rows.append({
            "shard": shard.index,
            "start_offset_ms": round((started - first) / 1e6, 3) if started else None,
            "late_ms": round((started - answer["start_at_ns"]) / 1e6, 3) if started else None,
            "slack_ms": (round((answer["start_at_ns"] - answer["ready_ns"]) / 1e6, 1)
                         if answer.get("ready_ns") else None),
            "requests": answer["measurements"]["count"],
            "peak_fds": answer["peak_fds"],
            "connections": info["connections"],
            "cpu_s": round(info["cpu_s"], 3),
            "loop_lag_p99_ms": info["loop_lag_p99_ms"],
            "loop_lag_max_ms": info["loop_lag_max_ms"],
            "saturated": saturation.saturated,
            "saturation_note": saturation.note or None,
            "stopped_by": answer.get("stopped_by"),
        })  # fmt: skip
    report["rows"] = rows
    report["start_spread_ms"] = round((max(starts) - first) / 1e6, 3) if starts else None
    arrivals = [s.answer["received_ns"] - offset_ns for s in shards if s.answer]
    if arrivals:  # first invoke sent -> last shard's handler called, on this machine's clock
        report["dispatch_s"] = round((max(arrivals) - dispatch_started_ns) / 1e9, 3)


def validate(
    shards: list[ShardCall], fanout: LambdaFanout, report: dict[str, Any], stopped: str | None
) -> None:
    """Raise FanoutError for the first reason the run cannot be judged."""
    n = fanout.shards
    failed = [s for s in shards if s.answer is None]
    if stopped == "deadline":
        late = report["late_shards"]  # set by the dispatch loop that stopped at the deadline
        raise FanoutError(
            f"the hard deadline passed before every shard answered (shards still running at "
            f"the deadline: {', '.join(map(str, late))}; they were stopped); the run is invalid",
            late[0],
            report,
        )
    if failed:
        lines = "; ".join(f"shard {s.index} of {n}: {s.failure}" for s in failed)
        raise FanoutError(f"{len(failed)} of {n} shards failed, the run is invalid: {lines}",
                          failed[0].index, report)  # fmt: skip
    not_started = [s for s in shards if not (s.answer or {}).get("started_ns")]
    if not_started:
        raise FanoutError(
            f"shard {not_started[0].index} of {n} never started (its run ended before the "
            "start instant: connecting took longer than its deadline)",
            not_started[0].index, report,
        )  # fmt: skip
    spread = report["start_spread_ms"]
    tolerance_ms = fanout.start_tolerance_s * 1000
    if spread > tolerance_ms:
        latest = max(shards, key=lambda s: (s.answer or {})["started_ns"])
        raise FanoutError(
            f"start spread {spread:.1f} ms is above start_tolerance={tolerance_ms:g} ms: shard "
            f"{latest.index} of {n} started {spread:.1f} ms after the first; the run is invalid",
            latest.index, report,
        )  # fmt: skip
    for row in report["rows"]:
        if row["stopped_by"]:
            raise FanoutError(f"shard {row['shard']} of {n} was stopped: {row['stopped_by']}",
                              row["shard"], report)  # fmt: skip
        if row["saturated"]:
            raise FanoutError(f"shard {row['shard']} of {n} was saturated: "
                              f"{row['saturation_note']}", row["shard"], report)  # fmt: skip
