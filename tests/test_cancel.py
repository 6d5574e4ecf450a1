"""Ctrl-C in a real pytest run: the burst stops, partial results are printed, nothing is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_lambda_slo.emulator import Emulator

# The inner session: one load test, and the hook that prints what was measured before the
# interrupt (what the plugin should print; see docs/engine.md).
INNER_TEST = textwrap.dedent(
    """
    import os
    from pytest_lambda_slo._load.api import run_burst

    def test_burst():
        run_burst(os.environ["SLO_URL"], requests=40, concurrency=10, timeout=60,
                  workers=int(os.environ["SLO_WORKERS"]))
    """
)
# The same load through the plugin's fixture: the plugin itself prints the partial run.
INNER_FIXTURE_TEST = textwrap.dedent(
    """
    import os

    def test_burst(lambda_slo):
        lambda_slo.burst(os.environ["SLO_URL"], requests=40, concurrency=10, timeout=60,
                         workers=int(os.environ["SLO_WORKERS"]))
    """
)
INNER_CONFTEST = textwrap.dedent(
    """
    def pytest_keyboard_interrupt(excinfo):
        aborted = excinfo.value.__cause__
        m, info = aborted.measurements, aborted.run_info
        print(f"\\nlambda-slo interrupted: stopped={info.stopped} workers={info.workers} "
              f"measured={m.count} unsent={m.unsent} kinds={dict(sorted(m.error_kinds.items()))}",
              flush=True)
    """
)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    # Handlers that run far longer than the test: load stays in flight until the interrupt.
    # One function per case, so handlers left running by one case do not count in the next.
    stuck = [
        f"stuck{w}{api}:duration=120s,timeout=900s" for w in (1, 2) for api in ("engine", "fixture")
    ]
    with Emulator(stuck) as emulator:
        yield emulator


def _established(emu: Emulator) -> int:
    """Client connections the emulator still holds."""
    conns = psutil.Process(emu.pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.laddr.port == emu.port and c.status == "ESTABLISHED")


@pytest.mark.parametrize("api", ["engine", "fixture"])
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_burst_prints_partials_and_leaves_nothing(
    emu: Emulator, tmp_path: Path, workers: int, api: str
) -> None:
    stuck = f"stuck{workers}{api}"
    if api == "engine":
        (tmp_path / "test_inner.py").write_text(INNER_TEST)
        (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    else:
        (tmp_path / "test_inner.py").write_text(INNER_FIXTURE_TEST)
    env = {
        **os.environ,
        "SLO_URL": emu.function_url(stuck),
        "SLO_WORKERS": str(workers),
        "PYTHONWARNINGS": "error::ResourceWarning",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    # Only our plugin in the inner session, and nothing telling it that it runs under xdist.
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider",
         "-p", "pytest_lambda_slo.plugin", str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        # Wait (bounded) until all ten requests are in flight at the emulator.
        for _ in range(600):
            if emu.function_stats(stuck)["concurrency"] >= 10 or proc.poll() is not None:
                break
            time.sleep(0.05)
        if emu.function_stats(stuck)["concurrency"] != 10:
            proc.kill()
            pytest.fail(f"load never reached the emulator:\n{proc.communicate()[0]}")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == (0 if workers == 1 else workers)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, out  # pytest's "interrupted"
    # Every in-flight request was counted as cancelled, the rest as never sent.
    if api == "engine":
        assert (
            f"lambda-slo interrupted: stopped=cancelled workers={workers} measured=10 "
            "unsent=30 kinds={'cancelled': 10}" in out
        ), out
    else:  # the plugin's own report of the interrupted run, without --lambda-slo-report
        for line in (
            "lambda-slo report",
            "  INTERRUPTED (Ctrl-C): 10 requests measured, 30 not sent",
            "  requests: 10, ok: 0, throttled: 0 (0.0%), errors: 10 (100.0%)",
            "  not sent (deadline or cap): 30",
            "  error kinds: cancelled: 10",
        ):
            assert line in out, out
    assert "KeyboardInterrupt" in out
    assert "ResourceWarning" not in out and "Exception ignored" not in out, out
    # No worker process survived, and the emulator sees every connection closed.
    assert not [child for child in children if child.is_running()]
    for _ in range(200):
        if _established(emu) == 0:
            break
        time.sleep(0.05)
    assert _established(emu) == 0
