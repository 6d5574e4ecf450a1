"""HdrHistogram interval logs (``.hlog``), one per load run, from its per-interval histograms.

The standard log format of HdrHistogram (version 1.2), readable by ``hdrh``'s
``HistogramLogReader``, by HdrHistogram's ``HistogramLogProcessor`` and by the plotters
built on it. Written with ``hdrh``'s ``HistogramLogWriter``, except the ``#[StartTime]``
line: ``hdrh`` 0.10.8 fails on it (``datetime.iso_format`` does not exist), so it is
written as a comment in the same form.

Units. Recorded values are MICROSECONDS (the recorder's unit). Interval start times are
seconds relative to ``#[BaseTime]`` (the run's release instant, seconds since the epoch);
interval lengths are seconds. The ``Interval_Max`` column is the interval's maximum
divided by 1000, so it reads in milliseconds; ``hdrh``'s writer uses floor division, so it
shows whole milliseconds (the histogram itself keeps full precision). The Java
``HistogramLogProcessor`` divides values by ``-outputValueUnitRatio``, whose default
1000000.0 assumes nanoseconds: pass ``-outputValueUnitRatio 1000`` to read these logs in
milliseconds.

Each interval holds the served (not throttled) requests that completed in it. A run
without per-interval data gets one interval: its whole served histogram over its duration.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

from . import hdr
from .document import Record, key_text, keyed

MAX_VALUE_UNIT_RATIO = 1000.0  # microseconds -> milliseconds in the Interval_Max column
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def hlog_name(test_id: str, index: int) -> str:
    """A file name for a run: the test id made safe, short, and unique by a hash suffix."""
    label = key_text((test_id, index))
    stem = _UNSAFE.sub("_", label).strip("_")[:100] or "run"
    digest = hashlib.sha1(label.encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}.hlog"


def _intervals(run: Mapping[str, Any]) -> tuple[float, list[tuple[float, float, HdrHistogram]]]:
    """(release epoch s, [(start offset s, length s, histogram)]) of one run."""
    block = run.get("timeseries") or (run.get("measurements") or {}).get("timeseries")
    if block and block.get("histograms"):
        interval = float(block["interval_s"])
        offsets = block.get("t_s") or [i * interval for i in range(len(block["histograms"]))]
        return float(block.get("start_epoch_s", 0.0)), [
            (float(t), interval, hdr.add_all([encoded]))
            for t, encoded in zip(offsets, block["histograms"], strict=True)
        ]
    histograms = (run.get("measurements") or {}).get("histograms") or {}
    whole = hdr.add_all([(histograms.get("all") or {}).get("hdr")])
    throttled = hdr.add_all([(histograms.get("throttled") or {}).get("hdr")])
    info = run.get("run") or {}
    length = float(info.get("duration_s") or run.get("duration_s") or 0.0)
    return float(info.get("started_at") or 0.0), [(0.0, length, hdr.difference(whole, throttled))]


def write_hlog(path: str, test_id: str, run: Mapping[str, Any]) -> int:
    """Write one run's interval log; return the number of samples written."""
    base_s, intervals = _intervals(run)
    base_ms = base_s * 1000.0
    total = 0
    with open(path, "w", encoding="utf-8") as handle:
        writer = HistogramLogWriter(handle)
        writer.output_log_format_version()
        writer.output_comment(f"[pytest-lambda-slo: {test_id} -> {run.get('target', '')}]")
        writer.output_comment(
            "[values in microseconds; Interval_Max in milliseconds (max / 1000, floored); "
            "read with HistogramLogProcessor -outputValueUnitRatio 1000]"
        )
        when = _dt.datetime.fromtimestamp(base_s, _dt.timezone.utc).isoformat(" ")
        writer.output_comment(f"[StartTime: {base_s:f} (seconds since epoch), {when}]")
        writer.output_base_time(base_ms)
        writer.base_time = base_ms
        writer.output_legend()
        for start_s, length_s, histogram in intervals:
            # Timestamps on the histogram, none passed: hdrh treats an explicit 0.0 as unset.
            histogram.set_start_time_stamp(base_ms + start_s * 1000.0)
            histogram.set_end_time_stamp(base_ms + (start_s + length_s) * 1000.0)
            writer.output_interval_histogram(histogram, max_value_unit_ratio=MAX_VALUE_UNIT_RATIO)
            total += int(histogram.get_total_count())
    return total


def write_hlogs(directory: str, records: Sequence[Record]) -> list[str]:
    """One ``.hlog`` per run under ``directory`` (created); return the paths written."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for (test_id, index), run in keyed(records):
        path = os.path.join(directory, hlog_name(test_id, index))
        write_hlog(path, test_id, run)
        paths.append(path)
    return paths
