"""The AWS simulator on a background thread, and this cloud's harness (see armsim.testing for the shape)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from simcore.thread import BackgroundSimulator

from .server import AwsSimulator, AwsSimulatorConfig
from .world import Failure

FAST_LATENCY = {"function.create": 0.3, "function.update": 0.3, "version.publish": 0.2}


class LambdaSimulatorThread(BackgroundSimulator):
    simulator: AwsSimulator
    target_type = "aws-lambda"

    def __init__(self, config: AwsSimulatorConfig | None = None, workdir: Path | None = None):
        config = config or AwsSimulatorConfig(latency=dict(FAST_LATENCY))
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lambdasim-"))
        self.created_workdir = None if workdir else self.workdir
        super().__init__(AwsSimulator(config, self.workdir), "lambdasim")

    @property
    def info(self) -> dict[str, Any]:
        return self.simulator.info()

    def operator_environment(self) -> dict[str, str]:
        """The operator's identity is a web identity (IRSA / EKS Pod Identity): a token file and a role to assume."""
        info = self.info
        token_file = self.workdir / "web-identity-token"
        token_file.write_text(info["webIdentityToken"])
        return {
            "AWS_ENDPOINT_URL": info["endpoint"],
            "AWS_REGION": info["region"],
            "AWS_ROLE_ARN": info["webIdentityRoleArn"],
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_SESSION_NAME": "mcp-operator",
            "AWS_CONFIG_FILE": str(self.workdir / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-credentials"),
            "MCP_CA_BUNDLE": info["caBundle"],
            "MCP_RESOLVE": f"*.on.aws={info['ingress']}",
        }

    def credentials_secret(self) -> dict[str, str]:
        """The keys of a spec.credentials Secret for this cloud."""
        return {"AWS_ACCESS_KEY_ID": self.info["accessKeyId"], "AWS_SECRET_ACCESS_KEY": self.info["secretAccessKey"]}

    def sample_spec(self, name: str, image: str = "ghcr.io/acme/calc:1.0.0") -> dict[str, Any]:
        return {"target": {"type": self.target_type},
                "server": {"name": name, "image": image, "allowedOrigins": ["https://app.example"]},
                "aws": {"region": self.info["region"]}}

    def revision_names(self, app: str) -> list[str]:
        """The version numbers Lambda holds for a function."""
        def names() -> list[str]:
            return sorted(str(n) for f in self.simulator.world.functions.values() if f.name == app for n in f.versions)
        return self.call(names)

    def fail_revisions_of(self, image_contains: str, message: str = "container exited with code 1") -> None:
        self.call(self.simulator.world.failures.append, Failure(image_contains, message))

    def plant_foreign(self, app: str, marks: dict[str, str], image: str = "ghcr.io/acme/other:1") -> None:
        """A running function that another tool made, carrying ``marks`` as its tags."""
        world = self.simulator.world

        def plant() -> None:
            world.create_role(f"{app}-foreign", '{"Statement":[{"Principal":{"Service":"lambda.amazonaws.com"}}]}', [])
            world.create_function(self.info["region"], {
                "FunctionName": app, "Role": f"arn:aws:iam::{world.account}:role/{app}-foreign", "PackageType": "Image",
                "Code": {"ImageUri": image}, "Tags": marks})
        self.call(plant)

    def app_tags_and_image(self, app: str) -> tuple[dict[str, str], str]:
        def read() -> tuple[dict[str, str], str]:
            found = self.simulator.world.function(self.info["region"], app)
            return dict(found.tags), str(found.code.get("ImageUri", ""))
        return self.call(read)

    def remaining(self) -> list[str]:
        """What the simulated account still holds: functions and roles (besides the operator's own)."""
        def read() -> list[str]:
            world = self.simulator.world
            return ([f"Lambda function {f.name}" for f in world.functions.values()]
                    + [f"IAM role {r}" for r in world.roles if r != self.simulator.config.web_identity_role])
        return self.call(read)

    def cloud_name(self) -> str:
        return "AWS (Lambda, IAM, STS, CloudWatch Logs)"

    def drop_connections(self, count: int = 1, method: str | None = None) -> None:
        self.call(self.simulator.add_fault, action="drop", when="before", count=count, method=method)
