"""SLO budgets: parse "800ms" / "1%" style limits, evaluate them, explain violations.

Latency budgets are judged over the requests the function served: a throttle answers fast
and would pull the percentiles down. Throttles are judged by throttle budgets, and when a
gate sets none, an implied ``throttle_rate`` budget (DEFAULT_THROTTLE_RATE) applies, so a
run that was mostly throttled cannot pass on its latency or error budgets.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._units import DURATION_FORMS, RATE_FORMS, format_duration, parse_duration, parse_rate
from ..errors import ConfigError, SLOViolation

if TYPE_CHECKING:
    from .result import BurstResult


@dataclass(frozen=True)
class BudgetSpec:
    """One budget name: its unit, whether the limit is an upper or lower bound, what it reads."""

    name: str
    unit: str  # "duration" | "rate" | "count" | "number"
    upper: bool  # True: measured must be <= limit; False: measured must be >= limit
    description: str


def _spec(name: str, unit: str, description: str, upper: bool = True) -> BudgetSpec:
    return BudgetSpec(name, unit, upper, description)


BUDGETS: dict[str, BudgetSpec] = {
    spec.name: spec
    for spec in (
        _spec("p50", "duration", "50th percentile latency of the requests served"),
        _spec("p90", "duration", "90th percentile latency of the requests served"),
        _spec("p95", "duration", "95th percentile latency of the requests served"),
        _spec("p99", "duration", "99th percentile latency of the requests served"),
        _spec("p999", "duration", "99.9th percentile latency of the requests served"),
        _spec("max", "duration", "slowest request served"),
        _spec("mean", "duration", "mean latency of the requests served"),
        _spec("warm_p99", "duration", "99th percentile latency of warm (not cold) requests"),
        _spec("cold_start_p99", "duration", "99th percentile latency of cold-start requests"),
        _spec("cold_start_max", "duration", "slowest cold-start request"),
        _spec("cold_start_rate", "rate", "share of requests that were cold starts"),
        _spec("throttle_rate", "rate", "share of requests throttled"),
        _spec("throttle_count", "count", "number of requests throttled"),
        _spec("error_rate", "rate", "share of requests that failed (throttles not included)"),
        _spec("min_rps", "number", "completed requests per second", upper=False),
        _spec("init_p99", "duration", "99th percentile of Lambda's Init Duration (server side)"),
        _spec("duration_p99", "duration", "99th percentile of Lambda's Duration (server side)"),
    )
}
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


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget against one result."""

    budget: str
    limit: float
    measured: float | None
    samples: int
    passed: bool
    note: str = ""
    source: str = "check"  # "check" (result.check), "marker", "ini", "default" (implied)

    def describe(self) -> str:
        spec = BUDGETS[self.budget]
        limit = _format(spec.unit, self.limit)
        measured = "n/a" if self.measured is None else _format(spec.unit, self.measured)
        within = self.measured is not None and (
            self.measured <= self.limit if spec.upper else self.measured >= self.limit
        )
        # The relation states the numbers; a verdict refused for another reason (a saturated
        # generator) keeps "<=" and says why in its note.
        relation = (
            ("<=" if spec.upper else ">=")
            if within or self.passed
            else (">" if spec.upper else "<")
        )
        text = f"{self.budget}: measured {measured} {relation} budget {limit} (n={self.samples})"
        if self.note:
            text += f"; {self.note}"
        return text

    def to_dict(self) -> dict[str, Any]:
        unit = BUDGETS[self.budget].unit
        return {
            "budget": self.budget,
            "unit": "ms" if unit == "duration" else unit,
            "limit": _json_value(unit, self.limit),
            "measured": None if self.measured is None else _json_value(unit, self.measured),
            "samples": self.samples,
            "passed": self.passed,
            "note": self.note,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`to_dict` (durations back from milliseconds to seconds)."""
        scale = 1000.0 if data["unit"] == "ms" else 1.0
        measured = data["measured"]
        return cls(
            budget=data["budget"],
            limit=data["limit"] / scale,
            measured=None if measured is None else measured / scale,
            samples=data["samples"],
            passed=data["passed"],
            note=data.get("note", ""),
            source=data.get("source", "check"),
        )


def _json_value(unit: str, value: float) -> float:
    return round(value * 1000.0, 3) if unit == "duration" else value


def _format(unit: str, value: float) -> str:
    if unit == "duration":
        return format_duration(value)
    if unit == "rate":
        return f"{value * 100:.2f}%"
    if unit == "count":
        return str(int(value))
    return f"{value:.1f}"


Measure = Callable[["BurstResult"], "tuple[float | None, int, str]"]


def _latency(view: str, q: float | None) -> Measure:
    def measure(result: BurstResult) -> tuple[float | None, int, str]:
        lat = result.view(view)
        if lat.count == 0:
            return None, 0, ""
        value = lat.max if q is None else (lat.mean if q < 0 else lat.percentile(q))
        note = ""
        if lat.overflows:
            note = f"{lat.overflows} samples exceeded the histogram range (over {lat.range_s}s)"
            value = math.inf
        return value, lat.count, note

    return measure


def _ratio(numerator: str) -> Measure:
    def measure(result: BurstResult) -> tuple[float | None, int, str]:
        if result.count == 0:
            return None, 0, ""
        return getattr(result, numerator) / result.count, result.count, ""

    return measure


def _measure_rps(result: BurstResult) -> tuple[float | None, int, str]:
    return (result.rps if result.count else None), result.count, ""


def _measure_throttle_count(result: BurstResult) -> tuple[float | None, int, str]:
    return float(result.throttles), result.count, ""


_MEASURES: dict[str, Measure] = {
    "p50": _latency("served", 50.0),
    "p90": _latency("served", 90.0),
    "p95": _latency("served", 95.0),
    "p99": _latency("served", 99.0),
    "p999": _latency("served", 99.9),
    "max": _latency("served", None),
    "mean": _latency("served", -1.0),
    "warm_p99": _latency("warm", 99.0),
    "cold_start_p99": _latency("cold", 99.0),
    "cold_start_max": _latency("cold", None),
    "cold_start_rate": _ratio("cold_starts"),
    "throttle_rate": _ratio("throttles"),
    "throttle_count": _measure_throttle_count,
    "error_rate": _ratio("errors"),
    "min_rps": _measure_rps,
    "init_p99": _latency("init", 99.0),
    "duration_p99": _latency("duration", 99.0),
}
_NEEDS_COLD_DETECTION = {"warm_p99", "cold_start_p99", "cold_start_max", "cold_start_rate"}
_SERVER_SIDE = {"init_p99", "duration_p99"}
_SERVED = {"p50", "p90", "p95", "p99", "p999", "max", "mean"}


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


def _implied_throttle_budget(result: BurstResult, budgets: Mapping[str, float]) -> bool:
    """True when the implied throttle_rate budget applies to this evaluation.

    It applies when budgets are judged and none of them, nor any earlier verdict on this
    result, is a throttle budget. ``result.default_throttle_rate`` is None when the ini
    key turned it off or the test's marker or ini set a throttle budget of their own.
    """
    if not budgets or result.default_throttle_rate is None:
        return False
    if any(name in THROTTLE_BUDGETS for name in budgets):
        return False
    return not any(v.budget in THROTTLE_BUDGETS for v in result.verdicts)


def evaluate(result: BurstResult, budgets: Mapping[str, float], source: str) -> list[Verdict]:
    """Judge parsed budgets against a result. A budget that cannot be measured fails.

    Budgets switched off (OFF) give no verdict; the implied throttle_rate budget is added
    with source "default" when no throttle budget is set (see _implied_throttle_budget).
    """
    verdicts = [
        _judge(result, name, limit, source)
        for name, limit in budgets.items()
        if not (name in THROTTLE_BUDGETS and limit == OFF)
    ]
    if _implied_throttle_budget(result, budgets):
        assert result.default_throttle_rate is not None
        verdict = _judge(result, "throttle_rate", result.default_throttle_rate, "default")
        if not verdict.passed:
            note = (
                "implied, as no throttle budget was set: set throttle_rate=... "
                "(or 'off') to change it"
            )
            note = "; ".join(filter(None, [verdict.note, note]))
            verdict = dataclasses.replace(verdict, note=note)
        verdicts.append(verdict)
    return verdicts


def _judge(result: BurstResult, name: str, limit: float, source: str) -> Verdict:
    """One budget's verdict."""
    spec = BUDGETS[name]
    measured, samples, note = _MEASURES[name](result)
    passed: bool
    if name in _NEEDS_COLD_DETECTION and not result.cold_start_detection:
        measured, passed = None, False
        note = _cold_note(result)
    elif name in _SERVER_SIDE and result.view(name.split("_")[0]).count == 0:
        passed = False
        note = _no_report_lines(result) or (
            "no server-side REPORT figures; use InvokeTarget (Lambda Invoke API with Tail)"
        )
    elif measured is None:
        # Nothing to judge: zero cold starts cannot break a cold-start latency budget,
        # but a run without a single latency sample cannot pass a latency budget.
        passed = name in ("cold_start_p99", "cold_start_max") and result.count > 0
        note = "no cold starts observed" if passed else "no samples to judge"
    else:
        passed = measured <= limit if spec.upper else measured >= limit
    if name in _SERVED and result.throttles:
        note = "; ".join(filter(None, [note, f"{result.throttles} throttled not included"]))
    # A saturated generator distorts timings, not counts: only latency and rate-of-
    # completion budgets are refused on its data.
    timing = spec.unit == "duration" or name == "min_rps"
    if timing and result.saturated and passed and result.saturation_policy == "fail":
        passed = False
        note = "; ".join(filter(None, [note, result.saturation_note]))
    return Verdict(name, limit, measured, samples, passed, note, source)


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


def violation_message(verdicts: list[Verdict], result: BurstResult) -> str | None:
    """The SLOViolation text: one broken budget per line, then what the requests came to."""
    broken = [v for v in verdicts if not v.passed]
    if not broken:
        return None
    lines = [f"{len(broken)} SLO budget(s) broken for {result.target}:"]
    lines += [f"  {v.describe()}" for v in broken]
    lines.append(f"  ({outcome_line(result)})")
    return "\n".join(lines)


def raise_for(verdicts: list[Verdict], result: BurstResult) -> None:
    message = violation_message(verdicts, result)
    if message is not None:
        raise SLOViolation(message, [v for v in verdicts if not v.passed])
