"""Duration distributions of emulated functions: fixed, normal, uniform, lognormal, exponential."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from .._units import DURATION_FORMS, parse_duration
from ..errors import ConfigError

DISTRIBUTION_FORMS = (
    f"{DURATION_FORMS}, or a distribution: normal(MEAN,STDEV), uniform(LOW,HIGH), "
    "lognormal(MEDIAN,SIGMA) or exponential(MEAN) with durations as arguments "
    "(SIGMA is a plain number, e.g. 0.5)"
)
_DIST_RE = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$")


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
