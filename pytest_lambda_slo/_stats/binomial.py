"""Exact one-sided (Clopper-Pearson) bounds on a share, and the three-state rate verdict.

A share theta (errors, throttles, cold starts, or requests slower than a percentile's
budget) with limit ``theta <= limit`` PASSES when the upper bound at the pass confidence is
below the limit, FAILS when the lower bound at the fail confidence is above it, and is
INCONCLUSIVE otherwise. The bounds are exact: the beta quantiles that invert the binomial
tail, so nothing about the latency distribution is assumed. Counts may be non-integer
(effective counts after a design-effect correction): the beta quantiles take them as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from .states import FAIL, INCONCLUSIVE, PASS, State

# The search for "n needed" stops here: a share that close to its limit is undecidable
# in practice, and the answer is then None rather than a meaningless huge figure.
_NEEDED_CAP = 10**10


def upper_bound(m: float, n: float, confidence: float) -> float:
    """One-sided upper bound at ``confidence``: ``beta.ppf(c, m+1, n-m)``, 1 at m=n."""
    if n <= 0 or m >= n:
        return 1.0
    return float(stats.beta.ppf(confidence, max(m, 0.0) + 1.0, n - max(m, 0.0)))


def lower_bound(m: float, n: float, confidence: float) -> float:
    """One-sided lower bound at ``confidence``: ``beta.ppf(1-c, m, n-m+1)``, 0 at m=0."""
    if n <= 0 or m <= 0:
        return 0.0
    m = min(m, n)
    return float(stats.beta.ppf(1.0 - confidence, m, n - m + 1.0))


def n_min_to_pass(limit: float, confidence: float) -> int | None:
    """The fewest requests with which ``share <= limit`` can PASS at all (zero exceedances).

    Zero of n gives the upper bound ``1 - a**(1/n)``, below ``limit`` exactly when
    ``n > ln(a) / ln(1 - limit)``. None when no n can pass (limit <= 0).
    """
    if limit <= 0.0:
        return None
    if limit >= 1.0:
        return 1
    n = math.floor(math.log(1.0 - confidence) / math.log1p(-limit)) + 1
    # The float division can land a hair off an integer: settle it on the bound itself.
    while n > 1 and upper_bound(0, n - 1, confidence) < limit:
        n -= 1
    while upper_bound(0, n, confidence) >= limit:
        n += 1
    return n


def _smallest_n(decides: object, start: int) -> int | None:
    """Smallest n >= start with ``decides(n)`` true, assuming it stays true once it is."""
    assert callable(decides)
    if decides(start):
        return start
    low, high = start, max(2 * start, 2)
    while not decides(high):
        low, high = high, high * 2
        if high > _NEEDED_CAP:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        if decides(middle):
            high = middle
        else:
            low = middle
    return high


def n_to_decide_observed(
    share_pass: float,
    share_fail: float,
    limit: float,
    pass_confidence: float,
    fail_confidence: float,
) -> int | None:
    """Requests needed to decide if the observed share stayed what it is (CP computation).

    The smallest N at which the Clopper-Pearson bound with ``share * N`` exceedances of N
    (a non-integer count, as the beta quantile allows) clears the limit: the upper bound at
    the pass confidence with the pass-side share when it is below the limit, else the lower
    bound at the fail confidence with the fail-side share when that is above it. It is a
    median-power estimate (the observed share is taken as the truth); None when the shares
    straddle the limit, no N up to 10**10 decides, or PASS is impossible (limit <= 0) with no
    exceedance seen.
    """
    if share_pass < limit:
        n0 = n_min_to_pass(limit, pass_confidence)
        if n0 is None:
            return None
        return _smallest_n(lambda n: upper_bound(share_pass * n, n, pass_confidence) < limit, n0)
    if share_fail > limit:
        return _smallest_n(lambda n: lower_bound(share_fail * n, n, fail_confidence) > limit, 1)
    return None


@dataclass(frozen=True)
class RateJudgement:
    """The verdict on ``share <= limit`` with its bounds and the figures behind it.

    ``m_fail`` is the count used on the FAIL side (surely over: ``m_lo`` of a percentile),
    ``m_pass`` the one used on the PASS side (maybe over: ``m_hi``); for a plain rate both are
    the same count. ``n`` and the ``m`` are the raw counts; the bounds use ``n / d`` and
    ``m / d`` when the design effect ``d`` is above 1. ``n_min`` is the fewest requests with
    which PASS is possible at all (None: never), ``needed_n`` (inconclusive only) the
    requests needed to decide if the observed share held (see :func:`n_to_decide_observed`),
    scaled back to real requests by ``d``.
    """

    state: State
    estimate: float | None
    lower: float
    upper: float
    limit: float
    n: int
    m_fail: float
    m_pass: float
    pass_confidence: float
    fail_confidence: float
    design_effect: float = 1.0
    n_min: int | None = None
    needed_n: int | None = None

    @property
    def decided(self) -> bool:
        return self.state != INCONCLUSIVE


def judge_rate(
    n: int,
    m_fail: float,
    m_pass: float | None = None,
    *,
    limit: float,
    pass_confidence: float,
    fail_confidence: float,
    design_effect: float = 1.0,
) -> RateJudgement:
    """Judge ``share <= limit`` from ``m`` of ``n`` (``m_fail``/``m_pass``: see RateJudgement).

    ``design_effect`` above 1 (clustered exceedances) shrinks the sample to ``n/d``, ``m/d``
    before the bounds are taken, widening them. Zero requests are always INCONCLUSIVE.
    """
    if m_pass is None:
        m_pass = m_fail
    if n < 0 or m_fail < 0 or m_pass < m_fail or m_pass > n:
        raise ValueError(f"need 0 <= m_fail <= m_pass <= n; got n={n}, {m_fail}, {m_pass}")
    d = max(1.0, float(design_effect))
    n_eff, lo_eff, hi_eff = n / d, m_fail / d, m_pass / d
    upper = upper_bound(hi_eff, n_eff, pass_confidence)
    lower = lower_bound(lo_eff, n_eff, fail_confidence)
    if lower > limit:
        state: State = FAIL
    elif upper < limit:
        state = PASS
    else:
        state = INCONCLUSIVE
    n_min = n_min_to_pass(limit, pass_confidence)
    needed: int | None = None
    if state == INCONCLUSIVE and n > 0:
        effective = n_to_decide_observed(
            m_pass / n, m_fail / n, limit, pass_confidence, fail_confidence
        )
        if effective is not None:
            needed = math.ceil(effective * d)
    elif state == INCONCLUSIVE and n_min is not None:
        needed = math.ceil(n_min * d)
    return RateJudgement(
        state=state,
        estimate=(m_fail + m_pass) / 2 / n if n else None,
        lower=lower,
        upper=upper,
        limit=limit,
        n=n,
        m_fail=m_fail,
        m_pass=m_pass,
        pass_confidence=pass_confidence,
        fail_confidence=fail_confidence,
        design_effect=d,
        n_min=n_min,
        needed_n=needed,
    )


def percentile_decide_n(
    q: float,
    *,
    side: Literal["pass", "fail"],
    confidence: float,
    distance: float = 0.1,
    sigma: float = 0.5,
    power: float = 0.9,
    n_limit: int = 1 << 20,
) -> int | None:
    """Requests to decide a p_q ``distance`` from its budget ``power`` of the time.

    The method sheet's rule, computed exactly rather than approximated: latency lognormal
    with shape ``sigma``; on the pass side the true p_q is ``(1 - distance) * budget``, on the
    fail side ``(1 + distance) * budget``. The exceedance share theta = P(latency > budget)
    follows from the normal quantiles. The one-sided Clopper-Pearson test at ``confidence``
    decides with probability P(M <= c) (pass) or P(M >= c) (fail), M ~ Binomial(n, theta),
    c its critical count (the CP bound inverted: upper(m, n) < tail exactly when
    P(Bin(n, tail) <= m) < 1 - confidence). That power is a sawtooth in n, so the answer is
    the smallest n from which it stays >= ``power`` (checked up to twice the last dip).
    For p99 at 95% this gives 3,719 (pass side) and 2,949 (fail side), the sheet's 3,700 and
    2,950. None when no n up to ``n_limit`` does.
    """
    tail = 1.0 - q / 100.0
    z_q = float(stats.norm.ppf(q / 100.0))
    factor = 1.0 - distance if side == PASS else 1.0 + distance
    theta = float(stats.norm.sf(z_q - math.log(factor) / sigma))
    alpha = 1.0 - confidence
    horizon = 1024
    while horizon <= n_limit:
        ns = range(1, horizon + 1)
        if side == PASS:
            critical = stats.binom.ppf(alpha, ns, tail) - 1.0  # largest m with cdf < alpha
            critical = critical - (stats.binom.cdf(critical, ns, tail) >= alpha)
            ok = stats.binom.cdf(critical, ns, theta) >= power
        else:
            critical = stats.binom.isf(alpha, ns, tail) + 1.0  # smallest m with sf < alpha
            ok = stats.binom.sf(critical - 1.0, ns, theta) >= power
        failing = [i for i in range(horizon) if not ok[i]]
        last_dip = failing[-1] + 1 if failing else 0  # n of the last failure (1-based)
        if last_dip < horizon // 2:
            return last_dip + 1
        horizon *= 2
    return None
