"""Lambda's execution model: environments, concurrency pools, scaling token buckets, reclaim."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from .code import Deployment
from .config import FunctionConfig
from .settings import EmulatorConfig
from .stats import FunctionStats, new_stats

if TYPE_CHECKING:
    import asyncio

# Throttle reasons as Lambda spells them in TooManyRequestsException.Reason.
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
# Stats key for "no scaling token left": Lambda reports it as ACCOUNT_LIMIT on the wire.
SCALING_LIMIT = "ScalingRateExceeded"
# Stats key for "the emulator's cap on handler processes is reached" (sent as ACCOUNT_LIMIT).
PROCESS_LIMIT = "HandlerProcessLimit"
# A Function URL takes at most 10 x reserved concurrency requests per second.
URL_RATE_LIMIT = "ReservedFunctionInvocationRateLimitExceeded"

CONTINUOUS_CAPACITY = 1000  # new environments per function, refilled over 10 s
CONTINUOUS_RATE = 100.0  # per second
LEGACY_RATE = 500.0 / 60.0  # +500 environments per minute after the initial burst


class TokenBucket:
    """Tokens refilled continuously at ``rate`` per second up to ``capacity``."""

    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.last = now

    def take(self, now: float) -> bool:
        tokens = self.tokens + (now - self.last) * self.rate
        self.tokens = tokens if tokens < self.capacity else self.capacity
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def scaling_bucket(config: FunctionConfig, emulator: EmulatorConfig, now: float) -> TokenBucket:
    """The bucket of new-environment tokens for the function's scaling model."""
    if (config.scaling or emulator.scaling) == "legacy":
        # Starts with the burst, then +500/min; capped by the account limit, not the burst,
        # so the ceiling keeps growing while demand lasts.
        capacity = float(max(emulator.burst, emulator.account_concurrency))
        bucket = TokenBucket(capacity, LEGACY_RATE, now)
        bucket.tokens = float(emulator.burst)
        return bucket
    return TokenBucket(float(CONTINUOUS_CAPACITY), CONTINUOUS_RATE, now)


def url_rate_bucket(config: FunctionConfig, now: float) -> TokenBucket | None:
    """Function URL request-rate bucket (10 x reserved per second) when url_rate_limit is on."""
    if not config.url_rate_limit or not config.reserved:
        return None
    return TokenBucket(10.0 * config.reserved, 10.0 * config.reserved, now)


class Worker(Protocol):
    """What runs a real handler in an environment (a process); killed when it is retired."""

    def kill(self) -> None: ...


