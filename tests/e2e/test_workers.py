"""cloudflare-workers end to end: the operator as a process, the real control plane, the Workers simulator, and a
real OCI registry (the CNCF distribution registry) the bundles are pushed to and pulled from.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import Cluster
from localcluster.operator import OperatorProcess
from tests.e2e.conftest import KillableOperator, Mcpd, answered, manifest, shown_to_people, wait_until, writes_while_in_sync
from workerssim.testing import WorkersSimulatorThread, push_with_oras

pytestmark = pytest.mark.e2e
SECRET_VALUE = "s3cr3t-workers-value-5b1e"


@pytest.fixture(scope="module")
def cloud() -> Iterator[WorkersSimulatorThread]:
    running = WorkersSimulatorThread().start()
    yield running
    running.stop()


def workers_manifest(cloud: WorkersSimulatorThread, name: str, image: str = "ghcr.io/acme/calc:1.0.0", **spec: Any) -> dict[
        str, Any]:
    server = {"allowedOrigins": ["https://app.example"], "artifact": {"oci": cloud.bundle(image)}, **spec.pop("server", {})}
    body = manifest(name, target={"type": "cloudflare-workers"}, server=server, **spec)
    body["spec"]["server"].pop("image", None)
    return body


def worker_state(cloud: WorkersSimulatorThread, name: str) -> dict[str, Any]:
    """The simulator's view: versions (number -> image), the active deployment (number -> percent), the subdomain."""
    def read() -> dict[str, Any]:
        script = cloud.simulator.world.scripts.get(name)
        if script is None:
            return {}
        numbers = {v.id: v.number for v in script.versions}
        return {"versions": {v.number: v.image for v in script.versions},
                "deployed": {numbers[t["version_id"]]: t["percentage"] for t in script.active.versions} if script.active else {},
                "workers_dev": script.subdomain_enabled, "previews": script.previews_enabled,
                "secrets": {v.number: v.secrets() for v in script.versions}, "tags": list(script.tags)}
    return cloud.call(read)


