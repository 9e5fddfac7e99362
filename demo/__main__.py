"""`make demo [TARGET=aws-lambda]`: the whole McpDeployment lifecycle on a local control plane, with a cloud
simulator (Azure Container Apps by default).

Starts etcd + kube-apiserver, the target's simulator and the operator (a real process), then deploys the
example of that target (examples/*.yaml), updates its image, shows the history, rolls back by editing the
spec, rolls a new image out in steps, and deletes it, narrating each step. Takes about a minute.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import harnesses
from localcluster import LocalControlPlane
from localcluster.operator import OperatorProcess, operator_environment
from mcp_operator.targets import registry

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGET = "azure-container-apps"
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
            current = status.get("observedGeneration") == body["metadata"]["generation"]  # not the last spec's verdict
            if current and conditions.get("Ready", {}).get("status") == "True":
                return status
            if current and conditions.get("Stalled", {}).get("status") == "True":
                raise SystemExit(f"stalled: {conditions['Stalled']['message']}")
            time.sleep(0.5)
        raise SystemExit(f"{self.name} did not become Ready within {timeout}s")

    def wait_condition(self, kind: str, check: Callable[[dict[str, Any]], bool], timeout: float,
                       interval: float = 0.5) -> dict[str, Any] | None:
        """The condition ``kind`` once ``check`` holds for it; None if it did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((c for c in self.get().get("status", {}).get("conditions", []) if c["type"] == kind), {})
            if check(found):
                return found
            time.sleep(interval)
        return None

    def wait_stalled(self, timeout: float = 60) -> dict[str, Any]:
        stalled = self.wait_condition("Stalled", lambda c: c.get("status") == "True", timeout)
        if stalled is None:
            raise SystemExit(f"{self.name} did not stall within {timeout}s")
        return stalled

    def history(self) -> None:
        status = self.get()["status"]
        name_width = max(len("NAME"), *(len(r["name"]) for r in status["revisions"])) + 2
        image_width = max(len("IMAGE"), *(len(r["image"]) for r in status["revisions"])) + 2
        rows = [f"{'REV':<4}{'NAME':<{name_width}}{'IMAGE':<{image_width}}{'STATE':<10}{'TRAFFIC':<9}MCP CHECK"]
        rows += [f"{r['number']:<4}{r['name']:<{name_width}}{r['image']:<{image_width}}{r['state']:<10}"
                 f"{str(r['trafficWeight']) + '%':<9}{_check(r.get('mcp'))}" for r in status["revisions"]]
        show("\n".join(rows))


def _check(mcp: dict[str, Any] | None) -> str:
    if not mcp:
        return "-"
    if mcp["result"] == "Passed":
        return f"passed: {mcp['serverName']} {mcp['serverVersion']}, {mcp['toolCount']} tools, {mcp['latencyMs']} ms"
    return f"failed: {mcp['reason']}"


def example_for(target_type: str) -> tuple[Path, dict[str, Any]]:
    """The example resource of that target: the file under examples/ whose spec.target.type it is."""
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body.get("spec", {}).get("target", {}).get("type") == target_type:
            return path, body
    raise SystemExit(f"no example in examples/ for target {target_type}")


def main() -> None:
    target_type = (sys.argv[1] if len(sys.argv) > 1 else "") or DEFAULT_TARGET
    path, sample = example_for(target_type)
    name = sample["metadata"]["name"]
    say("starting a local Kubernetes control plane (etcd + kube-apiserver, TLS, RBAC)")
    plane = LocalControlPlane()
    cluster = plane.start()
    try:
        server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        say(f"  kube-apiserver {server} at {cluster.server}")
        cluster.apply_crds(ROOT / "crds")
        say("  installed the McpDeployment CRD (crds/)")
        sim = harnesses.start(target_type, pace="demo")
        try:
            say(f"started the {sim.cloud_name()} simulator at {sim.simulator.endpoint} (the cloud is not reachable here)")
            logs = Path(tempfile.mkdtemp(prefix="mcp-demo-")) / "operator.log"
            operator = OperatorProcess(operator_environment(cluster, sim.operator_environment(), MCP_POLL_INTERVAL="1"), logs).start()
            say(f"started mcp-operator (logs: {logs}; kept only if the demo fails)")
            try:
                run(cluster, sim, sample, name, path.relative_to(ROOT))
            finally:
                operator.stop()
            shutil.rmtree(logs.parent, ignore_errors=True)  # the demo worked: leave no temporary files
            counts = sim.simulator.counts()
            say(f"cloud API calls for the whole demo: {counts['reads']} reads, {counts['writes']} writes, "
                f"{counts['deletes']} deletes")
        finally:
            sim.stop()
    finally:
        plane.stop()
    say("done: control plane, simulator and operator stopped")


def with_image(sim: Any, body: dict[str, Any], image: str) -> dict[str, Any]:
    """``body`` whose server answers as ``image``: that image, or the bundle the simulator's harness built for it."""
    changed = copy.deepcopy(body)
    server = {k: v for k, v in changed["spec"]["server"].items() if k not in ("image", "artifact")}
    changed["spec"]["server"] = {**server, **harnesses.server_fields(sim, image)}
    return changed


