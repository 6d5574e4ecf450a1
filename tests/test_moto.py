"""InvokeTarget and forced cold starts against moto's Lambda API server on loopback."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from moto_server import moto_request, moto_server

from pytest_lambda_slo._aws.control import FORCE_COLD_VARIABLE
from pytest_lambda_slo._load.api import run_burst
from pytest_lambda_slo._targets.invoke import InvokeTarget

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "fakeMotoSecretDoNotLeak0123456789"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server in a subprocess on a free loopback port, Lambda without Docker."""
    with moto_server(ACCESS_KEY, SECRET) as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials only; no shared files, no instance metadata, no proxies."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def function(moto_endpoint: str, aws_env: None, request: pytest.FixtureRequest) -> str:
    """A function created through boto3 (with its IAM role), named after the test."""
    import boto3

    name = "fn-" + request.node.name.replace("_", "-")[:50]
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_endpoint)
    role = iam.create_role(
        RoleName=name + "-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        MemorySize=256,
        Environment={"Variables": {"KEEP_ME": "original-value"}},
    )
    iam.close()
    client.close()
    return name


def test_invoke_target_through_the_engine(moto_endpoint: str, function: str) -> None:
    target = InvokeTarget(function, payload={"hello": "moto"}, endpoint_url=moto_endpoint)
    measurements, _ = run_burst(target, requests=12, concurrency=3, timeout=10)
    assert measurements.count == 12
    assert measurements.ok == 12, measurements.to_dict()
    assert measurements.errors == 0 and measurements.throttles == 0
    assert dict(measurements.status_codes) == {200: 12}
    # moto's simple backend echoes the event and sends no log tail: no cold-start data.
    assert measurements.cold_known == 0
    assert measurements.bytes_received == 12 * len(b'{"hello":"moto"}')


def test_a_body_that_is_not_json_is_an_invalid_response(moto_endpoint: str, function: str) -> None:
    # moto's simple backend answers queued results verbatim, in order.
    queued = {"results": ["not json at all", '{"fine": true}'], "region": REGION}
    moto_request(
        moto_endpoint + "/moto-api/static/lambda-simple/response", json.dumps(queued).encode()
    )
    target = InvokeTarget(function, endpoint_url=moto_endpoint)
    measurements, _ = run_burst(target, requests=2, concurrency=1, timeout=10)
    assert (measurements.ok, measurements.errors) == (1, 1)
    assert dict(measurements.error_kinds) == {"invalid_response": 1}


def test_force_cold_updates_waits_and_restores(moto_endpoint: str, function: str) -> None:
    import boto3

    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)
    before = client.get_function_configuration(FunctionName=function)
    target = InvokeTarget(function, endpoint_url=moto_endpoint)
    with target.force_cold(poll_interval_s=0.05, timeout_s=20) as record:
        during = client.get_function_configuration(FunctionName=function)
        variables = during["Environment"]["Variables"]
        assert variables[FORCE_COLD_VARIABLE] == record["token"]
        assert variables["KEEP_ME"] == "original-value"
        assert during["LastUpdateStatus"] == "Successful"
        measurements, _ = run_burst(target, requests=3, concurrency=1, timeout=10)
        assert measurements.ok == 3
    after = client.get_function_configuration(FunctionName=function)
    assert (
        after["Environment"]
        == before["Environment"]
        == {"Variables": {"KEEP_ME": "original-value"}}
    )
    assert record["updated"] and record["restored"] and record["error"] is None
    assert record["restored_variables"] == ["KEEP_ME"]
    client.close()


def test_force_cold_restores_after_a_failing_burst(moto_endpoint: str, function: str) -> None:
    import boto3

    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)
    target = InvokeTarget(function, endpoint_url=moto_endpoint)
    with pytest.raises(RuntimeError, match="the burst broke"):
        with target.force_cold(poll_interval_s=0.05, timeout_s=20):
            raise RuntimeError("the burst broke")
    after = client.get_function_configuration(FunctionName=function)
    assert after["Environment"]["Variables"] == {"KEEP_ME": "original-value"}
    client.close()
