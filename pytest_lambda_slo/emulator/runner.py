"""Python API: run the emulator in a subprocess (its own core, its own GIL) and talk to it."""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .._procs import reap
from ..errors import ConfigError, LambdaSLOError
from .config import FunctionConfig, parse_function_spec
from .settings import (
    READY_KEY,
    SIGV4_ENV,
    EmulatorConfig,
    parse_emulator_options,
    parse_log_level,
)

# Emulators started in this process, so a load report can tell a target that is one
# (and ask it for its server-side series) without probing any other address.
_STARTED: weakref.WeakSet[Emulator] = weakref.WeakSet()


def running_urls() -> tuple[str, ...]:
    """Base URLs (``http://host:port``) of the emulators this process started and runs."""
    return tuple(emulator.url for emulator in list(_STARTED) if emulator.running)


class Emulator:
    """A running emulator: ``with Emulator(["hello:duration=20ms"]) as emu: emu.url``."""

    def __init__(
        self,
        functions: Iterable[str | FunctionConfig] = ("hello",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_sigv4: str | tuple[str, str] | list[tuple[str, str]] | None = None,
        account_concurrency: int = 1000,
        scaling: str = "continuous",
        burst: int = 500,
        update_delay: float | str = 0.2,
        max_payload: int = 6 * 1024 * 1024,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        seed: int | None = None,
        max_handler_processes: int = 64,
        startup_timeout: float = 20.0,
        log_level: str = "WARNING",
    ) -> None:
        if isinstance(functions, (str, FunctionConfig)):
            functions = [functions]
        configs = tuple(parse_function_spec(f) for f in functions)
        # Validate here so bad input raises ConfigError in the caller, not in the child.
        options = parse_emulator_options(
            {
                "host": host,
                "port": port,
                "require_sigv4": require_sigv4,
                "account_concurrency": account_concurrency,
                "scaling": scaling,
                "burst": burst,
                "update_delay": update_delay,
                "max_payload": max_payload,
                "region": region,
                "account_id": account_id,
                "seed": seed,
                "max_handler_processes": max_handler_processes,
            }
        )
        self.config = EmulatorConfig(functions=configs, **options)
        self.startup_timeout = startup_timeout
        self.log_level = parse_log_level(log_level)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.url = ""
        self.port = 0
        self.pid = 0

    # lifecycle
    def command(self) -> list[str]:
        """The child's command line."""
        c = self.config
        cmd = [sys.executable, "-m", "pytest_lambda_slo.emulator"]
        cmd += ["--host", c.host, "--port", str(c.port)]
        cmd += ["--account-concurrency", str(c.account_concurrency), "--scaling", c.scaling]
        cmd += ["--burst", str(c.burst), "--update-delay", repr(c.update_delay)]
        cmd += ["--max-payload", str(c.max_payload), "--region", c.region]
        cmd += ["--account-id", c.account_id, "--log-level", self.log_level]
        if c.seed is not None:
            cmd += ["--seed", str(c.seed)]
        cmd += ["--max-handler-processes", str(c.max_handler_processes)]
        # The child stops when its stdin pipe closes: when this process ends, however it ends.
        cmd += ["--exit-on-stdin-eof"]
        for function in c.functions:
            cmd += ["--function", function.to_spec()]
        return cmd

    def start(self) -> Emulator:
        """Start the child and wait until it listens."""
        if self._proc is not None:
            return self
        self._stderr = tempfile.TemporaryFile()
        # The child must import this same package, also from a source checkout.
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env.pop(SIGV4_ENV, None)
        if self.config.require_sigv4 is not None:
            env[SIGV4_ENV] = ",".join(":".join(pair) for pair in self.config.require_sigv4)
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        try:
            ready = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        self.url = ready["url"]
        self.port = int(ready["port"])
        self.pid = int(ready["pid"])
        _STARTED.add(self)
        return self

    def _read_ready_line(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        fd = self._proc.stdout.fileno()
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LambdaSLOError(
                    f"the emulator did not start within {self.startup_timeout:g}s"
                    + self._stderr_tail()
                )
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = self._proc.wait()
                message = self._stderr_tail()
                if code == 2:
                    raise ConfigError(message.strip() or "the emulator rejected its options")
                raise LambdaSLOError(f"the emulator exited with code {code}{message}")
            line += chunk
        ready = json.loads(line.split(b"\n", 1)[0])
        if READY_KEY not in ready:
            raise LambdaSLOError(f"unexpected first line from the emulator: {line!r}")
        return ready

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        return f": {text}" if text else ""

    def stop(self) -> None:
        """Terminate and reap the child; close its pipes. Safe to call twice."""
        proc, self._proc = self._proc, None
        _STARTED.discard(self)
        if proc is not None:
            reap(proc, grace_s=10.0)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def invoke_endpoint(self) -> str:
        """``endpoint_url`` for boto3's Lambda client."""
        return self.url

    def function_url(self, name: str) -> str:
        """Function URL style address of ``name``."""
        return f"{self.url}/url/{name}/"

    def apigw_url(self, name: str) -> str:
        """API Gateway REST proxy style address of ``name``."""
        return f"{self.url}/apigw/{name}/"

    # control
    def _call(self, method: str, path: str) -> Any:
        if not self.url:
            raise LambdaSLOError("the emulator is not running; call start() or use `with`")
        conn = http.client.HTTPConnection(self.config.host, self.port, timeout=30)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise LambdaSLOError(f"{method} {path} answered {response.status}: {body[:200]!r}")
        return json.loads(body)

    def stats(self) -> dict[str, Any]:
        """The server-side truth: see docs/emulator.md for the shape."""
        return self._call("GET", "/_emulator/stats")

    def function_stats(self, name: str) -> dict[str, Any]:
        return self.stats()["functions"][name]

    def reset(self, *, environments: bool = False) -> None:
        """Clear stats; with ``environments=True`` also retire every warm environment."""
        self._call("POST", "/_emulator/reset" + ("?environments=true" if environments else ""))
