"""Emulator configuration: function specs, duration distributions, profiles and TOML files."""

from __future__ import annotations

import math
import random
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..units import DURATION_FORMS, parse_count, parse_duration, parse_positive_number, parse_rate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DISTRIBUTION_FORMS = (
    f"{DURATION_FORMS}, or a distribution: normal(MEAN,STDEV), uniform(LOW,HIGH), "
    "lognormal(MEDIAN,SIGMA) or exponential(MEAN) with durations as arguments "
    "(SIGMA is a plain number, e.g. 0.5)"
)
SCALING_MODELS = ("continuous", "legacy")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DIST_RE = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Distribution:
    """A duration in seconds: fixed or drawn from normal/uniform/lognormal/exponential."""

    kind: str  # "fixed" | "normal" | "uniform" | "lognormal" | "exponential"
    a: float
    b: float = 0.0
    text: str = field(default="", compare=False)  # as the user wrote it, for round trips

    def sample(self, rng: random.Random) -> float:
        """One draw in seconds, never negative."""
        kind = self.kind
        if kind == "fixed":
            return self.a
        if kind == "uniform":
            return rng.uniform(self.a, self.b)
        if kind == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        if kind == "lognormal":
            return self.a * math.exp(self.b * rng.gauss(0.0, 1.0))
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0.0

    def spec(self) -> str:
        """Text that parses back to this distribution."""
        if self.text:
            return self.text
        if self.kind == "fixed":
            return repr(self.a)
        if self.kind == "exponential":
            return f"exponential({self.a!r})"
        return f"{self.kind}({self.a!r},{self.b!r})"


def parse_distribution(value: object, *, name: str = "duration") -> Distribution:
    """Parse "20ms", 0.02, "normal(50ms,10ms)", "uniform(20ms,70ms)", "lognormal(40ms,0.5)"."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, str):
        match = _DIST_RE.match(value)
        if match:
            kind, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
            return _parse_dist_call(value, kind, args, name)
    try:
        seconds = parse_duration(value, name=name)
    except ConfigError:
        raise ConfigError(
            f"{name}={value!r} is not a valid duration; use {DISTRIBUTION_FORMS}"
        ) from None
    return Distribution("fixed", seconds, text=value.strip() if isinstance(value, str) else "")


def _parse_dist_call(value: str, kind: str, args: list[str], name: str) -> Distribution:
    bad = ConfigError(f"{name}={value!r} is not a valid duration; use {DISTRIBUTION_FORMS}")
    arity = {"normal": 2, "uniform": 2, "lognormal": 2, "exponential": 1}
    if kind not in arity or len(args) != arity[kind]:
        raise bad
    try:
        first = parse_duration(args[0], name=name)
        if kind == "lognormal":
            second = float(args[1])
            if not math.isfinite(second) or second < 0:
                raise ValueError(args[1])
        elif kind == "exponential":
            second = 0.0
        else:
            second = parse_duration(args[1], name=name)
    except (ConfigError, ValueError):
        raise bad from None
    if kind == "uniform" and second < first:
        raise ConfigError(f"{name}={value!r}: uniform(LOW,HIGH) needs LOW <= HIGH")
    return Distribution(kind, first, second, text=value.strip())


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


@dataclass(frozen=True)
class EmulatorConfig:
    """Server-wide settings: where to listen, account limits, scaling and front-door rules."""

    functions: tuple[FunctionConfig, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    require_sigv4: tuple[str, str] | None = None
    account_concurrency: int = 1000
    scaling: str = "continuous"
    burst: int = 500
    update_delay: float = 0.2
    max_payload: int = 6 * 1024 * 1024
    region: str = "us-east-1"
    account_id: str = "123456789012"
    seed: int | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.functions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"function {dupes[0]!r} is defined twice; give each a unique name")
        reserved = sum(f.reserved or 0 for f in self.functions)
        if reserved > self.account_concurrency:
            raise ConfigError(
                f"reserved concurrency adds up to {reserved}, more than "
                f"account_concurrency={self.account_concurrency}; lower reserved= values"
            )


def parse_sigv4(value: object) -> tuple[str, str] | None:
    """Parse ``ACCESS_KEY_ID:SECRET`` (None/empty disables verification)."""
    if value is None or value == "":
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        key, secret = str(value[0]), str(value[1])
    else:
        key, _, secret = str(value).partition(":")
    if not key or not secret:
        raise ConfigError(f"require_sigv4={value!r} is not valid; use ACCESS_KEY_ID:SECRET")
    return key, secret


_EMULATOR_KEYS: dict[str, Any] = {
    "host": lambda v: _host(v),
    "port": lambda v: _port(v),
    "require_sigv4": parse_sigv4,
    "account_concurrency": lambda v: parse_count(v, name="account_concurrency", minimum=1),
    "scaling": parse_scaling,
    "burst": lambda v: parse_count(v, name="burst", minimum=1),
    "update_delay": lambda v: parse_duration(v, name="update_delay"),
    "max_payload": lambda v: parse_count(v, name="max_payload", minimum=1),
    "region": lambda v: _region(v),
    "account_id": lambda v: _account_id(v),
    "seed": lambda v: None if v is None else parse_count(v, name="seed"),
}
EMULATOR_KEYS = tuple(_EMULATOR_KEYS)


def _host(value: object) -> str:
    # An empty host would listen on every interface: the emulator is a loopback tool.
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ConfigError(f"host={value!r} is not valid; use an address like 127.0.0.1 or ::1")
    return value.strip()


def _region(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", value):
        raise ConfigError(f"region={value!r} is not valid; use a region like us-east-1")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(value: object) -> str:
    """A logging level name (any case)."""
    text = str(value).strip().upper()
    if text not in LOG_LEVELS:
        raise ConfigError(f"log_level={value!r} is not valid; use one of {', '.join(LOG_LEVELS)}")
    return text


def _port(value: object) -> int:
    port = parse_count(value, name="port")
    if port > 65535:
        raise ConfigError(f"port={value!r} is not valid; use 0 (any free port) to 65535")
    return port


def _account_id(value: object) -> str:
    text = str(value)
    if not re.fullmatch(r"[0-9]{12}", text):
        raise ConfigError(f"account_id={value!r} is not valid; use 12 digits")
    return text


def parse_emulator_options(options: dict[str, object]) -> dict[str, Any]:
    """Validate server-wide options (names as in EmulatorConfig) and return parsed values."""
    parsed = {}
    for key, raw in options.items():
        if key not in _EMULATOR_KEYS:
            raise ConfigError(
                f"unknown emulator option {key!r}; use one of: {', '.join(EMULATOR_KEYS)}"
            )
        parsed[key] = _EMULATOR_KEYS[key](raw)
    return parsed


def load_toml(path: str | Path) -> tuple[dict[str, Any], list[FunctionConfig]]:
    """Read a TOML file: an [emulator] table of options and [functions.NAME] tables."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"emulator", "functions"})
    if unknown:
        raise ConfigError(
            f"config file {str(path)!r} has an unknown table {unknown[0]!r}; "
            "use [emulator] and [functions.NAME]"
        )
    emulator = data.get("emulator", {})
    functions = data.get("functions", {})
    if not isinstance(emulator, dict) or not isinstance(functions, dict):
        raise ConfigError(f"config file {str(path)!r}: [emulator] and [functions] must be tables")
    configs = []
    for name, options in functions.items():
        if not isinstance(options, dict):
            raise ConfigError(f"config file {str(path)!r}: functions.{name} must be a table")
        configs.append(build_function(name, options))
    return parse_emulator_options(emulator), configs
