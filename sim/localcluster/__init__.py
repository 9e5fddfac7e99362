"""A real Kubernetes control plane (etcd + kube-apiserver) on loopback, for tests, the demo and benchmarks.

It runs the way a real cluster's control plane runs: TLS serving certificates from a private CA,
client-certificate authentication for the admin, a service-account signing key (so TokenRequest
works and RBAC can be tested with real ServiceAccount tokens) and the RBAC authorizer. With
``USE_EXISTING_CLUSTER=true`` the same callers get the cluster of the current KUBECONFIG instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from simcore.certs import CertificateAuthority

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "hack" / "envtest" / "fetch.sh"


class ControlPlaneError(RuntimeError):
    pass


def binaries_dir() -> Path:
    """The directory with kube-apiserver, etcd and kubectl (see hack/envtest/fetch.sh for the order tried)."""
    result = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(result.stderr.strip() or "hack/envtest/fetch.sh failed")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_existing_cluster() -> bool:
    return os.environ.get("USE_EXISTING_CLUSTER", "").lower() in ("1", "true", "yes")


@dataclass
class Cluster:
    """What callers need to talk to a cluster: a kubeconfig and a kubectl."""

    kubeconfig: Path
    kubectl_path: str
    server: str = ""
    workdir: Path | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [self.kubectl_path, "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def apply_crds(self, crd_dir: Path, timeout: float = 60) -> None:
        """Applies the CRDs and returns once their resources can be listed.

        Established is not enough: for a moment after it the API server answers lists of the new kind with
        429 'storage is (re)initializing', and a client started then (the operator) backs off for a second.
        """
        self.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(crd_dir))
        for path in sorted(p for p in crd_dir.glob("*.yaml") if p.name != "kustomization.yaml"):
            self.kubectl("wait", "--for=condition=Established", "-f", str(path), f"--timeout={int(timeout)}s", timeout=timeout + 10)
            for crd in yaml.safe_load_all(path.read_text()):
                resource = f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"
                deadline = time.monotonic() + timeout
                while self.kubectl("get", resource, "--all-namespaces", "-o", "name", check=False).returncode != 0:
                    if time.monotonic() > deadline:
                        raise ControlPlaneError(f"{resource} could not be listed {timeout:.0f}s after its CRD was established")
                    time.sleep(0.1)

    def delete_namespace(self, namespace: str, timeout: float = 120) -> None:
        """Deletes a namespace as kube-controller-manager's namespace controller would, since this control plane
        runs none: mark it Terminating, delete every namespaced object in it by collection (all kinds at once,
        so nothing waits for anything else), wait until no object is left (finalizers run meanwhile), then
        finalize the namespace. Raises TimeoutError naming what is left."""
        self.kubectl("delete", "namespace", namespace, "--wait=false")
        kinds = self.kubectl("api-resources", "--namespaced=true", "--verbs=list,deletecollection", "-o", "name").stdout.split()
        joined = ",".join(kinds)
        self.kubectl("delete", joined, "--all", "-n", namespace, "--wait=false", check=False)
        deadline = time.monotonic() + timeout
        while True:
            left = self.kubectl("get", joined, "-n", namespace, "-o", "name", "--ignore-not-found", check=False).stdout.split()
            if not left:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {namespace} still holds {', '.join(left)} after {timeout:.0f}s")
            time.sleep(0.5)
        body = json.loads(self.kubectl("get", "namespace", namespace, "-o", "json").stdout)
        body["spec"]["finalizers"] = []
        self.kubectl("replace", "--raw", f"/api/v1/namespaces/{namespace}/finalize", "-f", "-", input=json.dumps(body))

    def kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """A kubeconfig that authenticates with ``token`` alone (e.g. a ServiceAccount's, from TokenRequest)."""
        return self.kubeconfig_for_user({"token": token}, path)

    def kubeconfig_for_user(self, user: dict[str, Any], path: Path, namespace: str | None = None) -> Path:
        """This cluster's kubeconfig with ``user`` (a kubeconfig user entry) as its only user."""
        config = json.loads(self.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
        config["users"] = [{"name": "test-user", "user": user}]
        config["contexts"][0]["context"]["user"] = "test-user"
        if namespace:
            config["contexts"][0]["context"]["namespace"] = namespace
        path.write_text(json.dumps(config))
        return path

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (the operator, kubectl-mcp) that should use this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


class LocalControlPlane:
    """Starts etcd and kube-apiserver on free loopback ports; ``stop()`` ends both and removes their files."""

    def __init__(self, bin_dir: Path | None = None, workdir: Path | None = None):
        self.bin_dir = bin_dir or binaries_dir()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mcp-envtest-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.cluster: Cluster | None = None

    def start(self, timeout: float = 90) -> Cluster:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> Cluster:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        authority = CertificateAuthority.create("mcp-envtest-ca")
        (pki / "ca.crt").write_bytes(authority.pem())
        (pki / "ca.key").write_bytes(authority.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        serving_cert, serving_key = authority.issue(
            "kube-apiserver", ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"))
        (pki / "apiserver.crt").write_bytes(serving_cert)
        (pki / "apiserver.key").write_bytes(serving_key)
        admin_cert, admin_key = authority.issue("envtest-admin", organizations=("system:masters",), client=True)
        (pki / "admin.crt").write_bytes(admin_cert)
        (pki / "admin.key").write_bytes(admin_key)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                      serialization.PublicFormat.SubjectPublicKeyInfo))

        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}", "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}", "--unsafe-no-fsync", "--log-level", "warn",
        ])
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/24", "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'certs'}", "--v=0",
        ])
        server = f"https://127.0.0.1:{api_port}"
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "envtest",
            "clusters": [{"name": "envtest", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "envtest-admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                                         "client-key": str(pki / "admin.key")}}],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "envtest-admin", "namespace": "default"}}],
        }, indent=2))
        self._wait_ready(server, pki, timeout)
        self.cluster = Cluster(kubeconfig, str(self.bin_dir / "kubectl"), server, self.workdir, self.processes)
        return self.cluster

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - stays open for the process's life
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait_ready(self, server: str, pki: Path, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise ControlPlaneError(f"{process.args[0]} exited with {process.returncode}; see {self.workdir}/*.log:\n"
                                            + self._log_tail())
            try:
                with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.25)
        raise ControlPlaneError(f"kube-apiserver not ready after {timeout}s ({last_error}):\n{self._log_tail()}")

    def _log_tail(self) -> str:
        tails = []
        for log in sorted(self.workdir.glob("*.log")):
            tails.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(tails)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def cluster_for_tests(crd_dir: Path | None = None) -> Iterator[Cluster]:
    """The existing cluster (USE_EXISTING_CLUSTER=true, current KUBECONFIG) or a fresh local control plane."""
    if use_existing_cluster():
        kubeconfig = Path(os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")))
        kubectl = shutil.which("kubectl") or str(binaries_dir() / "kubectl")
        cluster = Cluster(kubeconfig, kubectl)
        if crd_dir:
            cluster.apply_crds(crd_dir)
        yield cluster
        return
    plane = LocalControlPlane()
    try:
        cluster = plane.start()
        if crd_dir:
            cluster.apply_crds(crd_dir)
        yield cluster
    finally:
        plane.stop()
