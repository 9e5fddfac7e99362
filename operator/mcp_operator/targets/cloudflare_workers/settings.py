"""This target's section of the operator's configuration, read once from the environment.

The API token is Cloudflare's own variable (``CLOUDFLARE_API_TOKEN``, as wrangler and the SDK read it); it is kept
out of every repr and log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...settings import Settings, TargetSettings, positive_number

DEFAULT_API = "https://api.cloudflare.com/client/v4"


@dataclass(frozen=True)
class CloudflareSettings(TargetSettings):
    default_account: str | None = None
    api_token: str | None = field(default=None, repr=False)
    api_base: str = DEFAULT_API
    # Requests per five minutes the operator allows itself of Cloudflare's 1,200 per token (the rest is the
    # dashboard's and wrangler's): past 1,200, Cloudflare refuses everything for five minutes.
    budget: int = 1100

    @classmethod
    def from_env(cls, common: Settings) -> CloudflareSettings:
        api = (os.environ.get("MCP_CLOUDFLARE_API") or os.environ.get("CLOUDFLARE_BASE_URL") or DEFAULT_API).strip()
        if not api.startswith(("https://", "http://")):
            raise ValueError(f"MCP_CLOUDFLARE_API must be a URL like https://api.cloudflare.com/client/v4, got {api!r}")
        budget = int(positive_number("MCP_CLOUDFLARE_BUDGET", 1100))
        if budget >= 1200:
            raise ValueError(f"MCP_CLOUDFLARE_BUDGET must stay below Cloudflare's 1200 requests per 5 minutes, got {budget}")
        return cls(common=common, default_account=(os.environ.get("CLOUDFLARE_ACCOUNT_ID") or "").strip() or None,
                   api_token=(os.environ.get("CLOUDFLARE_API_TOKEN") or "").strip() or None, api_base=api.rstrip("/"),
                   budget=budget)
