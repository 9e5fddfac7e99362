"""pmcp-run end to end: the operator as a process, the real control plane, the pmcp.run simulator, and a real OCI
registry the builds (template + bootstrap) are pushed to and pulled from.

pmcp.run keeps no revisions: each one is a new deployment that replaces the serving one when it succeeds.
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
from pmcprunsim.testing import PmcpRunSimulatorThread
from tests.e2e.conftest import KillableOperator, Mcpd, answered, manifest, shown_to_people, wait_until, writes_while_in_sync

pytestmark = pytest.mark.e2e
SECRET_VALUE = "s3cr3t-pmcp-value-7c2d"


@pytest.fixture(scope="module")
def cloud() -> Iterator[PmcpRunSimulatorThread]:
    running = PmcpRunSimulatorThread().start()
    yield running
    running.stop()


def pmcp_manifest(cloud: PmcpRunSimulatorThread, name: str, image: str = "ghcr.io/acme/calc:1.0.0", **spec: Any) -> dict[
        str, Any]:
    server = {"allowedOrigins": ["https://app.example"], "artifact": {"oci": cloud.artifact(image)}, **spec.pop("server", {})}
    body = manifest(name, target={"type": "pmcp-run"}, server=server, **spec)
    body["spec"]["server"].pop("image", None)
    return body


def slow_deployments(cloud: PmcpRunSimulatorThread, seconds: float) -> None:
    cloud.call(cloud.simulator.world.schedule.latency.update, {"deployment.deploy": seconds})


def test_create_update_failure_rollback_by_redeploy_and_delete(cluster: Cluster, cloud: PmcpRunSimulatorThread,
                                                               operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-pmcp")
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-keys", f"--from-literal=token={SECRET_VALUE}")
    env = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "calc-keys", "key": "token"}}},
           {"name": "LOG_LEVEL", "value": "debug"}]
    mcpd.apply(pmcp_manifest(cloud, "calc-pmcp", server={"env": env}, pmcpRun={"serverVersion": "1.0.0"}))
    status = mcpd.wait_ready(60)
    first = cloud.deployments("calc-pmcp")
    assert len(first) == 1 and first[0]["status"] == "success"
    assert status["url"] == "https://calc-pmcp.mcp.pmcp-sim.dev/mcp", "the MCP URL the API returns, path included"
    facts = status["pmcpRun"]
    assert facts["deploymentId"] == first[0]["id"] and facts["healthUrl"] == "https://calc-pmcp.mcp.pmcp-sim.dev/health"
    assert facts["bundleDigest"] == cloud.artifact("ghcr.io/acme/calc:1.0.0").rpartition("@")[2]
    assert status["revisions"][0]["mcp"]["result"] == "Passed"
    assert status["revisions"][0]["mcp"]["url"] == status["url"], "checked at the MCP URL itself"
    settings = first[0]["settings"]
    assert (settings["runtime"], settings["memorySize"], settings["timeout"], settings["serverVersion"]) == (
        "provided.al2023", 512, 30, "1.0.0"), "cargo-pmcp's variables"
    variables = first[0]["template"]["Resources"]["McpServer"]["Properties"]["Environment"]["Variables"]
    assert variables["LOG_LEVEL"] == "debug" and "API_TOKEN" not in variables, "literal env in the template, not secrets"
    state = cloud.server_state("calc-pmcp")
    assert state is not None and state["secrets"] == {("mcp", "API_TOKEN"): SECRET_VALUE}, "a secret is a server secret"

    # Update: a new deployment; the old one serves until the new one succeeds.
    slow_deployments(cloud, 3.0)
    try:
        mcpd.apply(pmcp_manifest(cloud, "calc-pmcp", "ghcr.io/acme/calc:2.0.0", server={"env": env},
                                 pmcpRun={"serverVersion": "2.0.0"}))
        during = wait_until(lambda: (s := mcpd.status()) and len(s.get("revisions", [])) == 2
                            and s["revisions"][1]["state"] == "Provisioning" and s, 30, "revision 2 to deploy")
        assert during["servingRevision"] == first[0]["id"] and cloud.server_state("calc-pmcp")["serving"] == first[0]["id"]
    finally:
        slow_deployments(cloud, 0.2)
    status = wait_until(lambda: mcpd.is_ready() and len(mcpd.status()["revisions"]) == 2 and mcpd.status(), 60,
                        "revision 2 to serve")
    assert [r["state"] for r in status["revisions"]] == ["Inactive", "Ready"], "the replaced deployment is kept, inactive"

    # A failed deployment: Stalled with the API's message; revision 2 keeps serving.
    cloud.fail_revisions_of("calc:broken", "CREATE_FAILED: the function exited with code 3")
    mcpd.apply(pmcp_manifest(cloud, "calc-pmcp", "ghcr.io/acme/calc:broken", server={"env": env}))
    wait_until(lambda: mcpd.condition("Stalled").get("reason") == "RevisionFailed", 60, "the failure")
    stalled = mcpd.condition("Stalled")["message"]
    assert "exited with code 3" in stalled and "keeps serving" in stalled
    assert mcpd.condition("Ready")["reason"] == "PreviousRevisionServing"
    assert cloud.server_state("calc-pmcp")["serving"] == status["revisions"][1]["name"]

    # Edited back to revision 1's spec: pmcp.run has nothing to switch to, so revision 1's artifact is deployed again.
    mcpd.apply(pmcp_manifest(cloud, "calc-pmcp", server={"env": env}, pmcpRun={"serverVersion": "1.0.0"}))
    status = wait_until(lambda: mcpd.is_ready() and mcpd.status(), 60, "the redeploy to serve")
    last = status["revisions"][-1]
    assert last["number"] == 4 and last["hash"] == status["revisions"][0]["hash"], "a new revision of revision 1's spec"
    ready = mcpd.condition("Ready")["message"]
    assert "new deployment of revision 1's artifact" in ready and " s:" in ready, ready
    assert mcpd.wait_events("Redeploying"), "said as an Event too"
    deployments = cloud.deployments("calc-pmcp")
    assert len(deployments) == 4 and deployments[-1]["image"] == "ghcr.io/acme/calc:1.0.0"

    # Zero writes while in sync; nothing secret in status, Events or the operator's log.
    assert writes_while_in_sync(mcpd, cloud) == []
    seen = shown_to_people(mcpd, operator)
    assert SECRET_VALUE not in seen and cloud.info["clientSecret"] not in seen

    mcpd.delete()
    assert cloud.server_state("calc-pmcp") is None, "the server is destroyed"
    assert any("destroyed pmcp.run server calc-pmcp" in e["message"] for e in mcpd.events() if e["reason"] == "Deleted")


def test_oauth_on_and_off_lifts_the_insecure_ingress_warning(cluster: Cluster, cloud: PmcpRunSimulatorThread,
                                                             operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-oauth")
    oauth = {"enabled": True, "scopes": ["openid", "mcp/read"], "publicClientPatterns": ["claude"]}
    mcpd.apply(pmcp_manifest(cloud, "calc-oauth", server={"allowedOrigins": ["*"]}, pmcpRun={"oauth": oauth}))
    status = wait_until(lambda: mcpd.is_ready() and mcpd.status().get("pmcpRun", {}).get("oauthEnabled") and mcpd.status(),
                        60, "OAuth to be on")
    assert status["pmcpRun"]["tokenEndpoint"].endswith("/oauth2/token") and status["pmcpRun"]["discoveryUrl"]
    assert mcpd.condition("InsecureIngress")["status"] == "False"
    assert mcpd.condition("InsecureIngress")["reason"] == "AuthenticationRequired"
    state = cloud.server_state("calc-oauth")
    assert state is not None and state["oauth"]["scopes"] == ["openid", "mcp/read"]
    assert state["oauth"]["publicClientPatterns"] == ["claude"]
    assert len(cloud.deployments("calc-oauth")) == 1, "OAuth makes no deployment"

    # Someone turns OAuth off at pmcp.run: the next pass sees the drift and turns it on again, without a deployment.
    cloud.call(cloud.simulator.world.disable_oauth, "calc-oauth")
    cluster.kubectl("annotate", "-n", namespace, "mcpd", "calc-oauth", "mcp.deploy.dev/reconcile-requested-at=drift",
                    "--overwrite")
    drift = mcpd.wait_events("DriftCorrected", 30)
    assert any("OAuth is off at pmcp.run" in e["message"] for e in drift)
    wait_until(lambda: (cloud.server_state("calc-oauth") or {}).get("oauth") is not None, 30, "OAuth to be on again")
    assert len(cloud.deployments("calc-oauth")) == 1

    mcpd.apply(pmcp_manifest(cloud, "calc-oauth", server={"allowedOrigins": ["*"]}, pmcpRun={"oauth": {"enabled": False}}))
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["pmcpRun"].get("oauthEnabled") is False, 60, "OAuth to be off")
    assert cloud.server_state("calc-oauth")["oauth"] is None
    assert mcpd.condition("InsecureIngress")["status"] == "True", "any origin and no authentication: warned again"
    mcpd.delete()


def test_sigkill_and_a_lost_answer_mid_deploy_make_no_second_deployment(cluster: Cluster, cloud: PmcpRunSimulatorThread,
                                                                         namespace: str, tmp_path: Path) -> None:
    operator = KillableOperator(cluster, cloud, namespace, tmp_path)
    mcpd = Mcpd(cluster, namespace, "calc-kill")
    started = time.monotonic()
    try:
        # pmcp.run makes the deployment, the answer never arrives, and the operator is killed meanwhile.
        cloud.call(cloud.simulator.add_fault, action="drop", when="after", operation="CreateDeploymentFromS3")
        mcpd.apply(pmcp_manifest(cloud, "calc-kill"))
        wait_until(lambda: any(r.operation == "CreateDeploymentFromS3" and r.at >= started for r in cloud.simulator.requests),
                   30, "the deployment to be made")
        operator.kill_and_restart()
        try:
            status = mcpd.wait_ready(60)
        except AssertionError:
            print(json.dumps(mcpd.status(), indent=1), operator.process.logs()[-3000:], cloud.deployments("calc-kill"))
            raise
    finally:
        cloud.call(cloud.simulator.clear_faults)
        operator.stop()
    deployments = cloud.deployments("calc-kill")
    assert len(deployments) == 1, "the restarted operator found the deployment its intent made"
    assert status["revisions"][0]["name"] == deployments[0]["id"]
    assert answered(cloud, "CreateDeploymentFromS3", started) == 0, "the only call's answer was lost"


def test_retain_leaves_the_server_and_a_failed_destroy_is_warned_and_retried(cluster: Cluster, cloud: PmcpRunSimulatorThread,
                                                                            operator: OperatorProcess, namespace: str) -> None:
    kept = Mcpd(cluster, namespace, "calc-kept")
    kept.apply(pmcp_manifest(cloud, "calc-kept", deletionPolicy="Retain"))
    kept.wait_ready(60)
    kept.delete()
    assert cloud.server_state("calc-kept") is not None, "Retain leaves the server serving"

    flaky = Mcpd(cluster, namespace, "calc-flaky")
    flaky.apply(pmcp_manifest(cloud, "calc-flaky"))
    flaky.wait_ready(60)
    cloud.fail_next_destroy("calc-flaky")
    flaky.delete(wait=False)
    warning = flaky.wait_events("DeleteFailed", 30)[0]
    assert warning["type"] == "Warning" and "DELETE_FAILED" in warning["message"] and "trying again" in warning["message"]
    wait_until(lambda: cloud.server_state("calc-flaky") is None, 60, "the second destroy to finish")
    wait_until(lambda: cluster.kubectl("get", "-n", namespace, "mcpd", "calc-flaky", check=False).returncode != 0, 60,
               "the finalizer to be released")

    # Someone destroyed the server already: deleting the McpDeployment releases it at once.
    gone = Mcpd(cluster, namespace, "calc-gone")
    gone.apply(pmcp_manifest(cloud, "calc-gone"))
    gone.wait_ready(60)
    cloud.call(cloud.simulator.world.servers.pop, "calc-gone")
    gone.delete()
    assert any("calc-gone is gone" in e["message"] for e in gone.events() if e["reason"] == "Deleted")


def test_refused_credentials_and_unknown_status_stall_clearly(cluster: Cluster, cloud: PmcpRunSimulatorThread,
                                                              operator: OperatorProcess, namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "pmcp-creds", "--from-literal=PMCP_CLIENT_ID=sim-pmcp-client",
                    "--from-literal=PMCP_CLIENT_SECRET=wrong-secret-value")
    refused = Mcpd(cluster, namespace, "calc-creds")
    refused.apply(pmcp_manifest(cloud, "calc-creds", credentials={"secretRef": {"name": "pmcp-creds"}}))
    wait_until(lambda: refused.condition("Stalled").get("reason") == "CredentialsInvalid", 30, "the refusal")
    message = refused.condition("Stalled")["message"]
    assert "invalid_client" in message and f"{namespace}/pmcp-creds" in message and "PMCP_CLIENT_SECRET" in message
    assert "wrong-secret-value" not in json.dumps(refused.get())
    assert cloud.deployments("calc-creds") == []

    # A status cargo-pmcp does not know, on a deployment in progress: Stalled, quoting it (not a crash, not a guess).
    odd = Mcpd(cluster, namespace, "calc-odd")
    slow_deployments(cloud, 5.0)
    try:
        odd.apply(pmcp_manifest(cloud, "calc-odd"))
        wait_until(lambda: [r["state"] for r in odd.status().get("revisions", [])] == ["Provisioning"], 30, "the deployment")

        def pause() -> None:
            cloud.simulator.world.servers["calc-odd"].deployments[-1].status = "paused"
        cloud.call(pause)
        wait_until(lambda: odd.condition("Stalled").get("reason") == "UnknownDeploymentStatus", 30, "the unknown status")
    finally:
        slow_deployments(cloud, 0.2)
    assert "'paused'" in odd.condition("Stalled")["message"]
