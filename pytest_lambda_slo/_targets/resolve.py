"""Any accepted form of target to a Target: objects, http(s) URLs, 'lambda:NAME' and ARNs."""

from __future__ import annotations

from .._http.urls import URL_FORMS
from ..errors import ConfigError
from .base import Target
from .http import HttpTarget
from .invoke import InvokeTarget


def as_target(target: object) -> Target:
    """Accept a target object, an http(s) URL or 'lambda:NAME[:QUALIFIER]' / a Lambda ARN."""
    if isinstance(target, str):
        text = target.strip()
        if text.startswith("lambda:") or text.startswith("arn:"):
            return InvokeTarget.from_string(text)
        return HttpTarget(text)
    if hasattr(target, "prepare") and hasattr(target, "describe"):
        return target  # type: ignore[return-value]
    raise ConfigError(
        f"target {target!r} is not valid; use {URL_FORMS}, HttpTarget or InvokeTarget"
    )
