"""Load generators side by side against one emulator function: CPU per request, added latency.

Tools: the plugin's engine, hey, Locust, wrk (one thread, and one thread per core),
autocannon, and the floor client (the least CPU per request a client can spend here: only
the socket calls; floor_client.c, or floor_client.py without a C compiler). Every tool
sends the same number of requests at the same concurrency to the same emulator function
(pytest_lambda_slo.emulator, its own process on loopback, Function URL path); wrk runs for
the whole number of seconds that gives about that many. Per run the emulator's stats are
reset first and read after, so each tool's reported latency stands next to the server-side
truth of the same requests (parse-to-write latency, decoded from the emulator's HDR
histogram): "added" = reported minus server-side.

Sections:
- latency: concurrency 50, 200, 500, 1000 with N = 20 x C requests, for a fixed 50 ms
  handler and a lognormal(40ms,0.5) one; tools run interleaved, --repeat times, medians;
- throughput: a zero-duration function, the engine with workers=1 (and workers=2 when the
  engine has ``workers=``) and the other tools.

    python benchmarks/harness.py [--repeat 3] [--levels 50,200,500,1000] [--per-conn 20]
        [--tools engine,hey,locust,wrk-t1,wrk-t2,autocannon,floor] [--rev HEAD]
        [--json bench-results/harness.json] [--markdown FILE]
    python benchmarks/harness.py --render bench-results/harness.json   # tables again

--rev runs the engine and the emulator from ``git archive REV`` of the package (a snapshot
in a temporary directory) instead of the working tree, so edits in progress do not leak in.
``--rev A --rev B`` (two or more) compares revisions side by side in one run: the engine
of each (tools ``engine@A``, ``engine@B``) runs interleaved with the others in every round,
against one emulator (the working tree's); a table gives each revision's CPU per request
against the first's. The engine child runs whichever layout a revision has (the public
``run(target, Burst(...))``, or ``run_burst`` of the private or the first flat layout).

Placement: unpinned by default (the scheduler places the emulator and each client). With
``--pin``, on a machine of two or more cores, the latency sections run the emulator (its
threads and handler processes) on the last core and every client on the others (CPU
affinity), as a client and its target on separate machines; the throughput section stays
unpinned (its server is the bottleneck; ``engine-wN`` needs the cores). The machine line
of a run says which placement it used.

A missing tool is skipped with a note saying how to install it (apt-get install hey wrk;
pip install locust; npm install -g autocannon).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_tools  # noqa: E402

PROFILES = {
    "fixed": "duration=50ms",
    "lognormal": "duration=lognormal(40ms,0.5)",
}
# Mean handler time of each function: wrk's first run at a level sizes its duration by it.
MEAN_SERVICE_S = {"fixed": 0.050, "lognormal": 0.040 * math.exp(0.5**2 / 2), "zero": None}
FALLBACK_RATE = 10_000.0  # req/s, for a zero-duration function before any tool has run
THROUGHPUT_FUNCTION = "zero"
# The reference rows of the ratio tables.
WRK_REFERENCE = "wrk-t1"
FLOOR = "floor"


def all_tools() -> list[str]:
    """Every tool, in the order each round runs them."""
    tools = ["engine", "hey", "locust", "wrk-t1"]
    cores = os.cpu_count() or 1
    if cores > 1:
        tools.append(f"wrk-t{cores}")
    return [*tools, "autocannon", FLOOR]


# Environments stay warm for the whole run, so only the warm-up pays for cold starts.
FUNCTION_OPTIONS = "idle=1h"


# --rev A --rev B: each revision's engine tool ("engine@A") and the snapshot it runs from.
ENGINE_CODE: dict[str, str] = {}


def engine_has_workers() -> bool:
    import pytest_lambda_slo

    if hasattr(pytest_lambda_slo, "run"):  # the layered layout: run(target, shape, workers=)
        return True
    try:
        from pytest_lambda_slo._load.engine import run_burst
    except ImportError:
        from pytest_lambda_slo.engine import run_burst  # type: ignore[no-redef]
    return "workers" in inspect.signature(run_burst).parameters


def extract(rev: str, into: Path) -> str:
    """``git archive rev`` of the package extracted into ``into``; returns the commit."""
    repo = HERE.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, "pytest_lambda_slo"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def use_snapshot(rev: str, into: Path) -> str:
    """Run the package from ``git archive rev`` extracted into ``into``; returns the commit."""
    commit = extract(rev, into)
    # Children: the engine child reads BENCH_CODE; the emulator runs `python -m` from the cwd.
    os.environ["BENCH_CODE"] = str(into)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(into), os.environ.get("PYTHONPATH")])
    )
    sys.path.insert(0, str(into))
    os.chdir(into)
    return commit


def machine() -> dict[str, Any]:
    import uvloop

    model = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    info: dict[str, Any] = {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvloop": uvloop.__version__,
    }
    for tool in ("hey", "locust", "wrk", "autocannon"):
        probe = "wrk-t1" if tool == "wrk" else tool
        info[tool] = None if bench_tools.missing_tool(probe) else bench_tools.tool_version(tool)
    info["node"] = bench_tools.tool_version("node") if info["autocannon"] else None
    info["floor"] = bench_tools.tool_version("floor")
    info["load_average_start"] = os.getloadavg()
    return info


def _hdr_summary(hist_json: dict[str, Any]) -> dict[str, Any]:
    """Decode the emulator's encoded HDR histogram (microseconds) and take its percentiles."""
    from hdrh.histogram import HdrHistogram

    if not hist_json.get("count"):
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    hdr = HdrHistogram.decode(hist_json["encoded"])
    return {
        "count": hdr.get_total_count(),
        "p50_ms": hdr.get_value_at_percentile(50) / 1000,
        "p99_ms": hdr.get_value_at_percentile(99) / 1000,
        "max_ms": hdr.get_max_value() / 1000,
    }


