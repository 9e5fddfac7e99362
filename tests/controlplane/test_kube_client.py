"""The operator's own Kubernetes client (mcp_operator.kube) against the real API server.

It logs in through an exec credential plugin, as kubelogin or aws eks get-token would, with a
ServiceAccount token the API server really checks; a rotated token is picked up after a 401.
"""

from __future__ import annotations

import base64
import stat
import sys
import time
import uuid
from pathlib import Path

import pytest

from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from mcp_operator.api.models import AwsStatus, McpDeploymentStatus
from mcp_operator.kube import Kube, KubeError, SecretMissing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service_account_token(cluster: Cluster) -> str:
    name = f"kube-client-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "serviceaccount", name, "-n", "default")
    cluster.kubectl("create", "clusterrolebinding", name, "--clusterrole=cluster-admin", f"--serviceaccount=default:{name}")
    return cluster.kubectl("create", "token", name, "-n", "default", "--duration=1h").stdout.strip()


def exec_kubeconfig(cluster: Cluster, tmp_path: Path, token_file: Path, runs: Path | None = None) -> Path:
    """The cluster's kubeconfig with its user replaced by an exec plugin that prints the token in ``token_file``
    (and, given ``runs``, adds a line to that file each time it runs)."""
    script = tmp_path / "token-plugin.py"
    count = f"open({str(runs)!r}, 'a').write('run\\n')\n" if runs is not None else ""
    script.write_text(f"#!{sys.executable}\nimport json, pathlib\n{count}"
                      f"print(json.dumps({{'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
                      f"'status': {{'token': pathlib.Path({str(token_file)!r}).read_text().strip()}}}}))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}}
    return cluster.kubeconfig_for_user(user, tmp_path / "exec.kubeconfig", namespace="from-the-context")


def mcpd(namespace: str, name: str, **azure: object) -> dict[str, object]:
    return {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": "ghcr.io/acme/calc:1"}, "azure": azure}}


async def test_exec_plugin_login_relogin_after_401_and_the_calls_the_operator_makes(
        cluster: Cluster, service_account_token: str, tmp_path: Path) -> None:
    namespace = f"kc-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    token_file = tmp_path / "token"
    token_file.write_text("not-a-valid-token")
    kube, context_namespace = await Kube.connect(kubeconfig=str(exec_kubeconfig(cluster, tmp_path, token_file)))
    try:
        assert context_namespace == "from-the-context"
        token_file.write_text(service_account_token)  # rotated after the first login: the next 401 logs in again
        assert await kube.get(namespace, "calc") is None  # 404 is an answer, not an error

        await kube.server_side_apply(namespace, mcpd(namespace, "calc", minReplicas=1), "kube-client-test")
        stored = await kube.get(namespace, "calc")
        assert stored is not None and stored["spec"]["azure"]["minReplicas"] == 1

        await kube.patch_status(namespace, "calc", McpDeploymentStatus(url="https://calc.example/", fqdn="calc.example"))
        status = (await kube.get(namespace, "calc") or {})["status"]
        assert (status["url"], status["fqdn"]) == ("https://calc.example/", "calc.example")
        # The merge patch removes what the new status no longer has.
        await kube.patch_status(namespace, "calc", McpDeploymentStatus(fqdn="other.example"))
        assert "url" not in (await kube.get(namespace, "calc") or {})["status"]
        # Also inside the objects of status: a target's fact that is no more is removed, not kept.
        await kube.patch_status(namespace, "calc", McpDeploymentStatus(aws=AwsStatus(region="us-east-1", provisioned_concurrency=2)))
        await kube.patch_status(namespace, "calc", McpDeploymentStatus(aws=AwsStatus(region="us-east-1")))
        assert (await kube.get(namespace, "calc") or {})["status"]["aws"] == {"region": "us-east-1"}

        with pytest.raises(KubeError) as refused:
            await kube.server_side_apply(namespace, mcpd(namespace, "calc", minReplicas=5, maxReplicas=2), "kube-client-test")
        assert refused.value.status == 422
        assert "maxReplicas must be greater than or equal to azure.minReplicas" in refused.value.message

        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys", "namespace": namespace},
                  "data": {"api-key": base64.b64encode(b"s3cret").decode()}}
        await kube.server_side_apply(namespace, secret, "kube-client-test")
        data, version = await kube.secret_data(namespace, "keys")
        assert data == {"api-key": "s3cret"} and version
        with pytest.raises(SecretMissing, match=f"Secret {namespace}/absent not found"):
            await kube.secret_data(namespace, "absent")

        await kube.delete(namespace, "calc")
        with pytest.raises(KubeError, match="not found"):
            await kube.patch_spec(namespace, "calc", {"suspend": True})
    finally:
        await kube.close()


async def test_a_token_the_api_server_never_accepts_is_an_error_not_a_loop(cluster: Cluster, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("never-valid")
    kube, _ = await Kube.connect(kubeconfig=str(exec_kubeconfig(cluster, tmp_path, token_file)))
    try:
        with pytest.raises(KubeError) as refused:
            await kube.get("default", "anything")
        assert refused.value.status == 401
    finally:
        await kube.close()


def test_checking_the_configuration_at_start_runs_no_extra_exec_plugin(
        cluster: Cluster, service_account_token: str, tmp_path: Path) -> None:
    token_file, runs = tmp_path / "token", tmp_path / "runs"
    token_file.write_text(service_account_token)
    env = operator_environment(cluster, {}, KUBECONFIG=str(exec_kubeconfig(cluster, tmp_path, token_file, runs)))
    operator = OperatorProcess(env, tmp_path / "operator.log", ("--namespace", "nothing-here")).start()
    try:
        operator.wait_started()
        deadline = time.monotonic() + 30
        while "Initial authentication has finished" not in operator.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Initial authentication has finished" in operator.logs(), operator.logs()[-2000:]
    finally:
        operator.stop()
    # One for kopf's login and one for the operator's own client (status patches): the start-up check's login
    # served kopf's first one instead of running the plugin a third time.
    assert runs.read_text().splitlines() == ["run", "run"]
