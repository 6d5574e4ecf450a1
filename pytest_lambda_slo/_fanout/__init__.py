"""Fanning a load run out to AWS Lambda: the generator function, its deployment and guards.

``config`` holds the user's ``LambdaFanout`` value; ``package`` builds the generator's
deployment zip from the installed plugin; ``deploy`` creates, reuses, lists and removes the
generator function; ``guards`` refuses runs that would cost too much or could not be
measured (descriptors, concurrency). This package knows nothing of the load pipeline: what
runs inside the function (``_load/shard.py``) and the dispatcher that invokes the shards and
merges them (``_load/remote.py``) are part of it and build on this one.
"""

from __future__ import annotations

from .config import LambdaFanout, parse_fanout

__all__ = ["LambdaFanout", "parse_fanout"]
