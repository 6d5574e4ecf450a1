"""Per-request data (json=, body=, payload=, ...), labels and response checks.

What was delivered is checked at the server side: a loopback server that records every
body it received (the echo a check= sees is the client's view).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_lambda_slo import Burst, ConfigError, Cycle, HttpTarget, InvokeTarget, Rate, run
from pytest_lambda_slo._load.drivers import engine_for
from pytest_lambda_slo._load.runner import run_on_own_loop
from pytest_lambda_slo._report.terminal import render_burst
from pytest_lambda_slo._targets import values
from pytest_lambda_slo.emulator import Emulator


class Recorder(ThreadingHTTPServer):
    """Records every request (path and body); answers 200 with the body (JSON: Invoke-like)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, bytes]] = []
        self.authorizations: list[str] = []
        # A token check: (current token number) -> accepted; None accepts anything.
        self.accept: Any = None
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [json.loads(body) for _, body in self.seen]

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
            self.authorizations.clear()
        self.accept = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization") or ""
        with self.server.lock:
            self.server.seen.append((self.path, body))
            self.server.authorizations.append(authorization)
        accept = self.server.accept
        if accept is not None and not accept(authorization):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = body or b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_GET = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[Emulator]:
    with Emulator(["echo:duration=0ms,init=0ms,echo=true"]) as emu:
        yield emu


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPERREQUEST000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "per-request-test-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


def _orders(recorder: Recorder) -> list[int]:
    return sorted(body["order"] for body in recorder.bodies())


@pytest.mark.parametrize("workers", [1, 2])
def test_every_json_body_reaches_the_server_exactly_once(recorder: Recorder, workers: int) -> None:
    recorder.reset()
    target = HttpTarget(recorder.url + "/orders", method="POST", json=lambda i: {"order": i})
    result = run(target, Burst(requests=301, concurrency=6), workers=workers)
    assert result.ok == 301, result.error_kinds
    assert _orders(recorder) == list(range(301))


def test_a_rate_run_over_workers_sends_each_index_once(recorder: Recorder) -> None:
    recorder.reset()
    target = HttpTarget(recorder.url + "/r", method="POST", json=lambda i: {"order": i})
    result = run(target, Rate(rps=200, duration="1s"), workers=2)
    assert result.count == 200
    assert _orders(recorder) == list(range(200))


@pytest.mark.parametrize("workers", [1, 2])
def test_every_invoke_payload_reaches_the_server_exactly_once(
    recorder: Recorder, aws_env: None, workers: int
) -> None:
    recorder.reset()
    target = InvokeTarget(
        "fn", region="us-east-1", endpoint_url=recorder.url, payload=lambda i: {"order": i}
    )
    result = run(target, Burst(requests=120, concurrency=4), workers=workers)
    assert result.ok == 120, result.error_kinds
    assert _orders(recorder) == list(range(120))
    assert {path for path, _ in recorder.seen} == {"/2015-03-31/functions/fn/invocations"}


def test_a_check_rejecting_one_id_in_ten_reports_ten_percent(echo: Emulator) -> None:
    target = HttpTarget(
        echo.function_url("echo"), method="POST", json=lambda i: {"order": i},
        check=lambda response: response.json()["order"] % 10 != 0,
    )  # fmt: skip
    result = run(target, Burst(requests=200, concurrency=8), workers=2)
    assert result.error_kinds == {"check_failed": 20}
    assert result.ok == 180
    assert result.status_codes == {200: 200}  # the status is kept


def test_invoke_payloads_with_a_check(echo: Emulator, aws_env: None) -> None:
    def check(response: Any) -> None:
        assert response.json()["order"] % 10 != 3, "order ends in 3"

    target = InvokeTarget(
        "echo", region="us-east-1", endpoint_url=echo.invoke_endpoint,
        payload=lambda i: {"order": i}, check=check,
    )  # fmt: skip
    prepared: Any = target.prepare()
    measurements, _ = run_on_own_loop(engine_for(Burst(requests=100, concurrency=5), prepared))
    assert measurements.to_dict()["error_kinds"] == {"check_failed": 10}
    # The first five distinct messages (pytest's assertion rewriting adds the values).
    assert len(prepared.check_messages) == 5
    assert all(
        m.startswith("status 200: AssertionError: order ends in 3") for m in prepared.check_messages
    )


