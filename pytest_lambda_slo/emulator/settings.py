"""Server-wide emulator settings: listen address, account limits, SigV4, and the TOML file."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._units import parse_count, parse_duration
from ..errors import ConfigError
from .config import FunctionConfig, build_function, parse_scaling

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

READY_KEY = "lambda_slo_emulator"  # key of the JSON object printed as the first stdout line
# Keeps the secret off the command line (where `ps` shows it); --require-sigv4 wins.
SIGV4_ENV = "LAMBDA_SLO_EMULATOR_SIGV4"


@dataclass(frozen=True)
class EmulatorConfig:
    """Server-wide settings: where to listen, account limits, scaling and front-door rules."""

    functions: tuple[FunctionConfig, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    require_sigv4: tuple[tuple[str, str], ...] | None = None  # (key id, secret) pairs
    account_concurrency: int = 1000
    scaling: str = "continuous"
    burst: int = 500
    update_delay: float = 0.2
    max_payload: int = 6 * 1024 * 1024
    region: str = "us-east-1"
    account_id: str = "123456789012"
    seed: int | None = None
    max_handler_processes: int = 64

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


def parse_sigv4(value: object) -> tuple[tuple[str, str], ...] | None:
    """Parse ``ACCESS_KEY_ID:SECRET`` (or several, comma-separated: rotated keys all valid).

    None/empty disables verification; a (key, secret) pair or a list of pairs is accepted too.
    """
    if value is None or value == "":
        return None
    items: list[object]
    if isinstance(value, (tuple, list)):
        pair = len(value) == 2 and all(isinstance(v, str) and ":" not in v for v in value)
        items = [(value[0], value[1])] if pair else [*value]
    else:
        items = [*str(value).split(",")]
    pairs = []
    for item in items:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            key, secret = str(item[0]), str(item[1])
        else:
            key, _, secret = str(item).partition(":")
        if not key or not secret:
            raise ConfigError(
                f"require_sigv4={value!r} is not valid; use ACCESS_KEY_ID:SECRET (several "
                "separated by commas)"
            )
        pairs.append((key, secret))
    return tuple(pairs)


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
    "max_handler_processes": lambda v: parse_count(v, name="max_handler_processes", minimum=1),
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
