"""RBAC is proven, not assumed: the operator runs with its own ServiceAccount's token (TokenRequest) and the
manifests' roles, the full flow works, and what is outside its role is denied by the real API server."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Mcpd, manifest

pytestmark = pytest.mark.e2e


def _as_operator(cluster: Cluster, tmp_path: Path) -> Path:
    token = cluster.kubectl("create", "token", "mcp-operator", "-n", "mcp-system", "--duration=1h").stdout.strip()
    return cluster.kubeconfig_for_token(token, tmp_path / "operator.kubeconfig")


def _denied(cluster: Cluster, kubeconfig: Path, *args: str) -> bool:
    result = cluster.kubectl("--kubeconfig", str(kubeconfig), *args, check=False)
    return result.returncode != 0 and "forbidden" in result.stderr.lower()


def _full_flow(cluster: Cluster, namespace: str, name: str, operator: OperatorProcess) -> None:
    cluster.kubectl("create", "secret", "generic", "-n", namespace, f"{name}-keys", "--from-literal=token=t0p-s3cret")
    mcpd = Mcpd(cluster, namespace, name)
    mcpd.apply(manifest(name, server={"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{name}-keys",
                                                                                                "key": "token"}}}]}))
    status = mcpd.wait_ready(60)
    assert status["url"].startswith(f"https://{name}.")
    assert any(e["reason"] == "CreatingRevision" for e in mcpd.events()), "Events are posted with the operator's identity"
    mcpd.apply(manifest(name, image="ghcr.io/acme/calc:2", server={"env": []}))
    mcpd.wait_ready(60)
    mcpd.delete()
    logs = operator.logs()
    # A 403 in the log, not a timestamp's milliseconds that happen to read 403.
    assert "Forbidden" not in logs and not re.search(r"(?<![\d,.:])403(?!\d)", logs), logs[-3000:]


def test_namespaced_mode_with_the_operators_own_token(cluster: Cluster, cloud: SimulatorThread, tmp_path: Path) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO_ROOT / "manifests" / "overlays" / "namespaced"))
    kubeconfig = _as_operator(cluster, tmp_path)
    env = operator_environment(cluster, cloud.operator_environment(), KUBECONFIG=str(kubeconfig), MCP_WATCH_NAMESPACES="mcp-servers")
    operator = OperatorProcess(env, tmp_path / "operator.log", ("--peering", "mcp-operator")).start()
    try:
        operator.wait_started()
        _full_flow(cluster, "mcp-servers", "calc-rbac", operator)
    finally:
        operator.stop()
    cluster.kubectl("create", "secret", "generic", "-n", "default", "elsewhere", "--from-literal=k=v", check=False)
    assert _denied(cluster, kubeconfig, "get", "secret", "elsewhere", "-n", "default"), "Secrets of other namespaces"
    listed = cluster.kubectl("--kubeconfig", str(kubeconfig), "get", "secrets", "-n", "mcp-servers", check=False)
    assert listed.returncode == 0, "Secrets are watched where it serves, so that a rotated key rolls out"
    assert _denied(cluster, kubeconfig, "get", "mcpdeployments", "-n", "default"), "McpDeployments of other namespaces"
    assert _denied(cluster, kubeconfig, "get", "pods", "-n", "mcp-servers"), "other kinds"
    assert _denied(cluster, kubeconfig, "create", "configmap", "x", "-n", "mcp-servers"), "other kinds"
    Mcpd(cluster, "mcp-servers", "probe").apply(manifest("probe", suspend=True))
    assert _denied(cluster, kubeconfig, "delete", "mcpdeployment", "probe", "-n", "mcp-servers"), "deleting McpDeployments"
    allowed = cluster.kubectl("--kubeconfig", str(kubeconfig), "get", "mcpdeployments", "-n", "mcp-servers", check=False)
    assert allowed.returncode == 0, allowed.stderr


def test_cluster_wide_mode_with_the_operators_own_token(cluster: Cluster, cloud: SimulatorThread, tmp_path: Path) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO_ROOT / "manifests" / "base"))
    kubeconfig = _as_operator(cluster, tmp_path)
    prefix = f"rbac-cw-{uuid.uuid4().hex[:6]}"
    namespace = f"{prefix}-apps"
    cluster.kubectl("create", "namespace", namespace)
    env = operator_environment(cluster, cloud.operator_environment(), KUBECONFIG=str(kubeconfig))
    operator = OperatorProcess(env, tmp_path / "operator.log", ("--namespace", f"{prefix}-*")).start()
    try:
        operator.wait_started()
        _full_flow(cluster, namespace, "calc-cw", operator)
    finally:
        operator.stop()
    assert _denied(cluster, kubeconfig, "get", "pods", "-A"), "other kinds"
    assert _denied(cluster, kubeconfig, "get", "configmaps", "-n", "kube-system"), "other kinds"
    rules = json.loads(cluster.kubectl("get", "clusterrole", "mcp-operator", "-o", "json").stdout)["rules"]
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in rules), "no wildcards"
