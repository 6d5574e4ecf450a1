"""``lambda-slo fanout deploy|status|cleanup``: manage the generator function by hand.

``add_parser(subparsers)`` adds the ``fanout`` subcommand to the ``lambda-slo`` console
script and ``main(args)`` runs it (exit 0 done, 1 an AWS or packaging failure, 2 bad
input). ``python -m pytest_lambda_slo._fanout.cli`` runs it on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError, LambdaSLOError
from .config import ARCHITECTURES, LambdaFanout
from .deploy import cleanup, ensure_generator, status
from .package import build_package


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fanout`` (with deploy, status, cleanup) to a ``lambda-slo`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fanout",
        help="deploy, list or remove the load generator Lambda function",
        description="Manage the Lambda function that generates load for fanout= runs.",
    )
    commands = parser.add_subparsers(dest="fanout_command", metavar="COMMAND", required=True)
    for name, text in (
        ("deploy", "build the generator zip and create or update the function"),
        ("status", "list the generator functions lambda-slo created"),
        ("cleanup", "delete the generator functions lambda-slo created (tagged), nothing else"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        _common(command)
        if name == "deploy":
            command.add_argument("--memory", type=int, default=2048, help="MB (128-10240)")
            command.add_argument("--architecture", choices=ARCHITECTURES, default="x86_64")
            command.add_argument("--role", help="IAM role ARN the function runs as (AWS)")
            command.add_argument("--python-version", help="runtime, e.g. 3.11 (default: this)")
            command.add_argument("--wheel-dir", help="cache of compiled wheels")
            command.add_argument(
                "--no-bundle-botocore",
                action="store_true",
                help="use the runtime's botocore instead of shipping this machine's",
            )
            command.add_argument(
                "--download-wheels",
                action="store_true",
                help="fetch compiled wheels even when this machine's installed builds fit",
            )
        if name == "cleanup":
            command.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    parser.set_defaults(run=main)  # lambda-slo calls args.run(args)
    return parser


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--region", help="AWS region (default: the AWS config chain)")
    command.add_argument("--endpoint-url", help="Lambda API endpoint (the emulator, moto)")
    command.add_argument("--profile", help="AWS profile")
    command.add_argument("--function-name", help="a fixed name instead of the build-hash name")


def main(args: argparse.Namespace) -> int:
    """Run ``fanout <command>``; print lines to stdout, errors to stderr."""
    try:
        fanout = LambdaFanout(
            1,
            region=args.region,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            function_name=args.function_name,
            memory=getattr(args, "memory", 2048),
            architecture=getattr(args, "architecture", "x86_64"),
            role=getattr(args, "role", None),
            python_version=getattr(args, "python_version", None),
            wheel_dir=getattr(args, "wheel_dir", None),
            bundle_botocore=not getattr(args, "no_bundle_botocore", False),
        )
        if args.fanout_command == "deploy":
            package = build_package(
                fanout, prefer_installed=not getattr(args, "download_wheels", False)
            )
            print(package.summary())
            for note in package.notes:
                print(f"  {note}")
            function = ensure_generator(fanout, package=package, log=print)
            print(f"{function.name}\t{function.action}\t{function.arn}")
        elif args.fanout_command == "status":
            found = status(fanout)
            if not found:
                print("no generator functions created by lambda-slo here")
            for f in found:
                reserved = "-" if f.reserved_concurrency is None else f.reserved_concurrency
                print(
                    f"{f.name}\tplugin {f.version}\tbuild {f.build}\t{f.runtime} "
                    f"{f.architecture} {f.memory} MB\treserved {reserved}\t{f.last_modified}"
                )
        else:
            deleted = cleanup(fanout, dry_run=args.dry_run, log=print)
            verb = "would delete" if args.dry_run else "deleted"
            print(f"{verb} {len(deleted)} generator function(s)")
    except ConfigError as exc:
        print(f"lambda-slo fanout: {exc}", file=sys.stderr)
        return 2
    except LambdaSLOError as exc:
        print(f"lambda-slo fanout: {exc}", file=sys.stderr)
        return 1
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """A ``lambda-slo`` parser with only ``fanout``: for ``python -m`` until the console script."""
    parser = argparse.ArgumentParser(prog="lambda-slo")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(run())
