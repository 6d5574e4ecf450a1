"""The seed talk's three experiments side by side: the talk's figures, hey, Locust, the plugin.

Every tool fires at a fresh emulator (fresh environments, so every tool sees the cold
starts) with the talk's flags; the plugin runs through pytest as users run it, writing its
JSON and HTML report. Prints one markdown table per experiment (docs/seed-experiments.md).

    python benchmarks/seed_experiments.py [--only 1,2,3] [--html-dir DIR] [--screenshots DIR]

Figures of hey and Locust are computed from their per-request output (hey ``-o csv``) and
their own statistics files (Locust ``--csv``); the plugin's from its results file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_lambda_slo._report import hdr
from pytest_lambda_slo.emulator import Emulator

Figures = dict[str, Any]
Band = tuple[str, float, float]  # label, low s, high s

EXP1 = "api"
EXP2 = "sleep2:duration=2s,init=uniform(1s,1.4s),cold_header=true"
EXP3 = "sleep3:duration=3s,init=uniform(400ms,550ms),cold_header=true"
EXP3_ACCOUNT = 1000

PLUGIN_TEST = """
import os
from pytest_lambda_slo import HttpTarget

def test_run(lambda_slo):
    kind = os.environ["SEED_KIND"]
    statuses = [500] if kind == "apigw" else [429]
    target = HttpTarget(os.environ["SEED_URL"], throttle_statuses=statuses,
                        cold_start="x-cold-start")
    if os.environ.get("SEED_USERS"):
        lambda_slo.ramp(target, users=int(os.environ["SEED_USERS"]), spawn_rate=100,
                        duration="25s", think_time="200ms", timeout="10s")
    else:
        lambda_slo.burst(target, requests=int(os.environ["SEED_N"]),
                         concurrency=int(os.environ["SEED_C"]), timeout="20s")
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Seed(FastHttpUser):
    wait_time = constant(0.2)
    network_timeout = 10.0
    connection_timeout = 10.0

    @task
    def call(self):
        with self.client.get("", catch_response=True) as response:
            if response.status_code == 429:
                response.failure("throttled")
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CI"))}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    return env


def _bands(values_s: list[float], bands: list[Band]) -> dict[str, int]:
    return {label: sum(1 for v in values_s if lo <= v < hi) for label, lo, hi in bands}


def run_hey(url: str, n: int, c: int, bands: list[Band]) -> Figures:
    done = subprocess.run(
        ["hey", "-n", str(n), "-c", str(c), "-t", "20", "-o", "csv", url],
        capture_output=True, text=True, timeout=600, env=_env(), check=True,
    )  # fmt: skip
    rows = list(csv.DictReader(done.stdout.splitlines()))
    times = [float(r["response-time"]) for r in rows]
    ends = [float(r["offset"]) + float(r["response-time"]) for r in rows]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
    total = max(ends)
    return {
        "requests": len(rows),
        "total_s": total,
        "slowest_s": max(times),
        "fastest_s": min(times),
        "average_s": sum(times) / len(times),
        "rps": len(rows) / total,
        "statuses": statuses,
        "bands": _bands(times, bands),
    }


def run_plugin(
    kind: str, url: str, env_extra: dict[str, str], bands: list[Band], html: Path
) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_seed.py").write_text(PLUGIN_TEST)
        out = Path(tmp, "r.json")
        env = {**_env(), "SEED_KIND": kind, "SEED_URL": url, **env_extra}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
             "pytest_lambda_slo.plugin", "test_seed.py", f"--lambda-slo-json={out}",
             f"--lambda-slo-html={html}", "-o", "lambda_slo_default_throttle_rate=off"],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        [run] = json.loads(out.read_text())["bursts"]
    histogram = hdr.add_all([run["measurements"]["histograms"]["all"]["hdr"]])
    values: list[float] = []
    for item in histogram.get_recorded_iterator():
        value = histogram.get_highest_equivalent_value(item.value_iterated_to) / 1e6
        values.extend([value] * item.count_at_value_iterated_to)
    latency = run["latency_ms"]["all"]
    return {
        "requests": run["count"],
        "total_s": run["duration_s"],
        "slowest_s": latency["max"] / 1000,
        "fastest_s": latency["min"] / 1000,
        "average_s": latency["mean"] / 1000,
        "p50_s": latency["p50"] / 1000,
        "p99_s": latency["p99"] / 1000,
        "rps": run["rps"],
        "cold_starts": run["cold_starts"],
        "throttles": run["throttles"],
        "errors": run["errors"],
        "peak_in_flight": run["run"].get("peak_in_flight"),
        "bands": _bands(values, bands),
    }


