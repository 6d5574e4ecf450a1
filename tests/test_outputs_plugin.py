"""The CI outputs as users meet them, through pytester: baselines, JUnit, job summary, artifacts.

The regression gate is statistical: the fast and the 30% slower function are lognormal
with a 200 ms and a 260 ms median (sigma 0.3, no init time) and each run has 3,000
requests, so the p99 shift (about 30%) is far past the 10% threshold with a tiny p (see
docs/reports.md). Two runs of the same function differ by sampling noise (the p99's
standard error is about 2% here) and by the machine's own hiccups, which at 200 ms
stay well under the 10% threshold even on a busy 2-core machine (at a 50 ms median they
did not: a busy machine added 20% to a p99).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

# Imported here, before any in-process pytester run: those runs drop the modules they
# imported afterwards, and numpy (under scipy) cannot be imported twice in one process.
from pytest_lambda_slo._pytest import artifacts  # noqa: F401
from pytest_lambda_slo._pytest.progress import percentile_of, wanted
from pytest_lambda_slo.emulator import Emulator

pytestmark = pytest.mark.filterwarnings("error")
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")

GATE_TEST = """
import os

def test_api(lambda_slo):
    lambda_slo.burst(os.environ["API_URL"], requests=3000, concurrency=150)
"""


@pytest.fixture(scope="module")
def fast() -> Iterator[Emulator]:
    functions = [f"{name}:duration=lognormal(200ms,0.3),init=0ms" for name in ("api", "other")]
    with Emulator(functions) as emu:
        yield emu


@pytest.fixture(scope="module")
def slower() -> Iterator[Emulator]:
    # The same function name, so the same URL apart from the loopback port: a redeploy.
    with Emulator(["api:duration=lognormal(260ms,0.3),init=0ms"]) as emu:
        yield emu


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def test_save_then_compare_fails_the_regressed_test_naming_baseline_now_and_shift(
    pytester: pytest.Pytester, fast: Emulator, slower: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy(monkeypatch)
    pytester.makepyfile(test_gate=GATE_TEST)
    gate = ("--lambda-slo-compare=base", "--lambda-slo-compare-fail=p99:10%")

    monkeypatch.setenv("API_URL", fast.function_url("api"))
    saved = pytester.runpytest(*ISOLATED, "--lambda-slo-save=base")
    saved.assert_outcomes(passed=1)
    path = pytester.path / ".lambda_slo" / "0001_base.json"
    saved.stdout.fnmatch_lines([f"*1 run(s) saved as baseline '0001_base': {path}"])
    document = json.loads(path.read_text())
    header = document["saved"]
    assert header["name"] == "base" and header["commit"] is None  # pytester: no git repo
    assert header["python"] and header["date"] and "plugin_version" in header
    assert document["machine"]["python"] == header["python"]
    [run] = document["bursts"]
    assert run["test_id"] == "test_gate.py::test_api" and run["count"] == 3000
    assert run["fingerprint"]["url"].endswith("/url/api/")

    # A deploy made the function 30% slower: the gate fails the test, in its call phase.
    monkeypatch.setenv("API_URL", slower.function_url("api"))
    regressed = pytester.runpytest(*ISOLATED, *gate)
    regressed.assert_outcomes(failed=1)  # failed, not an error in teardown
    out = regressed.stdout.str()
    assert "regressed against the baseline .lambda_slo/0001_base.json:" in out, out
    shift = re.search(r"p99:10%: p99 (\S+) -> (\S+) \(\+\S+, \+(\d+\.\d)%, p=(\S+)\)", out)
    assert shift, out
    assert float(shift.group(3)) > 10.0 and float(shift.group(4)) < 0.01
    assert "is worse than the threshold and significant" in out
    regressed.stdout.fnmatch_lines(
        ["*lambda-slo baseline comparison*", "FAIL test_gate.py::test_api"]
    )

    # The same function as the baseline's: the gate passes.
    monkeypatch.setenv("API_URL", fast.function_url("api"))
    same = pytester.runpytest(*ISOLATED, *gate)
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["ok   test_gate.py::test_api", "     p99 * -> *"])

    # A baseline of another function (same test id) is reported, not compared.
    monkeypatch.setenv("API_URL", fast.function_url("other"))
    other = pytester.runpytest(*ISOLATED, *gate)
    other.assert_outcomes(passed=1)
    other.stdout.fnmatch_lines(
        ["---- test_gate.py::test_api", "     not compared: the target differs*/url/other/*"]
    )


def test_autosave_names_and_a_bare_compare_takes_the_latest(
    pytester: pytest.Pytester, fast: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy(monkeypatch)
    monkeypatch.setenv("API_URL", fast.function_url("api"))
    pytester.makepyfile(
        test_small="import os\n\ndef test_api(lambda_slo):\n"
        "    lambda_slo.burst(os.environ['API_URL'], requests=20, concurrency=5)\n"
    )
    pytester.makeini("[pytest]\nlambda_slo_storage = baselines\n")
    pytester.runpytest(*ISOLATED, "--lambda-slo-autosave").assert_outcomes(passed=1)
    pytester.runpytest(*ISOLATED, "--lambda-slo-save=second").assert_outcomes(passed=1)
    names = sorted(p.name for p in (pytester.path / "baselines").iterdir())
    assert re.fullmatch(r"0001_unversioned_\d{8}_\d{6}\.json", names[0]), names
    assert names[1] == "0002_second.json"
    result = pytester.runpytest(*ISOLATED, "--lambda-slo-compare")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["baseline: baselines/0002_second.json"])


def test_junitxml_carries_the_properties_and_the_job_summary_gets_the_table(
    pytester: pytest.Pytester, fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy(monkeypatch)
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("FAST_URL", fresh_emulator.function_url("fast"))
    pytester.makepyfile(
        test_ci="""
        import os
        import pytest
        from pytest_lambda_slo import HttpTarget

        @pytest.mark.lambda_slo(p99="5s", error_rate="0%")
        def test_api(lambda_slo):
            target = HttpTarget(os.environ["FAST_URL"], cold_start="x-cold-start")
            lambda_slo.burst(target, requests=300, concurrency=6)  # a p99 needs 299 to pass

        @pytest.mark.lambda_slo(p99="1us")
        def test_tight(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests=10, concurrency=2)
        """
    )
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest(*ISOLATED, f"--junitxml={xml}")
    result.assert_outcomes(passed=1, failed=1)
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_api"].iter("property")}
    assert props["lambda_slo.requests"] == "300"
    assert float(props["lambda_slo.p50_ms"]) > 0 and float(props["lambda_slo.p99_ms"]) > 0
    assert props["lambda_slo.cold_starts"] == "6"  # one per concurrent environment
    assert props["lambda_slo.throttles"] == "0" and props["lambda_slo.errors"] == "0"
    assert props["lambda_slo.verdict.p99"] == "PASS"
    assert props["lambda_slo.verdict.p99.limit_ms"] == "5000"
    assert props["lambda_slo.verdict.error_rate"] == "PASS"
    tight = {p.get("name"): p.get("value") for p in cases["test_tight"].iter("property")}
    assert tight["lambda_slo.verdict.p99"] == "FAIL"  # a failed test carries them too

    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never overwritten
    assert "| test | verdicts | p99 | cold starts | throttle share | baseline p99 delta |" in text
    assert re.search(
        r"\| test_ci.py::test_api \| PASS \(3/3 pass\) \| \S+ \| 6 \| 0.0% \| - \|", text
    )
    assert "| test_ci.py::test_tight | FAIL: p99 " in text
    result.stdout.fnmatch_lines(["lambda-slo: job summary table appended to $GITHUB_STEP_SUMMARY"])


def _read_hlog(path: Path) -> int:
    reader = HistogramLogReader(str(path), HdrHistogram(1, 60_000_000, 3))
    total = 0
    try:
        while (histogram := reader.get_next_interval_histogram()) is not None:
            total += histogram.get_total_count()
    finally:
        reader.close()
    return total


def test_every_artifact_is_written_for_a_failing_session(
    pytester: pytest.Pytester, fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy(monkeypatch)
    monkeypatch.setenv("FAST_URL", fresh_emulator.function_url("fast"))
    pytester.makepyfile(
        test_fail="""
        import os
        import pytest

        @pytest.mark.lambda_slo(p99="1us")
        def test_tight(lambda_slo):
            lambda_slo.burst(os.environ["FAST_URL"], requests=50, concurrency=5)
        """
    )
    result = pytester.runpytest(
        *ISOLATED, "--lambda-slo-html=out/r.html", "--lambda-slo-hlog=out/hlog",
        "--lambda-slo-json=out/r.json", "--lambda-slo-save=failing",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    html = (pytester.path / "out" / "r.html").read_text()
    assert "test_fail.py::test_tight" in html and "<svg" in html
    [hlog] = (pytester.path / "out" / "hlog").iterdir()
    served = json.loads((pytester.path / "out" / "r.json").read_text())["bursts"][0]["ok"]
    assert _read_hlog(hlog) == served == 50
    assert (pytester.path / ".lambda_slo" / "0001_failing.json").is_file()


INTERRUPTED_TEST = textwrap.dedent(
    """
    import os

    def test_stuck(lambda_slo):
        lambda_slo.burst(os.environ["SLO_URL"], requests=40, concurrency=10, timeout=60)
    """
)


def test_every_artifact_is_written_for_an_interrupted_session(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INTERRUPTED_TEST)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "GITHUB_STEP_SUMMARY"):
        env.pop(name, None)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    with Emulator(["stuck:duration=120s,timeout=900s"]) as emu:
        env["SLO_URL"] = emu.function_url("stuck")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "pytest_lambda_slo.plugin", "test_inner.py", "--lambda-slo-html=r.html",
             "--lambda-slo-hlog=hlog", "--lambda-slo-save=cut"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            for _ in range(600):  # bounded: until the ten requests are in flight
                if emu.function_stats("stuck")["concurrency"] >= 10 or proc.poll() is not None:
                    break
                time.sleep(0.05)
            assert emu.function_stats("stuck")["concurrency"] == 10
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 2, out  # interrupted
    assert "lambda-slo: HTML report written to r.html" in out, out
    assert "INTERRUPTED (Ctrl-C)" in (tmp_path / "r.html").read_text()
    [hlog] = (tmp_path / "hlog").iterdir()
    assert hlog.suffix == ".hlog"
    saved = json.loads((tmp_path / ".lambda_slo" / "0001_cut.json").read_text())
    assert saved["saved"]["interrupted"] is True
    [run] = saved["bursts"]
    assert run["count"] == 10 and run["unsent"] == 30 and run["extras"]["interrupted"]


@pytest.mark.parametrize(
    ("args", "saved", "message"),
    [
        (["--lambda-slo-compare=base", "--lambda-slo-compare-fail=p99:ten"], None,
         "--lambda-slo-compare-fail='p99:ten' is not valid; use METRIC:N%*"),
        (["--lambda-slo-compare=base", "--lambda-slo-compare-fail=p42:10%"], None,
         "--lambda-slo-compare-fail='p42:10%' is not valid; use METRIC:N%*"),
        (["--lambda-slo-compare-fail=p99:10%"], None,
         "--lambda-slo-compare-fail needs a baseline: add --lambda-slo-compare*"),
        (["--lambda-slo-compare=base"], "{not json",
         "--lambda-slo-compare: */.lambda_slo/0001_base.json: not valid JSON*"),
        (["--lambda-slo-compare=base"], '{"format": "pytest-lambda-slo/9", "bursts": []}',
         "--lambda-slo-compare: */0001_base.json: format 'pytest-lambda-slo/9' is newer than*"),
        (["--lambda-slo-compare=nothing"], None,
         "--lambda-slo-compare='nothing' matches no file and no saved baseline in *"),
        (["--lambda-slo-save=a/b"], None, "--lambda-slo-save='a/b' is not valid; use letters*"),
        (["--lambda-slo-save=x", "--lambda-slo-autosave"], None, "*exclude each other"),
        (["--lambda-slo-hlog=test_x.py"], None, "--lambda-slo-hlog='test_x.py' cannot be written*"),
    ],
)  # fmt: skip
def test_bad_output_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, args: list[str], saved: str | None, message: str
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    if saved is not None:
        (pytester.path / ".lambda_slo").mkdir()
        (pytester.path / ".lambda_slo" / "0001_base.json").write_text(saved)
    result = pytester.runpytest(*ISOLATED, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


# --- the progress line ------------------------------------------------------------------------
PROGRESS_TEST = """
import os

