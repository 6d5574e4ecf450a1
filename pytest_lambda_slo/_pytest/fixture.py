"""The ``lambda_slo`` fixture object: load shapes (burst, rate, ramp) that return results."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .._load.workers import parse_workers
from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.recorder import Measurements
from .._results.result import BurstResult
from .._targets.http import Target, as_target
from ..errors import ConfigError, LoadAborted, SaturationWarning
from .ledger import Grant
from .locks import target_lock
from .session import SessionState, assess_saturation

DEFAULT_TIMEOUT = "30s"
# What the report and the JSON show of each shape's validated parameters.
_SHAPE_FIELDS = {
    "burst": ("requests", "concurrency", "duration_s"),
    "rate": ("rps", "duration_s", "max_in_flight"),
    "ramp": ("users", "spawn_rate", "duration_s", "think_time_s"),
}


@dataclass(frozen=True)
class _Plan:
    """A run checked before any load is fired: the target, the engine's params, workers."""

    target: Target
    params: Any  # engine.BurstParams, shapes.RateParams or shapes.RampParams
    workers: int

    def shape(self) -> dict[str, Any]:
        params = self.params
        fields = {key: getattr(params, key) for key in _SHAPE_FIELDS[params.kind]}
        return {
            "kind": params.kind,
            **{key: value for key, value in fields.items() if value is not None},
            "timeout_s": params.timeout_s,
            "deadline_s": params.deadline_s,
            "workers": self.workers,
        }


def _validator(kind: str) -> Callable[..., Any]:
    # The engine's own validation: one place parses shapes and computes their deadline.
    from .._load import engine
    from .._load import scheduled as shapes

    validators: dict[str, Callable[..., Any]] = {
        "burst": engine.validate_burst,
        "rate": shapes.validate_rate,
        "ramp": shapes.validate_ramp,
    }
    return validators[kind]


