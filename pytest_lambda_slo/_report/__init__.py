"""What a person or a CI system reads: the terminal report, JSON, merge, compare, HTML, HdrHistogram
logs, CI outputs.

Everything here works on run dicts (``BurstResult.to_dict()`` plus ``test_id``, the form
``--lambda-slo-json`` writes), so the same code serves the pytest plugin and the
``lambda-slo`` command line. Imports point one way: this package reads ``_results`` and
``units``; nothing there imports it.

What the plugin calls (records are ``(test_id, run dict)``; ``document.as_records`` turns
the plugin's ``(test_id, BurstResult)`` pairs into them):

- ``html.write_html(path, records, baseline=None, comparisons=None)``
- ``hlog.write_hlogs(directory, records) -> list[str]``
- ``compare.parse_thresholds(texts)``, ``compare.compare_runs(base, new, thresholds)``
  ``-> list[Comparison]``, ``compare.render_comparisons(comparisons) -> list[str]``
- ``ci.junit_properties(run) -> list[(name, value)]``,
  ``ci.github_summary_markdown(records, comparisons) -> str``
- ``merge.merge_documents([(file, document)])``, ``document.load_document(path)``
"""

from __future__ import annotations
