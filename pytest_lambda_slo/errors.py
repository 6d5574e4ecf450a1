"""The exception tree of pytest-lambda-slo.

LambdaSLOError                 base of everything the plugin raises on purpose
├── ConfigError (ValueError)   bad input: a budget, duration, rate, target, shape or option
├── MissingExtraError (ImportError)  an optional extra is needed, e.g. ``[aws]``
├── LoadAborted                a load run was stopped (cap, cancellation); carries what was measured
│   ├── UserCallableError      a callable of the user's (cold_start=) raised; __cause__ is theirs
│   └── AuthRefused            the whole first wave was refused as unauthenticated (401/403)
└── RunInvalid                 the run cannot be judged (a fan-out shard failed or started late);
                               the test is reported as an ERROR, neither passed nor failed
SLOViolation (AssertionError)  one or more budgets are broken; the test FAILS
SLOInconclusive (AssertionError)  nothing broken, but a budget could not be decided (policy fail)
SLOInconclusiveWarning (UserWarning)  the same under lambda_slo_inconclusive = warn: it passes
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: this module is the package's leaf and imports nothing of it
    from ._load.runinfo import RunInfo
    from ._results.recorder import Measurements, Outcome


class LambdaSLOError(Exception):
    """Base class of the errors the plugin raises on purpose."""


class ConfigError(LambdaSLOError, ValueError):
    """Bad user input: the message names the value and the accepted forms."""


class MissingExtraError(LambdaSLOError, ImportError):
    """An optional dependency group is needed for this feature."""


class RunInvalid(LambdaSLOError):
    """The run's figures cannot be judged (a fan-out shard failed, was late or missing).

    Not a budget verdict: the plugin reports the test as an ERROR, neither passed nor failed.
    """


class LoadAborted(LambdaSLOError):
    """A load run was stopped before it finished (cap reached, cancelled).

    ``reason`` says why; ``measurements`` and ``run_info`` are what was measured until then
    (None when the run never started). The message adds the counts to the reason.
    """

    def __init__(
        self,
        reason: str,
        measurements: Measurements | None = None,
        run_info: RunInfo | None = None,
    ) -> None:
        message = reason
        if measurements is not None:
            message = (
                f"{reason}: {measurements.count} requests measured, {measurements.unsent} not sent"
            )
        super().__init__(message)
        self.reason = reason
        self.measurements = measurements
        self.run_info = run_info

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its fields (pickled, e.g. by xdist), not from the composed message.
        return (type(self), (self.reason, self.measurements, self.run_info), self.__dict__)


class UserCallableError(LoadAborted):
    """A callable of the user's that the engine calls raised: the run stopped at that response.

    ``__cause__`` is the user's exception (its traceback is the test's failure). Raised by a
    target, it carries ``outcome``: that response classified without the callable's verdict.
    """

    def __init__(
        self,
        reason: str,
        measurements: Measurements | None = None,
        run_info: RunInfo | None = None,
        *,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(reason, measurements, run_info)
        self.outcome = outcome


class AuthRefused(LoadAborted):
    """Every response of the run's first wave was an authentication refusal: it stopped there."""


class SLOViolation(AssertionError):
    """One or more SLO budgets are broken; each broken budget is one line of the message."""

    def __init__(self, message: str, verdicts: list | None = None) -> None:
        super().__init__(message)
        self.verdicts = list(verdicts or [])


class SLOInconclusive(AssertionError):
    """No budget is broken but one or more are inconclusive: too little data to decide.

    Raised under ``lambda_slo_inconclusive = fail`` (the default); not an SLOViolation, so
    ``pytest.raises(SLOViolation)`` and ``xfail(raises=SLOViolation)`` do not take it.
    """

    def __init__(self, message: str, verdicts: list | None = None) -> None:
        super().__init__(message)
        self.verdicts = list(verdicts or [])


class SLOInconclusiveWarning(UserWarning):
    """A budget was inconclusive and ``lambda_slo_inconclusive = warn`` let the test pass."""


class SaturationWarning(UserWarning):
    """The load generator was saturated; budgets were judged anyway (saturation = warn)."""
