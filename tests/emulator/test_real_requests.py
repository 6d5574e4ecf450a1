"""IAM (SigV4) at the HTTP doors, echo functions, and the request ids AWS sends back."""

from __future__ import annotations

import base64
import json
import re

import pytest
from emulator_helpers import FAKE_KEY, FAKE_SECRET, call, lambda_client

from pytest_lambda_slo.emulator import Emulator

pytest.importorskip("botocore")
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$")
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$")


@pytest.fixture(scope="module")
def emu():
    functions = ["hello", "echo:echo=true,cold_header=true"]
    with Emulator(functions, require_sigv4=(FAKE_KEY, FAKE_SECRET)) as running:
        yield running


def signed_call(emu, method, path, body=b"", *, service, secret=FAKE_SECRET, headers=None):
    """Sign like a client of an IAM-protected URL (botocore's SigV4Auth), then send."""
    request = AWSRequest(method=method, url=emu.url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(FAKE_KEY, secret), service, "us-east-1").add_auth(request)
    return call(emu, method, path, body, dict(request.headers.items()))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_function_url_accepts_a_good_signature_for_lambda(emu, method):
    body = b'{"a": 1}' if method == "POST" else b""
    status, headers, data = signed_call(emu, method, "/url/hello/x?q=1", body, service="lambda")
    assert status == 200 and data == b"hello"
    assert UUID.match(headers["x-amzn-requestid"])


def test_function_url_refuses_a_wrong_secret_like_aws(emu):
    status, headers, data = signed_call(
        emu, "POST", "/url/hello/", b"{}", service="lambda", secret="wrong-secret"
    )
    assert status == 403
    assert json.loads(data) == {"Message": "Forbidden"}
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert UUID.match(headers["x-amzn-requestid"])
    assert "wrong-secret" not in data.decode() and FAKE_SECRET not in data.decode()


def test_function_url_refuses_other_service_and_no_signature(emu):
    assert signed_call(emu, "GET", "/url/hello/", service="execute-api")[0] == 403
    status, _, data = call(emu, "GET", "/url/hello/")
    assert (status, json.loads(data)) == (403, {"Message": "Forbidden"})


def test_apigw_accepts_a_good_signature_for_execute_api(emu):
    status, headers, data = signed_call(emu, "POST", "/apigw/hello/r", b"{}", service="execute-api")
    assert status == 200 and data == b"hello"
    assert headers["x-amz-apigw-id"] and UUID.match(headers["x-amzn-requestid"])


def test_apigw_refuses_a_wrong_secret_like_aws(emu):
    status, headers, data = signed_call(
        emu, "GET", "/apigw/hello/", service="execute-api", secret="wrong-secret"
    )
    assert status == 403
    assert headers["x-amzn-errortype"] == "InvalidSignatureException"
    message = json.loads(data)["message"]
    assert message.startswith("The request signature we calculated does not match")
    assert set(json.loads(data)) == {"message"}
    assert headers["x-amz-apigw-id"] and UUID.match(headers["x-amzn-requestid"])


def test_apigw_refuses_a_lambda_signature_and_a_missing_one(emu):
    status, headers, data = signed_call(emu, "GET", "/apigw/hello/", service="lambda")
    assert status == 403
    assert json.loads(data)["message"].startswith(
        "Credential should be scoped to correct service: 'execute-api'"
    )
    status, headers, data = call(emu, "GET", "/apigw/hello/")
    assert status == 403
    assert json.loads(data) == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_invoke_api_wants_lambda_as_the_service(emu):
    path = "/2015-03-31/functions/hello/invocations"
    assert signed_call(emu, "POST", path, b"{}", service="lambda")[0] == 200
    status, headers, _ = signed_call(emu, "POST", path, b"{}", service="execute-api")
    assert status == 403 and headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_the_fixture_turns_sigv4_on(lambda_emulator):
    emu = lambda_emulator("hello", require_sigv4=f"{FAKE_KEY}:{FAKE_SECRET}")
    assert call(emu, "GET", "/url/hello/")[0] == 403
    assert signed_call(emu, "GET", "/url/hello/", service="lambda")[0] == 200


# echo
BODIES = [b"", b"x", b'{"order": 1}', bytes(range(256)), b"\x00\r\n\r\n" * 100, b"y" * 100_000]


@pytest.mark.parametrize("door", ["url", "apigw"])
def test_echo_answers_with_the_exact_request_body(emu, door):
    service = "lambda" if door == "url" else "execute-api"
    for body in BODIES:
        status, headers, data = signed_call(
            emu, "POST", f"/{door}/echo/p", body, service=service, headers={"content-type": "a/b"}
        )
        assert status == 200 and data == body
        assert headers["content-type"] == "a/b"
        assert headers["x-cold-start"] in ("true", "false")


def test_echo_over_invoke_returns_the_event(emu):
    client = lambda_client(emu)
    try:
        for i in range(20):
            payload = json.dumps({"order": i, "note": "ü" * i}).encode()
            answer = client.invoke(FunctionName="echo", Payload=payload)
            assert answer["Payload"].read() == payload
            assert "FunctionError" not in answer
        assert client.invoke(FunctionName="echo")["Payload"].read() == b"{}"
        assert client.invoke(FunctionName="hello")["Payload"].read() == b'"hello"'
    finally:
        client.close()


# request ids
def test_http_doors_send_request_and_trace_ids(emu):
    seen = set()
    for _ in range(3):
        for door, service in (("url", "lambda"), ("apigw", "execute-api")):
            _, headers, _ = signed_call(emu, "GET", f"/{door}/hello/", service=service)
            assert TRACE.match(headers["x-amzn-trace-id"])
            seen.add(headers["x-amzn-requestid"])
            seen.add(headers["x-amzn-trace-id"])
    assert len(seen) == 12  # every request id and trace id is distinct


def test_a_client_trace_root_is_kept(emu):
    root = "1-5759e988-bd862e3fe1be46a994272793"
    sent = {"x-amzn-trace-id": f"Root={root};Sampled=1"}
    _, headers, _ = signed_call(emu, "GET", "/url/hello/", service="lambda", headers=sent)
    assert headers["x-amzn-trace-id"] == f"Root={root};Sampled=0"


def test_invoke_request_id_is_the_report_lines(emu):
    client = lambda_client(emu)
    try:
        answer = client.invoke(FunctionName="hello", LogType="Tail")
    finally:
        client.close()
    meta = answer["ResponseMetadata"]
    log = base64.b64decode(answer["LogResult"]).decode()
    assert f"REPORT RequestId: {meta['RequestId']}\t" in log
    assert TRACE.match(meta["HTTPHeaders"]["x-amzn-trace-id"])
