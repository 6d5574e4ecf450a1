"""Load shapes as values: ``Burst``, ``Rate`` and ``Ramp`` say *when* each request starts.

A shape validates on construction (a ConfigError naming the value and the accepted forms),
owns its defaults (the overall deadline, the histograms' range, the ramp's start rule) and
describes itself for the report. It knows nothing of connections or loops: the drivers
(closed.py, scheduled.py) run one :class:`~.slices.Slice` of it, which :meth:`part` cuts for
one of ``count`` processes, so N slices together follow the one global schedule.

``Burst(requests="auto")`` and ``Rate(duration="auto")`` fire until their budgets are
decided: they are not run as they are but cut into fixed waves (:meth:`Burst.wave`,
:meth:`Rate.wave`) by the wave loop (waves.py), within ``max_requests`` / ``max_duration``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from .._results.budgets import parse_budgets
from .._units import parse_count, parse_duration, parse_positive_number
from ..errors import ConfigError
from .firstwave import wave_size
from .slices import RampSlice, RateSlice, Slice, highest_us_for, split, split_cap, start_offset_ns

DEFAULT_TIMEOUT = "30s"
# Added to the default overall deadline: room for connection set-up and a slow tail.
DEADLINE_SLACK_S = 5.0
# Default in-flight cap of a rate run: rps x timeout (every request may wait its full timeout),
# bounded by AWS's default account concurrency (1,000): more would only be throttled.
MAX_IN_FLIGHT_BOUND = 1000
# Connections a rate run opens before its release, by default: enough for rps x 100 ms.
PRECONNECT_S = 0.1
AUTO = "auto"
# The most an auto burst fires unless max_requests says otherwise, and the most an auto
# rate runs unless max_duration does: about as long as the same requests take (within 10 min).
DEFAULT_MAX_REQUESTS = 20_000
DEFAULT_MAX_DURATION_S = 600.0
# A burst's wave: five rounds of its connections, at least 200 requests. The test looks
# after every wave, so a run stops on average half a wave after its answer is known: short
# waves waste fewer requests, at one connection set-up per connection per wave.
# A rate's wave: at least 3 s and 300 requests of its schedule.
WAVE_ROUNDS = 5
WAVE_MIN_REQUESTS = 200
RATE_WAVE_MIN_REQUESTS = 300
WAVE_MIN_S = 3.0

BudgetLimits = tuple[tuple[str, float], ...]


def _is_auto(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() == AUTO


def _auto_budgets(budgets: object, auto: bool, what: str) -> BudgetLimits:
    """The parsed ``budgets=`` of an auto shape (empty: the test's marker and ini decide)."""
    if budgets is None:
        return ()
    if not auto:
        raise ConfigError(
            f"budgets= decides when {what}='auto' stops; use {what}='auto', or check these "
            "budgets with result.check(**budgets)"
        )
    if not isinstance(budgets, Mapping) or not budgets:
        raise ConfigError(
            f"budgets={budgets!r} is not valid; use a dict of budgets such as {{'p99': '300ms'}}"
        )
    return tuple(parse_budgets(budgets).items())


def _deadline(deadline: object, default_s: float) -> float:
    if deadline is None:
        return default_s
    return parse_duration(deadline, name="deadline", allow_zero=False)


@dataclass(frozen=True, kw_only=True)
class Burst:
    """Closed model, like ``hey -n requests -c concurrency`` (or ``-z duration``).

    ``requests=None`` with ``duration=`` sends back-to-back for that long. The default
    deadline is ``timeout x ceil(requests / concurrency)`` (or duration + timeout) + 5 s.
    ``requests="auto"`` fires waves until every budget (``budgets=``, else the test's
    marker and ini) is decided, a budget is certainly broken, or ``max_requests`` were sent.
    """

    requests: int | str | None = None
    concurrency: int
    timeout: float | str = DEFAULT_TIMEOUT
    deadline: float | str | None = None
    duration: float | str | None = None
    max_requests: int | None = None
    budgets: Mapping[str, object] | None = field(default=None, hash=False)
    timeout_s: float = field(init=False, repr=False)
    deadline_s: float = field(init=False, repr=False)
    duration_s: float | None = field(init=False, repr=False)
    auto: bool = field(init=False, repr=False)
    budget_limits: BudgetLimits = field(init=False, repr=False)  # parsed ``budgets``

    kind: ClassVar[str] = "burst"

    def __post_init__(self) -> None:
        duration_s = None
        if self.duration is not None:
            duration_s = parse_duration(self.duration, name="duration", allow_zero=False)
        requests = self.requests
        auto = _is_auto(requests)
        n_requests: int | None = None
        if auto:
            if duration_s is not None:
                raise ConfigError(
                    "requests='auto' fires until its budgets are decided and takes no "
                    "duration=; bound it with max_requests= (or deadline=)"
                )
        elif requests is None:
            if duration_s is None:
                raise ConfigError(
                    "requests=None is only valid with duration=; use a whole number >= 1, "
                    "'auto', or give duration='30s'"
                )
        else:
            try:
                n_requests = parse_count(requests, name="requests", minimum=1)
            except ConfigError:
                raise ConfigError(
                    f"requests={requests!r} is not valid; use a whole number >= 1 or 'auto'"
                ) from None
        n_concurrency = parse_count(self.concurrency, name="concurrency", minimum=1)
        if n_requests is not None and n_concurrency > n_requests:
            raise ConfigError(
                f"concurrency={self.concurrency!r} is greater than requests={requests!r}; "
                "use concurrency <= requests"
            )
        n_max: int | None = None
        if auto:
            limit = DEFAULT_MAX_REQUESTS if self.max_requests is None else self.max_requests
            n_max = parse_count(limit, name="max_requests", minimum=1)
            if n_max < n_concurrency:
                raise ConfigError(
                    f"max_requests={self.max_requests!r} is less than concurrency="
                    f"{n_concurrency}; use max_requests >= concurrency"
                )
            n_requests = None
        elif self.max_requests is not None:
            raise ConfigError(
                f"max_requests={self.max_requests!r} only bounds requests='auto'; use "
                "requests='auto' or leave max_requests out"
            )
        limits = _auto_budgets(self.budgets, auto, "requests")
        timeout_s = parse_duration(self.timeout, name="timeout", allow_zero=False)
        if duration_s is not None:
            default_s = duration_s + timeout_s + DEADLINE_SLACK_S
        else:
            most = n_max if n_max is not None else n_requests
            assert most is not None
            default_s = timeout_s * math.ceil(most / n_concurrency) + DEADLINE_SLACK_S
        _set(self, requests=AUTO if auto else n_requests, concurrency=n_concurrency,
             timeout_s=timeout_s, deadline_s=_deadline(self.deadline, default_s),
             duration_s=duration_s, max_requests=n_max, auto=auto,
             budget_limits=limits)  # fmt: skip

    @property
    def planned_requests(self) -> int | None:
        """Requests the whole run sends at most (None: bounded by time only)."""
        return self.max_requests if self.auto else self.requests  # type: ignore[return-value]

    @property
    def wave_requests(self) -> int:
        """An auto burst's wave: five rounds of its connections, at least 200 requests."""
        return max(self.concurrency * WAVE_ROUNDS, WAVE_MIN_REQUESTS)

    def wave(self, requests: int, deadline_s: float) -> Burst:
        """One wave of an auto burst: a fixed burst of ``requests`` within ``deadline_s``."""
        return Burst(requests=requests, concurrency=min(self.concurrency, requests),
                     timeout=self.timeout_s, deadline=deadline_s)  # fmt: skip

    def check_workers(self, workers: int) -> None:
        if workers > self.concurrency:
            raise ConfigError(
                f"workers={workers} is more than concurrency={self.concurrency}; every worker "
                "process needs at least one connection: use workers <= concurrency"
            )

    def part(self, index: int = 0, count: int = 1, request_cap: int | None = None) -> Slice:
        """Process ``index``'s part: requests and concurrency split as evenly as they go."""
        if self.auto:
            raise ValueError("an auto burst runs in waves (Burst.wave), never as one slice")
        concurrency = split(self.concurrency, index, count)
        cap = split_cap(request_cap, index, count)
        requests = self.requests
        assert requests is None or isinstance(requests, int)
        return Slice(
            requests=None if requests is None else split(requests, index, count),
            concurrency=concurrency,
            preconnect=concurrency,
            first_wave=min(concurrency, cap or concurrency),
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            duration_s=self.duration_s,
            highest_us=highest_us_for(self.timeout_s, self.deadline_s),
            request_cap=cap,
            index=index,
            count=count,
        )

    def describe(self, workers: int = 1) -> dict[str, object]:
        """The shape as the report and the JSON show it."""
        fields = {"requests": self.requests, "concurrency": self.concurrency,
                  "duration_s": self.duration_s, "max_requests": self.max_requests}  # fmt: skip
        return _described(self, fields, workers)


@dataclass(frozen=True, kw_only=True)
class Rate:
    """Open model (like wrk2 -R, k6 constant-arrival-rate): ``rps`` requests/s for ``duration``.

    ``max_in_flight`` caps requests in flight (default rps x timeout, at most 1,000);
    ``connections`` are opened before the release (default rps x 100 ms, within the cap).
    ``duration="auto"`` runs waves of a few seconds until every budget is decided, one is
    certainly broken, or ``max_duration`` (default: 20,000 requests' worth, at most 10 min)
    has passed; ``duration_s`` is then that maximum.
    """

    rps: float
    duration: float | str
    timeout: float | str = DEFAULT_TIMEOUT
    max_in_flight: int | None = None
    deadline: float | str | None = None
    connections: int | None = None
    max_duration: float | str | None = None
    budgets: Mapping[str, object] | None = field(default=None, hash=False)
    timeout_s: float = field(init=False, repr=False)
    deadline_s: float = field(init=False, repr=False)
    duration_s: float = field(init=False, repr=False)
    auto: bool = field(init=False, repr=False)
    budget_limits: BudgetLimits = field(init=False, repr=False)  # parsed ``budgets``
    total_requests: int = field(init=False, repr=False)  # requests of the whole schedule
    connections_opened: int = field(init=False, repr=False)
    in_flight_cap: int = field(init=False, repr=False)

    kind: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        rate = parse_positive_number(self.rps, name="rps")
        auto = _is_auto(self.duration)
        if auto:
            most = self.max_duration
            if most is None:
                most = min(DEFAULT_MAX_REQUESTS / rate, DEFAULT_MAX_DURATION_S)
            duration_s = parse_duration(most, name="max_duration", allow_zero=False)
        else:
            if self.max_duration is not None:
                raise ConfigError(
                    f"max_duration={self.max_duration!r} only bounds duration='auto'; use "
                    "duration='auto' or leave max_duration out"
                )
            duration_s = parse_duration(self.duration, name="duration", allow_zero=False)
        limits = _auto_budgets(self.budgets, auto, "duration")
        timeout_s = parse_duration(self.timeout, name="timeout", allow_zero=False)
        total = round(rate * duration_s)
        if total < 1:
            raise ConfigError(
                f"rps={self.rps!r} for duration={self.duration!r} schedules no request; "
                "use rps x duration >= 1 (e.g. rps=10, duration='10s')"
            )
        if self.max_in_flight is None:
            cap = min(max(math.ceil(rate * timeout_s), 1), MAX_IN_FLIGHT_BOUND)
        else:
            cap = parse_count(self.max_in_flight, name="max_in_flight", minimum=1)
        if self.connections is None:
            opened = min(cap, max(1, math.ceil(rate * PRECONNECT_S)), total)
        else:
            opened = parse_count(self.connections, name="connections")
            if opened > cap:
                raise ConfigError(
                    f"connections={self.connections!r} is more than max_in_flight={cap}; "
                    "use connections <= max_in_flight"
                )
        default_s = duration_s + timeout_s + DEADLINE_SLACK_S
        _set(self, rps=rate, timeout_s=timeout_s, duration_s=duration_s, total_requests=total,
             in_flight_cap=cap, connections_opened=opened,
             deadline_s=_deadline(self.deadline, default_s), auto=auto,
             max_duration=duration_s if auto else None, budget_limits=limits)  # fmt: skip

    @property
    def planned_requests(self) -> int:
        return self.total_requests

    @property
    def wave_s(self) -> float:
        """An auto rate's wave: at least 3 s and 300 requests of its schedule."""
        return max(WAVE_MIN_S, RATE_WAVE_MIN_REQUESTS / self.rps)

    def wave(self, duration_s: float, deadline_s: float) -> Rate:
        """One wave of an auto rate: the same schedule for ``duration_s``."""
        connections = None if self.connections is None else self.connections_opened
        return Rate(rps=self.rps, duration=duration_s, timeout=self.timeout_s,
                    max_in_flight=self.in_flight_cap, deadline=deadline_s,
                    connections=connections)  # fmt: skip

    def check_workers(self, workers: int) -> None:
        if workers > min(self.total_requests, self.in_flight_cap):
            raise ConfigError(
                f"workers={workers} is more than the run's {self.total_requests} requests or "
                f"max_in_flight={self.in_flight_cap}; use fewer workers"
            )

    def part(self, index: int = 0, count: int = 1, request_cap: int | None = None) -> RateSlice:
        if self.auto:
            raise ValueError("an auto rate runs in waves (Rate.wave), never as one slice")
        requests = split(self.total_requests, index, count)
        max_in_flight = split(self.in_flight_cap, index, count)
        return RateSlice(
            requests=requests,
            concurrency=max_in_flight,
            preconnect=split(self.connections_opened, index, count),
            first_wave=wave_size(self.rps / count, requests),
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            duration_s=self.duration_s,
            # Latency from the intended start can reach the deadline (a request queued early).
            highest_us=highest_us_for(self.timeout_s, self.deadline_s),
            request_cap=split_cap(request_cap, index, count),
            index=index,
            count=count,
            rps=self.rps,
            max_in_flight=max_in_flight,
        )

    def describe(self, workers: int = 1) -> dict[str, object]:
        fields: dict[str, object] = {"rps": self.rps, "duration_s": self.duration_s,
                                     "max_in_flight": self.in_flight_cap}  # fmt: skip
        if self.auto:
            fields.update(duration_s=None, duration=AUTO, max_duration_s=self.duration_s)
        return _described(self, fields, workers)


@dataclass(frozen=True, kw_only=True)
class Ramp:
    """Locust-style ramp: ``users`` closed-loop users started at ``spawn_rate`` per second.

    User k starts at k / spawn_rate after the release, if that is before ``duration`` ends;
    ``think_time`` is each user's pause after every response (Locust's ``wait_time``).
    """

    users: int
    spawn_rate: float
    duration: float | str
    timeout: float | str = DEFAULT_TIMEOUT
    deadline: float | str | None = None
    think_time: float | str = 0.0
    timeout_s: float = field(init=False, repr=False)
    deadline_s: float = field(init=False, repr=False)
    duration_s: float = field(init=False, repr=False)
    think_time_s: float = field(init=False, repr=False)

    kind: ClassVar[str] = "ramp"

    def __post_init__(self) -> None:
        n_users = parse_count(self.users, name="users", minimum=1)
        rate = parse_positive_number(self.spawn_rate, name="spawn_rate")
        duration_s = parse_duration(self.duration, name="duration", allow_zero=False)
        timeout_s = parse_duration(self.timeout, name="timeout", allow_zero=False)
        deadline_s = _deadline(self.deadline, duration_s + timeout_s + DEADLINE_SLACK_S)
        think_s = parse_duration(self.think_time, name="think_time")
        _set(self, users=n_users, spawn_rate=rate, duration_s=duration_s, timeout_s=timeout_s,
             deadline_s=deadline_s, think_time_s=think_s)  # fmt: skip

    @property
    def planned_requests(self) -> None:
        return None  # closed loop for a time: no request count

    def users_that_can_start(self) -> int:
        """How many users start: user k does if k / spawn_rate falls before the end."""
        end_ns = int(self.duration_s * 1e9)

        def starts(k: int) -> bool:  # the driver's own test (scheduled.RampEngine.schedule)
            return start_offset_ns(k, self.spawn_rate) < end_ns

        count = math.ceil(self.spawn_rate * self.duration_s)
        while count > 0 and not starts(count - 1):
            count -= 1
        while starts(count):
            count += 1
        return count

    def check_all_users_start(self) -> None:
        """Refuse a ramp whose users could never all start within its duration.

        A driver lets late users simply not start (``RunInfo.users_started``); the fixture
        calls this, because a test that asked for that many users made a mistake.
        """
        can_start = self.users_that_can_start()
        if self.users > can_start:
            raise ConfigError(
                f"users={self.users} cannot all start: at spawn_rate={self.spawn_rate:g}/s only "
                f"{can_start} start within duration={self.duration_s:g}s; raise spawn_rate or "
                "duration, or lower users"
            )

    def check_workers(self, workers: int) -> None:
        if workers > self.users:
            raise ConfigError(
                f"workers={workers} is more than users={self.users}; use workers <= users"
            )

    def part(self, index: int = 0, count: int = 1, request_cap: int | None = None) -> RampSlice:
        users = split(self.users, index, count)
        return RampSlice(
            requests=None,
            concurrency=users,
            preconnect=0,  # each user dials when it starts
            first_wave=wave_size(self.spawn_rate / count, users),
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            duration_s=self.duration_s,
            highest_us=highest_us_for(self.timeout_s, self.deadline_s),
            request_cap=split_cap(request_cap, index, count),
            index=index,
            count=count,
            users=users,
            spawn_rate=self.spawn_rate,
            think_time_s=self.think_time_s,
        )

    def describe(self, workers: int = 1) -> dict[str, object]:
        fields = {"users": self.users, "spawn_rate": self.spawn_rate,
                  "duration_s": self.duration_s, "think_time_s": self.think_time_s}  # fmt: skip
        return _described(self, fields, workers)


Shape = Burst | Rate | Ramp
SHAPES: tuple[type[Burst], type[Rate], type[Ramp]] = (Burst, Rate, Ramp)


def _set(shape: object, **values: object) -> None:
    """Store validated values on a frozen shape (its __post_init__ only)."""
    for name, value in values.items():
        object.__setattr__(shape, name, value)


def _described(shape: Shape, fields: Mapping[str, object], workers: int) -> dict[str, object]:
    return {
        "kind": shape.kind,
        **{key: value for key, value in fields.items() if value is not None},
        "timeout_s": shape.timeout_s,
        "deadline_s": shape.deadline_s,
        "workers": workers,
    }
