"""SigV4 verification: botocore-signed requests pass, tampered/missing/expired ones get 403."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from emulator_helpers import FAKE_KEY, FAKE_SECRET, call, lambda_client

from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.emulator.sigv4 import SigV4Error, verify

botocore = pytest.importorskip("botocore")
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402


@pytest.fixture(scope="module")
def emu():
    with Emulator(["hello"], require_sigv4=f"{FAKE_KEY}:{FAKE_SECRET}") as running:
        yield running


def signed(url: str, body: bytes, method: str = "POST") -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(FAKE_KEY, FAKE_SECRET), "lambda", "us-east-1").add_auth(request)
    return request


def test_botocore_signed_requests_pass(emu):
    client = lambda_client(emu)
    try:
        assert client.invoke(FunctionName="hello", Payload=b'{"a": 1}')["StatusCode"] == 200
        arn = "arn:aws:lambda:us-east-1:123456789012:function:hello"
        assert client.invoke(FunctionName=arn, Qualifier="$LATEST")["StatusCode"] == 200
        assert client.get_function_configuration(FunctionName="hello")["State"] == "Active"
    finally:
        client.close()


def test_wrong_secret_and_unknown_key_are_403(emu):
    client = lambda_client(emu, secret="not-the-secret")
    try:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.invoke(FunctionName="hello")
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        client.close()
    other = lambda_client(emu, key="AKIDOTHER")
    try:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            other.invoke(FunctionName="hello")
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    finally:
        other.close()


def test_missing_signature_is_403(emu):
    status, headers, body = call(emu, "POST", "/2015-03-31/functions/hello/invocations", b"{}")
    assert status == 403
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert json.loads(body)["message"] == "Missing Authentication Token"
    # Function URLs with AWS_IAM auth are checked too; /_emulator is not.
    assert call(emu, "GET", "/url/hello/")[0] == 403
    assert call(emu, "GET", "/_emulator/stats")[0] == 200


def test_tampered_body_is_403(emu):
    path = "/2015-03-31/functions/hello/invocations"
    request = signed(emu.url + path, b'{"amount": 1}')
    headers = dict(request.headers.items())
    assert call(emu, "POST", path, b'{"amount": 1}', headers)[0] == 200
    status, headers_out, _ = call(emu, "POST", path, b'{"amount": 9}', headers)
    assert status == 403 and headers_out["x-amzn-errortype"] == "InvalidSignatureException"


def test_signature_older_than_five_minutes_fails():
    request = signed("http://127.0.0.1:9/2015-03-31/functions/hello/invocations", b"{}")
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:9"  # botocore signs the URL's host; http.client sends it
    args = ("POST", "/2015-03-31/functions/hello/invocations", "", headers, b"{}")
    creds = (FAKE_KEY, FAKE_SECRET)
    signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=timezone.utc
    )
    verify(*args, creds, now=signed_at + timedelta(minutes=4))
    with pytest.raises(SigV4Error, match="Signature expired") as info:
        verify(*args, creds, now=signed_at + timedelta(minutes=6))
    assert info.value.error_type == "InvalidSignatureException"
