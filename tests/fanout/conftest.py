"""Fixtures for the fan-out tests: moto's server on loopback, fake credentials, the zip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fanout_helpers import Backend
from moto_server import moto_request, moto_server

from pytest_lambda_slo._fanout.config import LambdaFanout
from pytest_lambda_slo._fanout.deploy import PLACEHOLDER_ROLE
from pytest_lambda_slo._fanout.package import (
    Package,
    build_package,
    default_wheel_dir,
)
from pytest_lambda_slo.emulator import Emulator

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "fakeMotoSecretDoNotLeak0123456789"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "registry: fetches wheels from the package index with pip (cached); skipped only "
        "when the index is unreachable and CI is not set",
    )


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    """The user's wheel cache, as a user's machine would use it (so downloads are kept)."""
    return default_wheel_dir()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server in a subprocess on a free loopback port, Lambda without Docker."""
    pytest.importorskip("moto.server")
    with moto_server(ACCESS_KEY, SECRET) as endpoint:
        yield endpoint


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """The shared moto server, emptied (every backend reset) for this test."""
    moto_request(moto_endpoint + "/moto-api/reset", b"{}")
    return moto_endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials only; no shared files, no instance metadata, no proxies."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def moto_role(moto: str, aws_env: None) -> str:
    """An IAM role in moto that Lambda may assume (moto checks CreateFunction's role)."""
    import boto3

    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(
        RoleName="lambda-slo-test-generator", AssumeRolePolicyDocument=json.dumps(document)
    )["Role"]["Arn"]
    iam.close()
    return str(arn)


@pytest.fixture(scope="session")
def local_package() -> Package:
    """The generator zip for this machine's platform, from its installed files (no network)."""
    return build_package(LambdaFanout(2))


@pytest.fixture(scope="session")
def small_package() -> Package:
    """The same build without botocore: another code hash, a smaller upload."""
    return build_package(LambdaFanout(2, bundle_botocore=False))


@pytest.fixture
def lam(moto: str, aws_env: None) -> Iterator[Any]:
    """A boto3 Lambda client on moto, for setting up and checking what the plugin did."""
    import boto3

    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto)
    yield client
    client.close()


@pytest.fixture(scope="session")
def fanout_emulator() -> Iterator[Emulator]:
    """The plugin's emulator with no predefined functions: everything is created by the test."""
    with Emulator(functions=[], update_delay=0.2) as emu:
        yield emu


@pytest.fixture(params=["moto", "emulator"])
def backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    """Each control-plane test runs on moto's server and on the plugin's own emulator."""
    import boto3

    if request.param == "moto":
        endpoint = request.getfixturevalue("moto")
        role = request.getfixturevalue("moto_role")
    else:
        endpoint = request.getfixturevalue("fanout_emulator").url
        role = PLACEHOLDER_ROLE
    client = boto3.client("lambda", region_name=REGION, endpoint_url=endpoint)
    for function in client.list_functions()["Functions"]:  # the emulator lives on: empty it
        client.delete_function(FunctionName=function["FunctionName"])
    yield Backend(request.param, endpoint, role, client)
    client.close()
