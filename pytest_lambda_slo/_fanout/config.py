"""``LambdaFanout``: where and how a load run is fanned out over Lambda, checked on creation.

A frozen value: every field is validated (and normalised: durations to seconds, paths to
``Path``) in ``__post_init__``, so code that holds one never re-checks it. Bad input is a
one-line ConfigError naming the value and the accepted forms.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._units import DURATION_FORMS, parse_duration
from ..errors import ConfigError

MAX_SHARDS = 1000
# The session's cap on the cost estimates of its fan-out runs (USD), ini
# lambda_slo_max_fanout_cost: about 200 runs of docs/fanout.md's 12 shards x 2 GB x 60 s
# (USD 0.024 each, computed), far below what a runaway loop of runs would cost.
DEFAULT_MAX_FANOUT_COST_USD = 5.0
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
ARCHITECTURES = ("x86_64", "arm64")
# Lambda's longest run: a shard must end (and report) within it.
MAX_TIMEOUT_S = 900.0
# A Lambda environment has 1,024 file descriptors; the runtime, its API connection, the
# standard streams and the shard's own control sockets take some, so 900 are left to use.
FD_LIMIT = 1024
DEFAULT_SOCKETS_PER_SHARD = 900
MAX_SOCKETS_PER_SHARD = 1000
MAX_START_TOLERANCE_S = 60.0
SHARED_POOL_MODES = ("refuse", "warn")
# Python runtimes Lambda offers (managed runtimes "python3.X") that this plugin runs on.
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")

FANOUT_FORMS = f"a number of shards from 1 to {MAX_SHARDS} or LambdaFanout(shards, ...)"
_REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
_URL_RE = re.compile(r"^https?://[^\s/?#]+(?:/[^\s?#]*)?$")
_ROLE_RE = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    return None


def parse_shards(value: object) -> int:
    """A shard count, 1..1000."""
    number = _whole(value)
    if number is None or not 1 <= number <= MAX_SHARDS:
        raise ConfigError(
            f"shards={value!r} is not valid; use a whole number from 1 to {MAX_SHARDS}"
        )
    return number


def local_python_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class LambdaFanout:
    """Fan a load shape out over ``shards`` invocations of a generator Lambda function.

    ``region``/``endpoint_url``/``profile``: where the generator runs (None: the AWS config
    chain; an endpoint URL points at the emulator or another Lambda API). ``memory`` (MB)
    and ``architecture`` size the generator. ``role``: the IAM role ARN the generator runs
    as, required to create it on AWS (the plugin never creates or deletes IAM roles).
    ``function_name``: a fixed name instead of the build-hash name. ``max_cost``: refuse a
    run whose estimate is above this many USD. ``start_tolerance``: the largest start
    spread between shards a valid run may have. ``timeout``: the generator function's
    timeout (at most 15 minutes). ``max_sockets_per_shard``: sockets one shard may hold
    (a Lambda environment has 1,024 descriptors). ``shared_pool``: "refuse" or "warn" when
    the generator would draw from the concurrency pool of the function under test.
    ``python_version``: the runtime (default: this interpreter's). ``wheel_dir``: where
    compiled wheels are cached (default ``~/.cache/pytest-lambda-slo/wheels``).
    ``bundle_botocore``: ship this machine's botocore in the zip (Invoke targets sign with
    the same version as local runs) instead of the runtime's own copy.
    """

    shards: int
    region: str | None = None
    endpoint_url: str | None = None
    memory: int = 2048
    architecture: str = "x86_64"
    role: str | None = None
    function_name: str | None = None
    max_cost: float | None = None
    start_tolerance: float | str = "50ms"
    timeout: float | str = "15m"
    max_sockets_per_shard: int = DEFAULT_SOCKETS_PER_SHARD
    shared_pool: Literal["refuse", "warn"] = "refuse"
    profile: str | None = None
    python_version: str | None = None
    wheel_dir: str | os.PathLike[str] | None = None
    bundle_botocore: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "shards", parse_shards(self.shards))
        if self.region is not None and (
            not isinstance(self.region, str) or not _REGION_RE.match(self.region)
        ):
            raise ConfigError(
                f"region={self.region!r} is not valid; use an AWS region name like "
                "'us-east-1', or None for the AWS config chain"
            )
        if self.endpoint_url is not None:
            if not isinstance(self.endpoint_url, str) or not _URL_RE.match(self.endpoint_url):
                raise ConfigError(
                    f"endpoint_url={self.endpoint_url!r} is not valid; use an http:// or "
                    "https:// URL like 'http://127.0.0.1:9001', or None for AWS"
                )
            set_(self, "endpoint_url", self.endpoint_url.rstrip("/"))
        memory = _whole(self.memory)
        if memory is None or not MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB:
            raise ConfigError(
                f"memory={self.memory!r} is not valid; use a whole number of MB from "
                f"{MIN_MEMORY_MB} to {MAX_MEMORY_MB}"
            )
        set_(self, "memory", memory)
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture={self.architecture!r} is not valid; use one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        if self.role is not None and (
            not isinstance(self.role, str) or not _ROLE_RE.match(self.role)
        ):
            raise ConfigError(
                f"role={self.role!r} is not valid; use an IAM role ARN like "
                "'arn:aws:iam::123456789012:role/NAME', or None"
            )
        if self.function_name is not None and (
            not isinstance(self.function_name, str) or not _NAME_RE.match(self.function_name)
        ):
            raise ConfigError(
                f"function_name={self.function_name!r} is not valid; use 1 to 64 letters, "
                "digits, '-' or '_', or None for the build-hash name"
            )
        if self.max_cost is not None:
            cost = self.max_cost
            if (
                isinstance(cost, bool)
                or not isinstance(cost, (int, float))
                or not math.isfinite(cost)
                or cost <= 0
            ):
                raise ConfigError(
                    f"max_cost={cost!r} is not valid; use an amount in USD greater than "
                    "zero (0.50), or None for no cap"
                )
            set_(self, "max_cost", float(cost))
        tolerance = parse_duration(
            self.start_tolerance, name="start_tolerance", allow_zero=False, bare_max_s=60.0
        )
        if tolerance > MAX_START_TOLERANCE_S:
            raise ConfigError(
                f"start_tolerance={self.start_tolerance!r} is not valid; use "
                f"{DURATION_FORMS}, at most {MAX_START_TOLERANCE_S:g}s"
            )
        set_(self, "start_tolerance", tolerance)
        timeout = parse_duration(self.timeout, name="timeout", allow_zero=False)
        if timeout > MAX_TIMEOUT_S or timeout < 1:
            raise ConfigError(
                f"timeout={self.timeout!r} is not valid; use {DURATION_FORMS}, from 1s "
                f"to 15m (Lambda's longest run)"
            )
        set_(self, "timeout", timeout)
        sockets = _whole(self.max_sockets_per_shard)
        if sockets is None or not 1 <= sockets <= MAX_SOCKETS_PER_SHARD:
            raise ConfigError(
                f"max_sockets_per_shard={self.max_sockets_per_shard!r} is not valid; use a "
                f"whole number from 1 to {MAX_SOCKETS_PER_SHARD} (a Lambda environment "
                f"has {FD_LIMIT:,} file descriptors)"
            )
        set_(self, "max_sockets_per_shard", sockets)
        if self.shared_pool not in SHARED_POOL_MODES:
            raise ConfigError(
                f"shared_pool={self.shared_pool!r} is not valid; use one of "
                f"{', '.join(SHARED_POOL_MODES)}"
            )
        if self.profile is not None and (not isinstance(self.profile, str) or not self.profile):
            raise ConfigError(
                f"profile={self.profile!r} is not valid; use an AWS profile name, or None"
            )
        python = self.python_version
        if python is None:
            python = local_python_version()
            if python not in PYTHON_VERSIONS:
                raise ConfigError(
                    f"this interpreter is Python {python}, which has no Lambda runtime; "
                    f"pass python_version= one of {', '.join(PYTHON_VERSIONS)}"
                )
        elif python not in PYTHON_VERSIONS:
            raise ConfigError(
                f"python_version={python!r} is not valid; use one of "
                f"{', '.join(PYTHON_VERSIONS)} (a Lambda Python runtime)"
            )
        set_(self, "python_version", python)
        if self.wheel_dir is not None:
            if not isinstance(self.wheel_dir, (str, os.PathLike)) or not str(self.wheel_dir):
                raise ConfigError(
                    f"wheel_dir={self.wheel_dir!r} is not valid; use a directory path, or None "
                    "for ~/.cache/pytest-lambda-slo/wheels"
                )
            set_(self, "wheel_dir", Path(self.wheel_dir).expanduser())
        if not isinstance(self.bundle_botocore, bool):
            raise ConfigError(
                f"bundle_botocore={self.bundle_botocore!r} is not valid; use True or False"
            )

    @property
    def runtime(self) -> str:
        """The Lambda runtime identifier, e.g. 'python3.11'."""
        return f"python{self.python_version}"

    @property
    def start_tolerance_s(self) -> float:
        return float(self.start_tolerance)

    @property
    def timeout_s(self) -> float:
        return float(self.timeout)


def parse_fanout(value: object) -> LambdaFanout | None:
    """``fanout=``: None (no fan-out), a shard count, or a LambdaFanout."""
    if value is None or isinstance(value, LambdaFanout):
        return value
    number = _whole(value)
    if number is None or not 1 <= number <= MAX_SHARDS:
        raise ConfigError(f"fanout={value!r} is not valid; use {FANOUT_FORMS}")
    return LambdaFanout(number)


def parse_max_fanout_cost(value: object) -> float | None:
    """ini lambda_slo_max_fanout_cost: an amount in USD greater than zero, or 'off'."""
    text = str(value).strip()
    if text.lower() == "off":
        return None
    try:
        cost = float(text)
    except ValueError:
        cost = math.nan
    if not math.isfinite(cost) or cost <= 0:
        raise ConfigError(
            f"lambda_slo_max_fanout_cost={value!r} is not valid; use an amount in USD greater "
            "than zero (5.00), or 'off' for no session cap"
        )
    return cost
