"""A real OCI registry for tests and the demo: the CNCF distribution registry (hack/registry/fetch.sh), serving
HTTPS on loopback with a CA of its own. Bundles are pushed to it with ORAS and pulled by the operator, as from any
registry; nothing here knows a cloud.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from simcore.certs import make_serving_certs

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "hack" / "registry" / "fetch.sh"


def registry_binary() -> str:
    result = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or "hack/registry/fetch.sh failed")
    return result.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalRegistry:
    """``start()`` runs the registry; ``host`` is ``127.0.0.1:<port>``, ``ca_file`` the CA that signed its certificate."""

    def __init__(self, workdir: Path | None = None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ociregistry-"))
        self.created = workdir is None  # removed on stop
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.ca_file = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        certs = make_serving_certs(self.workdir / "tls")
        self.ca_file = str(certs.ca_file)
        self.port = _free_port()
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  tls:\n    certificate: {certs.cert_file}\n    key: {certs.key_file}\n")
        log = (self.workdir / "registry.log").open("wb")
        self.process = subprocess.Popen([registry_binary(), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"https://{self.host}/v2/", verify=self.ca_file, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the registry exited: {(self.workdir / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("the registry did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self.created:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)

    def push(self, directory: Path, name: str, media_types: dict[str, str],
             annotations: dict[str, str] | None = None) -> str:
        """``oras push`` of a directory (one layer per file, titled by its name, typed by its suffix from
        ``media_types``, else application/octet-stream); returns the artifact by digest."""
        import os

        import oras.provider

        client = oras.provider.Registry(tls_verify=self.ca_file)
        client.session.trust_env = False
        files = [f"{p.name}:{media_types.get(p.suffix, 'application/octet-stream')}" for p in sorted(directory.iterdir())]
        here = Path.cwd()
        os.chdir(directory)
        try:
            answer = client.push(target=f"{self.host}/{name}", files=files, disable_path_validation=True,
                                 manifest_annotations=annotations or {})
        finally:
            os.chdir(here)
        return f"{self.host}/{name.rpartition(':')[0]}@{answer.headers['Docker-Content-Digest']}"


class RegistryBeside:
    """For a simulator harness (simcore.thread.BackgroundSimulator) whose cloud runs bundles: a real OCI registry in the
    harness's working directory, started before the simulator and stopped before it, and one CA bundle for both (the
    operator takes one). The harness sets ``workdir``, ``created_workdir`` and ``simulator`` first, then calls
    ``_with_registry()``."""

    workdir: Path
    simulator: Any

    def _with_registry(self) -> None:
        self.registry = LocalRegistry(self.workdir / "registry")
        self._pushed: dict[str, str] = {}  # what the harness pushed, by the image it stands for

    def start(self) -> Any:
        self.registry.start()
        super().start()  # type: ignore[misc]
        return self

    def stop(self) -> None:
        self.registry.stop()  # first: its files are in the harness's working directory
        super().stop()  # type: ignore[misc]

    @property
    def info(self) -> dict[str, Any]:
        return self.simulator.info()  # type: ignore[no-any-return]

    def pushed_once(self, image: str, folder: str, build: Callable[[Path, str], Path],
                    push: Callable[[Path, str], str]) -> str:
        """The reference (by digest) of what stands for ``image`` (a build whose server answers as it): ``build(directory,
        repository)`` writes it, ``push(directory, name)`` pushes it as ``<folder>/<repository>:<tag>``; once per image."""
        if image not in self._pushed:
            repository = image.split("@")[0].rpartition(":")[0].rpartition("/")[2] or "server"
            tag = image.rpartition(":")[2].replace("/", "-") if ":" in image else "latest"
            directory = build(Path(tempfile.mkdtemp(prefix="build-", dir=self.workdir)), repository)
            self._pushed[image] = push(directory, f"{folder}/{repository}:{tag}")
        return self._pushed[image]

    def ca_bundle(self) -> str:
        """The simulator's CA and the registry's, in one file."""
        combined = self.workdir / "ca-bundle.pem"
        if not combined.exists():
            combined.write_text(Path(self.info["caBundle"]).read_text() + Path(self.registry.ca_file).read_text())
        return str(combined)
