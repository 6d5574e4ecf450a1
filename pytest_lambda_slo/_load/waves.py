"""Firing until decided: an auto burst or rate run as a series of waves judged as it goes.

``Burst(requests="auto")`` and ``Rate(duration="auto")`` are not run as they are: a
:class:`WavePlan` cuts them into fixed waves (``shape.wave``), merges each wave's
measurements into the run's, and after every wave asks the anytime-valid sequential test
(:func:`.._results.sequential.judge_sequential`) on everything measured so far whether to
go on. Peeking after every wave is what that test allows: its error rates hold at whatever
wave the run stops. The run stops when every budget is decided, when one is certainly
broken, at ``max_requests`` / ``max_duration``, at the deadline or at the session's cap.

Each wave is a run of its own (one engine, or one set of worker processes): it opens its
connections before its release and closes them at its end, so connections are dialled
again for every wave. That happens before the release, so no latency includes it; it costs
one connection set-up per connection per wave (five rounds of requests), and a pause of a
few milliseconds between waves (a rate's schedule restarts after it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.recorder import Measurements
from .._results.result import RunResult
from .._results.sequential import SequentialState, judge_sequential
from .._results.verdict import VerdictPolicy
from ..errors import ConfigError, LoadAborted
from .runinfo import RunInfo
from .shapes import Burst, Rate
from .slices import highest_us_for

Measured = tuple[Measurements, RunInfo]
AutoShape = Burst | Rate
# RunInfo.stopped of an auto run that ended on its own (the waves' reasons come first).
STOP_REASONS = ("decided", "certain_fail", "max_requests", "max_duration")


@dataclass(frozen=True)
class Judging:
    """What decides an auto run whose shape names no budgets: the test's marker and ini
    budgets, the implied throttle budget and the session's verdict policy."""

    budgets: Mapping[str, float] = field(default_factory=dict)
    default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE
    policy: VerdictPolicy = field(default_factory=VerdictPolicy)


def is_auto(shape: object) -> bool:
    return isinstance(shape, (Burst, Rate)) and shape.auto


def budgets_of(shape: AutoShape, judging: Judging) -> dict[str, float]:
    """The budgets that decide ``shape``: its own ``budgets=``, else the test's."""
    budgets = dict(shape.budget_limits) or dict(judging.budgets)
    if not budgets:
        what = "requests" if isinstance(shape, Burst) else "duration"
        raise ConfigError(
            f"{what}='auto' fires until its budgets are decided, and no budget applies: pass "
            "budgets={'p99': '300ms'}, or set budgets with @pytest.mark.lambda_slo(...) or "
            "the ini keys lambda_slo_<budget>"
        )
    return budgets


