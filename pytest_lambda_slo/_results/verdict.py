"""One budget's verdict as a value: its state, bounds and confidence, its text and its JSON.

A verdict is ``pass``, ``fail`` or ``inconclusive``. Confidence verdicts carry a lower and
an upper bound (for a ``<=`` budget the upper one at the pass confidence, the lower one at
the fail confidence; the other way round for ``min_rps``); literal verdicts (``max``,
counts) and point-estimate ones (``lambda_slo_verdict = point``) carry none and say so.
:meth:`Verdict.to_dict` and :meth:`Verdict.from_dict` are the one place of serialisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._stats.levels import DEFAULT_FAIL_CONFIDENCE, DEFAULT_PASS_CONFIDENCE, check_confidence
from .._stats.states import FAIL, INCONCLUSIVE, PASS, State
from .._stats.wording import percent
from ..errors import ConfigError
from .budgets import BUDGETS, format_value, from_json_value, json_value

Method = Literal["confidence", "literal", "point"]
STATES: tuple[State, ...] = (PASS, FAIL, INCONCLUSIVE)
INCONCLUSIVE_POLICIES = ("fail", "warn")
VERDICT_METHODS = ("confidence", "point")


@dataclass(frozen=True)
class VerdictPolicy:
    """How budgets are judged (ini keys ``lambda_slo_pass_confidence`` and friends).

    ``fail_confidence`` is the whole test's: it is split over the budgets judged together.
    ``inconclusive`` says what an inconclusive verdict does to a test (fail or warn);
    ``method`` "point" judges point estimates, as versions before confidence verdicts did.
    """

    pass_confidence: float = DEFAULT_PASS_CONFIDENCE
    fail_confidence: float = DEFAULT_FAIL_CONFIDENCE
    inconclusive: str = "fail"
    method: str = "confidence"


def parse_policy(
    pass_confidence: object = DEFAULT_PASS_CONFIDENCE,
    fail_confidence: object = DEFAULT_FAIL_CONFIDENCE,
    inconclusive: object = "fail",
    method: object = "confidence",
    *,
    prefix: str = "lambda_slo_",
) -> VerdictPolicy:
    """Check the four settings; a ConfigError names the bad one (``prefix`` + its key)."""
    levels = {}
    for key, value in (("pass_confidence", pass_confidence), ("fail_confidence", fail_confidence)):
        levels[key] = check_confidence(value, f"{prefix}{key}")  # type: ignore[arg-type]
    words = {}
    for key, value, allowed in (("inconclusive", inconclusive, INCONCLUSIVE_POLICIES),
                                ("verdict", method, VERDICT_METHODS)):  # fmt: skip
        word = str(value).strip().lower()
        if word not in allowed:
            raise ConfigError(
                f"{prefix}{key}={value!r} is not valid; use {' or '.join(map(repr, allowed))}"
            )
        words[key] = word
    return VerdictPolicy(
        levels["pass_confidence"], levels["fail_confidence"], words["inconclusive"],
        words["verdict"],
    )  # fmt: skip


@dataclass(frozen=True)
class ShareBounds:
    """A percentile budget seen as a rate: the share of requests slower than the budget."""

    measured: float | None
    lower: float
    upper: float
    limit: float


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget against one result.

    ``lower``/``upper`` None: no bound on that side (too few samples to have one).
    ``samples`` is n: the requests (or cold starts, or batches' requests) judged. For a
    confidence verdict ``pass_confidence`` is the level of the bound that must clear the
    budget to PASS, ``fail_confidence`` that of the one for FAIL (already split over the
    ``split`` budgets judged together). ``needed_n`` (inconclusive only) is how many requests
    would decide it, ``n_min`` the fewest with which PASS is possible at all. ``advice`` is
    the sentence that says so; ``share`` the exceedance share of a percentile budget.
    """

    budget: str
    limit: float
    measured: float | None
    samples: int
    state: State
    note: str = ""
    source: str = "check"  # "check" (result.check), "marker", "ini", "default" (implied), "cli"
    method: Method = "confidence"
    lower: float | None = None
    upper: float | None = None
    pass_confidence: float | None = None
    fail_confidence: float | None = None
    split: int = 1
    needed_n: int | None = None
    n_min: int | None = None
    design_effect: float = 1.0
    advice: str = ""
    share: ShareBounds | None = None

    @property
    def passed(self) -> bool:
        return self.state == PASS

    @property
    def failed(self) -> bool:
        return self.state == FAIL

    @property
    def inconclusive(self) -> bool:
        return self.state == INCONCLUSIVE

    @property
    def confidence(self) -> float | None:
        """The level behind the state: the pass confidence for PASS (and for INCONCLUSIVE,
        which its ``needed_n`` is about), the split fail confidence for FAIL."""
        return self.fail_confidence if self.state == FAIL else self.pass_confidence

    @property
    def mark(self) -> str:
        """PASS / FAIL / INCONCLUSIVE."""
        return self.state.upper()

    def describe(self) -> str:
        """The verdict in one line (no PASS/FAIL mark): figures, bounds, n, advice, notes."""
        spec = BUDGETS[self.budget]
        unit = spec.unit

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else format_value(unit, value)

        limit = format_value(unit, self.limit)
        measured = fmt(self.measured)
        n = f"n={self.samples}"
        if self.method != "confidence":
            within = self.measured is not None and (
                self.measured <= self.limit if spec.upper else self.measured >= self.limit
            )
            # The relation states the numbers; a verdict refused for another reason (a
            # saturated generator) keeps "<=" and says why in its note.
            relation = (
                ("<=" if spec.upper else ">=")
                if within or self.passed
                else (">" if spec.upper else "<")
            )
            label = {"literal": "literal", "point": "point estimate"}.get(self.method, "")
            tail = f"{n}, {label}" if label else n
            text = f"{self.budget}: measured {measured} {relation} budget {limit} ({tail})"
        else:
            pass_level = percent(self.pass_confidence or 0.0)
            fail_level = percent(self.fail_confidence or 0.0)
            if spec.upper:
                levels = f"lower at {fail_level}, upper at {pass_level}"
            else:
                levels = f"lower at {pass_level}, upper at {fail_level}"
            # Where the bounds lie says the numbers; a verdict refused for another reason
            # (a saturated generator) keeps "within" and says why in its note.
            pass_bound, fail_bound = (self.upper, self.lower) if spec.upper else (
                self.lower, self.upper
            )  # fmt: skip
            if pass_bound is not None and (
                pass_bound <= self.limit if spec.upper else pass_bound >= self.limit
            ):
                where = "within"
            elif fail_bound is not None and (
                fail_bound > self.limit if spec.upper else fail_bound < self.limit
            ):
                where = "over" if spec.upper else "under"
            else:
                where = "straddle"
            lower = "none" if self.lower is None else fmt(self.lower)
            upper = "none" if self.upper is None else fmt(self.upper)
            text = (
                f"{self.budget}: measured {measured}, bounds [{lower}, {upper}] {where} "
                f"budget {limit} ({n}; {levels})"
            )
        extras = [self.advice, self.note]
        if self.design_effect > 1.0:
            extras.append(
                f"clustered in time: counted as {self.samples / self.design_effect:,.0f} "
                f"independent requests (design effect {self.design_effect:.3g})"
            )
        return "; ".join([text, *filter(None, extras)])

    def to_dict(self) -> dict[str, Any]:
        unit = BUDGETS[self.budget].unit

        def value(number: float | None) -> float | None:
            # JSON has no infinity: an unbounded side (or a value past the histogram) is null.
            return None if number is None or math.isinf(number) else json_value(unit, number)

        return {
            "budget": self.budget,
            "state": self.state,
            "unit": "ms" if unit == "duration" else unit,
            "limit": json_value(unit, self.limit),
            "measured": value(self.measured),
            "lower": value(self.lower),
            "upper": value(self.upper),
            "confidence": self.confidence,
            "pass_confidence": self.pass_confidence,
            "fail_confidence": self.fail_confidence,
            "n": self.samples,
            "needed_n": self.needed_n,
            "n_min": self.n_min,
            "method": self.method,
            "split": self.split,
            "design_effect": self.design_effect,
            "share": None
            if self.share is None
            else {
                "measured": self.share.measured,
                "lower": self.share.lower,
                "upper": self.share.upper,
                "limit": self.share.limit,
            },
            "advice": self.advice,
            "note": self.note,
            "source": self.source,
            # Kept for readers of the first JSON format: True only for a PASS.
            "passed": self.passed,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Read :meth:`to_dict` output back; an entry of the first format (no ``state``,
        only ``passed``) reads as a point-estimate PASS or FAIL."""
        unit = str(data.get("unit", ""))

        def value(key: str) -> float | None:
            number = data.get(key)
            return None if number is None else from_json_value(unit, float(number))

        state = data.get("state")
        if state not in STATES:
            state = PASS if data.get("passed") else FAIL
        share = data.get("share")
        method: Method = data.get("method") or ("confidence" if "state" in data else "point")
        if method not in ("confidence", "literal", "point"):
            method = "point"
        return cls(
            budget=str(data["budget"]),
            limit=from_json_value(unit, float(data["limit"])),
            measured=value("measured"),
            samples=int(data.get("n", data.get("samples", 0))),
            state=state,
            note=str(data.get("note", "")),
            source=str(data.get("source", "check")),
            method=method,
            lower=value("lower"),
            upper=value("upper"),
            pass_confidence=data.get("pass_confidence"),
            fail_confidence=data.get("fail_confidence"),
            split=int(data.get("split", 1)),
            needed_n=data.get("needed_n"),
            n_min=data.get("n_min"),
            design_effect=float(data.get("design_effect", 1.0)),
            advice=str(data.get("advice", "")),
            share=None
            if not share
            else ShareBounds(share["measured"], share["lower"], share["upper"], share["limit"]),
        )


def policy_of(verdicts: Sequence[Verdict]) -> VerdictPolicy:
    """The policy stored verdicts were judged with (their levels, method), to judge again.

    The whole-test fail confidence is recovered from a verdict's split one; verdicts of
    the first JSON format (no levels) give the defaults, point-estimate ones "point".
    """
    for verdict in verdicts:
        if verdict.method == "confidence" and verdict.pass_confidence is not None:
            fail = verdict.fail_confidence or DEFAULT_FAIL_CONFIDENCE
            whole = 1.0 - (1.0 - fail) * max(1, verdict.split)
            return VerdictPolicy(verdict.pass_confidence, round(whole, 12))
    if verdicts and all(v.method == "point" for v in verdicts):
        return VerdictPolicy(method="point")
    return VerdictPolicy()
