"""The Google Cloud simulator on a background thread, and this cloud's harness (see armsim.testing for the shape)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from simcore.thread import BackgroundSimulator

from .server import GcpSimulator, GcpSimulatorConfig
from .world import Failure

FAST_LATENCY = {"revision.ready": 0.3, "service.update": 0.2, "service.delete": 0.2}


class RunSimulatorThread(BackgroundSimulator):
    simulator: GcpSimulator
    target_type = "google-cloud-run"

    def __init__(self, config: GcpSimulatorConfig | None = None, workdir: Path | None = None):
        config = config or GcpSimulatorConfig(latency=dict(FAST_LATENCY))
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="runsim-"))
        self.created_workdir = None if workdir else self.workdir
        super().__init__(GcpSimulator(config, self.workdir), "runsim")

    @property
    def info(self) -> dict[str, Any]:
        return self.simulator.info()

    def operator_environment(self) -> dict[str, str]:
        """The operator's identity is workload identity federation: a projected token exchanged at STS
        (an ``external_account`` file, as GKE and other clusters' federation hand it out)."""
        info = self.info
        token_file = self.workdir / "projected-token"
        token_file.write_text(info["subjectToken"])
        configuration = self.workdir / "external-account.json"
        configuration.write_text(json.dumps({
            "type": "external_account", "audience": info["poolAudience"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": info["stsUri"],
            "credential_source": {"file": str(token_file)}, "universe_domain": "googleapis.com"}))
        return {
            "GOOGLE_APPLICATION_CREDENTIALS": str(configuration),
            "GOOGLE_CLOUD_PROJECT": info["project"],
            "MCP_GCP_ENDPOINT": info["endpoint"],
            "MCP_CA_BUNDLE": info["caBundle"],
            "MCP_RESOLVE": f"*.a.run.app={info['ingress']}",
        }

    def credentials_secret(self) -> dict[str, str]:
        """The keys of a spec.credentials Secret for this cloud: a service-account key file."""
        key = self.call(self.simulator.identity.new_key, "mcp-deployer")
        document = self.simulator.identity.key_file(key, self.info["tokenUri"])
        return {"credentials.json": json.dumps(document)}

    def sample_spec(self, name: str, image: str = "ghcr.io/acme/calc:1.0.0") -> dict[str, Any]:
        return {"target": {"type": self.target_type},
                "server": {"name": name, "image": image, "allowedOrigins": ["https://app.example"]},
                "gcp": {"projectId": self.info["project"], "region": self.info["region"]}}

    def _service(self, name: str) -> Any:
        """The service of that name, in whichever project and region it was made (the simulator serves any)."""
        return next((s for s in self.simulator.world.services.values() if s.name == name), None)

    def revision_names(self, app: str) -> list[str]:
        def names() -> list[str]:
            service = self._service(app)
            return sorted(service.revisions) if service else []
        return self.call(names)

    def fail_revisions_of(self, image_contains: str, message: str = "container exited with code 1") -> None:
        self.call(self.simulator.world.failures.append, Failure(image_contains, message))

    def plant_foreign(self, app: str, marks: dict[str, str], image: str = "ghcr.io/acme/other:1") -> None:
        """A running service that another tool made, carrying ``marks`` as its labels."""
        info = self.info
        self.call(self.simulator.world.create_service, info["project"], info["region"], app,
                  {"template": {"containers": [{"image": image}]}, "labels": marks})

    def app_tags_and_image(self, app: str) -> tuple[dict[str, str], str]:
        def read() -> tuple[dict[str, str], str]:
            spec = self._service(app).spec
            return {**spec.get("labels", {}), **spec.get("annotations", {})}, str(spec["template"]["containers"][0]["image"])
        return self.call(read)

    def remaining(self) -> list[str]:
        """What the simulated project still holds: services and secrets."""
        def read() -> list[str]:
            world = self.simulator.world
            world.settle()
            return ([f"Cloud Run service {s.name}" for s in world.services.values()]
                    + [f"Secret Manager secret {s.name}" for s in world.secrets.values()])
        return self.call(read)

    def cloud_name(self) -> str:
        return "Google Cloud (Cloud Run, Secret Manager, Cloud Logging, STS)"

    def drop_connections(self, count: int = 1, method: str | None = None) -> None:
        self.call(self.simulator.add_fault, action="drop", when="before", count=count, method=method)
