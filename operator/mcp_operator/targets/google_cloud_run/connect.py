"""How this target reads a spec (``place``) and builds targets for resources (``CloudRunConnector``).

One target per project, region and identity: resources that share them share the Admin API's rate quotas (one
pacer) and one connection pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ...api.models import Gcp, McpDeploymentSpec, RevisionSnapshot, TargetSnapshot
from ...contract import Credentials, TerminalError
from ...reconcile.desired import Desired, Placement, SpecError
from ...settings import Settings
from .client import GoogleClient, TokenSource, load_credentials
from .placement import INGRESS, ServicePlacement, service_placement
from .settings import GcpSettings
from .target import CloudRunTarget

TYPE = "google-cloud-run"
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A tag's URL is one DNS label, <tag>---<service>-<10-character hash>-<region code>: with tags up to r99999 the
# service name can have 40 characters.
MAX_SERVICE_NAME = 40
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
CREDENTIALS_KEY = "credentials.json"


class CloudRunConnector:
    type = TYPE

    def __init__(self, settings: Settings, gcp: GcpSettings | None = None):
        self.settings = gcp or GcpSettings.from_env(settings)
        self.targets: dict[tuple[str, ...], CloudRunTarget] = {}

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        gcp = spec.gcp
        project = (gcp.project_id if gcp else None) or self.settings.default_project or (recorded or {}).get("projectId")
        if not project:
            raise SpecError("spec.gcp.projectId", "no Google Cloud project: set spec.gcp.projectId, or the operator's "
                                                  "GOOGLE_CLOUD_PROJECT")
        if not spec.server.image:
            raise SpecError("spec.server.image", f"{TYPE} runs a container image: set server.image")
        service = spec.server.name or name
        if not SERVICE_NAME.fullmatch(service) or len(service) > MAX_SERVICE_NAME:
            raise SpecError("spec.server.name", f"{service!r} cannot name a Cloud Run service here: lower-case letters, "
                                                "digits and '-', starting with a letter, not ending with '-', at most "
                                                f"{MAX_SERVICE_NAME} characters (each revision's tag URL must fit one DNS "
                                                "label)")
        for variable in spec.server.env:
            if variable.name in RESERVED_ENV:
                raise SpecError("spec.server.env", f"{variable.name} is set by Cloud Run itself; remove it")
        settings = gcp or Gcp()
        where = ServicePlacement(
            project=project, region=settings.region, service=service, image=spec.server.image, cpu=settings.cpu,
            memory=settings.memory, port=settings.port, concurrency=settings.concurrency,
            timeout_seconds=settings.timeout_seconds, service_account=settings.service_account,
            execution_environment=settings.execution_environment, min_instances=settings.min_instances,
            max_instances=settings.max_instances, ingress=INGRESS[settings.ingress], public=settings.allow_unauthenticated)
        revision = {"cpu": where.cpu, "memory": where.memory, "port": where.port, "concurrency": where.concurrency,
                    "timeoutSeconds": where.timeout_seconds}
        if where.service_account:
            revision["serviceAccount"] = where.service_account
        if where.execution_environment:
            revision["executionEnvironment"] = where.execution_environment
        snapshot = RevisionSnapshot(image=spec.server.image, env=spec.server.env, resources=spec.server.resources,
                                    target=TargetSnapshot(section="gcp", settings=revision))
        facts = {"projectId": project, "region": where.region, "service": service}
        return Placement(where=where, snapshot=snapshot, status_section="gcp", facts=facts)

    async def connect(self, desired: Desired, secret: Credentials | None) -> CloudRunTarget:
        where = service_placement(desired)
        if secret is None:
            key: tuple[str, ...] = (where.project, where.region, "operator-identity")
            if key not in self.targets:
                self.targets[key] = self._target(None)
            return self.targets[key]
        key = (where.project, where.region, secret.where, secret.version)
        if key not in self.targets:
            for old in [k for k in self.targets if k[:3] == key[:3]]:  # the Secret changed: drop what was built from it
                await self.targets.pop(old).close()
            raw = secret.data.get(CREDENTIALS_KEY)
            try:
                info = json.loads(raw) if raw else None
            except ValueError:
                info = None
            if not isinstance(info, dict):
                raise TerminalError("CredentialsInvalid", f"Secret {secret.where} must hold {CREDENTIALS_KEY}: a service-"
                                                          "account key file or an external-account configuration (JSON)")
            self.targets[key] = self._target(info)
        return self.targets[key]

    def _target(self, info: Mapping[str, Any] | None) -> CloudRunTarget:
        credentials, _project = load_credentials(info)
        return CloudRunTarget(self.settings, GoogleClient(self.settings, TokenSource(credentials, self.settings.ca_bundle)))

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
        self.targets.clear()


__all__ = ["TYPE", "CloudRunConnector"]
