"""Simulated error rates of the verdict methods (the method sheet's sections 5 and 6).

Section 5: the anytime-valid sequential test on a p99 budget (exceedance limit 1%), waves
of 100 requests, n_max 5,000, pass 95% / fail 99%; the true p99 10% under, at and 10% over
the budget for lognormal(sigma 0.5) latency, and a share 0.9x / 1.1x the limit.
Section 6: clustered exceedances (a two-state Markov chain whose slow state has 20% slow
requests; stationary share at the limit), 3,000 requests in 30 batches, judged by the
fixed-n Clopper-Pearson bounds with and without the design-effect correction.
Every figure printed is simulated (seeded; numpy's PCG64).

    python benchmarks/verdict_simulation.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_lambda_slo._stats.binomial import judge_rate
from pytest_lambda_slo._stats.clustering import clustered_design_effect
from pytest_lambda_slo._stats.sequential import SequentialTest

TB = 0.01
WAVE = 100
N_MAX = 5000


def lognormal_share(factor: float, sigma: float = 0.5) -> float:
    """P(latency > budget) when the true p99 is ``factor`` times the budget."""
    return float(stats.norm.sf(stats.norm.ppf(0.99) - math.log(factor) / sigma))


def sequential_arm(theta: float, runs: int, seed: int) -> tuple[dict[str, int], float]:
    rng = np.random.default_rng(seed)
    cumulative = rng.binomial(WAVE, theta, size=(runs, N_MAX // WAVE)).cumsum(axis=1)
    ended = {"pass": 0, "fail": 0, "inconclusive": 0}
    used = 0
    for row in cumulative:
        test = SequentialTest(TB, pass_confidence=0.95, fail_confidence=0.99, n_max=N_MAX)
        step = "continue"
        for wave, m in enumerate(row, start=1):
            step = test.update(wave * WAVE, int(m))
            if step != "continue":
                break
        ended[step] += 1
        used += test.n
    return ended, used / runs


def markov_batches(rng: np.random.Generator, batches: int = 30, size: int = 100) -> list:
    """Exceedances from a two-state chain: slow state 20% slow, fast state chosen so the
    stationary share is TB; the slow state lasts 50 requests on average."""
    p_slow, stay_slow = 0.20, 1 - 1 / 50
    frac_slow = 0.02  # 2% of the time in the slow state
    p_fast = (TB - frac_slow * p_slow) / (1 - frac_slow)
    enter_slow = (1 - stay_slow) * frac_slow / (1 - frac_slow)
    slow = rng.random() < frac_slow
    out = []
    for _ in range(batches):
        m = 0
        for _ in range(size):
            m += rng.random() < (p_slow if slow else p_fast)
            slow = rng.random() < (stay_slow if slow else enter_slow)
        out.append((size, m))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    print(f"Section 5: sequential test, {args.runs} runs per arm (simulated)")
    print("  arm                  theta     PASS   FAIL   INCONCL  mean n")
    arms = [
        ("p99 10% under budget", lognormal_share(0.9)),
        ("share 0.9 x limit", 0.9 * TB),
        ("at the budget", TB),
        ("share 1.1 x limit", 1.1 * TB),
        ("p99 10% over budget", lognormal_share(1.1)),
    ]
    for seed, (name, theta) in enumerate(arms, start=100):
        ended, mean_n = sequential_arm(theta, args.runs, seed)
        row = "  ".join(f"{ended[k] / args.runs:6.1%}" for k in ("pass", "fail", "inconclusive"))
        print(f"  {name:20s} {theta:.5f}  {row}  {mean_n:6.0f}")
    print(f"Section 6: clustered exceedances at the budget, {args.runs} runs (simulated)")
    rng = np.random.default_rng(7)
    tallies = {"iid": {"pass": 0, "fail": 0}, "corrected": {"pass": 0, "fail": 0}}
    effects = []
    for _ in range(args.runs):
        batches = markov_batches(rng)
        n = sum(b for b, _ in batches)
        m = sum(x for _, x in batches)
        d = clustered_design_effect(batches)
        effects.append(d)
        levels = {"limit": TB, "pass_confidence": 0.95, "fail_confidence": 0.99}
        for label, effect in (("iid", 1.0), ("corrected", d)):
            state = judge_rate(n, m, design_effect=effect, **levels).state
            if state in tallies[label]:
                tallies[label][state] += 1
    for label, counts in tallies.items():
        print(
            f"  {label:10s} false FAIL {counts['fail'] / args.runs:6.1%}  "
            f"PASS {counts['pass'] / args.runs:6.1%}"
        )
    print(f"  median design effect {float(np.median(effects)):.2f}")


if __name__ == "__main__":
    main()
