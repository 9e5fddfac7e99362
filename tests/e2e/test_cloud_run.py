"""google-cloud-run end to end: the operator as a process, the real control plane, the Google Cloud simulator.

The operator's identity is workload identity federation (an external-account file and a projected token):
google-auth's own code exchanges it at the simulator's STS, and every request carries the token it got.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import Cluster
from localcluster.operator import OperatorProcess
from runsim.testing import RunSimulatorThread
from tests.e2e.conftest import KillableOperator, Mcpd, answered, manifest, shown_to_people, wait_until, writes_while_in_sync

pytestmark = pytest.mark.e2e
SECRET_VALUE = "s3cr3t-cloud-run-value-93ad"


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunSimulatorThread]:
    running = RunSimulatorThread().start()
    yield running
    running.stop()


def run_manifest(name: str, image: str = "ghcr.io/acme/calc:1.0.0", **spec: Any) -> dict[str, Any]:
    server = {"allowedOrigins": ["https://app.example"], **spec.pop("server", {})}
    gcp = {"projectId": "mcp-sim-project", "region": "us-central1", **spec.pop("gcp", {})}
    return manifest(name, image, target={"type": "google-cloud-run"}, server=server, gcp=gcp, **spec)


def service_state(cloud: RunSimulatorThread, name: str) -> dict[str, Any]:
    """The simulator's view: revisions (name -> image, state), traffic in effect, ingress, scaling, public access."""
    world = cloud.simulator.world

    def read() -> dict[str, Any]:
        world.settle()
        found = world.services.get(f"projects/mcp-sim-project/locations/us-central1/services/{name}")
        if found is None:
            return {}
        return {"revisions": {n: (r.template["containers"][0]["image"], r.state) for n, r in found.revisions.items()},
                "traffic": {s["revision"]: s.get("percent", 0) for s in found.traffic_statuses},
                "tags": {s["revision"]: s.get("tag") for s in found.traffic_statuses if s.get("tag")},
                "ingress": found.spec.get("ingress"), "scaling": found.spec.get("scaling"), "public": world.public(found),
                "env": found.spec["template"]["containers"][0].get("env", [])}

    return cloud.call(read)


def secrets_in(cloud: RunSimulatorThread) -> dict[str, list[bytes]]:
    return cloud.call(lambda: {s.name: [v.data for v in s.versions] for s in cloud.simulator.world.secrets.values()})


