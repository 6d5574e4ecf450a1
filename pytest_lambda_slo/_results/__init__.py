"""What a run measured: HDR recording, results, budgets and verdicts."""
