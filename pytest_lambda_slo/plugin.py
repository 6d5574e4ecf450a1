"""pytest hooks: options, ini keys, the ``lambda_slo`` marker and fixture, report output.

Kept thin and light to import (``pytest --help`` stays fast): at import it loads only the
settings, budgets' names and parsers; the fixture (and with it the engine, transport and
targets), results and reports are imported when a test or the summary first needs them,
and the emulator fixture's module does not import the emulator's server.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from ._pytest import ini, output_hooks
from ._pytest.ledger import create_shared_file
from ._pytest.session import SessionState
from ._results.budgets import (
    BUDGET_NAMES,
    BUDGETS,
    THROTTLE_BUDGETS,
    parse_budgets,
)
from .emulator.fixtures import lambda_emulator  # noqa: F401  (registers the fixture)
from .emulator.runner import running_urls
from .errors import ConfigError, RunInvalid, SLOViolation

if TYPE_CHECKING:
    from ._pytest.fixture import LambdaSLO
    from ._results.gate import Gate
    from ._results.result import RunResult

STATE_KEY = pytest.StashKey[SessionState]()
FIXTURE_KEY = pytest.StashKey["LambdaSLO"]()
BUDGETS_KEY = pytest.StashKey["dict[str, tuple[float, str]]"]()
_WORKER_OUTPUT = "lambda_slo_records"
# xdist: the ledger file the controller shares with its workers, and a worker's usage error.
_WORKER_LEDGER = "lambda_slo_ledger"
_WORKER_USAGE_ERROR = "lambda_slo_usage_error"
MARKER_HELP = (
    "lambda_slo(**budgets): SLO budgets applied to every burst the test fires, e.g. "
    "@pytest.mark.lambda_slo(p99='800ms', cold_start_p99='2s', throttle_rate='1%'). "
    f"Budgets: {', '.join(BUDGET_NAMES)}."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lambda-slo", "AWS Lambda SLO load tests (pytest-lambda-slo)")
    group.addoption(
        "--lambda-slo-report",
        action="store_true",
        default=False,
        help="Print a latency/cold-start/throttle summary of every burst. Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-json",
        metavar="PATH",
        default=None,
        help="Write every burst as JSON (with encoded HDR histograms) to PATH. "
        "Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-skip",
        action="store_true",
        default=False,
        help="Skip every load test (tests using the lambda_slo fixture or marker). "
        "Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-only",
        action="store_true",
        default=False,
        help="Run only the load tests. Default: %(default)r",
    )
    group.addoption(
        "--lambda-slo-workers",
        metavar="N|auto",
        default=None,
        help="Processes each load shape fans out over (each with its own event loop); "
        "'auto' is one per CPU core. Overrides the ini key lambda_slo_workers. Default: 1",
    )
    group.addoption(
        "--lambda-slo-fanout",
        metavar="N",
        default=None,
        help="Run every load shape over N Lambda shards of the generator function "
        "(docs/fanout.md). Overrides the ini key lambda_slo_fanout. Default: none",
    )
    output_hooks.add_options(group, parser)
    for name in BUDGET_NAMES:
        parser.addini(
            f"lambda_slo_{name}",
            help=f"Default SLO budget {name} ({BUDGETS[name].description}) for every burst.",
            default=None,
        )
    for key, (default, help_text) in ini.SETTINGS_INI.items():
        parser.addini(key, help=help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if config.getoption("lambda_slo_skip") and config.getoption("lambda_slo_only"):
        raise pytest.UsageError("--lambda-slo-skip and --lambda-slo-only exclude each other")
    workerinput = getattr(config, "workerinput", {})
    try:
        state = SessionState(ini.settings_from(config), ledger_path=workerinput.get(_WORKER_LEDGER))
        state.ini_budgets = ini.ini_budgets(config)
        state.emulator_urls = running_urls  # the plugin alone knows the emulator
        output_hooks.configure(config, state)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE_KEY] = state
    json_path = config.getoption("lambda_slo_json")
    if json_path and not hasattr(config, "workerinput"):
        problem = _unwritable(json_path)
        if problem:
            raise pytest.UsageError(
                f"--lambda-slo-json={json_path!r} cannot be written ({problem}); "
                "use a file path in a writable directory"
            )


@pytest.hookimpl(optionalhook=True)  # an xdist hook: only exists where xdist is installed
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker shares one ledger, so the caps hold for the session."""
    state = node.config.stash[STATE_KEY]
    if state.ledger_path is None:
        state.ledger_path = create_shared_file()
    node.workerinput[_WORKER_LEDGER] = state.ledger_path


