"""Bad input everywhere a user types something: one line naming the value and the accepted
forms, at configuration or collection time where possible. Parsers are fuzzed too."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import refused_url

from pytest_lambda_slo import ConfigError, HttpTarget, InvokeTarget, LambdaSLO, LoadAborted
from pytest_lambda_slo._pytest.session import SessionState, Settings
from pytest_lambda_slo._results.budgets import (
    BUDGET_NAMES,
    BUDGETS,
    OFF,
    THROTTLE_BUDGETS,
    parse_budget,
    parse_budgets,
)
from pytest_lambda_slo._targets.resolve import as_target
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.emulator.cli import main as emulator_main
from pytest_lambda_slo.emulator.config import FUNCTION_KEYS, FunctionConfig, parse_function_spec

pytestmark = pytest.mark.filterwarnings("error")
ISOLATED = ("-p", "no:cacheprovider", "-p", "no:benchmark")
DURATION_HINT = "'800ms'"
RATE_HINT = "'1%'"


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message, message
    assert "Traceback" not in message
    return message


# -- budgets -----------------------------------------------------------------------------------

BAD_BUDGETS = [
    ("p99", "fast", DURATION_HINT),
    ("p99", "-1ms", DURATION_HINT),
    ("p99", None, DURATION_HINT),
    ("p99", math.inf, DURATION_HINT),
    ("p99", "8OOms", DURATION_HINT),  # letter O for zero
    ("cold_start_p99", [1], DURATION_HINT),
    ("error_rate", "150%", RATE_HINT),
    ("error_rate", 5, RATE_HINT),  # meant 5%: refused, not read as 500%
    ("throttle_rate", "1 percent", RATE_HINT),
    ("throttle_count", 1.5, "a whole number >= 0"),
    ("throttle_count", -1, "a whole number >= 0"),
    ("min_rps", -1, "a number >= 0"),
    ("min_rps", "lots", "a number >= 0"),
    ("min_rps", True, "a number >= 0"),
]


@pytest.mark.parametrize(("name", "value", "hint"), BAD_BUDGETS)
def test_bad_budget_values_name_value_and_forms(name: str, value: object, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_budgets({name: value})
    message = one_line(info.value)
    assert f"{name}={value!r}" in message and hint in message


@pytest.mark.parametrize("name", ["p98", "P99", "p99 ", "latency", "errors_rate", ""])
def test_unknown_budget_names_list_the_known_ones(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_budgets({name: "1s"})
    message = one_line(info.value)
    assert repr(name) in message
    assert "known budgets: " + ", ".join(BUDGET_NAMES) in message


_VALUES = st.one_of(
    st.text(alphabet="0123456789.-+eE%msuhin µ", max_size=10),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(BUDGET_NAMES), value=_VALUES)
def test_budget_parser_fuzz(name: str, value: object) -> None:
    """Every budget value is parsed to a sane number of its unit or refused in one line."""
    try:
        parsed = parse_budget(name, value)
    except ConfigError as exc:
        message = one_line(exc)
        assert message.startswith(f"{name}=")
    else:
        if parsed == OFF:  # only throttle budgets can be switched off, with None or "off"
            assert name in THROTTLE_BUDGETS
            assert value is None or str(value).strip().lower() in ("off", "none")
            return
        assert math.isfinite(parsed) and parsed >= 0
        unit = BUDGETS[name].unit
        if unit == "rate":
            assert parsed <= 1.0
        if unit == "count":
            assert parsed == int(parsed)


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=12))
def test_budget_name_fuzz(name: str) -> None:
    if name in BUDGETS:
        return
    with pytest.raises(ConfigError) as info:
        parse_budget(name, "1s")
    assert one_line(info.value).startswith("unknown SLO budget")


# -- marker, ini keys and command-line options (through pytester) ------------------------------


def usage_error(result: pytest.RunResult, *fragments: str) -> str:
    """The run stopped before any test, with one 'ERROR: ...' line and no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    output = result.stdout.str() + "\n" + result.stderr.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output
    lines = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(lines) == 1, output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


MARKERS = [
    ('p98="1s"', ("test_m.py::test_a", "unknown SLO budget 'p98'", "known budgets: p50")),
    ('p99="fast"', ("test_m.py::test_a", "p99='fast'", DURATION_HINT)),
    ('error_rate="2"', ("error_rate='2'", RATE_HINT)),
    ('"800ms"', ("keywords only", "('800ms',)", "lambda_slo(p99='800ms')")),
]


