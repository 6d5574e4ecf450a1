"""Per-interval counts and latencies of a run (:class:`Timeseries`), by completion time.

Verdicts use them to see clustered slowness and batch means, reports to plot a run over
time. Memory is bounded: intervals double past a cap, latencies are kept by bucket.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

from .histogram import LOWEST_US, SIGNIFICANT_FIGURES, SUB_BUCKET_BITS, bucket_floor, bucket_top
from .outcome import Outcome

perf_counter_ns = time.perf_counter_ns

# Per-interval data. The interval a request belongs to is the one it COMPLETED in, counted
# from the run's release; it starts at one second and doubles (neighbours merged pairwise)
# whenever a run would need more than INTERVAL_CAP of them, so memory stays bounded.
INTERVAL_S = 1.0
INTERVAL_CAP = 600


class _Interval:
    """One interval's counters and latency buckets (bucket's lowest value -> count)."""

    __slots__ = (
        "buckets",
        "cold_starts",
        "error_kinds",
        "errors",
        "in_flight_max",
        "ok",
        "sent",
        "throttled",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        self.throttled = 0
        self.errors = 0
        self.cold_starts = 0
        self.in_flight_max = 0
        self.error_kinds: dict[str, int] = {}
        self.buckets: dict[int, int] = {}

    def add(self, other: _Interval, *, same_clock: bool) -> None:
        """Add ``other``; ``same_clock``: the same process (in-flight maxima max, not sum)."""
        self.sent += other.sent
        self.ok += other.ok
        self.throttled += other.throttled
        self.errors += other.errors
        self.cold_starts += other.cold_starts
        if same_clock:
            self.in_flight_max = max(self.in_flight_max, other.in_flight_max)
        else:  # workers are not synchronised: their sum bounds the merged maximum
            self.in_flight_max += other.in_flight_max
        for kind, count in other.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + count
        buckets = self.buckets
        for value, count in other.buckets.items():
            buckets[value] = buckets.get(value, 0) + count


class Timeseries:
    """Counts and latency histograms per interval of a run (by completion time).

    Per interval i: ``sent[i]`` requests completed, of which ``ok[i]``, ``throttled[i]``,
    ``errors[i]`` (and ``error_kinds[kind][i]``), ``cold_starts[i]`` (non-throttled, with a
    latency, like the run's own count), ``in_flight_max[i]`` (the most requests in flight
    at a completion in the interval, the completing one included; after a merge of worker
    processes the sum of their maxima, an upper bound), and :meth:`hist` the latencies of
    every non-throttled request that has one (responses and timeouts), in microseconds.

    The hot path stores each latency under its histogram bucket's lowest value in a dict
    per interval: the same buckets an HdrHistogram of the run's range would fill, so
    :meth:`hist` rebuilds that histogram exactly, with memory bounded by the buckets used.
    """

    __slots__ = (
        "_rows", "cap", "current", "current_from_ns", "current_until_ns", "highest_us",
        "interval_ns", "start_epoch_s", "start_ns",
    )  # fmt: skip

    def __init__(self, highest_us: int, interval_s: float = INTERVAL_S, cap: int = INTERVAL_CAP):
        if cap < 2:
            raise ValueError(f"the interval cap must be at least 2; got {cap}")
        self.highest_us = max(int(highest_us), 1000)
        self.interval_ns = round(interval_s * 1e9)
        self.cap = cap
        self.start_ns: int | None = None
        self.start_epoch_s: float | None = None
        self._rows: list[_Interval] = []
        # The interval row() found last and the instants it covers, [from, until): a hot
        # path may use ``current`` for a completion in that span without calling row().
        self.current = _Interval()  # (a placeholder: the span below is empty)
        self.current_from_ns = 1
        self.current_until_ns = 0

    @property
    def interval_s(self) -> float:
        return self.interval_ns / 1e9

    def __len__(self) -> int:
        return len(self._rows)

    def start(self, start_ns: int, start_epoch_s: float) -> None:
        """Set the release instant (``perf_counter_ns()`` and ``time.time()`` at release)."""
        self.start_ns = start_ns
        self.start_epoch_s = start_epoch_s
        self._forget_current()

    def _forget_current(self) -> None:
        """The intervals moved (a new start, coarser intervals): ``current`` covers nothing."""
        self.current_from_ns = 1
        self.current_until_ns = 0

    # the hot path -------------------------------------------------------------------------
    def row(self, done_ns: int | None) -> _Interval:
        """The interval a request that completed at ``done_ns`` (None: now) belongs to."""
        done = perf_counter_ns() if done_ns is None else done_ns
        start = self.start_ns
        if start is None:  # never told the release: the first completion starts the clock
            self.start(done, time.time())
            start = done
        rows = self._rows
        interval = self.interval_ns
        i = (done - start) // interval
        if i >= len(rows):
            i = self._reach(done - start)
            rows = self._rows
            interval = self.interval_ns
        elif i < 0:
            return rows[0]  # completed before the release instant it was given: the first
        row = self.current = rows[i]
        self.current_from_ns = from_ns = start + i * interval
        self.current_until_ns = from_ns + interval
        return row

    def record(self, outcome: Outcome) -> None:
        """Count one outcome in the interval it completed in."""
        row = self.row(outcome.done_ns)
        row.sent += 1
        kind = outcome.kind
        if kind == "ok":
            row.ok += 1
        elif kind == "throttle":
            row.throttled += 1
        else:
            row.errors += 1
            error_kind = outcome.error_kind or "unknown"
            row.error_kinds[error_kind] = row.error_kinds.get(error_kind, 0) + 1
        if outcome.in_flight > row.in_flight_max:
            row.in_flight_max = outcome.in_flight
        latency_ns = outcome.latency_ns
        if latency_ns is None or kind == "throttle":
            return
        if outcome.cold:
            row.cold_starts += 1
        value = latency_ns // 1000
        if value < LOWEST_US:
            value = LOWEST_US
        shift = value.bit_length() - SUB_BUCKET_BITS
        if shift > 0:
            value = (value >> shift) << shift
        buckets = row.buckets
        buckets[value] = buckets.get(value, 0) + 1

    def _reach(self, offset_ns: int) -> int:
        """Make room for the interval holding ``offset_ns``, doubling past the cap."""
        i = offset_ns // self.interval_ns
        while i >= self.cap:
            self._coarsen()
            i = offset_ns // self.interval_ns
        self._extend(i + 1)
        return i

    def _extend(self, length: int) -> None:
        self._rows.extend(_Interval() for _ in range(length - len(self._rows)))

    def _coarsen(self) -> None:
        """Double the interval: neighbours 2j and 2j+1 become interval j."""
        rows = self._rows
        coarse = rows[0::2]
        for j, odd in enumerate(rows[1::2]):
            coarse[j].add(odd, same_clock=True)
        self._rows = coarse
        self.interval_ns *= 2
        self._forget_current()

    # reading -----------------------------------------------------------------------------
    @property
    def t_s(self) -> list[float]:
        """Each interval's start, in seconds from the release."""
        return [i * self.interval_s for i in range(len(self._rows))]

    @property
    def sent(self) -> list[int]:
        return [row.sent for row in self._rows]

    @property
    def ok(self) -> list[int]:
        return [row.ok for row in self._rows]

    @property
    def throttled(self) -> list[int]:
        return [row.throttled for row in self._rows]

    @property
    def errors(self) -> list[int]:
        return [row.errors for row in self._rows]

    @property
    def cold_starts(self) -> list[int]:
        return [row.cold_starts for row in self._rows]

    @property
    def in_flight_max(self) -> list[int]:
        return [row.in_flight_max for row in self._rows]

    @property
    def error_kinds(self) -> dict[str, list[int]]:
        kinds = sorted({kind for row in self._rows for kind in row.error_kinds})
        return {kind: [row.error_kinds.get(kind, 0) for row in self._rows] for kind in kinds}

    def hist(self, i: int) -> HdrHistogram:
        """Interval ``i``'s latency histogram (microseconds; out-of-range values left out)."""
        return self._hdr(i)[0]

    def _hdr(self, i: int) -> tuple[HdrHistogram, int]:
        hdr = HdrHistogram(LOWEST_US, self.highest_us, SIGNIFICANT_FIGURES)
        overflows = 0
        for value, count in self._rows[i].buckets.items():
            if not hdr.record_value(value, count):
                overflows += count
        return hdr, overflows

    def latency_buckets(self, i: int) -> dict[int, int]:
        """A copy of interval ``i``'s latency counts (each bucket's lowest value -> count).

        One dict copy, atomic under the GIL: another thread (the progress line) may read a
        run's intervals while it records.
        """
        return dict(self._rows[i].buckets)

    def served(self, i: int) -> int:
        """Requests with a latency in interval ``i`` (its histogram's count, overflows included)."""
        return sum(self._rows[i].buckets.values())

    def exceedances(
        self, threshold_us: float, conservative: Literal["lo", "hi"]
    ) -> list[tuple[int, int]]:
        """Per interval ``(n_i, m_i)``: latencies recorded, and those above ``threshold_us``.

        Counted from bucket edges: "lo" counts buckets whose lowest equivalent value is above
        the threshold (surely slower), "hi" those whose highest is (maybe slower).
        """
        if conservative not in ("lo", "hi"):
            raise ValueError(f"conservative must be 'lo' or 'hi'; got {conservative!r}")
        edge = max(0, math.floor(threshold_us))
        straddling = bucket_floor(edge) if conservative == "hi" and bucket_top(edge) > edge else -1
        counts = []
        for row in self._rows:
            buckets = row.buckets
            above = sum(count for value, count in buckets.items() if value > edge)
            if straddling >= 0:
                above += buckets.get(straddling, 0)
            counts.append((sum(buckets.values()), above))
        return counts

    # merging and JSON ---------------------------------------------------------------------
    def merge(self, other: Timeseries) -> None:
        """Add ``other`` (another worker's run) interval by interval, aligned on the release.

        Intervals are 2**k seconds, so the finer series is folded onto the coarser one; a
        release instant that differs shifts ``other`` by the nearest whole number of
        intervals, and the earlier release becomes the start. Releases are compared on the
        wall clock (``start_epoch_s``): worker processes of one machine and shards run on
        other machines (``lambda-slo merge``, the Lambda fan-out) merge the same way; the
        monotonic clock is only a fallback for a series that has no wall-clock instant.
        """
        if not other._rows or (other.start_ns is None and other.start_epoch_s is None):
            return
        self._forget_current()  # the rows may shift and the start move
        if self.start_ns is None and self.start_epoch_s is None:
            self.start(other.start_ns or 0, other.start_epoch_s or time.time())
            self.interval_ns = max(self.interval_ns, other.interval_ns)
        while self.interval_ns < other.interval_ns:
            self._coarsen()
        if self.interval_ns % other.interval_ns:
            raise ValueError(
                f"cannot merge intervals of {other.interval_s}s into {self.interval_s}s"
            )
        factor = self.interval_ns // other.interval_ns
        if self.start_epoch_s is not None and other.start_epoch_s is not None:
            shift = round((other.start_epoch_s - self.start_epoch_s) / self.interval_s)
        else:
            shift = round(((other.start_ns or 0) - (self.start_ns or 0)) / self.interval_ns)
        if shift < 0:
            self._rows[:0] = [_Interval() for _ in range(-shift)]
            if self.start_ns is not None:
                self.start_ns -= -shift * self.interval_ns
            if self.start_epoch_s is not None:
                self.start_epoch_s -= -shift * self.interval_s
            shift = 0
        self._extend(shift + (len(other._rows) - 1) // factor + 1)
        for j, row in enumerate(other._rows):
            self._rows[shift + j // factor].add(row, same_clock=False)
        while len(self._rows) > self.cap:
            self._coarsen()

    def to_dict(self) -> dict[str, Any]:
        """The run JSON's ``"timeseries"`` block; :meth:`from_dict` reads it back exactly."""
        quantiles: dict[str, list[float | None]] = {
            "p50_ms": [], "p90_ms": [], "p99_ms": [], "max_ms": []
        }  # fmt: skip
        encoded: list[str] = []
        overflows: list[int] = []
        for i in range(len(self._rows)):
            hdr, over = self._hdr(i)
            overflows.append(over)
            empty = hdr.get_total_count() == 0
            encoded.append("" if empty else hdr.encode().decode("ascii"))
            for key, q in (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0)):
                quantiles[key].append(None if empty else hdr.get_value_at_percentile(q) / 1000)
            quantiles["max_ms"].append(None if empty else hdr.get_max_value() / 1000)
        return {
            "interval_s": self.interval_s,
            "start_epoch_s": self.start_epoch_s,
            "start_ns": self.start_ns,
            "t_s": self.t_s,
            "sent": self.sent,
            "ok": self.ok,
            "throttled": self.throttled,
            "errors": self.errors,
            "cold_starts": self.cold_starts,
            "in_flight_max": self.in_flight_max,
            "error_kinds": self.error_kinds,
            **quantiles,
            "histograms": encoded,
            "overflows": overflows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], highest_us: int) -> Timeseries:
        series = cls(highest_us, float(data["interval_s"]))
        if data.get("start_epoch_s") is not None:
            # A series from another machine carries no comparable monotonic instant.
            start_ns = data.get("start_ns")
            series.start(int(start_ns) if start_ns is not None else 0, float(data["start_epoch_s"]))
        count = len(data["sent"])
        series._extend(count)
        for name in ("sent", "ok", "throttled", "errors", "cold_starts", "in_flight_max"):
            for row, value in zip(series._rows, data[name], strict=True):
                setattr(row, name, int(value))
        for kind, values in data["error_kinds"].items():
            for row, value in zip(series._rows, values, strict=True):
                if value:
                    row.error_kinds[kind] = int(value)
        overflows = data.get("overflows") or [0] * count
        probe = HdrHistogram(LOWEST_US, series.highest_us, SIGNIFICANT_FIGURES)
        # The first value the histogram cannot hold: where overflows are kept once read back.
        beyond = (
            probe.get_highest_equivalent_value(probe.get_value_from_index(probe.counts_len - 1)) + 1
        )
        for row, text, over in zip(series._rows, data["histograms"], overflows, strict=True):
            if text:
                hdr = HdrHistogram.decode(text.encode("ascii"))
                counts = hdr.counts
                for index in range(len(counts)):
                    if counts[index]:
                        row.buckets[int(hdr.get_value_from_index(index))] = int(counts[index])
            if over:  # beyond the range: kept above it, where exceedances still count them
                row.buckets[beyond] = int(over)
        return series
