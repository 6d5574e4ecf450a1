"""The load pipeline: shapes, drivers, one run on its own loop, worker processes."""
