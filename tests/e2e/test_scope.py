"""Namespace patterns: a matching namespace created while the operator starts is served (kopf's own
namespace discovery missed such a namespace, and e2e tests stalled 40 s on it); others are left alone."""

from __future__ import annotations

import uuid

import pytest

from armsim.testing import SimulatorThread
from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from tests.e2e.conftest import Mcpd, manifest

pytestmark = pytest.mark.e2e


def test_namespaces_created_during_start_up_are_served_and_others_are_not(
        cluster: Cluster, cloud: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> None:
    prefix = f"e2e-scope-{uuid.uuid4().hex[:6]}"
    env = operator_environment(cluster, cloud.operator_environment())
    process = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log", ("--namespace", f"{prefix}-*"))
    process.start()
    try:
        # Namespaces appear while the operator lists and starts watching them: each must still be served.
        served = []
        for index in range(6):
            namespace = f"{prefix}-{index}"
            cluster.kubectl("create", "namespace", namespace)
            mcpd = Mcpd(cluster, namespace, f"early-{index}")
            mcpd.apply(manifest(f"early-{index}"))
            served.append(mcpd)
        outside = Mcpd(cluster, f"{prefix}x", "outside")
        cluster.kubectl("create", "namespace", f"{prefix}x")
        outside.apply(manifest("outside"))
        for mcpd in served:
            mcpd.wait_ready(30)
        assert "status" not in outside.get(), "a namespace outside the pattern is not reconciled"
        assert "finalizers" not in outside.get()["metadata"], "nor given a finalizer"
    finally:
        process.stop()
