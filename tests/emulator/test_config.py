"""Parsing of function specs, distributions, profiles and TOML files."""

from __future__ import annotations

import random

import pytest

from pytest_lambda_slo.emulator.config import (
    FunctionConfig,
    parse_distribution,
    parse_function_spec,
)
from pytest_lambda_slo.emulator.settings import EmulatorConfig, load_toml
from pytest_lambda_slo.errors import ConfigError


def test_spec_with_keys_and_distributions():
    fc = parse_function_spec(
        "hello:duration=normal(50ms,10ms),init=uniform(200ms,300ms),memory=512,"
        "reserved=10,idle=2m,error_rate=1%,unhandled=0.5,body_size=64,cold_header=yes"
    )
    assert fc.name == "hello"
    assert (fc.duration.kind, fc.duration.a, fc.duration.b) == ("normal", 0.05, 0.01)
    assert (fc.init.kind, fc.init.a, fc.init.b) == ("uniform", 0.2, 0.3)
    assert (fc.memory, fc.reserved, fc.idle) == (512, 10, 120.0)
    assert (fc.error_rate, fc.unhandled, fc.body_size, fc.cold_header) == (0.01, 0.5, 64, True)


def test_plain_name_gets_defaults():
    fc = parse_function_spec("hello")
    assert fc.duration.is_zero and fc.init.is_zero
    assert fc.reserved is None and fc.profile == "default"


@pytest.mark.parametrize(
    "text",
    [
        "20ms",
        0.02,
        "normal(50ms,10ms)",
        "uniform(20ms,70ms)",
        "lognormal(40ms,0.5)",
        "exponential(5ms)",
    ],
)
def test_distributions_sample_within_their_shape(text):
    dist = parse_distribution(text)
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(2000)]
    assert min(samples) >= 0.0
    if dist.kind == "uniform":
        assert 0.02 <= min(samples) and max(samples) <= 0.07
    if dist.kind == "fixed":
        assert set(samples) == {0.02}
    if dist.kind in ("normal", "lognormal", "exponential"):
        assert len(set(samples)) > 1000


def test_profiles_set_defaults_and_explicit_keys_win():
    vpc = parse_function_spec("old:profile=vpc-2019")
    assert vpc.init.kind == "uniform" and (vpc.init.a, vpc.init.b) == (10.0, 13.0)
    assert vpc.scaling == "legacy" and vpc.cold_header
    hyper = parse_function_spec("new:profile=hyperplane,cold_header=false,init=100ms")
    assert hyper.init.a == 0.1 and not hyper.cold_header
    assert (hyper.duration.a, hyper.duration.b) == (0.02, 0.07)


def test_to_spec_round_trips():
    fc = parse_function_spec(
        "f:profile=hyperplane,duration=lognormal(40ms,0.5),reserved=3,stage_rate=5,stage_burst=2"
    )
    assert parse_function_spec(fc.to_spec()) == fc


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("hello:duration=fast", "duration='fast'"),
        ("hello:duration=normal(5ms)", "normal(MEAN,STDEV)"),
        ("hello:init=uniform(9ms,1ms)", "LOW <= HIGH"),
        ("hello:colour=blue", "unknown function key 'colour'"),
        ("hello:profile=vpc-2030", "profile='vpc-2030'"),
        ("hello:memory=64", "memory='64'"),
        ("hello:error_rate=150%", "error_rate='150%'"),
        ("hello:cold_header=maybe", "cold_header='maybe'"),
        ("hello:reserved", "'reserved' in"),
        ("bad name!", "bad name"),
        ("hello:stage_burst=5", "needs stage_rate"),
    ],
)
def test_bad_specs_raise_one_line_config_errors(spec, fragment):
    with pytest.raises(ConfigError) as info:
        parse_function_spec(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_reserved_beyond_account_is_refused():
    with pytest.raises(ConfigError, match="account_concurrency=10"):
        EmulatorConfig(
            functions=(FunctionConfig("a", reserved=6), FunctionConfig("b", reserved=5)),
            account_concurrency=10,
        )


def test_toml_config(tmp_path):
    path = tmp_path / "emu.toml"
    path.write_text(
        '[emulator]\naccount_concurrency = 50\nscaling = "legacy"\n\n'
        '[functions.hello]\nduration = "20ms"\ninit = "normal(300ms,50ms)"\nreserved = 10\n'
        "cold_header = true\n\n"
        '[functions.old]\nprofile = "vpc-2019"\n'
    )
    options, functions = load_toml(path)
    assert options == {"account_concurrency": 50, "scaling": "legacy"}
    hello, old = functions
    assert (hello.name, hello.duration.a, hello.reserved, hello.cold_header) == (
        "hello",
        0.02,
        10,
        True,
    )
    assert old.profile == "vpc-2019"


def test_toml_errors_name_the_file_and_value(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[functions.hello]\nduration = "soon"\n')
    with pytest.raises(ConfigError, match="duration='soon'"):
        load_toml(path)
    path.write_text("[emulator\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)
    path.write_text("[emulator]\nspeed = 3\n")
    with pytest.raises(ConfigError, match="unknown emulator option 'speed'"):
        load_toml(path)
    path.write_text('[functions."bad name"]\nduration = "1ms"\n')
    with pytest.raises(ConfigError, match="function name 'bad name' is not valid"):
        load_toml(path)
