"""Function configuration: the keys of a function spec, their parsers, profiles and spec text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from .._units import parse_count, parse_duration, parse_positive_number, parse_rate
from ..errors import ConfigError
from .distributions import DISTRIBUTION_FORMS, Distribution, parse_distribution

__all__ = [
    "DISTRIBUTION_FORMS",
    "FUNCTION_KEYS",
    "PROFILES",
    "Distribution",
    "FunctionConfig",
    "build_function",
    "parse_bool",
    "parse_distribution",
    "parse_function_spec",
    "parse_scaling",
]

SCALING_MODELS = ("continuous", "legacy")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(value: object, *, name: str) -> bool:
    """Parse true/false/yes/no/on/off/1/0 (or a real bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a valid boolean; use true or false")


def parse_scaling(value: object, *, name: str = "scaling") -> str:
    text = str(value).strip().lower()
    if text not in SCALING_MODELS:
        raise ConfigError(f"{name}={value!r} is not a scaling model; use continuous or legacy")
    return text


@dataclass(frozen=True)
class FunctionConfig:
    """One emulated function: how long it runs, cold-starts, fails and how far it scales."""

    name: str
    duration: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    init: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    memory: int = 128
    max_memory: int | None = None
    timeout: float = 3.0
    reserved: int | None = None
    idle: float = 300.0
    error_rate: float = 0.0
    unhandled: float = 0.0
    body_size: int = 5
    echo: bool = False
    cold_header: bool = False
    stage_rate: float | None = None
    stage_burst: int | None = None
    url_rate_limit: bool = False
    proactive_init: float = 0.0
    scaling: str | None = None
    profile: str = "default"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(
                f"function name {self.name!r} is not valid; use 1-64 letters, digits, - or _"
            )

    @property
    def used_memory(self) -> int:
        """The Max Memory Used figure reported in REPORT lines (MB)."""
        if self.max_memory is not None:
            return min(self.max_memory, self.memory)
        return min(self.memory, 66)

    def to_spec(self) -> str:
        """The NAME:key=value,... text that parses back to this config."""
        parts = [f"profile={self.profile}"]
        for key in _KEYS:
            if key == "profile":
                continue
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, Distribution):
                value = value.spec()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, float):
                value = repr(value)
            parts.append(f"{key}={value}")
        return f"{self.name}:{','.join(parts)}"


def _opt_count(value: object, *, name: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return parse_count(value, name=name)


# Lambda's limits: a function runs at most 15 minutes; a synchronous response is at most 6 MB.
MAX_TIMEOUT_S = 900.0
MAX_BODY_SIZE = 6 * 1024 * 1024


def _timeout(value: object, *, name: str) -> float:
    seconds = parse_duration(value, name=name, allow_zero=False)
    if seconds > MAX_TIMEOUT_S:
        raise ConfigError(
            f"{name}={value!r} is longer than Lambda allows; use a duration up to 15m (900 s)"
        )
    return seconds


def _body_size(value: object, *, name: str) -> int:
    size = parse_count(value, name=name)
    if size > MAX_BODY_SIZE:
        raise ConfigError(
            f"{name}={value!r} is over Lambda's 6 MB response limit; use 0 to {MAX_BODY_SIZE} bytes"
        )
    return size


def _memory(value: object, *, name: str) -> int:
    number = parse_count(value, name=name, minimum=128)
    if number > 10240:
        raise ConfigError(f"{name}={value!r} is not valid; use a whole number of MB, 128 to 10240")
    return number


_PARSERS: dict[str, Any] = {
    "duration": parse_distribution,
    "init": parse_distribution,
    "memory": _memory,
    "max_memory": lambda v, name: parse_count(v, name=name, minimum=1),
    "timeout": _timeout,
    "reserved": _opt_count,
    "idle": lambda v, name: parse_duration(v, name=name, allow_zero=False),
    "error_rate": parse_rate,
    "unhandled": parse_rate,
    "body_size": _body_size,
    "echo": parse_bool,
    "cold_header": parse_bool,
    "stage_rate": lambda v, name: parse_positive_number(v, name=name),
    "stage_burst": lambda v, name: parse_count(v, name=name, minimum=1),
    "url_rate_limit": parse_bool,
    "proactive_init": parse_rate,
    "scaling": parse_scaling,
    "profile": None,  # handled first, see build_function
}
_KEYS = tuple(f.name for f in fields(FunctionConfig) if f.name != "name")
assert set(_KEYS) == set(_PARSERS), "every FunctionConfig field needs a parser"
FUNCTION_KEYS = _KEYS

# Profiles are defaults for the keys; keys given explicitly always win.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    # 2019 VPC functions: each new environment created an ENI (10-13 s cold starts), and
    # scaling was an initial burst then +500 per minute.
    "vpc-2019": {
        "init": "uniform(10s,13s)",
        "duration": "uniform(15ms,60ms)",
        "scaling": "legacy",
        "cold_header": True,
    },
    # Hyperplane ENIs (from September 2019): cold starts of a few hundred ms.
    "hyperplane": {
        "init": "uniform(400ms,550ms)",
        "duration": "uniform(20ms,70ms)",
        "cold_header": True,
    },
}


def build_function(name: str, options: dict[str, object]) -> FunctionConfig:
    """A FunctionConfig from a name and raw key/value options (profile applied first)."""
    opts = {str(k).strip().lower(): v for k, v in options.items()}
    unknown = sorted(set(opts) - set(_PARSERS))
    if unknown:
        raise ConfigError(
            f"unknown function key {unknown[0]!r} for {name!r}; use one of: {', '.join(_KEYS)}"
        )
    profile = str(opts.pop("profile", "default")).strip()
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r} is not known; use one of: {', '.join(PROFILES)}")
    merged = {**PROFILES[profile], **opts}
    values: dict[str, Any] = {"profile": profile}
    for key, raw in merged.items():
        values[key] = _PARSERS[key](raw, name=key)
    config = FunctionConfig(name=name, **values)
    if config.stage_burst is not None and config.stage_rate is None:
        raise ConfigError(f"stage_burst={config.stage_burst} needs stage_rate too (in {name!r})")
    return config


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


SPEC_FORMS = "NAME or NAME:key=value,key=value (e.g. hello:duration=20ms,init=300ms,reserved=10)"


def parse_function_spec(spec: str | FunctionConfig) -> FunctionConfig:
    """Parse ``NAME[:key=value,...]``; a FunctionConfig passes through unchanged."""
    if isinstance(spec, FunctionConfig):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"function spec {spec!r} is not valid; use {SPEC_FORMS}")
    name, _, rest = spec.strip().partition(":")
    if not _NAME_RE.match(name):
        raise ConfigError(f"function spec {spec!r} has a bad name {name!r}; use {SPEC_FORMS}")
    options: dict[str, object] = {}
    for item in _split_top(rest):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"function spec item {item!r} in {spec!r} is not key=value; use {SPEC_FORMS}"
            )
        if key.strip() in options:
            raise ConfigError(
                f"function spec {spec!r} gives {key.strip()!r} twice; give each key once"
            )
        options[key.strip()] = value.strip()
    return build_function(name, options)
