"""The HTTP transport against loopback servers: keep-alive, bodies, TLS, proxies, error kinds."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from servers import ConnectProxy, HttpServer, tls_contexts

from pytest_lambda_slo._http import dialer
from pytest_lambda_slo._http.dialer import make_ssl_context, proxy_for
from pytest_lambda_slo._http.request import RequestTemplate, encode_request
from pytest_lambda_slo._http.urls import parse_url
from pytest_lambda_slo._load.api import run_burst
from pytest_lambda_slo._targets.http import HttpTarget
from pytest_lambda_slo.errors import ConfigError

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@pytest.fixture(autouse=True, params=["uvloop", "asyncio"])
def _environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA settings from the outside; every test on both event loops."""
    for name in (*PROXY_VARS, "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMBDA_SLO_EVENT_LOOP", request.param)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[HttpServer]:
    with HttpServer(ssl_context=tls_contexts(ca)) as srv:
        yield srv


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as prx:
        yield prx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bodies(url: str, **kwargs: object) -> tuple[HttpTarget, set[bytes]]:
    """A target whose classifier remembers every body it saw."""
    seen: set[bytes] = set()

    def remember(response: object) -> bool:
        seen.add(response.content)  # type: ignore[attr-defined]
        return False

    return HttpTarget(url, cold_start=remember, **kwargs), seen  # type: ignore[arg-type]


# -- wire format and configuration ---------------------------------------------------------------


def test_encode_request_origin_and_absolute_form() -> None:
    url = parse_url("http://example.test:8080/path?q=1")
    template = RequestTemplate("POST", url, (("Host", "example.test:8080"),), b"body")
    assert encode_request(template) == (
        b"POST /path?q=1 HTTP/1.1\r\nHost: example.test:8080\r\n\r\nbody"
    )
    absolute = encode_request(template, absolute=True, proxy_authorization="Basic eA==")
    assert absolute.startswith(b"POST http://example.test:8080/path?q=1 HTTP/1.1\r\n")
    assert b"\r\nProxy-Authorization: Basic eA==\r\n" in absolute


def test_proxy_from_environment_rules() -> None:
    http_url = parse_url("http://api.example.test/x")
    https_url = parse_url("https://api.example.test/x")
    assert proxy_for(http_url, {}) is None
    env = {"HTTP_PROXY": "http://proxy.test:3128", "HTTPS_PROXY": "proxy2.test:8080"}
    assert proxy_for(http_url, env) == dialer.Proxy("proxy.test", 3128, None)
    assert proxy_for(https_url, env) == dialer.Proxy("proxy2.test", 8080, None)
    # Lower case wins, credentials become a Basic Proxy-Authorization.
    env["http_proxy"] = "http://user:p%40ss@low.test:1"
    chosen = proxy_for(http_url, env)
    assert chosen is not None and chosen.host == "low.test"
    assert chosen.authorization == "Basic dXNlcjpwQHNz"  # base64("user:p@ss")
    assert proxy_for(http_url, {**env, "NO_PROXY": ".example.test"}) is None
    assert proxy_for(http_url, {**env, "no_proxy": "*"}) is None
    assert proxy_for(http_url, {**env, "NO_PROXY": "other.test"}) is not None
    assert proxy_for(http_url, {**env, "NO_PROXY": "api.example.test:80"}) is None
    assert proxy_for(http_url, {**env, "NO_PROXY": "api.example.test:8080"}) is not None
    loopback = parse_url("http://127.0.0.1:8000/")
    assert proxy_for(loopback, {**env, "NO_PROXY": "10.0.0.0/8, 127.0.0.0/8"}) is None
    assert proxy_for(loopback, {**env, "NO_PROXY": "10.0.0.0/8"}) is not None


def test_unsupported_proxy_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"https_proxy='socks5://p:1080'.*http://host:port"):
        proxy_for(parse_url("https://a.test/"), {"HTTPS_PROXY": "socks5://p:1080"})


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"verify=.*nope\.pem.*CA bundle path"):
        make_ssl_context(missing)


# -- keep-alive, bodies, framing ------------------------------------------------------------------


def test_keep_alive_one_connection_per_slot(server: HttpServer) -> None:
    measurements, _ = run_burst(server.url("/"), requests=60, concurrency=6, timeout=10)
    assert measurements.ok == 60
    assert server.requests == 60
    assert server.connections == 6
    # Connection set-up is timed apart from the request latency.
    assert measurements.hist("connect").count == 6
    assert measurements.hist("all").count == 60


def test_connection_close_reconnects(server: HttpServer) -> None:
    measurements, _ = run_burst(server.url("/close"), requests=12, concurrency=3, timeout=10)
    assert measurements.ok == 12
    assert server.connections == 12
    assert measurements.hist("connect").count == 12


def test_reused_connection_closed_by_the_server_is_resent_once(server: HttpServer) -> None:
    # /oneshot drops a keep-alive connection when it is reused, before answering: the request
    # never reached the application, so it goes out again on a fresh connection.
    measurements, _ = run_burst(server.url("/oneshot"), requests=4, concurrency=1, timeout=10)
    assert measurements.ok == 4 and measurements.errors == 0
    assert server.connections == 4
    assert measurements.hist("connect").count == 4


