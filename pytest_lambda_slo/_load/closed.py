"""The closed model (a burst, like ``hey -n -c``): each slot sends again on every response."""

from __future__ import annotations

import asyncio
import time

from .engine import Engine, Slot, cancel_all
from .shapes import Slice

perf_counter_ns = time.perf_counter_ns


class ClosedEngine(Engine[Slice]):
    """``concurrency`` slots, each sending back-to-back until the requests or duration run out."""

    KIND = "burst"

    _remaining: int | None = None  # requests left to claim (None: bounded by time only)

    def _claim(self) -> bool:
        """Take the next request to send, if the burst has one left."""
        if self._end_ns is not None and perf_counter_ns() >= self._end_ns:
            return False
        if self._remaining is not None and self._remaining <= 0:
            return False
        if not self.take():
            return False
        if self._remaining is not None:
            self._remaining -= 1
        return True

    async def _worker(self, slot: Slot) -> None:
        while self._claim():
            await self.send_one(slot)

    async def drive(self) -> None:
        self._remaining = self.part.requests
        tasks = [asyncio.get_running_loop().create_task(self._worker(s)) for s in self.slots]
        try:
            await self._wait(tasks, self._deadline_at)
        finally:
            await cancel_all(tasks)
