"""Cost estimate of a load run: requests x price per request + GB-seconds x price per GB-second.

Default prices are the widely quoted AWS Lambda on-demand list prices for us-east-1
(USD 0.20 per million requests; USD 0.0000166667 per GB-second on x86_64 and
USD 0.0000133334 on arm64), first pricing tier, free tier ignored. Other regions
differ: pass ``prices=`` to use your own figures. An estimate, never a bill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

ARCHITECTURES = ("x86_64", "arm64")
PRICE_SOURCE = "AWS Lambda list prices, us-east-1, first tier (widely quoted figures)"
DEFAULT_REGION = "us-east-1"
# region -> architecture -> {"request": USD per request, "gb_second": USD per GB-second}
DEFAULT_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "us-east-1": {
        "x86_64": {"request": 0.20 / 1_000_000, "gb_second": 0.0000166667},
        "arm64": {"request": 0.20 / 1_000_000, "gb_second": 0.0000133334},
    },
}
PRICE_FORMS = (
    "a mapping {'request': USD, 'gb_second': USD}, or region -> architecture -> such a mapping"
)


def gb_seconds(billed_mb_ms: float) -> float:
    """GB-seconds from the sum of billed duration (ms) x memory size (MB) over invocations."""
    return billed_mb_ms / 1024.0 / 1000.0


def estimate_cost(
    requests: int,
    billed_mb_ms: float,
    *,
    region: str | None,
    architecture: str = "x86_64",
    prices: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Estimate what ``requests`` invocations billed for ``billed_mb_ms`` MB-ms cost in USD.

    ``prices`` is either one price pair ``{"request": ..., "gb_second": ...}`` used as is,
    or a table shaped like :data:`DEFAULT_PRICES`. A region missing from the table uses
    the us-east-1 prices and the result's ``note`` says so.
    """
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
        raise ConfigError(f"requests={requests!r} is not valid; use a whole number >= 0")
    if (
        isinstance(billed_mb_ms, bool)
        or not isinstance(billed_mb_ms, (int, float))
        or not math.isfinite(billed_mb_ms)
        or billed_mb_ms < 0
    ):
        raise ConfigError(f"billed_mb_ms={billed_mb_ms!r} is not valid; use a number >= 0")
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"architecture={architecture!r} is not valid; use one of {', '.join(ARCHITECTURES)}"
        )
    fallback = False
    source = PRICE_SOURCE if prices is None else "prices= given by the caller"
    if isinstance(prices, Mapping) and ("request" in prices or "gb_second" in prices):
        pair = _price_pair(prices, "prices")
        note = "prices given by the caller"
    else:
        table = DEFAULT_PRICES if prices is None else prices
        if not isinstance(table, Mapping):
            raise ConfigError(f"prices={prices!r} is not valid; use {PRICE_FORMS}")
        used_region = region or ""
        if used_region not in table:
            if DEFAULT_REGION not in table:
                raise ConfigError(
                    f"prices has no entry for region {region!r} (nor {DEFAULT_REGION!r}); "
                    f"use {PRICE_FORMS}"
                )
            note = f"no prices for region {region!r}; used {DEFAULT_REGION} {architecture} prices"
            used_region, fallback = DEFAULT_REGION, True
        else:
            note = f"{used_region} {architecture} prices"
        by_arch = table[used_region]
        if not isinstance(by_arch, Mapping) or architecture not in by_arch:
            raise ConfigError(
                f"prices[{used_region!r}] has no entry for architecture {architecture!r}; "
                f"use {PRICE_FORMS}"
            )
        pair = _price_pair(by_arch[architecture], f"prices[{used_region!r}][{architecture!r}]")
    gbs = gb_seconds(float(billed_mb_ms))
    request_cost = requests * pair["request"]
    compute_cost = gbs * pair["gb_second"]
    return {
        "currency": "USD",
        "region": region,
        "architecture": architecture,
        "requests": requests,
        "gb_seconds": gbs,
        "price_per_request": pair["request"],
        "price_per_gb_second": pair["gb_second"],
        "request_cost_usd": request_cost,
        "compute_cost_usd": compute_cost,
        "total_usd": request_cost + compute_cost,
        "price_source": source,
        "note": note,
        "fallback_prices": fallback,
    }


def _price_pair(value: object, name: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}={value!r} is not valid; use {PRICE_FORMS}")
    pair: dict[str, float] = {}
    for key in ("request", "gb_second"):
        price = value.get(key)
        if (
            isinstance(price, bool)
            or not isinstance(price, (int, float))
            or not math.isfinite(price)
            or price < 0
        ):
            raise ConfigError(
                f"{name}[{key!r}]={price!r} is not valid; use a price in USD >= 0 ({PRICE_FORMS})"
            )
        pair[key] = float(price)
    return pair
