"""The plugin's ini keys and session settings: declared once, parsed into Settings.

Light to import, like the plugin that uses it (``pytest --help``).
"""

from __future__ import annotations

import pytest

from .._fanout.config import (
    DEFAULT_MAX_FANOUT_COST_USD,
    MAX_SHARDS,
    LambdaFanout,
    parse_fanout,
    parse_max_fanout_cost,
)
from .._results.budgets import BUDGET_NAMES, parse_budgets, parse_default_throttle_rate
from .._results.verdict import parse_policy
from .._units import MAX_WORKERS, parse_count, parse_duration, parse_workers
from ..errors import ConfigError
from .session import Settings

SETTINGS_INI = {
    "lambda_slo_max_requests": (
        "100000",
        "Session-wide cap on requests fired by load tests. Default: 100000",
    ),
    "lambda_slo_max_load_time": (
        "30m",
        "Session-wide cap on time spent firing load ('30m', '3600'). Default: 30m",
    ),
    "lambda_slo_saturation": (
        "fail",
        "What a budget does when the load generator was saturated: fail or warn. Default: fail",
    ),
    "lambda_slo_workers": (
        "1",
        "Processes each load shape fans out over: N or auto. Default: 1",
    ),
    "lambda_slo_fanout": (
        "",
        "Lambda shards every load shape fans out over (the generator function): N, or empty "
        "for none. Default: none",
    ),
    "lambda_slo_max_fanout_cost": (
        f"{DEFAULT_MAX_FANOUT_COST_USD:.2f}",
        "Session-wide cap on the cost estimates of Lambda fan-out runs, in USD ('5.00'), or "
        f"'off'. Default: {DEFAULT_MAX_FANOUT_COST_USD:.2f}",
    ),
    "lambda_slo_max_loop_lag": (
        "25ms",
        "Event-loop lag (p99) above which a run counts as saturated. Default: 25ms",
    ),
    "lambda_slo_default_throttle_rate": (
        "5%",
        "The throttle_rate budget implied when budgets apply but no throttle budget is "
        "set; 'off' for none. Default: 5%",
    ),
    # Confidence verdicts: the levels, what an inconclusive verdict does, the method.
    "lambda_slo_fail_confidence": (
        "0.99",
        "Confidence a budget is broken before it FAILS, shared by a test's budgets. Default: 0.99",
    ),
    "lambda_slo_pass_confidence": (
        "0.95",
        "Confidence a budget is met before it PASSES. Default: 0.95",
    ),
    "lambda_slo_inconclusive": (
        "fail",
        "What an inconclusive budget does to a test: fail or warn. Default: fail",
    ),
    "lambda_slo_verdict": (
        "confidence",
        "How budgets are judged: confidence (bounds) or point (point estimates). "
        "Default: confidence",
    ),
}


VERDICT_KEYS = ("pass_confidence", "fail_confidence", "inconclusive", "verdict")


def settings_from(config: pytest.Config) -> Settings:
    """The session's settings from the ini keys and options; ConfigError names a bad one."""
    policy = str(config.getini("lambda_slo_saturation")).strip().lower()
    if policy not in ("fail", "warn"):
        raise ConfigError(f"lambda_slo_saturation={policy!r} is not valid; use 'fail' or 'warn'")
    return Settings(
        max_requests=parse_count(
            config.getini("lambda_slo_max_requests"), name="lambda_slo_max_requests", minimum=1
        ),
        max_load_time_s=parse_duration(
            config.getini("lambda_slo_max_load_time"),
            name="lambda_slo_max_load_time",
            allow_zero=False,
        ),
        max_fanout_cost_usd=parse_max_fanout_cost(config.getini("lambda_slo_max_fanout_cost")),
        saturation_policy=policy,
        workers=workers_option(config),
        fanout=fanout_option(config),
        max_loop_lag_s=parse_duration(
            config.getini("lambda_slo_max_loop_lag"), name="lambda_slo_max_loop_lag"
        ),
        default_throttle_rate=parse_default_throttle_rate(
            config.getini("lambda_slo_default_throttle_rate")
        ),
        verdict_policy=parse_policy(*(config.getini(f"lambda_slo_{key}") for key in VERDICT_KEYS)),
    )


def fanout_option(config: pytest.Config) -> LambdaFanout | None:
    """--lambda-slo-fanout, else ini lambda_slo_fanout: the session's shards, or None."""
    value = config.getoption("lambda_slo_fanout") or config.getini("lambda_slo_fanout")
    if value in (None, ""):
        return None
    try:
        return parse_fanout(str(value).strip())
    except ConfigError:
        raise ConfigError(
            f"--lambda-slo-fanout={value!r} (or ini lambda_slo_fanout) is not valid; use a "
            f"whole number of shards from 1 to {MAX_SHARDS}"
        ) from None


def workers_option(config: pytest.Config) -> int:
    """--lambda-slo-workers, else ini lambda_slo_workers."""
    value = config.getoption("lambda_slo_workers") or config.getini("lambda_slo_workers")
    try:
        return parse_workers(value)
    except ConfigError:
        raise ConfigError(
            f"--lambda-slo-workers={value!r} (or ini lambda_slo_workers) is not valid; use a "
            f"whole number >= 1 or 'auto' (one per CPU), at most {MAX_WORKERS}"
        ) from None


def ini_budgets(config: pytest.Config) -> dict[str, float]:
    """Budgets set by ini keys (lambda_slo_p99 = 800ms, ...), parsed."""
    raw = {}
    for name in BUDGET_NAMES:
        value = config.getini(f"lambda_slo_{name}")
        if value not in (None, ""):
            raw[name] = value
    try:
        return parse_budgets(raw)
    except ConfigError as exc:
        raise ConfigError(f"ini key lambda_slo_{exc}") from None