def _labels(target: Any, shape: Any) -> list[str | None]:
    """The label of every recorded outcome."""
    engine = engine_for(shape, target.prepare())
    labels: list[str | None] = []
    record = engine.measurements.record

    def recording(outcome: Any) -> None:
        labels.append(outcome.label)
        record(outcome)

    engine.measurements.record = recording  # type: ignore[method-assign]
    run_on_own_loop(engine)
    return labels


def test_labels_follow_the_request_data(recorder: Recorder) -> None:
    target = HttpTarget(
        recorder.url + "/l", method="POST", json=lambda i: {"order": i},
        label=lambda data: "even" if data["order"] % 2 == 0 else "odd",
    )  # fmt: skip
    labels = _labels(target, Burst(requests=50, concurrency=5))
    assert sorted(labels, key=str) == ["even"] * 25 + ["odd"] * 25
    fixed = HttpTarget(recorder.url + "/l", label="health")
    assert set(_labels(fixed, Burst(requests=10, concurrency=2))) == {"health"}


def test_errors_carry_the_label_too() -> None:
    target = HttpTarget("http://127.0.0.1:9/", label=lambda i: f"row-{i % 2}")
    labels = _labels(target, Burst(requests=6, concurrency=2))
    assert sorted(labels, key=str) == ["row-0"] * 3 + ["row-1"] * 3


def test_rows_are_cycled_and_generators_read_once(recorder: Recorder) -> None:
    recorder.reset()
    rows = ({"order": n} for n in range(3))
    target = HttpTarget(recorder.url + "/c", method="PUT", json=rows)
    assert run(target, Burst(requests=9, concurrency=3)).ok == 9
    assert _orders(recorder) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    recorder.reset()
    cycled = HttpTarget(
        recorder.url + "/c", method="POST", json=Cycle([{"order": 7}, {"order": 8}])
    )
    assert run(cycled, Burst(requests=4, concurrency=2)).ok == 4
    assert _orders(recorder) == [7, 7, 8, 8]
    recorder.reset()
    arrays = HttpTarget(recorder.url + "/c", method="POST", json=[1, 2])  # a list is a value
    assert run(arrays, Burst(requests=2, concurrency=1)).ok == 2
    assert recorder.bodies() == [[1, 2], [1, 2]]


def test_paths_queries_and_headers_per_request(recorder: Recorder) -> None:
    recorder.reset()
    target = HttpTarget(
        recorder.url + "/base?x=1", path=lambda i: f"/items/{i}",
        query=lambda i: {"page": i % 2}, headers=[{"X-Row": "a"}, {"X-Row": "b"}],
    )  # fmt: skip
    assert run(target, Burst(requests=4, concurrency=1)).ok == 4
    assert sorted(path for path, _ in recorder.seen) == [
        "/items/0?page=0", "/items/1?page=1", "/items/2?page=0", "/items/3?page=1",
    ]  # fmt: skip


def test_a_seeded_rng_gives_each_request_the_same_data_in_every_run(recorder: Recorder) -> None:
    def body(i: int, rng: Any) -> dict[str, int]:
        return {"order": i, "pick": rng.randrange(1_000_000)}

    runs = []
    for workers in (1, 2):
        recorder.reset()
        target = HttpTarget(recorder.url + "/s", method="POST", json=body, seed=42)
        assert run(target, Burst(requests=40, concurrency=4), workers=workers).ok == 40
        runs.append(sorted((b["order"], b["pick"]) for b in recorder.bodies()))
    assert runs[0] == runs[1]
    assert len({pick for _, pick in runs[0]}) > 30  # random, not constant


def test_the_fixed_request_is_one_template() -> None:
    prepared: Any = HttpTarget("http://127.0.0.1:9/", json={"a": 1}).prepare()
    assert prepared.feed is None
    assert prepared.current_request() is prepared.current_request()


