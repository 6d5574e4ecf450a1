"""``lambda-slo report results.json [--html out.html] [--budgets p99=800ms,...]``.

Prints the terminal report of every run, judges the budgets given on the stored
histograms, optionally renders the HTML report, and exits 1 when any verdict is broken:
one given with ``--budgets`` or one stored with the run (``lambda-slo merge`` judges the
stored budgets again on the merged data). An inconclusive verdict exits 1 too, as it
fails a test by default; ``--inconclusive warn`` lets it exit 0.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._report.document import load_document, records_of
from .._report.hlog import write_hlogs
from .._report.html import write_html
from .._report.rejudge import parse_budget_list, rejudge
from .._report.terminal import render_report
from .._results.result import BurstResult
from .._results.verdict import INCONCLUSIVE_POLICIES, parse_policy


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="print (and render as HTML) a results file, judging budgets again",
        description="Exit 1 when a verdict is broken: a budget given with --budgets or one "
        "stored with a run; also when one is inconclusive, unless --inconclusive warn.",
    )
    parser.add_argument("file", metavar="RESULTS.json")
    parser.add_argument("--html", metavar="OUT.html", help="also write the HTML report here")
    parser.add_argument(
        "--hlog", metavar="DIR", help="also write one HdrHistogram interval log per run here"
    )
    parser.add_argument(
        "--budgets",
        metavar="NAME=LIMIT,...",
        default="",
        help="budgets to judge every run on, e.g. p99=800ms,error_rate=1%%",
    )
    parser.add_argument(
        "--inconclusive",
        choices=INCONCLUSIVE_POLICIES,
        default="fail",
        help="what an inconclusive verdict does: fail (exit 1) or warn (exit 0). "
        "Default: %(default)s",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    budgets = parse_budget_list(args.budgets, name="--budgets")
    records = records_of(load_document(args.file))
    results = [(test_id, BurstResult.from_dict(run)) for test_id, run in records]
    policy = parse_policy(inconclusive=args.inconclusive, prefix="--")
    verdicts = rejudge(results, budgets, policy)
    for line in render_report(results):
        print(line)
    if args.html:
        # The page shows the verdicts judged here too; the rest of each run is as stored.
        judged = [
            (test_id, {**run, "verdicts": [v.to_dict() for v in run_verdicts]})
            for (test_id, run), run_verdicts in zip(records, verdicts, strict=True)
        ]
        write_html(args.html, judged)
        print(f"HTML report: {args.html}")
    if args.hlog:
        paths = write_hlogs(args.hlog, records)
        print(f"HdrHistogram logs: {len(paths)} files in {args.hlog}")
    broken = sum(1 for per_run in verdicts for v in per_run if v.failed)
    unsure = sum(1 for per_run in verdicts for v in per_run if v.inconclusive)
    print(
        f"{len(results)} runs, {sum(len(v) for v in verdicts)} verdicts: {broken} broken, "
        f"{unsure} inconclusive"
    )
    return 1 if broken or (unsure and policy.inconclusive == "fail") else 0