def pytest_unconfigure(config: pytest.Config) -> None:
    stream = config.stash.get(output_hooks.PROGRESS_KEY, None)
    if stream is not None:
        stream.close()
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.ledger_path and not hasattr(config, "workerinput"):
        with contextlib.suppress(OSError):
            os.unlink(state.ledger_path)


def _unwritable(path: str) -> str | None:
    """Why the JSON report could not be written at ``path``, checked before any test runs."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        return "it is a directory"
    directory = os.path.dirname(target)
    while directory and not os.path.exists(directory):
        directory = os.path.dirname(directory)  # missing directories are created later
    if not os.path.isdir(directory):
        return f"{directory!r} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory!r} is not writable"
    return None


def _marker_budgets(item: pytest.Item) -> dict[str, float]:
    merged: dict[str, object] = {}
    # iter_markers yields the closest first (function, class, module): apply farthest first.
    for mark in reversed(list(item.iter_markers("lambda_slo"))):
        if mark.args:
            raise ConfigError(
                f"@pytest.mark.lambda_slo takes budgets as keywords only, got {mark.args!r}; "
                "use e.g. @pytest.mark.lambda_slo(p99='800ms')"
            )
        merged.update(mark.kwargs)
    return parse_budgets(merged)


def _is_load_test(item: pytest.Item) -> bool:
    return "lambda_slo" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("lambda_slo")
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[STATE_KEY]
    ini = state.ini_budgets
    for item in items:
        try:
            marker = _marker_budgets(item)
        except ConfigError as exc:
            message = f"{item.nodeid}: {exc}"
            if hasattr(config, "workeroutput"):  # xdist: the controller says it (see below)
                config.workeroutput[_WORKER_USAGE_ERROR] = message
            raise pytest.UsageError(message) from None
        declared = {name: (limit, "ini") for name, limit in ini.items()}
        declared.update({name: (limit, "marker") for name, limit in marker.items()})
        item.stash[BUDGETS_KEY] = declared
    skip, only = config.getoption("lambda_slo_skip"), config.getoption("lambda_slo_only")
    if skip:
        skip_marker = pytest.mark.skip(reason="load tests skipped by --lambda-slo-skip")
        for item in items:
            if _is_load_test(item):
                item.add_marker(skip_marker)
    elif only:
        kept = [item for item in items if _is_load_test(item)]
        dropped = [item for item in items if not _is_load_test(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


@pytest.fixture
def lambda_slo(request: pytest.FixtureRequest) -> LambdaSLO:
    """Fire load at a Lambda front door: ``lambda_slo.burst(target, requests=, concurrency=)``."""
    # Lazy for start-up weight: the fixture brings the engine, transport and targets.
    from ._pytest.fixture import LambdaSLO

    state = request.config.stash[STATE_KEY]
    # A throttle budget from the marker or ini replaces the implied one, for check() too.
    declared = request.node.stash.get(BUDGETS_KEY, {})
    implied = (
        None
        if any(name in THROTTLE_BUDGETS for name in declared)
        else state.settings.default_throttle_rate
    )
    budgets = {name: limit for name, (limit, _) in declared.items()}  # decide auto runs
    slo = LambdaSLO(state, request.node.nodeid, default_throttle_rate=implied, budgets=budgets)
    request.node.stash[FIXTURE_KEY] = slo
    return slo


def _judge_declared(item: pytest.Item, results: list[RunResult]) -> list[Gate]:
    """Judge the ini and marker budgets together on each run (they share the FAIL level)."""
    declared = item.stash.get(BUDGETS_KEY, {})
    if not declared:
        return []
    # lazy import: judging loads scipy and hdrh, which `pytest --help` must not
    from ._results.gate import gate
    from ._results.verdicts import judge_all

    entries = sorted(
        ((name, limit, source) for name, (limit, source) in declared.items()),
        key=lambda entry: entry[2] != "ini",  # ini first, then the marker, as declared
    )
    gates = []
    for result in results:
        verdicts = judge_all(result, entries)  # the implied throttle budget's included
        result.verdicts.extend(verdicts)
        found = gate(verdicts, result)
        if found:
            gates.append(found)
    return gates


_RUN_INVALID = "lambda_slo_run_invalid"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # A run that cannot be judged (RunInvalid: a fan-out shard failed or was late) is
    # neither a pass nor a budget failure: it is reported as an ERROR.
    if call.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(RunInvalid):
        setattr(report, _RUN_INVALID, True)
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict]] | None:
    if getattr(report, _RUN_INVALID, False):
        return "error", "E", ("ERROR", {"red": True})
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    # Budgets from the marker and ini are judged here, inside the call phase, so a broken
    # or inconclusive budget shows as a FAILED test with the numbers (never as a teardown
    # error), and an inconclusive one under the policy "warn" as the test's warning.
    try:
        outcome = yield
    except BaseException:
        _record(item)
        output_hooks.call(item, _results_of(item), judge=False)
        raise
    gates = _record(item)
    regression = output_hooks.call(item, _results_of(item))  # a baseline gate fails it too
    if regression:
        failed = [v for g in gates for v in g.failed]
        raise SLOViolation("\n".join([*(g.message for g in gates), regression]), failed)
    if gates:
        from ._results.gate import settle  # lazy import: start-up weight (see _judge_declared)

        settle(gates, item.config.stash[STATE_KEY].settings.verdict_policy)
    return outcome


def _results_of(item: pytest.Item) -> list[RunResult]:
    slo = item.stash.get(FIXTURE_KEY, None)
    return [] if slo is None else slo.results


def _record(item: pytest.Item) -> list[Gate]:
    """Judge the test's runs on its declared budgets and keep them for the report."""
    slo = item.stash.get(FIXTURE_KEY, None)
    if slo is None or not slo.results:
        return []
    gates = _judge_declared(item, slo.results)
    state = item.config.stash[STATE_KEY]
    state.records.extend((item.nodeid, result) for result in slo.results)
    return gates