class Environment:
    """One execution environment: when it was last used, and its worker for real code."""

    __slots__ = ("last_used", "worker")

    def __init__(self) -> None:
        self.last_used = 0.0
        self.worker: Worker | None = None

    def retire(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()


class Function:
    """Runtime state of one function: its warm environments, in-flight count and stats."""

    __slots__ = (
        "arn",
        "busy",
        "config",
        "deployment",
        "environments",
        "generation",
        "idle",
        "last_update_status",
        "revision",
        "scaling",
        "stage",
        "stats",
        "tags",
        "update_handle",
        "url_rate",
        "variables",
    )

    def __init__(self, config: FunctionConfig, emulator: EmulatorConfig, now: float) -> None:
        self.config = config
        self.arn = f"arn:aws:lambda:{emulator.region}:{emulator.account_id}:function:{config.name}"
        self.generation = 0
        self.idle: deque[Environment] = deque()  # warm idle environments, oldest use first
        self.environments = 0  # alive: idle + busy (those not yet retired)
        self.busy = 0
        self.stats: FunctionStats = new_stats(now)
        self.last_update_status = "Successful"
        self.revision = 1
        self.variables: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.update_handle: asyncio.TimerHandle | None = None
        self.scaling = scaling_bucket(config, emulator, now)
        self.stage: TokenBucket | None = None
        if config.stage_rate is not None:
            burst = config.stage_burst or max(1, int(config.stage_rate))
            self.stage = TokenBucket(float(burst), config.stage_rate, now)

        self.url_rate = url_rate_bucket(config, now)
        self.deployment: Deployment | None = None  # real code (CreateFunction), else emulated

    def retire_all(self) -> None:
        """Retire every warm environment; busy ones are dropped when they finish."""
        self.generation += 1
        self.environments -= len(self.idle)
        for env in self.idle:
            env.retire()
        self.idle.clear()

    def reclaim(self, now: float) -> None:
        """Drop environments idle for longer than the function's ``idle`` setting."""
        idle, limit = self.idle, self.config.idle
        while idle and now - idle[0].last_used > limit:
            idle.popleft().retire()
            self.environments -= 1


class Invocation:
    """One accepted invocation: which environment generation ran it and how."""

    __slots__ = (
        "cold",
        "env",
        "event",
        "function",
        "generation",
        "init_s",
        "log",
        "pooled",
        "proactive",
        "request_id",
        "response",
        "started",
        "trace_id",
    )

    def __init__(
        self, function: Function, env: Environment, cold: bool, pooled: bool, started: float
    ) -> None:
        self.function = function
        self.env = env
        self.cold = cold
        self.pooled = pooled  # counted in the account's unreserved pool
        self.generation = function.generation
        self.started = started
        self.init_s = 0.0
        self.proactive = False  # init ran before the request arrived (not waited for)
        self.request_id = ""  # set by the front door before the handler runs
        # Real code only: the event sent, the answer (result or error object), printed output.
        self.event = b""
        self.trace_id = ""
        self.response: bytes | None = None
        self.log = ""


class Model:
    """The account: functions, the unreserved concurrency pool, acquire and release."""

    def __init__(self, config: EmulatorConfig, now: float) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.functions: dict[str, Function] = {}
        self.by_bytes: dict[bytes, Function] = {}
        self.unreserved_busy = 0
        self.unreserved_limit = config.account_concurrency
        for fc in config.functions:
            self.add(fc, now)

    def add(self, config: FunctionConfig, now: float) -> Function:
        function = Function(config, self.config, now)
        self.functions[config.name] = function
        self.by_bytes[config.name.encode()] = function
        self.unreserved_limit = self._unreserved_limit()
        return function

    def remove(self, function: Function) -> None:
        """Delete a function: its idle environments go now, busy ones when they finish."""
        del self.functions[function.config.name]
        del self.by_bytes[function.config.name.encode()]
        function.retire_all()
        self.unreserved_limit = self._unreserved_limit()

    def _unreserved_limit(self) -> int:
        reserved = sum(f.config.reserved or 0 for f in self.functions.values())
        return self.config.account_concurrency - reserved

    def min_unreserved(self) -> int:
        """Lambda keeps 100 unreserved; scaled down for small emulated accounts."""
        return min(100, self.config.account_concurrency // 10)

    def set_reserved(self, function: Function, reserved: int | None, now: float) -> None:
        function.config = replace(function.config, reserved=reserved)
        function.url_rate = url_rate_bucket(function.config, now)
        self.unreserved_limit = self._unreserved_limit()

    def acquire(self, function: Function, now: float) -> Invocation | str:
        """Start an invocation: an Invocation, or the throttle reason (a stats key)."""
        limit = function.config.reserved
        if limit is not None:
            if function.busy >= limit:
                return RESERVED_LIMIT
            pooled = False
        else:
            if self.unreserved_busy >= self.unreserved_limit:
                return ACCOUNT_LIMIT
            pooled = True
        idle = function.idle
        env = None
        if idle:
            env = idle.pop()  # most recently used first
            if now - env.last_used > function.config.idle:
                # it and every older one are past their idle time
                function.environments -= len(idle) + 1
                env.retire()
                for old in idle:
                    old.retire()
                idle.clear()
                env = None
        if env is None:
            if not function.scaling.take(now):
                return SCALING_LIMIT
            function.environments += 1
            env = Environment()
            cold = True
        else:
            cold = False
        function.busy += 1
        if pooled:
            self.unreserved_busy += 1
        return Invocation(function, env, cold, pooled, now)

    def release(self, inv: Invocation, now: float, destroy: bool = False) -> None:
        """Finish an invocation; its environment goes back warm unless retired."""
        function = inv.function
        function.busy -= 1
        if inv.pooled:
            self.unreserved_busy -= 1
        env = inv.env
        if destroy or inv.generation != function.generation:
            function.environments -= 1
            env.retire()
        else:
            env.last_used = now
            function.idle.append(env)

    def reclaim(self, now: float) -> None:
        for function in self.functions.values():
            function.reclaim(now)

    def reset_environments(self, now: float) -> None:
        """Retire all warm environments and refill scaling buckets."""
        for function in self.functions.values():
            function.retire_all()
            function.scaling = scaling_bucket(function.config, self.config, now)
