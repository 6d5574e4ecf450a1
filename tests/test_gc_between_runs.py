"""Runs in one process leave nothing behind: what a run made is freed before the next one."""

from __future__ import annotations

import gc

from pytest_lambda_slo import Burst, Emulator, run
from pytest_lambda_slo._load.engine import Engine


def _live_engines() -> int:
    return sum(isinstance(obj, Engine) for obj in gc.get_objects())


def test_many_runs_keep_no_engine_alive() -> None:
    # A run freezes the objects that exist when it starts (so the collector skips them
    # during the load); an engine's reference cycles from the run before must be collected
    # first, or every run's garbage would be frozen again and kept for ever.
    with Emulator(functions=["f:duration=1ms,init=0ms"]) as emu:
        gc.collect()
        before = _live_engines()
        for _ in range(6):
            run(emu.function_url("f"), Burst(requests=20, concurrency=4))
        assert _live_engines() - before <= 1  # at most the last run's, not yet collected
