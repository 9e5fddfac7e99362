"""SIGKILL the operator in the middle of a cloud operation: the restarted one converges, with no duplicate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from tests.e2e.conftest import KillableOperator, Mcpd, cloud_revisions, manifest, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("phase", ["create", "update"])
def test_sigkill_mid_operation_then_restart_converges_without_duplicates(
        cluster: Cluster, cloud: SimulatorThread, namespace: str, tmp_path: Path, phase: str) -> None:
    name = f"calc-kill-{phase}"
    operator = KillableOperator(cluster, cloud, namespace, tmp_path)
    mcpd = Mcpd(cluster, namespace, name)
    world = cloud.simulator.world
    try:
        mcpd.apply(manifest(name))
        if phase == "update":
            mcpd.wait_ready()
            mcpd.apply(manifest(name, image="ghcr.io/acme/calc:2"))
        key = "containerApp.create" if phase == "create" else "containerApp.update"
        cloud.call(world.latency.__setitem__, key, 4.0)
        started = time.monotonic()
        wait_until(lambda: any(r.operation == "ContainerApps_CreateOrUpdate" and name in r.path and r.at >= started - 60
                               and r.status in (200, 201) and (phase == "create" or r.at > started)
                               for r in cloud.simulator.requests), 30, "the app write")
        operator.kill_and_restart()
        status = mcpd.wait_ready(60)
    finally:
        cloud.call(world.latency.__setitem__, "containerApp.create", 0.3)
        cloud.call(world.latency.__setitem__, "containerApp.update", 0.3)
        operator.stop()
    expected = 1 if phase == "create" else 2
    assert len(cloud_revisions(cloud, name)) == expected, "no duplicate revision"
    assert [r["number"] for r in status["revisions"]] == list(range(1, expected + 1))
    assert status["revisionCounter"] == expected
    writes = [r for r in cloud.simulator.requests if r.operation == "ContainerApps_CreateOrUpdate" and name in r.path
              and r.status in (200, 201)]
    assert len(writes) == expected, "the restarted operator waited for the operation instead of repeating it"
