"""Runs in one process leave nothing behind: what a run made can be freed after it."""

from __future__ import annotations

import gc

from pytest_lambda_slo import Burst, Emulator, run
from pytest_lambda_slo._load.engine import Engine, QuietGC


def _live_engines() -> int:
    return sum(isinstance(obj, Engine) for obj in gc.get_objects())


def test_many_runs_leave_only_collectable_garbage() -> None:
    with Emulator(functions=["f:duration=1ms,init=0ms"]) as emu:
        gc.collect()
        before = _live_engines()
        for _ in range(6):
            run(emu.function_url("f"), Burst(requests=20, concurrency=4))
        gc.collect()
        assert _live_engines() == before


def test_a_run_freezes_nothing() -> None:
    # A freeze (gc.freeze) at every run's start also froze the cycles earlier runs left:
    # they were never collected (about 1.7 MB per run in a long process).
    QuietGC.enter()
    try:
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold()[0] >= 700
    finally:
        QuietGC.exit()
