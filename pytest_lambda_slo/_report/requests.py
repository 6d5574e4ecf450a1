"""The slowest requests by id, the per-label table and error messages, as report text.

Read from run dicts (the JSON's ``slow_requests``, ``labels`` and ``extras`` blocks), so
the terminal report and the HTML page say the same from the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from .._results.slowest import (
    REPORT_SHOWN,
    id_text,
    logs_insights_query,
    primary_id,
    trace_ids,
)

# How many of the slowest the HTML page lists (the JSON has them all).
HTML_SHOWN = 20


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


def _what(entry: Mapping[str, Any]) -> str:
    """Status and kind of one kept request: "200 ok", "- timeout", "429 throttle"."""
    status = entry.get("status")
    kind = entry.get("error_kind") or entry.get("kind") or ""
    cold = " cold" if entry.get("cold") else ""
    label = f" [{entry['label']}]" if entry.get("label") else ""
    return f"{status if status is not None else '-'} {kind}{cold}{label}"


def _at(entry: Mapping[str, Any]) -> str:
    t_s = entry.get("t_s")
    return "" if t_s is None else f"at {t_s:.2f}s"


def slowest_lines(block: Mapping[str, Any] | None) -> list[str]:
    """The five slowest requests with their ids, a Logs Insights query, the trace ids."""
    slowest = list((block or {}).get("slowest") or [])
    if not slowest:
        return []
    shown = slowest[:REPORT_SHOWN]
    lines = [f"  slowest requests ({len(shown)} of {len(slowest)} kept; the JSON has them all):"]
    for entry in shown:
        lines.append(
            f"    {_ms(entry.get('latency_ms')):>8} {_what(entry)} {_at(entry)}  "
            f"{primary_id(entry)}"
        )
    query = logs_insights_query(shown)
    if query:
        lines.append(f"    Logs Insights: {query}")
    traces = trace_ids(shown)
    if traces:
        lines.append(f"    X-Ray trace ids: {', '.join(traces)}")
    cold = list((block or {}).get("cold_starts") or [])
    if cold:
        slowest_cold = max(cold, key=lambda e: e.get("latency_ms") or 0.0)
        lines.append(
            f"    cold starts kept: {len(cold)}; slowest {_ms(slowest_cold.get('latency_ms'))}"
            f"  {primary_id(slowest_cold)}"
        )
    return lines


def label_lines(labels: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """One line per label: requests, error and throttle shares, p50/p99, cold starts."""
    if not labels:
        return []
    width = max(9, *(len(name) for name in labels))
    head = f"  {'label':<{width}}{'n':>8}{'errors':>8}{'thr.':>7}{'p50':>9}{'p99':>9}{'cold':>6}"
    lines = [head]
    for name, label in labels.items():
        served = (label.get("latency_ms") or {}).get("served") or {}
        lines.append(
            f"  {name:<{width}}{label.get('count', 0):>8}{_share(label.get('error_rate')):>8}"
            f"{_share(label.get('throttle_rate')):>7}{_ms(served.get('p50')):>9}"
            f"{_ms(served.get('p99')):>9}{label.get('cold_starts', 0):>6}"
        )
    return lines


def _share(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def message_lines(extras: Mapping[str, Any]) -> list[str]:
    """The first distinct messages of each error kind, when the target kept some."""
    messages: Mapping[str, list[str]] = extras.get("error_messages") or {}
    lines = []
    for kind, texts in messages.items():
        for text in texts:
            lines.append(f"    {kind}: {text}")
    return ["  first messages by error kind:", *lines] if lines else []


def messages_html(extras: Mapping[str, Any]) -> str:
    lines = message_lines(extras)[1:]
    if not lines:
        return ""
    items = "".join(f"<li><code>{escape(line.strip())}</code></li>" for line in lines)
    return f"<p>First messages by error kind:</p><ul>{items}</ul>"


# -- HTML ------------------------------------------------------------------------------------


def slowest_html(block: Mapping[str, Any] | None) -> str:
    """The slowest requests as a table, with the Logs Insights query over all of them."""
    slowest = list((block or {}).get("slowest") or [])
    if not slowest:
        return ""
    rows = [
        "<table><tr><th>slowest requests</th><th>latency</th><th>ttfb</th><th>status</th>"
        "<th>at</th><th>ids</th></tr>"
    ]
    for i, entry in enumerate(slowest[:HTML_SHOWN], 1):
        rows.append(
            f"<tr><td>{i}</td><td>{_ms(entry.get('latency_ms'))}</td>"
            f"<td>{_ms(entry.get('ttfb_ms'))}</td><td>{escape(_what(entry))}</td>"
            f"<td>{escape(_at(entry))}</td><td><code>{escape(id_text(entry))}</code></td></tr>"
        )
    rows.append("</table>")
    query = (block or {}).get("logs_insights_query")
    if query:
        rows.append(f"<p>Logs Insights:<br><code>{escape(query)}</code></p>")
    return "".join(rows)


def labels_html(labels: Mapping[str, Mapping[str, Any]] | None) -> str:
    if not labels:
        return ""
    head = ("label", "requests", "errors", "throttled", "p50", "p99", "cold starts", "verdicts")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, label in labels.items():
        served = (label.get("latency_ms") or {}).get("served") or {}
        verdicts = ", ".join(
            f"{v.get('budget')} {str(v.get('state', '')).upper()}"
            for v in label.get("verdicts") or []
        )
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{label.get('count', 0)}</td>"
            f"<td>{_share(label.get('error_rate'))}</td>"
            f"<td>{_share(label.get('throttle_rate'))}</td><td>{_ms(served.get('p50'))}</td>"
            f"<td>{_ms(served.get('p99'))}</td><td>{label.get('cold_starts', 0)}</td>"
            f"<td>{escape(verdicts)}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)
