"""Per-session state: settings, the caps' ledger, the recorded runs.

Light to import (the plugin builds it at start-up): results are only named for type checkers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._fanout.config import DEFAULT_MAX_FANOUT_COST_USD, LambdaFanout
from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.saturation import DEFAULT_MAX_LOOP_LAG_S
from .._results.verdict import VerdictPolicy
from .ledger import Ledger

if TYPE_CHECKING:
    from .._results.result import RunResult
    from .._targets.base import Target


@dataclass
class Settings:
    """Session-wide settings from ini keys and CLI options, already validated."""

    max_requests: int = 100_000
    max_load_time_s: float = 1800.0
    max_fanout_cost_usd: float | None = DEFAULT_MAX_FANOUT_COST_USD  # None: no cap
    saturation_policy: str = "fail"  # or "warn"
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S
    workers: int = 1
    fanout: LambdaFanout | None = None  # --lambda-slo-fanout: every shape over Lambda shards
    default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE  # None: no implied budget
    # Confidence levels, the inconclusive policy and the method of the verdicts.
    verdict_policy: VerdictPolicy = field(default_factory=VerdictPolicy)


@dataclass
class SessionState:
    """Everything the plugin keeps for one pytest session (held in config.stash)."""

    settings: Settings
    records: list[tuple[str, RunResult]] = field(default_factory=list)
    ini_budgets: dict[str, float] = field(default_factory=dict)
    json_error: str | None = None
    # Under xdist: the controller's ledger file shared by every worker (else in memory).
    ledger_path: str | None = None
    ledger: Ledger = field(init=False)
    # Set by the output options (_pytest/outputs.py): a context manager around each run's
    # engine (the progress line; it yields a list that receives the engine), and details
    # added to a run's target_info (the deployed function's CodeSha256 for baselines).
    watch_run: Callable[[str, int], contextlib.AbstractContextManager[list[Any] | None]] | None = (
        None
    )
    target_details: Callable[[Target], dict[str, Any]] | None = None
    # Set by the plugin: base URLs of the emulators this process runs (a run against one
    # gets the emulator's server-side series: server_series.py); None in a bare session.
    emulator_urls: Callable[[], Iterable[str]] | None = None
    # Each emulator function's last second fetched: (start_unix, second, counts).
    server_seen: dict[tuple[str, int, str], tuple[float, int, list[int]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        s = self.settings
        self.ledger = Ledger(
            s.max_requests, s.max_load_time_s, self.ledger_path, s.max_fanout_cost_usd
        )

    def describe_target(self, target: Target) -> dict[str, Any]:
        """The target's secret-free fields for the JSON, with the session's extra details."""
        info: dict[str, Any] = target.shape_info()
        if self.target_details is not None:
            info.update(self.target_details(target))
        return info
