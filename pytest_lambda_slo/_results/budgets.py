"""SLO budgets: what each budget name measures, and parsing "800ms" / "1%" style limits.

Latency budgets are judged over the requests the function served: a throttle answers fast
and would pull the percentiles down. Throttles are judged by throttle budgets, and when a
gate sets none, an implied ``throttle_rate`` budget (DEFAULT_THROTTLE_RATE) applies, so a
run that was mostly throttled cannot pass on its latency or error budgets. How a budget is
judged (confidence bounds, literal) is :mod:`.verdicts`'s job; the spec says which kind it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .._units import DURATION_FORMS, RATE_FORMS, format_duration, parse_duration, parse_rate
from ..errors import ConfigError

# How a budget is judged: "percentile" and "rate" by exact binomial bounds on a share,
# "mean" and "rps" by t-intervals over per-second batches, "max" and "count" literally.
Kind = Literal["percentile", "rate", "mean", "rps", "max", "count"]


@dataclass(frozen=True)
class BudgetSpec:
    """One budget name: its unit, whether the limit is an upper or lower bound, what it reads."""

    name: str
    unit: str  # "duration" | "rate" | "count" | "number"
    upper: bool  # True: measured must be <= limit; False: measured must be >= limit
    description: str
    kind: Kind
    view: str = ""  # the latency view a latency budget reads ("served", "warm", "cold", ...)
    q: float = 0.0  # a percentile budget's percentile (99.0 for p99)
    counter: str = ""  # what a rate or count budget counts ("errors", "throttles", ...)

    @property
    def literal(self) -> bool:
        """Judged on the numbers as they are: one slow request breaks ``max``."""
        return self.kind in ("max", "count")


def _pct(name: str, view: str, q: float, description: str) -> BudgetSpec:
    return BudgetSpec(name, "duration", True, description, "percentile", view=view, q=q)


def _spec(
    name: str,
    unit: str,
    description: str,
    kind: Kind,
    *,
    upper: bool = True,
    view: str = "",
    counter: str = "",
) -> BudgetSpec:
    return BudgetSpec(name, unit, upper, description, kind, view=view, counter=counter)


BUDGETS: dict[str, BudgetSpec] = {
    spec.name: spec
    for spec in (
        _pct("p50", "served", 50.0, "50th percentile latency of the requests served"),
        _pct("p90", "served", 90.0, "90th percentile latency of the requests served"),
        _pct("p95", "served", 95.0, "95th percentile latency of the requests served"),
        _pct("p99", "served", 99.0, "99th percentile latency of the requests served"),
        _pct("p999", "served", 99.9, "99.9th percentile latency of the requests served"),
        _spec("max", "duration", "slowest request served (literal)", "max", view="served"),
        _spec("mean", "duration", "mean latency of the requests served", "mean", view="served"),
        _pct("warm_p90", "warm", 90.0, "90th percentile latency of warm (not cold) requests"),
        _pct("warm_p99", "warm", 99.0, "99th percentile latency of warm (not cold) requests"),
        _pct("cold_start_p50", "cold", 50.0, "50th percentile latency of cold-start requests"),
        _pct("cold_start_p90", "cold", 90.0, "90th percentile latency of cold-start requests"),
        _pct("cold_start_p99", "cold", 99.0, "99th percentile latency of cold-start requests"),
        _spec("cold_start_max", "duration", "slowest cold-start request (literal)", "max",
              view="cold"),
        _spec("cold_start_rate", "rate", "share of requests that were cold starts", "rate",
              counter="cold_starts"),
        _spec("throttle_rate", "rate", "share of requests throttled", "rate",
              counter="throttles"),
        _spec("throttle_count", "count", "number of requests throttled (literal)", "count",
              counter="throttles"),
        _spec("error_rate", "rate", "share of requests that failed (throttles not included)",
              "rate", counter="errors"),
        _spec("min_rps", "number", "completed requests per second", "rps", upper=False),
        _pct("ttfb_p50", "ttfb", 50.0, "50th percentile time to first byte (successful requests)"),
        _pct("ttfb_p90", "ttfb", 90.0, "90th percentile time to first byte (successful requests)"),
        _pct("ttfb_p95", "ttfb", 95.0, "95th percentile time to first byte (successful requests)"),
        _pct("ttfb_p99", "ttfb", 99.0, "99th percentile time to first byte (successful requests)"),
        _pct("ttfb_p999", "ttfb", 99.9,
             "99.9th percentile time to first byte (successful requests)"),
        _pct("init_p99", "init", 99.0, "99th percentile of Lambda's Init Duration (server side)"),
        _pct("duration_p99", "duration", 99.0,
             "99th percentile of Lambda's Duration (server side)"),
    )
}  # fmt: skip
BUDGET_NAMES = tuple(BUDGETS)
THROTTLE_BUDGETS = ("throttle_rate", "throttle_count")
# The implied throttle_rate budget of a gate that sets no throttle budget (ini key
# lambda_slo_default_throttle_rate changes it). 5%: a healthy burst is rarely throttled
# at all, and a run this throttled measures the throttling, not the function.
DEFAULT_THROTTLE_RATE = 0.05
# A throttle budget switched off (throttle_rate=None or "off"): no limit, no verdict.
OFF = math.inf
_OFF_WORDS = ("off", "none")
# A bare number is seconds; above this, for a latency, it is almost surely milliseconds.
BARE_LATENCY_MAX_S = 60.0
_FORMS = {
    "duration": DURATION_FORMS,
    "rate": RATE_FORMS,
    "count": "a whole number >= 0 (e.g. 0 or 5)",
    "number": "a number >= 0 (e.g. 100 or '100')",
}


def _unknown(name: str) -> ConfigError:
    return ConfigError(f"unknown SLO budget {name!r}; known budgets: {', '.join(BUDGET_NAMES)}")


def parse_budget(name: str, value: object) -> float:
    """Parse one budget value into seconds, a fraction, a count or a number."""
    spec = BUDGETS.get(name)
    if spec is None:
        raise _unknown(name)
    if name in THROTTLE_BUDGETS and (
        value is None or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS)
    ):
        return OFF
    if spec.unit == "duration":
        return parse_duration(value, name=name, bare_max_s=BARE_LATENCY_MAX_S)
    if spec.unit == "rate":
        return parse_rate(value, name=name)
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        number = None
    elif spec.unit == "count" and not number.is_integer():
        number = None
    if number is None:
        forms = _FORMS[spec.unit] + (", or 'off'" if name in THROTTLE_BUDGETS else "")
        raise ConfigError(f"{name}={value!r} is not valid; use {forms}")
    return number


def parse_default_throttle_rate(value: object) -> float | None:
    """The ini key lambda_slo_default_throttle_rate: a rate, or 'off' (None: no implied budget)."""
    name = "lambda_slo_default_throttle_rate"
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS):
        return None
    try:
        return parse_rate(value, name=name)
    except ConfigError:
        raise ConfigError(f"{name}={value!r} is not valid; use {RATE_FORMS}, or 'off'") from None


def parse_budgets(budgets: Mapping[str, object]) -> dict[str, float]:
    """Parse a mapping of budget names to values; every name and value is checked."""
    return {name: parse_budget(name, value) for name, value in budgets.items()}


def format_value(unit: str, value: float) -> str:
    """A budget's number in its unit: '812.3ms', '1.00%', '5', '100.0'."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if unit == "duration":
        return format_duration(value)
    if unit == "rate":
        return f"{value * 100:.2f}%"
    if unit == "count":
        return str(int(value))
    return f"{value:.1f}"


def json_value(unit: str, value: float) -> float:
    """A budget's number as the JSON carries it: milliseconds for a latency."""
    return round(value * 1000.0, 3) if unit == "duration" else value


def from_json_value(unit: str, value: float) -> float:
    """The inverse of :func:`json_value` (``unit`` is the JSON's: "ms" for a latency)."""
    return value / 1000.0 if unit == "ms" else value