def _server_cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of ``pid`` and of its child processes."""
    import psutil

    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            tids = [thread.id for thread in proc.threads()]
        except psutil.NoSuchProcess:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:
                pass  # a thread that ended meanwhile


def placement(pin: bool) -> tuple[set[int], set[int]] | None:
    """(client cores, server cores) of the latency sections, or None to run unpinned."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return None
    return set(cores[:-1]), {cores[-1]}


def measure(
    emu: Any, function: str, tool: str, n: int, c: int, rate_hint: float = FALLBACK_RATE
) -> dict[str, Any]:
    """One tool, one run: reset the emulator's stats, run the tool, attach the server's truth.

    ``rate_hint`` (req/s) sizes the run of a duration tool (wrk) to about ``n`` requests.
    """
    url = emu.function_url(function)
    emu.reset()
    cpu0 = _server_cpu(emu.pid)
    if tool == "engine":
        result = bench_tools.run_engine(url, n, c)
    elif tool in ENGINE_CODE:
        result = bench_tools.run_engine(url, n, c, code_dir=ENGINE_CODE[tool])
    elif tool.startswith("engine-w"):
        result = bench_tools.run_engine(url, n, c, workers=int(tool.removeprefix("engine-w")))
    elif tool == "hey":
        result = bench_tools.run_hey(url, n, c)
    elif tool == "locust":
        result = bench_tools.run_locust(emu.url, f"/url/{function}/", n, c)
    elif bench_tools.wrk_threads(tool) is not None:
        threads = bench_tools.wrk_threads(tool) or 1
        duration = bench_tools.wrk_duration_s(n, rate_hint)
        result = bench_tools.run_wrk(url, c, threads, duration)
    elif tool == "autocannon":
        result = bench_tools.run_autocannon(url, n, c)
    elif tool == FLOOR:
        result = bench_tools.run_floor(url, n, c)
    else:
        raise ValueError(tool)
    stats = emu.function_stats(function)
    result["tool"] = tool
    result["n_target"] = n
    # A duration tool made as many requests as it made (answered or failed): per-request
    # figures divide by those.
    if result.get("duration_based"):
        result["n"] = result["requests"] + result.get("socket_errors", 0)
    else:
        result["n"] = n
    n = result["n"]
    result["c"] = c
    result["server_cpu_s"] = _server_cpu(emu.pid) - cpu0
    result["server"] = {
        "invocations": stats["invocations"],
        "responses": stats["responses"],
        "throttles": stats["throttles"]["total"],
        "cold_starts": stats["cold_starts"],
        "latency": _hdr_summary(stats["histograms"]["latency"]),
        "duration": _hdr_summary(stats["histograms"]["duration"]),
    }
    if "failed" not in result:
        wall = result["run_wall_s"]
        result["rps"] = result["requests"] / wall if wall else None
        result["cpu_us_per_req"] = result["run_cpu_s"] / n * 1e6
        if result.get("engine_cpu_s") is not None:  # the engine's own figure, load phase only
            result["engine_cpu_us_per_req"] = result["engine_cpu_s"] / n * 1e6
        result["process_cpu_us_per_req"] = result["process_cpu_s"] / n * 1e6
        # Over the whole child process (start-up included): the even-handed rate.
        result["process_rps"] = result["requests"] / result["process_wall_s"]
        # Near 100 % the emulator, not the client, limits the rate.
        result["server_cpu_pct"] = result["server_cpu_s"] / wall * 100 if wall else None
        server = result["server"]["latency"]
        for q in ("p50", "p99", "max"):
            mine, truth = result.get(f"{q}_ms"), server[f"{q}_ms"]
            added = mine - truth if mine is not None and truth is not None else None
            result[f"added_{q}_ms"] = added
    brief = {k: result.get(k) for k in ("rps", "cpu_us_per_req", "p99_ms", "added_p99_ms")}
    print(f"  {function:9} c={c:<5} n={n:<6} {tool:9} {json.dumps(brief)}", file=sys.stderr)
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def _server_median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run["server"]["latency"][key] for run in runs if "failed" not in run]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [run for run in runs if "failed" not in run]
    keys = (
        "requests", "rps", "process_rps", "cpu_us_per_req", "process_cpu_us_per_req",
        "engine_cpu_us_per_req",
        "p50_ms", "p99_ms", "max_ms", "added_p50_ms", "added_p99_ms", "loop_lag_max_ms",
        "server_cpu_pct",
    )  # fmt: skip
    summary: dict[str, Any] = {key: _median(good, key) for key in keys}
    summary.update(
        runs=len(runs),
        failed=[run["failed"] for run in runs if "failed" in run],
        server_p50_ms=_server_median(good, "p50_ms"),
        server_p99_ms=_server_median(good, "p99_ms"),
        errors=sum(run["requests"] - run["ok"] + (run["n"] - run["requests"]) for run in good),
        server_mismatch=sum(
            1 for run in good if run["server"]["latency"]["count"] != run["requests"]
        ),
        throttles=sum(run["server"]["throttles"] for run in good),
    )
    return summary