def test_create_update_fail_rollback_drift_and_delete(cluster: Cluster, cloud: RunSimulatorThread,
                                                      operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-run")
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-keys", f"--from-literal=token={SECRET_VALUE}")
    env = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "calc-keys", "key": "token"}}},
           {"name": "LOG_LEVEL", "value": "info"}]
    mcpd.apply(run_manifest("calc-run", server={"env": env}))
    status = mcpd.wait_ready(60)
    assert any(r.operation == "sts.token" and r.status == 200 for r in cloud.simulator.requests), \
        "the operator's identity came from google-auth's workload identity federation"
    assert status["url"].startswith("https://calc-run-") and status["url"].endswith(".a.run.app/")
    assert status["gcp"]["service"] == "calc-run" and status["gcp"]["public"] is True
    first = status["revisions"][0]
    assert first["name"].startswith("calc-run-r1-") and first["mcp"]["result"] == "Passed"
    assert status["traffic"][0]["url"].startswith("https://r1---calc-run-"), "each revision has a URL of its own"
    state = service_state(cloud, "calc-run")
    assert state["public"] and state["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 10}
    token = next(e for e in state["env"] if e["name"] == "API_TOKEN")
    assert token["valueSource"]["secretKeyRef"] == {"secret": "calc-run-api-token", "version": "1"}, "never a plain value"
    assert secrets_in(cloud)["calc-run-api-token"] == [SECRET_VALUE.encode()]

    # Update: revision 2 starts with no traffic and a tag, is checked on the tag's URL, and only then takes traffic.
    mcpd.apply(run_manifest("calc-run", "ghcr.io/acme/calc:2.0.0", server={"env": env}))
    status = wait_until(lambda: mcpd.status().get("servingRevision", "").startswith("calc-run-r2-") and mcpd.is_ready()
                        and mcpd.status(), 60, "revision 2 to serve")
    second = status["revisions"][1]
    assert second["mcp"]["url"].startswith("https://r2---calc-run-"), "checked on its own URL before traffic moved"
    assert service_state(cloud, "calc-run")["traffic"] == {second["name"]: 100}
    assert secrets_in(cloud)["calc-run-api-token"] == [SECRET_VALUE.encode()], "an unchanged value adds no version"

    # A revision that fails leaves traffic where it was, and says why in Cloud Run's words.
    cloud.fail_revisions_of("calc:broken", "container exited with code 3")
    mcpd.apply(run_manifest("calc-run", "ghcr.io/acme/calc:broken", server={"env": env}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "RevisionFailed" and "exited with code 3" in stalled["message"]
    assert "keeps serving" in stalled["message"]
    assert service_state(cloud, "calc-run")["traffic"] == {second["name"]: 100}

    # Editing the spec back to revision 1 routes to it: no new revision, one write.
    before = time.monotonic()
    made = len(service_state(cloud, "calc-run")["revisions"])
    mcpd.apply(run_manifest("calc-run", server={"env": env}))
    wait_until(lambda: mcpd.status().get("servingRevision") == first["name"] and mcpd.is_ready(), 60, "the rollback")
    assert len(service_state(cloud, "calc-run")["revisions"]) == made, "a rollback makes no revision"
    assert answered(cloud, "services.patch", before) == 1

    # Drift: traffic moved, ingress closed, scaling changed and the public binding removed behind the operator's back.
    world = cloud.simulator.world

    def tamper() -> None:  # as gcloud would: through the API, with no etag
        path = "projects/mcp-sim-project/locations/us-central1/services/calc-run"
        world.patch_service(path, {"traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": second["name"],
                                                "percent": 100}], "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY",
                                   "scaling": {"minInstanceCount": 3, "maxInstanceCount": 10}},
                            ["traffic", "ingress", "scaling"], False)
        world.set_policy(world.services[path], {"bindings": []})
    cloud.call(tamper)
    wait_until(lambda: service_state(cloud, "calc-run")["traffic"] == {first["name"]: 100}, 30, "traffic restored")
    wait_until(lambda: (lambda s: s["ingress"] == "INGRESS_TRAFFIC_ALL" and s["public"] and s["scaling"]["minInstanceCount"]
                        == 0)(service_state(cloud, "calc-run")), 30, "ingress, scaling and public access restored")
    assert mcpd.wait_events("DriftCorrected")

    # Zero writes while in sync.
    assert writes_while_in_sync(mcpd, cloud, not_writes=("sts.token", "oauth.token", "entries.list")) == []

    # No secret value anywhere a person or a log collector reads.
    assert SECRET_VALUE not in shown_to_people(mcpd, operator)

    # Delete: the service and the secrets it created.
    mcpd.delete()
    assert service_state(cloud, "calc-run") == {} and "calc-run-api-token" not in secrets_in(cloud)


def test_a_rotated_secret_is_a_new_secret_version_and_a_new_revision(cluster: Cluster, cloud: RunSimulatorThread,
                                                                     operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-rot")
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "rot-keys", "--from-literal=token=first-value")
    env = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "rot-keys", "key": "token"}}}]
    mcpd.apply(run_manifest("calc-rot", server={"env": env}))
    mcpd.wait_ready(60)
    rotated = cluster.kubectl("create", "secret", "generic", "-n", namespace, "rot-keys", "--dry-run=client", "-o", "json",
                              "--from-literal=token=second-value").stdout
    cluster.kubectl("apply", "-f", "-", input=rotated)
    wait_until(lambda: mcpd.status().get("servingRevision", "").startswith("calc-rot-r2-") and mcpd.is_ready(), 60,
               "a revision with the new value")
    assert secrets_in(cloud)["calc-rot-api-token"] == [b"first-value", b"second-value"]
    token = next(e for e in service_state(cloud, "calc-rot")["env"] if e["name"] == "API_TOKEN")
    assert token["valueSource"]["secretKeyRef"]["version"] == "2"