def run_locust(url: str, users: int) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "locustfile.py").write_text(LOCUSTFILE)
        locust = shutil.which("locust") or "locust"
        subprocess.run(
            [locust, "-f", "locustfile.py", "--headless", "-u", str(users), "-r", "100",
             "-t", "25s", "--host", url, "--csv", "seed", "--only-summary", "--stop-timeout", "12"],
            cwd=tmp, capture_output=True, text=True, timeout=300, env=_env(), check=False,
        )  # fmt: skip
        rows = list(csv.DictReader(Path(tmp, "seed_stats.csv").read_text().splitlines()))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "requests": int(total["Request Count"]),
        "throttles": int(total["Failure Count"]),
        "p50_s": float(total["50%"]) / 1000,
        "p99_s": float(total["99%"]) / 1000,
        "slowest_s": float(total["Max Response Time"]) / 1000,
        "average_s": float(total["Average Response Time"]) / 1000,
        "rps": float(total["Requests/s"]),
    }


def _fresh(spec: str, **options: Any) -> Emulator:
    return Emulator([spec], **options)


def _s(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(
    columns: list[tuple[str, Figures]], rows: list[tuple[str, Callable[[Figures], Any]]]
) -> str:
    head = "| | " + " | ".join(name for name, _ in columns) + " |"
    lines = [head, "| --- |" + " ---: |" * len(columns)]
    for label, get in rows:
        cells = []
        for _, figures in columns:
            try:
                cells.append(_s(get(figures)))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _common_rows(bands: list[Band]) -> list[tuple[str, Callable[[Figures], Any]]]:
    rows: list[tuple[str, Callable[[Figures], Any]]] = [
        ("requests", lambda f: f["requests"]),
        ("total (s)", lambda f: f["total_s"]),
        ("slowest (s)", lambda f: f["slowest_s"]),
        ("fastest (s)", lambda f: f["fastest_s"]),
        ("average (s)", lambda f: f["average_s"]),
        ("requests/s", lambda f: f["rps"]),
        ("in flight, req/s x average", lambda f: round(f["rps"] * f["average_s"])),
    ]
    rows += [
        (f"requests {label}", lambda f, label=label: f["bands"][label]) for label, _, _ in bands
    ]
    rows += [
        ("p50 / p99 (s)", lambda f: f"{f['p50_s']:.3f} / {f['p99_s']:.3f}"),
        ("cold starts (plugin: marked by the function)", lambda f: f["cold_starts"]),
        ("throttled", lambda f: f["throttles"]),
    ]
    return rows


def experiment_1(html_dir: Path) -> str:
    out = []
    for name, profile, talk, bands in (
        ("old ENI model (vpc-2019)", "vpc-2019",
         {"total_s": 13.46, "slowest_s": 13.05, "fastest_s": 0.0194, "average_s": 1.25,
          "rps": 37.1, "requests": 500, "bands": {"under 1.32 s": 448, "10.4 s to 13.0 s": 50}},
         [("under 1.32 s", 0.0, 1.32), ("10.4 s to 13.0 s", 10.4, 13.0)]),
        ("Hyperplane (hyperplane)", "hyperplane",
         {"total_s": 1.37, "slowest_s": 0.547, "fastest_s": 0.0225, "average_s": 0.097,
          "rps": 365.1, "requests": 500, "bands": {"under 0.075 s": 411, "0.39 s to 0.55 s": 49}},
         [("under 0.075 s", 0.0, 0.075), ("0.39 s to 0.55 s", 0.39, 0.55)]),
    ):  # fmt: skip
        spec = f"{EXP1}:profile={profile}"
        with _fresh(spec) as emu:
            hey = run_hey(emu.apigw_url(EXP1), 500, 50, bands)
            hey["throttles"] = hey["statuses"].get("500", 0)
        with _fresh(spec) as emu:
            plugin = run_plugin("apigw", emu.apigw_url(EXP1), {"SEED_N": "500", "SEED_C": "50"},
                                bands, html_dir / f"seed-exp1-{profile}.html")  # fmt: skip
        columns = [("talk (2019)", talk), ("hey -n 500 -c 50 (measured)", hey),
                   ("plugin burst(500, 50) (measured)", plugin)]  # fmt: skip
        out.append(f"**{name}**\n\n" + table(columns, _common_rows(bands)))
    return "\n\n".join(out)


def experiment_2(html_dir: Path) -> str:
    # The talk's warm band starts at its fastest answer, 2.02 s; the emulator answers a 2 s
    # sleep in 2.00x s, so the warm band here starts at 2.0 s.
    warm, cold = "2.0 s to 2.16 s (warm)", "3.0 s to 3.4 s (cold starts)"
    bands = [(warm, 2.0, 2.16), (cold, 3.0, 3.4)]
    talk = {"requests": 10_000, "total_s": 21.8, "slowest_s": 3.40, "fastest_s": 2.02,
            "average_s": 2.15, "rps": 458.5, "bands": {warm: 8998, cold: 1000}}  # fmt: skip
    columns: list[tuple[str, Figures]] = [("talk (2019, -c 500 on the slide)", talk)]
    for c in (500, 1000):
        with _fresh(EXP2) as emu:
            columns.append(
                (
                    f"hey -n 10000 -c {c} (measured)",
                    run_hey(emu.apigw_url("sleep2"), 10_000, c, bands),
                )
            )
        with _fresh(EXP2) as emu:
            shape = {"SEED_N": "10000", "SEED_C": str(c)}
            html = html_dir / f"seed-exp2-c{c}.html"
            plugin = run_plugin("apigw", emu.apigw_url("sleep2"), shape, bands, html)
            columns.append((f"plugin burst(10000, {c}) (measured)", plugin))
    for _, figures in columns[1:]:
        if "statuses" in figures:
            figures["throttles"] = figures["statuses"].get("500", 0)
    return table(columns, _common_rows(bands))


def experiment_3(html_dir: Path) -> str:
    columns: list[tuple[str, Figures]] = [("talk (2019)", {})]
    with _fresh(EXP3, account_concurrency=EXP3_ACCOUNT) as emu:
        locust = run_locust(emu.function_url("sleep3"), 1100)
        locust["server_peak"] = emu.function_stats("sleep3").get("peak_concurrency")
        columns.append(("Locust -u 1100 -r 100, wait 200 ms, 25 s (measured)", locust))
    with _fresh(EXP3, account_concurrency=EXP3_ACCOUNT) as emu:
        plugin = run_plugin("url", emu.function_url("sleep3"), {"SEED_USERS": "1100"}, [],
                            html_dir / "seed-exp3.html")  # fmt: skip
        plugin["server_peak"] = emu.function_stats("sleep3").get("peak_concurrency")
        columns.append(("plugin ramp(1100 users, 100/s, 200 ms, 25 s) (measured)", plugin))
    rows: list[tuple[str, Callable[[Figures], Any]]] = [
        ("requests", lambda f: f["requests"]),
        ("requests/s", lambda f: f["rps"]),
        ("throttled (429)", lambda f: f["throttles"]),
        ("throttled share", lambda f: f"{f['throttles'] / f['requests']:.1%}"),
        ("average (s)", lambda f: f["average_s"]),
        ("p50 / p99 (s)", lambda f: f"{f['p50_s']:.3f} / {f['p99_s']:.3f}"),
        ("slowest (s)", lambda f: f["slowest_s"]),
        ("cold starts", lambda f: f["cold_starts"]),
        ("peak concurrency at the function (emulator's count)", lambda f: f["server_peak"]),
    ]
    return table(columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="1,2,3")
    parser.add_argument("--html-dir", default="seed-reports")
    args = parser.parse_args()
    html_dir = Path(args.html_dir)
    html_dir.mkdir(parents=True, exist_ok=True)
    experiments = {"1": experiment_1, "2": experiment_2, "3": experiment_3}
    for key in args.only.split(","):
        print(f"### Experiment {key}\n")
        print(experiments[key](html_dir), flush=True)
        print()
    print(textwrap.dedent(f"HTML reports of the plugin's runs: {html_dir}/"))


if __name__ == "__main__":
    main()
