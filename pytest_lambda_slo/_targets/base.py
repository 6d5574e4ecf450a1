"""What every target shares: the Target and PreparedTarget protocols and the checks of options.

A target is anything with ``describe()``, ``shape_info()`` and ``prepare()``. ``prepare()``
returns a :class:`PreparedTarget`: the engine asks it for the :class:`RequestTemplate`
to send (the same object while it stays valid, so the wire bytes are built once) and
hands every response, or transport error, back to ``classify``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from .._http.request import RequestTemplate
from .._http.response import Response
from .._http.urls import ParsedURL
from .._results.recorder import Outcome
from ..errors import ConfigError

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


@runtime_checkable
class PreparedTarget(Protocol):
    """What the engine drives: a request source and a classifier."""

    url: ParsedURL
    verify: bool | str
    max_body_bytes: int

    @property
    def access_key_id(self) -> str | None:
        """The AWS access key id a signed target signs with (named when every request is
        refused as unauthenticated; never a secret); None for an unsigned target."""

    def current_request(self) -> RequestTemplate:
        """The request to send now (the same object while it stays valid)."""

    def classify(
        self, response: Response | None, error_kind: str | None, latency_ns: int | None
    ) -> Outcome:
        """Turn a response (or a transport error kind) into an Outcome."""


class Target(Protocol):
    def describe(self) -> str:
        """A one-line, secret-free description for reports."""

    def shape_info(self) -> dict[str, Any]:
        """Secret-free fields for the JSON report."""

    def prepare(self) -> PreparedTarget: ...


ColdStartDetector = Callable[[Response], Any]


def check_throttle_statuses(statuses: object) -> tuple[int, ...]:
    """The statuses a target counts as throttles, checked (shared by every target)."""
    forms = "use a list of HTTP status codes like (429,) or [500] for an API Gateway REST API"
    if isinstance(statuses, (int, str, bytes)) or not isinstance(statuses, Iterable):
        raise ConfigError(f"throttle_statuses={statuses!r} is not valid; {forms}")
    checked = tuple(statuses)
    for status in checked:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigError(f"throttle_statuses contains {status!r}; {forms}")
    return checked


def check_transport_options(verify: object, max_body_bytes: object) -> None:
    """TLS verification and the body cap, checked when a target is built."""
    if not isinstance(verify, (bool, str)) or (
        isinstance(verify, str) and not os.path.isfile(verify)
    ):
        raise ConfigError(
            f"verify={verify!r} is not valid; use True, False or the path of an existing CA "
            "bundle file"
        )
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or (max_body_bytes < 0)
    ):
        raise ConfigError(
            f"max_body_bytes={max_body_bytes!r} is not valid; use a whole number >= 0"
        )
