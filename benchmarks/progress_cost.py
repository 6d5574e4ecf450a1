"""What the progress line costs the engine: CPU per request with and without it.

The same open-model run (``rate``: a fixed number of requests at a fixed rate, so both
variants send the same load) against a fast emulator function, alternating runs with and
without the progress line redrawn every 0.5 s (to /dev/null, as on a terminal). The CPU is
the run's own figure (``run_info.cpu_s``: the process's user+sys time over the run, so the
reader thread's work is in it), divided by the requests.

    python benchmarks/progress_cost.py [--repeats 5] [--rps 500] [--duration 8]
"""

from __future__ import annotations

import argparse
import statistics

from pytest_lambda_slo import Rate
from pytest_lambda_slo._load.api import measure
from pytest_lambda_slo._pytest.progress import ProgressLine
from pytest_lambda_slo.emulator import Emulator


def one_run(
    url: str, rps: float, duration: float, progress: ProgressLine | None
) -> tuple[float, int]:
    shape = Rate(rps=rps, duration=duration, timeout=10.0)
    if progress is None:
        m, info = measure(url, shape)
    else:
        with progress.watch("bench", 1) as engines:
            m, info = measure(url, shape, engines=engines)
    return info.cpu_s, m.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rps", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    with open("/dev/null", "w") as sink, Emulator(["fast:duration=2ms,init=0ms"]) as emu:
        line = ProgressLine(sink, isatty=True, width=lambda: 120, column=lambda: 0)
        url = emu.function_url("fast")
        one_run(url, args.rps, 1.0, None)  # warm the environments and the imports
        per_request: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(args.repeats):
            for name, progress in (("without", None), ("with", line)):
                cpu, count = one_run(url, args.rps, args.duration, progress)
                per_request[name].append(cpu / count * 1e6)
    print(f"{args.repeats} runs each of {args.rps:g} req/s for {args.duration:g}s "
          f"({int(args.rps * args.duration)} requests), CPU per request (us):")  # fmt: skip
    print("| progress line | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in per_request.items():
        print(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )


if __name__ == "__main__":
    main()
