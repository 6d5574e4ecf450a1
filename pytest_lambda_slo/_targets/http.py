"""HttpTarget: an HTTP(S) endpoint (API Gateway, a Function URL): its options, checked when built.

What is sent (fixed or per request), how it is authorised (IAM, an httpx.Auth) and how a
response is judged; the wire form the engine drives is in httpreq.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._aws.iam import AwsIam, check_auth_iam
from .._http.urls import ParsedURL, parse_url, redact_headers, redact_url
from .._units import parse_duration
from ..errors import ConfigError
from .base import (
    DEFAULT_MAX_BODY_BYTES,
    ColdStartDetector,
    PreparedTarget,
    check_throttle_statuses,
    check_transport_options,
)
from .checks import check_check, check_label
from .httpauth import DEFAULT_AUTH_REFRESH_S, is_httpx_auth
from .httpparts import check_headers, check_target_path, encode_body, is_header_pairs, query_text
from .httpreq import PreparedHttp
from .values import Varying, check_seed, varying


@dataclass(frozen=True)
class HttpTarget:
    """An HTTP(S) endpoint: API Gateway, a Function URL, or any URL in front of a Lambda.

    ``headers``, ``body``, ``json``, ``path`` and ``query`` take a fixed value, rows cycled
    (a list; for ``json=`` a ``Cycle(rows)`` or a generator), or a callable ``f(i)`` /
    ``f(i, rng)`` of the request's global index (values.py). ``auth`` is ``"aws_iam"``,
    an :class:`AwsIam` or an ``httpx.Auth``; ``label`` a string or a callable of the
    request's data; ``check`` a callable judging each response.
    """

    url: str
    method: str = "GET"
    headers: Any = None
    body: Any = None
    json: Any = None
    throttle_statuses: Iterable[int] = (429,)
    cold_start: str | ColdStartDetector | None = None
    verify: bool | str = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    auth: Any = None
    path: Any = None
    query: Any = None
    label: Any = None
    check: Any = None
    seed: int | None = None
    auth_refresh: float | str = DEFAULT_AUTH_REFRESH_S
    _parsed: ParsedURL = field(init=False, repr=False, compare=False)
    _header_pairs: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _body_bytes: tuple[bytes, str | None] = field(init=False, repr=False, compare=False)
    _varying: dict[str, Varying] = field(init=False, repr=False, compare=False)
    _iam: AwsIam | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_url(self.url))
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise ConfigError(f"method={self.method!r} is not valid; use an HTTP method like 'GET'")
        object.__setattr__(self, "method", self.method.upper())
        if self.body is not None and self.json is not None:
            raise ConfigError("HttpTarget takes body= or json=, not both")
        per: dict[str, Varying] = {}
        for name, value, values_are_lists in (
            ("json", self.json, True),
            ("body", self.body, False),
            ("path", self.path, False),
            ("query", self.query, False),
        ):
            found = varying(name, value, sequences_are_values=values_are_lists)
            if found is not None:
                per[name] = found
        if self.headers is not None and not isinstance(self.headers, Mapping):
            if not is_header_pairs(self.headers):
                found = varying("headers", self.headers, sequences_are_values=False)
                if found is None:
                    check_headers(self.headers)  # the one-line error for a bad fixed form
                else:
                    per["headers"] = found
        object.__setattr__(self, "_varying", per)
        self._check_rows(per)
        fixed = {
            name: getattr(self, name) for name in ("headers", "body", "json") if name not in per
        }
        object.__setattr__(
            self, "_header_pairs", check_headers(fixed["headers"]) if "headers" in fixed else ()
        )
        object.__setattr__(self, "_body_bytes", encode_body(fixed.get("body"), fixed.get("json")))
        if self.path is not None and "path" not in per:
            check_target_path(self.path)
        if self.query is not None and "query" not in per:
            query_text(self.query)
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
        self._check_auth()
        check_label(self.label, "HttpTarget")
        check_check(self.check, "HttpTarget")
        object.__setattr__(self, "seed", check_seed(self.seed))

    def _check_rows(self, per: dict[str, Varying]) -> None:
        """Rows are checked (and encoded) once, here, not per request."""
        for name, values in per.items():
            if values.rows is None:
                continue
            if name == "body":
                values.rows = tuple(encode_body(row, None)[0] for row in values.rows)
            elif name == "json":
                values.rows = tuple(encode_body(None, row)[0] for row in values.rows)
            elif name == "path":
                values.rows = tuple(check_target_path(row) for row in values.rows)
            elif name == "query":
                values.rows = tuple(query_text(row) for row in values.rows)
            else:
                values.rows = tuple(check_headers(row) for row in values.rows)

    def _check_auth(self) -> None:
        auth = self.auth
        iam: AwsIam | None = None
        if auth is None:
            pass
        elif isinstance(auth, (str, AwsIam)):
            iam = check_auth_iam(auth)
            iam.resolve(self._parsed.host, redact_url(self.url))  # the one-line error now
        elif not is_httpx_auth(auth):
            raise ConfigError(
                f"auth={auth!r} is not valid; use 'aws_iam', AwsIam(service=..., region=...) "
                "or an httpx.Auth (httpx.BasicAuth, a bearer-token provider)"
            )
        object.__setattr__(self, "_iam", iam)
        refresh = parse_duration(self.auth_refresh, name="auth_refresh", allow_zero=False)
        object.__setattr__(self, "auth_refresh", refresh)

    @property
    def per_request(self) -> tuple[str, ...]:
        """The options that change from request to request (empty: one fixed request)."""
        return tuple(self._varying)

    def __repr__(self) -> str:
        # Tracebacks with --showlocals print targets: never show header values or signatures.
        headers = dict(redact_headers(self._header_pairs))
        return f"HttpTarget({redact_url(self.url)!r}, method={self.method!r}, headers={headers!r})"

    def describe(self) -> str:
        return f"{self.method} {redact_url(self.url)}"

    def auth_kind(self) -> str | None:
        """What authorises the requests, for reports (never a credential)."""
        if self._iam is not None:
            service, region = self._iam.resolve(self._parsed.host, redact_url(self.url))
            return f"aws_iam ({service}, {region})"
        if self.auth is not None:
            return f"httpx.Auth ({type(self.auth).__name__})"
        return None

    def shape_info(self) -> dict[str, Any]:
        cold = self.cold_start
        info: dict[str, Any] = {
            "kind": "http",
            "method": self.method,
            "url": redact_url(self.url),
            "throttle_statuses": list(self.throttle_statuses),  # type: ignore[arg-type]
            "cold_start": cold if isinstance(cold, str) or cold is None else "callable",
        }
        if self.auth is not None:
            info["auth"] = self.auth_kind()
        if self._varying:
            info["per_request"] = list(self._varying)
            info["seed"] = self.seed
        if self.label is not None:
            info["label"] = self.label if isinstance(self.label, str) else "callable"
        if self.check is not None:
            info["check"] = True
        return info

    def prepare(self) -> PreparedTarget:
        return PreparedHttp(self)


_PreparedHttpTarget = PreparedHttp  # the wire form's former name here (tests patch it)
