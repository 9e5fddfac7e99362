"""Every official example for an operation the simulator implements is replayed through the real SDK.

For each example the cloud-side state it presumes (its resource group, environment, app, revisions)
is put in place in the simulator, the example's request is sent with azure-mgmt-appcontainers or
azure-mgmt-resource, and the response is compared with the example's response: the same keys with
the same JSON types, except the paths listed in NOT_SIMULATED (documented in docs/simulator.md).
Responses are also validated against the OpenAPI schema of the operation.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from armsim.schema import load_document
from armsim.testing import SimulatorThread
from armsim.world import World
from tests.conftest import OPENAPI
from tests.contract.sdk import apps_client, resources_client

pytestmark = pytest.mark.contract

SPECS = OPENAPI.parents[6]
EXAMPLE_FILES = sorted(SPECS.rglob("examples/*.json"))

# Response paths of the examples that the simulator does not produce, and why (see docs/simulator.md).
NOT_SIMULATED = [
    r"\.identity\.(principalId|tenantId|userAssignedIdentities\..*)",  # managed identities are not simulated
    r".*\.customDomainVerificationId",  # custom domains are not simulated
    r".*\.(workloadProfileName|deploymentErrors|runningStatus)$",
    r".*\.properties\.(infrastructureResourceGroup|kedaConfiguration|daprConfiguration|customDomainConfiguration\..*)",
    r".*\.properties\.runningStateDetails",
    r".*\.containers\[\]\.(containerId|runningStateDetails|logStreamEndpoint|execEndpoint|debugEndpoint)",
    r".*\.systemData.*",
    r"\.nextLink",  # the SDK's pager follows nextLink; the test sees the items
    r"\.resourceTypes\[\]\.locationMappings",  # edge zones are not simulated
]


@dataclass
class Replay:
    """How to replay one example: what exists before, and the SDK call."""

    status: str  # which example response to compare with
    call: Callable[[Any, Any, dict[str, Any]], Any]
    setup: Callable[[World, dict[str, Any], dict[str, Any]], None] | None = None
    definition: str | None = None  # OpenAPI definition the response must satisfy


def _ensure_group(world: World, sub: str, rg: str) -> None:
    if sub.lower() not in world.subscriptions:
        world.add_subscription(sub, ("Microsoft.App",))
    if rg.lower() not in world.subscription(sub).groups:
        world.put_group(sub, rg, {"location": "eastus"})


def _seed_environment(world: World, sub: str, rg: str, name: str, body: dict[str, Any] | None = None) -> None:
    _ensure_group(world, sub, rg)
    env_body = copy.deepcopy(body) if body else {"location": "East US", "properties": {}}
    world.put_environment(sub, rg, name, env_body)


def _seed_app(world: World, body: dict[str, Any]) -> None:
    props = body["properties"]
    env_id = props.get("environmentId") or props.get("managedEnvironmentId")
    _, _, sub, _, rg, *_, env = env_id.split("/")
    app_sub, app_rg = body["id"].split("/")[2], body["id"].split("/")[4]
    _seed_environment(world, sub, rg, env)
    _ensure_group(world, app_sub, app_rg)
    world.settle()
    world.put_app(app_sub, app_rg, body["name"], {**body, "properties": {**props, "environmentId": env_id}})


def _app_from_example(file: str) -> dict[str, Any]:
    example = _load(file)
    responses = example["responses"]
    return responses.get("200", responses.get("201"))["body"]  # type: ignore[no-any-return]


def _minimal_app(sub: str, rg: str, name: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/containerApps/{name}",
        "name": name, "location": "East US",
        "properties": {
            "environmentId": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/env",
            "configuration": {"activeRevisionsMode": "Multiple", "ingress": {"external": True, "targetPort": 8080},
                              "secrets": [{"name": "secret1", "value": "v1"}, {"name": "secret2", "value": "v2"}]},
            "template": {"containers": [{"name": name.lower(), "image": "repo/app:v1"}]},
        },
    }


def _seed_revision(world: World, p: dict[str, Any], replica: str | None = None, template: dict[str, Any] | None = None) -> None:
    _seed_app(world, _minimal_app(p["subscriptionId"], p["resourceGroupName"], p["containerAppName"]))
    world.settle()
    app = world.app(p["subscriptionId"], p["resourceGroupName"], p["containerAppName"])
    rev = world.seed_revision(app, p["revisionName"], template or {"containers": [{"name": "c", "image": "repo/app:v0"}]})
    if replica:
        rev.replica_names = [replica]


def _load(name: str) -> dict[str, Any]:
    for path in EXAMPLE_FILES:
        if path.name == name:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    raise FileNotFoundError(name)


def _page(items: Any) -> list[dict[str, Any]]:
    return [item.as_dict() for item in items]


REPLAYS: dict[str, Replay] = {
    "CreateResourceGroup.json": Replay(
        "201", lambda aca, rm, p: rm.resource_groups.create_or_update(p["resourceGroupName"], p["parameters"]).as_dict(),
        lambda w, p, e: w.add_subscription(p["subscriptionId"])),
    "ForceDeleteVMsInResourceGroup.json": Replay(
        "200", lambda aca, rm, p: rm.resource_groups.begin_delete(
            p["resourceGroupName"], force_deletion_types=p["forceDeletionTypes"]).result() or {},
        lambda w, p, e: _ensure_group(w, p["subscriptionId"], p["resourceGroupName"])),
    "GetProvider.json": Replay(
        "200", lambda aca, rm, p: rm.providers.get(p["resourceProviderNamespace"]).as_dict(),
        lambda w, p, e: w.add_subscription(p["subscriptionId"], (p["resourceProviderNamespace"],))),
    "ManagedEnvironments_CreateOrUpdate.json": Replay(
        "201", lambda aca, rm, p: aca.managed_environments.begin_create_or_update(
            p["resourceGroupName"], p["environmentName"], p["environmentEnvelope"]).result().as_dict(),
        lambda w, p, e: _ensure_group(w, p["subscriptionId"], p["resourceGroupName"]), "ManagedEnvironment"),
    "ManagedEnvironments_Get.json": Replay(
        "200", lambda aca, rm, p: aca.managed_environments.get(p["resourceGroupName"], p["environmentName"]).as_dict(),
        lambda w, p, e: _seed_environment(w, p["subscriptionId"], p["resourceGroupName"], p["environmentName"],
                                          e["responses"]["200"]["body"]), "ManagedEnvironment"),
    "ManagedEnvironments_Patch.json": Replay(
        "200", lambda aca, rm, p: aca.managed_environments.begin_update(
            p["resourceGroupName"], p["environmentName"], p["environmentEnvelope"]).result().as_dict(),
        lambda w, p, e: _seed_environment(w, p["subscriptionId"], p["resourceGroupName"], p["environmentName"],
                                          e["responses"]["200"]["body"]), "ManagedEnvironment"),
    "ManagedEnvironments_Delete.json": Replay(
        "200", lambda aca, rm, p: aca.managed_environments.begin_delete(p["resourceGroupName"], p["environmentName"]).result()
        or {}, lambda w, p, e: _seed_environment(w, p["subscriptionId"], p["resourceGroupName"], p["environmentName"])),
    "ManagedEnvironments_ListByResourceGroup.json": Replay(
        "200", lambda aca, rm, p: {"value": _page(aca.managed_environments.list_by_resource_group(p["resourceGroupName"]))},
        lambda w, p, e: [_seed_environment(w, p["subscriptionId"], p["resourceGroupName"], v["name"], v)
                         for v in e["responses"]["200"]["body"]["value"]]),
    "ContainerApps_CreateOrUpdate.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.begin_create_or_update(
            p["resourceGroupName"], p["containerAppName"], p["containerAppEnvelope"]).result().as_dict(),
        lambda w, p, e: _seed_environment(w, p["subscriptionId"], p["resourceGroupName"],
                                          p["containerAppEnvelope"]["properties"]["environmentId"].rsplit("/", 1)[1]),
        "ContainerApp"),
    "ContainerApps_Get.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.get(p["resourceGroupName"], p["containerAppName"]).as_dict(),
        lambda w, p, e: _seed_app(w, e["responses"]["200"]["body"]), "ContainerApp"),
    "ContainerApps_Patch.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.begin_update(
            p["resourceGroupName"], p["containerAppName"], p["containerAppEnvelope"]).result().as_dict(),
        lambda w, p, e: _seed_app(w, _app_from_example("ContainerApps_Get.json")), "ContainerApp"),
    "ContainerApps_Delete.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.begin_delete(p["resourceGroupName"], p["containerAppName"]).result() or {},
        lambda w, p, e: _seed_app(w, _minimal_app(p["subscriptionId"], p["resourceGroupName"], p["containerAppName"]))),
    "ContainerApps_ListByResourceGroup.json": Replay(
        "200", lambda aca, rm, p: {"value": _page(aca.container_apps.list_by_resource_group(p["resourceGroupName"]))},
        lambda w, p, e: [_seed_app(w, v) for v in e["responses"]["200"]["body"]["value"]]),
    "ContainerApps_ListBySubscription.json": Replay(
        "200", lambda aca, rm, p: {"value": _page(aca.container_apps.list_by_subscription())},
        lambda w, p, e: [_seed_app(w, v) for v in e["responses"]["200"]["body"]["value"]]),
    "ContainerApps_ListSecrets.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.list_secrets(p["resourceGroupName"], p["containerAppName"]).as_dict(),
        lambda w, p, e: _seed_app(w, _minimal_app(p["subscriptionId"], p["resourceGroupName"], p["containerAppName"]))),
    "ContainerApps_GetAuthToken.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps.get_auth_token(p["resourceGroupName"], p["containerAppName"]).as_dict(),
        lambda w, p, e: _seed_app(w, _minimal_app(p["subscriptionId"], p["resourceGroupName"], p["containerAppName"]))),
    "Revisions_Get.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revisions.get_revision(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"]).as_dict(),
        lambda w, p, e: _seed_revision(w, p, template=e["responses"]["200"]["body"]["properties"]["template"]), "Revision"),
    "Revisions_List.json": Replay(
        "200", lambda aca, rm, p: {"value": _page(aca.container_apps_revisions.list_revisions(
            p["resourceGroupName"], p["containerAppName"]))},
        lambda w, p, e: _seed_revision(w, {**p, "revisionName": e["responses"]["200"]["body"]["value"][0]["name"]},
                                       template=e["responses"]["200"]["body"]["value"][0]["properties"]["template"])),
    "Revisions_Activate.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revisions.activate_revision(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"]) or {},
        lambda w, p, e: _seed_revision(w, p)),
    "Revisions_Deactivate.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revisions.deactivate_revision(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"]) or {},
        lambda w, p, e: _seed_revision(w, p)),
    "Revisions_Restart.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revisions.restart_revision(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"]) or {},
        lambda w, p, e: _seed_revision(w, p)),
    "Replicas_Get.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revision_replicas.get_replica(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"], p["replicaName"]).as_dict(),
        lambda w, p, e: _seed_revision(w, p, p.get("replicaName")), "Replica"),
    "Replicas_List.json": Replay(
        "200", lambda aca, rm, p: aca.container_apps_revision_replicas.list_replicas(
            p["resourceGroupName"], p["containerAppName"], p["revisionName"]).as_dict(),
        lambda w, p, e: _seed_revision(w, p, e["responses"]["200"]["body"]["value"][0]["name"]), "ReplicaCollection"),
}

# Official examples of operations mcp-operator does not use, so the simulator does not implement them.
NOT_IMPLEMENTED = {
    "ContainerApps_Start.json": "ContainerApps_Start (start/stop are not used by the operator)",
    "ContainerApps_Stop.json": "ContainerApps_Stop (start/stop are not used by the operator)",
    "Operations_List.json": "Operations_List (not used by the operator)",
    "GetProviders.json": "Providers_List (the operator reads one provider at a time)",
}


def shape_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks a key of ``expected`` or has another JSON type there."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '(body)'}: expected an object, got {type(actual).__name__}"]
        found = []
        for key, value in expected.items():
            where = f"{path}.{key}"
            if key not in actual:
                if not any(re.fullmatch(pattern, where) for pattern in NOT_SIMULATED):
                    found.append(f"{where}: missing")
            else:
                found.extend(shape_differences(value, actual[key], where))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {type(actual).__name__}"]
        if expected and not actual:
            return [f"{path}: expected items, got none"]
        found = []
        for item in expected:  # each example item must have the shape of some returned item
            candidates = [shape_differences(item, other, path + "[]") for other in actual]
            found.extend(min(candidates, key=len) if candidates else [])
        return sorted(set(found))
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null"}
    if kinds.get(type(expected)) != kinds.get(type(actual)):
        return [f"{path}: expected {kinds.get(type(expected))}, got {kinds.get(type(actual))}"]
    return []


def test_every_example_is_covered() -> None:
    assert EXAMPLE_FILES, f"no official examples found under {SPECS}"
    names = {path.name for path in EXAMPLE_FILES}
    assert names == set(REPLAYS) | set(NOT_IMPLEMENTED), "an example is neither replayed nor listed as not implemented"


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_example_replays_with_the_same_shape(sim: SimulatorThread, name: str) -> None:
    example = _load(name)
    replay = REPLAYS[name]
    params = example["parameters"]
    world = sim.simulator.world

    def setup() -> None:
        saved = dict(world.latency)
        world.latency.update({key: 0.0 for key in world.latency})
        if replay.setup:
            replay.setup(world, params, example)
        world.settle()
        world.latency.update(saved)

    sim.call(setup)
    subscription = params.get("subscriptionId", sim.info["subscriptionId"])
    result = replay.call(apps_client(sim, subscription), resources_client(sim, subscription), params)
    expected = example["responses"][replay.status].get("body", {})
    assert shape_differences(expected, result) == [], json.dumps(result, indent=1)[:3000]
    if replay.definition:
        assert load_document(str(OPENAPI)).errors(replay.definition, result) == []
    calls = [r for r in sim.simulator.requests if r.operation != "OperationStatus_Get" and r.operation != "OperationResult_Get"]
    assert calls and all(200 <= r.status < 300 for r in calls), [(r.method, r.path, r.status) for r in calls]
