"""The wire form of an HttpTarget: the requests to send (fixed or per request) and classify.

A fixed request is one template (signed again when its signature or token goes stale); a
target whose requests differ builds them ahead of the send through a RequestFeed. Classify
turns a response into an Outcome: throttle statuses, redirects and errors by class, a 401
or 403 of an authorised target as ``auth_denied`` (naming the signing key id), then the
user's check (``check_failed``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from .._http.request import RequestTemplate
from .._http.response import Response
from .._http.urls import ParsedURL, redact_url
from .._results.recorder import Outcome
from ..errors import UserCallableError
from .checks import CHECK_FAILED, ResponseCheck, label_of
from .feed import RequestAuth, RequestFeed
from .httpauth import HttpxAuthHeaders
from .httpparts import check_headers, check_target_path, encode_body, query_text
from .values import ValuesAt

AUTH_DENIED = "auth_denied"
_AUTH_STATUSES = (401, 403)
_DATA_ORDER = ("json", "body", "path", "query", "headers")  # what a label= callable is given


def _split_target(url: ParsedURL) -> tuple[str, str]:
    path, _, query = url.target.partition("?")
    return path, query


class PreparedHttp:
    """Wire form of an HttpTarget (``target``): its requests and its classification rules."""

    # The request to send now: picked per mode in __init__ (a fixed unsigned request costs
    # one C call: an itertools.repeat of the one template).
    current_request: Callable[[], RequestTemplate]

    def __init__(self, target: Any) -> None:
        url: ParsedURL = target._parsed
        self.url = url
        self.verify = target.verify
        self.max_body_bytes = target.max_body_bytes
        self.method: str = target.method
        self.check_messages: list[str] = []  # the first distinct check failures (the report)
        self.auth_messages: list[str] = []  # why requests were denied, naming the key id
        self._target = target
        self._auth: RequestAuth | None = None
        if target._iam is not None:
            self._auth = target._iam.signing(url.host, redact_url(url.original))
        elif target.auth is not None:
            self._auth = HttpxAuthHeaders(
                target.auth, self.method, self._sign_url(url.target), target.auth_refresh
            )
        self._varying = target._varying
        self._label = target.label
        self._values_at = ValuesAt(self._varying, target.seed)
        self._base_path, self._base_query = _split_target(url)
        self._feed: RequestFeed | None = None
        self._template: RequestTemplate | None = None
        self._built_at = 0.0
        # The one request every request of a run is (no per-request data, not signed), or
        # None: an engine may then encode it once instead of asking current_request().
        self.fixed_request: RequestTemplate | None = None
        if self._varying or callable(self._label):
            self._feed = RequestFeed(self._build, self._auth)
            self.current_request = self._feed.next
        else:
            self._template = self._build(0)
            self._built_at = time.monotonic()
            if self._auth is not None:
                self.current_request = self._fixed_authorised
            else:
                self.current_request = itertools.repeat(self._template).__next__
                self.fixed_request = self._template
        self._throttle = frozenset(target.throttle_statuses)
        cold = target.cold_start
        self._cold_header = cold.lower() if isinstance(cold, str) else None
        self._cold_fn = cold if callable(cold) else None
        self._check = (
            ResponseCheck(target.check, self.check_messages) if target.check is not None else None
        )
        # Without a cold-start detector or a check the outcome depends on the status and the
        # body's length only: the transport need not keep headers or body bytes.
        self.needs_headers = self.needs_body = cold is not None or target.check is not None
        # The statuses classify() calls a plain ok from the status alone (None: it reads
        # more): the closed model records those without building an Outcome.
        self.plain_ok_statuses: frozenset[int] | None = (
            None if self.needs_headers else frozenset(range(300)) - self._throttle
        )

    @property
    def access_key_id(self) -> str | None:
        return self._auth.access_key_id if self._auth is not None else None

    @property
    def feed(self) -> RequestFeed | None:
        """The per-request feed (None: one fixed request)."""
        return self._feed

    def begin(self, index: int, count: int, requests: int | None) -> None:
        """Bind to the engine's slice before its connections open (builds what it can)."""
        if self._feed is not None:
            self._feed.begin(index, count, requests)

    # the requests ----------------------------------------------------------------------
    def _fixed_authorised(self) -> RequestTemplate:
        auth = self._auth
        assert auth is not None and self._template is not None
        if auth.stale(self._built_at):
            self._built_at = time.monotonic()
            self._template = self._build(0)
        return self._template

    def _sign_url(self, target: str) -> str:
        return f"{self.url.scheme}://{self.url.host_header}{target}"

    def _build(self, i: int) -> RequestTemplate:
        """Request ``i``: its values, encoded, its headers (signed or authorised), its label."""
        target = self._target
        values = self._values_at(i) if self._varying else {}
        if "json" in values:
            value = values["json"]
            body = value if per_rows(self._varying["json"]) else encode_body(None, value)[0]
            content_type: str | None = "application/json"
        elif "body" in values:
            value = values["body"]
            body = value if per_rows(self._varying["body"]) else encode_body(value, None)[0]
            content_type = None
        else:
            body, content_type = target._body_bytes
        if "headers" in values:
            value = values["headers"]
            pairs = value if per_rows(self._varying["headers"]) else check_headers(value)
        else:
            pairs = target._header_pairs
        url = self.url
        if (
            "path" in values
            or "query" in values
            or target.path is not None
            or target.query is not None
        ):
            url = self._url_for(values)
        headers = {k.lower(): (k, v) for k, v in pairs}
        if content_type:
            headers.setdefault("content-type", ("Content-Type", content_type))
        headers.setdefault("host", ("Host", url.host_header))
        headers.setdefault("accept", ("Accept", "*/*"))
        agent = headers.pop("user-agent", ("User-Agent", "pytest-lambda-slo"))
        length = headers.pop("content-length", None)
        items = list(headers.values())
        if self._auth is not None:
            # User-Agent and Content-Length are sent unsigned (as for the Invoke API).
            items = self._auth.apply(self.method, self._sign_url(url.target), items, body)
        items.append(agent)
        if body or self.method in ("POST", "PUT", "PATCH"):
            items.append(("Content-Length", str(len(body))))
        elif length is not None:
            items.append(length)
        label = self._label
        if callable(label):
            data = next((values[name] for name in _DATA_ORDER if name in values), i)
            label = label_of(label, data)
        return RequestTemplate(self.method, url, tuple(items), body, label)

    def _url_for(self, values: dict[str, Any]) -> ParsedURL:
        target = self._target
        path = values.get("path", target.path)
        path = self._base_path if path is None else path
        if "path" in values and not per_rows(self._varying["path"]):
            path = check_target_path(path)
        query = values.get("query", target.query)
        if query is None:
            query = self._base_query
        elif not ("query" in values and per_rows(self._varying["query"])):
            query = query_text(query)
        text = f"{path}?{query}" if query else path
        base = self.url
        return ParsedURL(base.scheme, base.host, base.port, text, base.original)

    # classification ----------------------------------------------------------------------
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
        if outcome.kind == "ok" and self._check is not None:
            if self._check.failure(response) is not None:  # after the clock stopped
                outcome.kind, outcome.error_kind = "error", CHECK_FAILED
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
            if status in _AUTH_STATUSES and self._auth is not None:
                error_kind = self._denied(status)
            else:
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

    def _denied(self, status: int) -> str:
        """A 401/403 of an authorised target: note who signed (never a secret)."""
        auth = self._auth
        assert auth is not None
        auth.saw_status(status)
        key = auth.access_key_id
        note = (
            f"HTTP {status}: requests signed with AWS access key id {key} were denied"
            if key
            else f"HTTP {status}: requests authorised by {self._target.auth_kind()} were denied"
        )
        if note not in self.auth_messages and len(self.auth_messages) < 5:
            self.auth_messages.append(note)
        return AUTH_DENIED


def per_rows(values: Any) -> bool:
    """True when ``values`` are rows (already checked and encoded when the target was built)."""
    return values.rows is not None
