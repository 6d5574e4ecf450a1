"""The HTTP front doors: Function URL (``/url/{name}/``) and API Gateway REST proxy (``/apigw/``).

Each door maps the execution model's outcomes to what that AWS front door answers: a Lambda
throttle is a 429 at a Function URL but a 500 behind API Gateway, a function error a 502.
"""

from __future__ import annotations

import time
from urllib.parse import unquote

from .execution import Executor
from .ids import Ids
from .model import URL_RATE_LIMIT, Invocation
from .server import Connection, Request
from .settings import EmulatorConfig
from .wire import CannedAnswers, dumps, error_head, function_missing, reply, wire_reason

_monotonic = time.monotonic
_APIGW_500 = b'{"message": "Internal server error"}'
_APIGW_429 = b'{"message":"Too Many Requests"}'
_URL_502 = b'{"Message":"Internal Server Error"}'


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

    # Function URL: /url/{name}/...
    def function_url(self, req: Request, conn: Connection, path: bytes) -> None:
        end = path.find(b"/", 5)
        raw = path[5:] if end < 0 else path[5:end]
        fn = self.model.by_bytes.get(raw)
        if fn is None:
            function_missing(req, conn, self._arn(unquote(raw.decode("latin-1"))))
            return
        now = _monotonic()
        executor = self.executor
        if fn.url_rate is not None and not fn.url_rate.take(now):
            result: Invocation | str = executor.throttled(fn, now, URL_RATE_LIMIT)
        else:
            result = executor.start_invocation(fn, now)
        if result.__class__ is str:
            body = dumps({"message": "Rate Exceeded.", "Reason": wire_reason(result)})  # type: ignore[arg-type]
            head = error_head("TooManyRequestsException", b"retry-after: 1\r\n")
            reply(req, conn, fn, 429, head, body)
            return
        canned = self.canned.get(fn)
        inv: Invocation = result  # type: ignore[assignment]
        inv.request_id = self.ids.request_id()

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            rid = inv.request_id.encode()
            if error is not None:
                head = error_head("ServiceException", b"x-amzn-requestid: " + rid + b"\r\n")
                reply(req, conn, fn, 502, head, _URL_502)
                return
            head = (canned.cold_head if inv.cold else canned.warm_head) + b"x-amzn-requestid: "
            reply(req, conn, fn, 200, head + rid + b"\r\n", canned.body)

        executor.execute(inv, done, req, conn)

    # API Gateway REST proxy: /apigw/{name}/...
    def apigw(self, req: Request, conn: Connection, path: bytes) -> None:
        end = path.find(b"/", 7)
        raw = path[7:] if end < 0 else path[7:end]
        fn = self.model.by_bytes.get(raw)
        if fn is None:
            body = b'{"message":"Not Found"}'
            conn.send(req, 404, error_head("NotFoundException"), body)
            return
        now = _monotonic()
        rid = self.ids.request_id()
        extra = b"x-amzn-requestid: " + rid.encode() + b"\r\n"
        if fn.stage is not None and not fn.stage.take(now):
            fn.stats.stage_throttles += 1
            reply(req, conn, fn, 429, error_head("TooManyRequestsException", extra), _APIGW_429)
            return
        executor = self.executor
        result = executor.start_invocation(fn, now)
        if result.__class__ is str:
            head = error_head("InternalServerErrorException", extra)
            reply(req, conn, fn, 500, head, _APIGW_500)
            return
        canned = self.canned.get(fn)
        inv: Invocation = result  # type: ignore[assignment]
        inv.request_id = rid

        def done(inv: Invocation, error: str | None, _s: float) -> None:
            if error is not None:
                head = error_head("InternalServerErrorException", extra)
                reply(req, conn, fn, 502, head, _APIGW_500)
                return
            head = (canned.cold_head if inv.cold else canned.warm_head) + extra
            reply(req, conn, fn, 200, head, canned.body)

        executor.execute(inv, done, req, conn)
