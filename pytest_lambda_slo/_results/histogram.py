"""The latency histogram of a run: HdrHistogram (3 significant figures, microseconds).

Every latency goes into a bounded buffer keyed by histogram bucket that is folded into an
HdrHistogram. A value outside the histogram's range is counted as an overflow, never
dropped silently. The HdrHistogram itself is allocated when the first value is folded in:
a view nothing was recorded into (a label's server-side figures, say) costs no counts array.
"""

from __future__ import annotations

import functools

from hdrh.histogram import HdrHistogram

SIGNIFICANT_FIGURES = 3
LOWEST_US = 1
# Distinct values buffered before they are folded into the histogram. Bounded, so memory
# does not grow with the number of requests; folding costs one record_value per value.
BUFFER_LIMIT = 4096


class Histogram:
    """Latency histogram in microseconds with an explicit overflow count."""

    __slots__ = ("_hdr", "_pending", "highest_us", "overflows")

    def __init__(self, highest_us: int) -> None:
        self.highest_us = max(int(highest_us), 1000)
        self._hdr: HdrHistogram | None = None  # allocated by the first value folded in
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
        if len(pending) >= BUFFER_LIMIT:
            self._flush()

    def buffer(self) -> dict[int, int]:
        """The buffer itself (bucket floor -> count), the same dict for the histogram's life.

        A hot path may add to it as :meth:`record_bucket` does, calling :meth:`fold` once it
        holds BUFFER_LIMIT values or more.
        """
        return self._pending

    def fold(self) -> None:
        """Fold the buffer into the histogram (the buffer is emptied in place)."""
        self._flush()

    def _flush(self) -> None:
        pending = self._pending
        items = list(pending.items())
        pending.clear()
        hdr = self._hdr
        if hdr is None:
            hdr = self._hdr = HdrHistogram(LOWEST_US, self.highest_us, SIGNIFICANT_FIGURES)
        for value, count in items:
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

    @property
    def count(self) -> int:
        """Samples recorded inside the range (overflows are counted separately)."""
        if self._hdr is None and not self._pending:
            return 0  # nothing recorded: no need to allocate the histogram to say so
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
        if self._hdr is None and not self._pending:
            return empty_encoding(self.highest_us)  # no counts array allocated to say so
        return self.hdr.encode().decode("ascii")

    @classmethod
    def decode(cls, encoded: str, highest_us: int, overflows: int = 0) -> Histogram:
        histogram = cls(highest_us)
        if encoded:
            histogram.hdr.decode_and_add(encoded.encode("ascii"))
        histogram.overflows = overflows
        return histogram


@functools.lru_cache(maxsize=16)
def empty_encoding(highest_us: int) -> str:
    """The encoding of an empty histogram of this range (the same text every time)."""
    return HdrHistogram(LOWEST_US, highest_us, SIGNIFICANT_FIGURES).encode().decode("ascii")


def _sub_bucket_bits() -> int:
    """Bits of a value the histogram keeps exactly (11 for 3 significant figures)."""
    probe = HdrHistogram(LOWEST_US, 1_000_000, SIGNIFICANT_FIGURES)
    assert probe.unit_magnitude == 0  # LOWEST_US == 1: bucket 0 holds single values
    return int(probe.sub_bucket_half_count_magnitude) + 1


SUB_BUCKET_BITS = _sub_bucket_bits()


def bucket_floor(value_us: int) -> int:
    """The lowest value sharing ``value_us``'s histogram bucket (hdrh's lowest equivalent)."""
    shift = value_us.bit_length() - SUB_BUCKET_BITS
    return (value_us >> shift) << shift if shift > 0 else value_us


def bucket_top(value_us: int) -> int:
    """The highest value sharing ``value_us``'s histogram bucket (hdrh's highest equivalent)."""
    shift = max(0, value_us.bit_length() - SUB_BUCKET_BITS)
    return ((value_us >> shift) << shift) + (1 << shift) - 1
