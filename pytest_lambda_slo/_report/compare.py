"""Baseline vs now, per test: the shift of each figure and whether it is more than noise.

The test. A percentile shift is judged with a generalised Mood quantile test: take the
``q``-quantile ``v`` of the two runs' histograms added together, count in each run the
requests wholly above ``v`` (buckets whose lowest equivalent value is above it), and
compare the two shares with Fisher's exact test (one-sided: "now exceeds more often").
Why this one:

- It is distribution-free and exact. Under "nothing changed" every request of both runs
  is exchangeable and ``v`` depends only on the pooled requests, so given them the split
  of the exceedances between the runs is hypergeometric, which is what Fisher's test
  computes. (Taking ``v`` from the baseline alone would fix the baseline's count by
  construction and make the test only approximate.)
- It tests the tail the threshold is about: a faster median does not hide a slower p99,
  as it can in Mann-Whitney or Kolmogorov-Smirnov, which look at the whole distribution.
- It needs nothing but the HDR histograms both runs keep; no sample list, no resampling,
  no random seed. Both histograms share one bucket layout (1 us, 3 significant figures),
  and ``v`` is a bucket edge, so the counts are exact.

Which runs are compared: runs of the same test id (and order within the test) whose target
is the same function (:func:`fingerprint`; a loopback port does not count). A different
deployment of it (CodeSha256, memory, architecture) is compared and named in the note.

Error, throttle and cold-start shares are judged with the same Fisher test on their
counts. A threshold (``p99:10%`` relative, ``p99:+50ms`` absolute, ``error_rate:+1%`` in
percentage points) fails only when the shift is worse than the threshold AND significant
at ``alpha`` (default 0.01, one-sided) divided by the number of thresholds on the run
(Bonferroni), so noise alone does not block a deploy. A small run has little power: 300
requests a side cannot show a p99 shift at 0.01 (six exceedances split 6:0 give
p = 0.015), so a gate needs a few thousand requests per run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hdrh.histogram import HdrHistogram
from scipy.stats import fisher_exact

from .._units import format_duration, parse_duration
from ..errors import ConfigError
from . import hdr
from .document import Record, RunKey, key_text, keyed

ALPHA = 0.01
# metric -> (histogram view, percentile) for latency, or the counter over ``count``.
PERCENTILE_METRICS: dict[str, tuple[str, float]] = {
    "p50": ("all", 50.0),
    "p90": ("all", 90.0),
    "p95": ("all", 95.0),
    "p99": ("all", 99.0),
    "p999": ("all", 99.9),
    "warm_p99": ("warm", 99.0),
    "cold_start_p99": ("cold", 99.0),
}
RATE_METRICS: dict[str, str] = {
    "error_rate": "errors",
    "throttle_rate": "throttles",
    "cold_start_rate": "cold_starts",
}
METRICS = (*PERCENTILE_METRICS, *RATE_METRICS)
# What the table shows for every test, thresholds or not.
SHOWN = ("p50", "p90", "p99", "error_rate", "throttle_rate", "cold_start_rate")
THRESHOLD_FORMS = (
    "METRIC:N% (relative, e.g. p99:10%), METRIC:+DURATION (absolute, e.g. p99:+50ms) or "
    "RATE:+N% (percentage points, e.g. error_rate:+1%); metrics: " + ", ".join(METRICS)
)
_THRESHOLD_RE = re.compile(r"^\s*([a-z0-9_]+)\s*:\s*(\+?)\s*(.+?)\s*$")
_PERCENT_RE = re.compile(r"^([0-9]*\.?[0-9]+)%$")
# target_info keys that say which function a run loaded (the rest describes the client).
# A different function is not compared; a different deployment of the same function (its
# code, memory or architecture) is compared, as catching what a deploy changed is the
# point, and the change is named beside the figures.
_IDENTITY_KEYS = (
    "kind",
    "method",
    "url",
    "function",
    "qualifier",
    "region",
    "endpoint_url",
    "function_arn",
)
_DEPLOYMENT_KEYS = ("code_sha256", "memory_mb", "architecture", "architectures")
_FINGERPRINT_KEYS = (*_IDENTITY_KEYS, *_DEPLOYMENT_KEYS)
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class Threshold:
    """A regression limit: ``metric`` may get worse by ``relative`` (fraction) or ``absolute``."""

    metric: str
    relative: float | None  # 0.10 for "10%"
    absolute: float | None  # seconds for latency, a fraction for rates
    text: str

    def exceeded_by(self, shift: Shift) -> bool:
        """The shift is worse than this limit (significance is judged separately)."""
        if shift.delta is None:
            return False
        if self.absolute is not None:
            return shift.delta > self.absolute
        assert self.relative is not None
        if shift.base == 0:
            return bool(shift.delta > 0)
        return shift.delta / float(shift.base or 0) > self.relative


def parse_threshold(text: str, *, name: str = "threshold") -> Threshold:
    """Parse ``p99:10%`` / ``p99:+50ms`` / ``error_rate:+1%``; one-line error otherwise."""
    match = _THRESHOLD_RE.match(str(text))
    problem = f"{name}={text!r} is not valid; use {THRESHOLD_FORMS}"
    if not match or match.group(1) not in METRICS:
        raise ConfigError(problem)
    metric, plus, value = match.groups()
    latency = metric in PERCENTILE_METRICS
    percent = _PERCENT_RE.match(value)
    if not plus:
        if not percent:
            raise ConfigError(problem)
        return Threshold(metric, float(percent.group(1)) / 100.0, None, text)
    if latency:
        try:
            seconds = parse_duration(value, name=name)
        except ConfigError:
            raise ConfigError(problem) from None
        return Threshold(metric, None, seconds, text)
    if not percent or float(percent.group(1)) > 100:
        raise ConfigError(problem)
    return Threshold(metric, None, float(percent.group(1)) / 100.0, text)


def parse_thresholds(texts: Sequence[str], *, name: str = "threshold") -> list[Threshold]:
    return [parse_threshold(text, name=name) for text in texts]


@dataclass(frozen=True)
class Shift:
    """One figure, baseline vs now. Latency in seconds, rates as fractions."""

    metric: str
    base: float | None
    new: float | None
    base_n: int
    new_n: int
    p_value: float | None  # one-sided, in the direction of the shift; None: nothing to test
    alpha: float = ALPHA

    @property
    def delta(self) -> float | None:
        if self.base is None or self.new is None:
            return None
        return self.new - self.base

    @property
    def relative(self) -> float | None:
        delta = self.delta
        if delta is None or not self.base:
            return None
        return delta / self.base

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    def describe(self) -> str:
        """``p99 812.0ms -> 1.061s (+249.0ms, +30.7%, p=2e-09)``."""
        text = f"{self.metric} {_value(self.metric, self.base)} -> {_value(self.metric, self.new)}"
        delta = self.delta
        if delta is not None:
            sign = "+" if delta >= 0 else "-"
            parts = [f"{sign}{_value(self.metric, abs(delta), points=True)}"]
            if self.relative is not None:
                parts.append(f"{self.relative:+.1%}")
            if self.p_value is not None:
                parts.append(f"p={self.p_value:.2g}")
            text += f" ({', '.join(parts)})"
        return text


@dataclass(frozen=True)
class Comparison:
    """One test's run against its baseline run."""

    test_id: str
    index: int  # n-th run of this test
    shifts: tuple[Shift, ...] = ()
    failures: tuple[str, ...] = ()  # one line per threshold broken (worse AND significant)
    note: str = ""  # why it was not compared: no baseline, a different target
    compared: bool = True
    thresholds_checked: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def label(self) -> str:
        return key_text((self.test_id, self.index))

    def shift(self, metric: str) -> Shift | None:
        return next((s for s in self.shifts if s.metric == metric), None)


