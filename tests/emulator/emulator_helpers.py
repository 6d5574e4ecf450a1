"""Helpers for the emulator tests: a boto3 Lambda client, a raw HTTP call, finding hey."""

from __future__ import annotations

import http.client
import os
import shutil

import pytest

from pytest_lambda_slo.emulator.runner import Emulator

FAKE_KEY = "AKIDEXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def lambda_client(emu: Emulator, key: str = FAKE_KEY, secret: str = FAKE_SECRET):
    """boto3's own Lambda client pointed at the emulator, retries off, fake credentials."""
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=emu.invoke_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5),
    )


def call(
    emu: Emulator,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lowercase headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def hey_path() -> str:
    """The hey binary; skip when missing, except on CI where missing is a failure."""
    path = shutil.which("hey")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("hey is not on PATH (required on CI)")
        pytest.skip("hey is not on PATH")
    return path