def test_requests_of_a_sized_run_are_built_before_the_release(recorder: Recorder) -> None:
    built: list[int] = []

    def body(i: int) -> str:
        built.append(i)
        return str(i)

    prepared: Any = HttpTarget(recorder.url + "/b", method="POST", body=body).prepare()
    prepared.begin(1, 3, 5)  # slice 1 of 3, five requests: global 1, 4, 7, 10, 13
    assert built == [1, 4, 7, 10, 13]
    assert [prepared.current_request().body for _ in range(5)] == [b"1", b"4", b"7", b"10", b"13"]


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(values, "MAX_ROWS", 5)
    with pytest.raises(ConfigError, match=r"json= has more than 5 rows; use a callable f\(i\)"):
        HttpTarget("http://127.0.0.1:9/", json=iter(range(6)))


BAD = [
    ({"json": Cycle([])}, "json= has no rows"),
    ({"json": Cycle([{1, 2}])}, "json= is not JSON serialisable"),
    ({"body": [1, 2]}, "body=1 is not valid"),
    ({"json": lambda: 1}, "json= callable '<lambda>' takes 0 arguments; use f(i)"),
    ({"json": lambda a, b, c: 1}, "takes 3 arguments"),
    ({"path": "items"}, "path='items' is not valid; use a path starting with '/'"),
    ({"path": ["/a", "b c"]}, "path='b c' is not valid"),
    ({"query": 5}, "query=5 is not valid"),
    ({"headers": [{"Bad Name": "x"}]}, "header name 'Bad Name' is not valid"),
    ({"label": ""}, "label='' is not valid; use a non-empty string, or a callable"),
    ({"label": 3}, "label=3 is not valid"),
    ({"check": "yes"}, "check='yes' is not valid; use a callable taking the response"),
    ({"seed": -1}, "seed=-1 is not valid; use a whole number >= 0"),
    ({"seed": "x"}, "seed='x' is not valid"),
    ({"auth": "iam"}, "auth='iam' is not valid"),
    (
        {"auth": object()},
        "is not valid; use 'aws_iam', AwsIam(service=..., region=...) or an httpx",
    ),
    ({"auth_refresh": 0}, "auth_refresh"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD)
def test_bad_per_request_options_are_one_line_errors(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        HttpTarget("http://127.0.0.1:9/", **kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_invoke_payloads_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="payload= has no rows"):
        InvokeTarget("fn", region="us-east-1", payload=Cycle(()))
    with pytest.raises(ConfigError, match=r"payload \(3 bytes\) is not JSON"):
        InvokeTarget("fn", region="us-east-1", payload=Cycle(["{x}"]))
    with pytest.raises(ConfigError, match="check=1 is not valid"):
        InvokeTarget("fn", region="us-east-1", check=1)


def test_a_callable_returning_bad_data_names_the_request(recorder: Recorder) -> None:
    target = HttpTarget(recorder.url, method="POST", json=lambda i: {"x": {i}})
    with pytest.raises(ConfigError, match="json= is not JSON serialisable"):
        run(target, Burst(requests=3, concurrency=1))
    raising = HttpTarget(recorder.url, method="POST", json=lambda i: 1 // (i - 2))
    with pytest.raises(ConfigError, match="json= callable raised ZeroDivisionError for request 2"):
        run(raising, Burst(requests=3, concurrency=1))


def test_per_request_data_cannot_go_to_lambda_shards() -> None:
    from pytest_lambda_slo._load.spec import target_to_spec

    with pytest.raises(ConfigError, match=r"json=, check= cannot be sent to a Lambda shard"):
        target_to_spec(HttpTarget("http://127.0.0.1:9/", json=lambda i: i, check=bool))
    with pytest.raises(ConfigError, match=r"payload= cannot be sent to a Lambda shard"):
        target_to_spec(InvokeTarget("fn", region="us-east-1", payload=lambda i: {}))


def test_auto_shapes_over_workers_refuse_per_request_data() -> None:
    target = HttpTarget("http://127.0.0.1:9/", json=lambda i: {"order": i})
    shape = Burst(requests="auto", concurrency=4, max_requests=100, budgets={"p99": "1s"})
    with pytest.raises(ConfigError, match=r"per-request json= with workers=2 and an auto shape"):
        run(target, shape, workers=2)


def test_lambdas_in_a_test_module_go_to_workers(
    pytester: pytest.Pytester, recorder: Recorder
) -> None:
    pytester.makepyfile(
        test_rows=f"""
from pytest_lambda_slo import HttpTarget

def test_rows(lambda_slo):
    target = HttpTarget({recorder.url + "/w"!r}, method="POST", json=lambda i: {{"order": i}},
                        check=lambda r: r.status_code == 200, label=lambda d: "row")
    result = lambda_slo.burst(target, requests=40, concurrency=4, workers=2)
    assert result.ok == 40
"""
    )
    recorder.reset()
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert _orders(recorder) == list(range(40))


def test_httpx_basic_auth_headers_are_sent(recorder: Recorder) -> None:
    import httpx

    recorder.reset()
    target = HttpTarget(recorder.url + "/basic", auth=httpx.BasicAuth("user", "pass"))
    assert target.shape_info()["auth"] == "httpx.Auth (BasicAuth)"
    assert run(target, Burst(requests=10, concurrency=2)).ok == 10
    assert set(recorder.authorizations) == {"Basic dXNlcjpwYXNz"}


class RotatingBearer:
    """A Cognito-style token provider: every run of its flow fetches the next token."""

    def __init__(self) -> None:
        import httpx

        self.issued = 0

        class Flow(httpx.Auth):
            def auth_flow(inner, request: Any) -> Any:
                self.issued += 1
                request.headers["Authorization"] = f"Bearer token-{self.issued}"
                yield request

        self.auth = Flow()

    def valid(self, authorization: str) -> bool:
        """The current token and the one before it are valid (a rotation's overlap)."""
        number = int(authorization.rpartition("-")[2] or 0)
        return number >= self.issued - 1


def test_a_rotating_bearer_token_keeps_the_run_passing(recorder: Recorder) -> None:
    recorder.reset()
    tokens = RotatingBearer()
    recorder.accept = tokens.valid
    target = HttpTarget(recorder.url + "/bearer", auth=tokens.auth, auth_refresh="200ms")
    result = run(target, Rate(rps=100, duration="1.5s"))
    assert result.ok == 150, result.error_kinds
    assert tokens.issued >= 4  # refreshed during the run
    assert len(set(recorder.authorizations)) >= 4  # and the new tokens were sent


def test_a_401_fetches_a_new_token(recorder: Recorder) -> None:
    recorder.reset()
    tokens = RotatingBearer()
    recorder.accept = lambda authorization: not authorization.endswith("token-1")  # expired
    target = HttpTarget(recorder.url + "/expired", auth=tokens.auth)
    result = run(target, Rate(rps=100, duration="1s"))
    assert tokens.issued >= 2
    assert result.error_kinds.get("auth_denied", 0) >= 1
    assert set(result.error_kinds) <= {"auth_denied"}
    assert result.ok > 0 and "Bearer token-2" in recorder.authorizations


def test_flows_that_send_requests_are_refused() -> None:
    import httpx

    with pytest.raises(ConfigError, match="only header-producing flows are supported"):
        HttpTarget("http://127.0.0.1:9/", auth=httpx.DigestAuth("u", "p")).prepare()


@pytest.mark.parametrize("workers", [1, 2])
def test_check_messages_reach_the_report_and_json(echo: Emulator, workers: int) -> None:
    def check(response: Any) -> None:
        order = response.json()["order"]
        if order % 10 == 0:  # raised, not asserted: pytest would add the expression
            raise ValueError(f"order {order} was refused")

    target = HttpTarget(
        echo.function_url("echo"), method="POST", json=lambda i: {"order": i}, check=check,
    )  # fmt: skip
    result = run(target, Burst(requests=100, concurrency=4), workers=workers)
    assert result.error_kinds == {"check_failed": 10}
    kept = result.extras["error_messages"]["check_failed"]
    assert len(kept) == 5 and len(set(kept)) == 5  # the first five distinct, over all workers
    assert all("was refused" in message for message in kept)
    assert result.to_dict()["extras"]["error_messages"]["check_failed"] == kept
    text = "\n".join(render_burst("t", result))
    assert "first messages by error kind:" in text and kept[0] in text
