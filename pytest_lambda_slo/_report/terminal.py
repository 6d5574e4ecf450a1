"""The terminal summary (``--lambda-slo-report``) and the JSON file (``--lambda-slo-json``)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import textwrap
from collections.abc import Iterable
from typing import Any

from .._results.recorder import Histogram
from .._results.result import BurstResult, LatencyView
from .._results.verdict import Verdict
from .requests import label_lines, message_lines, slowest_lines

WIDTH = 80
_BAR = "■"
_COLUMNS = ("min", "p50", "p90", "p99", "p999", "max")


def _ms(seconds: float) -> str:
    if seconds != seconds:  # NaN: no samples
        return "-"
    ms = seconds * 1000.0
    if ms >= 10_000:
        return f"{ms / 1000:.1f}s"
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 100:
        return f"{ms:.0f}ms"
    return f"{ms:.1f}ms"


def _latency_row(label: str, view: LatencyView) -> str:
    cells = "".join(f"{_ms(getattr(view, key)):>9}" for key in _COLUMNS)
    return f"  {label:<9}{cells}{view.count:>9}"


def _histogram_lines(histogram: Histogram, buckets: int = 10, bar_width: int = 40) -> list[str]:
    """hey's response-time histogram: equal-width buckets from fastest to slowest."""
    hdr = histogram.hdr
    total = hdr.get_total_count()
    if total == 0:
        return []
    low, high = hdr.get_min_value(), hdr.get_max_value()
    step = max((high - low) / buckets, 1e-9)
    counts = [0] * buckets
    for item in hdr.get_recorded_iterator():
        value = hdr.get_highest_equivalent_value(item.value_iterated_to)
        index = min(int((min(value, high) - low) / step), buckets - 1)
        counts[index] += item.count_at_value_iterated_to
    peak = max(counts) or 1
    lines = []
    width = len(str(peak))
    for i, count in enumerate(counts):
        upper = _ms((low + step * (i + 1)) / 1e6)
        bar = _BAR * (round(count / peak * bar_width) if count else 0)
        lines.append(f"    {upper:>8} [{count:>{width}}] |{bar}")
    return lines


def _counts_line(label: str, counts: dict[Any, int]) -> str | None:
    if not counts:
        return None
    body = ", ".join(f"{key}: {value}" for key, value in counts.items())
    return f"  {label}: {body}"


def _verdict_lines(verdicts: Iterable[Verdict]) -> list[str]:
    """PASS / FAIL / INCONCLUSIVE, the source, then figures, bounds, n and advice."""
    return [f"    {v.mark} [{v.source}] {v.describe()}" for v in verdicts]


def _shape_text(shape: dict[str, Any]) -> str:
    kind = shape.get("kind", "burst")
    parts = [kind]
    for key, label in (
        ("requests", "requests"),
        ("max_requests", "max"),
        ("concurrency", "concurrent"),
        ("rps", "req/s target"),
        ("users", "users"),
        ("spawn_rate", "users/s spawn rate"),
        ("duration_s", "s"),
        ("max_duration_s", "s max"),
        ("think_time_s", "s think time"),
        ("workers", "workers"),
    ):
        value = shape.get(key)
        if value is not None and not (key in ("workers", "think_time_s") and value in (0, 1)):
            parts.append(f"{value:g} {label}" if isinstance(value, float) else f"{value} {label}")
    return ", ".join(parts)


def _wrap(line: str) -> list[str]:
    """A line longer than 80 columns wrapped there, continuation lines indented 2 more."""
    if len(line) <= WIDTH:
        return [line]
    body = line.lstrip(" ")
    lead = " " * (len(line) - len(body))
    return textwrap.wrap(
        body, WIDTH, initial_indent=lead, subsequent_indent=lead + "  ", break_on_hyphens=False
    )


def _stopped(text: str) -> str:
    """Say once what stopped the run: "interrupted: 10 requests measured, ..." is Ctrl-C."""
    reason, _, rest = text.partition(": ")
    if reason in ("interrupted", "Ctrl-C") and rest:
        return f"  INTERRUPTED (Ctrl-C): {rest}"
    return f"  INTERRUPTED: {text}"


