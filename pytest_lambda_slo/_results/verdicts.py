"""Budgets judged against a result with stated confidence: pass, fail or inconclusive.

- A percentile budget ``p_q <= B`` is the rate budget "at most 1-q of the requests are
  slower than B": the requests slower than B are counted from the histogram's buckets
  (surely slower for the FAIL side, maybe slower for the PASS side) and judged with exact
  Clopper-Pearson bounds; the latency bounds it prints are the order statistics that give
  the same verdict, so they clear the budget exactly when the share's bounds clear 1-q.
- Rates (error, throttle, cold-start share) are judged the same way on their counts.
- ``mean`` and ``min_rps``: t-intervals over per-second batches (the ramp-up one dropped).
- ``max``, ``cold_start_max`` and ``throttle_count``, and a rate budget of 0% or 100%, are
  literal: one request over the budget breaks it, nothing is estimated.

FAIL needs the fail confidence that the budget is broken, split (Bonferroni) over the
budgets judged together on one result; PASS needs the pass confidence that it is met.
Exceedances clustered in time widen the bounds by the design effect of their per-interval
counts. A run of zero requests passes no budget. ``VerdictPolicy.method == "point"``
judges point estimates instead, and says so in every verdict.

The fixed-n judgement is :func:`judge_all`; :func:`judge_sequential` is the one a burst
that fires until decided calls after every wave (an anytime-valid test, no peeking cost).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from scipy import stats

from .._stats.batchmeans import batch_means, batch_rates, judge_mean
from .._stats.binomial import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    RateJudgement,
    judge_rate,
    lower_bound,
    percentile_decide_n,
    upper_bound,
)
from .._stats.clustering import clustered_design_effect
from .._stats.exceedances import count_exceedances, percentile_tail
from .._stats.levels import Levels, split_levels
from .._stats.sequential import SequentialTest, Step
from .._stats.wording import about, needed_sentence, observed_sentence
from .budgets import BUDGETS, OFF, THROTTLE_BUDGETS, BudgetSpec
from .recorder import Histogram
from .verdict import ShareBounds, Verdict, VerdictPolicy

if TYPE_CHECKING:
    from .result import BurstResult

# (budget name, parsed limit, source) as judged together on one result.
Entry = tuple[str, float, str]
_COLD_VIEWS = ("warm", "cold")
_SERVER_VIEWS = ("init", "duration")
_IMPLIED_NOTE = (
    "implied, as no throttle budget was set: set throttle_rate=... (or 'off') to change it"
)


# -- what the budgets of one judgement are ---------------------------------------------------


def implied_throttle_budget(result: BurstResult, names: Sequence[str]) -> bool:
    """True when the implied throttle_rate budget applies to this judgement.

    It applies when budgets are judged and none of them, nor any earlier verdict on this
    result, is a throttle budget. ``result.default_throttle_rate`` is None when the ini
    key turned it off or the test's marker or ini set a throttle budget of their own.
    """
    if not names or result.default_throttle_rate is None:
        return False
    if any(name in THROTTLE_BUDGETS for name in names):
        return False
    return not any(v.budget in THROTTLE_BUDGETS for v in result.verdicts)


def _entries(result: BurstResult, entries: Sequence[Entry]) -> list[Entry]:
    """The entries to judge: budgets switched off dropped, the implied one added."""
    kept = [e for e in entries if not (e[0] in THROTTLE_BUDGETS and e[1] == OFF)]
    if implied_throttle_budget(result, [name for name, _, _ in entries]):
        assert result.default_throttle_rate is not None
        kept.append(("throttle_rate", result.default_throttle_rate, "default"))
    return kept


def _literal(spec: BudgetSpec, limit: float) -> bool:
    """A budget judged on its numbers as they are (a rate of 0% or 100% included)."""
    return spec.literal or (spec.kind == "rate" and not 0.0 < limit < 1.0)


def split_of(entries: Sequence[Entry]) -> int:
    """How many of the entries share the false-FAIL level (the literal ones have none)."""
    return max(1, sum(1 for name, limit, _ in entries if not _literal(BUDGETS[name], limit)))


def evaluate(
    result: BurstResult,
    budgets: Mapping[str, float],
    source: str,
    policy: VerdictPolicy | None = None,
) -> list[Verdict]:
    """Judge parsed budgets of one source together (see :func:`judge_all`)."""
    return judge_all(result, [(name, limit, source) for name, limit in budgets.items()], policy)


def judge_all(
    result: BurstResult, entries: Sequence[Entry], policy: VerdictPolicy | None = None
) -> list[Verdict]:
    """Judge budgets together on one result: they share the false-FAIL level.

    Budgets switched off (OFF) give no verdict; the implied throttle_rate budget is added
    with source "default" when no throttle budget is set. ``policy`` defaults to the
    result's own (the session's ini keys).
    """
    policy = policy or result.verdict_policy
    entries = _entries(result, entries)
    split = split_of(entries)
    levels = split_levels(split, policy.pass_confidence, policy.fail_confidence)
    verdicts = []
    for name, limit, source in entries:
        if policy.method == "point":
            verdict = _point(result, BUDGETS[name], limit)
        else:
            verdict = _judge(result, BUDGETS[name], limit, levels)
            verdict = dataclasses.replace(verdict, split=split)
        verdict = _finish(result, verdict, source)
        verdicts.append(verdict)
    return verdicts


def _finish(result: BurstResult, verdict: Verdict, source: str) -> Verdict:
    """The checks every kind shares: zero requests, saturation, throttles, the implied note."""
    spec = BUDGETS[verdict.budget]
    notes = [verdict.note]
    state = verdict.state
    if result.count == 0:
        state, notes = FAIL, ["no requests were measured: a run of zero requests passes nothing"]
    if spec.view == "served" and result.throttles:
        notes.append(f"{result.throttles} throttled not included")
    # A saturated generator distorts timings, not counts: only latency and rate-of-
    # completion budgets are refused on its data.
    timing = spec.unit == "duration" or spec.kind == "rps"
    if timing and result.saturated and state == PASS and result.saturation_policy == "fail":
        state = FAIL
        notes.append(result.saturation_note)
    if source == "default" and state != PASS:
        notes.append(_IMPLIED_NOTE)
    return dataclasses.replace(
        verdict, state=state, note="; ".join(filter(None, notes)), source=source
    )


# -- why a budget cannot be measured on this result ------------------------------------------


def _no_report_lines(result: BurstResult) -> str | None:
    """Why an Invoke API run has no REPORT line to read, or None for other targets."""
    if result.target_info.get("kind") != "lambda_invoke":
        return None
    if result.ok == 0:
        return (
            "no request succeeded, so Lambda sent no REPORT line to tell cold starts and "
            "server figures from; see the error kinds and throttles below"
        )
    return (
        "no response carried Lambda's REPORT line (X-Amz-Log-Result); only "
        "invocation_type='RequestResponse' returns it"
    )


def _cold_note(result: BurstResult) -> str:
    info = result.target_info
    if info.get("kind") == "http" and info.get("cold_start") is not None:
        return (
            "no response said whether it was a cold start (none succeeded, or none carried "
            "the cold_start header); see the error kinds below"
        )
    return _no_report_lines(result) or (
        "this target does not say which requests were cold starts; set "
        "HttpTarget(cold_start='x-cold-start') (a header) or a callable, or use InvokeTarget"
    )


def _unmeasurable(result: BurstResult, spec: BudgetSpec) -> str | None:
    """Why this result cannot measure the budget at all (it then FAILS), or None."""
    needs_cold = spec.view in _COLD_VIEWS or spec.counter == "cold_starts"
    if needs_cold and not result.cold_start_detection:
        return _cold_note(result)
    if spec.view in _SERVER_VIEWS and result.view(spec.view).count == 0:
        return _no_report_lines(result) or (
            "no server-side REPORT figures; use InvokeTarget (Lambda Invoke API with Tail)"
        )
    return None


# -- one budget, confidence verdict ------------------------------------------------------------


def _judge(result: BurstResult, spec: BudgetSpec, limit: float, levels: Levels) -> Verdict:
    problem = _unmeasurable(result, spec)
    if problem is not None:
        return Verdict(spec.name, limit, None, 0, FAIL, problem, method="literal")
    if _literal(spec, limit):
        return _judge_literal(result, spec, limit)
    if spec.kind == "percentile":
        return _judge_percentile(result, spec, limit, levels)
    if spec.kind == "rate":
        return _judge_rate_budget(result, spec, limit, levels)
    return _judge_batches(result, spec, limit, levels)


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


def _judge_percentile(
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


def _judge_rate_budget(
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


def _judge_batches(result: BurstResult, spec: BudgetSpec, limit: float, levels: Levels) -> Verdict:
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


def _judge_literal(result: BurstResult, spec: BudgetSpec, limit: float) -> Verdict:
    """``max``, ``cold_start_max``, counts, and rates of 0% or 100%: the numbers as they are."""
    note = ""
    if spec.kind == "max":
        view = result.view(spec.view)
        n = view.count
        if n == 0:
            # Zero cold starts cannot break a cold-start maximum; a run without a single
            # latency sample cannot pass a latency budget.
            passed = spec.view == "cold"
            note = "no cold starts observed" if passed else "no samples to judge"
            return Verdict(spec.name, limit, None, 0, PASS if passed else FAIL, note,
                           method="literal")  # fmt: skip
        measured = view.max
        if view.overflows:
            note = f"{view.overflows} samples exceeded the histogram range (over {view.range_s}s)"
            measured = math.inf
    elif spec.kind == "count":
        measured, n = float(getattr(result, spec.counter)), result.count
    else:
        n = result.count
        measured = getattr(result, spec.counter) / n if n else math.nan
    within = measured <= limit if spec.upper else measured >= limit
    return Verdict(spec.name, limit, measured, n, PASS if within else FAIL, note, method="literal")


# -- one budget, point estimate (lambda_slo_verdict = point) -----------------------------------


def _point(result: BurstResult, spec: BudgetSpec, limit: float) -> Verdict:
    """The point-estimate judgement: measured against the limit, no bounds."""
    problem = _unmeasurable(result, spec)
    if problem is not None:
        return Verdict(spec.name, limit, None, 0, FAIL, problem, method="point")
    if spec.kind in ("max", "count") or (spec.kind == "rate" and not 0.0 < limit < 1.0):
        return dataclasses.replace(_judge_literal(result, spec, limit), method="point")
    note = ""
    if spec.kind in ("percentile", "mean"):
        view = result.view(spec.view)
        n = view.count
        if n == 0:
            passed = spec.view == "cold" and result.count > 0
            note = "no cold starts observed" if passed else "no samples to judge"
            return Verdict(spec.name, limit, None, 0, PASS if passed else FAIL, note,
                           method="point")  # fmt: skip
        measured = view.mean if spec.kind == "mean" else view.percentile(spec.q)
        if view.overflows:
            note = f"{view.overflows} samples exceeded the histogram range (over {view.range_s}s)"
            measured = math.inf
    elif spec.kind == "rate":
        n = result.count
        measured = getattr(result, spec.counter) / n if n else math.nan
    else:
        measured, n = result.rps, result.count
    within = measured <= limit if spec.upper else measured >= limit
    return Verdict(spec.name, limit, measured, n, PASS if within else FAIL, note, method="point")


# -- firing until decided: the sequential judgement -------------------------------------------


@dataclass
class SequentialState:
    """What :func:`judge_sequential` keeps between waves of one run.

    ``n_max``: the most requests the run may fire; at it an undecided budget is judged by
    Clopper-Pearson at half its levels (the other half was spent on the e-processes).
    """

    n_max: int
    policy: VerdictPolicy = field(default_factory=VerdictPolicy)
    tests: dict[str, SequentialTest] = field(default_factory=dict)
    done: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SequentialStep:
    """After one wave: each budget's step ("pass", "fail", "continue", "inconclusive")."""

    steps: dict[str, Step]
    done: bool
    reason: str


