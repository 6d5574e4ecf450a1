"""The fault matrix, as users meet it: a user's test bursts at a fault, fails naming it, and
the session runs on. Faults come from loopback servers (tests/servers.py); nothing else."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from servers import HttpServer, refused_url, tls_contexts

from pytest_lambda_slo._http import dialer
from pytest_lambda_slo.emulator import Emulator

pytestmark = pytest.mark.filterwarnings("error")
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")
REQUESTS = 6
CONCURRENCY = 3
# A short per-request timeout keeps the stalled rows quick; the deadline bounds every run.
TIMEOUT = "300ms"
DEADLINE = "10s"

# Literal budgets (a 0% error rate, no throttle): a handful of requests can decide them.
USER_FILE = f"""
import os
from pytest_lambda_slo import HttpTarget, InvokeTarget

def make_target():
    url = os.environ["FAULT_URL"]
    if os.environ.get("FAULT_INVOKE"):
        name = os.environ.get("FAULT_NAME", "faulty")
        return InvokeTarget(name, region="us-east-1", endpoint_url=url)
    return HttpTarget(url, max_body_bytes=int(os.environ.get("FAULT_MAX_BODY", 8 << 20)))

def test_fault(lambda_slo):
    result = lambda_slo.burst(
        make_target(),
        requests={REQUESTS},
        concurrency={CONCURRENCY},
        timeout=os.environ.get("FAULT_TIMEOUT", "{TIMEOUT}"),
        deadline=os.environ.get("FAULT_DEADLINE", "{DEADLINE}"),
    )
    result.check(error_rate="0%", throttle_count=0)

def test_after_the_fault(lambda_slo):
    result = lambda_slo.burst(os.environ["OK_URL"], requests=4, concurrency=2, timeout="5s")
    result.check(error_rate="0%", throttle_count=0)
    assert result.ok == 4
"""


@dataclass(frozen=True)
class Fault:
    """One row of the matrix: how to point the user's test at it, and what it must count."""

    name: str
    path: str  # on the scripted server; "" for rows that build their own URL
    kind: str
    # "http"; "tls" (a certificate the client does not trust); "emulator-https" (https:// to
    # the emulator's plain HTTP port: it answers the TLS hello with a 400); "none"
    server: str = "http"
    env: tuple[tuple[str, str], ...] = ()


FAULTS = [
    Fault("connection refused", "", "connect_refused", server="none"),
    Fault("dns failure", "", "dns_failure", server="none"),
    Fault("tls handshake failure", "/", "tls_error", server="tls"),
    Fault("https to a plain-http port", "/url/boom/", "tls_error", server="emulator-https"),
    Fault("accepts, never answers", "/never", "timeout"),
    Fault("headers, then the body stalls", "/stall", "timeout"),
    Fault("reset mid-response", "/reset", "connection_reset"),
    Fault("truncated body", "/truncated", "truncated_body"),
    Fault("5xx storm", "/status/503", "http_5xx"),
    Fault("huge body", "/huge/200000", "body_too_large", env=(("FAULT_MAX_BODY", "1000"),)),
    Fault("invalid JSON from Invoke", "", "invalid_response", env=(("FAULT_INVOKE", "1"),)),
    Fault("not a response at all", "/garbage", "protocol_error"),
    Fault("redirect loop", "/redirect", "http_3xx"),
]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def servers(ca: trustme.CA) -> Iterator[dict[str, HttpServer]]:
    with HttpServer() as plain, HttpServer(ssl_context=tls_contexts(ca)) as tls:
        yield {"http": plain, "tls": tls}


@pytest.fixture(scope="module")
def failing_emulator() -> Iterator[Emulator]:
    # Every invocation fails as Unhandled: Lambda's own 5xx storm at each front door.
    with Emulator(["boom:error_rate=100%,unhandled=100%"]) as emu:
        yield emu


@pytest.fixture
def user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No proxies or CA bundles from outside; fake AWS credentials for the Invoke row."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-for-tests")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _no_such_name(monkeypatch: pytest.MonkeyPatch) -> str:
    # The resolver here asks a network DNS server even for '.invalid' (RFC 6761 names are
    # not answered locally), so the lookup is replaced: '.invalid' fails like NXDOMAIN.
    real = dialer.resolve

    async def resolve(loop: Any, host: str, port: int) -> Any:
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real(loop, host, port)

    monkeypatch.setattr(dialer, "resolve", resolve)
    return "http://lambda-slo-test.invalid/"


