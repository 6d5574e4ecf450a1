"""The parent side of a Lambda fan-out: guards, the generator, a clock probe, N shards, one merge.

What pool.py is to local worker processes, this is to Lambda shards. In order:

1. checks that need no AWS: the target and shape as JSON (spec.py), sockets per shard,
   the shape's deadline against the function's timeout, and the cost line, shown before
   anything else happens and refused above ``max_cost`` or a session cap;
2. the generator function (``ensure_generator``: created once, then reused);
3. the account's concurrency and, for an Invoke target, the shared-pool check;
4. a clock probe: two waves of one ``{"op": "probe"}`` per shard, together: the first
   warms an environment per shard, the second gives Lambda's clock against this machine's;
5. the run: one ``{"op": "run"}`` per shard, invoked together from a thread pool with the
   no-retry client (RequestResponse); each shard sleeps until the agreed start instant
   (now on Lambda's clock + a dispatch margin) and runs ``worker.run_slice``;
6. every answer checked, then merged exactly: ``Measurements.merge`` and
   ``merge_run_infos``, as for local workers.

A shard that fails, is throttled, does not answer, starts later than ``start_tolerance``
after the first, is saturated or is stopped by its timeout makes the run invalid: a
:class:`FanoutError` naming the shard and why, never a pass or a fail. Nothing is retried.
Ctrl-C (or a cancelled caller) sets the generator's reserved concurrency to 0, which every
shard polls, and raises with what the shards measured until then.
"""

from __future__ import annotations

import concurrent.futures as futures
import functools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._fanout.config import LambdaFanout
from .._fanout.deploy import (
    GeneratorFunction,
    control_client,
    ensure_generator,
    invoke_client,
    stop_all,
)
from .._fanout.guards import (
    check_account_concurrency,
    check_cost,
    check_shared_pool,
    check_sockets,
    estimate_fanout_cost,
    target_reserved_concurrency,
    unreserved_concurrency,
)
from .._fanout.package import Package, build_package
from .._results.recorder import Measurements
from .._results.saturation import DEFAULT_MAX_LOOP_LAG_S
from .._targets.base import Target
from .._targets.invoke import InvokeTarget
from ..errors import ConfigError, LambdaSLOError, LoadAborted
from .fanin import FanoutError, ShardCall, describe_shards, merge_shards, validate
from .runinfo import RunInfo
from .runner import RunHandle
from .shapes import Ramp, Rate, Shape
from .spec import shape_to_spec, target_to_spec
from .worker import STOPS

# The start instant is this far after Lambda's "now", at least: room to dispatch every
# shard and for each to open its connections.
MIN_DISPATCH_MARGIN_S = 2.0
# ... and at least this many times the slowest probe's round trip (dispatch included).
MARGIN_PER_PROBE_RTT = 3.0
# What a shard spends beyond the shape's deadline: the margin, connecting, answering.
START_BUDGET_S = 10.0
# Beyond the start instant + the shape's deadline: the hard deadline for every answer.
RESULT_GRACE_S = 30.0
# After a stop: how long the shards get to send what they measured.
STOP_WAIT_S = 5.0
_POLL_S = 0.05
# A shard polls its stop flag (GetFunction) this often: fast for a few shards, and at
# most 50 calls per second for many (Lambda allows 100 GetFunction calls per second).
MIN_STOP_POLL_S = 0.25
STOP_POLLS_PER_S = 50.0

Measured = tuple[Measurements, RunInfo]
Log = Callable[[str], None]


def in_flight(shape: Shape) -> int:
    """The most requests the whole run has in flight (what the shards' sockets must hold)."""
    if isinstance(shape, Rate):
        return shape.in_flight_cap
    if isinstance(shape, Ramp):
        return shape.users
    return shape.concurrency


def stop_poll_s(shards: int) -> float:
    return max(MIN_STOP_POLL_S, shards / STOP_POLLS_PER_S)


