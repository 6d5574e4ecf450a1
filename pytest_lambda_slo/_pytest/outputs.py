"""The plugin's side of the CI outputs: options, JUnit properties, the baseline gate, artifacts.

The hooks in plugin.py call these. Each load test gets JUnit properties (``record_property``)
in its call phase, where a baseline comparison with ``--lambda-slo-compare-fail`` also fails
it, like a broken budget. At session end (also after a failure or Ctrl-C) ``artifacts``
writes the HTML report, the ``.hlog`` files, the saved baseline and the GitHub job summary.

Light to import: the modules that need scipy and the HTML renderer (``baseline``,
``artifacts``) are imported only where a session asked for what they do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .._report.ci import junit_properties
from .._results.result import BurstResult
from ..errors import ConfigError
from .session import SessionState

if TYPE_CHECKING:  # compare.py needs scipy: imported only where a session compares
    from .._report.compare import Comparison, Threshold
    from .._report.document import Record

STORAGE_INI = "lambda_slo_storage"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass
class Outputs:
    """What this session writes and compares with (held in config.stash)."""

    html: str | None = None
    hlog: str | None = None
    save: str | None = None  # the name to save under; "" autosaves
    compare: str | None = None  # "" the latest saved, or a NAME, number or path
    threshold_texts: list[str] = field(default_factory=list)
    storage: Path = Path(".lambda_slo")
    rootpath: Path = Path(".")
    thresholds: list[Threshold] = field(default_factory=list)
    baseline: list[Record] | None = None
    baseline_path: str | None = None
    written: list[str] = field(default_factory=list)  # "what: path" lines for the summary
    errors: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def wanted(self) -> bool:
        """Anything beyond the light per-test properties: html, hlog, save or compare."""
        return bool(
            self.html or self.hlog or self.save is not None or self.compare is not None
        ) or bool(self.threshold_texts)


KEY = pytest.StashKey[Outputs]()


def read_options(config: pytest.Config) -> Outputs:
    """The output options, checked; ConfigError (a usage error) on bad ones."""
    save_name = config.getoption("lambda_slo_save")
    autosave = bool(config.getoption("lambda_slo_autosave"))
    if save_name is not None and autosave:
        raise ConfigError("--lambda-slo-save=NAME and --lambda-slo-autosave exclude each other")
    compare = config.getoption("lambda_slo_compare")
    thresholds = list(config.getoption("lambda_slo_compare_fail") or [])
    parsed: list[Threshold] = []
    if thresholds:
        from .._report.compare import parse_thresholds  # lazy import: start-up weight

        parsed = parse_thresholds(thresholds, name="--lambda-slo-compare-fail")
    if thresholds and compare is None:
        raise ConfigError(
            "--lambda-slo-compare-fail needs a baseline: add --lambda-slo-compare "
            "(the latest saved) or --lambda-slo-compare=NAME|PATH"
        )
    rootpath = Path(config.rootpath)
    storage = str(config.getini(STORAGE_INI) or "")
    outputs = Outputs(
        html=config.getoption("lambda_slo_html"),
        hlog=config.getoption("lambda_slo_hlog"),
        save="" if autosave else save_name,
        compare=compare,
        threshold_texts=thresholds,
        rootpath=rootpath,
        thresholds=parsed,
    )
    for option, path in (("--lambda-slo-html", outputs.html), ("--lambda-slo-hlog", outputs.hlog)):
        problem = path and _unwritable(path, directory=option == "--lambda-slo-hlog")
        if problem:
            raise ConfigError(
                f"{option}={path!r} cannot be written ({problem}); use a writable path"
            )
    if outputs.wanted and (outputs.save is not None or outputs.compare is not None):
        from . import baseline  # lazy import: start-up weight (scipy), only when asked for

        outputs.storage = baseline.storage_dir(rootpath, storage)
        if save_name is not None:
            baseline.check_name(save_name)
    return outputs


def configure(config: pytest.Config, state: SessionState) -> None:
    """Check the options, load the baseline (its errors are usage errors, before any test)."""
    outputs = read_options(config)
    config.stash[KEY] = outputs
    if outputs.save is None and outputs.compare is None:
        return
    from . import baseline  # lazy import: start-up weight (scipy), only when asked for

    # Saved and compared runs of the Invoke API carry the deployed code's CodeSha256.
    state.target_details = baseline.DeployedDetails()
    if outputs.compare is not None:
        path = baseline.resolve(outputs.storage, outputs.compare)
        outputs.baseline, _ = baseline.load(path)
        outputs.baseline_path = _shown(path, outputs.rootpath)


def _shown(path: Path, rootpath: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootpath.resolve()))
    except ValueError:
        return str(path)


def _unwritable(path: str, *, directory: bool) -> str | None:
    target = os.path.abspath(path)
    if os.path.isdir(target) and not directory:
        return "it is a directory"
    if os.path.exists(target) and directory and not os.path.isdir(target):
        return "it is a file, not a directory"
    parent = target if directory else os.path.dirname(target)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)  # missing directories are created later
    if not os.path.isdir(parent):
        return f"{parent!r} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent!r} is not writable"
    return None


def record_properties(item: pytest.Item, results: Sequence[BurstResult]) -> None:
    """JUnit properties of each run: ``lambda_slo.*`` (``lambda_slo.run2.*`` for the second)."""
    for index, result in enumerate(results):
        prefix = "lambda_slo" if index == 0 else f"lambda_slo.run{index + 1}"
        item.user_properties.extend(junit_properties(result.to_dict(), prefix))


def regression_message(item: pytest.Item, results: Sequence[BurstResult]) -> str | None:
    """With --lambda-slo-compare-fail: why the test's runs regressed against the baseline."""
    outputs = item.config.stash.get(KEY, None)
    if outputs is None or outputs.baseline is None or not outputs.thresholds:
        return None
    from . import baseline  # lazy import: start-up weight (scipy), only when asked for

    return baseline.regressions(
        item.nodeid, results, outputs.baseline, outputs.thresholds, str(outputs.baseline_path)
    )


def session_finish(
    config: pytest.Config, records: Sequence[tuple[str, BurstResult]], interrupted: bool
) -> None:
    """Write every artifact the session asked for; problems go to the summary, not raised."""
    outputs = config.stash.setdefault(KEY, Outputs())
    summary = os.environ.get(SUMMARY_ENV)
    if not records or not (outputs.wanted or summary):
        return
    from . import artifacts  # lazy import: start-up weight (the HTML renderer, scipy)

    artifacts.write_all(outputs, records, summary_path=summary, interrupted=interrupted)


def summary_lines(config: pytest.Config) -> tuple[list[str], list[str]]:
    """(comparison and "written" lines, error lines) for the terminal summary."""
    outputs = config.stash.get(KEY, None)
    if outputs is None:
        return [], []
    lines: list[str] = []
    if outputs.comparisons:
        from .._report.compare import render_comparisons  # lazy import: scipy, start-up weight

        lines.append(f"baseline: {outputs.baseline_path}")
        lines.extend(render_comparisons(outputs.comparisons))
    lines.extend(f"lambda-slo: {line}" for line in outputs.written)
    return lines, [f"lambda-slo: ERROR: {error}" for error in outputs.errors]
