"""LambdaFanout and parse_fanout: validated, normalised, frozen; bad input named in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_lambda_slo._fanout import LambdaFanout, parse_fanout
from pytest_lambda_slo.errors import ConfigError


def test_defaults_are_normalised() -> None:
    fanout = LambdaFanout(8)
    assert fanout.shards == 8
    assert (fanout.memory, fanout.architecture) == (2048, "x86_64")
    assert fanout.start_tolerance == pytest.approx(0.050)
    assert fanout.timeout_s == 900.0
    assert fanout.max_sockets_per_shard == 900
    assert fanout.shared_pool == "refuse"
    assert fanout.runtime.startswith("python3.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fanout.shards = 9  # type: ignore[misc]


def test_accepted_forms() -> None:
    fanout = LambdaFanout(
        "12",
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9001/",
        memory=10240.0,
        architecture="arm64",
        role="arn:aws:iam::123456789012:role/gen",
        function_name="my_gen-1",
        max_cost=2,
        start_tolerance="20ms",
        timeout="5m",
        max_sockets_per_shard=400,
        shared_pool="warn",
        python_version="3.12",
        wheel_dir="~/wheels",
    )
    assert fanout.shards == 12 and fanout.memory == 10240
    assert fanout.endpoint_url == "http://127.0.0.1:9001"
    assert fanout.max_cost == 2.0 and isinstance(fanout.max_cost, float)
    assert fanout.start_tolerance == pytest.approx(0.020) and fanout.timeout_s == 300.0
    assert fanout.runtime == "python3.12"
    assert fanout.wheel_dir == Path("~/wheels").expanduser()


@pytest.mark.parametrize(
    ("kwargs", "named", "forms"),
    [
        ({"shards": 0}, "shards=0", "from 1 to 1000"),
        ({"shards": 1001}, "shards=1001", "from 1 to 1000"),
        ({"shards": True}, "shards=True", "whole number"),
        ({"shards": 2.5}, "shards=2.5", "whole number"),
        ({"memory": 64}, "memory=64", "from 128 to 10240"),
        ({"memory": 10241}, "memory=10241", "from 128 to 10240"),
        ({"architecture": "aarch64"}, "architecture='aarch64'", "x86_64, arm64"),
        ({"region": "mars-1"}, "region='mars-1'", "'us-east-1'"),
        ({"endpoint_url": "127.0.0.1:9001"}, "endpoint_url='127.0.0.1:9001'", "http://"),
        ({"role": "gen-role"}, "role='gen-role'", "arn:aws:iam::123456789012:role/NAME"),
        ({"function_name": "a b"}, "function_name='a b'", "1 to 64 letters"),
        ({"function_name": "x" * 65}, "function_name='xxx", "1 to 64 letters"),
        ({"max_cost": 0}, "max_cost=0", "greater than zero"),
        ({"max_cost": -1.0}, "max_cost=-1.0", "greater than zero"),
        ({"max_cost": float("nan")}, "max_cost=nan", "greater than zero"),
        ({"max_cost": "1"}, "max_cost='1'", "USD"),
        ({"start_tolerance": "soon"}, "start_tolerance='soon'", "'800ms'"),
        ({"start_tolerance": 0}, "start_tolerance=0", "greater than zero"),
        ({"start_tolerance": "2m"}, "start_tolerance='2m'", "at most 60s"),
        ({"timeout": "16m"}, "timeout='16m'", "to 15m"),
        ({"timeout": "500ms"}, "timeout='500ms'", "from 1s"),
        ({"max_sockets_per_shard": 1024}, "max_sockets_per_shard=1024", "from 1 to 1000"),
        ({"shared_pool": "ignore"}, "shared_pool='ignore'", "refuse, warn"),
        ({"python_version": "3.9"}, "python_version='3.9'", "3.10, 3.11"),
        ({"python_version": "python3.11"}, "python_version='python3.11'", "3.10, 3.11"),
        ({"wheel_dir": ""}, "wheel_dir=''", "directory path"),
        ({"bundle_botocore": "yes"}, "bundle_botocore='yes'", "True or False"),
        ({"profile": ""}, "profile=''", "profile name"),
    ],
)
def test_bad_values_are_named_with_the_accepted_forms(
    kwargs: dict[str, object], named: str, forms: str
) -> None:
    kwargs = {"shards": 4, **kwargs}
    with pytest.raises(ConfigError) as info:
        LambdaFanout(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert named in message and forms in message


def test_parse_fanout() -> None:
    assert parse_fanout(None) is None
    given = LambdaFanout(3, memory=1024)
    assert parse_fanout(given) is given
    assert parse_fanout(8) == LambdaFanout(8)
    assert parse_fanout("8") == LambdaFanout(8)  # ini and command-line values are text
    for bad in (0, 1001, -2, True, "eight", 2.5, [8]):
        with pytest.raises(ConfigError, match=r"fanout=.* is not valid; use a number of shards"):
            parse_fanout(bad)
