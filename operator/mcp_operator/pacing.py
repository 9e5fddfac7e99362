"""Sharing a cloud's throttling verdict among every resource that uses the same account (and region).

After a 429 no request of that class is sent before the cloud's Retry-After, and the waiting ones then
go out spaced at the cloud's documented refill rate instead of all at once: a fleet that hits the bucket
drains it at the rate it refills rather than in storms of rejected requests. Each target names its
classes and rates (e.g. reads/writes/deletes per account, or per-operation quotas per region).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from .concurrency import leave_place


class ThrottlePacer:
    def __init__(self, refill_per_second: Mapping[str, float]):
        self.refill_per_second = dict(refill_per_second)
        self._blocked_until = dict.fromkeys(self.refill_per_second, 0.0)
        self._next_slot = dict.fromkeys(self.refill_per_second, 0.0)

    async def admit(self, klass: str) -> None:
        now = time.monotonic()
        if now >= self._blocked_until[klass]:
            return
        slot = max(self._blocked_until[klass], self._next_slot[klass])
        self._next_slot[klass] = slot + 1 / self.refill_per_second[klass]
        leave_place()  # others' passes go on while this one waits its turn
        await asyncio.sleep(slot - now)

    def throttled(self, klass: str, retry_after: float) -> None:
        self._blocked_until[klass] = max(self._blocked_until[klass], time.monotonic() + retry_after)


class RequestBudget:
    """Keeps requests under a cloud's limit per window *before* it refuses any, for clouds where a refusal is costly
    (a lockout of the whole account for a window, say). A token bucket whose burst plus a window's refill stays
    within the limit: ``burst + rate x window <= limit``, so no window of that length ever sees more."""

    def __init__(self, limit: int, window: float, burst: int):
        if burst >= limit:
            raise ValueError("the burst must leave room for the window's refill")
        self.capacity = float(burst)
        self.rate = (limit - burst) / window
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def spend(self) -> None:
        async with self._lock:  # in order: a waiting request is not overtaken by a later one
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                leave_place()
                await asyncio.sleep(wait)
                self._tokens, self._stamp = 1.0, time.monotonic()
            self._tokens -= 1
