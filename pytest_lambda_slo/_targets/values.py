"""Values given per request: a fixed value, rows cycled in order, or a callable of the index.

Request ``i`` (the run's global, 0-based index, whatever the number of worker processes)
gets row ``i % len(rows)``, or ``f(i)``, or ``f(i, rng)`` where ``rng`` is a
``random.Random`` seeded from the target's ``seed`` and ``i``: the same request carries
the same data in every run, in every process, in any order.
"""

from __future__ import annotations

import inspect
import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import ConfigError

# Rows read from an iterable (a generator is read once, into a list): at most this many.
MAX_ROWS = 10_000_000
_SEED_STRIDE = 1 << 40  # seed and index in one integer: distinct for every index below 2**40


class Cycle:
    """Values used one per request, in order, cycled: ``HttpTarget(url, json=Cycle(rows))``.

    Needed where a list is itself a value (``json=[1, 2]`` sends that JSON array); for
    other options a list or any iterable is cycled as it is.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows = rows

    def __repr__(self) -> str:
        return "Cycle(...)"


def _arity(fn: Callable[..., Any], name: str) -> int:
    """How many positional arguments ``fn`` takes: 1 (the index) or 2 (index and rng)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: called with the index
        return 1
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        return 2 if len(positional) >= 2 else 1
    if len(positional) not in (1, 2):
        raise ConfigError(
            f"{name}= callable {getattr(fn, '__name__', fn)!r} takes {len(positional)} "
            "arguments; use f(i) (i: the request's index from 0) or f(i, rng) (rng: a "
            "random.Random seeded from seed= and i)"
        )
    return len(positional)


def rows_of(name: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """Every row of ``values`` (an iterator is read once), bounded and not empty."""
    rows = tuple(itertools.islice(values, MAX_ROWS + 1))
    if len(rows) > MAX_ROWS:
        raise ConfigError(
            f"{name}= has more than {MAX_ROWS:,} rows; use a callable f(i) that builds row i "
            "instead of a list or generator"
        )
    if not rows:
        raise ConfigError(f"{name}= has no rows; give at least one value")
    return rows


class Varying:
    """One option's per-request values: rows cycled, or a callable of the index."""

    __slots__ = ("arity", "fn", "name", "rows")

    def __init__(
        self,
        name: str,
        *,
        rows: tuple[Any, ...] | None = None,
        fn: Callable[..., Any] | None = None,
    ) -> None:
        self.name = name
        self.rows = rows
        self.fn = fn
        self.arity = _arity(fn, name) if fn is not None else 0

    @property
    def wants_rng(self) -> bool:
        return self.arity == 2

    def at(self, i: int, rng: random.Random | None) -> Any:
        """The value of request ``i`` (``rng``: seeded for ``i``, when the callable takes one)."""
        rows = self.rows
        if rows is not None:
            return rows[i % len(rows)]
        fn = self.fn
        assert fn is not None
        try:
            return fn(i, rng) if self.arity == 2 else fn(i)
        except Exception as exc:
            raise ConfigError(
                f"the {self.name}= callable raised {type(exc).__name__} for request {i}: {exc}"
            ) from exc


def varying(name: str, value: object, *, sequences_are_values: bool) -> Varying | None:
    """``value`` as per-request values, or None when it is one fixed value.

    A callable is called per request; ``Cycle(rows)`` and iterators (generators) are
    cycled; lists, tuples and other iterables too unless ``sequences_are_values`` (json=,
    payload=: a list is a JSON array). Strings, bytes and mappings are always fixed.
    """
    if value is None or isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        return None
    if isinstance(value, Cycle):
        return Varying(name, rows=rows_of(name, value.rows))
    if callable(value):
        return Varying(name, fn=value)
    if isinstance(value, Iterator) or (not sequences_are_values and isinstance(value, Iterable)):
        return Varying(name, rows=rows_of(name, value))
    return None


def rng_for(seed: int, i: int, rng: random.Random) -> random.Random:
    """``rng`` re-seeded for request ``i`` of a run seeded ``seed`` (the same in every process)."""
    rng.seed(seed * _SEED_STRIDE + i)
    return rng


def check_seed(seed: object) -> int:
    """``seed=``: an int, or None for a random one (shown in the report, so a run repeats)."""
    if seed is None:
        return random.SystemRandom().randrange(1 << 31)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} is not valid; use a whole number >= 0, or None")
    return seed


class ValuesAt:
    """Every per-request option of a target at request ``i`` (one rng, seeded for ``i``)."""

    __slots__ = ("_per", "_rng", "_seed", "_wants_rng")

    def __init__(self, per: Mapping[str, Varying], seed: int) -> None:
        self._per = dict(per)
        self._seed = seed
        self._rng = random.Random()
        self._wants_rng = any(v.wants_rng for v in self._per.values())

    def __call__(self, i: int) -> dict[str, Any]:
        rng = rng_for(self._seed, i, self._rng) if self._wants_rng else None
        return {name: per.at(i, rng) for name, per in self._per.items()}
