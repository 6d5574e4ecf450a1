"""Locust user for benchmarks/harness.py: a fixed number of requests per user, like hey -n/-c.

Run by the harness as ``locust -f benchmarks/bench_locustfile.py --headless -u C -r C
--host URL --only-summary``, with the environment variables below. Every user waits until
spawning is complete (a start barrier, so Locust's spawn ramp does not thin out the load),
sends BENCH_PER_USER requests back to back (FastHttpUser, no wait time), and stops. When the
last user is done, Locust's own stats (the figures its summary prints) and this process's
CPU time are written as JSON to BENCH_RESULT and Locust is told to quit.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from gevent.event import Event
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

PATH = os.environ.get("BENCH_PATH", "/")
USERS = int(os.environ.get("BENCH_USERS", "1"))
PER_USER = int(os.environ.get("BENCH_PER_USER", "1"))
RESULT = os.environ.get("BENCH_RESULT", "")

_started = Event()
_state: dict[str, Any] = {"done": 0, "cpu0": 0.0, "t_release": 0.0}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    _state["cpu0"] = _cpu()


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    _state["t_release"] = time.perf_counter()
    _started.set()


def _finish(environment: Any) -> None:
    total = environment.stats.total
    result = {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "run_cpu_s": _cpu() - _state["cpu0"],
        "run_wall_s": time.perf_counter() - _state["t_release"],
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "max_ms": total.max_response_time,
        "locust_rps": total.total_rps,
    }
    if RESULT:
        with open(RESULT, "w") as fh:
            json.dump(result, fh)
    environment.runner.quit()


class BenchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def burst(self) -> None:
        _started.wait()
        for _ in range(PER_USER):
            self.client.get(PATH)
        _state["done"] += 1
        if _state["done"] == USERS:
            # quit() stops every user greenlet, this one included: run it from another one.
            gevent.spawn(_finish, self.environment)
        raise StopUser()
