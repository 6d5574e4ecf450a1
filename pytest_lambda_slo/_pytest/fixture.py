"""The ``lambda_slo`` fixture object: load shapes (burst, rate, ramp) that return results.

Each method is a thin wrapper: it builds the shape value (Burst, Rate, Ramp: they check
every argument and own the defaults) and runs it through the one core (``_load.api``)
within the session's caps, the cross-worker target lock and forced cold starts. An auto
run (``requests="auto"``, ``duration="auto"``) is decided by its ``budgets=``, else by the
test's marker and ini budgets (``budgets`` here).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .._fanout.config import LambdaFanout, parse_fanout
from .._load.api import ameasure, build_result, measure
from .._load.runinfo import RunInfo
from .._load.shapes import DEFAULT_TIMEOUT, Burst, Ramp, Rate, Shape
from .._load.waves import Judging, budgets_of
from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.gate import raise_for
from .._results.recorder import Measurements
from .._results.result import RunResult
from .._targets.base import Target
from .._targets.resolve import as_target
from .._units import parse_workers
from ..errors import ConfigError, LoadAborted, SaturationWarning
from .ledger import Grant
from .locks import target_lock
from .server_series import server_series
from .session import SessionState


@dataclass(frozen=True)
class _Plan:
    """A run checked before any load is fired: the target, the shape, the worker processes."""

    target: Target
    shape: Shape
    workers: int
    name: str  # the fixture method called, for the error refusing to block a running loop
    fanout: LambdaFanout | None = None  # Lambda shards instead of local processes


class LambdaSLO:
    """The ``lambda_slo`` fixture: fire load at a target, get a :class:`RunResult`.

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
        budgets: Mapping[str, float] | None = None,
    ) -> None:
        self._state = state
        self.test_id = test_id
        self.default_throttle_rate = default_throttle_rate  # see budgets.evaluate
        self.budgets = dict(budgets or {})  # the marker and ini budgets: they decide auto runs
        self.results: list[RunResult] = []

    # shapes: each builds its shape value (which checks every argument) and runs it -------
    def burst(
        self,
        target: object,
        *,
        requests: int | str | None = None,
        concurrency: int,
        timeout: float | str = DEFAULT_TIMEOUT,
        deadline: float | str | None = None,
        duration: float | str | None = None,
        max_requests: int | None = None,
        budgets: Mapping[str, object] | None = None,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """Fire ``requests`` requests with at most ``concurrency`` in flight (like hey -n -c).

        ``requests="auto"`` fires waves until every budget (``budgets=``, else the marker's
        and ini's) is decided, one is certainly broken, or ``max_requests`` were sent;
        ``budgets=`` are then checked as ``result.check(**budgets)`` would.
        """
        __tracebackhide__ = True  # bad input is the caller's line, not a plugin traceback
        plan = self._plan("burst", target, workers, fanout, lambda: Burst(
            requests=requests, concurrency=concurrency, timeout=timeout, deadline=deadline,
            duration=duration, max_requests=max_requests, budgets=budgets,
        ))  # fmt: skip
        return self._run_sync(plan, force_cold)

    async def aburst(
        self,
        target: object,
        *,
        requests: int | str | None = None,
        concurrency: int,
        timeout: float | str = DEFAULT_TIMEOUT,
        deadline: float | str | None = None,
        duration: float | str | None = None,
        max_requests: int | None = None,
        budgets: Mapping[str, object] | None = None,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """The async twin of :meth:`burst` (anyio: asyncio and trio backends)."""
        __tracebackhide__ = True
        plan = self._plan("burst", target, workers, fanout, lambda: Burst(
            requests=requests, concurrency=concurrency, timeout=timeout, deadline=deadline,
            duration=duration, max_requests=max_requests, budgets=budgets,
        ))  # fmt: skip
        return await self._run_async(plan, force_cold)

    def rate(
        self,
        target: object,
        *,
        rps: float,
        duration: float | str,
        timeout: float | str = DEFAULT_TIMEOUT,
        max_in_flight: int | None = None,
        deadline: float | str | None = None,
        connections: int | None = None,
        max_duration: float | str | None = None,
        budgets: Mapping[str, object] | None = None,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """Open model: start ``rps`` requests per second for ``duration``, whatever the answers.

        Latency counts from each request's intended start (coordinated omission corrected,
        like wrk2); the figure from the actual send is kept as ``result.uncorrected``.
        ``duration="auto"`` runs waves until the budgets are decided (see :meth:`burst`),
        for at most ``max_duration``.
        """
        __tracebackhide__ = True
        plan = self._plan("rate", target, workers, fanout, lambda: Rate(
            rps=rps, duration=duration, timeout=timeout, max_in_flight=max_in_flight,
            deadline=deadline, connections=connections, max_duration=max_duration,
            budgets=budgets,
        ))  # fmt: skip
        return self._run_sync(plan, force_cold)

    async def arate(
        self,
        target: object,
        *,
        rps: float,
        duration: float | str,
        timeout: float | str = DEFAULT_TIMEOUT,
        max_in_flight: int | None = None,
        deadline: float | str | None = None,
        connections: int | None = None,
        max_duration: float | str | None = None,
        budgets: Mapping[str, object] | None = None,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """The async twin of :meth:`rate`."""
        __tracebackhide__ = True
        plan = self._plan("rate", target, workers, fanout, lambda: Rate(
            rps=rps, duration=duration, timeout=timeout, max_in_flight=max_in_flight,
            deadline=deadline, connections=connections, max_duration=max_duration,
            budgets=budgets,
        ))  # fmt: skip
        return await self._run_async(plan, force_cold)

    def ramp(
        self,
        target: object,
        *,
        users: int,
        spawn_rate: float,
        duration: float | str,
        timeout: float | str = DEFAULT_TIMEOUT,
        deadline: float | str | None = None,
        think_time: float | str = 0.0,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """Locust-style: add ``users`` closed-loop users at ``spawn_rate`` per second.

        ``think_time`` is each user's pause after every response (Locust's ``wait_time``),
        so a throttled user does not spin on throttles.
        """
        __tracebackhide__ = True
        plan = self._plan("ramp", target, workers, fanout, lambda: Ramp(
            users=users, spawn_rate=spawn_rate, duration=duration, timeout=timeout,
            deadline=deadline, think_time=think_time,
        ))  # fmt: skip
        return self._run_sync(plan, force_cold)

    async def aramp(
        self,
        target: object,
        *,
        users: int,
        spawn_rate: float,
        duration: float | str,
        timeout: float | str = DEFAULT_TIMEOUT,
        deadline: float | str | None = None,
        think_time: float | str = 0.0,
        force_cold: bool = False,
        workers: int | str | None = None,
        fanout: int | LambdaFanout | None = None,
    ) -> RunResult:
        """The async twin of :meth:`ramp`."""
        __tracebackhide__ = True
        plan = self._plan("ramp", target, workers, fanout, lambda: Ramp(
            users=users, spawn_rate=spawn_rate, duration=duration, timeout=timeout,
            deadline=deadline, think_time=think_time,
        ))  # fmt: skip
        return await self._run_async(plan, force_cold)

    # planning and running -------------------------------------------------------------
    def _plan(
        self,
        name: str,
        target: object,
        workers: object | None,
        fanout: object | None,
        build: Callable[[], Shape],
    ) -> _Plan:
        __tracebackhide__ = True
        try:
            shape = build()
            settings = self._state.settings
            shards = settings.fanout if fanout is None else parse_fanout(fanout)
            # Fanned out, each Lambda shard runs one engine: the session's workers do not apply.
            default_workers = 1 if shards is not None else settings.workers
            n_workers = default_workers if workers is None else parse_workers(workers)
            shape.check_workers(n_workers)
            if isinstance(shape, Ramp):
                shape.check_all_users_start()
            if isinstance(shape, (Burst, Rate)) and shape.auto:
                budgets_of(shape, self._judging())  # no budget applies: refused before firing
            return _Plan(as_target(target), shape, n_workers, name, shards)
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None

    def _capped(self, plan: _Plan, grant: Grant, extras: dict[str, Any]) -> Shape:
        """The shape within the grant: no deadline reaches past what is left of the session's
        load-time cap (a run of unknown size also stops at the requests left: _request_cap)."""
        left = max(grant.load_left_s, 0.001)
        if plan.shape.deadline_s > left:
            extras["deadline_capped"] = round(left, 3)  # said in the report if it mattered
            return replace(plan.shape, deadline=left)
        return plan.shape

    def _fanout_spend(self, plan: _Plan) -> Callable[[float], None]:
        """A fan-out run's estimate goes into the session's ledger (its cost cap)."""
        what = plan.target.describe()
        return lambda usd: self._state.ledger.spend_fanout(usd, what)

    @staticmethod
    def _request_cap(grant: Grant) -> int | None:
        return None if grant.sized else grant.requests

    def _judging(self) -> Judging:
        """What decides an auto run that names no budgets: the test's own budgets."""
        return Judging(self.budgets, self.default_throttle_rate,
                       self._state.settings.verdict_policy)  # fmt: skip

    @staticmethod
    def _settle(plan: _Plan, result: RunResult) -> RunResult:
        """An auto run's ``budgets=`` are checked, as ``check(**budgets)`` would."""
        __tracebackhide__ = True
        shape = plan.shape
        if isinstance(shape, (Burst, Rate)) and shape.auto and shape.budget_limits:
            raise_for([v for v in result.verdicts if v.source == "check"], result)
        return result

    def _run_sync(self, plan: _Plan, force_cold: bool) -> RunResult:
        with self._guard(plan, force_cold) as (grant, extras), self._watch(plan) as engines:
            try:
                measurements, run = measure(
                    plan.target, self._capped(plan, grant, extras), workers=plan.workers,
                    request_cap=self._request_cap(grant), name=plan.name, engines=engines,
                    fanout=plan.fanout, extras=extras,
                    max_loop_lag_s=self._state.settings.max_loop_lag_s, judging=self._judging(),
                    fanout_spend=self._fanout_spend(plan),
                )  # fmt: skip
            except BaseException as exc:
                self._keep_partial(plan, grant, extras, exc)
                raise
            result = self._finish(plan, grant, measurements, run, extras)
        return self._settle(plan, result)

    async def _run_async(self, plan: _Plan, force_cold: bool) -> RunResult:
        with self._guard(plan, force_cold) as (grant, extras), self._watch(plan) as engines:
            try:
                measurements, run = await ameasure(
                    plan.target, self._capped(plan, grant, extras), workers=plan.workers,
                    request_cap=self._request_cap(grant), engines=engines,
                    fanout=plan.fanout, extras=extras,
                    max_loop_lag_s=self._state.settings.max_loop_lag_s, judging=self._judging(),
                    fanout_spend=self._fanout_spend(plan),
                )  # fmt: skip
            except BaseException as exc:
                self._keep_partial(plan, grant, extras, exc)
                raise
            result = self._finish(plan, grant, measurements, run, extras)
        return self._settle(plan, result)

    def _watch(self, plan: _Plan) -> contextlib.AbstractContextManager[list[Any] | None]:
        """The session's watcher around the engine (the progress line), if it has one."""
        watch = self._state.watch_run
        return watch(self.test_id, plan.workers) if watch else contextlib.nullcontext(None)

    def _keep_partial(
        self, plan: _Plan, grant: Grant, extras: dict[str, Any], exc: BaseException
    ) -> None:
        """On Ctrl-C, cancellation or an early stop keep what was measured, for the report."""
        aborted = exc if isinstance(exc, LoadAborted) else exc.__cause__
        if not isinstance(aborted, LoadAborted):
            return
        measurements, run = aborted.measurements, aborted.run_info
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
        target, shape = plan.target, plan.shape
        extras: dict[str, Any] = {}
        with target_lock(target) as waited:
            grant = self._state.ledger.reserve(
                shape.planned_requests, shape.duration_s, target.describe()
            )
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
        run: RunInfo,
        extras: dict[str, Any],
    ) -> RunResult:
        if run.stopped != "deadline":
            extras.pop("deadline_capped", None)  # the cut deadline never came into play
        if run.stopped == "request_cap":
            extras["request_cap"] = grant.requests
        settings = self._state.settings
        result = build_result(
            plan.target, plan.shape, plan.workers, measurements, run,
            max_loop_lag_s=settings.max_loop_lag_s, saturation_policy=settings.saturation_policy,
            extras=extras, default_throttle_rate=self.default_throttle_rate,
            target_info=self._state.describe_target(plan.target),
            verdict_policy=settings.verdict_policy,
        )  # fmt: skip
        if result.saturated and result.saturation_policy == "warn":
            warnings.warn(SaturationWarning(result.saturation_note), stacklevel=4)
        wall_s = time.monotonic() - extras.pop("_started", time.monotonic())
        extras.pop("_grant_open", None)
        self._state.ledger.settle(grant, result.count + result.unsent, max(wall_s, result.duration))
        # After the load time is settled: the fetch is the report's, not the run's.
        series = server_series(
            plan.target, result, self._state.emulator_urls, self._state.server_seen
        )
        if series is not None:
            result.extras["server_timeseries"] = series
        self.results.append(result)
        return result
