"""Parsing of the values users type: durations ("800ms", "1.5s"), rates ("1%", 0.01), counts."""

from __future__ import annotations

import math
import os
import re

from .errors import ConfigError

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_DURATION_RE = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|µs|ms|s|min|m|h)\s*$"
)
# str.strip() removes every character \s matches (\x1c-\x1f too); float() alone would not.
_NUMBER_RE = re.compile(r"^\s*[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*$")
DURATION_FORMS = "a number of seconds (0.8) or a string like '800ms', '1.5s', '250us', '2m'"
# Most worker processes a run fans out over: more on one machine only adds scheduling noise.
MAX_WORKERS = 256
RATE_FORMS = "a fraction from 0 to 1 (0.01) or a percentage string like '1%'"


def parse_duration(
    value: object,
    *,
    name: str = "duration",
    allow_zero: bool = True,
    bare_max_s: float | None = None,
) -> float:
    """Return ``value`` in seconds; raise ConfigError naming the value and the accepted forms.

    ``bare_max_s``: a number without a unit above this is refused (for a latency, 800
    almost surely means milliseconds, not 13 minutes); with a unit any size is allowed.
    """
    seconds: float | None = None
    bare = False
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, (int, float)):
        seconds, bare = float(value), True
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        elif _NUMBER_RE.match(value):
            seconds, bare = float(value.strip()), True
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{name}={value!r} is not a valid duration; use {DURATION_FORMS}")
    if bare and bare_max_s is not None and seconds > bare_max_s:
        raise ConfigError(
            f"{name}={value!r} has no unit and would mean {seconds:g} seconds; write "
            f"'{seconds:g}ms' or '{seconds:g}s' (a bare number above {bare_max_s:g} is refused)"
        )
    if seconds == 0 and not allow_zero:
        raise ConfigError(f"{name}={value!r} must be greater than zero; use {DURATION_FORMS}")
    return seconds


def parse_rate(value: object, *, name: str = "rate") -> float:
    """Return ``value`` as a fraction in [0, 1]; raise ConfigError naming the value and forms."""
    fraction: float | None = None
    if isinstance(value, bool):
        fraction = None
    elif isinstance(value, (int, float)):
        fraction = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and _NUMBER_RE.match(text[:-1]):
            fraction = float(text[:-1].strip()) / 100.0
        elif _NUMBER_RE.match(text):
            fraction = float(text)
    if fraction is None or not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"{name}={value!r} is not a valid rate; use {RATE_FORMS}")
    return fraction


def parse_count(value: object, *, name: str, minimum: int = 0) -> int:
    """Return ``value`` as a whole number >= minimum; raise ConfigError otherwise."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        number = int(value.strip())
    if number is None or number < minimum:
        raise ConfigError(f"{name}={value!r} is not valid; use a whole number >= {minimum}")
    return number


def parse_positive_number(value: object, *, name: str) -> float:
    """Return ``value`` as a finite number > 0 (e.g. requests per second)."""
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUMBER_RE.match(value):
        number = float(value.strip())
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name}={value!r} is not valid; use a number greater than zero")
    return number


def format_duration(seconds: float) -> str:
    """Human form of a duration: '812.3ms', '1.52s', '45us'."""
    if seconds >= 1.0:
        return f"{seconds:.3f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds * 1e6:.0f}us"


def parse_workers(value: object) -> int:
    """``N`` (1..256) or "auto" (one per CPU); ConfigError naming the value otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    try:
        n = parse_count(value, name="workers", minimum=1)
    except ConfigError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise ConfigError(
            f"workers={value!r} is not valid; use a whole number from 1 to {MAX_WORKERS} "
            "or 'auto' (one per CPU)"
        )
    return n
