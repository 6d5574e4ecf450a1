"""The HTTP front doors: Function URL (``/url/{name}/``) and API Gateway REST proxy (``/apigw/``).

Each door maps the execution model's outcomes to what that AWS front door answers: a Lambda
throttle is a 429 at a Function URL but a 500 behind API Gateway, a function error a 502; a
failed IAM (SigV4) check is answered in the door's own shape. Every answer carries the ids
AWS sends (request id, trace id; API Gateway's own id), so a client can name slow requests.
"""

from __future__ import annotations

import time
from urllib.parse import unquote

from .execution import Executor
from .ids import Ids
from .model import URL_RATE_LIMIT, Invocation
from .proxy import apigw_answer, apigw_event, url_answer, url_event
from .server import Connection, Request
from .settings import EmulatorConfig
from .sigv4 import SigV4Error
from .wire import Canned, CannedAnswers, dumps, error_head, function_missing, reply, wire_reason

_monotonic = time.monotonic
_APIGW_500 = b'{"message": "Internal server error"}'
_APIGW_429 = b'{"message":"Too Many Requests"}'
_URL_502 = b'{"Message":"Internal Server Error"}'
_URL_403 = b'{"Message":"Forbidden"}'
_OCTETS = b"application/octet-stream"


def _echo(canned: Canned, inv: Invocation, req: Request) -> tuple[bytes, bytes]:
    """Head lines and body of an ``echo`` 200: the request's body and content-type."""
    head = canned.cold_head if inv.cold else canned.warm_head
    # Swap the canned content-type for the request's (the x-cold-start line stays).
    ctype = b"content-type: " + (req.header(b"content-type") or _OCTETS) + b"\r\n"
    return ctype + head.partition(b"\r\n")[2], req.body


