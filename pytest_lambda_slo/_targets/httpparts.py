"""The parts of an HTTP request, checked: headers, bodies, paths and queries.

Shared by the target (a fixed value is checked when the target is built) and its wire
form (a per-request value is checked when its request is built).
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Mapping
from urllib.parse import urlencode

from ..errors import ConfigError

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_FORMS = "a mapping like {'Authorization': '...'} or a list of (name, value) pairs"


def check_headers(headers: object) -> tuple[tuple[str, str], ...]:
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


def encode_body(body: object, json_value: object) -> tuple[bytes, str | None]:
    """The request body and its content type, checked when the target is built."""
    if json_value is not None:
        try:
            return _json.dumps(json_value, separators=(",", ":")).encode(), "application/json"
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"json= is not JSON serialisable ({exc}); use dicts, "
                              "lists, strings, numbers, booleans and None") from None  # fmt: skip
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), None
    raise ConfigError(
        f"body={body!r} is not valid; use bytes or str (or json= for JSON), a list of them "
        "(cycled), or a callable f(i) returning one"
    )


def is_header_pairs(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
        for item in value
    )


def check_target_path(path: object) -> str:
    """A per-request path: it starts with '/' and has no spaces or CR/LF."""
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n\0"):
        raise ConfigError(
            f"path={path!r} is not valid; use a path starting with '/' (no spaces), a list "
            "of them (cycled), or a callable f(i) returning one"
        )
    return path


def query_text(query: object) -> str:
    """A query as written after '?': a str (without '?') or a mapping (encoded)."""
    if isinstance(query, str) and not any(c in query for c in " \r\n\0#"):
        return query.lstrip("?")
    if isinstance(query, Mapping):
        return urlencode(list(query.items()), doseq=True)
    raise ConfigError(
        f"query={query!r} is not valid; use a mapping like {{'id': 7}} or 'id=7', a list of "
        "them (cycled), or a callable f(i) returning one"
    )
