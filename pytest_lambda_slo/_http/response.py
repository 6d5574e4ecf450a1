"""The response object a classifier sees: status, case-insensitive headers, (capped) body.

Also the ids AWS puts on a response (request id, API Gateway's ids, the X-Ray trace id),
read only when asked: from the parsed headers, or on a lean connection (headers not parsed)
from the raw bytes of the head the connection kept.
"""

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


# Response headers that name a request (lower case) -> the key the results use for each.
# x-amzn-RequestId: Function URLs and the Invoke API (Lambda's RequestId, the @requestId of
# its logs), API Gateway REST APIs (API Gateway's own request id); apigw-requestid: HTTP
# APIs; x-amz-apigw-id: REST APIs' extended request id; X-Amzn-Trace-Id: X-Ray.
ID_HEADERS = {
    b"x-amzn-requestid": "request_id",
    b"apigw-requestid": "apigw_request_id",
    b"x-amz-apigw-id": "apigw_id",
    b"x-amzn-trace-id": "trace_id",
}


def final_head(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The header lines (name, value) of the final response head in ``raw``, after any 1xx."""
    pairs = []
    for line in _final_head_lines(raw)[1][1:]:
        name, _, value = line.partition(b":")
        pairs.append((name.strip(), value.strip()))
    return pairs


def final_status(raw: bytes) -> int:
    """The status of the final response head in ``raw`` (after any 1xx); 0: not complete."""
    return _final_head_lines(raw)[0]


def _final_head_lines(raw: bytes) -> tuple[int, list[bytes]]:
    """The final response head in ``raw`` after any 1xx: (status, its lines); (0, []) when
    no final head is complete (a status line that is no status reads as 0 too)."""
    pos = 0
    while True:
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            return 0, []
        lines = raw[pos:end].split(b"\r\n")
        status_line = lines[0].split()
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        if 100 <= status < 200 and status != 101:
            pos = end + 4  # an interim response: the final head follows
            continue
        return status, lines


def trace_root(value: str) -> str:
    """The X-Ray trace id in an ``X-Amzn-Trace-Id`` value (``Root=1-...;Parent=...``)."""
    for part in value.split(";"):
        key, _, field = part.strip().partition("=")
        if key.lower() == "root" and field:
            return field
    return value.strip()


def ids_of(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request ids among header lines: result key -> value (a trace id as its Root)."""
    ids: dict[str, str] = {}
    for name, value in pairs:
        key = ID_HEADERS.get(name.lower())
        if key is not None and value:
            text = value.decode("latin-1").strip()
            ids[key] = trace_root(text) if key == "trace_id" else text
    return ids


class Result:
    """What one request on a connection came to (``error`` None means a full response)."""

    __slots__ = ("error", "response", "reused", "t_end", "t_start")

    def __init__(
        self, error: str | None, response: Response | None, t_start: int, t_end: int, reused: bool
    ) -> None:
        self.error = error
        self.response = response
        self.t_start = t_start
        self.t_end = t_end
        self.reused = reused

    @property
    def latency_ns(self) -> int:
        return self.t_end - self.t_start


class Response:
    """One HTTP response as the engine read it. ``truncated`` is set when the body hit the cap.

    ``first_byte_ns``: when its first bytes arrived (``time.perf_counter_ns()``; 0 unknown).
    ``raw_head``: on a lean connection, the bytes read until the head was complete (the
    headers were not parsed); :meth:`request_ids` reads them.
    """

    __slots__ = (
        "body_bytes", "content", "first_byte_ns", "headers", "raw_head", "status_code",
        "truncated",
    )  # fmt: skip

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        content: bytes,
        body_bytes: int | None = None,
        truncated: bool = False,
        *,
        first_byte_ns: int = 0,
        raw_head: list[bytes] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.body_bytes = len(content) if body_bytes is None else body_bytes
        self.truncated = truncated
        self.first_byte_ns = first_byte_ns
        self.raw_head = raw_head

    def request_ids(self) -> dict[str, str]:
        """The ids AWS sent with this response (keys of ID_HEADERS' values), parsed now."""
        if self.raw_head is not None and not self.headers.raw:
            return ids_of(final_head(b"".join(self.raw_head)))
        return ids_of(self.headers.raw)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.body_bytes} bytes>"
