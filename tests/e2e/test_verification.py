"""MCP-verified rollouts: traffic moves to a revision only after it answers the MCP handshake on its own URL.

The simulator's ingress answers every revision URL with a real MCP server (the official SDK's), chosen by the
image reference: healthy, behind a Host guard (421), bound to loopback (the ingress's 503), slow to start.
"""

from __future__ import annotations

import time

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import Mcpd, cloud_revisions, manifest, wait_until

pytestmark = pytest.mark.e2e


def _serving_then_update(mcpd: Mcpd, image: str, **spec: object) -> str:
    mcpd.apply(manifest(mcpd.name, **spec))
    serving: str = mcpd.wait_ready()["servingRevision"]
    mcpd.apply(manifest(mcpd.name, image=image, **spec))
    return serving


def _stalled(mcpd: Mcpd, reason: str, timeout: float = 40) -> str:
    wait_until(lambda: mcpd.condition("Stalled").get("reason") == reason, timeout, f"Stalled {reason}")
    return str(mcpd.condition("Stalled")["message"])


def test_a_healthy_revision_is_verified_then_serves(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                                    namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-verified")
    serving = _serving_then_update(mcpd, "ghcr.io/acme/calculator:2.0.0")
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 2, 40, "revision 2 to serve")
    status = mcpd.status()
    assert status["servingRevision"] != serving
    check = status["revisions"][-1]["mcp"]
    assert check["result"] == "Passed" and check["serverName"] == "calculator" and check["serverVersion"] == "2.0.0"
    assert check["toolCount"] == 3 and check["protocolVersion"] and check["latencyMs"] >= 0
    assert check["url"].startswith(f"https://{status['servingRevision']}."), "checked on the revision's own URL"
    verified = [e["message"] for e in mcpd.wait_events("McpVerified")]
    assert any("calculator 2.0.0" in message and "3 tools" in message for message in verified), verified


