"""Secrets never reach the report, the JSON, failure messages or log output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_lambda_slo.emulator import Emulator

ACCESS_KEY = "AKIDLEAKCHECK0000001"
SECRET_KEY = "fake-secret-key-MUST-NOT-LEAK-0a1b2c3d4e5f"
SESSION_TOKEN = "fake-session-token-MUST-NOT-LEAK-9z8y7x6w"
BEARER = "bearer-value-MUST-NOT-LEAK-42"
API_KEY = "api-key-MUST-NOT-LEAK-77"
URL_SIGNATURE = "url-signature-MUST-NOT-LEAK-13"
URL_TOKEN = "url-token-MUST-NOT-LEAK-21"
SECRETS = (SECRET_KEY, SESSION_TOKEN, BEARER, API_KEY, URL_SIGNATURE, URL_TOKEN)


@pytest.fixture(scope="module")
def signed_emulator() -> Iterator[Emulator]:
    functions = ["fn:duration=1ms,init=5ms,reserved=1"]
    with Emulator(functions=functions, require_sigv4=(ACCESS_KEY, SECRET_KEY)) as emu:
        yield emu


SUITE = """
import os
from pytest_lambda_slo import HttpTarget, InvokeTarget

def test_invoke_failing_budget(lambda_slo):
    target = InvokeTarget("fn", region="us-east-1", endpoint_url=os.environ["EMU_URL"])
    result = lambda_slo.burst(target, requests=6, concurrency=3)
    assert result.ok > 0, result.error_kinds
    result.check(p99="1us", throttle_rate="0%")

def test_http_failing_budget(lambda_slo):
    target = HttpTarget(
        os.environ["WEB_URL"] + os.environ["SIGNED_QUERY"],
        headers={"Authorization": os.environ["BEARER"], "X-Api-Key": os.environ["API_KEY"]},
    )
    result = lambda_slo.burst(target, requests=4, concurrency=2)
    assert result.ok == 4
    result.check(p50="1us")

def test_bad_target_error(lambda_slo):
    lambda_slo.burst(os.environ["BAD_URL"], requests=1, concurrency=1)
"""


def test_no_secret_in_any_output(
    pytester: pytest.Pytester,
    signed_emulator: Emulator,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(pytester.path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(pytester.path / "no-credentials"))
    monkeypatch.setenv("EMU_URL", signed_emulator.invoke_endpoint)
    monkeypatch.setenv("WEB_URL", emulator.function_url("fast"))
    monkeypatch.setenv(
        "SIGNED_QUERY", f"?X-Amz-Signature={URL_SIGNATURE}&X-Amz-Credential=c&token={URL_TOKEN}"
    )
    monkeypatch.setenv("BEARER", f"Bearer {BEARER}")
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.setenv("BAD_URL", f"ftp://user:{API_KEY}@127.0.0.1/")
    pytester.makepyfile(test_leak=SUITE)
    json_path = pytester.path / "slo.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:benchmark", "-vv", "--tb=long", "--showlocals", "-rA",
        "--log-level=DEBUG", "-o", "log_cli=true", "--lambda-slo-report",
        f"--lambda-slo-json={json_path}",
    )  # fmt: skip
    result.assert_outcomes(failed=3)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "json": json_path.read_text(),
    }
    # The runs really happened, were signed, and their failures were printed in full.
    assert "SLOViolation" in outputs["stdout"]
    assert "lambda-slo report" in outputs["stdout"]
    assert "X-Amz-Signature=%3Credacted%3E" in outputs["json"] or "<redacted>" in outputs["json"]
    for name, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {name}"
        assert "Signature=" not in text.replace("X-Amz-Signature=", ""), f"a signature in {name}"