def test_rate(lambda_slo):
    lambda_slo.rate(os.environ["FAST_URL"], rps=100, duration="3.5s")
"""


def _run_inner(
    tmp_path: Path, url: str, *, tty: bool, extra_env: dict[str, str], args: list[str]
) -> str:
    (tmp_path / "test_progress.py").write_text(PROGRESS_TEST)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))
    }
    for name in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(extra_env, FAST_URL=url, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
               "-p", "pytest_lambda_slo.plugin", "test_progress.py", *args]  # fmt: skip
    if not tty:
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("tty", "extra_env", "args", "shown"),
    [
        (True, {}, [], "in place"),
        (False, {}, [], "off"),
        (True, {"CI": "true"}, [], "off"),
        (False, {"CI": "true"}, ["--lambda-slo-progress"], "lines"),
    ],
)
def test_progress_line_on_a_terminal_only_unless_forced(
    tmp_path: Path,
    emulator: Emulator,
    tty: bool,
    extra_env: dict[str, str],
    args: list[str],
    shown: str,
) -> None:
    out = _run_inner(
        tmp_path, emulator.function_url("fast"), tty=tty, extra_env=extra_env, args=args
    )
    lines = re.findall(
        r"lambda-slo \d+\.\ds sent [\d,]+ [\d,]+/s in flight \d+ p99 \S+ throttled 0 errors 0", out
    )
    if shown == "off":
        assert not lines and "in flight" not in out, out
    elif shown == "in place":
        assert lines, out
        assert "\r\x1b[K\x1b[1A" in out  # cleared, and the cursor back on pytest's line
        assert "\x1b[K" in out and out.count("\n" + lines[0]) == 0  # redrawn with \r, no newlines
    else:
        assert lines and "\x1b[" not in "".join(lines), out
        assert all(f"{line}\n" in out for line in lines)


def test_progress_helpers() -> None:
    assert wanted(False, True, {}) and not wanted(False, True, {"CI": "1"})
    assert not wanted(False, False, {}) and wanted(True, False, {"CI": "1"})
    from collections import Counter

    buckets = Counter({1000: 98, 5000: 1, 9000: 1})
    assert percentile_of(buckets, 50) == 1000
    assert percentile_of(buckets, 99) == 5000 and percentile_of(buckets, 100) == 9000
    assert percentile_of(Counter(), 99) is None


def test_saved_invoke_runs_carry_the_deployed_code_and_a_redeploy_is_compared_and_named(
    pytester: pytest.Pytester, fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy(monkeypatch)
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fakeSecretKeyDoNotLeak0123456789abcdefgh")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(pytester.path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(pytester.path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("EMULATOR_URL", fresh_emulator.url)
    pytester.makepyfile(
        test_invoke_gate="""
        import os
        from pytest_lambda_slo import InvokeTarget

        def test_fn(lambda_slo):
            url = os.environ["EMULATOR_URL"]
            target = InvokeTarget("fast", region="us-east-1", endpoint_url=url)
            lambda_slo.burst(target, requests=20, concurrency=4)
        """
    )
    pytester.runpytest(*ISOLATED, "--lambda-slo-save=base").assert_outcomes(passed=1)
    saved = json.loads((pytester.path / ".lambda_slo" / "0001_base.json").read_text())
    fingerprint = saved["bursts"][0]["fingerprint"]
    # What GetFunctionConfiguration says of the deployed function (the emulator's answer).
    assert fingerprint["code_sha256"] == "ZW11bGF0b3I="
    assert fingerprint["function_arn"].endswith(":function:fast")
    assert fingerprint["memory_mb"] > 0 and fingerprint["architectures"] == ["x86_64"]
    # The same function deployed with another memory size: compared, and the change named.
    client = boto3.client("lambda", region_name="us-east-1", endpoint_url=fresh_emulator.url)
    memory = fingerprint["memory_mb"]
    client.update_function_configuration(FunctionName="fast", MemorySize=memory * 2)
    client.get_waiter("function_updated_v2").wait(FunctionName="fast")
    try:
        result = pytester.runpytest(*ISOLATED, "--lambda-slo-compare=base")
    finally:
        client.update_function_configuration(FunctionName="fast", MemorySize=memory)
        client.get_waiter("function_updated_v2").wait(FunctionName="fast")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "ok   test_invoke_gate.py::test_fn",
            f"     deployment changed since the baseline (memory_mb: {memory} -> {memory * 2})",
            "     p50 * -> *",
        ]
    )
