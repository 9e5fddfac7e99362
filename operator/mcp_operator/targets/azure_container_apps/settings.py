"""This target's section of the operator's configuration, read once from the environment.

Precedence for a resource's Azure settings: its spec.azure, then these operator defaults, then the
built-in defaults (location eastus).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...settings import Settings, TargetSettings, positive_number

PUBLIC_ARM = "https://management.azure.com"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class AzureSettings(TargetSettings):
    default_subscription_id: str | None = None
    default_location: str | None = None
    arm_endpoint: str = PUBLIC_ARM
    authority_host: str = PUBLIC_AUTHORITY
    arm_scope: str = "https://management.azure.com/.default"
    disable_instance_discovery: bool = False
    arm_connections: int = 16  # concurrent connections to Azure (and the identity platform)

    @classmethod
    def from_env(cls, common: Settings) -> AzureSettings:
        authority = (os.environ.get("AZURE_AUTHORITY_HOST", "").strip() or PUBLIC_AUTHORITY).rstrip("/")
        return cls(
            common=common,
            default_subscription_id=os.environ.get("MCP_DEFAULT_SUBSCRIPTION_ID", "").strip() or None,
            default_location=os.environ.get("MCP_DEFAULT_LOCATION", "").strip() or None,
            arm_endpoint=(os.environ.get("MCP_ARM_ENDPOINT", "").strip() or PUBLIC_ARM).rstrip("/"),
            authority_host=authority,
            arm_scope=os.environ.get("MCP_ARM_SCOPE", "").strip() or "https://management.azure.com/.default",
            disable_instance_discovery=authority != PUBLIC_AUTHORITY,
            arm_connections=int(positive_number("MCP_ARM_CONNECTIONS", 16)),
        )