def test_a_server_rejecting_the_ingress_host_never_gets_traffic(cluster: Cluster, cloud: SimulatorThread,
                                                                 operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-guarded")
    serving = _serving_then_update(mcpd, "ghcr.io/acme/mcp-host-guard:1")
    message = _stalled(mcpd, "McpHostRejected")
    assert "421" in message and "allowed_origins" in message and f"({serving}) keeps serving" in message
    assert cloud_revisions(cloud, "calc-guarded")[serving]["traffic"] == 100
    assert mcpd.status()["revisions"][-1]["mcp"]["result"] == "Failed"
    assert all(e["type"] == "Warning" for e in mcpd.wait_events("McpHostRejected"))


def test_a_server_bound_to_loopback_never_gets_traffic(cluster: Cluster, cloud: SimulatorThread,
                                                        operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-loopback")
    serving = _serving_then_update(mcpd, "ghcr.io/acme/mcp-loopback:1", verify={"timeoutSeconds": 5})
    message = _stalled(mcpd, "McpUnreachable")
    assert "0.0.0.0:$PORT" in message
    assert cloud_revisions(cloud, "calc-loopback")[serving]["traffic"] == 100


def test_a_slow_starting_server_is_asked_again_until_it_answers(cluster: Cluster, cloud: SimulatorThread,
                                                                 operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-slow")
    _serving_then_update(mcpd, "ghcr.io/acme/mcp-slow-start-4:1")
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 2, 40, "the slow revision to serve")
    assert mcpd.status()["revisions"][-1]["mcp"]["result"] == "Passed"


def test_expected_tools_and_the_off_switch(cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess,
                                           namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-tools")
    mcpd.apply(manifest("calc-tools", verify={"expectedTools": ["add", "divide"]}))
    message = _stalled(mcpd, "McpToolsMissing")
    assert "divide" in message and "add, echo, now" in message

    unchecked = Mcpd(cluster, namespace, "calc-unchecked")
    _serving_then_update(unchecked, "ghcr.io/acme/mcp-host-guard:1", verify={"enabled": False})
    wait_until(lambda: unchecked.is_ready() and unchecked.status()["revisionCounter"] == 2, 40, "unchecked traffic")
    assert "mcp" not in unchecked.status()["revisions"][-1]


def test_a_server_that_requires_a_token_is_checked_with_the_one_named(cluster: Cluster, cloud: SimulatorThread,
                                                                     operator: OperatorProcess, namespace: str) -> None:
    locked = Mcpd(cluster, namespace, "calc-locked")
    locked.apply(manifest("calc-locked", image="ghcr.io/acme/mcp-auth-required:1"))
    assert "spec.verify.tokenSecretRef" in _stalled(locked, "McpUnauthorized")

    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-token", "--from-literal=token=sim-token")
    opened = Mcpd(cluster, namespace, "calc-opened")
    opened.apply(manifest("calc-opened", image="ghcr.io/acme/mcp-auth-required:1",
                          verify={"tokenSecretRef": {"name": "calc-token", "key": "token"}}))
    assert opened.wait_ready()["revisions"][-1]["mcp"]["result"] == "Passed"
    assert "sim-token" not in str(opened.get()) + str(opened.events()), "the token is never shown"


def test_a_smoke_test_tool_call_must_return_what_the_spec_expects(cluster: Cluster, cloud: SimulatorThread,
                                                                  operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-smoke")
    adds = {"tool": "add", "arguments": {"a": 2, "b": 3}}
    serving = _serving_then_update(mcpd, "ghcr.io/acme/calculator:2.0.0", verify={"smokeTest": {**adds, "expect": "5"}})
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 2, 40, "revision 2 to serve")
    assert mcpd.status()["revisions"][-1]["mcp"]["smokeTest"] == "add returned '5.0'"

    mcpd.apply(manifest("calc-smoke", image="ghcr.io/acme/calculator:3.0.0", verify={"smokeTest": {**adds, "expect": "6"}}))
    message = _stalled(mcpd, "McpSmokeTestFailed")
    assert "'5.0'" in message and "'6'" in message and "keeps serving" in message
    assert cloud_revisions(cloud, "calc-smoke")[mcpd.status()["servingRevision"]]["traffic"] == 100
    assert mcpd.status()["servingRevision"] != serving, "revision 2 (checked) serves; revision 3 got nothing"


def test_a_canary_is_checked_at_each_step_and_rolled_back_when_it_starts_failing(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    steps = {"steps": [{"percent": 10, "pauseSeconds": 2}, {"percent": 50, "pauseSeconds": 2}]}
    healthy = Mcpd(cluster, namespace, "calc-canary")
    _serving_then_update(healthy, "ghcr.io/acme/calculator:2.0.0", rollout=steps)
    wait_until(lambda: healthy.is_ready() and healthy.status()["revisionCounter"] == 2, 60, "10% -> 50% -> 100%")
    shifted = [e["message"] for e in healthy.events() if e["reason"] == "ShiftingTraffic"]
    assert any("10% of traffic" in m for m in shifted) and any("50% of traffic" in m for m in shifted)
    assert len(healthy.wait_events("McpVerified")) >= 3, "checked before traffic, then after each step"

    # Healthy for 6 requests (two handshakes: before traffic, after 10%), failing from the check after 50%.
    failing = Mcpd(cluster, namespace, "calc-fading")
    serving = _serving_then_update(failing, "ghcr.io/acme/mcp-crash-after-6:2", rollout=steps)
    message = _stalled(failing, "McpUnreachable", 30)
    assert "all traffic went back" in message
    wait_until(lambda: cloud_revisions(cloud, "calc-fading")[serving]["traffic"] == 100, 20, "all traffic back")
    rolled = [e["message"] for e in failing.wait_events("RolledBack")]
    assert any("with 50% of traffic" in m for m in rolled), rolled
    def requests_to_revision_2() -> int:
        ingress = cloud.simulator.ingress
        return next(count for host, count in ingress.requests.items() if host.startswith("calc-fading--r2"))

    checks = requests_to_revision_2()
    assert failing.status()["revisions"][-1]["mcp"]["final"] is True
    time.sleep(3)
    assert requests_to_revision_2() == checks, "a revision sent back is not checked again"


def test_a_periodic_check_reports_a_serving_revision_that_stopped_answering(
        cluster: Cluster, cloud: SimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-watched")
    # Healthy for 9 requests: the check before traffic and two periodic checks (the module's drift check is 3 s).
    mcpd.apply(manifest("calc-watched", image="ghcr.io/acme/mcp-crash-after-9:1", verify={"periodic": True}))
    serving = mcpd.wait_ready(40)["servingRevision"]
    wait_until(lambda: mcpd.condition("Degraded").get("status") == "False", 20, "a first periodic check")
    degraded = wait_until(lambda: mcpd.condition("Degraded").get("status") == "True" and mcpd.condition("Degraded"), 30,
                          "Degraded")
    assert degraded["reason"] == "McpUnreachable" and "which serves, failed the periodic MCP check" in degraded["message"]
    assert mcpd.condition("Ready")["status"] == "True", "reported, not acted on"
    assert cloud_revisions(cloud, "calc-watched")[serving]["traffic"] == 100
    assert mcpd.status()["servingCheck"]["result"] == "Failed"
    assert mcpd.wait_events("McpDegraded")
