"""HDR histograms and counters for one load run: record, count overflows, merge, encode.

Nothing here keeps a per-request list: every latency goes into a bounded buffer that is
folded into an HdrHistogram (3 significant figures, microseconds). A value outside the
histogram's range is counted as an overflow, never dropped silently.

Every run also keeps per-interval counts and latencies (:class:`Timeseries`), by the
interval in which each request completed: verdicts use them to see clustered slowness
and batch means, reports to plot a run over time.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

perf_counter_ns = time.perf_counter_ns

SIGNIFICANT_FIGURES = 3
LOWEST_US = 1
# Distinct values buffered before they are folded into the histogram. Bounded, so memory
# does not grow with the number of requests; folding costs one record_value per value.
_PENDING_LIMIT = 4096


class Histogram:
    """Latency histogram in microseconds with an explicit overflow count."""

    __slots__ = ("_hdr", "_pending", "highest_us", "overflows")

    def __init__(self, highest_us: int) -> None:
        self.highest_us = max(int(highest_us), 1000)
        # Allocated on the first fold (a run leaves most of its histograms empty, and each
        # HdrHistogram is a counts array of some 140 kB to allocate and zero).
        self._hdr: HdrHistogram | None = None
        self._pending: dict[int, int] = {}
        self.overflows = 0

    def record(self, value_us: int, count: int = 1) -> None:
        """Record ``count`` samples of ``value_us`` (values below 1 us count as 1 us)."""
        self.record_bucket(bucket_floor(value_us) if value_us > LOWEST_US else LOWEST_US, count)

    def record_bucket(self, floor_us: int, count: int = 1) -> None:
        """Record ``count`` samples whose value has ``floor_us`` as its :func:`bucket_floor`.

        The buffer is keyed by bucket, so folding it calls hdrh's (pure Python)
        ``record_value`` once per distinct bucket, not once per distinct value: the
        histogram (counts, min and max as hdrh reports them, overflows) is the same.
        """
        pending = self._pending
        pending[floor_us] = pending.get(floor_us, 0) + count
        if len(pending) >= _PENDING_LIMIT:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        hdr = self._hdr
        if hdr is None:
            hdr = self._hdr = HdrHistogram(LOWEST_US, self.highest_us, SIGNIFICANT_FIGURES)
        for value, count in pending.items():
            if value < LOWEST_US:
                value = LOWEST_US
            if not hdr.record_value(value, count):
                self.overflows += count

    @property
    def hdr(self) -> HdrHistogram:
        """The underlying HdrHistogram, with every buffered value folded in."""
        if self._pending or self._hdr is None:
            self._flush()
        assert self._hdr is not None
        return self._hdr

    def _buffered_only(self) -> dict[int, int] | None:
        """The buffer, when it holds every sample (nothing folded yet) and all are in range.

        Then counts and percentiles are read from it as hdrh would read them after the
        fold, without the fold and hdrh's walk over its whole counts array.
        """
        if self._hdr is not None:
            return None
        pending = self._pending
        if pending and max(pending) > self.highest_us:
            return None  # past the range: the fold counts it as an overflow
        return pending

    @property
    def count(self) -> int:
        """Samples recorded inside the range (overflows are counted separately)."""
        buffered = self._buffered_only()
        if buffered is not None:
            return sum(buffered.values())
        return int(self.hdr.get_total_count())

    def percentile_us(self, q: float) -> int | None:
        """The value at percentile ``q`` (0-100), or None with no samples."""
        buffered = self._buffered_only()
        if buffered is not None:
            total = sum(buffered.values())
            if not total:
                return None
            # hdrh's get_value_at_percentile, over the buffered buckets in order.
            target = max(int(min(q, 100.0) * total / 100 + 0.5), 1)
            seen = 0
            for floor_us in sorted(buffered):
                seen += buffered[floor_us]
                if seen >= target:
                    return bucket_top(floor_us) if q else floor_us
        hdr = self.hdr
        if hdr.get_total_count() == 0:
            return None
        return int(hdr.get_value_at_percentile(q))

    def min_us(self) -> int | None:
        buffered = self._buffered_only()
        if buffered is not None:
            return min(buffered) if buffered else None
        hdr = self.hdr
        return int(hdr.get_min_value()) if hdr.get_total_count() else None

    def max_us(self) -> int | None:
        buffered = self._buffered_only()
        if buffered is not None:
            return bucket_top(max(buffered)) if buffered else None
        hdr = self.hdr
        return int(hdr.get_max_value()) if hdr.get_total_count() else None

    def mean_us(self) -> float | None:
        hdr = self.hdr
        return float(hdr.get_mean_value()) if hdr.get_total_count() else None

    def merge(self, other: Histogram) -> None:
        """Add every sample and overflow of ``other`` into this histogram."""
        self.overflows += other.overflows
        if other.count:
            self.hdr.decode_and_add(other.encode())

    def encode(self) -> str:
        """Base64 text of the compressed HDR histogram (the standard HdrHistogram encoding)."""
        return self.hdr.encode().decode("ascii")

    @classmethod
    def decode(cls, encoded: str, highest_us: int, overflows: int = 0) -> Histogram:
        histogram = cls(highest_us)
        if encoded:
            histogram.hdr.decode_and_add(encoded.encode("ascii"))
        histogram.overflows = overflows
        return histogram


class Outcome:
    """What one request came to; built by the engine, consumed by :class:`Measurements`.

    ``kind`` is "ok", "throttle" or "error". ``cold`` is True/False when the target can
    tell, None when it cannot. ``server`` holds server-side figures in milliseconds from
    a Lambda REPORT line (keys: init, restore, duration, billed, memory, max_memory).
    ``done_ns`` is the completion instant on ``time.perf_counter_ns()`` (None: the moment
    it is recorded); ``in_flight`` the requests in flight as it completed, itself included
    (0: unknown).
    """

    __slots__ = (
        "bytes_received",
        "cold",
        "done_ns",
        "error_kind",
        "in_flight",
        "kind",
        "latency_ns",
        "proactive_init",
        "server",
        "status",
        "throttle_reason",
        "uncorrected_ns",
    )

    def __init__(
        self,
        kind: str,
        latency_ns: int | None,
        *,
        status: int | None = None,
        error_kind: str | None = None,
        cold: bool | None = None,
        bytes_received: int = 0,
        throttle_reason: str | None = None,
        server: dict[str, float] | None = None,
        uncorrected_ns: int | None = None,
        proactive_init: bool = False,
        done_ns: int | None = None,
        in_flight: int = 0,
    ) -> None:
        self.kind = kind
        self.latency_ns = latency_ns
        self.status = status
        self.error_kind = error_kind
        self.cold = cold
        self.bytes_received = bytes_received
        self.throttle_reason = throttle_reason
        self.server = server
        self.uncorrected_ns = uncorrected_ns
        self.proactive_init = proactive_init
        self.done_ns = done_ns
        self.in_flight = in_flight


# Per-interval data. The interval a request belongs to is the one it COMPLETED in, counted
# from the run's release; it starts at one second and doubles (neighbours merged pairwise)
# whenever a run would need more than INTERVAL_CAP of them, so memory stays bounded.
INTERVAL_S = 1.0
INTERVAL_CAP = 600


def _sub_bucket_bits() -> int:
    """Bits of a value the histogram keeps exactly (11 for 3 significant figures)."""
    probe = HdrHistogram(LOWEST_US, 1_000_000, SIGNIFICANT_FIGURES)
    assert probe.unit_magnitude == 0  # LOWEST_US == 1: bucket 0 holds single values
    return int(probe.sub_bucket_half_count_magnitude) + 1


_SUB_BITS = _sub_bucket_bits()


def bucket_floor(value_us: int) -> int:
    """The lowest value sharing ``value_us``'s histogram bucket (hdrh's lowest equivalent)."""
    shift = value_us.bit_length() - _SUB_BITS
    return (value_us >> shift) << shift if shift > 0 else value_us


def bucket_top(value_us: int) -> int:
    """The highest value sharing ``value_us``'s histogram bucket (hdrh's highest equivalent)."""
    shift = max(0, value_us.bit_length() - _SUB_BITS)
    return ((value_us >> shift) << shift) + (1 << shift) - 1


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

    __slots__ = ("_rows", "cap", "highest_us", "interval_ns", "start_epoch_s", "start_ns")

    def __init__(self, highest_us: int, interval_s: float = INTERVAL_S, cap: int = INTERVAL_CAP):
        if cap < 2:
            raise ValueError(f"the interval cap must be at least 2; got {cap}")
        self.highest_us = max(int(highest_us), 1000)
        self.interval_ns = round(interval_s * 1e9)
        self.cap = cap
        self.start_ns: int | None = None
        self.start_epoch_s: float | None = None
        self._rows: list[_Interval] = []

    @property
    def interval_s(self) -> float:
        return self.interval_ns / 1e9

    def __len__(self) -> int:
        return len(self._rows)

    def start(self, start_ns: int, start_epoch_s: float) -> None:
        """Set the release instant (``perf_counter_ns()`` and ``time.time()`` at release)."""
        self.start_ns = start_ns
        self.start_epoch_s = start_epoch_s

    # the hot path -------------------------------------------------------------------------
    def row(self, done_ns: int | None) -> _Interval:
        """The interval a request that completed at ``done_ns`` (None: now) belongs to."""
        done = perf_counter_ns() if done_ns is None else done_ns
        start = self.start_ns
        if start is None:  # never told the release: the first completion starts the clock
            self.start(done, time.time())
            start = done
        rows = self._rows
        i = (done - start) // self.interval_ns
        if i >= len(rows):
            i = self._reach(done - start)
            rows = self._rows
        elif i < 0:
            i = 0  # completed before the release instant it was given: the first interval
        return rows[i]

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
        shift = value.bit_length() - _SUB_BITS
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


# Histogram names. "all" holds every request that got a response or timed out; "warm"
# and "cold" only non-throttled responses whose cold-start state is known; "throttled"
# the throttled responses; "uncorrected" the open model's latency from the actual send.
# Server-side ones ("init", "duration", "billed") come from REPORT lines.
HISTOGRAM_NAMES = (
    "all",
    "warm",
    "cold",
    "throttled",
    "uncorrected",
    "connect",
    "init",
    "duration",
    "billed",
)
_SERVER_HISTOGRAMS = {"init": "init", "duration": "duration", "billed": "billed"}


@dataclass
class Measurements:
    """Every number one load run produced: histograms and counters, mergeable and encodable."""

    highest_us: int
    count: int = 0
    ok: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    cold_known: int = 0
    proactive_inits: int = 0
    timeouts: int = 0
    late_starts: int = 0
    unsent: int = 0
    bytes_received: int = 0
    billed_mb_ms: float = 0.0
    histograms: dict[str, Histogram] | None = None
    status_codes: Counter[int] | None = None
    error_kinds: Counter[str] | None = None
    throttle_reasons: Counter[str] | None = None
    timeseries: Timeseries | None = None

    def __post_init__(self) -> None:
        if self.histograms is None:
            self.histograms = {name: Histogram(self.highest_us) for name in HISTOGRAM_NAMES}
        self.status_codes = self.status_codes if self.status_codes is not None else Counter()
        self.error_kinds = self.error_kinds if self.error_kinds is not None else Counter()
        if self.throttle_reasons is None:
            self.throttle_reasons = Counter()
        if self.timeseries is None:
            self.timeseries = Timeseries(self.highest_us)

    def mark_release(self, start_ns: int, start_epoch_s: float) -> None:
        """The run's release instant (``perf_counter_ns()``, ``time.time()``): interval 0."""
        assert self.timeseries is not None
        self.timeseries.start(start_ns, start_epoch_s)

    def hist(self, name: str) -> Histogram:
        assert self.histograms is not None
        return self.histograms[name]

    def record_ok(
        self, status: int | None, latency_ns: int, bytes_received: int, done_ns: int | None,
        in_flight: int,
    ) -> None:  # fmt: skip
        """Count a plain ``ok`` response (no cold-start verdict, no server figures, corrected
        latency not apart): what :meth:`record` does for its Outcome, with no Outcome.

        It runs once per request, so what Histogram.record_bucket and Timeseries.row do is
        inlined here.
        """
        self.count += 1
        self.ok += 1
        self.bytes_received += bytes_received
        if status is not None:
            codes = self.status_codes
            assert codes is not None
            codes[status] += 1
        value = latency_ns // 1000
        if value < LOWEST_US:
            value = LOWEST_US
        shift = value.bit_length() - _SUB_BITS
        if shift > 0:
            value = (value >> shift) << shift  # the bucket's lowest value, as bucket_floor
        assert self.histograms is not None and self.timeseries is not None
        hist = self.histograms["all"]
        pending = hist._pending
        pending[value] = pending.get(value, 0) + 1
        if len(pending) >= _PENDING_LIMIT:
            hist._flush()
        series = self.timeseries
        rows = series._rows
        start = series.start_ns
        if done_ns is not None and start is not None and rows:
            i = (done_ns - start) // series.interval_ns
            row = rows[i] if 0 <= i < len(rows) else series.row(done_ns)
        else:
            row = series.row(done_ns)
        row.sent += 1
        row.ok += 1
        if in_flight > row.in_flight_max:
            row.in_flight_max = in_flight
        buckets = row.buckets
        buckets[value] = buckets.get(value, 0) + 1

    def record(self, outcome: Outcome) -> None:
        """Count one request's outcome and record its latencies."""
        latency_ns = outcome.latency_ns
        if (
            outcome.kind == "ok"
            and latency_ns is not None
            and outcome.cold is None
            and outcome.server is None
            and outcome.uncorrected_ns is None
        ):
            self.record_ok(
                outcome.status, latency_ns, outcome.bytes_received, outcome.done_ns,
                outcome.in_flight,
            )  # fmt: skip
            return
        histograms = self.histograms
        assert histograms is not None and self.status_codes is not None
        assert self.error_kinds is not None and self.throttle_reasons is not None
        assert self.timeseries is not None
        self.timeseries.record(outcome)
        self.count += 1
        self.bytes_received += outcome.bytes_received
        if outcome.status is not None:
            self.status_codes[outcome.status] += 1
        kind = outcome.kind
        if kind == "ok":
            self.ok += 1
        elif kind == "throttle":
            self.throttles += 1
            if outcome.throttle_reason:
                self.throttle_reasons[outcome.throttle_reason] += 1
        else:
            self.errors += 1
            error_kind = outcome.error_kind or "unknown"
            self.error_kinds[error_kind] += 1
            if error_kind == "timeout":
                self.timeouts += 1
        latency_ns = outcome.latency_ns
        if latency_ns is None:
            return  # no response and no timeout: counted by kind only
        latency_us = latency_ns // 1000
        histograms["all"].record(latency_us)
        if outcome.uncorrected_ns is not None:
            histograms["uncorrected"].record(outcome.uncorrected_ns // 1000)
        if kind == "throttle":
            histograms["throttled"].record(latency_us)
        elif outcome.cold is not None:
            self.cold_known += 1
            if outcome.cold:
                self.cold_starts += 1
                histograms["cold"].record(latency_us)
            else:
                histograms["warm"].record(latency_us)
            if outcome.proactive_init:
                self.proactive_inits += 1
        server = outcome.server
        if server:
            for key, name in _SERVER_HISTOGRAMS.items():
                value = server.get(key)
                if value is not None:
                    histograms[name].record(int(value * 1000))
            billed = server.get("billed")
            memory = server.get("memory")
            if billed is not None and memory is not None:
                self.billed_mb_ms += billed * memory

    def merge(self, other: Measurements) -> None:
        """Add ``other`` (for example from another worker process) into this run."""
        for name in (
            "count", "ok", "errors", "throttles", "cold_starts", "cold_known",
            "proactive_inits", "timeouts", "late_starts", "unsent", "bytes_received",
            "billed_mb_ms",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        assert self.histograms is not None and other.histograms is not None
        for name, histogram in other.histograms.items():
            self.histograms[name].merge(histogram)
        for counter in ("status_codes", "error_kinds", "throttle_reasons"):
            getattr(self, counter).update(getattr(other, counter))
        assert self.timeseries is not None and other.timeseries is not None
        self.timeseries.merge(other.timeseries)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (histograms encoded) that :meth:`from_dict` reads back exactly."""
        assert self.histograms is not None and self.status_codes is not None
        assert self.error_kinds is not None and self.throttle_reasons is not None
        assert self.timeseries is not None
        return {
            "highest_us": self.highest_us,
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "cold_known": self.cold_known,
            "proactive_inits": self.proactive_inits,
            "timeouts": self.timeouts,
            "late_starts": self.late_starts,
            "unsent": self.unsent,
            "bytes_received": self.bytes_received,
            "billed_mb_ms": self.billed_mb_ms,
            "status_codes": {str(k): v for k, v in sorted(self.status_codes.items())},
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "throttle_reasons": dict(sorted(self.throttle_reasons.items())),
            "histograms": {
                name: {"hdr": h.encode(), "overflows": h.overflows}
                for name, h in self.histograms.items()
            },
            "timeseries": self.timeseries.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurements:
        highest_us = int(data["highest_us"])
        histograms = {name: Histogram(highest_us) for name in HISTOGRAM_NAMES}
        for name, encoded in data.get("histograms", {}).items():
            histograms[name] = Histogram.decode(
                encoded["hdr"], highest_us, int(encoded.get("overflows", 0))
            )
        return cls(
            highest_us=highest_us,
            count=data["count"],
            ok=data["ok"],
            errors=data["errors"],
            throttles=data["throttles"],
            cold_starts=data["cold_starts"],
            cold_known=data["cold_known"],
            proactive_inits=data.get("proactive_inits", 0),
            timeouts=data.get("timeouts", 0),
            late_starts=data.get("late_starts", 0),
            unsent=data.get("unsent", 0),
            bytes_received=data.get("bytes_received", 0),
            billed_mb_ms=data.get("billed_mb_ms", 0.0),
            histograms=histograms,
            status_codes=Counter({int(k): v for k, v in data.get("status_codes", {}).items()}),
            error_kinds=Counter(data.get("error_kinds", {})),
            throttle_reasons=Counter(data.get("throttle_reasons", {})),
            timeseries=(
                Timeseries.from_dict(data["timeseries"], highest_us)
                if "timeseries" in data
                else None
            ),
        )
