"""The confidence levels of a verdict and their split across the budgets of one test.

A test with K budgets FAILS when any one of them FAILS, so each budget's false-FAIL level
is divided by K (Bonferroni): the chance that a good deploy fails stays at most the
configured level however many budgets it has. The PASS level is not split: a test PASSES
only when every budget passes, so a false PASS of the test needs a false PASS of each
broken budget, which is already at most the per-budget level.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_PASS_CONFIDENCE = 0.95
DEFAULT_FAIL_CONFIDENCE = 0.99


def check_confidence(value: float, name: str = "confidence") -> float:
    """``value`` as a float in (0, 1), or a ConfigError naming it and the accepted form."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = float("nan")
    if not 0.0 < level < 1.0:
        raise ConfigError(
            f"{name} must be a number between 0 and 1 exclusive, such as 0.95; got {value!r}"
        )
    return level


@dataclass(frozen=True)
class Levels:
    """One budget's error levels: ``pass_alpha`` = 1 - pass confidence, same for fail."""

    pass_alpha: float
    fail_alpha: float

    @property
    def pass_confidence(self) -> float:
        return 1.0 - self.pass_alpha

    @property
    def fail_confidence(self) -> float:
        return 1.0 - self.fail_alpha


def split_levels(
    budgets: int,
    pass_confidence: float = DEFAULT_PASS_CONFIDENCE,
    fail_confidence: float = DEFAULT_FAIL_CONFIDENCE,
) -> Levels:
    """Per-budget levels for a test judged on ``budgets`` budgets (Bonferroni on FAIL only)."""
    if isinstance(budgets, bool) or not isinstance(budgets, int) or budgets < 1:
        raise ConfigError(f"the number of budgets must be a whole number >= 1; got {budgets!r}")
    pass_level = check_confidence(pass_confidence, "pass confidence")
    fail_level = check_confidence(fail_confidence, "fail confidence")
    return Levels(pass_alpha=1.0 - pass_level, fail_alpha=(1.0 - fail_level) / budgets)
