"""Sharing a cloud's throttling verdict among every resource that uses the same account (and region).

After a 429 no request of that class is sent before the cloud's Retry-After, and the waiting ones then
go out spaced at the cloud's documented refill rate instead of all at once: a fleet that hits the bucket
drains it at the rate it refills rather than in storms of rejected requests. Each target names its
classes and rates (e.g. reads/writes/deletes per account, or per-operation quotas per region).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from itertools import takewhile

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
    (a lockout of the whole account for a window, say). A sliding window: at most ``limit`` requests in any ``window``
    seconds (so a fixed window of the cloud's never sees more either), and at most ``per_second`` in any second. A
    fleet spends the whole first window at once, then as the window slides, rather than a trickle from the start."""

    def __init__(self, limit: int, window: float, per_second: int = 50):
        self.limit, self.window, self.per_second = limit, window, per_second
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def spend(self) -> None:
        async with self._lock:  # in order: a waiting request is not overtaken by a later one
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                second_ago = now - 1.0
                last_second = sum(1 for _ in takewhile(second_ago.__lt__, reversed(self._sent)))
                if len(self._sent) < self.limit and last_second < self.per_second:
                    self._sent.append(now)
                    return
                waits = [self._sent[0] + self.window - now] if len(self._sent) >= self.limit else []
                if last_second >= self.per_second:
                    waits.append(self._sent[-self.per_second] + 1.0 - now)
                leave_place()  # others' passes go on while this one waits its turn
                await asyncio.sleep(max(min(waits), 0.001))
