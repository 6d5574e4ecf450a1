"""The README stays in step with the code: every error kind the engine reports is listed."""

from __future__ import annotations

from pathlib import Path

from pytest_lambda_slo.transport import ERROR_KINDS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_error_kind() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [kind for kind in ERROR_KINDS if f"`{kind}`" not in text]
    assert not missing, f"README does not list the error kinds {missing}"
