"""How this target reads a spec (``place``) and builds targets for resources (``LambdaConnector``).

One target per region and identity: resources that share them share Lambda's throttling verdict and the
SDK clients (one connection pool each).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...api.models import McpDeploymentSpec, RevisionSnapshot, TargetSnapshot
from ...contract import Credentials, Target
from ...reconcile.desired import Desired, Placement, SpecError
from ...settings import Settings
from .placement import FunctionPlacement, function_placement
from .settings import AwsSettings
from .target import LambdaTarget

TYPE = "aws-lambda"
ENV_NAME = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")  # Lambda's rule for environment variable names (botocore's model)
MAX_ORIGIN = 253  # Lambda's limit for one CORS origin


class LambdaConnector:
    type = TYPE

    def __init__(self, settings: Settings, aws: AwsSettings | None = None):
        self.settings = aws or AwsSettings.from_env(settings)
        self.targets: dict[tuple[str, ...], LambdaTarget] = {}

    def place(self, spec: McpDeploymentSpec, name: str, namespace: str,
              recorded: Mapping[str, Any] | None = None) -> Placement:
        aws = spec.aws
        s3 = aws.s3 if aws else None
        if bool(spec.server.image) == bool(s3):
            raise SpecError("spec.server.image", f"{TYPE} needs exactly one of server.image (a container image in ECR) "
                                                 "and aws.s3 (a zip in S3)")
        region = (aws.region if aws else None) or self.settings.default_region or (recorded or {}).get("region")
        if not region:
            raise SpecError("spec.aws.region", "no AWS region: set spec.aws.region, or the operator's AWS_REGION")
        for variable in spec.server.env:
            if not ENV_NAME.fullmatch(variable.name):
                raise SpecError("spec.server.env", f"{variable.name!r} is not a Lambda environment variable name: at least "
                                                   "2 characters, letters, digits and '_', starting with a letter")
        for origin in spec.server.allowed_origins:
            if len(origin) > MAX_ORIGIN:
                raise SpecError("spec.server.allowedOrigins", f"Lambda accepts CORS origins of at most {MAX_ORIGIN} "
                                                              f"characters; {origin[:40]}... is longer")
        function_name = spec.server.name or name
        where = FunctionPlacement(
            region=region, function_name=function_name, image=spec.server.image,
            s3_bucket=s3.bucket if s3 else None, s3_key=s3.key if s3 else None, sha256=s3.sha256 if s3 else None,
            runtime=aws.runtime if aws else "provided.al2023", handler=aws.handler if aws else "bootstrap",
            architecture=(aws.architecture if aws else None) or ("arm64" if s3 else "x86_64"),
            memory_mb=aws.memory_mb if aws else 512, timeout_seconds=aws.timeout_seconds if aws else 30,
            role_arn=aws.execution_role_arn if aws else None, url_auth_type=aws.url_auth_type if aws else "NONE",
            invoke_mode=aws.invoke_mode if aws else "BUFFERED", port=aws.port if aws else 8080,
            reserved_concurrency=aws.reserved_concurrency if aws else None,
            provisioned_concurrency=aws.provisioned_concurrency if aws else None,
            provisioned_recorded=bool((recorded or {}).get("provisionedConcurrency")))
        version = {"memoryMb": where.memory_mb, "timeoutSeconds": where.timeout_seconds, "architecture": where.architecture,
                   "port": where.port}
        if s3:
            version.update(s3=s3.model_dump(by_alias=True, exclude_none=True), runtime=where.runtime, handler=where.handler)
        if where.role_arn:
            version["executionRoleArn"] = where.role_arn
        snapshot = RevisionSnapshot(image=spec.server.image or f"s3://{where.s3_bucket}/{where.s3_key}", env=spec.server.env,
                                    resources=spec.server.resources, target=TargetSnapshot(section="aws", settings=version))
        facts = {"region": region, "functionName": function_name}
        return Placement(where=where, snapshot=snapshot, status_section="aws", facts=facts)

    async def connect(self, desired: Desired, secret: Credentials | None) -> Target:
        region = function_placement(desired).region
        if secret is None:
            key: tuple[str, ...] = (region, "operator-identity")
            if key not in self.targets:
                self.targets[key] = LambdaTarget(self.settings, region, None)
            return self.targets[key]
        key = (region, secret.where, secret.version)
        if key not in self.targets:
            for old in [k for k in self.targets if k[:2] == key[:2]]:  # the Secret changed: drop clients built from it
                await self.targets.pop(old).close()
            self.targets[key] = LambdaTarget(self.settings, region, dict(secret.data), secret.where)
        return self.targets[key]

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
        self.targets.clear()


__all__ = ["TYPE", "FunctionPlacement", "LambdaConnector"]
