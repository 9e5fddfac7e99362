"""Two replicas: exactly one reconciles, nothing stalls while both are healthy, and a standby takes over a
SIGKILLed leader within 15 s (kopf peering with a unique random priority per process, 10 s lifetime)."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from tests.e2e.conftest import Mcpd, manifest, wait_until

pytestmark = pytest.mark.e2e
PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"
TAKEOVER_LIMIT = 15.0


def test_one_replica_leads_and_a_standby_takes_over_a_killed_leader(
        cluster: Cluster, cloud: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> None:
    suffix = uuid.uuid4().hex[:6]
    prefix, peering = f"e2e-replicas-{suffix}", f"replicas-{suffix}"
    namespace = f"{prefix}-apps"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}}))
    env = operator_environment(cluster, cloud.operator_environment(), MCP_DRIFT_INTERVAL="3")
    logs = tmp_path_factory.mktemp("replicas")
    replicas = [OperatorProcess(env, logs / f"replica-{index}.log", ("--namespace", f"{prefix}-*", "--peering", peering))
                for index in range(2)]
    for replica in replicas:
        replica.start()
    try:
        for replica in replicas:
            replica.wait_started()
        # The highest priority leads; the other stays paused (kopf logs a pause only when it was running).
        priorities = [int(wait_until(lambda r=r: re.search(r"with priority (\d+)", r.logs()), 30, "its priority")[1])
                      for r in replicas]
        leader, standby = sorted(replicas, key=lambda r: priorities[replicas.index(r)], reverse=True)
        # kopf peering settles within one round trip: until both have announced themselves, each may think it is
        # alone (a pass run twice then is harmless, as every pass is idempotent, but it is not what is tested here).
        wait_until(lambda: len(json.loads(cluster.kubectl("get", "clusterkopfpeering", peering, "-o", "json").stdout)
                               .get("status") or {}) == 2, 30, "both replicas in the peering")
        time.sleep(1)
        first = Mcpd(cluster, namespace, "calc-ha-1")
        started = time.monotonic()
        first.apply(manifest("calc-ha-1"))
        first.wait_ready(30)
        assert time.monotonic() - started < 15, "two healthy replicas do not stall each other"
        assert all("Pausing all operators" not in r.logs() for r in replicas)
        assert PAUSED not in leader.logs()
        assert "calc-ha-1" not in standby.logs(), "only the leader reconciles"

        resumed_before = standby.logs().count(RESUMED)
        leader.kill()
        killed = time.monotonic()
        wait_until(lambda: standby.logs().count(RESUMED) > resumed_before, 30, "the standby to take over")
        takeover = time.monotonic() - killed
        print(f"takeover after SIGKILL of the leader: {takeover:.1f} s")
        assert takeover < TAKEOVER_LIMIT
        second = Mcpd(cluster, namespace, "calc-ha-2")
        second.apply(manifest("calc-ha-2"))
        second.wait_ready(30)
        first.apply(manifest("calc-ha-1", image="ghcr.io/acme/calc:2"))
        wait_until(lambda: first.is_ready() and first.status()["revisionCounter"] == 2, 30, "the new leader to roll out")
        first.delete()
        second.delete()
    finally:
        for replica in replicas:
            replica.stop()
