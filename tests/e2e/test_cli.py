"""kubectl mcp end to end: the plugin against the real control plane, the running operator and the simulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from tests.e2e.conftest import Mcpd, cloud_revisions, wait_until
from tests.e2e.conftest import manifest as mcpd_manifest

pytestmark = pytest.mark.e2e
PLUGIN = str(Path(sys.executable).with_name("kubectl-mcp"))


def mcp(cluster: Cluster, cloud: SimulatorThread, *args: str, input: str | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    env = operator_environment(cluster, cloud.operator_environment())
    return subprocess.run([PLUGIN, "--kubeconfig", str(cluster.kubeconfig), *args], input=input, capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def test_plugin_is_found_by_kubectl_and_has_help_with_examples(cluster: Cluster) -> None:
    env = {**os.environ, "PATH": f"{Path(PLUGIN).parent}{os.pathsep}{os.environ['PATH']}"}
    listed = subprocess.run([cluster.kubectl_path, "plugin", "list"], capture_output=True, text=True, env=env, check=False)
    assert "kubectl-mcp" in listed.stdout
    shown = subprocess.run([cluster.kubectl_path, "mcp", "--help"], capture_output=True, text=True, env=env, check=True)
    assert "examples:" in shown.stdout and "kubectl mcp rollback" in shown.stdout
    for command in ("init", "deploy", "outputs", "history", "rollback", "logs", "destroy"):
        assert command in shown.stdout


def test_the_whole_workflow(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str,
                            tmp_path: Path) -> None:
    project = tmp_path / "calc"
    (project / ".pmcp").mkdir(parents=True)
    (project / ".pmcp" / "deploy.toml").write_text(
        '[target]\ntype = "azure-container-apps"\nversion = "1"\n\n[server]\nname = "calc-cli"\n\n'
        '[environment]\nRUST_LOG = "info"\n\n[azure]\nlocation = "westeurope"\n')
    manifest = tmp_path / "calc.yaml"
    init = mcp(cluster, cloud, "init", "--from", str(project), "--image", "ghcr.io/acme/calc:1", "--output-file", str(manifest))
    assert init.returncode == 0, init.stderr

    cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.create", 2.5)  # long enough to be seen
    try:
        deployed = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", str(manifest), "--wait", "--timeout", "60s")
    finally:
        cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.create", 0.3)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "mcpdeployment/calc-cli serverside-applied" in deployed.stdout
    assert "Reconciling: CloudOperationInProgress" in deployed.stdout and "is Ready after" in deployed.stdout, deployed.stdout
    assert ": https://calc-cli." in deployed.stdout and "s calc-cli: " in deployed.stdout, "elapsed time on each line"

    outputs = json.loads(mcp(cluster, cloud, "outputs", "calc-cli", "-n", namespace, "-o", "json").stdout)
    assert outputs["url"].startswith("https://calc-cli.") and outputs["url"].endswith(".westeurope.azurecontainerapps.io/")
    assert (outputs["location"], outputs["resourceGroup"], outputs["environment"]) == ("westeurope", "calc-cli-rg", "calc-cli-env")
    assert outputs["subscriptionId"] == cloud.info["subscriptionId"] and outputs["servingRevision"].startswith("calc-cli--r1-")
    table = mcp(cluster, cloud, "outputs", "calc-cli", "-n", namespace).stdout
    assert f"URL:              {outputs['url']}" in table and "Resource group:   calc-cli-rg" in table
    assert yaml.safe_load(mcp(cluster, cloud, "outputs", "calc-cli", "-n", namespace, "-o", "yaml").stdout) == outputs

    updated = yaml.safe_load(manifest.read_text())
    updated["spec"]["server"]["image"] = "ghcr.io/acme/calc:2"
    second = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", "-", "--wait", input=yaml.safe_dump(updated))
    assert second.returncode == 0, second.stderr
    history = mcp(cluster, cloud, "history", "calc-cli", "-n", namespace).stdout.splitlines()
    assert history[0].split() == ["REVISION", "NAME", "IMAGE", "STATE", "TRAFFIC", "CREATED"]
    assert history[1].split()[0] == "1" and history[2].split()[0] == "2*", "the serving revision is marked"
    assert len(json.loads(mcp(cluster, cloud, "history", "calc-cli", "-n", namespace, "-o", "json").stdout)) == 2

    refused = mcp(cluster, cloud, "rollback", "calc-cli", "-n", namespace, "--to-revision", "7")
    assert refused.returncode == 1 and "revision 7 is not in the history" in refused.stderr and "known: 1, 2" in refused.stderr
    revisions_before = set(cloud_revisions(cloud, "calc-cli"))
    rolled = mcp(cluster, cloud, "rollback", "calc-cli", "-n", namespace, "--wait", "--timeout", "60s")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back to revision 1 (image ghcr.io/acme/calc:1)" in rolled.stdout
    status = Mcpd(cluster, namespace, "calc-cli").status()
    assert status["servingRevision"] == status["revisions"][0]["name"]
    assert set(cloud_revisions(cloud, "calc-cli")) == revisions_before, "the operator reused revision 1"

    logs = mcp(cluster, cloud, "logs", "calc-cli", "-n", namespace, "--tail", "50")
    assert logs.returncode == 0, logs.stderr
    assert "is running" in logs.stdout and "ghcr.io/acme/calc:1" in logs.stdout

    destroyed = mcp(cluster, cloud, "destroy", "calc-cli", "-n", namespace, "--wait", "--timeout", "60s")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "mcpdeployment/calc-cli deleted" in destroyed.stdout
    assert "Deleting: deleting container app calc-cli" in destroyed.stdout and "Serving" not in destroyed.stdout, destroyed.stdout
    assert cloud_revisions(cloud, "calc-cli") == {}
    missing = mcp(cluster, cloud, "outputs", "calc-cli", "-n", namespace)
    assert missing.returncode == 1 and 'mcpdeployment "calc-cli" not found' in missing.stderr


def test_deploy_wait_reports_a_stalled_rollout_with_exit_1(cluster: Cluster, cloud: SimulatorThread,
                                                           operator: OperatorProcess, namespace: str) -> None:
    cloud.call(cloud.simulator.fail_revisions, "calc:doomed", "image pull failed: manifest unknown")
    body = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": "calc-doomed"},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": "ghcr.io/acme/calc:doomed"}}}
    result = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", "-", "--wait", "--timeout", "60s", input=json.dumps(body))
    assert result.returncode == 1
    assert "is Stalled" in result.stderr and "manifest unknown" in result.stderr


def test_deploy_of_an_invalid_manifest_exits_2_with_the_api_servers_message(cluster: Cluster, cloud: SimulatorThread,
                                                                           namespace: str) -> None:
    body = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": "calc-bad"},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": "x"}, "azure": {"targetPort": 0}}}
    result = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", "-", input=json.dumps(body))
    assert result.returncode == 2 and "spec.azure.targetPort" in result.stderr


def test_deploy_wait_times_out_with_exit_1(cluster: Cluster, cloud: SimulatorThread, namespace: str) -> None:
    body = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": "calc-slow"},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": "x:1"}, "suspend": True}}
    result = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", "-", "--wait", "--timeout", "2s", input=json.dumps(body))
    assert result.returncode == 1 and "timed out after 2s" in result.stderr


def test_namespace_comes_from_the_kubeconfig_context(cluster: Cluster, cloud: SimulatorThread, namespace: str,
                                                     tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(cluster.kubeconfig, kubeconfig)
    subprocess.run([cluster.kubectl_path, "--kubeconfig", str(kubeconfig), "config", "set-context", "--current",
                    f"--namespace={namespace}"], check=True, capture_output=True)
    result = subprocess.run([PLUGIN, "--kubeconfig", str(kubeconfig), "outputs", "nothing-here"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 1 and f'not found in namespace "{namespace}"' in result.stderr


def test_logs_use_the_resources_own_credentials_and_fail_in_one_line(cluster: Cluster, cloud: SimulatorThread,
                                                                     operator: OperatorProcess, namespace: str) -> None:
    """The operator and `kubectl mcp logs` both sign in with spec.credentials when the resource names a Secret,
    whatever identity the CLI's own environment has; bad or missing credentials are one clear line."""
    info = cloud.info
    keys = {"AZURE_TENANT_ID": info["tenantId"], "AZURE_CLIENT_ID": info["clientId"], "AZURE_CLIENT_SECRET": info["clientSecret"]}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-identity", "namespace": namespace},
              "stringData": keys}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
    body = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": "calc-own-id"},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": "ghcr.io/acme/calc:own"},
                     "credentials": {"secretRef": {"name": "team-identity"}}}}
    deployed = mcp(cluster, cloud, "deploy", "-n", namespace, "-f", "-", "--wait", input=yaml.safe_dump(body))
    assert deployed.returncode == 0, deployed.stderr

    def logs_with_a_wrong_own_identity() -> subprocess.CompletedProcess[str]:
        env = {**operator_environment(cluster, cloud.operator_environment()), "AZURE_CLIENT_SECRET": "not-the-secret"}
        return subprocess.run([PLUGIN, "--kubeconfig", str(cluster.kubeconfig), "logs", "calc-own-id", "-n", namespace,
                               "--tail", "5"], capture_output=True, text=True, env=env, timeout=120, check=False)

    shown = logs_with_a_wrong_own_identity()
    assert shown.returncode == 0, shown.stderr
    assert "ghcr.io/acme/calc:own" in shown.stdout

    cluster.kubectl("apply", "-f", "-", input=json.dumps({**secret, "stringData": {**keys, "AZURE_CLIENT_SECRET": "revoked"}}))
    refused = logs_with_a_wrong_own_identity()
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and refused.stderr.startswith("error: logs:"), refused.stderr

    # Truly gone (the operator's in-use finalizer taken off by hand first, as only a person would).
    cluster.kubectl("patch", "secret", "-n", namespace, "team-identity", "--type=json",
                    "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    cluster.kubectl("delete", "secret", "-n", namespace, "team-identity")
    missing = logs_with_a_wrong_own_identity()
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"Secret {namespace}/team-identity not found" in missing.stderr and "spec.credentials.secretRef" in missing.stderr


def test_kubectl_completes_the_plugin_through_kubectl_complete_mcp(cluster: Cluster, cloud: SimulatorThread,
                                                                   operator: OperatorProcess, namespace: str) -> None:
    """kubectl's own plugin completion (1.26+): `kubectl mcp <TAB>` runs kubectl_complete-mcp from PATH."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(mcpd_manifest("calc-complete")))
    env = {**os.environ, "PATH": f"{Path(PLUGIN).parent}{os.pathsep}{os.environ['PATH']}"}
    run = [cluster.kubectl_path, "__complete", "mcp"]  # the plugin's own flags follow "mcp"
    commands = subprocess.run([*run, "ro"], capture_output=True, text=True, env=env, check=True).stdout
    assert commands.splitlines()[0] == "rollback", commands
    names = subprocess.run([*run, "history", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig), ""],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert "calc-complete" in names.splitlines(), names


def test_deploy_applies_each_mcpdeployment_in_its_namespace_follows_all_and_fails_if_one_does(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str, tmp_path: Path) -> None:
    other = f"{namespace}-b"  # watched too: the module's operator watches the prefix
    cluster.kubectl("create", "namespace", other)
    cloud.call(cloud.simulator.fail_revisions, "calc:cli-broken", "exec format error")
    good, bad = mcpd_manifest("calc-multi-a"), mcpd_manifest("calc-multi-b", image="ghcr.io/acme/calc:cli-broken")
    good["metadata"]["namespace"], bad["metadata"]["namespace"] = namespace, other
    (tmp_path / "two.yaml").write_text(yaml.safe_dump_all([good, bad]))
    deployed = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "two.yaml"), "--wait", "--timeout", "90s")
    assert deployed.returncode == 1, deployed.stdout + deployed.stderr
    assert "mcpdeployment/calc-multi-a is Ready" in deployed.stdout, "followed in its own namespace, not the context's"
    assert "mcpdeployment/calc-multi-b is Stalled" in deployed.stderr and "exec format error" in deployed.stderr

    missing = mcpd_manifest("calc-nowhere")
    missing["metadata"]["namespace"] = "no-such-namespace"
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(missing))
    refused = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "missing.yaml"))
    assert refused.returncode == 2 and 'namespace "no-such-namespace" does not exist' in refused.stderr
    assert "serverside-applied" not in refused.stdout


def test_deploy_does_not_take_fields_another_manager_owns_unless_forced(cluster: Cluster, cloud: SimulatorThread,
                                                                         operator: OperatorProcess, namespace: str,
                                                                         tmp_path: Path) -> None:
    body = mcpd_manifest("calc-owned")
    body["metadata"]["namespace"] = namespace
    cluster.kubectl("apply", "--server-side", "--field-manager=argocd-controller", "-f", "-", input=json.dumps(body))
    body["spec"]["server"]["image"] = "ghcr.io/acme/calc:2"
    (tmp_path / "owned.yaml").write_text(yaml.safe_dump(body))
    conflict = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "owned.yaml"))
    assert conflict.returncode == 1 and "--force-conflicts" in conflict.stderr and "Traceback" not in conflict.stderr
    forced = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "owned.yaml"), "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    image = cluster.kubectl("get", "mcpd", "calc-owned", "-n", namespace, "-o", "jsonpath={.spec.server.image}").stdout
    assert image == "ghcr.io/acme/calc:2"


def test_status_answers_why_and_history_stays_aligned_with_digest_images(cluster: Cluster, cloud: SimulatorThread,
                                                                        operator: OperatorProcess, namespace: str) -> None:
    digest = "ghcr.io/acme/calc@sha256:" + "e" * 64
    mcpd = Mcpd(cluster, namespace, "calc-why")
    mcpd.apply(mcpd_manifest("calc-why", image=digest))
    mcpd.wait_ready(60)
    cloud.call(cloud.simulator.fail_revisions, "calc:why-broken", "exec format error")
    mcpd.apply(mcpd_manifest("calc-why", image="ghcr.io/acme/calc:why-broken"))
    wait_until(lambda: mcpd.condition("Stalled").get("status") == "True", 30, "Stalled")
    mcpd.wait_events("RevisionFailed")

    shown = mcp(cluster, cloud, "status", "calc-why", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    for section in ("Conditions:", "Traffic:", "Revisions:", "Events:"):
        assert section in text
    assert "RevisionFailed" in text and "exec format error" in text, "the why: the condition and the Event"
    assert "100%" in text.split("Traffic:")[1].split("Revisions:")[0], "what still serves"
    data = json.loads(mcp(cluster, cloud, "status", "calc-why", "-n", namespace, "-o", "json").stdout)
    assert {e["reason"] for e in data["events"]} >= {"RevisionFailed"} and len(data["revisions"]) == 2

    history = mcp(cluster, cloud, "history", "calc-why", "-n", namespace).stdout.splitlines()
    starts = {line.index(word) for line, word in ((history[0], "STATE"), (history[1], "Ready"), (history[2], "Failed"))}
    assert len(starts) == 1, "the STATE column starts at one place in every row, whatever the image's length:\n" + "\n".join(
        history)


def test_destroy_with_retain_says_what_was_left_in_the_cloud(cluster: Cluster, cloud: SimulatorThread,
                                                             operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-left")
    mcpd.apply(mcpd_manifest("calc-left", deletionPolicy="Retain"))
    serving = mcpd.wait_ready(60)["servingRevision"]
    destroyed = mcp(cluster, cloud, "destroy", "calc-left", "-n", namespace, "--wait", "--timeout", "60s")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "deletionPolicy is Retain: the cloud resources are left in place" in destroyed.stdout
    assert "calc-left-rg" in destroyed.stdout and serving in destroyed.stdout, destroyed.stdout


def test_deploy_refuses_an_unknown_field_in_one_line(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                     namespace: str, tmp_path: Path) -> None:
    body = mcpd_manifest("calc-typo")
    body["metadata"]["namespace"] = namespace
    body["spec"]["server"]["imagee"] = "ghcr.io/acme/calc:1"  # a typo
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(body))
    refused = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "typo.yaml"))
    assert refused.returncode == 2 and "imagee" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    del body["metadata"]["name"]
    (tmp_path / "nameless.yaml").write_text(yaml.safe_dump(body))
    nameless = mcp(cluster, cloud, "deploy", "-f", str(tmp_path / "nameless.yaml"))
    assert nameless.returncode == 2 and "has no metadata.name" in nameless.stderr and "Traceback" not in nameless.stderr


def test_logs_with_refused_credentials_is_one_clear_line(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                         namespace: str) -> None:
    info = cloud.info
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "wrong-creds", f"--from-literal=AZURE_TENANT_ID={info['tenantId']}",
                    f"--from-literal=AZURE_CLIENT_ID={info['clientId']}", "--from-literal=AZURE_CLIENT_SECRET=not-the-secret")
    body = mcpd_manifest("calc-badlogs", credentials={"secretRef": {"name": "wrong-creds"}})
    body["metadata"]["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    found = mcp(cluster, cloud, "logs", "calc-badlogs", "-n", namespace)
    assert found.returncode == 1 and "Traceback" not in found.stderr, found.stderr
    assert len(found.stderr.strip().splitlines()) == 1 and found.stderr.startswith("error: logs:"), found.stderr
