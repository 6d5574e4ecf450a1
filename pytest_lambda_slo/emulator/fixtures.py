"""The ``lambda_emulator`` pytest fixture: a factory that starts emulators and stops them all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .config import FunctionConfig
from .runner import Emulator


@pytest.fixture
def lambda_emulator() -> Iterator[Callable[..., Emulator]]:
    """``emu = lambda_emulator("hello:duration=20ms", account_concurrency=100)``."""
    started: list[Emulator] = []

    def factory(*functions: str | FunctionConfig, **options: Any) -> Emulator:
        emulator = Emulator(functions or ("hello",), **options)
        started.append(emulator)
        return emulator.start()

    yield factory
    for emulator in started:
        emulator.stop()
