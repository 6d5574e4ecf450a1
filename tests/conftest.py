"""Shared fixtures: one emulator for the plugin tests (loopback only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_lambda_slo.emulator import Emulator

# Functions the plugin tests fire at: fast and warm, cold-start marked, and throttling.
PLUGIN_FUNCTIONS = (
    "fast:duration=2ms,init=30ms,cold_header=true",
    "slow:duration=60ms,init=0ms",
    "tight:duration=20ms,init=0ms,reserved=2",
)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(functions=list(PLUGIN_FUNCTIONS)) as emu:
        yield emu


@pytest.fixture
def fresh_emulator(emulator: Emulator) -> Emulator:
    """The shared emulator with its statistics cleared and every environment retired."""
    emulator.reset(environments=True)
    return emulator


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variables: the engine honours them, and a test's loopback must stay direct."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
