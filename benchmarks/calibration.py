"""Calibration of the verdicts: how often a good deploy fails and a regression passes.

Emulator arms (the default): one function per arm, the true value 10% under, at, and 10%
over the budget, for a p99 and for an error rate; each arm fired at fixed n (300, 1,000,
3,000) and with ``requests="auto"`` (max 20,000), ``--runs`` times; every run judged with
confidence bounds and, side by side on the same data, by point estimates. The true p99 is
measured first with one long run (``--truth-requests``) on the same machine; the budgets
are then true/0.9, true and true/1.1 (the true value 10% under, at, 10% over).

``--simulate``: the sequential test alone on binomial waves (waves of 500, maximum
20,000, two budgets sharing the fail level, as a p99 with the implied throttle budget),
the true p99 10% under / at / 10% over the budget for lognormal latency of shape 0.5.
Every figure printed is measured (emulator) or simulated (seeded); none is typed in.

    python benchmarks/calibration.py --runs 100          # long: hours on a small machine
    python benchmarks/calibration.py --runs 2 --truth-requests 3000 --max-requests 3000 \
        --latency 'lognormal(20ms,0.5)'                  # a smoke test of a few minutes
    python benchmarks/calibration.py --simulate --runs 2000
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_lambda_slo import Burst, Emulator, run
from pytest_lambda_slo._results.budgets import parse_budgets
from pytest_lambda_slo._results.verdict import VerdictPolicy
from pytest_lambda_slo._results.verdicts import evaluate
from pytest_lambda_slo._stats.levels import split_levels
from pytest_lambda_slo._stats.sequential import SequentialTest

FIXED_N = (300, 1000, 3000)
MAX_REQUESTS = 20_000
CONCURRENCY = 30
LATENCY = "lognormal(100ms,0.5)"
ERROR_RATE = 0.01
ARMS = (("10% under", 0.9), ("at", 1.0), ("10% over", 1.1))
POINT = VerdictPolicy(method="point")


def lognormal_share(factor: float, sigma: float = 0.5) -> float:
    """P(latency > budget) when the true p99 is ``factor`` times the budget."""
    return float(stats.norm.sf(stats.norm.ppf(0.99) - math.log(factor) / sigma))


def simulate(runs: int) -> None:
    levels = split_levels(2, 0.95, 0.99)
    wave = 500
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


def measure_truth(emu: Emulator, requests: int) -> float:
    result = run(emu.function_url("latency"), Burst(requests=requests, concurrency=CONCURRENCY))
    emu.reset()
    return result.p99


def one_arm(
    emu: Emulator, function: str, budget: dict[str, object], runs: int, max_requests: int
) -> list[str]:
    """Fixed n and auto runs of one arm: the counts of each state, both judgements."""
    lines = []
    for n in (*FIXED_N, "auto"):
        confidence: Counter[str] = Counter()
        point: Counter[str] = Counter()
        used = []
        for _ in range(runs):
            if n == "auto":
                shape = Burst(requests="auto", concurrency=CONCURRENCY,
                              max_requests=max_requests, budgets=budget)  # fmt: skip
            else:
                shape = Burst(requests=n, concurrency=CONCURRENCY)
            result = run(emu.function_url(function), shape)
            confidence[next(v.state for v in result.judge(budget) if v.budget in budget)] += 1
            point[evaluate(result, parse_budgets(budget), "check", POINT)[0].state] += 1
            used.append(result.count)
            emu.reset()
        lines.append(
            f"    n={n!s:<5} confidence: pass {confidence['pass']}, fail {confidence['fail']}, "
            f"inconclusive {confidence['inconclusive']} | point: pass {point['pass']}, fail "
            f"{point['fail']} | mean requests {np.mean(used):,.0f}"
        )
    return lines


def emulator_arms(runs: int, truth_requests: int, max_requests: int, latency: str) -> None:
    functions = [f"latency:duration={latency},init=0ms"] + [
        f"errors{i}:duration=5ms,init=0ms,error_rate={ERROR_RATE * f!r}"
        for i, (_, f) in enumerate(ARMS)
    ]
    with Emulator(functions=functions, seed=1) as emu:
        truth = measure_truth(emu, truth_requests)
        print(f"true p99 of {latency} at {CONCURRENCY} concurrent: {truth * 1000:.1f}ms "
              f"({truth_requests:,} requests); {runs} runs per arm; auto max "
              f"{max_requests:,}")  # fmt: skip
        for label, factor in ARMS:
            budget = {"p99": f"{truth / factor * 1000:.3f}ms"}
            print(f"  p99 {label}: budget {budget['p99']}")
            print("\n".join(one_arm(emu, "latency", budget, runs, max_requests)))
        for i, (label, factor) in enumerate(ARMS):
            print(f"  error_rate {label}: true {ERROR_RATE * factor:.2%}, budget 1%")
            lines = one_arm(emu, f"errors{i}", {"error_rate": "1%"}, runs, max_requests)
            print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per arm (default 100)")
    parser.add_argument("--truth-requests", type=int, default=20_000)
    parser.add_argument("--max-requests", type=int, default=MAX_REQUESTS, help="auto's maximum")
    parser.add_argument("--latency", default=LATENCY, help=f"the p99 arms' function ({LATENCY})")
    parser.add_argument("--simulate", action="store_true", help="the sequential test alone")
    args = parser.parse_args()
    if args.simulate:
        simulate(args.runs)
    else:
        emulator_arms(args.runs, args.truth_requests, args.max_requests, args.latency)


if __name__ == "__main__":
    main()