@pytest.mark.parametrize(("args", "fragments"), MARKERS, ids=[m[0] for m in MARKERS])
def test_bad_marker_is_a_usage_error_at_collection(
    pytester: pytest.Pytester, args: str, fragments: tuple[str, ...]
) -> None:
    pytester.makepyfile(
        test_m=f"""
        import pytest

        @pytest.mark.lambda_slo({args})
        def test_a(lambda_slo):
            raise AssertionError("never runs: the marker is checked at collection")
        """
    )
    usage_error(pytester.runpytest(*ISOLATED), *fragments)


INI = [
    ("lambda_slo_p99", "fast", ("lambda_slo_p99='fast'", DURATION_HINT)),
    ("lambda_slo_error_rate", "lots", ("lambda_slo_error_rate='lots'", RATE_HINT)),
    ("lambda_slo_throttle_count", "-2", ("lambda_slo_throttle_count='-2'", "whole number")),
    ("lambda_slo_max_requests", "-5", ("lambda_slo_max_requests='-5'", "whole number >= 1")),
    ("lambda_slo_max_requests", "0", ("lambda_slo_max_requests='0'", "whole number >= 1")),
    ("lambda_slo_max_load_time", "forever", ("lambda_slo_max_load_time='forever'", "'800ms'")),
    ("lambda_slo_max_load_time", "0s", ("lambda_slo_max_load_time='0s'", "greater than zero")),
    ("lambda_slo_saturation", "maybe", ("lambda_slo_saturation='maybe'", "'fail' or 'warn'")),
    ("lambda_slo_max_loop_lag", "-1ms", ("lambda_slo_max_loop_lag='-1ms'", DURATION_HINT)),
    ("lambda_slo_max_fanout_cost", "0", ("lambda_slo_max_fanout_cost='0'", "'off'")),
    ("lambda_slo_max_fanout_cost", "$5", ("lambda_slo_max_fanout_cost='$5'", "in USD")),
]


@pytest.mark.parametrize(("key", "value", "fragments"), INI, ids=[f"{k}={v}" for k, v, _ in INI])
def test_bad_ini_key_is_a_usage_error(
    pytester: pytest.Pytester, key: str, value: str, fragments: tuple[str, ...]
) -> None:
    pytester.makeini(f"[pytest]\n{key} = {value}\n")
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    usage_error(pytester.runpytest(*ISOLATED), *fragments)


CLI = [
    (("--lambda-slo-workers=0",), ("--lambda-slo-workers='0'", "whole number >= 1 or 'auto'")),
    (("--lambda-slo-workers=lots",), ("'lots'", "'auto'")),
    (("--lambda-slo-skip", "--lambda-slo-only"), ("exclude each other",)),
]


@pytest.mark.parametrize(("args", "fragments"), CLI, ids=[" ".join(a) for a, _ in CLI])
def test_bad_cli_option_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    usage_error(pytester.runpytest(*ISOLATED, *args), *fragments)


@pytest.mark.parametrize("where", ["a_file/out.json", "a_dir"])
def test_unwritable_json_path_is_a_usage_error_before_any_test(
    pytester: pytest.Pytester, where: str
) -> None:
    (pytester.path / "a_file").write_text("not a directory")
    (pytester.path / "a_dir").mkdir()
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    usage_error(
        pytester.runpytest(*ISOLATED, f"--lambda-slo-json={where}"),
        f"--lambda-slo-json={where!r} cannot be written",
        "use a file path in a writable directory",
    )


# -- targets: URLs, ARNs and HttpTarget arguments ----------------------------------------------

