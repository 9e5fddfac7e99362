"""End-to-end fixtures: the operator as a real process, on the real control plane, with the simulator as its cloud."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from armsim.testing import SimulatorThread, running_simulator
from localcluster import Cluster
from localcluster.operator import OperatorProcess, operator_environment
from tests.conftest import simulator_config

T = TypeVar("T")


@pytest.fixture(scope="module")
def cloud() -> Iterator[SimulatorThread]:
    with running_simulator(simulator_config()) as sim:
        yield sim


@pytest.fixture(scope="module")
def namespace_prefix(request: pytest.FixtureRequest) -> str:
    """Each test module's operator watches only its own namespaces, so modules cannot disturb each other."""
    return "e2e-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "")[:12]


@pytest.fixture(scope="module")
def operator(cluster: Cluster, cloud: SimulatorThread, namespace_prefix: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(operator_environment(cluster, cloud.operator_environment(), MCP_DRIFT_INTERVAL="3"), log,
                              ("--namespace", f"{namespace_prefix}-*")).start()
    process.wait_started()
    yield process
    process.stop()


@pytest.fixture
def namespace(cluster: Cluster, namespace_prefix: str) -> str:
    name = f"{namespace_prefix}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


class KillableOperator:
    """An operator process of one test's own, watching only its namespace: to SIGKILL and start again."""

    def __init__(self, cluster: Cluster, cloud: Any, namespace: str, logs: Path):
        self.env = operator_environment(cluster, cloud.operator_environment())
        self.scope, self.logs, self.starts = ("--namespace", namespace), logs, 0
        self.process = self._start()

    def _start(self) -> OperatorProcess:
        self.starts += 1
        return OperatorProcess(self.env, self.logs / f"operator-{self.starts}.log", self.scope).start()

    def kill_and_restart(self) -> None:
        self.process.kill()
        assert not self.process.alive()
        self.process = self._start()

    def stop(self) -> None:
        self.process.stop()


def wait_until(check: Callable[[], T], timeout: float = 30, what: str = "condition", interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")


def answered(cloud: Any, operation: str, since: float = 0.0) -> int:
    """How many requests of that operation the simulator answered with success (2xx) since ``since`` (monotonic)."""
    return sum(1 for r in cloud.simulator.requests if r.operation == operation and r.at >= since and 200 <= r.status < 300)


def writes_while_in_sync(mcpd: Mcpd, cloud: Any, not_writes: tuple[str, ...] = ()) -> list[Any]:
    """The cloud writes made while the resource was Ready and in sync, over 4 s (more than one drift check of the test
    modules' operators, at 3 s). ``not_writes``: operations that are POSTs but change nothing (token exchanges)."""
    mcpd.wait_ready(30)
    quiet = time.monotonic()
    time.sleep(4)
    return [r for r in cloud.simulator.requests if r.at >= quiet and r.klass != "reads" and r.operation not in not_writes]


def shown_to_people(mcpd: Mcpd, operator: Any) -> str:
    """Everything a person or a log collector reads about the resource: its object, its Events, the operator's log."""
    return json.dumps(mcpd.get()) + json.dumps(mcpd.events()) + operator.logs()


def manifest(name: str, image: str = "ghcr.io/acme/calc:1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "mcp.deploy.dev/v1alpha1", "kind": "McpDeployment", "metadata": {"name": name},
                            "spec": {"target": {"type": "azure-container-apps"}, "server": {"image": image}}}
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body["spec"].get(key), dict):
            body["spec"][key].update(value)
        else:
            body["spec"][key] = value
    return body


class Mcpd:
    """kubectl-level helpers for one McpDeployment."""

    def __init__(self, cluster: Cluster, namespace: str, name: str):
        self.cluster, self.namespace, self.name = cluster, namespace, name

    def apply(self, body: dict[str, Any]) -> None:
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(body))

    def get(self) -> dict[str, Any]:
        return json.loads(self.cluster.kubectl("get", "-n", self.namespace, "mcpd", self.name, "-o", "json").stdout)  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self.get().get("status", {})  # type: ignore[no-any-return]

    def condition(self, kind: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions", []) if c["type"] == kind), {})

    def is_ready(self) -> bool:
        status = self.get()
        ready = next((c for c in status.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})
        return ready.get("status") == "True" and status["status"].get("observedGeneration") == status["metadata"]["generation"]

    def wait_ready(self, timeout: float = 40) -> dict[str, Any]:
        wait_until(self.is_ready, timeout, f"{self.name} to be Ready")
        return self.status()

    def events(self) -> list[dict[str, Any]]:
        found = json.loads(self.cluster.kubectl("get", "events", "-n", self.namespace, "-o", "json",
                                                f"--field-selector=involvedObject.name={self.name}").stdout)
        return found["items"]  # type: ignore[no-any-return]

    def wait_events(self, reason: str, timeout: float = 10) -> list[dict[str, Any]]:
        """The Events of that reason, once there is one: kopf posts Events in the background, after the pass."""
        return wait_until(lambda: [e for e in self.events() if e["reason"] == reason], timeout, f"a {reason} Event")

    def delete(self, wait: bool = True) -> None:
        self.cluster.kubectl("delete", "-n", self.namespace, "mcpd", self.name, f"--wait={'true' if wait else 'false'}",
                             "--timeout=60s", timeout=90)


def cloud_revisions(cloud: SimulatorThread, app: str, rg: str | None = None) -> dict[str, dict[str, Any]]:
    """The simulator's view of an app's revisions: name -> (active, traffic, provisioning state, image)."""
    world = cloud.simulator.world
    sub = cloud.info["subscriptionId"]

    def read() -> dict[str, dict[str, Any]]:
        world.settle()
        found = world.apps.get((sub.lower(), (rg or f"{app}-rg").lower(), app.lower()))
        if not found:
            return {}
        weights = world.traffic_weights(found)
        return {r.name: {"active": r.active, "traffic": weights.get(r.name.lower(), 0) if r.active else 0,
                         "state": r.provisioning_state, "image": r.template["containers"][0]["image"]}
                for r in found.revisions.values()}

    return cloud.call(read)


def scrape_metrics(port: int) -> dict[str, float]:
    """The operator's mcp_* metrics, by name with labels, as Prometheus would scrape them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("mcp_") and " " in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found