class LambdaSLO:
    """The ``lambda_slo`` fixture: fire load at a target, get a :class:`BurstResult`.

    Shapes: :meth:`burst` (closed model, like hey), :meth:`rate` (open model, constant
    arrival rate, like wrk2) and :meth:`ramp` (users added at a spawn rate, like Locust);
    each has an async twin (``aburst``, ``arate``, ``aramp``) for anyio tests.
    """

    def __init__(
        self,
        state: SessionState,
        test_id: str,
        *,
        default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE,
    ) -> None:
        self._state = state
        self.test_id = test_id
        self.default_throttle_rate = default_throttle_rate  # see budgets.evaluate
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
            "burst", target, workers, requests=requests, concurrency=concurrency,
            timeout=timeout, deadline=deadline, duration=duration,
        )  # fmt: skip
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
            "burst", target, workers, requests=requests, concurrency=concurrency,
            timeout=timeout, deadline=deadline, duration=duration,
        )  # fmt: skip
        return await self._run_async(plan, force_cold)

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
            "rate", target, workers, rps=rps, duration=duration, timeout=timeout,
            max_in_flight=max_in_flight, deadline=deadline,
        )  # fmt: skip
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
            "rate", target, workers, rps=rps, duration=duration, timeout=timeout,
            max_in_flight=max_in_flight, deadline=deadline,
        )  # fmt: skip
        return await self._run_async(plan, force_cold)

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
            "ramp", target, workers, users=users, spawn_rate=spawn_rate, duration=duration,
            timeout=timeout, deadline=deadline, think_time=think_time,
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
            "ramp", target, workers, users=users, spawn_rate=spawn_rate, duration=duration,
            timeout=timeout, deadline=deadline, think_time=think_time,
        )  # fmt: skip
        return await self._run_async(plan, force_cold)

    # planning and running -------------------------------------------------------------
    def _plan(self, kind: str, target: object, workers: object | None, **args: object) -> _Plan:
        __tracebackhide__ = True
        try:
            params = _validator(kind)(**args)
            n_workers = self._state.settings.workers if workers is None else parse_workers(workers)
            params.check_workers(n_workers)
            if kind == "ramp":
                _check_users_can_start(params)
            return _Plan(as_target(target), params, n_workers)
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None

    def _capped(self, plan: _Plan, grant: Grant, extras: dict[str, Any]) -> Any:
        """The params within the grant: a run of unknown size stops at the requests left,
        and no deadline reaches past what is left of the session's load-time cap."""
        changes: dict[str, Any] = {}
        if not grant.sized:
            changes["request_cap"] = grant.requests
        left = max(grant.load_left_s, 0.001)
        if plan.params.deadline_s > left:
            extras["deadline_capped"] = round(left, 3)  # said in the report if it mattered
            changes["deadline_s"] = left
        return replace(plan.params, **changes) if changes else plan.params

    def _run_sync(self, name: str, plan: _Plan, force_cold: bool) -> BurstResult:
        from .._load import engine

        with self._guard(plan, force_cold) as (grant, extras):
            try:
                measurements, run = engine.execute_sync(
                    name, plan.target, self._capped(plan, grant, extras), plan.workers
                )
            except BaseException as exc:
                self._keep_partial(plan, grant, extras, exc)
                raise
            return self._finish(plan, grant, measurements, run, extras)

    async def _run_async(self, plan: _Plan, force_cold: bool) -> BurstResult:
        from .._load import engine

        with self._guard(plan, force_cold) as (grant, extras):
            try:
                measurements, run = await engine.execute_async(
                    plan.target, self._capped(plan, grant, extras), plan.workers
                )
            except BaseException as exc:
                self._keep_partial(plan, grant, extras, exc)
                raise
            return self._finish(plan, grant, measurements, run, extras)

    def _keep_partial(
        self, plan: _Plan, grant: Grant, extras: dict[str, Any], exc: BaseException
    ) -> None:
        """On Ctrl-C, cancellation or an early stop keep what was measured, for the report."""
        aborted = exc if isinstance(exc, LoadAborted) else exc.__cause__
        measurements = getattr(aborted, "measurements", None)
        run = getattr(aborted, "run_info", None)
        if measurements is None or run is None:
            return
        extras["interrupted"] = str(aborted)
        self._finish(plan, grant, measurements, run, extras)

    @contextlib.contextmanager
    def _guard(self, plan: _Plan, force_cold: bool) -> Iterator[tuple[Grant, dict[str, Any]]]:
        """The cross-worker target lock, the session caps and forced cold starts around a run.

        The caps are reserved once the target is ours, so a run waiting for the lock holds
        none of the session's budget; a run that ends without a result gives it all back.
        """
        target, params = plan.target, plan.params
        requests = params.total_requests if params.kind == "rate" else params.requests
        extras: dict[str, Any] = {}
        with target_lock(target) as waited:
            grant = self._state.ledger.reserve(requests, params.duration_s, target.describe())
            extras["_grant_open"] = True
            try:
                worker = os.environ.get("PYTEST_XDIST_WORKER")
                if worker:
                    extras["xdist_serialised"] = {"worker": worker, "waited_s": round(waited, 3)}
                if not force_cold:
                    extras["_started"] = time.monotonic()  # load time, lock waits excluded
                    yield grant, extras
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
                    yield grant, extras
            finally:
                if extras.pop("_grant_open", False):  # no result was accounted
                    self._state.ledger.settle(grant, 0, 0.0)

    def _finish(
        self,
        plan: _Plan,
        grant: Grant,
        measurements: Measurements,
        run: Any,
        extras: dict[str, Any],
    ) -> BurstResult:
        run_dict = run.to_dict()
        if run_dict.get("stopped") != "deadline":
            extras.pop("deadline_capped", None)  # the cut deadline never came into play
        if run_dict.get("stopped") == "request_cap":
            extras["request_cap"] = grant.requests
        assess_saturation(run_dict, self._state.settings)
        cost_fn = getattr(plan.target, "estimate_cost", None)
        if cost_fn is not None and measurements.billed_mb_ms:
            extras["cost"] = cost_fn(measurements)
        result = BurstResult(
            measurements=measurements,
            run=run_dict,
            target=plan.target.describe(),
            target_info=plan.target.shape_info(),
            shape=plan.shape(),
            cold_start_detection=measurements.cold_known > 0,
            saturation_policy=self._state.settings.saturation_policy,
            extras=extras,
            default_throttle_rate=self.default_throttle_rate,
            verdict_policy=self._state.settings.verdict_policy,
        )
        if result.saturated and result.saturation_policy == "warn":
            warnings.warn(SaturationWarning(result.saturation_note), stacklevel=4)
        wall_s = time.monotonic() - extras.pop("_started", time.monotonic())
        extras.pop("_grant_open", None)
        self._state.ledger.settle(grant, result.count + result.unsent, max(wall_s, result.duration))
        self.results.append(result)
        return result


def _users_that_can_start(spawn_rate: float, duration_s: float) -> int:
    """How many users a ramp starts: user k starts at k/spawn_rate, if that is before the end."""
    end_ns = int(duration_s * 1e9)

    def starts(k: int) -> bool:  # the engine's own test (shapes.RampEngine._spawn)
        return int(k * 1e9 / spawn_rate) < end_ns

    count = math.ceil(spawn_rate * duration_s)
    while count > 0 and not starts(count - 1):
        count -= 1
    while starts(count):
        count += 1
    return count


def _check_users_can_start(params: Any) -> None:
    """A ramp whose users could never all start within its duration is a mistake.

    The engine lets late users simply not start (it reports ``users_started``); through the
    fixture a user asked for that many users, so it is refused up front.
    """
    can_start = _users_that_can_start(params.spawn_rate, params.duration_s)
    if params.users > can_start:
        raise ConfigError(
            f"users={params.users} cannot all start: at spawn_rate={params.spawn_rate:g}/s only "
            f"{can_start} start within duration={params.duration_s:g}s; raise spawn_rate or "
            "duration, or lower users"
        )
