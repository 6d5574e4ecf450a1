"""Calibration of the verdicts: how often a good deploy fails and a regression passes.

Emulator arms (the default): one function per arm, the true value 10% under, at, and 10%
over the budget, for a p99 and for an error rate; each arm fired at fixed n (300, 1,000,
3,000) and with ``requests="auto"`` (max 20,000), ``--runs`` times; every run judged with
confidence bounds and, side by side on the same data, by point estimates. The true p99 is
measured first on the same machine for each run size (fixed n, and auto's wave), by
pooling runs of that size to ``--truth-requests``; each arm's budget is then true/0.9,
true and true/1.1 (the true value 10% under, at, 10% over).

``--simulate``: the sequential test alone on binomial waves (an auto burst's waves, maximum
20,000, two budgets sharing the fail level, as a p99 with the implied throttle budget),
the true p99 10% under / at / 10% over the budget for lognormal latency of shape 0.5.
Every figure printed is measured (emulator) or simulated (seeded); none is typed in.

    python benchmarks/calibration.py --runs 100 --out calibration.jsonl   # about an hour
    python benchmarks/calibration.py --runs 2 --truth-requests 3000 --max-requests 3000
    python benchmarks/calibration.py --simulate --runs 2000
    python benchmarks/calibration.py --render calibration.jsonl          # the docs' table
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_lambda_slo import Burst, Emulator, run
from pytest_lambda_slo._results.budgets import parse_budgets
from pytest_lambda_slo._results.recorder import Measurements
from pytest_lambda_slo._results.result import served_histogram
from pytest_lambda_slo._results.verdict import VerdictPolicy
from pytest_lambda_slo._results.verdicts import evaluate
from pytest_lambda_slo._stats.levels import split_levels
from pytest_lambda_slo._stats.sequential import SequentialTest

FIXED_N = (300, 1000, 3000)
MAX_REQUESTS = 20_000
CONCURRENCY = 50
LATENCY = "lognormal(30ms,0.5)"
ERROR_RATE = 0.01
ARMS = (("10% under", 0.9), ("at", 1.0), ("10% over", 1.1))
ARM_NAMES = tuple(name for name, _ in ARMS)
POINT = VerdictPolicy(method="point")
CONFIDENCE = VerdictPolicy()  # --pass-confidence changes it (fixed n only)


def lognormal_share(factor: float, sigma: float = 0.5) -> float:
    """P(latency > budget) when the true p99 is ``factor`` times the budget."""
    return float(stats.norm.sf(stats.norm.ppf(0.99) - math.log(factor) / sigma))


def simulate(runs: int) -> None:
    levels = split_levels(2, 0.95, 0.99)
    wave = Burst(requests="auto", concurrency=CONCURRENCY, budgets={"p99": "1s"}).wave_requests
    print(f"sequential test alone: waves of {wave}, max {MAX_REQUESTS:,}, {runs} runs per arm")
    for (label, factor), seed in zip(ARMS, (31, 22, 32), strict=True):
        theta = 0.01 if factor == 1.0 else lognormal_share(factor)
        rng = np.random.default_rng(seed)
        cumulative = rng.binomial(wave, theta, size=(runs, MAX_REQUESTS // wave)).cumsum(axis=1)
        ended: Counter[str] = Counter()
        used = []
        for row in cumulative:
            test = SequentialTest(0.01, pass_confidence=levels.pass_confidence,
                                  fail_confidence=levels.fail_confidence,
                                  n_max=MAX_REQUESTS)  # fmt: skip
            step, n = "continue", 0
            for n, m in zip(range(wave, MAX_REQUESTS + 1, wave), row, strict=True):
                step = test.update(n, int(m))
                if step != "continue":
                    break
            ended[step] += 1
            used.append(n)
        print(f"  p99 {label:<9} (share {theta:.4%}): pass {ended['pass']}, fail "
              f"{ended['fail']}, inconclusive {ended['inconclusive']}; mean requests "
              f"{np.mean(used):,.0f}")  # fmt: skip


def measure_truth(emu: Emulator, run_requests: int, total: int) -> float:
    """The true p99 as runs of ``run_requests`` requests measure it: runs of that size pooled
    until ``total`` requests (a burst's first round meets fresh connections and a server
    taking them all at once, so short runs see a little more latency than one long run)."""
    pooled: Measurements | None = None
    while pooled is None or pooled.count < total:
        result = run(emu.function_url("latency"),
                     Burst(requests=run_requests, concurrency=CONCURRENCY))  # fmt: skip
        emu.reset()
        if pooled is None:
            pooled = result.measurements
        else:
            pooled.merge(result.measurements)
    value = served_histogram(pooled).percentile_us(99)
    assert value is not None
    return value / 1e6


def one_arm(
    emu: Emulator,
    function: str,
    budget: dict[str, object],
    runs: int,
    max_requests: int,
    record: dict[str, object],
    out: Path | None,
    sizes: tuple[int | str, ...],
    auto_runs: int | None = None,
) -> None:
    """Fixed n and auto runs of one arm; each n's counts are printed (and appended to
    ``out`` as a JSON line) as soon as its runs are done, so a cut-short run keeps them."""
    for n in sizes:
        runs_n = auto_runs if n == "auto" and auto_runs is not None else runs
        confidence: Counter[str] = Counter()
        point: Counter[str] = Counter()
        used = []
        started = time.monotonic()
        for _ in range(runs_n):
            if n == "auto":
                shape = Burst(requests="auto", concurrency=CONCURRENCY,
                              max_requests=max_requests, budgets=budget)  # fmt: skip
            else:
                shape = Burst(requests=n, concurrency=CONCURRENCY)
            result = run(emu.function_url(function), shape)
            judged = evaluate(result, parse_budgets(budget), "check", CONFIDENCE)
            confidence[next(v.state for v in judged if v.budget in budget)] += 1
            point[evaluate(result, parse_budgets(budget), "check", POINT)[0].state] += 1
            used.append(result.count)
            emu.reset()
        print(
            f"    n={n!s:<5} confidence: pass {confidence['pass']}, fail {confidence['fail']}, "
            f"inconclusive {confidence['inconclusive']} | point: pass {point['pass']}, fail "
            f"{point['fail']} | mean requests {np.mean(used):,.0f} | {runs_n} runs in "
            f"{time.monotonic() - started:,.0f} s",
            flush=True,
        )
        if out is not None:
            if CONFIDENCE != VerdictPolicy():
                record = {**record, "pass_confidence": CONFIDENCE.pass_confidence}
            line = {**record, "n": n, "runs": runs_n, "confidence": dict(confidence),
                    "point": dict(point), "mean_requests": float(np.mean(used)),
                    "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
            with out.open("a") as f:
                f.write(json.dumps(line) + "\n")


def emulator_arms(
    runs: int,
    at_runs: int,
    truth_requests: int,
    max_requests: int,
    latency: str,
    kinds: list[str],
    out: Path | None,
    error_auto_runs: int | None = None,
    fixed: tuple[int, ...] = FIXED_N,
    with_auto: bool = True,
    arms: tuple[str, ...] = ARM_NAMES,
) -> None:
    functions = [f"latency:duration={latency},init=0ms"] + [
        f"errors{i}:duration=5ms,init=0ms,error_rate={ERROR_RATE * f!r}"
        for i, (_, f) in enumerate(ARMS)
    ]
    # The arms the gate's error rates are promised on first, the arm at the budget last.
    order = [i for i in sorted(range(len(ARMS)), key=lambda i: ARMS[i][1] == 1.0)
             if ARMS[i][0] in arms]  # fmt: skip
    with Emulator(functions=functions, seed=1) as emu:
        if "p99" in kinds:
            wave = Burst(requests="auto", concurrency=CONCURRENCY, max_requests=max_requests,
                         budgets={"p99": "1s"}).wave_requests  # fmt: skip
            sizes = {n: n for n in fixed} | ({"auto": wave} if with_auto else {})
            truths = {n: measure_truth(emu, size, truth_requests) for n, size in sizes.items()}
            print(f"true p99 of {latency} at {CONCURRENCY} concurrent, runs of each size pooled "
                  f"to {truth_requests:,} requests: "
                  + ", ".join(f"n={n} {t * 1000:.2f}ms" for n, t in truths.items())
                  + f"; {runs} runs per arm ({at_runs} at the budget); auto max "
                  f"{max_requests:,} in waves of {wave}", flush=True)  # fmt: skip
            for i in order:
                label, factor = ARMS[i]
                print(f"  p99 {label}", flush=True)
                arm_runs = at_runs if factor == 1.0 else runs
                for n, truth in truths.items():
                    budget: dict[str, object] = {"p99": f"{truth / factor * 1000:.3f}ms"}
                    record = {"budget": "p99", "arm": label, "truth_s": truth,
                              "limit": budget["p99"], "latency": latency}  # fmt: skip
                    one_arm(emu, "latency", budget, arm_runs, max_requests, record, out, (n,))
        if "error_rate" in kinds:
            for i in order:
                label, factor = ARMS[i]
                print(f"  error_rate {label}: true {ERROR_RATE * factor:.2%}, budget 1%",
                      flush=True)  # fmt: skip
                record = {"budget": "error_rate", "arm": label, "truth": ERROR_RATE * factor,
                          "limit": "1%"}  # fmt: skip
                arm_runs = at_runs if factor == 1.0 else runs
                one_arm(emu, f"errors{i}", {"error_rate": "1%"}, arm_runs, max_requests,
                        record, out, (*fixed, *(("auto",) if with_auto else ())),
                        error_auto_runs)  # fmt: skip


def render(path: Path) -> None:
    """The JSON lines of ``--out`` as the markdown table docs/verdicts.md shows."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("| budget | true value | n | runs | PASS | FAIL | INCONCLUSIVE | point: PASS | "
          "point: FAIL | mean requests |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        c, pt = row["confidence"], row["point"]
        if row["budget"] == "p99":
            truth = f"{row['arm']} ({row['truth_s'] * 1000:.1f} ms vs {row['limit']})"
        else:
            truth = f"{row['arm']} ({row['truth']:.2%} vs {row['limit']})"
        n = "auto" if row["n"] == "auto" else f"{row['n']:,}"
        budget = row["budget"]
        if "pass_confidence" in row:
            budget += f" (pass at {row['pass_confidence']:.0%})"
        print(f"| {budget} | {truth} | {n} | {row['runs']} | {c.get('pass', 0)} | "
              f"{c.get('fail', 0)} | {c.get('inconclusive', 0)} | {pt.get('pass', 0)} | "
              f"{pt.get('fail', 0)} | {row['mean_requests']:,.0f} |")  # fmt: skip


