"""The README stays in step with the code: the error kinds it lists, the JSON's field names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_lambda_slo._http.transport import ERROR_KINDS
from pytest_lambda_slo.emulator import Emulator

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_error_kind() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [kind for kind in ERROR_KINDS if f"`{kind}`" not in text]
    assert not missing, f"README does not list the error kinds {missing}"


def _names(text: str) -> list[str]:
    return re.findall(r"`([a-z_0-9]+)`", text)


def _readme_json_fields() -> tuple[list[str], list[str], list[str]]:
    """(burst fields, latency views, latency statistics) the README lists for the JSON."""
    text = README.read_text(encoding="utf-8")
    start = text.index("- `pytest --lambda-slo-json PATH`")
    bullet = text[start : text.index("\n- ", start + 1)]
    fields = bullet.split("with the fields", 1)[1]
    match = re.fullmatch(r"(.*)`latency_ms` \((.*?)\),(.*)", fields, re.DOTALL)
    assert match, "the README's JSON bullet lists `latency_ms` (views: statistics)"
    before, latency, after = match.groups()
    views, statistics = latency.split(":", 1)
    return [*_names(before), "latency_ms", *_names(after)], _names(views), _names(statistics)


def test_readme_json_field_names_are_the_real_ones(
    pytester: pytest.Pytester, fresh_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "x" * 40),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true"),
                        ("AWS_ENDPOINT_URL_LAMBDA", fresh_emulator.url)):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    pytester.makepyfile(
        test_json="""
        def test_invoke(lambda_slo):
            lambda_slo.burst("lambda:fast", requests=6, concurrency=3).check(
                max="10s", throttle_count=0)
        """
    )
    out = pytester.path / "slo.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--lambda-slo-json={out}")
    result.assert_outcomes(passed=1)
    (burst,) = json.loads(out.read_text())["bursts"]
    fields, views, statistics = _readme_json_fields()
    assert sorted(fields) == sorted(burst), "the README lists exactly the JSON's fields"
    assert burst["cost"]["total_usd"] > 0  # an Invoke API run carries its cost estimate
    for view in views[:4]:  # all, served, warm, cold: always there
        assert sorted(burst["latency_ms"][view]) == sorted(statistics)
    server_side = set(burst["latency_ms"]) - set(views[:4])
    assert server_side == {"ttfb", "init", "duration", "billed"}
