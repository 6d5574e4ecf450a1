"""The fanout CLI (deploy, status, cleanup) as a subprocess, on moto and on the emulator."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from fanout_helpers import Backend

from pytest_lambda_slo._fanout import cli


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_lambda_slo._fanout.cli", "fanout", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
        check=False,
    )


def test_deploy_status_cleanup(backend: Backend) -> None:
    lam = backend.lam
    where = ["--endpoint-url", backend.endpoint, "--region", "us-east-1"]
    first = _cli("deploy", *where, "--role", backend.role, "--no-bundle-botocore")
    assert first.returncode == 0, first.stderr
    name = next(line.split("\t")[0] for line in first.stdout.splitlines() if "\tcreated\t" in line)
    assert name.startswith("lambda-slo-gen-")
    assert "generator zip " + name in first.stdout
    assert "installed build (same platform" in first.stdout or ".whl" in first.stdout

    second = _cli("deploy", *where, "--role", backend.role, "--no-bundle-botocore")
    assert second.returncode == 0, second.stderr
    assert f"{name}\treused\t" in second.stdout

    listed = _cli("status", *where)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(name + "\tplugin ")

    dry = _cli("cleanup", *where, "--dry-run")
    assert "would delete 1 generator function(s)" in dry.stdout
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == [name]
    removed = _cli("cleanup", *where)
    assert removed.returncode == 0, removed.stderr
    assert f"deleting {name}" in removed.stdout and "deleted 1" in removed.stdout
    assert lam.list_functions()["Functions"] == []
    empty = _cli("status", *where)
    assert "no generator functions created by lambda-slo here" in empty.stdout


def test_bad_input_exits_2_with_one_line(moto: str, aws_env: None) -> None:
    done = _cli("deploy", "--endpoint-url", moto, "--memory", "64")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "memory=64 is not valid; use a whole number of MB from 128 to 10240" in done.stderr
    usage = _cli("explode")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_add_parser_hooks_into_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="lambda-slo")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    args = parser.parse_args(["fanout", "cleanup", "--region", "eu-west-1", "--dry-run"])
    assert args.command == "fanout" and args.fanout_command == "cleanup"
    assert args.region == "eu-west-1" and args.dry_run is True
    assert args.run is cli.main


def test_it_hooks_into_the_lambda_slo_parser() -> None:
    from pytest_lambda_slo._cli import main as lambda_slo

    parser = lambda_slo.build_parser()  # lambda-slo's own parser carries the fanout commands
    args = parser.parse_args(["fanout", "status", "--endpoint-url", "http://127.0.0.1:9"])
    assert args.run is cli.main and args.fanout_command == "status"
