"""This target's section of the operator's configuration, read once from the environment.

Endpoints and the credential chain are the AWS SDK's own (AWS_REGION, AWS_ENDPOINT_URL, IRSA / EKS Pod
Identity web identity, keys); only what the SDK cannot be told by its environment is read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...settings import Settings, TargetSettings, positive_number


@dataclass(frozen=True)
class AwsSettings(TargetSettings):
    default_region: str | None = None
    connections: int = 16  # concurrent connections per client (Lambda's quotas make more pointless)

    @classmethod
    def from_env(cls, common: Settings) -> AwsSettings:
        region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "").strip() or None
        return cls(common=common, default_region=region, connections=int(positive_number("MCP_AWS_CONNECTIONS", 16)))
