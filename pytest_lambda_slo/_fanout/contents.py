"""What the generator zip holds, named once for the builder and for the handler inside it.

Standard library only: the handler imports this in the function, where only the zip's
distributions exist (``packaging``, which the builder uses, is not among them).
"""

from __future__ import annotations

HANDLER = "pytest_lambda_slo._load.shard.handler"  # the same engine local workers run
NAME_PREFIX = "lambda-slo-gen-"
MANIFEST = "lambda_slo_build.json"
# What a shard imports beyond the standard library (the load engine's run-time needs),
# and the module of each that holds its compiled code (hdrhistogram's is pyhdrh).
ENGINE_DISTRIBUTIONS = ("hdrhistogram", "httptools", "uvloop")
# Pure-Python run-time needs of the engine (the runner's async bridge imports both).
PURE_DISTRIBUTIONS = ("anyio", "sniffio")
COMPILED_MODULES = {"hdrhistogram": "pyhdrh", "httptools": "httptools", "uvloop": "uvloop"}
SDK_DISTRIBUTIONS = ("botocore",)