def render_burst(test_id: str, result: BurstResult) -> list[str]:
    """The report block of one run, at most 80 columns wide."""
    lines = [f"{test_id}"]
    lines.append(f"  target: {result.target}")
    lines.append(
        f"  shape: {_shape_text(result.shape)} | took {result.duration:.2f}s, "
        f"{result.rps:.1f} req/s"
    )
    sequential = result.run.get("sequential")
    if sequential:  # fired until decided: why it stopped
        waves = sequential["waves"]
        lines.append(
            f"  stopped after {waves} wave{'' if waves == 1 else 's'} "
            f"({sequential['requests']:,} requests): {sequential['note']}"
        )
    if result.extras.get("deadline_capped") is not None:
        lines.append(
            f"  deadline cut to {result.extras['deadline_capped']:g}s: what was left of "
            "lambda_slo_max_load_time"
        )
    if result.extras.get("request_cap") is not None:
        lines.append(
            f"  stopped at the request cap: {result.extras['request_cap']} requests were left "
            "of lambda_slo_max_requests"
        )
    serialised = result.extras.get("xdist_serialised")
    if serialised:
        lines.append(
            f"  serialised with other xdist workers on this target "
            f"({serialised['worker']} waited {serialised['waited_s']:.2f}s)"
        )
    if result.extras.get("interrupted"):
        lines.append(_stopped(str(result.extras["interrupted"])))
    if result.extras.get("force_cold"):
        lines.append(f"  forced cold start: {result.extras['force_cold']}")
    header = "".join(f"{key:>9}" for key in ("min", "p50", "p90", "p99", "p99.9", "max"))
    lines.append(f"  {'latency':<9}{header}{'n':>9}")
    lines.append(_latency_row("all", result.all))
    if result.throttled.count:  # the budgets' percentiles: throttles excluded
        lines.append(_latency_row("served", result.served))
    if result.ttfb.count:  # time to first byte of the successful responses
        lines.append(_latency_row("ttfb", result.ttfb))
    if result.cold_start_detection:
        lines.append(_latency_row("warm", result.warm))
        lines.append(_latency_row("cold", result.cold))
    if result.uncorrected.count:
        lines.append(_latency_row("uncorr.", result.uncorrected))
    if result.throttled.count:
        lines.append(_latency_row("throttled", result.throttled))
    for label, view in (("init", result.init), ("duration", result.server_duration),
                        ("billed", result.billed)):  # fmt: skip
        if view.count:
            lines.append(_latency_row(f"{label}*", view))
    if result.init.count or result.server_duration.count:
        lines.append("  (* server side, from Lambda's REPORT line)")
    count = max(result.count, 1)
    cold = (
        f"{result.cold_starts} ({result.cold_starts / count:.1%}), p99 {_ms(result.cold.p99)}"
        if result.cold_start_detection
        else "not detectable for this target"
    )
    lines.append(f"  cold starts: {cold}")
    if result.measurements.proactive_inits:
        lines.append(
            f"  proactive inits (not counted as cold): {result.measurements.proactive_inits}"
        )
    lines.append(
        f"  requests: {result.count}, ok: {result.ok}, throttled: {result.throttles} "
        f"({result.throttles / count:.1%}), errors: {result.errors} ({result.errors / count:.1%})"
    )
    run = result.run
    if run.get("intended_rps"):
        lines.append(
            f"  open model: intended {run['intended_rps']:.1f} req/s, sent "
            f"{run.get('achieved_rps') or 0.0:.1f} req/s, late starts: "
            f"{result.measurements.late_starts} (latency counts from the intended start)"
        )
    if result.unsent:
        lines.append(f"  not sent (deadline or cap): {result.unsent}")
    for line in (
        _counts_line("status codes", result.status_codes),
        _counts_line("throttle reasons", result.throttle_reasons),
        _counts_line("error kinds", result.error_kinds),
    ):
        if line:
            lines.append(line)
    lines.extend(message_lines(result.extras))
    cost = result.extras.get("cost")
    if cost:
        lines.append(
            f"  estimated cost: USD {cost.get('total_usd', 0):.6f} ({cost.get('note', '')})"
        )
    if run.get("saturated"):
        lines.append(f"  LOAD GENERATOR SATURATED: {run.get('saturation_note', '')}")
    if result.verdicts:
        lines.append("  budgets:")
        lines.extend(_verdict_lines(result.verdicts))
    labels = result.by_label
    if labels:
        lines.extend(label_lines({name: part.label_summary() for name, part in labels.items()}))
        for name, part in labels.items():
            lines.extend(f"    {v.mark} [{name}] {v.describe()}" for v in part.verdicts)
    lines.extend(slowest_lines(result.slow_requests()))
    histogram_lines = _histogram_lines(result.measurements.hist("all"))
    if histogram_lines:
        lines.append("  response time histogram:")
        lines.extend(histogram_lines)
    return [part for line in lines for part in _wrap(line)]


def render_report(records: list[tuple[str, BurstResult]]) -> list[str]:
    lines: list[str] = []
    for test_id, result in records:
        if lines:
            lines.append("")
        lines.extend(render_burst(test_id, result))
    return lines


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_json(path: str, records: list[tuple[str, BurstResult]]) -> None:
    """Write every run as JSON: counts, latency in ms, verdicts and encoded HDR histograms."""
    document = {
        "format": "pytest-lambda-slo/1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "bursts": [{"test_id": test_id, **result.to_dict()} for test_id, result in records],
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, sort_keys=False)
        handle.write("\n")
