"""Tests of InvokeTarget: parsing, signing, classification, forced cold starts, secrets."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_lambda_slo._aws import auth as aws_auth
from pytest_lambda_slo._aws.control import FORCE_COLD_VARIABLE, force_cold, wait_until_updated
from pytest_lambda_slo._http.response import Headers, Response
from pytest_lambda_slo._results.recorder import Measurements
from pytest_lambda_slo._targets.invoke import InvokeTarget, parse_function
from pytest_lambda_slo._targets.resolve import as_target
from pytest_lambda_slo.errors import (
    AuthRefused,
    ConfigError,
    LambdaSLOError,
    MissingExtraError,
)

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "fakeSecretKeyDoNotLeak0123456789abcdefgh"
TOKEN = "fakeSessionTokenDoNotLeakXYZ"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:my-fn"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Fake credentials in the environment; no shared files, no instance metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    yield


def assert_secret_free(text: str) -> None:
    assert SECRET not in text
    assert TOKEN not in text


# -- names, ARNs and bad input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path_name", "qualifier", "region"),
    [
        ("lambda:my-fn", "my-fn", None, None),
        ("lambda:my-fn:prod", "my-fn", "prod", None),
        ("lambda:my_fn:$LATEST", "my_fn", "$LATEST", None),
        ("lambda:my-fn:7", "my-fn", "7", None),
        (ARN, ARN, None, "eu-west-1"),
        (ARN + ":live", ARN, "live", "eu-west-1"),
        ("lambda:" + ARN + ":3", ARN, "3", "eu-west-1"),
        ("lambda:123456789012:function:my-fn", "123456789012:function:my-fn", None, None),
    ],
)
def test_from_string_forms(text: str, path_name: str, qualifier: str | None, region: str | None):
    target = InvokeTarget.from_string(text)
    assert target.shape_info()["function"] == path_name
    assert target.qualifier == qualifier
    assert target.shape_info()["region"] == region
    assert target.function_name == path_name.rsplit(":", 1)[-1]  # the name alone
    assert target.function_name in ("my-fn", "my_fn")


def test_as_target_builds_invoke_targets() -> None:
    assert isinstance(as_target("lambda:fn"), InvokeTarget)
    assert isinstance(as_target(ARN), InvokeTarget)


@pytest.mark.parametrize(
    "text",
    [
        "lambda:",
        "lambda:bad name",
        "lambda:fn:a:b",
        "lambda:fn:",
        "lambda:fn:bad/alias",
        "lambda:" + "x" * 65,
        "arn:aws:lambda:eu-west-1:123:function:fn",  # account is not 12 digits
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:eu-west-1:123456789012:layer:fn",
        "arn:aws:lambda:eu-west-1:123456789012:function:fn:a:b",
        "http://example.com",
    ],
)
def test_bad_names_give_one_line_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        InvokeTarget.from_string(text)
    message = str(info.value)
    assert "\n" not in message
    assert "lambda:NAME" in message or "qualifier" in message.lower()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"function": ARN + ":a", "qualifier": "b"}, "conflicts"),
        ({"function": ARN, "region": "us-east-1"}, "conflicts with region 'eu-west-1'"),
        ({"function": "fn", "invocation_type": "Async"}, "invocation_type='Async'"),
        ({"function": "fn", "payload": "not json"}, "is not JSON"),
        ({"function": "fn", "payload": b"{"}, "is not JSON"),
        ({"function": "fn", "payload": {1, 2}}, "not JSON serialisable"),
        ({"function": "fn", "throttle_statuses": (700,)}, "throttle_statuses contains 700"),
        ({"function": "fn", "verify": 3}, "verify=3"),
        ({"function": "fn", "max_body_bytes": -1}, "max_body_bytes=-1"),
        ({"function": "fn", "sign_window_s": 600}, "sign_window_s=600"),
        ({"function": "fn", "architecture": "mips"}, "architecture='mips'"),
        ({"function": "fn", "endpoint_url": "ftp://x"}, "unsupported scheme"),
        ({"function": 42}, "42"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        InvokeTarget(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_function_accepts_partial_arn_and_qualifier_argument() -> None:
    ref = parse_function("fn", "$LATEST")
    assert (ref.name, ref.qualifier, ref.region) == ("fn", "$LATEST", None)
    assert parse_function("fn:2", "2").qualifier == "2"  # the same qualifier twice is fine
    assert InvokeTarget("fn", qualifier=7).qualifier == "7"
    with pytest.raises(ConfigError, match="qualifier True"):
        InvokeTarget("fn", qualifier=True)


def test_payload_forms() -> None:
    assert InvokeTarget("fn").shape_info()["payload_bytes"] == 2  # {}
    assert InvokeTarget("fn", payload={"a": 1}).shape_info()["payload_bytes"] == len('{"a":1}')
    assert InvokeTarget("fn", payload='"text"').shape_info()["payload_bytes"] == 6
    assert InvokeTarget("fn", payload=b"[1, 2]").shape_info()["payload_bytes"] == 6


# -- requests and signing ----------------------------------------------------------------


def test_request_shape_for_an_arn_with_qualifier(aws_env: None) -> None:
    prepared = InvokeTarget(ARN, qualifier="live", payload={"k": "v"}).prepare()
    request = prepared.current_request()
    assert request.method == "POST"
    assert request.url.host == "lambda.eu-west-1.amazonaws.com"
    assert request.url.port == 443
    assert request.url.target == (
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Amy-fn"
        "/invocations?Qualifier=live"
    )
    headers = dict(request.headers)
    assert headers["X-Amz-Invocation-Type"] == "RequestResponse"
    assert headers["X-Amz-Log-Type"] == "Tail"
    assert headers["Content-Length"] == str(len(b'{"k":"v"}'))
    assert headers["X-Amz-Security-Token"] == TOKEN
    authorization = headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/lambda/aws4_request" in authorization
    assert "x-amz-invocation-type;x-amz-log-type" in authorization
    assert request.body == b'{"k":"v"}'


def test_event_invocations_ask_for_no_log(aws_env: None) -> None:
    prepared = InvokeTarget("fn", region="us-east-1", invocation_type="Event").prepare()
    headers = dict(prepared.current_request().headers)
    assert headers["X-Amz-Invocation-Type"] == "Event"
    assert headers["X-Amz-Log-Type"] == "None"


def test_signature_is_reused_within_the_window_and_renewed_after(aws_env: None) -> None:
    now = [1000.0]
    target = InvokeTarget("fn", region="us-east-1", endpoint_url="http://127.0.0.1:9")
    prepared = target.prepare()
    prepared.signer._clock = lambda: now[0]  # a controlled clock instead of time.monotonic
    first = prepared.current_request()
    for _ in range(1000):
        assert prepared.current_request() is first
    assert prepared.signer.signatures == 1
    now[0] += target.sign_window_s - 0.001
    assert prepared.current_request() is first
    now[0] += 0.002
    second = prepared.current_request()
    assert second is not first
    assert prepared.signer.signatures == 2
    assert dict(second.headers)["Host"] == "127.0.0.1:9"


def test_region_from_the_environment_and_missing_region(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no AWS region") as info:
        InvokeTarget("fn").prepare()
    assert_secret_free(str(info.value))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    prepared = InvokeTarget("fn").prepare()
    assert prepared.url.host == "lambda.ap-south-1.amazonaws.com"
    assert prepared.region == "ap-south-1"


def test_missing_credentials_is_a_config_error(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match="no AWS credentials found"):
        InvokeTarget("fn", region="us-east-1").prepare()


def test_unknown_profile_is_a_config_error(aws_env: None) -> None:
    with pytest.raises(ConfigError, match="profile 'nope' was not found"):
        InvokeTarget("fn", region="us-east-1", profile="nope").prepare()


def test_without_botocore_a_missing_extra_error_says_what_to_install(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)  # makes "import botocore" fail
    target = InvokeTarget.from_string("lambda:fn", region="us-east-1")
    assert target.describe()  # describing needs no botocore
    with pytest.raises(MissingExtraError) as info:
        target.prepare()
    assert 'pip install "pytest-lambda-slo[aws]"' in str(info.value)
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingExtraError):
        aws_auth.require_botocore()


def test_secrets_never_appear_in_descriptions_or_errors(aws_env: None) -> None:
    target = InvokeTarget(
        ARN, qualifier="live", endpoint_url="http://user:pw@127.0.0.1:9/?token=abc"
    )
    prepared = target.prepare()
    texts = [target.describe(), json.dumps(target.shape_info()), repr(target), repr(prepared)]
    for text in texts:
        assert_secret_free(text)
        assert "pw@" not in text
    assert "abc" not in target.describe()
    # Errors raised along the way name no secret either.
    messages = []
    for bad in ({"payload": "x"}, {"region": "us-east-1"}, {"profile": "missing"}):
        try:
            InvokeTarget(ARN, **bad).prepare()
        except (ConfigError, LambdaSLOError) as exc:
            messages.append(str(exc))
    assert len(messages) == 3
    for message in messages:
        assert_secret_free(message)


# -- classification ----------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


COLD_TAIL = b64(
    "REPORT RequestId: r\tDuration: 8.40 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 66 MB\tInit Duration: 170.13 ms\t"
)
WARM_TAIL = b64(
    "REPORT RequestId: r\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 66 MB\t"
)


def response(status: int, body: bytes = b"{}", truncated: bool = False, **headers: str):
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Response(status, Headers(raw), body, truncated=truncated)


@pytest.fixture
def prepared(aws_env: None) -> Any:
    return InvokeTarget("fn", region="us-east-1").prepare()


def test_cold_warm_and_proactive_init(prepared: Any) -> None:
    ms = 1_000_000
    cold = prepared.classify(response(200, X_Amz_Log_Result=COLD_TAIL), None, 200 * ms)
    assert (cold.kind, cold.cold, cold.proactive_init) == ("ok", True, False)
    assert cold.server == {
        "duration": 8.4,
        "billed": 9.0,
        "memory": 128.0,
        "max_memory": 66.0,
        "init": 170.13,
    }
    warm = prepared.classify(response(200, X_Amz_Log_Result=WARM_TAIL), None, 3 * ms)
    assert (warm.kind, warm.cold, warm.server["duration"]) == ("ok", False, 1.5)
    # 12 ms round trip with a 170 ms Init Duration: initialised ahead of the request.
    early = prepared.classify(response(200, X_Amz_Log_Result=COLD_TAIL), None, 12 * ms)
    assert (early.kind, early.cold, early.proactive_init) == ("ok", False, True)
    unknown = prepared.classify(response(200), None, 3 * ms)
    assert unknown.cold is None and unknown.server is None
    measurements = Measurements(highest_us=10_000_000)
    for outcome in (cold, warm, early, unknown):
        measurements.record(outcome)
    assert (measurements.cold_starts, measurements.cold_known) == (1, 3)
    assert measurements.proactive_inits == 1
    assert measurements.hist("init").count == 2
    assert measurements.hist("duration").count == 3
    assert measurements.billed_mb_ms == pytest.approx((9 + 2 + 9) * 128)


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "detail"),
    [
        (
            200,
            b'{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}',
            {"X_Amz_Function_Error": "Handled"},
            "error",
            "function_error:Handled:ValueError",
        ),
        (
            200,
            b'{"errorType":"Sandbox.Timedout","errorMessage":"timed out"}',
            {"X_Amz_Function_Error": "Unhandled"},
            "error",
            "function_error:Unhandled:Sandbox.Timedout",
        ),
        (
            200,
            b"not json",
            {"X_Amz_Function_Error": "Unhandled"},
            "error",
            "function_error:Unhandled",
        ),
        (
            429,
            b'{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User",'
            b'"message":"Rate Exceeded."}',
            {"x_amzn_ErrorType": "TooManyRequestsException"},
            "throttle",
            "ReservedFunctionConcurrentInvocationLimitExceeded",
        ),
        (
            429,
            b"",
            {"x_amzn_ErrorType": "TooManyRequestsException:http://x/"},
            "throttle",
            "TooManyRequestsException",
        ),
        (429, b"<html>", {}, "throttle", "unknown"),
        (
            404,
            b'{"Type":"User","message":"Function not found"}',
            {"x_amzn_ErrorType": "ResourceNotFoundException:http://internal.amazon.com/"},
            "error",
            "ResourceNotFoundException",
        ),
        (403, b'{"message":"bad signature"}', {}, "error", "http_4xx"),
        (502, b"bad gateway", {}, "error", "http_5xx"),
        (200, b"<html>oops</html>", {}, "error", "invalid_response"),
        (201, b"{}", {}, "error", "unexpected_status_201"),
    ],
)
def test_classify_errors_and_throttles(
    prepared: Any, status: int, body: bytes, headers: dict, kind: str, detail: str
) -> None:
    answer = response(status, body, **headers)
    outcome = prepared.classify(answer, None, 5_000_000)
    assert outcome.kind == kind
    # Hot path: one pass over the raw headers, the case-insensitive map is never built.
    assert answer.headers._map is None
    assert outcome.status == status
    if kind == "throttle":
        assert outcome.throttle_reason == detail
    else:
        assert outcome.error_kind == detail


def test_classify_transport_errors_and_lenient_bodies(aws_env: None) -> None:
    prepared = InvokeTarget("fn", region="us-east-1").prepare()
    outcome = prepared.classify(None, "timeout", 30_000_000_000)
    assert (outcome.kind, outcome.error_kind) == ("error", "timeout")
    # A truncated body cannot be judged; a raw-bytes function opts out of the JSON check.
    assert prepared.classify(response(200, b"[1, 2", truncated=True), None, 1).kind == "ok"
    raw = InvokeTarget("fn", region="us-east-1", expect_json=False).prepare()
    assert raw.classify(response(200, b"plain text"), None, 1).kind == "ok"
    # Big bodies are sniffed, not parsed.
    big = b'{"data":"' + b"x" * (300 * 1024) + b'"}'
    assert prepared.classify(response(200, big), None, 1).kind == "ok"
    assert prepared.classify(response(200, b"<" + big), None, 1).error_kind == "invalid_response"
    event = InvokeTarget("fn", region="us-east-1", invocation_type="Event").prepare()
    assert event.classify(response(202, b""), None, 1).kind == "ok"


def test_estimate_cost_from_measurements(aws_env: None) -> None:
    target = InvokeTarget(ARN)
    prepared = target.prepare()
    measurements = Measurements(highest_us=10_000_000)
    for _ in range(4):
        measurements.record(prepared.classify(response(200, X_Amz_Log_Result=WARM_TAIL), None, 1))
    cost = target.estimate_cost(measurements)
    assert cost["requests"] == 4
    assert cost["gb_seconds"] == pytest.approx(4 * 2 * 128 / 1024 / 1000)
    assert cost["region"] == "eu-west-1"
    assert cost["fallback_prices"] is True  # eu-west-1 is not in the default table
    own = InvokeTarget(ARN, prices={"request": 1.0, "gb_second": 0.0}).estimate_cost(measurements)
    assert own["total_usd"] == pytest.approx(4.0)


# -- forced cold starts with a recording fake client ----------------------------------------


class FakeLambdaClient:
    """Records control-plane calls; LastUpdateStatus goes InProgress then Successful."""

    def __init__(self, variables: dict[str, str] | None, fail_update_number: int | None = None):
        self.variables = variables
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.pending = 0
        self.fail_update_number = fail_update_number
        self.updates = 0

    def get_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get", kwargs))
        status = "InProgress" if self.pending else "Successful"
        self.pending = max(0, self.pending - 1)
        config: dict[str, Any] = {"FunctionName": "fn", "LastUpdateStatus": status}
        if self.variables is not None:
            config["Environment"] = {"Variables": dict(self.variables)}
        return config

    def update_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.updates += 1
        self.calls.append(("update", kwargs))
        if self.updates == self.fail_update_number:
            raise RuntimeError("update refused")
        self.variables = dict(kwargs["Environment"]["Variables"])
        self.pending = 2
        return {}


def test_force_cold_bumps_then_restores(aws_env: None) -> None:
    client = FakeLambdaClient({"KEEP": "secret-value-123"})
    target = InvokeTarget("fn", region="us-east-1")
    sleeps: list[float] = []
    with force_cold(target, client=client, sleep=sleeps.append) as record:
        assert client.variables is not None
        assert client.variables["KEEP"] == "secret-value-123"
        assert client.variables[FORCE_COLD_VARIABLE] == record["token"]
        assert record["updated"] is True and record["restored"] is False
    assert client.variables == {"KEEP": "secret-value-123"}
    assert record["restored"] is True
    assert record["restored_variables"] == ["KEEP"]
    assert "secret-value-123" not in json.dumps(record)
    assert str(record).startswith("fn: environment bumped (")
    assert str(record).endswith("s)") and "restored" in str(record)
    assert [name for name, _ in client.calls].count("update") == 2
    assert len(sleeps) == 4  # two polls InProgress after each update
    assert sleeps == [0.1, 0.2, 0.1, 0.2]  # backing off from 0.1 s


def test_force_cold_restores_when_the_block_fails(aws_env: None) -> None:
    client = FakeLambdaClient(None)  # no environment at all before
    target = InvokeTarget("fn", region="us-east-1")
    with pytest.raises(KeyError, match="burst failed"):
        with target.force_cold(client=client, sleep=lambda s: None):
            raise KeyError("burst failed")
    assert client.variables == {}


def test_force_cold_restore_failure_is_reported(aws_env: None) -> None:
    client = FakeLambdaClient({"A": "1"}, fail_update_number=2)
    target = InvokeTarget("fn", region="us-east-1")
    with pytest.raises(LambdaSLOError, match=f"remove the variable {FORCE_COLD_VARIABLE}"):
        with force_cold(target, client=client, sleep=lambda s: None) as record:
            pass
    assert record["restored"] is False and "restore failed" in record["error"]
    # With the block failing too, the block's exception wins and carries a note.
    client = FakeLambdaClient({"A": "1"}, fail_update_number=2)
    with pytest.raises(ZeroDivisionError) as info:
        with force_cold(target, client=client, sleep=lambda s: None):
            1 / 0  # noqa: B018
    if sys.version_info >= (3, 11):
        assert any(FORCE_COLD_VARIABLE in note for note in info.value.__notes__)


def test_force_cold_refuses_published_versions(aws_env: None) -> None:
    with pytest.raises(ConfigError, match="qualifier '3'"):
        force_cold(InvokeTarget("fn:3", region="us-east-1"))
    with pytest.raises(ConfigError, match="needs an InvokeTarget"):
        force_cold(object())


def test_wait_until_updated_is_bounded_and_reports_failure() -> None:
    class Stuck:
        def get_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
            return {"LastUpdateStatus": "InProgress"}

    class Failed:
        def get_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
            return {"LastUpdateStatus": "Failed", "LastUpdateStatusReason": "bad subnet"}

    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(LambdaSLOError, match="still InProgress after 5s"):
        wait_until_updated(
            Stuck(), "fn", timeout_s=5, poll_interval_s=1, sleep=sleep, clock=lambda: clock[0]
        )
    assert clock[0] == pytest.approx(5.0)  # stopped at the bound, not after it
    with pytest.raises(LambdaSLOError, match="bad subnet"):
        wait_until_updated(Failed(), "fn")


# -- against the emulator, with SigV4 verification on ----------------------------------------

EMULATOR_FUNCTIONS = (
    "coldwarm:duration=5ms,init=40ms",
    "tight:duration=150ms,init=5ms,reserved=2",
    "failing:duration=1ms,error_rate=1.0",
)


@pytest.fixture(scope="module")
def signed_emulator() -> Iterator[Any]:
    from pytest_lambda_slo.emulator import Emulator

    with Emulator(functions=list(EMULATOR_FUNCTIONS), require_sigv4=(ACCESS_KEY, SECRET)) as emu:
        yield emu


@pytest.fixture
def emu(signed_emulator: Any, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The signing emulator with stats cleared and every environment retired (all cold)."""
    monkeypatch.delenv("AWS_SESSION_TOKEN")  # the emulator knows a plain key pair
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    signed_emulator.reset(environments=True)
    return signed_emulator


