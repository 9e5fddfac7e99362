"""This target's section of the operator's configuration, read once from the environment.

The credential chain is Google's own (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS with a
service-account key or a workload identity federation configuration, or the metadata server); only what it
cannot be told by its environment is read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...settings import Settings, TargetSettings, positive_number

GOOGLE_APIS = {"run": "https://run.googleapis.com", "secretmanager": "https://secretmanager.googleapis.com",
               "logging": "https://logging.googleapis.com"}


@dataclass(frozen=True)
class GcpSettings(TargetSettings):
    default_project: str | None = None
    endpoint: str | None = None  # MCP_GCP_ENDPOINT: one host serving every Google API (a private endpoint, the simulator)
    connections: int = 16  # concurrent connections to Google's APIs (the Admin API's per-minute quotas make more pointless)

    @classmethod
    def from_env(cls, common: Settings) -> GcpSettings:
        project = (os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT") or "").strip() or None
        endpoint = os.environ.get("MCP_GCP_ENDPOINT", "").strip().rstrip("/") or None
        if endpoint and not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"MCP_GCP_ENDPOINT must be a URL like https://host:port, got {endpoint!r}")
        return cls(common=common, default_project=project, endpoint=endpoint,
                   connections=int(positive_number("MCP_GCP_CONNECTIONS", 16)))

    def api(self, name: str) -> str:
        """The base URL of one Google API (run, secretmanager, logging)."""
        return self.endpoint or GOOGLE_APIS[name]
