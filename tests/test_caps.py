"""The session caps hold for every shape and across xdist workers, counted at the server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pytest_lambda_slo._fanout.guards import FanoutRefused
from pytest_lambda_slo._pytest.ledger import Ledger, create_shared_file
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import LoadAborted

pytestmark = pytest.mark.filterwarnings("error")
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    # Two functions, so two workers can fire at once (one target is serialised by its lock).
    with Emulator(functions=["one:duration=1ms,init=0ms", "two:duration=1ms,init=0ms"]) as e:
        yield e


@pytest.fixture
def urls(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emu.reset(environments=True)
    monkeypatch.setenv("ONE_URL", emu.function_url("one"))
    monkeypatch.setenv("TWO_URL", emu.function_url("two"))
    return emu


def _sent(emu: Emulator) -> int:
    functions = emu.stats()["functions"]
    return int(functions["one"]["invocations"] + functions["two"]["invocations"])


# Each shape of unknown size: 10 requests first, then a run that would go on for 3 s
# (thousands of requests against a 1 ms function) stops at the 40 the cap has left.
UNKNOWN_SIZE = {
    "burst": 'burst(os.environ["ONE_URL"], duration="3s", concurrency=4)',
    "burst_workers": 'burst(os.environ["ONE_URL"], duration="3s", concurrency=4, workers=2)',
    "ramp": 'ramp(os.environ["ONE_URL"], users=4, spawn_rate=100, duration="3s")',
    "ramp_workers": 'ramp(os.environ["ONE_URL"], users=4, spawn_rate=100, duration="3s", '
    "workers=2)",
}


@pytest.mark.parametrize("shape", list(UNKNOWN_SIZE))
def test_a_run_of_unknown_size_stops_at_the_request_cap(
    pytester: pytest.Pytester, urls: Emulator, shape: str
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_requests = 50\n")
    pytester.makepyfile(
        test_cap=f"""
        import os

        def test_first(lambda_slo):
            lambda_slo.burst(os.environ["ONE_URL"], requests=10, concurrency=2)

        def test_unknown_size(lambda_slo):
            result = lambda_slo.{UNKNOWN_SIZE[shape]}
            assert result.run["stopped"] == "request_cap"
            assert (result.count, result.errors, result.unsent) == (40, 0, 0)

        def test_then_nothing_is_left(lambda_slo):
            lambda_slo.burst(os.environ["ONE_URL"], duration="1s", concurrency=1)
        """
    )
    # A subprocess: workers=2 pickles the shape, which needs the one engine module.
    result = pytester.runpytest_subprocess(*ISOLATED, "--lambda-slo-report")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LoadAborted: * cannot start: no request is left of the session cap "
            "lambda_slo_max_requests=50 *",
            "  stopped at the request cap: 40 requests were left of lambda_slo_max_requests",
        ]
    )
    assert _sent(urls) == 50  # the server's own count


def test_a_rate_run_over_the_remaining_cap_is_refused_before_it_starts(
    pytester: pytest.Pytester, urls: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_requests = 50\n")
    pytester.makepyfile(
        test_cap="""
        import os

        def test_first(lambda_slo):
            lambda_slo.burst(os.environ["ONE_URL"], requests=10, concurrency=2)

        def test_rate(lambda_slo):
            lambda_slo.rate(os.environ["ONE_URL"], rps=100, duration="1s")

        def test_rate_that_fits(lambda_slo):
            assert lambda_slo.rate(os.environ["ONE_URL"], rps=40, duration="1s").count == 40
        """
    )
    result = pytester.runpytest(*ISOLATED)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*LoadAborted: * would send 100 requests but only 40 of the session cap *"]
    )
    assert _sent(urls) == 50


XDIST_TWO_BIG = """
import os

def test_{name}(lambda_slo):
    lambda_slo.burst(os.environ["{env}"], requests=2000, concurrency=20)
