"""The sentences an inconclusive verdict prints: how many requests would decide it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .binomial import RateJudgement


def percent(confidence: float) -> str:
    """0.95 -> "95%", 0.995 -> "99.5%"."""
    return f"{confidence * 100:.4g}%"


def about(n: int) -> str:
    """A rough count for "about ...": two significant figures with thousands separators."""
    if n < 100:
        return f"{n:,}"
    digits = len(str(n)) - 2
    return f"{round(n, -digits):,}"


def needed_sentence(
    label: str,
    *,
    n_min: int | None,
    pass_confidence: float,
    decide_n: int | None = None,
    decide_what: str = "",
    noun: str = "requests",
) -> str:
    """ "p99 needs at least 299 requests to pass at 95%; about 3,700 to decide <decide_what>"."""
    if n_min is None:
        head = f"{label} can never pass at {percent(pass_confidence)} (its limit is 0)"
    else:
        head = f"{label} needs at least {n_min:,} {noun} to pass at {percent(pass_confidence)}"
    if decide_n is None:
        return head
    return f"{head}; about {about(decide_n)} to decide {decide_what}".rstrip()


def observed_sentence(label: str, judgement: RateJudgement) -> str:
    """The inconclusive sentence of a rate judgement, with its observed-share estimate."""
    share = judgement.estimate
    needed = judgement.needed_n
    if share is None or needed is None or needed == judgement.n_min:
        needed = None  # nothing beyond the minimum to say
    return needed_sentence(
        label,
        n_min=judgement.n_min,
        pass_confidence=judgement.pass_confidence,
        decide_n=needed,
        decide_what=f"if the observed {share * 100:.3g}% held" if share is not None else "",
    )
