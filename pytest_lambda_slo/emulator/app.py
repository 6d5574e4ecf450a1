"""The emulator application: wires the model, execution and routes, and dispatches requests.

Routes (the HTTP doors, the Lambda API) get what they need handed in and never import this
module; it owns the server-wide parts: SigV4 checks, ``/_emulator/*``, stats, the sweep timer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .control import ControlPlane
from .deploy import UPLOAD_LIMIT, Deployments
from .doors import HttpDoors
from .execution import Executor
from .ids import Ids
from .lambda_api import LambdaApi
from .model import Model
from .sandbox import Sandbox
from .server import Connection, Request
from .settings import EmulatorConfig
from .sigv4 import SigV4Error, verify
from .stats import new_stats
from .wire import JSON, CannedAnswers, dumps, error_head, unknown_path

log = logging.getLogger("pytest_lambda_slo.emulator")
_monotonic = time.monotonic
# Writes a door's answer to a request whose signature failed.
Denied = Callable[[Request, Connection, SigV4Error], None]
_API_PREFIXES = (b"/2015-03-31/functions/", b"/2017-10-31/functions/", b"/2019-09-30/functions/")


class EmulatorApp:
    """Routes requests to the front doors and the Lambda API; serves ``/_emulator/*``."""

    def __init__(self, config: EmulatorConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        now = _monotonic()
        self.started = now
        self.model = Model(config, now)
        self.parse_errors = 0
        self.handler_errors = 0
        self.sigv4_refusals = 0
        self.sandbox = Sandbox(config)
        self.executor = Executor(self.model, loop, self.on_handler_error, self.sandbox)
        ids = Ids()
        canned = CannedAnswers()
        self.doors = HttpDoors(config, self.executor, ids, canned)
        self.control = ControlPlane(config, self.model, loop)
        self.deployments = Deployments(config, self.model, loop, self.control, canned)
        self.api = LambdaApi(config, self.executor, ids, canned, self.control, self.deployments)
        self._timer: asyncio.TimerHandle | None = None

    # lifecycle
    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for function in self.model.functions.values():
            if function.update_handle is not None:
                function.update_handle.cancel()

    async def shutdown(self) -> None:
        """Stop, kill and reap every handler process, remove the unpacked code."""
        self.stop()
        await self.sandbox.close()
        self.deployments.close()

    def body_limit(self, method: bytes, url: bytes) -> int:
        """Request body limit: code uploads may be larger than an invocation's payload."""
        if method in (b"POST", b"PUT") and url.startswith(b"/2015-03-31/functions"):
            path = url.partition(b"?")[0].rstrip(b"/")
            if path == b"/2015-03-31/functions" or path.endswith(b"/code"):
                return max(UPLOAD_LIMIT, self.config.max_payload)
        return self.config.max_payload

    def _tick(self) -> None:
        now = _monotonic()
        self.model.reclaim(now)
        for function in self.model.functions.values():
            function.stats.bucket(now, function.busy)
        self._timer = self.loop.call_later(1.0, self._tick)

    def on_parse_error(self) -> None:
        self.parse_errors += 1

    def on_handler_error(self) -> None:
        self.handler_errors += 1

    # dispatch
    def handle(self, req: Request, conn: Connection) -> None:
        path, _, query = req.url.partition(b"?")
        if req.too_large:  # before SigV4: the dropped body cannot be hashed
            self._too_large(req, conn)
            return
        if path.startswith(b"/_emulator/"):  # never signed
            self._emulator(req, conn, path, query)
            return
        doors = self.doors
        if path.startswith(b"/url/"):
            if self._signed(req, path, query, "lambda", conn, doors.url_denied):
                doors.function_url(req, conn, path, query)
        elif path.startswith(b"/apigw/"):
            if self._signed(req, path, query, "execute-api", conn, doors.apigw_denied):
                doors.apigw(req, conn, path, query)
        elif not self._signed(req, path, query, "lambda", conn, self._api_denied):
            return
        elif path.rstrip(b"/") == b"/2015-03-31/functions":  # before the prefixes
            if req.method == b"POST":
                self.deployments.create(req, conn)
            else:
                self.control.list_functions(req, conn)
        elif path.startswith(b"/2017-03-31/tags/"):
            self.deployments.tags(req, conn, path, query)
        elif path.startswith(_API_PREFIXES):
            self.api.handle(req, conn, path, query)
        else:
            unknown_path(req, conn, path)

    def _signed(
        self,
        req: Request,
        path: bytes,
        query: bytes,
        service: str,
        conn: Connection,
        denied: Denied,
    ) -> bool:
        """True when SigV4 is off or the request is signed for ``service``; else answer 403."""
        credentials = self.config.require_sigv4
        if credentials is None:
            return True
        headers: dict[str, str] = {}
        for name, value in req.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        try:
            verify(
                req.method.decode(),
                path.decode("latin-1"),
                query.decode("latin-1"),
                headers,
                req.body,
                credentials,
                service=service,
            )
        except SigV4Error as exc:
            self.sigv4_refusals += 1
            log.info("SigV4 refused %s: %s: %s", path[:200], exc.error_type, exc)
            denied(req, conn, exc)
            return False
        return True

    def _api_denied(self, req: Request, conn: Connection, exc: SigV4Error) -> None:
        body = dumps({"message": str(exc), "Type": "User"})
        conn.send(req, 403, error_head(exc.error_type), body)

    def _too_large(self, req: Request, conn: Connection) -> None:
        limit = self.config.max_payload
        body = dumps(
            {
                "Type": "User",
                "message": f"Request must be smaller than {limit} bytes for the Invoke operation",
            }
        )
        conn.send(req, 413, error_head("RequestTooLargeException"), body)

    # /_emulator/...
    def _emulator(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        if path == b"/_emulator/stats" and req.method == b"GET":
            conn.send(req, 200, JSON, dumps(self.stats()))
        elif path == b"/_emulator/reset" and req.method == b"POST":
            params = parse_qs(query.decode("latin-1"))
            envs = params.get("environments", ["false"])[0].lower() in ("1", "true", "yes")
            self.reset(environments=envs)
            conn.send(req, 200, JSON, b'{"reset":true}')
        elif path == b"/_emulator/health":
            conn.send(req, 200, JSON, b'{"ok":true}')
        else:
            unknown_path(req, conn, path)

    def reset(self, environments: bool = False) -> None:
        now = _monotonic()
        for fn in self.model.functions.values():
            fn.stats = new_stats(now)
        self.parse_errors = 0
        self.handler_errors = 0
        self.sigv4_refusals = 0
        if environments:
            self.model.reset_environments(now)

    def stats(self) -> dict[str, Any]:
        now = _monotonic()
        self.model.reclaim(now)
        model = self.model
        functions = {}
        for name, fn in model.functions.items():
            fn.stats.bucket(now, fn.busy)
            functions[name] = fn.stats.to_dict(
                fn.busy,
                fn.environments,
                {
                    "reserved": fn.config.reserved,
                    "idle_environments": len(fn.idle),
                    "scaling_tokens": int(fn.scaling.tokens),
                },
            )
        return {
            "emulator": {
                "uptime_s": round(now - self.started, 3),
                "account_concurrency": self.config.account_concurrency,
                "unreserved_concurrency": model.unreserved_limit,
                "unreserved_in_use": model.unreserved_busy,
                "scaling": self.config.scaling,
                "parse_errors": self.parse_errors,
                "handler_errors": self.handler_errors,
                "sigv4_refusals": self.sigv4_refusals,  # requests refused before any function
                "pid": os.getpid(),
            },
            "functions": functions,
        }
