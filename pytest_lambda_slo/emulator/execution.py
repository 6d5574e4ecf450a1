"""Request execution: acquire an environment, run the handler, release, answer.

An emulated function's handler is a sampled sleep; a function created with a zip runs its
real handler in its environment's process (sandbox.py). Every front door (Invoke API,
Function URL, API Gateway) starts invocations here and hands in a ``done`` callback that
writes its own answer; this module knows no door and no HTTP route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .model import PROCESS_LIMIT, Function, Invocation, Model
from .sandbox import INIT_LIMIT_S, Sandbox, Worker, WorkerGone
from .server import Connection, Request
from .wire import HANDLED, TIMEOUT, UNHANDLED, dumps

log = logging.getLogger("pytest_lambda_slo.emulator")
_monotonic = time.monotonic

# Called when a handler finishes: (invocation, error kind or None, handler seconds).
Done = Callable[[Invocation, "str | None", float], None]


class Executor:
    """Runs invocations on the execution model and keeps the per-function stats."""

    def __init__(
        self,
        model: Model,
        loop: asyncio.AbstractEventLoop,
        on_handler_error: Callable[[], None],
        sandbox: Sandbox,
    ) -> None:
        self.model = model
        self.loop = loop
        self.rng = model.rng
        self.sandbox = sandbox
        self._on_handler_error = on_handler_error
        self._tasks: set[asyncio.Task[None]] = set()

    def start_invocation(self, fn: Function, now: float) -> Invocation | str:
        """Acquire an environment and update stats; an Invocation or a throttle reason."""
        if fn.deployment is not None and not fn.idle and self.sandbox.full():
            return self.throttled(fn, now, PROCESS_LIMIT)
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
        if inv.function.deployment is not None:
            task = self.loop.create_task(self._run_code(inv, done, req, conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
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
        destroy: bool | None = None,
    ) -> None:
        """Release the environment (destroyed after a crash or timeout), record, call ``done``."""
        now = _monotonic()
        if now < deadline:
            # uvloop's timer clock is coarse (ms, cached per loop turn) and can fire early:
            # a handler never finishes before its sampled time.
            self.loop.call_later(
                deadline - now, self._finish, inv, error, done, req, conn, deadline
            )
            return
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

    async def _run_code(
        self, inv: Invocation, done: Done | None, req: Request | None, conn: Connection | None
    ) -> None:
        """Run a zip's handler in the environment's process (started first on a cold start)."""
        error: str | None = None
        destroy = False
        try:
            error, destroy = await self._run_in_worker(inv)
        except WorkerGone:
            error, destroy = UNHANDLED, True
            code = await self._exit_status(inv)
            inv.response = dumps(
                {
                    "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited "
                    f"with error: exit status {code}",
                    "errorType": "Runtime.ExitError",
                }
            )
        except Exception:  # a bug here must not leave the environment busy forever
            log.exception("running a handler process failed")
            self._on_handler_error()
            error, destroy = UNHANDLED, True
        self._finish(inv, error, done, req, conn, destroy=destroy)

    async def _run_in_worker(self, inv: Invocation) -> tuple[str | None, bool]:
        fn = inv.function
        deployment = fn.deployment
        assert deployment is not None
        cfg = fn.config
        worker = inv.env.worker
        if not isinstance(worker, Worker):  # a new environment: start its process
            sandbox = self.sandbox
            worker = sandbox.new_worker()
            inv.env.worker = worker
            t0 = _monotonic()
            env = sandbox.environment(deployment, cfg.name, cfg.memory, fn.variables)
            try:
                ready: dict[str, Any] = await asyncio.wait_for(
                    worker.start(deployment, env), INIT_LIMIT_S
                )
            except asyncio.TimeoutError:
                ready = {
                    "ready": False,
                    "error": {
                        "errorMessage": f"RequestId: {inv.request_id} Error: Init phase "
                        f"timed out after {INIT_LIMIT_S:.2f} seconds",
                        "errorType": "Runtime.InitTimeout",
                    },
                }
            inv.init_s = _monotonic() - t0
            inv.log = ready.get("log", "")
            if not ready["ready"]:
                inv.response = dumps(ready["error"])
                return UNHANDLED, True
        head = {
            "request_id": inv.request_id,
            "invoked_function_arn": fn.arn,
            "deadline_ms": int((time.time() + cfg.timeout) * 1000),
            "trace_id": inv.trace_id,
        }
        try:
            result, body = await asyncio.wait_for(worker.invoke(head, inv.event), cfg.timeout)
        except asyncio.TimeoutError:
            return TIMEOUT, True  # the process is killed when the environment is destroyed
        inv.log += result.get("log", "")
        inv.response = body
        # A raised exception is Unhandled, but Python's runtime keeps the environment.
        return (None if result.get("ok") else UNHANDLED), False

    async def _exit_status(self, inv: Invocation) -> int | str:
        worker = inv.env.worker
        proc = worker.proc if isinstance(worker, Worker) else None
        if proc is None:
            return "unknown"
        try:
            return await asyncio.wait_for(proc.wait(), 2.0)
        except asyncio.TimeoutError:
            return "unknown"
