"""The Lambda API routes: Invoke (RequestResponse, Event, DryRun) and the control plane."""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .model import Function, Invocation
from .server import Connection, Request
from .wire import HANDLED, JSON, TIMEOUT, UNHANDLED, dumps, error_head, wire_reason

if TYPE_CHECKING:
    from .app import EmulatorApp


class LambdaApi:
    """Invoke and control-plane calls, answered as the real Lambda API does (boto3 parses them)."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def list_functions(self, req: Request, conn: Connection) -> None:
        functions = [self._configuration(f) for f in self.app.model.functions.values()]
        conn.send(req, 200, JSON, dumps({"Functions": functions}))

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

    def handle(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        app = self.app
        parts = path.split(b"/")
        if len(parts) < 4 or not parts[3]:
            app.not_found(req, conn, "UnknownOperationException", "Unknown operation")
            return
        name, qualifier = self._resolve(parts[3])
        fn = app.model.functions.get(name)
        if fn is None:
            app.function_missing(req, conn, name)
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
            app.model.set_reserved(fn, None, time.monotonic())
            conn.send(req, 204, b"", b"")
        elif op == b"concurrency" and method == b"GET" and version == b"2019-09-30":
            reserved = fn.config.reserved
            body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
            conn.send(req, 200, JSON, dumps(body))
        else:
            app.not_found(
                req,
                conn,
                "UnknownOperationException",
                "Unknown operation " + (method + b" " + path).decode("latin-1"),
            )

    def _bad_request(self, req: Request, conn: Connection, error_type: str, message: str) -> None:
        conn.send(req, 400, error_head(error_type), dumps({"Type": "User", "message": message}))

    def _invoke(self, req: Request, conn: Connection, fn: Function, qualifier: str | None) -> None:
        app = self.app
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
        rid = app.request_id()
        rid_line = f"x-amzn-requestid: {rid}\r\n".encode()
        if invocation_type == "DryRun":
            app.reply(req, conn, fn, 204, rid_line, b"")
            return
        result = app.start_invocation(fn, time.monotonic())
        if invocation_type == "Event":
            # Lambda queues the event; a throttle is retried internally, never shown.
            if result.__class__ is not str:
                app.execute(result, None)  # type: ignore[arg-type]
            app.reply(req, conn, fn, 202, rid_line, b"")
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
            extra = b"retry-after: 1\r\n" + rid_line
            app.reply(req, conn, fn, 429, error_head("TooManyRequestsException", extra), body)
            return
        tail = (req.header(b"x-amz-log-type") or b"").lower() == b"tail"
        head = rid_line + f"x-amz-executed-version: {version}\r\n".encode()

        def done(inv: Invocation, error: str | None, handler_s: float) -> None:
            extra = head
            if error is None:
                payload = app.doors[fn].payload
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
            app.reply(req, conn, fn, 200, JSON + extra, payload)

        app.execute(result, done, req, conn)  # type: ignore[arg-type]

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
        app = self.app
        cfg = fn.config
        out: dict[str, Any] = {
            "FunctionName": cfg.name,
            "FunctionArn": fn.arn,
            "Runtime": "python3.12",
            "Role": f"arn:aws:iam::{app.config.account_id}:role/lambda-slo-emulator",
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
        app = self.app
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

        fn.update_handle = app.loop.call_later(app.config.update_delay, finished)
        conn.send(req, 200, JSON, dumps(self._configuration(fn)))

    def _put_concurrency(self, req: Request, conn: Connection, fn: Function) -> None:
        app = self.app
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
        unreserved = app.model.unreserved_limit + (fn.config.reserved or 0) - value
        floor = app.model.min_unreserved()
        if unreserved < floor:
            self._bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                f"Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{floor}].",
            )
            return
        app.model.set_reserved(fn, value, time.monotonic())
        conn.send(req, 200, JSON, dumps({"ReservedConcurrentExecutions": value}))
