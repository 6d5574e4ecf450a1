"""Guards before firing: the cost line and max_cost, descriptors per shard, concurrency pools."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_lambda_slo._aws.cost import DEFAULT_PRICES
from pytest_lambda_slo._fanout.config import LambdaFanout
from pytest_lambda_slo._fanout.deploy import control_client, ensure_generator
from pytest_lambda_slo._fanout.guards import (
    FanoutRefused,
    FanoutWarning,
    check_account_concurrency,
    check_cost,
    check_shared_pool,
    check_sockets,
    estimate_fanout_cost,
    shards_needed,
    target_reserved_concurrency,
    unreserved_concurrency,
)
from pytest_lambda_slo._fanout.package import Package
from pytest_lambda_slo.errors import ConfigError

X86 = DEFAULT_PRICES["us-east-1"]["x86_64"]
ARM = DEFAULT_PRICES["us-east-1"]["arm64"]


def test_the_cost_estimate_line() -> None:
    fanout = LambdaFanout(8, memory=2048)
    estimate = estimate_fanout_cost(fanout, shard_seconds=60, region="us-east-1")
    gb_seconds = 8 * (2048 / 1024) * 60
    assert estimate.generator_gb_seconds == pytest.approx(gb_seconds)
    expected = gb_seconds * X86["gb_second"] + 8 * X86["request"]
    assert estimate.generator_usd == pytest.approx(expected)
    assert estimate.total_usd == pytest.approx(expected)
    line = estimate.line()
    assert line.startswith(f"lambda-slo fanout: estimated cost USD {expected:.4f}: generator")
    assert "8 shards x 2048 MB x 60 s = 960.0 GB-s + 8 invocations" in line
    assert "us-east-1 x86_64 prices" in line and "an estimate" in line


def test_probes_arm64_and_a_lambda_target_are_counted() -> None:
    fanout = LambdaFanout(10, memory=1024, architecture="arm64")
    estimate = estimate_fanout_cost(
        fanout,
        shard_seconds=30,
        region="us-east-1",
        probes_per_shard=1,
        target_invocations=20_000,
        target_memory_mb=512,
        target_seconds_each=0.05,
    )
    assert estimate.generator_invocations == 20
    generator = 10 * 1 * 30 * ARM["gb_second"] + 20 * ARM["request"]
    target_gbs = 20_000 * 0.5 * 0.05
    target = target_gbs * X86["gb_second"] + 20_000 * X86["request"]
    assert estimate.target_gb_seconds == pytest.approx(target_gbs)
    assert estimate.total_usd == pytest.approx(generator + target)
    assert "target 20,000 invocations + 500.0 GB-s" in estimate.line()
    unknown = estimate_fanout_cost(
        fanout, shard_seconds=30, region="us-east-1", target_invocations=1000
    )
    assert unknown.target_gb_seconds is None
    assert unknown.target_usd == pytest.approx(1000 * X86["request"])
    assert "compute time unknown, not included" in unknown.line()


def test_max_cost_refuses() -> None:
    fanout = LambdaFanout(100, memory=10240, max_cost=0.5)
    estimate = estimate_fanout_cost(fanout, shard_seconds=600, region="us-east-1")
    assert estimate.total_usd > 0.5
    with pytest.raises(FanoutRefused, match=r"above max_cost=USD 0\.5000; raise max_cost"):
        check_cost(estimate, fanout.max_cost)
    assert isinstance(FanoutRefused("x"), ConfigError)
    small = estimate_fanout_cost(LambdaFanout(2, memory=128), shard_seconds=10, region=None)
    check_cost(small, 0.5)  # under the cap: no refusal
    check_cost(small, None)  # no cap


def test_sockets_per_shard_against_the_descriptor_limit() -> None:
    assert shards_needed(10_000, 900) == math.ceil(10_000 / 900) == 12
    assert shards_needed(100_000, 900) == 112
    assert shards_needed(5, 900) == 1
    with pytest.raises(FanoutRefused) as info:
        check_sockets(10_000, LambdaFanout(8))
    message = str(info.value)
    assert "concurrency=10,000 over 8 shards is 1,250 sockets per shard" in message
    assert "1,024 file descriptors" in message
    assert "use at least 12 shards (ceil(10,000/900))" in message
    assert check_sockets(10_000, LambdaFanout(12)) == 834
    with pytest.raises(FanoutRefused, match=r"use at least 25 shards"):
        check_sockets(10_000, LambdaFanout(24, max_sockets_per_shard=400))


def test_account_concurrency(aws_env: None) -> None:
    from botocore.stub import Stubber

    client = control_client(LambdaFanout(1, region="us-east-1"))
    with Stubber(client) as stub:  # GetAccountSettings as AWS answers it; nothing is sent
        stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 50}},
        )
        unreserved = unreserved_concurrency(client)
    assert unreserved == 50
    assert "40 shards fit" in check_account_concurrency(40, unreserved)
    with pytest.raises(FanoutRefused, match=r"60 shards need 60 .* is 50; use at most 50"):
        check_account_concurrency(60, unreserved)
    # The generator's own reserved concurrency is its pool when it has one.
    with pytest.raises(FanoutRefused, match=r"generator's reserved concurrency is 20"):
        check_account_concurrency(40, 5000, generator_reserved=20)
    assert "unknown (not checked)" in check_account_concurrency(40, None)


def test_moto_has_no_account_settings(moto: str, aws_env: None) -> None:
    assert unreserved_concurrency(control_client(LambdaFanout(1, endpoint_url=moto))) is None


def _target(lam: Any, role: str, name: str) -> str:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return str(
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": buffer.getvalue()},
        )["FunctionArn"]
    )


def test_a_shared_pool_is_refused_or_warned(
    moto: str, moto_role: str, lam: Any, small_package: Package
) -> None:
    fanout = LambdaFanout(2, endpoint_url=moto, role=moto_role, bundle_botocore=False)
    generator = ensure_generator(fanout, package=small_package)
    _target(lam, moto_role, "under-test")
    client = control_client(fanout)
    target_arn, reserved = target_reserved_concurrency(client, "under-test")
    assert reserved is None
    with pytest.raises(FanoutRefused, match=r"share the unreserved concurrency pool of account"):
        check_shared_pool(generator.arn, target_arn, reserved, "refuse")
    with pytest.warns(FanoutWarning, match=r"would cause the target's throttles"):
        assert check_shared_pool(generator.arn, target_arn, reserved, "warn")
    # Reserved concurrency gives the target its own pool: nothing to refuse.
    lam.put_function_concurrency(FunctionName="under-test", ReservedConcurrentExecutions=5)
    target_arn, reserved = target_reserved_concurrency(client, "under-test")
    assert reserved == 5
    assert check_shared_pool(generator.arn, target_arn, reserved, "refuse") is None
    # Another region or account: another pool.
    elsewhere = target_arn.replace(":us-east-1:", ":eu-west-1:")
    assert check_shared_pool(generator.arn, elsewhere, None, "refuse") is None
    other_account = target_arn.replace(":123456789012:", ":210987654321:")
    assert check_shared_pool(generator.arn, other_account, None, "refuse") is None
    with pytest.raises(ConfigError, match=r"cannot compare concurrency pools"):
        check_shared_pool(generator.arn, "under-test", None, "refuse")


def test_the_docs_quote_the_real_cost_line() -> None:
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "fanout.md"
    line = estimate_fanout_cost(LambdaFanout(12), shard_seconds=60, region="us-east-1").line()
    text = " ".join(docs.read_text(encoding="utf-8").split())
    assert line.split(" (")[0] in text
