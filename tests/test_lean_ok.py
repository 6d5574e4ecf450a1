"""A lean connection's ``ok=`` callback: a full response's figures with no Response built."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from unittest.mock import Mock

import pytest

from pytest_lambda_slo._http.transport import HttpConnection

RESPONSE = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-amzn-requestid: abc-1\r\n\r\nhello"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()  # the deadline sweep's timer is armed on it, never run
    yield loop
    loop.close()


def _connection(loop: asyncio.AbstractEventLoop, lean: bool) -> HttpConnection:
    conn = HttpConnection(loop, 1 << 20, lean=lean)
    conn.connection_made(Mock(**{"is_closing.return_value": False}))  # writes go nowhere
    return conn


def _recorders() -> tuple[list[tuple[Any, ...]], Any, Any]:
    calls: list[tuple[Any, ...]] = []

    def done(*args: Any) -> None:
        calls.append(("done", *args))

    def ok(*args: Any) -> None:
        calls.append(("ok", *args))

    return calls, done, ok


def test_a_lean_full_response_goes_to_ok_with_its_figures(loop: asyncio.AbstractEventLoop) -> None:
    conn = _connection(loop, lean=True)
    calls, done, ok = _recorders()
    for _ in range(2):  # a second request on the same connection, the same way
        conn.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
        conn.data_received(RESPONSE[:40])
        conn.data_received(RESPONSE[40:])
        kind, status, body_bytes, t_start, t_end, first_byte_ns = calls.pop()
        assert (kind, status, body_bytes) == ("ok", 201, 5) and not calls
        assert t_start <= first_byte_ns <= t_end
        response = conn.response()  # what done would have been given
        assert (response.status_code, response.body_bytes) == (201, 5)
        assert response.first_byte_ns == first_byte_ns
        assert response.request_ids() == {"request_id": "abc-1"}
    assert conn.responses == 2 and not conn.closed


def test_ok_is_ignored_where_headers_are_kept_and_errors_go_to_done(
    loop: asyncio.AbstractEventLoop,
) -> None:
    full = _connection(loop, lean=False)
    calls, done, ok = _recorders()
    full.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    full.data_received(RESPONSE)
    kind, error, response, _, _, reused = calls.pop()
    assert (kind, error, response.content, reused) == ("done", None, b"hello", False)
    lean = _connection(loop, lean=True)
    lean.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    lean.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhal")
    lean.connection_lost(None)
    kind, error, response, _, _, _ = calls.pop()
    assert (kind, error, response) == ("done", "truncated_body", None)


def test_a_lean_head_response_ends_at_its_head_through_done(
    loop: asyncio.AbstractEventLoop,
) -> None:
    conn = _connection(loop, lean=True)
    calls, done, ok = _recorders()
    conn.start(b"HEAD / HTTP/1.1\r\n\r\n", 5.0, done, head=True, ok=ok)
    conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    kind, error, response, _, _, _ = calls.pop()
    assert (kind, error, response.status_code, response.body_bytes) == ("done", None, 200, 0)


def test_cancel_returns_a_full_response_not_yet_handed_to_ok(
    loop: asyncio.AbstractEventLoop,
) -> None:
    conn = _connection(loop, lean=True)
    calls, done, ok = _recorders()
    conn.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    conn.parser.feed_data(RESPONSE)  # parsed, not yet delivered (data_received delivers)
    result = conn.cancel("cancelled")
    assert result is not None and result.error is None and not calls
    assert result.response is not None and result.response.status_code == 201
    assert conn.cancel("cancelled") is None  # handed over once


def test_a_lean_connection_reads_the_status_without_a_head_callback(
    loop: asyncio.AbstractEventLoop,
) -> None:
    conn = _connection(loop, lean=True)
    calls, done, ok = _recorders()
    conn.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    conn.data_received(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n")
    conn.data_received(b"x-amzn-requestid: id-2\r\ncontent-length: 2\r\n\r\nhi")
    assert calls.pop()[:3] == ("ok", 200, 2)
    assert conn.response().request_ids() == {"request_id": "id-2"}
    conn.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")  # no body: read at its end
    assert calls.pop()[:3] == ("ok", 204, 0)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"HTTP/1.1 200 OK\r\nserver: x\r\n\r\n"], (None, 200, 0)),  # ends with the close
        ([b"HTTP/1.1 200 OK\r\n\r\n", b"abc"], (None, 200, 3)),
        ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"], ("truncated_body", None, None)),
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"], ("truncated_body", None, None)),
    ],
)
def test_a_lean_response_cut_by_the_close_is_judged_from_the_bytes_kept(
    loop: asyncio.AbstractEventLoop, chunks: list[bytes], expected: tuple[Any, ...]
) -> None:
    conn = _connection(loop, lean=True)
    calls, done, ok = _recorders()
    conn.start(b"GET / HTTP/1.1\r\n\r\n", 5.0, done, ok=ok)
    for chunk in chunks:
        conn.data_received(chunk)
    conn.connection_lost(None)
    _, error, response, _, _, _ = calls.pop()
    got = (
        error,
        *((None, None) if response is None else (response.status_code, response.body_bytes)),
    )
    assert got == expected
