"""The local control plane is a real one: CRDs, schema validation, watches, status, RBAC and tokens."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from localcluster import Cluster

pytestmark = pytest.mark.e2e


def _namespace(cluster: Cluster) -> str:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def _manifest(name: str, image: str = "ghcr.io/acme/calc:1", **spec: object) -> str:
    body = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": name},
            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": image}, **spec}}
    return json.dumps(body)


def test_the_api_server_is_the_pinned_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert version["serverVersion"]["gitVersion"] != "v0.0.0-master+$Format:%H$"


def test_crd_is_established_and_explained(cluster: Cluster) -> None:
    crd = json.loads(cluster.kubectl("get", "crd", "mcpdeployments.mcp.deploy.dev", "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    deadline = time.monotonic() + 30
    while (explained := cluster.kubectl("explain", "mcpdeployment.spec.azure.minReplicas", check=False)).returncode != 0:
        assert time.monotonic() < deadline, "the CRD's OpenAPI was never published: " + explained.stderr
        time.sleep(0.5)
    assert "cold starts" in explained.stdout


def test_custom_resource_created_defaulted_and_listed(cluster: Cluster) -> None:
    namespace = _namespace(cluster)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_manifest("calc", azure={"location": "westeurope"}))
    stored = json.loads(cluster.kubectl("get", "-n", namespace, "mcpd", "calc", "-o", "json").stdout)
    assert stored["spec"]["azure"]["targetPort"] == 8080, "schema defaults are applied by the API server"
    assert stored["spec"]["server"]["allowedOrigins"] == ["*"]
    table = cluster.kubectl("get", "-n", namespace, "mcpdeployments").stdout
    assert table.split("\n")[0].split() == ["NAME", "TARGET", "STATE", "URL", "REVISION", "TRAFFIC", "READY", "AGE"]


def test_schema_rejects_a_bad_resource_with_the_api_servers_message(cluster: Cluster) -> None:
    namespace = _namespace(cluster)
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                             input=_manifest("calc", azure={"targetPort": 0}))
    assert result.returncode != 0
    assert "spec.azure.targetPort" in result.stderr and "should be greater than or equal to 1" in result.stderr


def test_watch_sees_a_status_subresource_patch(cluster: Cluster) -> None:
    namespace = _namespace(cluster)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_manifest("watched"))
    watch = subprocess.Popen(
        [cluster.kubectl_path, "--kubeconfig", str(cluster.kubeconfig), "get", "-n", namespace, "mcpd", "watched",
         "--watch", "--output-watch-events", "-o", "json", "--request-timeout=20s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        cluster.kubectl("patch", "-n", namespace, "mcpd", "watched", "--subresource=status", "--type=merge",
                        "-p", json.dumps({"status": {"url": "https://watched.example.io/", "fqdn": "watched.example.io"}}))
        seen: list[dict[str, object]] = []
        decoder = json.JSONDecoder()
        buffer = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(e["type"] == "MODIFIED" for e in seen):
            line = watch.stdout.readline() if watch.stdout else ""
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.strip())
                seen.append(event)
                buffer = buffer.strip()[end:]
            except json.JSONDecodeError:
                continue
    finally:
        watch.terminate()
        watch.wait(timeout=10)
    modified = [e for e in seen if e["type"] == "MODIFIED"]
    assert modified, seen
    assert modified[0]["object"]["status"]["fqdn"] == "watched.example.io"  # type: ignore[index]


def test_status_is_only_written_through_its_subresource(cluster: Cluster) -> None:
    namespace = _namespace(cluster)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_manifest("split"))
    cluster.kubectl("patch", "-n", namespace, "mcpd", "split", "--type=merge", "-p", json.dumps({"status": {"fqdn": "ignored"}}))
    stored = json.loads(cluster.kubectl("get", "-n", namespace, "mcpd", "split", "-o", "json").stdout)
    assert "status" not in stored or "fqdn" not in stored["status"]
    generation = stored["metadata"]["generation"]
    cluster.kubectl("patch", "-n", namespace, "mcpd", "split", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"observedGeneration": generation}}))
    stored = json.loads(cluster.kubectl("get", "-n", namespace, "mcpd", "split", "-o", "json").stdout)
    assert stored["metadata"]["generation"] == generation, "a status write does not bump the generation"


def test_rbac_is_enforced_for_service_account_tokens(cluster: Cluster, tmp_path: Path) -> None:
    namespace = _namespace(cluster)
    cluster.kubectl("create", "serviceaccount", "-n", namespace, "reader")
    token = cluster.kubectl("create", "token", "-n", namespace, "reader", "--duration=10m").stdout.strip()
    as_reader = ("--kubeconfig", str(cluster.kubeconfig_for_token(token, tmp_path / "reader.kubeconfig")))
    denied = cluster.kubectl(*as_reader, "get", "-n", namespace, "mcpdeployments", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    cluster.kubectl("create", "role", "-n", namespace, "read-mcpd", "--verb=get,list", "--resource=mcpdeployments.mcp.deploy.dev")
    cluster.kubectl("create", "rolebinding", "-n", namespace, "read-mcpd", "--role=read-mcpd", f"--serviceaccount={namespace}:reader")
    deadline = time.monotonic() + 10
    while cluster.kubectl(*as_reader, "get", "-n", namespace, "mcpdeployments", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the RoleBinding never took effect"
        time.sleep(0.2)
    secrets = cluster.kubectl(*as_reader, "get", "-n", namespace, "secrets", check=False)
    assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower()
