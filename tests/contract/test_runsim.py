"""The Google Cloud simulator through Google's own clients: google-cloud-run's REST client, Secret Manager's and
Cloud Logging's clients, and google-auth's service-account and workload-identity-federation code paths.

Each rule the Cloud Run target relies on is shown to hold here, so that a simulator that stopped enforcing it
would fail; and the clients' own parsing (enums as integers, LRO polling, error classes by HTTP status) shows
the simulator speaks the wire protocol they expect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import pytest
import requests
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import logging as cloud_logging
from google.cloud import run_v2, secretmanager_v1
from google.iam.v1 import policy_pb2
from google.oauth2 import service_account

from runsim import discovery
from runsim.testing import RunSimulatorThread

pytestmark = pytest.mark.contract
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunSimulatorThread]:
    running = RunSimulatorThread().start()
    yield running
    running.stop()


@pytest.fixture
def federated(sim: RunSimulatorThread, monkeypatch: pytest.MonkeyPatch) -> Any:
    """google-auth's Application Default Credentials, as the operator's pod has them: workload identity federation.
    Google's clients use requests, which takes its CA bundle from the environment only."""
    for name, value in sim.operator_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.info["caBundle"])
    credentials, project = google.auth.default(scopes=SCOPES)
    assert project == sim.info["project"]
    return credentials


def services(sim: RunSimulatorThread, credentials: Any) -> run_v2.ServicesClient:
    return run_v2.ServicesClient(transport="rest", credentials=credentials,
                                 client_options=ClientOptions(api_endpoint=sim.info["endpoint"]))


def parent(sim: RunSimulatorThread) -> str:
    return f"projects/{sim.info['project']}/locations/{sim.info['region']}"


def template(revision: str, image: str = "ghcr.io/acme/calc:1.0.0", **extra: Any) -> run_v2.RevisionTemplate:
    return run_v2.RevisionTemplate(revision=revision, containers=[run_v2.Container(
        image=image, ports=[run_v2.ContainerPort(container_port=8080)], **extra)])


def pinned(*targets: tuple[str, int, str]) -> list[run_v2.TrafficTarget]:
    return [run_v2.TrafficTarget(type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
                                 revision=name, percent=percent, tag=tag) for name, percent, tag in targets]


