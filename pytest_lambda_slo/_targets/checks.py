"""Response checks (``check=``) and request labels (``label=``), shared by every target.

A check runs in ``classify``, after the clock stopped: a response it rejects (False, or any
exception) becomes an error of kind ``check_failed``, its status kept, and the first
distinct messages are kept for the report. A label names the kind of request for the
per-label views: a fixed string, or a callable of the request's data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._http.response import Response
from ..errors import ConfigError

CHECK_FAILED = "check_failed"
KEPT_MESSAGES = 5  # distinct check messages kept per run
_MESSAGE_CHARS = 300


def check_check(check: object, owner: str) -> Callable[[Response], Any] | None:
    """``check=``: None or a callable taking the response."""
    if check is not None and not callable(check):
        raise ConfigError(
            f"{owner} check={check!r} is not valid; use a callable taking the response "
            "(returning False or raising marks it check_failed)"
        )
    return check  # type: ignore[return-value]


class ResponseCheck:
    """Runs the user's check on a response; keeps the first few distinct messages."""

    __slots__ = ("fn", "messages")

    def __init__(self, fn: Callable[[Response], Any], messages: list[str]) -> None:
        self.fn = fn
        self.messages = messages

    def failure(self, response: Response) -> str | None:
        """None when the check accepts ``response``, else why not (one line)."""
        try:
            verdict = self.fn(response)
        except Exception as exc:  # AssertionError or anything else: the check failed
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if verdict is not False:
                return None
            text = "the check returned False"
        message = f"status {response.status_code}: " + " ".join(text.split())[:_MESSAGE_CHARS]
        messages = self.messages
        if len(messages) < KEPT_MESSAGES and message not in messages:
            messages.append(message)
        return message


def check_label(label: object, owner: str) -> str | Callable[[Any], Any] | None:
    """``label=``: None, a non-empty string, or a callable of the request's data."""
    if label is None or (isinstance(label, str) and label):
        return label
    if callable(label):
        return label
    raise ConfigError(
        f"{owner} label={label!r} is not valid; use a non-empty string, or a callable "
        "taking the request's data (its json=/body=/payload= value, else its index) and "
        "returning a string"
    )


def label_of(label: str | Callable[[Any], Any] | None, data: Any) -> str | None:
    """The label of a request whose data is ``data``."""
    if label is None or isinstance(label, str):
        return label
    try:
        value = label(data)
    except Exception as exc:
        raise ConfigError(f"the label= callable raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"the label= callable returned {value!r}; it must return a non-empty string"
        )
    return value
