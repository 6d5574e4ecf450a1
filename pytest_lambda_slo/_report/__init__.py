"""Outputs built from the JSON form of results: merge, compare, HTML, HdrHistogram logs, CI.

Everything here works on run dicts (``BurstResult.to_dict()`` plus ``test_id``, the form
``--lambda-slo-json`` writes), so the same code serves the pytest plugin and the
``lambda-slo`` command line. Imports point one way: this package reads ``recorder``,
``result``, ``budgets``, ``report`` and ``units``; nothing there imports it.
"""

from __future__ import annotations
