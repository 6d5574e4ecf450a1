"""The pytest side: the lambda_slo fixture, session state, caps and locks."""
