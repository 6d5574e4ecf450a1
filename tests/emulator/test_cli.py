"""The lambda-slo-emulator command: bad input exits 2 with one line; TOML and --function merge."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.emulator.cli import build_parser, config_from_args, main
from pytest_lambda_slo.errors import ConfigError


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--function", "hello:duration=soon"], "duration='soon'"),
        (["--function", "hello:profile=lunar"], "profile='lunar'"),
        (["--scaling", "sideways"], "scaling='sideways'"),
        (["--port", "70000"], "port='70000'"),
        (["--require-sigv4", "nosecret"], "ACCESS_KEY_ID:SECRET"),
        (["--config", "/nonexistent/emu.toml"], "cannot be read"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit from inside parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lambda-slo-emulator: error: ")
    assert fragment in err


def test_bad_input_from_a_real_process_has_no_traceback():
    run = subprocess.run(
        [sys.executable, "-m", "pytest_lambda_slo.emulator", "--function", "x:memory=lots"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.strip() == (
        "lambda-slo-emulator: error: memory='lots' is not valid; use a whole number >= 128"
    )


def test_toml_then_function_options_merge(tmp_path):
    path = tmp_path / "emu.toml"
    path.write_text(
        "[emulator]\naccount_concurrency = 40\nport = 1234\n\n"
        '[functions.a]\nduration = "5ms"\n[functions.b]\nreserved = 3\n'
    )
    args = build_parser().parse_args(
        ["--config", str(path), "--port", "0", "--function", "a:duration=7ms", "--function", "c"]
    )
    config = config_from_args(args)
    assert config.port == 0 and config.account_concurrency == 40
    by_name = {f.name: f for f in config.functions}
    assert sorted(by_name) == ["a", "b", "c"]
    assert by_name["a"].duration.a == 0.007 and by_name["b"].reserved == 3


def test_no_function_means_hello():
    config = config_from_args(build_parser().parse_args([]))
    assert [f.name for f in config.functions] == ["hello"]


def test_ready_line_is_json_with_the_url(tmp_path):
    path = tmp_path / "emu.toml"
    path.write_text("[functions.fromfile]\nbody_size = 3\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_lambda_slo.emulator", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["lambda_slo_emulator"] == "listening"
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        assert ready["functions"] == ["fromfile"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()


def test_python_api_validates_in_the_caller():
    with pytest.raises(ConfigError, match="duration='fast'"):
        Emulator(["hello:duration=fast"])
    with pytest.raises(ConfigError, match="account_concurrency"):
        Emulator(["a:reserved=20"], account_concurrency=10)


def test_stop_reaps_the_child_and_is_idempotent():
    emu = Emulator(["hello"]).start()
    proc = emu._proc
    assert emu.running
    emu.stop()
    emu.stop()
    assert not emu.running and proc.returncode == 0 and proc.stdout.closed
