"""Percentile and rate budgets judged as a share, with exact bounds and clustering widened.

A percentile budget ``p_q <= B`` is the rate budget "at most 1-q of the requests are
slower than B": the requests slower than B are counted from the histogram's buckets
(surely slower for the FAIL side, maybe slower for the PASS side) and judged with exact
Clopper-Pearson bounds; the latency bounds it prints are the order statistics that give
the same verdict, so they clear the budget exactly when the share's bounds clear 1-q.
Rates (error, throttle, cold-start share) are judged the same way on their counts.
Exceedances clustered in time widen the bounds by the design effect of their
per-interval counts.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, NamedTuple

from .._stats.binomial import (
    INCONCLUSIVE,
    RateJudgement,
    judge_rate,
    lower_bound,
    percentile_decide_n,
    upper_bound,
)
from .._stats.clustering import clustered_design_effect
from .._stats.exceedances import count_exceedances, percentile_tail
from .._stats.levels import Levels
from .._stats.wording import about, needed_sentence, observed_sentence
from .budgets import BudgetSpec
from .recorder import Histogram
from .verdict import ShareBounds, Verdict

if TYPE_CHECKING:
    from .result import BurstResult


class ShareCounts(NamedTuple):
    """What a share budget is judged on: n, surely/maybe-over counts, design effect."""

    n: int
    m_fail: float
    m_pass: float
    design_effect: float
    tail: float  # the share the budget allows: 1-q for a percentile, the limit for a rate


def share_counts(result: BurstResult, spec: BudgetSpec, limit: float) -> ShareCounts:
    """The counts of a percentile or rate budget (shared by the fixed and sequential tests)."""
    if spec.kind == "percentile":
        histogram = result.view(spec.view).histogram
        ex = count_exceedances(histogram.hdr, limit * 1e6, histogram.overflows)
        d = _latency_design_effect(result, spec.view, limit * 1e6)
        return ShareCounts(ex.n, ex.m_lo, ex.m_hi, d, percentile_tail(spec.q))
    m = float(getattr(result, spec.counter))
    return ShareCounts(result.count, m, m, _rate_design_effect(result, spec.counter), limit)


def _latency_design_effect(result: BurstResult, view: str, threshold_us: float) -> float:
    """d of the requests slower than the threshold, from the per-interval histograms.

    Those histograms hold every non-throttled request with a latency: exactly the served
    view. Each interval's cold starts are taken out of n and, assumed to be among its
    slowest, out of m: a burst's cold starts cluster in its first wave by design (one per
    new environment), so their pattern in time is the load shape's, not a slow period's;
    for the warm view this also leaves (nearly) its own counts. The cold and the
    server-side views have no per-interval data of their own and are judged with d = 1.
    """
    series = result.measurements.timeseries
    if series is None or len(series) < 2 or view not in ("served", "warm"):
        return 1.0
    effects = []
    cold = series.cold_starts
    for side in ("lo", "hi"):
        counts = series.exceedances(threshold_us, side)  # type: ignore[arg-type]
        counts = [(n - c, max(0, m - c)) for (n, m), c in zip(counts, cold, strict=True)]
        effects.append(clustered_design_effect(counts))
    return max(effects)


def _rate_design_effect(result: BurstResult, counter: str) -> float:
    """d of a rate from its per-interval counts (of all the requests that completed).

    Cold starts are judged with d = 1: they cluster at the start by design (each new
    environment's first request), so their pattern in time is the load shape's, not chance.
    """
    series = result.measurements.timeseries
    if series is None or len(series) < 2 or counter == "cold_starts":
        return 1.0
    per_interval = {"errors": series.errors, "throttles": series.throttled}[counter]
    return clustered_design_effect(list(zip(series.sent, per_interval, strict=True)))


@functools.lru_cache(maxsize=64)
def decide_n(q: float, confidence: float) -> int | None:
    """Requests to decide a p_q 10% from its budget 90% of the time (cached: it is costly)."""
    return percentile_decide_n(q, side="pass", confidence=confidence)


def judge_percentile(
    result: BurstResult, spec: BudgetSpec, limit: float, levels: Levels
) -> Verdict:
    histogram = result.view(spec.view).histogram
    counts = share_counts(result, spec, limit)
    n, d = counts.n, counts.design_effect
    judgement = judge_rate(
        n, counts.m_fail, counts.m_pass, limit=counts.tail,
        pass_confidence=levels.pass_confidence, fail_confidence=levels.fail_confidence,
        design_effect=d,
    )  # fmt: skip
    lower, upper = _latency_bounds(histogram, n, d, counts.tail, levels)
    advice = ""
    needed: int | None = None
    notes = []
    noun = "cold starts" if spec.view in ("cold", "init") else "requests"
    if n == 0:
        notes.append("no cold starts observed" if spec.view == "cold" else "no samples to judge")
    if histogram.overflows:
        notes.append(
            f"{histogram.overflows} samples exceeded the histogram range "
            f"(over {histogram.highest_us / 1e6:g}s)"
        )
    n_min = judgement.n_min
    if judgement.state == INCONCLUSIVE:
        decide = decide_n(spec.q, levels.pass_confidence)
        n_min_here = None if n_min is None else math.ceil(n_min * d)
        advice = needed_sentence(
            spec.name, n_min=n_min_here, pass_confidence=levels.pass_confidence,
            decide_n=None if decide is None else math.ceil(decide * d),
            decide_what=f"a p{spec.q:g} 10% from its budget", noun=noun,
        )  # fmt: skip
        if n_min_here is not None and n < n_min_here:
            advice = f"{spec.name} can never pass with {n:,} {noun}: " + advice.replace(
                f"{spec.name} needs", "it needs", 1
            )
            if spec.view == "cold":
                advice += "; cold_start_max or cold_start_p90 can be decided on fewer"
        observed = judgement.needed_n
        if observed is not None and judgement.estimate and observed > (n_min_here or 0):
            advice += (
                f" (about {about(observed)} if the observed {judgement.estimate * 100:.3g}% "
                "slower held)"
            )
        needed = observed if observed is not None else (
            math.ceil(decide * d) if decide is not None else n_min_here
        )  # fmt: skip
    return Verdict(
        spec.name, limit, _percentile_value(histogram, spec.q), n, judgement.state,
        "; ".join(notes), lower=lower, upper=upper, pass_confidence=levels.pass_confidence,
        fail_confidence=levels.fail_confidence, needed_n=needed, n_min=n_min,
        design_effect=d, advice=advice, share=_share(judgement),
    )  # fmt: skip


def _share(judgement: RateJudgement) -> ShareBounds:
    return ShareBounds(judgement.estimate, judgement.lower, judgement.upper, judgement.limit)


def _percentile_value(histogram: Histogram, q: float) -> float | None:
    """The point estimate of p_q over every sample, overflows (slower than all) included."""
    inside, over = histogram.count, histogram.overflows
    total = inside + over
    if total == 0:
        return None
    if math.ceil(q / 100.0 * total) > inside:
        return math.inf
    value = histogram.percentile_us(min(100.0, q * total / inside))
    return None if value is None else value / 1e6


def _latency_bounds(
    histogram: Histogram, n: int, d: float, tail: float, levels: Levels
) -> tuple[float | None, float | None]:
    """The latencies at which the share's bounds cross ``tail``: the percentile's bounds.

    The upper bound is the top of the bucket holding the (n - m*)-th fastest request, m* the
    most requests over a threshold with which the share's upper bound stays under the tail;
    the lower one the bottom of the bucket holding the (n - m_f + 1)-th, m_f the fewest
    with which the share's lower bound is over it. So the budget PASSES exactly when the
    upper bound is within it and FAILS when the lower one is over it. None: no such m.
    """
    if n == 0:
        return None, None
    n_eff = n / d

    def passes(m: int) -> bool:
        return upper_bound(m / d, n_eff, levels.pass_confidence) < tail

    def fails(m: int) -> bool:
        return lower_bound(m / d, n_eff, levels.fail_confidence) > tail

    upper: float | None = None
    if passes(0):
        low, high = 0, n  # passes(low) holds, passes(n) does not (the bound is 1 at m = n)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if passes(middle) else (low, middle)
        upper = _rank_value(histogram, n - low, top=True)
    lower: float | None = None
    if fails(n):
        low, high = -1, n  # fails(high) holds
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fails(middle) else (middle, high)
        lower = _rank_value(histogram, n - high + 1, top=False)
    return lower, upper


def _rank_value(histogram: Histogram, rank: int, *, top: bool) -> float:
    """Seconds: the top (or bottom) of the bucket holding the rank-th fastest sample."""
    hdr = histogram.hdr
    seen = 0
    for item in hdr.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= rank:
            value = item.value_iterated_to
            edge = hdr.get_highest_equivalent_value(value) if top else (
                hdr.get_lowest_equivalent_value(value)
            )  # fmt: skip
            return edge / 1e6
    return math.inf  # among the overflows: slower than the histogram's range


def judge_rate_budget(
    result: BurstResult, spec: BudgetSpec, limit: float, levels: Levels
) -> Verdict:
    counts = share_counts(result, spec, limit)
    judgement = judge_rate(
        counts.n, counts.m_fail, limit=limit, pass_confidence=levels.pass_confidence,
        fail_confidence=levels.fail_confidence, design_effect=counts.design_effect,
    )  # fmt: skip
    advice = observed_sentence(spec.name, judgement) if judgement.state == INCONCLUSIVE else ""
    return Verdict(
        spec.name, limit, judgement.estimate, counts.n, judgement.state, lower=judgement.lower,
        upper=judgement.upper, pass_confidence=levels.pass_confidence,
        fail_confidence=levels.fail_confidence, needed_n=judgement.needed_n,
        n_min=judgement.n_min, design_effect=judgement.design_effect, advice=advice,
    )  # fmt: skip
