"""ARM's subscription throttling: one token bucket per subscription and operation class."""

from __future__ import annotations

from dataclasses import dataclass, field

from simcore.buckets import TokenBuckets

# Documented Azure Resource Manager limits: (bucket size, refill per second).
DOCUMENTED_LIMITS: dict[str, tuple[float, float]] = {
    "reads": (250, 25),
    "writes": (200, 10),
    "deletes": (200, 10),
}


def operation_class(method: str) -> str:
    """ARM counts GET/HEAD as reads, DELETE as deletes, and every other method (POST too) as writes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


@dataclass
class Throttle(TokenBuckets):
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DOCUMENTED_LIMITS))
