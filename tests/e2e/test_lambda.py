"""aws-lambda end to end: the operator as a process, the real control plane, the AWS simulator as its cloud.

The operator's identity is a web identity (a token file and a role, as IRSA gives it): botocore's own
credential chain exchanges it at the simulator's STS for keys, and every request is SigV4-checked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdasim.testing import LambdaSimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import KillableOperator, Mcpd, answered, manifest, shown_to_people, wait_until, writes_while_in_sync

pytestmark = pytest.mark.e2e
SECRET_VALUE = "s3cr3t-lambda-value-7f1c"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LambdaSimulatorThread]:
    running = LambdaSimulatorThread().start()
    yield running
    running.stop()


def lambda_manifest(name: str, image: str = "ghcr.io/acme/calc:1.0.0", **spec: Any) -> dict[str, Any]:
    server = {"allowedOrigins": ["https://app.example"], **spec.pop("server", {})}
    aws = {"region": "us-east-1", **spec.pop("aws", {})}
    return manifest(name, image, target={"type": "aws-lambda"}, server=server, aws=aws, **spec)


def function_state(cloud: LambdaSimulatorThread, name: str) -> dict[str, Any]:
    """The simulator's view: versions (number -> image), aliases (name -> version, weights), URL qualifiers, role."""
    world = cloud.simulator.world

    def read() -> dict[str, Any]:
        world.settle()
        found = world.functions.get(("us-east-1", name))
        if found is None:
            return {}
        return {"versions": {n: v.code.get("ImageUri") for n, v in found.versions.items()},
                "aliases": {a.name: (a.version, dict(a.weights)) for a in found.aliases.values()},
                "urls": sorted(found.urls), "env": dict((found.config.get("Environment") or {}).get("Variables") or {}),
                "cors": found.urls["live"].cors if "live" in found.urls else None}

    return cloud.call(read)


