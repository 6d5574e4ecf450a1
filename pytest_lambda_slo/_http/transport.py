"""HTTP/1.1 client transport: one keep-alive connection per in-flight slot, asyncio Protocols.

Chosen by measurement (docs/transport.md): a hand-written client on ``asyncio.Protocol``
with httptools' response parser costs a fraction of the CPU of httpx or aiohttp per
request, and it timestamps the end of a response inside the parser callback, so the
latency it reports does not include waiting for the event loop to resume a coroutine.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import httptools

from .response import Headers, Response, Result, final_head, final_status

perf_counter_ns = time.perf_counter_ns

# The error kinds the engine reports for a request that got no full answer (exact strings;
# the README lists them all, tests/test_docs.py keeps that so).
ERROR_KINDS = (
    "connect_refused",
    "dns_failure",
    "tls_error",
    "connect_timeout",
    "timeout",
    "connection_reset",
    "connection_closed",
    "truncated_body",
    "protocol_error",
    "body_too_large",
    "deadline",
    "cancelled",
    "proxy_error",
    "auth_denied",  # classified by an authorised target (401/403), listed with the rest
)


class TransportError(Exception):
    """A connection could not be set up; ``kind`` is one of ERROR_KINDS."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


# Timeouts are checked by one sweep per connection pool, on a grid of this many ns: a
# timeout fires up to this late (its latency is the time elapsed when it fired).
SWEEP_GRID_NS = 10_000_000
_NEVER = 1 << 62


