"""Bytes and JSON shapes shared by the emulator's routes, and the writes that count in the stats."""

from __future__ import annotations

import json
from typing import Any

from .model import PROCESS_LIMIT, SCALING_LIMIT, Function
from .server import Connection, Request

JSON = b"content-type: application/json\r\n"
HANDLED, UNHANDLED, TIMEOUT = "Handled", "Unhandled", "Timeout"


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def error_head(error_type: str, extra: bytes = b"") -> bytes:
    """Header lines of an AWS-shaped JSON error, plus ``extra`` header lines."""
    return JSON + b"x-amzn-errortype: " + error_type.encode() + b"\r\n" + extra


def wire_reason(reason: str) -> str:
    """The Reason Lambda sends; the scaling-rate and process-cap throttles are sent as the
    account limit."""
    if reason == SCALING_LIMIT or reason == PROCESS_LIMIT:
        return "ConcurrentInvocationLimitExceeded"
    return reason


def reply(
    req: Request, conn: Connection, fn: Function, status: int, head: bytes, body: bytes
) -> None:
    """Answer a request for ``fn``: count the status and the server-side latency."""
    written = conn.send(req, status, head, body)
    stats = fn.stats
    stats.responses[status] = stats.responses.get(status, 0) + 1
    if written:
        stats.latency.record((written - req.t0) // 1000)


def not_found(req: Request, conn: Connection, error_type: str, message: str) -> None:
    conn.send(req, 404, error_head(error_type), dumps({"Type": "User", "message": message}))


def bad_request(req: Request, conn: Connection, error_type: str, message: str) -> None:
    conn.send(req, 400, error_head(error_type), dumps({"Type": "User", "message": message}))


def function_missing(req: Request, conn: Connection, arn: str) -> None:
    not_found(req, conn, "ResourceNotFoundException", f"Function not found: {arn}")


def unknown_path(req: Request, conn: Connection, path: bytes) -> None:
    not_found(req, conn, "UnknownOperationException", "Unknown path " + path.decode("latin-1"))


class Canned:
    """Prebuilt bytes of one function's answers (the hot path only joins them)."""

    __slots__ = ("body", "cold_head", "payload", "warm_head")

    def __init__(self, function: Function) -> None:
        cfg = function.config
        size = cfg.body_size
        self.body = (b"hello" * (size // 5 + 1))[:size]
        self.payload = dumps(self.body.decode())  # the Invoke API's answer: a JSON string
        base = b"content-type: text/plain\r\n"
        if cfg.cold_header:
            self.cold_head = base + b"x-cold-start: true\r\n"
            self.warm_head = base + b"x-cold-start: false\r\n"
        else:
            self.cold_head = self.warm_head = base


class CannedAnswers:
    """The Canned bytes of every function, built on first use and dropped with the function."""

    def __init__(self) -> None:
        self._by_function: dict[Function, Canned] = {}

    def get(self, function: Function) -> Canned:
        canned = self._by_function.get(function)
        if canned is None:
            canned = self._by_function[function] = Canned(function)
        return canned

    def forget(self, function: Function) -> None:
        self._by_function.pop(function, None)