@functools.lru_cache(maxsize=4)
def _package(fanout: LambdaFanout) -> Package:
    return build_package(fanout)


def package_for(fanout: LambdaFanout) -> Package:
    """The generator zip, built once per process for a build configuration (the shard count,
    costs and names do not change the zip)."""
    return _package(replace(fanout, shards=1, max_cost=None, function_name=None))


def run_fanout(
    target: Target,
    shape: Shape,
    fanout: LambdaFanout,
    handle: RunHandle | None = None,
    request_cap: int | None = None,
    *,
    extras: dict[str, Any] | None = None,
    log: Log | None = None,
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    spend: Callable[[float], None] | None = None,
) -> Measured:
    """Run ``shape`` split over ``fanout.shards`` invocations of the generator; merged exactly.

    ``extras`` receives ``extras["fanout"]``: the cost line, the generator, the clock probe,
    the start spread, the dispatch time and a row per shard. ``log`` gets each line as it
    happens (the cost line before anything is created or fired). ``spend`` is given the
    cost estimate once it passed ``max_cost``, before anything is created or fired; it may
    refuse the run (a session's cost cap).
    """
    say = log or (lambda _line: None)
    report: dict[str, Any] = {"shards": fanout.shards}
    if extras is not None:
        extras["fanout"] = report
    n = fanout.shards
    concurrency = in_flight(shape)
    if n > concurrency or (shape.planned_requests is not None and n > shape.planned_requests):
        raise ConfigError(
            f"fanout={n} shards is more than the run's {concurrency} in flight; every shard "
            "needs at least one connection: use fewer shards"
        )
    target_spec, shape_spec = target_to_spec(target), shape_to_spec(shape)
    check_sockets(concurrency, fanout)
    if shape.deadline_s + START_BUDGET_S > fanout.timeout_s:
        raise ConfigError(
            f"the shape's deadline ({shape.deadline_s:g}s) and the start ({START_BUDGET_S:g}s) "
            f"do not fit in the generator's timeout ({fanout.timeout_s:g}s); pass deadline= "
            "(or a shorter run) or a longer LambdaFanout(timeout=), at most 15m"
        )
    client = control_client(fanout)
    estimate = estimate_fanout_cost(
        fanout,
        shard_seconds=shape.deadline_s + START_BUDGET_S,
        region=client.meta.region_name,
        probes_per_shard=2,
        target_invocations=(
            (shape.planned_requests or 0) if isinstance(target, InvokeTarget) else 0
        ),
    )
    report["cost"] = estimate.line()
    report["estimated_usd"] = round(estimate.total_usd, 6)
    say(estimate.line())
    check_cost(estimate, fanout.max_cost)
    if spend is not None:
        spend(estimate.total_usd)

    generator = ensure_generator(fanout, package=package_for(fanout), client=client, log=say)
    report["function"], report["generator"] = generator.name, generator.action
    _check_pools(client, generator, target, fanout, report, say)

    shard_client = invoke_client(fanout)
    stop = {"function": generator.name, "region": generator.region,
            "endpoint_url": generator.endpoint_url, "poll_s": stop_poll_s(n)}  # fmt: skip
    try:
        offset_ns, margin_s = _probe(shard_client, generator, n, stop, report, say)
        return _dispatch(
            shard_client, client, generator, target_spec, shape, shape_spec, fanout,
            handle, request_cap, offset_ns, margin_s, stop, report, say, max_loop_lag_s,
        )  # fmt: skip
    finally:
        shard_client.close()