@pytest.hookimpl(optionalhook=True)  # an xdist hook: only exists where xdist is installed
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the runs each worker measured; raise a worker's usage error.

    A usage error raised on a worker would reach the user as an INTERNALERROR of xdist's
    scheduler; raised here, on the controller, it is pytest's one-line error (exit 4).
    """
    usage_error = getattr(node, "workeroutput", {}).get(_WORKER_USAGE_ERROR)
    if usage_error:
        raise pytest.UsageError(usage_error)
    payload = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if not payload:
        return
    from ._results.result import RunResult  # lazy for start-up weight (hdrh)

    state = node.config.stash[STATE_KEY]
    for test_id, data in json.loads(payload):
        state.records.append((test_id, RunResult.from_dict(data)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the runs to the controller
        config.workeroutput[_WORKER_OUTPUT] = json.dumps(
            [(test_id, result.to_dict()) for test_id, result in state.records]
        )
        return
    path = config.getoption("lambda_slo_json")
    if path:
        from ._report.terminal import write_json  # lazy: only when a report is written

        try:
            write_json(path, state.records)
        except OSError as exc:  # hooks outside a test never raise: say it in the summary
            state.json_error = f"--lambda-slo-json={path!r} could not be written: {exc}"
    if state.records:
        output_hooks.finish(session, state)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or hasattr(config, "workeroutput"):
        return
    records = state.records
    if not config.getoption("lambda_slo_report"):
        # Without the report, runs cut short by Ctrl-C are still shown: what was measured.
        records = [record for record in records if record[1].extras.get("interrupted")]
    if config.getoption("lambda_slo_report") or records:
        from ._report.terminal import render_report  # lazy: only when a report is shown

        terminalreporter.write_sep("=", "lambda-slo report")
        if not records:
            terminalreporter.write_line("no load was fired in this session")
        for line in render_report(records):
            terminalreporter.write_line(line)
    path = config.getoption("lambda_slo_json")
    if state.json_error:
        terminalreporter.write_line(f"lambda-slo: ERROR: {state.json_error}", red=True)
    elif path and state.records:
        terminalreporter.write_line(f"lambda-slo: {len(state.records)} run(s) written to {path}")
    if state.records:
        output_hooks.summary(terminalreporter, config)
