"""``auth=`` an ``httpx.Auth``: its flow gives the headers every request carries.

The flow runs off the hot path, against a synthetic ``httpx.Request`` (before the release,
then again every ``auth_refresh`` seconds and after a 401): the headers it adds or
changes (``Authorization: Basic ...``, a bearer token from a Cognito or JWT provider) are
sent with every request until the next run. A flow that must send a request itself (it
yields again, expecting a response: digest auth, a login round trip) is not supported.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError

DEFAULT_AUTH_REFRESH_S = 60.0
# After a 401 the flow runs again, but at most this often (401s of requests in flight with
# the old token arrive together).
MIN_RERUN_S = 0.1
HTTPX_AUTH_FORMS = (
    "an httpx.Auth whose auth_flow only sets headers (httpx.BasicAuth, a bearer-token "
    "provider); flows that send requests of their own are not supported"
)


def is_httpx_auth(value: object) -> bool:
    """True for an httpx.Auth (checked without importing httpx for the other forms)."""
    if not hasattr(value, "sync_auth_flow"):
        return False
    import httpx  # lazy: httpx is needed only by targets that use an httpx.Auth

    return isinstance(value, httpx.Auth)


def _flow_headers(auth: Any, method: str, url: str) -> tuple[tuple[str, str], ...]:
    """The headers ``auth``'s flow adds or changes on a synthetic request."""
    import httpx  # lazy: see is_httpx_auth

    synthetic = httpx.Request(method, url)
    before = list(synthetic.headers.multi_items())
    flow = auth.sync_auth_flow(synthetic)
    try:
        request = next(flow)
    except StopIteration:
        raise ConfigError(f"auth={auth!r} sent no request; use {HTTPX_AUTH_FORMS}") from None
    except Exception as exc:
        raise ConfigError(
            f"the auth flow of {type(auth).__name__} raised {type(exc).__name__}: {exc}"
        ) from exc
    try:
        flow.send(httpx.Response(200, request=request))
    except StopIteration:
        pass  # done after one request: a header-producing flow
    else:
        flow.close()
        raise ConfigError(
            f"auth={type(auth).__name__}(...) sends requests of its own (its flow wants a "
            f"response); only header-producing flows are supported: {HTTPX_AUTH_FORMS}"
        )
    added = tuple(
        (name, value)
        for name, value in request.headers.multi_items()
        if (name, value) not in before
    )
    if not added:
        raise ConfigError(
            f"auth={type(auth).__name__}(...) added no header to the request (a flow that "
            "waits for the server's challenge, like digest auth, sends requests of its own); "
            f"only header-producing flows are supported: {HTTPX_AUTH_FORMS}"
        )
    for name, value in added:
        if any(ch in value for ch in "\r\n\0"):
            raise ConfigError(f"the auth flow's header {name!r} has CR, LF or NUL in its value")
    return added


class HttpxAuthHeaders:
    """The headers of an httpx.Auth, run again after ``refresh_s`` or a 401."""

    per_body = False
    access_key_id: str | None = None

    def __init__(self, auth: Any, method: str, url: str, refresh_s: float) -> None:
        self._auth = auth
        self._method = method
        self._url = url
        self.refresh_s = refresh_s
        self.runs = 0  # how many times the flow ran
        self.headers: tuple[tuple[str, str], ...] = ()
        self.changed_at = 0.0
        self._refresh()

    def _refresh(self) -> bool:
        """Run the flow; True when its headers changed."""
        headers = _flow_headers(self._auth, self._method, self._url)
        self.runs += 1
        self._ran_at = time.monotonic()
        self._force = False
        changed = self.runs == 1 or headers != self.headers
        self.headers = headers
        if changed:
            self.changed_at = self._ran_at
        return changed

    def apply(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        names = {name.lower() for name, _ in self.headers}
        kept = [(name, value) for name, value in headers if name.lower() not in names]
        return [*kept, *self.headers]

    def stale(self, built_at: float) -> bool:
        since = time.monotonic() - self._ran_at
        if since >= self.refresh_s or (self._force and since >= MIN_RERUN_S):
            self._refresh()
        return built_at < self.changed_at

    def saw_status(self, status: int) -> None:
        if status == 401:
            self._force = True  # a new token before the next request
