"""Where a Lambda function goes and what makes one of its versions: spec.aws with the defaults filled in."""

from __future__ import annotations

from dataclasses import dataclass

from ...reconcile.desired import Desired, where_of

LIVE_ALIAS = "live"  # receives the traffic, behind the function URL status.url names
CANDIDATE_ALIAS = "candidate"  # the newest version, behind a URL of its own, for the MCP check before traffic moves


@dataclass(frozen=True)
class FunctionPlacement:
    region: str
    function_name: str
    image: str | None
    s3_bucket: str | None
    s3_key: str | None
    sha256: str | None
    runtime: str
    handler: str
    architecture: str
    memory_mb: int
    timeout_seconds: int
    role_arn: str | None  # None: the operator's own role, ``role_name``
    url_auth_type: str
    invoke_mode: str
    port: int
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    provisioned_recorded: bool = False  # status says provisioned concurrency was requested: look for it to remove it

    @property
    def role_name(self) -> str:
        return f"{self.function_name}-mcp-exec"[:64]

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function_name}"


def function_placement(desired: Desired) -> FunctionPlacement:
    return where_of(desired, FunctionPlacement)
