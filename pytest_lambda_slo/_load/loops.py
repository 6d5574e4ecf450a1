"""Event loops for the engine: uvloop when importable, and a sampler of the loop's own lag."""

from __future__ import annotations

import asyncio
import os
import time

from .._results.recorder import Histogram

# Imported with this module (the engine's, never the plugin's import), not inside the
# run: importing uvloop costs about 7 ms of CPU, which a first run would otherwise pay.
try:
    import uvloop
except ImportError:  # no wheel for this platform: the standard loop
    uvloop = None  # type: ignore[assignment]

# Set to "asyncio" to run the engine on the standard loop even when uvloop is installed.
LOOP_ENV = "LAMBDA_SLO_EVENT_LOOP"


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """A fresh event loop and its name ("uvloop" or "asyncio")."""
    if uvloop is not None and os.environ.get(LOOP_ENV, "").strip().lower() != "asyncio":
        return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


class LagSampler:
    """Measures how late the loop wakes a timer: a busy (saturated) loop wakes it late.

    Every ``interval`` seconds it records (actual - intended) wake time, in microseconds,
    into a histogram, so memory stays flat however long the run is.
    """

    def __init__(self, interval: float = 0.05, highest_us: int = 60_000_000) -> None:
        self.interval = interval
        self.histogram = Histogram(highest_us)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval_ns = int(self.interval * 1e9)
        record = self.histogram.record
        while True:
            intended = time.perf_counter_ns() + interval_ns
            await asyncio.sleep(self.interval)
            record(max(0, time.perf_counter_ns() - intended) // 1000)

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        self._task = None
        task.cancel()
        # asyncio.wait never raises the task's CancelledError, so an outer cancellation
        # of the caller still propagates.
        await asyncio.wait([task])

    @property
    def max_ms(self) -> float:
        value = self.histogram.max_us()
        return 0.0 if value is None else value / 1000.0

    @property
    def p99_ms(self) -> float:
        value = self.histogram.percentile_us(99.0)
        return 0.0 if value is None else value / 1000.0