def run_user_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, url: str, ok_url: str, **env: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    monkeypatch.setenv("FAULT_URL", url)
    monkeypatch.setenv("OK_URL", ok_url)
    monkeypatch.delenv("FAULT_NAME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_user=USER_FILE)
    out = pytester.path / "slo.json"
    result = pytester.runpytest(*ISOLATED, "-v", f"--lambda-slo-json={out}", "--lambda-slo-report")
    return result, json.loads(out.read_text())


@pytest.fixture
def run_fault(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, HttpServer],
    user_env: None,
) -> Any:
    """Run the user's file against a URL, or a path on the plain server; OK_URL is its '/'."""

    def run(url: str, **env: str) -> tuple[pytest.RunResult, dict[str, Any]]:
        if url.startswith("/"):
            url = servers["http"].url(url)
        return run_user_file(pytester, monkeypatch, url, servers["http"].url("/"), **env)

    return run


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.replace(" ", "-") for f in FAULTS])
def test_fault_is_counted_named_and_fails_only_its_test(
    fault: Fault,
    run_fault: Any,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, HttpServer],
    failing_emulator: Emulator,
) -> None:
    if fault.server == "emulator-https":
        url = failing_emulator.url.replace("http://", "https://") + fault.path
    elif fault.kind == "connect_refused":
        url = refused_url()
    elif fault.kind == "dns_failure":
        url = _no_such_name(monkeypatch)
    elif fault.kind == "invalid_response":
        url = servers["http"].url("/")  # the Invoke API path is answered with broken JSON
    else:
        url = servers[fault.server].url(fault.path)
    result, document = run_fault(url, **dict(fault.env))

    # The faulty test fails, the one after it passes: the session runs on.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_fault FAILED*", "*test_after_the_fault PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "*SLOViolation: 1 SLO budget(s) broken for *",
            f"*error_rate: measured 100.00% > budget 0.00% (n={REQUESTS}, literal)",
        ]
    )
    # Counted under its named kind, every request: in the failure, the report and the JSON.
    result.stdout.fnmatch_lines(
        [f"*({REQUESTS} requests: 0 ok, 0 throttled, {REQUESTS} errors ({fault.kind} {REQUESTS}))"]
    )
    result.stdout.fnmatch_lines([f"*error kinds: {fault.kind}: {REQUESTS}"])
    burst = document["bursts"][0]
    assert burst["error_kinds"] == {fault.kind: REQUESTS}
    assert burst["errors"] == REQUESTS and burst["ok"] == 0
    # The burst finished on its own, well inside its deadline: nothing cut, nothing unsent.
    assert burst["run"]["stopped"] is None
    assert burst["unsent"] == 0
    assert document["bursts"][1]["ok"] == 4


def test_huge_body_reading_is_capped_and_counted(run_fault: Any) -> None:
    _, document = run_fault("/huge/2000000", FAULT_MAX_BODY="1000")
    burst = document["bursts"][0]
    assert burst["error_kinds"] == {"body_too_large": REQUESTS}
    assert burst["status_codes"] == {"200": REQUESTS}
    # Bytes past the cap are counted (the bytes that arrived before the drop), but far
    # fewer than the 12 MB the server meant to send: the rest was never read.
    assert REQUESTS * 1000 < burst["bytes_received"] < REQUESTS * 2_000_000


def test_stall_past_the_deadline_counts_in_flight_and_unsent(run_fault: Any) -> None:
    # The per-request timeout is longer than the deadline: the deadline ends the burst.
    result, document = run_fault("/never", FAULT_TIMEOUT="60s", FAULT_DEADLINE="500ms")
    result.assert_outcomes(passed=1, failed=1)
    burst = document["bursts"][0]
    unsent = REQUESTS - CONCURRENCY
    assert burst["run"]["stopped"] == "deadline"
    assert burst["error_kinds"] == {"deadline": CONCURRENCY}
    assert burst["unsent"] == unsent
    result.stdout.fnmatch_lines(
        [
            f"*error_rate: measured 100.00% > budget 0.00% (n={CONCURRENCY}, literal)",
            f"*({CONCURRENCY} requests: 0 ok, 0 throttled, {CONCURRENCY} errors "
            f"(deadline {CONCURRENCY}), {unsent} not sent)",
        ]
    )
    result.stdout.fnmatch_lines([f"*not sent (deadline or cap): {unsent}"])


def test_redirect_loop_is_counted_by_status_not_followed(
    run_fault: Any, servers: dict[str, HttpServer]
) -> None:
    # The engine never follows redirects: each request is one exchange, so a redirect loop
    # costs exactly `requests` requests; the 302 is counted under its status code too.
    result, document = run_fault("/redirect")
    burst = document["bursts"][0]
    assert burst["status_codes"] == {"302": REQUESTS}
    assert burst["count"] == REQUESTS
    assert servers["http"].request_lines.count(b"GET /redirect HTTP/1.1") == REQUESTS
    result.stdout.fnmatch_lines([f"*status codes: 302: {REQUESTS}"])


@pytest.mark.parametrize(
    ("front_door", "kind"),
    [("apigw", "http_5xx"), ("invoke", "function_error:Unhandled")],
)
def test_function_error_storm_from_the_emulator(
    front_door: str,
    kind: str,
    run_fault: Any,
    failing_emulator: Emulator,
) -> None:
    if front_door == "apigw":
        url, env = failing_emulator.apigw_url("boom"), {}
    else:
        url, env = failing_emulator.invoke_endpoint, {"FAULT_INVOKE": "1", "FAULT_NAME": "boom"}
    result, document = run_fault(url, **env)
    result.assert_outcomes(passed=1, failed=1)
    burst = document["bursts"][0]
    assert burst["errors"] == REQUESTS
    [(name, count)] = burst["error_kinds"].items()
    assert name.startswith(kind) and count == REQUESTS
    result.stdout.fnmatch_lines([f"*{REQUESTS} errors ({name} {REQUESTS}))"])
    assert failing_emulator.function_stats("boom")["errors"]["Unhandled"] >= REQUESTS
