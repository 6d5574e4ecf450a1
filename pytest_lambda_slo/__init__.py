"""pytest-lambda-slo: AWS Lambda latency SLOs (p99, cold starts, throttles) as pytest tests."""

from __future__ import annotations

from ._aws.cost import estimate_cost
from ._http.response import Response
from ._pytest.fixture import LambdaSLO
from ._results.budgets import BUDGETS
from ._results.recorder import Measurements
from ._results.result import BurstResult, LatencyView
from ._results.verdict import Verdict, VerdictPolicy
from ._targets.http import HttpTarget
from ._targets.invoke import InvokeTarget
from .emulator import Emulator, FunctionConfig
from .errors import (
    ConfigError,
    LambdaSLOError,
    LoadAborted,
    MissingExtraError,
    SaturationWarning,
    SLOInconclusive,
    SLOInconclusiveWarning,
    SLOViolation,
)

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
    "SLOInconclusive",
    "SLOInconclusiveWarning",
    "SLOViolation",
    "SaturationWarning",
    "Verdict",
    "VerdictPolicy",
    "estimate_cost",
]
__version__ = "0.1.0"
