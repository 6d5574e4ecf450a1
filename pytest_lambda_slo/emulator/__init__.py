"""A local emulator of AWS Lambda's execution model: cold starts, concurrency and throttles."""

from __future__ import annotations

from .config import Distribution, FunctionConfig, parse_function_spec
from .runner import Emulator
from .settings import EmulatorConfig

__all__ = ["Distribution", "Emulator", "EmulatorConfig", "FunctionConfig", "parse_function_spec"]
