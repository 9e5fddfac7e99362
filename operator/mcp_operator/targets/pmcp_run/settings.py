"""This target's section of the operator's configuration, read once from the environment.

The names are cargo-pmcp's own (``PMCP_API_URL``, ``PMCP_CLIENT_ID``, ``PMCP_CLIENT_SECRET``, ``PMCP_ACCESS_TOKEN``,
``PMCP_RUN_GRAPHQL_URL``), so a machine set up for ``cargo pmcp deploy`` is set up for the operator. Secrets are kept
out of every repr and log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...settings import Settings, TargetSettings

DEFAULT_API = "https://api.pmcp.run"


def _env(*names: str) -> str | None:
    """The first of these variables that is set and not empty (cargo-pmcp counts an empty value as unset)."""
    return next((value.strip() for name in names if (value := os.environ.get(name, "")).strip()), None)


@dataclass(frozen=True)
class PmcpRunSettings(TargetSettings):
    api_url: str = DEFAULT_API
    graphql_url: str | None = None  # overrides discovery (PMCP_RUN_GRAPHQL_URL)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, common: Settings) -> PmcpRunSettings:
        api = _env("PMCP_API_URL", "PMCP_RUN_API_URL") or DEFAULT_API
        if not api.startswith(("https://", "http://")):
            raise ValueError(f"PMCP_API_URL must be a URL like {DEFAULT_API}, got {api!r}")
        return cls(common=common, api_url=api.rstrip("/"), graphql_url=_env("PMCP_RUN_GRAPHQL_URL"),
                   client_id=_env("PMCP_CLIENT_ID"), client_secret=_env("PMCP_CLIENT_SECRET"),
                   access_token=_env("PMCP_ACCESS_TOKEN"))
