"""Where a Container App goes and how it scales: spec.azure with the operator's defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from ...reconcile.desired import Desired, where_of


@dataclass(frozen=True)
class AppPlacement:
    subscription_id: str
    resource_group: str
    environment: str
    location: str
    target_port: int
    min_replicas: int
    max_replicas: int


def app_placement(desired: Desired) -> AppPlacement:
    return where_of(desired, AppPlacement)
