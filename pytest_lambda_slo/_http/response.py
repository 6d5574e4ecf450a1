"""The response object a classifier sees: status, case-insensitive headers, (capped) body."""

from __future__ import annotations

import json as _json
from collections.abc import Iterator, Mapping
from typing import Any


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of response headers (last value wins on repeats)."""

    __slots__ = ("_map", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._map: dict[str, str] | None = None

    def _lookup(self) -> dict[str, str]:
        if self._map is None:
            self._map = {
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.raw
            }
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._lookup()[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._lookup().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())


class Response:
    """One HTTP response as the engine read it. ``truncated`` is set when the body hit the cap."""

    __slots__ = ("body_bytes", "content", "headers", "status_code", "truncated")

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        content: bytes,
        body_bytes: int | None = None,
        truncated: bool = False,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.body_bytes = len(content) if body_bytes is None else body_bytes
        self.truncated = truncated

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.body_bytes} bytes>"
