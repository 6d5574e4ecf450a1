"""Encoded HDR histograms as the JSON carries them: decode, add exactly, read percentiles.

The JSON holds each histogram as the standard compressed base64 encoding (microseconds,
3 significant figures). Adding two decoded histograms is exact: counts are added bucket
by bucket, so percentiles of a sum are never averages of percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from .._results.recorder import LOWEST_US, SIGNIFICANT_FIGURES


def decode(encoded: str | None) -> HdrHistogram | None:
    """The histogram of one encoding, or None for an empty or missing one."""
    if not encoded:
        return None
    return HdrHistogram.decode(encoded.encode("ascii"))


def add_all(encodings: Iterable[str | None], highest_us: int = 1000) -> HdrHistogram:
    """The exact sum of encoded histograms, in a range wide enough for every one of them."""
    parts = [h for h in (decode(e) for e in encodings) if h is not None]
    highest = max([highest_us, *(int(h.highest_trackable_value) for h in parts)])
    total = HdrHistogram(LOWEST_US, highest, SIGNIFICANT_FIGURES)
    for part in parts:
        total.add(part)
    return total


def encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


def percentile_ms(histogram: HdrHistogram, q: float) -> float | None:
    """The value at percentile ``q`` (0-100) in milliseconds, None when empty."""
    if histogram.get_total_count() == 0:
        return None
    return round(histogram.get_value_at_percentile(q) / 1000.0, 3)


def max_ms(histogram: HdrHistogram) -> float | None:
    if histogram.get_total_count() == 0:
        return None
    return round(histogram.get_max_value() / 1000.0, 3)


def buckets(histogram: HdrHistogram) -> list[tuple[int, int, int]]:
    """Recorded buckets as (lowest equivalent us, highest equivalent us, count), ascending."""
    out = []
    for item in histogram.get_recorded_iterator():
        value = item.value_iterated_to
        out.append(
            (
                int(histogram.get_lowest_equivalent_value(value)),
                int(histogram.get_highest_equivalent_value(value)),
                int(item.count_at_value_iterated_to),
            )
        )
    return out


def count_above(histogram: HdrHistogram, threshold_us: int) -> int:
    """Samples in buckets wholly above ``threshold_us`` (lowest equivalent value > it)."""
    return sum(count for low, _high, count in buckets(histogram) if low > threshold_us)


def spectrum(histogram: HdrHistogram, max_q: float = 99.999) -> list[tuple[float, float]]:
    """(percentile, value in ms) points of the percentile spectrum, up to ``max_q``.

    One point per recorded bucket: the percentile of samples at or below it, as
    HdrHistogram's percentile output lists them; the last point is the maximum.
    """
    total = histogram.get_total_count()
    if total == 0:
        return []
    points = []
    seen = 0
    for low, high, count in buckets(histogram):
        del low
        seen += count
        q = 100.0 * seen / total
        points.append((min(q, max_q), high / 1000.0))
        if q >= max_q:
            break
    return points


def difference(whole: HdrHistogram, part: HdrHistogram) -> HdrHistogram:
    """``whole`` minus ``part`` (a sub-population of it), bucket by bucket, exactly."""
    removed = {low: count for low, _high, count in buckets(part)}
    out = HdrHistogram(LOWEST_US, int(whole.highest_trackable_value), SIGNIFICANT_FIGURES)
    for low, _high, count in buckets(whole):
        left = count - removed.get(low, 0)
        if left < 0:
            raise ValueError("difference: part holds samples that whole does not")
        if left:
            out.record_value(low, left)
    return out
