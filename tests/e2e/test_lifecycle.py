"""McpDeployment end to end: the operator process, the real control plane, the ARM simulator."""

from __future__ import annotations

import base64
import json
import time

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import Mcpd, cloud_revisions, manifest, wait_until

pytestmark = pytest.mark.e2e


def test_create_becomes_ready_with_fqdn_url_and_events(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                       namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-create")
    mcpd.apply(manifest("calc-create", azure={"minReplicas": 2}))
    waited = cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mcpd/calc-create", "--timeout=40s", timeout=60)
    assert "condition met" in waited.stdout
    status = mcpd.status()
    domain = cloud.call(lambda: cloud.simulator.world.environment(cloud.info["subscriptionId"], "calc-create-rg",
                                                                  "calc-create-env").default_domain)
    assert status["fqdn"] == f"calc-create.{domain}"
    assert status["url"] == f"https://calc-create.{domain}/"
    assert status["azure"] == {"appName": "calc-create", "environment": "calc-create-env", "location": "eastus",
                               "resourceGroup": "calc-create-rg", "subscriptionId": cloud.info["subscriptionId"],
                               "provisioningState": "Succeeded"}
    assert [{k: v for k, v in t.items() if k != "url"} for t in status["traffic"]] == [
        {"revisionName": status["servingRevision"], "revisionNumber": 1, "percent": 100}]
    assert status["traffic"][0]["url"].startswith(f"https://{status['servingRevision']}."), "the revision's own URL"
    assert [(r["number"], r["state"], r["trafficWeight"]) for r in status["revisions"]] == [(1, "Ready", 100)]
    assert status["servingRevision"] == status["revisions"][0]["name"] == status["latestRevision"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Reconciling"][0] == "False" and conditions["Stalled"][0] == "False"
    assert conditions["InsecureIngress"] == ("True", "AnyOriginWithoutAuth")
    wide = cluster.kubectl("get", "mcpd", "calc-create", "-n", namespace, "-o", "wide").stdout
    assert "REASON" in wide.splitlines()[0] and "MESSAGE" in wide.splitlines()[0] and "serves 100% of traffic" in wide, wide
    assert "Healthy" in wide.splitlines()[1], wide
    assert sorted(status["createdInfrastructure"]) == ["managedEnvironment/calc-create-env", "resourceGroup/calc-create-rg"]
    app = cloud.call(lambda: cloud.simulator.world.app(cloud.info["subscriptionId"], "calc-create-rg", "calc-create"))
    config = app.body["properties"]["configuration"]
    assert config["activeRevisionsMode"] == "Multiple"
    assert config["ingress"]["targetPort"] == 8080 and config["ingress"]["external"] is True
    assert config["ingress"]["corsPolicy"]["allowedMethods"] == ["GET", "POST", "DELETE", "OPTIONS"]
    container = app.body["properties"]["template"]["containers"][0]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert app.body["properties"]["template"]["scale"]["minReplicas"] == 2
    assert app.body["tags"]["mcp.deploy.dev/owner"] == f"{namespace}.calc-create"
    reasons = {e["reason"] for e in mcpd.events()}
    assert {"CreatedInfrastructure", "CreatingRevision", "Ready"} <= reasons
    row = cluster.kubectl("get", "-n", namespace, "mcpd", "calc-create").stdout.splitlines()[1].split()
    # STATE is the Ready condition's reason: meaningful for every target.
    assert row[1:8] == ["azure-container-apps", "Serving", status["url"], status["servingRevision"], "#1", "100%", "True"]


def test_image_change_serves_revision_2_only_once_it_is_ready(cluster: Cluster, cloud: SimulatorThread,
                                                               operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-roll")
    mcpd.apply(manifest("calc-roll"))
    first = mcpd.wait_ready()["servingRevision"]
    cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.update", 3.0)
    try:
        mcpd.apply(manifest("calc-roll", image="ghcr.io/acme/calc:2"))
        wait_until(lambda: len(cloud_revisions(cloud, "calc-roll")) == 2, 20, "revision 2 to be created")
        during = cloud_revisions(cloud, "calc-roll")
        second = next(name for name in during if name != first)
        assert during[second]["state"] == "Provisioning"
        assert (during[first]["traffic"], during[second]["traffic"]) == (100, 0), "traffic stays while revision 2 provisions"
        assert mcpd.status()["servingRevision"] == first
        assert mcpd.condition("Reconciling")["status"] == "True"
        status = mcpd.wait_ready(30)
    finally:
        cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.update", 0.3)
    after = cloud_revisions(cloud, "calc-roll")
    assert status["servingRevision"] == second
    assert (after[first]["traffic"], after[second]["traffic"]) == (0, 100)
    assert after[first]["active"] is True, "the previous revision stays active as a standby for instant rollback"
    assert [(r["number"], r["image"], r["state"]) for r in status["revisions"]] == [
        (1, "ghcr.io/acme/calc:1", "Ready"), (2, "ghcr.io/acme/calc:2", "Ready")]


def test_a_progressive_rollout_splits_ingress_traffic_step_by_step(cluster: Cluster, cloud: SimulatorThread,
                                                                    operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-steps")
    mcpd.apply(manifest("calc-steps"))
    first = mcpd.wait_ready()["servingRevision"]
    mcpd.apply(manifest("calc-steps", image="ghcr.io/acme/calc:2", rollout={"steps": [{"percent": 25, "pauseSeconds": 4}]}))

    def split() -> dict[int, str] | None:
        found = cloud_revisions(cloud, "calc-steps")
        shares = {value["traffic"]: name for name, value in found.items() if value["traffic"]}
        return shares if set(shares) == {75, 25} else None

    shares = wait_until(split, 60, "traffic split 75/25")
    assert shares[75] == first
    paused = wait_until(lambda: mcpd.condition("Reconciling").get("reason") == "RolloutPaused" and mcpd.condition(
        "Reconciling"), 10, "the step to be held")
    assert "25% of traffic (step 1 of 1)" in paused["message"] and mcpd.status()["servingRevision"] == first
    status = mcpd.wait_ready(30)
    assert status["servingRevision"] == shares[25] and [{k: v for k, v in t.items() if k != "url"} for t in status[
        "traffic"]] == [{"revisionName": shares[25], "revisionNumber": 2, "percent": 100}]
    assert "step 1 of 1" in " ".join(e["message"] for e in mcpd.events() if e["reason"] == "ShiftingTraffic")


def test_failing_revision_keeps_revision_1_serving_and_stalls_then_spec_revert_rolls_back(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-fail")
    mcpd.apply(manifest("calc-fail"))
    first = mcpd.wait_ready()["servingRevision"]
    cloud.call(cloud.simulator.fail_revisions, "calc:crash", "container exited with code 137 (OOMKilled)")
    mcpd.apply(manifest("calc-fail", image="ghcr.io/acme/calc:crash"))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 30,
                         "Stalled")
    assert stalled["reason"] == "RevisionFailed"
    assert "OOMKilled" in stalled["message"] and first in stalled["message"]
    status = mcpd.status()
    assert status["servingRevision"] == first
    assert mcpd.condition("Ready")["status"] == "False" and mcpd.condition("Reconciling")["status"] == "False"
    assert [r["state"] for r in status["revisions"]] == ["Ready", "Failed"]
    assert cloud_revisions(cloud, "calc-fail")[first]["traffic"] == 100
    assert any(e["reason"] == "RevisionFailed" and e["type"] == "Warning" for e in mcpd.events())

    revisions_before = set(cloud_revisions(cloud, "calc-fail"))
    mcpd.apply(manifest("calc-fail"))  # git revert: the spec of revision 1 again
    status = mcpd.wait_ready(30)
    assert status["servingRevision"] == first
    assert set(cloud_revisions(cloud, "calc-fail")) == revisions_before, "no new revision for a rollback"
    assert status["revisionCounter"] == 2
    assert status["azure"]["provisioningState"] == "Succeeded", "the failed state of the app is cleared"


def test_rollback_by_spec_edit_reactivates_a_kept_revision(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                           namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-back")
    mcpd.apply(manifest("calc-back"))
    first = mcpd.wait_ready()["servingRevision"]
    for version in (2, 3):
        mcpd.apply(manifest("calc-back", image=f"ghcr.io/acme/calc:{version}"))
        wait_until(lambda v=version: mcpd.is_ready() and mcpd.status()["revisions"][-1]["number"] == v, 30, f"revision {version}")
    wait_until(lambda: not cloud_revisions(cloud, "calc-back")[first]["active"], 20, "revision 1 to be deactivated")
    writes_before = cloud.call(cloud.simulator.counts)["writes"]
    mcpd.apply(manifest("calc-back"))
    status = mcpd.wait_ready(30)
    assert status["servingRevision"] == first
    assert len(cloud_revisions(cloud, "calc-back")) == 3 and status["revisionCounter"] == 3
    assert cloud_revisions(cloud, "calc-back")[first] == {"active": True, "traffic": 100, "state": "Provisioned",
                                                          "image": "ghcr.io/acme/calc:1"}
    rollback_writes = [r.operation for r in cloud.simulator.requests[-60:] if r.klass == "writes"]
    assert "ContainerAppsRevisions_ActivateRevision" in rollback_writes
    assert cloud.call(cloud.simulator.counts)["writes"] - writes_before <= 3  # activate, traffic, deactivate the stale one


def test_delete_policy_delete_removes_app_environment_and_group(cluster: Cluster, cloud: SimulatorThread,
                                                                operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-del")
    mcpd.apply(manifest("calc-del"))
    mcpd.wait_ready()
    mcpd.delete()
    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]
    assert cloud.call(lambda: "calc-del-rg" in world.subscription(sub).groups) is False
    assert cloud.call(lambda: [k for k in world.apps if k[2] == "calc-del"]) == []
    assert cluster.kubectl("get", "-n", namespace, "mcpd", "calc-del", check=False).returncode != 0


def test_delete_policy_retain_leaves_azure_alone(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                 namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-keep")
    mcpd.apply(manifest("calc-keep", deletionPolicy="Retain"))
    mcpd.wait_ready()
    mcpd.delete()
    assert cloud_revisions(cloud, "calc-keep"), "the app is still there"


def test_delete_when_the_cloud_side_is_already_gone_is_prompt(cluster: Cluster, cloud: SimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-gone")
    mcpd.apply(manifest("calc-gone"))
    mcpd.wait_ready()
    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]
    cloud.call(lambda: world.subscription(sub).groups.pop("calc-gone-rg"))
    cloud.call(lambda: [world.apps.pop(k) for k in list(world.apps) if k[1] == "calc-gone-rg"])
    started = time.monotonic()
    mcpd.delete()
    assert time.monotonic() - started < 15


def test_shared_environment_is_kept_while_another_app_uses_it(cluster: Cluster, cloud: SimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    shared = {"resourceGroup": "team-rg", "environment": "team-env"}
    first, second = Mcpd(cluster, namespace, "svc-a"), Mcpd(cluster, namespace, "svc-b")
    first.apply(manifest("svc-a", azure=shared))
    first.wait_ready()
    second.apply(manifest("svc-b", azure=shared))
    second.wait_ready()
    first.delete()
    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]
    assert cloud.call(lambda: (sub.lower(), "team-rg", "team-env") in world.environments)
    assert any("other container apps still use it" in e["message"] for e in first.events())
    second.delete()
    assert cloud.call(lambda: "team-rg" not in world.subscription(sub).groups)


def test_drift_is_corrected_with_an_event(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                          namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-drift")
    mcpd.apply(manifest("calc-drift", server={"allowedOrigins": ["https://claude.ai"]}))
    mcpd.wait_ready()
    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]

    def tamper() -> None:
        app = world.app(sub, "calc-drift-rg", "calc-drift")
        app.body["properties"]["configuration"]["ingress"]["corsPolicy"]["allowedOrigins"] = ["*"]

    cloud.call(tamper)
    wait_until(lambda: any(e["reason"] == "DriftCorrected" for e in mcpd.events()), 20, "a DriftCorrected event")
    origins = cloud.call(lambda: world.app(sub, "calc-drift-rg", "calc-drift").body["properties"]["configuration"]["ingress"]
                         ["corsPolicy"]["allowedOrigins"])
    assert origins == ["https://claude.ai"]
    assert mcpd.condition("InsecureIngress")["status"] == "False"


def test_a_template_changed_behind_the_operators_back_is_restored(cluster: Cluster, cloud: SimulatorThread,
                                                                   operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-tamper")
    mcpd.apply(manifest("calc-tamper", server={"env": [{"name": "MODE", "value": "safe"}]}))
    serving = mcpd.wait_ready()["servingRevision"]
    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]
    # What `az containerapp update --image` does: a new template, hence a new revision, under a suffix of its own.
    cloud.call(lambda: world.patch_app(sub, "calc-tamper-rg", "calc-tamper", {"properties": {"template": {
        "revisionSuffix": "hotfix", "containers": [{"name": "mcp-server", "image": "ghcr.io/evil/miner:1",
                                                    "env": [{"name": "MODE", "value": "unsafe"}]}]}}}))

    def restored() -> bool:
        app = world.app(sub, "calc-tamper-rg", "calc-tamper")
        template = app.body["properties"]["template"]
        hotfix = app.revisions.get("calc-tamper--hotfix")
        return (template["containers"][0]["image"] == "ghcr.io/acme/calc:1" and
                {"name": "MODE", "value": "safe"} in template["containers"][0]["env"] and
                hotfix is not None and not hotfix.active)

    wait_until(lambda: cloud.call(restored), 30, "the template restored and the foreign revision deactivated")
    found = [e["message"] for e in mcpd.events() if e["reason"] == "DriftCorrected"]
    assert any("ghcr.io/evil/miner:1" in message and "template" in message for message in found), found
    assert mcpd.status()["servingRevision"] == serving
    assert sorted(cloud_revisions(cloud, "calc-tamper")) == sorted([serving, "calc-tamper--hotfix"]), "no new revision"


def test_in_sync_resource_costs_no_writes(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                          namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-idle")
    mcpd.apply(manifest("calc-idle"))
    mcpd.wait_ready()
    time.sleep(1)
    since = time.monotonic()
    time.sleep(7)  # more than two drift checks at MCP_DRIFT_INTERVAL=3
    app_writes = [r for r in cloud.simulator.requests if r.at >= since and r.klass != "reads" and "calc-idle" in r.path]
    app_reads = [r for r in cloud.simulator.requests if r.at >= since and r.klass == "reads" and "calc-idle" in r.path]
    assert app_writes == []
    assert app_reads, "the drift check reads the app"


def test_secret_values_never_appear_in_status_events_or_logs(cluster: Cluster, cloud: SimulatorThread,
                                                             operator: OperatorProcess, namespace: str) -> None:
    secret_value = "sk-live-7f3a9c1e5b"
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-keys", f"--from-literal=api-key={secret_value}")
    mcpd = Mcpd(cluster, namespace, "calc-secret")
    mcpd.apply(manifest("calc-secret", server={"env": [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "calc-keys", "key": "api-key"}}}]}))
    mcpd.wait_ready()
    sub = cloud.info["subscriptionId"]
    app = cloud.call(lambda: cloud.simulator.world.app(sub, "calc-secret-rg", "calc-secret"))
    assert app.secrets == {"calc-keys-api-key": secret_value}, "the value reaches the app as a Container Apps secret"
    env = app.body["properties"]["template"]["containers"][0]["env"]
    assert {"name": "API_KEY", "secretRef": "calc-keys-api-key"} in env
    everything = json.dumps(mcpd.get()) + json.dumps(mcpd.events()) + operator.logs()
    assert secret_value not in everything
    assert base64.b64encode(secret_value.encode()).decode() not in everything


def test_a_rotated_secret_value_rolls_out_a_new_revision(cluster: Cluster, cloud: SimulatorThread,
                                                         operator: OperatorProcess, namespace: str) -> None:
    def put_secret(value: str) -> None:
        manifest_yaml = cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-rotate-keys",
                                        f"--from-literal=api-key={value}", "--dry-run=client", "-o", "json").stdout
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest_yaml)

    put_secret("generation-1")
    mcpd = Mcpd(cluster, namespace, "calc-rotate")
    mcpd.apply(manifest("calc-rotate", server={"env": [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "calc-rotate-keys", "key": "api-key"}}}]}))
    first = mcpd.wait_ready()
    first_digest = first["revisions"][-1]["snapshot"]["secretsDigest"]
    assert len(first_digest) == 12

    put_secret("generation-2")  # nothing in the McpDeployment changes: the watch of the Secret notices
    started = time.monotonic()
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 2, 30, "revision 2 with the new value")
    assert time.monotonic() - started < 15, "woken by the Secret's change, not by the next drift check"
    status = mcpd.status()
    assert status["servingRevision"] != first["servingRevision"]
    second_digest = status["revisions"][-1]["snapshot"]["secretsDigest"]
    assert second_digest != first_digest
    assert [r["snapshot"]["image"] for r in status["revisions"]] == ["ghcr.io/acme/calc:1"] * 2, "same image"
    sub = cloud.info["subscriptionId"]
    app = cloud.call(lambda: cloud.simulator.world.app(sub, "calc-rotate-rg", "calc-rotate"))
    assert app.secrets == {"calc-rotate-keys-api-key": "generation-2"}
    everything = json.dumps(mcpd.get()) + json.dumps(mcpd.events()) + operator.logs()
    assert "generation-1" not in everything and "generation-2" not in everything

    writes = cloud.call(cloud.simulator.counts)["writes"]
    put_secret("generation-2")  # re-applied unchanged: nothing to roll out
    time.sleep(4)
    assert mcpd.status()["revisionCounter"] == 2 and cloud.call(cloud.simulator.counts)["writes"] == writes


