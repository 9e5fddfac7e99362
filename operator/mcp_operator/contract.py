"""The neutral vocabulary between the reconciler and the clouds.

A target hosts *revisions* (immutable versions of the server) and routes traffic between them: a
cloud's revisions, or versions behind an alias or a deployment. The reconciler only ever asks a target: what is there (observe), get what a
revision needs around it ready (prepare), make the revision with key K (create_revision), send traffic
so (route), stop paying for these (retire), correct settings that make no revision (reconfigure),
remove it all (delete), and show me the logs.

Revisions are named by a ``RevisionKey`` (our number + the spec hash). Each target carries the key in
whatever the cloud lets it set (a revision suffix, a version description, a label, an annotation) and
reads it back in ``observe``; a revision's cloud id may be chosen by us or assigned by the cloud. A cloud
that can carry nothing of ours (``Capabilities.carries_marks`` False) is given the history instead
(``Desired.history``): the target keys the revisions it finds from what status recorded of them.
Nothing here knows any cloud; a target's own folder under ``targets/`` is where a cloud is known.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .api.models import McpDeploymentSpec
    from .reconcile.desired import Desired, Placement
    from .settings import Settings

# Tags/labels that mark a cloud resource as ours, and whose it is: the same words on every cloud.
CREATED_BY_TAG = "mcp.deploy.dev/created-by"
OWNER_TAG = "mcp.deploy.dev/owner"
OPERATOR_NAME = "mcp-operator"


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
class RevisionKey:
    """What makes a revision ours and which one: the number we gave it and the hash of its spec."""

    number: int
    hash: str

    @property
    def label(self) -> str:
        """A short form that fits every cloud's naming rules (lower-case letters, digits, '-')."""
        return f"r{self.number}-{self.hash[:8]}"

    @classmethod
    def from_label(cls, label: str) -> RevisionKey | None:
        """The key of a label made by ``label`` (the hash is its first 8 characters), else None."""
        number, _, short_hash = label.partition("-")
        if not (number[:1] == "r" and number[1:].isdigit() and len(short_hash) == 8):
            return None
        return cls(int(number[1:]), short_hash)

    def matches(self, number: int, full_hash: str) -> bool:
        """Whether this key (possibly read back from a cloud with a shortened hash) names that revision."""
        return self.number == number and full_hash.startswith(self.hash)


# Why an MCP check failed (verify.py decides, the planner reacts); the definitive ones will not change by waiting.
MCP_HOST_REJECTED = "McpHostRejected"
MCP_TOOLS_MISSING = "McpToolsMissing"
MCP_UNREACHABLE = "McpUnreachable"
MCP_HANDSHAKE_FAILED = "McpHandshakeFailed"
MCP_UNAUTHORIZED = "McpUnauthorized"
MCP_SMOKE_TEST_FAILED = "McpSmokeTestFailed"
MCP_DEFINITIVE_FAILURES = (MCP_HOST_REJECTED, MCP_TOOLS_MISSING, MCP_UNAUTHORIZED, MCP_SMOKE_TEST_FAILED)


class Phase(enum.StrEnum):
    PENDING = "Pending"  # the cloud has it and is still starting it
    READY = "Ready"  # it runs and could take traffic now
    FAILED = "Failed"  # it will not run as it is
    RETIRED = "Retired"  # kept, but scaled away (costs nothing); must be revived before it takes traffic


@dataclass(frozen=True)
class ObservedRevision:
    cloud_id: str  # the cloud's own name or id for it (chosen by us or assigned by the cloud)
    key: RevisionKey | None  # None for a revision we did not make
    phase: Phase
    percent: int = 0  # share of traffic it receives now
    message: str | None = None  # why it failed, in the cloud's words
    created: str | None = None
    url: str | None = None  # where this revision alone answers (for the MCP check before traffic), if it can
    # The cloud has it, but create_revision did not finish what comes with it (e.g. its own URL): call it again.
    unfinished: bool = False


@dataclass(frozen=True)
class Observed:
    """The cloud side of one McpDeployment, as read now."""

    exists: bool
    revisions: tuple[ObservedRevision, ...] = ()
    busy: str | None = None  # set while the cloud runs an operation on it: what it is doing
    host: str | None = None  # where it answers (a DNS name); the URL is https://<host>/
    url: str | None = None  # the URL, where the cloud gives one with a path of its own (else https://<host>/)
    facts: Mapping[str, str] = field(default_factory=dict)  # the cloud's own words on it, for status.<section>
    config_drift: tuple[str, ...] = ()  # human-readable differences of settings that make no revision
    # False when only part was read (revisions inferred): absent revisions are then unknown, not gone.
    complete: bool = True
    # The marks (tags, labels) it carries that say who made it: all of them, as found (reconcile/ownership.py).
    owner_marks: Mapping[str, str] = field(default_factory=dict)
    resource: str = ""  # what it is, for messages: its kind, name and where it lives

    def find(self, number: int, full_hash: str, cloud_id: str | None = None) -> ObservedRevision | None:
        """Our revision ``number`` of that spec hash: by its cloud id when known, else by the key it carries."""
        for revision in self.revisions:
            if cloud_id and revision.cloud_id.lower() == cloud_id.lower():
                return revision
            if revision.key is not None and revision.key.matches(number, full_hash):
                return revision
        return None

    @property
    def serving(self) -> ObservedRevision | None:
        """The revision that receives all traffic, if one does."""
        return next((r for r in self.revisions if r.percent == 100), None)


