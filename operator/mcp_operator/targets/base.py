"""The one small interface the reconciler uses to talk to a cloud, and the values it exchanges.

A target hosts *revisions* (immutable versions of the server) and routes traffic between them:
Container Apps revisions, Lambda versions behind an alias, Cloud Run revisions, Workers versions
behind a deployment. The reconciler only ever asks: what is there (observe), make a revision for
this spec (prepare, then apply), send all traffic to that revision (shift_traffic), stop paying for these
(deactivate), remove it all (delete), and show me the logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from ..reconcile.desired import Desired


class TransientError(Exception):
    """Worth retrying as it is: dropped connections, timeouts, 5xx, throttling, an operation in progress."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.reason, self.message, self.retry_after = reason, message, retry_after


class TerminalError(Exception):
    """Retrying will not help until the spec, credentials or the cloud side change."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class ObservedRevision:
    name: str
    image: str
    active: bool
    provisioning: str  # Provisioning, Provisioned, Failed, Deprovisioning, Deprovisioned
    running: str
    traffic_weight: int
    created: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.provisioning == "Failed" or self.running == "Failed"

    @property
    def ready(self) -> bool:
        return self.active and self.provisioning == "Provisioned" and self.running in ("Running", "RunningAtMaxScale")


@dataclass(frozen=True)
class Observed:
    """The cloud side of one McpDeployment, as read now."""

    exists: bool
    provisioning_state: str | None = None
    fqdn: str | None = None
    revisions: dict[str, ObservedRevision] = field(default_factory=dict)  # keyed by lower-case name
    traffic: dict[str, int] = field(default_factory=dict)  # lower-case revision name -> weight
    config_drift: tuple[str, ...] = ()  # human-readable differences of the non-revision settings
    # False when only the app was read (revisions inferred from it): absent revisions are then unknown, not gone.
    complete: bool = True

    def revision(self, name: str | None) -> ObservedRevision | None:
        return self.revisions.get(name.lower()) if name else None

    @property
    def serving(self) -> str | None:
        """The revision that receives all traffic, if one does."""
        for name, weight in self.traffic.items():
            if weight == 100:
                found = self.revisions.get(name)
                return found.name if found else name
        return None


@dataclass(frozen=True)
class Accepted:
    """A cloud write was accepted; its result shows up in a later observe. Retry-After says when to look."""

    retry_after: float | None = None


@dataclass(frozen=True)
class Prepared:
    """Whether what an app needs around it (shared infrastructure) is there, and what this call created."""

    ready: bool
    retry_after: float | None = None  # when not ready: when to look again
    created_infrastructure: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deletion:
    done: bool
    retry_after: float | None = None
    notes: tuple[str, ...] = ()


class Target(Protocol):
    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        """The app and (when ``detailed``, or when the app alone cannot tell) all its revisions."""
        ...

    async def prepare(self, desired: Desired) -> Prepared:
        """Creates what the app needs around it when it is missing (for Container Apps: the provider
        registration, resource group and environment), and says whether it is ready for ``apply``."""
        ...

    async def apply(self, desired: Desired, secrets: dict[str, str], revision_suffix: str,
                    serving_revision: str | None) -> Accepted:
        """Creates or updates the app so that a revision with ``revision_suffix`` runs ``desired``.

        Traffic stays on ``serving_revision`` (all of it on the new revision when there is none yet).
        Called once ``prepare`` said ready.
        """
        ...

    async def shift_traffic(self, desired: Desired, revision: str, activate: bool) -> Accepted: ...

    async def update_configuration(self, desired: Desired, secrets: dict[str, str], serving_revision: str) -> Accepted:
        """Corrects drift of settings that do not make a revision (ingress, CORS, secrets)."""
        ...

    async def deactivate(self, desired: Desired, revisions: list[str]) -> None: ...

    async def delete(self, desired: Desired) -> Deletion: ...

    def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]: ...