def created(sim: RunSimulatorThread, client: run_v2.ServicesClient, name: str) -> run_v2.Service:
    service = run_v2.Service(template=template(f"{name}-one"), traffic=pinned((f"{name}-one", 100, "one")),
                             ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
    return client.create_service(parent=parent(sim), service=service, service_id=name).result(timeout=30)


def test_a_service_is_created_by_a_long_running_operation_and_ends_ready(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    done = created(sim, client, "contract-create")
    assert done.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert not done.reconciling and done.observed_generation == done.generation == 1
    assert done.latest_ready_revision.endswith("/revisions/contract-create-one")
    assert done.uri.startswith("https://contract-create-") and done.uri.endswith(".a.run.app")
    assert [(t.revision, t.percent, t.tag) for t in done.traffic_statuses] == [("contract-create-one", 100, "one")]
    assert done.traffic_statuses[0].uri.startswith("https://one---contract-create-"), "a tag has a URL of its own"
    with pytest.raises(exceptions.Conflict):  # ALREADY_EXISTS arrives as HTTP 409: the REST client raises Conflict
        created(sim, client, "contract-create")


def test_a_revision_name_is_forever_and_traffic_must_sum_to_100(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    service = created(sim, client, "contract-names")
    service.template = template("contract-names-one", image="ghcr.io/acme/calc:2.0.0")
    with pytest.raises(exceptions.Conflict, match="different configuration already exists"):
        client.update_service(service=service).result(timeout=30)
    service = client.get_service(name=service.name)
    service.template = template("contract-names-two", image="ghcr.io/acme/calc:2.0.0")
    service.traffic = pinned(("contract-names-one", 90, "one"), ("contract-names-two", 0, "two"))
    with pytest.raises(exceptions.BadRequest, match="sum to 100"):
        client.update_service(service=service).result(timeout=30)
    service.traffic = pinned(("contract-names-one", 100, "one"), ("contract-names-two", 0, "two"))
    done = client.update_service(service=service).result(timeout=30)
    assert {t.revision: t.percent for t in done.traffic_statuses} == {"contract-names-one": 100, "contract-names-two": 0}
    assert done.generation == 2 and done.latest_created_revision.endswith("contract-names-two")


def test_a_failing_revision_leaves_traffic_where_it_was(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    service = created(sim, client, "contract-fail")
    sim.fail_revisions_of("calc:broken", "container exited with code 3")
    service.template = template("contract-fail-two", image="ghcr.io/acme/calc:broken")
    service.traffic = pinned(("contract-fail-one", 100, "one"), ("contract-fail-two", 0, "two"))
    with pytest.raises(exceptions.GoogleAPICallError, match="exited with code 3"):
        client.update_service(service=service).result(timeout=30)
    after = client.get_service(name=service.name)
    assert after.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert [(t.revision, t.percent) for t in after.traffic_statuses] == [("contract-fail-one", 100)]
    revision = run_v2.RevisionsClient(transport="rest", credentials=federated, client_options=ClientOptions(
        api_endpoint=sim.info["endpoint"])).get_revision(name=f"{service.name}/revisions/contract-fail-two")
    assert revision.conditions[0].state == run_v2.Condition.State.CONDITION_FAILED


def test_a_revision_named_by_traffic_cannot_be_deleted(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    service = created(sim, client, "contract-delete")
    service.template = template("contract-delete-two", image="ghcr.io/acme/calc:2.0.0")
    service.traffic = pinned(("contract-delete-two", 100, "two"))
    client.update_service(service=service).result(timeout=30)
    revisions = run_v2.RevisionsClient(transport="rest", credentials=federated,
                                       client_options=ClientOptions(api_endpoint=sim.info["endpoint"]))
    with pytest.raises(exceptions.BadRequest):
        revisions.delete_revision(name=f"{service.name}/revisions/contract-delete-two").result(timeout=30)
    revisions.delete_revision(name=f"{service.name}/revisions/contract-delete-one").result(timeout=30)
    assert [r.name.rpartition("/")[2] for r in revisions.list_revisions(parent=service.name)] == ["contract-delete-two"]
    client.delete_service(name=service.name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        client.get_service(name=service.name)


def test_iam_policy_is_read_modify_write_with_its_etag(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    service = created(sim, client, "contract-iam")
    policy = client.get_iam_policy(request={"resource": service.name})
    policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
    client.set_iam_policy(request={"resource": service.name, "policy": policy})
    with pytest.raises(exceptions.Conflict):  # the etag read before the first set is stale now
        client.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert [list(b.members) for b in client.get_iam_policy(request={"resource": service.name}).bindings] == [["allUsers"]]


def test_throttling_is_429_and_the_rest_client_raises_too_many_requests(sim: RunSimulatorThread, federated: Any) -> None:
    client = services(sim, federated)
    sim.call(lambda: setattr(sim.simulator.throttle, "enabled", True))
    try:
        with pytest.raises(exceptions.TooManyRequests, match="Write requests per minute per region"):
            for index in range(70):  # 60 writes a minute, a burst of 60
                client.create_service(parent=parent(sim), service_id=f"contract-quota-{index}", service=run_v2.Service(
                    template=template(f"contract-quota-{index}-a")))
    finally:
        sim.call(lambda: (setattr(sim.simulator.throttle, "enabled", False), sim.simulator.throttle.reset()))


def test_secret_manager_versions_feed_a_revision(sim: RunSimulatorThread, federated: Any) -> None:
    secrets = secretmanager_v1.SecretManagerServiceClient(transport="rest", credentials=federated,
                                                          client_options=ClientOptions(api_endpoint=sim.info["endpoint"]))
    project = f"projects/{sim.info['project']}"
    secret = secrets.create_secret(parent=project, secret_id="contract-token",
                                   secret={"replication": {"automatic": {}}, "labels": {"mcp-service": "contract-secret"}})
    version = secrets.add_secret_version(parent=secret.name, payload={"data": b"s3cr3t"})
    assert secrets.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"s3cr3t"
    listed = secrets.list_secrets(request={"parent": project, "filter": "labels.mcp-service=contract-secret"})
    assert [s.name for s in listed] == [secret.name]
    client = services(sim, federated)
    env = [run_v2.EnvVar(name="TOKEN", value_source=run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(
        secret="contract-token", version=version.name.rpartition("/")[2])))]
    done = client.create_service(parent=parent(sim), service_id="contract-secret", service=run_v2.Service(
        template=template("contract-secret-a", env=env))).result(timeout=30)
    assert done.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    missing = [run_v2.EnvVar(name="TOKEN", value_source=run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(
        secret="contract-token", version="9")))]
    with pytest.raises(exceptions.GoogleAPICallError, match="versions/9 was not found"):
        client.create_service(parent=parent(sim), service_id="contract-secret-missing", service=run_v2.Service(
            template=template("contract-secret-missing-a", env=missing))).result(timeout=30)


def test_cloud_logging_lists_a_services_entries(sim: RunSimulatorThread, federated: Any) -> None:
    created(sim, services(sim, federated), "contract-logs")
    client = cloud_logging.Client(project=sim.info["project"], credentials=federated, _use_grpc=False,
                                  client_options={"api_endpoint": sim.info["endpoint"]})
    entries = list(client.list_entries(filter_='resource.type="cloud_run_revision" AND '
                                               'resource.labels.service_name="contract-logs"'))
    assert entries and "STARTUP TCP probe succeeded" in entries[0].payload
    assert entries[0].resource.labels["revision_name"] == "contract-logs-one"


def test_a_service_account_key_gets_a_token_and_a_foreign_key_does_not(sim: RunSimulatorThread, federated: Any) -> None:
    document = json.loads(sim.credentials_secret()["credentials.json"])
    # Google's client makes it a self-signed JWT, which the APIs accept without a token endpoint ...
    services(sim, service_account.Credentials.from_service_account_info(document, scopes=SCOPES)).list_services(
        parent=parent(sim))
    # ... and a refresh (what the operator does) is a JWT-bearer grant at the key file's token URI.
    credentials = service_account.Credentials.from_service_account_info(document, scopes=SCOPES)
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token and credentials.token.startswith("ya29.")
    foreign = {**document, "private_key_id": "not-registered"}
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        service_account.Credentials.from_service_account_info(foreign, scopes=SCOPES).refresh(
            google.auth.transport.requests.Request())


def test_a_request_without_a_token_or_with_an_unknown_field_is_refused(sim: RunSimulatorThread, federated: Any) -> None:
    url = f"{sim.info['endpoint']}/v2/{parent(sim)}/services/anything"
    for headers in ({}, {"Authorization": "Bearer ya29.forged"}):  # none, and a token nobody issued
        refused = requests.get(url, headers=headers, verify=sim.info["caBundle"], timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
    api = discovery.api("run")
    problems = api.problems("GoogleCloudRunV2Service", {"template": {"containers": [{"image": "x", "imageUri": "y"}]},
                                                        "ingress": 9}, "service")
    assert any('Unknown name "imageUri"' in p for p in problems) and any("'service.ingress'" in p for p in problems)
    assert api.problems("GoogleCloudRunV2Service", {"ingress": 1, "template": {"timeout": "300s"}}, "service") == []
