"""Forced cold starts: bump an environment variable so every warm environment is retired.

``with force_cold(target) as record:`` reads the function configuration, adds
``LAMBDA_SLO_FORCE_COLD=<uuid>`` to its environment, waits until ``LastUpdateStatus`` is
``Successful``, runs the block, and restores the previous environment afterwards (also
when the block raises), waiting again. It changes a deployed function, so callers must
ask for it explicitly. ``record`` says what was done, for the report; it holds variable
names only, never values (environment variables often carry secrets).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import ConfigError, LambdaSLOError
from .auth import protect_secrets

FORCE_COLD_VARIABLE = "LAMBDA_SLO_FORCE_COLD"
DEFAULT_WAIT_TIMEOUT_S = 120.0
DEFAULT_POLL_INTERVAL_S = 1.0


class ForceColdRecord(dict):  # type: ignore[type-arg]
    """What a forced cold start did (secret-free: variable names, never values).

    A dict, so it goes into JSON as is; updated in place when the block ends, so a report
    that kept it shows whether the restore worked; ``str()`` is a one-line summary.
    """

    def __str__(self) -> str:
        text = f"{self['function']}: environment bumped"
        if self["update_wait_s"] is not None:
            text += f" ({self['update_wait_s']:.1f}s)"
        if self["restored"]:
            text += f", restored ({self['restore_wait_s']:.1f}s)"
        elif self["error"]:
            text += f", {self['error']}"
        return text


def new_record(function: str) -> ForceColdRecord:
    return ForceColdRecord(
        function=function,
        variable=FORCE_COLD_VARIABLE,
        token="",
        updated=False,
        restored=False,
        update_wait_s=None,
        restore_wait_s=None,
        restored_variables=[],
        error=None,
    )


def wait_until_updated(
    client: Any,
    function: str,
    *,
    timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll GetFunctionConfiguration until LastUpdateStatus is Successful; bounded in time.

    Polls start at 0.1 s apart and double up to ``poll_interval_s``: quick updates are
    seen quickly, slow ones are not hammered.
    """
    deadline = clock() + timeout_s
    interval = min(0.1, poll_interval_s)
    while True:
        config = client.get_function_configuration(FunctionName=function)
        status = config.get("LastUpdateStatus", "Successful")  # absent on old functions
        if status == "Successful":
            return config
        if status == "Failed":
            reason = config.get("LastUpdateStatusReasonCode") or config.get(
                "LastUpdateStatusReason", "no reason given"
            )
            raise LambdaSLOError(f"configuration update of {function!r} failed: {reason}")
        if clock() >= deadline:
            raise LambdaSLOError(
                f"configuration update of {function!r} still {status} after {timeout_s:g}s; "
                "check the function in the Lambda console"
            )
        sleep(min(interval, max(0.0, deadline - clock())))
        interval = min(interval * 2, poll_interval_s)


class ForceCold:
    """Context manager behind :func:`force_cold`; ``__enter__`` returns the record."""

    def __init__(
        self,
        target: Any,
        *,
        client: Any = None,
        timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        qualifier = getattr(target, "qualifier", None)
        if qualifier not in (None, "$LATEST"):
            # UpdateFunctionConfiguration changes $LATEST only; a published version or an
            # alias keeps its warm environments.
            raise ConfigError(
                f"force_cold needs the unqualified function or '$LATEST', not qualifier "
                f"{qualifier!r}: a configuration update only retires $LATEST environments"
            )
        if not hasattr(target, "client") or not hasattr(target, "function_name"):
            raise ConfigError(
                f"force_cold needs an InvokeTarget (a function called by name or ARN), "
                f"not {type(target).__name__}"
            )
        self.target = target
        self._client = client
        self._timeout_s = timeout_s
        self._poll_s = poll_interval_s
        self._sleep = sleep
        self._function = target._ref.path_name
        self._previous: dict[str, str] | None = None
        self.record = new_record(self._function)

    def _wait(self, client: Any) -> tuple[dict[str, Any], float]:
        """The configuration once no update is in flight, and how long that took."""
        started = time.monotonic()
        config = wait_until_updated(
            client,
            self._function,
            timeout_s=self._timeout_s,
            poll_interval_s=self._poll_s,
            sleep=self._sleep,
        )
        return config, time.monotonic() - started

    def __enter__(self) -> ForceColdRecord:
        if self._client is None:
            self._client = self.target.client()
        client = self._client
        try:
            config, _ = self._wait(client)  # an update already in flight would reject ours
        except LambdaSLOError:
            raise
        except Exception as exc:
            raise LambdaSLOError(
                f"force_cold could not read the configuration of {self._function!r} "
                f"({_error_code(exc)}); nothing was changed. It needs "
                "lambda:GetFunctionConfiguration and lambda:UpdateFunctionConfiguration"
            ) from exc
        environment = config.get("Environment") or {}
        if environment.get("Error"):
            raise LambdaSLOError(
                f"force_cold cannot read the environment of {self._function!r} "
                f"({environment['Error'].get('ErrorCode', 'error')}); nothing was changed"
            )
        previous = dict(environment.get("Variables") or {})
        protect_secrets(*previous.values())  # botocore logs request bodies at DEBUG
        self._previous = previous
        token = uuid.uuid4().hex
        self.record["token"] = token
        try:
            client.update_function_configuration(
                FunctionName=self._function,
                Environment={"Variables": {**previous, FORCE_COLD_VARIABLE: token}},
            )
        except Exception as exc:
            raise LambdaSLOError(
                f"force_cold could not update the configuration of {self._function!r} "
                f"({_error_code(exc)}); nothing was changed. It needs "
                "lambda:UpdateFunctionConfiguration"
            ) from exc
        self.record["updated"] = True
        try:
            self.record["update_wait_s"] = self._wait(client)[1]
        except BaseException:
            self._restore(None)
            raise
        return self.record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore(exc)

    def _restore(self, pending: BaseException | None) -> None:
        if self._previous is None or self.record["restored"]:
            return
        client = self._client
        try:
            client.update_function_configuration(
                FunctionName=self._function, Environment={"Variables": self._previous}
            )
            self.record["restore_wait_s"] = self._wait(client)[1]
        except Exception as exc:
            self.record["error"] = f"restore failed: {_error_code(exc)}"
            message = (
                f"force_cold could not restore the environment of {self._function!r} "
                f"({_error_code(exc)}); remove the variable {FORCE_COLD_VARIABLE} by hand"
            )
            if pending is None:
                raise LambdaSLOError(message) from exc
            # The block's own exception is the one the user must see; keep this one as a note.
            if hasattr(pending, "add_note"):  # Python >= 3.11
                pending.add_note(message)
            return
        self.record["restored"] = True
        self.record["restored_variables"] = sorted(self._previous)


def _error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else the exception's type name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def force_cold(target: Any, **kwargs: Any) -> ForceCold:
    """Retire every warm environment of ``target`` for the ``with`` block, then restore."""
    return ForceCold(target, **kwargs)
