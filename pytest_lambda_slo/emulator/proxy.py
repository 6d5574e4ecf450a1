"""Real code behind the HTTP doors: the events Lambda builds from a request and the answers
it makes of a handler's result (Function URL payload 2.0, API Gateway REST proxy 1.0).
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

from .server import Request
from .settings import EmulatorConfig

# Hop-by-hop and framing headers the server writes itself; a handler cannot set them.
_RESERVED = {"content-length", "connection", "transfer-encoding", "keep-alive", "upgrade"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _headers(req: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in req.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


def _body(req: Request) -> tuple[str | None, bool]:
    if not req.body:
        return None, False
    try:
        return req.body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(req.body).decode(), True


def _sub_path(path: bytes, prefix_len: int) -> str:
    """The path after ``/url/{name}`` or ``/apigw/{name}`` ("/" at least)."""
    end = path.find(b"/", prefix_len)
    return "/" if end < 0 else unquote(path[end:].decode("latin-1"))


def url_event(req: Request, path: bytes, query: bytes, rid: str, config: EmulatorConfig) -> bytes:
    """A Function URL event (payload format 2.0)."""
    headers = _headers(req)
    body, b64 = _body(req)
    raw_path = _sub_path(path, 5)
    raw_query = query.decode("latin-1")
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "emulator",
            "domainName": headers.get("host", ""),
            "domainPrefix": "emulator",
            "http": {
                "method": req.method.decode(),
                "path": raw_path,
                "protocol": "HTTP/1.0" if req.http10 else "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": b64,
    }
    if params:
        event["queryStringParameters"] = params
    if body is not None:
        event["body"] = body
    return json.dumps(event).encode()


def apigw_event(req: Request, path: bytes, query: bytes, rid: str, config: EmulatorConfig) -> bytes:
    """An API Gateway REST proxy event (payload format 1.0) for a ``/{proxy+}`` resource."""
    headers = _headers(req)
    multi_headers: dict[str, list[str]] = {}
    for raw_name, raw_value in req.headers:
        key = raw_name.decode("latin-1")
        multi_headers.setdefault(key, []).append(raw_value.decode("latin-1"))
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    body, b64 = _body(req)
    sub = _sub_path(path, 7)
    method = req.method.decode()
    return json.dumps(
        {
            "resource": "/{proxy+}",
            "path": sub,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": dict(pairs) or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": sub.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "accountId": config.account_id,
                "apiId": "emulator",
                "httpMethod": method,
                "path": "/emulator" + sub,
                "protocol": "HTTP/1.0" if req.http10 else "HTTP/1.1",
                "requestId": rid,
                "resourcePath": "/{proxy+}",
                "stage": "emulator",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent")},
            },
            "body": body,
            "isBase64Encoded": b64,
        }
    ).encode()


def _header_lines(result: dict[str, Any]) -> bytes:
    lines = []
    pairs: list[tuple[Any, Any]] = list((result.get("headers") or {}).items())
    for name, values in (result.get("multiValueHeaders") or {}).items():
        pairs += [(name, v) for v in values] if isinstance(values, list) else []
    pairs += [("set-cookie", c) for c in result.get("cookies") or []]
    for name, value in pairs:
        key, text = str(name), str(value)
        if key.lower() in _RESERVED or not _TOKEN.match(key) or any(c in text for c in "\r\n\0"):
            continue  # never let a handler break the response framing
        lines.append(f"{key}: {text}\r\n".encode("latin-1", "replace"))
    return b"".join(lines)


def _proxy_answer(result: dict[str, Any]) -> tuple[int, bytes, bytes] | None:
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        return None
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body)
        except ValueError:
            return None
    else:
        data = body.encode()
    return status, _header_lines(result), data


def url_answer(payload: bytes) -> tuple[int, bytes, bytes]:
    """A Function URL's answer: a proxy-shaped result as given, anything else as a JSON 200."""
    try:
        result = json.loads(payload)
    except ValueError:
        result = None
    if isinstance(result, dict) and "statusCode" in result:
        answer = _proxy_answer(result)
        if answer is not None:
            status, head, body = answer
            if b"content-type:" not in head.lower():
                head = b"content-type: application/json\r\n" + head
            return status, head, body
    body = result.encode() if isinstance(result, str) else payload
    return 200, b"content-type: application/json\r\n", body


def apigw_answer(payload: bytes) -> tuple[int, bytes, bytes] | None:
    """API Gateway's answer, or None for a malformed proxy response (API Gateway's 502)."""
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    answer = _proxy_answer(result)
    if answer is not None and b"content-type:" not in answer[1].lower():
        status, head, body = answer
        return status, b"content-type: application/json\r\n" + head, body
    return answer
