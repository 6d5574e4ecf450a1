"""What one request came to: the value the engine builds and the recorder consumes."""

from __future__ import annotations

from typing import Protocol


class IdSource(Protocol):
    """What a response offers the recorder: its request ids, parsed when asked.

    ``content``: the body it holds (a kept request holding one is described at once, so
    the slowest requests never keep their bodies alive).
    """

    content: bytes

    def request_ids(self) -> dict[str, str]: ...


class Outcome:
    """What one request came to; built by the engine, consumed by :class:`Measurements`.

    ``kind`` is "ok", "throttle" or "error". ``cold`` is True/False when the target can
    tell, None when it cannot. ``server`` holds server-side figures in milliseconds from
    a Lambda REPORT line (keys: init, restore, duration, billed, memory, max_memory).
    ``done_ns`` is the completion instant on ``time.perf_counter_ns()`` (None: the moment
    it is recorded); ``in_flight`` the requests in flight as it completed, itself included
    (0: unknown). ``ttfb_ns``: time to the response's first byte, from where the latency
    counts (None: no response). ``response`` (set by the engine): where the request's ids
    are read, only if the recorder keeps the request among the slowest. ``label``: the
    request's label (None: unlabelled); the run's per-label views group by it.
    """

    __slots__ = (
        "bytes_received",
        "cold",
        "done_ns",
        "error_kind",
        "in_flight",
        "kind",
        "label",
        "latency_ns",
        "proactive_init",
        "response",
        "server",
        "status",
        "throttle_reason",
        "ttfb_ns",
        "uncorrected_ns",
    )

    def __init__(
        self,
        kind: str,
        latency_ns: int | None,
        *,
        status: int | None = None,
        error_kind: str | None = None,
        cold: bool | None = None,
        bytes_received: int = 0,
        throttle_reason: str | None = None,
        server: dict[str, float] | None = None,
        uncorrected_ns: int | None = None,
        proactive_init: bool = False,
        done_ns: int | None = None,
        in_flight: int = 0,
        label: str | None = None,
        ttfb_ns: int | None = None,
        response: IdSource | None = None,
    ) -> None:
        self.kind = kind
        self.latency_ns = latency_ns
        self.status = status
        self.error_kind = error_kind
        self.cold = cold
        self.bytes_received = bytes_received
        self.throttle_reason = throttle_reason
        self.server = server
        self.uncorrected_ns = uncorrected_ns
        self.proactive_init = proactive_init
        self.done_ns = done_ns
        self.in_flight = in_flight
        self.label = label
        self.ttfb_ns = ttfb_ns
        self.response = response
