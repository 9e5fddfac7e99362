"""How this target reads a spec (``place``) and builds targets for resources (``PmcpRunConnector``).

One target per API URL and credentials: resources that share them share the discovery document, the token and the
connection pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...api.models import McpDeploymentSpec, PmcpRun, RevisionSnapshot, TargetSnapshot
from ...artifacts import ArtifactFetcher
from ...contract import Credentials, TerminalError
from ...reconcile.desired import Desired, Placement, SpecError
from ...settings import Settings
from . import client
from .placement import PmcpRunPlacement, pmcp_placement
from .settings import PmcpRunSettings
from .target import PmcpRunTarget

TYPE = "pmcp-run"
KEYS = ("PMCP_CLIENT_ID", "PMCP_CLIENT_SECRET", "PMCP_ACCESS_TOKEN")


class PmcpRunConnector:
    type = TYPE

    def __init__(self, settings: Settings, pmcp: PmcpRunSettings | None = None):
        self.settings = pmcp or PmcpRunSettings.from_env(settings)
        self.fetcher = ArtifactFetcher(self.settings.ca_bundle)
        self.targets: dict[tuple[str, ...], PmcpRunTarget] = {}

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        run = spec.pmcp_run or PmcpRun()
        if spec.server.artifact is None:
            raise SpecError("spec.server.artifact", f"{TYPE} deploys what cargo pmcp deploy builds: set server.artifact to "
                                                    "its template and bootstrap (an OCI artifact by digest, or an HTTPS "
                                                    "URL with sha256)")
        api_url = (run.api_url or (recorded or {}).get("apiUrl") or self.settings.api_url).rstrip("/")
        where = PmcpRunPlacement(api_url=api_url, project=run.project_name or spec.server.name or name,
                                 artifact=spec.server.artifact, server_version=run.server_version,
                                 memory_size=run.memory_size, timeout=run.timeout, tier=run.tier,
                                 allow_composition=run.allow_composition, internal_only=run.internal_only,
                                 composition_description=run.composition_description, oauth=run.oauth)
        deployment = {k: v for k, v in run.model_dump(by_alias=True, mode="json").items()
                      if k not in ("apiUrl", "projectName", "oauth") and v is not None}
        snapshot = RevisionSnapshot(image=spec.server.artifact.reference, artifact=spec.server.artifact, env=spec.server.env,
                                    resources=spec.server.resources,
                                    target=TargetSnapshot(section="pmcpRun", settings=deployment))
        return Placement(where=where, snapshot=snapshot, status_section="pmcpRun",
                         facts={"apiUrl": api_url, "projectName": where.project}, authenticated=run.oauth.enabled)

    async def connect(self, desired: Desired, secret: Credentials | None) -> PmcpRunTarget:
        where = pmcp_placement(desired)
        if secret is None:
            key: tuple[str, ...] = (where.api_url, "operator")
            found = client.Credentials("the operator's PMCP_CLIENT_ID/PMCP_CLIENT_SECRET", self.settings.client_id,
                                       self.settings.client_secret, self.settings.access_token)
            if not found.usable:
                raise TerminalError("CredentialsInvalid", "no pmcp.run credentials: set the operator's PMCP_CLIENT_ID and "
                                                          "PMCP_CLIENT_SECRET (or PMCP_ACCESS_TOKEN), or spec.credentials")
        else:
            key = (where.api_url, secret.where, secret.version)
            for old in [k for k in self.targets if k[:2] == key[:2] and k != key]:  # the Secret changed
                await self.targets.pop(old).close()
            found = client.Credentials(f"Secret {secret.where}", secret.data.get(KEYS[0]), secret.data.get(KEYS[1]),
                                       secret.data.get(KEYS[2]))
            if not found.usable:
                raise TerminalError("CredentialsInvalid", f"Secret {secret.where} must hold PMCP_CLIENT_ID and "
                                                          "PMCP_CLIENT_SECRET, or PMCP_ACCESS_TOKEN")
        if key not in self.targets:
            graphql = self.settings.graphql_url if where.api_url == self.settings.api_url else None
            self.targets[key] = PmcpRunTarget(client.PmcpRunClient(where.api_url, found, self.settings.ca_bundle, graphql),
                                              self.fetcher)
        return self.targets[key]

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
        self.targets.clear()


__all__ = ["TYPE", "PmcpRunConnector"]
