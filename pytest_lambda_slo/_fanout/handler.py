"""The generator function's Lambda handler (``pytest_lambda_slo._fanout.handler.handler``).

The event names an operation. ``{"op": "probe"}`` answers with this environment's wall
clock (for agreeing on a start instant on Lambda's clock), its file-descriptor limit, CPU,
Python and the build it runs; it imports the compiled distributions a shard needs, so a
probe proves the zip loads on the function's architecture. An unknown operation raises,
which Lambda reports as a function error (``X-Amz-Function-Error``), never a silent no-op.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

from .contents import COMPILED_MODULES, ENGINE_DISTRIBUTIONS, MANIFEST

OPERATIONS = ("probe",)


def handler(event: Any, context: Any) -> dict[str, Any]:
    received_ns = time.time_ns()
    op = event.get("op") if isinstance(event, dict) else None
    if op == "probe":
        return probe(received_ns, context)
    raise ValueError(f"unknown operation {op!r}; this generator knows: {', '.join(OPERATIONS)}")


def probe(received_ns: int, context: Any) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    loaded = {}
    for distribution in ENGINE_DISTRIBUTIONS:
        module = importlib.import_module(COMPILED_MODULES[distribution])
        loaded[distribution] = str(getattr(module, "__file__", ""))
    return {
        "op": "probe",
        "received_ns": received_ns,
        "replied_ns": time.time_ns(),
        "fd_limit": [soft, hard],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_mb": _memory(context),
        "build": _manifest(),
        "compiled_modules": loaded,
    }


def _memory(context: Any) -> int | None:
    value = getattr(context, "memory_limit_in_mb", None)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _manifest() -> dict[str, Any]:
    # The zip's root is on sys.path (Lambda's task root); the manifest sits there.
    path = Path(__file__).resolve().parents[2] / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
