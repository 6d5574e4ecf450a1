"""``lambda-slo``: entry point, argument parsing and exit codes shared by every subcommand.

Exit codes: 0 all good, 1 a budget or a regression threshold failed, 2 a usage error
(bad option, unreadable or incompatible file). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._fanout import cli as fanout_cli
from ..errors import ConfigError
from . import compare_cmd, merge_cmd, report_cmd

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the usage too; one line is enough for CI logs.
        command = self.prog.removeprefix("lambda-slo").strip()
        raise ConfigError(f"{command}: {message}" if command else message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lambda-slo",
        description="Merge, report and compare pytest-lambda-slo results files "
        "(written by --lambda-slo-json); manage the Lambda fan-out's generator function.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    merge_cmd.add_parser(commands)
    report_cmd.add_parser(commands)
    compare_cmd.add_parser(commands)
    fanout_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except ConfigError as exc:
        print(f"lambda-slo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
