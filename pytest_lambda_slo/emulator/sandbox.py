"""Processes that run real handlers: one per execution environment, started, fed and reaped.

A worker is ``python runtime.py`` with the function's code directory first on its path and a
Lambda-like environment (``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, the function's
variables...). Events and results go over a socket pair; a worker is killed when its
environment is retired, times out or the emulator stops, and every one is waited for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from .code import Deployment
from .settings import EmulatorConfig

log = logging.getLogger("pytest_lambda_slo.emulator")
RUNTIME = str(Path(__file__).resolve().with_name("runtime.py"))
_HEADER = struct.Struct("!II")
# Lambda's Init phase may take 10 s; beyond that the environment fails to start.
INIT_LIMIT_S = 10.0
# Passed through from the emulator's own environment (the rest is built like Lambda's).
_PASS_THROUGH = ("PATH", "LANG", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP")


class WorkerGone(Exception):
    """The worker exited or closed its socket (a crash, ``sys.exit``, a kill)."""


class Worker:
    """One execution environment's process."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.killed = False
        self._reaped = False

    async def start(self, deployment: Deployment, env: dict[str, str]) -> dict[str, Any]:
        """Start the process and wait for its Init phase; returns the ready frame."""
        ours, theirs = socket.socketpair()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-u",
                RUNTIME,
                str(theirs.fileno()),
                str(deployment.code.directory),
                deployment.handler,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),  # fd-level output: the emulator's stderr log
                env=env,
                cwd=str(deployment.code.directory),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours)
        if self.killed:  # retired while starting
            self.kill()
            raise WorkerGone
        head, _ = await self._read()
        return head

    async def invoke(self, head: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        """Send one event, wait for its result frame."""
        writer = self._writer
        if writer is None or self.killed:
            raise WorkerGone
        data = json.dumps(head).encode()
        writer.write(_HEADER.pack(len(data), len(body)) + data + body)
        return await self._read()

    async def _read(self) -> tuple[dict[str, Any], bytes]:
        reader = self._reader
        if reader is None:
            raise WorkerGone
        try:
            head_len, body_len = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            head = json.loads(await reader.readexactly(head_len))
            body = await reader.readexactly(body_len)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise WorkerGone from exc
        return head, body

    def kill(self) -> None:
        """Kill the process now (it holds no state worth keeping); the sandbox reaps it."""
        self.killed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        proc = self.proc
        if proc is not None:
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
            if not self._reaped:
                self._reaped = True
                self._sandbox.reap(proc)
        self._sandbox.forget(self)


class Sandbox:
    """Every live worker, a cap on their number, and the environment they run with."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.limit = config.max_handler_processes
        self._live: set[Worker] = set()
        self._reaping: set[asyncio.Task[Any]] = set()
        self.started = 0  # processes started since the emulator started

    @property
    def live(self) -> int:
        return len(self._live)

    def full(self) -> bool:
        return len(self._live) >= self.limit

    def new_worker(self) -> Worker:
        worker = Worker(self)
        self._live.add(worker)
        self.started += 1
        return worker

    def forget(self, worker: Worker) -> None:
        self._live.discard(worker)

    def reap(self, proc: asyncio.subprocess.Process) -> None:
        """Wait for a killed process in the background (close() waits for all of them)."""
        task = asyncio.get_running_loop().create_task(proc.wait())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    def environment(
        self, deployment: Deployment, name: str, memory: int, variables: dict[str, str]
    ) -> dict[str, str]:
        """The process environment Lambda gives a function, plus its own variables."""
        cfg = self.config
        stream = time.strftime("%Y/%m/%d") + "/[$LATEST]" + os.urandom(16).hex()
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        key, secret = (cfg.require_sigv4 or (("AKIDEMULATOR", "emulator-secret"),))[0]
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_REGION": cfg.region,
                "AWS_DEFAULT_REGION": cfg.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{deployment.runtime}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "LAMBDA_TASK_ROOT": str(deployment.code.directory),
                "_HANDLER": deployment.handler,
                "TZ": ":UTC",
                # The execution role's credentials: the emulator's own key when it checks
                # signatures, so a handler can call the emulator back.
                "AWS_ACCESS_KEY_ID": key,
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_SESSION_TOKEN": "",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not env["AWS_SESSION_TOKEN"]:
            del env["AWS_SESSION_TOKEN"]
        env.update(variables)
        return env

    async def close(self, timeout: float = 10.0) -> None:
        """Kill every worker and wait until each has exited."""
        for worker in list(self._live):
            worker.kill()
        if self._reaping:
            await asyncio.wait(set(self._reaping), timeout=timeout)
