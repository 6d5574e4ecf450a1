"""Child processes (the emulator, engine workers): stop and reap them, leaving no pipe open."""

from __future__ import annotations

import subprocess
from typing import Any


def reap(proc: subprocess.Popen[Any], *, grace_s: float) -> None:
    """Terminate ``proc`` if it still runs, kill it after ``grace_s``, reap it, close stdout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
