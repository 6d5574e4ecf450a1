"""The ``lambda-slo-emulator`` command: parse options, start the server, print the bound URL."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import ConfigError
from .app import EmulatorApp
from .config import DISTRIBUTION_FORMS, FUNCTION_KEYS, PROFILES, FunctionConfig, parse_function_spec
from .server import Connection
from .settings import (
    EMULATOR_KEYS,
    READY_KEY,
    SIGV4_ENV,
    EmulatorConfig,
    load_toml,
    parse_emulator_options,
    parse_log_level,
)

PROG = "lambda-slo-emulator"
DEFAULT_FUNCTION = "hello"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: scripts and tests read it.
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    epilog = (
        f"function keys: {', '.join(FUNCTION_KEYS)}. profiles: {', '.join(PROFILES)}. "
        f"durations: {DISTRIBUTION_FORMS}. The first stdout line is JSON with the bound URL. "
        "See docs/emulator.md."
    )
    p = _Parser(
        prog=PROG, description="A local emulator of AWS Lambda's execution model.", epilog=epilog
    )
    p.add_argument("--host", help="address to listen on. Default: 127.0.0.1")
    p.add_argument("--port", help="port to listen on, 0 for any free port. Default: 0")
    p.add_argument("--config", metavar="FILE", help="TOML file with [emulator] and [functions.*]")
    p.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME[:key=value,...]",
        help="a function, e.g. hello:duration=20ms,init=300ms,reserved=10 (repeatable)",
    )
    p.add_argument(
        "--require-sigv4",
        metavar="AKID:SECRET",
        help=f"verify SigV4 signatures (or set {SIGV4_ENV}). Default: off",
    )
    p.add_argument("--account-concurrency", metavar="N", help="account limit. Default: 1000")
    p.add_argument("--scaling", metavar="MODEL", help="continuous or legacy. Default: continuous")
    p.add_argument("--burst", metavar="N", help="legacy model's initial burst. Default: 500")
    p.add_argument("--update-delay", metavar="DURATION", help="InProgress time. Default: 200ms")
    p.add_argument("--max-payload", metavar="BYTES", help="request size limit. Default: 6291456")
    p.add_argument("--region", help="region in ARNs. Default: us-east-1")
    p.add_argument("--account-id", metavar="ID", help="account in ARNs. Default: 123456789012")
    p.add_argument("--seed", metavar="N", help="random seed for durations and errors")
    p.add_argument(
        "--max-handler-processes",
        metavar="N",
        help="cap on processes running real handlers (zip functions). Default: 64",
    )
    p.add_argument("--log-level", default="WARNING", help="stderr log level. Default: WARNING")
    p.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes (a parent process that dies closes it)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Merge defaults, the TOML file and command-line options (command line wins)."""
    options: dict[str, Any] = {}
    functions: dict[str, FunctionConfig] = {}
    if args.config:
        file_options, file_functions = load_toml(args.config)
        options.update(file_options)
        functions.update((f.name, f) for f in file_functions)
    # The argparse dests are the EmulatorConfig option names.
    cli = {key: getattr(args, key) for key in EMULATOR_KEYS if getattr(args, key) is not None}
    if "require_sigv4" not in cli and os.environ.get(SIGV4_ENV):
        cli["require_sigv4"] = os.environ[SIGV4_ENV]
    options.update(parse_emulator_options(cli))
    for spec in args.function:
        config = parse_function_spec(spec)
        functions[config.name] = config  # a later definition of a name replaces an earlier one
    if not functions:
        functions[DEFAULT_FUNCTION] = parse_function_spec(DEFAULT_FUNCTION)
    return EmulatorConfig(functions=tuple(functions.values()), **options)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is the fast extra
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _raise_fd_limit() -> None:
    """Allow many concurrent connections (10,000 needs more than the usual 1,024 fds)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def _stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when standard input reaches its end: the parent holding the pipe is gone, even
    if it was killed without a chance to stop this process."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, readable)


async def serve(config: EmulatorConfig, *, exit_on_stdin_eof: bool = False) -> None:
    """Listen, print the ready line, serve until SIGTERM/SIGINT (or the end of stdin)."""
    loop = asyncio.get_running_loop()
    app = EmulatorApp(config, loop)
    max_body = config.max_payload
    server = await loop.create_server(
        lambda: Connection(app, max_body, app.body_limit),
        config.host,
        config.port,
        backlog=4096,
    )
    port = server.sockets[0].getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{port}"
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if exit_on_stdin_eof:
        _stop_on_stdin_eof(loop, stop)
    app.start()
    ready = {
        READY_KEY: "listening",
        "url": url,
        "host": config.host,
        "port": port,
        "pid": os.getpid(),
        "functions": [f.name for f in config.functions],
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        server.close()
        await app.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lambda-slo-emulator``; exit 2 on bad input with a one-line message."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        log_level = parse_log_level(args.log_level)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    logging.basicConfig(
        level=getattr(logging, log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _raise_fd_limit()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(config, exit_on_stdin_eof=args.exit_on_stdin_eof))
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: cannot listen on {config.host}:{config.port}: {exc}\n")
        return 1
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return 0
