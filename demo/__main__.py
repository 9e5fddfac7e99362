"""`make demo`: the whole McpDeployment lifecycle on a local control plane, with the ARM simulator as Azure.

Starts etcd + kube-apiserver, the simulator and the operator (a real process), then deploys
examples/calculator.yaml, updates its image, shows the history, rolls back by editing the spec,
and deletes it, narrating each step. Takes about a minute.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from armsim import SimulatorConfig
from armsim.__main__ import default_openapi
from armsim.testing import running_simulator
from localcluster import LocalControlPlane
from localcluster.operator import OperatorProcess, operator_environment

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "calculator.yaml"
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"          {line}")


class Demo:
    def __init__(self, cluster: Any, name: str):
        self.cluster, self.name = cluster, name

    def apply(self, body: dict[str, Any]) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))

    def get(self) -> dict[str, Any]:
        return json.loads(self.cluster.kubectl("get", "mcpd", self.name, "-o", "json").stdout)  # type: ignore[no-any-return]

    def wait_ready(self, timeout: float = 90) -> dict[str, Any]:
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            body = self.get()
            status = body.get("status", {})
            conditions = {c["type"]: c for c in status.get("conditions", [])}
            line = " / ".join(f"{t}={c['status']}" + (f" ({c['reason']})" if c["status"] == "True" else "")
                              for t, c in conditions.items() if t != "InsecureIngress")
            if line != last:
                say(f"  status: {line or 'waiting for the operator'}")
                last = line
            if status.get("observedGeneration") == body["metadata"]["generation"] and conditions.get("Ready", {}).get(
                    "status") == "True":
                return status
            if conditions.get("Stalled", {}).get("status") == "True":
                raise SystemExit(f"stalled: {conditions['Stalled']['message']}")
            time.sleep(0.5)
        raise SystemExit(f"{self.name} did not become Ready within {timeout}s")

    def wait_stalled(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stalled = next((c for c in self.get().get("status", {}).get("conditions", []) if c["type"] == "Stalled"), {})
            if stalled.get("status") == "True":
                return stalled
            time.sleep(0.5)
        raise SystemExit(f"{self.name} did not stall within {timeout}s")

    def history(self) -> None:
        status = self.get()["status"]
        rows = [f"{'REV':<4}{'NAME':<40}{'IMAGE':<42}{'STATE':<10}{'TRAFFIC':<9}MCP CHECK"]
        rows += [f"{r['number']:<4}{r['name']:<40}{r['image']:<42}{r['state']:<10}{str(r['trafficWeight']) + '%':<9}"
                 f"{_check(r.get('mcp'))}" for r in status["revisions"]]
        show("\n".join(rows))


def _check(mcp: dict[str, Any] | None) -> str:
    if not mcp:
        return "-"
    if mcp["result"] == "Passed":
        return f"passed: {mcp['serverName']} {mcp['serverVersion']}, {mcp['toolCount']} tools, {mcp['latencyMs']} ms"
    return f"failed: {mcp['reason']}"


def main() -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    name = sample["metadata"]["name"]
    say("starting a local Kubernetes control plane (etcd + kube-apiserver, TLS, RBAC)")
    plane = LocalControlPlane()
    cluster = plane.start()
    try:
        server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        say(f"  kube-apiserver {server} at {cluster.server}")
        cluster.apply_crds(ROOT / "crds")
        say("  installed the McpDeployment CRD (crds/)")
        latency = {"provider.register": 1.0, "environment.create": 2.0, "containerApp.create": 2.0,
                   "containerApp.update": 2.0, "containerApp.delete": 1.0, "environment.delete": 1.0,
                   "resourceGroup.delete": 1.0, "revision.activate": 0.5}
        config = SimulatorConfig(openapi=default_openapi(), retry_after=1, latency=latency)
        with running_simulator(config) as sim:
            say(f"started the Azure Resource Manager simulator at {sim.info['armEndpoint']} (Azure is not reachable here)")
            logs = Path(tempfile.mkdtemp(prefix="mcp-demo-")) / "operator.log"
            operator = OperatorProcess(operator_environment(cluster, sim.operator_environment(), MCP_POLL_INTERVAL="1"), logs).start()
            say(f"started mcp-operator (logs: {logs})")
            try:
                run(cluster, sim, sample, name)
            finally:
                operator.stop()
            counts = sim.simulator.counts()
            say(f"ARM calls for the whole demo: {counts['reads']} reads, {counts['writes']} writes, {counts['deletes']} deletes")
    finally:
        plane.stop()
    say("done: control plane, simulator and operator stopped")


def run(cluster: Any, sim: Any, sample: dict[str, Any], name: str) -> None:
    demo = Demo(cluster, name)
    say(f"1. kubectl apply -f examples/calculator.yaml  (image {sample['spec']['server']['image']})")
    demo.apply(sample)
    status = demo.wait_ready()
    say(f"   Ready: the MCP endpoint is {status['url']}")
    show(cluster.kubectl("get", "mcpd", "-o", "wide").stdout)

    updated = copy.deepcopy(sample)
    updated["spec"]["server"]["image"] = sample["spec"]["server"]["image"].rsplit(":", 1)[0] + ":1.1.0"
    say(f"2. update the image to {updated['spec']['server']['image']}: revision 2 is created; traffic stays on revision 1 "
        "until it is ready")
    demo.apply(updated)
    status = demo.wait_ready()
    say(f"   revision 2 serves 100%: {status['servingRevision']}")
    check = status["revisions"][-1]["mcp"]
    say(f"   before traffic moved, it answered the MCP handshake on its own URL {check['url']}: server "
        f"{check['serverName']} {check['serverVersion']}, protocol {check['protocolVersion']}, {check['toolCount']} tools")

    guarded = copy.deepcopy(updated)
    guarded["spec"]["server"]["image"] = "ghcr.io/acme/mcp-host-guard:1.2.0"
    say(f"   then {guarded['spec']['server']['image']}: a server whose DNS-rebinding guard rejects the ingress host")
    demo.apply(guarded)
    stalled = demo.wait_stalled()
    say(f"   Stalled ({stalled['reason']}): {stalled['message']}")
    say("   fixed by editing the spec back to 1.1.0: revision 2 takes its traffic again, nothing is rebuilt")
    demo.apply(updated)
    demo.wait_ready()

    say("3. the revision history (status.revisions)")
    demo.history()

    say("4. roll back to revision 1 by editing the spec back (what `git revert` does in a GitOps repo)")
    before = len(sim.simulator.world.apps[next(iter(sim.simulator.world.apps))].revisions)
    demo.apply(sample)
    status = demo.wait_ready()
    after = len(sim.simulator.world.apps[next(iter(sim.simulator.world.apps))].revisions)
    say(f"   revision 1 serves again ({status['servingRevision']}); cloud revisions before/after: {before}/{after} "
        "- no new revision was built")
    demo.history()

    say("5. kubectl describe shows what happened, as Events")
    events = json.loads(cluster.kubectl("get", "events", "-o", "json", "--sort-by=.metadata.creationTimestamp",
                                        f"--field-selector=involvedObject.name={name}").stdout)
    show("\n".join(f"{e['type']:<8}{e['reason']:<24}{e['message']}" for e in events["items"]))

    say("6. kubectl delete: the finalizer removes the app, then the environment and resource group it created")
    cluster.kubectl("delete", "mcpd", name, "--timeout=120s", timeout=150)
    world = sim.simulator.world
    left = [a.name for a in world.apps.values()] + [e.name for e in world.environments.values()]
    say(f"   gone from Kubernetes; left in the simulated Azure subscription: {left or 'nothing'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
