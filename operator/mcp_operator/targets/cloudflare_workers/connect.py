"""How this target reads a spec (``place``) and builds targets for resources (``WorkersConnector``).

One target per account and API token: resources that share them share Cloudflare's request budget (1,200 per five
minutes per token) and one connection pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...api.models import Cloudflare, McpDeploymentSpec, RevisionSnapshot, TargetSnapshot
from ...artifacts import ArtifactFetcher
from ...contract import Credentials, TerminalError
from ...reconcile.desired import Desired, Placement, SpecError
from ...settings import Settings
from .placement import WorkerPlacement, worker_placement
from .settings import CloudflareSettings
from .target import WorkersTarget

TYPE = "cloudflare-workers"
TOKEN_KEY = "CLOUDFLARE_API_TOKEN"  # noqa: S105 - the name of a Secret key, not a token
MAX_BINDINGS = 128  # environment variables (bindings) a Worker may have


class WorkersConnector:
    type = TYPE

    def __init__(self, settings: Settings, cloudflare: CloudflareSettings | None = None):
        self.settings = cloudflare or CloudflareSettings.from_env(settings)
        self.fetcher = ArtifactFetcher(self.settings.ca_bundle)
        self.targets: dict[tuple[str, ...], WorkersTarget] = {}

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        cf = spec.cloudflare or Cloudflare()
        account = cf.account_id or self.settings.default_account or (recorded or {}).get("accountId")
        if not account:
            raise SpecError("spec.cloudflare.accountId", "no Cloudflare account: set spec.cloudflare.accountId, or the "
                                                         "operator's CLOUDFLARE_ACCOUNT_ID")
        if spec.server.artifact is None:
            raise SpecError("spec.server.artifact", f"{TYPE} runs a bundle: set server.artifact (an OCI artifact by digest, "
                                                    "or an HTTPS URL with sha256)")
        if len(spec.server.env) > MAX_BINDINGS:
            raise SpecError("spec.server.env", f"a Worker takes at most {MAX_BINDINGS} variables")
        where = WorkerPlacement(account=account, script=cf.script_name or spec.server.name or name, artifact=spec.server.artifact,
                                compatibility_date=cf.compatibility_date, compatibility_flags=tuple(cf.compatibility_flags),
                                workers_dev=cf.workers_dev, preview_urls=cf.preview_urls, main_module=cf.main_module)
        version = {"compatibilityDate": cf.compatibility_date, "compatibilityFlags": list(cf.compatibility_flags)}
        if cf.main_module:
            version["mainModule"] = cf.main_module
        snapshot = RevisionSnapshot(image=spec.server.artifact.reference, artifact=spec.server.artifact, env=spec.server.env,
                                    resources=spec.server.resources, target=TargetSnapshot(section="cloudflare",
                                                                                           settings=version))
        return Placement(where=where, snapshot=snapshot, status_section="cloudflare",
                         facts={"accountId": account, "scriptName": where.script})

    async def connect(self, desired: Desired, secret: Credentials | None) -> WorkersTarget:
        where = worker_placement(desired)
        if secret is None:
            if not self.settings.api_token:
                raise TerminalError("CredentialsInvalid", "no Cloudflare API token: set the operator's CLOUDFLARE_API_TOKEN, "
                                                          "or spec.credentials")
            key: tuple[str, ...] = (where.account, "operator-token")
            if key not in self.targets:
                self.targets[key] = WorkersTarget(self.settings, self.settings.api_token, self.fetcher)
            return self.targets[key]
        key = (where.account, secret.where, secret.version)
        if key not in self.targets:
            for old in [k for k in self.targets if k[:2] == key[:2]]:  # the Secret changed: drop what was built from it
                await self.targets.pop(old).close()
            token = secret.data.get(TOKEN_KEY)
            if not token:
                raise TerminalError("CredentialsInvalid", f"Secret {secret.where} must hold {TOKEN_KEY}")
            self.targets[key] = WorkersTarget(self.settings, token, self.fetcher)
        return self.targets[key]

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
        self.targets.clear()


__all__ = ["TYPE", "WorkersConnector"]
