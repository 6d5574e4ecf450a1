"""Request execution: acquire an environment, run the handler for its time, release, answer.

Every front door (Invoke API, Function URL, API Gateway) starts invocations here and hands in
a ``done`` callback that writes its own answer; this module knows no door and no HTTP route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .model import Function, Invocation, Model
from .server import Connection, Request
from .wire import HANDLED, TIMEOUT, UNHANDLED

log = logging.getLogger("pytest_lambda_slo.emulator")
_monotonic = time.monotonic

# Called when a handler finishes: (invocation, error kind or None, handler seconds).
Done = Callable[[Invocation, "str | None", float], None]


class Executor:
    """Runs invocations on the execution model and keeps the per-function stats."""

    def __init__(
        self, model: Model, loop: asyncio.AbstractEventLoop, on_handler_error: Callable[[], None]
    ) -> None:
        self.model = model
        self.loop = loop
        self.rng = model.rng
        self._on_handler_error = on_handler_error

    def start_invocation(self, fn: Function, now: float) -> Invocation | str:
        """Acquire an environment and update stats; an Invocation or a throttle reason."""
        result = self.model.acquire(fn, now)
        if result.__class__ is str:
            return self.throttled(fn, now, result)  # type: ignore[arg-type]
        stats = fn.stats
        bucket = stats.bucket(now, fn.busy)
        stats.invocations += 1
        bucket[1] += 1
        busy = fn.busy
        if busy > bucket[4]:
            bucket[4] = busy
        if busy > stats.peak_concurrency:
            stats.peak_concurrency = busy
        if result.cold:  # type: ignore[union-attr]
            stats.cold_starts += 1
            bucket[3] += 1
        return result

    def throttled(self, fn: Function, now: float, reason: str) -> str:
        """Count a Lambda throttle; returns the reason."""
        stats = fn.stats
        stats.throttles[reason] = stats.throttles.get(reason, 0) + 1
        stats.bucket(now, fn.busy)[2] += 1
        return reason

    def execute(
        self,
        inv: Invocation,
        done: Done | None,
        req: Request | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Run the handler: sleep init (cold) plus duration, then release and call ``done``."""
        cfg = inv.function.config
        rng = self.rng
        init = 0.0 if not inv.cold or cfg.init.is_zero else cfg.init.sample(rng)
        duration = 0.0 if cfg.duration.is_zero else cfg.duration.sample(rng)
        error = None
        if cfg.error_rate and rng.random() < cfg.error_rate:
            error = UNHANDLED if cfg.unhandled and rng.random() < cfg.unhandled else HANDLED
        if duration > cfg.timeout:
            duration, error = cfg.timeout, TIMEOUT
        inv.init_s = init
        total = init + duration
        if inv.cold and cfg.proactive_init and rng.random() < cfg.proactive_init:
            # Lambda initialised this environment ahead of time: Init Duration is still
            # reported, but the request does not wait for it.
            inv.proactive = True
            inv.function.stats.proactive_inits += 1
            total = duration
        if total > 0.0:
            deadline = inv.started + total
            self.loop.call_later(total, self._finish, inv, error, done, req, conn, deadline)
        else:
            self._finish(inv, error, done, req, conn)

    def _finish(
        self,
        inv: Invocation,
        error: str | None,
        done: Done | None,
        req: Request | None,
        conn: Connection | None,
        deadline: float = 0.0,
    ) -> None:
        now = _monotonic()
        if now < deadline:
            # uvloop's timer clock is coarse (ms, cached per loop turn) and can fire early:
            # a handler never finishes before its sampled time.
            self.loop.call_later(
                deadline - now, self._finish, inv, error, done, req, conn, deadline
            )
            return
        self.finish(inv, error, done, req, conn, now)

    def finish(
        self,
        inv: Invocation,
        error: str | None,
        done: Done | None,
        req: Request | None,
        conn: Connection | None,
        now: float,
        destroy: bool | None = None,
    ) -> None:
        """Release the environment (destroyed after a crash or timeout), record, call ``done``."""
        fn = inv.function
        if destroy is None:
            destroy = error is not None and error != HANDLED
        self.model.release(inv, now, destroy=destroy)
        stats = fn.stats
        waited_init = 0.0 if inv.proactive else inv.init_s
        handler_s = max(0.0, now - inv.started - waited_init)
        stats.duration.record(int(handler_s * 1e6))
        if inv.cold:
            stats.init.record(int(inv.init_s * 1e6))
        if error is not None:
            stats.errors[HANDLED if error == HANDLED else UNHANDLED] += 1
        if done is not None:
            try:
                done(inv, error, handler_s)
            except Exception:  # never leave the client waiting: answer 500 and log
                self._on_handler_error()
                log.exception("handler failed")
                if conn is not None and req is not None:
                    conn.send_error_500(req)