def judge_sequential(
    result: BurstResult, budgets: Mapping[str, float], state: SequentialState
) -> SequentialStep:
    """Consult the anytime-valid test on the run so far; say whether to keep firing.

    Call after every wave with the cumulative result: percentile and rate budgets feed
    their counts (design effect included) to one :class:`SequentialTest` each, at the
    split levels; a literal budget already broken is a certain FAIL; ``mean``/``min_rps``
    and literal budgets not yet broken are judged when the run ends. The run is done when
    any budget FAILS (a broken deploy need not be measured further), when every budget
    that can be decided early is, or at ``n_max``.
    """
    entries = _entries(result, [(name, limit, "check") for name, limit in budgets.items()])
    levels = split_levels(split_of(entries), state.policy.pass_confidence,
                          state.policy.fail_confidence)  # fmt: skip
    steps: dict[str, Step] = {}
    for name, limit, _ in entries:
        spec = BUDGETS[name]
        if _literal(spec, limit) or spec.kind in ("mean", "rps"):
            literal = _judge_literal(result, spec, limit) if _literal(spec, limit) else None
            steps[name] = FAIL if literal is not None and literal.failed else "continue"
            continue
        counts = share_counts(result, spec, limit)
        test = state.tests.get(name)
        if test is None:
            test = state.tests[name] = SequentialTest(
                counts.tail, pass_confidence=levels.pass_confidence,
                fail_confidence=levels.fail_confidence, n_max=state.n_max,
            )  # fmt: skip
        steps[name] = test.update(counts.n, counts.m_fail, counts.m_pass, counts.design_effect)
    failed = [name for name, step in steps.items() if step == FAIL]
    sequential = [name for name in steps if name in state.tests]
    if failed:
        state.done, state.reason = True, f"{', '.join(failed)} certainly broken"
    elif sequential and all(steps[name] != "continue" for name in sequential):
        state.done, state.reason = True, "every budget decided"
    elif result.count >= state.n_max:
        state.done, state.reason = True, f"reached the maximum of {state.n_max:,} requests"
    return SequentialStep(steps, state.done, state.reason)
