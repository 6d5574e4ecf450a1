"""Firing until decided: the judgement a burst consults after every wave.

Checking fixed-n bounds after every wave and stopping at the first verdict makes false
verdicts far likelier; :func:`judge_sequential` feeds each percentile and rate budget's
counts to an anytime-valid test instead (:class:`.._stats.sequential.SequentialTest`), at
the same split levels as the fixed-n judgement, and says when to stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._stats.binomial import FAIL
from .._stats.levels import split_levels
from .._stats.sequential import SequentialTest, Step
from .budgets import BUDGETS
from .shares import share_counts
from .verdict import VerdictPolicy
from .verdicts import entries_to_judge, is_literal, judge_literal, split_of

if TYPE_CHECKING:
    from .result import BurstResult


@dataclass
class SequentialState:
    """What :func:`judge_sequential` keeps between waves of one run.

    ``n_max``: the most requests the run may fire; at it an undecided budget is judged by
    Clopper-Pearson at the share of its levels the e-processes left (``FINAL_SHARE``).
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
    entries = entries_to_judge(result, [(name, limit, "check") for name, limit in budgets.items()])
    levels = split_levels(split_of(entries), state.policy.pass_confidence,
                          state.policy.fail_confidence)  # fmt: skip
    steps: dict[str, Step] = {}
    for name, limit, _ in entries:
        spec = BUDGETS[name]
        if is_literal(spec, limit) or spec.kind in ("mean", "rps"):
            literal = judge_literal(result, spec, limit) if is_literal(spec, limit) else None
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
