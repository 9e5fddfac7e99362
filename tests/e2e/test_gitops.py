"""GitOps health and observability: the Argo CD Lua check run by a real Lua interpreter on live statuses,
kstatus-readable conditions for Flux, and the operator's Prometheus metrics."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import lupa.lua51
import pytest
import yaml

from armsim.testing import SimulatorThread
from localcluster import Cluster, free_port
from localcluster.operator import OperatorProcess, operator_environment
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Mcpd, manifest, scrape_metrics, wait_until

pytestmark = pytest.mark.e2e
HEALTH_LUA = REPO_ROOT / "manifests" / "argocd" / "health.lua"
METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, cloud: SimulatorThread, namespace_prefix: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = operator_environment(cluster, cloud.operator_environment(), MCP_METRICS_PORT=str(METRICS_PORT))
    process = OperatorProcess(env, log, ("--namespace", f"{namespace_prefix}-*")).start()
    process.wait_started()
    yield process
    process.stop()


def _lua_value(lua: Any, value: Any) -> Any:
    """Python JSON -> Lua tables, as Argo CD hands the object to the script (arrays 1-based)."""
    if isinstance(value, dict):
        return lua.table_from({k: _lua_value(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_lua_value(lua, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """Runs manifests/argocd/health.lua in Lua 5.1 (Argo CD's gopher-lua dialect) with `obj` set."""
    lua = lupa.lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _lua_value(lua, obj)
    result = lua.execute(HEALTH_LUA.read_text())
    return str(result["status"]), str(result["message"])


def test_argocd_configmap_embeds_the_same_lua() -> None:
    patch = yaml.safe_load((REPO_ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch["data"]["resource.customizations.health.mcp.deploy.dev_McpDeployment"] == HEALTH_LUA.read_text()


def test_health_of_live_resources_in_every_state(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                 namespace: str) -> None:
    assert argocd_health({"metadata": {"name": "x", "generation": 1}})[0] == "Progressing", "no status yet"

    healthy = Mcpd(cluster, namespace, "health-ok")
    healthy.apply(manifest("health-ok"))
    healthy.wait_ready()
    status, message = argocd_health(healthy.get())
    assert status == "Healthy" and "serves 100% of traffic" in message
    newer = copy.deepcopy(healthy.get())
    newer["metadata"]["generation"] += 1
    assert argocd_health(newer) == ("Progressing", f"The operator has not yet observed generation {newer['metadata']['generation']}")

    cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.create", 3.0)
    try:
        slow = Mcpd(cluster, namespace, "health-slow")
        slow.apply(manifest("health-slow"))
        live = wait_until(lambda: (body := slow.get()).get("status", {}).get("observedGeneration") == 1 and
                          any(c["type"] == "Reconciling" and c["status"] == "True" for c in body["status"]["conditions"])
                          and body, 20, "an in-progress status")
        status, message = argocd_health(live)
        assert status == "Progressing" and message.split(":")[0] in (
            "CreatingRevision", "CloudOperationInProgress", "PreparingInfrastructure", "RegisteringProvider",
            "RevisionProvisioning")
    finally:
        cloud.call(cloud.simulator.world.latency.__setitem__, "containerApp.create", 0.3)

    cloud.call(cloud.simulator.fail_revisions, "calc:health-broken", "exec format error")
    broken = Mcpd(cluster, namespace, "health-bad")
    broken.apply(manifest("health-bad", image="ghcr.io/acme/calc:health-broken"))
    wait_until(lambda: broken.condition("Stalled").get("status") == "True", 30, "Stalled")
    status, message = argocd_health(broken.get())
    assert status == "Degraded" and message.startswith("RevisionFailed:") and "exec format error" in message

    paused = Mcpd(cluster, namespace, "health-paused")
    paused.apply(manifest("health-paused", suspend=True))
    wait_until(lambda: paused.condition("Ready").get("reason") == "Suspended", 20, "Suspended")
    assert argocd_health(paused.get())[0] == "Suspended"


def test_kstatus_reading_for_flux(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    """Flux's kstatus: observedGeneration first, then Reconciling/Stalled, then Ready - all at the top level."""
    mcpd = Mcpd(cluster, namespace, "flux-ok")
    mcpd.apply(manifest("flux-ok"))
    body = mcpd.get()
    if body.get("status", {}).get("observedGeneration") == body["metadata"]["generation"]:
        reconciling = next(c for c in body["status"]["conditions"] if c["type"] == "Reconciling")
        ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
        assert reconciling["status"] == "True" or ready["status"] == "True"
    status = mcpd.wait_ready()
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Reconciling"]["status"] == "False" and conditions["Stalled"]["status"] == "False"
    assert all(c["observedGeneration"] == status["observedGeneration"] for c in status["conditions"])
    assert {"lastTransitionTime", "reason", "message", "status", "type"} <= set(conditions["Ready"])


def test_prometheus_metrics(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "metrics-ok")
    mcpd.apply(manifest("metrics-ok"))
    mcpd.wait_ready()
    time.sleep(0.5)
    found = scrape_metrics(METRICS_PORT)
    target = 'target="azure-container-apps"'
    # scrape_metrics lists each sample's labels in alphabetical order
    assert found.get(f'mcp_reconciles_total{{outcome="ready",{target}}}', 0) >= 1
    assert found.get(f'mcp_reconciles_total{{outcome="progressing",{target}}}', 0) >= 1
    assert found.get(f'mcp_cloud_requests_total{{method="PUT",outcome="success",{target}}}', 0) >= 1
    assert found.get(f'mcp_cloud_requests_total{{method="GET",outcome="success",{target}}}', 0) >= 1
    # The first read of a new app answers 404: an answer, not an error of ours.
    assert found.get(f'mcp_cloud_requests_total{{method="GET",outcome="not_found",{target}}}', 0) >= 1
    assert f'mcp_cloud_requests_total{{method="GET",outcome="client_error",{target}}}' not in found
    assert found.get('mcp_resources{state="Ready"}', 0) >= 1
    assert found.get('mcp_cloud_operation_seconds_count{kind="Rollout"}', 0) >= 1


@pytest.mark.parametrize("status", [None, {"observedGeneration": 1, "conditions": [
    {"type": "Stalled", "status": "True", "reason": "RevisionFailed", "message": "m"}]}])
def test_argocd_reports_suspended_whenever_spec_suspend_is_true(status: dict[str, Any] | None) -> None:
    """Before the operator has seen the change, and even over a Stalled verdict: suspension is the spec's word."""
    obj: dict[str, Any] = {"metadata": {"name": "x", "generation": 2}, "spec": {"suspend": True}}
    if status is not None:
        obj["status"] = status
    assert argocd_health(obj)[0] == "Suspended"
