"""Budgets judged against a result with stated confidence: pass, fail or inconclusive.

- Percentile and rate budgets: exact binomial bounds on a share (:mod:`.shares`).
- ``mean`` and ``min_rps``: t-intervals over per-second batches (:mod:`.batches`).
- ``max``, ``cold_start_max`` and ``throttle_count``, and a rate budget of 0% or 100%, are
  literal: one request over the budget breaks it, nothing is estimated (here).

FAIL needs the fail confidence that the budget is broken, split (Bonferroni) over the
budgets judged together on one result; PASS needs the pass confidence that it is met.
A run of zero requests passes no budget. ``VerdictPolicy.method == "point"`` judges point
estimates instead, and says so in every verdict. The fixed-n judgement is
:func:`judge_all`; :mod:`.sequential` holds the one a burst that fires until decided calls
after every wave. On such a run (its ``run["sequential"]`` record) a budget the sequential
test judged keeps that test's state: see :func:`judge_decided`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._stats.binomial import FAIL, INCONCLUSIVE, PASS
from .._stats.levels import Levels, split_levels
from .._stats.sequential import FINAL_SHARE
from .batches import judge_batches
from .budgets import BUDGETS, OFF, THROTTLE_BUDGETS, BudgetSpec
from .shares import judge_percentile, judge_rate_budget
from .verdict import Verdict, VerdictPolicy

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


def entries_to_judge(result: BurstResult, entries: Sequence[Entry]) -> list[Entry]:
    """The entries to judge: budgets switched off dropped, the implied one added."""
    kept = [e for e in entries if not (e[0] in THROTTLE_BUDGETS and e[1] == OFF)]
    if implied_throttle_budget(result, [name for name, _, _ in entries]):
        assert result.default_throttle_rate is not None
        kept.append(("throttle_rate", result.default_throttle_rate, "default"))
    return kept


def is_literal(spec: BudgetSpec, limit: float) -> bool:
    """A budget judged on its numbers as they are (a rate of 0% or 100% included)."""
    return spec.literal or (spec.kind == "rate" and not 0.0 < limit < 1.0)


def split_of(entries: Sequence[Entry]) -> int:
    """How many of the entries share the false-FAIL level (the literal ones have none)."""
    return max(1, sum(1 for name, limit, _ in entries if not is_literal(BUDGETS[name], limit)))


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
    entries = entries_to_judge(result, entries)
    split = split_of(entries)
    levels = split_levels(split, policy.pass_confidence, policy.fail_confidence)
    decided = sequential_steps(result)
    verdicts = []
    for name, limit, source in entries:
        step = decided.get((name, limit))
        if policy.method == "point":
            verdict = _point(result, BUDGETS[name], limit)
        elif step is not None and not is_literal(BUDGETS[name], limit):
            verdict = judge_decided(result, BUDGETS[name], limit, step, result.run["sequential"])
        else:
            verdict = _judge(result, BUDGETS[name], limit, levels)
            verdict = dataclasses.replace(verdict, split=split)
        verdict = _finish(result, verdict, source)
        verdicts.append(verdict)
    return verdicts


# -- a run fired until decided ---------------------------------------------------------------


def sequential_steps(result: BurstResult) -> dict[tuple[str, float], dict[str, Any]]:
    """(budget, limit) -> its entry in the run's sequential record, if the run was auto.

    The record is about the data the run stopped on: a result with other data (shards
    merged, say) has another count and is judged as any fixed-n run.
    """
    record = result.run.get("sequential")
    if not record or record.get("requests") != result.count:
        return {}
    if record.get("pass_confidence") is None:
        return {}
    return {(entry["budget"], float(entry["limit"])): entry for entry in record["budgets"]}


def judge_decided(
    result: BurstResult,
    spec: BudgetSpec,
    limit: float,
    entry: Mapping[str, Any],
    record: Mapping[str, Any],
) -> Verdict:
    """A budget the sequential test judged: its state, and the bounds of the step that
    decided it.

    The anytime-valid test spent (1 - FINAL_SHARE) of each error level; what it left
    undecided at the end is judged by the Clopper-Pearson bounds at the rest. A budget the
    test decided shows the bounds at the test's share of the levels (they clear the limit
    whenever the test crossed: the mixture's threshold is the harder of the two); one judged
    at the end shows the final bounds, which decide it. Undecided when a certainly broken
    budget stopped the run early: inconclusive.
    """
    step, at = entry["step"], entry.get("decided_at")
    share = 1.0 - FINAL_SHARE if step in (PASS, FAIL) else FINAL_SHARE
    levels = Levels(share * (1.0 - record["pass_confidence"]),
                    share * (1.0 - record["fail_confidence"]))  # fmt: skip
    verdict = dataclasses.replace(
        _judge(result, spec, limit, levels), split=int(record.get("split", 1))
    )
    if verdict.method != "confidence":
        return verdict  # it could not be measured at all
    final = f"judged by the final bounds at {FINAL_SHARE:.0%} of the levels"
    if step in (PASS, FAIL):
        state, note = step, f"decided by the sequential test after {at:,} requests"
    elif step == INCONCLUSIVE:  # the test's own fallback at the maximum
        state, note = INCONCLUSIVE, final
    elif record.get("stopped") == "certain_fail":
        state, note = INCONCLUSIVE, "undecided by the sequential test when the run stopped"
    else:  # stopped short of the maximum by a cap or the deadline: the same fallback
        state, note = verdict.state, final
    if state != INCONCLUSIVE:
        verdict = dataclasses.replace(verdict, needed_n=None, advice="")
    notes = "; ".join(filter(None, [verdict.note, f"fired until decided: {note}"]))
    return dataclasses.replace(verdict, state=state, note=notes)


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
    if spec.view == "ttfb" and result.view("ttfb").count == 0:
        return (
            "no time to first byte was recorded: no request succeeded"
            if result.ok == 0
            else "these results carry no time to first byte (written by an older version)"
        )
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
    if is_literal(spec, limit):
        return judge_literal(result, spec, limit)
    if spec.kind == "percentile":
        return judge_percentile(result, spec, limit, levels)
    if spec.kind == "rate":
        return judge_rate_budget(result, spec, limit, levels)
    return judge_batches(result, spec, limit, levels)


def judge_literal(result: BurstResult, spec: BudgetSpec, limit: float) -> Verdict:
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
        return dataclasses.replace(judge_literal(result, spec, limit), method="point")
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
