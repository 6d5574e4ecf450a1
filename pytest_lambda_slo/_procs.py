"""Child processes (the emulator, engine workers): stop and reap them, leaving no pipe open."""

from __future__ import annotations

import subprocess
from typing import Any


def reap(proc: subprocess.Popen[Any], *, grace_s: float) -> None:
    """Terminate ``proc`` if it still runs, kill it after ``grace_s``, reap it, close its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass  # a broken pipe to a child that is gone: nothing left to flush
