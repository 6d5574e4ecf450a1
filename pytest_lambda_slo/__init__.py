"""pytest-lambda-slo: AWS Lambda latency SLOs (p99, cold starts, throttles) as pytest tests."""

from __future__ import annotations

from .budgets import BUDGETS, Verdict
from .cost import estimate_cost
from .emulator import Emulator, FunctionConfig
from .errors import (
    ConfigError,
    LambdaSLOError,
    LoadAborted,
    MissingExtraError,
    SaturationWarning,
    SLOViolation,
)
from .fixture import LambdaSLO
from .invoke import InvokeTarget
from .recorder import Measurements
from .response import Response
from .result import BurstResult, LatencyView
from .targets import HttpTarget

__all__ = [
    "BUDGETS",
    "BurstResult",
    "ConfigError",
    "Emulator",
    "FunctionConfig",
    "HttpTarget",
    "InvokeTarget",
    "LambdaSLO",
    "LambdaSLOError",
    "LatencyView",
    "LoadAborted",
    "Measurements",
    "MissingExtraError",
    "Response",
    "SLOViolation",
    "SaturationWarning",
    "Verdict",
    "estimate_cost",
]
__version__ = "0.1.0"
