"""The simulator's service semantics, driven only through the real Azure SDKs (sync and aio)."""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.appcontainers import models as m
from azure.mgmt.appcontainers.aio import ContainerAppsAPIClient as AsyncContainerAppsAPIClient

from armsim.identity import federated_token
from armsim.testing import SimulatorThread
from tests.contract.sdk import apps_client, client_options, resources_client

pytestmark = pytest.mark.contract
RG, ENV, APP = "demo-rg", "demo-env", "calc"


def _infrastructure(sim: SimulatorThread) -> str:
    """Registers Microsoft.App, creates the resource group and environment; returns the environment id."""
    rm = resources_client(sim)
    rm.providers.register("Microsoft.App")
    deadline = time.monotonic() + 10
    while rm.providers.get("Microsoft.App").registration_state != "Registered":
        assert time.monotonic() < deadline, "provider registration never finished"
        time.sleep(0.05)
    rm.resource_groups.create_or_update(RG, {"location": "eastus"})
    env = apps_client(sim).managed_environments.begin_create_or_update(RG, ENV, {"location": "eastus", "properties": {}}).result()
    assert env.properties.provisioning_state == "Succeeded"
    return str(env.id)


def _app(env_id: str, image: str = "ghcr.io/acme/calc:1", mode: str = "Multiple", **template: Any) -> m.ContainerApp:
    return m.ContainerApp(
        location="eastus", environment_id=env_id,
        configuration=m.Configuration(active_revisions_mode=mode, ingress=m.Ingress(external=True, target_port=8080),
                                      secrets=[m.Secret(name="api-key", value="s3cret-value")]),
        template=m.Template(containers=[m.Container(name=APP, image=image,
                                                    env=[m.EnvironmentVar(name="API_KEY", secret_ref="api-key")])],
                            **template),
    )


def test_provider_registration_moves_through_registering(sim: SimulatorThread) -> None:
    rm = resources_client(sim)
    with pytest.raises(ResourceExistsError) as refused:
        apps_client(sim).managed_environments.begin_create_or_update(RG, ENV, {"location": "eastus"}).result()
    assert refused.value.error is not None and refused.value.error.code == "MissingSubscriptionRegistration"
    assert "'Microsoft.App'" in str(refused.value)
    assert rm.providers.get("Microsoft.App").registration_state == "NotRegistered"
    assert rm.providers.register("Microsoft.App").registration_state == "Registering"
    time.sleep(0.3)
    assert rm.providers.get("Microsoft.App").registration_state == "Registered"


def test_resource_group_lifecycle_with_long_running_delete(sim: SimulatorThread) -> None:
    rm = resources_client(sim)
    assert rm.resource_groups.check_existence(RG) is False
    group = rm.resource_groups.create_or_update(RG, {"location": "westeurope", "tags": {"owner": "test"}})
    assert (group.name, group.location, group.tags) == (RG, "westeurope", {"owner": "test"})
    assert rm.resource_groups.check_existence(RG.upper()) is True, "ARM names are case-insensitive"
    poller = rm.resource_groups.begin_delete(RG)
    assert not poller.done()
    poller.result()
    assert rm.resource_groups.check_existence(RG) is False
    with pytest.raises(ResourceNotFoundError) as missing:
        rm.resource_groups.get(RG)
    assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"


