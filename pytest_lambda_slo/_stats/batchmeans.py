"""Verdicts on means (``mean`` latency, ``min_rps``) from batch means and the t-distribution.

A run's requests are not independent over time (warm-up, queues), so the mean of all of
them has no simple standard error; the means of consecutive batches (about 30, e.g.
seconds) are close to independent and normal, and a t-interval over them is the standard
batch-means method. The first batch holds the ramp-up (connections, cold starts) and is
dropped when there are enough batches to spare it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .binomial import FAIL, INCONCLUSIVE, PASS, State
from .clustering import TARGET_BATCHES, merge_batches

# With at least this many batches the first (the ramp-up) is dropped.
MIN_BATCHES_TO_DROP_RAMP = 5


@dataclass(frozen=True)
class MeanJudgement:
    """The verdict on a mean: ``at_most`` is True for ``mean <= limit``, False for ``>=``.

    ``lower``/``upper`` are one-sided bounds: for ``at_most`` the lower at the fail
    confidence and the upper at the pass confidence, the other way round for ``>=``.
    ``batches`` counts the batch means used (after any ramp-up drop).
    """

    state: State
    estimate: float | None
    lower: float
    upper: float
    limit: float
    at_most: bool
    batches: int
    dropped_ramp_up: bool
    pass_confidence: float
    fail_confidence: float


def judge_mean(
    batch_means: Sequence[float],
    limit: float,
    *,
    at_most: bool,
    pass_confidence: float,
    fail_confidence: float,
    drop_ramp_up: bool = True,
) -> MeanJudgement:
    """Judge ``mean <= limit`` (``at_most``) or ``mean >= limit`` from per-batch means."""
    values = [float(v) for v in batch_means]
    dropped = drop_ramp_up and len(values) >= MIN_BATCHES_TO_DROP_RAMP
    if dropped:
        values = values[1:]
    k = len(values)
    estimate = statistics.fmean(values) if values else None
    if k < 2 or estimate is None:
        return MeanJudgement(
            INCONCLUSIVE, estimate, -math.inf, math.inf, limit, at_most, k, dropped,
            pass_confidence, fail_confidence,
        )  # fmt: skip
    se = statistics.stdev(values) / math.sqrt(k)
    t_pass = float(stats.t.ppf(pass_confidence, k - 1))
    t_fail = float(stats.t.ppf(fail_confidence, k - 1))
    if at_most:
        lower, upper = estimate - t_fail * se, estimate + t_pass * se
        state = FAIL if lower > limit else PASS if upper < limit else INCONCLUSIVE
    else:
        lower, upper = estimate - t_pass * se, estimate + t_fail * se
        state = FAIL if upper < limit else PASS if lower > limit else INCONCLUSIVE
    return MeanJudgement(
        state, estimate, lower, upper, limit, at_most, k, dropped, pass_confidence,
        fail_confidence,
    )  # fmt: skip


def batch_means(
    intervals: Sequence[tuple[float, float]], target: int = TARGET_BATCHES
) -> list[float]:
    """Means of about ``target`` batches from per-interval ``(count, sum)``; empty ones skipped."""
    return [total / n for n, total in merge_batches(intervals, target) if n > 0]


def batch_rates(
    counts: Sequence[float],
    interval_s: float,
    duration_s: float,
    target: int = TARGET_BATCHES,
) -> list[float]:
    """Requests per second of about ``target`` batches of per-interval ``counts``.

    Each batch's count is divided by the time it covers; the last interval covers only what
    is left of ``duration_s`` (the run rarely ends on an interval's edge), so the final batch
    is not undercounted. A last interval shorter than a tenth of one is dropped: its rate
    would be noise.
    """
    if not counts:
        return []
    spans = [interval_s] * len(counts)
    spans[-1] = duration_s - interval_s * (len(counts) - 1)
    pairs = list(zip(spans, counts, strict=True))
    if spans[-1] < interval_s / 10:
        pairs = pairs[:-1]
    return [m / span for span, m in merge_batches(pairs, target) if span > 0]