def test_head_response_has_no_body(server: HttpServer) -> None:
    target = HttpTarget(server.url("/huge/5000"), method="HEAD")
    measurements, _ = run_burst(target, requests=4, concurrency=1, timeout=10)
    assert measurements.ok == 4
    assert measurements.bytes_received == 0
    assert server.connections == 1  # the connection stays usable after a HEAD


class _HeadThenGet:
    """A custom target whose requests alternate HEAD and GET on the same URL."""

    def __init__(self, url: str) -> None:
        self.get = HttpTarget(url).prepare()
        self.head = HttpTarget(url, method="HEAD").prepare()
        self.url, self.verify, self.max_body_bytes = self.get.url, True, 1 << 20
        self.sent = 0
        self.access_key_id = None

    def describe(self) -> str:
        return "HEAD/GET"

    def shape_info(self) -> dict:
        return {}

    def prepare(self) -> _HeadThenGet:
        return self

    def current_request(self) -> RequestTemplate:
        self.sent += 1
        return (self.head if self.sent % 2 else self.get).current_request()

    def classify(self, response, error_kind, latency_ns):  # type: ignore[no-untyped-def]
        return self.get.classify(response, error_kind, latency_ns)


def test_get_after_head_on_the_same_connection(server: HttpServer) -> None:
    measurements, _ = run_burst(
        _HeadThenGet(server.url("/huge/5000")), requests=6, concurrency=1, timeout=10
    )
    assert measurements.ok == 6
    assert measurements.bytes_received == 3 * 5000  # only the GETs carry a body
    assert server.connections == 1


def test_chunked_body_is_decoded(server: HttpServer) -> None:
    target, seen = _bodies(server.url("/chunked"))
    measurements, _ = run_burst(target, requests=6, concurrency=2, timeout=10)
    assert measurements.ok == 6
    assert seen == {b"hello chunked world"}
    assert measurements.bytes_received == 6 * len(b"hello chunked world")
    assert server.connections == 2  # chunked framing keeps the connection reusable


def test_body_delimited_by_close(server: HttpServer) -> None:
    target, seen = _bodies(server.url("/eof"))
    measurements, _ = run_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4
    assert seen == {b"until the end"}
    assert measurements.bytes_received == 4 * len(b"until the end")
    assert server.connections == 4  # the body ended with its connection: a new one each time


def test_content_length_body_and_statuses(server: HttpServer) -> None:
    target, seen = _bodies(server.url("/huge/5000"))
    measurements, _ = run_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4
    assert seen == {b"x" * 5000}
    measurements, _ = run_burst(server.url("/status/302"), requests=3, concurrency=1)
    # Redirects are not followed: a 3xx is counted as an error of its own kind.
    assert dict(measurements.status_codes) == {302: 3}
    assert dict(measurements.error_kinds or {}) == {"http_3xx": 3}


def test_body_over_the_cap_is_body_too_large(server: HttpServer) -> None:
    target, seen = _bodies(server.url("/huge/200000"), max_body_bytes=1000)
    measurements, _ = run_burst(target, requests=3, concurrency=1, timeout=10)
    assert dict(measurements.error_kinds) == {"body_too_large": 3}
    assert dict(measurements.status_codes) == {200: 3}
    assert all(len(body) == 1000 for body in seen)  # buffered up to the cap, no further
    assert measurements.bytes_received > 3 * 1000  # bytes past the cap are counted
    assert server.connections == 3  # the connection is dropped each time
    assert measurements.hist("all").count == 3  # a capped response still has its latency


# -- error kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/closenow", "connection_closed"),
        ("/truncated", "truncated_body"),
        ("/reset", "connection_reset"),
        ("/garbage", "protocol_error"),
    ],
)
def test_broken_responses_have_their_error_kind(server: HttpServer, path: str, kind: str) -> None:
    measurements, info = run_burst(server.url(path), requests=4, concurrency=2, timeout=10)
    assert dict(measurements.error_kinds) == {kind: 4}
    assert measurements.errors == 4 and measurements.ok == 0
    assert measurements.hist("all").count == 0  # no response, no latency
    assert info.stopped is None


def test_stalled_response_times_out_with_its_latency(server: HttpServer) -> None:
    measurements, _ = run_burst(server.url("/stall"), requests=2, concurrency=2, timeout=0.2)
    assert dict(measurements.error_kinds) == {"timeout": 2}
    assert measurements.timeouts == 2
    assert measurements.hist("all").count == 2  # a timeout records the elapsed time


def test_connect_refused() -> None:
    url = f"http://127.0.0.1:{_free_port()}/"
    measurements, _ = run_burst(url, requests=5, concurrency=2, timeout=5)
    assert dict(measurements.error_kinds) == {"connect_refused": 5}
    assert measurements.unsent == 0


def test_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(loop: object, host: str, port: int) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(dialer, "resolve", fail)
    measurements, _ = run_burst("http://nowhere.invalid/", requests=3, concurrency=1, timeout=5)
    assert dict(measurements.error_kinds) == {"dns_failure": 3}


