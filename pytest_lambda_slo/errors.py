"""The exception tree of pytest-lambda-slo.

LambdaSLOError                 base of everything the plugin raises on purpose
├── ConfigError (ValueError)   bad input: a budget, duration, rate, target, shape or option
├── MissingExtraError (ImportError)  an optional extra is needed, e.g. ``[aws]``
└── LoadAborted                a load run was stopped (cap, cancellation)
SLOViolation (AssertionError)  one or more budgets are broken; the test FAILS
"""

from __future__ import annotations


class LambdaSLOError(Exception):
    """Base class of the errors the plugin raises on purpose."""


class ConfigError(LambdaSLOError, ValueError):
    """Bad user input: the message names the value and the accepted forms."""


class MissingExtraError(LambdaSLOError, ImportError):
    """An optional dependency group is needed for this feature."""


class LoadAborted(LambdaSLOError):
    """A load run was stopped before it finished (cap reached, cancelled)."""


class SLOViolation(AssertionError):
    """One or more SLO budgets are broken; each broken budget is one line of the message."""

    def __init__(self, message: str, verdicts: list | None = None) -> None:
        super().__init__(message)
        self.verdicts = list(verdicts or [])


class SaturationWarning(UserWarning):
    """The load generator was saturated; budgets were judged anyway (saturation = warn)."""
