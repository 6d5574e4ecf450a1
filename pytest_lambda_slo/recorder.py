"""HDR histograms and counters for one load run: record, count overflows, merge, encode.

Nothing here keeps a per-request list: every latency goes into a bounded buffer that is
folded into an HdrHistogram (3 significant figures, microseconds). A value outside the
histogram's range is counted as an overflow, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

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
        self._hdr = HdrHistogram(LOWEST_US, self.highest_us, SIGNIFICANT_FIGURES)
        self._pending: dict[int, int] = {}
        self.overflows = 0

    def record(self, value_us: int, count: int = 1) -> None:
        """Record ``count`` samples of ``value_us`` (values below 1 us count as 1 us)."""
        pending = self._pending
        pending[value_us] = pending.get(value_us, 0) + count
        if len(pending) >= _PENDING_LIMIT:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        hdr = self._hdr
        for value, count in pending.items():
            if value < LOWEST_US:
                value = LOWEST_US
            if not hdr.record_value(value, count):
                self.overflows += count

    @property
    def hdr(self) -> HdrHistogram:
        """The underlying HdrHistogram, with every buffered value folded in."""
        if self._pending:
            self._flush()
        return self._hdr

    @property
    def count(self) -> int:
        """Samples recorded inside the range (overflows are counted separately)."""
        return int(self.hdr.get_total_count())

    def percentile_us(self, q: float) -> int | None:
        """The value at percentile ``q`` (0-100), or None with no samples."""
        hdr = self.hdr
        if hdr.get_total_count() == 0:
            return None
        return int(hdr.get_value_at_percentile(q))

    def min_us(self) -> int | None:
        hdr = self.hdr
        return int(hdr.get_min_value()) if hdr.get_total_count() else None

    def max_us(self) -> int | None:
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
            histogram._hdr.decode_and_add(encoded.encode("ascii"))
        histogram.overflows = overflows
        return histogram


class Outcome:
    """What one request came to; built by the engine, consumed by :class:`Measurements`.

    ``kind`` is "ok", "throttle" or "error". ``cold`` is True/False when the target can
    tell, None when it cannot. ``server`` holds server-side figures in milliseconds from
    a Lambda REPORT line (keys: init, restore, duration, billed, memory, max_memory).
    """

    __slots__ = (
        "bytes_received",
        "cold",
        "error_kind",
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

    def __post_init__(self) -> None:
        if self.histograms is None:
            self.histograms = {name: Histogram(self.highest_us) for name in HISTOGRAM_NAMES}
        self.status_codes = self.status_codes if self.status_codes is not None else Counter()
        self.error_kinds = self.error_kinds if self.error_kinds is not None else Counter()
        if self.throttle_reasons is None:
            self.throttle_reasons = Counter()

    def hist(self, name: str) -> Histogram:
        assert self.histograms is not None
        return self.histograms[name]

    def record(self, outcome: Outcome) -> None:
        """Count one request's outcome and record its latencies."""
        histograms = self.histograms
        assert histograms is not None and self.status_codes is not None
        assert self.error_kinds is not None and self.throttle_reasons is not None
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (histograms encoded) that :meth:`from_dict` reads back exactly."""
        assert self.histograms is not None and self.status_codes is not None
        assert self.error_kinds is not None and self.throttle_reasons is not None
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
        )