def test_connect_timeout(monkeypatch: pytest.MonkeyPatch, server: HttpServer) -> None:
    async def hang(loop: object, host: str, port: int) -> list:
        await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(dialer, "resolve", hang)
    measurements, _ = run_burst(server.url("/"), requests=2, concurrency=2, timeout=0.1)
    assert dict(measurements.error_kinds) == {"connect_timeout": 2}
    assert server.connections == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux drops SYNs on a full queue")
def test_connect_timeout_against_a_full_accept_queue() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepted: once the queue is full, SYNs go unanswered
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        measurements, _ = run_burst(url, requests=6, concurrency=6, timeout=0.3)
    kinds = dict(measurements.error_kinds)
    # The queue admits a connection or two (their requests then time out); the rest cannot
    # connect at all.
    assert set(kinds) <= {"connect_timeout", "timeout"}
    assert kinds.get("connect_timeout", 0) >= 4
    assert measurements.count == 6


# -- TLS -------------------------------------------------------------------------------------------


def test_tls_with_ca_path(tls_server: HttpServer, ca_path: str) -> None:
    target = HttpTarget(tls_server.url("/chunked"), verify=ca_path)
    measurements, _ = run_burst(target, requests=6, concurrency=3, timeout=10)
    assert measurements.ok == 6
    assert tls_server.connections == 3


def test_tls_unknown_ca_is_tls_error(tls_server: HttpServer) -> None:
    measurements, _ = run_burst(tls_server.url("/"), requests=3, concurrency=3, timeout=10)
    assert dict(measurements.error_kinds) == {"tls_error": 3}


def test_tls_verify_false_accepts_unknown_ca(tls_server: HttpServer) -> None:
    target = HttpTarget(tls_server.url("/"), verify=False)
    measurements, _ = run_burst(target, requests=3, concurrency=1, timeout=10)
    assert measurements.ok == 3


def test_tls_default_context_honours_ssl_cert_file(
    tls_server: HttpServer, ca_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_path)
    measurements, _ = run_burst(tls_server.url("/"), requests=2, concurrency=1, timeout=10)
    assert measurements.ok == 2


def test_tls_hostname_mismatch_is_tls_error(ca: trustme.CA, ca_path: str) -> None:
    with HttpServer(ssl_context=tls_contexts(ca, ("other.example.test",))) as srv:
        target = HttpTarget(srv.url("/"), verify=ca_path)
        measurements, _ = run_burst(target, requests=2, concurrency=1, timeout=10)
    assert dict(measurements.error_kinds) == {"tls_error": 2}


def test_tls_sni_and_hostname_by_name(tls_server: HttpServer, ca_path: str) -> None:
    target = HttpTarget(tls_server.url("/", host="localhost"), verify=ca_path)
    measurements, _ = run_burst(target, requests=2, concurrency=1, timeout=10)
    assert measurements.ok == 2


# -- proxies -------------------------------------------------------------------------------------


def test_http_through_proxy_from_env(
    server: HttpServer, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    measurements, _ = run_burst(server.url("/chunked"), requests=6, concurrency=2, timeout=10)
    assert measurements.ok == 6
    assert len(proxy.forwards) == 2  # one proxy connection per slot, kept alive
    assert all(line.startswith(b"GET http://127.0.0.1:") for line in server.request_lines)
    assert proxy.connects == []


def test_https_through_proxy_connect(
    tls_server: HttpServer, proxy: ConnectProxy, ca_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:secret@127.0.0.1:{proxy.port}")
    target = HttpTarget(tls_server.url("/"), verify=ca_path)
    measurements, _ = run_burst(target, requests=6, concurrency=2, timeout=10)
    assert measurements.ok == 6
    assert proxy.connects == [f"127.0.0.1:{tls_server.port}".encode()] * 2
    assert proxy.authorizations == [b"Basic dXNlcjpzZWNyZXQ="] * 2
    assert tls_server.connections == 2


def test_no_proxy_bypasses_the_proxy(
    server: HttpServer, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    measurements, _ = run_burst(server.url("/"), requests=3, concurrency=1, timeout=10)
    assert measurements.ok == 3
    assert proxy.forwards == [] and proxy.connects == []


def test_unreachable_proxy_is_proxy_error(
    tls_server: HttpServer, server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_free_port()}")
    measurements, _ = run_burst(server.url("/"), requests=2, concurrency=1, timeout=10)
    assert dict(measurements.error_kinds) == {"proxy_error": 2}
    measurements, _ = run_burst(tls_server.url("/"), requests=2, concurrency=1, timeout=10)
    assert dict(measurements.error_kinds) == {"proxy_error": 2}


def test_proxy_refusing_connect_is_proxy_error(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The origin test server answers CONNECT with 405: no tunnel.
    monkeypatch.setenv("HTTPS_PROXY", server.url("/"))
    measurements, _ = run_burst("https://127.0.0.1:9/", requests=2, concurrency=1, timeout=10)
    assert dict(measurements.error_kinds) == {"proxy_error": 2}
