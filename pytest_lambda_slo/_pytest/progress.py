"""The progress line: one line, updated in place, while a long load run is in flight.

Why a thread. A workers=1 run's engine runs its event loop in the caller's thread (sync
tests) or in a thread of its own (async tests), so nothing else runs in the caller's thread
until it returns. The reader is a daemon thread that sleeps ``INTERVAL_S``, then reads the
engine's live counters (plain ints, read under the GIL) and copies of its intervals'
latency buckets (one dict copy each, atomic under the GIL). It never calls into the engine
or its loop and records nothing, so what the engine measures does not change; its cost is
its share of the GIL, measured in docs/reports.md.

Runs fanned out over worker processes keep their counters in those processes until the
end, so their line shows the elapsed time only.

It writes to a duplicate of the terminal's file descriptor taken before any test ran, so
pytest's output capturing (which redirects fd 1 during a test) does not swallow it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

INTERVAL_S = 0.5  # how often the line is redrawn
SHOW_AFTER_S = 2.0  # runs shorter than this never show a line
PLAIN_EVERY_S = 5.0  # without a terminal (forced on): one plain line this often
CLEAR = "\x1b[K"


def wanted(forced: bool, isatty: bool, environ: dict[str, str] | os._Environ[str]) -> bool:
    """On a terminal outside CI, or when forced with --lambda-slo-progress."""
    return forced or (isatty and not environ.get("CI"))


def percentile_of(buckets: Counter[int], q: float) -> int | None:
    """The bucket value at percentile ``q`` (0-100) of ``buckets`` (value -> count)."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = max(1, -(-total * q // 100))  # ceil(total * q / 100)
    seen = 0
    for value in sorted(buckets):
        seen += buckets[value]
        if seen >= rank:
            return value
    return max(buckets)


def _ms(value_us: int | None) -> str:
    if value_us is None:
        return "-"
    if value_us >= 10_000_000:
        return f"{value_us / 1e6:.1f}s"
    if value_us >= 1_000_000:
        return f"{value_us / 1e6:.2f}s"
    return f"{value_us / 1000:.0f}ms" if value_us >= 100_000 else f"{value_us / 1000:.1f}ms"


class Reader:
    """Turns a live engine's counters into the progress line's figures (no side effects)."""

    def __init__(self) -> None:
        self._closed: Counter[int] = Counter()  # latencies of intervals that are complete
        self._closed_upto = 0
        self._interval_s = 0.0
        self._last_count = 0
        self._last_at = time.monotonic()  # the first rate is the one since the start

    def _p99_us(self, timeseries: Any) -> int | None:
        if timeseries.interval_s != self._interval_s:  # coarsened: neighbours were merged
            self._closed, self._closed_upto = Counter(), 0
            self._interval_s = timeseries.interval_s
        length = len(timeseries)
        # The last two intervals may still receive completions: read them afresh each time.
        done = max(length - 2, 0)
        try:
            for i in range(self._closed_upto, done):
                self._closed.update(timeseries.latency_buckets(i))
            self._closed_upto = max(done, self._closed_upto)
            live = Counter(self._closed)
            for i in range(done, length):
                live.update(timeseries.latency_buckets(i))
        except IndexError:  # coarsened while reading: start over next time
            self._interval_s = 0.0
            return None
        return percentile_of(live, 99.0)

    def line(self, elapsed_s: float, engine: Any | None, workers: int) -> str:
        head = f"lambda-slo {elapsed_s:.1f}s"
        if engine is None:
            return f"{head}  {workers} worker processes: figures at the end"
        measurements = engine.measurements
        done, in_flight = measurements.count, engine.in_flight
        now = time.monotonic()
        rate = (done - self._last_count) / (now - self._last_at) if now > self._last_at else 0.0
        self._last_count, self._last_at = done, now
        p99 = self._p99_us(measurements.timeseries)
        return (
            f"{head} sent {done + in_flight:,} {rate:,.0f}/s in flight {in_flight:,} "
            f"p99 {_ms(p99)} throttled {measurements.throttles:,} errors {measurements.errors:,}"
        )


class ProgressLine:
    """Draws the line for the runs of one session: ``watch(test_id, workers)`` per run."""

    def __init__(
        self,
        stream: IO[str],
        *,
        isatty: bool,
        width: Callable[[], int],
        column: Callable[[], int],
        interval_s: float = INTERVAL_S,
        show_after_s: float = SHOW_AFTER_S,
    ) -> None:
        self.stream = stream
        self.isatty = isatty
        self._width = width
        self._column = column  # where the terminal's cursor is (pytest's current line)
        self.interval_s = interval_s
        self.show_after_s = show_after_s

    @contextlib.contextmanager
    def watch(self, test_id: str, workers: int) -> Iterator[list[Any]]:
        engines: list[Any] = []  # the engine puts itself here when it starts (workers=1)
        stop = threading.Event()
        column = self._column()
        shown = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(engines, workers, stop, shown),
            name="lambda-slo-progress",
            daemon=True,
        )
        thread.start()
        try:
            yield engines
        finally:
            stop.set()
            thread.join(timeout=2.0)
            if shown.is_set() and self.isatty:
                # Clear the line and put the cursor back at the end of pytest's own line.
                back = f"\x1b[{column}C" if column else ""
                self._write(f"\r{CLEAR}\x1b[1A\r{back}")

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()

    def _run(
        self, engines: list[Any], workers: int, stop: threading.Event, shown: threading.Event
    ) -> None:
        started = time.monotonic()
        reader = Reader()
        if stop.wait(self.show_after_s):
            return
        last_plain = -PLAIN_EVERY_S
        while not stop.is_set():
            elapsed = time.monotonic() - started
            engine = engines[0] if engines else None
            text = reader.line(elapsed, engine, workers)
            if self.isatty:
                width = max(self._width() - 1, 20)
                if not shown.is_set():
                    self._write("\n")  # a line of its own, below pytest's
                    shown.set()
                self._write(f"\r{text[:width]}{CLEAR}")
            elif elapsed - last_plain >= PLAIN_EVERY_S:
                shown.set()
                last_plain = elapsed
                self._write(text + "\n")
            stop.wait(self.interval_s)


def open_terminal(fd: int) -> IO[str] | None:
    """A text stream on a duplicate of ``fd`` (the terminal before capturing), or None."""
    try:
        return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    except OSError:
        return None
