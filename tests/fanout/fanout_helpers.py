"""Helpers for the fan-out tests that are not fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from pytest_lambda_slo._fanout.package import RegistryUnreachable

T = TypeVar("T")


def from_registry(call: Callable[[], T]) -> T:
    """Run ``call``; an unreachable index skips the test, except under CI where it fails."""
    try:
        return call()
    except RegistryUnreachable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the package index is unreachable and CI is not set: {exc}")


@dataclass(frozen=True)
class Backend:
    """A Lambda API on loopback: its endpoint, a role it accepts, a boto3 client on it."""

    name: str
    endpoint: str
    role: str
    lam: Any
