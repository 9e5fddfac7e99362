"""Deleting a namespace cleans the cloud and finishes: the credentials Secret a resource needs to delete its cloud
side is kept (an in-use finalizer) until that resource is released; credentials truly gone stall with a
condition and an Event naming the escape hatch, an annotation that abandons the cloud side."""

from __future__ import annotations

import json
import uuid

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import Mcpd, manifest, wait_until

pytestmark = pytest.mark.e2e
FINALIZER = "mcp.deploy.dev/credentials-in-use"


def _credentials(cluster: Cluster, cloud: SimulatorThread, namespace: str, name: str) -> None:
    info = cloud.info
    keys = {"AZURE_TENANT_ID": info["tenantId"], "AZURE_CLIENT_ID": info["clientId"], "AZURE_CLIENT_SECRET": info["clientSecret"]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": name, "namespace": namespace}, "stringData": keys}))


def _apps(cloud: SimulatorThread) -> set[str]:
    return cloud.call(lambda: {a.name for a in cloud.simulator.world.apps.values()})


def _namespace_exists(cluster: Cluster, namespace: str) -> bool:
    return cluster.kubectl("get", "namespace", namespace, check=False).returncode == 0


def test_deleting_a_namespace_deletes_the_cloud_apps_and_finishes(cluster: Cluster, cloud: SimulatorThread,
                                                                  operator: OperatorProcess, namespace_prefix: str) -> None:
    namespace = f"{namespace_prefix}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    _credentials(cluster, cloud, namespace, "team-identity")
    names = ["calc-ns-1", "calc-ns-2"]
    for name in names:
        Mcpd(cluster, namespace, name).apply(manifest(name, credentials={"secretRef": {"name": "team-identity"}}))
    for name in names:
        Mcpd(cluster, namespace, name).wait_ready()
    secret = json.loads(cluster.kubectl("get", "secret", "-n", namespace, "team-identity", "-o", "json").stdout)
    assert FINALIZER in secret["metadata"].get("finalizers", []), "the Secret is protected while it is needed"

    cluster.delete_namespace(namespace, timeout=90)  # what the namespace controller does; raises if something stays
    wait_until(lambda: not _namespace_exists(cluster, namespace), 10, "the namespace to be gone")
    assert not set(names) & _apps(cloud), "the cloud apps were deleted with it"


def test_credentials_truly_gone_stall_the_deletion_until_abandoned(cluster: Cluster, cloud: SimulatorThread,
                                                                    operator: OperatorProcess, namespace: str) -> None:
    _credentials(cluster, cloud, namespace, "lost-identity")
    mcpd = Mcpd(cluster, namespace, "calc-orphan")
    mcpd.apply(manifest("calc-orphan", credentials={"secretRef": {"name": "lost-identity"}}))
    mcpd.wait_ready()
    cluster.kubectl("patch", "secret", "-n", namespace, "lost-identity", "--type=json",
                    "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    cluster.kubectl("delete", "secret", "-n", namespace, "lost-identity")
    mcpd.delete(wait=False)
    wait_until(lambda: mcpd.condition("Stalled").get("reason") == "CredentialsMissing", 30, "Stalled CredentialsMissing")
    message = mcpd.condition("Stalled")["message"]
    assert "lost-identity" in message and "mcp.deploy.dev/abandon=true" in message
    assert all(e["type"] == "Warning" for e in mcpd.wait_events("CredentialsMissing"))
    assert "calc-orphan" in _apps(cloud)

    cluster.kubectl("annotate", "-n", namespace, "mcpd", "calc-orphan", "mcp.deploy.dev/abandon=true")
    wait_until(lambda: cluster.kubectl("get", "-n", namespace, "mcpd", "calc-orphan", check=False).returncode != 0, 40,
               "the abandoned McpDeployment to be released")
    assert "calc-orphan" in _apps(cloud), "abandoned: the cloud side is left as it is"


def test_the_secret_is_released_with_its_last_user(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                   namespace: str) -> None:
    _credentials(cluster, cloud, namespace, "shared-identity")
    users = [Mcpd(cluster, namespace, name) for name in ("calc-user-1", "calc-user-2")]
    for user in users:
        user.apply(manifest(user.name, credentials={"secretRef": {"name": "shared-identity"}}))
    for user in users:
        user.wait_ready()

    def finalizers() -> list[str]:
        secret = json.loads(cluster.kubectl("get", "secret", "-n", namespace, "shared-identity", "-o", "json").stdout)
        return secret["metadata"].get("finalizers", [])  # type: ignore[no-any-return]

    users[0].delete()
    assert FINALIZER in finalizers(), "still needed by the other"
    users[1].delete()
    wait_until(lambda: FINALIZER not in finalizers(), 10, "the finalizer to come off")
