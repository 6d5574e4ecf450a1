"""pytest-lambda-slo: AWS Lambda latency SLOs as pytest pass/fail tests."""

from __future__ import annotations

from .errors import ConfigError, LambdaSLOError, LoadAborted, MissingExtraError, SLOViolation
from .response import Response
from .targets import HttpTarget

__all__ = [
    "ConfigError",
    "HttpTarget",
    "LambdaSLOError",
    "LoadAborted",
    "MissingExtraError",
    "Response",
    "SLOViolation",
]
__version__ = "0.1.0"
