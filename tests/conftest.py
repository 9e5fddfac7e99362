"""Shared fixtures: the real control plane (session-wide) and ARM simulators (one per test)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from armsim import SimulatorConfig
from armsim.__main__ import default_openapi
from armsim.testing import SimulatorThread, running_simulator
from harnesses import AZURE_LATENCY
from localcluster import Cluster, cluster_for_tests

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = REPO_ROOT / "crds"
OPENAPI = default_openapi()
FAST_LATENCY = AZURE_LATENCY["fast"]


@pytest.fixture(scope="session")
def helm_bin() -> str:
    """helm of the pinned release (hack/helm/fetch.sh: $HELM_BIN, the cache, or a build from its Go module)."""
    result = subprocess.run(["bash", str(REPO_ROOT / "hack" / "helm" / "fetch.sh")], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(result.stderr)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with cluster_for_tests(CRD_DIR) as found:
        yield found


def simulator_config(**overrides: object) -> SimulatorConfig:
    config = SimulatorConfig(openapi=OPENAPI, retry_after=0, latency=dict(FAST_LATENCY))
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with running_simulator(simulator_config()) as running:
        yield running
