"""Function URL and API Gateway front doors, robustness, keep-alive, pipelining, stats."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket

import pytest
from emulator_helpers import call

from pytest_lambda_slo.emulator import Emulator


@pytest.fixture(scope="module")
def emu():
    with Emulator(
        [
            "web:cold_header=true,init=2ms,body_size=12",
            "plain",
            "failing:error_rate=1",
            "held:reserved=1,duration=30s",
            "staged:stage_rate=0.001,stage_burst=2",
        ],
        max_payload=1000,
    ) as running:
        yield running


def test_function_url_cold_header_then_warm(emu):
    emu.reset(environments=True)
    status, headers, body = call(emu, "GET", "/url/web/some/path?x=1")
    assert status == 200 and headers["x-cold-start"] == "true"
    assert body == b"hellohellohe" and headers["x-amzn-requestid"]
    status, headers, _ = call(emu, "POST", "/url/web/", body=b"{}")
    assert status == 200 and headers["x-cold-start"] == "false"
    _, plain_headers, _ = call(emu, "GET", "/url/plain/")
    assert "x-cold-start" not in plain_headers


def hold(emu: Emulator) -> None:
    """An Event invocation holds the only environment of "held" for 30 s (when it is free)."""
    status, _, _ = call(
        emu,
        "POST",
        "/2015-03-31/functions/held/invocations",
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    assert status == 202


def test_function_url_throttle_is_429_and_error_is_502(emu):
    hold(emu)
    status, headers, body = call(emu, "GET", "/url/held/")
    assert status == 429 and headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert json.loads(body)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert call(emu, "GET", "/url/failing/")[0] == 502


def test_apigw_maps_throttle_to_500_and_error_to_502(emu):
    hold(emu)
    status, _, body = call(emu, "GET", "/apigw/held/x")
    assert status == 500 and json.loads(body) == {"message": "Internal server error"}
    status, _, body = call(emu, "PUT", "/apigw/failing/resource")
    assert status == 502 and json.loads(body) == {"message": "Internal server error"}
    assert call(emu, "GET", "/apigw/plain/")[0] == 200


def test_apigw_stage_throttle_is_429_too_many_requests(emu):
    statuses = [call(emu, "GET", "/apigw/staged/")[0] for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    _, _, body = call(emu, "GET", "/apigw/staged/")
    assert json.loads(body) == {"message": "Too Many Requests"}
    stats = emu.function_stats("staged")
    assert stats["stage_throttles"] == 3 and stats["throttles"]["total"] == 0


def test_payload_over_the_limit_is_413(emu):
    status, headers, _ = call(emu, "POST", "/url/plain/", body=b"x" * 1001)
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException"
    status, _, _ = call(
        emu, "POST", "/2015-03-31/functions/plain/invocations", body=b'"' + b"x" * 2000 + b'"'
    )
    assert status == 413


def test_unknown_path_and_function_are_aws_shaped_404(emu):
    status, headers, body = call(emu, "GET", "/nowhere")
    assert status == 404 and headers["x-amzn-errortype"] == "UnknownOperationException"
    assert "message" in json.loads(body)
    status, headers, _ = call(emu, "GET", "/url/ghost/")
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
    # Without a trailing slash the message still names the whole function.
    status, _, body = call(emu, "GET", "/url/ghost")
    assert status == 404 and json.loads(body)["message"].endswith(":function:ghost")


@pytest.mark.parametrize("path", ["/2015-03-31/functions", "/2015-03-31/functions/"])
def test_list_functions_with_and_without_the_trailing_slash(emu, path):
    status, _, body = call(emu, "GET", path)
    assert status == 200
    assert [f["FunctionName"] for f in json.loads(body)["Functions"]] == [
        "web",
        "plain",
        "failing",
        "held",
        "staged",
    ]


def test_bad_invoke_payload_is_400(emu):
    status, headers, _ = call(emu, "POST", "/2015-03-31/functions/plain/invocations", b"{oops")
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestContentException"


def complete_responses(data: bytes) -> int:
    """How many whole responses (head plus content-length body) ``data`` holds."""
    count, pos = 0, 0
    while True:
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            return count
        head = data[pos:head_end].lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if len(data) < head_end + 4 + length:
            return count
        count, pos = count + 1, head_end + 4 + length


def raw_exchange(emu: Emulator, data: bytes, expect_responses: int) -> bytes:
    """Send raw bytes on one connection; read until that many responses arrived (or EOF)."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while complete_responses(received) < expect_responses:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_malformed_http_gets_400_and_close(emu):
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b""
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data
    assert call(emu, "GET", "/url/plain/")[0] == 200  # the server is still up


def test_pipelined_requests_are_answered_in_order(emu):
    requests = b"".join(
        b"GET /url/%s/ HTTP/1.1\r\nHost: x\r\n\r\n" % name
        for name in (b"web", b"plain", b"ghost", b"plain")
    )
    data = raw_exchange(emu, requests, 4)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"404", b"200"]


def test_keep_alive_and_connection_close(emu):
    data = raw_exchange(
        emu,
        b"GET /url/plain/ HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /url/plain/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        2,
    )
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.count(b"connection: close") == 1


