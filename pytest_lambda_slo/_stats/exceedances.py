"""Requests slower than a threshold, counted from an HdrHistogram's buckets.

A bucket is a range of equivalent values, so a count "slower than B" has two honest
answers: ``m_lo`` counts the buckets whose lowest equivalent value is above B (surely
slower; used on the FAIL side) and ``m_hi`` those whose highest equivalent value is above
B (maybe slower; used on the PASS side). They differ only by the one bucket that straddles
B. Nothing here goes through ``get_value_at_percentile``: percentile budgets are judged as
the share of requests slower than the budget.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hdrh.histogram import HdrHistogram


class Exceedances(NamedTuple):
    """``n`` requests, of which ``m_lo`` surely and ``m_hi`` maybe slower than the threshold."""

    n: int
    m_lo: int
    m_hi: int


def count_exceedances(hdr: HdrHistogram, threshold: float, overflows: int = 0) -> Exceedances:
    """Count the values of ``hdr`` above ``threshold`` (same unit), both ways.

    ``overflows`` are values recorded as beyond the histogram's range: surely slower than
    any threshold inside it, so they count in n and in both m (in ``m_hi`` only when the
    threshold itself is past the range).
    """
    total = int(hdr.get_total_count())
    if total == 0:
        return Exceedances(overflows, overflows, overflows)
    # Values are whole units: "above 12.7" is "above 12" for every bucket edge.
    edge = max(0, math.floor(threshold))
    highest = hdr.get_highest_equivalent_value(hdr.get_value_from_index(hdr.counts_len - 1))
    if edge >= highest:  # beyond the range: only an overflow can be slower, and maybe
        return Exceedances(total + overflows, 0, overflows)
    index = hdr.get_counts_array_index(edge)  # the bucket holding the threshold
    counts = hdr.counts
    stored = len(counts)  # a decoded histogram may hold a truncated counts array
    m_lo = int(sum(counts[index + 1 : stored])) if index + 1 < stored else 0
    straddle = int(counts[index]) if index < stored else 0
    m_hi = m_lo + (straddle if hdr.get_highest_equivalent_value(edge) > edge else 0)
    return Exceedances(total + overflows, m_lo + overflows, m_hi + overflows)


def percentile_tail(q: float) -> float:
    """The share of requests a percentile budget ``p_q <= B`` allows above B: ``1 - q/100``."""
    if not 0.0 < q < 100.0:
        raise ValueError(f"a percentile must be between 0 and 100 exclusive; got {q!r}")
    return 1.0 - q / 100.0
