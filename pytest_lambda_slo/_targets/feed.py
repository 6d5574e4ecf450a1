"""Per-request requests, built ahead of the send: one engine's share of the run, in order.

Request ``k`` of an engine that runs slice ``index`` of ``count`` is the run's request
``base + index + count * k`` (the split of slices.py: every global index is sent by exactly
one process). Encoding (JSON) and signing happen here, never between the write of a
request and the end of its response: before the release for a run whose size is known
(up to PRIME_MAX requests, PRIME_MAX_SIGNED when each request is signed), then in chunks
when the built ones run out. A chunk is built on the engine's loop between two requests;
the docs give its cost (docs/requests.md).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from .._http.request import RequestTemplate

PRIME_MAX = 100_000
PRIME_MAX_SIGNED = 5_000
CHUNK = 256
CHUNK_SIGNED = 32


class RequestAuth(Protocol):
    """What a target's ``auth=`` does to a request: add its headers, say when to redo them."""

    @property
    def access_key_id(self) -> str | None:
        """The AWS access key id that signs (IAM), else None. Never a secret."""

    @property
    def per_body(self) -> bool:
        """True when the headers depend on the body (SigV4): each body is signed."""

    def apply(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """``headers`` with the auth headers added."""

    def stale(self, built_at: float) -> bool:
        """True when a request built at ``built_at`` (time.monotonic) must be built again."""

    def saw_status(self, status: int) -> None:
        """A response's status (a 401 makes a token provider fetch a new token)."""


class RequestFeed:
    """The requests one engine sends, in order; ``build(i)`` makes global request ``i``."""

    def __init__(self, build: Callable[[int], RequestTemplate], auth: RequestAuth | None) -> None:
        self._build = build
        self._auth = auth
        signed = auth is not None and auth.per_body
        self.prime_max = PRIME_MAX_SIGNED if signed else PRIME_MAX
        self.chunk = CHUNK_SIGNED if signed else CHUNK
        self._ready: deque[tuple[RequestTemplate, float]] = deque()
        self._base = 0  # global index of this binding's first request (waves go on from it)
        self._index = 0
        self._count = 1
        self._taken = 0  # requests handed out in this binding
        self._built = 0  # requests built in this binding
        self.rebuilt = 0  # requests built again because their auth went stale

    def begin(self, index: int, count: int, requests: int | None) -> None:
        """Bind to slice ``index`` of ``count`` (before its connections open) and build its
        first requests: all of them when the slice's size is known and small enough."""
        if self._count == 1:  # one process ran the last binding: the next one follows it
            self._base += self._taken
        self._index, self._count = index, count
        self._taken = self._built = 0
        self._ready.clear()
        self._fill(self.chunk if requests is None else max(1, min(requests, self.prime_max)))

    def global_index(self, k: int) -> int:
        return self._base + self._index + self._count * k

    def _fill(self, n: int) -> None:
        ready = self._ready
        build = self._build
        for _ in range(n):
            template = build(self.global_index(self._built))
            ready.append((template, time.monotonic()))
            self._built += 1

    def next(self) -> RequestTemplate:
        """The next request to send (built now only when the built ones ran out or went stale)."""
        ready = self._ready
        if not ready:
            self._fill(self.chunk)
        elif self._auth is not None and self._auth.stale(ready[0][1]):
            # Signed too long ago, or the credentials changed: sign the rest again.
            self.rebuilt += len(ready)
            ready.clear()
            self._built = self._taken
            self._fill(self.chunk)
        self._taken += 1
        return ready.popleft()[0]