def test_chunked_request_body_is_accepted(emu):
    data = raw_exchange(
        emu,
        b"POST /2015-03-31/functions/plain/invocations HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        1,
    )
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b'"hello"')


def test_stats_shape_and_reset(emu):
    emu.reset()
    for _ in range(3):
        call(emu, "GET", "/url/plain/")
    stats = emu.stats()
    assert set(stats) == {"emulator", "functions"}
    plain = stats["functions"]["plain"]
    assert plain["invocations"] == 3 and plain["responses"] == {"200": 3}
    assert plain["environments_alive"] >= 1 and plain["peak_concurrency"] >= 1
    assert sum(plain["timeseries"]["invocations"]) == 3
    series = plain["timeseries"]
    assert len(series["second"]) == len(series["concurrency_peak"]) == len(series["throttles"])
    for name in ("duration", "init", "latency"):
        assert set(plain["histograms"][name]) >= {"count", "p50", "p99", "max", "encoded"}
    assert plain["histograms"]["latency"]["count"] == 3
    from pytest_lambda_slo._results.recorder import Histogram

    latency = plain["histograms"]["latency"]
    decoded = Histogram.decode(latency["encoded"], latency["highest_us"])
    assert decoded.count == 3
    emu.reset()
    assert emu.function_stats("plain")["invocations"] == 0


def test_lambda_emulator_fixture_starts_and_stops(lambda_emulator):
    emu = lambda_emulator("one:duration=1ms", "two", account_concurrency=50)
    assert emu.running
    assert emu.function_url("one") == emu.url + "/url/one/"
    assert emu.apigw_url("two") == emu.url + "/apigw/two/"
    assert call(emu, "GET", "/url/one/")[0] == 200
    assert emu.stats()["emulator"]["account_concurrency"] == 50


def test_http10_closes_unless_keep_alive_is_asked(emu):
    data = raw_exchange(
        emu,
        b"GET /url/plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /url/plain HTTP/1.0\r\n\r\n",
        2,
    )
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.count(b"connection: keep-alive") == 1 and data.count(b"connection: close") == 1


def test_function_url_rate_limit_is_ten_times_reserved(lambda_emulator):
    emu = lambda_emulator("r:reserved=1,url_rate_limit=true")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    statuses, reasons = [], set()
    try:
        for _ in range(40):  # one keep-alive connection: far faster than 10 requests/s
            conn.request("GET", "/url/r/")
            response = conn.getresponse()
            body = response.read()
            statuses.append(response.status)
            if response.status == 429:
                reasons.add(json.loads(body)["Reason"])
    finally:
        conn.close()
    assert statuses[:10] == [200] * 10  # the bucket starts full: 10 x reserved
    assert 429 in statuses
    assert reasons == {"ReservedFunctionInvocationRateLimitExceeded"}
    stats = emu.function_stats("r")
    assert stats["throttles"]["by_reason"] == {
        "ReservedFunctionInvocationRateLimitExceeded": statuses.count(429)
    }


def test_oversized_request_head_is_400_and_close(emu):
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(80))
    data = raw_exchange(emu, b"GET /url/plain/ HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 1)
    assert data.startswith(b"HTTP/1.1 400 ") and b"connection: close" in data
    assert call(emu, "GET", "/url/plain/")[0] == 200


def test_a_client_that_does_not_read_is_pushed_back(lambda_emulator):
    emu = lambda_emulator("big:body_size=65536")
    request = b"GET /url/big/ HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 960 + b"\r\n\r\n"
    chunk = request * 1024  # about 1 MB of pipelined requests
    blocked = False
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.settimeout(1.0)
        for _ in range(40):  # 40 MB if nothing pushed back: 2.6 GB of responses
            try:
                sock.sendall(chunk)
            except TimeoutError:
                blocked = True
                break
        assert blocked, "the server kept reading although its responses were not read"
        assert call(emu, "GET", "/url/big/")[0] == 200  # other clients are still served
    assert emu.running


def test_a_handler_never_finishes_before_its_duration(lambda_emulator):
    from pytest_lambda_slo._results.recorder import Histogram

    emu = lambda_emulator("d:duration=20ms")
    request = b"GET /url/d/ HTTP/1.1\r\nHost: x\r\n\r\n"

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        try:
            writer.write(request * 5)  # five pipelined requests
            data = b""
            while complete_responses(data) < 5:
                chunk = await asyncio.wait_for(reader.read(65536), 30)
                assert chunk, "connection closed early"
                data += chunk
        finally:
            writer.close()
            await writer.wait_closed()

    async def many() -> None:
        # Many requests in one loop turn: their timers are armed from a stale loop clock.
        await asyncio.gather(*(one() for _ in range(200)))

    asyncio.run(many())
    duration = emu.function_stats("d")["histograms"]["duration"]
    histogram = Histogram.decode(duration["encoded"], duration["highest_us"])
    # 3 significant figures: a recorded 20,000 us may read back up to 16 us lower.
    assert histogram.count == 1000 and histogram.min_us() >= 20_000 - 16
