"""Container Apps' own rules, without the cloud: how a spec is placed, names, request bodies, states."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.contract import Phase, RevisionKey
from mcp_operator.reconcile.desired import Desired, SecretEnv, SpecError, resolve
from mcp_operator.settings import Settings
from mcp_operator.targets.azure_container_apps import bodies
from mcp_operator.targets.azure_container_apps.connect import ContainerAppsConnector
from mcp_operator.targets.azure_container_apps.placement import app_placement
from mcp_operator.targets.azure_container_apps.settings import AzureSettings

SUB = "8f3c2b9e-1d4a-4c7b-9e2f-5a6b7c8d9e0f"


def connector(**defaults: Any) -> ContainerAppsConnector:
    return ContainerAppsConnector(Settings(), AzureSettings(common=Settings(), **defaults))


def spec(**sections: Any) -> McpDeploymentSpec:
    return McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": "x"}, **sections})


def placed(**sections: Any) -> Desired:
    return resolve(spec(**sections), "calc", "team", connector(default_subscription_id=SUB))


def test_resolution_precedence_spec_then_operator_then_recorded_then_builtin() -> None:
    operator_defaults = connector(default_subscription_id=SUB, default_location="westeurope")
    where = app_placement(resolve(spec(), "calc", "team", operator_defaults))
    assert (where.subscription_id, where.location, where.resource_group, where.environment) == (
        SUB, "westeurope", "calc-rg", "calc-env")
    in_spec = spec(azure={"location": "northeurope"})
    assert app_placement(resolve(in_spec, "calc", "team", operator_defaults)).location == "northeurope"
    assert app_placement(resolve(spec(), "calc", "team", connector(default_subscription_id=SUB))).location == "eastus"
    recorded = {"subscriptionId": SUB, "location": "uksouth"}  # status.azure, read by a CLI without the operator's settings
    assert app_placement(resolve(spec(), "calc", "team", connector(), recorded)).location == "uksouth"
    with pytest.raises(SpecError) as missing:
        resolve(spec(), "calc", "team", connector())
    assert missing.value.field == "spec.azure.subscriptionId"


def test_an_image_is_required() -> None:
    no_image = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"name": "calc"}})
    with pytest.raises(SpecError) as missing:
        resolve(no_image, "calc", "team", connector(default_subscription_id=SUB))
    assert missing.value.field == "spec.server.image"


def test_the_snapshot_carries_the_scaling_fields_in_the_azure_section() -> None:
    snapshot = placed(azure={"subscriptionId": SUB, "targetPort": 3000, "maxReplicas": 4}).snapshot
    assert snapshot.target is not None and snapshot.target.section == "azure"
    assert snapshot.target.settings == {"targetPort": 3000, "minReplicas": 1, "maxReplicas": 4}
    assert placed(azure={"minReplicas": 0}).revision_hash != placed().revision_hash, "scaling makes a revision"
    assert placed(azure={"location": "uksouth"}).revision_hash == placed().revision_hash, "placement does not"


@pytest.mark.parametrize(("name", "key"), [
    ("calc--r3-0123abcd", RevisionKey(3, "0123abcd")),
    ("my--app--r12-deadbeef", RevisionKey(12, "deadbeef")),
    ("calc--manual", None),
    ("calc--r3-short", None),
    ("calc", None),
])
def test_revision_names_carry_the_key(name: str, key: RevisionKey | None) -> None:
    assert bodies.revision_key(name) == key


def test_a_revision_name_round_trips_to_its_key() -> None:
    want = placed()
    key = RevisionKey(7, want.revision_hash)
    name = bodies.revision_name(want, key)
    found = bodies.revision_key(name)
    assert name == f"calc--r7-{want.revision_hash[:8]}" and found is not None and found.matches(7, want.revision_hash)


@pytest.mark.parametrize(("secret", "key", "expected"), [
    ("s", "k", "s-k"),
    ("API_Keys", "Token_1", "api-keys-token-1"),
    ("x" * 40, "y" * 40, ("x" * 40 + "-" + "y" * 10) + "-"),
])
def test_secret_names_follow_container_apps_rules(secret: str, key: str, expected: str) -> None:
    name = bodies.secret_name(SecretEnv("E", secret, key))
    assert name.startswith(expected) and len(name) <= 60 and name == name.lower()


def test_the_app_body_keeps_traffic_on_the_serving_revision_and_secrets_by_reference() -> None:
    want = resolve(spec(server={"image": "img:2", "env": [
        {"name": "PLAIN", "value": "1"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        azure={"targetPort": 3000}), "calc", "team", connector(default_subscription_id=SUB))
    body = bodies.app_body(want, {"TOKEN": "sekret"}, RevisionKey(2, want.revision_hash), "calc--r1-aaaaaaaa")
    props = body["properties"]
    assert props["configuration"]["ingress"]["traffic"] == [{"revisionName": "calc--r1-aaaaaaaa", "weight": 100}]
    assert props["configuration"]["ingress"]["targetPort"] == 3000
    assert props["configuration"]["secrets"] == [{"name": "s-k", "value": "sekret"}]
    env = props["template"]["containers"][0]["env"]
    assert {"name": "PORT", "value": "3000"} in env and {"name": "TOKEN", "secretRef": "s-k"} in env
    assert "sekret" not in str(props["template"]), "secret values go only into configuration.secrets"
    assert props["template"]["revisionSuffix"] == f"r2-{want.revision_hash[:8]}"
    assert body["tags"] == {"mcp.deploy.dev/created-by": "mcp-operator", "mcp.deploy.dev/owner": "team.calc"}


def revision(name: str, active: bool, provisioning: str, running: str, weight: int = 0) -> dict[str, Any]:
    return {"name": name, "properties": {"active": active, "provisioningState": provisioning, "runningState": running,
                                         "trafficWeight": weight}}


@pytest.mark.parametrize(("active", "provisioning", "running", "phase"), [
    (True, "Provisioned", "Running", Phase.READY),
    (True, "Provisioned", "RunningAtMaxScale", Phase.READY),
    (True, "Provisioning", "Processing", Phase.PENDING),
    (False, "Provisioned", "Stopped", Phase.RETIRED),
    (True, "Failed", "Failed", Phase.FAILED),
    (True, "Provisioned", "Failed", Phase.FAILED),
])
def test_revision_states_map_to_neutral_phases(active: bool, provisioning: str, running: str, phase: Phase) -> None:
    seen = bodies.observed_from({"properties": {"provisioningState": "Succeeded"}},
                                [revision("calc--r1-0123abcd", active, provisioning, running)], (), "rg")
    assert seen.revisions[0].phase is phase
    assert seen.revisions[0].key == RevisionKey(1, "0123abcd")


def test_a_busy_or_failed_app_is_reported_neutrally() -> None:
    busy = bodies.observed_from({"properties": {"provisioningState": "InProgress"}}, [], (), "rg")
    assert busy.busy and "InProgress" in busy.busy
    want = placed()
    failed_app = {"properties": {"provisioningState": "Failed", "configuration": {}}}
    assert "the app's last operation failed" in bodies.config_drift(want, failed_app)


def _tampered(change: dict[str, Any], suffix: str | None = None) -> dict[str, Any]:
    want = placed()
    key = RevisionKey(1, want.revision_hash)
    template = bodies.template(want, key)
    template["containers"][0].update(change)
    template["containers"][0].setdefault("resources", {})["ephemeralStorage"] = "2Gi"  # a default the cloud fills in
    if suffix is not None:
        template["revisionSuffix"] = suffix
    return template


@pytest.mark.parametrize(("change", "suffix", "drifted"), [
    ({}, None, False),
    ({"image": "ghcr.io/evil/miner:1"}, None, True),
    ({"env": [{"name": "PORT", "value": "8080"}, {"name": "EXTRA", "value": "1"}]}, None, True),
    ({"image": "ghcr.io/evil/miner:1"}, "hotfix", True),  # a suffix we never give
    ({"image": "x:0"}, "r1-00000000", False),  # another revision of ours: a rollback's template, not drift
])
def test_template_drift_is_found_only_in_what_we_did_not_write(change: dict[str, Any], suffix: str | None,
                                                               drifted: bool) -> None:
    found = bodies.template_drift(placed(), _tampered(change, suffix))
    assert bool(found) == drifted, found
