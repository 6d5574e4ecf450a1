"""Parsing of durations, rates and counts: accepted forms and one-line errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_lambda_slo._units import parse_count, parse_duration, parse_rate
from pytest_lambda_slo.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("800ms", 0.8),
        ("1.5s", 1.5),
        (2, 2.0),
        (0.25, 0.25),
        ("250us", 0.00025),
        ("2m", 120.0),
        (" 3 s ", 3.0),
        ("1e3ms", 1.0),
        ("0.5", 0.5),
    ],
)
def test_duration_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["fast", "-3ms", "", "ms", "3 parsecs", -1, True, None, "nan", [1]])
def test_bad_durations_name_value_and_forms(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(bad, name="p99")
    message = str(info.value)
    assert "\n" not in message
    assert f"p99={bad!r}" in message
    assert "'800ms'" in message


@pytest.mark.parametrize(("text", "fraction"), [("1%", 0.01), (0.01, 0.01), ("0.5", 0.5),
                                                ("100%", 1.0), (0, 0.0)])  # fmt: skip
def test_rate_forms(text: object, fraction: float) -> None:
    assert parse_rate(text) == pytest.approx(fraction)


@pytest.mark.parametrize("bad", ["lots", "101%", -0.1, 1.5, "%", True, "1 %%"])
def test_bad_rates(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"is not a valid rate; use a fraction"):
        parse_rate(bad, name="throttle_rate")


def test_counts() -> None:
    assert parse_count("12", name="requests", minimum=1) == 12
    for bad in (0, -1, 1.5, "x", True):
        with pytest.raises(ConfigError, match=r"requests=.* whole number >= 1"):
            parse_count(bad, name="requests", minimum=1)


@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True), st.integers(), st.none()))
def test_duration_parser_never_crashes(value: object) -> None:
    """Fuzz: every input either parses to a finite non-negative number or is a ConfigError."""
    try:
        seconds = parse_duration(value)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert math.isfinite(seconds) and seconds >= 0


@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True), st.integers()))
def test_rate_parser_never_crashes(value: object) -> None:
    try:
        fraction = parse_rate(value)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert 0.0 <= fraction <= 1.0


def test_numbers_with_control_whitespace_parse_or_are_refused_never_crash() -> None:
    # Hypothesis found '0\x1f': the pattern's \s took it as a number, float() did not.
    assert parse_duration("0\x1f", name="p99") == 0.0
    assert parse_rate("1\x1f%", name="error_rate") == 0.01
