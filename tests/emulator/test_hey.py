"""hey against the Function URL of a function with reserved concurrency: stats agree with hey."""

from __future__ import annotations

import re
import subprocess

from emulator_helpers import hey_path


def parse_status_codes(output: str) -> dict[int, int]:
    """hey's "Status code distribution" section as {status: count}."""
    section = output.split("Status code distribution:", 1)[1]
    section = section.split("Error distribution:", 1)[0]
    return {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", section)}


def test_hey_gets_a_mix_of_200_and_429_and_stats_agree(lambda_emulator):
    hey = hey_path()
    emu = lambda_emulator("capped:reserved=10,duration=5ms,init=20ms")
    run = subprocess.run(
        [hey, "-n", "600", "-c", "50", "-t", "20", emu.function_url("capped")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    codes = parse_status_codes(run.stdout)
    assert set(codes) == {200, 429}, run.stdout
    assert sum(codes.values()) == 600
    stats = emu.function_stats("capped")
    assert stats["responses"] == {"200": codes[200], "429": codes[429]}
    assert stats["invocations"] == codes[200]
    assert stats["throttles"]["total"] == codes[429]
    assert stats["throttles"]["by_reason"] == {
        "ReservedFunctionConcurrentInvocationLimitExceeded": codes[429]
    }
    assert stats["peak_concurrency"] == 10
    assert stats["cold_starts"] <= 10 and stats["environments_alive"] <= 10
    assert sum(stats["timeseries"]["throttles"]) == codes[429]
    assert stats["histograms"]["latency"]["count"] == 600
