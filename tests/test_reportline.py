"""Tests of the Lambda log-tail parser (text REPORT lines and JSON platform.report records)."""

from __future__ import annotations

import base64
import json

import pytest

from pytest_lambda_slo._aws.reportline import decode_log_result, parse_log_result, parse_log_tail

TEXT_COLD = (
    "START RequestId: 6f1c0a2e-1 Version: $LATEST\n"
    "hello from the handler\n"
    "END RequestId: 6f1c0a2e-1\n"
    "REPORT RequestId: 6f1c0a2e-1\tDuration: 8.40 ms\tBilled Duration: 9 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 66 MB\tInit Duration: 170.13 ms\t\n"
)
TEXT_WARM = (
    "START RequestId: abc Version: 3\nEND RequestId: abc\n"
    "REPORT RequestId: abc\tDuration: 1.02 ms\tBilled Duration: 2 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 80 MB\t\n"
)
TEXT_SNAPSTART = (
    "REPORT RequestId: s1\tDuration: 20.00 ms\tBilled Duration: 95 ms\tMemory Size: 1024 MB\t"
    "Max Memory Used: 150 MB\tRestore Duration: 74.5 ms\tBilled Restore Duration: 75 ms\t"
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def json_report(metrics: dict) -> str:
    record = {
        "time": "2026-11-28T15:00:00.000Z",
        "type": "platform.report",
        "record": {"requestId": "r1", "metrics": metrics, "status": "success"},
    }
    return json.dumps(record)


def test_text_cold_report_line() -> None:
    assert parse_log_result(b64(TEXT_COLD)) == {
        "duration": 8.40,
        "billed": 9.0,
        "memory": 128.0,
        "max_memory": 66.0,
        "init": 170.13,
    }


def test_text_warm_report_line_has_no_init() -> None:
    figures = parse_log_tail(TEXT_WARM)
    assert figures == {"duration": 1.02, "billed": 2.0, "memory": 512.0, "max_memory": 80.0}
    assert "init" not in figures


def test_text_snapstart_restore_duration() -> None:
    figures = parse_log_tail(TEXT_SNAPSTART)
    assert figures is not None
    assert figures["restore"] == 74.5
    assert figures["billed"] == 95.0  # not overwritten by Billed Restore Duration
    assert "init" not in figures


def test_last_report_line_wins_and_request_id_is_not_a_field() -> None:
    tail = TEXT_WARM + "REPORT RequestId: 12 ms\tDuration: 3.5 ms\tBilled Duration: 4 ms\t\n"
    assert parse_log_tail(tail) == {"duration": 3.5, "billed": 4.0}


def test_json_format_cold_and_warm() -> None:
    cold = json_report(
        {
            "durationMs": 8.4,
            "billedDurationMs": 9,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 66,
            "initDurationMs": 170.13,
        }
    )
    tail = (
        '{"time":"x","type":"platform.start","record":{"requestId":"r1"}}\n'
        '{"timestamp":"x","level":"INFO","message":"hi"}\n' + cold + "\n"
    )
    assert parse_log_result(b64(tail)) == {
        "duration": 8.4,
        "billed": 9.0,
        "memory": 128.0,
        "max_memory": 66.0,
        "init": 170.13,
    }
    warm = json_report({"durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 256})
    assert parse_log_tail(warm) == {"duration": 1.5, "billed": 2.0, "memory": 256.0}
    restore = json_report({"durationMs": 2.0, "restoreDurationMs": 40.0})
    assert parse_log_tail(restore) == {"duration": 2.0, "restore": 40.0}


def test_tail_cut_in_the_middle_of_the_first_line() -> None:
    tail = 'questId":"r0"}}\n' + json_report({"durationMs": 5.0, "billedDurationMs": 5})
    assert parse_log_tail(tail) == {"duration": 5.0, "billed": 5.0}


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not base64 at all!!",
        b64("no report line here\nEND RequestId: x\n"),
        b64("REPORT RequestId: x\tDuration: soon\t"),
        b64('{"type":"platform.report","record":{"metrics":"nope"}}'),
        b64('{"type":"platform.report","record":{"metrics":{"durationMs":-1}}}'),
        b64('{"type":"platform.report", broken json'),
        b64('{"type":"platform.start","record":{"metrics":{"durationMs":1}}}'),
        base64.b64encode(b"\xff\xfe\x00garbage").decode(),
    ],
)
def test_garbage_gives_none(value: object) -> None:
    assert parse_log_result(value) is None  # type: ignore[arg-type]


def test_decode_log_result() -> None:
    assert decode_log_result(b64("abc")) == "abc"
    assert decode_log_result("***") is None
    assert decode_log_result(None) is None


def test_a_report_lookalike_in_the_function_output_does_not_hide_the_real_line() -> None:
    tail = TEXT_WARM + "my log says REPORT RequestId: fake\tDuration: 999 ms\n"
    assert parse_log_tail(tail) == {
        "duration": 1.02,
        "billed": 2.0,
        "memory": 512.0,
        "max_memory": 80.0,
    }
