"""Tests of the Lambda cost estimate."""

from __future__ import annotations

import math

import pytest

from pytest_lambda_slo._aws.cost import DEFAULT_PRICES, PRICE_SOURCE, estimate_cost, gb_seconds
from pytest_lambda_slo.errors import ConfigError


def test_default_us_east_1_x86() -> None:
    # 1,000,000 invocations of 100 ms billed at 1024 MB = 100,000 GB-s.
    billed_mb_ms = 1_000_000 * 100 * 1024
    cost = estimate_cost(1_000_000, billed_mb_ms, region="us-east-1")
    assert cost["gb_seconds"] == pytest.approx(100_000)
    assert cost["request_cost_usd"] == pytest.approx(0.20)
    assert cost["compute_cost_usd"] == pytest.approx(100_000 * 0.0000166667)
    assert cost["total_usd"] == pytest.approx(0.20 + 1.66667)
    assert cost["currency"] == "USD"
    assert cost["fallback_prices"] is False
    assert "us-east-1" in cost["note"]
    assert cost["price_source"] == PRICE_SOURCE


def test_arm64_is_cheaper_per_gb_second() -> None:
    x86 = estimate_cost(10, 10 * 1000 * 128, region="us-east-1")
    arm = estimate_cost(10, 10 * 1000 * 128, region="us-east-1", architecture="arm64")
    assert arm["price_per_gb_second"] == 0.0000133334
    assert arm["compute_cost_usd"] < x86["compute_cost_usd"]
    assert arm["request_cost_usd"] == x86["request_cost_usd"]


def test_unknown_region_uses_default_table_and_says_so() -> None:
    cost = estimate_cost(5, 1024.0 * 1000, region="eu-central-1")
    assert cost["fallback_prices"] is True
    assert "eu-central-1" in cost["note"] and "us-east-1" in cost["note"]
    assert cost["gb_seconds"] == pytest.approx(1.0)
    assert cost["total_usd"] == pytest.approx(5 * 0.2e-6 + 0.0000166667)


def test_caller_prices_flat_and_table() -> None:
    flat = estimate_cost(
        100, 2048.0 * 1000, region=None, prices={"request": 1e-6, "gb_second": 1.0}
    )
    assert flat["total_usd"] == pytest.approx(100e-6 + 2.0)
    assert flat["note"] == "prices given by the caller"
    assert flat["price_source"] == "prices= given by the caller"
    table = {"eu-west-1": {"arm64": {"request": 0.0, "gb_second": 0.5}}}
    cost = estimate_cost(1, 1024.0 * 1000, region="eu-west-1", architecture="arm64", prices=table)
    assert cost["total_usd"] == pytest.approx(0.5)
    assert cost["fallback_prices"] is False
    assert cost["price_source"] == "prices= given by the caller"


def test_gb_seconds() -> None:
    assert gb_seconds(1024 * 1000) == 1.0
    assert gb_seconds(0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"requests": -1}, "requests=-1"),
        ({"requests": 1.5}, "requests=1.5"),
        ({"billed_mb_ms": math.nan}, "billed_mb_ms=nan"),
        ({"billed_mb_ms": "10"}, "billed_mb_ms='10'"),
        ({"architecture": "sparc"}, "architecture='sparc'"),
        ({"prices": {"request": "cheap", "gb_second": 1}}, "'request'"),
        ({"prices": {"request": 1.0}}, "'gb_second'"),
        ({"prices": {"eu-west-1": {}}, "region": "xx"}, "region 'xx'"),
        ({"prices": {"us-east-1": {"arm64": {}}}}, "architecture 'x86_64'"),
        ({"prices": 3}, "prices=3"),
    ],
)
def test_bad_input_is_a_one_line_config_error(kwargs: dict, fragment: str) -> None:
    args = {"requests": 1, "billed_mb_ms": 1.0, "region": "us-east-1", **kwargs}
    with pytest.raises(ConfigError) as info:
        estimate_cost(args.pop("requests"), args.pop("billed_mb_ms"), **args)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_default_table_is_not_mutated_by_a_call() -> None:
    before = repr(DEFAULT_PRICES)
    estimate_cost(1, 1.0, region="us-east-1")
    assert repr(DEFAULT_PRICES) == before
