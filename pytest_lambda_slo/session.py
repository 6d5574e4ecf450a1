"""The ``lambda_slo`` fixture object and the per-session state behind it (records, caps)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, LoadAborted
from .result import BurstResult
from .targets import Target, as_target
from .units import parse_count, parse_duration

DEFAULT_TIMEOUT = "30s"


@dataclass
class Settings:
    """Session-wide settings from ini keys and CLI options, already validated."""

    max_requests: int = 1_000_000
    max_load_time_s: float = 3600.0
    saturation_policy: str = "fail"  # or "warn"
    max_loop_lag_s: float = 0.025
    workers: int = 1


@dataclass
class SessionState:
    """Everything the plugin keeps for one pytest session (held in config.stash)."""

    settings: Settings
    records: list[tuple[str, BurstResult]] = field(default_factory=list)
    ini_budgets: dict[str, float] = field(default_factory=dict)
    requests_used: int = 0
    load_time_used_s: float = 0.0

    def reserve(self, requests: int | None, duration_s: float | None, what: str) -> None:
        """Refuse a run that would pass the session caps (runaway protection)."""
        s = self.settings
        if requests is not None and self.requests_used + requests > s.max_requests:
            raise LoadAborted(
                f"{what} would send {requests} requests but only "
                f"{s.max_requests - self.requests_used} of the session cap "
                f"lambda_slo_max_requests={s.max_requests} remain; raise the ini key if you "
                "really mean it"
            )
        if self.load_time_used_s >= s.max_load_time_s or (
            duration_s is not None and self.load_time_used_s + duration_s > s.max_load_time_s
        ):
            raise LoadAborted(
                f"{what} would pass the session's load-time cap "
                f"lambda_slo_max_load_time={s.max_load_time_s:g}s "
                f"({self.load_time_used_s:.1f}s used); raise the ini key if you really mean it"
            )

    def account(self, result: BurstResult) -> None:
        self.requests_used += result.count + result.unsent
        self.load_time_used_s += result.duration


_HELD_HERE: set[str] = set()


def _lock_key(target: Target) -> str:
    info = target.shape_info()
    key = info.get("lock_key") or info.get("url") or target.describe()
    return hashlib.sha256(str(key).encode()).hexdigest()[:24]


@contextlib.contextmanager
def target_lock(target: Target) -> Iterator[float]:
    """Hold an exclusive, cross-process lock for this target while load is fired at it.

    Under pytest-xdist two workers must never load the same function at once: they would
    share its concurrency and spoil each other's numbers. Yields the seconds spent waiting.
    """
    key = _lock_key(target)
    if key in _HELD_HERE:
        raise ConfigError(
            f"{target.describe()} is already under load from this process; two loads at one "
            "target at once share its concurrency and spoil both results: run them one by one"
        )
    directory = os.path.join(tempfile.gettempdir(), "pytest-lambda-slo-locks")
    os.makedirs(directory, exist_ok=True)
    started = time.monotonic()
    _HELD_HERE.add(key)
    try:
        with open(os.path.join(directory, key + ".lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield time.monotonic() - started
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        _HELD_HERE.discard(key)


def assess_saturation(run: dict[str, Any], settings: Settings) -> None:
    """Mark a run saturated when the load generator itself was the bottleneck."""
    lag_p99_ms = float(run.get("loop_lag_p99_ms", 0.0) or 0.0)
    lag_max_ms = float(run.get("loop_lag_max_ms", 0.0) or 0.0)
    cpu_s = float(run.get("cpu_s", 0.0) or 0.0)
    duration_s = float(run.get("duration_s", 0.0) or 0.0)
    cpu_share = cpu_s / duration_s if duration_s > 0 else 0.0
    reasons = []
    if lag_p99_ms / 1000.0 > settings.max_loop_lag_s:
        reasons.append(
            f"event-loop lag p99 {lag_p99_ms:.1f}ms (max {lag_max_ms:.1f}ms) over "
            f"lambda_slo_max_loop_lag={settings.max_loop_lag_s * 1000:.0f}ms"
        )
    if duration_s >= 1.0 and cpu_share >= 0.97 * max(int(run.get("workers", 1) or 1), 1):
        reasons.append(f"load generator used {cpu_share:.0%} of a CPU core")
    run["cpu_share"] = round(cpu_share, 3)
    if reasons:
        run["saturated"] = True
        run["saturation_note"] = (
            "the load generator was saturated (" + "; ".join(reasons) + "): latencies include "
            "its own queueing. Lower concurrency, use workers=N, or set "
            "lambda_slo_saturation = warn to judge anyway"
        )
    else:
        run["saturated"] = False


class LambdaSLO:
    """The ``lambda_slo`` fixture: fire load at a target, get a :class:`BurstResult`."""

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
    ) -> BurstResult:
        """Fire ``requests`` requests with at most ``concurrency`` in flight (like hey -n -c)."""
        from . import engine

        __tracebackhide__ = True  # bad input is the caller's line, not a plugin traceback
        try:
            resolved, shape = self._prepare(
                target, requests, concurrency, timeout, deadline, duration
            )
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None
        with self._guard(resolved, shape, force_cold) as extras:
            measurements, run = engine.run_burst(
                resolved,
                requests=shape["requests"],
                concurrency=shape["concurrency"],
                timeout=shape["timeout_s"],
                deadline=shape["deadline_s"],
                duration=shape["duration_s"],
            )
        return self._finish(resolved, shape, measurements, run, extras)

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
    ) -> BurstResult:
        """The async twin of :meth:`burst` (anyio: asyncio and trio backends)."""
        from . import engine

        __tracebackhide__ = True  # bad input is the caller's line, not a plugin traceback
        try:
            resolved, shape = self._prepare(
                target, requests, concurrency, timeout, deadline, duration
            )
        except ConfigError as exc:
            raise ConfigError(str(exc)) from None
        with self._guard(resolved, shape, force_cold) as extras:
            measurements, run = await engine.arun_burst(
                resolved,
                requests=shape["requests"],
                concurrency=shape["concurrency"],
                timeout=shape["timeout_s"],
                deadline=shape["deadline_s"],
                duration=shape["duration_s"],
            )
        return self._finish(resolved, shape, measurements, run, extras)

    # plumbing --------------------------------------------------------------------------
    def _prepare(
        self,
        target: object,
        requests: int | None,
        concurrency: int,
        timeout: object,
        deadline: object | None,
        duration: object | None,
    ) -> tuple[Target, dict[str, Any]]:
        resolved = as_target(target)
        duration_s = (
            None
            if duration is None
            else parse_duration(duration, name="duration", allow_zero=False)
        )
        if requests is None and duration_s is None:
            raise ConfigError("burst() needs requests=N (a whole number >= 1) or duration='30s'")
        n = None if requests is None else parse_count(requests, name="requests", minimum=1)
        c = parse_count(concurrency, name="concurrency", minimum=1)
        if n is not None and c > n:
            raise ConfigError(
                f"concurrency={c} is larger than requests={n}; use concurrency <= requests"
            )
        shape: dict[str, Any] = {
            "kind": "burst",
            "requests": n,
            "concurrency": c,
            "timeout_s": parse_duration(timeout, name="timeout", allow_zero=False),
            "deadline_s": None
            if deadline is None
            else parse_duration(deadline, name="deadline", allow_zero=False),
            "duration_s": duration_s,
        }
        return resolved, shape

    @contextlib.contextmanager
    def _guard(
        self, target: Target, shape: Mapping[str, Any], force_cold: bool
    ) -> Iterator[dict[str, Any]]:
        """Session caps, the cross-worker target lock and forced cold starts around a run."""
        self._state.reserve(shape.get("requests"), shape.get("duration_s"), target.describe())
        extras: dict[str, Any] = {}
        with target_lock(target) as waited:
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            if worker:
                extras["xdist_serialised"] = {"worker": worker, "waited_s": round(waited, 3)}
            if not force_cold:
                yield extras
                return
            forcer = getattr(target, "force_cold", None)
            if forcer is None:
                raise ConfigError(
                    f"force_cold=True needs a target that can change the function's "
                    f"configuration (InvokeTarget); {target.describe()} cannot"
                )
            with forcer() as done:
                extras["force_cold"] = done if isinstance(done, (str, dict)) else "yes"
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
        result = BurstResult(
            measurements=measurements,
            run=run_dict,
            target=target.describe(),
            target_info=target.shape_info(),
            shape={k: v for k, v in shape.items() if v is not None},
            cold_start_detection=measurements.cold_known > 0,
            saturation_policy=self._state.settings.saturation_policy,
            extras=extras,
        )
        self._state.account(result)
        self.results.append(result)
        return result
