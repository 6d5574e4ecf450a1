"""``lambda-slo compare base.json new.json [--fail p99:10%]``: baseline vs now, per test."""

from __future__ import annotations

import argparse
from typing import Any

from .._report.compare import THRESHOLD_FORMS, compare_runs, parse_thresholds, render_comparisons
from .._report.document import load_document, records_of


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare a run with a baseline run, test by test",
        description="Exit 1 when a --fail threshold is broken: the shift is worse than it "
        "and statistically significant.",
    )
    parser.add_argument("base", metavar="BASE.json", help="the baseline results")
    parser.add_argument("new", metavar="NEW.json", help="the results to judge")
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="METRIC:LIMIT",
        help="fail on a significant regression past LIMIT: "
        + THRESHOLD_FORMS.replace("%", "%%")
        + "; "
        "may be given several times",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.01,
        help="significance level, split over the thresholds (default 0.01)",
    )
    parser.set_defaults(run=run)


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; use a number between 0 and 1")
    return value


def run(args: argparse.Namespace) -> int:
    thresholds = parse_thresholds(args.fail, name="--fail")
    base = records_of(load_document(args.base))
    new = records_of(load_document(args.new))
    comparisons = compare_runs(base, new, thresholds, alpha=args.alpha)
    for line in render_comparisons(comparisons):
        print(line)
    failed = [c for c in comparisons if c.failed]
    skipped = [c for c in comparisons if not c.compared]
    print(
        f"{len(comparisons)} runs compared with {args.base}: {len(failed)} regressed"
        + (f", {len(skipped)} not compared" if skipped else "")
    )
    return 1 if failed else 0