URL_HINT = "an 'http://' or 'https://' URL"
ARN_HINT = "arn:aws:lambda:REGION:ACCOUNT:function:NAME"
BAD_TARGETS = [
    ("", "''", URL_HINT),
    ("   ", "''", URL_HINT),  # shown stripped
    ("ftp://example.com/", "'ftp://example.com/'", URL_HINT),
    ("example.com/path", "'example.com/path'", URL_HINT),
    ("http://", "'http://'", URL_HINT),
    ("http://example.com:99999/", "'http://example.com:99999/'", URL_HINT),
    ("http://example.com:http/", "'http://example.com:http/'", URL_HINT),
    ("http://exa mple.com/", "'http://exa mple.com/'", "white space"),
    ("lambda:", "'lambda:'", ARN_HINT),
    ("lambda:my function", "'my function'", ARN_HINT),
    ("lambda:" + "f" * 65, "'" + "f" * 65 + "'", ARN_HINT),
    ("lambda:f:bad qualifier", "'bad qualifier'", "'$LATEST'"),
    ("arn:aws:s3:::bucket", "'arn:aws:s3:::bucket'", ARN_HINT),
    ("arn:aws:lambda:us-east-1:123:function:f", "123:function:f'", ARN_HINT),
    ("arn:aws:lambda:us-east-1:123456789012:layer:f", ":layer:f'", ARN_HINT),
]


