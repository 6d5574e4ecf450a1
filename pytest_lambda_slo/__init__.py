"""pytest-lambda-slo: AWS Lambda latency SLOs (p99, cold starts, throttles) as pytest tests.

The public surface is this module's ``__all__``; everything else lives in private packages
that follow the load pipeline, imports pointing one way (docs/architecture.md):
``_load`` (shapes, drivers, runner, workers) builds on ``_targets``, ``_aws``, ``_http`` and
``_results``, which build on the leaves ``_units`` and ``errors``; ``_pytest`` and ``plugin``
sit on top; ``emulator`` stands apart. Names are imported on first use (PEP 562), so
``import pytest_lambda_slo`` (and the pytest plugin) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._aws.cost import estimate_cost
    from ._aws.iam import AwsIam
    from ._fanout.config import LambdaFanout
    from ._http.response import Response
    from ._load.api import arun, run
    from ._load.shapes import Burst, Ramp, Rate
    from ._pytest.fixture import LambdaSLO
    from ._results.budgets import BUDGETS
    from ._results.recorder import Measurements
    from ._results.result import BurstResult, LatencyView, RunResult
    from ._results.verdict import Verdict, VerdictPolicy
    from ._targets.http import HttpTarget
    from ._targets.invoke import InvokeTarget
    from ._targets.values import Cycle
    from .emulator import Emulator, FunctionConfig
    from .errors import (
        ConfigError,
        LambdaSLOError,
        LoadAborted,
        MissingExtraError,
        RunInvalid,
        SaturationWarning,
        SLOInconclusive,
        SLOInconclusiveWarning,
        SLOViolation,
    )

# Each public name and the module it lives in.
_EXPORTS = {
    "AwsIam": "._aws.iam",
    "BUDGETS": "._results.budgets",
    "Burst": "._load.shapes",
    "BurstResult": "._results.result",
    "ConfigError": ".errors",
    "Cycle": "._targets.values",
    "Emulator": ".emulator",
    "FunctionConfig": ".emulator",
    "HttpTarget": "._targets.http",
    "InvokeTarget": "._targets.invoke",
    "LambdaFanout": "._fanout.config",
    "LambdaSLO": "._pytest.fixture",
    "LambdaSLOError": ".errors",
    "LatencyView": "._results.result",
    "LoadAborted": ".errors",
    "Measurements": "._results.recorder",
    "MissingExtraError": ".errors",
    "Ramp": "._load.shapes",
    "Rate": "._load.shapes",
    "Response": "._http.response",
    "RunInvalid": ".errors",
    "RunResult": "._results.result",
    "SLOInconclusive": ".errors",
    "SLOInconclusiveWarning": ".errors",
    "SLOViolation": ".errors",
    "SaturationWarning": ".errors",
    "Verdict": "._results.verdict",
    "VerdictPolicy": "._results.verdict",
    "arun": "._load.api",
    "estimate_cost": "._aws.cost",
    "run": "._load.api",
}

__all__ = [
    "BUDGETS",
    "AwsIam",
    "Burst",
    "BurstResult",
    "ConfigError",
    "Cycle",
    "Emulator",
    "FunctionConfig",
    "HttpTarget",
    "InvokeTarget",
    "LambdaFanout",
    "LambdaSLO",
    "LambdaSLOError",
    "LatencyView",
    "LoadAborted",
    "Measurements",
    "MissingExtraError",
    "Ramp",
    "Rate",
    "Response",
    "RunInvalid",
    "RunResult",
    "SLOInconclusive",
    "SLOInconclusiveWarning",
    "SLOViolation",
    "SaturationWarning",
    "Verdict",
    "VerdictPolicy",
    "arun",
    "estimate_cost",
    "run",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