def test_create_update_fail_rollback_drift_and_delete(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                      operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-fn")
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-keys", f"--from-literal=token={SECRET_VALUE}")
    env = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "calc-keys", "key": "token"}}},
           {"name": "LOG_LEVEL", "value": "info"}]
    mcpd.apply(lambda_manifest("calc-fn", server={"env": env}))
    status = mcpd.wait_ready(60)
    assert any(r.operation == "sts:AssumeRoleWithWebIdentity" and r.status == 200 for r in cloud.simulator.requests), \
        "the operator's identity came from botocore's web-identity chain"
    assert status["url"].startswith("https://") and ".lambda-url.us-east-1.on.aws" in status["url"]
    assert status["aws"]["functionArn"].endswith(":function:calc-fn") and status["aws"]["alias"] == "live"
    assert status["servingRevision"] == "1" and status["revisions"][0]["mcp"]["result"] == "Passed"
    state = function_state(cloud, "calc-fn")
    assert state["aliases"] == {"live": ("1", {})} and state["urls"] == ["live"], "the first version is checked on live"
    assert state["env"]["API_TOKEN"] == SECRET_VALUE and state["cors"]["AllowOrigins"] == ["https://app.example"]

    # Update: version 2 is published, checked on the candidate URL, and only then takes the alias.
    mcpd.apply(lambda_manifest("calc-fn", "ghcr.io/acme/calc:2.0.0", server={"env": env}))
    wait_until(lambda: mcpd.status().get("servingRevision") == "2" and mcpd.is_ready(), 60, "version 2 to serve")
    state = function_state(cloud, "calc-fn")
    assert state["aliases"] == {"live": ("2", {}), "candidate": ("2", {})} and state["urls"] == ["candidate", "live"]
    candidate = cloud.call(lambda: cloud.simulator.world.functions[("us-east-1", "calc-fn")].urls["candidate"].url_id)
    assert mcpd.status()["revisions"][1]["mcp"]["url"].startswith(f"https://{candidate}."), "checked before traffic moved"

    # A version that fails leaves the alias where it was, and says why in Lambda's words.
    cloud.fail_revisions_of("calc:broken", "Runtime exited with error: exit status 3")
    mcpd.apply(lambda_manifest("calc-fn", "ghcr.io/acme/calc:broken", server={"env": env}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "RevisionFailed" and "exit status 3" in stalled["message"] and "keeps serving" in stalled["message"]
    assert function_state(cloud, "calc-fn")["aliases"]["live"] == ("2", {})

    # Editing the spec back to revision 1 points the alias back: no new version, one alias write.
    before = time.monotonic()
    published = len(function_state(cloud, "calc-fn")["versions"])
    mcpd.apply(lambda_manifest("calc-fn", server={"env": env}))
    wait_until(lambda: mcpd.status().get("servingRevision") == "1" and mcpd.is_ready(), 60, "the rollback")
    assert len(function_state(cloud, "calc-fn")["versions"]) == published, "a rollback publishes nothing"
    assert answered(cloud, "lambda:PublishVersion", before) == 0 and answered(cloud, "lambda:UpdateAlias", before) == 1

    # Drift: the alias moved and CORS opened behind the operator's back are put back, with Events.
    world = cloud.simulator.world

    def tamper() -> None:
        function = world.functions[("us-east-1", "calc-fn")]
        function.aliases["live"].version = "2"
        function.urls["live"].cors = {"AllowOrigins": ["*"]}
    cloud.call(tamper)
    wait_until(lambda: function_state(cloud, "calc-fn")["aliases"]["live"] == ("1", {}), 30, "the alias restored")
    wait_until(lambda: function_state(cloud, "calc-fn")["cors"]["AllowOrigins"] == ["https://app.example"], 30, "CORS restored")
    assert mcpd.wait_events("DriftCorrected")

    # Zero writes while in sync.
    assert writes_while_in_sync(mcpd, cloud) == []

    # No secret value anywhere a person or a log collector reads.
    assert SECRET_VALUE not in shown_to_people(mcpd, operator)

    # Delete: URLs, function (all versions) and the role the operator created.
    mcpd.delete()
    assert function_state(cloud, "calc-fn") == {}
    assert "calc-fn-mcp-exec" not in cloud.call(lambda: set(world.roles))


def test_kubectl_mcp_logs_reads_cloudwatch_by_version(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                      operator: OperatorProcess, namespace: str) -> None:
    from tests.e2e.test_cli import mcp

    mcpd = Mcpd(cluster, namespace, "calc-logs")
    mcpd.apply(lambda_manifest("calc-logs"))
    mcpd.wait_ready(60)  # the MCP check invoked version 1 through its URL: Lambda logged those invocations
    mcpd.apply(lambda_manifest("calc-logs", "ghcr.io/acme/calc:2.0.0"))
    wait_until(lambda: mcpd.status().get("servingRevision") == "2" and mcpd.is_ready(), 60, "version 2 to serve")
    every = mcp(cluster, cloud, "logs", "calc-logs", "-n", namespace, "--tail", "100")  # type: ignore[arg-type]
    assert every.returncode == 0, every.stderr
    assert "Version: 1" in every.stdout and "Version: 2" in every.stdout
    second = mcp(cluster, cloud, "logs", "calc-logs", "-n", namespace, "--revision", "2")  # type: ignore[arg-type]
    assert second.returncode == 0 and "Version: 2" in second.stdout and "Version: 1" not in second.stdout


def test_reserved_and_provisioned_concurrency_follow_the_spec(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    world = cloud.simulator.world

    def concurrency() -> tuple[int | None, dict[str, tuple[int, str]]]:
        def read() -> tuple[int | None, dict[str, tuple[int, str]]]:
            world.settle()
            found = world.functions[("us-east-1", "calc-warm")]
            return found.reserved, {q: (p.requested, p.status) for q, p in found.provisioned.items()}
        return cloud.call(read)

    mcpd = Mcpd(cluster, namespace, "calc-warm")
    mcpd.apply(lambda_manifest("calc-warm", aws={"reservedConcurrency": 10, "provisionedConcurrency": 2}))
    mcpd.wait_ready(60)  # Ready means serving: the warm environments are allocated meanwhile, and status says when
    wait_until(lambda: concurrency() == (10, {"live": (2, "READY")}), 30, "the provisioned concurrency to be allocated")
    wait_until(lambda: mcpd.status()["aws"].get("provisionedConcurrencyStatus") == "READY", 30, "the status to say READY")
    assert mcpd.status()["aws"]["reservedConcurrency"] == 10

    mcpd.apply(lambda_manifest("calc-warm", aws={"reservedConcurrency": 5}))  # fewer reserved, no warm server
    wait_until(lambda: concurrency() == (5, {}), 30, "the concurrency settings to follow the spec")
    assert [r["number"] for r in mcpd.wait_ready(30)["revisions"]] == [1], "concurrency makes no version"
    wait_until(lambda: "provisionedConcurrency" not in mcpd.status()["aws"], 30, "status to forget it")


def test_a_progressive_rollout_weights_the_alias_step_by_step(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-steps")
    mcpd.apply(lambda_manifest("calc-steps"))
    mcpd.wait_ready(60)
    steps = {"steps": [{"percent": 20, "pauseSeconds": 4}, {"percent": 60, "pauseSeconds": 2}]}
    mcpd.apply(lambda_manifest("calc-steps", "ghcr.io/acme/calc:2.0.0", rollout=steps))
    wait_until(lambda: function_state(cloud, "calc-steps")["aliases"]["live"] == ("1", {"2": 0.2}), 60, "the first step")
    paused = wait_until(lambda: mcpd.condition("Reconciling").get("reason") == "RolloutPaused" and mcpd.condition(
        "Reconciling"), 20, "the pause")
    assert "20% of traffic (step 1 of 2)" in paused["message"]
    assert sorted((t["revisionName"], t["percent"]) for t in mcpd.status()["traffic"]) == [("1", 80), ("2", 20)]
    listed = cluster.kubectl("get", "mcpd", "calc-steps", "-n", namespace).stdout
    assert "RolloutPaused" in listed and "#1 80%, #2 20%" in listed, listed
    wait_until(lambda: function_state(cloud, "calc-steps")["aliases"]["live"] == ("2", {"1": 0.4}), 30, "the second step")
    wait_until(lambda: mcpd.status().get("servingRevision") == "2" and mcpd.is_ready(), 30, "all traffic on version 2")
    assert function_state(cloud, "calc-steps")["aliases"]["live"] == ("2", {})
    shifted = [e["message"] for e in mcpd.events() if e["reason"] == "ShiftingTraffic"]
    assert any("step 1 of 2" in m for m in shifted) and any("step 2 of 2" in m for m in shifted)


def test_retain_leaves_the_function_and_an_absent_function_releases_at_once(
        cluster: Cluster, cloud: LambdaSimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-keep")
    mcpd.apply(lambda_manifest("calc-keep", deletionPolicy="Retain"))
    mcpd.wait_ready(60)
    mcpd.delete()
    assert function_state(cloud, "calc-keep")["aliases"]["live"][0] == "1", "Retain leaves AWS alone"

    gone = Mcpd(cluster, namespace, "calc-gone")
    gone.apply(lambda_manifest("calc-gone"))
    gone.wait_ready(60)
    cloud.call(lambda: cloud.simulator.world.functions.pop(("us-east-1", "calc-gone")))
    gone.delete()  # finishes within kubectl's timeout: nothing left to delete


def test_a_server_that_refuses_the_host_never_takes_the_alias(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-guard")
    mcpd.apply(lambda_manifest("calc-guard"))
    mcpd.wait_ready(60)
    mcpd.apply(lambda_manifest("calc-guard", "ghcr.io/acme/mcp-host-guard:2.0.0"))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "McpHostRejected" and "keeps serving" in stalled["message"]
    state = function_state(cloud, "calc-guard")
    assert state["aliases"]["live"] == ("1", {}) and state["aliases"]["candidate"] == ("2", {})


def test_bad_credentials_stall_with_a_clear_message(cluster: Cluster, cloud: LambdaSimulatorThread,
                                                    operator: OperatorProcess, namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "aws-keys",
                    f"--from-literal=AWS_ACCESS_KEY_ID={cloud.info['accessKeyId']}",
                    "--from-literal=AWS_SECRET_ACCESS_KEY=not-the-secret")
    mcpd = Mcpd(cluster, namespace, "calc-badkey")
    mcpd.apply(lambda_manifest("calc-badkey", credentials={"secretRef": {"name": "aws-keys"}}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "CredentialsInvalid" and "signature" in stalled["message"].lower()
    assert "not-the-secret" not in json.dumps(mcpd.get()) + operator.logs()

    fixed = cluster.kubectl("create", "secret", "generic", "-n", namespace, "aws-keys", "--dry-run=client", "-o", "json",
                            f"--from-literal=AWS_ACCESS_KEY_ID={cloud.info['accessKeyId']}",
                            f"--from-literal=AWS_SECRET_ACCESS_KEY={cloud.info['secretAccessKey']}").stdout
    cluster.kubectl("apply", "-f", "-", input=fixed)
    mcpd.wait_ready(60)  # the Secret's rotation wakes the resource; the new keys are used


@pytest.mark.parametrize("moment", ["update", "publish-answer-lost"])
def test_sigkill_or_a_lost_answer_mid_update_makes_no_duplicate_version(
        cluster: Cluster, cloud: LambdaSimulatorThread, namespace: str, tmp_path: Path, moment: str) -> None:
    name = f"calc-kill-{moment[:7]}"
    operator = KillableOperator(cluster, cloud, namespace, tmp_path)
    mcpd = Mcpd(cluster, namespace, name)
    world = cloud.simulator.world
    try:
        mcpd.apply(lambda_manifest(name))
        mcpd.wait_ready(60)
        started = time.monotonic()
        if moment == "update":
            cloud.call(world.schedule.latency.__setitem__, "function.update", 3.0)
            mcpd.apply(lambda_manifest(name, "ghcr.io/acme/calc:2.0.0"))
            wait_until(lambda: answered(cloud, "lambda:UpdateFunctionConfiguration", started) >= 1, 30, "the configuration update")
            operator.kill_and_restart()
        else:  # Lambda publishes, the answer never arrives; the SDK's retry (and our later passes) must not publish again
            cloud.call(cloud.simulator.add_fault, action="drop", when="after", operation="lambda:PublishVersion")
            mcpd.apply(lambda_manifest(name, "ghcr.io/acme/calc:2.0.0"))
        wait_until(lambda: mcpd.status().get("servingRevision") == "2" and mcpd.is_ready(), 90, "version 2 to serve")
    finally:
        cloud.call(world.schedule.latency.__setitem__, "function.update", 0.3)
        cloud.call(cloud.simulator.clear_faults)
        operator.stop()
    assert sorted(function_state(cloud, name)["versions"]) == [1, 2], "no duplicate version"
    assert [r["number"] for r in mcpd.status()["revisions"]] == [1, 2]
