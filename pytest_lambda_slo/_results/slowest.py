"""The slowest requests of a run and its cold starts, by request id (bounded memory).

When a p99 breaks, the ids of the slow requests are what one looks up in CloudWatch Logs
or X-Ray. A run keeps the :data:`SLOWEST_KEPT` slowest requests (a min-heap on latency:
a request enters only when slower than the slowest kept so far's fastest), the first
:data:`COLD_KEPT` cold starts and the :data:`COLD_KEPT` slowest ones. Merging two runs
keeps the same of their union.

A request in the heap keeps its outcome; its JSON form (and the ids read from its
response) is made when the list is read, so the requests pushed out again on the way
cost a heap push and no parse: in random order about 50 x (1 + ln(N / 50)) requests enter
(computed: some 270 in a run of 4,000, 350 in one of 20,000), nearly all pushed out.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable
from typing import Any

from .outcome import Outcome

SLOWEST_KEPT = 50
COLD_KEPT = 50
# How many of the slowest the terminal report lists (the JSON has them all).
REPORT_SHOWN = 5
# The id CloudWatch Logs knows a Lambda invocation by (its @requestId).
_LOG_ID = "request_id"
# Ids API Gateway adds: then "request_id" is API Gateway's, not the function's @requestId.
_APIGW_IDS = ("apigw_request_id", "apigw_id")
_ID_KEYS = ("request_id", "apigw_request_id", "apigw_id", "trace_id")


class Kept:
    """One request in the heap: its outcome, described (ids read) on first reading."""

    __slots__ = ("_entry", "epoch_s", "latency_ns", "outcome")

    def __init__(
        self,
        outcome: Outcome | None,
        latency_ns: int,
        epoch_s: float,
        entry: dict[str, Any] | None = None,
    ) -> None:
        self.outcome = outcome
        self.latency_ns = latency_ns
        self.epoch_s = epoch_s
        self._entry = entry

    def describe(self) -> dict[str, Any]:
        """The request's JSON form, made (its ids read) on the first call; the outcome is
        let go then."""
        if self._entry is None:
            assert self.outcome is not None
            self._entry = describe(self.outcome, self.latency_ns, self.epoch_s)
            self.outcome = None
        return self._entry


# One kept request: (latency_ns, arrival order, the request).
Entry = tuple[int, int, Kept]


def describe(outcome: Outcome, latency_ns: int, epoch_s: float) -> dict[str, Any]:
    """The JSON form of one kept request; its ids are read from the response here."""
    entry: dict[str, Any] = {
        "latency_ms": round(latency_ns / 1e6, 3),
        "ttfb_ms": None if outcome.ttfb_ns is None else round(outcome.ttfb_ns / 1e6, 3),
        "status": outcome.status,
        "kind": outcome.kind,
        "error_kind": outcome.error_kind,
        "label": outcome.label,
        "cold": outcome.cold,
        "epoch_s": round(epoch_s, 6),
    }
    response = outcome.response
    if response is not None:
        entry.update(response.request_ids())
    return entry


def _heap_push(heap: list[Entry], item: Entry, cap: int) -> int:
    """Keep ``item`` among the ``cap`` slowest; the latency a newcomer must now beat."""
    if len(heap) < cap:
        heapq.heappush(heap, item)
    elif item[0] > heap[0][0]:
        heapq.heapreplace(heap, item)
    return heap[0][0] if len(heap) >= cap else -1


class SlowRequests:
    """The slowest requests and the cold starts of one run, each with its ids.

    ``threshold`` is the latency a request must exceed to enter the heap (-1 while it is
    not full): the recorder compares against it before anything else is done.
    """

    __slots__ = ("_cold_heap", "_heap", "_order", "cold_threshold", "first_cold", "threshold")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._cold_heap: list[Entry] = []
        self.first_cold: list[dict[str, Any]] = []
        self._order = 0
        self.threshold = -1
        self.cold_threshold = -1

    def offer(self, outcome: Outcome, latency_ns: int, epoch_s: float) -> None:
        """Keep a request slower than ``threshold`` (the caller checked) or a cold start."""
        self._order += 1
        kept = Kept(outcome, latency_ns, epoch_s)
        response = outcome.response
        if response is not None and response.content:
            kept.describe()  # now, so the heap lets its body go
        if latency_ns > self.threshold:
            self.threshold = _heap_push(self._heap, (latency_ns, self._order, kept), SLOWEST_KEPT)
        if outcome.cold and outcome.kind != "throttle":
            # Cold starts are few: described at once (the first ones are a plain list).
            if len(self.first_cold) < COLD_KEPT:
                self.first_cold.append(kept.describe())
            if latency_ns > self.cold_threshold:
                self.cold_threshold = _heap_push(
                    self._cold_heap, (latency_ns, self._order, kept), COLD_KEPT
                )

    @property
    def slowest(self) -> list[dict[str, Any]]:
        """The slowest requests kept, slowest first."""
        return [kept.describe() for _, _, kept in sorted(self._heap, key=lambda e: (-e[0], e[1]))]

    @property
    def slowest_cold(self) -> list[dict[str, Any]]:
        """The slowest cold starts kept, slowest first."""
        heap = self._cold_heap
        return [kept.describe() for _, _, kept in sorted(heap, key=lambda e: (-e[0], e[1]))]

    def merge(self, other: SlowRequests) -> None:
        """Keep the slowest (and first) of both runs' union."""
        for _, _, kept in other._heap:
            self._add(kept.describe(), cold=False)
        for _, _, kept in other._cold_heap:
            self._add(kept.describe(), cold=True)
        firsts = sorted([*self.first_cold, *other.first_cold], key=lambda e: e["epoch_s"])
        self.first_cold = firsts[:COLD_KEPT]

    def _add(self, entry: dict[str, Any], *, cold: bool) -> None:
        self._order += 1
        latency_ns = round(entry["latency_ms"] * 1e6)
        item = (latency_ns, self._order, Kept(None, latency_ns, entry["epoch_s"], entry))
        if cold:
            self.cold_threshold = _heap_push(self._cold_heap, item, COLD_KEPT)
        else:
            self.threshold = _heap_push(self._heap, item, SLOWEST_KEPT)

    # JSON ------------------------------------------------------------------------------------
    @property
    def cold_starts(self) -> list[dict[str, Any]]:
        """Every cold start kept (the first ones and the slowest ones), in time order."""
        cold = {_identity(e): e for e in [*self.slowest_cold, *self.first_cold]}
        return sorted(cold.values(), key=lambda e: e["epoch_s"])

    def to_dict(self) -> dict[str, Any]:
        """The kept requests as lists; :meth:`from_dict` reads them back exactly.

        ``cold_starts`` is the union of the first and the slowest cold starts, so the first
        :data:`COLD_KEPT` of it by time and the slowest by latency are those two again.
        """
        return {"slowest": self.slowest, "cold_starts": self.cold_starts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlowRequests:
        kept = cls()
        for entry in data.get("slowest", []):
            kept._add(dict(entry), cold=False)
        cold = [dict(entry) for entry in data.get("cold_starts", [])]
        for entry in cold:
            kept._add(entry, cold=True)
        kept.first_cold = sorted(cold, key=lambda e: e["epoch_s"])[:COLD_KEPT]
        return kept

    def report(self, start_epoch_s: float | None) -> dict[str, Any]:
        """The run JSON's ``"slow_requests"`` block: the lists (each request's ``t_s``:
        seconds from the release to its completion), queries and trace ids."""
        start = start_epoch_s

        def timed(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {**entry, "t_s": None if start is None else round(entry["epoch_s"] - start, 6)}
                for entry in entries
            ]

        slowest = timed(self.slowest)
        cold_starts = timed(self.cold_starts)
        return {
            "slowest": slowest,
            "cold_starts": cold_starts,
            "logs_insights_query": logs_insights_query(slowest),
            "cold_starts_query": logs_insights_query(cold_starts),
            "xray_trace_ids": trace_ids(slowest),
        }


def _identity(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What tells two kept requests apart (the same one may be both first and slowest)."""
    return (entry["epoch_s"], entry["latency_ms"], entry.get("request_id"))


def lambda_request_ids(entries: Iterable[dict[str, Any]]) -> list[str]:
    """The function's own request ids (@requestId in its logs) among ``entries``.

    Behind API Gateway (a response with API Gateway's ids) ``x-amzn-RequestId`` is API
    Gateway's request id, which the function's log lines do not carry as @requestId.
    """
    ids: list[str] = []
    for entry in entries:
        value = entry.get(_LOG_ID)
        if value and not any(entry.get(key) for key in _APIGW_IDS) and value not in ids:
            ids.append(value)
    return ids


def logs_insights_query(entries: Iterable[dict[str, Any]]) -> str | None:
    """A CloudWatch Logs Insights query for these requests' log lines (None: no ids)."""
    ids = lambda_request_ids(entries)
    if not ids:
        return None
    listed = ", ".join(json.dumps(value) for value in ids)
    return (
        "fields @timestamp, @requestId, @duration, @initDuration "
        f"| filter @requestId in [{listed}] | sort @duration desc"
    )


def trace_ids(entries: Iterable[dict[str, Any]]) -> list[str]:
    """The X-Ray trace ids of these requests, in their order, once each."""
    out: list[str] = []
    for entry in entries:
        value = entry.get("trace_id")
        if value and value not in out:
            out.append(value)
    return out


def id_text(entry: dict[str, Any]) -> str:
    """The ids of one kept request, as one line of text."""
    return " ".join(f"{key}={entry[key]}" for key in _ID_KEYS if entry.get(key)) or "no ids"


def primary_id(entry: dict[str, Any]) -> str:
    """The id to look one kept request up by (its request id, else API Gateway's)."""
    for key in ("request_id", "apigw_request_id", "apigw_id"):
        if entry.get(key):
            return str(entry[key])
    return "no request id"


def epoch_of(done_ns: int | None, start_ns: int | None, start_epoch_s: float | None) -> float:
    """Wall-clock seconds of a completion instant on ``perf_counter_ns()``."""
    if done_ns is None:
        return time.time()
    if start_ns is None or start_epoch_s is None:
        return time.time() - (time.perf_counter_ns() - done_ns) / 1e9
    return start_epoch_s + (done_ns - start_ns) / 1e9
