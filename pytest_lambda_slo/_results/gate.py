"""What verdicts do to a test: SLOViolation, SLOInconclusive, or a warning, with the message.

A failed budget fails the test (SLOViolation). With no failure, an inconclusive one fails
it too under ``lambda_slo_inconclusive = fail`` (SLOInconclusive: the gate stays closed
while the data cannot tell) or lets it pass with an SLOInconclusiveWarning under ``warn``.
The message names every failed and inconclusive budget with its figures, then what the
requests came to.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SLOInconclusive, SLOInconclusiveWarning, SLOViolation
from .verdict import Verdict, VerdictPolicy

if TYPE_CHECKING:
    from .result import BurstResult


def _breakdown(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


def outcome_line(result: BurstResult) -> str:
    """One line that says what the requests came to, so a failure names kinds and counts."""
    parts = [f"{result.count} requests: {result.ok} ok"]
    throttled = f"{result.throttles} throttled"
    if result.throttle_reasons:
        throttled += f" ({_breakdown(result.throttle_reasons)})"
    parts.append(throttled)
    errors = f"{result.errors} errors"
    if result.error_kinds:
        errors += f" ({_breakdown(result.error_kinds)})"
    parts.append(errors)
    if result.unsent:
        parts.append(f"{result.unsent} not sent")
    return ", ".join(parts)


@dataclass(frozen=True)
class Gate:
    """The verdicts of one result that keep a test from passing, and their message."""

    failed: tuple[Verdict, ...]
    inconclusive: tuple[Verdict, ...]
    message: str


def gate(verdicts: Sequence[Verdict], result: BurstResult) -> Gate | None:
    """The failed and inconclusive verdicts of one judgement, or None when all passed."""
    failed = tuple(v for v in verdicts if v.failed)
    unsure = tuple(v for v in verdicts if v.inconclusive)
    if not failed and not unsure:
        return None
    lines = []
    if failed:
        lines.append(f"{len(failed)} SLO budget(s) broken for {result.target}:")
        lines += [f"  {v.describe()}" for v in failed]
    if unsure:
        lines.append(
            f"{len(unsure)} SLO budget(s) inconclusive for {result.target} (the data can "
            "show neither that the budget is met nor that it is broken):"
        )
        lines += [f"  {v.describe()}" for v in unsure]
    lines.append(f"  ({outcome_line(result)})")
    return Gate(failed, unsure, "\n".join(lines))


def settle(gates: Sequence[Gate], policy: VerdictPolicy, *, stacklevel: int = 2) -> None:
    """Raise SLOViolation / SLOInconclusive, or warn, for the gates of one test."""
    __tracebackhide__ = True  # the failure is the test's line, not the plugin's
    if not gates:
        return
    message = "\n".join(g.message for g in gates)
    failed = [v for g in gates for v in g.failed]
    unsure = [v for g in gates for v in g.inconclusive]
    if failed:
        raise SLOViolation(message, failed)
    if policy.inconclusive == "fail":
        raise SLOInconclusive(
            message + "\n(lambda_slo_inconclusive = warn lets an inconclusive test pass)", unsure
        )
    warnings.warn(SLOInconclusiveWarning(message), stacklevel=stacklevel + 1)


def raise_for(verdicts: Sequence[Verdict], result: BurstResult) -> None:
    """``result.check()``'s ending: settle one judgement by the result's policy."""
    __tracebackhide__ = True
    found = gate(verdicts, result)
    settle([found] if found else [], result.verdict_policy, stacklevel=3)
