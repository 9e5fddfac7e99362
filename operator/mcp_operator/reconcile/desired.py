"""From an McpDeployment spec to the fully resolved desired state. No I/O.

The neutral part (server, env, origins) is read here; what only one cloud understands (account,
region, scaling, the parts of the spec that make a revision there) is read by that target's
``Connector.place`` and carried opaquely in ``Placement``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..api.models import McpDeploymentSpec, McpDeploymentStatus, RevisionSnapshot, Rollout, Verify
from ..contract import RecordedRevision, RevisionKey

if TYPE_CHECKING:
    from ..contract import Connector


class SpecError(Exception):
    """The spec cannot be reconciled as it is; ``field`` names what to change."""

    def __init__(self, field: str, message: str, reason: str = "InvalidSpec"):
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.reason = field, message, reason


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable whose value comes from a Kubernetes Secret key."""

    env_name: str
    secret_name: str
    key: str


@dataclass(frozen=True)
class Placement:
    """A target's reading of the spec."""

    where: Any  # the target's own resolved settings (account, region, scaling ...): opaque to the core
    snapshot: RevisionSnapshot  # what makes a revision, as kept in status for a rollback
    status_section: str  # the key of the target's own object in status (the same as its spec section)
    facts: Mapping[str, Any] = field(default_factory=dict)  # what it resolved (account, region ...), for that object
    authenticated: bool = False  # the cloud itself asks MCP clients for credentials (so any origin is no open door)


@dataclass(frozen=True)
class Desired:
    namespace: str
    name: str
    app_name: str
    image: str
    literal_env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    cpu: str
    memory: str
    allowed_origins: tuple[str, ...]
    placement: Placement
    revision_hash: str
    adopt: bool = False  # spec.adoptionPolicy is Adopt: a resource someone else made may be taken over
    verify: Verify = field(default_factory=Verify)  # the MCP check a revision passes before it takes traffic
    rollout: Rollout = field(default_factory=Rollout)  # how traffic moves to it once it passed: at once or in steps
    # The revisions status records, oldest first: only a target whose cloud carries no key of ours reads it.
    history: tuple[RecordedRevision, ...] = ()

    @property
    def owner(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def open_to_any_origin(self) -> bool:
        return "*" in self.allowed_origins

    @property
    def snapshot(self) -> RevisionSnapshot:
        return self.placement.snapshot


def snapshot_hash(snapshot: RevisionSnapshot) -> str:
    canonical = json.dumps(snapshot.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve(spec: McpDeploymentSpec, name: str, namespace: str, connector: Connector,
            recorded: Mapping[str, Any] | None = None) -> Desired:
    placement = connector.place(spec, name, namespace, recorded)
    literal = tuple((e.name, e.value) for e in spec.server.env if e.value is not None)
    secret = tuple(SecretEnv(e.name, e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key)
                   for e in spec.server.env if e.value_from is not None)
    return Desired(
        namespace=namespace,
        name=name,
        app_name=spec.server.name or name,
        image=spec.server.image or "",
        literal_env=literal,
        secret_env=secret,
        cpu=spec.server.resources.cpu,
        memory=spec.server.resources.memory,
        allowed_origins=tuple(spec.server.allowed_origins),
        placement=placement,
        revision_hash=snapshot_hash(placement.snapshot),
        adopt=spec.adoption_policy == "Adopt",
        verify=spec.verify,
        rollout=spec.rollout,
    )


def with_secrets_digest(desired: Desired, digest: str | None) -> Desired:
    """The desired state whose revision also depends on the Secret values it sends (by their digest)."""
    if digest is None:
        return desired
    snapshot = desired.snapshot.model_copy(update={"secrets_digest": digest})
    placement = dataclasses.replace(desired.placement, snapshot=snapshot)
    return dataclasses.replace(desired, placement=placement, revision_hash=snapshot_hash(snapshot))


def with_history(desired: Desired, status: McpDeploymentStatus) -> Desired:
    """The desired state with what status records of its revisions (for a cloud that can carry none of our keys)."""
    history = tuple(RecordedRevision(RevisionKey(r.number, r.hash), r.name or None, r.created_at)
                    for r in status.revisions if r.state != "Gone")
    return dataclasses.replace(desired, history=history)


Where = TypeVar("Where")


def where_of(desired: Desired, kind: type[Where]) -> Where:
    """The target's own resolved settings (``Placement.where``), checked to be that target's ``kind``: a target handed
    another target's resource is a bug, said at once rather than as a missing attribute later."""
    where = desired.placement.where
    if not isinstance(where, kind):
        raise TypeError(f"a target reading {kind.__name__} was given another target's resource ({type(where).__name__})")
    return where
