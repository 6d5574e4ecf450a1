"""Budgets judged again on stored results (``lambda-slo report --budgets``).

One place, so the judging rule can change (to confidence verdicts) without touching the
command line: every run is judged with the same rule as ``result.check()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._results.budgets import BUDGET_NAMES, parse_budgets
from .._results.result import BurstResult
from .._results.verdict import Verdict, VerdictPolicy
from .._results.verdicts import evaluate
from ..errors import ConfigError

SOURCE = "cli"
BUDGET_LIST_FORMS = "NAME=LIMIT[,NAME=LIMIT...], e.g. p99=800ms,error_rate=1%"


def parse_budget_list(text: str, *, name: str = "budgets") -> dict[str, float]:
    """``p99=800ms,error_rate=1%`` -> parsed budgets; a one-line error names a bad entry."""
    pairs: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"{name}={text!r}: {entry!r} is not valid; use {BUDGET_LIST_FORMS} "
                f"(budgets: {', '.join(BUDGET_NAMES)})"
            )
        pairs[key.strip()] = value.strip()
    return parse_budgets(pairs)


def rejudge(
    results: Sequence[tuple[str, BurstResult]],
    budgets: dict[str, float],
    policy: VerdictPolicy | None = None,
) -> list[list[Verdict]]:
    """Judge ``budgets`` on every run; return every run's verdicts (stored ones included)."""
    out = []
    for _test_id, result in results:
        if budgets:
            result.verdicts.extend(evaluate(result, budgets, SOURCE, policy))
        out.append(list(result.verdicts))
    return out
