"""Session-end artifacts: the HTML report, .hlog files, the saved baseline, the job summary.

Written from ``pytest_sessionfinish``, which pytest runs after failures and after Ctrl-C
too, so a failed or interrupted gate still leaves every artifact it asked for (an
interrupted run holds what was measured before the interrupt). A write that fails is said
in the terminal summary; it never hides the tests' own outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._report.ci import github_summary_markdown
from .._report.compare import compare_runs
from .._report.document import Record, as_records
from .._report.hlog import write_hlogs
from .._report.html import write_html
from .._results.result import BurstResult
from . import baseline

if TYPE_CHECKING:  # outputs.py imports this module when a session needs it, not the reverse
    from .outputs import Outputs

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_all(
    outputs: Outputs,
    pairs: Sequence[tuple[str, BurstResult]],
    *,
    summary_path: str | None,
    interrupted: bool,
) -> None:
    records = as_records(pairs)
    if outputs.baseline is not None:
        outputs.comparisons = compare_runs(outputs.baseline, records, outputs.thresholds)
    comparisons = outputs.comparisons if outputs.baseline is not None else None

    def step(what: str, write: Callable[[], str]) -> None:
        try:
            outputs.written.append(write())
        except Exception as exc:  # a session-end hook never raises: the summary says it
            outputs.errors.append(f"{what} could not be written: {type(exc).__name__}: {exc}")

    if outputs.html:
        html = outputs.html
        step(
            f"--lambda-slo-html={html!r}",
            lambda: (
                "HTML report written to " + write_html(html, records, outputs.baseline, comparisons)
            ),
        )
    if outputs.hlog:
        hlog = outputs.hlog
        step(
            f"--lambda-slo-hlog={hlog!r}",
            lambda: f"{len(write_hlogs(hlog, records))} .hlog file(s) written to {hlog}",
        )
    if outputs.save is not None:
        step("the baseline", lambda: _save(outputs, records, interrupted))
    if summary_path:
        step(f"${SUMMARY_ENV}", lambda: _append_summary(summary_path, records, outputs))


def _save(outputs: Outputs, records: list[Record], interrupted: bool) -> str:
    commit = baseline.git_commit(outputs.rootpath)
    path = baseline.save(
        outputs.storage, records, name=outputs.save or None, commit=commit, interrupted=interrupted
    )
    return f"{len(records)} run(s) saved as baseline {path.stem!r}: {path}"


def _append_summary(path: str, records: list[Record], outputs: Outputs) -> str:
    comparisons = outputs.comparisons if outputs.baseline is not None else None
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(github_summary_markdown(records, comparisons) + "\n")
    return f"job summary table appended to ${SUMMARY_ENV}"