def image_of(body: dict[str, Any]) -> str:
    """What the example runs: its image, or for a bundle the server it names (calculator-server:1.0.0)."""
    return str(body["spec"]["server"].get("image") or f"ghcr.io/acme/{body['metadata']['name']}:1.0.0")


def run(cluster: Any, sim: Any, sample: dict[str, Any], name: str, path: Path) -> None:
    demo = Demo(cluster, name)
    able = registry.capabilities(sample["spec"]["target"]["type"])  # what this cloud can do: the story follows it
    sample = with_image(sim, sample, image_of(sample))
    shown = sample["spec"]["server"].get("image") or f"bundle {sample['spec']['server']['artifact']['oci']}"
    say(f"1. kubectl apply -f {path}  (target {sample['spec']['target']['type']}, {shown})")
    demo.apply(sample)
    status = demo.wait_ready()
    say(f"   Ready: the MCP endpoint is {status['url']}")
    show(cluster.kubectl("get", "mcpd", "-o", "wide").stdout)

    updated = with_image(sim, sample, image_of(sample).rsplit(":", 1)[0] + ":1.1.0")
    what = image_of(updated) if "image" in updated["spec"]["server"] else "a bundle of 1.1.0"
    say(f"2. update to {what}: " + ("revision 2 is created; traffic stays on revision 1 until it is ready"
                                    if able.has_revisions else "revision 2 is a new deployment; revision 1 serves until "
                                    "it succeeds (this cloud keeps no revisions to switch between)"))
    demo.apply(updated)
    status = demo.wait_ready()
    say(f"   revision 2 serves 100%: {status['servingRevision']}")
    check = status["revisions"][-1]["mcp"]
    where = "before traffic moved, on its own URL" if able.has_revisions else "once it served (no URL before)"
    say(f"   it answered the MCP handshake {where} {check['url']}: server "
        f"{check['serverName']} {check['serverVersion']}, protocol {check['protocolVersion']}, {check['toolCount']} tools")

    guarded = with_image(sim, updated, "ghcr.io/acme/mcp-host-guard:1.2.0")
    say("   then mcp-host-guard 1.2.0: a server whose DNS-rebinding guard rejects the ingress host")
    demo.apply(guarded)
    stalled = demo.wait_stalled()
    say(f"   Stalled ({stalled['reason']}): {stalled['message']}")
    say("   fixed by editing the spec back to 1.1.0: " + ("revision 2 takes its traffic again, nothing is rebuilt"
                                                           if able.has_revisions else "1.1.0 is deployed again"))
    demo.apply(updated)
    demo.wait_ready()

    say("3. the revision history (status.revisions)")
    demo.history()

    say("4. roll back to revision 1 by editing the spec back (what `git revert` does in a GitOps repo)")
    before = len(sim.revision_names(name))
    demo.apply(sample)
    status = demo.wait_ready()
    after = len(sim.revision_names(name))
    if able.has_revisions:
        say(f"   revision 1 serves again ({status['servingRevision']}); cloud revisions before/after: {before}/{after} "
            "- no new revision was built")
    else:
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        say(f"   {ready['message']}; cloud deployments before/after: {before}/{after}")
    demo.history()

    if able.max_traffic_split < 2:
        say("5. progressive rollouts (spec.rollout.steps) need a cloud that splits traffic; this one cannot, and the CRD "
            "refuses them for it")
    else:
        progressive(demo, cluster, sim, sample)

    say("6. kubectl describe shows what happened, as Events")
    events = json.loads(cluster.kubectl("get", "events", "-o", "json", "--sort-by=.metadata.creationTimestamp",
                                        f"--field-selector=involvedObject.name={name}").stdout)
    show("\n".join(f"{e['type']:<8}{e['reason']:<24}{e['message']}" for e in events["items"]))

    say("7. kubectl delete: the finalizer removes what the operator created in the cloud")
    cluster.kubectl("delete", "mcpd", name, "--timeout=120s", timeout=150)
    left = sim.remaining()
    say(f"   gone from Kubernetes; left in the simulated cloud: {', '.join(left) if left else 'nothing'}")



def progressive(demo: Any, cluster: Any, sim: Any, sample: dict[str, Any]) -> None:
    """A rollout in steps, checked before traffic and again after the step."""
    stepped = with_image(sim, sample, image_of(sample).rsplit(":", 1)[0] + ":1.2.0")
    stepped["spec"]["rollout"] = {"steps": [{"percent": 25, "pauseSeconds": 4}]}
    say("5. a progressive rollout of 1.2.0 with spec.rollout.steps 25% for 4 s, checked before traffic and again after "
        "the step, then 100%")
    demo.apply(stepped)
    paused = demo.wait_condition("Reconciling", lambda c: c.get("reason") == "RolloutPaused", 60, interval=0.3)
    if paused is not None:
        say(f"   {paused['message']}")
        show(cluster.kubectl("get", "mcpd").stdout)
    status = demo.wait_ready()
    say(f"   all traffic on the new revision: {status['trafficSummary']}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