def _check_pools(
    client: Any,
    generator: GeneratorFunction,
    target: Target,
    fanout: LambdaFanout,
    report: dict[str, Any],
    say: Log,
) -> None:
    reserved = client.get_function_concurrency(FunctionName=generator.name).get(
        "ReservedConcurrentExecutions"
    )
    say(check_account_concurrency(fanout.shards, unreserved_concurrency(client),
                                  generator_reserved=reserved))  # fmt: skip
    if isinstance(target, InvokeTarget):
        target_client = target.client()
        try:
            arn, target_reserved = target_reserved_concurrency(target_client, target.function)
        finally:
            target_client.close()
        warning = check_shared_pool(generator.arn, arn, target_reserved, fanout.shared_pool)
        if warning:
            report["shared_pool"] = warning
    else:
        report["shared_pool"] = "not checked: the target is an URL, not a Lambda function"


def _invoke(client: Any, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
    """One synchronous invocation; (answer, sent_ns, answered_ns). FanoutError-ready text on
    a function error (raised as _ShardFailed)."""
    sent = time.time_ns()
    response = client.invoke(
        FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    body = response["Payload"].read()
    answered = time.time_ns()
    if response.get("FunctionError"):
        try:
            error = json.loads(body)
            text = f"{error.get('errorType')}: {error.get('errorMessage')}"
        except ValueError:
            text = body[:500].decode("utf-8", "replace")
        raise _ShardFailed(f"function error ({response['FunctionError']}): {text}")
    return json.loads(body), sent, answered


class _ShardFailed(Exception):
    """A shard's invocation answered with a function error."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, _ShardFailed):
        return str(exc)
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    code = error.get("Code") or type(exc).__name__
    if code in ("TooManyRequestsException", "ThrottlingException"):
        return f"throttled at dispatch ({code}): Lambda refused the invocation"
    if "Timeout" in type(exc).__name__:
        return f"no answer ({type(exc).__name__}: {exc})"
    return f"invocation failed ({code}: {error.get('Message') or exc})"


def _probe_wave(
    client: Any, name: str, n: int, stop: dict[str, Any], report: dict[str, Any]
) -> list[tuple[int, int]]:
    """``n`` probes invoked together: each one's (lowest, highest) possible clock offset."""
    event = {"op": "probe", "stop": stop}  # the shard builds its stop poll's client now
    with futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix="lambda-slo-probe") as pool:
        submitted = [pool.submit(_invoke, client, name, event) for _ in range(n)]
        bounds = []
        for index, future in enumerate(submitted):
            try:
                answer, sent, answered = future.result()
            except Exception as exc:
                raise FanoutError(
                    f"clock probe {index} of {n} failed: {_why(exc)}", index, report
                ) from None
            # The handler saw ``received_ns`` after we sent and ``replied_ns`` before we got
            # the answer: Lambda's clock minus ours lies between these two.
            bounds.append((answer["replied_ns"] - answered, answer["received_ns"] - sent))
    return bounds


def _probe(
    client: Any,
    generator: GeneratorFunction,
    n: int,
    stop: dict[str, Any],
    report: dict[str, Any],
    say: Log,
) -> tuple[int, float]:
    """Two probe waves of one invocation per shard: the first starts (warms) an environment
    per shard, whose cold start would blur the offset; the second gives Lambda's clock
    offset (the median of the bounds' midpoints) and the dispatch margin."""
    _probe_wave(client, generator.name, n, stop, report)
    started = time.monotonic()
    bounds = _probe_wave(client, generator.name, n, stop, report)
    wave_s = time.monotonic() - started
    offset = int(statistics.median((low + high) / 2 for low, high in bounds))
    margin = max(MIN_DISPATCH_MARGIN_S, MARGIN_PER_PROBE_RTT * wave_s)
    report["probe"] = {
        "invocations": 2 * n,
        "clock_offset_ms": round(offset / 1e6, 3),
        "offset_uncertainty_ms": round(max(high - low for low, high in bounds) / 2e6, 3),
        "wave_s": round(wave_s, 3),
        "margin_s": round(margin, 3),
    }
    say(f"lambda-slo fanout: {2 * n} clock probes answered; Lambda's clock is "
        f"{offset / 1e6:+.1f} ms from this machine's; start in {margin:.2f}s")  # fmt: skip
    return offset, margin


def _dispatch(
    shard_client: Any,
    client: Any,
    generator: GeneratorFunction,
    target_spec: dict[str, Any],
    shape: Shape,
    shape_spec: dict[str, Any],
    fanout: LambdaFanout,
    handle: RunHandle | None,
    request_cap: int | None,
    offset_ns: int,
    margin_s: float,
    stop: dict[str, Any],
    report: dict[str, Any],
    say: Log,
    max_loop_lag_s: float,
) -> Measured:
    n = fanout.shards
    start_at = time.time_ns() + offset_ns + int(margin_s * 1e9)
    shards = [
        ShardCall(i, shard_event(target_spec, shape_spec, i, n, start_at, request_cap, stop))
        for i in range(n)
    ]
    say(f"lambda-slo fanout: dispatching {n} shards of {generator.name}")
    hard_deadline = time.monotonic() + margin_s + shape.deadline_s + RESULT_GRACE_S
    stopped: str | None = None
    pool = futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix="lambda-slo-shard")
    running: dict[futures.Future[Any], ShardCall] = {}
    try:
        try:
            dispatch_started = time.time_ns()
            for shard in shards:
                running[pool.submit(_invoke, shard_client, generator.name, shard.event)] = shard
            pending = set(running)
            while pending:
                if handle is not None and handle.stop_requested:
                    stopped = "cancelled"
                    break
                if time.monotonic() > hard_deadline:
                    stopped = "deadline"
                    # Named as they were at the deadline: a stopped shard may answer after.
                    report["late_shards"] = sorted(running[f].index for f in pending)
                    break
                _done, pending = futures.wait(pending, timeout=_POLL_S)
        except KeyboardInterrupt:
            stopped = "interrupted"
        if stopped is not None:
            say(f"lambda-slo fanout: stopping every shard ({stopped}): reserved concurrency 0")
            stop_all(client, generator.name)
            futures.wait(set(running), timeout=STOP_WAIT_S)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for future, shard in running.items():
        if not future.done():
            shard.failure = "no answer (still running when the run ended)"
            continue
        try:
            shard.answer, shard.invoked_ns, _answered = future.result()
        except Exception as exc:
            shard.failure = _why(exc)
    measurements, info = merge_shards(shape, n, shards, request_cap, cancelled=stopped is not None)
    describe_shards(shards, offset_ns, dispatch_started, report, max_loop_lag_s)
    say(f"lambda-slo fanout: {sum(s.answer is not None for s in shards)} of {n} shards "
        f"answered; start spread {report.get('start_spread_ms')} ms")  # fmt: skip
    if stopped == "interrupted":
        raise KeyboardInterrupt("load run interrupted") from LoadAborted(
            "Ctrl-C", measurements, info
        )
    if stopped == "cancelled":
        raise LoadAborted("load run cancelled", measurements, info)
    validate(shards, fanout, report, stopped)
    for shard in shards:  # a slice that stopped itself (a user's callable, auth refusals)
        found = (shard.answer or {}).get("stop")
        if found:
            error = STOPS[found["kind"]](found["reason"], measurements, info)
            raise error from LambdaSLOError(f"in shard {shard.index}:\n{found['traceback']}")
    return measurements, info


def shard_event(
    target_spec: dict[str, Any],
    shape_spec: dict[str, Any],
    index: int,
    count: int,
    start_at_ns: int,
    request_cap: int | None,
    stop: dict[str, Any],
) -> dict[str, Any]:
    """The ``run`` event of shard ``index`` of ``count`` (JSON: what the handler reads)."""
    return {
        "op": "run",
        "target": target_spec,
        "shape": shape_spec,
        "index": index,
        "count": count,
        "start_at_ns": start_at_ns,
        "request_cap": request_cap,
        "stop": stop,
    }
