"""A cross-process lock per target, so two load tests never fire at one function at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator

from .._targets.base import Target
from ..errors import ConfigError

_HELD_HERE: set[str] = set()


def _lock_key(target: Target) -> str:
    info = target.shape_info()
    key = info.get("lock_key") or info.get("url") or target.describe()
    return hashlib.sha256(str(key).encode()).hexdigest()[:24]


@contextlib.contextmanager
def target_lock(target: Target) -> Iterator[float]:
    """Hold an exclusive, cross-process lock for this target while load is fired at it.

    Under pytest-xdist two workers must never load the same function at once: they would
    share its concurrency and spoil each other's numbers. Yields the seconds spent waiting.
    """
    key = _lock_key(target)
    if key in _HELD_HERE:
        raise ConfigError(
            f"{target.describe()} is already under load from this process; two loads at one "
            "target at once share its concurrency and spoil both results: run them one by one"
        )
    directory = os.path.join(tempfile.gettempdir(), "pytest-lambda-slo-locks")
    os.makedirs(directory, exist_ok=True)
    started = time.monotonic()
    _HELD_HERE.add(key)
    try:
        with open(os.path.join(directory, key + ".lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield time.monotonic() - started
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        _HELD_HERE.discard(key)