def invoke(emu: Any, name: str, **kwargs: Any) -> InvokeTarget:
    return InvokeTarget(name, region="us-east-1", endpoint_url=emu.url, **kwargs)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"])
def test_lambda_strings_honour_the_endpoint_variables(
    emu: Any, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    from pytest_lambda_slo._load.api import run_burst

    monkeypatch.setenv(variable, emu.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    target = as_target("lambda:coldwarm")
    measurements, _ = run_burst(target, requests=6, concurrency=2, timeout=10)
    assert measurements.ok == 6, dict(measurements.error_kinds)
    assert emu.function_stats("coldwarm")["invocations"] == 6  # the emulator served them
    assert target.describe() == f"lambda:coldwarm (RequestResponse, eu-west-1) via {emu.url}"
    info = target.shape_info()
    assert (info["region"], info["endpoint_url"]) == ("eu-west-1", emu.url)


@pytest.mark.parametrize("form", ["profile", "services"])
def test_lambda_strings_honour_the_config_file_endpoint(
    emu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, form: str
) -> None:
    from pytest_lambda_slo._load.api import run_burst

    if form == "profile":  # endpoint_url in the profile: every service
        text = f"[profile local]\nregion = eu-north-1\nendpoint_url = {emu.url}\n"
    else:  # a services section: Lambda only
        text = (
            "[profile local]\nregion = eu-north-1\nservices = emu\n\n"
            f"[services emu]\nlambda =\n  endpoint_url = {emu.url}\n"
        )
    config = tmp_path / "config"
    config.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "local")
    target = as_target("lambda:coldwarm")
    measurements, _ = run_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4, dict(measurements.error_kinds)
    assert emu.function_stats("coldwarm")["invocations"] == 4
    assert target.describe() == f"lambda:coldwarm (RequestResponse, eu-north-1) via {emu.url}"


def test_the_public_endpoint_and_region_are_named_without_configuration(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    target = as_target("lambda:orders:live")
    assert target.describe() == (
        "lambda:orders:live (RequestResponse, eu-west-1) via https://lambda.eu-west-1.amazonaws.com"
    )
    china = InvokeTarget("arn:aws-cn:lambda:cn-north-1:123456789012:function:fn")
    assert china.resolved_endpoint() == "https://lambda.cn-north-1.amazonaws.com.cn"


def test_the_report_names_the_resolved_endpoint_and_region(
    emu: Any, monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", emu.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    pytester.makepyfile(
        test_env="""
        def test_invoke(lambda_slo):
            lambda_slo.burst("lambda:coldwarm", requests=4, concurrency=2).check(
                error_rate=0, throttle_count=0)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--lambda-slo-report")
    result.assert_outcomes(passed=1)
    report = " ".join(result.stdout.str().split())  # the report wraps long lines
    assert f"target: lambda:coldwarm (RequestResponse, eu-west-1) via {emu.url}" in report
    assert emu.function_stats("coldwarm")["invocations"] == 4


def test_signed_invocations_pass_and_cold_starts_match_the_emulator(emu: Any) -> None:
    from pytest_lambda_slo._load.api import run_burst

    measurements, _ = run_burst(invoke(emu, "coldwarm"), requests=40, concurrency=8, timeout=10)
    truth = emu.function_stats("coldwarm")
    assert measurements.ok == 40, f"signed requests were refused: {dict(measurements.error_kinds)}"
    assert truth["invocations"] == 40
    assert measurements.cold_known == 40  # every response carried a REPORT line
    assert measurements.cold_starts == truth["cold_starts"]
    assert measurements.cold_starts >= 1
    assert measurements.hist("warm").count == 40 - truth["cold_starts"]
    assert measurements.hist("init").count == truth["cold_starts"]
    assert measurements.hist("duration").count == 40
    assert measurements.hist("billed").count == 40
    assert measurements.proactive_inits == 0
    assert measurements.billed_mb_ms > 0


def test_function_arn_is_signed_with_its_encoded_path(emu: Any) -> None:
    from pytest_lambda_slo._load.api import run_burst

    arn = "arn:aws:lambda:us-east-1:123456789012:function:coldwarm"
    target = InvokeTarget(arn, qualifier="$LATEST", endpoint_url=emu.url)
    measurements, _ = run_burst(target, requests=4, concurrency=2, timeout=10)
    assert measurements.ok == 4, dict(measurements.error_kinds)
    assert emu.function_stats("coldwarm")["invocations"] == 4


class _TamperedPrepared:
    """Wraps a prepared InvokeTarget and flips one hex digit of the signature it sends."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.url, self.verify = inner.url, inner.verify
        self.max_body_bytes = inner.max_body_bytes
        self.access_key_id = inner.access_key_id
        self.classify = inner.classify
        self._template: Any = None

    def current_request(self) -> Any:
        if self._template is None:
            from dataclasses import replace

            template = self._inner.current_request()
            headers = []
            for name, value in template.headers:
                if name.lower() == "authorization":
                    head, _, signature = value.rpartition("Signature=")
                    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
                    value = f"{head}Signature={flipped}"
                headers.append((name, value))
            self._template = replace(template, headers=tuple(headers))
        return self._template


class TamperedInvokeTarget(InvokeTarget):
    def prepare(self) -> Any:
        return _TamperedPrepared(super().prepare())


def test_a_tampered_signature_is_refused_with_403(emu: Any) -> None:
    from pytest_lambda_slo._load.api import run_burst

    target = TamperedInvokeTarget("coldwarm", region="us-east-1", endpoint_url=emu.url)
    with pytest.raises(AuthRefused) as caught:  # the first wave (2) was all refusals
        run_burst(target, requests=6, concurrency=2, timeout=10)
    measurements = caught.value.measurements  # type: ignore[attr-defined]
    assert dict(measurements.status_codes) == {403: 2}, (
        "a request with a corrupted SigV4 signature must be refused with 403, got "
        f"{dict(measurements.status_codes)}"
    )
    assert dict(measurements.error_kinds) == {"InvalidSignatureException": 2}
    assert measurements.ok == 0
    assert emu.function_stats("coldwarm")["invocations"] == 0, (
        "a forged request reached the function"
    )


def test_a_wrong_secret_is_refused_with_403(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_lambda_slo._load.api import run_burst

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-emulators-secret")
    with pytest.raises(AuthRefused, match=f"AWS access key id {ACCESS_KEY}") as caught:
        run_burst(invoke(emu, "coldwarm"), requests=3, concurrency=1, timeout=10)
    measurements = caught.value.measurements  # type: ignore[attr-defined]
    assert dict(measurements.status_codes) == {403: 1}  # the first wave, then it stopped
    assert dict(measurements.error_kinds) == {"InvalidSignatureException": 1}
    assert measurements.unsent == 2


def test_throttle_reasons_match_the_emulator(emu: Any) -> None:
    from pytest_lambda_slo._load.api import run_burst

    measurements, _ = run_burst(invoke(emu, "tight"), requests=12, concurrency=12, timeout=10)
    truth = emu.function_stats("tight")
    assert truth["throttles"]["total"] >= 1  # 12 at once against reserved concurrency 2
    assert measurements.throttles == truth["throttles"]["total"]
    assert dict(measurements.throttle_reasons) == truth["throttles"]["by_reason"]
    assert set(measurements.throttle_reasons) == {
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    }
    assert measurements.ok == truth["invocations"] == 12 - measurements.throttles
    assert measurements.errors == 0


def test_function_errors_are_counted_by_kind(emu: Any) -> None:
    from pytest_lambda_slo._load.api import run_burst

    measurements, _ = run_burst(invoke(emu, "failing"), requests=5, concurrency=1, timeout=10)
    assert measurements.errors == 5
    assert dict(measurements.error_kinds) == {"function_error:Handled:EmulatedError": 5}
    assert measurements.hist("duration").count == 5  # failed invocations are still billed


USER_INVOKE_TESTS = """
import os
from pytest_lambda_slo import InvokeTarget

def target(name):
    return InvokeTarget(name, region="us-east-1", endpoint_url=os.environ["EMULATOR_URL"])

def test_cold_start_budgets_hold(lambda_slo):
    result = lambda_slo.burst(target("coldwarm"), requests=300, concurrency=6, force_cold=True)
    result.check(cold_start_max="5s", duration_p99="1s", throttle_rate="0%")
    assert result.cold_starts >= 1
    # A handful of cold starts cannot show an init p99 at 95%, and the verdict says so.
    (init,) = result.judge({"init_p99": "2s"})
    assert init.state == "inconclusive" and "init_p99 can never pass with" in init.describe()

def test_init_budget_broken(lambda_slo):
    lambda_slo.burst(target("coldwarm"), requests=10, concurrency=5).check(init_p99="1ms")

def test_throttle_budget_broken(lambda_slo):
    lambda_slo.burst(target("tight"), requests=12, concurrency=12).check(throttle_rate="1%")
"""


def test_new_user_invoke_tests_pass_and_fail_with_a_full_report(
    pytester: pytest.Pytester, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMULATOR_URL", emu.url)
    pytester.makepyfile(test_user_invoke=USER_INVOKE_TESTS)
    out = pytester.path / "slo.json"
    # pytest-benchmark, when installed, warns (an error here) inside an xdist worker.
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "--lambda-slo-report",
        f"--lambda-slo-json={out}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*init_p99: measured *ms, bounds ?*? over budget 1.0ms*"])
    result.stdout.fnmatch_lines(["*throttle_rate: measured *%, bounds ?*? over budget 1.00%*"])
    result.stdout.fnmatch_lines(
        [
            "*target: lambda:coldwarm (RequestResponse, us-east-1) via",
            "    http://127.0.0.1:*",
            "*forced cold start: coldwarm: environment bumped (*s), restored (*s)",
            "*warm*",
            "*cold*",
            "  init[*] *",
            "  duration[*] *",
            "  billed[*] *",
            "*cold starts: *",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*throttle reasons: ReservedFunctionConcurrentInvocationLimitExc*"]
    )
    result.stdout.fnmatch_lines(["*estimated cost: USD *"])
    output = result.stdout.str() + result.stderr.str()
    document_text = out.read_text()
    for text in (output, document_text):
        assert_secret_free(text)
    document = json.loads(document_text)
    forced = [b for b in document["bursts"] if "force_cold" in b["extras"]]
    assert len(forced) == 1
    assert forced[0]["extras"]["force_cold"]["restored"] is True
    costs = [b["cost"] for b in document["bursts"] if b["cost"] is not None]
    assert costs and all(cost["total_usd"] > 0 for cost in costs)
    # The forced cold start was undone: the function has no leftover variable.
    from pytest_lambda_slo._targets.invoke import InvokeTarget as _Target

    client = _Target("coldwarm", region="us-east-1", endpoint_url=emu.url).client()
    variables = client.get_function_configuration(FunctionName="coldwarm").get("Environment", {})
    client.close()
    assert FORCE_COLD_VARIABLE not in variables.get("Variables", {})


def test_renewed_credentials_are_picked_up_within_the_window(aws_env: None) -> None:
    from botocore.credentials import Credentials

    class Session:
        def __init__(self) -> None:
            self.credentials = Credentials(ACCESS_KEY, SECRET, TOKEN)

        def get_credentials(self) -> Credentials:
            return self.credentials

    now = [0.0]
    session = Session()
    signer = aws_auth.RequestSigner(session, region="us-east-1", clock=lambda: now[0])
    signed = dict(signer.sign("POST", "https://h/p", [("Host", "h")], b"{}"))
    assert signed["X-Amz-Security-Token"] == TOKEN
    now[0] += aws_auth.CREDENTIALS_CHECK_S
    assert not signer.expired()  # same credentials: the signature stays
    session.credentials = Credentials("AKIDNEW", "newSecret", "newToken")
    assert not signer.expired()  # checked at most once a second
    now[0] += aws_auth.CREDENTIALS_CHECK_S
    assert signer.expired()
    resigned = dict(signer.sign("POST", "https://h/p", [("Host", "h")], b"{}"))
    assert resigned["X-Amz-Security-Token"] == "newToken"
    assert "Credential=AKIDNEW/" in resigned["Authorization"]


def test_botocore_debug_logs_carry_no_secrets(
    emu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import re

    from pytest_lambda_slo._load.api import run_burst

    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    target = invoke(emu, "coldwarm")
    client = target.client()
    variable_secret = "hunter2-db-password-value"
    client.update_function_configuration(
        FunctionName="coldwarm", Environment={"Variables": {"DB_PASSWORD": variable_secret}}
    )
    wait_until_updated(client, "coldwarm", poll_interval_s=0.05)
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="botocore")
    try:
        with target.force_cold(client=client, poll_interval_s=0.05) as record:
            measurements, _ = run_burst(target, requests=2, concurrency=1, timeout=10)
        assert record["restored"] and measurements.ok == 2
        logged = caplog.text
        # The test can fail: botocore did log canonical requests and sent headers...
        assert "CanonicalRequest" in logged and "Sending http request" in logged
        assert "X-Amz-Security-Token" in logged and '"Variables":{<redacted>}' in logged
        # ...with every secret replaced.
        assert_secret_free(logged)
        assert variable_secret not in logged
        assert not re.search(r"Signature[=:]\s*[0-9a-f]{64}", logged)
        assert "<redacted>" in logged
    finally:
        caplog.set_level(logging.WARNING, logger="botocore")
        client.update_function_configuration(FunctionName="coldwarm", Environment={"Variables": {}})
        wait_until_updated(client, "coldwarm", poll_interval_s=0.05)
        client.close()


def test_force_cold_without_permission_changes_nothing_and_says_why(aws_env: None) -> None:
    class Denied(Exception):
        response = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}

    class Client(FakeLambdaClient):
        def update_function_configuration(self, **kwargs: Any) -> dict[str, Any]:
            raise Denied("User is not authorized")

    client = Client({"A": "1"})
    target = InvokeTarget("fn", region="us-east-1")
    with pytest.raises(LambdaSLOError, match=r"\(AccessDeniedException\); nothing was changed"):
        with force_cold(target, client=client, sleep=lambda s: None):
            pytest.fail("the block must not run")
    assert client.variables == {"A": "1"}