def test_create_update_refused_upload_rollback_drift_and_delete(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                               operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-worker")
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "calc-keys", f"--from-literal=token={SECRET_VALUE}")
    env = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "calc-keys", "key": "token"}}},
           {"name": "LOG_LEVEL", "value": "info"}]
    mcpd.apply(workers_manifest(cloud, "calc-worker", server={"env": env}))
    status = mcpd.wait_ready(60)
    assert status["url"] == f"https://calc-worker.{cloud.info['subdomain']}.workers.dev/"
    assert status["cloudflare"]["bundleDigest"] == cloud.bundle("ghcr.io/acme/calc:1.0.0").rpartition("@")[2]
    assert status["revisions"][0]["mcp"]["result"] == "Passed"
    state = worker_state(cloud, "calc-worker")
    assert state["deployed"] == {1: 100} and state["workers_dev"] and state["previews"]
    assert state["secrets"][1] == {"API_TOKEN": SECRET_VALUE}, "a secret is a secret_text binding of the version"
    assert "mcp.deploy.dev/owner=" + f"{namespace}.calc-worker" in state["tags"]

    # Update: version 2 is uploaded without traffic, checked on its preview URL, then deployed.
    mcpd.apply(workers_manifest(cloud, "calc-worker", "ghcr.io/acme/calc:2.0.0", server={"env": env}))
    status = wait_until(lambda: mcpd.is_ready() and len(mcpd.status()["revisions"]) == 2 and mcpd.status(), 60,
                        "version 2 to serve")
    second = status["revisions"][1]
    assert second["mcp"]["url"].startswith(f"https://{second['name'][:8]}-calc-worker."), "checked on its preview URL"
    assert worker_state(cloud, "calc-worker")["deployed"] == {2: 100}

    # An upload Cloudflare refuses leaves the deployment as it was, and says why in Cloudflare's words.
    cloud.fail_revisions_of("calc:broken", "Uncaught ReferenceError: x is not defined")
    mcpd.apply(workers_manifest(cloud, "calc-worker", "ghcr.io/acme/calc:broken", server={"env": env}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "RevisionFailed" and "x is not defined" in stalled["message"]
    assert "keeps serving" in stalled["message"]
    assert worker_state(cloud, "calc-worker")["deployed"] == {2: 100}

    # Editing the spec back to revision 1 deploys version 1 again: no upload, one deployment.
    before = time.monotonic()
    mcpd.apply(workers_manifest(cloud, "calc-worker", server={"env": env}))
    wait_until(lambda: mcpd.is_ready() and mcpd.status()["servingRevision"] == status["revisions"][0]["name"], 60,
               "the rollback")
    assert len(worker_state(cloud, "calc-worker")["versions"]) == 2, "a rollback uploads nothing"
    assert answered(cloud, "scripts.deployments.post", before) == 1

    # Drift: the deployment moved and workers.dev turned off behind the operator's back.
    world = cloud.simulator.world

    def tamper() -> None:
        script = world.scripts["calc-worker"]
        world.deploy("calc-worker", {"strategy": "percentage", "versions": [
            {"version_id": script.versions[1].id, "percentage": 100}]}, force=True)
        script.subdomain_enabled = script.previews_enabled = False
    cloud.call(tamper)
    wait_until(lambda: worker_state(cloud, "calc-worker")["deployed"] == {1: 100}, 30, "the deployment restored")
    wait_until(lambda: worker_state(cloud, "calc-worker")["workers_dev"], 30, "workers.dev restored")
    assert mcpd.wait_events("DriftCorrected")

    # Zero writes while in sync.
    assert writes_while_in_sync(mcpd, cloud) == []

    assert SECRET_VALUE not in shown_to_people(mcpd, operator)

    mcpd.delete()
    assert worker_state(cloud, "calc-worker") == {}


def test_a_bundle_from_an_https_url_is_checked_against_its_sha256(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                                  operator: OperatorProcess, namespace: str,
                                                                  tmp_path: Path) -> None:
    """The registry's blob endpoint serves the .tar.gz over HTTPS, as any file server would."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("shim.mjs", b"// mcp-sim-image: ghcr.io/acme/calc:3.0.0\nexport default {};\n"),
                           ("index.wasm", b"\x00asm\x01\x00\x00\x00")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "bundle.tar.gz").write_bytes(archive.getvalue())
    reference = push_with_oras(cloud.registry, tmp_path / "bundle", "archives/calc:3.0.0")
    digest = hashlib.sha256(archive.getvalue()).hexdigest()
    url = f"https://{cloud.registry.host}/v2/archives/calc/blobs/sha256:{digest}"
    assert reference
    mcpd = Mcpd(cluster, namespace, "calc-url")
    wrong = workers_manifest(cloud, "calc-url")
    wrong["spec"]["server"]["artifact"] = {"url": url, "sha256": "0" * 64}
    mcpd.apply(wrong)
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "ArtifactDigestMismatch" and digest in stalled["message"]
    assert worker_state(cloud, "calc-url") == {}, "nothing was uploaded"
    wrong["spec"]["server"]["artifact"]["sha256"] = digest
    mcpd.apply(wrong)
    status = mcpd.wait_ready(60)
    assert status["revisions"][-1]["mcp"]["serverVersion"] == "3.0.0"


def test_retain_leaves_the_worker_and_an_absent_worker_releases_at_once(
        cluster: Cluster, cloud: WorkersSimulatorThread, operator: OperatorProcess, namespace: str) -> None:
    mcpd = Mcpd(cluster, namespace, "calc-keep")
    mcpd.apply(workers_manifest(cloud, "calc-keep", deletionPolicy="Retain"))
    mcpd.wait_ready(60)
    mcpd.delete()
    assert worker_state(cloud, "calc-keep")["deployed"] == {1: 100}, "Retain leaves Cloudflare alone"

    gone = Mcpd(cluster, namespace, "calc-gone")
    gone.apply(workers_manifest(cloud, "calc-gone"))
    gone.wait_ready(60)
    cloud.call(lambda: cloud.simulator.world.scripts.pop("calc-gone"))
    gone.delete()


def test_a_token_without_the_permission_stalls_naming_it(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                         operator: OperatorProcess, namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "-n", namespace, "cf-token",
                    f"--from-literal=CLOUDFLARE_API_TOKEN={cloud.info['readOnlyToken']}")
    mcpd = Mcpd(cluster, namespace, "calc-ro")
    mcpd.apply(workers_manifest(cloud, "calc-ro", credentials={"secretRef": {"name": "cf-token"}}))
    stalled = wait_until(lambda: mcpd.condition("Stalled").get("status") == "True" and mcpd.condition("Stalled"), 60, "Stalled")
    assert stalled["reason"] == "AuthorizationFailed" and "Workers Scripts > Edit" in stalled["message"]
    assert cloud.info["readOnlyToken"] not in json.dumps(mcpd.get()) + operator.logs()


def test_sigkill_and_a_lost_upload_answer_make_no_duplicate_version(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                                    namespace: str, tmp_path: Path) -> None:
    operator = KillableOperator(cluster, cloud, namespace, tmp_path)
    mcpd = Mcpd(cluster, namespace, "calc-kill")
    try:
        mcpd.apply(workers_manifest(cloud, "calc-kill"))
        mcpd.wait_ready(60)
        started = time.monotonic()
        # Cloudflare stores the upload, the answer never arrives, and the operator is killed meanwhile.
        cloud.call(cloud.simulator.add_fault, action="drop", when="after", operation="scripts.versions.post")
        mcpd.apply(workers_manifest(cloud, "calc-kill", "ghcr.io/acme/calc:2.0.0"))
        wait_until(lambda: any(r.operation == "scripts.versions.post" and r.at >= started for r in cloud.simulator.requests),
                   30, "the upload")
        operator.kill_and_restart()
        wait_until(lambda: mcpd.is_ready() and len(mcpd.status()["revisions"]) == 2, 90, "version 2 to serve")
    finally:
        cloud.call(cloud.simulator.clear_faults)
        operator.stop()
    assert sorted(worker_state(cloud, "calc-kill")["versions"]) == [1, 2], "no duplicate version"
    assert worker_state(cloud, "calc-kill")["deployed"] == {2: 100}


def test_kubectl_mcp_logs_says_what_workers_keeps(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                  operator: OperatorProcess, namespace: str) -> None:
    from tests.e2e.test_cli import mcp

    mcpd = Mcpd(cluster, namespace, "calc-logs")
    mcpd.apply(workers_manifest(cloud, "calc-logs"))
    mcpd.wait_ready(60)
    found = mcp(cluster, cloud, "logs", "calc-logs", "-n", namespace)  # type: ignore[arg-type]
    assert found.returncode == 0 and "keeps no log history" in found.stdout and "--follow" in found.stdout


def test_kubectl_mcp_bundle_push_makes_the_artifact_a_worker_runs(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                                  operator: OperatorProcess, namespace: str,
                                                                  tmp_path: Path) -> None:
    from tests.e2e.test_cli import mcp
    from workerssim.testing import write_bundle

    built = write_bundle(tmp_path / "build" / "worker", "ghcr.io/acme/pushed:4.0.0")
    pushed = mcp(cluster, cloud, "bundle", "push", str(built), f"{cloud.registry.host}/acme/pushed-worker:4.0.0",  # type: ignore[arg-type]
                 "--main", "shim.mjs", "--ca-file", cloud.registry.ca_file)
    assert pushed.returncode == 0, pushed.stderr
    reference = pushed.stdout.strip().splitlines()[-1]
    assert reference.startswith(f"{cloud.registry.host}/acme/pushed-worker@sha256:")
    mcpd = Mcpd(cluster, namespace, "calc-pushed")
    body = workers_manifest(cloud, "calc-pushed")
    body["spec"]["server"]["artifact"] = {"oci": reference}
    mcpd.apply(body)
    assert mcpd.wait_ready(60)["revisions"][0]["mcp"]["serverName"] == "pushed"
    missing = mcp(cluster, cloud, "bundle", "push", str(tmp_path / "nothing"), "x/y:1")  # type: ignore[arg-type]
    assert missing.returncode == 2 and "is not a directory" in missing.stderr and "Traceback" not in missing.stderr


def test_kubectl_mcp_logs_follow_reads_a_live_tail(cluster: Cluster, cloud: WorkersSimulatorThread,
                                                   operator: OperatorProcess, namespace: str) -> None:
    """As `wrangler tail`: a tail is opened, its WebSocket read, and closed again when the command stops."""
    import selectors
    import signal
    import socket
    import ssl
    import subprocess

    from localcluster.operator import operator_environment
    from tests.e2e.test_cli import PLUGIN

    mcpd = Mcpd(cluster, namespace, "calc-tail")
    mcpd.apply(workers_manifest(cloud, "calc-tail"))
    mcpd.wait_ready(60)
    env = operator_environment(cluster, cloud.operator_environment())
    follow = subprocess.Popen([PLUGIN, "--kubeconfig", str(cluster.kubeconfig), "logs", "calc-tail", "-n", namespace,
                               "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        def opened() -> bool:
            assert follow.poll() is None, f"logs --follow exited: {follow.communicate()[1]}"
            return bool(cloud.call(lambda: bool(cloud.simulator.world.tails)))
        wait_until(opened, 30, "the tail to be opened")
        host = f"calc-tail.{cloud.info['subdomain']}.workers.dev"
        address, port = cloud.info["ingress"].rsplit(":", 1)
        context = ssl.create_default_context(cafile=cloud.info["caBundle"])
        with socket.create_connection((address, int(port)), timeout=10) as raw, context.wrap_socket(
                raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            tls.recv(64)
        selector = selectors.DefaultSelector()
        assert follow.stdout is not None
        selector.register(follow.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=20), "a tail event within 20 s"
        assert "request to version 1" in follow.stdout.readline()
    finally:
        follow.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops it
        follow.wait(timeout=20)
    wait_until(lambda: cloud.call(lambda: not cloud.simulator.world.tails), 20, "the tail to be closed")
