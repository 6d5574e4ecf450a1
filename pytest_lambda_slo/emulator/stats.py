"""Server-side truth per function: counters, a bounded per-second series and HDR histograms."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .histogram import Histogram

# Histogram range: 1 us to 15 minutes (Lambda's maximum timeout) plus headroom.
HIGHEST_US = 1_000_000_000
# Per-second buckets kept: one hour. Older seconds are dropped, so memory stays bounded.
SERIES_SECONDS = 3600


class FunctionStats:
    """Counters, a per-second time series and three histograms for one function."""

    __slots__ = (
        "_bucket",
        "_sec",
        "_series",
        "cold_starts",
        "duration",
        "errors",
        "init",
        "invocations",
        "latency",
        "peak_concurrency",
        "proactive_inits",
        "responses",
        "stage_throttles",
        "t0",
        "throttles",
        "wall0",
    )

    def __init__(self, t0: float, wall0: float) -> None:
        self.t0 = t0
        self.wall0 = wall0
        self.invocations = 0
        self.cold_starts = 0
        self.proactive_inits = 0
        self.throttles: dict[str, int] = {}
        self.stage_throttles = 0
        self.errors = {"Handled": 0, "Unhandled": 0}
        self.peak_concurrency = 0
        self.responses: dict[int, int] = {}
        self.duration = Histogram(HIGHEST_US)
        self.init = Histogram(HIGHEST_US)
        self.latency = Histogram(HIGHEST_US)
        # bucket = [second, invocations, throttles, cold_starts, concurrency_peak]
        self._series: deque[list[int]] = deque(maxlen=SERIES_SECONDS)
        self._sec = -1
        self._bucket: list[int] = [0, 0, 0, 0, 0]

    def bucket(self, now: float, concurrency: int) -> list[int]:
        """The bucket of the current second (rolled forward, gaps filled, when it changes)."""
        sec = int(now - self.t0)
        if sec != self._sec:
            self._roll(sec, concurrency)
        return self._bucket

    def _roll(self, sec: int, concurrency: int) -> None:
        series = self._series
        if self._sec >= 0:
            # Seconds without events still had `concurrency` executions running.
            first_gap = self._sec + 1
            for gap in range(max(first_gap, sec - SERIES_SECONDS), sec):
                series.append([gap, 0, 0, 0, concurrency])
        self._sec = sec
        self._bucket = [sec, 0, 0, 0, concurrency]
        series.append(self._bucket)

    def to_dict(self, concurrency: int, environments: int, extra: dict[str, Any]) -> dict:
        series = list(self._series)
        throttles = dict(sorted(self.throttles.items()))
        total = sum(throttles.values())
        return {
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "proactive_inits": self.proactive_inits,
            "throttles": {"total": total, "by_reason": throttles},
            "stage_throttles": self.stage_throttles,
            "errors": dict(self.errors),
            "concurrency": concurrency,
            "peak_concurrency": self.peak_concurrency,
            "environments_alive": environments,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            **extra,
            "timeseries": {
                "interval_s": 1,
                "start_unix": self.wall0,
                "second": [b[0] for b in series],
                "invocations": [b[1] for b in series],
                "throttles": [b[2] for b in series],
                "cold_starts": [b[3] for b in series],
                "concurrency_peak": [b[4] for b in series],
            },
            "histograms": {
                "unit": "us",
                "duration": _hist(self.duration),
                "init": _hist(self.init),
                "latency": _hist(self.latency),
            },
        }


def _hist(histogram: Histogram) -> dict[str, Any]:
    count = histogram.count
    return {
        "count": count,
        "overflows": histogram.overflows,
        "highest_us": histogram.highest_us,
        "p50": histogram.percentile_us(50.0),
        "p99": histogram.percentile_us(99.0),
        "max": histogram.max_us(),
        "encoded": histogram.encode() if count else "",
    }


def new_stats(t0: float) -> FunctionStats:
    """Fresh stats whose second 0 is ``t0`` (monotonic clock)."""
    return FunctionStats(t0, time.time() - (time.monotonic() - t0))
