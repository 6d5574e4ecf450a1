"""The Lambda API's routes and its Invoke call (RequestResponse, Event, DryRun).

Answered as the real Lambda API does, so boto3's Lambda client parses every answer.
"""

from __future__ import annotations

import base64
import json
import math
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from .control import ControlPlane
from .deploy import Deployments
from .execution import Executor
from .ids import Ids
from .model import Function, Invocation
from .server import Connection, Request
from .settings import EmulatorConfig
from .wire import (
    HANDLED,
    JSON,
    TIMEOUT,
    UNHANDLED,
    CannedAnswers,
    bad_request,
    dumps,
    error_head,
    function_missing,
    not_found,
    reply,
    wire_reason,
)


def resolve_name(raw: bytes) -> tuple[str, str | None]:
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


class LambdaApi:
    """Routes ``/2015-03-31/functions/...`` and friends; answers Invoke itself."""

    def __init__(
        self,
        config: EmulatorConfig,
        executor: Executor,
        ids: Ids,
        canned: CannedAnswers,
        control: ControlPlane,
        deployments: Deployments,
    ) -> None:
        self.config = config
        self.executor = executor
        self.model = executor.model
        self.ids = ids
        self.canned = canned
        self.control = control
        self.deployments = deployments

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"

    def handle(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        parts = path.split(b"/")
        if len(parts) < 4 or not parts[3]:
            not_found(req, conn, "UnknownOperationException", "Unknown operation")
            return
        name, qualifier = resolve_name(parts[3])
        fn = self.model.functions.get(name)
        if fn is None:
            function_missing(req, conn, self._arn(name))
            return
        params = parse_qs(query.decode("latin-1"))
        if "Qualifier" in params:
            qualifier = params["Qualifier"][0]
        op = parts[4] if len(parts) > 4 else b""
        version, method = parts[1], req.method
        control = self.control
        if version == b"2015-03-31" and op == b"invocations" and method == b"POST":
            self._invoke(req, conn, fn, qualifier)
        elif version == b"2015-03-31" and op == b"configuration" and method == b"GET":
            control.get_configuration(req, conn, fn)
        elif version == b"2015-03-31" and op == b"configuration" and method == b"PUT":
            control.update_configuration(req, conn, fn)
        elif version == b"2015-03-31" and op == b"" and method == b"GET":
            control.get_function(req, conn, fn)
        elif version == b"2015-03-31" and op == b"" and method == b"DELETE":
            self.deployments.delete(req, conn, fn)
        elif version == b"2015-03-31" and op == b"code" and method == b"PUT":
            self.deployments.update_code(req, conn, fn)
        elif op == b"concurrency" and method == b"PUT" and version == b"2017-10-31":
            control.put_concurrency(req, conn, fn)
        elif op == b"concurrency" and method == b"DELETE" and version == b"2017-10-31":
            control.delete_concurrency(req, conn, fn)
        elif op == b"concurrency" and method == b"GET" and version == b"2019-09-30":
            control.get_concurrency(req, conn, fn)
        else:
            not_found(
                req,
                conn,
                "UnknownOperationException",
                "Unknown operation " + (method + b" " + path).decode("latin-1"),
            )

    def _invoke(self, req: Request, conn: Connection, fn: Function, qualifier: str | None) -> None:
        invocation_type = (req.header(b"x-amz-invocation-type") or b"RequestResponse").decode()
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            bad_request(
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
                bad_request(
                    req, conn, "InvalidRequestContentException", "Could not parse request body"
                )
                return
        if fn.deployment is not None and fn.deployment.state != "Active":
            body = dumps(
                {
                    "Type": "User",
                    "message": "The operation cannot be performed at this time. The function "
                    f"is currently in the following state: {fn.deployment.state}",
                }
            )
            conn.send(req, 409, error_head("ResourceConflictException"), body)
            return
        version = qualifier if qualifier and qualifier.isdigit() else "$LATEST"
        rid = self.ids.request_id()
        trace = self.ids.trace_id(req.header(b"x-amzn-trace-id"))
        rid_line = b"x-amzn-requestid: %s\r\nx-amzn-trace-id: %s\r\n" % (rid.encode(), trace)
        if invocation_type == "DryRun":
            reply(req, conn, fn, 204, rid_line, b"")
            return
        executor = self.executor
        result = executor.start_invocation(fn, time.monotonic())
        if invocation_type == "Event":
            # Lambda queues the event; a throttle is retried internally, never shown.
            if result.__class__ is not str:
                result.request_id = rid  # type: ignore[union-attr]
                result.event = req.body  # type: ignore[union-attr]
                executor.execute(result, None)  # type: ignore[arg-type]
            reply(req, conn, fn, 202, rid_line, b"")
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
            reply(req, conn, fn, 429, error_head("TooManyRequestsException", extra), body)
            return
        inv: Invocation = result  # type: ignore[assignment]
        inv.request_id = rid
        if fn.deployment is not None:
            inv.event = req.body
            inv.trace_id = trace.decode()
        tail = (req.header(b"x-amz-log-type") or b"").lower() == b"tail"
        head = rid_line + f"x-amz-executed-version: {version}\r\n".encode()
        canned = self.canned.get(fn)
        # With echo the answer is the event as received (an empty payload is the event {}).
        answer = (req.body or b"{}") if fn.config.echo else canned.payload

        def done(inv: Invocation, error: str | None, handler_s: float) -> None:
            extra = head
            if error is None:
                payload = answer if inv.response is None else inv.response
            else:
                kind = HANDLED if error == HANDLED else UNHANDLED
                extra += f"x-amz-function-error: {kind}\r\n".encode()
                if inv.response is not None:  # real code: its error object
                    payload = inv.response
                else:
                    payload = dumps(error_payload(error, rid, fn))
            if tail:
                extra += b"x-amz-log-result: " + log_tail(inv, version, handler_s, error) + b"\r\n"
            reply(req, conn, fn, 200, JSON + extra, payload)

        executor.execute(inv, done, req, conn)


def error_payload(error: str, rid: str, fn: Function) -> dict[str, Any]:
    """The error object of an emulated function error."""
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


def log_tail(inv: Invocation, version: str, handler_s: float, error: str | None) -> bytes:
    """Base64 of the last 4 KB of the invocation's log: START, END and REPORT lines."""
    cfg = inv.function.config
    rid = inv.request_id
    duration_ms = handler_s * 1000.0
    billed = max(1, math.ceil(duration_ms))
    lines = [f"START RequestId: {rid} Version: {version}"]
    if inv.log:  # what real code printed (its Init output first, on a cold start)
        lines.append(inv.log.rstrip("\n"))
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
