"""Bytes and JSON shapes shared by the emulator's routes."""

from __future__ import annotations

import json
from typing import Any

from .model import SCALING_LIMIT

JSON = b"content-type: application/json\r\n"
HANDLED, UNHANDLED, TIMEOUT = "Handled", "Unhandled", "Timeout"


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def error_head(error_type: str, extra: bytes = b"") -> bytes:
    """Header lines of an AWS-shaped JSON error, plus ``extra`` header lines."""
    return JSON + b"x-amzn-errortype: " + error_type.encode() + b"\r\n" + extra


def wire_reason(reason: str) -> str:
    """The Reason Lambda sends; a scaling-rate throttle is reported as the account limit."""
    return "ConcurrentInvocationLimitExceeded" if reason == SCALING_LIMIT else reason
