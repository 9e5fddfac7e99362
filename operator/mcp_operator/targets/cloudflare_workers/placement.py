"""Where a Worker goes and what makes one of its versions: spec.cloudflare with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from ...api.models import Artifact
from ...reconcile.desired import Desired, where_of

REFUSED = "(upload refused)"  # the cloud id of a revision whose upload Cloudflare refused: it has no version


@dataclass(frozen=True)
class WorkerPlacement:
    account: str
    script: str
    artifact: Artifact
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    workers_dev: bool
    preview_urls: bool
    main_module: str | None


def worker_placement(desired: Desired) -> WorkerPlacement:
    return where_of(desired, WorkerPlacement)