def test_missing_secret_stalls_with_a_message_naming_it(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                        namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-nosecret")
    mcpd.apply(manifest("calc-nosecret", server={"env": [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 20, "Stalled")
    assert stalled["reason"] == "SecretNotFound" and f"{namespace}/absent" in stalled["message"]
    warned = mcpd.wait_events("SecretNotFound")  # every kind of stall is a Warning Event, once
    assert warned[0]["type"] == "Warning" and len(warned) == 1 and f"{namespace}/absent" in warned[0]["message"]
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "absent", "--from-literal=k=v")
    mcpd.wait_ready(60)


def test_unsupported_target_is_stalled_with_a_clear_message(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    from mcp_operator.api.models import TargetType
    from mcp_operator.targets import registry

    unsupported = [t.value for t in TargetType if t.value not in registry.supported()]
    if not unsupported:
        pytest.skip("every target type is reconciled")
    mcpd = Mcpd(cluster, namespace, "run-one")
    body = manifest("run-one")
    body["spec"]["target"]["type"] = unsupported[0]
    mcpd.apply(body)
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 20, "Stalled")
    assert stalled["reason"] == "TargetNotSupported" and unsupported[0] in stalled["message"]
    assert mcpd.wait_events("TargetNotSupported")[0]["type"] == "Warning"


def test_suspended_resource_makes_no_writes(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                            namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-pause")
    mcpd.apply(manifest("calc-pause", suspend=True))
    ready = wait_until(lambda: mcpd.condition("Ready").get("reason") == "Suspended" and mcpd.condition("Ready"), 20, "Suspended")
    assert "createrevision" in ready["message"].replace(" ", "").lower() or "create" in ready["message"]
    assert [r for r in cloud.simulator.requests if "calc-pause" in r.path and r.klass != "reads"] == []
    mcpd.apply(manifest("calc-pause", suspend=False))
    mcpd.wait_ready()


def test_dropped_connections_and_429_bursts_during_create_still_converge(cluster: Cluster, cloud: SimulatorThread,
                                                                         operator: OperatorProcess, namespace: str) -> None:
    simulator = cloud.simulator
    cloud.call(simulator.add_fault, action="drop", path_contains="calc-flaky", operation="ContainerApps_CreateOrUpdate",
               when="after", count=1)
    cloud.call(simulator.add_fault, action="drop", path_contains="calc-flaky", operation="ContainerApps_Get", count=2)
    cloud.call(simulator.add_fault, action="status", status=429, retry_after=1, path_contains="calc-flaky", count=6,
               code="SubscriptionRequestsThrottled")
    cloud.call(simulator.add_fault, action="status", status=503, path_contains="calc-flaky", operation="ContainerAppsRevisions_*",
               count=2, code="ServiceUnavailable")
    mcpd = Mcpd(cluster, namespace, "calc-flaky")
    mcpd.apply(manifest("calc-flaky"))
    status = mcpd.wait_ready(60)
    assert len(cloud_revisions(cloud, "calc-flaky")) == 1, "no duplicate revision"
    assert [r["number"] for r in status["revisions"]] == [1]
    statuses = {r.status for r in simulator.requests if "calc-flaky" in r.path}
    assert {-1, 429} <= statuses, "the faults were really injected"
    assert operator.alive()


def test_log_format_json_writes_one_json_object_a_line(cluster: Cluster, cloud: SimulatorThread, namespace: str,
                                                        tmp_path: object) -> None:
    """--log-format json (kopf's JSON formatter): every line a JSON object a log collector can parse, those about a
    resource naming it."""
    from pathlib import Path

    from localcluster.operator import operator_environment

    log = Path(str(tmp_path)) / "operator.log"
    process = OperatorProcess(operator_environment(cluster, cloud.operator_environment()), log,
                              ("--namespace", namespace, "--log-format", "json")).start()
    try:
        process.wait_started()
        mcpd = Mcpd(cluster, namespace, "calc-json")
        mcpd.apply(manifest("calc-json"))
        mcpd.wait_ready(60)
    finally:
        process.stop()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all("message" in r for r in records) and len(records) > 3
    assert any((r.get("object") or {}).get("name") == "calc-json" for r in records), "records about it name it"
    steps = [r["message"] for r in records if r["message"].startswith(f"{namespace}/calc-json: ")]
    assert any("CreatingRevision" in m for m in steps) and any(": Ready: " in m for m in steps), "each step is logged"


def test_the_reconcile_requested_at_annotation_asks_for_a_pass_now(cluster: Cluster, cloud: SimulatorThread,
                                                                   namespace: str, tmp_path: object) -> None:
    """Drift is looked for every 300 s here; setting the annotation (as Flux's requestedAt) makes a pass at once."""
    from pathlib import Path

    from localcluster.operator import operator_environment

    log = Path(str(tmp_path)) / "operator.log"
    process = OperatorProcess(operator_environment(cluster, cloud.operator_environment(), MCP_DRIFT_INTERVAL="300"), log,
                              ("--namespace", namespace)).start()
    try:
        process.wait_started()
        mcpd = Mcpd(cluster, namespace, "calc-poke")
        mcpd.apply(manifest("calc-poke"))
        mcpd.wait_ready(60)
        world, sub = cloud.simulator.world, cloud.info["subscriptionId"]

        def tamper() -> None:
            app = world.app(sub, "calc-poke-rg", "calc-poke")
            app.body["properties"]["configuration"]["ingress"]["corsPolicy"]["allowedOrigins"] = ["https://evil.example"]
        cloud.call(tamper)
        time.sleep(2)
        assert not [e for e in mcpd.events() if e["reason"] == "DriftCorrected"], "no pass before the next drift check"
        cluster.kubectl("annotate", "mcpd", "calc-poke", "-n", namespace,
                        "mcp.deploy.dev/reconcile-requested-at=2026-12-06T10:00:00Z")
        wait_until(lambda: mcpd.status().get("lastHandledReconcileAt") == "2026-12-06T10:00:00Z", 20, "the pass")
        assert mcpd.wait_events("DriftCorrected", timeout=20)
    finally:
        process.stop()


def test_while_the_environment_is_created_the_status_says_so(cluster: Cluster, cloud: SimulatorThread,
                                                             operator: OperatorProcess, namespace: str) -> None:
    cloud.call(cloud.simulator.world.latency.__setitem__, "environment.create", 3.0)
    try:
        mcpd = Mcpd(cluster, namespace, "calc-env")
        mcpd.apply(manifest("calc-env"))
        waiting = wait_until(lambda: mcpd.condition("Reconciling").get("reason") == "PreparingInfrastructure" and
                             mcpd.condition("Reconciling"), 20, "PreparingInfrastructure")
        assert "revision 1 needs around it" in waiting["message"]
        mcpd.wait_ready(60)
    finally:
        cloud.call(cloud.simulator.world.latency.__setitem__, "environment.create", 0.3)
