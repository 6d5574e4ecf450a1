"""Exact merge of the same tests' results from CI shards or regions (``lambda-slo merge``).

Runs are matched by test id and by their order within the test. Histograms are added
bucket by bucket (never averaged percentiles), counters are added, the timeseries are
added interval by interval on the wall clock, and every summary figure (percentiles,
rates, verdicts) is recomputed from the merged data. A test found in one file only is
carried over as it is, so shards that ran different tests merge into one session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._results.recorder import Measurements
from .._results.result import BurstResult
from .._results.verdict import Verdict, policy_of
from .._results.verdicts import judge_all
from ..errors import ConfigError
from .document import Record, RunKey, key_text, keyed, new_document, records_of

# Shape keys that may differ between shards: how many processes fired the load.
_FREE_SHAPE_KEYS = {"workers"}
_SUMMED_RUN_KEYS = (
    "requests",
    "concurrency",
    "cpu_s",
    "connections",
    "peak_in_flight",
    "workers",
    "intended_rps",
    "achieved_rps",
    "max_in_flight",
    "users",
    "users_started",
)
# Loop lag of several machines: the worst one bounds them all (percentiles do not add).
_MAX_RUN_KEYS = ("loop_lag_max_ms", "loop_lag_p99_ms", "deadline_s", "timeout_s")


class MergeError(ConfigError):
    """Runs that cannot be merged: different shapes, or a field with no exact sum."""


def _shape_for_match(shape: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shape.items() if k not in _FREE_SHAPE_KEYS}


def _merge_run_info(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    infos = [dict(r.get("run") or {}) for r in runs]
    out: dict[str, Any] = {}
    starts = [i.get("started_at") for i in infos]
    if all(isinstance(s, (int, float)) for s in starts):
        ends = [float(i["started_at"]) + float(i.get("duration_s", 0.0)) for i in infos]
        out["started_at"] = min(float(s) for s in starts)  # type: ignore[arg-type]
        out["duration_s"] = round(max(ends) - out["started_at"], 6)
    else:
        out["duration_s"] = max(float(i.get("duration_s", 0.0)) for i in infos)
    keys = sorted({k for i in infos for k in i} - set(out))
    for key in keys:
        values = [i.get(key) for i in infos]
        present = [v for v in values if v is not None]
        if key in _SUMMED_RUN_KEYS:
            out[key] = sum(present) if present else None
        elif key in _MAX_RUN_KEYS:
            out[key] = max(present) if present else None
        elif key == "saturated":
            out[key] = any(bool(v) for v in values)
        elif all(v == values[0] for v in values):
            out[key] = values[0]
        elif all(isinstance(v, str) or v is None for v in values):
            out[key] = "; ".join(dict.fromkeys(str(v) for v in present))
        else:
            out[key] = values  # no sum makes sense: keep every shard's value, in order
    return out


def _joined(values: Sequence[Any]) -> Any:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else "; ".join(str(v) for v in distinct)


def _measurements_of(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run's measurements blob with its timeseries and slowest requests (kept at the top
    of the run)."""
    data = dict(run["measurements"])
    for block in ("timeseries", "slow_requests"):
        if run.get(block) and block not in data:
            data[block] = run[block]
    return data


