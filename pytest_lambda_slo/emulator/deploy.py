"""Functions with real code: CreateFunction, UpdateFunctionCode, DeleteFunction and tags.

A function created here runs its zip's handler (see execution.py and sandbox.py); its
execution-model keys (memory, timeout) come from the request, the rest from the defaults.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, unquote

from .code import (
    CodeError,
    CodePackage,
    Deployment,
    check_architectures,
    check_handler,
    check_runtime,
    check_tags,
    unpack,
)
from .config import FunctionConfig
from .control import ControlPlane
from .model import Function, Model
from .server import Connection, Request
from .settings import EmulatorConfig
from .wire import JSON, CannedAnswers, bad_request, dumps, error_head, not_found

_monotonic = time.monotonic
UPLOAD_LIMIT = 70 * 1024 * 1024  # a 50 MB zip, base64 in JSON


def _conflict(req: Request, conn: Connection, message: str) -> None:
    body = dumps({"Type": "User", "message": message})
    conn.send(req, 409, error_head("ResourceConflictException"), body)


def _int_field(data: dict[str, Any], key: str, low: int, high: int, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CodeError(f"{key} {value!r} is not valid; use a whole number from {low} to {high}")
    return value


def _variables(data: dict[str, Any]) -> dict[str, str] | None:
    if "Environment" not in data:
        return None
    variables = (data["Environment"] or {}).get("Variables") or {}
    if not isinstance(variables, dict):
        raise CodeError("Environment.Variables must be an object of strings")
    return {str(k): str(v) for k, v in variables.items()}


class Deployments:
    """The calls that create, replace and delete real code, and the tag calls."""

    def __init__(
        self,
        config: EmulatorConfig,
        model: Model,
        loop: asyncio.AbstractEventLoop,
        control: ControlPlane,
        canned: CannedAnswers,
    ) -> None:
        self.config = config
        self.model = model
        self.loop = loop
        self.control = control
        self.canned = canned
        # Replaced or deleted code, removed once no handler can still be running from it.
        self._retired: set[CodePackage] = set()

    def _after_delay(self, fn: Function, action: Any) -> None:
        def run() -> None:
            fn.update_handle = None
            action()

        fn.update_handle = self.loop.call_later(self.config.update_delay, run)

    def _retire_code(self, package: CodePackage, grace_s: float) -> None:
        self._retired.add(package)

        def remove() -> None:
            self._retired.discard(package)
            package.remove()

        self.loop.call_later(grace_s, remove)

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            data = json.loads(req.body or b"{}")
        except ValueError:
            raise CodeError("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise CodeError("the request body must be a JSON object")
        return data

    def create(self, req: Request, conn: Connection) -> None:
        """POST /2015-03-31/functions: 201 with the configuration, State Pending then Active."""
        try:
            data = self._body(req)
            name = data.get("FunctionName")
            if not isinstance(name, str):
                raise CodeError("FunctionName is required")
            if name in self.model.functions:
                arn = f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:"
                _conflict(req, conn, f"Function already exist: {arn}{name}")
                return
            if data.get("PackageType", "Zip") != "Zip":
                raise CodeError("PackageType Image is not emulated; use a Zip package")
            code = data.get("Code") or {}
            if not isinstance(code, dict) or "ZipFile" not in code:
                raise CodeError("Code.ZipFile is required (S3 and image code are not emulated)")
            handler = check_handler(data.get("Handler"))
            runtime = check_runtime(data.get("Runtime"))
            architectures = check_architectures(data.get("Architectures"))
            tags = check_tags(data.get("Tags"))
            memory = _int_field(data, "MemorySize", 128, 10240, 128)
            timeout = _int_field(data, "Timeout", 1, 900, 3)
            variables = _variables(data) or {}
            role = data.get("Role")
            if not isinstance(role, str) or not role.startswith("arn:"):
                raise CodeError(f"Role {role!r} is not valid; use an IAM role ARN")
            config = FunctionConfig(name=name, memory=memory, timeout=float(timeout))
            package = unpack(code["ZipFile"], name)
        except (CodeError, ValueError) as exc:  # FunctionConfig refuses a bad name
            bad_request(req, conn, "InvalidParameterValueException", str(exc))
            return
        fn = self.model.add(config, _monotonic())
        fn.deployment = Deployment(
            code=package,
            handler=handler,
            runtime=runtime,
            role=role,
            description=str(data.get("Description", "")),
            architectures=architectures,
        )
        fn.variables = variables
        fn.tags = tags

        def activate() -> None:
            assert fn.deployment is not None
            fn.deployment.state = "Active"

        self._after_delay(fn, activate)
        conn.send(req, 201, JSON, dumps(self.control.configuration(fn)))

    def update_code(self, req: Request, conn: Connection, fn: Function) -> None:
        """PUT /2015-03-31/functions/{name}/code: new zip; warm environments are retired."""
        deployment = fn.deployment
        if deployment is None:
            bad_request(
                req,
                conn,
                "InvalidParameterValueException",
                f"{fn.config.name} is an emulated function without code; create it with "
                "CreateFunction and a ZipFile to update its code",
            )
            return
        if deployment.state != "Active" or fn.last_update_status == "InProgress":
            _conflict(
                req,
                conn,
                "The operation cannot be performed at this time. An update is in progress "
                f"for resource: {fn.arn}",
            )
            return
        try:
            data = self._body(req)
            if "ZipFile" not in data:
                raise CodeError("ZipFile is required (S3 and image code are not emulated)")
            architectures = (
                check_architectures(data["Architectures"])
                if "Architectures" in data
                else deployment.architectures
            )
            package = unpack(data["ZipFile"], fn.config.name)
        except CodeError as exc:
            bad_request(req, conn, "InvalidParameterValueException", str(exc))
            return
        self._retire_code(deployment.code, fn.config.timeout + 1.0)
        deployment.code = package
        deployment.architectures = architectures
        deployment.touch()
        fn.revision += 1
        fn.retire_all()
        fn.last_update_status = "InProgress"

        def finished() -> None:
            fn.last_update_status = "Successful"

        self._after_delay(fn, finished)
        conn.send(req, 200, JSON, dumps(self.control.configuration(fn)))

    def delete(self, req: Request, conn: Connection, fn: Function) -> None:
        """DELETE /2015-03-31/functions/{name}: idle processes go now, busy ones when done."""
        if fn.update_handle is not None:
            fn.update_handle.cancel()
            fn.update_handle = None
        self.model.remove(fn)
        self.canned.forget(fn)
        if fn.deployment is not None:
            self._retire_code(fn.deployment.code, fn.config.timeout + 1.0)
        conn.send(req, 204, b"", b"")

    # tags: /2017-03-31/tags/{arn}
    def tags(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        arn = unquote(path[len(b"/2017-03-31/tags/") :].decode("latin-1"))
        name = arn.split(":")[6] if arn.startswith("arn:") and arn.count(":") >= 6 else ""
        fn = self.model.functions.get(name)
        if fn is None or ":".join(arn.split(":")[:7]) != fn.arn:
            not_found(req, conn, "ResourceNotFoundException", f"Function not found: {arn}")
            return
        if req.method == b"GET":
            conn.send(req, 200, JSON, dumps({"Tags": fn.tags}))
        elif req.method == b"POST":
            try:
                tags = check_tags(self._body(req).get("Tags"))
            except CodeError as exc:
                bad_request(req, conn, "InvalidParameterValueException", str(exc))
                return
            fn.tags.update(tags)
            conn.send(req, 204, b"", b"")
        elif req.method == b"DELETE":
            for key in parse_qs(query.decode("latin-1")).get("tagKeys", []):
                fn.tags.pop(key, None)
            conn.send(req, 204, b"", b"")
        else:
            not_found(req, conn, "UnknownOperationException", "Unknown operation on tags")

    def close(self) -> None:
        """Remove every unpacked package (at shutdown, after the processes are gone)."""
        for fn in self.model.functions.values():
            if fn.deployment is not None:
                fn.deployment.code.remove()
        for package in list(self._retired):
            package.remove()
        self._retired.clear()