def rate_hint(runs: dict[str, list[dict[str, Any]]], function: str, c: int) -> float:
    """Expected req/s at this level: the median rate of the runs so far, else from the handler."""
    rates = [run["rps"] for tool_runs in runs.values() for run in tool_runs if run.get("rps")]
    if rates:
        return float(statistics.median(rates))
    mean_s = MEAN_SERVICE_S.get(function)
    return c / mean_s if mean_s else FALLBACK_RATE


def run_section(
    emu: Any, function: str, tools: list[str], levels: list[int], per_conn: int, repeat: int,
    fixed_n: int | None = None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every level, every tool, ``repeat`` rounds interleaved so drift hits all tools alike."""
    section: dict[str, dict[str, Any]] = {}
    for c in levels:
        n = fixed_n or per_conn * c
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
        for _ in range(repeat):
            for tool in tools:
                hint = rate_hint(runs, function, c)
                runs[tool].append(measure(emu, function, tool, n, c, hint))
        section[str(c)] = {
            "n": n,
            "tools": {tool: {"summary": summarise(r), "runs": r} for tool, r in runs.items()},
        }
    return section


def _fmt(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def _n_cell(level: dict[str, Any], summary: dict[str, Any], tool: str) -> str:
    """N of a row: the level's N, or (duration tools) the median count the tool made."""
    if bench_tools.wrk_threads(tool) is not None and summary.get("requests"):
        return f"{summary['requests']:,.0f}"
    return f"{level['n']:,}"


def latency_table(section: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| C | N | tool | req/s | CPU us/req (load) | CPU us/req (process) | p50 ms | p99 ms "
        "| max ms | server p50 ms | server p99 ms | added p50 ms | added p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c, level in section.items():
        for tool, data in level["tools"].items():
            s = data["summary"]
            errors = str(s["errors"]) + (
                f" ({len(s['failed'])} runs failed)" if s["failed"] else ""
            )
            lines.append(
                f"| {c} | {_n_cell(level, s, tool)} | {tool} | {_fmt(s['rps'], 0)} "
                f"| {_fmt(s['cpu_us_per_req'])} | {_fmt(s['process_cpu_us_per_req'])} "
                f"| {_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} | {_fmt(s['max_ms'])} "
                f"| {_fmt(s['server_p50_ms'])} | {_fmt(s['server_p99_ms'])} "
                f"| {_fmt(s['added_p50_ms'], signed=True)} "
                f"| {_fmt(s['added_p99_ms'], signed=True)} "
                f"| {errors} |"
            )
    return lines


def _ratio(mine: dict[str, Any], ref: dict[str, Any] | None, key: str) -> float | None:
    if ref is None or mine.get(key) is None or not ref.get(key):
        return None
    return float(mine[key] / ref[key])


def _summary(level: dict[str, Any], tool: str) -> dict[str, Any] | None:
    data = level["tools"].get(tool)
    return data["summary"] if data else None


def ratios(section: dict[str, dict[str, Any]], tool: str, ref: str) -> list[dict[str, Any]]:
    """``tool`` against ``ref`` per level: CPU per request ratios and added-p99 difference."""
    rows = []
    for c, level in section.items():
        mine, other = _summary(level, tool), _summary(level, ref)
        if mine is None or other is None:
            continue
        diff = None
        if mine["added_p99_ms"] is not None and other["added_p99_ms"] is not None:
            diff = mine["added_p99_ms"] - other["added_p99_ms"]
        rows.append(
            {
                "c": int(c),
                "cpu_ratio": _ratio(mine, other, "cpu_us_per_req"),
                "process_cpu_ratio": _ratio(mine, other, "process_cpu_us_per_req"),
                "rps_ratio": _ratio(mine, other, "rps"),
                "added_p99_minus_ref_ms": diff,
            }
        )
    return rows


def ratio_table(section: dict[str, dict[str, Any]]) -> list[str]:
    """Every tool's CPU per request as a multiple of wrk's (one thread), the floor's and hey's."""
    lines = [
        f"| C | tool | CPU/req x {WRK_REFERENCE} | CPU/req x {FLOOR} | CPU/req x hey "
        f"| added p99 ms | added p99 - {WRK_REFERENCE}'s (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, level in section.items():
        wrk, floor, hey = (_summary(level, t) for t in (WRK_REFERENCE, FLOOR, "hey"))
        for tool in level["tools"]:
            if tool == FLOOR:
                continue
            mine = level["tools"][tool]["summary"]
            diff = None
            if wrk is not None and None not in (mine["added_p99_ms"], wrk["added_p99_ms"]):
                diff = mine["added_p99_ms"] - wrk["added_p99_ms"]
            lines.append(
                f"| {c} | {tool} | {_fmt(_ratio(mine, wrk, 'cpu_us_per_req'), 2)} "
                f"| {_fmt(_ratio(mine, floor, 'cpu_us_per_req'), 2)} "
                f"| {_fmt(_ratio(mine, hey, 'cpu_us_per_req'), 2)} "
                f"| {_fmt(mine['added_p99_ms'], signed=True)} | {_fmt(diff, signed=True)} |"
            )
    return lines


# The engine's goals next to wrk (one thread): CPU per request at most this multiple of
# wrk's, added p99 at most wrk's plus this many ms, at these levels.
WRK_CPU_GOAL = 1.5
WRK_P99_SLACK_MS = 2.0
WRK_GOAL_LEVELS = (200, 500, 1000)


def wrk_goals(result: dict[str, Any]) -> list[str]:
    """The engine next to wrk (one thread), checked on this run's medians."""
    if not {"engine", WRK_REFERENCE} <= set(result["tools"]):
        return [f"- Engine vs {WRK_REFERENCE}: not checked (one of them did not run)."]
    lines = []
    for profile, section in result["latency"].items():
        rows = [r for r in ratios(section, "engine", WRK_REFERENCE) if r["c"] in WRK_GOAL_LEVELS]
        cpu = [r for r in rows if r["cpu_ratio"] is not None]
        p99 = [r for r in rows if r["added_p99_minus_ref_ms"] is not None]
        if not rows:
            continue
        cpu_met = sum(r["cpu_ratio"] <= WRK_CPU_GOAL for r in cpu)
        p99_met = sum(r["added_p99_minus_ref_ms"] <= WRK_P99_SLACK_MS for r in p99)
        cpu_text = ", ".join(f"C={r['c']} {r['cpu_ratio']:.2f}x" for r in cpu)
        p99_text = ", ".join(f"C={r['c']} {r['added_p99_minus_ref_ms']:+.1f}" for r in p99)
        lines += [
            f"- {profile}: engine CPU per request <= {WRK_CPU_GOAL}x {WRK_REFERENCE}'s (load) in "
            f"{cpu_met} of {len(cpu)} levels ({cpu_text}).",
            f"- {profile}: engine added p99 <= {WRK_REFERENCE}'s + {WRK_P99_SLACK_MS:g} ms in "
            f"{p99_met} of {len(p99)} levels (engine minus {WRK_REFERENCE}, ms: {p99_text}).",
        ]
    return lines


def hey_goals(result: dict[str, Any]) -> list[str]:
    """The engine next to hey, checked on this run's medians."""
    if not {"engine", "hey"} <= set(result["tools"]):
        return ["- Engine vs hey: not checked (one of them did not run)."]
    cpu_cells, cpu_met, proc_met, p99_cells, p99_met = 0, 0, 0, 0, 0
    worst_cpu, worst_p99 = 0.0, float("-inf")
    for section in result["latency"].values():
        for row in ratios(section, "engine", "hey"):
            if row["cpu_ratio"] is not None:
                cpu_cells += 1
                cpu_met += row["cpu_ratio"] <= 1.0
                proc_met += (row["process_cpu_ratio"] or 99) <= 1.0
                worst_cpu = max(worst_cpu, row["cpu_ratio"])
            if row["added_p99_minus_ref_ms"] is not None:
                p99_cells += 1
                p99_met += row["added_p99_minus_ref_ms"] <= 0
                worst_p99 = max(worst_p99, row["added_p99_minus_ref_ms"])
    if not cpu_cells:
        return ["- Engine vs hey: not checked (no latency section ran)."]
    lines = [
        f"- Engine CPU per request <= 1.0x hey's: load phase in {cpu_met} of {cpu_cells} "
        f"cells (worst {worst_cpu:.2f}x); whole process (Python start-up included) in "
        f"{proc_met} of {cpu_cells}.",
        f"- Engine added p99 no worse than hey's: {p99_met} of {p99_cells} cells "
        f"(worst {worst_p99:+.1f} ms vs hey).",
    ]
    throughput = result.get("throughput") or {}
    multi = [t for t in result.get("throughput_tools", []) if t.startswith("engine-w")]
    if not multi or not throughput:
        lines.append(
            "- Multi-process requests/s >= hey's: not measured (no throughput section, "
            "--workers 1, or no workers= in this engine)."
        )
    for c, level in throughput.items():
        tools = level["tools"]
        for tool in multi:
            if tool in tools and "hey" in tools:
                mine, hey = tools[tool]["summary"], tools["hey"]["summary"]
                if mine["rps"] and hey["rps"] and mine["process_rps"] and hey["process_rps"]:
                    verdict = "reached" if mine["rps"] >= hey["rps"] else "not reached"
                    lines.append(
                        f"- Multi-process requests/s >= hey's at C={c}: {tool} "
                        f"{mine['rps']:,.0f} vs hey {hey['rps']:,.0f} "
                        f"({mine['rps'] / hey['rps']:.2f}x) by each tool's own clock: {verdict}; "
                        f"over the whole process (interpreter start-ups included) "
                        f"{mine['process_rps']:,.0f} vs {hey['process_rps']:,.0f} "
                        f"({mine['process_rps'] / hey['process_rps']:.2f}x)."
                    )
    return lines


def throughput_table(section: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| C | N | tool | req/s | req/s (process) | CPU us/req (load) | CPU us/req (process) "
        "| p99 ms | server p99 ms | added p99 ms | server CPU % | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c, level in section.items():
        for tool, data in level["tools"].items():
            s = data["summary"]
            lines.append(
                f"| {c} | {_n_cell(level, s, tool)} | {tool} | {_fmt(s['rps'], 0)} "
                f"| {_fmt(s['process_rps'], 0)} "
                f"| {_fmt(s['cpu_us_per_req'])} | {_fmt(s['process_cpu_us_per_req'])} "
                f"| {_fmt(s['p99_ms'], 2)} | {_fmt(s['server_p99_ms'], 3)} "
                f"| {_fmt(s['added_p99_ms'], 2, signed=True)} | {_fmt(s['server_cpu_pct'], 0)} "
                f"| {s['errors']} |"
            )
    return lines


def _versions(m: dict[str, Any]) -> str:
    """The tools' versions that this run recorded (older results lack the newer tools)."""
    parts = [f"Python {m['python']}", f"uvloop {m['uvloop']}"]
    for tool in ("hey", "locust", "wrk", "autocannon", "node"):
        if m.get(tool):
            parts.append(f"{tool} {m[tool]}")
    if m.get("floor"):
        parts.append(f"floor client: {m['floor']}")
    return ", ".join(parts)


def revision_table(section: dict[str, dict[str, Any]]) -> list[str]:
    """Each revision's engine (``engine@REV``) against the first one's: CPU per request."""
    revs = [t for t in next(iter(section.values()))["tools"] if t.startswith("engine@")]
    if len(revs) < 2:
        return []
    lines = [
        "| C | engine | CPU us/req (call) | vs first | engine CPU us/req (load) | vs first |"
        " runs (call, us/req) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, level in section.items():
        first = level["tools"][revs[0]]["summary"]
        for rev in revs:
            tool = level["tools"][rev]
            summary = tool["summary"]
            runs = ", ".join(
                f"{run['cpu_us_per_req']:.1f}" for run in tool["runs"] if "failed" not in run
            )
            call = _ratio(summary, first, "cpu_us_per_req")
            load = _ratio(summary, first, "engine_cpu_us_per_req")
            lines.append(
                f"| {c} | {rev} | {_fmt(summary['cpu_us_per_req'])} | {_fmt(call, 3)} | "
                f"{_fmt(summary.get('engine_cpu_us_per_req'))} | {_fmt(load, 3)} | {runs} |"
            )
    return lines


def _placement_text(placed: dict[str, list[int]] | None) -> str:
    if not placed:
        return "Clients and emulator unpinned."
    client = ",".join(map(str, placed["client_cores"]))
    server = ",".join(map(str, placed["server_cores"]))
    return (
        f"Latency sections: emulator on core {server}, clients on core {client}; "
        "throughput unpinned."
    )


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['kernel']}, {_versions(m)}. "
        f"Code: {result['code']}. "
        f"{_placement_text(result.get('placement'))} "
        f"Median of {result['repeat']} interleaved runs per cell; "
        f"harness wall time {result['wall_s'] / 60:.1f} min.",
        "",
    ]
    for profile, section in result["latency"].items():
        lines += [
            f"### {profile}: handler `{PROFILES[profile]}`, N = {result['per_conn']} x C",
            "",
            *latency_table(section),
            "",
            *ratio_table(section),
            "",
            *revision_table(section),
            "",
        ]
    if result.get("throughput"):
        lines += [
            f"### throughput: zero-duration function, N = {result['throughput_n']:,}, "
            f"median of {result['throughput_repeat']} interleaved runs",
            "",
            *throughput_table(result["throughput"]),
            "",
            *ratio_table(result["throughput"]),
            "",
        ]
    lines += ["### Goals, checked on this run", "", *wrk_goals(result), *hey_goals(result)]
    if result["skipped"]:
        lines += ["", *[f"Skipped: {why}" for why in result["skipped"]]]
    return "\n".join(lines) + "\n"


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,200,500,1000", help="concurrency levels")
    parser.add_argument("--per-conn", type=int, default=20, help="N = this x concurrency")
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument(
        "--tools",
        default=",".join(all_tools()),
        help="engine, hey, locust, wrk-tK (wrk with K threads), autocannon, floor",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--throughput-levels", default="200,1000", help="'' to skip the section")
    parser.add_argument("--throughput-requests", type=int, default=40_000)
    parser.add_argument("--throughput-repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="engine workers= in throughput")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="latency sections with the emulator on the last core and the clients on the others",
    )
    parser.add_argument(
        "--rev",
        action="append",
        default=[],
        help="run the package from this git revision (a snapshot); twice or more: compare "
        "their engines side by side in one run",
    )
    parser.add_argument("--json", default=str(HERE.parent / "bench-results" / "harness.json"))
    parser.add_argument("--markdown", help="also write the markdown tables to this file")
    parser.add_argument("--render", help="only print the markdown of a saved JSON result")
    args = parser.parse_args(argv)
    unknown = [t for t in args.tools.split(",") if t and not bench_tools.known_tool(t)]
    if unknown:
        parser.error(
            f"--tools {','.join(unknown)} not known; use engine, hey, locust, wrk-t1 "
            "(wrk-tK: K threads), autocannon, floor"
        )
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())), end="")
        return 0
    json_path = Path(args.json).resolve()
    markdown_path = Path(args.markdown).resolve() if args.markdown else None
    if len(args.rev) > 1:
        return _compare_revs(args, json_path, markdown_path)
    snapshot = tempfile.TemporaryDirectory(prefix="bench-code-") if args.rev else None
    try:
        commit = use_snapshot(args.rev[0], Path(snapshot.name)) if snapshot else None
        return _run(args, json_path, markdown_path, commit)
    finally:
        if snapshot is not None:
            os.chdir(HERE.parent)
            snapshot.cleanup()


def _compare_revs(args: argparse.Namespace, json_path: Path, markdown_path: Path | None) -> int:
    """Every revision's engine as its own tool (``engine@REV``), interleaved in each round."""
    snapshots = [tempfile.TemporaryDirectory(prefix="bench-code-") for _ in args.rev]
    try:
        commits = []
        for rev, snapshot in zip(args.rev, snapshots, strict=True):
            commits.append(extract(rev, Path(snapshot.name)))
            ENGINE_CODE[f"engine@{rev}"] = snapshot.name
        tools = []
        for tool in filter(None, args.tools.split(",")):
            tools += list(ENGINE_CODE) if tool == "engine" else [tool]
        args.tools = ",".join(tools)
        args.workers = 1  # workers=N is a single-revision figure
        code = ", ".join(
            f"{rev} = git {commit}" for rev, commit in zip(args.rev, commits, strict=True)
        )
        return _run(args, json_path, markdown_path, None, code=code)
    finally:
        for snapshot in snapshots:
            snapshot.cleanup()


def _run(
    args: argparse.Namespace,
    json_path: Path,
    markdown_path: Path | None,
    commit: str | None,
    code: str | None = None,
) -> int:

    from pytest_lambda_slo.emulator import Emulator

    tools, skipped = [], []
    for tool in filter(None, args.tools.split(",")):
        why = bench_tools.missing_tool(tool)
        if why:
            skipped.append(why)
            print(f"skipping: {why}", file=sys.stderr)
        else:
            tools.append(tool)
    profiles = [p for p in args.profiles.split(",") if p]
    levels = _levels(args.levels)
    throughput_levels = _levels(args.throughput_levels)
    throughput_tools = list(tools)
    if "engine" in tools and args.workers > 1:
        if engine_has_workers():
            throughput_tools.insert(1, f"engine-w{args.workers}")
        else:
            skipped.append(f"engine workers={args.workers}: run_burst() has no workers= yet")

    functions = [f"{name}:{spec},{FUNCTION_OPTIONS}" for name, spec in PROFILES.items()]
    functions.append(f"{THROUGHPUT_FUNCTION}:duration=0,{FUNCTION_OPTIONS}")
    result: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "code": code or (f"git {commit}" if commit else "working tree"),
        "machine": machine(),
        "tools": tools,
        "throughput_tools": throughput_tools,
        "skipped": skipped,
        "repeat": args.repeat,
        "per_conn": args.per_conn,
        "throughput_n": args.throughput_requests,
        "throughput_repeat": args.throughput_repeat,
        "emulator_functions": functions,
        "latency": {},
        "throughput": {},
    }
    t0 = time.perf_counter()
    # Account limit above the largest level so nothing is throttled; the emulator's
    # per-function scaling bucket (1,000 new environments) covers the warm-up.
    every_core = os.sched_getaffinity(0)
    cores = placement(args.pin)
    result["placement"] = (
        {"client_cores": sorted(cores[0]), "server_cores": sorted(cores[1])} if cores else None
    )
    if cores:  # the emulator and whatever it starts inherit the server's core
        os.sched_setaffinity(0, cores[1])
    with Emulator(functions, account_concurrency=10_000, seed=args.seed) as emu:
        if cores:
            pin_tree(emu.pid, cores[1])  # threads started before the affinity call
            os.sched_setaffinity(0, cores[0])  # every tool the harness starts
        result["emulator_command"] = " ".join(emu.command())
        for name in [*profiles, THROUGHPUT_FUNCTION]:
            top = max(levels + throughput_levels)
            print(f"warm-up {name}: {top} environments", file=sys.stderr)
            bench_tools.run_engine(emu.function_url(name), top * 2, top)
        for profile in profiles:
            result["latency"][profile] = run_section(
                emu, profile, tools, levels, args.per_conn, args.repeat
            )
        if throughput_levels:
            if cores:
                os.sched_setaffinity(0, every_core)
                pin_tree(emu.pid, every_core)
            result["throughput"] = run_section(
                emu, THROUGHPUT_FUNCTION, throughput_tools, throughput_levels, 0,
                args.throughput_repeat,
                fixed_n=args.throughput_requests,
            )  # fmt: skip
    result["wall_s"] = time.perf_counter() - t0
    result["machine"]["load_average_end"] = os.getloadavg()
    text = markdown(result)
    print(text)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    if markdown_path:
        markdown_path.write_text(text)
    print(f"JSON: {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
