"""``mean`` and ``min_rps`` judged over per-second batches of the run (t-intervals).

The run's per-interval data give one mean latency (or one completion rate) per second,
merged into about 30 batches; the first (the ramp-up) is dropped when there are enough.
With fewer than two batches the verdict is inconclusive and says how long a run is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scipy import stats

from .._stats.batchmeans import batch_means, batch_rates, judge_mean
from .._stats.binomial import FAIL, INCONCLUSIVE
from .._stats.levels import Levels
from .._stats.wording import about
from .budgets import BudgetSpec
from .verdict import Verdict

if TYPE_CHECKING:
    from .result import BurstResult


def judge_batches(result: BurstResult, spec: BudgetSpec, limit: float, levels: Levels) -> Verdict:
    """``mean`` and ``min_rps``: a t-interval over the per-second batches of the run."""
    series = result.measurements.timeseries
    if spec.kind == "mean":
        view = result.view(spec.view)
        measured: float | None = view.mean if view.count else None
        n = view.count
        values = []
        if series is not None:
            pairs = []
            for i in range(len(series)):
                hdr = series.hist(i)
                count = int(hdr.get_total_count())
                pairs.append((count, hdr.get_mean_value() * count / 1e6 if count else 0.0))
            values = batch_means(pairs)
        if view.overflows:
            note = f"{view.overflows} samples exceeded the histogram range (over {view.range_s}s)"
            return Verdict(spec.name, limit, math.inf, n, FAIL, note, method="literal")
    else:
        measured = result.rps if result.count else None
        n = result.count
        values = (
            batch_rates(series.sent, series.interval_s, result.duration)
            if series is not None and result.duration > 0
            else []
        )
    judgement = judge_mean(
        values, limit, at_most=spec.upper, pass_confidence=levels.pass_confidence,
        fail_confidence=levels.fail_confidence,
    )  # fmt: skip
    advice, needed = "", None
    if judgement.state == INCONCLUSIVE:
        advice, needed = _batches_advice(spec, judgement.batches, values, limit, n, levels)
    return Verdict(
        spec.name, limit, measured, n, judgement.state,
        lower=None if math.isinf(judgement.lower) else judgement.lower,
        upper=None if math.isinf(judgement.upper) else judgement.upper,
        pass_confidence=levels.pass_confidence, fail_confidence=levels.fail_confidence,
        needed_n=needed, advice=advice,
    )  # fmt: skip


def _batches_advice(
    spec: BudgetSpec, batches: int, values: Sequence[float], limit: float, n: int,
    levels: Levels,
) -> tuple[str, int | None]:  # fmt: skip
    """How long a run would decide a mean: batches, and requests at this run's pace."""
    if batches < 2:
        return (
            f"{spec.name} is judged over per-second batches and needs at least 2 "
            f"(a run of 2s or more; 6s or more to drop the ramp-up second); this run had "
            f"{batches}"
        ), None
    kept = list(values[1:] if len(values) > batches else values)
    spread = float(stats.tstd(kept)) if len(kept) > 1 else 0.0
    gap = abs(sum(kept) / len(kept) - limit)
    if gap == 0.0 or spread == 0.0:
        return f"{spec.name}: the batch means sit on the budget; no run length decides it", None
    z = float(stats.norm.ppf(max(levels.pass_confidence, levels.fail_confidence)))
    wanted = max(batches + 1, math.ceil((z * spread / gap) ** 2) + 1)
    needed = math.ceil(n * wanted / batches) if n else None
    sentence = f"{spec.name} needs about {about(wanted)} batches to decide at this spread"
    if needed is not None:
        sentence += f" (about {about(needed)} requests at this run's pace)"
    return sentence, needed
