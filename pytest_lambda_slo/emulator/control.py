"""The Lambda control plane: function configuration, updates and reserved concurrency."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from .model import Function, Model
from .server import Connection, Request
from .settings import EmulatorConfig
from .wire import JSON, bad_request, dumps, error_head


class ControlPlane:
    """GetFunction(Configuration), UpdateFunctionConfiguration, the concurrency calls."""

    def __init__(
        self, config: EmulatorConfig, model: Model, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self.model = model
        self.loop = loop

    def list_functions(self, req: Request, conn: Connection) -> None:
        functions = [self.configuration(f) for f in self.model.functions.values()]
        conn.send(req, 200, JSON, dumps({"Functions": functions}))

    def configuration(self, fn: Function) -> dict[str, Any]:
        """The FunctionConfiguration object boto3 parses."""
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
        deployment = fn.deployment
        if deployment is not None:
            out.update(
                {
                    "Runtime": deployment.runtime,
                    "Role": deployment.role,
                    "Handler": deployment.handler,
                    "CodeSize": deployment.code.size,
                    "CodeSha256": deployment.code.sha256,
                    "Description": deployment.description,
                    "LastModified": deployment.last_modified,
                    "State": deployment.state,
                    "Architectures": list(deployment.architectures),
                }
            )
            if deployment.state == "Pending":
                out["StateReason"] = "The function is being created."
                out["StateReasonCode"] = "Creating"
        return out

    def get_function(self, req: Request, conn: Connection, fn: Function) -> None:
        out: dict[str, Any] = {
            "Configuration": self.configuration(fn),
            "Code": {"RepositoryType": "S3", "Location": "https://example.invalid/code.zip"},
        }
        if fn.config.reserved is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": fn.config.reserved}
        if fn.tags:
            out["Tags"] = dict(fn.tags)
        conn.send(req, 200, JSON, dumps(out))

    def get_configuration(self, req: Request, conn: Connection, fn: Function) -> None:
        conn.send(req, 200, JSON, dumps(self.configuration(fn)))

    def update_configuration(self, req: Request, conn: Connection, fn: Function) -> None:
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
            bad_request(req, conn, "InvalidParameterValueException", str(exc))
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
        conn.send(req, 200, JSON, dumps(self.configuration(fn)))

    def put_concurrency(self, req: Request, conn: Connection, fn: Function) -> None:
        try:
            data = json.loads(req.body or b"{}")
            value = data["ReservedConcurrentExecutions"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                "ReservedConcurrentExecutions must be a whole number >= 0",
            )
            return
        model = self.model
        unreserved = model.unreserved_limit + (fn.config.reserved or 0) - value
        floor = model.min_unreserved()
        if unreserved < floor:
            bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                f"Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{floor}].",
            )
            return
        model.set_reserved(fn, value, time.monotonic())
        conn.send(req, 200, JSON, dumps({"ReservedConcurrentExecutions": value}))

    def delete_concurrency(self, req: Request, conn: Connection, fn: Function) -> None:
        self.model.set_reserved(fn, None, time.monotonic())
        conn.send(req, 204, b"", b"")

    def get_concurrency(self, req: Request, conn: Connection, fn: Function) -> None:
        reserved = fn.config.reserved
        body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
        conn.send(req, 200, JSON, dumps(body))
