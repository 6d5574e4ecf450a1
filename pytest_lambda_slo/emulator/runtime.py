"""The runtime loop inside an execution environment's process (run as a script, stdlib only).

``python runtime.py FD TASK_ROOT HANDLER``: imports the handler (the Init phase), says ready,
then answers one event at a time over the socket FD, as Lambda's Python runtime does:
``handler(event, context)``, the result JSON-encoded, an exception turned into the
``errorMessage``/``errorType``/``stackTrace`` object, ``print`` output kept for the log.

Frames both ways: 8 bytes (head length, body length, big-endian), a JSON head, the body.
It imports nothing of the emulator: the function's code sees a plain interpreter.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

_HEADER = struct.Struct("!II")
LOG_KEEP = 16 * 1024  # characters of output kept per invocation (the tail shows 4 KB)


def read_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    """One frame, or None when the other side closed."""
    header = _read_exact(sock, _HEADER.size)
    if header is None:
        return None
    head_len, body_len = _HEADER.unpack(header)
    head = _read_exact(sock, head_len)
    body = _read_exact(sock, body_len)
    if head is None or body is None:
        return None
    return json.loads(head), body


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_frame(sock: socket.socket, head: dict[str, Any], body: bytes = b"") -> None:
    data = json.dumps(head).encode()
    sock.sendall(_HEADER.pack(len(data), len(body)) + data + body)


class LogBuffer(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr: what the function prints goes to its log."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size > 4 * LOG_KEEP:  # keep memory bounded during a chatty invocation
            self._parts = [self.getvalue()]
            self._size = len(self._parts[0])
        return len(text)

    def getvalue(self) -> str:
        return "".join(self._parts)[-LOG_KEEP:]

    def take(self) -> str:
        text = self.getvalue()
        self._parts, self._size = [], 0
        return text


class LambdaContext:
    """The context object, with the Python runtime's attributes (strings where it has them)."""

    def __init__(self, head: dict[str, Any]) -> None:
        env = os.environ
        self.aws_request_id: str = head["request_id"]
        self.invoked_function_arn: str = head["invoked_function_arn"]
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = head.get("client_context")
        self.identity = None
        self._deadline_ms: int = head["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_object(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """What Lambda's Python runtime reports for an exception."""
    out: dict[str, Any] = {"errorMessage": str(exc), "errorType": type(exc).__name__}
    if request_id is not None:
        out["requestId"] = request_id
    out["stackTrace"] = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
    return out


def _watch_parent(parent: int) -> None:
    """Exit when the emulator is gone, even if the handler never returns."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init(task_root: str, handler: str, log: LogBuffer) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        message = f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)"
        return None, {"errorMessage": message, "errorType": "Runtime.MalformedHandlerName"}
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # the runtime reports any import failure this way
        message = f"Unable to import module '{module_name}': {exc}"
        print(f"[ERROR] Runtime.ImportModuleError: {message}", file=log)
        return None, {"errorMessage": message, "errorType": "Runtime.ImportModuleError"}
    function = getattr(module, function_name, None)
    if function is None:
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, {"errorMessage": message, "errorType": "Runtime.HandlerNotFound"}
    return function, None


def serve(sock: socket.socket, task_root: str, handler: str) -> None:
    log = LogBuffer()
    sys.stdout = sys.stderr = log
    function, init_error = _init(task_root, handler, log)
    write_frame(sock, {"ready": init_error is None, "error": init_error, "log": log.take()})
    if init_error is not None:
        return
    while True:
        frame = read_frame(sock)
        if frame is None:
            return
        head, body = frame
        request_id = head["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = head.get("trace_id", "")
        try:
            event = json.loads(body) if body else {}
            result = function(event, LambdaContext(head))
        except Exception as exc:
            error = error_object(exc, request_id)
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=log)
            print("".join(traceback.format_exception(exc)).rstrip(), file=log)
            write_frame(sock, {"ok": False, "log": log.take()}, json.dumps(error).encode())
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            error = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "requestId": request_id,
                "stackTrace": [],
            }
            write_frame(sock, {"ok": False, "log": log.take()}, json.dumps(error).encode())
            continue
        write_frame(sock, {"ok": True, "log": log.take()}, payload)


def main() -> None:
    fd, task_root, handler = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    # The function's directory comes first, as /var/task does; this file's own directory
    # (the emulator's package) must not be importable by the function's code.
    sys.path[0] = task_root
    os.chdir(task_root)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(fileno=fd)
    try:
        serve(sock, task_root, handler)
    finally:
        sock.close()


if __name__ == "__main__":
    main()
