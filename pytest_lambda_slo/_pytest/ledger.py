"""The session's load caps as one ledger: one budget per session, shared by xdist workers.

Without xdist the ledger lives in memory. Under xdist the controller creates a small JSON
file and hands its path to every worker (``workerinput``); each reservation reads and
writes it under an exclusive fcntl lock, so two workers can never both take the last
requests. A run reserves before it fires: its request count when that is known, else
everything that is left (the engine stops at that number), and gives back what it did not
use when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .._fanout.guards import FanoutRefused
from ..errors import LoadAborted

_EMPTY = {"requests": 0, "load_s": 0.0, "fanout_usd": 0.0}


@dataclass(frozen=True)
class Grant:
    """What one run may use: its requests and the load time left for its deadline."""

    requests: int  # reserved: the run's size, or all that was left for a run of unknown size
    sized: bool  # the run's size was known (else it must stop at ``requests``)
    load_s: float  # load time reserved up front (a known duration)
    load_left_s: float  # what was left of the load-time cap: the bound of the run's deadline


def create_shared_file() -> str:
    """A fresh, empty ledger file for one xdist session (the controller creates it)."""
    handle, path = tempfile.mkstemp(prefix="pytest-lambda-slo-ledger-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(_EMPTY, out)
    return path


class Ledger:
    """Requests and load time used (or held by runs in progress) against the session caps."""

    def __init__(
        self,
        max_requests: int,
        max_load_time_s: float,
        path: str | None = None,
        max_fanout_cost_usd: float | None = None,
    ) -> None:
        self.max_requests = max_requests
        self.max_load_time_s = max_load_time_s
        self.max_fanout_cost_usd = max_fanout_cost_usd  # None: counted, not capped
        self.path = path
        self._memory = dict(_EMPTY)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _entries(self) -> Iterator[dict[str, float]]:
        """The counters, changed atomically: written back only when the block succeeds."""
        if self.path is None:
            with self._lock:
                yield self._memory
            return
        with open(self.path, "r+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                entries = {**_EMPTY, **json.loads(handle.read() or "{}")}
                yield entries
                handle.seek(0)
                handle.truncate()
                json.dump(entries, handle)
                handle.flush()
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def used(self) -> tuple[int, float]:
        """Requests and load seconds used or held so far in this session."""
        with self._entries() as entries:
            return int(entries["requests"]), float(entries["load_s"])

    def reserve(self, requests: int | None, duration_s: float | None, what: str) -> Grant:
        """Reserve a run's requests (all that remain when unknown); refuse what would not fit."""
        with self._entries() as entries:
            used = int(entries["requests"])
            left = self.max_requests - used
            cap = f"the session cap lambda_slo_max_requests={self.max_requests}"
            held = f"({used} sent or held by runs in progress); raise the ini key if you really "
            if requests is not None and requests > left:
                raise LoadAborted(
                    f"{what} would send {requests} requests but only {max(left, 0)} of {cap} "
                    f"remain {held}mean it"
                )
            load_used = float(entries["load_s"])
            load_left = self.max_load_time_s - load_used
            if load_left <= 0 or (duration_s is not None and duration_s > load_left):
                raise LoadAborted(
                    f"{what} would pass the session's load-time cap "
                    f"lambda_slo_max_load_time={self.max_load_time_s:g}s "
                    f"({load_used:.1f}s used or held by runs in progress); raise the ini key "
                    "if you really mean it"
                )
            if requests is None and left <= 0:
                raise LoadAborted(f"{what} cannot start: no request is left of {cap} {held}mean it")
            granted = left if requests is None else requests
            reserved_s = duration_s or 0.0
            entries["requests"] = used + granted
            entries["load_s"] = load_used + reserved_s
        return Grant(granted, requests is not None, reserved_s, load_left)

    def spend_fanout(self, usd: float, what: str) -> None:
        """Add a fan-out run's cost estimate; refuse it (FanoutRefused) above the cost cap.

        Counted once the run may start, and not given back: its generator and clock probes
        are paid for even when it stops early.
        """
        with self._entries() as entries:
            spent = float(entries["fanout_usd"])
            cap = self.max_fanout_cost_usd
            if cap is not None and spent + usd > cap:
                raise FanoutRefused(
                    f"{what}: estimated cost USD {usd:.4f} would bring this session's fan-out "
                    f"estimates to USD {spent + usd:.4f}, above the session cap "
                    f"lambda_slo_max_fanout_cost={cap:g} (USD); raise the ini key if you "
                    "really mean it"
                )
            entries["fanout_usd"] = spent + usd

    def fanout_spent(self) -> float:
        """The cost estimates of the session's fan-out runs so far (USD)."""
        with self._entries() as entries:
            return float(entries["fanout_usd"])

    def settle(self, grant: Grant, requests: int, load_s: float) -> None:
        """A run ended: it used ``requests`` and ``load_s``; give back the rest of its grant."""
        with self._entries() as entries:
            entries["requests"] -= max(grant.requests - requests, 0)
            entries["load_s"] += load_s - grant.load_s
