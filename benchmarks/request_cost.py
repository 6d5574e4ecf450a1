"""The engine's CPU per request for what requests carry: fixed, per-request JSON, signed, checked.

    python benchmarks/request_cost.py [--requests 20000] [--concurrency 20] [--rounds 3]

Side by side in one run against the emulator (a zero-duration function, loopback), each
mode a burst on one engine, rounds interleaved, medians printed:

    fixed          HttpTarget(url, method="POST", json={"order": 1})
    json           json=lambda i: {"order": i}          (each body encoded ahead of the send)
    json+sigv4     the same plus auth=AwsIam(...)        (each body signed ahead of the send)
    fixed+check    fixed plus check=lambda r: r.status_code == 200 and "hello" in r.text

"during" is the engine's CPU from the release to the end (RunInfo.cpu_s) per request; it
includes the chunks built during the run. "build" is the CPU of building requests before
the release (PreparedHttp.begin) per request. Then the CPU of classifying one response
with and without the check, apart from the network. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_lambda_slo import AwsIam, Burst, HttpTarget
from pytest_lambda_slo._load.drivers import engine_for
from pytest_lambda_slo._load.runner import run_on_own_loop
from pytest_lambda_slo.emulator import Emulator

KEY = ("AKIDBENCHMARK0000001", "benchmark-secret-key")


def measure(target: HttpTarget, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU us per request during the run, CPU us per request building before it)."""
    shape = Burst(requests=requests, concurrency=concurrency)
    prepared: Any = target.prepare()
    engine = engine_for(shape, prepared)
    begin = getattr(prepared, "begin", None)
    built_s = 0.0
    if begin is not None:
        t0 = time.process_time()
        begin(0, 1, requests)  # what Engine.run does first; done here to time it apart
        built_s = time.process_time() - t0
        prepared.begin = lambda *args: None  # already bound: the run must not build again
    measurements, info = run_on_own_loop(engine)
    assert measurements.ok == requests, measurements.to_dict()["error_kinds"]
    return info.cpu_s / requests * 1e6, built_s / requests * 1e6


def classify_cost(check: Callable[[Any], Any] | None, n: int = 200_000) -> float:
    """CPU us per classify of a 200 response, with or without a check (no network)."""
    from pytest_lambda_slo._http.response import Headers, Response

    prepared: Any = HttpTarget("http://127.0.0.1:9/url/zero/", check=check).prepare()
    response = Response(200, Headers([(b"content-type", b"text/plain")]), b"hello")
    t0 = time.process_time()
    for _ in range(n):
        prepared.classify(response, None, 1000)
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fn = "zero:duration=0ms,init=0ms"
    with Emulator([fn]) as plain, Emulator([fn], require_sigv4=KEY) as signed:
        iam = AwsIam(service="lambda", region="us-east-1", credentials=KEY)
        modes: dict[str, Callable[[], HttpTarget]] = {
            "fixed": lambda: HttpTarget(plain.function_url("zero"), method="POST",
                                        json={"order": 1}),
            "json": lambda: HttpTarget(plain.function_url("zero"), method="POST",
                                       json=lambda i: {"order": i}),
            "json+sigv4": lambda: HttpTarget(signed.function_url("zero"), method="POST",
                                             json=lambda i: {"order": i}, auth=iam),
            "fixed+check": lambda: HttpTarget(
                plain.function_url("zero"), method="POST", json={"order": 1},
                check=lambda r: r.status_code == 200 and "hello" in r.text,
            ),
        }  # fmt: skip
        during: dict[str, list[float]] = {name: [] for name in modes}
        built: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.rounds):
            for name, make in modes.items():
                cpu, build = measure(make(), args.requests, args.concurrency)
                during[name].append(cpu)
                built[name].append(build)
    plain_us = classify_cost(None)
    checked_us = classify_cost(lambda r: r.status_code == 200 and "hello" in r.text)
    print(f"classify of a 200: {plain_us:.2f} us without a check, {checked_us:.2f} us with it")
    print(f"{args.requests} requests, {args.concurrency} in flight, median of {args.rounds}")
    print(f"{'mode':<14}{'during us/req':>15}{'build us/req':>14}{'total':>9}")
    for name in modes:
        cpu, build = statistics.median(during[name]), statistics.median(built[name])
        print(f"{name:<14}{cpu:>15.1f}{build:>14.1f}{cpu + build:>9.1f}")


if __name__ == "__main__":
    main()
