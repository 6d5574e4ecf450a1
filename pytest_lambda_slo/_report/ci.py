"""CI-native forms of results: JUnit properties and the GitHub job-summary table.

Both take run dicts (``BurstResult.to_dict()``), so the plugin and the command line share
them. Latency is in milliseconds, rates are fractions, as in the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .document import Record, key_text, keyed

if TYPE_CHECKING:  # the plugin calls junit_properties on every load test: no scipy for it
    from .compare import Comparison

# Verdict fields passed on when a verdict carries them (confidence verdicts add bounds).
_VERDICT_FIELDS = ("state", "limit", "measured", "lower", "upper", "confidence", "samples")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def junit_properties(run: Mapping[str, Any], prefix: str = "lambda_slo") -> list[tuple[str, str]]:
    """``record_property`` pairs for one run: figures, then each verdict's state and bounds."""
    latency = (run.get("latency_ms") or {}).get("all") or {}
    cold = (run.get("latency_ms") or {}).get("cold") or {}
    count = int(run.get("count") or 0)
    props: list[tuple[str, Any]] = [
        ("target", run.get("target", "")),
        ("requests", count),
        ("p50_ms", latency.get("p50")),
        ("p90_ms", latency.get("p90")),
        ("p99_ms", latency.get("p99")),
        ("max_ms", latency.get("max")),
        ("cold_starts", run.get("cold_starts", 0)),
        ("cold_start_p99_ms", cold.get("p99")),
        ("throttles", run.get("throttles", 0)),
        ("throttle_rate", (run.get("throttles", 0) / count) if count else None),
        ("errors", run.get("errors", 0)),
        ("error_rate", (run.get("errors", 0) / count) if count else None),
        ("rps", run.get("rps")),
    ]
    for verdict in run.get("verdicts") or []:
        name = f"verdict.{verdict['budget']}"
        props.append((name, state_of(verdict)))
        for key in _VERDICT_FIELDS[1:]:
            if verdict.get(key) is not None:
                unit = (
                    f"_{verdict['unit']}"
                    if key in ("limit", "measured", "lower", "upper")
                    and verdict.get("unit") == "ms"
                    else ""
                )
                props.append((f"{name}.{key}{unit}", verdict[key]))
    return [(f"{prefix}.{key}", "" if value is None else _fmt(value)) for key, value in props]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


def _verdicts_cell(run: Mapping[str, Any]) -> str:
    verdicts = run.get("verdicts") or []
    if not verdicts:
        return "-"
    states = [state_of(v) for v in verdicts]
    broken = [v["budget"] for v, state in zip(verdicts, states, strict=True) if state == "FAIL"]
    unsure = [v["budget"] for v, state in zip(verdicts, states, strict=True) if state not in
              ("PASS", "FAIL")]  # fmt: skip
    passed = len(verdicts) - len(broken) - len(unsure)
    text = f"FAIL: {', '.join(broken)} " if broken else "PASS "
    if unsure:
        text += f"INCONCLUSIVE: {', '.join(unsure)} "
    return text + f"({passed}/{len(verdicts)} pass)"


def state_of(verdict: Mapping[str, Any]) -> str:
    """PASS, FAIL or another state a verdict names (e.g. INCONCLUSIVE)."""
    state = verdict.get("state")
    if state:
        return str(state).upper()
    return "PASS" if verdict.get("passed") else "FAIL"


def _delta_cell(comparison: Comparison | None) -> str:
    if comparison is None:
        return "-"
    if not comparison.compared:
        return _cell(comparison.note.split(":")[0]) or "-"
    shift = comparison.shift("p99")
    if shift is None or shift.delta is None:
        return "-"
    text = f"{'+' if shift.delta >= 0 else '-'}{_ms(abs(shift.delta) * 1000)}"
    if shift.relative is not None:
        text += f" ({shift.relative:+.1%})"
    if shift.significant:
        text += " significant"
    if comparison.failed:
        text = f"REGRESSED {text}"
    if comparison.note:  # compared, but the function was redeployed or reconfigured
        text += " (deployment changed)"
    return text


def github_summary_markdown(
    records: Sequence[Record], comparisons: Sequence[Comparison] | None = None
) -> str:
    """The markdown table appended to ``$GITHUB_STEP_SUMMARY``: one row per load run."""
    by_key = {(c.test_id, c.index): c for c in comparisons or ()}
    lines = [
        "### Lambda SLO results",
        "",
        "| test | verdicts | p99 | cold starts | throttle share | baseline p99 delta |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for key, run in keyed(records):
        count = int(run.get("count") or 0)
        p99 = ((run.get("latency_ms") or {}).get("all") or {}).get("p99")
        throttle = f"{run.get('throttles', 0) / count:.1%}" if count else "-"
        lines.append(
            f"| {_cell(key_text(key))} | {_cell(_verdicts_cell(run))} | {_ms(p99)} | "
            f"{run.get('cold_starts', 0)} | {throttle} | {_delta_cell(by_key.get(key))} |"
        )
    return "\n".join(lines) + "\n"
