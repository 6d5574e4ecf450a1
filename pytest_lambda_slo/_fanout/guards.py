"""Checks before a fanned-out run fires: cost, descriptors per shard, concurrency pools.

A refusal is a ``FanoutRefused`` (a ConfigError: the plan, not the code under test, is
wrong) whose one line gives the figure and what would pass. The cost estimate is a line
to show before firing, from cost.py's prices:

    generator  = shards x memory (GB) x shard seconds (GB-seconds) + invocations x price
    target     = its invocations x price (+ GB-seconds when its duration and memory are known)

The checks that need the account (unreserved concurrency, the target's reserved
concurrency) take a Lambda client; the rest are plain arithmetic.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._aws.cost import estimate_cost
from ..errors import ConfigError
from .config import FD_LIMIT, LambdaFanout

_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[^:]+)"
)


class FanoutRefused(ConfigError):
    """The fan-out plan would cost too much or could not be measured; nothing was fired."""


class FanoutWarning(UserWarning):
    """A fan-out plan that runs, but whose figures may be distorted (shared concurrency pool)."""


@dataclass(frozen=True)
class CostEstimate:
    """What a fanned-out run is expected to cost, generator and target apart (USD)."""

    shards: int
    memory_mb: int
    shard_seconds: float
    generator_invocations: int
    generator_gb_seconds: float
    generator_usd: float
    target_invocations: int
    target_gb_seconds: float | None  # None: the target's duration or memory is unknown
    target_usd: float
    total_usd: float
    note: str

    def line(self) -> str:
        target = ""
        if self.target_invocations:
            compute = (
                f" + {self.target_gb_seconds:,.1f} GB-s"
                if self.target_gb_seconds is not None
                else " (its compute time unknown, not included)"
            )
            target = (
                f"; target {self.target_invocations:,} invocations{compute} = "
                f"USD {self.target_usd:.4f}"
            )
        return (
            f"lambda-slo fanout: estimated cost USD {self.total_usd:.4f}: generator "
            f"{self.shards} shards x {self.memory_mb} MB x {self.shard_seconds:g} s = "
            f"{self.generator_gb_seconds:,.1f} GB-s + {self.generator_invocations} invocations "
            f"= USD {self.generator_usd:.4f}{target} ({self.note}; an estimate, not a bill)"
        )


def estimate_fanout_cost(
    fanout: LambdaFanout,
    *,
    shard_seconds: float,
    region: str | None,
    probes_per_shard: int = 0,
    target_invocations: int = 0,
    target_memory_mb: int | None = None,
    target_seconds_each: float | None = None,
    target_architecture: str = "x86_64",
    prices: Mapping[str, Any] | None = None,
) -> CostEstimate:
    """The estimate for ``fanout.shards`` shards each busy ``shard_seconds`` (start wait + run).

    ``target_*``: the function under test when it is a Lambda function (its invocations;
    its memory and mean duration when known).
    """
    if not math.isfinite(shard_seconds) or shard_seconds <= 0:
        raise ConfigError(f"shard_seconds={shard_seconds!r} is not valid; use seconds > 0")
    invocations = fanout.shards * (1 + probes_per_shard)
    generator = estimate_cost(
        invocations,
        fanout.shards * fanout.memory * shard_seconds * 1000.0,
        region=region,
        architecture=fanout.architecture,
        prices=prices,
    )
    target_gbs: float | None = None
    target_usd = 0.0
    if target_invocations:
        known = target_memory_mb is not None and target_seconds_each is not None
        mb_ms = (
            target_invocations * float(target_memory_mb or 0) * float(target_seconds_each or 0)
        ) * 1000.0
        target = estimate_cost(
            target_invocations,
            mb_ms if known else 0.0,
            region=region,
            architecture=target_architecture,
            prices=prices,
        )
        target_gbs = float(target["gb_seconds"]) if known else None
        target_usd = float(target["total_usd"])
    return CostEstimate(
        shards=fanout.shards,
        memory_mb=fanout.memory,
        shard_seconds=float(shard_seconds),
        generator_invocations=invocations,
        generator_gb_seconds=float(generator["gb_seconds"]),
        generator_usd=float(generator["total_usd"]),
        target_invocations=target_invocations,
        target_gb_seconds=target_gbs,
        target_usd=target_usd,
        total_usd=float(generator["total_usd"]) + target_usd,
        note=str(generator["note"]),
    )


def check_cost(estimate: CostEstimate, max_cost: float | None) -> None:
    """Refuse a run whose estimate is above ``max_cost`` (the session's cap is the ledger's)."""
    if max_cost is not None and estimate.total_usd > max_cost:
        raise FanoutRefused(
            f"estimated cost USD {estimate.total_usd:.4f} is above max_cost=USD {max_cost:.4f}; "
            "raise max_cost, shorten the run or use fewer or smaller shards"
        )


def shards_needed(concurrency: int, sockets_per_shard: int) -> int:
    """Fewest shards that hold ``concurrency`` sockets at ``sockets_per_shard`` each."""
    return max(1, math.ceil(concurrency / sockets_per_shard))


def check_sockets(concurrency: int, fanout: LambdaFanout) -> int:
    """Sockets the busiest shard holds; refused above ``max_sockets_per_shard``."""
    per_shard = math.ceil(concurrency / fanout.shards)
    limit = fanout.max_sockets_per_shard
    if per_shard > limit:
        needed = shards_needed(concurrency, limit)
        raise FanoutRefused(
            f"concurrency={concurrency:,} over {fanout.shards} shards is {per_shard:,} sockets "
            f"per shard, above the {limit:,} one Lambda environment can hold ({FD_LIMIT:,} file "
            f"descriptors); use at least {needed:,} shards (ceil({concurrency:,}/{limit:,}))"
        )
    return per_shard


def unreserved_concurrency(client: Any) -> int | None:
    """The account's unreserved concurrency in the client's region (GetAccountSettings).

    None when the endpoint does not implement GetAccountSettings (some emulators).
    """
    try:
        settings = client.get_account_settings()
    except Exception as exc:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
        status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {})
        if code in ("UnknownOperationException", "NotImplemented", "404") or (
            status.get("HTTPStatusCode") in (404, 501)
        ):
            return None
        raise
    value = (settings.get("AccountLimit") or {}).get("UnreservedConcurrentExecutions")
    return int(value) if value is not None else None


def check_account_concurrency(
    shards: int, unreserved: int | None, *, generator_reserved: int | None = None
) -> str:
    """Refuse more shards than the pool they run in; the line says what was checked."""
    if generator_reserved is not None and generator_reserved > 0:
        pool, what = generator_reserved, "the generator's reserved concurrency"
    elif unreserved is None:
        return "lambda-slo fanout: the account's unreserved concurrency is unknown (not checked)"
    else:
        pool, what = unreserved, "the account's unreserved concurrency in this region"
    if shards > pool:
        raise FanoutRefused(
            f"{shards} shards need {shards} concurrent executions but {what} is {pool:,}; "
            f"use at most {pool:,} shards or ask AWS for a higher concurrency quota"
        )
    return f"lambda-slo fanout: {shards} shards fit {what} ({pool:,})"


def function_arn_parts(arn: str) -> dict[str, str] | None:
    match = _ARN_RE.match(arn)
    return match.groupdict() if match else None


def target_reserved_concurrency(client: Any, function: str) -> tuple[str, int | None]:
    """The target function's ARN and reserved concurrency (None: it draws from the pool)."""
    arn = str(client.get_function(FunctionName=function)["Configuration"]["FunctionArn"])
    reserved = client.get_function_concurrency(FunctionName=function).get(
        "ReservedConcurrentExecutions"
    )
    return arn, (int(reserved) if reserved is not None else None)


