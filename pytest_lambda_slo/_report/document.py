"""Reading and writing results files: one format check, one-line errors that name the file.

A results file is what ``--lambda-slo-json`` writes: ``{"format": "pytest-lambda-slo/1",
"created", "machine", "bursts": [run, ...]}`` where each run is ``BurstResult.to_dict()``
plus its ``test_id``. A "record" here is ``(test_id, run dict)``; the plugin's own
``(test_id, BurstResult)`` pairs are turned into records by :func:`as_records`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._results.result import BurstResult
from ..errors import ConfigError
from .terminal import machine_info

FORMAT_NAME = "pytest-lambda-slo"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"

Record = tuple[str, dict[str, Any]]
RunKey = tuple[str, int]  # (test id, index of the run among that test's runs)


class ResultsFileError(ConfigError):
    """A results file cannot be used: unreadable, not JSON, not ours, or a newer format."""


def check_format(data: object, source: str) -> dict[str, Any]:
    """Return ``data`` as a results document, or raise naming ``source`` and the problem."""
    if not isinstance(data, dict) or not isinstance(data.get("bursts"), list):
        raise ResultsFileError(
            f"{source}: not a pytest-lambda-slo results file (expected a JSON object with "
            f"'format': {FORMAT!r} and a 'bursts' list, as --lambda-slo-json writes)"
        )
    fmt = data.get("format")
    name, _, version = str(fmt).partition("/")
    if name != FORMAT_NAME or not version.isdigit():
        raise ResultsFileError(f"{source}: unknown format {fmt!r}; this version reads {FORMAT!r}")
    if int(version) > FORMAT_VERSION:
        raise ResultsFileError(
            f"{source}: format {fmt!r} is newer than this pytest-lambda-slo reads ({FORMAT!r}); "
            "upgrade pytest-lambda-slo to read it"
        )
    for index, run in enumerate(data["bursts"]):
        if not isinstance(run, dict) or not isinstance(run.get("test_id"), str):
            raise ResultsFileError(f"{source}: run {index} has no 'test_id'; the file is damaged")
        if not isinstance(run.get("measurements"), dict):
            raise ResultsFileError(
                f"{source}: run {index} ({run['test_id']}) has no 'measurements'; the file is "
                "damaged"
            )
    return data


def load_document(path: str) -> dict[str, Any]:
    """Read and check one results file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path}: not valid JSON ({exc})") from exc
    return check_format(data, path)


def records_of(document: Mapping[str, Any]) -> list[Record]:
    """The ``(test_id, run)`` records of a checked document, in file order."""
    return [(run["test_id"], run) for run in document["bursts"]]


def run_dict(run: BurstResult | Mapping[str, Any]) -> dict[str, Any]:
    """A run's JSON form, from a BurstResult or a run dict (returned as a plain dict)."""
    return run.to_dict() if isinstance(run, BurstResult) else dict(run)


def as_records(pairs: Iterable[tuple[str, BurstResult | Mapping[str, Any]]]) -> list[Record]:
    """``(test_id, BurstResult | run dict)`` pairs as records (run dicts carry ``test_id``)."""
    out = []
    for test_id, run in pairs:
        data = run_dict(run)
        data["test_id"] = test_id
        out.append((test_id, data))
    return out


def keyed(records: Sequence[Record]) -> list[tuple[RunKey, dict[str, Any]]]:
    """Records keyed by (test id, n-th run of that test): a test may run several loads."""
    seen: dict[str, int] = {}
    out = []
    for test_id, run in records:
        index = seen.get(test_id, 0)
        seen[test_id] = index + 1
        out.append(((test_id, index), run))
    return out


def key_text(key: RunKey) -> str:
    test_id, index = key
    return test_id if index == 0 else f"{test_id} (run {index + 1})"


def new_document(records: Sequence[Record], **extra: Any) -> dict[str, Any]:
    """A results document for ``records``, with the header ``--lambda-slo-json`` writes."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    document.update(extra)
    document["bursts"] = [{**run, "test_id": test_id} for test_id, run in records]
    return document


def write_document(path: str, document: Mapping[str, Any]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
