"""The stats' latency histograms: HdrHistogram in microseconds, with an overflow count.

The emulator keeps its own small wrapper (not the load engine's recorder) so that it stays
independent of the load pipeline; the encoding is HdrHistogram's standard base64 text, with
the same range and precision, so a client decodes it with any HdrHistogram library.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
SIGNIFICANT_FIGURES = 3
_PENDING_LIMIT = 4096  # distinct values buffered before they are folded into the HDR counts


class Histogram:
    """Microsecond samples from 1 us to ``highest_us``; values above it are counted apart."""

    __slots__ = ("_hdr", "_pending", "highest_us", "overflows")

    def __init__(self, highest_us: int) -> None:
        self.highest_us = highest_us
        self._hdr = HdrHistogram(LOWEST_US, highest_us, SIGNIFICANT_FIGURES)
        # A dict increment is cheaper than HdrHistogram's record_value on the hot path.
        self._pending: dict[int, int] = {}
        self.overflows = 0

    def record(self, value_us: int) -> None:
        pending = self._pending
        pending[value_us] = pending.get(value_us, 0) + 1
        if len(pending) >= _PENDING_LIMIT:
            self._flush()

    def _flush(self) -> HdrHistogram:
        pending, self._pending = self._pending, {}
        hdr = self._hdr
        for value, count in pending.items():
            if not hdr.record_value(value if value >= LOWEST_US else LOWEST_US, count):
                self.overflows += count
        return hdr

    @property
    def hdr(self) -> HdrHistogram:
        return self._flush() if self._pending else self._hdr

    @property
    def count(self) -> int:
        """Samples inside the range (overflows are counted apart)."""
        return int(self.hdr.get_total_count())

    def percentile_us(self, q: float) -> int | None:
        return int(self.hdr.get_value_at_percentile(q)) if self.count else None

    def max_us(self) -> int | None:
        return int(self.hdr.get_max_value()) if self.count else None

    def encode(self) -> str:
        """HdrHistogram's compressed base64 text."""
        return self.hdr.encode().decode("ascii")