def check_shared_pool(
    generator_arn: str,
    target_arn: str,
    target_reserved: int | None,
    mode: str,
) -> str | None:
    """Refuse (or warn) when generator and target draw from one concurrency pool.

    Same partition, account and region and no reserved concurrency on the target: the
    generator's environments take from the pool the target scales into, so the target
    throttles because of the test itself. Returns the warning text in "warn" mode.
    """
    generator, target = function_arn_parts(generator_arn), function_arn_parts(target_arn)
    if generator is None or target is None:
        raise ConfigError(
            f"cannot compare concurrency pools of {generator_arn!r} and {target_arn!r}; use "
            "function ARNs like 'arn:aws:lambda:REGION:ACCOUNT:function:NAME'"
        )
    place = ("partition", "account", "region")
    if any(generator[k] != target[k] for k in place) or target_reserved is not None:
        return None
    message = (
        f"the generator {generator['name']} and the function under test {target['name']} share "
        f"the unreserved concurrency pool of account {target['account']} in {target['region']}: "
        "the generator's shards would cause the target's throttles; give the target reserved "
        "concurrency, run the generator in another region or account, or pass "
        "shared_pool='warn'"
    )
    if mode == "refuse":
        raise FanoutRefused(message)
    warnings.warn(message, FanoutWarning, stacklevel=2)
    return message
