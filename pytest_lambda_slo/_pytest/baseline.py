"""Saved baselines: ``--lambda-slo-save``/``--lambda-slo-autosave`` and ``--lambda-slo-compare``.

pytest-benchmark's vocabulary and layout, which users know: every saved session is one
file ``NNNN_NAME.json`` in the storage directory (``.lambda_slo/`` under the rootdir, ini
``lambda_slo_storage``), numbered in order; autosave names it ``NNNN_<commit>_<date>``.
A file is the results document ``--lambda-slo-json`` writes, plus a ``saved`` header
(name, date, git commit, Python, plugin version, machine) and each run's target
``fingerprint``, so a later session can say what it is compared with.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .._report.compare import Threshold, compare_runs, fingerprint
from .._report.document import (
    Record,
    ResultsFileError,
    as_records,
    load_document,
    new_document,
    records_of,
    write_document,
)
from .._results.result import BurstResult
from ..errors import ConfigError

DEFAULT_STORAGE = ".lambda_slo"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SAVED_RE = re.compile(r"^(\d{4,})_(.+)\.json$")
NAME_FORMS = "letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. base)"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(f"--lambda-slo-save={name!r} is not valid; use {NAME_FORMS}")
    return name


def storage_dir(rootpath: Path, setting: str) -> Path:
    """The storage directory: ``setting`` (ini lambda_slo_storage) relative to the rootdir."""
    path = Path(os.path.expanduser(setting or DEFAULT_STORAGE))
    return path if path.is_absolute() else rootpath / path


def git_commit(cwd: Path) -> str | None:
    """``git rev-parse HEAD`` in ``cwd``, or None outside a repository (or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,64}", commit) else None


def plugin_version() -> str | None:
    try:
        return metadata.version("pytest-lambda-slo")
    except metadata.PackageNotFoundError:
        return None


def saved_files(storage: Path) -> list[tuple[int, str, Path]]:
    """``(number, name, path)`` of every saved file, oldest first."""
    if not storage.is_dir():
        return []
    found = []
    for entry in storage.iterdir():
        match = _SAVED_RE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), match.group(2), entry))
    return sorted(found)


def next_path(storage: Path, name: str | None, commit: str | None, now: _dt.datetime) -> Path:
    """Where the next save goes: ``NNNN_NAME.json``, or ``NNNN_<commit>_<date>.json``."""
    files = saved_files(storage)
    number = (files[-1][0] + 1) if files else 1
    if name is None:
        name = f"{(commit or 'unversioned')[:12]}_{now.strftime('%Y%m%d_%H%M%S')}"
    return storage / f"{number:04d}_{name}.json"


def save(
    storage: Path,
    records: Sequence[Record],
    *,
    name: str | None,
    commit: str | None,
    interrupted: bool,
) -> Path:
    """Write the session's runs as the next saved baseline; return its path."""
    now = _dt.datetime.now(_dt.timezone.utc)
    path = next_path(storage, name, commit, now)
    header = {
        "name": path.stem.split("_", 1)[1],
        "date": now.isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "plugin_version": plugin_version(),
        "node": platform.node(),
        "interrupted": interrupted,  # a Ctrl-C'd session keeps what it measured
    }
    document = new_document(records, saved=header)
    for run in document["bursts"]:
        run["fingerprint"] = fingerprint(run)
    write_document(str(path), document)
    return path


def resolve(storage: Path, spec: str) -> Path:
    """The file ``--lambda-slo-compare=spec`` means: '' the latest saved, a number, a
    saved name (its latest save), or a path."""
    files = saved_files(storage)
    if spec == "":
        if not files:
            raise ConfigError(
                f"--lambda-slo-compare: nothing is saved in {storage} yet; save a baseline "
                "first with --lambda-slo-save=NAME or --lambda-slo-autosave"
            )
        return files[-1][2]
    candidate = Path(os.path.expanduser(spec))
    if candidate.is_file():
        return candidate
    if spec.isdigit():
        matches = [path for number, _, path in files if number == int(spec)]
    else:
        matches = [path for _, name, path in files if name == spec]
    if matches:
        return matches[-1]
    known = ", ".join(path.stem for _, _, path in files[-5:]) or "none"
    raise ConfigError(
        f"--lambda-slo-compare={spec!r} matches no file and no saved baseline in {storage} "
        f"(latest saved: {known}); use a saved NAME, its number, or a results file's path"
    )


def load(path: Path) -> tuple[list[Record], dict[str, Any]]:
    """A saved (or any results) file's records and its ``saved`` header; one-line errors."""
    try:
        document = load_document(str(path))
    except ResultsFileError as exc:
        raise ConfigError(f"--lambda-slo-compare: {exc}") from None
    header = document.get("saved") or {}
    return records_of(document), header if isinstance(header, dict) else {}


class DeployedDetails:
    """Adds the deployed function's CodeSha256, memory and architectures to an Invoke API
    run's target_info: one GetFunctionConfiguration call per function and session, the
    call force_cold already makes, and only where a baseline is saved or compared."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}

    def __call__(self, target: Any) -> dict[str, Any]:
        info = target.shape_info()
        if info.get("kind") != "lambda_invoke" or not hasattr(target, "client"):
            return {}
        key = str(info.get("lock_key") or info.get("function"))
        if key not in self._cache:
            self._cache[key] = self._read(target, info)
        return self._cache[key]

    @staticmethod
    def _read(target: Any, info: dict[str, Any]) -> dict[str, Any]:
        args = {"FunctionName": info["function"]}
        if info.get("qualifier"):
            args["Qualifier"] = info["qualifier"]
        try:
            config = target.client(read_timeout=10.0).get_function_configuration(**args)
        except Exception as exc:  # best effort: a role without the permission still runs
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return {"deployed_unknown": code or type(exc).__name__}
        return {
            "function_arn": config.get("FunctionArn"),
            "code_sha256": config.get("CodeSha256"),
            "memory_mb": config.get("MemorySize"),
            "architectures": config.get("Architectures"),
        }


def regressions(
    test_id: str,
    results: Sequence[BurstResult],
    base: Sequence[Record],
    thresholds: Sequence[Threshold],
    baseline_name: str,
) -> str | None:
    """The failure message of a test whose runs regressed past a threshold, else None.

    Judged in the test's call phase, so a regression is a FAILED test with the figures.
    """
    own = [record for record in base if record[0] == test_id]
    if not own:
        return None  # a new test: nothing to regress from (the summary lists it)
    comparisons = compare_runs(own, as_records((test_id, r) for r in results), thresholds)
    failed = [c for c in comparisons if c.failed]
    if not failed:
        return None
    lines = [f"regressed against the baseline {baseline_name}:"]
    for comparison in failed:
        label = "" if comparison.index == 0 else f" (run {comparison.index + 1})"
        lines.extend(f"  {failure}{label}" for failure in comparison.failures)
        if comparison.note:
            lines.append(f"  {comparison.note}")
    return "\n".join(lines)
