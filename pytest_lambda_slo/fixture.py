"""The ``lambda_slo`` fixture object: load shapes (burst, rate, ramp) that return results."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from .errors import ConfigError, LoadAborted, SaturationWarning
from .locks import target_lock
from .result import BurstResult
from .session import SessionState, assess_saturation
from .targets import Target, as_target
from .units import parse_count, parse_duration, parse_positive_number

DEFAULT_TIMEOUT = "30s"
_AUTO = "auto"


def parse_workers(value: object, *, name: str = "workers") -> int:
    """``N`` (>= 1) or ``"auto"`` (one per CPU core)."""
    if isinstance(value, str) and value.strip().lower() == _AUTO:
        return max(os.cpu_count() or 1, 1)
    try:
        return parse_count(value, name=name, minimum=1)
    except ConfigError:
        raise ConfigError(
            f"{name}={value!r} is not valid; use a whole number >= 1 or 'auto'"
        ) from None


def _duration(value: object, name: str) -> float:
    return parse_duration(value, name=name, allow_zero=False)


def _optional_duration(value: object | None, name: str) -> float | None:
    return None if value is None else _duration(value, name)


def default_deadline(shape: dict[str, Any]) -> float:
    """The engine's overall deadline for a shape: the worst case it may run for."""
    if shape.get("deadline") is not None:
        return float(shape["deadline"])
    timeout = float(shape["timeout"])
    if shape.get("duration") is not None:
        return float(shape["duration"]) + timeout + 5.0
    waves = -(-int(shape["requests"]) // int(shape["concurrency"]))
    return timeout * waves + 5.0


class LambdaSLO:
    """The ``lambda_slo`` fixture: fire load at a target, get a :class:`BurstResult`.

    Shapes: :meth:`burst` (closed model, like hey), :meth:`rate` (open model, constant
    arrival rate, like wrk2) and :meth:`ramp` (users added at a spawn rate, like Locust);
    each has an async twin (``aburst``, ``arate``, ``aramp``) for anyio tests.
    """

    def __init__(self, state: SessionState, test_id: str) -> None:
        self._state = state
        self.test_id = test_id
        self.results: list[BurstResult] = []

    # shapes ----------------------------------------------------------------------------
    def burst(
        self,
        target: object,
        *,
        requests: int | None = None,
        concurrency: int,
        timeout: object = DEFAULT_TIMEOUT,
        deadline: object | None = None,
        duration: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
    ) -> BurstResult:
        """Fire ``requests`` requests with at most ``concurrency`` in flight (like hey -n -c)."""
        __tracebackhide__ = True  # bad input is the caller's line, not a plugin traceback
        plan = self._plan(
            self._burst_shape, target, requests, concurrency, timeout, deadline, duration, workers
        )
        return self._run_sync("run_burst", plan, force_cold)

    async def aburst(
        self,
        target: object,
        *,
        requests: int | None = None,
        concurrency: int,
        timeout: object = DEFAULT_TIMEOUT,
        deadline: object | None = None,
        duration: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
    ) -> BurstResult:
        """The async twin of :meth:`burst` (anyio: asyncio and trio backends)."""
        __tracebackhide__ = True
        plan = self._plan(
            self._burst_shape, target, requests, concurrency, timeout, deadline, duration, workers
        )
        return await self._run_async("arun_burst", plan, force_cold)

    def rate(
        self,
        target: object,
        *,
        rps: float,
        duration: object,
        timeout: object = DEFAULT_TIMEOUT,
        max_in_flight: int | None = None,
        deadline: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
    ) -> BurstResult:
        """Open model: start ``rps`` requests per second for ``duration``, whatever the answers.

        Latency counts from each request's intended start (coordinated omission corrected,
        like wrk2); the figure from the actual send is kept as ``result.uncorrected``.
        """
        __tracebackhide__ = True
        plan = self._plan(
            self._rate_shape, target, rps, duration, timeout, max_in_flight, deadline, workers
        )
        return self._run_sync("run_rate", plan, force_cold)

    async def arate(
        self,
        target: object,
        *,
        rps: float,
        duration: object,
        timeout: object = DEFAULT_TIMEOUT,
        max_in_flight: int | None = None,
        deadline: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
    ) -> BurstResult:
        """The async twin of :meth:`rate`."""
        __tracebackhide__ = True
        plan = self._plan(
            self._rate_shape, target, rps, duration, timeout, max_in_flight, deadline, workers
        )
        return await self._run_async("arun_rate", plan, force_cold)

    def ramp(
        self,
        target: object,
        *,
        users: int,
        spawn_rate: float,
        duration: object,
        timeout: object = DEFAULT_TIMEOUT,
        deadline: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
        think_time: object = 0.0,
    ) -> BurstResult:
        """Locust-style: add ``users`` closed-loop users at ``spawn_rate`` per second.

        ``think_time`` is each user's pause after every response (Locust's ``wait_time``),
        so a throttled user does not spin on throttles.
        """
        __tracebackhide__ = True
        plan = self._plan(
            self._ramp_shape, target, users, spawn_rate, duration, timeout, deadline, workers,
            think_time,
        )  # fmt: skip
        return self._run_sync("run_ramp", plan, force_cold)

    async def aramp(
        self,
        target: object,
        *,
        users: int,
        spawn_rate: float,
        duration: object,
        timeout: object = DEFAULT_TIMEOUT,
        deadline: object | None = None,
        force_cold: bool = False,
        workers: object | None = None,
        think_time: object = 0.0,
    ) -> BurstResult:
        """The async twin of :meth:`ramp`."""
        __tracebackhide__ = True
        plan = self._plan(
            self._ramp_shape, target, users, spawn_rate, duration, timeout, deadline, workers,
            think_time,
        )  # fmt: skip
        return await self._run_async("arun_ramp", plan, force_cold)

    # shape parsing: (engine keyword arguments, shape fields for the report) -------------
    def _workers(self, workers: object | None) -> int:
        return self._state.settings.workers if workers is None else parse_workers(workers)

    def _burst_shape(
        self,
        requests: object,
        concurrency: object,
        timeout: object,
        deadline: object,
        duration: object,
        workers: object,
    ) -> dict[str, Any]:
        duration_s = _optional_duration(duration, "duration")
        if requests is None and duration_s is None:
            raise ConfigError("burst() needs requests=N (a whole number >= 1) or duration='30s'")
        n = None if requests is None else parse_count(requests, name="requests", minimum=1)
        c = parse_count(concurrency, name="concurrency", minimum=1)
        if n is not None and c > n:
            raise ConfigError(
                f"concurrency={c} is larger than requests={n}; use concurrency <= requests"
            )
        return {
            "kind": "burst",
            "requests": n,
            "concurrency": c,
            "timeout": _duration(timeout, "timeout"),
            "deadline": _optional_duration(deadline, "deadline"),
            "duration": duration_s,
            "workers": self._workers(workers),
        }

    def _rate_shape(
        self,
        rps: object,
        duration: object,
        timeout: object,
        max_in_flight: object,
        deadline: object,
        workers: object,
    ) -> dict[str, Any]:
        return {
            "kind": "rate",
            "rps": parse_positive_number(rps, name="rps"),
            "duration": _duration(duration, "duration"),
            "timeout": _duration(timeout, "timeout"),
            "max_in_flight": None
            if max_in_flight is None
            else parse_count(max_in_flight, name="max_in_flight", minimum=1),
            "deadline": _optional_duration(deadline, "deadline"),
            "workers": self._workers(workers),
        }

    def _ramp_shape(
        self,
        users: object,
        spawn_rate: object,
        duration: object,
        timeout: object,
        deadline: object,
        workers: object,
        think_time: object,
    ) -> dict[str, Any]:
        n_users = parse_count(users, name="users", minimum=1)
        rate = parse_positive_number(spawn_rate, name="spawn_rate")
        duration_s = _duration(duration, "duration")
        if n_users > int(rate * duration_s) + 1:
            raise ConfigError(
                f"users={n_users} cannot all start: at spawn_rate={rate:g}/s only "
                f"{int(rate * duration_s) + 1} start within duration={duration_s:g}s; raise "
                "spawn_rate or duration, or lower users"
            )
        return {
            "kind": "ramp",
            "think_time": parse_duration(think_time, name="think_time"),
            "users": n_users,
            "spawn_rate": rate,
            "duration": duration_s,
            "timeout": _duration(timeout, "timeout"),
            "deadline": _optional_duration(deadline, "deadline"),
            "workers": self._workers(workers),
        }

    def _plan(
        self, shape_fn: Callable[..., dict[str, Any]], target: object, *args: object
    ) -> tuple[Target, dict[str, Any]]:
        __tracebackhide__ = True
        try:
            return as_target(target), shape_fn(*args)
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None

    # running ---------------------------------------------------------------------------
    def _engine_kwargs(self, shape: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in shape.items() if k not in ("kind", "deadline_capped")}
        if kwargs.get("workers") == 1:
            kwargs.pop("workers")  # the single-process default
        # The session's load-time cap bounds every run: its deadline never reaches past it.
        remaining = self._state.remaining_load_time_s()
        if default_deadline(shape) > remaining and (
            kwargs.get("deadline") is None or kwargs["deadline"] > remaining
        ):
            kwargs["deadline"] = max(remaining, 0.001)
            shape["deadline_capped"] = round(kwargs["deadline"], 3)  # said in the report
        return kwargs

    def _run_sync(self, fn_name: str, plan: tuple[Target, dict[str, Any]], force_cold: bool):
        from . import engine

        target, shape = plan
        with self._guard(target, shape, force_cold) as extras:
            try:
                measurements, run = getattr(engine, fn_name)(target, **self._engine_kwargs(shape))
            except (KeyboardInterrupt, LoadAborted) as exc:
                self._keep_partial(target, shape, extras, exc)
                raise
        return self._finish(target, shape, measurements, run, extras)

    async def _run_async(
        self, fn_name: str, plan: tuple[Target, dict[str, Any]], force_cold: bool
    ) -> BurstResult:
        from . import engine

        target, shape = plan
        with self._guard(target, shape, force_cold) as extras:
            try:
                measurements, run = await getattr(engine, fn_name)(
                    target, **self._engine_kwargs(shape)
                )
            except BaseException as exc:
                self._keep_partial(target, shape, extras, exc)
                raise
        return self._finish(target, shape, measurements, run, extras)

    def _keep_partial(
        self, target: Target, shape: dict[str, Any], extras: dict[str, Any], exc: BaseException
    ) -> None:
        """On Ctrl-C or cancellation keep what was measured, so the report can show it."""
        aborted = exc if isinstance(exc, LoadAborted) else exc.__cause__
        measurements = getattr(aborted, "measurements", None)
        run = getattr(aborted, "run_info", None)
        if measurements is None or run is None:
            return
        extras["interrupted"] = str(aborted)
        self._finish(target, shape, measurements, run, extras)

    @contextlib.contextmanager
    def _guard(
        self, target: Target, shape: dict[str, Any], force_cold: bool
    ) -> Iterator[dict[str, Any]]:
        """Session caps, the cross-worker target lock and forced cold starts around a run."""
        requests = shape.get("requests")
        if shape["kind"] == "rate":
            requests = int(shape["rps"] * shape["duration"]) + 1
        self._state.reserve(requests, shape.get("duration"), target.describe())
        extras: dict[str, Any] = {}
        with target_lock(target) as waited:
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            if worker:
                extras["xdist_serialised"] = {"worker": worker, "waited_s": round(waited, 3)}
            if not force_cold:
                extras["_started"] = time.monotonic()  # load time, lock waits excluded
                yield extras
                return
            forcer = getattr(target, "force_cold", None)
            if forcer is None:
                raise ConfigError(
                    f"force_cold=True needs a target that can change the function's "
                    f"configuration (InvokeTarget); {target.describe()} cannot"
                )
            with forcer() as done:
                extras["force_cold"] = done
                extras["_started"] = time.monotonic()
                yield extras

    def _finish(
        self,
        target: Target,
        shape: dict[str, Any],
        measurements: Any,
        run: Any,
        extras: dict[str, Any],
    ) -> BurstResult:
        run_dict = run.to_dict() if hasattr(run, "to_dict") else dict(run)
        run_dict.setdefault("workers", shape.get("workers", 1))
        assess_saturation(run_dict, self._state.settings)
        cost_fn = getattr(target, "estimate_cost", None)
        if cost_fn is not None and measurements.billed_mb_ms:
            extras["cost"] = cost_fn(measurements)
        report_shape = {k: v for k, v in shape.items() if v is not None}
        for key in ("timeout", "deadline", "duration"):
            if key in report_shape:
                report_shape[f"{key}_s"] = report_shape.pop(key)
        result = BurstResult(
            measurements=measurements,
            run=run_dict,
            target=target.describe(),
            target_info=target.shape_info(),
            shape=report_shape,
            cold_start_detection=measurements.cold_known > 0,
            saturation_policy=self._state.settings.saturation_policy,
            extras=extras,
        )
        if result.saturated and result.saturation_policy == "warn":
            warnings.warn(SaturationWarning(result.saturation_note), stacklevel=4)
        self._state.account(result, time.monotonic() - extras.pop("_started", time.monotonic()))
        self.results.append(result)
        return result