def _value(metric: str, value: float | None, points: bool = False) -> str:
    if value is None:
        return "n/a"
    if metric in RATE_METRICS:
        return f"{value * 100:.2f}{'pp' if points else '%'}"
    return format_duration(value)


def _normalised_url(url: str) -> str:
    # A local emulator gets a new port every start: the port of a loopback host is noise.
    parts = urlsplit(url)
    if parts.hostname in _LOOPBACK:
        return urlunsplit((parts.scheme, parts.hostname, parts.path, parts.query, ""))
    return url


def fingerprint(run: Mapping[str, Any]) -> dict[str, Any]:
    """What says which function a run loaded: the target and its identifying details."""
    info = run.get("target_info") or {}
    out: dict[str, Any] = {k: info[k] for k in _FINGERPRINT_KEYS if info.get(k) is not None}
    if "url" in out:
        out["url"] = _normalised_url(str(out["url"]))
    target = str(run.get("target", ""))
    out["target"] = re.sub(r"https?://[^/\s]+", lambda m: _normalised_url(m.group(0)), target)
    return out


def _view(run: Mapping[str, Any], name: str) -> HdrHistogram:
    encoded = ((run.get("measurements") or {}).get("histograms") or {}).get(name) or {}
    return hdr.add_all([encoded.get("hdr")])


