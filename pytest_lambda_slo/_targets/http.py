"""HttpTarget: an HTTP(S) endpoint (API Gateway, a Function URL): build and classify requests."""

from __future__ import annotations

import json as _json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._http.request import RequestTemplate
from .._http.response import Response
from .._http.urls import ParsedURL, parse_url, redact_headers, redact_url
from .._results.recorder import Outcome
from ..errors import ConfigError, UserCallableError
from .base import (
    DEFAULT_MAX_BODY_BYTES,
    ColdStartDetector,
    PreparedTarget,
    check_throttle_statuses,
    check_transport_options,
)

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_FORMS = "a mapping like {'Authorization': '...'} or a list of (name, value) pairs"


def _check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    """Header pairs, refusing names that are not HTTP tokens and values with CR/LF/NUL."""
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        items = list(headers.items())
    elif isinstance(headers, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in headers
    ):
        items = [tuple(item) for item in headers]
    else:
        raise ConfigError(f"headers={headers!r} is not valid; use {HEADER_FORMS}")
    pairs = []
    for name, value in items:
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigError(
                f"header name {name!r} is not valid; use letters, digits and -_ (an HTTP token)"
            )
        text = str(value)
        if any(ch in text for ch in "\r\n\0"):
            # Refused, not stripped: CR/LF in a value would inject headers into the request.
            raise ConfigError(f"header {name!r} has CR, LF or NUL in its value; remove them")
        pairs.append((name, text))
    return tuple(pairs)


def _encode_body(body: object, json_value: object) -> tuple[bytes, str | None]:
    """The request body and its content type, checked when the target is built."""
    if body is not None and json_value is not None:
        raise ConfigError("HttpTarget takes body= or json=, not both")
    if json_value is not None:
        try:
            return _json.dumps(json_value, separators=(",", ":")).encode(), "application/json"
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"json= is not JSON serialisable ({exc}); use dicts, lists, "
                              "strings, numbers, booleans and None") from None  # fmt: skip
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), None
    raise ConfigError(f"body={body!r} is not valid; use bytes or str (or json= for JSON)")


@dataclass(frozen=True)
class HttpTarget:
    """An HTTP(S) endpoint: API Gateway, a Function URL, or any URL in front of a Lambda."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    body: bytes | str | None = None
    json: Any = None
    throttle_statuses: Iterable[int] = (429,)
    cold_start: str | ColdStartDetector | None = None
    verify: bool | str = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    _parsed: ParsedURL = field(init=False, repr=False, compare=False)
    _header_pairs: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _body_bytes: tuple[bytes, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_url(self.url))
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise ConfigError(f"method={self.method!r} is not valid; use an HTTP method like 'GET'")
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "_header_pairs", _check_headers(self.headers))
        object.__setattr__(self, "_body_bytes", _encode_body(self.body, self.json))
        object.__setattr__(
            self, "throttle_statuses", check_throttle_statuses(self.throttle_statuses)
        )
        cold = self.cold_start
        if cold is not None and not isinstance(cold, str) and not callable(cold):
            raise ConfigError(
                f"cold_start={cold!r} is not valid; use a response header name such as "
                "'x-cold-start' or a callable taking the response"
            )
        check_transport_options(self.verify, self.max_body_bytes)

    def __repr__(self) -> str:
        # Tracebacks with --showlocals print targets: never show header values or signatures.
        headers = dict(redact_headers(self._header_pairs))
        return f"HttpTarget({redact_url(self.url)!r}, method={self.method!r}, headers={headers!r})"

    def describe(self) -> str:
        return f"{self.method} {redact_url(self.url)}"

    def shape_info(self) -> dict[str, Any]:
        cold = self.cold_start
        return {
            "kind": "http",
            "method": self.method,
            "url": redact_url(self.url),
            "throttle_statuses": list(self.throttle_statuses),  # type: ignore[arg-type]
            "cold_start": cold if isinstance(cold, str) or cold is None else "callable",
        }

    def prepare(self) -> PreparedTarget:
        return _PreparedHttpTarget(self)


class _PreparedHttpTarget:
    """Wire form of an HttpTarget: one template, and the classification rules."""

    def __init__(self, target: HttpTarget) -> None:
        self.url = target._parsed
        self.verify = target.verify
        self.max_body_bytes = target.max_body_bytes
        self.access_key_id: str | None = None  # unsigned
        headers = {k.lower(): (k, v) for k, v in target._header_pairs}
        body, content_type = target._body_bytes
        if content_type:
            headers.setdefault("content-type", ("Content-Type", content_type))
        headers.setdefault("host", ("Host", self.url.host_header))
        headers.setdefault("user-agent", ("User-Agent", "pytest-lambda-slo"))
        headers.setdefault("accept", ("Accept", "*/*"))
        if body or target.method in ("POST", "PUT", "PATCH"):
            headers["content-length"] = ("Content-Length", str(len(body)))
        self._template = RequestTemplate(target.method, self.url, tuple(headers.values()), body)
        self._throttle = frozenset(target.throttle_statuses)  # type: ignore[arg-type]
        cold = target.cold_start
        self._cold_header = cold.lower() if isinstance(cold, str) else None
        self._cold_fn = cold if callable(cold) else None
        # Without a cold-start detector the outcome depends on the status and the body's
        # length only: the transport need not keep headers or body bytes.
        self.needs_headers = self.needs_body = cold is not None
        # The statuses classify() calls a plain ok from the status alone (None: it reads
        # more): the closed model records those without building an Outcome.
        self.plain_ok_statuses: frozenset[int] | None = (
            None if cold is not None else frozenset(range(300)) - self._throttle
        )

    def current_request(self) -> RequestTemplate:
        return self._template

    def classify(
        self, response: Response | None, error_kind: str | None, latency_ns: int | None
    ) -> Outcome:
        if response is None:
            return Outcome("error", latency_ns, error_kind=error_kind or "unknown")
        if error_kind is None and not self.needs_headers:
            status = response.status_code
            if status < 300 and status not in self._throttle:  # the common case, first
                return Outcome("ok", latency_ns, status=status, bytes_received=response.body_bytes)
        cold: bool | None = None
        raised: Exception | None = None
        if self._cold_header is not None:
            value = response.headers.get(self._cold_header)
            cold = None if value is None else value.strip().lower() == "true"
        elif self._cold_fn is not None:
            try:
                cold = bool(self._cold_fn(response))
            except Exception as exc:  # the user's code: the run stops with their traceback
                raised = exc
        outcome = self._outcome(response, error_kind, latency_ns, cold)
        if raised is not None:
            error = UserCallableError(
                f"the cold_start= callable raised {type(raised).__name__}: {raised}",
                outcome=outcome,
            )
            raise error from raised
        return outcome

    def _outcome(
        self, response: Response, error_kind: str | None, latency_ns: int | None, cold: bool | None
    ) -> Outcome:
        status = response.status_code
        if status in self._throttle:
            return Outcome(
                "throttle", latency_ns, status=status, bytes_received=response.body_bytes
            )
        if error_kind is None and status >= 300:
            # No redirect is followed, so a 3xx is a front door not serving the function
            # (a redirect loop would otherwise pass every budget): an error of its own kind.
            error_kind = f"http_{status // 100}xx"
        kind = "ok" if error_kind is None else "error"
        return Outcome(
            kind,
            latency_ns,
            status=status,
            error_kind=error_kind,
            cold=cold,
            bytes_received=response.body_bytes,
        )
