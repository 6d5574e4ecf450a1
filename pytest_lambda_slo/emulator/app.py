"""The emulator's core: dispatch, the execution of invocations, Function URL, API Gateway, stats."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from .config import EmulatorConfig
from .lambda_api import LambdaApi
from .model import URL_RATE_LIMIT, Function, Invocation, Model
from .server import Connection, Request
from .sigv4 import SigV4Error, verify
from .stats import new_stats
from .wire import HANDLED, JSON, TIMEOUT, UNHANDLED, dumps, error_head, wire_reason

log = logging.getLogger("pytest_lambda_slo.emulator")
_monotonic = time.monotonic

_APIGW_500 = b'{"message": "Internal server error"}'
_APIGW_429 = b'{"message":"Too Many Requests"}'
_URL_502 = b'{"Message":"Internal Server Error"}'
_API_PREFIXES = (b"/2015-03-31/functions/", b"/2017-10-31/functions/", b"/2019-09-30/functions/")
# Called when a handler finishes: (invocation, error kind or None, handler seconds).
Done = Callable[[Invocation, "str | None", float], None]


class FrontDoor:
    """Prebuilt bytes of one function's HTTP answers (the hot path only joins them)."""

    __slots__ = ("body", "cold_head", "payload", "warm_head")

    def __init__(self, function: Function) -> None:
        cfg = function.config
        size = cfg.body_size
        self.body = (b"hello" * (size // 5 + 1))[:size]
        self.payload = dumps(self.body.decode())
        base = b"content-type: text/plain\r\n"
        if cfg.cold_header:
            self.cold_head = base + b"x-cold-start: true\r\n"
            self.warm_head = base + b"x-cold-start: false\r\n"
        else:
            self.cold_head = self.warm_head = base


class EmulatorApp:
    """Routes requests to the execution model and writes Lambda-shaped answers."""

    def __init__(self, config: EmulatorConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        now = _monotonic()
        self.started = now
        self.model = Model(config, now)
        self.rng = self.model.rng
        self.doors = {f: FrontDoor(f) for f in self.model.functions.values()}
        self.parse_errors = 0
        self.handler_errors = 0
        self.sigv4_refusals = 0
        h = os.urandom(8).hex()
        # Request ids look like UUIDs: a random prefix per process plus a counter.
        self._rid_prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[1:4]}-"
        self._rid = 0
        self._timer: asyncio.TimerHandle | None = None
        self.api = LambdaApi(self)

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

    def _tick(self) -> None:
        now = _monotonic()
        self.model.reclaim(now)
        for function in self.model.functions.values():
            function.stats.bucket(now, function.busy)
        self._timer = self.loop.call_later(1.0, self._tick)

    def on_parse_error(self) -> None:
        self.parse_errors += 1

    def request_id(self) -> str:
        self._rid += 1
        return f"{self._rid_prefix}{self._rid:012x}"

    # dispatch
    def handle(self, req: Request, conn: Connection) -> None:
        path, _, query = req.url.partition(b"?")
        if req.too_large:  # before SigV4: the dropped body cannot be hashed
            self._too_large(req, conn)
            return
        if path.startswith(b"/url/"):
            if self.config.require_sigv4 is None or self._signed(req, conn, path, query):
                self._function_url(req, conn, path)
            return
        if path.startswith(b"/_emulator/"):
            self._emulator(req, conn, path, query)
            return
        if self.config.require_sigv4 is not None and not self._signed(req, conn, path, query):
            return
        if path.startswith(b"/apigw/"):
            self._apigw(req, conn, path)
        elif path.rstrip(b"/") == b"/2015-03-31/functions" and req.method == b"GET":
            self.api.list_functions(req, conn)  # before the prefixes: they match ".../functions/"
        elif path.startswith(_API_PREFIXES):
            self.api.handle(req, conn, path, query)
        else:
            self.not_found(
                req, conn, "UnknownOperationException", "Unknown path " + path.decode("latin-1")
            )

    def _signed(self, req: Request, conn: Connection, path: bytes, query: bytes) -> bool:
        assert self.config.require_sigv4 is not None
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
                self.config.require_sigv4,
            )
        except SigV4Error as exc:
            self.sigv4_refusals += 1
            body = dumps({"message": str(exc), "Type": "User"})
            conn.send(req, 403, error_head(exc.error_type), body)
            return False
        return True

    # helpers
    def reply(
        self, req: Request, conn: Connection, fn: Function, status: int, head: bytes, body: bytes
    ) -> None:
        written = conn.send(req, status, head, body)
        stats = fn.stats
        stats.responses[status] = stats.responses.get(status, 0) + 1
        if written:
            stats.latency.record((written - req.t0) // 1000)

    def not_found(self, req: Request, conn: Connection, error_type: str, message: str) -> None:
        body = dumps({"Type": "User", "message": message})
        conn.send(req, 404, error_head(error_type), body)

    def function_missing(self, req: Request, conn: Connection, name: str) -> None:
        arn = f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"
        self.not_found(req, conn, "ResourceNotFoundException", f"Function not found: {arn}")

    def _too_large(self, req: Request, conn: Connection) -> None:
        limit = self.config.max_payload
        body = dumps(
            {
                "Type": "User",
                "message": f"Request must be smaller than {limit} bytes for the Invoke operation",
            }
        )
        conn.send(req, 413, error_head("RequestTooLargeException"), body)

    # the execution model
    def start_invocation(self, fn: Function, now: float) -> Invocation | str:
        """Acquire an environment and update stats; an Invocation or a throttle reason."""
        result = self.model.acquire(fn, now)
        if result.__class__ is str:
            return self._throttled(fn, now, result)  # type: ignore[arg-type]
        stats = fn.stats
        bucket = stats.bucket(now, fn.busy)
        stats.invocations += 1
        bucket[1] += 1
        busy = fn.busy
        if busy > bucket[4]:
            bucket[4] = busy
        if busy > stats.peak_concurrency:
            stats.peak_concurrency = busy
        if result.cold:  # type: ignore[union-attr]
            stats.cold_starts += 1
            bucket[3] += 1
        return result

    def _throttled(self, fn: Function, now: float, reason: str) -> str:
        """Count a Lambda throttle; returns the reason."""
        stats = fn.stats
        stats.throttles[reason] = stats.throttles.get(reason, 0) + 1
        stats.bucket(now, fn.busy)[2] += 1
        return reason

    def execute(
        self,
        inv: Invocation,
        done: Done | None,
        req: Request | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Run the handler: sleep init (cold) plus duration, then release and call ``done``."""
        cfg = inv.function.config
        rng = self.rng
        init = 0.0 if not inv.cold or cfg.init.is_zero else cfg.init.sample(rng)
        duration = 0.0 if cfg.duration.is_zero else cfg.duration.sample(rng)
        error = None
        if cfg.error_rate and rng.random() < cfg.error_rate:
            error = UNHANDLED if cfg.unhandled and rng.random() < cfg.unhandled else HANDLED
        if duration > cfg.timeout:
            duration, error = cfg.timeout, TIMEOUT
        inv.init_s = init
        total = init + duration
        if inv.cold and cfg.proactive_init and rng.random() < cfg.proactive_init:
            # Lambda initialised this environment ahead of time: Init Duration is still
            # reported, but the request does not wait for it.
            inv.proactive = True
            inv.function.stats.proactive_inits += 1
            total = duration
        if total > 0.0:
            deadline = inv.started + total
            self.loop.call_later(total, self._finish, inv, error, done, req, conn, deadline)
        else:
            self._finish(inv, error, done, req, conn)

    def _finish(
        self,
        inv: Invocation,
        error: str | None,
        done: Done | None,
        req: Request | None,
        conn: Connection | None,
        deadline: float = 0.0,
    ) -> None:
        now = _monotonic()
        if now < deadline:
            # uvloop's timer clock is coarse (ms, cached per loop turn) and can fire early:
            # a handler never finishes before its sampled time.
            self.loop.call_later(
                deadline - now, self._finish, inv, error, done, req, conn, deadline
            )
            return
        fn = inv.function
        self.model.release(inv, now, destroy=error is not None and error != HANDLED)
        stats = fn.stats
        waited_init = 0.0 if inv.proactive else inv.init_s
        handler_s = max(0.0, now - inv.started - waited_init)
        stats.duration.record(int(handler_s * 1e6))
        if inv.cold:
            stats.init.record(int(inv.init_s * 1e6))
        if error is not None:
            stats.errors[HANDLED if error == HANDLED else UNHANDLED] += 1
        if done is not None:
            try:
                done(inv, error, handler_s)
            except Exception:  # never leave the client waiting: answer 500 and log
                self.handler_errors += 1
                log.exception("handler failed")
                if conn is not None and req is not None:
                    conn.send_error_500(req)

    # Function URL: /url/{name}/...
    def _function_url(self, req: Request, conn: Connection, path: bytes) -> None:
        end = path.find(b"/", 5)
        raw = path[5:] if end < 0 else path[5:end]
        fn = self.model.by_bytes.get(raw)
        if fn is None:
            self.function_missing(req, conn, unquote(raw.decode("latin-1")))
            return
        now = _monotonic()
        if fn.url_rate is not None and not fn.url_rate.take(now):
            result: Invocation | str = self._throttled(fn, now, URL_RATE_LIMIT)
        else:
            result = self.start_invocation(fn, now)
        if result.__class__ is str:
            body = dumps({"message": "Rate Exceeded.", "Reason": wire_reason(result)})  # type: ignore[arg-type]
            head = error_head("TooManyRequestsException", b"retry-after: 1\r\n")
            self.reply(req, conn, fn, 429, head, body)
            return
        door = self.doors[fn]

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            rid = self.request_id().encode()
            if error is not None:
                head = error_head("ServiceException", b"x-amzn-requestid: " + rid + b"\r\n")
                self.reply(req, conn, fn, 502, head, _URL_502)
                return
            head = (door.cold_head if inv.cold else door.warm_head) + b"x-amzn-requestid: "
            self.reply(req, conn, fn, 200, head + rid + b"\r\n", door.body)

        self.execute(result, done, req, conn)  # type: ignore[arg-type]

    # API Gateway REST proxy: /apigw/{name}/...
    def _apigw(self, req: Request, conn: Connection, path: bytes) -> None:
        end = path.find(b"/", 7)
        raw = path[7:] if end < 0 else path[7:end]
        fn = self.model.by_bytes.get(raw)
        if fn is None:
            body = b'{"message":"Not Found"}'
            conn.send(req, 404, error_head("NotFoundException"), body)
            return
        now = _monotonic()
        rid = self.request_id().encode()
        extra = b"x-amzn-requestid: " + rid + b"\r\n"
        if fn.stage is not None and not fn.stage.take(now):
            fn.stats.stage_throttles += 1
            self.reply(
                req, conn, fn, 429, error_head("TooManyRequestsException", extra), _APIGW_429
            )
            return
        result = self.start_invocation(fn, now)
        if result.__class__ is str:
            head = error_head("InternalServerErrorException", extra)
            self.reply(req, conn, fn, 500, head, _APIGW_500)
            return
        door = self.doors[fn]

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            if error is not None:
                head = error_head("InternalServerErrorException", extra)
                self.reply(req, conn, fn, 502, head, _APIGW_500)
                return
            head = (door.cold_head if inv.cold else door.warm_head) + extra
            self.reply(req, conn, fn, 200, head, door.body)

        self.execute(result, done, req, conn)  # type: ignore[arg-type]

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
            self.not_found(
                req, conn, "UnknownOperationException", "Unknown path " + path.decode("latin-1")
            )

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
