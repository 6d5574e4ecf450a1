"""The HTTP server in-process: handler exceptions become 500 ServiceException, HEAD has no body."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pytest_lambda_slo.emulator import doors
from pytest_lambda_slo.emulator.app import EmulatorApp
from pytest_lambda_slo.emulator.config import parse_function_spec
from pytest_lambda_slo.emulator.server import Connection
from pytest_lambda_slo.emulator.settings import EmulatorConfig


async def exchange(app, request: bytes) -> bytes:
    """Serve ``app`` on a loopback port, send one request, return the raw response."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(app, 1 << 20), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), timeout=10)
        writer.close()
        await writer.wait_closed()
        return data
    finally:
        server.close()
        await server.wait_closed()


class Exploding:
    handler_errors = 0

    def handle(self, request, conn):
        raise RuntimeError("boom")

    def on_parse_error(self):
        pass

    def on_handler_error(self):
        self.handler_errors += 1


def test_handler_exception_is_500_service_exception(caplog):
    app = Exploding()
    with caplog.at_level(logging.ERROR, logger="pytest_lambda_slo.emulator"):
        data = asyncio.run(exchange(app, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"x-amzn-errortype: ServiceException" in data
    assert app.handler_errors == 1
    assert "handler failed" in caplog.text


@pytest.mark.parametrize("spec", ["f", "f:duration=1ms"])
def test_exception_in_a_response_callback_is_500(caplog, monkeypatch, spec):
    def broken_reply(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(doors, "reply", broken_reply)

    async def run():
        config = EmulatorConfig(functions=(parse_function_spec(spec),))
        app = EmulatorApp(config, asyncio.get_running_loop())
        try:
            return await exchange(app, b"GET /url/f/ HTTP/1.1\r\nHost: x\r\n\r\n"), app
        finally:
            app.stop()

    with caplog.at_level(logging.ERROR, logger="pytest_lambda_slo.emulator"):
        data, app = asyncio.run(run())
    assert data.startswith(b"HTTP/1.1 500 ")
    assert app.handler_errors == 1


def test_head_gets_headers_without_body():
    async def run():
        config = EmulatorConfig(functions=(parse_function_spec("f:body_size=20"),))
        app = EmulatorApp(config, asyncio.get_running_loop())
        try:
            return await exchange(app, b"HEAD /url/f/ HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            app.stop()

    data = asyncio.run(run())
    assert data.startswith(b"HTTP/1.1 200 OK") and b"content-length: 20\r\n" in data
    assert data.endswith(b"\r\n\r\n")
