"""What the HTML report plots for one run, as data: charts, series, budget lines.

Kept apart from drawing (``svg``) so the figures can be tested without a browser and
the drawing could change without touching what is shown. Latency is in milliseconds,
times in seconds from the run's release.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import hdr

Point = tuple[float, float | None]  # None breaks a line (an empty interval)
# Percentile budgets drawn as horizontal lines on the spectrum: budget -> percentile.
_BUDGET_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
PALETTE = {
    "p50": "#1f77b4",
    "p90": "#2ca02c",
    "p99": "#d62728",
    "all": "#1f77b4",
    "warm": "#2ca02c",
    "cold": "#9467bd",
    "sent": "#1f77b4",
    "ok": "#2ca02c",
    "throttled": "#ff7f0e",
    "errors": "#d62728",
    "in_flight_max": "#7f7f7f",
    "server_invocations": "#17becf",
    "server_throttles": "#8c564b",
    "server_concurrency_peak": "#e377c2",
    "budget": "#d62728",
}


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Line:
    """A horizontal reference line, e.g. a budget."""

    label: str
    y: float
    color: str = PALETTE["budget"]


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    lines: tuple[Line, ...] = ()
    percentile_x: bool = False  # x is a percentile on a 1/(1-q) log axis

    @property
    def empty(self) -> bool:
        return not any(y is not None for s in self.series for _, y in s.points)


def timeseries_of(run: Mapping[str, Any]) -> Mapping[str, Any] | None:
    block = run.get("timeseries") or (run.get("measurements") or {}).get("timeseries")
    return block if block and block.get("t_s") else None


def _over_time(block: Mapping[str, Any], key: str) -> tuple[Point, ...]:
    values = block.get(key) or []
    interval = float(block.get("interval_s", 1.0))
    # An interval's figure is drawn at its end: requests are counted when they complete.
    return tuple(
        (round(float(t) + interval, 6), None if v is None else float(v))
        for t, v in zip(block["t_s"], values, strict=False)
    )


def _budget_lines(run: Mapping[str, Any], names: Sequence[str]) -> tuple[Line, ...]:
    out = []
    for verdict in run.get("verdicts") or []:
        if verdict.get("unit") == "ms" and verdict.get("budget") in names:
            out.append(Line(f"{verdict['budget']} budget {verdict['limit']:g}ms", verdict["limit"]))
    return tuple(dict.fromkeys(out))


def _spectrum(run: Mapping[str, Any], view: str) -> tuple[Point, ...]:
    encoded = (((run.get("measurements") or {}).get("histograms") or {}).get(view) or {}).get("hdr")
    # A staircase: each bucket's value holds from the previous bucket's percentile to its own.
    histogram = hdr.add_all([encoded])
    total = int(histogram.get_total_count())
    # The axis ends where the run's resolution does: n samples say nothing past 1 - 1/n.
    top = 100.0 * (1.0 - 1.0 / total) if total > 1 else 50.0
    points: list[Point] = []
    previous = 0.0
    for q, value in hdr.spectrum(histogram, max_q=top):
        points += [(previous, value), (q, value)]
        previous = q
    return tuple(points)


def latency_over_time(run: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> Chart | None:
    block = timeseries_of(run)
    if block is None:
        return None
    series = [
        Series(k[:3], _over_time(block, k), PALETTE[k[:3]]) for k in ("p50_ms", "p90_ms", "p99_ms")
    ]
    base = timeseries_of(baseline) if baseline else None
    if base is not None:
        series.append(Series("baseline p99", _over_time(base, "p99_ms"), PALETTE["p99"], True))
    return Chart(
        "Latency over time (per interval)",
        "seconds since release",
        "ms",
        tuple(series),
        _budget_lines(run, ("p50", "p90", "p99")),
    )


def percentile_spectrum(run: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> Chart:
    series = [Series("all requests", _spectrum(run, "all"), PALETTE["all"])]
    if baseline is not None:
        series.append(Series("baseline", _spectrum(baseline, "all"), "#7f7f7f", True))
    return Chart(
        "Latency by percentile",
        "percentile",
        "ms",
        tuple(series),
        _budget_lines(run, (*_BUDGET_PERCENTILES, "max")),
        True,
    )


def warm_vs_cold(run: Mapping[str, Any]) -> Chart | None:
    if not run.get("cold_start_detection"):
        return None
    series = tuple(
        Series(label, _spectrum(run, view), PALETTE[view])
        for view, label in (("warm", "warm"), ("cold", "cold start"))
    )
    return Chart(
        "Warm vs cold-start latency",
        "percentile",
        "ms",
        series,
        _budget_lines(run, ("warm_p99", "cold_start_p99")),
        True,
    )


# The emulator's server-side figures drawn next to the client's, and how its seconds
# combine into a longer client interval: counts add up, a peak is the highest.
_SERVER_SERIES: tuple[tuple[str, str, Callable[[Iterable[int]], int]], ...] = (
    ("invocations", "server: invocations", sum),
    ("throttles", "server: throttles", sum),
    ("concurrency_peak", "server: concurrency (peak)", max),
)


def _server_over_time(
    block: Mapping[str, Any], key: str, interval: float, combine: Callable[[Iterable[int]], int]
) -> tuple[Point, ...]:
    """The emulator's per-second ``key`` on the client's intervals: each second goes to the
    interval holding its middle (one before the release goes to the first), drawn at its end."""
    half = float(block.get("interval_s", 1.0)) / 2
    bins: dict[int, list[int]] = {}
    for t, value in zip(block.get("t_s") or [], block.get(key) or [], strict=False):
        bins.setdefault(max(math.floor((float(t) + half) / interval), 0), []).append(int(value))
    return tuple((round((i + 1) * interval, 6), float(combine(bins[i]))) for i in sorted(bins))


def server_series(run: Mapping[str, Any], interval: float) -> tuple[Series, ...]:
    """The emulator's own series where the run's target was the emulator (else none)."""
    block = (run.get("extras") or {}).get("server_timeseries")
    if not block or not block.get("t_s"):
        return ()
    return tuple(
        Series(
            label,
            _server_over_time(block, key, interval, combine),
            PALETTE[f"server_{key}"],
            dashed=True,
        )
        for key, label, combine in _SERVER_SERIES
        if block.get(key) is not None
    )


def requests_over_time(run: Mapping[str, Any]) -> Chart | None:
    block = timeseries_of(run)
    if block is None:
        return None
    names = ("sent", "ok", "throttled", "errors", "in_flight_max")
    series = tuple(
        Series(
            name.replace("_max", " (max)").replace("_", " "),
            _over_time(block, name),
            PALETTE[name],
            dashed=name == "in_flight_max",
        )
        for name in names
        if block.get(name) is not None
    )
    series += server_series(run, float(block.get("interval_s", 1.0)))
    return Chart(
        "Requests per interval, and in flight", "seconds since release", "requests", series
    )


def charts_for(run: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> list[Chart]:
    """Every chart of one run, in page order; charts without data are left out."""
    charts = [
        latency_over_time(run, baseline),
        percentile_spectrum(run, baseline),
        warm_vs_cold(run),
        requests_over_time(run),
    ]
    return [c for c in charts if c is not None and not c.empty]
