"""The public run: ``run(target, shape, *, workers=1, fanout=None)`` and ``arun``, and what
they build on.

:func:`measure` checks and prepares everything in the caller (bad input raises there, on
every path), then runs the shape in this process, fanned out over worker processes or
over Lambda shards (remote.py), blocking or awaited; :func:`run` and :func:`arun` turn
what it measured into a RunResult.
The ``lambda_slo`` fixture calls the same functions within the session's caps. An auto
shape (``Burst(requests="auto")``, ``Rate(duration="auto")``) is fired in waves until its
budgets are decided (waves.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .._fanout.config import parse_fanout
from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.recorder import Measurements
from .._results.result import RunResult
from .._results.saturation import DEFAULT_MAX_LOOP_LAG_S, assess_saturation
from .._results.verdict import VerdictPolicy
from .._results.verdicts import evaluate
from .._targets.base import PreparedTarget, Target
from .._targets.resolve import as_target
from .._units import parse_workers
from ..errors import ConfigError
from .drivers import dialer_for, engine_for
from .engine import Engine
from .pool import add_messages, run_workers
from .remote import run_fanout
from .runinfo import RunInfo
from .runner import RunHandle, run_blocking, run_in_thread, run_on_own_loop
from .shapes import SHAPES, Burst, Ramp, Rate, Shape
from .waves import Judging, WavePlan, is_auto

Measured = tuple[Measurements, RunInfo]
Go = Callable[[RunHandle | None], Measured]


def _ready(
    target: object,
    shape: object,
    workers: object,
    request_cap: int | None,
    engines: list[Engine[Any]] | None = None,
    fanout: object = None,
    extras: dict[str, Any] | None = None,
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    judging: Judging | None = None,
    fanout_spend: Callable[[float], None] | None = None,
) -> tuple[Target, int, Go]:
    """Check and prepare everything in the caller (bad input raises here).

    Returns the target, the number of worker processes (or Lambda shards) and the run.
    """
    if not isinstance(shape, SHAPES):
        raise ConfigError(f"shape={shape!r} is not valid; use Burst(...), Rate(...) or Ramp(...)")
    n_workers = parse_workers(workers)
    shards = parse_fanout(fanout)
    if shards is not None and n_workers != 1:
        raise ConfigError(
            f"workers={workers!r} with fanout= is not valid; each Lambda shard runs one "
            "engine: use workers=1 (more shards give more processes)"
        )
    if shards is not None and is_auto(shape):
        raise ConfigError(
            "an auto shape (requests='auto' or duration='auto') cannot be fanned out over "
            "Lambda shards; use fanout=None (workers=N splits it over processes) or a fixed size"
        )
    shape.check_workers(n_workers)
    resolved = as_target(target)
    varying: tuple[str, ...] = getattr(resolved, "per_request", ())
    if is_auto(shape) and n_workers > 1 and varying:
        raise ConfigError(
            f"per-request {', '.join(varying)}= with workers={n_workers} and an "
            "auto shape is not supported (each wave would start the requests' index again); "
            "use workers=1 or a fixed size"
        )
    prepared = resolved.prepare()  # bad targets fail here, in the caller, for every path
    if shards is not None:
        dialer_for(prepared)
        return (
            resolved,
            shards.shards,
            lambda handle: run_fanout(
                resolved, shape, shards, handle, request_cap, extras=extras,
                log=_to_stderr, max_loop_lag_s=max_loop_lag_s, spend=fanout_spend,
            ),
        )  # fmt: skip
    messages: dict[str, list[str]] = {}
    if is_auto(shape):
        assert isinstance(shape, (Burst, Rate))
        plan = _wave_plan(resolved, shape, n_workers, request_cap, judging or Judging())
        go = _waves(plan, resolved, prepared, engines)
    else:
        go = _one_run(resolved, prepared, shape, n_workers, request_cap, engines, messages)

    def run_and_keep_messages(handle: RunHandle | None) -> Measured:
        try:
            return go(handle)
        finally:  # also for a run that stopped: its messages explain why
            add_messages(messages, "check_failed", getattr(prepared, "check_messages", ()))
            add_messages(messages, "auth_denied", getattr(prepared, "auth_messages", ()))
            if messages and extras is not None:
                extras["error_messages"] = messages

    return resolved, n_workers, run_and_keep_messages


def _one_run(
    resolved: Target,
    prepared: PreparedTarget,
    shape: Shape,
    n_workers: int,
    request_cap: int | None,
    engines: list[Engine[Any]] | None,
    messages: dict[str, list[str]] | None = None,
) -> Go:
    if n_workers == 1:
        engine = engine_for(shape, prepared, request_cap=request_cap)
        if engines is not None:
            engines[:] = [engine]  # a watcher (the progress line) reads its live counters
        return lambda handle: run_on_own_loop(engine, handle)
    dialer_for(prepared)  # bad transport options (verify=) fail here too
    return lambda handle: run_workers(resolved, shape, n_workers, handle, request_cap, messages)


def _wave_plan(
    resolved: Target, shape: Burst | Rate, n_workers: int, request_cap: int | None,
    judging: Judging,
) -> WavePlan:  # fmt: skip
    def result_of(measurements: Measurements, info: RunInfo) -> RunResult:
        return build_result(
            resolved, shape, n_workers, measurements, info,
            default_throttle_rate=judging.default_throttle_rate, verdict_policy=judging.policy,
        )  # fmt: skip

    return WavePlan(shape, judging, result_of, request_cap=request_cap, workers=n_workers)


def _waves(
    plan: WavePlan, resolved: Target, prepared: PreparedTarget,
    engines: list[Engine[Any]] | None,
) -> Go:  # fmt: skip
    """The auto run: fire a wave, judge the run so far, until the plan says it is over.

    Each wave runs like a run of its own on the same thread (so Ctrl-C and the stop handle
    reach it); an interrupted wave's exception carries every wave's measurements.
    """

    def go(handle: RunHandle | None) -> Measured:
        while (wave := plan.next_wave()) is not None:
            left = None if plan.request_cap is None else plan.request_cap - plan.sent
            one = _one_run(resolved, prepared, wave, plan.workers, left, engines)
            try:
                measured = one(handle)
            except BaseException as exc:
                plan.keep_partial(exc)
                raise
            plan.add(measured)
            if handle is not None and handle.stop_requested:
                break
        return plan.outcome()

    return go


def _to_stderr(line: str) -> None:
    """Fan-out progress lines (the cost estimate first): on stderr, before anything fires."""
    print(line, file=sys.stderr, flush=True)


def measure(
    target: object,
    shape: Shape,
    *,
    workers: object = 1,
    request_cap: int | None = None,
    name: str = "run",
    engines: list[Engine[Any]] | None = None,
    fanout: object = None,
    extras: dict[str, Any] | None = None,
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    judging: Judging | None = None,
    fanout_spend: Callable[[float], None] | None = None,
) -> Measured:
    """Run ``shape`` against ``target``, blocking; (Measurements, RunInfo).

    ``request_cap`` bounds the requests sent (what a session cap left); ``name`` is what
    the caller called, for the error refusing to block a running event loop. Ctrl-C stops
    the run within about a second, closes every socket and re-raises KeyboardInterrupt
    whose ``__cause__`` is a LoadAborted carrying what was measured so far. ``engines``
    receives the engine of a single-process run, for a watcher of its live counters.
    ``fanout`` (a shard count or LambdaFanout) runs it over Lambda shards; ``extras`` then
    receives their table (``extras["fanout"]``). ``judging``: the budgets, implied throttle
    budget and policy that decide an auto shape naming no budgets of its own (the test's).
    ``fanout_spend``: given a fan-out run's cost estimate before it fires (it may refuse).
    """
    ready = _ready(target, shape, workers, request_cap, engines, fanout, extras, max_loop_lag_s,
                   judging, fanout_spend)  # fmt: skip
    return run_blocking(name, ready[2])


async def ameasure(
    target: object,
    shape: Shape,
    *,
    workers: object = 1,
    request_cap: int | None = None,
    engines: list[Engine[Any]] | None = None,
    fanout: object = None,
    extras: dict[str, Any] | None = None,
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    judging: Judging | None = None,
    fanout_spend: Callable[[float], None] | None = None,
) -> Measured:
    """The async twin of :func:`measure`, for asyncio and trio (through anyio)."""
    # Bad input raises here, in the caller, not in the engine's thread.
    ready = _ready(target, shape, workers, request_cap, engines, fanout, extras, max_loop_lag_s,
                   judging, fanout_spend)  # fmt: skip
    return await run_in_thread(ready[2])


def build_result(
    target: Target,
    shape: Shape,
    workers: int,
    measurements: Measurements,
    info: RunInfo,
    *,
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    saturation_policy: str = "fail",
    extras: dict[str, Any] | None = None,
    default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE,
    target_info: dict[str, Any] | None = None,
    verdict_policy: VerdictPolicy | None = None,
) -> RunResult:
    """The RunResult of a run: its figures, the saturation judgement, cost when billed.

    ``target_info`` replaces the target's own description (a session adds details to it).
    """
    run = info.to_dict()
    run.update(assess_saturation(run, max_loop_lag_s).run_fields())
    extras = {} if extras is None else extras
    estimate_cost = getattr(target, "estimate_cost", None)  # targets with billed figures
    if estimate_cost is not None and measurements.billed_mb_ms:
        extras["cost"] = estimate_cost(measurements)
    result = RunResult(
        measurements=measurements,
        run=run,
        target=target.describe(),
        target_info=target.shape_info() if target_info is None else target_info,
        shape=shape.describe(workers),
        cold_start_detection=measurements.cold_known > 0,
        saturation_policy=saturation_policy,
        extras=extras,
        default_throttle_rate=default_throttle_rate,
        verdict_policy=VerdictPolicy() if verdict_policy is None else verdict_policy,
    )
    if is_auto(shape) and info.sequential is not None:
        assert isinstance(shape, (Burst, Rate))
        if shape.budget_limits:  # the budgets it was fired against: judged as it stopped
            result.verdicts.extend(evaluate(result, dict(shape.budget_limits), "check"))
    return result


def run(
    target: object, shape: Shape, *, workers: int | str = 1, fanout: object = None
) -> RunResult:
    """Fire ``shape`` (a Burst, Rate or Ramp) at ``target``; blocking. Check it with ``check``.

    ``workers=N`` (or "auto": one per CPU) splits the shape over N processes; ``fanout=N``
    or ``LambdaFanout(N, ...)`` over N Lambda shards (docs/fanout.md). Outside pytest there
    are no session caps; the saturation check uses its defaults.
    """
    extras: dict[str, Any] = {}
    resolved, n_workers, go = _ready(target, shape, workers, None, None, fanout, extras)
    measurements, info = run_blocking("run", go)
    return build_result(resolved, shape, n_workers, measurements, info, extras=extras)


async def arun(
    target: object, shape: Shape, *, workers: int | str = 1, fanout: object = None
) -> RunResult:
    """The async twin of :func:`run`, for asyncio and trio (through anyio)."""
    extras: dict[str, Any] = {}
    resolved, n_workers, go = _ready(target, shape, workers, None, None, fanout, extras)
    measurements, info = await run_in_thread(go)
    return build_result(resolved, shape, n_workers, measurements, info, extras=extras)


# Module-level helpers returning (Measurements, RunInfo): each shape's arguments are the
# shape class's own (declared there once), plus ``workers``.
def run_burst(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return measure(target, Burst(**shape), workers=workers, name="run_burst")


async def arun_burst(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return await ameasure(target, Burst(**shape), workers=workers)


def run_rate(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return measure(target, Rate(**shape), workers=workers, name="run_rate")


async def arun_rate(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return await ameasure(target, Rate(**shape), workers=workers)


def run_ramp(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return measure(target, Ramp(**shape), workers=workers, name="run_ramp")


async def arun_ramp(target: object, *, workers: object = 1, **shape: Any) -> Measured:
    return await ameasure(target, Ramp(**shape), workers=workers)
