"""Token buckets: how clouds meter requests per account (or subscription) and class of request."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Bucket:
    size: float
    refill: float
    tokens: float
    stamp: float

    def take(self, now: float) -> tuple[bool, int, float]:
        """Takes a token; returns (allowed, remaining, seconds until the next token)."""
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens), 0.0
        return False, 0, (1 - self.tokens) / self.refill


@dataclass
class TokenBuckets:
    """One bucket per (scope, class); ``limits`` maps a class to (bucket size, refill per second)."""

    limits: dict[str, tuple[float, float]]
    enabled: bool = False
    clock: Callable[[], float] = time.monotonic
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)

    def take(self, scope: str, klass: str) -> tuple[bool, int, int]:
        """Returns (allowed, remaining, retry_after_seconds) for one request."""
        size, refill = self.limits[klass]
        if not self.enabled:
            return True, int(size) - 1, 0
        key = (scope.lower(), klass)
        now = self.clock()
        bucket = self.buckets.setdefault(key, Bucket(size, refill, size, now))
        allowed, remaining, wait = bucket.take(now)
        return allowed, remaining, max(1, math.ceil(wait)) if not allowed else 0

    def reset(self) -> None:
        self.buckets.clear()
