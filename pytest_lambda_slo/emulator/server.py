"""HTTP/1.1 server: an asyncio Protocol around httptools, keep-alive and in-order pipelining."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httptools

log = logging.getLogger("pytest_lambda_slo.emulator")

REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
STATUS_LINES = {code: f"HTTP/1.1 {code} {text}\r\n".encode() for code, text in REASONS.items()}
_MAX_QUEUED = 64  # pipelined requests buffered per connection before reading pauses
MAX_HEAD_BYTES = 64 * 1024  # URL plus headers; beyond this the request is malformed
_monotonic_ns = time.monotonic_ns


def status_line(code: int) -> bytes:
    line = STATUS_LINES.get(code)
    return line if line is not None else f"HTTP/1.1 {code} Status\r\n".encode()


class Request:
    """One parsed request; headers are (lowercase name, value) byte pairs."""

    __slots__ = ("body", "headers", "http10", "keep_alive", "method", "t0", "too_large", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.method = b""
        self.keep_alive = True
        self.http10 = False
        self.t0 = 0
        self.too_large = False

    def header(self, name: bytes) -> bytes | None:
        """First value of header ``name`` (lowercase bytes)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class App(Protocol):
    def handle(self, request: Request, conn: Connection) -> None: ...

    def on_parse_error(self) -> None: ...

    def on_handler_error(self) -> None: ...  # counted in /_emulator/stats


class Connection(asyncio.Protocol):
    """One client connection; requests are answered strictly in arrival order."""

    __slots__ = (
        "_app",
        "_body",
        "_current",
        "_limit",
        "_max_body",
        "_parser",
        "_paused",
        "_queue",
        "_req",
        "_running",
        "_size",
        "_transport",
        "_upgraded",
        "_upload_limit",
        "_url",
        "_write_paused",
    )

    def __init__(
        self,
        app: App,
        max_body: int,
        upload_limit: Callable[[bytes, bytes], int] | None = None,
    ) -> None:
        self._app = app
        self._max_body = max_body
        # (method, url) -> body limit, for the few requests allowed more (code uploads).
        self._upload_limit = upload_limit
        self._limit = max_body
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._current: Request | None = None
        self._running = False
        self._paused = False  # reading paused: too many pipelined requests queued
        self._write_paused = False  # reading paused: the client does not read our responses
        self._upgraded = False  # an Upgrade request was read: read nothing more
        self._req = Request()
        self._url: list[bytes] = []
        self._body: list[bytes] = []
        self._size = 0

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._transport is not None and not self._paused:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._queue and self._current is None:
            self._run()  # the answers held back while the client was not reading
        transport = self._transport
        if transport is not None and not (self._paused or self._write_paused or self._upgraded):
            transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except Exception:  # parser errors, a head over MAX_HEAD_BYTES
            self._bad_request()

    def _upgrade(self) -> None:
        """An Upgrade (WebSocket, h2c) or CONNECT request: answer it as plain HTTP/1.1.

        Lambda's front doors do not switch protocols. The bytes after the request belong to
        the other protocol, so nothing more is read and the connection closes after the answer.
        """
        transport = self._transport
        if transport is None:
            return
        self._upgraded = True
        transport.pause_reading()
        pending = self._queue[-1] if self._queue else self._current
        if pending is not None:
            pending.keep_alive = False
        else:  # already answered
            transport.close()
            self._transport = None

    def _bad_request(self) -> None:
        transport = self._transport
        if transport is None:
            return
        self._app.on_parse_error()
        body = b'{"message":"Malformed HTTP request"}'
        transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"x-amzn-errortype: BadRequestException\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.close()
        self._transport = None
        self._queue.clear()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._req = Request()
        self._url = []
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._size += len(url)
        if self._size > MAX_HEAD_BYTES:
            raise ValueError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._req.headers.append((name.lower(), value))
        self._size += len(name) + len(value)
        if self._size > MAX_HEAD_BYTES:
            raise ValueError("request head too large")

    def on_headers_complete(self) -> None:
        req = self._req
        req.method = self._parser.get_method()
        req.http10 = self._parser.get_http_version() == "1.0"
        if self._upload_limit is not None:
            if req.method == b"POST" or req.method == b"PUT":  # uploads only: GETs stay cheap
                url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
                self._limit = self._upload_limit(req.method, url)
            else:
                self._limit = self._max_body
        self._size = 0  # from here on it counts body bytes
        if req.header(b"expect") == b"100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self._req
        if req.too_large:
            return
        self._body.append(body)
        self._size += len(body)
        if self._size > self._limit:
            req.too_large = True
            self._body = []  # keep memory bounded; the request gets a 413

    def on_message_complete(self) -> None:
        req = self._req
        req.t0 = _monotonic_ns()
        req.url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        if self._body:
            req.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req.keep_alive = self._parser.should_keep_alive()
        self._queue.append(req)
        if len(self._queue) > _MAX_QUEUED and not self._paused and self._transport is not None:
            self._paused = True
            if not self._write_paused:
                self._transport.pause_reading()
        self._run()

    # request scheduling
    def _run(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            queue = self._queue
            # No new answers while the client is not reading the ones already written: one
            # read of tiny pipelined requests must not turn into gigabytes of buffered bodies.
            while (
                self._current is None
                and queue
                and self._transport is not None
                and not self._write_paused
            ):
                req = queue.popleft()
                self._current = req
                try:
                    self._app.handle(req, self)
                except Exception:
                    log.exception("handler failed")
                    self._app.on_handler_error()
                    if self._current is req:
                        self.send_error_500(req)
            if self._paused and len(queue) < _MAX_QUEUED // 2 and self._transport is not None:
                self._paused = False
                if not self._write_paused and not self._upgraded:
                    self._transport.resume_reading()
        finally:
            self._running = False

    def send(self, req: Request, status: int, head: bytes, body: bytes) -> int:
        """Write the response to ``req``; ``head`` is header lines (each ending in CRLF).

        Returns the monotonic ns time of the write, or 0 when the client is gone.
        """
        transport = self._transport
        if self._current is not req:  # a stale callback (connection reset) must not write
            return 0
        self._current = None
        if transport is None:
            return 0
        if not req.keep_alive:
            conn = b"connection: close\r\n"
        elif req.http10:
            conn = b"connection: keep-alive\r\n"
        else:
            conn = b""
        length = len(body)
        if req.method == b"HEAD":  # same headers, no body (or the next response is corrupt)
            body = b""
        transport.write(
            b"%s%s%scontent-length: %d\r\n\r\n%s" % (status_line(status), head, conn, length, body)
        )
        written = _monotonic_ns()
        if not req.keep_alive:
            transport.close()
            self._transport = None
            self._queue.clear()
        elif self._queue and not self._running:
            self._run()
        return written

    def send_error_500(self, req: Request) -> None:
        body = b'{"Type":"Service","message":"Internal error in the emulator"}'
        self.send(
            req,
            500,
            b"content-type: application/json\r\nx-amzn-errortype: ServiceException\r\n",
            body,
        )
