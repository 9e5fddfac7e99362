"""Run a simulator on a background thread, for synchronous callers (pytest, the demo, benchmarks).

``SimulatorThread`` is this cloud's harness object: what the operator's environment must say to use it,
a sample spec, what it holds for a resource, and the faults a test can ask for. The conformance suite,
the end-to-end tests, the demo and the benchmarks use clouds only through such harnesses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simcore.thread import BackgroundSimulator

from .server import Simulator, SimulatorConfig


class SimulatorThread(BackgroundSimulator):
    """The ARM simulator on a background thread, and this cloud's harness."""

    simulator: Simulator

    def __init__(self, config: SimulatorConfig | None = None, workdir: Path | None = None):
        super().__init__(Simulator(config, workdir), "armsim")

    @property
    def info(self) -> dict[str, Any]:
        return self.simulator.info()

    # ----- the harness --------------------------------------------------------------------------
    target_type = "azure-container-apps"

    def operator_environment(self) -> dict[str, str]:
        """What the operator's environment must say to use this simulator as its cloud."""
        info = self.info
        return {
            "AZURE_TENANT_ID": info["tenantId"],
            "AZURE_CLIENT_ID": info["clientId"],
            "AZURE_CLIENT_SECRET": info["clientSecret"],
            "AZURE_AUTHORITY_HOST": info["authorityHost"],
            "MCP_ARM_ENDPOINT": info["armEndpoint"],
            "MCP_CA_BUNDLE": info["caBundle"],
            "MCP_DEFAULT_SUBSCRIPTION_ID": info["subscriptionId"],
            # Apps' URLs are answered by the simulator's ingress (real MCP servers), reached as curl --resolve would.
            "MCP_RESOLVE": f"*.azurecontainerapps.io={info['ingress']}",
        }

    def sample_spec(self, name: str, image: str = "ghcr.io/acme/calc:1.0.0") -> dict[str, Any]:
        """An McpDeployment spec for this target that the simulator can serve."""
        return {"target": {"type": self.target_type}, "server": {"name": name, "image": image,
                                                                  "allowedOrigins": ["https://app.example"]},
                "azure": {"location": "westeurope"}}

    def revision_names(self, app: str) -> list[str]:
        """The names of every revision the cloud holds for an app (any resource group)."""

        def names() -> list[str]:
            return sorted(r for a in self.simulator.world.apps.values() if a.name == app for r in a.revisions)

        return self.call(names)

    def fail_revisions_of(self, image_contains: str, message: str = "container exited with code 1") -> None:
        """Every revision whose image contains this text fails to start, with that message."""
        self.call(self.simulator.fail_revisions, image_contains, message)

    def plant_foreign(self, app: str, marks: dict[str, str], image: str = "ghcr.io/acme/other:1") -> None:
        """A running app that another tool made (in ``<app>-rg``, environment ``<app>-env``), carrying ``marks`` as
        its tags, as the operator's defaults for a server named ``app`` would place it."""
        sub, location = self.info["subscriptionId"], "eastus"
        rg, env = f"{app}-rg", f"{app}-env"

        def plant() -> None:
            world = self.simulator.world
            world.put_group(sub, rg, {"location": location, "tags": marks})
            world.put_environment(sub, rg, env, {"location": location, "tags": marks, "properties": {}})
            world.environment(sub, rg, env).provisioning_state = "Succeeded"
            environment_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/{env}"
            world.put_app(sub, rg, app, {"location": location, "tags": marks, "properties": {
                "environmentId": environment_id,
                "configuration": {"activeRevisionsMode": "Single", "ingress": {"external": True, "targetPort": 80}},
                "template": {"containers": [{"name": "main", "image": image}]}}})

        self.call(plant)

    def app_tags_and_image(self, app: str) -> tuple[dict[str, str], str]:
        """An app's tags and the image of its template, as the cloud holds them."""
        sub = self.info["subscriptionId"]

        def read() -> tuple[dict[str, str], str]:
            found = self.simulator.world.app(sub, f"{app}-rg", app)
            return dict(found.body.get("tags") or {}), found.body["properties"]["template"]["containers"][0]["image"]

        return self.call(read)

    def remaining(self) -> list[str]:
        """What the simulated subscription still holds: apps, environments and resource groups."""
        def read() -> list[str]:
            world = self.simulator.world
            world.settle()
            return ([f"container app {a.name}" for a in world.apps.values()]
                    + [f"environment {e.name}" for e in world.environments.values()])
        return self.call(read)

    def cloud_name(self) -> str:
        return "Azure Resource Manager"

    def drop_connections(self, count: int = 1, method: str | None = None) -> None:
        """The next ``count`` requests (of that method) lose their connection before an answer."""
        self.call(self.simulator.add_fault, action="drop", when="before", count=count, method=method)


@contextlib.contextmanager
def running_simulator(config: SimulatorConfig | None = None) -> Iterator[SimulatorThread]:
    thread = SimulatorThread(config).start()
    try:
        yield thread
    finally:
        thread.stop()
