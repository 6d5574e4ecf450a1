"""What real requests carry: IAM signatures, bearer tokens, per-request bodies, checks, labels.

Each test runs on the embedded emulator by default. Point it at AWS with an environment
variable naming the real resource (nothing else changes; your credentials come from the
standard AWS chain):

    LAMBDA_SLO_EXAMPLE_FUNCTION_URL  a Function URL with AWS_IAM auth that echoes its body
    LAMBDA_SLO_EXAMPLE_API_URL       an API Gateway route behind a Cognito authorizer, and
    LAMBDA_SLO_EXAMPLE_TOKEN         an ID token for it
    LAMBDA_SLO_EXAMPLE_FUNCTION      a function name (or ARN) for the Invoke API
"""

from __future__ import annotations

import os

import httpx
import pytest

from pytest_lambda_slo import AwsIam, HttpTarget, InvokeTarget

# The emulator checks SigV4 with this key; on AWS your own credentials sign.
EXAMPLE_KEY = ("AKIDEXAMPLE000000001", "example-secret-for-the-emulator")
BUDGETS = {"p99": "1s", "error_rate": "0%", "throttle_rate": "1%"}


def order(i: int) -> dict[str, object]:
    """Request i's body: one order per request, every fifth one a refund."""
    return {"order": i, "kind": "refund" if i % 5 == 0 else "purchase", "cents": 100 + i}


def echoes_the_order(response) -> bool:
    """The function answered with the order it was sent (the emulator's echo=true does)."""
    return response.status_code == 200 and "order" in response.json()


def test_iam_function_url_with_per_request_orders(lambda_slo, lambda_emulator):
    url = os.environ.get("LAMBDA_SLO_EXAMPLE_FUNCTION_URL")
    if url:
        auth: object = "aws_iam"  # service and region come from *.lambda-url.REGION.on.aws
    else:
        emulator = lambda_emulator("orders:duration=5ms,echo=true", require_sigv4=EXAMPLE_KEY)
        url = emulator.function_url("orders")
        # The emulator's loopback URL names no region: say it, and which key signs.
        auth = AwsIam(service="lambda", region="us-east-1", credentials=EXAMPLE_KEY)
    target = HttpTarget(
        url,
        method="POST",
        json=order,  # request i carries order(i), each sent exactly once (also with workers=)
        auth=auth,  # each body signed ahead of the send, never inside the timed interval
        label=lambda body: body["kind"],
        check=echoes_the_order,  # a rejected response counts as check_failed
    )
    result = lambda_slo.burst(target, requests=300, concurrency=10)
    assert result.ok == 300, result.error_kinds
    result.check(**BUDGETS)


class CognitoIdToken(httpx.Auth):
    """A bearer token provider: a real one would call Cognito (InitiateAuth) here and cache
    the ID token until it nears expiry; the flow runs before the load and every
    ``auth_refresh`` seconds, never per request."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request):
        request.headers["Authorization"] = self.token
        yield request


def test_api_gateway_route_with_a_cognito_token(lambda_slo, lambda_emulator):
    url = os.environ.get("LAMBDA_SLO_EXAMPLE_API_URL")
    token = os.environ.get("LAMBDA_SLO_EXAMPLE_TOKEN", "example.jwt.token")
    if not url:
        url = lambda_emulator("api:duration=5ms").apigw_url("api")
    target = HttpTarget(
        url,
        auth=CognitoIdToken(token),
        auth_refresh="5m",
        query=lambda i: {"page": i % 10},  # ten pages, cycled
        throttle_statuses=[500],  # a REST API answers a Lambda throttle with a 500
    )
    result = lambda_slo.burst(target, requests=300, concurrency=10)
    assert result.ok == 300, result.error_kinds
    result.check(**BUDGETS)


@pytest.fixture
def example_credentials(monkeypatch):
    """On the emulator, any key signs; on AWS, the standard chain is used as it is."""
    if not os.environ.get("LAMBDA_SLO_EXAMPLE_FUNCTION"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", EXAMPLE_KEY[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EXAMPLE_KEY[1])
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_invoke_with_per_request_payloads(lambda_slo, lambda_emulator, example_credentials):
    function = os.environ.get("LAMBDA_SLO_EXAMPLE_FUNCTION")
    if function:
        target = InvokeTarget(function, payload=order, label=lambda event: event["kind"])
    else:
        emulator = lambda_emulator("orders:duration=5ms,echo=true")
        target = InvokeTarget(
            "orders",
            endpoint_url=emulator.invoke_endpoint,
            payload=order,
            label=lambda event: event["kind"],
            check=lambda response: response.json()["order"] >= 0,  # the event came back
        )
    result = lambda_slo.burst(target, requests=300, concurrency=10)
    assert result.ok == 300, result.error_kinds
    result.check(**BUDGETS)
