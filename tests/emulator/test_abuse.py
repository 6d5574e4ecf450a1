"""The emulator under abuse: 10,000 connections, malformed HTTP, oversized payloads, unknown
paths and slow clients. It answers with AWS error shapes and keeps serving stats after."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
from collections.abc import Iterator

import pytest
from emulator_helpers import call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_lambda_slo.emulator import Emulator

CONNECTIONS = 10_000
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous Invoke limit, the emulator's default
FUNCTIONS = ("f:duration=0", "big:duration=0,body_size=65536", "slow:duration=20ms")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(list(FUNCTIONS)) as running:
        yield running


@pytest.fixture(autouse=True)
def still_up(emu: Emulator) -> Iterator[None]:
    """After every abuse: the process is alive, stats are served, no handler blew up."""
    yield
    assert emu.running
    status, _, body = call(emu, "GET", "/_emulator/stats")
    assert status == 200
    assert json.loads(body)["emulator"]["handler_errors"] == 0


def raw_exchange(emu: Emulator, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection; read until the emulator closes it."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def head_and_body(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


# -- malformed HTTP ----------------------------------------------------------------------------

MALFORMED = {
    "not http": b"HELLO THERE\r\n\r\n",
    "http/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "tls hello on a plain port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    "bad version": b"GET / HTTP/7.3\r\nHost: x\r\n\r\n",
    "space in header name": b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
    "negative content-length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "two content-lengths": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    ),
    "bad chunk size": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"
    ),
    "nul in the request line": b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "head over 64 KiB": b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    "url over 64 KiB": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_http_is_400_bad_request(emu: Emulator, data: bytes) -> None:
    before = emu.stats()["emulator"]["parse_errors"]
    status, headers, body = head_and_body(raw_exchange(emu, data))
    assert status == 400
    assert headers["x-amzn-errortype"] == "BadRequestException"
    assert headers["connection"] == "close"
    assert json.loads(body) == {"message": "Malformed HTTP request"}
    assert emu.stats()["emulator"]["parse_errors"] == before + 1


UPGRADES = {
    "websocket": (
        b"GET /url/f/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n\x81\x85websocket frame bytes",
        200,
    ),
    "h2c": (
        b"GET /url/f/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\nPRI * HTTP/2.0",
        200,
    ),
    "websocket, answered later": (
        b"GET /url/slow/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"\r\n\x81\x85frame",
        200,
    ),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03", 404),
}


@pytest.mark.parametrize("name", list(UPGRADES))
def test_protocol_upgrades_get_one_plain_answer_then_close(emu: Emulator, name: str) -> None:
    # Lambda's front doors do not switch protocols: one HTTP/1.1 answer, then the connection
    # closes (what follows belongs to the other protocol and is not parsed as HTTP).
    data, status = UPGRADES[name]
    before = emu.stats()["emulator"]["parse_errors"]
    response = raw_exchange(emu, data)  # returns once the emulator has closed
    assert response.count(b"HTTP/1.1 ") == 1
    assert head_and_body(response)[0] == status
    assert emu.stats()["emulator"]["parse_errors"] == before


def test_valid_request_then_garbage_on_one_connection(emu: Emulator) -> None:
    # The good request is answered; the garbage after it closes the connection with a 400.
    data = b"GET /url/f/ HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00\x01\x02 junk\r\n\r\n"
    response = raw_exchange(emu, data)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.count(b"HTTP/1.1 400 Bad Request\r\n") == 1


def test_client_that_hangs_up_mid_request(emu: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(
            b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nContent-Length: 100\r\n"
        )
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(b"POST /url/f/ HTTP/1.1\r\nContent-Length: 1000\r\n\r\npartial")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # Both were dropped without an answer; still_up checks the emulator carries on.


VALID = b"POST /url/f/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


@st.composite
def mangled_requests(draw: st.DrawFn) -> bytes:
    """A valid request with bytes replaced, inserted or cut, or plain random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=0, max_size=8))
        cut = draw(st.integers(0, 4))
        data[at : at + cut] = junk
    return bytes(data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=mangled_requests())
