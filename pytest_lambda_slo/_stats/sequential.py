"""An anytime-valid test that a burst can consult after every wave without inflating errors.

Checking a fixed-n confidence bound after every wave and stopping at the first verdict
makes false verdicts far likelier (peeking). This test instead watches two mixture
e-processes over likelihood ratios for the exceedance share, with tb the limit:

    E_n = mean over r in grid of  r^m * ((1 - r*tb) / (1 - tb))^(n - m)

one with r > 1 (alternatives above the limit: the FAIL side), one with r < 1 (the PASS
side). Under the side's null (share <= tb for FAIL, >= tb for PASS) each term is a
nonnegative supermartingale, so by Ville's inequality E_n ever reaching 1/((1-f) a) has
probability at most (1-f) a, whenever and however often it is looked at. At ``n_max``
without a crossing, the Clopper-Pearson bounds at f a decide, or the answer is
inconclusive; each side's error is then at most (1-f) a + f a = a. f is ``FINAL_SHARE``:
a small share, because nearly every run that the final bounds could decide has crossed a
threshold before the maximum, and each unit of level left to the e-processes lowers their
threshold (measured on the emulator, docs/verdicts.md: a tenth instead of half saves about
a tenth of the requests of an auto run).

Counts: the FAIL side uses the surely-over count (``m_lo`` of a percentile), the PASS side
the maybe-over one (``m_hi``); a term's ratio grows with m for r > 1 and shrinks for r < 1,
so each side sees the count least favourable to its own verdict.

Clustered exceedances: with a design effect d > 1 (see :mod:`.clustering`) the counts
enter as ``n/d`` and ``m/d``, i.e. each term is tempered to ``LR_r ** (1/d)``. The
iid supermartingale property does not hold under clustering, so this is the quasi-likelihood
correction (the log ratio's variance scaled back to the binomial one), approximate rather
than exact. It can only make the test more cautious: by the power-mean inequality the
tempered mixture is at most ``E_n ** (1/d)``, which is below E_n whenever E_n >= 1, so it
never crosses a threshold before the untempered one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from .binomial import lower_bound, upper_bound

Step = Literal["pass", "fail", "continue", "inconclusive"]

FINAL_SHARE = 0.1  # of each side's error level, kept for the final bounds at n_max
FAIL_GRID = (1.25, 1.5, 2.0, 3.0, 5.0)
PASS_GRID = (0.3, 0.5, 0.6, 0.7, 0.8)


def log_mixture(n: float, m: float, tb: float, grid: Sequence[float]) -> float:
    """log E_n for ``m`` of ``n`` over the ratios in ``grid`` (log-sum-exp, no overflow)."""
    logs = [m * math.log(r) + (n - m) * (math.log1p(-r * tb) - math.log1p(-tb)) for r in grid]
    top = max(logs)
    return top + math.log(sum(math.exp(value - top) for value in logs) / len(logs))


class SequentialTest:
    """The sequential verdict on ``share <= limit``: feed cumulative counts after each wave.

    ``update(n, m_fail, m_pass)`` returns "fail" or "pass" once a side's e-process crosses
    1/((1 - FINAL_SHARE) a) (a = 1 - that side's confidence), "continue" while neither has
    and n < ``n_max``, and at n >= ``n_max`` the Clopper-Pearson verdict at FINAL_SHARE a
    ("inconclusive" if neither bound clears the limit). A decided test keeps its verdict.
    """

    def __init__(
        self,
        limit: float,
        *,
        pass_confidence: float,
        fail_confidence: float,
        n_max: int,
        fail_grid: Sequence[float] = FAIL_GRID,
        pass_grid: Sequence[float] = PASS_GRID,
    ) -> None:
        if not 0.0 < limit < 1.0:
            raise ValueError(f"a sequential limit must be strictly between 0 and 1; got {limit}")
        if n_max < 1:
            raise ValueError(f"n_max must be at least 1; got {n_max}")
        self.limit = limit
        self.pass_alpha = 1.0 - pass_confidence
        self.fail_alpha = 1.0 - fail_confidence
        self.n_max = n_max
        # An alternative share r*tb must stay below 1; with a large limit (p50, p80) some
        # FAIL ratios do not, and fall back to halfway between the limit and 1.
        fail = tuple(r for r in fail_grid if r * limit < 1.0)
        self.fail_grid = fail or ((1.0 + limit) / (2.0 * limit),)
        self.pass_grid = tuple(pass_grid)
        self._log_fail_threshold = -math.log((1.0 - FINAL_SHARE) * self.fail_alpha)
        self._log_pass_threshold = -math.log((1.0 - FINAL_SHARE) * self.pass_alpha)
        self.state: Step = "continue"
        self.log_e_fail = 0.0
        self.log_e_pass = 0.0
        self.n = 0

    @property
    def e_fail(self) -> float:
        return math.exp(min(self.log_e_fail, 700.0))

    @property
    def e_pass(self) -> float:
        return math.exp(min(self.log_e_pass, 700.0))

    def update(
        self, n: int, m_fail: float, m_pass: float | None = None, design_effect: float = 1.0
    ) -> Step:
        """Take the cumulative ``n`` and exceedance counts; return the step to take."""
        if self.state != "continue":
            return self.state
        if m_pass is None:
            m_pass = m_fail
        if n < self.n or m_fail < 0 or m_pass < m_fail or m_pass > n:
            raise ValueError(
                f"counts must be cumulative with 0 <= m_fail <= m_pass <= n; got n={n} "
                f"(last {self.n}), m_fail={m_fail}, m_pass={m_pass}"
            )
        self.n = n
        d = max(1.0, float(design_effect))
        n_eff = n / d
        self.log_e_fail = log_mixture(n_eff, m_fail / d, self.limit, self.fail_grid)
        self.log_e_pass = log_mixture(n_eff, m_pass / d, self.limit, self.pass_grid)
        if self.log_e_fail >= self._log_fail_threshold:
            self.state = "fail"
        elif self.log_e_pass >= self._log_pass_threshold:
            self.state = "pass"
        elif n >= self.n_max:
            lower = lower_bound(m_fail / d, n_eff, 1.0 - FINAL_SHARE * self.fail_alpha)
            upper = upper_bound(m_pass / d, n_eff, 1.0 - FINAL_SHARE * self.pass_alpha)
            if lower > self.limit:
                self.state = "fail"
            elif upper < self.limit:
                self.state = "pass"
            else:
                self.state = "inconclusive"
        return self.state
