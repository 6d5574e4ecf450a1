"""A fast loopback HTTP/1.1 server for benchmarks: answers ``/d/<ms>`` after <ms> milliseconds.

Runs on uvloop (when importable) with httptools' request parser, so it is cheap enough not to
be the bottleneck of the load generator it measures. It prints its port on the first line of
stdout and serves until killed (SIGTERM/SIGINT).

    python benchmarks/delay_server.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import httptools

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class _Server(asyncio.Protocol):
    """One connection: parse requests, answer each after the delay its path asks for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.delay = 0.0
        if url.startswith(b"/d/"):
            try:
                self.delay = int(url[3:].split(b"?", 1)[0]) / 1000.0
            except ValueError:
                self.delay = 0.0

    def on_message_complete(self) -> None:
        reply = _OK if self.parser.should_keep_alive() else _CLOSE
        if self.delay > 0:
            self.loop.call_later(self.delay, self._reply, reply)
        else:
            self._reply(reply)

    def _reply(self, reply: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(reply)
        if reply is _CLOSE:
            transport.close()


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Server(loop), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve(args.port))
    except ImportError:
        asyncio.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