"""


def test_xdist_workers_share_one_request_budget(pytester: pytest.Pytester, urls: Emulator) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_requests = 3000\n")
    pytester.makepyfile(
        test_one=XDIST_TWO_BIG.format(name="one", env="ONE_URL"),
        test_two=XDIST_TWO_BIG.format(name="two", env="TWO_URL"),
    )
    result = pytester.runpytest_subprocess(*ISOLATED, "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LoadAborted: * would send 2000 requests but only 1000 of the session cap "
            "lambda_slo_max_requests=3000 remain (2000 sent or held by runs in progress)*"
        ]
    )
    assert _sent(urls) == 2000


XDIST_TWO_LONG = """
import os

def test_{name}(lambda_slo):
    lambda_slo.burst(os.environ["{env}"], duration="2s", concurrency=1)
"""


def test_xdist_workers_share_one_load_time_budget(
    pytester: pytest.Pytester, urls: Emulator
) -> None:
    pytester.makeini("[pytest]\nlambda_slo_max_load_time = 3s\n")
    pytester.makepyfile(
        test_one=XDIST_TWO_LONG.format(name="one", env="ONE_URL"),
        test_two=XDIST_TWO_LONG.format(name="two", env="TWO_URL"),
    )
    result = pytester.runpytest_subprocess(*ISOLATED, "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*LoadAborted: * would pass the session's load-time cap lambda_slo_max_load_time=3s *"]
    )
    functions = urls.stats()["functions"]
    assert min(functions["one"]["invocations"], functions["two"]["invocations"]) == 0


def test_a_misspelt_marker_budget_under_xdist_is_the_one_line_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.lambda_slo(p99="800ms", cold_start_p9="2s")
        def test_a(lambda_slo):
            pass

        def test_b():
            pass
        """
    )
    message = "ERROR: test_typo.py::test_a: unknown SLO budget 'cold_start_p9'; known budgets: *"
    serial = pytester.runpytest_subprocess(*ISOLATED)
    assert serial.ret == pytest.ExitCode.USAGE_ERROR
    serial.stderr.fnmatch_lines([message])
    result = pytester.runpytest_subprocess(*ISOLATED, "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_ledger_file_is_one_budget_for_every_process() -> None:
    path = create_shared_file()
    try:
        first, second = Ledger(100, 60.0, path), Ledger(100, 60.0, path)
        held = first.reserve(None, 1.0, "a run of unknown size")
        assert (held.requests, held.sized) == (100, False)
        with pytest.raises(LoadAborted, match=r"no request is left .* \(100 sent or held"):
            second.reserve(None, None, "another run")
        with pytest.raises(LoadAborted, match=r"would send 1 requests but only 0 .* \(100 sent"):
            second.reserve(1, None, "another run")
        first.settle(held, 30, 1.5)  # it sent 30: the other 70 come back
        assert second.used() == (30, 1.5)
        assert second.reserve(70, None, "another run").requests == 70
        with pytest.raises(LoadAborted, match="would send 1 requests but only 0 "):
            first.reserve(1, None, "a third run")
    finally:
        os.unlink(path)


def test_the_fanout_cost_cap_counts_every_process_and_refuses_past_it() -> None:
    path = create_shared_file()
    try:
        first = Ledger(100, 60.0, path, max_fanout_cost_usd=1.0)
        second = Ledger(100, 60.0, path, max_fanout_cost_usd=1.0)
        first.spend_fanout(0.6, "a run")
        with pytest.raises(
            FanoutRefused,
            match=r"another run: estimated cost USD 0\.5000 would bring this session's fan-out "
            r"estimates to USD 1\.1000, above the session cap lambda_slo_max_fanout_cost=1 ",
        ):
            second.spend_fanout(0.5, "another run")
        second.spend_fanout(0.4, "a smaller run")  # exactly at the cap: allowed
        assert first.fanout_spent() == pytest.approx(1.0)
        uncapped = Ledger(100, 60.0, max_fanout_cost_usd=None)
        uncapped.spend_fanout(1e6, "a big run")  # counted, never refused
        assert uncapped.fanout_spent() == 1e6
    finally:
        os.unlink(path)
