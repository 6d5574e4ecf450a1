"""The HTML report (``--lambda-slo-html``): one self-contained file for a whole session.

A summary table of every load run and its verdicts, then per run its figures and charts
(inline SVG, see ``svg``). The page has no script and loads nothing: it opens offline,
from a CI artifact or an e-mail attachment alike.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from . import svg
from .charts import charts_for
from .ci import state_of
from .compare import Comparison, compare_runs
from .document import Record, RunKey, key_text, keyed
from .requests import labels_html, messages_html, slowest_html

_PAGE_STYLE = (
    "body{font:14px/1.4 sans-serif;margin:1.5em;color:#222;max-width:1180px}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}"
    ".pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}"
    ".unsure{color:#9a6700;font-weight:bold}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:10px}"
    "section{border-top:2px solid #ddd;margin-top:1.5em}code{font-size:12px}.note{color:#666}"
)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.1%})" if whole else str(part)


def _anchor(key: RunKey) -> str:
    return "run-" + hashlib.sha1(key_text(key).encode("utf-8")).hexdigest()[:10]


_STATE_CLASS = {"PASS": "pass", "FAIL": "fail"}  # anything else: inconclusive


def _verdict_cell(run: Mapping[str, Any]) -> str:
    verdicts = run.get("verdicts") or []
    if not verdicts:
        return '<span class="note">no budgets</span>'
    broken = [v["budget"] for v in verdicts if state_of(v) == "FAIL"]
    unsure = [v["budget"] for v in verdicts if state_of(v) not in ("PASS", "FAIL")]
    if broken:
        return f'<span class="fail">FAIL</span> {escape(", ".join(broken))}'
    if unsure:
        return f'<span class="unsure">INCONCLUSIVE</span> {escape(", ".join(unsure))}'
    return f'<span class="pass">PASS</span> {len(verdicts)}'


def _delta_cell(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    if not comparison.compared:
        return f'<td class="note">{escape(comparison.note)}</td>'
    shift = comparison.shift("p99")
    text = (
        shift.describe().split(" (", 1)[-1].rstrip(")")
        if shift and shift.delta is not None
        else "-"
    )
    css = ' class="fail"' if comparison.failed else ""
    flag = " significant" if shift is not None and shift.significant else ""
    return f"<td{css}>{escape(text)}{flag}</td>"


def _summary(records: Sequence[Record], comparisons: Mapping[RunKey, Comparison] | None) -> str:
    head = ["test", "requests", "p50", "p99", "cold starts", "throttled", "errors", "verdicts"]
    if comparisons is not None:
        head.append("p99 vs baseline")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for key, run in keyed(records):
        latency = (run.get("latency_ms") or {}).get("all") or {}
        count = int(run.get("count") or 0)
        cells = [
            f'<td><a href="#{_anchor(key)}">{escape(key_text(key))}</a></td>',
            f"<td>{count}</td>",
            f"<td>{_ms(latency.get('p50'))}</td>",
            f"<td>{_ms(latency.get('p99'))}</td>",
            f"<td>{_share(int(run.get('cold_starts') or 0), count)}</td>",
            f"<td>{_share(int(run.get('throttles') or 0), count)}</td>",
            f"<td>{_share(int(run.get('errors') or 0), count)}</td>",
            f"<td>{_verdict_cell(run)}</td>",
        ]
        if comparisons is not None:
            cells.append(_delta_cell(comparisons.get(key)) or "<td>-</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def _latency_table(run: Mapping[str, Any]) -> str:
    views = run.get("latency_ms") or {}
    cols = ("min", "p50", "p90", "p99", "p999", "max", "count")
    rows = ["<table><tr><th>latency</th>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for name, summary in views.items():
        if not summary or not summary.get("count"):
            continue
        cells = "".join(
            f"<td>{summary.get(c) if c == 'count' else _ms(summary.get(c))}</td>" for c in cols
        )
        rows.append(f"<tr><td>{escape(name)}</td>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _section(
    key: RunKey,
    run: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    comparison: Comparison | None,
) -> str:
    shape = run.get("shape") or {}
    shape_text = ", ".join(f"{k}={v}" for k, v in shape.items())
    parts = [
        f'<section id="{_anchor(key)}"><h2>{escape(key_text(key))}</h2>',
        f"<p><code>{escape(str(run.get('target', '')))}</code><br>{escape(shape_text)}; took "
        f"{float(run.get('duration_s') or 0):.2f}s, {float(run.get('rps') or 0):.1f} req/s</p>",
        _latency_table(run),
    ]
    interrupted = (run.get("extras") or {}).get("interrupted")
    if interrupted:  # a run cut short (Ctrl-C, cancelled): what was measured until then
        reason, _, rest = str(interrupted).partition(": ")
        label = "INTERRUPTED (Ctrl-C)" if reason in ("interrupted", "Ctrl-C") and rest else ""
        text = f"{label}: {rest}" if label else f"INTERRUPTED: {interrupted}"
        parts.insert(2, f'<p class="fail">{escape(text)}</p>')
    verdicts = run.get("verdicts") or []
    if verdicts:
        items = "".join(
            f'<li><span class="{_STATE_CLASS.get(state_of(v), "unsure")}">'
            f"{state_of(v)}</span> {escape(_verdict_text(v))}</li>"
            for v in verdicts
        )
        parts.append(f"<ul>{items}</ul>")
    parts.append(messages_html(run.get("extras") or {}))
    parts.append(labels_html(run.get("labels")))
    parts.append(slowest_html(run.get("slow_requests")))
    if comparison is not None:
        lines = [comparison.note] if comparison.note else []
        lines += [
            s.describe() + (" significant" if s.significant else "") for s in comparison.shifts
        ]
        lines += [f"FAILED {f}" for f in comparison.failures]
        parts.append("<p><b>vs baseline</b><br>" + "<br>".join(escape(x) for x in lines) + "</p>")
    charts = charts_for(run, baseline)
    if not any(c.title.startswith("Latency over time") for c in charts):
        parts.append(
            '<p class="note">No per-interval data in these results: no plots over time.</p>'
        )
    parts.append('<div class="grid">' + "".join(svg.render(c) for c in charts) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def _verdict_text(verdict: Mapping[str, Any]) -> str:
    unit = verdict.get("unit")

    def shown(value: Any) -> str:
        if value is None:
            return "-"
        if unit == "ms":
            return _ms(value)
        return f"{value:.2%}" if unit == "rate" else str(value)

    text = f"{verdict['budget']}: measured {shown(verdict.get('measured'))}"
    if verdict.get("lower") is not None and verdict.get("upper") is not None:
        text += f", bounds [{shown(verdict['lower'])}, {shown(verdict['upper'])}]"
    n = verdict.get("n", verdict.get("samples"))
    text += f", budget {shown(verdict.get('limit'))} (n={n}"
    if verdict.get("needed_n"):
        text += f", needs about {verdict['needed_n']:,}"
    text += ")"
    extra = verdict.get("advice") or verdict.get("note")
    return text + (f"; {extra}" if extra else "")


def render_html(
    records: Sequence[Record],
    baseline: Sequence[Record] | None = None,
    comparisons: Sequence[Comparison] | None = None,
    title: str = "pytest-lambda-slo report",
) -> str:
    """The whole page as text."""
    if baseline is not None and comparisons is None:
        comparisons = compare_runs(baseline, records)
    by_key = {(c.test_id, c.index): c for c in comparisons} if comparisons is not None else None
    base_runs = dict(keyed(baseline)) if baseline is not None else {}
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    runs = keyed(records)
    states = [{state_of(v) for v in run.get("verdicts") or []} for _, run in runs]
    failed = sum(1 for found in states if "FAIL" in found)
    unsure = sum(1 for found in states if "FAIL" not in found and found - {"PASS"})
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">{len(runs)} load runs, {failed} with a broken budget, {unsure} '
        f"inconclusive; written {created}</p>",
        _summary(records, by_key),
    ]
    body += [
        _section(key, run, base_runs.get(key), by_key.get(key) if by_key else None)
        for key, run in runs
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_PAGE_STYLE}{svg.STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_html(
    path: str,
    records: Sequence[Record],
    baseline: Sequence[Record] | None = None,
    comparisons: Sequence[Comparison] | None = None,
) -> str:
    """Write the report for ``records`` (and a baseline's overlay); return the path."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_html(records, baseline, comparisons))
    return path