def _fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that share k2/n2 is above share k1/n1 (exact, conditional)."""
    table = [[k2, n2 - k2], [k1, n1 - k1]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def percentile_shift(metric: str, base: HdrHistogram, new: HdrHistogram, alpha: float) -> Shift:
    """The shift of percentile ``metric`` and its one-sided Mood quantile test."""
    _, q = PERCENTILE_METRICS[metric]
    n_b, n_n = int(base.get_total_count()), int(new.get_total_count())
    if n_b == 0 or n_n == 0:
        b = base.get_value_at_percentile(q) / 1e6 if n_b else None
        n = new.get_value_at_percentile(q) / 1e6 if n_n else None
        return Shift(metric, b, n, n_b, n_n, None, alpha)
    b_value = base.get_value_at_percentile(q) / 1e6
    n_value = new.get_value_at_percentile(q) / 1e6
    pooled = hdr.add_all([hdr.encode(base), hdr.encode(new)])
    cut = int(pooled.get_value_at_percentile(q))
    m_b, m_n = hdr.count_above(base, cut), hdr.count_above(new, cut)
    if n_value >= b_value:
        p = _fisher(m_b, n_b, m_n, n_n)
    else:  # faster: test in the other direction, for the report
        p = _fisher(m_n, n_n, m_b, n_b)
    return Shift(metric, b_value, n_value, n_b, n_n, p, alpha)


def rate_shift(metric: str, base: Mapping[str, Any], new: Mapping[str, Any], alpha: float) -> Shift:
    counter = RATE_METRICS[metric]
    n_b, n_n = int(base.get("count") or 0), int(new.get("count") or 0)
    k_b, k_n = int(base.get(counter) or 0), int(new.get(counter) or 0)
    if n_b == 0 or n_n == 0:
        return Shift(
            metric, k_b / n_b if n_b else None, k_n / n_n if n_n else None, n_b, n_n, None, alpha
        )
    b, n = k_b / n_b, k_n / n_n
    p = _fisher(k_b, n_b, k_n, n_n) if n >= b else _fisher(k_n, n_n, k_b, n_b)
    return Shift(metric, b, n, n_b, n_n, p, alpha)


def compare_run(
    key: RunKey,
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    thresholds: Sequence[Threshold] = (),
    alpha: float = ALPHA,
) -> Comparison:
    """Compare one run with its baseline run; thresholds fail only on significant shifts."""
    metrics = list(dict.fromkeys([*SHOWN, *(t.metric for t in thresholds)]))
    # Bonferroni over the thresholds of this run, so K limits do not multiply false alarms.
    gate_alpha = alpha / max(len(thresholds), 1)
    shifts = []
    for metric in metrics:
        level = gate_alpha if any(t.metric == metric for t in thresholds) else alpha
        if metric in PERCENTILE_METRICS:
            view = PERCENTILE_METRICS[metric][0]
            shifts.append(percentile_shift(metric, _view(base, view), _view(new, view), level))
        else:
            shifts.append(rate_shift(metric, base, new, level))
    base_fp, new_fp = fingerprint(base), fingerprint(new)
    changed = sorted(k for k in {*base_fp, *new_fp} if base_fp.get(k) != new_fp.get(k))
    if any(k not in _DEPLOYMENT_KEYS for k in changed):
        detail = "; ".join(f"{k}: {base_fp.get(k)!r} -> {new_fp.get(k)!r}" for k in changed)
        return Comparison(
            key[0],
            key[1],
            tuple(shifts),
            (),
            f"not compared: the target differs from the baseline's ({detail})",
            False,
            tuple(t.text for t in thresholds),
        )
    failures = []
    by_metric = {s.metric: s for s in shifts}
    for threshold in thresholds:
        shift = by_metric[threshold.metric]
        if threshold.exceeded_by(shift) and shift.significant:
            failures.append(
                f"{threshold.text}: {shift.describe()} is worse than the threshold and "
                f"significant (p < {shift.alpha:.2g})"
            )
    note = ""
    if changed:  # only the deployment: compared, and said
        detail = "; ".join(f"{k}: {base_fp.get(k)!r} -> {new_fp.get(k)!r}" for k in changed)
        note = f"deployment changed since the baseline ({detail})"
    texts = tuple(t.text for t in thresholds)
    return Comparison(key[0], key[1], tuple(shifts), tuple(failures), note, True, texts)


def compare_runs(
    base: Sequence[Record],
    new: Sequence[Record],
    thresholds: Sequence[Threshold] = (),
    alpha: float = ALPHA,
) -> list[Comparison]:
    """Match runs by test id and order within the test; compare each with its baseline."""
    baseline = dict(keyed(base))
    out = []
    for key, run in keyed(new):
        if key not in baseline:
            out.append(
                Comparison(key[0], key[1], note="no baseline run for this test", compared=False)
            )
            continue
        out.append(compare_run(key, baseline[key], run, thresholds, alpha))
    return out


def render_comparisons(comparisons: Sequence[Comparison]) -> list[str]:
    """Text lines: per test, each figure baseline -> now, the shift and its significance."""
    lines: list[str] = []
    for comparison in comparisons:
        mark = "FAIL" if comparison.failed else ("----" if not comparison.compared else "ok")
        lines.append(f"{mark:<4} {comparison.label}")
        if comparison.note:
            lines.append(f"     {comparison.note}")
        for shift in comparison.shifts:
            flag = " significant" if shift.significant and shift.delta else ""
            lines.append(f"     {shift.describe()}{flag}")
        lines.extend(f"     FAILED {failure}" for failure in comparison.failures)
    return lines
