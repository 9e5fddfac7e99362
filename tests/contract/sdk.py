"""Real Azure SDK clients pointed at a simulator, configured as the operator configures them."""

from __future__ import annotations

from typing import Any

from azure.identity import ClientSecretCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.resource.resources import ResourceManagementClient

from armsim.testing import SimulatorThread


def credential(sim: SimulatorThread) -> ClientSecretCredential:
    info = sim.info
    return ClientSecretCredential(info["tenantId"], info["clientId"], info["clientSecret"], authority=info["authorityHost"],
                                  disable_instance_discovery=True, connection_verify=info["caBundle"])


def client_options(sim: SimulatorThread, **extra: Any) -> dict[str, Any]:
    info = sim.info
    return {"base_url": info["armEndpoint"], "connection_verify": info["caBundle"], "polling_interval": 0.05,
            "retry_backoff_factor": 0.05, **extra}


def apps_client(sim: SimulatorThread, subscription: str | None = None, **extra: Any) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(credential(sim), subscription or sim.info["subscriptionId"], **client_options(sim, **extra))


def resources_client(sim: SimulatorThread, subscription: str | None = None, **extra: Any) -> ResourceManagementClient:
    return ResourceManagementClient(credential(sim), subscription or sim.info["subscriptionId"], **client_options(sim, **extra))