@dataclass(frozen=True)
class Capabilities:
    """What a target can do, so that the planner decides without knowing the cloud."""

    cloud_named_revisions: bool  # we choose a revision's cloud id (else the cloud assigns it on creation)
    max_traffic_split: int  # how many revisions can share traffic at once (1: no split at all)
    idle_revisions_cost: bool  # whether a revision without traffic is billed until retired
    standby_revisions: int = 0  # idle revisions kept running for an instant rollback (when idle ones cost)
    # False: the cloud keeps no versions to switch between. Each revision is a new deployment that replaces the
    # serving one when it succeeds (a failed one leaves it serving); the replaced ones show as RETIRED and can never
    # serve again, so a rollback by spec edit deploys the kept artifact once more, as a new revision.
    has_revisions: bool = True
    # False: the cloud keeps no tags, labels or descriptions we could set; what is ours, and which revision is which,
    # is known only from the history (Desired.history) and from what this process created.
    carries_marks: bool = True
    # Revisions the history no longer holds are deleted (retire): they count against a quota, and a rollback by
    # spec edit cannot reach them anyway.
    deletes_beyond_history: bool = False


@dataclass(frozen=True)
class RecordedRevision:
    """What status records of one revision, handed to a target whose cloud carries no key (see ``Desired.history``)."""

    key: RevisionKey
    cloud_id: str | None  # None: the intent is recorded, the cloud's id for it is not known yet
    since: str  # when the operator recorded the intent (RFC 3339): a revision created before it is not this one


@dataclass(frozen=True)
class Accepted:
    """A cloud write was accepted; its result shows up in a later observe. ``retry_after`` says when to look."""

    retry_after: float | None = None


@dataclass(frozen=True)
class Prepared:
    """Whether what a revision needs around it (shared infrastructure) is there, and what this call created."""

    ready: bool
    retry_after: float | None = None  # when not ready: when to look again
    created_infrastructure: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deletion:
    done: bool
    retry_after: float | None = None
    notes: tuple[str, ...] = ()
    warning: str | None = None  # the cloud refused or failed the deletion: said as a Warning, and tried again


@dataclass(frozen=True)
class Credentials:
    """The keys of a ``spec.credentials`` Secret (never logged), and which version of it they are."""

    where: str  # namespace/name, for messages
    data: Mapping[str, str] = field(repr=False)
    version: str = ""


class Target(Protocol):
    """One cloud account's view, shared by every resource that uses the same credentials there."""

    capabilities: Capabilities

    def revision_id(self, desired: Desired, key: RevisionKey) -> str | None:
        """The cloud id revision ``key`` will have, when the target names it; None when the cloud assigns it."""
        ...

    async def observe(self, desired: Desired, detailed: bool = True) -> Observed:
        """The resource and (when ``detailed``, or when the resource alone cannot tell) all its revisions."""
        ...

    async def prepare(self, desired: Desired) -> Prepared:
        """Creates what a revision needs around it when it is missing, and says whether it is ready."""
        ...

    async def create_revision(self, desired: Desired, secrets: Mapping[str, str], key: RevisionKey,
                              serving: str | None) -> Accepted:
        """Makes revision ``key`` run ``desired`` (idempotent: a second call for the same key makes no second
        revision). Traffic stays on ``serving`` (the cloud id of the serving revision), or goes to the new
        revision when nothing serves yet. ``secrets`` maps environment variable names to values."""
        ...

    async def route(self, desired: Desired, traffic: Mapping[str, int], revive: tuple[str, ...]) -> Accepted:
        """Sends traffic so: cloud id -> percent (summing to 100). ``revive`` are retired ones among them."""
        ...

    async def reconfigure(self, desired: Desired, secrets: Mapping[str, str], serving: str) -> Accepted:
        """Corrects settings that make no revision (ingress, CORS, secrets, ...), keeping traffic on ``serving``."""
        ...

    async def retire(self, desired: Desired, cloud_ids: tuple[str, ...]) -> None:
        """Stops paying for revisions that have no traffic (where idle revisions cost), or deletes those beyond the
        history (where the target ``deletes_beyond_history``)."""
        ...

    async def delete(self, desired: Desired) -> Deletion:
        """Removes what this resource owns; called again until it says done."""
        ...

    def logs(self, desired: Desired, revision: str | None, tail: int, follow: bool) -> AsyncIterator[str]: ...


class Connector(Protocol):
    """Builds targets for resources of one ``target.type``: credentials, clients, shared sessions.

    Targets are cached per account and credentials; ``connect`` is cheap once one exists.
    """

    type: str

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        """The target's own reading of the spec: where it goes, and what of it makes a revision.

        ``recorded`` is the target's status section as the operator wrote it: a client whose own configuration
        lacks the operator's defaults uses it where the spec says nothing. Raises
        ``reconcile.desired.SpecError`` naming the field when the spec cannot be placed."""
        ...

    async def connect(self, desired: Desired, credentials: Credentials | None) -> Target:
        """The target for ``desired``: with the operator's own identity, or with ``credentials``."""
        ...

    async def close(self) -> None: ...


class ConnectorFactory(Protocol):
    def __call__(self, settings: Settings) -> Connector: ...

