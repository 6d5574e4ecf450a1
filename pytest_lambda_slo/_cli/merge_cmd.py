"""``lambda-slo merge A.json B.json ... -o merged.json``: exact merge of shards' results."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._report.document import load_document, write_document
from .._report.merge import merge_documents


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "merge",
        help="merge results of the same tests from CI shards or regions (HDR histograms add)",
    )
    parser.add_argument("files", nargs="+", metavar="FILE.json", help="results files to merge")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MERGED.json",
        help="where to write the merged results",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    documents = [(path, load_document(path)) for path in args.files]
    merged = merge_documents(documents)
    write_document(args.output, merged)
    runs = merged["bursts"]
    print(
        f"merged {len(documents)} files: {len(runs)} runs, "
        f"{sum(r.get('count', 0) for r in runs)} requests -> {args.output}",
        file=sys.stdout,
    )
    return 0
