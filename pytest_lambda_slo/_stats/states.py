"""The three states of a verdict, named once (light: no scipy, for the plugin's start-up)."""

from __future__ import annotations

from typing import Literal

State = Literal["pass", "fail", "inconclusive"]
PASS: State = "pass"
FAIL: State = "fail"
INCONCLUSIVE: State = "inconclusive"
