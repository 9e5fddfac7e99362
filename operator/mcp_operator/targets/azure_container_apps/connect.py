"""How this target reads a spec (``place``) and builds targets for resources (``ContainerAppsConnector``).

One target per subscription and identity: resources that share them share ARM's throttling verdict,
the infrastructure checks and one bounded connection pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...api.models import McpDeploymentSpec, RevisionSnapshot, TargetSnapshot
from ...contract import Credentials, Target
from ...reconcile.desired import Desired, Placement, SpecError
from ...settings import Settings
from . import credentials
from .placement import AppPlacement, app_placement
from .settings import AzureSettings
from .target import ContainerAppsTarget, SharedSession

TYPE = "azure-container-apps"
BUILTIN_LOCATION = "eastus"


class ContainerAppsConnector:
    type = TYPE

    def __init__(self, settings: Settings, azure: AzureSettings | None = None):
        self.settings = azure or AzureSettings.from_env(settings)
        self.targets: dict[tuple[str, ...], ContainerAppsTarget] = {}
        self.session: SharedSession | None = None

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        if not spec.server.image:
            raise SpecError("spec.server.image", f"an image is required for {TYPE}")
        azure = spec.azure
        app_name = spec.server.name or name
        subscription = ((azure.subscription_id if azure else None) or self.settings.default_subscription_id
                        or (recorded or {}).get("subscriptionId"))
        if not subscription:
            raise SpecError("spec.azure.subscriptionId", "no Azure subscription: set spec.azure.subscriptionId, or configure "
                            "the operator's default (MCP_DEFAULT_SUBSCRIPTION_ID / helm value azure.subscriptionId)")
        where = AppPlacement(
            subscription_id=subscription,
            resource_group=(azure.resource_group if azure else None) or f"{app_name}-rg",
            environment=(azure.environment if azure else None) or f"{app_name}-env",
            location=((azure.location if azure else None) or self.settings.default_location
                      or (recorded or {}).get("location") or BUILTIN_LOCATION),
            target_port=azure.target_port if azure else 8080,
            min_replicas=azure.min_replicas if azure else 1,
            max_replicas=azure.max_replicas if azure else 10,
        )
        scaling = {"targetPort": where.target_port, "minReplicas": where.min_replicas, "maxReplicas": where.max_replicas}
        snapshot = RevisionSnapshot(image=spec.server.image, env=spec.server.env, resources=spec.server.resources,
                                    target=TargetSnapshot(section="azure", settings=scaling))
        facts = {"subscriptionId": where.subscription_id, "resourceGroup": where.resource_group,
                 "environment": where.environment, "location": where.location, "appName": app_name}
        return Placement(where=where, snapshot=snapshot, status_section="azure", facts=facts)

    def _session(self) -> SharedSession:
        if self.session is None:
            self.session = SharedSession(self.settings)  # needs the running loop, hence not at construction
        return self.session

    async def connect(self, desired: Desired, secret: Credentials | None) -> Target:
        subscription = app_placement(desired).subscription_id
        if secret is None:
            key: tuple[str, ...] = (subscription, "operator-identity")
            if key not in self.targets:
                session = self._session()
                self.targets[key] = ContainerAppsTarget(
                    self.settings, credentials.operator_identity(self.settings, session.options()), subscription, session)
            return self.targets[key]
        key = (subscription, secret.where, secret.version)
        if key not in self.targets:
            for old in [k for k in self.targets if k[:2] == key[:2]]:  # the Secret changed: drop clients built from it
                await self.targets.pop(old).close()
            session = self._session()
            credential = credentials.from_secret(self.settings, dict(secret.data), secret.where, session.options())
            self.targets[key] = ContainerAppsTarget(self.settings, credential, subscription, session)
        return self.targets[key]

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
        self.targets.clear()
        if self.session:
            await self.session.close()
            self.session = None
