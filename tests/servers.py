"""Loopback HTTP servers for tests: scripted behaviours by path, TLS, and a CONNECT proxy.

Each server runs its own asyncio loop in a daemon thread and is stopped cleanly (every
connection closed, every handler task finished). The request path picks the behaviour:

    /                    200 "ok"
    /delay/<ms>          200 after <ms> milliseconds
    /status/<code>       that status, small body
    /chunked             200 with a chunked body "hello chunked world"
    /eof                 200 with no Content-Length: the body ends when the server closes
    /close               200 with "Connection: close", then the server closes
    /closenow            the server closes without answering
    /slowbody/<ms>       200: the head (with x-amzn-RequestId), then the body <ms> ms later
    /stall               headers (Content-Length: 100) and 10 bytes, then nothing until EOF
    /truncated           headers (Content-Length: 100) and 10 bytes, then a clean close
    /reset               headers and 10 bytes, then a TCP reset
    /never               reads the request and never answers (until the client closes)
    /huge/<n>            200 with an n-byte body
    /garbage             bytes that are not HTTP
    /gate/<n>            answers only once n requests are waiting at once (else 504 after 5 s)
    /oneshot             200 "ok", but a reused connection is closed without an answer
    /redirect            302 with "Location: /redirect" (a redirect loop)
    /2015-03-31/functions/<name>/invocations
                         the Invoke API path: 200 with a body that is not JSON
    HEAD <any of these>  the same headers, no body
    CONNECT ...          405 (an origin server is not a proxy)
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

_S = TypeVar("_S", bound="_LoopbackServer")


class _ThreadLoop:
    """An asyncio loop in a daemon thread, with a clean stop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def track(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        task.add_done_callback(self._tasks.discard)

    def untrack(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)

    async def _shutdown(self, servers: list[asyncio.AbstractServer]) -> None:
        for server in servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for server in servers:
            await server.wait_closed()
        await asyncio.sleep(0)

    def stop(self, servers: list[asyncio.AbstractServer]) -> None:
        self.call(self._shutdown(servers))
        self.call(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Wait (without answering) until the client goes away."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _LoopbackServer:
    """Start/stop shared by the servers below: listen on a free 127.0.0.1 port in a loop thread."""

    _ssl: ssl.SSLContext | None = None

    def __init__(self) -> None:
        self._loop = _ThreadLoop()
        self._servers: list[asyncio.AbstractServer] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def start(self: _S) -> _S:
        self._loop._thread.start()

        async def listen() -> int:
            server = await asyncio.start_server(
                self._handle, "127.0.0.1", 0, ssl=self._ssl, backlog=2048
            )
            self._servers.append(server)
            return server.sockets[0].getsockname()[1]

        self.port = self._loop.call(listen())
        return self

    def stop(self) -> None:
        self._loop.stop(self._servers)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpServer(_LoopbackServer):
    """Scripted HTTP/1.1 server on 127.0.0.1 (optionally TLS) with counters tests can read."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self._ssl = ssl_context
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections_at_first_request: int | None = None
        self.request_lines: list[bytes] = []
        self.slowbody_ids = 0  # request ids /slowbody/ handed out (slowbody-0001, ...)
        self._gate_waiters: list[asyncio.Future[None]] = []

    @property
    def scheme(self) -> str:
        return "https" if self._ssl else "http"

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._loop.track(writer)
        self.connections += 1
        served = 0  # requests answered on this connection
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    break
                if served and b" /oneshot" in head.split(b"\r\n", 1)[0]:
                    self.requests += 1
                    break  # a keep-alive connection the server drops when it is reused
                length = int(_header(head, b"content-length") or 0)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                if self.connections_at_first_request is None:
                    self.connections_at_first_request = self.connections
                self.request_lines.append(head.split(b"\r\n", 1)[0])
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    keep_open = await self._respond(head, reader, writer)
                finally:
                    self.in_flight -= 1
                served += 1
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # server shutdown; returning normally keeps asyncio's stream callback quiet
        finally:
            self._loop.untrack(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _respond(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        method, target = (part.decode() for part in head.split(b" ", 2)[:2])
        if method == "CONNECT":  # an origin server, not a proxy
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        if "://" in target:  # absolute form, as sent to a proxy
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        parts = [p for p in target.split("?", 1)[0].split("/") if p]
        action = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""

        def send(status: int, body: bytes, extra: str = "") -> None:
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
            writer.write(head if method == "HEAD" else head + body)

        if action == "delay":
            await asyncio.sleep(int(arg) / 1000)
            send(200, b"ok")
        elif action == "slowbody":
            self.slowbody_ids += 1
            rid = f"slowbody-{self.slowbody_ids:04d}"
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nx-amzn-RequestId: {rid}\r\n\r\n".encode()
            )
            await writer.drain()
            await asyncio.sleep(int(arg) / 1000)
            writer.write(b"body")
        elif action == "status":
            send(int(arg), b"status")
        elif action == "chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"hello ", b"chunked ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif action == "eof":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            await writer.drain()
            return False
        elif action == "close":
            send(200, b"bye", "Connection: close\r\n")
            await writer.drain()
            return False
        elif action == "closenow":
            return False
        elif action in ("stall", "truncated", "reset"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            await writer.drain()
            if action == "stall":
                await _until_eof(reader)
            if action == "reset":
                await asyncio.sleep(0.01)  # let the partial body reach the client first
                _reset(writer)
            return False
        elif action == "never":
            await _until_eof(reader)
            return False
        elif action == "huge":
            body = b"x" * int(arg)
            send(200, body)
        elif action == "garbage":
            writer.write(b"THIS IS NOT HTTP\r\n\r\n")
            await writer.drain()
            return False
        elif action == "redirect":
            send(302, b"", "Location: /redirect\r\n")
        elif action == "2015-03-31":  # the Invoke API answering something that is not JSON
            send(200, b'{"statusCode": 200, "body": ', "Content-Type: application/json\r\n")
        elif action == "gate":
            opened = await self._gate(int(arg))
            send(200 if opened else 504, b"gate")
        else:
            send(200, b"ok")
        await writer.drain()
        return True

    async def _gate(self, n: int) -> bool:
        waiter = asyncio.get_running_loop().create_future()
        self._gate_waiters.append(waiter)
        if len(self._gate_waiters) >= n:
            for w in self._gate_waiters:
                if not w.done():
                    w.set_result(None)
            self._gate_waiters = []
        try:
            await asyncio.wait_for(waiter, 5.0)
        except asyncio.TimeoutError:
            return False
        return True


class ConnectProxy(_LoopbackServer):
    """A tiny HTTP proxy: CONNECT tunnels, and absolute-form requests relayed to the origin."""

    def __init__(self) -> None:
        super().__init__()
        self.connects: list[bytes] = []
        self.forwards: list[bytes] = []
        self.authorizations: list[bytes | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._loop.track(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await _read_head(reader)
            if head is None:
                return
            line = head.split(b"\r\n", 1)[0]
            method, target, _ = line.split(b" ", 2)
            self.authorizations.append(_header(head, b"proxy-authorization"))
            if method == b"CONNECT":
                self.connects.append(target)
                host, _, port = target.decode().rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = b""
            else:
                self.forwards.append(line)
                authority = target.decode().split("://", 1)[1].split("/", 1)[0]
                host, _, port = authority.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                first = head
            self._loop.track(upstream)
            upstream.write(first)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, OSError, ValueError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._loop.untrack(w)
                    if not w.transport.is_closing():
                        w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if not writer.transport.is_closing():
            writer.close()


def tls_contexts(ca: Any, hostnames: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Any:
    """A server SSLContext with a certificate issued by ``ca`` (a trustme.CA)."""
    cert = ca.issue_cert(*hostnames)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def free_port() -> int:
    """A loopback port that was free a moment ago (nothing listens there now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused_url() -> str:
    """An http:// URL where connecting is refused: nothing listens on its port."""
    return f"http://127.0.0.1:{free_port()}/"
