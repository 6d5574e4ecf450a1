"""Registers the lambda_emulator fixture for the emulator tests (until the plugin does)."""

from __future__ import annotations

from pytest_lambda_slo.emulator.fixtures import lambda_emulator  # noqa: F401