class Deadlines:
    """The pending requests' timeouts of a set of connections, fired by one coarse sweep.

    A request stamps its deadline on its connection; no timer is armed per request. One
    loop timer is armed for the earliest deadline, rounded up to the next 10 ms step, and
    the sweep then fires every request past its deadline and re-arms for the next one.
    """

    __slots__ = ("_handle", "conns", "loop", "next_ns")

    def __init__(self) -> None:
        self.conns: set[HttpConnection] = set()  # connections that may have a request pending
        self.loop: asyncio.AbstractEventLoop | None = None
        self.next_ns = _NEVER  # when the armed sweep runs (perf_counter_ns)
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop, at_ns: int) -> None:
        """Sweep at ``at_ns`` (rounded up to the grid) instead of the sweep armed later."""
        if self._handle is not None:
            self._handle.cancel()
        self.loop = loop
        at_ns = -(-at_ns // SWEEP_GRID_NS) * SWEEP_GRID_NS
        self.next_ns = at_ns
        self._handle = loop.call_later(max(0, at_ns - perf_counter_ns()) / 1e9, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        self.next_ns = _NEVER
        now = perf_counter_ns()
        earliest = _NEVER
        conns = self.conns
        for conn in list(conns):
            if conn._done is None:
                conns.discard(conn)  # idle: its next request adds it again
            elif conn.deadline_ns <= now:
                conn.expire()
            elif conn.deadline_ns < earliest:
                earliest = conn.deadline_ns
        if earliest < self.next_ns and self.loop is not None:
            self.arm(self.loop, earliest)

    def stop(self) -> None:
        """Disarm the sweep (the pool's connections are closed)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.next_ns = _NEVER
        self.conns.clear()


class _LeanCallbacks:
    """The parser callbacks of a lean connection (set on an instance by HttpConnection)."""

    on_headers_complete: Callable[[], None]
    on_body: Callable[[bytes], None]
    on_message_complete: Callable[[], None]


# The headers of every lean connection's responses: none kept (read-only, so shared).
_NO_HEADERS = Headers([])


# How a finished request is delivered: ``done(error, response, t_start, t_end, reused)``.
Done = Callable[[str | None, Response | None, int, int, bool], None]
# How a lean connection hands a full response to ``ok=`` of HttpConnection.start (no
# Response built): ``ok(status, body_bytes, t_start, t_end, first_byte_ns)``.
Ok = Callable[[int, int, int, int, int], None]


# -- one connection ------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request at a time, parsed by httptools.

    A request ends in the protocol's own callbacks: the clock stops in the parser callback
    that ends the body, and the caller's ``done`` runs once the bytes read are parsed, in
    the same callback (no future, no task step), so a closed-model engine can write the
    next request from there.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_body_bytes: int,
        deadlines: Deadlines | None = None,
        *,
        lean: bool = False,
    ) -> None:
        self.loop = loop
        # Lean: the target reads neither headers nor body (only the status and the body's
        # length), so the parser calls no per-header callback and no body bytes are kept.
        self.lean = lean
        # Shared by the connections of one dialer; a connection alone gets its own.
        self.deadlines = deadlines if deadlines is not None else Deadlines()
        self.deadline_ns = 0  # when the pending request times out (perf_counter_ns)
        self.max_body_bytes = max_body_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost = False  # connection_lost has run: the socket is gone
        self.responses = 0  # complete responses read on this connection
        self.parser = self._new_parser()
        self._done: Done | None = None  # the pending request's callback (None: idle)
        # A finished request not yet handed to its callback: (done, error, response, t_end).
        self._ready: tuple[Done, str | None, Response | None, int, bool] | None = None
        self._ok: Ok | None = None  # the pending request's ok callback (lean only)
        self._ok_ready: Ok | None = None  # set with _t_end: a full response not yet handed
        self._t_end = 0
        self._t_start = 0
        self._timeout, self._timeout_ns = 0.0, 0  # the last request's timeout, in ns
        self._head = False
        self._began = False
        self._t_first = 0  # when the pending request's first response bytes arrived
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._body_len = 0
        self._raw: list[bytes] = []  # lean: what was read before the final head was complete

    def _new_parser(self, head: bool = False) -> httptools.HttpResponseParser:
        if not self.lean:
            return httptools.HttpResponseParser(self)
        # httptools calls only the callbacks its protocol object has. A lean one reads the
        # status in its first body callback or at the end of the message, so only a HEAD
        # request's parser (its response ends with the head) has on_headers_complete.
        callbacks = _LeanCallbacks()
        if head:
            callbacks.on_headers_complete = self.on_headers_complete
        callbacks.on_body = self._count_body
        callbacks.on_message_complete = self.on_message_complete
        return httptools.HttpResponseParser(callbacks)

    # asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._done is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        if not self._began:  # the first bytes of the response: its time to first byte
            self._began = True
            self._t_first = perf_counter_ns()
            self._raw = [data]  # lean: kept to read the head if asked or the connection drops
        elif self.lean and not self._status:
            self._raw.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish("protocol_error", None)
            self.close()
        except httptools.HttpParserError:
            self._finish("protocol_error", None)  # no-op when the request already finished
            self.close()
        ok = self._ok_ready
        if ok is not None:  # a full response for an ok callback: once per request
            self._ok_ready = None
            ok(self._status, self._body_len, self._t_start, self._t_end, self._t_first)
            return
        ready = self._ready
        if ready is not None:  # _deliver's work, inlined: once per request
            self._ready = None
            done, error, response, t_end, reused = ready
            done(error, response, self._t_start, t_end, reused)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost reports what was pending

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = True
        if self._done is None:
            return
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            self._finish("connection_reset", None)
        elif isinstance(exc, ssl.SSLError):
            self._finish("tls_error", None)
        elif isinstance(exc, OSError):
            self._finish("connection_reset", None)
        elif not self._began:
            self._finish("connection_closed", None)
        else:
            if not self._status and self.lean:  # no head callback: read the bytes kept
                self._status = final_status(b"".join(self._raw))
            if self._status and self._delimited_by_close():
                self._complete(perf_counter_ns())
            else:
                self._finish("truncated_body", None)
        self._deliver()

    # httptools callbacks -------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # Interim response (e.g. 103 Early Hints): wait for the final one.
            self._headers = []
            return
        self._status = status
        if self._head:
            self._complete(perf_counter_ns())

    def on_body(self, body: bytes) -> None:
        if self._done is None:
            return
        self._body_len += len(body)
        if self._body_len > self.max_body_bytes:
            # Past the cap: stop buffering and drop the connection (the rest is unread).
            t_end = perf_counter_ns()
            keep = self.max_body_bytes - (self._body_len - len(body))
            if keep > 0:
                self._chunks.append(body[:keep])
            response = self.response(truncated=True)
            self._finish("body_too_large", response, t_end)
            self.close()
            return
        self._chunks.append(body)

    def _count_body(self, body: bytes) -> None:
        """on_body of a lean connection: count the bytes, keep none (the head is complete)."""
        if self._done is None:
            return
        if not self._status:
            self._status = self.parser.get_status_code()
        self._body_len += len(body)
        if self._body_len > self.max_body_bytes:
            t_end = perf_counter_ns()
            self._finish("body_too_large", self.response(truncated=True), t_end)
            self.close()

    def on_message_complete(self) -> None:
        done = self._done
        if done is None:
            return
        if not self._status:  # a lean connection that read no body, or after a 1xx
            status = self.parser.get_status_code()
            if 100 <= status < 200 and status != 101:
                return  # an interim response (e.g. 103 Early Hints) ended: wait for the final
            self._status = status
        t_end = perf_counter_ns()  # the clock stops here, at the end of the body
        # _complete and _finish, inlined: this runs once per request.
        self.responses += 1
        self._done = None
        ok = self._ok
        if ok is not None:  # a lean connection's caller takes the figures, no Response
            self._t_end = t_end
            self._ok_ready = ok
        else:
            self._ready = (done, None, self.response(), t_end, self.responses > 1)
        if not self.parser.should_keep_alive():
            self.close()

    # requests --------------------------------------------------------------------------------
    def send(self, wire: bytes, timeout: float, *, head: bool = False) -> asyncio.Future[Result]:
        """Write one request; the future resolves with its Result (never raises)."""
        waiter: asyncio.Future[Result] = self.loop.create_future()

        def done(
            error: str | None, response: Response | None, t_start: int, t_end: int, reused: bool
        ) -> None:
            if not waiter.done():  # a cancelled caller already cancelled the future
                waiter.set_result(Result(error, response, t_start, t_end, reused))

        self.start(wire, timeout, done, head=head)
        return waiter

    def start(
        self, wire: bytes, timeout: float, done: Done, head: bool = False, ok: Ok | None = None
    ) -> None:
        """Write one request; ``done`` is called once when it ends (response, error, timeout).

        It runs inside this connection's callbacks (or in this call, when the connection is
        already closed); never after :meth:`cancel`. ``ok``: a lean connection's response
        ended by the parser goes there instead (:meth:`response` builds it if needed).
        """
        self._done = done
        self._ok = ok if self.lean else None
        self._began = False
        self._status = 0
        self._body_len = 0
        if not self.lean:  # a lean connection keeps no headers and no body
            self._headers = []
            self._chunks = []
        if head or self._head:
            # A HEAD response announces a body it does not send, so the parser that read it
            # still waits for that body: HEAD responses and whatever follows get a fresh one.
            self.parser = self._new_parser(head)
        self._head = head
        transport = self.transport
        self._t_start = t_start = perf_counter_ns()
        if timeout != self._timeout:
            self._timeout, self._timeout_ns = timeout, int(timeout * 1e9)
        self.deadline_ns = deadline = t_start + self._timeout_ns
        deadlines = self.deadlines
        deadlines.conns.add(self)
        if deadline < deadlines.next_ns:
            deadlines.arm(self.loop, deadline)
        if transport is None or self.closed or transport.is_closing():
            self.closed = True  # the next request dials a fresh connection
            self._finish("connection_closed", None)
            self._deliver()
        else:
            transport.write(wire)

    def expire(self) -> None:
        """The pending request timed out (the deadline sweep found it past its deadline)."""
        self._finish("timeout", None)
        self.close()
        self._deliver()

    def cancel(self, kind: str) -> Result | None:
        """Stop the pending request (deadline, cancellation); return its Result, if any.

        Its ``done`` callback is not called: the caller counts what it gets back.
        """
        self._finish(kind, None)
        self.close()
        if self._ok_ready is not None:  # a full response its ok callback has not yet had
            self._ok_ready = None
            return Result(None, self.response(), self._t_start, self._t_end, self.responses > 1)
        ready, self._ready = self._ready, None
        if ready is None:
            return None
        _, error, response, t_end, reused = ready
        return Result(error, response, self._t_start, t_end, reused)

    def _delimited_by_close(self) -> bool:
        """The final response's body ends with the connection: no length, not chunked.

        Only asked when the connection drops mid-response, so no request pays for the scan.
        """
        if self._status in (204, 304):
            return False
        if self.lean:
            names = {name.lower() for name, _ in final_head(b"".join(self._raw))}
        else:
            names = {name.lower() for name, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def response(self, truncated: bool = False) -> Response:
        """The pending (or just handed to ``ok``) request's response, until the next start."""
        if self.lean:  # nothing kept: the status and the body's length are the response
            # The bytes read up to the head stay referenced (not parsed): request ids are
            # read from them only for the requests the recorder keeps (the slowest).
            return Response(
                self._status, _NO_HEADERS, b"", self._body_len, truncated,
                first_byte_ns=self._t_first, raw_head=self._raw,
            )  # fmt: skip
        content = b"".join(self._chunks)
        return Response(
            self._status,
            Headers(self._headers),
            content,
            body_bytes=self._body_len,
            truncated=truncated,
            first_byte_ns=self._t_first,
        )

    def _complete(self, t_end: int) -> None:
        self.responses += 1
        self._finish(None, self.response(), t_end)

    def _finish(self, error: str | None, response: Response | None, t_end: int = 0) -> None:
        """End the pending request (if any); :meth:`_deliver` hands it to its callback."""
        done = self._done
        if done is None:
            return
        self._done = None
        if not t_end:
            t_end = perf_counter_ns()
        reused = self.responses > (0 if error is not None else 1)
        self._ready = (done, error, response, t_end, reused)

    def _deliver(self) -> None:
        ready = self._ready
        if ready is not None:
            self._ready = None
            done, error, response, t_end, reused = ready
            done(error, response, self._t_start, t_end, reused)

    def close(self, *, graceful: bool = False) -> None:
        """Drop the connection (abort: unread bytes make it unusable); graceful when idle."""
        self.closed = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if graceful and self._done is None:
                transport.close()
            else:
                transport.abort()
