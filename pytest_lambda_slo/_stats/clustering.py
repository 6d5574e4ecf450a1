"""The design effect: how much clustered slowness widens a share's bounds.

Exceedances (slow requests, errors) come in bursts: a slow minute, a noisy neighbour.
Counted per batch (for example per second), such bursts show as batch shares that vary
more than independent requests would make them. The ratio of the two variances, the
design effect d, says how many requests one independent request is worth: the bounds are
then taken on the effective sample ``n/d`` with ``m/d`` exceedances.

Definition (the quasi-binomial dispersion estimate, Pearson's statistic over its degrees
of freedom). With K non-empty batches of ``n_i`` requests and ``m_i`` exceedances,
N = sum n_i, p = sum m_i / N and p_i = m_i / n_i:

    d = [ sum_i n_i (p_i - p)^2 / (K - 1) ]  /  [ p (1 - p) ]

The numerator is the variance of the batch shares weighted by batch size (a batch of
n_i requests has share variance p(1-p)/n_i when requests are independent, hence the
weight); the denominator is the binomial variance of one request. For independent
requests E[d] = 1 whatever the batch sizes. d is 1 (no correction) with fewer than two
non-empty batches or when p is 0 or 1 (no variation to measure); values below 1 are kept
by :func:`design_effect` and floored at 1 where they are used, so the correction only ever
widens a bound.

Where it is used (:func:`clustered_design_effect`), d applies only when the batches are
more dispersed than independent requests would make them 95 times in 100: Pearson's
dispersion test, d (K-1) above the 95% point of chi-squared with K-1 degrees of freedom.
Below that the spread is what chance gives, and flooring a noisy estimate at 1 would
still widen every bound on average (with the three or four one-second batches of a short
run, by about a third), so an iid run would pay for clustering it does not have. A slow
period is far above the line (tests/test_stats_clustering.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from scipy import stats

TARGET_BATCHES = 30
DISPERSION_CONFIDENCE = 0.95  # how sure the batches' extra spread must be before d applies


def merge_batches(
    intervals: Sequence[tuple[float, float]], target: int = TARGET_BATCHES
) -> list[tuple[float, float]]:
    """Add neighbouring ``(n_i, m_i)`` intervals into ``target`` near-equal runs of intervals.

    With ``target`` or fewer intervals they are returned as they are. Otherwise batch j
    covers intervals ``[j*K//target, (j+1)*K//target)``, so every batch spans the same
    stretch of time (to one interval) and neighbours stay together.
    """
    count = len(intervals)
    if count <= target:
        return [(float(n), float(m)) for n, m in intervals]
    batches = []
    for j in range(target):
        chunk = intervals[j * count // target : (j + 1) * count // target]
        batches.append((float(sum(n for n, _ in chunk)), float(sum(m for _, m in chunk))))
    return batches


def design_effect(batches: Sequence[tuple[float, float]]) -> float:
    """d from per-batch ``(n_i, m_i)`` counts (see the module docstring); 1.0 when unmeasurable."""
    kept = [(n, m) for n, m in batches if n > 0]
    if len(kept) < 2:
        return 1.0
    total_n = sum(n for n, _ in kept)
    total_m = sum(m for _, m in kept)
    p = total_m / total_n
    if p <= 0.0 or p >= 1.0:
        return 1.0
    spread = sum((m - n * p) ** 2 / n for n, m in kept) / (len(kept) - 1)
    return spread / (p * (1.0 - p))


@functools.lru_cache(maxsize=128)
def dispersion_line(batches: int) -> float:
    """The d that ``batches`` independent batches exceed only 5 times in 100."""
    return float(stats.chi2.ppf(DISPERSION_CONFIDENCE, batches - 1)) / (batches - 1)


def clustered_design_effect(
    intervals: Sequence[tuple[float, float]], target: int = TARGET_BATCHES
) -> float:
    """d for per-interval counts, merged first into about ``target`` batches, where the
    dispersion test shows clustering; 1.0 otherwise."""
    batches = merge_batches(intervals, target)
    d = design_effect(batches)
    kept = sum(1 for n, _ in batches if n > 0)
    if kept < 2 or d <= dispersion_line(kept):
        return 1.0
    return d
