"""The plugin's CI outputs: HTML, .hlog, baselines, JUnit properties, job summary, progress.

Light to import, like the plugin: the logic lives in outputs.py, artifacts.py, baseline.py
and progress.py, imported inside these functions (start-up weight: hdrh, scipy, the
renderer), which the plugin's hooks call.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

import pytest

from .session import SessionState

if TYPE_CHECKING:
    from .._results.result import RunResult

OUTPUT_OPTIONS = (
    "lambda_slo_html",
    "lambda_slo_hlog",
    "lambda_slo_save",
    "lambda_slo_autosave",
    "lambda_slo_compare",
    "lambda_slo_compare_fail",
)
PROGRESS_KEY = pytest.StashKey[Any]()


def add_options(group: Any, parser: pytest.Parser) -> None:
    """The output options and the storage ini key, in the plugin's option group."""
    group.addoption(
        "--lambda-slo-html",
        metavar="PATH",
        default=None,
        help="Write the session's HTML report (one self-contained file) to PATH. "
        "Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-hlog",
        metavar="DIR",
        default=None,
        help="Write one HdrHistogram interval log (.hlog) per load run into DIR. "
        "Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-save",
        metavar="NAME",
        default=None,
        help="Save the session's runs as baseline NAME (NNNN_NAME.json in the storage "
        "directory, ini lambda_slo_storage). Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-autosave",
        action="store_true",
        default=False,
        help="Save the session's runs as NNNN_<commit>_<date>. Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-compare",
        metavar="NAME|PATH",
        nargs="?",
        const="",
        default=None,
        help="Compare every run with the baseline's run of the same test: the latest saved "
        "when bare, else a saved NAME, its number or a results file. Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-compare-fail",
        metavar="METRIC:LIMIT",
        action="append",
        default=[],
        help="Fail a test whose runs are worse than the baseline's by more than LIMIT and "
        "significantly so: p99:10%%, p99:+50ms, error_rate:+1%%; may be repeated. "
        "Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-progress",
        action="store_true",
        default=False,
        help="Show the progress line of long runs even when not on a terminal or under CI "
        "(env CI). Default: %(default)r",
    )
    parser.addini(
        "lambda_slo_storage",
        help="Directory of saved baselines, relative to the rootdir. Default: .lambda_slo",
        default=".lambda_slo",
    )


def configure(config: pytest.Config, state: SessionState) -> None:
    """Check the output options (a ConfigError is a usage error); start the progress line."""
    # A bare --lambda-slo-compare is "" (the latest saved): set, though falsy.
    if any(config.getoption(name) not in (None, False, []) for name in OUTPUT_OPTIONS):
        from . import outputs  # lazy import: start-up weight

        outputs.configure(config, state)  # a ConfigError is the caller's usage error
    if hasattr(config, "workerinput"):
        return  # an xdist worker has no terminal
    from . import progress  # lazy import: stdlib only, not needed by a plain session

    stdout = sys.stdout
    isatty = bool(getattr(stdout, "isatty", lambda: False)())
    if not progress.wanted(config.getoption("lambda_slo_progress"), isatty, os.environ):
        return
    stream = progress.open_terminal(stdout.fileno())
    if stream is None:
        return
    line = progress.ProgressLine(
        stream,
        isatty=isatty,
        width=lambda: shutil.get_terminal_size().columns,
        column=lambda: config.get_terminal_writer().width_of_current_line,
    )
    config.stash[PROGRESS_KEY] = stream
    state.watch_run = line.watch


def call(item: pytest.Item, results: list[RunResult], *, judge: bool = True) -> str | None:
    """JUnit properties of the test's runs; with a baseline gate, why they regressed."""
    if not results:
        return None
    from . import outputs  # lazy import: start-up weight

    outputs.record_properties(item, results)
    return outputs.regression_message(item, results) if judge else None


def finish(session: pytest.Session, state: SessionState) -> None:
    """Write every artifact, also after failures and Ctrl-C."""
    from . import outputs  # lazy import: start-up weight

    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
    outputs.session_finish(session.config, state.records, interrupted)


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The baseline comparison and any output errors, in the terminal summary."""
    from . import outputs  # lazy import: start-up weight

    lines, errors = outputs.summary_lines(config)
    if lines and lines[0].startswith("baseline:"):
        terminalreporter.write_sep("=", "lambda-slo baseline comparison")
    for line in lines:
        terminalreporter.write_line(line)
    for line in errors:
        terminalreporter.write_line(line, red=True)
