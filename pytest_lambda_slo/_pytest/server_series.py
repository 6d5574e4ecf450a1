"""The emulator's own per-second series for a run whose target is the emulator.

After a run, when the target's host and port are those of an emulator this process started
(``SessionState.emulator_urls``; no other address is ever asked) and that address is
loopback, one ``GET /_emulator/stats`` with a short timeout fetches the function's
server-side counts. The seconds that overlap the run are kept, placed in seconds from the
run's release, so the HTML report draws them next to the client's. Any failure (a stopped
emulator, a timeout, an unknown function) means no series, never an error: these figures
are the report's extra, not a measurement.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from .._results.result import RunResult
from .._targets.base import Target
from .._targets.http import HttpTarget
from .._targets.invoke import InvokeTarget

FETCH_TIMEOUT_S = 2.0
# The emulator's names for its per-second figures (docs/emulator.md, "timeseries").
SERIES_KEYS = ("invocations", "throttles", "cold_starts", "concurrency_peak")
_DOORS = ("url", "apigw")  # the emulator's HTTP front doors: /url/{name}/, /apigw/{name}/


# The last second an earlier fetch saw: (start_unix, second, its counts). A run that
# starts within that second subtracts those counts, which were the earlier runs'.
LastSecond = tuple[float, int, list[int]]
_COUNTS = 3  # SERIES_KEYS' counts come first; concurrency_peak is a peak, kept as it is


def server_series(
    target: Target,
    result: RunResult,
    emulator_urls: Callable[[], Iterable[str]] | None,
    seen: dict[tuple[str, int, str], LastSecond],
) -> dict[str, Any] | None:
    """The run's window of the emulator's series for the target's function, or None.

    ``seen`` is the session's memory of each function's last fetched second (updated here).
    """
    found = _emulator_function(target)
    if found is None or emulator_urls is None:
        return None
    address, function = found
    if address not in {_address(url) for url in emulator_urls()} or not _loopback(address[0]):
        return None
    stats = _fetch(*address)
    function_stats = ((stats or {}).get("functions") or {}).get(function) or {}
    block = function_stats.get("timeseries")
    if not block:
        return None
    key = (*address, function)
    found_window = window(block, result, function, seen.get(key))
    if found_window is None:
        return None
    out, seen[key] = found_window
    return out


def window(
    block: dict[str, Any], result: RunResult, function: str, earlier: LastSecond | None = None
) -> tuple[dict[str, Any], LastSecond] | None:
    """The seconds of the emulator's ``timeseries`` block that overlap the run, each placed
    at its start in seconds from the run's release (negative: it began before the release).

    ``earlier``: the last second a fetch after an earlier run saw; its counts are that run's.
    Returned with the series: this fetch's last second, for the next run.
    """
    timeseries = result.measurements.timeseries
    release = timeseries.start_epoch_s if timeseries is not None else None
    if release is None:
        release = result.run.get("started_at")
    try:
        interval = float(block["interval_s"])
        start_unix = float(block["start_unix"])
        start = start_unix - float(release)  # type: ignore[arg-type]
        seconds = [int(s) for s in block["second"]]
        columns = [[int(v) for v in block[key]] for key in SERIES_KEYS]
    except (KeyError, TypeError, ValueError):
        return None
    if not seconds or any(len(column) != len(seconds) for column in columns):
        return None
    end = result.duration
    keep = [i for i, s in enumerate(seconds) if start + s + interval > 0 and start + s < end]
    if not keep or end <= 0:
        return None
    kept = [[column[i] for i in keep] for column in columns]
    if earlier is not None and earlier[:2] == (start_unix, seconds[keep[0]]):
        for column, before in zip(kept[:_COUNTS], earlier[2], strict=True):
            column[0] = max(column[0] - before, 0)
    out: dict[str, Any] = {
        "source": "emulator",
        "function": function,
        "interval_s": interval,
        "start_epoch_s": release,
        "t_s": [round(start + seconds[i], 6) for i in keep],
        **dict(zip(SERIES_KEYS, kept, strict=True)),
    }
    return out, (start_unix, seconds[-1], [column[-1] for column in columns[:_COUNTS]])


def _emulator_function(target: Target) -> tuple[tuple[str, int], str] | None:
    """((host, port), function name) the target would reach on an emulator, else None."""
    if isinstance(target, HttpTarget):
        parts = urlsplit(target.url)
        segments = parts.path.split("/")
        if len(segments) < 3 or segments[1] not in _DOORS or not segments[2]:
            return None
        name, url = unquote(segments[2]), target.url
    elif isinstance(target, InvokeTarget) and target.endpoint_url:
        name, url = target.function_name, target.endpoint_url
    else:
        return None
    address = _address(url)
    return None if address is None else (address, name)


def _address(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname:  # the emulator speaks plain HTTP
        return None
    return parts.hostname.lower(), port or 80


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fetch(host: str, port: int) -> dict[str, Any] | None:
    conn = http.client.HTTPConnection(host, port, timeout=FETCH_TIMEOUT_S)
    try:
        conn.request("GET", "/_emulator/stats")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    return data if isinstance(data, dict) else None
