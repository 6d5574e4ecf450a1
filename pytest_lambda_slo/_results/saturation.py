"""Was the load generator itself the bottleneck? Judged from a run's own health figures.

A saturated generator queues requests on its own loop, so the latencies it measured include
its own queueing: the verdict says so (saturation = fail refuses to judge budgets on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The loop's lag is sampled every 50 ms: under a second there are too few samples for a p99,
# and one stall of a busy machine is no sustained saturation.
MIN_LAG_JUDGED_S = 1.0
DEFAULT_MAX_LOOP_LAG_S = 0.025


@dataclass(frozen=True)
class Saturation:
    """The judgement of one run: saturated or not, why, and the CPU share it used."""

    saturated: bool
    note: str
    cpu_share: float

    def run_fields(self) -> dict[str, object]:
        """The keys this adds to a run's dict (``result.run``, the JSON's ``run``)."""
        fields: dict[str, object] = {"cpu_share": self.cpu_share, "saturated": self.saturated}
        if self.saturated:
            fields["saturation_note"] = self.note
        return fields


def _number(run: Mapping[str, object], key: str) -> float:
    value = run.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


def assess_saturation(
    run: Mapping[str, object], max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S
) -> Saturation:
    """Judge a run (``RunInfo.to_dict()``): loop lag over ``max_loop_lag_s``, or a full CPU."""
    lag_p99_ms = _number(run, "loop_lag_p99_ms")
    lag_max_ms = _number(run, "loop_lag_max_ms")
    cpu_s = _number(run, "cpu_s")
    duration_s = _number(run, "duration_s")
    workers = max(int(_number(run, "workers") or 1), 1)
    cpu_share = cpu_s / duration_s if duration_s > 0 else 0.0
    reasons = []
    if duration_s >= MIN_LAG_JUDGED_S and lag_p99_ms / 1000.0 > max_loop_lag_s:
        reasons.append(
            f"event-loop lag p99 {lag_p99_ms:.1f}ms (max {lag_max_ms:.1f}ms) over "
            f"lambda_slo_max_loop_lag={max_loop_lag_s * 1000:.0f}ms"
        )
    if duration_s >= 1.0 and cpu_share >= 0.97 * workers:
        reasons.append(f"load generator used {cpu_share:.0%} of a CPU core")
    note = ""
    if reasons:
        note = (
            "the load generator was saturated (" + "; ".join(reasons) + "): latencies include "
            "its own queueing. Lower concurrency, use workers=N, or set "
            "lambda_slo_saturation = warn to judge anyway"
        )
    return Saturation(bool(reasons), note, round(cpu_share, 3))
