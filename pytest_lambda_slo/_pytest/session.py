"""Per-session state: settings, the caps' ledger, recorded runs, saturation judgement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._results.budgets import DEFAULT_THROTTLE_RATE
from .._results.result import BurstResult
from .._results.verdict import VerdictPolicy
from .ledger import Ledger


@dataclass
class Settings:
    """Session-wide settings from ini keys and CLI options, already validated."""

    max_requests: int = 100_000
    max_load_time_s: float = 1800.0
    saturation_policy: str = "fail"  # or "warn"
    max_loop_lag_s: float = 0.025
    workers: int = 1
    default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE  # None: no implied budget
    # Confidence levels, the inconclusive policy and the method of the verdicts.
    verdict_policy: VerdictPolicy = field(default_factory=VerdictPolicy)


@dataclass
class SessionState:
    """Everything the plugin keeps for one pytest session (held in config.stash)."""

    settings: Settings
    records: list[tuple[str, BurstResult]] = field(default_factory=list)
    ini_budgets: dict[str, float] = field(default_factory=dict)
    json_error: str | None = None
    # Under xdist: the controller's ledger file shared by every worker (else in memory).
    ledger_path: str | None = None
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.ledger = Ledger(s.max_requests, s.max_load_time_s, self.ledger_path)


MIN_LAG_JUDGED_S = 1.0


def assess_saturation(run: dict[str, Any], settings: Settings) -> None:
    """Mark a run saturated when the load generator itself was the bottleneck."""
    lag_p99_ms = float(run.get("loop_lag_p99_ms", 0.0) or 0.0)
    lag_max_ms = float(run.get("loop_lag_max_ms", 0.0) or 0.0)
    cpu_s = float(run.get("cpu_s", 0.0) or 0.0)
    duration_s = float(run.get("duration_s", 0.0) or 0.0)
    cpu_share = cpu_s / duration_s if duration_s > 0 else 0.0
    reasons = []
    # The loop's lag is sampled every 50 ms: under a second there are too few samples for
    # a p99, and one stall of a busy machine is no sustained saturation.
    if duration_s >= MIN_LAG_JUDGED_S and lag_p99_ms / 1000.0 > settings.max_loop_lag_s:
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
