"""Simulated time: what takes how long (a latency model by operation kind), and what is due when."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Schedule:
    """Actions that become true after a latency; ``settle`` applies every action that is due."""

    def __init__(self, clock: Callable[[], float], latency: dict[str, float]):
        self.clock = clock
        self.latency = dict(latency)  # operation kind -> seconds; tests and controls change it live
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def later(self, delay_key: str, action: Callable[[], None], after: float | None = None) -> float:
        """Runs ``action`` once ``delay_key``'s latency has passed since now, or since ``after`` (the due time of the step
        before, so that a chain of steps takes the sum of their latencies however seldom anyone looks)."""
        due = (self.clock() if after is None else after) + max(self.latency.get(delay_key, 0.0), 0.0)
        heapq.heappush(self._due, (due, next(self._seq), action))
        return due

    def settle(self) -> None:
        now = self.clock()
        while self._due and self._due[0][0] <= now:
            _, _, action = heapq.heappop(self._due)
            action()