class WavePlan:
    """One auto run: the next wave to fire, the run so far, and why it stopped.

    ``result_of`` builds a RunResult from measurements and a RunInfo (the caller's
    ``build_result``, with the target, the implied throttle budget and the policy);
    ``request_cap`` bounds the requests of every wave together; ``workers`` the processes
    each wave fans out over (a wave needs at least one request per process).
    """

    def __init__(
        self,
        shape: AutoShape,
        judging: Judging,
        result_of: Callable[[Measurements, RunInfo], RunResult],
        *,
        request_cap: int | None = None,
        workers: int = 1,
    ) -> None:
        self.shape = shape
        self.budgets = budgets_of(shape, judging)
        n_max = shape.planned_requests
        assert n_max is not None  # an auto shape's maximum
        self.n_max: int = n_max
        self.result_of = result_of
        self.request_cap = request_cap
        self.workers = workers
        self.state = SequentialState(self.n_max, policy=judging.policy)
        self.measurements = Measurements(highest_us=highest_us_for(shape.timeout_s,
                                                                   shape.deadline_s))  # fmt: skip
        self.infos: list[RunInfo] = []
        self.planned_s = 0.0  # a rate's wave time planned so far
        self.stopped: str | None = None
        self.note = ""
        self.decided_at: dict[str, int] = {}  # budget -> requests measured when it was decided
        self.steps: dict[str, str] = {}
        self._started = time.monotonic()

    # the loop ------------------------------------------------------------------------------
    @property
    def sent(self) -> int:
        return self.measurements.count + self.measurements.unsent

    def next_wave(self) -> Burst | Rate | None:
        """The next wave to fire, or None once the run is over (``stopped`` says why)."""
        if self.stopped is not None:
            return None
        left_s = self.shape.deadline_s - (time.monotonic() - self._started)
        if left_s <= 0:
            self._stop("deadline", "the deadline passed before every budget was decided")
            return None
        if self.request_cap is not None and self.sent >= self.request_cap:
            self._stop("request_cap", "the session's request cap was reached before every "
                       "budget was decided")  # fmt: skip
            return None
        if isinstance(self.shape, Rate):
            return self._next_rate(self.shape, left_s)
        left = self.n_max - self.sent
        if self.request_cap is not None:
            left = min(left, self.request_cap - self.sent)
        if left < max(self.workers, 1):
            self._stop("max_requests", self._max_note())
            return None
        return self.shape.wave(min(self.shape.wave_requests, left), left_s)

    def _next_rate(self, shape: Rate, left_s: float) -> Rate | None:
        left = shape.duration_s - self.planned_s
        if left * shape.rps < max(self.workers, 1) or self.sent >= self.n_max:
            self._stop("max_duration", self._max_note())
            return None
        wave_s = min(shape.wave_s, left)
        self.planned_s += wave_s
        return shape.wave(wave_s, min(left_s, wave_s + shape.timeout_s + 5.0))

    def add(self, measured: Measured) -> None:
        """Take one wave's measurements; judge the run so far and decide whether to stop."""
        measurements, info = measured
        self.measurements.merge(measurements)
        self.infos.append(info)
        if info.stopped in ("deadline", "request_cap"):
            what = "the deadline passed" if info.stopped == "deadline" else (
                "the session's request cap was reached"
            )  # fmt: skip
            self._stop(info.stopped, f"{what} before every budget was decided")
        step = judge_sequential(self.result_of(*self.outcome()), self.budgets, self.state)
        for name, value in step.steps.items():
            self.steps[name] = value
            if value != "continue":
                self.decided_at.setdefault(name, self.measurements.count)
        if self.stopped is not None or not step.done:
            return
        failed = [name for name, value in step.steps.items() if value == "fail"]
        if failed:
            at = min(self.decided_at[name] for name in failed)
            self._stop("certain_fail", f"{', '.join(failed)} certainly broken after {at:,} "
                       "requests")  # fmt: skip
        elif self.measurements.count >= self.n_max:
            self._stop(self._max_reason(), self._max_note())
        else:  # every budget the sequential test judges crossed its threshold before the max
            self._stop("decided", "every budget decided")

    def keep_partial(self, exc: BaseException) -> None:
        """A wave was interrupted (Ctrl-C, cancelled, stopped itself): let the exception carry
        every wave's measurements, not only that wave's, so the report keeps them all."""
        aborted = exc if isinstance(exc, LoadAborted) else exc.__cause__
        if not isinstance(aborted, LoadAborted) or aborted.measurements is None:
            return
        if aborted.run_info is not None:
            self.measurements.merge(aborted.measurements)
            self.infos.append(aborted.run_info)
            self.stopped = aborted.run_info.stopped or "cancelled"
            self.note = str(aborted.reason)
            aborted.measurements, aborted.run_info = self.outcome()

    # the run's figures -------------------------------------------------------------------
    def _max_reason(self) -> str:
        return "max_duration" if isinstance(self.shape, Rate) else "max_requests"

    def _max_note(self) -> str:
        """At the maximum the final bounds judge what the sequential test left undecided."""
        if isinstance(self.shape, Rate):
            return f"max_duration={self.shape.duration_s:g}s reached; the final bounds decide"
        return f"max_requests={self.n_max:,} reached; the final bounds decide"

    def _stop(self, reason: str, note: str) -> None:
        """End the run (``next_wave`` then gives None)."""
        self.stopped, self.note = reason, note

    def record(self) -> dict[str, Any]:
        """The run's sequential record (``RunInfo.sequential``), read by the verdicts."""
        levels = self.state.tests
        first = next(iter(levels.values()), None)
        whole = 1.0 - self.state.policy.fail_confidence
        return {
            "stopped": self.stopped,
            "note": self.note,
            "waves": len(self.infos),
            "requests": self.measurements.count,
            "n_max": self.n_max,
            "pass_confidence": None if first is None else 1.0 - first.pass_alpha,
            "fail_confidence": None if first is None else 1.0 - first.fail_alpha,
            "split": 1 if first is None else max(1, round(whole / first.fail_alpha)),
            "budgets": [self._entry(name, limit) for name, limit in self._judged().items()],
        }

    def _entry(self, name: str, limit: float) -> dict[str, Any]:
        tests = self.state.tests
        return {
            "budget": name,
            "limit": limit,
            "step": self.steps.get(name, "continue"),
            "decided_at": self.decided_at.get(name),
            "e_pass": _e(tests, name, "pass"),
            "e_fail": _e(tests, name, "fail"),
        }

    def _judged(self) -> dict[str, float]:
        """Every budget the sequential test saw, the implied throttle budget included."""
        judged = dict(self.budgets)
        for name in self.steps:
            if name not in judged and name in self.state.tests:
                judged[name] = self.state.tests[name].limit
        return judged

    def outcome(self) -> Measured:
        """The run so far: its measurements and one RunInfo over every wave."""
        return self.measurements, self._info()

    def _info(self) -> RunInfo:
        shape, infos = self.shape, self.infos
        first = infos[0] if infos else None
        busy = sum(i.duration_s for i in infos)
        info = RunInfo(
            started_at=first.started_at if first else time.time(),
            duration_s=busy,  # time under load: the pauses between waves left out
            requests=sum(i.requests or 0 for i in infos) or None,
            concurrency=shape.concurrency if isinstance(shape, Burst) else shape.in_flight_cap,
            timeout_s=shape.timeout_s,
            deadline_s=shape.deadline_s,
            duration_limit_s=shape.duration_s if isinstance(shape, Rate) else None,
            stopped=self.stopped,
            event_loop=first.event_loop if first else "",
            loop_lag_max_ms=max((i.loop_lag_max_ms for i in infos), default=0.0),
            loop_lag_p99_ms=max((i.loop_lag_p99_ms for i in infos), default=0.0),
            cpu_s=sum(i.cpu_s for i in infos),
            shape=shape.kind,
            workers=first.workers if first else self.workers,
            connections=sum(i.connections for i in infos),
            peak_in_flight=max((i.peak_in_flight for i in infos), default=0),
            waves=len(infos),
        )
        if isinstance(shape, Rate):
            info.intended_rps = shape.rps
            info.max_in_flight = shape.in_flight_cap
            spans = [(i.requests or 0) / i.achieved_rps for i in infos if i.achieved_rps]
            info.achieved_rps = sum(i.requests or 0 for i in infos) / sum(spans) if spans else 0.0
        if self.stopped is not None:
            info.sequential = self.record()
        return info


def _e(tests: Mapping[str, Any], name: str, side: str) -> float | None:
    test = tests.get(name)
    if test is None:
        return None
    return round(float(test.e_pass if side == "pass" else test.e_fail), 6)