def merge_runs(key: RunKey, runs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One run dict from the same run's dicts in several files (``(file, run)`` pairs)."""
    first_file, first = runs[0]
    for source, run in runs[1:]:
        if _shape_for_match(run.get("shape") or {}) != _shape_for_match(first.get("shape") or {}):
            raise MergeError(
                f"{source}: {key_text(key)} ran shape {run.get('shape')!r} but {first_file} "
                f"ran {first.get('shape')!r}; only runs of the same shape (kind, requests, "
                "concurrency, rps, users, duration, timeout) merge"
            )
    datas = [_measurements_of(run) for _, run in runs]
    highest = max(int(d["highest_us"]) for d in datas)
    merged = Measurements.from_dict({**datas[0], "highest_us": highest})
    for data in datas[1:]:
        merged.merge(Measurements.from_dict({**data, "highest_us": highest}))
    # Measurements.merge adds the timeseries too, aligned on the wall clock (shards' clocks).
    measurements_out = merged.to_dict()
    for data in datas:
        lost = set(data) - set(measurements_out)
        if lost:
            raise MergeError(
                f"measurements field(s) {sorted(lost)} of {key_text(key)} cannot be merged by "
                "this version of pytest-lambda-slo; upgrade it"
            )
    shapes = [dict(run.get("shape") or {}) for _, run in runs]
    shape = dict(shapes[0])
    if all("workers" in s for s in shapes):
        shape["workers"] = sum(int(s["workers"]) for s in shapes)
    extras: dict[str, Any] = {
        "merged_from": [
            {"file": source, "target": run.get("target"), "count": run.get("count")}
            for source, run in runs
        ]
    }
    interrupted = [
        r["extras"]["interrupted"] for _, r in runs if (r.get("extras") or {}).get("interrupted")
    ]
    if interrupted:
        extras["interrupted"] = "; ".join(str(i) for i in interrupted)
    costs = [(r.get("extras") or {}).get("cost") for _, r in runs]
    totals = [c.get("total_usd") for c in costs if isinstance(c, dict)]
    if len(totals) == len(runs) and all(isinstance(t, (int, float)) for t in totals):
        extras["cost"] = {"total_usd": sum(totals), "note": "sum of the merged runs' estimates"}
    result = BurstResult(
        measurements=merged,
        run=_merge_run_info([run for _, run in runs]),
        target=str(_joined([run.get("target", "") for _, run in runs])),
        target_info=first.get("target_info") or {}
        if all(run.get("target_info") == first.get("target_info") for _, run in runs)
        else {"merged": [run.get("target_info") for _, run in runs]},
        shape=shape,
        cold_start_detection=all(bool(run.get("cold_start_detection")) for _, run in runs),
        extras=extras,
        # Exactly the shards' budgets are judged again, their implied ones included.
        default_throttle_rate=None,
    )
    # The shards' verdicts were judged on part of the data: judge every budget again,
    # together (they share the FAIL level) and with the shards' confidence levels; each
    # label's budgets too, on the label's merged view.
    shard_results = [BurstResult.from_dict(run) for _, run in runs]
    _judge_again(result, [shard.verdicts for shard in shard_results])
    for name, view in result.by_label.items():
        found = [shard.by_label[name].verdicts for shard in shard_results if name in shard.by_label]
        _judge_again(view, found)
    return result.to_dict()


def _judge_again(result: BurstResult, shard_verdicts: Sequence[Sequence[Verdict]]) -> None:
    """Judge on ``result`` every budget the shards judged (the first limit of each)."""
    budgets: dict[tuple[str, str], float] = {}
    stored: list[Verdict] = []
    for verdicts in shard_verdicts:
        for verdict in verdicts:
            stored.append(verdict)
            budgets.setdefault((verdict.source, verdict.budget), verdict.limit)
    entries = [(name, limit, source) for (source, name), limit in budgets.items()]
    result.verdicts.extend(judge_all(result, entries, policy_of(stored)))


def merge_documents(documents: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One results document from several (``(file, document)`` pairs, already checked)."""
    order: list[RunKey] = []
    found: dict[RunKey, list[tuple[str, Mapping[str, Any]]]] = {}
    for source, document in documents:
        for key, run in keyed(records_of(document)):
            if key not in found:
                order.append(key)
                found[key] = []
            found[key].append((source, run))
    records: list[Record] = []
    for key in order:
        runs = found[key]
        run = merge_runs(key, runs) if len(runs) > 1 else dict(runs[0][1])
        records.append((key[0], run))
    merged_from = [
        {"file": source, "created": d.get("created"), "machine": d.get("machine")}
        for source, d in documents
    ]
    return new_document(records, merged_from=merged_from)
