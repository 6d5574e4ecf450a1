"""The engine's per-request Python path alone: one closed-model cycle per canned response.

No network and no server: ``--connections`` HttpConnections of a real burst engine
(``engine_for(Burst(...))``) sit on a transport whose ``write`` does nothing, and each
``data_received(RESPONSE)`` runs one whole request cycle of the closed model as a real run
does: parse, stop the clock, classify, record, claim the next request and write it.

Two figures:

- CPU per request (``time.process_time``, best of 5 passes): noisy on a shared machine;
- with ``--syscalls``: the same CPU figure with two system calls per request (each write
  goes through a Unix socket pair: a send and a recv), printed beside those calls' own cost
  in a loop of their own, to see what interleaving kernel work does to the same Python;
- with ``--instructions``: instructions per request, counted by valgrind's cachegrind as
  the difference between two runs of this script (so start-up cancels out). It does not
  depend on what else runs on the machine, so two revisions compare within a fraction of
  a percent where the CPU figures scatter by 10-20 %.

    python benchmarks/engine_cycle.py [--requests 100000] [--connections 500]
    python benchmarks/engine_cycle.py --instructions [--code DIR]   # DIR: a package snapshot
    python benchmarks/engine_cycle.py --syscalls    # each write through a Unix socket pair
        (a snapshot: mkdir DIR && git archive REV pytest_lambda_slo | tar -x -C DIR)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CODE_ENV = "ENGINE_CYCLE_CODE"
sys.path.insert(0, os.environ.get(CODE_ENV) or str(Path(__file__).resolve().parent.parent))

# A Function URL's answer as the emulator sends it (the shape of a real one).
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n"
    b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
    b"x-amzn-requestid: 0f6f5b8e-1c4b-4d36-9d0e-3a0c9d4e5f60\r\n\r\n"
    b'{"ok": true, ""}'
)


class NullTransport:
    """A transport that takes every write and never closes."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class SocketPairTransport(NullTransport):
    """A transport whose write sends the request into a Unix socket pair and reads it back
    at the other end: two system calls per request, no network stack and no server."""

    def __init__(self) -> None:
        self.near, self.far = socket.socketpair()

    def write(self, data: bytes) -> None:
        self.near.send(data)
        self.far.recv(65536)

    def close(self) -> None:
        self.near.close()
        self.far.close()


async def cycle(requests: int, connections: int, passes: int, syscalls: bool = False) -> float:
    """Best CPU microseconds per request over ``passes`` passes of ``requests`` responses."""
    # Imported lazily: main() puts the package of --code on sys.path first.
    from pytest_lambda_slo import Burst, HttpTarget
    from pytest_lambda_slo._http.transport import HttpConnection
    from pytest_lambda_slo._load.drivers import engine_for

    loop = asyncio.get_running_loop()
    per_pass = max(1, requests // passes // connections) * connections
    engine: Any = engine_for(
        Burst(requests=per_pass * passes + connections, concurrency=connections),
        HttpTarget("http://127.0.0.1:9/").prepare(),
    )
    # What drive() and run() set up before the first wave (no connection is dialled).
    engine._remaining = engine.part.requests
    engine._plain_ok = getattr(engine.prepared, "plain_ok_statuses", None)
    engine._halted = False
    engine._tasks = set()
    engine._finished = loop.create_future()
    engine._active = connections
    engine._released_ns = time.perf_counter_ns()
    engine.measurements.mark_release(engine._released_ns, time.time())
    engine._wave.decided = engine._wave.passed = True
    feeds = []
    transports: list[NullTransport] = []
    for _ in range(connections):
        lane = engine.new_slot()
        engine.slots.append(lane)
        conn = HttpConnection(loop, 1 << 20, engine.dialer.deadlines, lean=engine.dialer.lean)
        transport = SocketPairTransport() if syscalls else NullTransport()
        transports.append(transport)
        conn.connection_made(transport)  # type: ignore[arg-type]
        lane.conn = conn
        engine._next(lane)
        feeds.append(conn.data_received)
    order = feeds * (per_pass // connections)
    best = float("inf")
    for _ in range(passes):
        t0 = time.process_time()
        for feed in order:
            feed(RESPONSE)
        best = min(best, (time.process_time() - t0) / len(order) * 1e6)
    engine.dialer.deadlines.stop()
    for transport in transports:
        transport.close()
    expected = len(order) * passes
    if engine.measurements.ok != expected:
        raise SystemExit(f"{engine.measurements.ok} responses recorded of {expected}")
    return best


def socket_pair_alone(requests: int, passes: int) -> float:
    """Best CPU microseconds per send-and-recv of one request through a Unix socket pair."""
    pair = SocketPairTransport()
    best = float("inf")
    for _ in range(passes):
        t0 = time.process_time()
        for _ in range(requests // passes):
            pair.write(RESPONSE)
        best = min(best, (time.process_time() - t0) / (requests // passes) * 1e6)
    pair.close()
    return best


def instructions(args: argparse.Namespace) -> float:
    """Instructions per request: two cachegrind runs of this script, their difference."""
    counts = []
    sizes = (args.requests // 5, args.requests)
    for requests in sizes:
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        cmd += [sys.executable, __file__, "--requests", str(requests), "--passes", "1"]
        cmd += ["--connections", str(args.connections)]
        env = {**os.environ, **({CODE_ENV: args.code} if args.code else {})}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        if found is None:
            raise SystemExit(f"no instruction count in valgrind's output: {out.stderr[-300:]}")
        counts.append(int(found.group(1).replace(",", "")))
    per_pass = [max(1, n // args.connections) * args.connections for n in sizes]
    return (counts[1] - counts[0]) / (per_pass[1] - per_pass[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count with cachegrind")
    parser.add_argument("--code", help="a directory holding the package to measure")
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="each write also sends the request through a Unix socket pair (CPU figure only)",
    )
    args = parser.parse_args()
    if args.instructions and args.syscalls:
        parser.error("--syscalls: a CPU figure only; cachegrind does not count the kernel")
    if args.instructions:
        args.requests = min(args.requests, 25_000)  # valgrind runs about 50x slower
        print(f"{instructions(args):.0f} instructions per request")
        return 0
    if args.code:
        sys.path.insert(0, args.code)
    import uvloop  # lazy: only the CPU figure runs a loop here

    best = uvloop.run(cycle(args.requests, args.connections, args.passes, args.syscalls))
    print(f"{best:.2f} us of CPU per request (best of {args.passes} passes)")
    if args.syscalls:
        print(f"{socket_pair_alone(args.requests, args.passes):.2f} us of CPU per request for "
              "the socket pair's send and recv alone (best of the same passes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
