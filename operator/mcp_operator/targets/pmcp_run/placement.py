"""Where a pmcp.run server goes and what makes one of its deployments: spec.pmcpRun with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from ...api.models import Artifact, PmcpRunOAuth
from ...reconcile.desired import Desired, where_of

RUNTIME = "provided.al2023"  # what cargo-pmcp always sends


@dataclass(frozen=True)
class PmcpRunPlacement:
    api_url: str
    project: str
    artifact: Artifact
    server_version: str | None
    memory_size: int
    timeout: int
    tier: str | None
    allow_composition: bool | None
    internal_only: bool | None
    composition_description: str | None
    oauth: PmcpRunOAuth


def pmcp_placement(desired: Desired) -> PmcpRunPlacement:
    return where_of(desired, PmcpRunPlacement)
