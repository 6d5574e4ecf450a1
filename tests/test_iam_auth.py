"""IAM (SigV4) auth of HTTP targets against the emulator's --require-sigv4 front doors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pytest_lambda_slo import AwsIam, Burst, ConfigError, HttpTarget, Rate, run
from pytest_lambda_slo._aws.iam import service_and_region
from pytest_lambda_slo._load.drivers import engine_for
from pytest_lambda_slo._load.runner import run_on_own_loop
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import AuthRefused

KEY_1, SECRET_1 = "AKIDIAMTEST000000001", "iam-secret-one-MUST-NOT-LEAK-1a2b3c"
KEY_2, SECRET_2 = "AKIDIAMTEST000000002", "iam-secret-two-MUST-NOT-LEAK-4d5e6f"
WRONG_SECRET = "wrong-secret-MUST-NOT-LEAK-7g8h9i"
LOOPBACK_IAM = {"region": "us-east-1"}


@pytest.fixture(scope="module")
def signed() -> Iterator[Emulator]:
    functions = ["fn:duration=1ms,init=0ms", "echo:duration=0ms,init=0ms,echo=true"]
    with Emulator(functions, require_sigv4=[(KEY_1, SECRET_1), (KEY_2, SECRET_2)]) as emu:
        yield emu


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The standard chain finds KEY_1 in the environment and nothing else."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_1)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_1)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("abcdefgh1234.lambda-url.eu-west-1.on.aws", ("lambda", "eu-west-1")),
        ("a1b2c3.execute-api.us-east-2.amazonaws.com", ("execute-api", "us-east-2")),
        ("a1b2c3.execute-api.cn-north-1.amazonaws.com.cn", ("execute-api", "cn-north-1")),
        ("api.example.com", None),
        ("127.0.0.1", None),
    ],
)
def test_service_and_region_come_from_aws_hosts(host: str, expected: Any) -> None:
    assert service_and_region(host) == expected


def test_aws_iam_on_an_aws_host_needs_no_arguments() -> None:
    target = HttpTarget("https://abc123.lambda-url.eu-west-1.on.aws/", auth="aws_iam")
    assert target.shape_info()["auth"] == "aws_iam (lambda, eu-west-1)"


def test_a_host_that_says_neither_is_a_one_line_error(signed: Emulator) -> None:
    url = signed.function_url("fn")
    with pytest.raises(ConfigError) as info:
        HttpTarget(url, auth="aws_iam")
    message = str(info.value)
    assert "\n" not in message
    assert url.rstrip("/").rsplit("/url", 1)[0] in message
    assert "AwsIam(service=" in message and "lambda-url" in message


def test_function_url_signed_from_the_standard_chain(
    signed: Emulator, env_credentials: None
) -> None:
    target = HttpTarget(signed.function_url("fn"), auth=AwsIam(service="lambda", **LOOPBACK_IAM))
    refused_before = signed.stats()["emulator"]["sigv4_refusals"]
    result = run(target, Burst(requests=60, concurrency=6))
    assert result.ok == 60, result.error_kinds
    assert signed.stats()["emulator"]["sigv4_refusals"] == refused_before


def test_api_gateway_route_signed_for_execute_api(signed: Emulator) -> None:
    iam = AwsIam(service="execute-api", credentials=(KEY_2, SECRET_2), **LOOPBACK_IAM)
    target = HttpTarget(signed.apigw_url("fn"), method="POST", json={"a": 1}, auth=iam)
    result = run(target, Burst(requests=40, concurrency=4))
    assert result.ok == 40, result.error_kinds
    # Signed for the wrong service, the same route refuses every request.
    wrong = AwsIam(service="lambda", credentials=(KEY_2, SECRET_2), **LOOPBACK_IAM)
    with pytest.raises(AuthRefused):
        run(HttpTarget(signed.apigw_url("fn"), auth=wrong), Burst(requests=20, concurrency=4))


def test_a_wrong_secret_is_auth_denied_naming_the_key_id(signed: Emulator) -> None:
    iam = AwsIam(service="lambda", credentials=(KEY_1, WRONG_SECRET), **LOOPBACK_IAM)
    with pytest.raises(AuthRefused) as info:
        run(HttpTarget(signed.function_url("fn"), auth=iam), Burst(requests=50, concurrency=5))
    text = str(info.value)
    assert KEY_1 in text and WRONG_SECRET not in text and SECRET_1 not in text
    measured = info.value.measurements
    assert measured is not None
    kinds = measured.to_dict()["error_kinds"]
    assert set(kinds) == {"auth_denied"}, kinds


def test_the_fixed_request_is_signed_once_per_window(signed: Emulator) -> None:
    iam = AwsIam(service="lambda", credentials=(KEY_1, SECRET_1), **LOOPBACK_IAM)
    prepared: Any = HttpTarget(signed.function_url("fn"), auth=iam).prepare()
    engine = engine_for(Burst(requests=300, concurrency=10), prepared)
    measurements, _ = run_on_own_loop(engine)
    assert measurements.ok == 300
    assert prepared._auth.signer.signatures == 1  # one signature for the whole run


def test_credentials_that_rotate_mid_run_keep_it_passing(signed: Emulator) -> None:
    from botocore.credentials import RefreshableCredentials

    handed: list[str] = []

    def refresh() -> dict[str, Any]:
        # Every refresh hands out the other key; each expires in 15 min + 0.6 s, so botocore
        # refreshes it 0.6 s later (its advisory refresh starts 15 minutes before expiry).
        key, secret = ((KEY_1, SECRET_1), (KEY_2, SECRET_2))[len(handed) % 2]
        handed.append(key)
        expiry = datetime.now(timezone.utc) + timedelta(minutes=15, seconds=0.6)
        return {"access_key": key, "secret_key": secret, "token": None,
                "expiry_time": expiry.isoformat()}  # fmt: skip

    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test-rotation")
    iam = AwsIam(service="lambda", credentials=credentials, **LOOPBACK_IAM)
    prepared: Any = HttpTarget(signed.function_url("fn"), auth=iam).prepare()
    engine = engine_for(Rate(rps=100, duration="3s"), prepared)
    measurements, _ = run_on_own_loop(engine)
    assert measurements.count == 300
    assert measurements.ok == 300, measurements.to_dict()["error_kinds"]
    assert {KEY_1, KEY_2} <= set(handed[1:])  # both keys were in use during the run
    assert prepared._auth.signer.signatures >= 3  # re-signed after each change


def test_per_request_bodies_are_each_signed(signed: Emulator) -> None:
    iam = AwsIam(service="lambda", credentials=(KEY_1, SECRET_1), **LOOPBACK_IAM)
    seen: list[int] = []

    def echoed(response: Any) -> bool:
        seen.append(response.json()["order"])
        return True

    target = HttpTarget(
        signed.function_url("echo"), method="POST", json=lambda i: {"order": i}, auth=iam,
        check=echoed,
    )  # fmt: skip
    result = run(target, Burst(requests=80, concurrency=8))
    assert result.ok == 80, result.error_kinds
    assert sorted(seen) == list(range(80))


def test_no_secret_in_report_json_or_exception(
    pytester: pytest.Pytester, signed: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FN_URL", signed.function_url("fn"))
    for name, value in (("K1", KEY_1), ("K2", KEY_2), ("S1", WRONG_SECRET), ("S2", SECRET_2)):
        monkeypatch.setenv(name, value)  # in the environment: pytest shows the test's source
    pytester.makepyfile(
        test_iam="""