class HttpDoors:
    """Answers ``/url/{name}/...`` and ``/apigw/{name}/...`` requests."""

    def __init__(
        self, config: EmulatorConfig, executor: Executor, ids: Ids, canned: CannedAnswers
    ) -> None:
        self.config = config
        self.executor = executor
        self.model = executor.model
        self.ids = ids
        self.canned = canned

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"

    def _url_ids(self, req: Request, rid: str) -> tuple[bytes, bytes]:
        """Header lines of the ids, and the trace id (handed to real code)."""
        trace = self.ids.trace_id(req.header(b"x-amzn-trace-id"))
        lines = b"x-amzn-requestid: " + rid.encode() + b"\r\nx-amzn-trace-id: " + trace + b"\r\n"
        return lines, trace

    def _apigw_ids(self, req: Request, rid: str) -> tuple[bytes, bytes]:
        lines, trace = self._url_ids(req, rid)
        return lines + b"x-amz-apigw-id: " + self.ids.apigw_id() + b"\r\n", trace

    # Function URL: /url/{name}/...
    def url_denied(self, req: Request, conn: Connection, exc: SigV4Error) -> None:
        """A Function URL with AWS_IAM auth refuses a bad signature: 403 Forbidden."""
        extra = self._url_ids(req, self.ids.request_id())[0]
        conn.send(req, 403, error_head("AccessDeniedException", extra), _URL_403)

    def function_url(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        end = path.find(b"/", 5)
        raw = path[5:] if end < 0 else path[5:end]
        fn = self.model.by_bytes.get(raw)
        if fn is None:
            function_missing(req, conn, self._arn(unquote(raw.decode("latin-1"))))
            return
        now = _monotonic()
        executor = self.executor
        rid = self.ids.request_id()
        trace = self.ids.trace_id(req.header(b"x-amzn-trace-id"))
        ids = b"x-amzn-requestid: %s\r\nx-amzn-trace-id: %s\r\n" % (rid.encode(), trace)
        if fn.url_rate is not None and not fn.url_rate.take(now):
            result: Invocation | str = executor.throttled(fn, now, URL_RATE_LIMIT)
        else:
            result = executor.start_invocation(fn, now)
        if result.__class__ is str:
            body = dumps({"message": "Rate Exceeded.", "Reason": wire_reason(result)})  # type: ignore[arg-type]
            head = error_head("TooManyRequestsException", b"retry-after: 1\r\n" + ids)
            reply(req, conn, fn, 429, head, body)
            return
        canned = self.canned.get(fn)
        inv: Invocation = result  # type: ignore[assignment]
        inv.request_id = rid
        plain = fn.deployment is None and not fn.config.echo
        if fn.deployment is not None:
            inv.event = url_event(req, path, query, rid, self.config)
            inv.trace_id = trace.decode()

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            if error is not None:
                reply(req, conn, fn, 502, error_head("ServiceException", ids), _URL_502)
            elif plain:  # the hot path: prebuilt bytes only
                head = canned.cold_head if inv.cold else canned.warm_head
                reply(req, conn, fn, 200, head + ids, canned.body)
            elif inv.response is not None:  # real code: its result, read as Lambda does
                status, head, body = url_answer(inv.response)
                reply(req, conn, fn, status, head + ids, body)
            else:
                head, body = _echo(canned, inv, req)
                reply(req, conn, fn, 200, head + ids, body)

        executor.execute(inv, done, req, conn)

    # API Gateway REST proxy: /apigw/{name}/...
    def apigw_denied(self, req: Request, conn: Connection, exc: SigV4Error) -> None:
        """An IAM-authorised API Gateway route refuses a bad signature: 403 with the reason."""
        extra = self._apigw_ids(req, self.ids.request_id())[0]
        conn.send(req, 403, error_head(exc.error_type, extra), dumps({"message": str(exc)}))

    def apigw(self, req: Request, conn: Connection, path: bytes, query: bytes) -> None:
        end = path.find(b"/", 7)
        raw = path[7:] if end < 0 else path[7:end]
        fn = self.model.by_bytes.get(raw)
        ids_of = self.ids
        rid = ids_of.request_id()
        trace = ids_of.trace_id(req.header(b"x-amzn-trace-id"))
        ids = b"x-amzn-requestid: %s\r\nx-amzn-trace-id: %s\r\nx-amz-apigw-id: %s\r\n" % (
            rid.encode(),
            trace,
            ids_of.apigw_id(),
        )
        if fn is None:
            conn.send(req, 404, error_head("NotFoundException", ids), b'{"message":"Not Found"}')
            return
        now = _monotonic()
        if fn.stage is not None and not fn.stage.take(now):
            fn.stats.stage_throttles += 1
            reply(req, conn, fn, 429, error_head("TooManyRequestsException", ids), _APIGW_429)
            return
        executor = self.executor
        result = executor.start_invocation(fn, now)
        if result.__class__ is str:
            head = error_head("InternalServerErrorException", ids)
            reply(req, conn, fn, 500, head, _APIGW_500)
            return
        canned = self.canned.get(fn)
        inv: Invocation = result  # type: ignore[assignment]
        inv.request_id = rid
        plain = fn.deployment is None and not fn.config.echo
        if fn.deployment is not None:
            inv.event = apigw_event(req, path, query, rid, self.config)
            inv.trace_id = trace.decode()

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            if plain and error is None:  # the hot path: prebuilt bytes only
                head = canned.cold_head if inv.cold else canned.warm_head
                reply(req, conn, fn, 200, head + ids, canned.body)
                return
            answer = None if inv.response is None else apigw_answer(inv.response)
            if error is not None or (inv.response is not None and answer is None):
                # A function error or a malformed proxy response: API Gateway's 502.
                head = error_head("InternalServerErrorException", ids)
                reply(req, conn, fn, 502, head, _APIGW_500)
                return
            if answer is not None:
                status, head, body = answer
                reply(req, conn, fn, status, head + ids, body)
                return
            head, body = _echo(canned, inv, req)
            reply(req, conn, fn, 200, head + ids, body)

        executor.execute(inv, done, req, conn)
