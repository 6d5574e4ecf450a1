"""The Invoke API's wire details: payloads as JSON events, Lambda's headers, JSON bodies.

On the hot path (classify) these read raw header bytes and parse only what they must.
"""

from __future__ import annotations

import json as _json
from typing import Any

from .._http.response import Response
from ..errors import ConfigError


def encode_payload(payload: Any) -> bytes:
    if payload is None:
        return b"{}"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        raw = bytes(payload)
    elif isinstance(payload, str):
        raw = payload.encode()
    else:
        try:
            return _json.dumps(payload, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"payload of type {type(payload).__name__} is not JSON serialisable ({exc}); "
                "use a dict/list/str/number, or JSON text as str or bytes"
            ) from None
    try:
        _json.loads(raw)
    except ValueError as exc:
        # The payload itself is not quoted: it may hold tokens or personal data.
        where = f" at position {exc.pos}" if isinstance(exc, _json.JSONDecodeError) else ""
        raise ConfigError(
            f"payload ({len(raw)} bytes) is not JSON (invalid{where}); the Invoke API takes "
            "a JSON event: pass a dict/list, or JSON text as str or bytes"
        ) from None
    return raw


def lambda_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[bytes | None, str | None, str | None]:
    """X-Amz-Log-Result, X-Amz-Function-Error and x-amzn-ErrorType in one pass over raw headers.

    On the hot path: cheaper than building the case-insensitive map. The log result stays
    bytes (base64 is decoded from bytes); the error type loses its ':namespace' suffix
    (``ResourceNotFoundException:http://...`` -> ``ResourceNotFoundException``).
    """
    log_result = function_error = error_type = None
    for name, value in raw:
        length = len(name)
        if length == 16:  # x-amz-log-result, x-amzn-errortype
            lower = name.lower()
            if lower == b"x-amz-log-result":
                log_result = value
            elif lower == b"x-amzn-errortype":
                error_type = value.decode("latin-1").split(":", 1)[0].strip() or None
        elif length == 20 and name.lower() == b"x-amz-function-error":
            function_error = value.decode("latin-1").strip() or None
    return log_result, function_error, error_type


# Bodies up to this size are parsed to check they are JSON; bigger ones are only sniffed
# (first and last byte), so a 6 MB response does not cost milliseconds of generator CPU.
JSON_CHECK_MAX_BYTES = 256 * 1024
_JSON_ENDS = {ord("{"): b"}", ord("["): b"]", ord('"'): b'"'}


def is_json(content: bytes) -> bool:
    if len(content) > JSON_CHECK_MAX_BYTES:
        body = content.strip()
        closing = _JSON_ENDS.get(body[0]) if body else None
        return closing is not None and body.endswith(closing)
    try:
        _json.loads(content.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return False
    return True


def error_field(response: Response, key: str) -> str | None:
    """A string field of a JSON error body, or None when the body is not such JSON."""
    if response.truncated:
        return None
    try:
        data = _json.loads(response.content)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