def main() -> None:
    global CONCURRENCY, CONFIDENCE  # one setting for every run of this process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per arm (default 100)")
    parser.add_argument("--truth-requests", type=int, default=20_000)
    parser.add_argument("--max-requests", type=int, default=MAX_REQUESTS, help="auto's maximum")
    parser.add_argument("--latency", default=LATENCY, help=f"the p99 arms' function ({LATENCY})")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="connections")
    parser.add_argument("--at-runs", type=int, help="runs of the arms at the budget (--runs)")
    parser.add_argument(
        "--error-auto-runs",
        type=int,
        help="auto runs of the error-rate arms (--runs; each may take 20,000)",
    )
    parser.add_argument("--sizes", default="300,1000,3000,auto", help="fixed n and/or auto")
    parser.add_argument("--arms", default="under,at,over", help="which arms (under,at,over)")
    parser.add_argument("--kinds", default="p99,error_rate", help="budgets (p99,error_rate)")
    parser.add_argument("--out", type=Path, help="append each result as a JSON line here")
    parser.add_argument(
        "--pass-confidence",
        type=float,
        help="judge the fixed-n runs at this pass confidence (default 0.95, the plugin's)",
    )
    parser.add_argument("--simulate", action="store_true", help="the sequential test alone")
    parser.add_argument("--render", type=Path, help="print the table of an --out file")
    args = parser.parse_args()
    if args.render is not None:
        render(args.render)
    elif args.simulate:
        simulate(args.runs)
    else:
        at_runs = args.runs if args.at_runs is None else args.at_runs
        sizes = args.sizes.split(",")
        fixed = tuple(int(n) for n in sizes if n != "auto")
        names = {"under": "10% under", "at": "at", "over": "10% over"}
        arms = tuple(names[a] for a in args.arms.split(","))
        CONCURRENCY = args.concurrency
        if args.pass_confidence is not None:
            if "auto" in sizes:
                parser.error("--pass-confidence judges fixed n only: leave auto out of --sizes")
            CONFIDENCE = VerdictPolicy(pass_confidence=args.pass_confidence)
        emulator_arms(args.runs, at_runs, args.truth_requests, args.max_requests,
                      args.latency, args.kinds.split(","), args.out,
                      args.error_auto_runs, fixed, "auto" in sizes, arms)  # fmt: skip


if __name__ == "__main__":
    main()
