"""Built bundles that are not container images (``server.artifact``), fetched and verified. No cloud is known here.

A bundle is a set of named files with media types (JavaScript and WebAssembly modules; a deployment template and
a bootstrap binary). It is pinned, so that a revision is reproducible:

- **An OCI artifact by digest**, pulled with ORAS's Python client (``oras``): the manifest's bytes must hash to the
  digest, and every layer's to its own; each layer is one file, named by its ``org.opencontainers.image.title``
  annotation (what ``kubectl mcp bundle push`` and ``oras push`` write).
- **An HTTPS URL with a SHA-256**: a ``.tar.gz`` of the files, whose bytes must hash to it.

A mismatch, a missing file name or an unreadable archive is a ``TerminalError`` naming the artifact; a registry or
server that cannot be reached is a ``TransientError``. Bundles are kept by digest (a few, they are megabytes), so the
passes of one revision fetch it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import mimetypes
import ssl
import tarfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import requests

from .api.models import Artifact
from .contract import TerminalError, TransientError
from .settings import proxies_configured

TITLE = "org.opencontainers.image.title"
MAIN_MODULE = "dev.mcp-deploy.bundle.main"  # a manifest annotation naming the main file, where the bundle has one
ARTIFACT_TYPE = "application/vnd.mcp-deploy.bundle.v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
# Media types of a bundle's files by extension (module types of JavaScript runtimes; anything else is plain bytes).
MEDIA_TYPES = {".mjs": "application/javascript+module", ".js": "application/javascript+module", ".wasm": "application/wasm",
               ".map": "application/source-map", ".txt": "text/plain", ".json": "application/json",
               ".yaml": "application/yaml", ".yml": "application/yaml"}


@dataclass(frozen=True)
class BundleFile:
    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Bundle:
    reference: str
    digest: str  # sha256:<hex> of the manifest, or of the archive at the URL
    files: tuple[BundleFile, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(f.data) for f in self.files)

    def file(self, name: str) -> BundleFile | None:
        return next((f for f in self.files if f.name == name), None)


def media_type_of(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ArtifactFetcher:
    """Fetches and verifies bundles; trusts ``ca_bundle`` (and not the machine's CA-bundle variables) where given."""

    def __init__(self, ca_bundle: str | None = None, keep: int = 4):
        self.ca_bundle, self.keep = ca_bundle, keep
        self._kept: OrderedDict[str, Bundle] = OrderedDict()
        self._lock = asyncio.Lock()

    async def fetch(self, artifact: Artifact, where: str = "spec.server.artifact") -> Bundle:
        key = artifact.reference
        async with self._lock:  # one fetch of a bundle at a time, however many passes want it
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            bundle = await (asyncio.to_thread(self._pull, artifact.oci, where) if artifact.oci
                            else self._download(str(artifact.url), str(artifact.sha256), where))
            self._kept[key] = bundle
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
            return bundle

    # ----- OCI -------------------------------------------------------------------------------------------------
    def _registry(self) -> Any:
        import oras.provider

        registry = oras.provider.Registry(tls_verify=self.ca_bundle or True)
        registry.session.trust_env = proxies_configured()  # else REQUESTS_CA_BUNDLE would override the CA given here
        registry.session.verify = self.ca_bundle or True
        return registry

    def _pull(self, reference: str, where: str) -> Bundle:
        registry = self._registry()
        container = registry.get_container(reference)
        digest = reference.rpartition("@")[2]
        try:
            answer = registry.do_request(f"{registry.prefix}://{container.manifest_url()}", "GET",
                                         headers={"Accept": OCI_MANIFEST})
            if answer.status_code == 404:
                raise TerminalError("ArtifactNotFound", f"{where}: {reference} is not in the registry (no manifest with that "
                                                        "digest): push it, or fix the digest")
            if answer.status_code in (401, 403):
                raise TerminalError("ArtifactUnauthorized", f"{where}: the registry refused to serve {reference} "
                                                            f"({answer.status_code})")
            answer.raise_for_status()
            if _sha256(answer.content) != digest:
                raise TerminalError("ArtifactDigestMismatch", f"{where}: the registry's manifest for {reference} hashes to "
                                                              f"{_sha256(answer.content)}, not to the digest asked for")
            manifest = json.loads(answer.content)
            files = []
            for layer in manifest.get("layers", []):
                name = (layer.get("annotations") or {}).get(TITLE)
                if not name:
                    raise TerminalError("ArtifactInvalid", f"{where}: a layer of {reference} has no {TITLE} annotation: a "
                                                           "bundle's layers are its files, each named")
                blob = registry.get_blob(container, layer["digest"])
                blob.raise_for_status()
                if _sha256(blob.content) != layer["digest"]:
                    raise TerminalError("ArtifactDigestMismatch", f"{where}: the file {name} of {reference} does not hash "
                                                                  f"to its digest {layer['digest']}")
                files.append(BundleFile(name, layer.get("mediaType") or media_type_of(name), blob.content))
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError("ArtifactUnreachable", f"{where}: the registry of {reference} could not be reached: "
                                                        f"{error}") from error
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            kind = TransientError if status >= 500 or status == 429 else TerminalError
            raise kind("ArtifactUnreachable" if kind is TransientError else "ArtifactInvalid",
                       f"{where}: fetching {reference} failed: {error}") from error
        return Bundle(reference, digest, tuple(files), dict(manifest.get("annotations") or {}))

    # ----- HTTPS ------------------------------------------------------------------------------------------------
    async def _download(self, url: str, sha256: str, where: str) -> Bundle:
        context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None
        try:
            async with aiohttp.ClientSession(trust_env=proxies_configured()) as session, session.get(
                    url, ssl=context if context else True, timeout=aiohttp.ClientTimeout(total=120)) as answer:
                if answer.status == 404:
                    raise TerminalError("ArtifactNotFound", f"{where}: {url} answered 404")
                if answer.status >= 400:
                    kind = TransientError if answer.status >= 500 or answer.status == 429 else TerminalError
                    raise kind("ArtifactUnreachable", f"{where}: {url} answered {answer.status}")
                data = await answer.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise TransientError("ArtifactUnreachable", f"{where}: {url} could not be fetched: {error}") from error
        if hashlib.sha256(data).hexdigest() != sha256:
            raise TerminalError("ArtifactDigestMismatch", f"{where}: {url} hashes to {hashlib.sha256(data).hexdigest()}, not "
                                                          f"to the sha256 given ({sha256})")
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                files = tuple(BundleFile(member.name.removeprefix("./"), media_type_of(member.name),
                                         archive.extractfile(member).read())  # type: ignore[union-attr]
                              for member in archive.getmembers() if member.isfile())
        except (tarfile.TarError, OSError) as error:
            raise TerminalError("ArtifactInvalid", f"{where}: {url} is not a .tar.gz of the bundle's files: {error}") from error
        return Bundle(f"{url}#sha256={sha256}", f"sha256:{sha256}", files)


# ----- making one (kubectl mcp bundle push) -------------------------------------------------------------------

def files_of(directory: Path) -> list[Path]:
    """The files of a built bundle directory, in a stable order (subdirectories included)."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


def push(directory: Path, target: str, main: str | None = None, ca_bundle: str | None = None,
         insecure: bool = False) -> str:
    """Pushes ``directory`` as an OCI artifact, one layer per file; returns ``<repository>@sha256:<digest>``."""
    import oras.provider

    files = files_of(directory)
    if not files:
        raise ValueError(f"{directory} holds no files")
    registry = oras.provider.Registry(insecure=insecure, tls_verify=ca_bundle or True)
    registry.session.trust_env = False
    registry.session.verify = ca_bundle or True
    annotations = {MAIN_MODULE: main} if main else {}
    entries = [f"{path.relative_to(directory)}:{media_type_of(path.name)}" for path in files]
    answer = _push_from(registry, directory, target, entries, annotations)
    digest = answer.headers.get("Docker-Content-Digest")
    if not digest:
        raise ValueError(f"the registry did not say the digest of what it stored for {target}")
    return f"{target.rpartition(':')[0] if _has_tag(target) else target}@{digest}"


def _push_from(registry: Any, directory: Path, target: str, entries: Sequence[str], annotations: Mapping[str, str]) -> Any:
    import os

    here = Path.cwd()
    os.chdir(directory)  # ORAS names each layer by the path it is given: relative to the bundle's root
    try:
        return registry.push(target=target, files=list(entries), manifest_annotations=dict(annotations) or None,
                             disable_path_validation=True)
    finally:
        os.chdir(here)


def _has_tag(reference: str) -> bool:
    last = reference.rpartition("/")[2]
    return ":" in last