def test_allow_unauthenticated_toggles_the_public_binding(cluster: Cluster, cloud: RunSimulatorThread,
                                                          operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-priv")
    mcpd.apply(run_manifest("calc-priv"))
    mcpd.wait_ready(60)
    assert service_state(cloud, "calc-priv")["public"]
    mcpd.apply(run_manifest("calc-priv", gcp={"allowUnauthenticated": False}))
    wait_until(lambda: not service_state(cloud, "calc-priv")["public"], 30, "the binding removed")
    wait_until(lambda: mcpd.status()["gcp"].get("public") is False, 30, "status to say so")
    assert [r["number"] for r in mcpd.wait_ready(30)["revisions"]] == [1], "public access makes no revision"
    mcpd.apply(run_manifest("calc-priv", gcp={"allowUnauthenticated": True}))
    wait_until(lambda: service_state(cloud, "calc-priv")["public"], 30, "the binding back")


def test_retain_leaves_the_service_and_an_absent_service_releases_at_once(
        cluster: Cluster, cloud: RunSimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-keep")
    mcpd.apply(run_manifest("calc-keep", deletionPolicy="Retain"))
    mcpd.wait_ready(60)
    mcpd.delete()
    assert service_state(cloud, "calc-keep")["traffic"], "Retain leaves Google Cloud alone"

    gone = Mcpd(cluster, namespace, "calc-gone")
    gone.apply(run_manifest("calc-gone"))
    gone.wait_ready(60)
    cloud.call(lambda: cloud.simulator.world.services.pop("projects/mcp-sim-project/locations/us-central1/services/calc-gone"))
    gone.delete()  # finishes within kubectl's timeout: nothing left to delete


def test_bad_credentials_stall_with_a_clear_message(cluster: Cluster, cloud: RunSimulatorThread,
                                                    operator: OperatorProcess, namespace: str) -> None:
    document = json.loads(cloud.credentials_secret()["credentials.json"])
    forged = {**document, "private_key_id": "a-key-google-never-issued"}
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "gcp-key", f"--from-literal=credentials.json={json.dumps(forged)}")
    mcpd = Mcpd(cluster, namespace, "calc-badkey")
    mcpd.apply(run_manifest("calc-badkey", credentials={"secretRef": {"name": "gcp-key"}}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "CredentialsInvalid" and "invalid_grant" in stalled["message"]
    assert document["private_key"].splitlines()[1] not in json.dumps(mcpd.get()) + operator.logs()

    fixed = cluster.kubectl("create", "secret", "generic", "-n", namespace, "gcp-key", "--dry-run=client", "-o", "json",
                            f"--from-literal=credentials.json={json.dumps(document)}").stdout
    cluster.kubectl("apply", "-f", "-", input=fixed)
    mcpd.wait_ready(60)  # the Secret's rotation wakes the resource; the key is used


def test_sigkill_mid_rollout_makes_no_duplicate_revision(cluster: Cluster, cloud: RunSimulatorThread, namespace: str,
                                                         tmp_path: Path) -> None:
    operator = KillableOperator(cluster, cloud, namespace, tmp_path)
    mcpd = Mcpd(cluster, namespace, "calc-kill")
    world = cloud.simulator.world
    try:
        mcpd.apply(run_manifest("calc-kill"))
        mcpd.wait_ready(60)
        started = time.monotonic()
        cloud.call(world.schedule.latency.__setitem__, "revision.ready", 3.0)
        mcpd.apply(run_manifest("calc-kill", "ghcr.io/acme/calc:2.0.0"))
        wait_until(lambda: answered(cloud, "services.patch", started) >= 1, 30, "the new revision's patch")
        operator.kill_and_restart()
        wait_until(lambda: mcpd.status().get("servingRevision", "").startswith("calc-kill-r2-") and mcpd.is_ready(), 90,
                   "revision 2 to serve")
    finally:
        cloud.call(world.schedule.latency.__setitem__, "revision.ready", 0.3)
        operator.stop()
    assert len(service_state(cloud, "calc-kill")["revisions"]) == 2, "no duplicate revision"
    assert [r["number"] for r in mcpd.status()["revisions"]] == [1, 2]


def test_kubectl_mcp_logs_reads_cloud_logging_by_revision(cluster: Cluster, cloud: RunSimulatorThread,
                                                          operator: OperatorProcess, namespace: str) -> None:
    from tests.e2e.test_cli import mcp

    mcpd = Mcpd(cluster, namespace, "calc-logs")
    mcpd.apply(run_manifest("calc-logs"))
    mcpd.wait_ready(60)
    mcpd.apply(run_manifest("calc-logs", "ghcr.io/acme/calc:2.0.0"))
    status = wait_until(lambda: mcpd.status().get("servingRevision", "").startswith("calc-logs-r2-") and mcpd.is_ready()
                        and mcpd.status(), 60, "revision 2 to serve")
    first, second = (r["name"] for r in status["revisions"])
    every = mcp(cluster, cloud, "logs", "calc-logs", "-n", namespace, "--tail", "100")  # type: ignore[arg-type]
    assert every.returncode == 0, every.stderr
    assert "STARTUP TCP probe succeeded" in every.stdout and every.stdout.count("\n") >= 2
    only = mcp(cluster, cloud, "logs", "calc-logs", "-n", namespace, "--revision", "2")  # type: ignore[arg-type]
    assert only.returncode == 0 and only.stdout.count("\n") == 1, only.stdout + only.stderr
    assert first and second


def test_a_first_revision_that_fails_is_replaced_by_the_fixed_spec(cluster: Cluster, cloud: RunSimulatorThread,
                                                                   operator: OperatorProcess, namespace: str) -> None:
    """Nothing serves yet: the failed revision had all traffic asked for it; the fix takes it instead."""
    cloud.fail_revisions_of("calc:never-starts", "container exited with code 7")
    mcpd = Mcpd(cluster, namespace, "calc-first")
    mcpd.apply(run_manifest("calc-first", "ghcr.io/acme/calc:never-starts"))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "RevisionFailed" and "exited with code 7" in stalled["message"]
    mcpd.apply(run_manifest("calc-first"))
    status = wait_until(lambda: mcpd.is_ready() and mcpd.status(), 60, "the fixed revision to serve")
    assert status["servingRevision"].startswith("calc-first-r2-")
    assert service_state(cloud, "calc-first")["traffic"] == {status["servingRevision"]: 100}
