"""The emulator's routes: Invoke API, control plane, Function URL, API Gateway and /_emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from .config import EmulatorConfig
from .model import SCALING_LIMIT, URL_RATE_LIMIT, Function, Invocation, Model
from .server import Connection, Request
from .sigv4 import SigV4Error, verify
from .stats import new_stats

log = logging.getLogger("pytest_lambda_slo.emulator")
_monotonic = time.monotonic
_monotonic_ns = time.monotonic_ns

JSON = b"content-type: application/json\r\n"
_APIGW_500 = b'{"message": "Internal server error"}'
_APIGW_429 = b'{"message":"Too Many Requests"}'
_URL_502 = b'{"Message":"Internal Server Error"}'
HANDLED, UNHANDLED, TIMEOUT = "Handled", "Unhandled", "Timeout"
# (status, body) of an outcome: a throttle reason string, or an error kind, or None (ok).
Done = Callable[[Invocation, "str | None", float], None]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def error_head(error_type: str, extra: bytes = b"") -> bytes:
    return JSON + b"x-amzn-errortype: " + error_type.encode() + b"\r\n" + extra


def wire_reason(reason: str) -> str:
    """The Reason Lambda sends; a scaling-rate throttle is reported as the account limit."""
    return "ConcurrentInvocationLimitExceeded" if reason == SCALING_LIMIT else reason


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
        h = os.urandom(8).hex()
        # Request ids look like UUIDs: a random prefix per process plus a counter.
        self._rid_prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[1:4]}-"
        self._rid = 0
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
        elif path.startswith((b"/2015-03-31/functions/", b"/2017-10-31/functions/")):
            self._lambda_api(req, conn, path, query)
        elif path.startswith(b"/2019-09-30/functions/"):
            self._lambda_api(req, conn, path, query)
        elif path.rstrip(b"/") == b"/2015-03-31/functions" and req.method == b"GET":
            functions = [self._configuration(f) for f in self.model.functions.values()]
            conn.send(req, 200, JSON, dumps({"Functions": functions}))  # ListFunctions
        else:
            self._not_found(
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
            body = dumps({"message": str(exc), "Type": "User"})
            conn.send(req, 403, error_head(exc.error_type), body)
            return False
        return True

    # helpers
    def _reply(
        self, req: Request, conn: Connection, fn: Function, status: int, head: bytes, body: bytes
    ) -> None:
        written = conn.send(req, status, head, body)
        stats = fn.stats
        stats.responses[status] = stats.responses.get(status, 0) + 1
        if written:
            stats.latency.record((written - req.t0) // 1000)

    def _not_found(self, req: Request, conn: Connection, error_type: str, message: str) -> None:
        body = dumps({"Type": "User", "message": message})
        conn.send(req, 404, error_head(error_type), body)

    def _function_missing(self, req: Request, conn: Connection, name: str) -> None:
        arn = f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"
        self._not_found(req, conn, "ResourceNotFoundException", f"Function not found: {arn}")

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
    def _start(self, fn: Function, now: float) -> Invocation | str:
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

    def _execute(
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
        fn = self.model.by_bytes.get(path[5:] if end < 0 else path[5:end])
        if fn is None:
            self._function_missing(req, conn, unquote(path[5:end].decode("latin-1")))
            return
        now = _monotonic()
        if fn.url_rate is not None and not fn.url_rate.take(now):
            result: Invocation | str = self._throttled(fn, now, URL_RATE_LIMIT)
        else:
            result = self._start(fn, now)
        if result.__class__ is str:
            body = dumps({"message": "Rate Exceeded.", "Reason": wire_reason(result)})  # type: ignore[arg-type]
            head = error_head("TooManyRequestsException", b"retry-after: 1\r\n")
            self._reply(req, conn, fn, 429, head, body)
            return

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            rid = self.request_id().encode()
            if error is not None:
                head = error_head("ServiceException", b"x-amzn-requestid: " + rid + b"\r\n")
                self._reply(req, conn, fn, 502, head, _URL_502)
                return
            door = self.doors[fn]
            head = (door.cold_head if inv.cold else door.warm_head) + b"x-amzn-requestid: "
            self._reply(req, conn, fn, 200, head + rid + b"\r\n", door.body)

        self._execute(result, done, req, conn)  # type: ignore[arg-type]

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
            self._reply(
                req, conn, fn, 429, error_head("TooManyRequestsException", extra), _APIGW_429
            )
            return
        result = self._start(fn, now)
        if result.__class__ is str:
            head = error_head("InternalServerErrorException", extra)
            self._reply(req, conn, fn, 500, head, _APIGW_500)
            return

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            if error is not None:
                head = error_head("InternalServerErrorException", extra)
                self._reply(req, conn, fn, 502, head, _APIGW_500)
                return
            door = self.doors[fn]
            head = (door.cold_head if inv.cold else door.warm_head) + extra
            self._reply(req, conn, fn, 200, head, door.body)

        self._execute(result, done, req, conn)  # type: ignore[arg-type]

    # Lambda API: invoke and control plane
    def _resolve(self, raw: bytes) -> tuple[str, str | None]:
        """Function name and qualifier from a name, a partial ARN or a full ARN."""
        text = unquote(raw.decode("latin-1"))
        qualifier = None
        if text.startswith("arn:"):
            parts = text.split(":")
            name = parts[6] if len(parts) > 6 else ""
            qualifier = parts[7] if len(parts) > 7 else None
        elif ":function:" in text:
            rest = text.split(":function:", 1)[1]
            name, _, q = rest.partition(":")
            qualifier = q or None
        else:
            name, _, q = text.partition(":")
            qualifier = q or None
        return name, qualifier

    def _lambda_api(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        parts = path.split(b"/")
        if len(parts) < 4 or not parts[3]:
            self._not_found(req, conn, "UnknownOperationException", "Unknown operation")
            return
        name, qualifier = self._resolve(parts[3])
        fn = self.model.functions.get(name)
        if fn is None:
            self._function_missing(req, conn, name)
            return
        params = parse_qs(query.decode("latin-1"))
        if "Qualifier" in params:
            qualifier = params["Qualifier"][0]
        op = parts[4] if len(parts) > 4 else b""
        version, method = parts[1], req.method
        if version == b"2015-03-31" and op == b"invocations" and method == b"POST":
            self._invoke(req, conn, fn, qualifier)
        elif version == b"2015-03-31" and op == b"configuration" and method == b"GET":
            conn.send(req, 200, JSON, dumps(self._configuration(fn)))
        elif version == b"2015-03-31" and op == b"configuration" and method == b"PUT":
            self._update(req, conn, fn)
        elif version == b"2015-03-31" and op == b"" and method == b"GET":
            conn.send(req, 200, JSON, dumps(self._get_function(fn)))
        elif op == b"concurrency" and method == b"PUT" and version == b"2017-10-31":
            self._put_concurrency(req, conn, fn)
        elif op == b"concurrency" and method == b"DELETE" and version == b"2017-10-31":
            self.model.set_reserved(fn, None, _monotonic())
            conn.send(req, 204, b"", b"")
        elif op == b"concurrency" and method == b"GET" and version == b"2019-09-30":
            reserved = fn.config.reserved
            body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
            conn.send(req, 200, JSON, dumps(body))
        else:
            self._not_found(
                req,
                conn,
                "UnknownOperationException",
                "Unknown operation " + (method + b" " + path).decode("latin-1"),
            )

    def _bad_request(self, req: Request, conn: Connection, error_type: str, message: str) -> None:
        conn.send(req, 400, error_head(error_type), dumps({"Type": "User", "message": message}))

    def _invoke(self, req: Request, conn: Connection, fn: Function, qualifier: str | None) -> None:
        invocation_type = (req.header(b"x-amz-invocation-type") or b"RequestResponse").decode()
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            self._bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                f"Invalid invocation type {invocation_type!r}; use RequestResponse, Event, DryRun",
            )
            return
        if req.body:
            try:
                json.loads(req.body)
            except ValueError:
                self._bad_request(
                    req, conn, "InvalidRequestContentException", "Could not parse request body"
                )
                return
        version = qualifier if qualifier and qualifier.isdigit() else "$LATEST"
        rid = self.request_id()
        head = f"x-amzn-requestid: {rid}\r\nx-amz-executed-version: {version}\r\n".encode()
        if invocation_type == "DryRun":
            self._reply(req, conn, fn, 204, b"x-amzn-requestid: " + rid.encode() + b"\r\n", b"")
            return
        result = self._start(fn, _monotonic())
        if invocation_type == "Event":
            # Lambda queues the event; a throttle is retried internally, never shown.
            if result.__class__ is not str:
                self._execute(result, None)  # type: ignore[arg-type]
            self._reply(req, conn, fn, 202, b"x-amzn-requestid: " + rid.encode() + b"\r\n", b"")
            return
        if result.__class__ is str:
            reason = wire_reason(result)  # type: ignore[arg-type]
            body = dumps(
                {
                    "Reason": reason,
                    "Type": "User",
                    "message": "Rate Exceeded.",
                    "retryAfterSeconds": "1",
                }
            )
            extra = f"retry-after: 1\r\nx-amzn-requestid: {rid}\r\n".encode()
            self._reply(req, conn, fn, 429, error_head("TooManyRequestsException", extra), body)
            return
        tail = (req.header(b"x-amz-log-type") or b"").lower() == b"tail"

        def done(inv: Invocation, error: str | None, handler_s: float) -> None:
            extra = head
            if error is None:
                payload = self.doors[fn].payload
            else:
                kind = HANDLED if error == HANDLED else UNHANDLED
                extra += f"x-amz-function-error: {kind}\r\n".encode()
                payload = dumps(self._error_payload(error, rid, fn))
            if tail:
                extra += (
                    b"x-amz-log-result: "
                    + self._log_tail(inv, rid, version, handler_s, error)
                    + b"\r\n"
                )
            self._reply(req, conn, fn, 200, JSON + extra, payload)

        self._execute(result, done, req, conn)  # type: ignore[arg-type]

    def _error_payload(self, error: str, rid: str, fn: Function) -> dict[str, Any]:
        if error == HANDLED:
            return {
                "errorMessage": "Emulated handled error",
                "errorType": "EmulatedError",
                "stackTrace": ['  File "/var/task/handler.py", line 1, in handler'],
            }
        if error == TIMEOUT:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            seconds = f"{fn.config.timeout:.2f}"
            return {"errorMessage": f"{stamp} {rid} Task timed out after {seconds} seconds"}
        return {
            "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 1",
            "errorType": "Runtime.ExitError",
        }

    def _log_tail(
        self, inv: Invocation, rid: str, version: str, handler_s: float, error: str | None
    ) -> bytes:
        cfg = inv.function.config
        duration_ms = handler_s * 1000.0
        billed = max(1, math.ceil(duration_ms))
        lines = [f"START RequestId: {rid} Version: {version}"]
        if error == TIMEOUT:
            lines.append(f"{rid} Task timed out after {cfg.timeout:.2f} seconds")
        lines.append(f"END RequestId: {rid}")
        report = (
            f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {billed} ms\tMemory Size: {cfg.memory} MB\t"
            f"Max Memory Used: {cfg.used_memory} MB\t"
        )
        if inv.cold:
            report += f"Init Duration: {inv.init_s * 1000.0:.2f} ms\t"
        if error == TIMEOUT:
            report += "Status: timeout"
        lines.append(report)
        text = ("\n".join(lines) + "\n").encode()
        return base64.b64encode(text[-4096:])

    def _configuration(self, fn: Function) -> dict[str, Any]:
        cfg = fn.config
        out: dict[str, Any] = {
            "FunctionName": cfg.name,
            "FunctionArn": fn.arn,
            "Runtime": "python3.12",
            "Role": f"arn:aws:iam::{self.config.account_id}:role/lambda-slo-emulator",
            "Handler": "handler.handler",
            "CodeSize": 1024,
            "Description": f"emulated ({cfg.profile} profile)",
            "Timeout": max(1, round(cfg.timeout)),
            "MemorySize": cfg.memory,
            "LastModified": "2024-01-01T00:00:00.000+0000",
            "CodeSha256": "ZW11bGF0b3I=",
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": f"00000000-0000-4000-8000-{fn.revision:012d}",
            "State": "Active",
            "LastUpdateStatus": fn.last_update_status,
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
        }
        if fn.variables:
            out["Environment"] = {"Variables": dict(fn.variables)}
        return out

    def _get_function(self, fn: Function) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Configuration": self._configuration(fn),
            "Code": {"RepositoryType": "S3", "Location": "https://example.invalid/code.zip"},
        }
        if fn.config.reserved is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": fn.config.reserved}
        return out

    def _update(self, req: Request, conn: Connection, fn: Function) -> None:
        if fn.last_update_status == "InProgress":
            body = dumps(
                {
                    "Type": "User",
                    "message": "The operation cannot be performed at this time. An update is "
                    f"in progress for resource: {fn.arn}",
                }
            )
            conn.send(req, 409, error_head("ResourceConflictException"), body)
            return
        try:
            data = json.loads(req.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("not an object")
            changes: dict[str, Any] = {}
            if "MemorySize" in data:
                memory = data["MemorySize"]
                if not isinstance(memory, int) or not 128 <= memory <= 10240:
                    raise ValueError(f"MemorySize {memory!r} must be 128 to 10240")
                changes["memory"] = memory
            if "Timeout" in data:
                timeout = data["Timeout"]
                if not isinstance(timeout, int) or not 1 <= timeout <= 900:
                    raise ValueError(f"Timeout {timeout!r} must be 1 to 900")
                changes["timeout"] = float(timeout)
            variables = (
                data.get("Environment", {}).get("Variables") if "Environment" in data else None
            )
        except (ValueError, AttributeError) as exc:
            self._bad_request(req, conn, "InvalidParameterValueException", str(exc))
            return
        if changes:
            fn.config = replace(fn.config, **changes)
        if variables is not None:
            fn.variables = {str(k): str(v) for k, v in variables.items()}
        fn.revision += 1
        fn.retire_all()
        fn.last_update_status = "InProgress"

        def finished() -> None:
            fn.last_update_status = "Successful"
            fn.update_handle = None

        fn.update_handle = self.loop.call_later(self.config.update_delay, finished)
        conn.send(req, 200, JSON, dumps(self._configuration(fn)))

    def _put_concurrency(self, req: Request, conn: Connection, fn: Function) -> None:
        try:
            data = json.loads(req.body or b"{}")
            value = data["ReservedConcurrentExecutions"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self._bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                "ReservedConcurrentExecutions must be a whole number >= 0",
            )
            return
        others = sum(f.config.reserved or 0 for f in self.model.functions.values() if f is not fn)
        unreserved = self.config.account_concurrency - others - value
        floor = self.model.min_unreserved()
        if unreserved < floor:
            self._bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                f"Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{floor}].",
            )
            return
        self.model.set_reserved(fn, value, _monotonic())
        conn.send(req, 200, JSON, dumps({"ReservedConcurrentExecutions": value}))

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
            self._not_found(
                req, conn, "UnknownOperationException", "Unknown path " + path.decode("latin-1")
            )

    def reset(self, environments: bool = False) -> None:
        now = _monotonic()
        for fn in self.model.functions.values():
            fn.stats = new_stats(now)
        self.parse_errors = 0
        self.handler_errors = 0
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
                "pid": os.getpid(),
            },
            "functions": functions,
        }