def test_create_update_delete_complete_through_the_sdk_pollers(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    client = apps_client(sim)
    env = client.managed_environments.get(RG, ENV)
    assert re.fullmatch(r"[a-z]+-[0-9a-f]{8}\.eastus\.azurecontainerapps\.io", env.properties.default_domain)
    created = client.container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    assert created.properties.provisioning_state == "Succeeded"
    first = created.properties.latest_revision_name
    assert re.fullmatch(rf"{APP}--[a-z0-9]+", first)
    assert created.properties.latest_ready_revision_name == first
    assert created.properties.configuration.ingress.fqdn == f"{APP}.{env.properties.default_domain}"
    assert created.properties.latest_revision_fqdn == f"{first}.{env.properties.default_domain}"
    assert all("value" not in secret for secret in created.as_dict()["properties"]["configuration"]["secrets"])
    assert "s3cret-value" not in json.dumps(client.container_apps.get(RG, APP).as_dict())
    assert client.container_apps.list_secrets(RG, APP).value[0].value == "s3cret-value"

    patched = client.container_apps.begin_update(RG, APP, m.ContainerApp(
        location="eastus", template=m.Template(containers=[m.Container(name=APP, image="ghcr.io/acme/calc:2")]))).result()
    second = patched.properties.latest_revision_name
    assert second != first and patched.properties.template.containers[0].image == "ghcr.io/acme/calc:2"
    kinds = [r.operation for r in sim.simulator.requests]
    assert "ContainerApps_Update" in kinds and "OperationResult_Get" in kinds

    client.container_apps.begin_delete(RG, APP).result()
    with pytest.raises(ResourceNotFoundError):
        client.container_apps.get(RG, APP)
    client.managed_environments.begin_delete(RG, ENV).result()
    assert list(client.managed_environments.list_by_resource_group(RG)) == []


def test_configuration_change_makes_no_revision_and_template_change_does(sim: SimulatorThread) -> None:
    client = apps_client(sim)
    env_id = _infrastructure(sim)
    client.container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    body = _app(env_id)
    body.properties.configuration.ingress.cors_policy = m.CorsPolicy(allowed_origins=["https://a.example"])
    client.container_apps.begin_create_or_update(RG, APP, body).result()
    assert len(list(client.container_apps_revisions.list_revisions(RG, APP))) == 1
    client.container_apps.begin_create_or_update(RG, APP, _app(env_id, revision_suffix="v2",
                                                               scale=m.Scale(min_replicas=2, max_replicas=4))).result()
    names = sorted(r.name for r in client.container_apps_revisions.list_revisions(RG, APP))
    assert len(names) == 2 and f"{APP}--v2" in names
    replicas = client.container_apps_revision_replicas.list_replicas(RG, APP, f"{APP}--v2").value
    assert len(replicas) == 2
    with pytest.raises(HttpResponseError) as reused:
        client.container_apps.begin_create_or_update(RG, APP, _app(env_id, image="other:1", revision_suffix="v2")).result()
    assert reused.value.error is not None and reused.value.error.code == "ContainerAppRevisionSuffixConflict"


def test_multiple_mode_traffic_activation_and_inactive_revision_limit(sim: SimulatorThread) -> None:
    client = apps_client(sim)
    env_id = _infrastructure(sim)
    v1 = client.container_apps.begin_create_or_update(RG, APP, _app(env_id, revision_suffix="v1")).result()
    v1_name = v1.properties.latest_revision_name
    keep_v1 = _app(env_id, image="img:2", revision_suffix="v2")
    keep_v1.properties.configuration.ingress.traffic = [m.TrafficWeight(revision_name=v1_name, weight=100)]
    client.container_apps.begin_create_or_update(RG, APP, keep_v1).result()
    weights = {r.name: (r.properties.traffic_weight, r.properties.active, r.properties.running_state)
               for r in client.container_apps_revisions.list_revisions(RG, APP)}
    assert weights == {f"{APP}--v1": (100, True, "Running"), f"{APP}--v2": (0, True, "Running")}

    bad = _app(env_id, image="img:2", revision_suffix="v2")
    bad.properties.configuration.ingress.traffic = [m.TrafficWeight(revision_name=f"{APP}--v2", weight=60)]
    with pytest.raises(HttpResponseError) as refused:
        client.container_apps.begin_create_or_update(RG, APP, bad).result()
    assert refused.value.error is not None and refused.value.error.code == "ContainerAppInvalidTrafficWeight"

    with pytest.raises(HttpResponseError) as busy:
        client.container_apps_revisions.deactivate_revision(RG, APP, f"{APP}--v1")
    assert busy.value.error is not None and busy.value.error.code == "ContainerAppRevisionHasTraffic"
    client.container_apps_revisions.deactivate_revision(RG, APP, f"{APP}--v2")
    to_v2 = _app(env_id, image="img:2", revision_suffix="v2")
    to_v2.properties.configuration.ingress.traffic = [m.TrafficWeight(revision_name=f"{APP}--v2", weight=100)]
    with pytest.raises(HttpResponseError) as inactive:
        client.container_apps.begin_create_or_update(RG, APP, to_v2).result()
    assert inactive.value.error is not None and inactive.value.error.code == "ContainerAppRevisionNotActive"
    client.container_apps_revisions.activate_revision(RG, APP, f"{APP}--v2")
    client.container_apps.begin_create_or_update(RG, APP, to_v2).result()
    assert client.container_apps_revisions.get_revision(RG, APP, f"{APP}--v2").properties.traffic_weight == 100

    limited = _app(env_id, image="img:3", revision_suffix="v3")
    limited.properties.configuration.max_inactive_revisions = 0
    limited.properties.configuration.ingress.traffic = [m.TrafficWeight(revision_name=f"{APP}--v2", weight=100)]
    client.container_apps.begin_create_or_update(RG, APP, limited).result()
    client.container_apps_revisions.deactivate_revision(RG, APP, f"{APP}--v1")
    names = {r.name for r in client.container_apps_revisions.list_revisions(RG, APP)}
    assert names == {f"{APP}--v2", f"{APP}--v3"}, "inactive revisions beyond maxInactiveRevisions are removed"


def test_single_mode_keeps_only_the_latest_revision_active(sim: SimulatorThread) -> None:
    client = apps_client(sim)
    env_id = _infrastructure(sim)
    client.container_apps.begin_create_or_update(RG, APP, _app(env_id, mode="Single")).result()
    client.container_apps.begin_create_or_update(RG, APP, _app(env_id, image="img:2", mode="Single")).result()
    revisions = {r.properties.template.containers[0].image: (r.properties.active, r.properties.traffic_weight)
                 for r in client.container_apps_revisions.list_revisions(RG, APP)}
    assert revisions == {"ghcr.io/acme/calc:1": (False, 0), "img:2": (True, 100)}


def test_failed_revision_fails_the_operation_with_its_error(sim: SimulatorThread) -> None:
    client = apps_client(sim)
    env_id = _infrastructure(sim)
    good = client.container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    sim.call(sim.simulator.fail_revisions, ":broken", "container exited with code 3")
    with pytest.raises(HttpResponseError) as failed:
        client.container_apps.begin_create_or_update(RG, APP, _app(env_id, image="img:broken")).result()
    assert failed.value.error is not None and failed.value.error.code == "ContainerAppOperationError"
    assert "container exited with code 3" in str(failed.value)
    app = client.container_apps.get(RG, APP)
    assert app.properties.provisioning_state == "Failed"
    assert app.properties.latest_ready_revision_name == good.properties.latest_revision_name
    broken = client.container_apps_revisions.get_revision(RG, APP, app.properties.latest_revision_name)
    assert (broken.properties.provisioning_state, broken.properties.running_state) == ("Failed", "Failed")
    assert "exited with code 3" in broken.properties.provisioning_error


def test_invalid_body_gets_400_in_arm_error_shape(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    body = _app(env_id).as_dict()
    body["properties"]["template"]["containers"] = "not-a-list"
    with pytest.raises(HttpResponseError) as invalid:
        apps_client(sim).container_apps.begin_create_or_update(RG, APP, body).result()
    assert invalid.value.status_code == 400
    assert invalid.value.error is not None and invalid.value.error.code == "InvalidRequestContent"
    assert "properties.template.containers" in invalid.value.error.message


def test_dropped_connection_while_polling_is_retried_by_the_sdk(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    sim.call(sim.simulator.add_fault, action="drop", operation="OperationStatus_Get", count=1)
    app = apps_client(sim).container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    assert app.properties.provisioning_state == "Succeeded"
    statuses = [r.status for r in sim.simulator.requests if r.operation == "OperationStatus_Get"]
    assert statuses[0] == -1 and statuses[-1] == 200


def test_lost_answer_to_a_put_is_survived_by_re_reading_state(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    client = apps_client(sim, retry_total=0)
    sim.call(sim.simulator.add_fault, action="drop", when="after", operation="ContainerApps_CreateOrUpdate", count=1)
    with pytest.raises(Exception) as lost:
        client.container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    assert "disconnect" in repr(lost.value).lower() or "connection" in repr(lost.value).lower()
    deadline = time.monotonic() + 10
    while (state := client.container_apps.get(RG, APP).properties.provisioning_state) != "Succeeded":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert len(list(client.container_apps_revisions.list_revisions(RG, APP))) == 1


def test_429_with_retry_after_is_retried_after_that_delay(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    client = apps_client(sim)
    client.container_apps.begin_create_or_update(RG, APP, _app(env_id)).result()
    sim.call(sim.simulator.add_fault, action="status", status=429, retry_after=1, operation="ContainerApps_Get",
             code="SubscriptionRequestsThrottled", count=1)
    started = time.monotonic()
    assert client.container_apps.get(RG, APP).name == APP
    assert time.monotonic() - started >= 0.95
    assert [r.status for r in sim.simulator.requests if r.operation == "ContainerApps_Get"][-2:] == [429, 200]


def test_token_buckets_throttle_and_report_remaining(sim: SimulatorThread) -> None:
    def tight() -> None:
        sim.simulator.throttle.enabled = True
        sim.simulator.throttle.limits["reads"] = (3, 1)

    sim.call(tight)
    rm = resources_client(sim, retry_total=0)
    remaining = []
    for _ in range(3):
        rm.resource_groups.check_existence(RG, cls=lambda response, _body, headers: remaining.append(
            response.http_response.headers["x-ms-ratelimit-remaining-subscription-reads"]))
    assert remaining == ["2", "1", "0"]
    with pytest.raises(HttpResponseError) as throttled:
        rm.resource_groups.check_existence(RG)
    assert throttled.value.status_code == 429
    assert throttled.value.response is not None and int(throttled.value.response.headers["Retry-After"]) >= 1


def _raw_get(sim: SimulatorThread, token: str | None) -> tuple[int, dict[str, Any]]:
    info = sim.info
    request = urllib.request.Request(  # noqa: S310 - https to the loopback simulator
        f"{info['armEndpoint']}/subscriptions/{info['subscriptionId']}/resourcegroups/x"
                                     "?api-version=2025-04-01")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=info["caBundle"])
    try:
        with urllib.request.urlopen(request, context=context) as response:  # noqa: S310 - loopback simulator
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_requests_without_a_valid_token_for_arm_are_refused(sim: SimulatorThread) -> None:
    status, body = _raw_get(sim, None)
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    info = sim.info
    credential = ClientSecretCredential(info["tenantId"], info["clientId"], info["clientSecret"], authority=info["authorityHost"],
                                        disable_instance_discovery=True, connection_verify=info["caBundle"])
    graph_token = credential.get_token("https://graph.microsoft.com/.default").token
    status, body = _raw_get(sim, graph_token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert "audience" in body["error"]["message"]
    status, body = _raw_get(sim, credential.get_token("https://management.azure.com/.default").token)
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_wrong_client_secret_is_refused_by_the_token_endpoint(sim: SimulatorThread) -> None:
    info = sim.info
    credential = ClientSecretCredential(info["tenantId"], info["clientId"], "wrong", authority=info["authorityHost"],
                                        disable_instance_discovery=True, connection_verify=info["caBundle"])
    with pytest.raises(ClientAuthenticationError) as refused:
        credential.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(refused.value)


def test_workload_identity_credential_gets_a_token(sim: SimulatorThread, tmp_path: Path) -> None:
    info = sim.info
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(federated_token(info["clientId"], info["tenantId"]))
    credential = WorkloadIdentityCredential(tenant_id=info["tenantId"], client_id=info["clientId"],
                                            token_file_path=str(token_file), authority=info["authorityHost"],
                                            disable_instance_discovery=True, connection_verify=info["caBundle"])
    from azure.mgmt.resource.resources import ResourceManagementClient

    rm = ResourceManagementClient(credential, info["subscriptionId"], **client_options(sim))
    assert rm.resource_groups.create_or_update(RG, {"location": "eastus"}).name == RG


async def test_async_client_and_continuation_token_resume(sim: SimulatorThread) -> None:
    env_id = _infrastructure(sim)
    info = sim.info
    options = client_options(sim)

    def credential() -> AsyncClientSecretCredential:
        return AsyncClientSecretCredential(info["tenantId"], info["clientId"], info["clientSecret"],
                                           authority=info["authorityHost"], disable_instance_discovery=True,
                                           connection_verify=info["caBundle"])

    async with credential() as cred, AsyncContainerAppsAPIClient(cred, info["subscriptionId"], **options) as client:
        poller = await client.container_apps.begin_create_or_update(RG, APP, _app(env_id))
        token = poller.continuation_token()
        assert not poller.done()
    # A new process (here: a new client) resumes the same operation from the token.
    async with credential() as cred, AsyncContainerAppsAPIClient(cred, info["subscriptionId"], **options) as client:
        resumed = await client.container_apps.begin_create_or_update(RG, APP, None, continuation_token=token)
        app = await resumed.result()
        assert app.properties.provisioning_state == "Succeeded"
        revisions = [r async for r in client.container_apps_revisions.list_revisions(RG, APP)]
        assert len(revisions) == 1
    puts = [r for r in sim.simulator.requests if r.operation == "ContainerApps_CreateOrUpdate"]
    assert len(puts) == 1, "resuming must not send the PUT again"
