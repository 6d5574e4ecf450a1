"""The ``timeseries`` block of a run (per-interval counts and histograms): read and merge.

A block is aligned on its run's release instant (``start_epoch_s``) and holds interval
``i`` from ``t_s[i]`` for ``interval_s`` seconds. Runs from different machines are merged
on the wall clock: each block is shifted by the whole number of intervals nearest to the
difference of release instants, a coarser block sets the merged interval (a finer block's
intervals are added into the coarse interval they start in), and counts and histograms
are added interval by interval. Per-interval percentiles are recomputed from the sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from . import hdr

# Keys recomputed from the merged data; every other per-interval series is added. That
# includes ``in_flight_max``: shards ran side by side, so the sum of their maxima bounds
# the combined in-flight count from above (the exact figure cannot be recovered).
_DERIVED = {
    "interval_s",
    "start_epoch_s",
    "t_s",
    "histograms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
}
PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0))


def intervals(block: Mapping[str, Any]) -> int:
    """How many intervals a block holds."""
    return len(block.get("t_s") or block.get("histograms") or block.get("sent") or [])


def _getter(name: str, key: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    if key is None:
        return lambda block: block.get(name)
    return lambda block: (block.get(name) or {}).get(key)


def _add_series(
    placed: Sequence[tuple[Mapping[str, Any], list[int]]],
    get: Callable[[Mapping[str, Any]], Any],
    size: int,
) -> list[float]:
    total: list[float] = [0] * size
    for block, index in placed:
        for i, value in zip(index, get(block) or [], strict=False):  # short: zeros after
            total[i] += value or 0
    return total


def merge_timeseries(blocks: Sequence[Mapping[str, Any]], highest_us: int) -> dict[str, Any]:
    """The exact interval-by-interval sum of ``blocks``, aligned on their release instants."""
    if not blocks:
        raise ValueError("merge_timeseries needs at least one block")
    for block in blocks:
        if not (isinstance(block.get("interval_s"), (int, float)) and block["interval_s"] > 0):
            raise ConfigError(
                f"timeseries interval_s={block.get('interval_s')!r} is not valid; "
                "expected a number of seconds > 0"
            )
    interval = max(float(b["interval_s"]) for b in blocks)
    origin = min(float(b.get("start_epoch_s", 0.0)) for b in blocks)
    placed: list[tuple[Mapping[str, Any], list[int]]] = []
    size = 0
    for block in blocks:
        n = intervals(block)
        shift = round((float(block.get("start_epoch_s", 0.0)) - origin) / interval)
        offsets = block.get("t_s") or [i * float(block["interval_s"]) for i in range(n)]
        index = [shift + math.floor(float(t) / interval + 1e-9) for t in offsets[:n]]
        placed.append((block, index))
        size = max([size, *(i + 1 for i in index)])
    out: dict[str, Any] = {
        "interval_s": interval,
        "start_epoch_s": origin,
        "t_s": [round(i * interval, 6) for i in range(size)],
    }
    names = sorted({key for block, _ in placed for key in block} - _DERIVED)
    for name in names:
        values = [block.get(name) for block, _ in placed]
        if all(isinstance(v, list) or v is None for v in values):
            out[name] = _add_series(placed, _getter(name), size)
        elif all(isinstance(v, dict) or v is None for v in values):
            keys = sorted({k for v in values for k in v or {}})
            out[name] = {k: _add_series(placed, _getter(name, k), size) for k in keys}
        else:
            raise ConfigError(
                f"timeseries field {name!r} holds {values[0]!r}, which cannot be merged; "
                "expected per-interval lists or a mapping of them"
            )
    groups: list[list[str | None]] = [[] for _ in range(size)]
    for block, index in placed:
        for i, encoded in zip(index, block.get("histograms") or [], strict=False):
            groups[i].append(encoded)
    sums = [hdr.add_all(group, highest_us) for group in groups]
    for key, q in PERCENTILES:
        out[key] = [hdr.percentile_ms(h, q) for h in sums]
    out["max_ms"] = [hdr.max_ms(h) for h in sums]
    out["histograms"] = [hdr.encode(h) for h in sums]
    return out
