"""The ``lambda-slo`` command line: merge, report and compare results files outside pytest."""

from __future__ import annotations
