"""The first wave's verdict: a run whose first responses are all authentication refusals stops.

A wrong secret, key or token would otherwise fire the whole run at a closed door (and, on
AWS, at the account's request quotas). The first wave is the first ``size`` responses: a
burst's concurrency, or what a rate or ramp starts in its first quarter second. Closed-model
shapes hold requests past the first wave until its verdict, which the first response that
is not a refusal gives at once; the open model never waits for responses, so it does not.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter

from .._results.recorder import Outcome

# How long the first wave of a rate or ramp lasts: its first requests (or users) started.
FIRST_WAVE_S = 0.25
AUTH_STATUSES = frozenset({401, 403})
# What the Invoke API calls a bad signature or an unknown access key (also sent with 403).
AUTH_ERROR_TYPES = frozenset({"InvalidSignatureException", "UnrecognizedClientException"})


def wave_size(per_second: float, limit: int) -> int:
    """The first wave of a shape that starts ``per_second`` requests or users: its first 250 ms."""
    return max(1, min(limit, math.ceil(per_second * FIRST_WAVE_S)))


def refusal(outcome: Outcome) -> str | None:
    """What marks ``outcome`` as an authentication refusal (an error type or status), or None."""
    if outcome.error_kind in AUTH_ERROR_TYPES:
        return outcome.error_kind
    if outcome.status in AUTH_STATUSES:
        return f"HTTP {outcome.status}"
    return None


class FirstWave:
    """Judges the first ``size`` responses; holds closed-model requests past them meanwhile."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.decided = size <= 0  # judged, either way
        self.passed = self.decided  # judged and not all refusals: held requests may go
        self.refusals: Counter[str] = Counter()
        self._sent = 0
        self._verdict: asyncio.Event | None = None

    def admit_now(self) -> bool:
        """Before a request that must not wait: count it and say whether it may go at once.

        False: it is past the first wave, which has not been judged; :meth:`admit` (which
        counts it again) waits for the verdict.
        """
        if self._sent < self.size or self.passed:
            self._sent += 1
            return True
        return False

    async def admit(self) -> None:
        """Before each request: past the first wave, wait until the wave has been judged."""
        self._sent += 1
        if self._sent <= self.size or self.passed:
            return
        if self._verdict is None:
            self._verdict = asyncio.Event()
        # Set only when the wave passed: after a refused one the run is stopped, and its
        # held requests are cancelled here, never sent.
        await self._verdict.wait()

    def judge(self, outcome: Outcome) -> bool:
        """Count one response; True when it completes a first wave of nothing but refusals."""
        reason = refusal(outcome)
        if reason is None:
            self.decided = self.passed = True
            if self._verdict is not None:
                self._verdict.set()
            return False
        self.refusals[reason] += 1
        self.decided = sum(self.refusals.values()) >= self.size
        return self.decided

    def message(self, access_key_id: str | None) -> str:
        """Why the run stopped, naming the access key id of a signed target (never a secret)."""
        seen = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.refusals.items()))
        if access_key_id:
            return (
                f"every request of the first wave ({self.size}) was refused as unauthenticated "
                f"({seen}); they were signed with AWS access key id {access_key_id}: check "
                "that key's secret access key and session token, and that the endpoint is the "
                "one these credentials are for"
            )
        return (
            f"the front door refused every request of the first wave ({self.size}) with "
            f"401/403 ({seen}): check the credentials the target sends (its headers=)"
        )
