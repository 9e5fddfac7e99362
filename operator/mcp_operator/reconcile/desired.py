"""From an McpDeployment spec (plus operator settings) to the fully resolved desired state. No I/O."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from ..api.models import McpDeploymentSpec, RevisionSnapshot, TargetType
from ..settings import Settings

BUILTIN_LOCATION = "eastus"
CREATED_BY_TAG = "mcp.deploy.dev/created-by"
OWNER_TAG = "mcp.deploy.dev/owner"
OPERATOR_NAME = "mcp-operator"


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

    @property
    def cloud_secret_name(self) -> str:
        """A Container Apps secret name: lower-case letters, digits, '-' and '.', at most 253 characters."""
        raw = re.sub(r"[^a-z0-9.-]+", "-", f"{self.secret_name}-{self.key}".lower()).strip("-.")
        if len(raw) > 60:
            raw = raw[:51] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
        return raw or "secret"


@dataclass(frozen=True)
class Desired:
    namespace: str
    name: str
    app_name: str
    subscription_id: str
    resource_group: str
    environment: str
    location: str
    image: str
    literal_env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    cpu: str
    memory: str
    target_port: int
    min_replicas: int
    max_replicas: int
    allowed_origins: tuple[str, ...]
    snapshot: RevisionSnapshot
    revision_hash: str

    @property
    def owner(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def open_to_any_origin(self) -> bool:
        return "*" in self.allowed_origins


def snapshot_of(spec: McpDeploymentSpec) -> RevisionSnapshot:
    azure = spec.azure
    return RevisionSnapshot(
        image=spec.server.image or "",
        env=spec.server.env,
        resources=spec.server.resources,
        target_port=azure.target_port if azure else 8080,
        min_replicas=azure.min_replicas if azure else 1,
        max_replicas=azure.max_replicas if azure else 10,
    )


def snapshot_hash(snapshot: RevisionSnapshot) -> str:
    canonical = json.dumps(snapshot.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve(spec: McpDeploymentSpec, name: str, namespace: str, settings: Settings) -> Desired:
    if spec.target.type != TargetType.AZURE_CONTAINER_APPS:
        raise SpecError("spec.target.type", f"target type {spec.target.type} is not supported yet by this operator; "
                        "only azure-container-apps is reconciled", reason="TargetNotSupported")
    if not spec.server.image:
        raise SpecError("spec.server.image", "an image is required for azure-container-apps")
    azure = spec.azure
    app_name = spec.server.name or name
    subscription = (azure.subscription_id if azure else None) or settings.default_subscription_id
    if not subscription:
        raise SpecError("spec.azure.subscriptionId", "no Azure subscription: set spec.azure.subscriptionId, or configure the "
                        "operator's default (MCP_DEFAULT_SUBSCRIPTION_ID / helm value azure.subscriptionId)")
    literal = tuple((e.name, e.value) for e in spec.server.env if e.value is not None)
    secret = tuple(SecretEnv(e.name, e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key)
                   for e in spec.server.env if e.value_from is not None)
    snapshot = snapshot_of(spec)
    return Desired(
        namespace=namespace,
        name=name,
        app_name=app_name,
        subscription_id=subscription,
        resource_group=(azure.resource_group if azure else None) or f"{app_name}-rg",
        environment=(azure.environment if azure else None) or f"{app_name}-env",
        location=(azure.location if azure else None) or settings.default_location or BUILTIN_LOCATION,
        image=spec.server.image,
        literal_env=literal,
        secret_env=secret,
        cpu=spec.server.resources.cpu,
        memory=spec.server.resources.memory,
        target_port=snapshot.target_port,
        min_replicas=snapshot.min_replicas,
        max_replicas=snapshot.max_replicas,
        allowed_origins=tuple(spec.server.allowed_origins),
        snapshot=snapshot,
        revision_hash=snapshot_hash(snapshot),
    )

