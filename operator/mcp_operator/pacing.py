"""Sharing a cloud's throttling verdict among every resource that uses the same account (and region).

After a 429 no request of that class is sent before the cloud's Retry-After, and the waiting ones then
go out spaced at the cloud's documented refill rate instead of all at once: a fleet that hits the bucket
drains it at the rate it refills rather than in storms of rejected requests. Each target names its
classes and rates (e.g. reads/writes/deletes per subscription, or per-operation quotas per region).
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
