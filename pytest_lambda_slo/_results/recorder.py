"""Every number one load run produced (:class:`Measurements`): record, merge, encode.

Nothing here keeps a per-request list: latencies go into HDR histograms (:mod:`.histogram`)
and per-interval data (:mod:`.timeseries`); what one request came to is an
:class:`~.outcome.Outcome`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .histogram import (
    BUFFER_LIMIT,
    LOWEST_US,
    SIGNIFICANT_FIGURES,
    SUB_BUCKET_BITS,
    Histogram,
    bucket_floor,
    bucket_top,
)
from .outcome import IdSource, Outcome
from .slowest import SlowRequests, epoch_of
from .timeseries import INTERVAL_CAP, INTERVAL_S, Timeseries

# The names other modules have always imported from here.
__all__ = [
    "HISTOGRAM_NAMES",
    "INTERVAL_CAP",
    "INTERVAL_S",
    "LOWEST_US",
    "SIGNIFICANT_FIGURES",
    "Histogram",
    "Measurements",
    "Outcome",
    "Timeseries",
    "bucket_floor",
    "bucket_top",
]


# Histogram names. "all" holds every request that got a response or timed out; "warm"
# and "cold" only non-throttled responses whose cold-start state is known; "throttled"
# the throttled responses; "uncorrected" the open model's latency from the actual send.
# Server-side ones ("init", "duration", "billed") come from REPORT lines. "ttfb": the time
# to the first byte of every successful ("ok") response, from where its latency counts.
HISTOGRAM_NAMES = (
    "all",
    "ttfb",
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
# Distinct labels one run keeps a view of: each holds histograms and per-interval data.
MAX_LABELS = 100


def too_many_labels(label: str, count: int) -> ConfigError:
    return ConfigError(
        f"label {label!r} would be label number {count} of this run; at most {MAX_LABELS} "
        "distinct labels are kept: label requests by a bounded set of names (an operation "
        "or a route, not an id)"
    )


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
    # The slowest requests and cold starts by id (None: not kept, as in a label's view).
    slow: SlowRequests | None = None
    # label -> the Measurements of the requests with that label.
    labels: dict[str, Measurements] | None = None
    keep_slowest: bool = True
    label_of: str | None = None  # set on a label's view: it keeps no labels of its own

    def __post_init__(self) -> None:
        if self.histograms is None:
            self.histograms = {name: Histogram(self.highest_us) for name in HISTOGRAM_NAMES}
        self.status_codes = self.status_codes if self.status_codes is not None else Counter()
        self.error_kinds = self.error_kinds if self.error_kinds is not None else Counter()
        if self.throttle_reasons is None:
            self.throttle_reasons = Counter()
        if self.timeseries is None:
            self.timeseries = Timeseries(self.highest_us)
        if self.slow is None and self.keep_slowest:
            self.slow = SlowRequests()
        if self.labels is None:
            self.labels = {}
        # What record_ok touches per request, looked up once (typed: no asserts there).
        self._codes: Counter[int] = self.status_codes
        self._series: Timeseries = self.timeseries
        self._all = self.histograms["all"]
        self._all_buffer = self._all.buffer()
        self._ttfb = self.histograms["ttfb"]
        self._ttfb_buffer = self._ttfb.buffer()

    def label_view(self, label: str) -> Measurements:
        """The Measurements of ``label``'s requests (made on its first request)."""
        assert self.labels is not None and self.timeseries is not None
        child = self.labels.get(label)
        if child is None:
            if len(self.labels) >= MAX_LABELS:
                raise too_many_labels(label, len(self.labels) + 1)
            child = Measurements(highest_us=self.highest_us, keep_slowest=False, label_of=label)
            series = self.timeseries
            if series.start_ns is not None and series.start_epoch_s is not None:
                child.mark_release(series.start_ns, series.start_epoch_s)
            self.labels[label] = child
        return child

    def mark_release(self, start_ns: int, start_epoch_s: float) -> None:
        """The run's release instant (``perf_counter_ns()``, ``time.time()``): interval 0."""
        assert self.timeseries is not None
        self.timeseries.start(start_ns, start_epoch_s)

    def hist(self, name: str) -> Histogram:
        assert self.histograms is not None
        return self.histograms[name]

    def record_ok(
        self, status: int | None, latency_ns: int, bytes_received: int, done_ns: int | None,
        in_flight: int, ttfb_ns: int | None = None,
    ) -> None:  # fmt: skip
        """Count a plain ``ok`` response (no cold-start verdict, no server figures, corrected
        latency not apart): what :meth:`record` does for its Outcome, with no Outcome.

        It runs once per request, so the histograms' record_bucket and, while the request
        completed in the interval it found last, the timeseries' row() are done inline.
        """
        self.count += 1
        self.ok += 1
        self.bytes_received += bytes_received
        if status is not None:
            self._codes[status] += 1
        value = latency_ns // 1000
        if value < LOWEST_US:
            value = LOWEST_US
        shift = value.bit_length() - SUB_BUCKET_BITS
        if shift > 0:
            value = (value >> shift) << shift  # the bucket's lowest value, as bucket_floor
        buffer = self._all_buffer
        count = buffer.get(value)
        if count is not None:
            buffer[value] = count + 1
        else:  # a new value: the buffer grows
            buffer[value] = 1
            if len(buffer) >= BUFFER_LIMIT:
                self._all.fold()
        series = self._series
        if done_ns is not None and series.current_from_ns <= done_ns < series.current_until_ns:
            row = series.current
        else:
            row = series.row(done_ns)
        row.sent += 1
        row.ok += 1
        if in_flight > row.in_flight_max:
            row.in_flight_max = in_flight
        buckets = row.buckets
        buckets[value] = buckets.get(value, 0) + 1
        if ttfb_ns is not None:  # the same bucket arithmetic, for the time to first byte
            first = ttfb_ns // 1000
            if first < LOWEST_US:
                first = LOWEST_US
            shift = first.bit_length() - SUB_BUCKET_BITS
            if shift > 0:
                first = (first >> shift) << shift
            buffer = self._ttfb_buffer
            count = buffer.get(first)
            if count is not None:
                buffer[first] = count + 1
            else:
                buffer[first] = 1
                if len(buffer) >= BUFFER_LIMIT:
                    self._ttfb.fold()

    def record_slow_ok(
        self, status: int, latency_ns: int, bytes_received: int, done_ns: int,
        in_flight: int, ttfb_ns: int, response: IdSource,
    ) -> None:  # fmt: skip
        """:meth:`record_ok` for a plain ``ok`` slower than :attr:`slow`'s threshold: counted
        the same, and offered to the slowest requests with its response (what :meth:`record`
        does for that Outcome)."""
        self.record_ok(status, latency_ns, bytes_received, done_ns, in_flight, ttfb_ns)
        slow = self.slow
        if slow is not None and latency_ns > slow.threshold:
            outcome = Outcome(
                "ok", latency_ns, status=status, bytes_received=bytes_received, done_ns=done_ns,
                in_flight=in_flight, ttfb_ns=ttfb_ns, response=response,
            )  # fmt: skip
            self._keep(slow, outcome, latency_ns)

    def record(self, outcome: Outcome) -> None:
        """Count one request's outcome, record its latencies; keep it if among the slowest."""
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
                outcome.in_flight, outcome.ttfb_ns,
            )  # fmt: skip
            slow = self.slow
            if slow is not None and latency_ns > slow.threshold:
                self._keep(slow, outcome, latency_ns)
        else:
            self._record_full(outcome)
        label = outcome.label
        if label is not None and self.label_of is None:
            assert self.labels is not None
            (self.labels.get(label) or self.label_view(label)).record(outcome)

    def _keep(self, slow: SlowRequests, outcome: Outcome, latency_ns: int) -> None:
        series = self.timeseries
        assert series is not None
        slow.offer(outcome, latency_ns, epoch_of(outcome.done_ns, series.start_ns,
                                                 series.start_epoch_s))  # fmt: skip

    def _record_full(self, outcome: Outcome) -> None:
        """:meth:`record` for every outcome but a plain ``ok`` one."""
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
        if kind == "ok" and outcome.ttfb_ns is not None:
            histograms["ttfb"].record(outcome.ttfb_ns // 1000)
        slow = self.slow
        if slow is not None and (latency_ns > slow.threshold or outcome.cold):
            self._keep(slow, outcome, latency_ns)
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
        if self.slow is not None and other.slow is not None:
            self.slow.merge(other.slow)
        for label, child in (other.labels or {}).items():
            self.label_view(label).merge(child)

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
            "slow_requests": None if self.slow is None else self.slow.to_dict(),
            "labels": {name: child.to_dict() for name, child in (self.labels or {}).items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, label_of: str | None = None) -> Measurements:
        keep_slowest = label_of is None
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
            slow=SlowRequests.from_dict(data["slow_requests"])
            if keep_slowest and data.get("slow_requests") is not None
            else None,
            labels={
                name: cls.from_dict(child, label_of=name)
                for name, child in (data.get("labels") or {}).items()
            },
            keep_slowest=keep_slowest,
            label_of=label_of,
        )
