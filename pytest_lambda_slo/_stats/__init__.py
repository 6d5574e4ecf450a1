"""Statistics for SLO verdicts: exact binomial bounds, exceedance counts, sequential tests.

Pure functions and small value objects, no I/O and nothing from the load engine; scipy is
imported at module level by the submodules, so importing this package (which re-exports
nothing) stays free and callers import the submodule they need:

- :mod:`.binomial`    one-sided Clopper-Pearson bounds, the rate judgement, samples needed
- :mod:`.exceedances` requests slower than a threshold, counted from HdrHistogram buckets
- :mod:`.levels`      pass/fail confidences and their split across several budgets
- :mod:`.sequential`  the anytime-valid test a burst uses to stop once it knows
- :mod:`.clustering`  the design effect of clustered slowness, from per-batch counts
- :mod:`.batchmeans`  t-intervals over batch means (``mean``, ``min_rps``)
- :mod:`.wording`     the sentence an inconclusive verdict prints
"""
