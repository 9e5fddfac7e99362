"""The pmcp.run simulator on a background thread with a real OCI registry beside it, and this cloud's harness (see
armsim.testing for the shape). pmcp.run deploys what ``cargo pmcp deploy`` builds, a CloudFormation template and a
Lambda ``bootstrap``: ``server_fields(image)`` pushes such an artifact whose bootstrap names ``image`` (the MCP server
the simulator answers the server's URL with) and pins it by digest."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ociregistry import RegistryBeside
from simcore.thread import BackgroundSimulator

from .server import PmcpRunSimulator, PmcpRunSimulatorConfig
from .world import DEPLOYING, SERVER_DOMAIN, Failure

# Operation times: "fast" for tests; each deployment passes validating and deploying.
FAST_LATENCY = {"deployment.validate": 0.1, "deployment.deploy": 0.2, "destroy.start": 0.1, "destroy.finish": 0.2}
ELF = b"\x7fELF\x02\x01\x01\x00"  # the start of an executable: the simulator never runs it


def template(name: str, environment: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template cargo pmcp renders for pmcp-run: one Lambda function from the placeholder bucket."""
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": f"pmcp-run server {name}", "Resources": {
        "McpServer": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "provided.al2023", "Handler": "bootstrap", "MemorySize": 512, "Timeout": 30,
            "Code": {"S3Bucket": "pmcp-run-pending-upload", "S3Key": f"{name}/bootstrap.zip"},
            "Environment": {"Variables": dict(environment or {"RUST_LOG": "info"})}}}}}


def write_build(directory: Path, name: str, image: str) -> Path:
    """A `cargo pmcp deploy --target pmcp-run` build: <name>-stack.template.json and the bootstrap binary."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}-stack.template.json").write_text(json.dumps(template(name), indent=1))
    (directory / "bootstrap").write_bytes(ELF + f"\nmcp-sim-image: {image}\n".encode())
    return directory


class PmcpRunSimulatorThread(RegistryBeside, BackgroundSimulator):
    simulator: PmcpRunSimulator
    target_type = "pmcp-run"

    def __init__(self, config: PmcpRunSimulatorConfig | None = None, workdir: Path | None = None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="pmcprunsim-"))
        self.created_workdir = None if workdir else self.workdir
        super().__init__(PmcpRunSimulator(config or PmcpRunSimulatorConfig(latency=dict(FAST_LATENCY)), self.workdir),
                         "pmcprunsim")
        self._with_registry()

    def operator_environment(self) -> dict[str, str]:
        info = self.info
        return {"PMCP_API_URL": info["apiUrl"], "PMCP_CLIENT_ID": info["clientId"], "PMCP_CLIENT_SECRET": info["clientSecret"],
                "MCP_CA_BUNDLE": self.ca_bundle(), "MCP_RESOLVE": f"*.{SERVER_DOMAIN}={info['ingress']}"}

    def credentials_secret(self) -> dict[str, str]:
        return {"PMCP_CLIENT_ID": self.info["clientId"], "PMCP_CLIENT_SECRET": self.info["clientSecret"]}

    def artifact(self, image: str) -> str:
        """The OCI reference (by digest) of a build whose server answers as ``image``, pushed once."""
        return self.pushed_once(image, "pmcp", lambda directory, repository: write_build(directory, repository, image),
                                lambda directory, name: self.registry.push(directory, name, {".json": "application/json"}))

    def server_fields(self, image: str) -> dict[str, Any]:
        return {"artifact": {"oci": self.artifact(image)}}

    def sample_spec(self, name: str, image: str = "ghcr.io/acme/calc:1.0.0") -> dict[str, Any]:
        return {"target": {"type": self.target_type},
                "server": {"name": name, "artifact": {"oci": self.artifact(image)}, "allowedOrigins": ["https://app.example"]},
                "pmcpRun": {"serverVersion": "1.0.0"}}

    # ----- what tests look at and do ---------------------------------------------------------------------------
    def _settled(self) -> Any:
        world = self.simulator.world
        world.schedule.settle()
        return world

    def revision_names(self, app: str) -> list[str]:
        def names() -> list[str]:
            server = self._settled().servers.get(app)
            return [d.id for d in server.deployments] if server else []
        return self.call(names)

    def deployments(self, app: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            server = self._settled().servers.get(app)
            return [{"id": d.id, "status": d.status, "image": d.image, "settings": dict(d.settings),
                     "template": json.loads(d.template)} for d in server.deployments] if server else []
        return self.call(read)

    def server_state(self, app: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            server = self._settled().servers.get(app)
            if server is None:
                return None
            return {"oauth": dict(server.oauth) if server.oauth else None, "secrets": dict(server.secrets),
                    "serving": server.serving.id if server.serving else None, "destroy": server.destroy}
        return self.call(read)

    def fail_revisions_of(self, image_contains: str, message: str = "container exited with code 1") -> None:
        self.call(self.simulator.world.failures.append, Failure(image_contains, message))

    def fail_next_destroy(self, app: str) -> None:
        self.call(self.simulator.world.destroy_failures.add, app)

    def plant_foreign(self, app: str, marks: dict[str, str], image: str = "ghcr.io/acme/other:1") -> None:
        """A server another client deployed (as `cargo pmcp deploy` does). pmcp.run keeps no tags: ``marks`` are lost."""
        def plant() -> None:
            world = self.simulator.world
            urls = world.upload_urls(app, 1, 1)
            body = json.dumps(template(app)).encode()
            for key, data in ((urls["templateS3Key"], body), (urls["bootstrapS3Key"], ELF + f" mcp-sim-image: {image}".encode())):
                world.uploads[key].size, world.uploads[key].data = len(data), data
            world.create_deployment({"templateS3Key": urls["templateS3Key"], "bootstrapS3Key": urls["bootstrapS3Key"],
                                     "projectName": app})
        self.call(plant)
        deadline = time.monotonic() + 10
        while any(d["status"] in DEPLOYING for d in self.deployments(app)) and time.monotonic() < deadline:
            time.sleep(0.05)

    def app_tags_and_image(self, app: str) -> tuple[dict[str, str], str]:
        found = self.deployments(app)
        return {}, found[-1]["image"] if found else ""

    def remaining(self) -> list[str]:
        return self.call(lambda: [f"pmcp.run server {name}" for name in self._settled().servers])

    def cloud_name(self) -> str:
        return "pmcp.run GraphQL API (with a local OCI registry for builds)"

    def drop_connections(self, count: int = 1, method: str | None = None) -> None:
        self.call(self.simulator.add_fault, action="drop", when="before", count=count, method=method)
