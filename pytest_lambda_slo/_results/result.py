"""RunResult: what a test reads after a load run (counts, rates, percentiles, views).

The headline percentiles (``result.p99``, the p99 budget) are over the requests the
function served: the "served" view is every timed request but the throttled ones, which
keep their own view (``result.throttled``) so fast throttles cannot flatter the latency.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .budgets import DEFAULT_THROTTLE_RATE, parse_budgets
from .gate import raise_for
from .recorder import Histogram, Measurements
from .verdict import Verdict, VerdictPolicy
from .verdicts import evaluate

_NAN = float("nan")
_VIEW_NAMES = (
    "all", "served", "ttfb", "warm", "cold", "throttled", "uncorrected", "init", "duration",
    "billed",
)  # fmt: skip


def served_histogram(measurements: Measurements) -> Histogram:
    """Every timed request but the throttled ones: "all" minus "throttled", bucket by bucket.

    Both histograms have the same layout, so the difference is exact; recording a bucket's
    value puts its count back into that same bucket.
    """
    all_, throttled = measurements.hist("all"), measurements.hist("throttled")
    served = Histogram(all_.highest_us)
    served.overflows = all_.overflows - throttled.overflows
    if not throttled.count:
        served.hdr.add(all_.hdr)
        return served
    removed = {
        item.value_iterated_to: item.count_at_value_iterated_to
        for item in throttled.hdr.get_recorded_iterator()
    }
    for item in all_.hdr.get_recorded_iterator():
        count = item.count_at_value_iterated_to - removed.get(item.value_iterated_to, 0)
        if count > 0:
            served.record(item.value_iterated_to, count)
    return served


class LatencyView:
    """Percentiles of one histogram, in seconds (NaN when there are no samples)."""

    def __init__(self, histogram: Histogram) -> None:
        self._h = histogram

    @property
    def histogram(self) -> Histogram:
        """The histogram behind the view (microseconds), for counting exceedances."""
        return self._h

    @property
    def count(self) -> int:
        return self._h.count

    @property
    def overflows(self) -> int:
        return self._h.overflows

    @property
    def range_s(self) -> float:
        return self._h.highest_us / 1e6

    def percentile(self, q: float) -> float:
        """Latency at percentile ``q`` (0-100) in seconds."""
        if not 0.0 <= float(q) <= 100.0:
            raise ConfigError(f"percentile q={q!r} is not valid; use a number from 0 to 100")
        value = self._h.percentile_us(q)
        return _NAN if value is None else value / 1e6

    def _stat(self, value: float | int | None) -> float:
        return _NAN if value is None else value / 1e6

    p50 = property(lambda self: self.percentile(50))
    p90 = property(lambda self: self.percentile(90))
    p95 = property(lambda self: self.percentile(95))
    p99 = property(lambda self: self.percentile(99))
    p999 = property(lambda self: self.percentile(99.9))
    min = property(lambda self: self._stat(self._h.min_us()))
    max = property(lambda self: self._stat(self._h.max_us()))
    mean = property(lambda self: self._stat(self._h.mean_us()))

    def summary_ms(self) -> dict[str, float | None]:
        """min/mean/p50/p90/p95/p99/p999/max in milliseconds (None when empty)."""
        out: dict[str, float | None] = {}
        for key in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max"):
            value = getattr(self, key)
            out[key] = None if math.isnan(value) else round(value * 1000.0, 3)
        out["count"] = self.count
        return out


@dataclass
class RunResult:
    """One load run: read counts, rates and latencies; call ``check(**budgets)`` to assert."""

    measurements: Measurements
    run: dict[str, Any]
    target: str
    target_info: dict[str, Any] = field(default_factory=dict)
    shape: dict[str, Any] = field(default_factory=dict)
    cold_start_detection: bool = False
    saturation_policy: str = "fail"
    extras: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    # The implied throttle_rate budget (see verdicts.judge_all); None: none is implied.
    default_throttle_rate: float | None = DEFAULT_THROTTLE_RATE
    # Confidence levels, the inconclusive policy and the method (ini keys lambda_slo_*).
    verdict_policy: VerdictPolicy = field(default_factory=VerdictPolicy)
    # label -> its view, made on first use and kept (its verdicts are the label's own).
    _labels: dict[str, RunResult] = field(default_factory=dict, init=False, repr=False)

    # counts --------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self.measurements.count

    @property
    def ok(self) -> int:
        return self.measurements.ok

    @property
    def errors(self) -> int:
        return self.measurements.errors

    @property
    def throttles(self) -> int:
        return self.measurements.throttles

    @property
    def cold_starts(self) -> int:
        return self.measurements.cold_starts

    @property
    def unsent(self) -> int:
        return self.measurements.unsent

    @property
    def bytes_received(self) -> int:
        return self.measurements.bytes_received

    @property
    def status_codes(self) -> dict[int, int]:
        return dict(sorted((self.measurements.status_codes or {}).items()))

    @property
    def error_kinds(self) -> dict[str, int]:
        return dict(sorted((self.measurements.error_kinds or {}).items()))

    errors_by_kind = error_kinds

    @property
    def throttle_reasons(self) -> dict[str, int]:
        return dict(sorted((self.measurements.throttle_reasons or {}).items()))

    @property
    def duration(self) -> float:
        """Seconds from the release of the first request to the last completion."""
        return float(self.run.get("duration_s", 0.0))

    @property
    def rps(self) -> float:
        return self.count / self.duration if self.duration > 0 else 0.0

    # saturation ------------------------------------------------------------------------
    @property
    def saturated(self) -> bool:
        return bool(self.run.get("saturated", False))

    @property
    def saturation_note(self) -> str:
        return str(self.run.get("saturation_note", ""))

    # latency ---------------------------------------------------------------------------
    def view(self, name: str) -> LatencyView:
        """A latency view by name: served, all, warm, cold, throttled, init, duration, ..."""
        if name == "served":
            return LatencyView(served_histogram(self.measurements))
        return LatencyView(self.measurements.hist(name))

    @property
    def all(self) -> LatencyView:
        """Every request that got a response or timed out, throttled ones included."""
        return self.view("all")

    @property
    def served(self) -> LatencyView:
        """The requests the function served: every timed request but the throttled ones."""
        return self.view("served")

    @property
    def ttfb(self) -> LatencyView:
        """Time to first byte of the successful responses (from where latency counts)."""
        return self.view("ttfb")

    @property
    def warm(self) -> LatencyView:
        return self.view("warm")

    @property
    def cold(self) -> LatencyView:
        return self.view("cold")

    @property
    def throttled(self) -> LatencyView:
        return self.view("throttled")

    @property
    def uncorrected(self) -> LatencyView:
        """Open model only: latency from the actual send, without coordinated-omission fix."""
        return self.view("uncorrected")

    @property
    def init(self) -> LatencyView:
        """Server side (Invoke API): Lambda's Init Duration of cold starts."""
        return self.view("init")

    @property
    def server_duration(self) -> LatencyView:
        """Server side (Invoke API): Lambda's handler Duration."""
        return self.view("duration")

    @property
    def billed(self) -> LatencyView:
        """Server side (Invoke API): Lambda's Billed Duration."""
        return self.view("billed")

    def percentile(self, q: float) -> float:
        """Latency at percentile ``q`` of the requests served (as the budgets judge it)."""
        return self.served.percentile(q)

    p50 = property(lambda self: self.served.p50)
    p90 = property(lambda self: self.served.p90)
    p95 = property(lambda self: self.served.p95)
    p99 = property(lambda self: self.served.p99)
    p999 = property(lambda self: self.served.p999)
    min = property(lambda self: self.served.min)
    max = property(lambda self: self.served.max)
    mean = property(lambda self: self.served.mean)

    # slowest requests and labels -----------------------------------------------------------
    @property
    def slowest(self) -> list[dict[str, Any]]:
        """The slowest requests kept (up to 50), slowest first, each with its ids."""
        slow = self.measurements.slow
        return self.slow_requests()["slowest"] if slow is not None else []

    @property
    def slowest_cold_starts(self) -> list[dict[str, Any]]:
        """The cold starts kept (the first 50 and the 50 slowest), in time order."""
        slow = self.measurements.slow
        return self.slow_requests()["cold_starts"] if slow is not None else []

    def slow_requests(self) -> dict[str, Any]:
        """The JSON's ``slow_requests`` block: lists, Logs Insights queries, trace ids."""
        slow = self.measurements.slow
        if slow is None:
            return {"slowest": [], "cold_starts": [], "logs_insights_query": None,
                    "cold_starts_query": None, "xray_trace_ids": []}  # fmt: skip
        series = self.measurements.timeseries
        return slow.report(series.start_epoch_s if series is not None else None)

    @property
    def by_label(self) -> dict[str, RunResult]:
        """label -> a result of the requests with that label (count, percentiles, check())."""
        for name, child in sorted((self.measurements.labels or {}).items()):
            if name not in self._labels:
                self._labels[name] = dataclasses.replace(
                    self, measurements=child, extras={}, verdicts=[]
                )
        return dict(sorted(self._labels.items()))

    # budgets ---------------------------------------------------------------------------
    def judge(self, budgets: Mapping[str, object], source: str = "check") -> list[Verdict]:
        """Evaluate budgets, remember the verdicts for the report, and return them."""
        verdicts = evaluate(self, parse_budgets(budgets), source)
        self.verdicts.extend(verdicts)
        return verdicts

    def check(self, **budgets: object) -> RunResult:
        """Raise SLOViolation listing every broken budget; return self when all hold.

        With none broken but some inconclusive: SLOInconclusive under the policy "fail"
        (the default), an SLOInconclusiveWarning under "warn".
        """
        __tracebackhide__ = True
        raise_for(self.judge(budgets), self)
        return self

    # output ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form of this run (latency in milliseconds, histograms encoded)."""
        m = self.measurements
        measurements = m.to_dict()
        # The per-interval block is read by people and tools: it sits at the top of the run.
        timeseries = measurements.pop("timeseries", None)
        measurements.pop("slow_requests", None)  # the readable block below holds them
        latency = self.latency_summary()
        return {
            "target": self.target,
            "target_info": self.target_info,
            "shape": self.shape,
            "run": self.run,
            "count": m.count,
            "ok": m.ok,
            "errors": m.errors,
            "throttles": m.throttles,
            "cold_starts": m.cold_starts,
            "cold_start_detection": self.cold_start_detection,
            "proactive_inits": m.proactive_inits,
            "unsent": m.unsent,
            "duration_s": round(self.duration, 6),
            "rps": round(self.rps, 3),
            "bytes_received": m.bytes_received,
            "status_codes": {str(k): v for k, v in self.status_codes.items()},
            "error_kinds": self.error_kinds,
            "throttle_reasons": self.throttle_reasons,
            "latency_ms": latency,
            "verdicts": [v.to_dict() for v in self.verdicts],
            # Estimated USD (Invoke API runs with billed figures), else null.
            "cost": self.extras.get("cost"),
            "extras": {key: value for key, value in self.extras.items() if key != "cost"},
            "timeseries": timeseries,
            "slow_requests": self.slow_requests() if m.slow is not None else None,
            "labels": {name: view.label_summary() for name, view in self.by_label.items()},
            "measurements": measurements,
        }

    def latency_summary(self) -> dict[str, dict[str, float | None]]:
        """The JSON's ``latency_ms``: every view with samples (the main four always)."""
        return {
            name: self.view(name).summary_ms()
            for name in _VIEW_NAMES
            if name in ("all", "served", "warm", "cold") or self.view(name).count
        }

    def label_summary(self) -> dict[str, Any]:
        """What the JSON's ``labels`` block says of a label's view."""
        count = self.count
        return {
            "count": count,
            "ok": self.ok,
            "errors": self.errors,
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "error_rate": round(self.errors / count, 6) if count else None,
            "throttle_rate": round(self.throttles / count, 6) if count else None,
            "status_codes": {str(k): v for k, v in self.status_codes.items()},
            "error_kinds": self.error_kinds,
            "latency_ms": self.latency_summary(),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. sent by an xdist worker)."""
        measurements = dict(data["measurements"])
        if data.get("timeseries") and "timeseries" not in measurements:
            measurements["timeseries"] = data["timeseries"]
        if data.get("slow_requests") is not None and "slow_requests" not in measurements:
            measurements["slow_requests"] = data["slow_requests"]
        result = cls(
            measurements=Measurements.from_dict(measurements),
            run=dict(data.get("run", {})),
            target=data["target"],
            target_info=dict(data.get("target_info", {})),
            shape=dict(data.get("shape", {})),
            cold_start_detection=bool(data.get("cold_start_detection", False)),
            extras=dict(data.get("extras", {})),
        )
        if data.get("cost") is not None:
            result.extras["cost"] = data["cost"]
        result.verdicts = [Verdict.from_dict(v) for v in data.get("verdicts", [])]
        for name, view in result.by_label.items():
            label = (data.get("labels") or {}).get(name) or {}
            view.verdicts = [Verdict.from_dict(v) for v in label.get("verdicts", [])]
        return result

    def __repr__(self) -> str:
        return (
            f"<RunResult {self.target}: {self.count} requests, {self.ok} ok, "
            f"{self.throttles} throttled, {self.errors} errors, p99={self.p99 * 1000:.1f}ms>"
        )


# The first name of RunResult (a burst's result); rate and ramp runs return it too.
BurstResult = RunResult
