"""Request and trace ids as AWS writes them, so a client can list its slow requests by id.

Ids are a random prefix per emulator process plus a counter: unique, cheap on the hot path.
"""

from __future__ import annotations

import base64
import os
import re
import time

_time = time.time

# X-Ray's trace id: 1-<8 hex digits of epoch seconds>-<24 hex digits>.
_ROOT_RE = re.compile(rb"(?i)root=(1-[0-9a-f]{8}-[0-9a-f]{24})")


class Ids:
    """Generates ``x-amzn-RequestId`` (UUID form), X-Ray trace ids and ``x-amz-apigw-id``."""

    def __init__(self) -> None:
        h = os.urandom(16).hex()
        self._rid_prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-"
        self._trace_prefix = h[18:30]
        self._apigw_prefix = os.urandom(4)
        self._n = 0
        self._trace_sec = -1
        self._trace_head = b""

    def request_id(self) -> str:
        self._n += 1
        return f"{self._rid_prefix}{self._n:012x}"

    def trace_id(self, incoming: bytes | None) -> bytes:
        """The trace header value; a valid Root sent by the client is kept (the trace goes on)."""
        if incoming is not None:
            match = _ROOT_RE.search(incoming)
            if match is not None:
                return b"Root=" + match.group(1) + b";Sampled=0"
        now = int(_time())
        if now != self._trace_sec:  # the time part changes once a second: format it then
            self._trace_sec = now
            self._trace_head = f"Root=1-{now:08x}-{self._trace_prefix}".encode()
        self._n += 1
        return self._trace_head + b"%012x;Sampled=0" % self._n

    def apigw_id(self) -> bytes:
        """A 16-character base64 id like API Gateway's ``x-amz-apigw-id``."""
        self._n += 1
        return base64.b64encode(self._apigw_prefix + self._n.to_bytes(6, "big"))
