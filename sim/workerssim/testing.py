"""The Workers simulator on a background thread with a real OCI registry beside it, and this cloud's harness (see
armsim.testing for the shape). A Worker is built from a bundle, not an image: ``sample_spec(name, image)`` pushes
a bundle whose main module names ``image`` (the MCP server the simulator answers its URLs with) and pins it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ociregistry import LocalRegistry, RegistryBeside
from simcore.thread import BackgroundSimulator

from .server import WorkersSimulator, WorkersSimulatorConfig
from .world import Failure

WASM = b"\x00asm\x01\x00\x00\x00"  # an empty WebAssembly module: the simulator never runs it


def write_bundle(directory: Path, image: str) -> Path:
    """A worker-build output as cargo pmcp makes it: shim.mjs (the main ES module) importing index.wasm."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "shim.mjs").write_text(f"// mcp-sim-image: {image}\nimport wasm from \"./index.wasm\";\n"
                                        "export default { async fetch(request, env, ctx) { return new Response(\"\"); } };\n")
    (directory / "index.wasm").write_bytes(WASM)
    return directory


def push_with_oras(registry: LocalRegistry, directory: Path, name: str) -> str:
    """``oras push`` of a bundle directory (one layer per file, titled by its name); returns it by digest."""
    return registry.push(directory, name, {".wasm": "application/wasm", ".mjs": "application/javascript+module",
                                           ".js": "application/javascript+module"},
                         {"dev.mcp-deploy.bundle.main": "shim.mjs"})


class WorkersSimulatorThread(RegistryBeside, BackgroundSimulator):
    simulator: WorkersSimulator
    target_type = "cloudflare-workers"

    def __init__(self, config: WorkersSimulatorConfig | None = None, workdir: Path | None = None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="workerssim-"))
        self.created_workdir = None if workdir else self.workdir
        super().__init__(WorkersSimulator(config or WorkersSimulatorConfig(), self.workdir), "workerssim")
        self._with_registry()

    def operator_environment(self) -> dict[str, str]:
        info = self.info
        return {"CLOUDFLARE_API_TOKEN": info["apiToken"], "CLOUDFLARE_ACCOUNT_ID": info["accountId"],
                "MCP_CLOUDFLARE_API": info["apiBase"], "MCP_CA_BUNDLE": self.ca_bundle(),
                "MCP_RESOLVE": f"*.workers.dev={info['ingress']}"}

    def credentials_secret(self) -> dict[str, str]:
        return {"CLOUDFLARE_API_TOKEN": self.info["apiToken"]}

    def bundle(self, image: str) -> str:
        """The OCI reference (by digest) of a bundle whose Worker answers as ``image``, pushed once."""
        return self.pushed_once(image, "bundles", lambda directory, _repository: write_bundle(directory, image),
                                lambda directory, name: push_with_oras(self.registry, directory, name))

    def server_fields(self, image: str) -> dict[str, Any]:
        """spec.server fields for a Worker that answers as ``image``: a bundle pushed for it, pinned by digest."""
        return {"artifact": {"oci": self.bundle(image)}}

    def sample_spec(self, name: str, image: str = "ghcr.io/acme/calc:1.0.0") -> dict[str, Any]:
        return {"target": {"type": self.target_type},
                "server": {"name": name, "artifact": {"oci": self.bundle(image)}, "allowedOrigins": ["https://app.example"]},
                "cloudflare": {"accountId": self.info["accountId"]}}

    def revision_names(self, app: str) -> list[str]:
        def names() -> list[str]:
            script = self.simulator.world.scripts.get(app)
            return [v.id for v in script.versions] if script else []
        return self.call(names)

    def fail_revisions_of(self, image_contains: str, message: str = "container exited with code 1") -> None:
        self.call(self.simulator.world.failures.append, Failure(image_contains, message))

    def plant_foreign(self, app: str, marks: dict[str, str], image: str = "ghcr.io/acme/other:1") -> None:
        """A Worker another tool uploaded (as `wrangler deploy` does), carrying ``marks`` as its tags."""
        source = f"// mcp-sim-image: {image}\nexport default {{}};\n".encode()

        def plant() -> None:
            self.simulator.world.upload(app, {"main_module": "index.js", "tags": [f"{k}={v}" for k, v in marks.items()]},
                                        {"index.js": ("application/javascript+module", source)}, create=True)
        self.call(plant)

    def app_tags_and_image(self, app: str) -> tuple[dict[str, str], str]:
        def read() -> tuple[dict[str, str], str]:
            script = self.simulator.world.scripts[app]
            tags = dict(t.partition("=")[::2] for t in script.tags)
            return tags, script.versions[-1].image
        return self.call(read)

    def remaining(self) -> list[str]:
        return self.call(lambda: [f"Worker {name}" for name in self.simulator.world.scripts])

    def cloud_name(self) -> str:
        return "Cloudflare Workers API (with a local OCI registry for bundles)"

    def drop_connections(self, count: int = 1, method: str | None = None) -> None:
        self.call(self.simulator.add_fault, action="drop", when="before", count=count, method=method)
