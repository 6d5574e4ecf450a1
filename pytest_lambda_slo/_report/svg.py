"""Charts drawn as inline SVG: no script, no font, no fetch, so the page opens anywhere.

Chosen over an embedded chart library (uPlot) and matplotlib by measuring a four-test
session: see docs/reports.md for the figures. A chart is a few paths, so the drawing is
small; points closer than half a pixel to the last kept one are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from .charts import Chart, Point

WIDTH, HEIGHT = 560, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 26, 28, 40
PERCENTILE_TICKS = (
    (0.0, "0%"),
    (1.0, "90%"),
    (2.0, "99%"),
    (3.0, "99.9%"),
    (4.0, "99.99%"),
    (5.0, "99.999%"),
)


def percentile_x(q: float) -> float:
    """HdrHistogram-plotter x of percentile ``q`` (0-100): log10(1 / (1 - q))."""
    tail = max(1.0 - q / 100.0, 1e-5)
    return math.log10(1.0 / tail)


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (steps of 1, 2 or 5 x 10^k)."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for x, y in points:
        if kept and abs(x - kept[-1][0]) < 0.5 and abs(y - kept[-1][1]) < 0.5:
            continue
        kept.append((x, y))
    if points and kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _path(
    points: Sequence[Point], sx: Callable[[float], float], sy: Callable[[float], float]
) -> tuple[str, list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((sx(x), sy(y)))
    parts: list[str] = []
    dots: list[tuple[float, float]] = []
    for run in runs:
        run = _thin(run)
        if len(run) == 1:  # a lone interval has no line to draw: a dot
            dots.append(run[0])
        elif run:
            parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in run))
    return "".join(parts), dots


def render(chart: Chart, width: int = WIDTH, height: int = HEIGHT) -> str:
    """One chart as an ``<svg>`` element."""
    xs = [chart_x(chart, x) for s in chart.series for x, y in s.points if y is not None]
    ys = [y for s in chart.series for _, y in s.points if y is not None]
    ys += [line.y for line in chart.lines]
    x_low = 0.0 if chart.percentile_x else min(xs, default=0.0)
    x_high = max(xs, default=1.0)
    if chart.percentile_x:
        x_high = max(1.0, math.ceil(x_high))
    x_high = x_high if x_high > x_low else x_low + 1.0
    y_ticks = nice_ticks(max(ys, default=1.0) * 1.05)
    y_high = y_ticks[-1]
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (chart_x(chart, x) - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return _TOP + plot_h - (y / y_high) * plot_h

    out = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-label="{escape(chart.title)}">',
        f'<text x="{_LEFT}" y="16" class="t">{escape(chart.title)}</text>',
    ]
    for tick in y_ticks:
        y = sy(tick)
        out.append(
            f'<path d="M{_LEFT},{y:.1f}H{width - _RIGHT}" class="g"/>'
            f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" class="yl">{_fmt(tick)}</text>'
        )
    if chart.percentile_x:
        x_ticks = [(v, label) for v, label in PERCENTILE_TICKS if v <= x_high]
        place = [(_LEFT + (v - x_low) / (x_high - x_low) * plot_w, label) for v, label in x_ticks]
    else:
        place = [(sx(v), _fmt(v)) for v in nice_ticks(x_high) if v >= x_low]
    for x, label in place:
        out.append(
            f'<path d="M{x:.1f},{_TOP}V{_TOP + plot_h}" class="g"/>'
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 14}" class="xl">{label}</text>'
        )
    out.append(
        f'<text x="{_LEFT + plot_w / 2:.0f}" y="{height - 6}" class="xl">'
        f"{escape(chart.x_label)}</text>"
    )
    out.append(
        f'<text x="12" y="{_TOP + plot_h / 2:.0f}" class="xl" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.0f})">{escape(chart.y_label)}</text>'
    )
    for line in chart.lines:
        y = sy(line.y)
        out.append(
            f'<path d="M{_LEFT},{y:.1f}H{width - _RIGHT}" stroke="{line.color}" '
            f'class="b"/><text x="{width - _RIGHT - 2}" y="{y - 3:.1f}" class="bl" '
            f'fill="{line.color}">{escape(line.label)}</text>'
        )
    legend_x, legend_y = _LEFT + 8, _TOP + 8
    for series in chart.series:
        d, dots = _path(series.points, sx, sy)
        if not d and not dots:
            continue
        dash = ' stroke-dasharray="5 3"' if series.dashed else ""
        if d:
            out.append(f'<path d="{d}" stroke="{series.color}" class="s"{dash}/>')
        out += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{series.color}"/>' for x, y in dots
        ]
        step = 26 + 6 * len(series.label)
        if legend_x + step > width - _RIGHT and legend_x > _LEFT + 8:  # a new legend row
            legend_x, legend_y = _LEFT + 8, legend_y + 13
        out.append(
            f'<path d="M{legend_x},{legend_y}h14" stroke="{series.color}" class="s"{dash}/>'
            f'<text x="{legend_x + 18}" y="{legend_y + 3}" class="lg">'
            f"{escape(series.label)}</text>"
        )
        legend_x += step
    out.append("</svg>")
    return "".join(out)


def chart_x(chart: Chart, x: float) -> float:
    return percentile_x(x) if chart.percentile_x else x


STYLE = (
    "svg.chart{width:100%;max-width:560px;background:#fff;border:1px solid #ddd}"
    ".chart text{font:10px sans-serif;fill:#333}.chart .t{font-size:12px;font-weight:bold}"
    ".chart .yl{text-anchor:end}.chart .xl{text-anchor:middle}.chart .bl{text-anchor:end}"
    ".chart .g{stroke:#eee;fill:none}.chart .s{fill:none;stroke-width:1.5}"
    ".chart .b{fill:none;stroke-dasharray:2 2}"
)