@pytest.mark.parametrize(("text", "shown", "hint"), BAD_TARGETS)
def test_bad_target_strings(text: str, shown: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        as_target(text)
    message = one_line(info.value)
    assert shown in message and hint in message


@pytest.mark.parametrize("target", [None, 42, b"http://x/", ["http://x/"]])
def test_targets_of_the_wrong_type(target: object) -> None:
    with pytest.raises(ConfigError) as info:
        as_target(target)
    assert "HttpTarget or InvokeTarget" in one_line(info.value)


def test_a_url_with_credentials_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        HttpTarget("http://user:hunter2@example.com:port/")
    message = one_line(info.value)
    assert "hunter2" not in message and "<redacted>@example.com" in message


BAD_HTTP_ARGS: list[tuple[dict[str, Any], str]] = [
    ({"method": "GE T"}, "method='GE T'"),
    ({"method": ""}, "method=''"),
    ({"body": "x", "json": {}}, "body= or json="),
    ({"throttle_statuses": (429, 700)}, "throttle_statuses contains 700"),
    ({"throttle_statuses": ("429",)}, "throttle_statuses contains '429'"),
    ({"cold_start": 5}, "cold_start=5"),
    ({"verify": 1.0}, "verify=1.0"),
    ({"max_body_bytes": -1}, "max_body_bytes=-1"),
    ({"max_body_bytes": "1MB"}, "max_body_bytes='1MB'"),
    ({"headers": {"X-A": "1\r\nX-Injected: yes"}}, "has CR, LF or NUL in its value"),
    ({"headers": {"X A": "1"}}, "header name 'X A' is not valid"),
    ({"body": 5}, "body=5 is not valid; use bytes or str"),
    ({"json": {1, 2}}, "json= is not JSON serialisable"),
    ({"verify": "/no/such/ca.pem"}, "verify='/no/such/ca.pem'"),
    ({"throttle_statuses": 429}, "throttle_statuses=429 is not valid"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD_HTTP_ARGS)
def test_bad_http_target_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        HttpTarget("https://example.com/", **kwargs)
    assert fragment in one_line(info.value)


def test_headers_may_be_a_list_of_pairs() -> None:
    template = HttpTarget("http://example.com/", headers=[("X-A", "1")]).prepare()
    assert ("X-A", "1") in template.current_request().headers


BAD_INVOKE_ARGS: list[tuple[dict[str, Any], str]] = [
    ({"invocation_type": "Sync"}, "invocation_type='Sync'"),
    ({"region": ""}, "region=''"),
    ({"endpoint_url": "localhost:9000"}, "'localhost:9000'"),
    ({"payload": "{not json"}, "is not JSON"),
    ({"payload": object()}, "not JSON serialisable"),
    ({"max_body_bytes": -5}, "max_body_bytes=-5"),
    ({"sign_window_s": 0}, "sign_window_s=0"),
    ({"sign_window_s": 600}, "sign_window_s=600"),
    ({"architecture": "sparc"}, "architecture='sparc'"),
    ({"qualifier": "bad qualifier"}, "'bad qualifier'"),
    ({"throttle_statuses": 429}, "throttle_statuses=429 is not valid"),
    ({"throttle_statuses": "429"}, "throttle_statuses='429' is not valid"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD_INVOKE_ARGS)
def test_bad_invoke_target_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        InvokeTarget("my-function", **kwargs)
    assert fragment in one_line(info.value)


# -- load shapes -------------------------------------------------------------------------------


@pytest.fixture(name="refused_url")
def refused_url_fixture() -> str:
    # Nothing listens there: a shape that is accepted by mistake costs no real load.
    return refused_url()


@pytest.fixture
def slo() -> LambdaSLO:
    return LambdaSLO(SessionState(Settings()), "test_bad_input")


BAD_SHAPES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("burst", {"requests": 0, "concurrency": 1}, ("requests=0", "whole number >= 1")),
    ("burst", {"requests": -1, "concurrency": 1}, ("requests=-1",)),
    ("burst", {"requests": 1.5, "concurrency": 1}, ("requests=1.5",)),
    ("burst", {"requests": "many", "concurrency": 1}, ("requests='many'",)),
    ("burst", {"requests": True, "concurrency": 1}, ("requests=True",)),
    ("burst", {"requests": 5, "concurrency": 0}, ("concurrency=0",)),
    ("burst", {"requests": 5, "concurrency": -3}, ("concurrency=-3",)),
    ("burst", {"requests": 5, "concurrency": 10}, ("concurrency=10", "requests=5", "<=")),
    ("burst", {"concurrency": 1}, ("requests=N", "duration=")),
    ("burst", {"requests": 5, "concurrency": 1, "timeout": 0}, ("timeout=0", "greater than")),
    ("burst", {"requests": 5, "concurrency": 1, "timeout": "soon"}, ("timeout='soon'",)),
    ("burst", {"requests": 5, "concurrency": 1, "deadline": "-1s"}, ("deadline='-1s'",)),
    ("burst", {"duration": "0s", "concurrency": 1}, ("duration='0s'", "greater than")),
    ("burst", {"requests": 5, "concurrency": 1, "workers": 0}, ("workers=0", "'auto'")),
    ("rate", {"rps": 0, "duration": "1s"}, ("rps=0", "greater than zero")),
    ("rate", {"rps": -5, "duration": "1s"}, ("rps=-5",)),
    ("rate", {"rps": math.nan, "duration": "1s"}, ("rps=nan",)),
    ("rate", {"rps": 10, "duration": 0}, ("duration=0",)),
    ("rate", {"rps": 10, "duration": "1s", "max_in_flight": 0}, ("max_in_flight=0",)),
    ("ramp", {"users": 0, "spawn_rate": 1, "duration": "1s"}, ("users=0",)),
    ("ramp", {"users": 5, "spawn_rate": 0, "duration": "1s"}, ("spawn_rate=0",)),
]


@pytest.mark.parametrize(
    ("shape", "kwargs", "fragments"), BAD_SHAPES, ids=[f"{s}-{k}" for s, k, _ in BAD_SHAPES]
)
def test_bad_load_shapes_are_refused_before_any_request(
    slo: LambdaSLO, refused_url: str, shape: str, kwargs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as info:
        getattr(slo, shape)(refused_url, **kwargs)
    message = one_line(info.value)
    for fragment in fragments:
        assert fragment in message
    assert slo.results == []


ABSURD = [
    ("burst", {"duration": "1000h", "concurrency": 1}, "lambda_slo_max_load_time=1800s"),
    ("ramp", {"users": 5, "spawn_rate": 1, "duration": "1000h"}, "lambda_slo_max_load_time"),
    ("rate", {"rps": 10, "duration": "1000h"}, "lambda_slo_max_requests=100000"),
    ("burst", {"requests": 10**12, "concurrency": 1}, "lambda_slo_max_requests=100000"),
]


@pytest.mark.parametrize(("shape", "kwargs", "cap"), ABSURD, ids=[f"{s}-{k}" for s, k, _ in ABSURD])
def test_absurd_load_is_refused_by_the_session_caps(
    slo: LambdaSLO, refused_url: str, shape: str, kwargs: dict[str, Any], cap: str
) -> None:
    with pytest.raises(LoadAborted) as info:
        getattr(slo, shape)(refused_url, **kwargs)
    message = one_line(info.value)
    assert cap in message and "raise the ini key" in message
    assert slo.results == []


@pytest.mark.parametrize("kwargs", [{"timeout": "1000h"}, {"deadline": "1000h"}])
def test_absurd_timeouts_are_capped_by_the_session_load_time(
    slo: LambdaSLO, refused_url: str, kwargs: dict[str, Any]
) -> None:
    # Accepted, but the run's deadline never reaches past lambda_slo_max_load_time.
    result = slo.burst(refused_url, requests=2, concurrency=1, **kwargs)
    assert result.run["deadline_s"] <= Settings().max_load_time_s
    assert result.error_kinds == {"connect_refused": 2}


# -- the emulator: Python API, command line, function specs ------------------------------------

BAD_EMULATOR: list[tuple[dict[str, Any], str]] = [
    ({"account_concurrency": 0}, "account_concurrency=0"),
    ({"max_payload": -1}, "max_payload=-1"),
    ({"burst": "x"}, "burst='x'"),
    ({"update_delay": "soon"}, "update_delay='soon'"),
    ({"seed": "x"}, "seed='x'"),
    ({"scaling": "sideways"}, "scaling='sideways'"),
    ({"port": 70000}, "port=70000"),
    ({"host": ""}, "host=''"),
    ({"region": "moon"}, "region='moon'"),
    ({"account_id": "123"}, "account_id='123'"),
    ({"log_level": "LOUD"}, "log_level='LOUD'"),
    ({"require_sigv4": "nosecret"}, "ACCESS_KEY_ID:SECRET"),
    ({"functions": ["f", "f"]}, "'f' is defined twice"),
    ({"functions": ["f:reserved=600", "g:reserved=600"]}, "reserved concurrency adds up"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD_EMULATOR)
def test_bad_emulator_arguments_fail_in_the_caller(kwargs: dict[str, Any], fragment: str) -> None:
    functions = kwargs.pop("functions", ("hello",))
    with pytest.raises(ConfigError) as info:
        Emulator(functions, **kwargs)  # validated before any process starts
    assert fragment in one_line(info.value)


BAD_EMULATOR_CLI = [
    (["--account-concurrency", "0"], "account_concurrency='0'"),
    (["--max-payload", "-1"], "max_payload='-1'"),
    (["--burst", "x"], "burst='x'"),
    (["--update-delay", "soon"], "update_delay='soon'"),
    (["--seed", "x"], "seed='x'"),
    (["--log-level", "LOUD"], "log_level='LOUD'"),
    (["--host", ""], "host=''"),
    (["--region", "moon"], "region='moon'"),
    (["--account-id", "123"], "account_id='123'"),
    (["--function", "f:timeout=1000h"], "up to 15m"),
    (["--function", "f:body_size=7000000"], "6 MB"),
    (["--function", "f:duration=1s,duration=2s"], "'duration' twice"),
    (["--function", "f:duration"], "is not key=value"),
    (["--function", "f g"], "bad name 'f g'"),
]


@pytest.mark.parametrize(("argv", "fragment"), BAD_EMULATOR_CLI)
def test_bad_emulator_command_line_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    try:
        code = emulator_main(argv)
    except SystemExit as exc:  # argparse's own errors exit from inside parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lambda-slo-emulator: error: ")
    assert fragment in err


_SPEC_VALUES = st.one_of(
    st.text(alphabet="0123456789.-%msuhe", max_size=8),
    st.sampled_from(["true", "no", "none", "normal(20ms,5ms)", "uniform(5ms,1ms)",
                     "lognormal(40ms,-1)", "exponential(", "vpc-2019", "legacy", "1e309"]),
    st.text(max_size=6),
)  # fmt: skip


@st.composite
def function_specs(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.sampled_from(["hello", "f-1", "a_b"]), st.text(max_size=6)))
    items = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from(FUNCTION_KEYS), st.text(max_size=5)), _SPEC_VALUES),
            max_size=4,
        )
    )
    if not items and draw(st.booleans()):
        return name
    return name + ":" + ",".join(f"{k}={v}" for k, v in items)


@settings(max_examples=500, deadline=None)
@given(spec=st.one_of(function_specs(), st.text(max_size=30)))
def test_function_spec_parser_fuzz(spec: str) -> None:
    """Every spec either becomes a FunctionConfig inside Lambda's limits or one ConfigError."""
    try:
        config = parse_function_spec(spec)
    except ConfigError as exc:
        one_line(exc)
    else:
        assert isinstance(config, FunctionConfig)
        assert 128 <= config.memory <= 10240
        assert 0 < config.timeout <= 900
        assert 0 <= config.body_size <= 6 * 1024 * 1024
        assert 0 <= config.error_rate <= 1 and 0 <= config.proactive_init <= 1
        assert config.reserved is None or config.reserved >= 0
        # What it prints parses back to the same function.
        assert parse_function_spec(config.to_spec()) == config
