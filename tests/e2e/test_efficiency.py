"""What an in-sync resource costs: no ARM writes and no Kubernetes writes, however often drift is checked.

This module has an operator of its own (drift checked every second), so no other test's resources move
its counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster, free_port
from localcluster.operator import OperatorProcess, operator_environment
from tests.e2e.conftest import Mcpd, manifest, scrape_metrics, wait_until

pytestmark = pytest.mark.e2e
METRICS_PORT = free_port()
DRIFT_INTERVAL = 1.0
STATUS_PATCHES = 'mcp_kube_requests_total{method="PATCH",outcome="success"}'


@pytest.fixture(scope="module")
def operator(cluster: Cluster, cloud: SimulatorThread, namespace_prefix: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = operator_environment(cluster, cloud.operator_environment(), MCP_METRICS_PORT=str(METRICS_PORT),
                               MCP_DRIFT_INTERVAL=str(DRIFT_INTERVAL))
    process = OperatorProcess(env, log, ("--namespace", f"{namespace_prefix}-*")).start()
    process.wait_started()
    yield process
    process.stop()


def arm_writes(cloud: SimulatorThread, app: str, since: float) -> int:
    return sum(1 for r in cloud.simulator.requests if r.at >= since and f"/containerApps/{app}" in r.path and r.klass != "reads")


def drift_checks(cloud: SimulatorThread, app: str, since: float) -> int:
    return sum(1 for r in cloud.simulator.requests
               if r.at >= since and r.method == "GET" and r.path.lower().endswith(f"/containerapps/{app}"))


def test_an_idle_resource_writes_nothing_anywhere(cluster: Cluster, operator: OperatorProcess, cloud: SimulatorThread,
                                                  namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "idle")
    mcpd.apply(manifest("idle"))
    mcpd.wait_ready()
    # Settled: the pass that saw it Ready has written its status.
    wait_until(lambda: scrape_metrics(METRICS_PORT).get(STATUS_PATCHES, 0) > 0, what="the first status patches")
    time.sleep(2 * DRIFT_INTERVAL)
    patches_before, since = scrape_metrics(METRICS_PORT).get(STATUS_PATCHES, 0), time.monotonic()

    wait_until(lambda: drift_checks(cloud, "idle", since) >= 3, timeout=15, what="three drift checks")
    build = next(name for name in scrape_metrics(METRICS_PORT) if name.startswith("mcp_build_info{"))
    from mcp_operator.targets import registry

    assert 'version="' in build and f'targets="{",".join(registry.supported())}"' in build, build
    assert arm_writes(cloud, "idle", since) == 0
    assert scrape_metrics(METRICS_PORT).get(STATUS_PATCHES, 0) == patches_before, \
        "an idle resource patched its status although nothing changed"

    # The counter does count: a change that moves the status is written.
    mcpd.apply(manifest("idle", image="ghcr.io/acme/calc:2"))
    wait_until(lambda: scrape_metrics(METRICS_PORT).get(STATUS_PATCHES, 0) > patches_before, what="a status patch after a change")
    mcpd.wait_ready()


def test_checks_and_drift_corrections_are_counted(cluster: Cluster, operator: OperatorProcess, cloud: SimulatorThread,
                                                  namespace: str) -> None:
    passed = 'mcp_verifications_total{outcome="passed",target="azure-container-apps"}'
    traffic = 'mcp_drift_corrections_total{kind="traffic",target="azure-container-apps"}'
    before = scrape_metrics(METRICS_PORT)
    mcpd = Mcpd(cluster, namespace, "counted")
    mcpd.apply(manifest("counted"))
    first = mcpd.wait_ready()["servingRevision"]
    mcpd.apply(manifest("counted", image="ghcr.io/acme/calc:2"))
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["revisionCounter"] == 2, 30, "revision 2")
    assert scrape_metrics(METRICS_PORT).get(passed, 0) - before.get(passed, 0) == 2, "one check per new revision"

    world, sub = cloud.simulator.world, cloud.info["subscriptionId"]

    def send_traffic_back() -> None:  # someone moves traffic behind the operator's back
        app = world.app(sub, "counted-rg", "counted")
        app.body["properties"]["configuration"]["ingress"]["traffic"] = [{"revisionName": first, "weight": 100}]

    cloud.call(send_traffic_back)
    wait_until(lambda: scrape_metrics(METRICS_PORT).get(traffic, 0) - before.get(traffic, 0) >= 1, 15,
               "the traffic correction to be counted")