import os
from pytest_lambda_slo import AwsIam, HttpTarget

def test_wrong_secret(lambda_slo):
    iam = AwsIam(service="lambda", region="us-east-1",
                 credentials=(os.environ["K1"], os.environ["S1"]))
    lambda_slo.burst(HttpTarget(os.environ["FN_URL"], auth=iam), requests=20, concurrency=4)

def test_right_secret_slow_budget(lambda_slo):
    iam = AwsIam(service="lambda", region="us-east-1",
                 credentials=(os.environ["K2"], os.environ["S2"]))
    result = lambda_slo.burst(HttpTarget(os.environ["FN_URL"], auth=iam), requests=20,
                              concurrency=4)
    assert result.ok == 20
    result.check(p50="1us")
"""
    )
    json_path = pytester.path / "slo.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-vv", "--tb=long", "-rA", "--log-level=DEBUG",
        "--lambda-slo-report", f"--lambda-slo-json={json_path}",
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    stdout = result.stdout.str()
    assert "AuthRefused" in stdout and KEY_1 in stdout
    assert "auth_denied" in stdout
    document = json_path.read_text()
    assert "aws_iam (lambda, us-east-1)" in document
    json.loads(document)
    for text in (stdout, result.stderr.str(), document):
        for secret in (WRONG_SECRET, SECRET_1, SECRET_2):
            assert secret not in text
