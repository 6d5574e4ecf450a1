"""Parsing of Lambda's log tail: the REPORT line (text format) or platform.report (JSON format).

``X-Amz-Log-Result`` carries the base64 of the last 4 KB of an invocation's log. Its
last REPORT record says how long the handler ran, what was billed, the memory size and
peak, and, on the first invocation of a new execution environment, ``Init Duration``
(or ``Restore Duration`` for SnapStart). Figures come back in milliseconds (MB for
memory) under the keys of ``Outcome.server``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

# Text REPORT fields -> Outcome.server keys. "Billed Restore Duration" is not kept: billed
# already covers what the invocation was charged for the handler.
_TEXT_FIELDS = {
    "Duration": "duration",
    "Billed Duration": "billed",
    "Memory Size": "memory",
    "Max Memory Used": "max_memory",
    "Init Duration": "init",
    "Restore Duration": "restore",
}
_JSON_FIELDS = {
    "durationMs": "duration",
    "billedDurationMs": "billed",
    "memorySizeMB": "memory",
    "maxMemoryUsedMB": "max_memory",
    "initDurationMs": "init",
    "restoreDurationMs": "restore",
}
# Fields are tab separated: "\tDuration: 8.40 ms\tMemory Size: 128 MB". Anchoring on the tab
# keeps "Billed Restore Duration" from matching as "Restore Duration". One regex pass per
# line: this runs once per response on the engine's hot path.
_FIELD_RE = re.compile(
    r"\t(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration|Restore Duration)"
    r": *([0-9]+(?:\.[0-9]+)?) *(?:ms|MB)\b"
)


def decode_log_result(value: str | bytes | None) -> str | None:
    """The text of an ``X-Amz-Log-Result`` header, or None when it is missing or not base64."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace")


def parse_log_tail(text: str | None) -> dict[str, float] | None:
    """Server figures from the last REPORT record of a log tail, or None when there is none.

    Both log formats are understood: the text REPORT line and the JSON ``platform.report``
    record. The tail is cut at 4 KB, so a partial first line is expected and ignored.
    """
    if not text:
        return None
    # Fast path: the REPORT line is the last line of a text-format tail.
    at = text.rfind("REPORT RequestId:")
    if at >= 0 and (at == 0 or text[at - 1] == "\n"):
        end = text.find("\n", at)
        figures = _parse_text_report(text[at:] if end < 0 else text[at:end])
        if figures:
            return figures
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith("REPORT "):
            figures = _parse_text_report(stripped)
        elif stripped.startswith("{") and "platform.report" in stripped:
            figures = _parse_json_report(stripped)
        else:
            continue
        if figures:
            return figures
    return None


def parse_log_result(value: str | bytes | None) -> dict[str, float] | None:
    """Decode an ``X-Amz-Log-Result`` header and parse its REPORT record (None if absent)."""
    return parse_log_tail(decode_log_result(value))


def _parse_text_report(line: str) -> dict[str, float]:
    fields = _TEXT_FIELDS
    return {fields[name]: float(number) for name, number in _FIELD_RE.findall(line)}


def _parse_json_report(line: str) -> dict[str, float]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    if not isinstance(record, dict) or record.get("type") != "platform.report":
        return {}
    body = record.get("record")
    metrics = body.get("metrics") if isinstance(body, dict) else None
    if not isinstance(metrics, dict):
        return {}
    figures: dict[str, float] = {}
    for name, key in _JSON_FIELDS.items():
        value = metrics.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value) and value >= 0:
                figures[key] = float(value)
    return figures