def test_any_bytes_get_an_http_answer_or_a_close(emu: Emulator, data: bytes) -> None:
    """Fuzz: whatever arrives, the emulator answers in HTTP/1.1 or closes; it never dies."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # an incomplete request then ends at EOF
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass  # closed with unread bytes: a reset is a close too
    assert response == b"" or response.startswith(b"HTTP/1.1 ")
    assert b"x-amzn-errortype: ServiceException" not in response  # no handler blew up


# -- oversized payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/2015-03-31/functions/f/invocations", "/url/f/", "/apigw/f/any/path"]
)
def test_payload_over_6mb_is_413_and_the_connection_stays_usable(emu: Emulator, path: str) -> None:
    body = b"x" * (MAX_PAYLOAD + 1)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    follow_up = b"GET /url/f/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = raw_exchange(emu, request + follow_up)
    first, _, rest = response.partition(b"HTTP/1.1 200 OK\r\n")
    status, headers, error = head_and_body(first)
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestTooLargeException"
    message = json.loads(error)
    assert message["Type"] == "User" and str(MAX_PAYLOAD) in message["message"]
    assert rest.endswith(b"hello")  # the next request on the same connection was served


def test_payload_of_exactly_6mb_is_accepted(emu: Emulator) -> None:
    payload = b'"' + b"x" * (MAX_PAYLOAD - 2) + b'"'
    status, _, _ = call(emu, "POST", "/2015-03-31/functions/f/invocations", body=payload)
    assert status == 200


def test_chunked_payload_over_the_limit_is_413(emu: Emulator) -> None:
    chunk = b"x" * (1024 * 1024)
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7))
    request = (
        b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + pieces + b"0\r\n\r\n"
    )
    status, headers, _ = head_and_body(raw_exchange(emu, request))
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException"


# -- unknown paths -----------------------------------------------------------------------------

UNKNOWN = [
    ("GET", "/", 404, "UnknownOperationException"),
    ("GET", "/favicon.ico", 404, "UnknownOperationException"),
    ("DELETE", "/_emulator/stats", 404, "UnknownOperationException"),
    ("GET", "/_emulator/../etc/passwd", 404, "UnknownOperationException"),
    ("POST", "/2015-03-31/functions/missing/invocations", 404, "ResourceNotFoundException"),
    ("GET", "/url/missing/", 404, "ResourceNotFoundException"),
]


@pytest.mark.parametrize(("method", "path", "status", "error_type"), UNKNOWN)
def test_unknown_paths_get_aws_error_shapes(
    emu: Emulator, method: str, path: str, status: int, error_type: str
) -> None:
    got, headers, body = call(emu, method, path, body=b"{}" if method == "POST" else None)
    assert got == status
    assert headers["x-amzn-errortype"].split(":")[0] == error_type
    assert headers["content-type"].startswith("application/json")
    assert isinstance(json.loads(body)["message"], str)


def test_unknown_function_through_api_gateway_is_its_404(emu: Emulator) -> None:
    status, _, body = call(emu, "GET", "/apigw/missing/")
    assert status == 404 and json.loads(body) == {"message": "Not Found"}


# -- slow clients ------------------------------------------------------------------------------


def test_request_sent_one_byte_at_a_time_is_answered(emu: Emulator) -> None:
    request = b"GET /url/f/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            sock.sendall(request[i : i + 1])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"hello")


def test_half_sent_heads_do_not_block_other_clients(emu: Emulator) -> None:
    # 300 clients stop in the middle of their request head (slowloris); others are served,
    # and the slow ones are answered as soon as they finish.
    slow = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
            slow.append(sock)
            sock.sendall(b"GET /url/f/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert call(emu, "GET", "/url/f/")[0] == 200
        for sock in slow:
            sock.sendall(b"1\r\nConnection: close\r\n\r\n")
        answered = 0
        for sock in slow:
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            answered += response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answered == len(slow)
    finally:
        for sock in slow:
            sock.close()


def test_client_that_never_reads_its_responses(emu: Emulator) -> None:
    # Pipelined requests for 64 KiB bodies and no reading: the emulator neither reads on nor
    # answers on (each read of ~7,000 tiny requests would be ~450 MB of buffered bodies), so
    # our sends block, its memory stays flat, and other clients are served.
    batch = b"GET /url/big/ HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    rss_before = _rss_mb(emu.pid)
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.setblocking(False)
        blocked = False
        for _ in range(2000):  # at most 2 million requests (128 GB of answers)
            try:
                sock.sendall(batch)
            except BlockingIOError:
                blocked = True  # the emulator stopped reading: the socket buffers are full
                break
        assert blocked
        assert call(emu, "GET", "/url/f/")[0] == 200
        grown = _rss_mb(emu.pid) - rss_before
        assert grown < 50, f"emulator RSS grew {grown:.0f} MB while a client does not read"


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- 10,000 connections at once ----------------------------------------------------------------


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {hard}; {needed} open files are needed")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _established(pid: int, port: int) -> int:
    """Connections the emulator process holds open on its port (server side)."""
    psutil = pytest.importorskip("psutil")
    return sum(
        1
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port
    )


async def _hold(port: int, count: int, pid: int) -> tuple[int, int, int]:
    """Open ``count`` connections, one request on each, all held open; count the answers."""
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    request = b"GET /url/f/ HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for start in range(0, count, 500):  # batches stay under the listen backlog
            batch = await asyncio.gather(
                *(asyncio.open_connection("127.0.0.1", port) for _ in range(start, start + 500))
            )
            streams.extend(batch)
        for _, writer in streams:
            writer.write(request)

        async def answer(reader: asyncio.StreamReader) -> bool:
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(5)
            return head.startswith(b"HTTP/1.1 200 OK\r\n")

        answers = await asyncio.wait_for(
            asyncio.gather(*(answer(reader) for reader, _ in streams)), 60
        )
        # Every connection has been answered and is still open (keep-alive): the emulator
        # holds all of them at once. (Counted now: before the answers, some could still sit
        # in the listen backlog, connected but not yet accepted.)
        held = _established(pid, port)
        return held, sum(answers), len(streams)
    finally:
        for _, writer in streams:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in streams), return_exceptions=True)


def test_ten_thousand_concurrent_connections(emu: Emulator) -> None:
    _raise_nofile(CONNECTIONS + 500)
    emu.reset()
    held, ok, opened = asyncio.run(_hold(emu.port, CONNECTIONS, emu.pid))
    assert opened == CONNECTIONS
    assert held >= CONNECTIONS  # the emulator held every one of them at once
    assert ok == CONNECTIONS
    stats = emu.function_stats("f")
    assert stats["invocations"] == CONNECTIONS and stats["responses"] == {"200": CONNECTIONS}
    # Every connection is released once the clients hang up (a bounded wait, no timing claim).
    for _ in range(200):
        if _established(emu.pid, emu.port) == 0:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert _established(emu.pid, emu.port) == 0
